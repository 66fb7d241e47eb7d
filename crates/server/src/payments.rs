//! The merchant's payment API: create (both QR modes), query with long-poll, cancel
//! (the POS's reversal), refund. Each operation is one database transaction.

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
        match op().await {
            // A concurrent writer won the race (a key inserted, or a deadlock PostgreSQL
            // broke by rolling this attempt back): the next attempt sees what it wrote.
            Err(OpError::Store(StoreError::UniqueViolation | StoreError::Deadlock)) => continue,
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
fn active(m: MerchantRow) -> ApiResult<MerchantRow> {
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

/// `POST /v1/payments`.
#[utoipa::path(
    operation_id = "payments_create",
    post,
    path = "/v1/payments",
    tag = "merchant",
    summary = "Creates a payment: charges a scanned payment code, or issues a dynamic code.",
    request_body = saoma_api::CreatePaymentRequest,
    responses((status = 200, description = "the payment: `succeeded`, or `pending` (a dynamic code, or waiting for the customer's PIN)", body = saoma_api::Payment), (status = 402, description = "error"), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiJson(req): ApiJson<api::CreatePaymentRequest>,
) -> ApiResult<Response> {
    // The fingerprint is of the request as sent, so a retry matches after a price change.
    let fp = fingerprint(&req, caller.terminal_id.as_deref());
    let req = crate::stock::priced(&state, &caller.merchant_id, req).await?;
    let amount = validate_create(&req)?;
    let merchant = callers_merchant(&state, &caller).await?;
    if amount.currency().code() != merchant.currency {
        return Err(ApiError::invalid("currency", format!("this merchant takes {}", merchant.currency))
            .with_code(ErrorCode::CurrencyMismatch));
    }
    if req.payment_code.is_some() {
        guesses::ensure_counters(&state, &caller).await?;
    }
    let p = retry_on_conflict(|| create_once(&state, &caller, &merchant, &req, amount, &fp)).await?;
    Ok(answer(&state, &p, &merchant))
}

/// The order a merchant's request asks to be paid.
fn order_of(
    caller: &MerchantCaller,
    req: &api::CreatePaymentRequest,
    amount: Money,
    fp: &str,
    mode: PaymentMode,
    now: &str,
) -> ApiResult<Order> {
    let items: &[api::Item] = req.items.as_deref().unwrap_or_default();
    Ok(Order {
        id: new_id(prefix::PAYMENT),
        merchant_id: caller.merchant_id.clone(),
        terminal_id: caller.terminal_id.clone(),
        out_trade_no: req.out_trade_no.clone(),
        amount,
        subject: req.subject.clone(),
        items: serde_json::to_string(items).map_err(ApiError::internal)?,
        mode,
        fingerprint: Some(fp.to_string()),
        created_at: now.to_string(),
    })
}

async fn existing_or_none(
    work: &mut Work,
    merchant_id: &str,
    otn: &str,
    fp: &str,
) -> Result<Option<Payment>, OpError> {
    match work.payment_by_trade_no(merchant_id, otn).await? {
        None => Ok(None),
        Some(p) if p.fingerprint.is_none() => Err(ApiError::new(
            ErrorCode::PaymentClosed,
            "this out_trade_no was cancelled before it was charged; use a new one",
        )
        .into()),
        Some(p) if p.fingerprint.as_deref() != Some(fp) => Err(ApiError::new(
            ErrorCode::IdempotencyConflict,
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
) -> Result<Payment, OpError> {
    let (t, now) = now();
    // A scan's payment and its receipt are made before the transaction: the signing then
    // holds up no other payment (on SQLite, no other writer).
    let scanned = match &req.payment_code {
        None => None,
        Some(code) => {
            let mut p = Payment::pending(order_of(caller, req, amount, fp, PaymentMode::Cpm, &now)?);
            p.expires_at = Some(pending_until(t, req.expires_in));
            let receipt = crate::receipts::presign(state, &p, &merchant.name, &now).await?;
            Some((code, p, receipt))
        }
    };
    let mut work = Work::begin(state).await?;
    if let Some(p) = existing_or_none(&mut work, &merchant.id, &req.out_trade_no, fp).await? {
        return Ok(p);
    }
    let p = match scanned {
        None => create_dynamic(&mut work, caller, req, amount, fp, t, &now).await?,
        Some((code, p, receipt)) => {
            let scan = Scan { caller, merchant, code, t };
            charge_scanned(state, &mut work, &scan, (p, receipt), &now).await?
        }
    };
    work.commit(state).await?;
    Ok(p)
}

/// Merchant-presented: a dynamic code the customer scans.
async fn create_dynamic(
    work: &mut Work,
    caller: &MerchantCaller,
    req: &api::CreatePaymentRequest,
    amount: Money,
    fp: &str,
    t: chrono::DateTime<chrono::Utc>,
    now: &str,
) -> Result<Payment, OpError> {
    let mut p = Payment::pending(order_of(caller, req, amount, fp, PaymentMode::Mpm, now)?);
    p.qr_ref = Some(ulid::Ulid::new().to_string().chars().skip(6).collect());
    p.expires_at = Some(pending_until(t, req.expires_in));
    work.insert_payment(&p).await?;
    let audit = AuditRecord {
        actor: &caller.key_id,
        action: "payment.create",
        object_id: &p.id,
        detail: json!({"mode": "mpm", "amount": amount.amount_minor()}),
    };
    work.audit(&audit, now).await?;
    Ok(p)
}

/// A till's scan of a customer's payment code.
struct Scan<'a> {
    caller: &'a MerchantCaller,
    merchant: &'a MerchantRow,
    code: &'a str,
    t: chrono::DateTime<chrono::Utc>,
}

/// Consumer-presented: the till scanned the customer's code. The till's own checks come
/// first (a blocked till spends no code), then the code, then the one charge service.
/// `p`: the new pending payment; `receipt`: its receipt, signed ahead.
async fn charge_scanned(
    state: &AppState,
    work: &mut Work,
    s: &Scan<'_>,
    (mut p, receipt): (Payment, Option<Box<crate::receipts::Presigned>>),
    now: &str,
) -> Result<Payment, OpError> {
    let rules = risk::rules(state).await?;
    let till = s.caller.terminal_id.as_deref().unwrap_or(&s.caller.key_id);
    let refused = match &s.caller.terminal_id {
        Some(terminal) => risk::check_terminal(state, &rules, terminal, s.t).await?.err(),
        None => None,
    };
    let payer = match refused {
        Some(d) => Err(d),
        None => scanned_payer(state, work, s, &rules, now).await?,
    };
    let payer = match payer {
        Ok(payer) => payer,
        Err(d) => {
            charge::decline(work, Some((&mut p, false, OnDecline::FailPayment)), &d, (till, &rules), now)
                .await?;
            return Ok(p);
        }
    };
    let c = Charge {
        payer: &payer,
        amount: p.amount,
        pin: PinProof::Absent,
        count_velocity: true,
        rules: &rules,
        actor: &s.caller.key_id,
    };
    let payee = Payee::Merchant {
        payment: &mut p,
        merchant: s.merchant,
        stored: false,
        on_decline: OnDecline::FailPayment,
        receipt,
    };
    // Every outcome is written by the service: charged, waiting for the PIN, or failed.
    charge::charge(state, work, &c, payee, now).await?;
    Ok(p)
}

/// Who pays with the scanned code, or why nobody does. The code is looked at before
/// anything is locked or spent; a bad one is counted against the caller (`crate::guesses`).
async fn scanned_payer(
    state: &AppState,
    work: &mut Work,
    s: &Scan<'_>,
    rules: &Rules,
    now: &str,
) -> Result<Result<CustomerRow, Decline>, OpError> {
    let found = match codes::resolve(state, s.code, now, s.t.timestamp()).await? {
        Ok(r) if code_used(state, &r).await? => Err("payment_code_used"),
        other => other,
    };
    let bad = found.is_err();
    if let Some(d) = guesses::blocked(work, s.caller, rules, s.t, bad).await? {
        return Ok(Err(d));
    }
    match found {
        Err(failure) => {
            guesses::count_bad(work, s.caller, rules, s.t).await?;
            Ok(Err(Decline::plain(failure)))
        }
        // Two scans of one good code at once: the loser is declined, not counted as a guess.
        Ok(r) => Ok(payer(work, &r).await?.ok_or_else(|| Decline::plain("payment_code_used"))),
    }
}

/// Whether a resolved code was used already, asked only if its look-up did not tell.
async fn code_used(state: &AppState, code: &codes::ResolvedCode) -> Result<bool, StoreError> {
    match code.used {
        Some(used) => Ok(used),
        None => state.store.code_used(&code.code_hash).await,
    }
}

/// Consumes a good code inside `work` and loads who pays with it; `None` when a
/// concurrent scan spent it first.
async fn payer(work: &mut Work, code: &codes::ResolvedCode) -> Result<Option<CustomerRow>, OpError> {
    Ok(work.spend_code(&code.code_hash, &code.customer_id, &now().1).await?)
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

/// Closes a pending payment whose time is up, and returns it as it now stands.
async fn expire_if_due(state: &AppState, p: Payment) -> ApiResult<Payment> {
    let (_, now) = now();
    if !due(&p, &now) {
        return Ok(p);
    }
    let mut work = Work::begin(state).await?;
    let Some(mut fresh) = work.payment(&p.id).await? else { return Ok(p) };
    if due(&fresh, &now) {
        close(&mut work, &mut fresh, "system", "expired", &now).await.map_err(op_error)?;
        work.commit(state).await?;
    }
    Ok(fresh)
}

/// Closes, every `every`, the pending payments whose time is up, with their
/// `payment.closed` event and webhook. Each is closed under its row lock after a fresh
/// look, so across nodes every payment closes exactly once.
pub fn spawn_expiry_sweep(state: AppState, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = state.stopping() => return,
            }
            if let Err(e) = sweep_once(&state).await {
                tracing::warn!(error = %e.message, "Could not close expired payments.");
            }
        }
    });
}

/// One pass of the expiry sweep; the number of payments it closed.
async fn sweep_once(state: &AppState) -> ApiResult<usize> {
    const BATCH: i64 = 100;
    let (t, now) = now();
    // Unknown phones' lockouts (see `pin`) are kept a month after their last guess.
    state.store.forget_strangers(&rfc3339(t - chrono::Duration::days(30)), &now).await?;
    let mut closed = 0;
    for id in state.store.overdue_payments(&now, BATCH).await? {
        let mut work = Work::begin(state).await?;
        let Some(mut p) = work.payment(&id).await? else { continue };
        if due(&p, &now) {
            close(&mut work, &mut p, "system", "expired", &now).await.map_err(op_error)?;
            work.commit(state).await?;
            closed += 1;
        }
    }
    Ok(closed)
}

/// An operation's error as the client's answer.
fn op_error(e: OpError) -> ApiError {
    match e {
        OpError::Api(e) => e,
        OpError::Store(e) => e.into(),
    }
}

async fn load_and_wait(
    state: &AppState,
    caller: &MerchantCaller,
    id: &str,
    wait: Option<u64>,
) -> ApiResult<Payment> {
    let wait = wait.unwrap_or(0);
    if wait > 30 {
        return Err(ApiError::invalid("wait", "wait is at most 30 seconds"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        let notified = state.changed.notified();
        let p = expire_if_due(state, visible(caller, state.store.payment(id).await?)?).await?;
        if p.status() != PaymentStatus::Pending || tokio::time::Instant::now() >= deadline {
            return Ok(p);
        }
        // Woken by a local commit, or look again soon for one made on another node.
        let _ = tokio::time::timeout(Duration::from_millis(250), notified).await;
    }
}

/// `GET /v1/payments/{id}`.
#[utoipa::path(
    operation_id = "payments_get",
    get,
    path = "/v1/payments/{id}",
    tag = "merchant",
    summary = "A payment; `?wait=N` long-polls while it is pending.",
    params(("id" = String, Path, description = "the payment's id"), api::PaymentsQuery),
    responses((status = 200, description = "the payment", body = saoma_api::Payment)),
    security(("merchant_signature" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<api::PaymentsQuery>,
) -> ApiResult<Response> {
    let p = load_and_wait(&state, &caller, &id, q.wait).await?;
    let merchant = state.store.merchant(&p.merchant_id).await?;
    let seed = state.qr_seed();
    Ok(Json(views::payment(&p, merchant.as_ref().map(|m| (m, &seed)))?).into_response())
}

/// The payments list's cursor: the id of the last payment shown (ids grow with time).
const PAYMENTS: page::Cursor = page::Cursor::of("payments");

/// `GET /v1/payments?out_trade_no=...` (one payment) or a page of payments, newest first.
#[utoipa::path(
    operation_id = "payments_find",
    get,
    path = "/v1/payments",
    tag = "merchant",
    summary = "Finds a payment by `out_trade_no`, or lists payments.",
    params(api::PaymentsQuery),
    responses(
        (status = 200, description = "with `out_trade_no`: that payment; without: a page of payments, newest first", body = crate::openapi::PaymentOrPage),
        (status = 404, description = "no payment of the caller's with that `out_trade_no`"),
    ),
    security(("merchant_signature" = [])),
)]
pub async fn find(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiQuery(q): ApiQuery<api::PaymentsQuery>,
) -> ApiResult<Response> {
    let merchant = state.store.merchant(&caller.merchant_id).await?;
    let seed = state.qr_seed();
    if let Some(otn) = &q.out_trade_no {
        let p = visible(&caller, state.store.payment_by_trade_no(&caller.merchant_id, otn).await?)?;
        let p = load_and_wait(&state, &caller, &p.id, q.wait).await?;
        return Ok(Json(views::payment(&p, merchant.as_ref().map(|m| (m, &seed)))?).into_response());
    }
    let limit = page::limit(q.limit, 20)?;
    let before = PAYMENTS.read::<1>(q.cursor.as_deref())?;
    let before = before.as_ref().map(|[id]| id.as_str());
    let rows = state
        .store
        .payments_of_merchant(&caller.merchant_id, caller.terminal_id.as_deref(), before, limit + 1)
        .await?;
    let (rows, next_cursor) = PAYMENTS.page(rows, limit, |p| vec![&p.id])?;
    let data: Vec<api::Payment> = rows
        .iter()
        .map(|p| views::payment(p, merchant.as_ref().map(|m| (m, &seed))))
        .collect::<Result<_, _>>()?;
    Ok(Json(api::Page { data, next_cursor }).into_response())
}

/// Refuses a till's reversal of a paid sale once the operator's window after the charge
/// has passed: from then on it is a refund, which needs a manager or merchant key.
fn check_reversal_window(
    state: &AppState,
    caller: &MerchantCaller,
    p: &Payment,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<()> {
    if caller.terminal_id.is_none() {
        return Ok(());
    }
    let window = state.config.terminal_reversal_window;
    let paid_at = p.paid_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let within = paid_at.is_some_and(|paid| {
        chrono::Duration::from_std(window).is_ok_and(|w| now.signed_duration_since(paid) <= w)
    });
    if within {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "a till may reverse a paid sale only within {} s of the charge; refund it with a manager or merchant key",
        window.as_secs()
    ))
    .with_code(ErrorCode::ReversalWindowClosed))
}

/// Reverses a payment inside `work`: pending → closed, succeeded → fully refunded (by a
/// till only within the reversal window).
async fn reverse(
    state: &AppState,
    work: &mut Work,
    p: &mut Payment,
    merchant_name: &str,
    caller: &MerchantCaller,
    (t, now): (chrono::DateTime<chrono::Utc>, &str),
) -> Result<(), OpError> {
    let actor = caller.key_id.as_str();
    match p.status() {
        PaymentStatus::Pending => close(work, p, actor, "cancelled", now).await?,
        PaymentStatus::Succeeded => {
            check_reversal_window(state, caller, p, t)?;
            let remaining = p.amount.checked_sub(p.refunded).map_err(ApiError::internal)?;
            // A reversed sale never happened: every unit sold comes back to stock.
            let items = crate::stock::unreturned(work, p).await?;
            let refund = RefundAsk {
                out_refund_no: &format!("cancel-{}", p.id),
                amount_minor: remaining.amount_minor(),
                reason: Some("payment cancelled".into()),
                actor,
                items: &items,
            };
            refund_in_tx(state, work, p, merchant_name, &refund, now).await?;
        }
        PaymentStatus::Failed | PaymentStatus::Closed | PaymentStatus::Refunded => {}
    }
    Ok(())
}

/// `POST /v1/payments/{id}/cancel`.
#[utoipa::path(
    operation_id = "payments_cancel",
    post,
    path = "/v1/payments/{id}/cancel",
    tag = "merchant",
    summary = "Reverses a sale: closes a pending payment, refunds a paid one.",
    params(("id" = String, Path, description = "the payment's id")),
    responses((status = 200, description = "the payment, closed or refunded", body = saoma_api::Payment), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let merchant =
        state.store.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let p = retry_on_conflict(|| async {
        let (t, now) = now();
        let mut work = Work::begin(&state).await?;
        let mut p = visible(&caller, work.payment(&id).await?)?;
        reverse(&state, &mut work, &mut p, &merchant.name, &caller, (t, &now)).await?;
        work.commit(&state).await?;
        Ok(p)
    })
    .await?;
    Ok(Json(views::payment(&p, Some((&merchant, &state.qr_seed())))?).into_response())
}

/// `POST /v1/payments/cancel` `{out_trade_no}`: for a POS that never saw the creation's
/// answer. With no such payment yet, the number is recorded as closed, so a charge that
/// arrives late with it is refused.
#[utoipa::path(
    operation_id = "payments_cancel_by_trade_no",
    post,
    path = "/v1/payments/cancel",
    tag = "merchant",
    summary = "Reverses a sale by `out_trade_no`.",
    request_body = saoma_api::CancelByTradeNoRequest,
    responses((status = 200, description = "the payment, closed or refunded", body = saoma_api::Payment), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn cancel_by_trade_no(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiJson(req): ApiJson<api::CancelByTradeNoRequest>,
) -> ApiResult<Response> {
    client_key("out_trade_no", &req.out_trade_no)?;
    let merchant =
        state.store.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let currency = currency_of(&merchant.currency)?;
    let p = retry_on_conflict(|| async {
        let (t, now) = now();
        let mut work = Work::begin(&state).await?;
        let p = match work.payment_by_trade_no(&caller.merchant_id, &req.out_trade_no).await? {
            Some(p) => {
                let mut p = visible(&caller, Some(p))?;
                reverse(&state, &mut work, &mut p, &merchant.name, &caller, (t, &now)).await?;
                p
            }
            None => {
                let mut p = Payment::pending(Order {
                    id: new_id(prefix::PAYMENT),
                    merchant_id: caller.merchant_id.clone(),
                    terminal_id: caller.terminal_id.clone(),
                    out_trade_no: req.out_trade_no.clone(),
                    amount: Money::zero(currency),
                    subject: "cancelled before creation".into(),
                    items: "[]".into(),
                    mode: PaymentMode::Cpm,
                    fingerprint: None,
                    created_at: now.clone(),
                });
                p.close().map_err(ApiError::internal)?;
                work.insert_payment(&p).await?;
                let audit = AuditRecord {
                    actor: &caller.key_id,
                    action: "payment.close",
                    object_id: &p.id,
                    detail: json!({"reason": "cancelled before creation"}),
                };
                work.audit(&audit, &now).await?;
                p
            }
        };
        work.commit(&state).await?;
        Ok(p)
    })
    .await?;
    Ok(Json(views::payment(&p, Some((&merchant, &state.qr_seed())))?).into_response())
}

/// What a refund asks for.
struct RefundAsk<'a> {
    out_refund_no: &'a str,
    amount_minor: i64,
    reason: Option<String>,
    actor: &'a str,
    /// Units coming back to stock.
    items: &'a [api::RefundItem],
}

/// Refunds part of a payment inside `work` and returns the refund row.
async fn refund_in_tx(
    state: &AppState,
    work: &mut Work,
    p: &mut Payment,
    merchant_name: &str,
    ask: &RefundAsk<'_>,
    now: &str,
) -> Result<RefundRow, OpError> {
    crate::auth::refuse_suspended(work, &p.merchant_id).await?;
    let amount = money_of(ask.amount_minor, p.amount.currency())?;
    let decision = payment::decide_refund(p.refundable(), amount).map_err(|e| match e {
        RefundError::NotRefundable(_) => ApiError::new(ErrorCode::PaymentNotRefundable, e.to_string()),
        RefundError::ExceedsPayment { .. } => ApiError::new(ErrorCode::RefundExceedsPayment, e.to_string()),
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
        out_refund_no: ask.out_refund_no.to_string(),
        amount: ask.amount_minor,
        currency: p.amount.currency().code().to_string(),
        fee_returned: decision.fee_returned.amount_minor(),
        status: "succeeded".into(),
        reason: ask.reason.clone(),
        created_at: now.to_string(),
    };
    work.insert_refund(&refund).await?;
    let before = json!({"status": p.status().as_str(), "refunded_amount": p.refunded.amount_minor()});
    p.apply_refund(&decision).map_err(|e| ApiError::new(ErrorCode::PaymentNotRefundable, e.to_string()))?;
    work.update_payment(p).await?;
    // Posted last: the merchant's ledger rows are then held only for the audit head and
    // the commit.
    work.post_entry(&new_id(prefix::ENTRY), "refund", &refund.id, &entry, now).await?;
    crate::stock::put_back(work, p, &refund.id, ask.items, ask.actor, now).await?;
    crate::receipts::issue(&state.keys.sealer, work, p, merchant_name, Some(&refund), now, None).await?;
    let data = json!({"refund": views::refund(&refund), "payment": views::payment(p, None)?});
    let scope = (Some(p.merchant_id.as_str()), p.terminal_id.as_deref());
    emit(work, "refund.succeeded", scope, Some(&customer_id), data, now).await?;
    let audit = AuditRecord {
        actor: ask.actor,
        action: "refund.create",
        object_id: &refund.id,
        detail: json!({"payment_id": p.id, "amount": ask.amount_minor, "before": before,
            "after": {"status": p.status().as_str(), "refunded_amount": p.refunded.amount_minor()}}),
    };
    work.audit(&audit, now).await?;
    work.on_commit(Effect::RefundSucceeded);
    Ok(refund)
}

/// `POST /v1/payments/{id}/refunds`: a merchant key only.
#[utoipa::path(
    operation_id = "payments_refund",
    post,
    path = "/v1/payments/{id}/refunds",
    tag = "merchant",
    summary = "Refunds a payment in part or in full.",
    request_body = saoma_api::CreateRefundRequest,
    params(("id" = String, Path, description = "the payment's id")),
    responses((status = 200, description = "the refund", body = saoma_api::Refund), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
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
        let mut work = Work::begin(&state).await?;
        let mut p = visible(&caller, work.payment(&id).await?)?;
        if let Some(existing) = work.refund_by_no(&caller.merchant_id, &req.out_refund_no).await? {
            // A refund of items may leave the amount out: it was their value then.
            let same_amount = existing.amount == req.amount || (req.amount == 0 && req.items.is_some());
            if existing.payment_id != p.id || !same_amount {
                return Err(ApiError::new(
                    ErrorCode::IdempotencyConflict,
                    "out_refund_no was already used with other parameters",
                )
                .into());
            }
            return Ok(existing);
        }
        let items = req.items.as_deref().unwrap_or_default();
        let amount_minor = match req.items {
            Some(_) => refund_amount(req.amount, crate::stock::refund_value(&mut work, &p, items).await?)?,
            None => req.amount,
        };
        let ask = RefundAsk {
            out_refund_no: &req.out_refund_no,
            amount_minor,
            reason: req.reason.clone(),
            actor: &caller.key_id,
            items,
        };
        let r = refund_in_tx(&state, &mut work, &mut p, &merchant.name, &ask, &now).await?;
        work.commit(&state).await?;
        Ok(r)
    })
    .await?;
    Ok(Json(views::refund(&r)).into_response())
}

/// A refund of items: their value, which a given amount must equal.
fn refund_amount(given: i64, value: i64) -> ApiResult<i64> {
    if given != 0 && given != value {
        let mut e = ApiError::new(
            ErrorCode::AmountMismatch,
            format!("amount {given} differs from the items' value {value}"),
        );
        e.param = Some("amount");
        return Err(e);
    }
    Ok(value)
}
