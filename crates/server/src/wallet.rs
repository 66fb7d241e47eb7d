//! The customer's wallet API: sessions, balances, payment codes (online and device
//! enrolment for offline codes), paying a merchant's QR, confirming with the PIN,
//! transfers and history. PINs are Argon2id hashes; five wrong PINs in a row lock PIN use.

use crate::auth::WalletCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::payments::{
    OpError, Order, active_merchant, charge, client_key, currency_of, emit, money_of, pending_payment,
    retry_on_conflict,
};
use crate::util::{new_id, now, random_token, rfc3339, sha256_hex};
use crate::{AppState, views};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use rand::Rng;
use saoma_api as api;
use saoma_core::ids::prefix;
use saoma_core::{emv, ledger, paycode, payment};
use saoma_store::{AuditRecord, MerchantRow, StoreError, TransferRow};
use serde::Deserialize;
use serde_json::json;

const SESSION_DAYS: i64 = 7;
const PIN_FAILURES_MAX: i64 = 5;
const PIN_LOCK_MINUTES: i64 = 15;

/// Hashes a PIN with Argon2id.
pub fn hash_pin(pin: &str) -> ApiResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(pin.as_bytes(), &salt).map(|h| h.to_string()).map_err(ApiError::internal)
}

fn pin_matches(hash: &str, pin: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(pin.as_bytes(), &h).is_ok())
}

fn pin_locked() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "pin_locked", "too many wrong PINs; PIN use is locked for a while")
}

