//! The wallet paying: resolving and paying a merchant's QR, confirming a scanned payment
//! with the PIN, and transfers. Every path asks the risk rules first (frozen wallet,
//! per-payment limit, velocity) and checks the daily limit inside the money transaction.

use crate::auth::WalletCaller;
use crate::charge::{self, Charge, OnDecline, Outcome, Payee};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::payments::{
    OpError, active, active_merchant, client_key, close, currency_of, due, money_of, retry_on_conflict,
};
use crate::pin::verify_pin;
use crate::util::{new_id, now, rfc3339, sha256_hex};
use crate::work::Work;
use crate::{AppState, risk, views};
use axum::Json;
use axum::extract::{Extension, Path, State};
use saoma_api as api;
use saoma_api::ErrorCode;
use saoma_api::qr_signature::Verdict;
use saoma_core::emv;
use saoma_core::ids::prefix;
use saoma_core::money::Money;
use saoma_core::payment::{Order, Payment, PaymentMode, PaymentStatus, PinProof};
use saoma_store::{CustomerRow, MerchantRow, StoreError, TransferRow};

/// A scanned merchant code, with the merchant it names and what its signature says.
pub struct ScannedCode {
    pub payload: emv::MpmPayload,
    pub merchant: MerchantRow,
    pub verdict: Verdict,
}

impl ScannedCode {
    /// What to show loudly before paying.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self.verdict.warning().into_iter().collect();
        if self.merchant.status != "active" {
            out.push(format!("the merchant is not active ({}): do not pay", self.merchant.status));
        }
        out
    }
}

/// Decodes a scanned EMV code and finds the Saoma merchant it names.
pub async fn scan_merchant_code(state: &AppState, qr_payload: &str) -> ApiResult<ScannedCode> {
    let payload =
        emv::decode(qr_payload.trim()).map_err(|e| ApiError::new(ErrorCode::InvalidQr, e.to_string()))?;
    let merchant_id = payload.saoma_merchant_id().ok_or_else(|| {
        ApiError::new(ErrorCode::UnsupportedQr, "this code belongs to another payment scheme")
    })?;
    let merchant = state.store.merchant(merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let verdict = crate::receipts::verify_qr(state, &payload).await?;
    Ok(ScannedCode { payload, merchant, verdict })
}

/// `POST /v1/wallet/qr/resolve`.
#[utoipa::path(
    operation_id = "wallet_pay_resolve_qr",
    post,
    path = "/v1/wallet/qr/resolve",
    tag = "wallet",
    summary = "Reads a scanned code before paying it.",
    request_body = saoma_api::QrResolveRequest,
    responses((status = 200, description = "what paying the code means", body = saoma_api::QrResolution)),
    security(("wallet_session" = [])),
)]
pub async fn resolve_qr(
    State(state): State<AppState>,
    Extension(_me): Extension<WalletCaller>,
    ApiJson(req): ApiJson<api::QrResolveRequest>,
) -> ApiResult<Json<api::QrResolution>> {
    let scanned = scan_merchant_code(&state, &req.qr_payload).await?;
    let m = &scanned.merchant;
    let mut out = api::QrResolution {
        kind: "merchant".into(),
        merchant_id: Some(m.id.clone()),
        merchant_name: Some(m.name.clone()),
        amount: None,
        currency: m.currency.clone(),
        payment_id: None,
        signature: scanned.verdict.name().to_string(),
        warnings: scanned.warnings(),
    };
    if let Some(reference) = scanned.payload.reference() {
        let p = state.store.payment_by_qr_ref(reference).await?.filter(|p| p.merchant_id == m.id);
        let p = p.ok_or_else(|| ApiError::not_found("payment"))?;
        out.kind = "payment".into();
        out.amount = Some(p.amount.amount_minor());
        out.payment_id = Some(p.id);
    }
    Ok(Json(out))
}

