//! The merchant's payment API: create (both QR modes), query with long-poll, cancel
//! (the POS's reversal), refund. Each operation is one database transaction.

use crate::audit::Audit;
use crate::auth::MerchantCaller;
use crate::codes;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::risk;
use crate::util::{new_id, now, rfc3339, sha256_hex};
use crate::{AppState, views};
use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use saoma_api as api;
use saoma_core::ids::prefix;
use saoma_core::ledger;
use saoma_core::money::{Currency, Money};
use saoma_core::payment::{self, PaymentStatus, RefundError, RefundablePayment};
use saoma_core::risk::{Decline, Rules};
use saoma_store::{
    AuditRecord, CustomerRow, MerchantRow, NewEvent, PaymentRow, RefundRow, StoreError, WriteTx,
};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// How long a dynamic code or an unconfirmed payment waits by default.
const PENDING_TTL_SECONDS: i64 = 15 * 60;
/// How often a unique-key race is retried before giving up.
const CONFLICT_RETRIES: usize = 3;

/// Runs an operation again when a concurrent writer inserted the same key first; the next
/// attempt then finds that row and answers as an idempotent retry.
pub async fn retry_on_conflict<T, F, Fut>(mut op: F) -> ApiResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, OpError>>,
{
    for _ in 0..CONFLICT_RETRIES {
        match op().await {
            Err(OpError::Store(StoreError::UniqueViolation)) => continue,
            Err(OpError::Store(e)) => return Err(e.into()),
            Err(OpError::Api(e)) => return Err(e),
            Ok(v) => return Ok(v),
        }
    }
    Err(ApiError::conflict(
        "concurrent_request",
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
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&state.keys.customer_ref_key) else {
        return String::new();
    };
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
/// endpoint; both are announced only once `tx` commits.
pub async fn emit(
    tx: &mut WriteTx,
    kind: &str,
    merchant_id: Option<&str>,
    customer_id: Option<&str>,
    data: serde_json::Value,
    now: &str,
) -> Result<(), StoreError> {
    let id = new_id(prefix::EVENT);
    if let Some(merchant_id) = merchant_id {
        // The webhook body is the feed's: {id, type, created_at, data}.
        let body = json!({"id": id, "type": kind, "created_at": now, "data": data}).to_string();
        tx.queue_delivery(&id, merchant_id, kind, &body, now).await?;
    }
    tx.insert_event(&NewEvent { id: &id, merchant_id, customer_id, kind, data }, now).await
}

/// Who pays a charge, under which rules, and who asked for it (for the audit log).
pub struct Payer<'a> {
    pub customer: &'a CustomerRow,
    pub rules: &'a Rules,
    pub actor: &'a str,
}

/// Why a charge did not happen.
pub enum ChargeError {
    /// Declined: a short balance or a limit. Nothing of the attempt may be committed.
    Declined(Decline),
    Store(StoreError),
}

impl From<StoreError> for ChargeError {
    fn from(e: StoreError) -> Self {
        ChargeError::Store(e)
    }
}

/// Charges a pending payment to a customer inside `tx`: posts the ledger entry, checks
/// the daily limit with the wallet locked, marks the payment succeeded, issues the
/// receipt, queues the event and the audit record.
pub async fn charge(
    state: &AppState,
    tx: &mut WriteTx,
    p: &mut PaymentRow,
    merchant: &MerchantRow,
    by: &Payer<'_>,
    now: &str,
) -> Result<(), ChargeError> {
    let currency = Currency::from_code(&p.currency).ok_or_else(|| StoreError::Corrupt(p.currency.clone()))?;
    let amount = Money::new(p.amount, currency);
    let fee = payment::fee_for(amount, u32::try_from(merchant.fee_bps).unwrap_or(0));
    let customer_id = by.customer.id.as_str();
    let entry = ledger::payment_entry(customer_id, &merchant.id, amount, fee)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    match tx.post_entry(&new_id(prefix::ENTRY), "payment", &p.id, &entry, now).await {
        Err(StoreError::InsufficientFunds(_)) => {
            return Err(ChargeError::Declined(Decline::plain("insufficient_funds")));
        }
        other => other?,
    }
    risk::check_daily(tx, by.rules, by.customer, amount, &p.id).await?.map_err(ChargeError::Declined)?;
    p.status = PaymentStatus::Succeeded.as_str().to_string();
    p.fee = fee.amount_minor();
    p.customer_id = Some(customer_id.to_string());
    p.customer_ref = Some(customer_ref(state, &merchant.id, customer_id));
    p.needs_confirm = 0;
    p.paid_at = Some(now.to_string());
    crate::receipts::issue(&state.keys.sealer, tx, p, &merchant.name, None, now).await?;
    let data = serde_json::to_value(views::payment(p, None)).unwrap_or_default();
    emit(tx, "payment.succeeded", Some(&p.merchant_id), Some(customer_id), data, now).await?;
    let audit = AuditRecord {
        actor: by.actor,
        action: "payment.charge",
        object_id: &p.id,
        // What the risk rules looked at, so the approval can be explained afterwards.
        detail: json!({"amount": p.amount, "currency": p.currency, "fee": p.fee,
            "before": {"status": "pending"}, "after": {"status": p.status},
            "risk": {"rules_version": by.rules.version, "tier": by.customer.tier}}),
    };
    tx.audit(&audit, now).await?;
    metrics::counter!("saoma_payments_total", "status" => "succeeded").increment(1);
    Ok(())
}

/// Closes a pending payment inside `tx` (cancelled or expired).
async fn close(
    tx: &mut WriteTx,
    p: &mut PaymentRow,
    actor: &str,
    reason: &str,
    now: &str,
) -> Result<(), StoreError> {
    let before = std::mem::replace(&mut p.status, PaymentStatus::Closed.as_str().to_string());
    p.needs_confirm = 0;
    tx.update_payment(p).await?;
    let data = serde_json::to_value(views::payment(p, None)).unwrap_or_default();
    emit(tx, "payment.closed", Some(&p.merchant_id), p.customer_id.as_deref(), data, now).await?;
    tx.audit(
        &AuditRecord {
            actor,
            action: "payment.close",
            object_id: &p.id,
            detail: json!({"reason": reason, "before": {"status": before}, "after": {"status": p.status}}),
        },
        now,
    )
    .await
}

fn fingerprint(req: &api::CreatePaymentRequest, terminal_id: Option<&str>) -> String {
    let canonical = json!({"req": req, "terminal": terminal_id});
    sha256_hex(canonical.to_string().as_bytes())
}

/// Checks a client's idempotency key (`out_trade_no`, `out_refund_no`, `client_ref`).
pub fn client_key(param: &'static str, value: &str) -> ApiResult<()> {
    if !payment::valid_out_trade_no(value) {
        return Err(ApiError::invalid(param, format!("{param} must be 1-64 of [A-Za-z0-9_-]")));
    }
    Ok(())
}

/// When a pending payment closes by itself.
fn pending_until(t: chrono::DateTime<chrono::Utc>, expires_in: Option<i64>) -> String {
    rfc3339(t + chrono::Duration::seconds(expires_in.unwrap_or(PENDING_TTL_SECONDS)))
}

fn validate_create(req: &api::CreatePaymentRequest) -> ApiResult<Money> {
    client_key("out_trade_no", &req.out_trade_no)?;
    let subject_len = req.subject.chars().count();
    if subject_len == 0 || subject_len > 256 {
        return Err(ApiError::invalid("subject", "subject must be 1-256 characters"));
    }
    let amount = money_of(req.amount, currency_of(&req.currency)?)?;
    if let Some(items) = &req.items {
        if items.len() > 100 {
            return Err(ApiError::invalid("items", "at most 100 items"));
        }
        for item in items {
            let name_len = item.name.chars().count();
            if name_len == 0 || name_len > 256 || item.quantity == 0 || item.unit_amount < 0 {
                return Err(ApiError::invalid(
                    "items",
                    "each item needs a name (1-256), quantity ≥ 1, unit_amount ≥ 0",
                ));
            }
        }
    }
    if let Some(e) = req.expires_in
        && !(1..=86_400).contains(&e)
    {
        return Err(ApiError::invalid("expires_in", "expires_in must be 1-86400 seconds"));
    }
    Ok(amount)
}

/// Loads the caller's merchant and checks it may take payments.
pub async fn active_merchant(state: &AppState, merchant_id: &str) -> ApiResult<MerchantRow> {
    let m = state.store.merchant(merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    if m.status != "active" {
        return Err(ApiError::forbidden("merchant is not active").with_code("merchant_inactive"));
    }
    Ok(m)
}

fn answer(state: &AppState, p: &PaymentRow, merchant: &MerchantRow) -> Response {
    match (p.status.as_str(), &p.failure_code) {
        ("failed", Some(code)) => ApiError::declined(code, Some(p.id.clone())).into_response(),
        _ => Json(views::payment(p, Some((merchant, &state.qr_seed())))).into_response(),
    }
}

/// `POST /v1/payments`.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiJson(req): ApiJson<api::CreatePaymentRequest>,
) -> ApiResult<Response> {
    let amount = validate_create(&req)?;
    let merchant = active_merchant(&state, &caller.merchant_id).await?;
    if amount.currency().code() != merchant.currency {
        return Err(ApiError::invalid("currency", format!("this merchant takes {}", merchant.currency))
            .with_code("currency_mismatch"));
    }
    let fp = fingerprint(&req, caller.terminal_id.as_deref());
    let p = retry_on_conflict(|| create_once(&state, &caller, &merchant, &req, amount, &fp)).await?;
    state.committed();
    Ok(answer(&state, &p, &merchant))
}

/// What a new payment is for, before anything has happened to it.
pub struct Order<'a> {
    pub merchant_id: &'a str,
    pub terminal_id: Option<&'a str>,
    pub out_trade_no: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub subject: &'a str,
    pub items_json: String,
    pub mode: &'a str,
    /// A digest of the creating request; `None` marks an order number closed before any
    /// payment was made with it.
    pub fingerprint: Option<String>,
}

