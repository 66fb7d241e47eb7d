//! The wallet paying: resolving and paying a merchant's QR, confirming a scanned payment
//! with the PIN, and transfers. Every path asks the risk rules first (frozen wallet,
//! per-payment limit, velocity) and checks the daily limit inside the money transaction.

use crate::audit::Audit;
use crate::auth::WalletCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::payments::{
    ChargeError, OpError, Order, Payer, active_merchant, charge, client_key, currency_of, emit, money_of,
    pending_payment, retry_on_conflict,
};
use crate::util::{new_id, now, rfc3339, sha256_hex};
use crate::wallet::verify_pin;
use crate::{AppState, risk, views};
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use saoma_api as api;
use saoma_api::qr_signature::{self, Verdict};
use saoma_core::ids::prefix;
use saoma_core::money::Money;
use saoma_core::risk::{Decline, Rules};
use saoma_core::{emv, ledger};
use saoma_store::{AuditRecord, CustomerRow, MerchantRow, StoreError, TransferRow};
use serde_json::json;

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
    let payload = emv::decode(qr_payload.trim())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_qr", e.to_string()))?;
    let merchant_id = payload.saoma_merchant_id().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_qr",
            "this code belongs to another payment scheme",
        )
    })?;
    let merchant = state.store.merchant(merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let verdict = qr_signature::verify(&payload, &crate::receipts::key_set(&state.store).await?);
    Ok(ScannedCode { payload, merchant, verdict })
}

/// `POST /v1/wallet/qr/resolve`.
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
        out.amount = Some(p.amount);
        out.payment_id = Some(p.id);
    }
    Ok(Json(out))
}

/// The customer paying, as stored now (frozen and tier may have changed since login).
async fn me_now(state: &AppState, me: &WalletCaller) -> ApiResult<CustomerRow> {
    state.store.customer(&me.customer_id).await?.ok_or_else(|| ApiError::not_found("customer"))
}

/// Keeps a decline and answers it (402 with the failure code).
async fn declined(
    state: &AppState,
    d: &Decline,
    me: &CustomerRow,
    payment_id: Option<String>,
    rules: &Rules,
) -> OpError {
    if let Err(e) = risk::record(state, d, &me.id, payment_id.as_deref(), rules).await {
        return e.into();
    }
    OpError::Api(ApiError::declined(d.code, payment_id))
}