/// The customer paying, as stored now, read (and on PostgreSQL locked) inside the charge's
/// transaction: frozen and tier may have changed since sign-in.
async fn payer_now(work: &mut Work, me: &WalletCaller) -> Result<CustomerRow, OpError> {
    Ok(work.customer(&me.customer_id).await?.ok_or_else(|| ApiError::not_found("customer"))?)
}

/// The answer to a charge's outcome: the charged object, or the refusal.
fn refusal(outcome: &Outcome, payment_id: Option<String>) -> Option<ApiError> {
    match outcome {
        Outcome::Charged => None,
        Outcome::NeedsPin => Some(ApiError::new(ErrorCode::PinRequired, "this amount needs the PIN")),
        Outcome::Declined(d) => Some(ApiError::declined(d.code, payment_id)),
    }
}

fn expired() -> ApiError {
    ApiError::new(ErrorCode::PaymentExpired, "this payment has expired")
}

/// What a wallet's QR payment asks for: the code's reference (dynamic) or the typed
/// amount (static).
struct QrAsk<'a> {
    merchant: &'a MerchantRow,
    reference: Option<String>,
    amount_minor: Option<i64>,
    pin: PinProof,
}

/// What a wallet's QR payment pays: the stored payment a dynamic code names (its
/// reference), or a new payment for a static code, with its receipt signed ahead for
/// the time `at`.
enum Target<'a> {
    Dynamic(&'a str),
    Static { payment: Box<Payment>, receipt: Option<Box<crate::receipts::Presigned>>, at: String },
}

