//! Settlement (each merchant's net payable of a finished business day paid out: one ledger
//! entry per merchant, idempotent per day, a negative balance carried forward) and
//! reconciliation (payments, ledger, statements and settlements compared, every
//! difference named).

use crate::AppState;
use crate::audit::Audit;
use crate::auth::Operator;
use crate::bills::{self, BusinessDay};
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiQuery};
use crate::page;
use crate::util::{new_id, now};
use axum::Json;
use axum::extract::{Extension, Path, State};
use saoma_api::{self as api, ErrorCode, SettlementOutcome};
use saoma_core::ledger;
use saoma_core::money::Money;
use saoma_core::statement;
use saoma_store::{AuditRecord, MerchantRow, SettlementRow, StoreError, WriteTx};
use serde_json::{Value, json};

/// `POST /v1/admin/settlements` `{date}`: settles that business day for every merchant.
#[utoipa::path(
    operation_id = "settlement_settle",
    post,
    path = "/v1/admin/settlements",
    tag = "admin",
    summary = "Settles a business day for every merchant.",
    request_body = api::SettleRequest,
    responses((status = 200, description = "the settlements of that day", body = api::SettlementRun), (status = 409, description = "error")),
    security(("operator_token" = [])),
)]
pub async fn settle(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    ApiJson(req): ApiJson<api::SettleRequest>,
) -> ApiResult<Json<api::SettlementRun>> {
    bills::business_day(&req.date, chrono_tz::UTC)?;
    let mut settlements = Vec::new();
    for m in state.store.merchants().await?.iter().filter(|m| ever_paid(m)) {
        settlements.push(settle_merchant(&state, m, &req.date, &op.id).await?);
    }
    // The settlements' audit records are anchored at once.
    crate::audit::checkpoint(&state.store, &state.keys.sealer).await?;
    state.committed();
    Ok(Json(api::SettlementRun { date: req.date, settlements }))
}

/// `GET /v1/admin/settlements/{date}`: the settlement report of a day.
#[utoipa::path(
    operation_id = "settlement_report",
    get,
    path = "/v1/admin/settlements/{date}",
    tag = "admin",
    summary = "The settlements of a business day.",
    params(("date" = String, Path, description = "the business day, `YYYY-MM-DD`"), saoma_api::PageQuery),
    responses((status = 200, description = "the settlements of that day", body = api::SettlementReport)),
    security(("operator_token" = [])),
)]
pub async fn report(
    State(state): State<AppState>,
    Path(date): Path<String>,
    ApiQuery(q): ApiQuery<saoma_api::PageQuery>,
) -> ApiResult<Json<api::SettlementReport>> {
    bills::business_day(&date, chrono_tz::UTC)?;
    let limit = page::limit(q.limit, page::LIMIT_MAX)?;
    let after = REPORT.read::<1>(q.cursor.as_deref())?.map(|[id]| id);
    let rows = state.store.settlements_on(&date, after.as_deref(), limit + 1).await?;
    let (rows, next_cursor) = REPORT.page(rows, limit, |(s, _)| vec![s.id.as_str()])?;
    let settlements = rows.iter().map(|(s, name)| view(name, s, SettlementOutcome::Settled)).collect();
    Ok(Json(api::SettlementReport { date, settlements, next_cursor }))
}

/// The settlement report's cursor: the id of the last settlement shown.
const REPORT: page::Cursor = page::Cursor::of("settlements");

fn view(merchant_name: &str, s: &SettlementRow, outcome: SettlementOutcome) -> api::SettlementLine {
    api::SettlementLine {
        settlement_id: s.id.clone(),
        merchant_id: s.merchant_id.clone(),
        merchant_name: merchant_name.to_string(),
        currency: s.currency.clone(),
        amount: s.amount,
        carried: s.carried,
        entry_id: s.entry_id.clone(),
        outcome,
    }
}

/// A merchant that may hold money: one that has passed review (active or suspended since).
fn ever_paid(m: &MerchantRow) -> bool {
    !matches!(m.status.as_str(), "pending_review" | "rejected")
}