/// A new pending payment row for an order.
pub fn pending_payment(o: Order<'_>, now: &str) -> PaymentRow {
    PaymentRow {
        id: new_id(prefix::PAYMENT),
        merchant_id: o.merchant_id.to_string(),
        terminal_id: o.terminal_id.map(str::to_string),
        out_trade_no: o.out_trade_no.to_string(),
        amount: o.amount,
        currency: o.currency.to_string(),
        subject: o.subject.to_string(),
        items: o.items_json,
        mode: o.mode.to_string(),
        status: "pending".into(),
        failure_code: None,
        refunded_amount: 0,
        fee: 0,
        fee_returned: 0,
        customer_id: None,
        customer_ref: None,
        fingerprint: o.fingerprint,
        qr_ref: None,
        needs_confirm: 0,
        created_at: now.to_string(),
        paid_at: None,
        expires_at: None,
    }
}

fn new_payment(
    caller: &MerchantCaller,
    req: &api::CreatePaymentRequest,
    fp: &str,
    mode: &str,
    now: &str,
) -> PaymentRow {
    let items: &[api::Item] = req.items.as_deref().unwrap_or_default();
    let order = Order {
        merchant_id: &caller.merchant_id,
        terminal_id: caller.terminal_id.as_deref(),
        out_trade_no: &req.out_trade_no,
        amount: req.amount,
        currency: &req.currency,
        subject: &req.subject,
        items_json: serde_json::to_string(items).unwrap_or_else(|_| "[]".into()),
        mode,
        fingerprint: Some(fp.to_string()),
    };
    pending_payment(order, now)
}