/// `POST /v1/wallet/qr/pay`: pays a dynamic code's payment, or the amount typed for a
/// static code. Idempotent on `client_ref`: the same request again answers the same
/// payment, another request with it is refused.
#[utoipa::path(
    operation_id = "wallet_pay_pay_qr",
    post,
    path = "/v1/wallet/qr/pay",
    tag = "wallet",
    summary = "Pays a merchant's code.",
    request_body = saoma_api::QrPayRequest,
    responses((status = 200, description = "the payment, succeeded", body = saoma_api::Payment), (status = 402, description = "error"), (status = 409, description = "error")),
    security(("wallet_session" = [])),
)]
pub async fn pay_qr(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
    ApiJson(req): ApiJson<api::QrPayRequest>,
) -> ApiResult<Json<api::Payment>> {
    if let Some(r) = &req.client_ref {
        client_key("client_ref", r)?;
    }
    let scanned = scan_merchant_code(&state, &req.qr_payload).await?;
    if let Verdict::Invalid(why) = &scanned.verdict {
        // A code that claims to be Saoma's and fails its signature was forged or edited.
        return Err(ApiError::new(
            ErrorCode::QrSignatureInvalid,
            format!("this code's signature is not valid ({why}); it may be a sticker over the real code"),
        ));
    }
    // The merchant as the scan read it, a moment ago.
    let merchant = active(scanned.merchant.clone())?;
    let currency = currency_of(&merchant.currency)?;
    let reference = scanned.payload.reference().map(str::to_string);
    let amount_minor = match (&reference, req.amount) {
        (Some(_), Some(a)) | (None, Some(a)) => Some(money_of(a, currency)?.amount_minor()),
        (Some(_), None) => None,
        (None, None) => return Err(ApiError::invalid("amount", "a static code needs the amount")),
    };
    // The PIN is checked before the transaction: Argon2 is slow on purpose.
    let pin = match &req.pin {
        Some(pin) => {
            verify_pin(&state, &me.customer_id, pin).await?;
            PinProof::Verified
        }
        None => PinProof::Absent,
    };
    let rules = risk::rules(&state).await?;
    let ask = QrAsk { merchant: &merchant, reference, amount_minor, pin };
    // A static code's payment and its receipt are made before the transaction, as a
    // till's scan's are: the signing then holds up no other payment. A retry after a
    // conflict reuses them (the attempt before left nothing).
    let target = match &ask.reference {
        Some(r) => Target::Dynamic(r),
        None => {
            let (t, at) = now();
            let p = static_payment(&me, &ask, currency, &req.client_ref, t, &at);
            let receipt = crate::receipts::presign(&state, &p, &merchant.name, &at).await?;
            Target::Static { payment: Box::new(p), receipt, at }
        }
    };
    let (p, outcome, stored) = retry_on_conflict(|| async {
        // A dynamic code is judged (expired or not) and paid at each attempt's own time;
        // a static code's payment at the time its receipt was signed for.
        let now = match &target {
            Target::Dynamic(_) => now().1,
            Target::Static { at, .. } => at.clone(),
        };
        let now = now.as_str();
        let mut work = Work::begin(&state).await?;
        let mut bound = false;
        if let Some(r) = &req.client_ref
            && let Some(id) = work.wallet_request(&me.customer_id, r).await?
        {
            let p =
                work.payment(&id).await?.ok_or_else(|| StoreError::Corrupt("lost wallet request".into()))?;
            same_qr_request(&p, &ask)?;
            match p.status() {
                // A dynamic code declined under this ref stays payable: this is its retry.
                PaymentStatus::Pending => bound = true,
                PaymentStatus::Failed => {
                    let code = p
                        .failure_code()
                        .ok_or_else(|| StoreError::Corrupt("a failure without code".into()))?;
                    return Err(ApiError::declined(code, Some(p.id.clone())).into());
                }
                // Paid by this customer: the answer to a retry. Paid by someone else, or
                // closed, since the decline: refused as a fresh attempt would be.
                PaymentStatus::Succeeded if p.customer_id.as_deref() == Some(me.customer_id.as_str()) => {
                    return Ok((p, Outcome::Charged, true));
                }
                status => {
                    let why = format!("payment is {}", status.as_str());
                    return Err(ApiError::new(ErrorCode::PaymentNotPending, why).into());
                }
            }
        }
        let (mut p, stored, receipt) = match &target {
            Target::Dynamic(r) => match dynamic_payment(&mut work, &me, &ask, r, now).await? {
                Ok(p) => (p, true, None),
                // Paid already by this customer: the answer to a retry.
                Err(paid) => return Ok((paid, Outcome::Charged, true)),
            },
            Target::Static { payment, receipt, .. } => (payment.as_ref().clone(), false, receipt.clone()),
        };
        let payer = payer_now(&mut work, &me).await?;
        let c = Charge {
            payer: &payer,
            amount: p.amount,
            pin: ask.pin,
            count_velocity: true,
            rules: &rules,
            actor: &me.customer_id,
        };
        // A declined dynamic payment stays pending: the customer may top up and pay it. A
        // static code's declined attempt under a `client_ref` is kept as a failed payment,
        // so the ref stays bound to this request and its retry answers the same decline.
        let on_decline = match (stored, &req.client_ref) {
            (false, Some(_)) => OnDecline::FailPayment,
            _ => OnDecline::KeepPayment,
        };
        let payee = Payee::Merchant { payment: &mut p, merchant: &merchant, stored, on_decline, receipt };
        let outcome = charge::charge(&state, &mut work, &c, payee, now).await?;
        let decided = matches!(outcome, Outcome::Charged | Outcome::Declined(_));
        if let (true, false, Some(r)) = (decided, bound, &req.client_ref) {
            work.insert_wallet_request(&me.customer_id, r, &p.id);
        }
        work.commit(&state).await?;
        Ok((p, outcome, stored))
    })
    .await?;
    // A payment the customer's attempt left stored (pending or failed) is named.
    let kept = stored || p.status() == PaymentStatus::Failed;
    match refusal(&outcome, kept.then(|| p.id.clone())) {
        Some(e) => Err(e),
        None => Ok(Json(views::payment(&p, None)?)),
    }
}

/// A `client_ref` used again must name the same payment: the same code and amount.
fn same_qr_request(p: &Payment, ask: &QrAsk<'_>) -> Result<(), OpError> {
    let same_amount = ask.amount_minor.is_none_or(|a| a == p.amount.amount_minor());
    if p.merchant_id == ask.merchant.id && p.qr_ref == ask.reference && same_amount {
        return Ok(());
    }
    Err(ApiError::new(ErrorCode::IdempotencyConflict, "client_ref was already used with another request")
        .into())
}