/// `POST /v1/wallet/qr/pay`: pays a dynamic code's payment, or the amount typed for a
/// static code. Idempotent on `client_ref`.
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
            StatusCode::BAD_REQUEST,
            "qr_signature_invalid",
            format!("this code's signature is not valid ({why}); it may be a sticker over the real code"),
        ));
    }
    let merchant = active_merchant(&state, &scanned.merchant.id).await?;
    let currency = currency_of(&merchant.currency)?;
    let reference = scanned.payload.reference().map(str::to_string);
    let amount_minor = match (&reference, req.amount) {
        (Some(_), _) => None,
        (None, Some(a)) => Some(money_of(a, currency)?.amount_minor()),
        (None, None) => return Err(ApiError::invalid("amount", "a static code needs the amount")),
    };
    let rules = risk::rules(&state).await?;
    // The PIN is checked before the transaction: Argon2 is slow on purpose.
    let due = match &reference {
        Some(r) => state.store.payment_by_qr_ref(r).await?.map(|p| p.amount),
        None => amount_minor,
    };
    let pin_checked = match &req.pin {
        Some(pin) => {
            verify_pin(&state, &me.customer_id, pin).await?;
            true
        }
        None => false,
    };
    if !pin_checked && due.is_some_and(|a| rules.needs_pin(a, currency)) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "pin_required", "this amount needs the PIN"));
    }
    let p = retry_on_conflict(|| async {
        let (t, now) = now();
        let mut tx = state.store.begin().await?;
        if let Some(r) = &req.client_ref
            && let Some(id) = tx.wallet_request(&me.customer_id, r).await?
        {
            return tx
                .payment(&id)
                .await?
                .ok_or_else(|| OpError::Store(StoreError::Corrupt("lost wallet request".into())));
        }
        // A dynamic code's payment exists already; a static code's is made here.
        let (mut p, is_new) = match &reference {
            Some(r) => {
                let p = tx.payment_by_qr_ref(r).await?.filter(|p| p.merchant_id == merchant.id);
                let p = p.ok_or_else(|| ApiError::not_found("payment"))?;
                if p.status == "succeeded" && p.customer_id.as_deref() == Some(me.customer_id.as_str()) {
                    return Ok(p);
                }
                if p.status != "pending" {
                    return Err(ApiError::conflict(
                        "payment_not_pending",
                        format!("payment is {}", p.status),
                    )
                    .into());
                }
                if p.expires_at.as_deref().is_some_and(|e| e <= now.as_str()) {
                    return Err(ApiError::conflict("payment_expired", "this code has expired").into());
                }
                if req.amount.is_some_and(|a| a != p.amount) {
                    return Err(ApiError::invalid("amount", "the amount differs from the code's").into());
                }
                (p, false)
            }
            None => {
                let out_trade_no = format!("wallet_{}", ulid::Ulid::new());
                let subject = format!("Payment to {}", merchant.name);
                let client_ref = format!("wallet:{}:{:?}", me.customer_id, req.client_ref);
                let order = Order {
                    merchant_id: &merchant.id,
                    terminal_id: None,
                    out_trade_no: &out_trade_no,
                    amount: amount_minor.unwrap_or(0),
                    currency: &merchant.currency,
                    subject: &subject,
                    items_json: "[]".into(),
                    mode: "mpm",
                    fingerprint: Some(sha256_hex(client_ref.as_bytes())),
                };
                let mut p = pending_payment(order, &now);
                p.expires_at = Some(rfc3339(t));
                (p, true)
            }
        };
        // A declined dynamic payment stays pending: the customer may top up and pay it.
        let shown_id = reference.as_ref().map(|_| p.id.clone());
        let customer = me_now(&state, &me).await?;
        let amount = Money::new(p.amount, currency);
        if let Err(d) = risk::check_wallet(&state, &rules, &customer, amount, true).await? {
            drop(tx);
            return Err(declined(&state, &d, &customer, shown_id, &rules).await);
        }
        let by = Payer { customer: &customer, rules: &rules, actor: &me.customer_id };
        match charge(&state, &mut tx, &mut p, &merchant, &by, &now).await {
            Err(ChargeError::Declined(d)) => {
                drop(tx);
                return Err(declined(&state, &d, &customer, shown_id, &rules).await);
            }
            Err(ChargeError::Store(e)) => return Err(e.into()),
            Ok(()) => {}
        }
        if is_new {
            tx.insert_payment(&p).await?;
        } else {
            tx.update_payment(&p).await?;
        }
        if let Some(r) = &req.client_ref {
            tx.insert_wallet_request(&me.customer_id, r, &p.id).await?;
        }
        tx.commit().await?;
        Ok(p)
    })
    .await?;
    state.committed();
    Ok(Json(views::payment(&p, None)))
}

/// Marks a pending payment the customer was asked to confirm as failed, with why.
async fn fail_pending(state: &AppState, id: &str, d: &Decline, rules: &Rules) -> ApiResult<ApiError> {
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    let mut p = tx.payment(id).await?.ok_or_else(|| ApiError::not_found("payment"))?;
    if p.status == "pending" {
        p.status = "failed".into();
        p.failure_code = Some(d.code.to_string());
        p.needs_confirm = 0;
        tx.update_payment(&p).await?;
        let subject = p.customer_id.clone().unwrap_or_default();
        tx.insert_risk_decision(&risk::decision(d, &subject, Some(id), rules, &now)).await?;
        tx.commit().await?;
    }
    state.committed();
    Ok(ApiError::declined(d.code, Some(p.id)))
}