async fn existing_or_none(
    tx: &mut WriteTx,
    merchant_id: &str,
    otn: &str,
    fp: &str,
) -> Result<Option<PaymentRow>, OpError> {
    match tx.payment_by_trade_no(merchant_id, otn).await? {
        None => Ok(None),
        Some(p) if p.fingerprint.is_none() => Err(ApiError::conflict(
            "payment_closed",
            "this out_trade_no was cancelled before it was charged; use a new one",
        )
        .into()),
        Some(p) if p.fingerprint.as_deref() != Some(fp) => Err(ApiError::conflict(
            "idempotency_conflict",
            "out_trade_no was already used with other parameters",
        )
        .into()),
        Some(p) => Ok(Some(p)),
    }
}

async fn create_once(
    state: &AppState,
    caller: &MerchantCaller,
    merchant: &MerchantRow,
    req: &api::CreatePaymentRequest,
    amount: Money,
    fp: &str,
) -> Result<PaymentRow, OpError> {
    let (t, now) = now();
    let mut tx = state.store.begin().await?;
    if let Some(p) = existing_or_none(&mut tx, &merchant.id, &req.out_trade_no, fp).await? {
        return Ok(p);
    }
    let actor = caller.key_id.as_str();
    let Some(code) = &req.payment_code else {
        // Merchant-presented: a dynamic code the customer scans.
        let mut p = new_payment(caller, req, fp, "mpm", &now);
        p.qr_ref = Some(ulid::Ulid::new().to_string().chars().skip(6).collect());
        p.expires_at = Some(pending_until(t, req.expires_in));
        tx.insert_payment(&p).await?;
        tx.audit(
            &AuditRecord {
                actor,
                action: "payment.create",
                object_id: &p.id,
                detail: json!({"mode": "mpm", "amount": p.amount}),
            },
            &now,
        )
        .await?;
        tx.commit().await?;
        return Ok(p);
    };
    // Consumer-presented: the POS scanned the customer's code.
    let rules = risk::rules(state).await?;
    let mut p = new_payment(caller, req, fp, "cpm", &now);
    let till = caller.terminal_id.as_deref().unwrap_or(actor);
    if let Some(terminal) = &caller.terminal_id
        && let Err(d) = risk::check_terminal(state, &rules, terminal, t).await?
    {
        return record_decline(tx, p, &d, till, &rules).await;
    }
    let (customer, code_hash) = match payer(state, &mut tx, code, &now, t.timestamp()).await? {
        Err(failure) => return record_decline(tx, p, &Decline::plain(failure), till, &rules).await,
        Ok(found) => found,
    };
    p.customer_id = Some(customer.id.clone());
    if let Err(d) = risk::check_wallet(state, &rules, &customer, amount, true).await? {
        return record_decline(tx, p, &d, &customer.id, &rules).await;
    }
    if rules.needs_pin(amount.amount_minor(), amount.currency()) {
        // Over the password-free limit: the customer confirms with the PIN in the wallet.
        p.needs_confirm = 1;
        p.customer_ref = Some(customer_ref(state, &merchant.id, &customer.id));
        p.expires_at = Some(pending_until(t, req.expires_in));
        tx.insert_payment(&p).await?;
        tx.commit().await?;
        return Ok(p);
    }
    let by = Payer { customer: &customer, rules: &rules, actor };
    match charge(state, &mut tx, &mut p, merchant, &by, &now).await {
        Ok(()) => {
            tx.insert_payment(&p).await?;
            tx.commit().await?;
            Ok(p)
        }
        Err(ChargeError::Declined(d)) => {
            // Nothing of the attempt lands; the decline is recorded in a transaction of its own.
            drop(tx);
            let mut tx = state.store.begin().await?;
            if let Some(p) = existing_or_none(&mut tx, &merchant.id, &req.out_trade_no, fp).await? {
                return Ok(p);
            }
            tx.mark_code_used(&code_hash, &now).await?;
            let mut p = new_payment(caller, req, fp, "cpm", &now);
            p.customer_id = Some(customer.id.clone());
            record_decline(tx, p, &d, &customer.id, &rules).await
        }
        Err(ChargeError::Store(e)) => Err(e.into()),
    }
}