/// The payment a dynamic code names, locked and still payable; `Err` with the payment
/// when this customer has paid it already.
async fn dynamic_payment(
    work: &mut Work,
    me: &WalletCaller,
    ask: &QrAsk<'_>,
    reference: &str,
    now: &str,
) -> Result<Result<Payment, Payment>, OpError> {
    let p = work.payment_by_qr_ref(reference).await?.filter(|p| p.merchant_id == ask.merchant.id);
    let p = p.ok_or_else(|| ApiError::not_found("payment"))?;
    if p.status() == PaymentStatus::Succeeded && p.customer_id.as_deref() == Some(me.customer_id.as_str()) {
        return Ok(Err(p));
    }
    if p.status() != PaymentStatus::Pending {
        return Err(ApiError::new(
            ErrorCode::PaymentNotPending,
            format!("payment is {}", p.status().as_str()),
        )
        .into());
    }
    if due(&p, now) {
        return Err(expired().into());
    }
    if ask.amount_minor.is_some_and(|a| a != p.amount.amount_minor()) {
        return Err(ApiError::invalid("amount", "the amount differs from the code's").into());
    }
    Ok(Ok(p))
}

/// A new payment for the amount the customer typed at a static code.
fn static_payment(
    me: &WalletCaller,
    ask: &QrAsk<'_>,
    currency: saoma_core::Currency,
    client_ref: &Option<String>,
    t: chrono::DateTime<chrono::Utc>,
    now: &str,
) -> Payment {
    let key = format!("wallet:{}:{:?}", me.customer_id, client_ref);
    let mut p = Payment::pending(Order {
        id: new_id(prefix::PAYMENT),
        merchant_id: ask.merchant.id.clone(),
        terminal_id: None,
        out_trade_no: format!("wallet_{}", ulid::Ulid::new()),
        amount: Money::new(ask.amount_minor.unwrap_or(0), currency),
        subject: format!("Payment to {}", ask.merchant.name),
        items: "[]".into(),
        mode: PaymentMode::Mpm,
        fingerprint: Some(sha256_hex(key.as_bytes())),
        created_at: now.to_string(),
    });
    p.expires_at = Some(rfc3339(t));
    p
}

/// `POST /v1/wallet/payments/{id}/confirm`: the customer confirms a scanned payment above
/// the password-free limit with the PIN.
#[utoipa::path(
    operation_id = "wallet_pay_confirm",
    post,
    path = "/v1/wallet/payments/{id}/confirm",
    tag = "wallet",
    summary = "Confirms a pending payment with the PIN.",
    request_body = saoma_api::ConfirmRequest,
    params(("id" = String, Path, description = "the payment's id")),
    responses((status = 200, description = "the payment, succeeded", body = saoma_api::Payment), (status = 402, description = "error"), (status = 409, description = "error")),
    security(("wallet_session" = [])),
)]
pub async fn confirm(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::ConfirmRequest>,
) -> ApiResult<Json<api::Payment>> {
    let mine = |p: Option<Payment>| p.filter(|p| p.customer_id.as_deref() == Some(me.customer_id.as_str()));
    let p = mine(state.store.payment(&id).await?).ok_or_else(|| ApiError::not_found("payment"))?;
    if p.status() == PaymentStatus::Succeeded {
        return Ok(Json(views::payment(&p, None)?));
    }
    if p.status() != PaymentStatus::Pending || !p.needs_confirm {
        return Err(ApiError::new(
            ErrorCode::PaymentNotPending,
            format!("payment is {}", p.status().as_str()),
        ));
    }
    if due(&p, &now().1) {
        return Err(expired());
    }
    verify_pin(&state, &me.customer_id, &req.pin).await?;
    let merchant = active_merchant(&state, &p.merchant_id).await?;
    let rules = risk::rules(&state).await?;
    let (p, outcome) = retry_on_conflict(|| async {
        let (_, now) = now();
        let mut work = Work::begin(&state).await?;
        let mut p = mine(work.payment(&id).await?).ok_or_else(|| ApiError::not_found("payment"))?;
        if p.status() != PaymentStatus::Pending {
            return Ok((p, Outcome::Charged));
        }
        if due(&p, &now) {
            // Its time ran out while the PIN was checked: it closes now, and is not paid.
            close(&mut work, &mut p, "system", "expired", &now).await?;
            work.commit(&state).await?;
            return Err(expired().into());
        }
        let payer = payer_now(&mut work, &me).await?;
        // The attempt was counted when the till scanned the code; frozen and the limits
        // are looked at again now.
        let c = Charge {
            payer: &payer,
            amount: p.amount,
            pin: PinProof::Verified,
            count_velocity: false,
            rules: &rules,
            actor: &me.customer_id,
        };
        let payee = Payee::Merchant {
            payment: &mut p,
            merchant: &merchant,
            stored: true,
            on_decline: OnDecline::FailPayment,
            receipt: None,
        };
        let outcome = charge::charge(&state, &mut work, &c, payee, &now).await?;
        work.commit(&state).await?;
        Ok((p, outcome))
    })
    .await?;
    match refusal(&outcome, Some(p.id.clone())) {
        Some(e) => Err(e),
        None => Ok(Json(views::payment(&p, None)?)),
    }
}