/// `POST /v1/wallet/payments/{id}/confirm`: the customer confirms a scanned payment above
/// the password-free limit with the PIN.
pub async fn confirm(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::ConfirmRequest>,
) -> ApiResult<Json<api::Payment>> {
    let p =
        state.store.payment(&id).await?.filter(|p| p.customer_id.as_deref() == Some(me.customer_id.as_str()));
    let p = p.ok_or_else(|| ApiError::not_found("payment"))?;
    if p.status == "succeeded" {
        return Ok(Json(views::payment(&p, None)));
    }
    if p.status != "pending" || p.needs_confirm != 1 {
        return Err(ApiError::conflict("payment_not_pending", format!("payment is {}", p.status)));
    }
    verify_pin(&state, &me.customer_id, &req.pin).await?;
    let merchant = active_merchant(&state, &p.merchant_id).await?;
    let rules = risk::rules(&state).await?;
    let customer = me_now(&state, &me).await?;
    let amount = Money::new(p.amount, currency_of(&p.currency)?);
    // The attempt was counted when the till scanned the code; frozen and the limit may
    // have changed since.
    if let Err(d) = risk::check_wallet(&state, &rules, &customer, amount, false).await? {
        return Err(fail_pending(&state, &id, &d, &rules).await?);
    }
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    let mut p = tx.payment(&id).await?.ok_or_else(|| ApiError::not_found("payment"))?;
    if p.status != "pending" {
        return Ok(Json(views::payment(&p, None)));
    }
    let by = Payer { customer: &customer, rules: &rules, actor: &me.customer_id };
    match charge(&state, &mut tx, &mut p, &merchant, &by, &now).await {
        Ok(()) => {
            tx.update_payment(&p).await?;
            tx.commit().await?;
        }
        Err(ChargeError::Declined(d)) => {
            drop(tx);
            return Err(fail_pending(&state, &id, &d, &rules).await?);
        }
        Err(ChargeError::Store(e)) => return Err(e.into()),
    }
    state.committed();
    Ok(Json(views::payment(&p, None)))
}

/// `POST /v1/wallet/transfers`: to a phone number or a scanned receive code; idempotent
/// on `client_ref`.
pub async fn transfer(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
    ApiJson(req): ApiJson<api::TransferRequest>,
) -> ApiResult<Json<api::Transfer>> {
    let amount = money_of(req.amount, currency_of(&req.currency)?)?;
    client_key("client_ref", &req.client_ref)?;
    let to = match (&req.to_phone, &req.qr_payload) {
        (Some(phone), None) => state.store.customer_by_phone(phone).await?,
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
    verify_pin(&state, &me.customer_id, &req.pin).await?;
    let rules = risk::rules(&state).await?;
    let t = retry_on_conflict(|| async {
        let (_, now) = now();
        let mut tx = state.store.begin().await?;
        if let Some(existing) = tx.transfer_by_client_ref(&me.customer_id, &req.client_ref).await? {
            if existing.to_customer_id != to.id
                || existing.amount != req.amount
                || existing.currency != req.currency
            {
                return Err(ApiError::conflict(
                    "idempotency_conflict",
                    "client_ref was already used with other parameters",
                )
                .into());
            }
            return Ok(existing);
        }
        let customer = me_now(&state, &me).await?;
        if let Err(d) = risk::check_wallet(&state, &rules, &customer, amount, false).await? {
            drop(tx);
            return Err(declined(&state, &d, &customer, None, &rules).await);
        }
        let t = TransferRow {
            id: new_id(prefix::TRANSFER),
            from_customer_id: me.customer_id.clone(),
            to_customer_id: to.id.clone(),
            amount: req.amount,
            currency: req.currency.clone(),
            client_ref: req.client_ref.clone(),
            created_at: now.clone(),
        };
        tx.insert_transfer(&t).await?;
        let entry = ledger::transfer_entry(&me.customer_id, &to.id, amount).map_err(ApiError::internal)?;
        let posted = match tx.post_entry(&new_id(prefix::ENTRY), "transfer", &t.id, &entry, &now).await {
            Err(StoreError::InsufficientFunds(_)) => Err(Decline::plain("insufficient_funds")),
            Err(e) => return Err(e.into()),
            Ok(()) => risk::check_daily(&mut tx, &rules, &customer, amount, &t.id).await?,
        };
        if let Err(d) = posted {
            drop(tx);
            return Err(declined(&state, &d, &customer, None, &rules).await);
        }
        let data = json!({"id": t.id, "amount": t.amount, "currency": t.currency});
        emit(&mut tx, "transfer.succeeded", None, Some(&me.customer_id), data, &now).await?;
        tx.audit(
            &AuditRecord {
                actor: &me.customer_id,
                action: "transfer.create",
                object_id: &t.id,
                detail: json!({"amount": t.amount, "risk": {"rules_version": rules.version, "tier": customer.tier}}),
            },
            &now,
        )
        .await?;
        tx.commit().await?;
        Ok(t)
    })
    .await?;
    Ok(Json(api::Transfer {
        id: t.id,
        from_customer_id: t.from_customer_id,
        to_customer_id: t.to_customer_id,
        amount: t.amount,
        currency: t.currency,
        client_ref: t.client_ref,
        created_at: t.created_at,
    }))
}