/// Finds who pays with a scanned code, consuming the code inside `tx`. `Ok(Err(code))`
/// is a decline; `Ok(Ok(..))` is the customer and the code's hash.
async fn payer(
    state: &AppState,
    tx: &mut WriteTx,
    code: &str,
    now: &str,
    now_unix: i64,
) -> Result<Result<(CustomerRow, String), &'static str>, OpError> {
    let resolved = match codes::resolve(state, code, now, now_unix).await? {
        Err(failure) => return Ok(Err(failure)),
        Ok(r) => r,
    };
    if !tx.mark_code_used(&resolved.code_hash, now).await? {
        return Ok(Err("payment_code_used"));
    }
    let customer = tx
        .customer(&resolved.customer_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("code without customer".into()))?;
    Ok(Ok((customer, resolved.code_hash)))
}

/// Records a payment as declined, keeps why (`subject`: whom the rule looked at), and
/// commits.
async fn record_decline(
    mut tx: WriteTx,
    mut p: PaymentRow,
    d: &Decline,
    subject: &str,
    rules: &Rules,
) -> Result<PaymentRow, OpError> {
    p.status = PaymentStatus::Failed.as_str().to_string();
    p.failure_code = Some(d.code.to_string());
    tx.insert_payment(&p).await?;
    tx.insert_risk_decision(&risk::decision(d, subject, Some(&p.id), rules, &p.created_at)).await?;
    tx.commit().await?;
    metrics::counter!("saoma_payments_total", "status" => "failed").increment(1);
    Ok(p)
}

