//! Reads the screens need beyond the payment API, each as an API call any client may make:
//! the payments a customer must confirm, a transfer's recipient masked, a merchant's
//! terminals, settlements and sales report, and the operator's lists (merchants by
//! status, customers, the newest audit records). Read-only: nothing here changes state.

use crate::auth::{MerchantCaller, WalletCaller};
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiQuery};
use crate::util::{now, rfc3339};
use crate::{AppState, views};
use axum::Json;
use axum::extract::{Extension, State};
use chrono::{Datelike, Timelike};
use saoma_api as api;
use saoma_core::privacy;
use saoma_core::report::{self, Sale};
use saoma_store::StoreError;
use serde_json::Value;

/// The most payments a sales report reads.
const REPORT_PAYMENTS_MAX: i64 = 20_000;

fn limit_of(limit: Option<i64>, default: i64) -> ApiResult<i64> {
    let limit = limit.unwrap_or(default);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1-100"));
    }
    Ok(limit)
}

/// `GET /v1/wallet/pending`: the customer's payments a till is waiting for them to
/// confirm with the PIN, with the merchant's name.
#[utoipa::path(
    operation_id = "desk_pending",
    get,
    path = "/v1/wallet/pending",
    tag = "wallet",
    summary = "Payments waiting for confirmation.",
    responses((status = 200, description = "payments waiting for this customer's PIN", body = api::Page<api::PendingPayment>)),
    security(("wallet_session" = [])),
)]
pub async fn pending(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
) -> ApiResult<Json<api::Page<api::PendingPayment>>> {
    let mut data = Vec::new();
    for p in state.store.awaiting_confirmation(&me.customer_id, &now().1).await? {
        // A payment is written only for a merchant, and merchants are never deleted: a
        // payment without one is corrupt.
        let merchant = state.store.merchant(&p.merchant_id).await?.map(|m| m.name).ok_or_else(|| {
            StoreError::Corrupt(format!("payment {} names a missing merchant {}", p.id, p.merchant_id))
        })?;
        data.push(api::PendingPayment { payment: views::payment(&p, None)?, merchant_name: merchant });
    }
    Ok(Json(api::Page { data, next_cursor: None }))
}

/// `POST /v1/wallet/recipients/resolve`: whom a transfer would reach, masked, for the
/// sender to recognise before confirming.
#[utoipa::path(
    operation_id = "desk_recipient",
    post,
    path = "/v1/wallet/recipients/resolve",
    tag = "wallet",
    summary = "Whom a transfer would reach.",
    request_body = api::RecipientQuery,
    responses(
        (status = 200, description = "the recipient, masked", body = api::Recipient),
        (status = 404, description = "no wallet with that phone or payload"),
    ),
    security(("wallet_session" = [])),
)]
pub async fn recipient(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
    ApiJson(q): ApiJson<api::RecipientQuery>,
) -> ApiResult<Json<api::Recipient>> {
    let to = match (&q.to_phone, &q.qr_payload) {
        (Some(phone), None) => {
            crate::guesses::count_recipient_lookup(&state, &me.customer_id).await?;
            state.store.customer_by_phone(phone.trim()).await?
        }
        (None, Some(payload)) => {
            let token = saoma_core::scan::receive_token(payload)
                .ok_or_else(|| ApiError::invalid("qr_payload", "not a Saoma receive code"))?;
            state.store.customer_by_receive_token(token).await?
        }
        _ => return Err(ApiError::invalid("to_phone", "give to_phone or qr_payload, not both")),
    };
    let to = to.ok_or_else(|| ApiError::not_found("recipient"))?;
    if to.id == me.customer_id {
        return Err(ApiError::invalid("to_phone", "cannot transfer to yourself"));
    }
    Ok(Json(api::Recipient {
        name_masked: privacy::mask_name(&to.name),
        phone_masked: privacy::mask_phone(&to.phone),
    }))
}

/// `GET /v1/merchant/terminals`: the merchant's tills.
#[utoipa::path(
    operation_id = "desk_terminals",
    get,
    path = "/v1/merchant/terminals",
    tag = "merchant",
    summary = "The merchant's terminals.",
    responses((status = 200, description = "the merchant's terminals", body = api::Page<api::TerminalListed>)),
    security(("merchant_signature" = [])),
)]
pub async fn terminals(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
) -> ApiResult<Json<api::Page<api::TerminalListed>>> {
    let rows = state.store.terminals_of(&caller.merchant_id).await?;
    let data = rows
        .into_iter()
        .filter(|t| caller.terminal_id.as_ref().is_none_or(|own| *own == t.id))
        .map(|t| api::TerminalListed { id: t.id, name: t.name, created_at: t.created_at })
        .collect();
    Ok(Json(api::Page { data, next_cursor: None }))
}