/// Checks a customer's PIN, counting failures: the fifth wrong PIN in a row locks PIN use
/// for 15 minutes, doubling with each further lock.
pub async fn verify_pin(state: &AppState, customer_id: &str, pin: &str) -> ApiResult<()> {
    let c = state.store.customer(customer_id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    let (t, now) = now();
    if c.pin_locked_until.as_deref().is_some_and(|u| u > now.as_str()) {
        return Err(pin_locked());
    }
    let hash = c.pin_hash.clone();
    let pin_owned = pin.to_string();
    let ok = tokio::task::spawn_blocking(move || pin_matches(&hash, &pin_owned))
        .await
        .map_err(ApiError::internal)?;
    let mut tx = state.store.begin().await?;
    let fresh = tx.customer(customer_id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    if ok {
        if fresh.pin_failures != 0 {
            tx.set_pin_state(customer_id, 0, fresh.pin_locks, None).await?;
            tx.commit().await?;
        }
        return Ok(());
    }
    let failures = fresh.pin_failures + 1;
    if failures >= PIN_FAILURES_MAX {
        let minutes = PIN_LOCK_MINUTES << fresh.pin_locks.clamp(0, 6);
        let until = rfc3339(t + chrono::Duration::minutes(minutes));
        tx.set_pin_state(customer_id, 0, fresh.pin_locks + 1, Some(&until)).await?;
        tx.insert_audit(
            &AuditRecord {
                actor: customer_id,
                action: "pin.locked",
                object_id: customer_id,
                detail: json!({"minutes": minutes}),
            },
            &now,
        )
        .await?;
        tx.commit().await?;
        return Err(pin_locked());
    }
    tx.set_pin_state(customer_id, failures, fresh.pin_locks, None).await?;
    tx.commit().await?;
    Err(ApiError::new(StatusCode::FORBIDDEN, "invalid_pin", "wrong PIN"))
}

/// `POST /v1/wallet/session`.
pub async fn create_session(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<api::SessionRequest>,
) -> ApiResult<Json<api::Session>> {
    let denied = || ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "wrong phone or PIN");
    let c = state.store.customer_by_phone(&req.phone).await?.ok_or_else(denied)?;
    match verify_pin(&state, &c.id, &req.pin).await {
        Err(e) if e.code == "invalid_pin" => return Err(denied()),
        other => other?,
    }
    let (t, now) = now();
    let token = random_token("ws_");
    let expires_at = rfc3339(t + chrono::Duration::days(SESSION_DAYS));
    let mut tx = state.store.begin().await?;
    tx.insert_session(&sha256_hex(token.as_bytes()), &c.id, &expires_at, &now).await?;
    tx.commit().await?;
    Ok(Json(api::Session { token, expires_at }))
}

/// `GET /v1/wallet`.
pub async fn get_wallet(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
) -> ApiResult<Json<api::Wallet>> {
    let balances = state.store.balances(&me.customer_id).await?;
    Ok(Json(api::Wallet {
        customer_id: me.customer_id,
        balances: balances
            .into_iter()
            .map(|b| api::Balance { currency: b.currency, available: b.balance })
            .collect(),
        limits: api::Limits { password_free_major_units: 1000 },
    }))
}

/// `POST /v1/wallet/payment-codes`: an online code, valid 60 seconds, single use.
pub async fn issue_code(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
) -> ApiResult<Json<api::PaymentCodeIssued>> {
    let (t, _) = now();
    let code = paycode::online_code(rand::thread_rng().gen_range(0..10_000_000_000_000_000u64));
    let expires_at = rfc3339(t + chrono::Duration::seconds(paycode::ONLINE_TTL_SECONDS));
    let mut tx = state.store.begin().await?;
    tx.insert_online_code(&crate::codes::code_hash(&code), &me.customer_id, &expires_at).await?;
    tx.commit().await?;
    Ok(Json(api::PaymentCodeIssued { code, expires_at }))
}

/// `POST /v1/wallet/devices`: enrols a device to make codes offline (docs/payment-codes.md).
pub async fn enroll_device(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
) -> ApiResult<Json<api::DeviceEnrolled>> {
    let device_id = new_id(prefix::DEVICE);
    let secret = crate::util::random_hex(32);
    let slot = retry_on_conflict(|| async {
        let (_, now) = now();
        let slot = rand::thread_rng().gen_range(0..paycode::SLOT_SPACE);
        let mut tx = state.store.begin().await?;
        let sealed = state.keys.sealer.seal(&secret);
        tx.insert_device(&device_id, &me.customer_id, i64::from(slot), &sealed, &now).await?;
        tx.insert_audit(
            &AuditRecord {
                actor: &me.customer_id,
                action: "device.enroll",
                object_id: &device_id,
                detail: json!({}),
            },
            &now,
        )
        .await?;
        tx.commit().await?;
        Ok(slot)
    })
    .await?;
    Ok(Json(api::DeviceEnrolled {
        device_id,
        secret,
        slot,
        mask_key: hex::encode(&state.keys.mask_key),
        step_seconds: paycode::STEP_SECONDS,
    }))
}

/// A scanned merchant code, with the merchant it names.
struct ScannedCode {
    payload: emv::MpmPayload,
    merchant: MerchantRow,
}

async fn scan_merchant_code(state: &AppState, qr_payload: &str) -> ApiResult<ScannedCode> {
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
    Ok(ScannedCode { payload, merchant })
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

fn insufficient(payment_id: Option<String>) -> OpError {
    OpError::Api(ApiError::declined("insufficient_funds", payment_id))
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
    let merchant = active_merchant(&state, &scanned.merchant.id).await?;
    let currency = currency_of(&merchant.currency)?;
    let reference = scanned.payload.reference().map(str::to_string);
    let amount_minor = match (&reference, req.amount) {
        (Some(_), _) => None,
        (None, Some(a)) => Some(money_of(a, currency)?.amount_minor()),
        (None, None) => return Err(ApiError::invalid("amount", "a static code needs the amount")),
    };
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
    if !pin_checked && due.is_some_and(|a| a > payment::password_free_limit_minor(currency)) {
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
        match charge(&state, &mut tx, &mut p, &merchant, &me.customer_id, &me.customer_id, &now).await {
            Err(StoreError::InsufficientFunds(_)) => {
                return Err(insufficient(reference.as_ref().map(|_| p.id.clone())));
            }
            other => other?,
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
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    let mut p = tx.payment(&id).await?.ok_or_else(|| ApiError::not_found("payment"))?;
    if p.status != "pending" {
        return Ok(Json(views::payment(&p, None)));
    }
    match charge(&state, &mut tx, &mut p, &merchant, &me.customer_id, &me.customer_id, &now).await {
        Ok(()) => {
            tx.update_payment(&p).await?;
            tx.commit().await?;
        }
        Err(StoreError::InsufficientFunds(_)) => {
            drop(tx);
            let mut tx = state.store.begin().await?;
            let mut p = tx.payment(&id).await?.ok_or_else(|| ApiError::not_found("payment"))?;
            if p.status == "pending" {
                p.status = "failed".into();
                p.failure_code = Some("insufficient_funds".into());
                p.needs_confirm = 0;
                tx.update_payment(&p).await?;
                tx.commit().await?;
            }
            state.committed();
            return Err(ApiError::declined("insufficient_funds", Some(p.id)));
        }
        Err(e) => return Err(e.into()),
    }
    state.committed();
    Ok(Json(views::payment(&p, None)))
}

/// `GET /v1/wallet/receive-code` → `{qr_payload, qr_png_url}`: the code a friend scans to
/// send this customer money. Stable and opaque: it names neither the customer id nor the
/// phone.
pub async fn receive_code(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
) -> ApiResult<Json<serde_json::Value>> {
    let token = state.store.receive_token(&me.customer_id, &ulid::Ulid::new().to_string(), &now().1).await?;
    let payload = format!("{}{token}", saoma_core::scan::RECEIVE_PREFIX);
    let png = format!("/v1/qr.png?payload={payload}");
    Ok(Json(serde_json::json!({"qr_payload": payload, "qr_png_url": png})))
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
        match tx.post_entry(&new_id(prefix::ENTRY), "transfer", &t.id, &entry, &now).await {
            Err(StoreError::InsufficientFunds(_)) => return Err(insufficient(None)),
            other => other?,
        }
        let data = json!({"id": t.id, "amount": t.amount, "currency": t.currency});
        emit(&mut tx, "transfer.succeeded", None, Some(&me.customer_id), data, &now).await?;
        tx.insert_audit(
            &AuditRecord {
                actor: &me.customer_id,
                action: "transfer.create",
                object_id: &t.id,
                detail: json!({"amount": t.amount}),
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

/// `?limit=` of the history.
#[derive(Deserialize)]
pub struct LimitQuery {
    limit: Option<i64>,
}

/// `GET /v1/wallet/transactions`.
pub async fn transactions(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
    Query(q): Query<LimitQuery>,
) -> ApiResult<Json<api::Page<api::WalletTransaction>>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1-100"));
    }
    let rows = state.store.history(&me.customer_id, limit).await?;
    let data = rows
        .into_iter()
        .map(|h| api::WalletTransaction {
            kind: h.kind,
            id: h.id,
            amount: h.amount,
            currency: h.currency,
            description: h.description,
            created_at: h.created_at,
            receipt_jws: h.receipt_jws,
        })
        .collect();
    Ok(Json(api::Page { data, next_cursor: None }))
}