/// Finds a payment the caller may see: another merchant's is "not found", another
/// terminal's is forbidden to a terminal key.
pub(crate) fn visible(caller: &MerchantCaller, p: Option<PaymentRow>) -> ApiResult<PaymentRow> {
    let p =
        p.filter(|p| p.merchant_id == caller.merchant_id).ok_or_else(|| ApiError::not_found("payment"))?;
    if let Some(t) = &caller.terminal_id
        && p.terminal_id.as_deref() != Some(t.as_str())
    {
        return Err(ApiError::forbidden("this payment belongs to another terminal"));
    }
    Ok(p)
}

/// Closes a pending payment whose time is up, and returns it as it now stands.
async fn expire_if_due(state: &AppState, p: PaymentRow) -> ApiResult<PaymentRow> {
    let (_, now) = now();
    let due = p.status == "pending" && p.expires_at.as_deref().is_some_and(|e| e <= now.as_str());
    if !due {
        return Ok(p);
    }
    let mut tx = state.store.begin().await?;
    let Some(mut fresh) = tx.payment(&p.id).await? else { return Ok(p) };
    if fresh.status == "pending" {
        close(&mut tx, &mut fresh, "system", "expired", &now).await?;
        tx.commit().await?;
        state.committed();
    }
    Ok(fresh)
}

/// `?wait=` of the query routes.
#[derive(Deserialize)]
pub struct WaitQuery {
    wait: Option<u64>,
    out_trade_no: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn load_and_wait(
    state: &AppState,
    caller: &MerchantCaller,
    id: &str,
    wait: Option<u64>,
) -> ApiResult<PaymentRow> {
    let wait = wait.unwrap_or(0);
    if wait > 30 {
        return Err(ApiError::invalid("wait", "wait is at most 30 seconds"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        let notified = state.changed.notified();
        let p = expire_if_due(state, visible(caller, state.store.payment(id).await?)?).await?;
        if p.status != "pending" || tokio::time::Instant::now() >= deadline {
            return Ok(p);
        }
        // Woken by a local commit, or look again soon for one made on another node.
        let _ = tokio::time::timeout(Duration::from_millis(250), notified).await;
    }
}

/// `GET /v1/payments/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> ApiResult<Response> {
    let p = load_and_wait(&state, &caller, &id, q.wait).await?;
    let merchant = state.store.merchant(&p.merchant_id).await?;
    let seed = state.qr_seed();
    Ok(Json(views::payment(&p, merchant.as_ref().map(|m| (m, &seed)))).into_response())
}

/// `GET /v1/payments?out_trade_no=...` (one payment) or a page of payments.
pub async fn find(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Query(q): Query<WaitQuery>,
) -> ApiResult<Response> {
    let merchant = state.store.merchant(&caller.merchant_id).await?;
    let seed = state.qr_seed();
    if let Some(otn) = &q.out_trade_no {
        let p = visible(&caller, state.store.payment_by_trade_no(&caller.merchant_id, otn).await?)?;
        let p = load_and_wait(&state, &caller, &p.id, q.wait).await?;
        return Ok(Json(views::payment(&p, merchant.as_ref().map(|m| (m, &seed)))).into_response());
    }
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1-100"));
    }
    let rows = state
        .store
        .payments_of_merchant(
            &caller.merchant_id,
            caller.terminal_id.as_deref(),
            q.cursor.as_deref(),
            limit + 1,
        )
        .await?;
    let more = rows.len() as i64 > limit;
    let data: Vec<api::Payment> = rows
        .iter()
        .take(limit as usize)
        .map(|p| views::payment(p, merchant.as_ref().map(|m| (m, &seed))))
        .collect();
    let next_cursor = if more { data.last().map(|p| p.id.clone()) } else { None };
    Ok(Json(api::Page { data, next_cursor }).into_response())
}

/// Reverses a payment inside `tx`: pending → closed, succeeded → fully refunded.
async fn reverse(
    state: &AppState,
    tx: &mut WriteTx,
    p: &mut PaymentRow,
    merchant_name: &str,
    actor: &str,
    now: &str,
) -> Result<(), OpError> {
    match p.status.as_str() {
        "pending" => close(tx, p, actor, "cancelled", now).await?,
        "succeeded" => {
            let remaining = p.amount - p.refunded_amount;
            let out_refund_no = format!("cancel-{}", p.id);
            let reason = Some("payment cancelled".into());
            refund_in_tx(state, tx, p, merchant_name, &out_refund_no, remaining, reason, actor, now).await?;
        }
        _ => {}
    }
    Ok(())
}

/// `POST /v1/payments/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let merchant =
        state.store.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let p = retry_on_conflict(|| async {
        let (_, now) = now();
        let mut tx = state.store.begin().await?;
        let mut p = visible(&caller, tx.payment(&id).await?)?;
        reverse(&state, &mut tx, &mut p, &merchant.name, &caller.key_id, &now).await?;
        tx.commit().await?;
        Ok(p)
    })
    .await?;
    state.committed();
    Ok(Json(views::payment(&p, Some((&merchant, &state.qr_seed())))).into_response())
}

