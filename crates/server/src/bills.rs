//! Daily statements (`GET /v1/bills/{date}`): the merchant's business day in its own time
//! zone, one CSV line per payment and refund, then totals equal to the ledger.

use crate::AppState;
use crate::auth::MerchantCaller;
use crate::error::{ApiError, ApiResult};
use crate::util::rfc3339;
use axum::extract::{Extension, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use saoma_core::money::Currency;
use saoma_core::statement::{self, StatementLine};
use saoma_store::{MerchantRow, Store, StoreError};

/// A business day: its date and its `[from, to)` bounds in UTC.
#[derive(Debug, Clone)]
pub struct BusinessDay {
    pub tz: Tz,
    pub from: String,
    pub to: String,
    pub end: DateTime<Utc>,
}

/// A merchant's time zone. It was checked when the merchant was made, so one that does
/// not parse is corrupt: cutting its days in UTC instead would settle the wrong hours.
pub fn merchant_tz(m: &MerchantRow) -> Result<Tz, StoreError> {
    m.timezone.parse().map_err(|_| {
        StoreError::Corrupt(format!("merchant {} has an unknown time zone {:?}", m.id, m.timezone))
    })
}

/// The day `date` (YYYY-MM-DD) in the zone `tz`.
pub fn business_day(date: &str, tz: Tz) -> ApiResult<BusinessDay> {
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid("date", "the date is YYYY-MM-DD"))?;
    let start_of = |d: NaiveDate| -> ApiResult<DateTime<Utc>> {
        // Midnight can fall in a DST gap: then the day starts at the first instant after it.
        let local = d.and_hms_opt(0, 0, 0).ok_or_else(|| ApiError::invalid("date", "no such date"))?;
        let t = tz
            .from_local_datetime(&local)
            .earliest()
            .or_else(|| tz.from_local_datetime(&(local + chrono::Duration::hours(1))).earliest())
            .ok_or_else(|| ApiError::invalid("date", "no such local time"))?;
        Ok(t.with_timezone(&Utc))
    };
    let next = date.succ_opt().ok_or_else(|| ApiError::invalid("date", "date out of range"))?;
    let (start, end) = (start_of(date)?, start_of(next)?);
    Ok(BusinessDay { tz, from: rfc3339(start), to: rfc3339(end), end })
}

/// The statement lines of a merchant's business day.
pub async fn lines(
    store: &Store,
    merchant_id: &str,
    day: &BusinessDay,
) -> Result<Vec<StatementLine>, StoreError> {
    let rows = store.statement_rows(merchant_id, &day.from, &day.to).await?;
    rows.into_iter()
        .map(|r| {
            let currency =
                Currency::from_code(&r.currency).ok_or_else(|| StoreError::Corrupt(r.currency.clone()))?;
            let time =
                DateTime::parse_from_rfc3339(&r.at).map(|t| t.with_timezone(&day.tz).to_rfc3339()).map_err(
                    |_| StoreError::Corrupt(format!("{} {} has an unreadable time {:?}", r.kind, r.id, r.at)),
                )?;
            let kind = if r.kind == "payment" { "payment" } else { "refund" };
            Ok(StatementLine {
                kind,
                id: r.id,
                reference: r.reference,
                payment_id: r.payment_id,
                time,
                currency,
                amount: r.amount,
                fee: r.fee,
            })
        })
        .collect()
}

/// `GET /v1/bills/{YYYY-MM-DD}`: the CSV statement (merchant key).
#[utoipa::path(
    operation_id = "bills_get",
    get,
    path = "/v1/bills/{date}",
    tag = "merchant",
    summary = "The CSV statement of a business day.",
    params(("date" = String, Path, description = "the business day, `YYYY-MM-DD`")),
    responses((status = 200, description = "the statement of that business day", body = String, content_type = "text/csv")),
    security(("merchant_signature" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(date): Path<String>,
) -> ApiResult<Response> {
    caller.require_merchant_key()?;
    let m =
        state.store.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let day = business_day(&date, merchant_tz(&m)?)?;
    let lines = lines(&state.store, &m.id, &day).await?;
    let csv = statement::to_csv(&lines);
    let disposition = format!("attachment; filename=\"saoma-{}-{date}.csv\"", m.id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_follow_the_merchants_zone() {
        let d = business_day("2026-11-25", chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(
            (d.from.as_str(), d.to.as_str()),
            ("2026-11-24T16:00:00.000Z", "2026-11-25T16:00:00.000Z")
        );
        let d = business_day("2026-03-08", chrono_tz::America::New_York).unwrap(); // 23 hours long
        assert_eq!(
            (d.from.as_str(), d.to.as_str()),
            ("2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z")
        );
        assert!(business_day("2026-13-01", chrono_tz::UTC).is_err());
        assert!(business_day("yesterday", chrono_tz::UTC).is_err());
    }
}
