//! The merchant's payment API: create (both QR modes), query with long-poll, cancel
//! (the POS's reversal), refund. Each operation is one database transaction.
//!
//! Here: what the operations share (conflict retries, events, closing, the caller's
//! merchant, the answer). [`create`] makes and charges payments, [`query`] finds them
//! (and closes the overdue), [`reversal`] cancels and refunds them.

mod create;
mod query;
mod reversal;

pub use create::*;
pub use query::*;
pub use reversal::*;

use crate::audit::Audit;
use crate::auth::MerchantCaller;
use crate::charge::{self, Charge, OnDecline, Payee};
use crate::codes;
use crate::error::{ApiError, ApiResult};
use crate::guesses;
use crate::json::{ApiJson, ApiQuery};
use crate::page;
use crate::risk;
use crate::util::{new_id, now, rfc3339, sha256_hex};
use crate::work::{Effect, Work};
use crate::{AppState, views};
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use saoma_api as api;
use saoma_api::ErrorCode;
use saoma_core::ids::prefix;
use saoma_core::ledger;
use saoma_core::money::{Currency, Money};
use saoma_core::payment::{self, Order, Payment, PaymentMode, PaymentStatus, PinProof, RefundError};
use saoma_core::risk::{Decline, Rules};
use saoma_store::{AuditRecord, CustomerRow, MerchantRow, NewEvent, RefundRow, StoreError, WriteTx};
use serde_json::json;
use std::time::Duration;

/// How long a dynamic code or an unconfirmed payment waits by default.
const PENDING_TTL_SECONDS: i64 = 15 * 60;
/// How often a unique-key race is retried before giving up.
const CONFLICT_RETRIES: usize = 5;

/// Runs an operation again when a concurrent writer inserted the same key first; the next
/// attempt then finds that row and answers as an idempotent retry.
pub async fn retry_on_conflict<T, F, Fut>(mut op: F) -> ApiResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, OpError>>,
{
    for _ in 0..CONFLICT_RETRIES {
        let mark = saoma_store::unsettled();
        match op().await {
            // A concurrent writer won the race (a key inserted, or a deadlock PostgreSQL
            // broke by rolling this attempt back): the next attempt sees what it wrote.
            Err(OpError::Store(StoreError::UniqueViolation | StoreError::Deadlock)) => {
                // With group commit the winner may sit in the open batch: the next attempt
                // reads afresh once that batch has ended, so how it ended does not matter.
                // Only this attempt's reads: a failure of an earlier read of the request
                // stays for the request's own `settled` to report.
                let _ = saoma_store::settle_after(mark).await;
                continue;
            }
            Err(OpError::Store(e)) => return Err(e.into()),
            Err(OpError::Api(e)) => return Err(e),
            Ok(v) => return Ok(v),
        }
    }
    Err(ApiError::new(
        ErrorCode::ConcurrentRequest,
        "a concurrent request with the same key is in flight; retry",
    ))
}

/// An error inside a service: an answer for the client, or a store failure to classify.
pub enum OpError {
    Api(ApiError),
    Store(StoreError),
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::Store(e)
    }
}

impl From<ApiError> for OpError {
    fn from(e: ApiError) -> Self {
        OpError::Api(e)
    }
}

/// The customer's opaque handle for one merchant: HMAC of both ids under a platform key.
pub fn customer_ref(state: &AppState, merchant_id: &str, customer_id: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&state.keys.customer_ref_key)
        .expect("HMAC takes a key of any length");
    mac.update(merchant_id.as_bytes());
    mac.update(b"/");
    mac.update(customer_id.as_bytes());
    format!("cref_{}", &hex::encode(mac.finalize().into_bytes())[..24])
}

/// Parses a currency code of a request.
pub fn currency_of(code: &str) -> ApiResult<Currency> {
    Currency::from_code(code)
        .ok_or_else(|| ApiError::invalid("currency", format!("unknown currency {code:?}")))
}

/// Checks an amount of a request: greater than zero, at most 10^12.
pub fn money_of(amount: i64, currency: Currency) -> ApiResult<Money> {
    Money::positive(amount, currency).map_err(|e| ApiError::invalid("amount", e.to_string()))
}