/// Settles one merchant's day; `actor` is the operator, or `system` for the daily job.
async fn settle_merchant(
    state: &AppState,
    m: &MerchantRow,
    date: &str,
    actor: &str,
) -> ApiResult<api::SettlementLine> {
    let day = bills::business_day(date, bills::merchant_tz(m)?)?;
    if day.end > chrono::Utc::now() && !state.config.settle_open_days {
        return Err(ApiError::new(
            ErrorCode::BusinessDayOpen,
            format!("{date} is not over yet for {}", m.id),
        ));
    }
    let existing = state.store.settlements_of(&m.id, date).await?;
    if let Some(s) = existing.first() {
        return Ok(view(&m.name, s, SettlementOutcome::AlreadySettled));
    }
    let currency = crate::views::merchant_currency(m)?;
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    if let Some(last) = tx.last_settled_date(&m.id).await?
        && last.as_str() > date
    {
        return Err(ApiError::new(
            ErrorCode::SettlementOutOfOrder,
            format!("{} is settled up to {last}", m.id),
        ));
    }
    let owed =
        tx.payable_before(&m.id, &m.currency, &day.to).await? - tx.settled_total(&m.id, &m.currency).await?;
    let id = new_id("stl_");
    let entry_id = if owed > 0 {
        let entry = ledger::settlement_entry(&m.id, Money::new(owed, currency))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let entry_id = new_id(saoma_core::ids::prefix::ENTRY);
        tx.post_entry(&entry_id, "settlement", &id, &entry, &now).await?;
        Some(entry_id)
    } else {
        None
    };
    let s = SettlementRow {
        id: id.clone(),
        merchant_id: m.id.clone(),
        business_date: date.to_string(),
        currency: m.currency.clone(),
        amount: owed.max(0),
        carried: owed.min(0),
        entry_id,
        created_at: now.clone(),
    };
    let audit = AuditRecord {
        actor,
        action: "settlement.create",
        object_id: &id,
        detail: json!({"merchant_id": m.id, "date": date, "amount": s.amount, "carried": s.carried}),
    };
    match save(tx, &s, &audit, &now).await {
        Ok(()) => {
            let outcome = if s.amount > 0 { SettlementOutcome::Paid } else { SettlementOutcome::Carried };
            Ok(view(&m.name, &s, outcome))
        }
        // Another request (on this node or another) settled the same day at the same
        // moment: report theirs.
        Err(StoreError::UniqueViolation) => {
            // Theirs may sit in this node's open group commit: read it once committed.
            saoma_store::settle().await?;
            let theirs = state.store.settlements_of(&m.id, date).await?;
            theirs
                .first()
                .map(|s| view(&m.name, s, SettlementOutcome::AlreadySettled))
                .ok_or_else(|| ApiError::internal("settlement race"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Records a settlement, its audit record, and commits; the unique key on merchant, day
/// and currency refuses a second settlement of the day ([`StoreError::UniqueViolation`]),
/// at the insert or at the commit. The transaction is dropped on failure.
async fn save(
    mut tx: WriteTx,
    s: &SettlementRow,
    audit: &AuditRecord<'_>,
    now: &str,
) -> Result<(), StoreError> {
    tx.insert_settlement(s).await?;
    tx.audit(audit, now).await?;
    tx.commit().await
}

/// Settles yesterday (in each merchant's zone) every ten minutes, so no day is forgotten.
pub fn spawn_daily(state: AppState) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => {}
                _ = state.stopping() => return,
            }
            let Ok(merchants) = state.store.merchants().await else { continue };
            for m in merchants.iter().filter(|m| ever_paid(m)) {
                let tz = match bills::merchant_tz(m) {
                    Ok(tz) => tz,
                    Err(e) => {
                        tracing::error!(merchant = %m.id, error = %e, "Daily settlement skipped the merchant.");
                        continue;
                    }
                };
                let yesterday =
                    (chrono::Utc::now().with_timezone(&tz).date_naive() - chrono::Days::new(1)).to_string();
                let (settled, confirmed) =
                    saoma_store::settled(settle_merchant(&state, m, &yesterday, "system")).await;
                if let Err(e) = settled.and_then(|_| confirmed.map_err(ApiError::from)) {
                    tracing::warn!(merchant = %m.id, date = %yesterday, error = %e.message, "Daily settlement failed.");
                }
            }
            if let Err(e) = crate::audit::checkpoint(&state.store, &state.keys.sealer).await {
                tracing::error!(error = %e, "Could not sign an audit checkpoint after settlement.");
            }
        }
    });
}