/// `POST /v1/wallet/transfers`: to a phone number or a scanned receive code; idempotent
/// on `client_ref`.
#[utoipa::path(
    operation_id = "wallet_pay_transfer",
    post,
    path = "/v1/wallet/transfers",
    tag = "wallet",
    summary = "Sends money to another customer.",
    request_body = saoma_api::TransferRequest,
    responses((status = 200, description = "the transfer", body = saoma_api::Transfer), (status = 402, description = "error"), (status = 409, description = "error")),
    security(("wallet_session" = [])),
)]
pub async fn transfer(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
    ApiJson(req): ApiJson<api::TransferRequest>,
) -> ApiResult<Json<api::Transfer>> {
    let amount = money_of(req.amount, currency_of(&req.currency)?)?;
    client_key("client_ref", &req.client_ref)?;
    // The PIN first: without it, the answer must not tell whether the phone has a wallet.
    verify_pin(&state, &me.customer_id, &req.pin).await?;
    let to = match (&req.to_phone, &req.qr_payload) {
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
    let rules = risk::rules(&state).await?;
    let (t, outcome) = retry_on_conflict(|| async {
        let (_, now) = now();
        let mut work = Work::begin(&state).await?;
        if let Some(existing) = work.transfer_by_client_ref(&me.customer_id, &req.client_ref).await? {
            if existing.to_customer_id != to.id
                || existing.amount != req.amount
                || existing.currency != req.currency
            {
                return Err(ApiError::new(
                    ErrorCode::IdempotencyConflict,
                    "client_ref was already used with other parameters",
                )
                .into());
            }
            return Ok((existing, Outcome::Charged));
        }
        let payer = payer_now(&mut work, &me).await?;
        let t = TransferRow {
            id: new_id(prefix::TRANSFER),
            from_customer_id: me.customer_id.clone(),
            to_customer_id: to.id.clone(),
            amount: req.amount,
            currency: req.currency.clone(),
            client_ref: req.client_ref.clone(),
            created_at: now.clone(),
        };
        let c = Charge {
            payer: &payer,
            amount,
            pin: PinProof::Verified,
            count_velocity: false,
            rules: &rules,
            actor: &me.customer_id,
        };
        let outcome = charge::charge(&state, &mut work, &c, Payee::Customer { transfer: &t }, &now).await?;
        work.commit(&state).await?;
        Ok((t, outcome))
    })
    .await?;
    if let Some(e) = refusal(&outcome, None) {
        return Err(e);
    }
    Ok(Json(views::transfer(&t)))
}