/// Queues an outbox event in `tx`, and its webhook delivery when the merchant has an
/// endpoint; both are announced only once `tx` commits. `terminal_id` is the till whose
/// payment it is about: that till's key sees it in its live feed, other tills' keys do not.
pub async fn emit(
    tx: &mut WriteTx,
    kind: &str,
    (merchant_id, terminal_id): (Option<&str>, Option<&str>),
    customer_id: Option<&str>,
    // The event's object, free-form by kind (see `saoma_api::Event::data`).
    data: serde_json::Value,
    now: &str,
) -> Result<(), StoreError> {
    let id = new_id(prefix::EVENT);
    if let Some(merchant_id) = merchant_id {
        // The webhook body is the feed's event.
        let event = saoma_api::Event {
            id: id.clone(),
            kind: kind.into(),
            created_at: now.into(),
            data: data.clone(),
        };
        let body =
            serde_json::to_string(&event).expect("an event of strings and a JSON value always serialises");
        tx.queue_delivery(&id, merchant_id, kind, &body, now).await?;
    }
    tx.insert_event(&NewEvent { id: &id, merchant_id, terminal_id, customer_id, kind, data }, now).await
}

/// Closes a pending payment inside `work` (cancelled or expired).
pub(crate) async fn close(
    work: &mut Work,
    p: &mut Payment,
    actor: &str,
    reason: &str,
    now: &str,
) -> Result<(), OpError> {
    let before = p.status();
    p.close().map_err(|e| ApiError::new(ErrorCode::PaymentNotPending, e.to_string()))?;
    work.update_payment(p).await?;
    let data = serde_json::to_value(views::payment(p, None)?).map_err(ApiError::internal)?;
    let scope = (Some(p.merchant_id.as_str()), p.terminal_id.as_deref());
    emit(work, "payment.closed", scope, p.customer_id.as_deref(), data, now).await?;
    let audit = AuditRecord {
        actor,
        action: "payment.close",
        object_id: &p.id,
        detail: json!({"reason": reason, "before": {"status": before.as_str()},
            "after": {"status": p.status().as_str()}}),
    };
    work.audit(&audit, now).await?;
    Ok(())
}

/// Checks a client's idempotency key (`out_trade_no`, `out_refund_no`, `client_ref`).
pub fn client_key(param: &'static str, value: &str) -> ApiResult<()> {
    if !payment::valid_out_trade_no(value) {
        return Err(ApiError::invalid(param, format!("{param} must be 1-64 of [A-Za-z0-9_-]")));
    }
    Ok(())
}

/// Loads the caller's merchant and checks it may take payments.
pub async fn active_merchant(state: &AppState, merchant_id: &str) -> ApiResult<MerchantRow> {
    let m = state.store.merchant(merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    active(m)
}

/// The caller's merchant, as read with its key when it was, if it may take payments.
async fn callers_merchant(state: &AppState, caller: &MerchantCaller) -> ApiResult<MerchantRow> {
    match &caller.merchant {
        Some(m) if m.id == caller.merchant_id => active(m.clone()),
        _ => active_merchant(state, &caller.merchant_id).await,
    }
}

/// `m` if it may take payments.
pub fn active(m: MerchantRow) -> ApiResult<MerchantRow> {
    if m.status != "active" {
        return Err(ApiError::forbidden("merchant is not active").with_code(ErrorCode::MerchantInactive));
    }
    Ok(m)
}

fn answer(state: &AppState, p: &Payment, merchant: &MerchantRow) -> Response {
    match (p.status(), p.failure_code()) {
        (PaymentStatus::Failed, Some(code)) => ApiError::declined(code, Some(p.id.clone())).into_response(),
        _ => match views::payment(p, Some((merchant, &state.qr_seed()))) {
            Ok(view) => Json(view).into_response(),
            Err(e) => ApiError::from(e).into_response(),
        },
    }
}

/// Finds a payment the caller may see: another merchant's is "not found", another
/// terminal's is forbidden to a terminal key.
pub(crate) fn visible(caller: &MerchantCaller, p: Option<Payment>) -> ApiResult<Payment> {
    let p =
        p.filter(|p| p.merchant_id == caller.merchant_id).ok_or_else(|| ApiError::not_found("payment"))?;
    if let Some(t) = &caller.terminal_id
        && p.terminal_id.as_deref() != Some(t.as_str())
    {
        return Err(ApiError::forbidden("this payment belongs to another terminal"));
    }
    Ok(p)
}

/// True when a pending payment's time is up.
pub(crate) fn due(p: &Payment, now: &str) -> bool {
    p.status() == PaymentStatus::Pending && p.expires_at.as_deref().is_some_and(|e| e <= now)
}

/// An operation's error as the client's answer.
fn op_error(e: OpError) -> ApiError {
    match e {
        OpError::Api(e) => e,
        OpError::Store(e) => e.into(),
    }
}