/// `GET /v1/merchant/settlements`: what was paid out (or carried forward) per business
/// day, newest first. A manager's or the owner's key.
#[utoipa::path(
    operation_id = "desk_settlements",
    get,
    path = "/v1/merchant/settlements",
    tag = "merchant",
    summary = "What was paid out per business day.",
    params(api::LimitQuery),
    responses((status = 200, description = "settlements, newest first", body = api::Page<api::MerchantSettlement>)),
    security(("merchant_signature" = [])),
)]
pub async fn settlements(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiQuery(q): ApiQuery<api::LimitQuery>,
) -> ApiResult<Json<api::Page<api::MerchantSettlement>>> {
    caller.require_merchant_key()?;
    let rows = state.store.settlements_recent(&caller.merchant_id, limit_of(q.limit, 30)?).await?;
    let data = rows
        .into_iter()
        .map(|s| api::MerchantSettlement {
            status: if s.amount > 0 { "paid_out" } else { "carried" }.to_string(),
            business_date: s.business_date,
            currency: s.currency,
            amount: s.amount,
            carried: s.carried,
            created_at: s.created_at,
        })
        .collect();
    Ok(Json(api::Page { data, next_cursor: None }))
}

/// `GET /v1/merchant/reports/sales?days=7`: the payments paid in the last `days` business
/// days (1-31, today included, in the merchant's time zone) by hour, day, terminal and
/// product, with fees, refunds and net. A manager's or the owner's key.
#[utoipa::path(
    operation_id = "desk_sales_report",
    get,
    path = "/v1/merchant/reports/sales",
    tag = "merchant",
    summary = "The sales report.",
    params(api::SalesReportQuery),
    responses((status = 200, description = "sales by hour, day, terminal and product", body = api::SalesReport)),
    security(("merchant_signature" = [])),
)]
pub async fn sales_report(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiQuery(q): ApiQuery<api::SalesReportQuery>,
) -> ApiResult<Json<api::SalesReport>> {
    caller.require_merchant_key()?;
    let days = q.days.unwrap_or(7);
    if !(1..=31).contains(&days) {
        return Err(ApiError::invalid("days", "days must be 1-31"));
    }
    let m =
        state.store.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let tz = crate::bills::merchant_tz(&m)?;
    let (t, _) = now();
    let today = t.with_timezone(&tz).date_naive();
    let first = today - chrono::Duration::days(days - 1);
    let dates: Vec<String> =
        (0..days).map(|i| (first + chrono::Duration::days(i)).format("%Y-%m-%d").to_string()).collect();
    let start = crate::bills::business_day(&dates[0], tz)?.from;
    let paid = state
        .store
        .paid_between(&m.id, &start, &rfc3339(t + chrono::Duration::seconds(1)), REPORT_PAYMENTS_MAX)
        .await?;
    let names: std::collections::HashMap<String, String> =
        state.store.terminals_of(&m.id).await?.into_iter().map(|t| (t.id, t.name)).collect();
    let sales = paid.iter().map(|p| sale_of(p, &tz, &names)).collect::<Result<Vec<Sale>, _>>()?;
    Ok(Json(api::SalesReport {
        report: report::report(&sales, &dates).into(),
        currency: m.currency,
        timezone: m.timezone,
        days: dates,
        truncated: paid.len() as i64 >= REPORT_PAYMENTS_MAX,
    }))
}

/// A paid payment as the sales report counts it, in the merchant's time zone: by its
/// lines, or as one line of its subject when it was sold without any. A paid payment
/// without a readable payment time is corrupt, never left out of the figures.
fn sale_of(
    p: &saoma_core::payment::Payment,
    tz: &chrono_tz::Tz,
    names: &std::collections::HashMap<String, String>,
) -> Result<Sale, StoreError> {
    let at = p
        .paid_at
        .as_deref()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("paid payment {} has no payment time", p.id)))?
        .with_timezone(tz);
    let items = views::items(p)?;
    let lines = if items.is_empty() {
        vec![(String::new(), p.subject.clone(), 1, p.amount.amount_minor())]
    } else {
        items
            .into_iter()
            .map(|i| (i.sku.unwrap_or_else(|| i.name.clone()), i.name, i.quantity, i.unit_amount))
            .collect()
    };
    Ok(Sale {
        hour: at.hour(),
        day: format!("{:04}-{:02}-{:02}", at.year(), at.month(), at.day()),
        terminal: p.terminal_id.as_ref().map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone())),
        amount: p.amount.amount_minor(),
        fee: p.fee.amount_minor(),
        refunded: p.refunded.amount_minor(),
        fee_returned: p.fee_returned.amount_minor(),
        lines,
    })
}