/// `GET /v1/admin/reconciliation/{date}`: every difference between payments, ledger,
/// statements and settlements for that business day; none means all agree.
#[utoipa::path(
    operation_id = "settlement_reconcile",
    get,
    path = "/v1/admin/reconciliation/{date}",
    tag = "admin",
    summary = "Reconciles a business day.",
    params(("date" = String, Path, description = "the business day, `YYYY-MM-DD`")),
    responses((status = 200, description = "what differs between ledger, payments and statements", body = api::Reconciliation)),
    security(("operator_token" = [])),
)]
pub async fn reconcile(
    State(state): State<AppState>,
    Path(date): Path<String>,
) -> ApiResult<Json<api::Reconciliation>> {
    bills::business_day(&date, chrono_tz::UTC)?;
    let mut differences = Vec::new();
    let mut diff = |merchant: Option<&str>, what: String, expected: Value, found: Value| {
        differences.push(api::Difference {
            merchant_id: merchant.map(str::to_string),
            what,
            expected,
            found,
        });
    };
    let (mut payments, mut refunds, mut widest) = (0, 0, (String::from("9"), String::new()));
    for m in state.store.merchants().await? {
        let day: BusinessDay = bills::business_day(&date, bills::merchant_tz(&m)?)?;
        widest = (widest.0.min(day.from.clone()), widest.1.max(day.to.clone()));
        let lines = bills::lines(&state.store, &m.id, &day).await?;
        // Each line against its own journal entry.
        for l in &lines {
            if l.kind == "payment" {
                payments += 1
            } else {
                refunds += 1
            }
            let expected = vec![
                (l.kind.to_string(), "customer_wallet".to_string(), -l.amount),
                (l.kind.to_string(), "fee_revenue".to_string(), l.fee),
                (l.kind.to_string(), "merchant_payable".to_string(), l.net()),
            ];
            let mut found = state.store.entries_for(&l.id).await?;
            found.retain(|(kind, _, _)| kind == l.kind);
            let found: Vec<_> = found.into_iter().filter(|(_, _, v)| *v != 0).collect();
            let expected: Vec<_> = expected.into_iter().filter(|(_, _, v)| *v != 0).collect();
            if found != expected {
                diff(
                    Some(&m.id),
                    format!("{} {} does not match its ledger entry", l.kind, l.id),
                    json!(expected),
                    json!(found),
                );
            }
        }
        // The statement's totals against the ledger's payable movement.
        let totals = statement::totals(&lines);
        let movement = state.store.payable_movement(&m.id, &day.from, &day.to).await?;
        let mut codes: Vec<&str> = totals.keys().copied().collect();
        codes.extend(movement.iter().map(|s| s.currency.as_str()));
        codes.sort();
        codes.dedup();
        for code in codes {
            let stated = totals.get(code).map_or(0, |t| t.net);
            let ledgered = movement.iter().find(|s| s.currency == code).map_or(0, |s| s.total);
            if stated != ledgered {
                diff(
                    Some(&m.id),
                    format!("statement net in {code} differs from the ledger"),
                    json!(ledgered),
                    json!(stated),
                );
            }
        }
        // The day's settlement against its ledger entry.
        for s in state.store.settlements_of(&m.id, &date).await? {
            let found = state.store.entries_for(&s.id).await?;
            let expected: Vec<(String, String, i64)> = if s.amount > 0 {
                vec![
                    ("settlement".into(), "merchant_payable".into(), -s.amount),
                    ("settlement".into(), "settlement".into(), s.amount),
                ]
            } else {
                vec![]
            };
            if found != expected {
                diff(
                    Some(&m.id),
                    format!("settlement {} does not match its ledger entry", s.id),
                    json!(expected),
                    json!(found),
                );
            }
        }
    }
    // Money that moved without its payment or refund.
    if !widest.1.is_empty() {
        for (entry, kind, ref_id) in state.store.orphan_entries(&widest.0, &widest.1).await? {
            diff(None, format!("{kind} entry {entry} has no {kind} {ref_id}"), json!(ref_id), Value::Null);
        }
    }
    for account in state.store.accounts_out_of_step().await? {
        diff(
            None,
            format!("account {account}'s balance differs from its postings"),
            Value::Null,
            json!(account),
        );
    }
    for tb in state.store.trial_balance().await? {
        if tb.debits != tb.credits {
            diff(
                None,
                format!("trial balance in {} is off", tb.currency),
                json!(tb.debits),
                json!(tb.credits),
            );
        }
    }
    Ok(Json(api::Reconciliation {
        date,
        balanced: differences.is_empty(),
        differences,
        checked: api::ReconciliationChecked { payments, refunds },
    }))
}