/// `POST /v1/payments/cancel` `{out_trade_no}`: for a POS that never saw the creation's
/// answer. With no such payment yet, the number is recorded as closed, so a charge that
/// arrives late with it is refused.
pub async fn cancel_by_trade_no(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiJson(req): ApiJson<api::CancelByTradeNoRequest>,
) -> ApiResult<Response> {
    client_key("out_trade_no", &req.out_trade_no)?;
    let merchant =
        state.store.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let p = retry_on_conflict(|| async {
        let (_, now) = now();
        let mut tx = state.store.begin().await?;
        let p = match tx.payment_by_trade_no(&caller.merchant_id, &req.out_trade_no).await? {
            Some(p) => {
                let mut p = visible(&caller, Some(p))?;
                reverse(&state, &mut tx, &mut p, &merchant.name, &caller.key_id, &now).await?;
                p
            }
            None => {
                let order = Order {
                    merchant_id: &caller.merchant_id,
                    terminal_id: caller.terminal_id.as_deref(),
                    out_trade_no: &req.out_trade_no,
                    amount: 0,
                    currency: &merchant.currency,
                    subject: "cancelled before creation",
                    items_json: "[]".into(),
                    mode: "cpm",
                    fingerprint: None,
                };
                let mut p = pending_payment(order, &now);
                p.status = "closed".into();
                tx.insert_payment(&p).await?;
                let audit = AuditRecord {
                    actor: &caller.key_id,
                    action: "payment.close",
                    object_id: &p.id,
                    detail: json!({"reason": "cancelled before creation"}),
                };
                tx.audit(&audit, &now).await?;
                p
            }
        };
        tx.commit().await?;
        Ok(p)
    })
    .await?;
    state.committed();
    Ok(Json(views::payment(&p, Some((&merchant, &state.qr_seed())))).into_response())
}