/// `GET /v1/admin/merchants?status=pending_review`: the review queue (any operator).
#[utoipa::path(
    operation_id = "desk_merchants",
    get,
    path = "/v1/admin/merchants",
    tag = "admin",
    summary = "The merchants (the review queue).",
    params(api::MerchantsQuery),
    responses((status = 200, description = "a page of merchants with their applications", body = api::Page<api::MerchantListed>)),
    security(("operator_token" = [])),
)]
pub async fn merchants(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<api::MerchantsQuery>,
) -> ApiResult<Json<api::Page<api::MerchantListed>>> {
    let limit = limit_of(q.limit, 50)?;
    let rows = state.store.merchants_page(q.status.as_deref(), q.cursor.as_deref(), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let mut data = Vec::new();
    for m in rows.iter().take(limit as usize) {
        let application = state.store.application(&m.id).await?.map(|a| api::ApplicationSummary {
            legal_name: a.legal_name,
            licence_number: a.licence_number,
            owner_name: a.owner_name,
            status: a.status,
            reason: a.reason,
            submitted_at: a.submitted_at,
        });
        data.push(api::MerchantListed { merchant: views::merchant(m)?, application });
    }
    let next_cursor = if more { rows.get(limit as usize - 1).map(|m| m.id.clone()) } else { None };
    Ok(Json(api::Page { data, next_cursor }))
}

/// `GET /v1/admin/customers?q=`: customers by phone, name or id, with balances (any
/// operator).
#[utoipa::path(
    operation_id = "desk_customers",
    get,
    path = "/v1/admin/customers",
    tag = "admin",
    summary = "Customers by phone, name or id.",
    params(api::CustomersQuery),
    responses((status = 200, description = "a page of customers with balances", body = api::Page<api::CustomerListed>)),
    security(("operator_token" = [])),
)]
pub async fn customers(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<api::CustomersQuery>,
) -> ApiResult<Json<api::Page<api::CustomerListed>>> {
    let limit = limit_of(q.limit, 50)?;
    let query = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let rows = state.store.customers_page(query, q.cursor.as_deref(), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let next_cursor = if more { rows.get(limit as usize - 1).map(|c| c.id.clone()) } else { None };
    let mut data = Vec::new();
    for c in rows.into_iter().take(limit as usize) {
        let balances = state
            .store
            .balances(&c.id)
            .await?
            .into_iter()
            .map(|b| api::Balance { currency: b.currency, available: b.balance })
            .collect();
        data.push(api::CustomerListed { customer: views::customer(c), balances });
    }
    Ok(Json(api::Page { data, next_cursor }))
}

/// `GET /v1/admin/audit`: the newest audit records (auditor or admin).
#[utoipa::path(
    operation_id = "desk_audit",
    get,
    path = "/v1/admin/audit",
    tag = "admin",
    summary = "The audit log.",
    params(api::AuditQuery),
    responses((status = 200, description = "a page of audit records, newest first", body = api::AuditPage)),
    security(("operator_token" = [])),
)]
pub async fn audit(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<api::AuditQuery>,
) -> ApiResult<Json<api::AuditPage>> {
    let limit = limit_of(q.limit, 50)?;
    let rows = state.store.audit_page(q.cursor, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    // A detail that does not parse is a damaged record: an error, not an empty detail.
    let data = rows
        .iter()
        .take(limit as usize)
        .map(|r| {
            let detail = serde_json::from_str::<Value>(&r.detail).map_err(|e| {
                ApiError::internal(format!("audit record {} has a damaged detail: {e}", r.seq))
            })?;
            Ok(api::AuditEntry {
                seq: r.seq,
                actor: r.actor.clone(),
                action: r.action.clone(),
                object_id: r.object_id.clone(),
                detail,
                created_at: r.created_at.clone(),
                chain: r.chain,
                chain_seq: r.chain_seq,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let next_cursor = if more { data.last().map(|r| r.seq) } else { None };
    Ok(Json(api::AuditPage { data, next_cursor }))
}