/// Refunds part of a payment inside `tx` and returns the refund row.
#[allow(clippy::too_many_arguments)]
async fn refund_in_tx(
    state: &AppState,
    tx: &mut WriteTx,
    p: &mut PaymentRow,
    merchant_name: &str,
    out_refund_no: &str,
    amount_minor: i64,
    reason: Option<String>,
    actor: &str,
    now: &str,
) -> Result<RefundRow, OpError> {
    let currency = Currency::from_code(&p.currency).ok_or_else(|| StoreError::Corrupt(p.currency.clone()))?;
    let amount = money_of(amount_minor, currency)?;
    let facts = RefundablePayment {
        status: PaymentStatus::parse(&p.status).ok_or_else(|| StoreError::Corrupt(p.status.clone()))?,
        amount: Money::new(p.amount, currency),
        fee: Money::new(p.fee, currency),
        refunded: Money::new(p.refunded_amount, currency),
        fee_returned: Money::new(p.fee_returned, currency),
    };
    let decision = payment::decide_refund(facts, amount).map_err(|e| match e {
        RefundError::NotRefundable(_) => ApiError::conflict("payment_not_refundable", e.to_string()),
        RefundError::ExceedsPayment { .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, "refund_exceeds_payment", e.to_string())
        }
        RefundError::Money(m) => ApiError::invalid("amount", m.to_string()),
    })?;
    let customer_id =
        p.customer_id.clone().ok_or_else(|| StoreError::Corrupt("paid payment without customer".into()))?;
    let entry = ledger::refund_entry(&customer_id, &p.merchant_id, amount, decision.fee_returned)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let refund = RefundRow {
        id: new_id(prefix::REFUND),
        payment_id: p.id.clone(),
        merchant_id: p.merchant_id.clone(),
        out_refund_no: out_refund_no.to_string(),
        amount: amount_minor,
        currency: p.currency.clone(),
        fee_returned: decision.fee_returned.amount_minor(),
        status: "succeeded".into(),
        reason,
        created_at: now.to_string(),
    };
    tx.insert_refund(&refund).await?;
    tx.post_entry(&new_id(prefix::ENTRY), "refund", &refund.id, &entry, now).await?;
    let before = json!({"status": p.status, "refunded_amount": p.refunded_amount});
    p.refunded_amount = decision.refunded_after.amount_minor();
    p.fee_returned = decision.fee_returned_after.amount_minor();
    p.status = decision.status_after.as_str().to_string();
    tx.update_payment(p).await?;
    crate::receipts::issue(&state.keys.sealer, tx, p, merchant_name, Some(&refund), now).await?;
    let data = json!({"refund": views::refund(&refund), "payment": views::payment(p, None)});
    emit(tx, "refund.succeeded", Some(&p.merchant_id), Some(&customer_id), data, now).await?;
    let audit = AuditRecord {
        actor,
        action: "refund.create",
        object_id: &refund.id,
        detail: json!({"payment_id": p.id, "amount": amount_minor, "before": before,
            "after": {"status": p.status, "refunded_amount": p.refunded_amount}}),
    };
    tx.audit(&audit, now).await?;
    metrics::counter!("saoma_refunds_total").increment(1);
    Ok(refund)
}

/// `POST /v1/payments/{id}/refunds`: a merchant key only.
pub async fn refund(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::CreateRefundRequest>,
) -> ApiResult<Response> {
    caller.require_merchant_key()?;
    client_key("out_refund_no", &req.out_refund_no)?;
    if req.reason.as_ref().is_some_and(|r| r.chars().count() > 256) {
        return Err(ApiError::invalid("reason", "reason is at most 256 characters"));
    }
    let merchant =
        state.store.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let r = retry_on_conflict(|| async {
        let (_, now) = now();
        let mut tx = state.store.begin().await?;
        let mut p = visible(&caller, tx.payment(&id).await?)?;
        if let Some(existing) = tx.refund_by_no(&caller.merchant_id, &req.out_refund_no).await? {
            if existing.payment_id != p.id || existing.amount != req.amount {
                return Err(ApiError::conflict(
                    "idempotency_conflict",
                    "out_refund_no was already used with other parameters",
                )
                .into());
            }
            return Ok(existing);
        }
        let r = refund_in_tx(
            &state,
            &mut tx,
            &mut p,
            &merchant.name,
            &req.out_refund_no,
            req.amount,
            req.reason.clone(),
            &caller.key_id,
            &now,
        )
        .await?;
        tx.commit().await?;
        Ok(r)
    })
    .await?;
    state.committed();
    Ok(Json(views::refund(&r)).into_response())
}
