//! The customer's wallet API: sessions, balances, payment codes (online and device
//! enrolment for offline codes), paying a merchant's QR, confirming with the PIN,
//! transfers and history. PIN checks and their lockout are in `crate::pin`.

use crate::AppState;
use crate::audit::Audit;
use crate::auth::WalletCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiQuery};
use crate::page;
use crate::payments::retry_on_conflict;
use crate::pin::{verify_pin, verify_stranger};
use crate::util::{new_id, now, random_token, rfc3339, sha256_hex};
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use rand::Rng;
use saoma_api as api;
use saoma_api::ErrorCode;
use saoma_core::ids::prefix;
use saoma_core::paycode;
use saoma_store::AuditRecord;
use serde_json::json;

const SESSION_DAYS: i64 = 7;

/// `POST /v1/wallet/session`.
#[utoipa::path(
    operation_id = "wallet_create_session",
    post,
    path = "/v1/wallet/session",
    tag = "wallet",
    summary = "Signs a customer in with phone and PIN.",
    request_body = saoma_api::SessionRequest,
    responses(
        (status = 200, description = "the session", body = saoma_api::Session),
        (status = 401, description = "wrong phone or PIN"),
    ),
)]
pub async fn create_session(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<api::SessionRequest>,
) -> ApiResult<Json<api::Session>> {
    let denied = || ApiError::new(ErrorCode::Unauthenticated, "wrong phone or PIN");
    // A phone nobody has is weighed, counted and locked out as a wrong PIN is: neither the
    // answer, its time nor the lockout tells which phones exist.
    let Some(c) = state.store.customer_by_phone(&req.phone).await? else {
        return match verify_stranger(&state, &req.phone, &req.pin).await {
            Err(e) if e.code == ErrorCode::InvalidPin => Err(denied()),
            Err(e) => Err(e),
            Ok(()) => Err(ApiError::internal("a stranger's PIN check succeeded")),
        };
    };
    match verify_pin(&state, &c.id, &req.pin).await {
        Err(e) if e.code == ErrorCode::InvalidPin => return Err(denied()),
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

/// `DELETE /v1/wallet/session`: signs out; the token stops working at once.
#[utoipa::path(
    operation_id = "wallet_end_session",
    delete,
    path = "/v1/wallet/session",
    tag = "wallet",
    summary = "Signs out.",
    responses((status = 204, description = "signed out")),
    security(("wallet_session" = [])),
)]
pub async fn end_session(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
) -> ApiResult<axum::http::StatusCode> {
    let mut tx = state.store.begin().await?;
    tx.delete_session(&me.session).await?;
    tx.commit().await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `GET /v1/wallet`.
#[utoipa::path(
    operation_id = "wallet_get_wallet",
    get,
    path = "/v1/wallet",
    tag = "wallet",
    summary = "The wallet.",
    responses((status = 200, description = "balances and limits", body = saoma_api::Wallet)),
    security(("wallet_session" = [])),
)]
pub async fn get_wallet(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
) -> ApiResult<Json<api::Wallet>> {
    let balances = state.store.balances(&me.customer_id).await?;
    let c = state.store.customer(&me.customer_id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    let rules = crate::risk::rules(&state).await?;
    let tier = rules.limits(&c.tier);
    Ok(Json(api::Wallet {
        customer_id: me.customer_id,
        balances: balances
            .into_iter()
            .map(|b| api::Balance { currency: b.currency, available: b.balance })
            .collect(),
        limits: api::Limits {
            password_free_major_units: rules.password_free,
            tier: c.tier,
            per_payment_major_units: tier.per_payment,
            daily_major_units: tier.daily,
        },
        frozen: c.frozen != 0,
    }))
}

/// `POST /v1/wallet/payment-codes`: an online code, valid 60 seconds, single use.
#[utoipa::path(
    operation_id = "wallet_issue_code",
    post,
    path = "/v1/wallet/payment-codes",
    tag = "wallet",
    summary = "Issues a payment code.",
    responses((status = 200, description = "a one-time payment code", body = saoma_api::PaymentCodeIssued)),
    security(("wallet_session" = [])),
)]
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

/// `POST /v1/wallet/devices` `{pin}`: enrols a device to make codes offline
/// (docs/payment-codes.md). A device pays without the network, so enrolling one needs the
/// PIN, not only a session.
#[utoipa::path(
    operation_id = "wallet_enroll_device",
    post,
    path = "/v1/wallet/devices",
    tag = "wallet",
    summary = "Enrols a device for offline codes (needs the PIN).",
    request_body = saoma_api::EnrollDeviceRequest,
    responses(
        (status = 200, description = "the device and its secret, shown this once", body = saoma_api::DeviceEnrolled),
        (status = 409, description = "`too_many_devices`: the wallet has as many devices as it may"),
    ),
    security(("wallet_session" = [])),
)]
pub async fn enroll_device(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
    body: Option<ApiJson<api::EnrollDeviceRequest>>,
) -> ApiResult<Json<api::DeviceEnrolled>> {
    let pin = body
        .and_then(|ApiJson(b)| b.pin)
        .ok_or_else(|| ApiError::new(ErrorCode::PinRequired, "enrolling a device needs the PIN"))?;
    verify_pin(&state, &me.customer_id, &pin).await?;
    let device_id = new_id(prefix::DEVICE);
    let secret = crate::util::random_hex(32);
    let slot = retry_on_conflict(|| async {
        let (_, now) = now();
        let slot = rand::thread_rng().gen_range(0..paycode::SLOT_SPACE);
        let mut tx = state.store.begin().await?;
        // Signed out everywhere while the PIN was weighed: no device for this session.
        if !tx.session_live(&me.session).await? {
            return Err(ApiError::new(ErrorCode::Unauthenticated, "the session has ended").into());
        }
        if tx.live_device_count(&me.customer_id).await? >= DEVICES_MAX {
            let why = format!("at most {DEVICES_MAX} devices make codes at once; remove one first");
            return Err(ApiError::new(ErrorCode::TooManyDevices, why).into());
        }
        let sealed = state.keys.sealer.seal(crate::secrets::Place::device(&device_id), &secret);
        tx.insert_device(&device_id, &me.customer_id, i64::from(slot), &sealed, &now).await?;
        tx.audit(
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
        step_seconds: paycode::STEP_SECONDS,
        schedule: schedule_from_now(&state, slot).await?,
    }))
}

/// `GET /v1/wallet/devices`: the customer's enrolled devices that still make codes.
#[utoipa::path(
    operation_id = "wallet_list_devices",
    get,
    path = "/v1/wallet/devices",
    tag = "wallet",
    summary = "The enrolled devices.",
    responses((status = 200, description = "the enrolled devices", body = saoma_api::Page<saoma_api::Device>)),
    security(("wallet_session" = [])),
)]
pub async fn list_devices(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
    ApiQuery(q): ApiQuery<saoma_api::PageQuery>,
) -> ApiResult<Json<api::Page<api::Device>>> {
    let limit = page::limit(q.limit, 20)?;
    let after = DEVICES.read::<2>(q.cursor.as_deref())?.map(|[at, id]| (at, id));
    let rows = state.store.live_devices_page(&me.customer_id, after, limit + 1).await?;
    let (rows, next_cursor) = DEVICES.page(rows, limit, |d| vec![d.created_at.as_str(), d.id.as_str()])?;
    let data = rows.into_iter().map(|d| api::Device { id: d.id, created_at: d.created_at }).collect();
    Ok(Json(api::Page { data, next_cursor }))
}

/// The device list's cursor: the enrolment time and id of the last device shown.
const DEVICES: page::Cursor = page::Cursor::of("devices");

/// The most devices one customer may have making codes at once. Each holds a secret
/// that makes valid codes, so more would only widen what a lost phone gives away.
pub const DEVICES_MAX: i64 = 10;

/// `DELETE /v1/wallet/devices/{id}`: removes a device; its offline codes are refused from
/// now on.
#[utoipa::path(
    operation_id = "wallet_remove_device",
    delete,
    path = "/v1/wallet/devices/{id}",
    tag = "wallet",
    summary = "Removes a device.",
    params(("id" = String, Path, description = "the device's id")),
    responses((status = 204, description = "removed")),
    security(("wallet_session" = [])),
)]
pub async fn remove_device(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    let device = tx.device(&id).await?.filter(|d| d.customer_id == me.customer_id && d.revoked_at.is_none());
    let device = device.ok_or_else(|| ApiError::not_found("device"))?;
    tx.revoke_devices(&me.customer_id, Some(&device.id), &now).await?;
    let audit = AuditRecord {
        actor: &me.customer_id,
        action: "device.remove",
        object_id: &device.id,
        detail: json!({}),
    };
    tx.audit(&audit, &now).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/wallet/devices/{id}/schedule`: the device's locators from now on, fetched
/// whenever the device is online (docs/payment-codes.md). A removed device, or another
/// customer's, is not found.
#[utoipa::path(
    operation_id = "wallet_device_schedule",
    post,
    path = "/v1/wallet/devices/{id}/schedule",
    tag = "wallet",
    summary = "A device's next schedule.",
    params(("id" = String, Path, description = "the device's id")),
    responses((status = 200, description = "the device's next locators", body = saoma_api::CodeSchedule)),
    security(("wallet_session" = [])),
)]
pub async fn device_schedule(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
    Path(id): Path<String>,
) -> ApiResult<Json<api::CodeSchedule>> {
    let device = state
        .store
        .device(&id)
        .await?
        .filter(|d| d.customer_id == me.customer_id && d.revoked_at.is_none())
        .ok_or_else(|| ApiError::not_found("device"))?;
    let slot = u32::try_from(device.slot).map_err(ApiError::internal)?;
    Ok(Json(schedule_from_now(&state, slot).await?))
}

/// A device's schedule: its locators from ten minutes back (a slow clock still finds its
/// step) to 48 hours ahead, enciphered off the async threads.
async fn schedule_from_now(state: &AppState, slot: u32) -> ApiResult<api::CodeSchedule> {
    let keys = state.keys.clone();
    let first = paycode::step_of(now().0.timestamp()) - paycode::SCHEDULE_BACK_STEPS;
    let count = paycode::SCHEDULE_BACK_STEPS + paycode::SCHEDULE_AHEAD_STEPS;
    let locators = tokio::task::spawn_blocking(move || keys.slot_cipher.schedule(slot, first, count))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(api::CodeSchedule::new(first, &locators))
}

/// `GET /v1/wallet/receive-code` → `{qr_payload, qr_png_url}`: the code a friend scans to
/// send this customer money. Stable and opaque: it names neither the customer id nor the
/// phone.
#[utoipa::path(
    operation_id = "wallet_receive_code",
    get,
    path = "/v1/wallet/receive-code",
    tag = "wallet",
    summary = "The code others scan to transfer to this customer.",
    responses((status = 200, description = "`{qr_payload, qr_png_url}` of the customer's code to be paid", body = api::ReceiveCode)),
    security(("wallet_session" = [])),
)]
pub async fn receive_code(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
) -> ApiResult<Json<api::ReceiveCode>> {
    let token = state.store.receive_token(&me.customer_id, &ulid::Ulid::new().to_string(), &now().1).await?;
    let payload = format!("{}{token}", saoma_core::scan::RECEIVE_PREFIX);
    let png = format!("/v1/qr.png?payload={payload}");
    Ok(Json(api::ReceiveCode { qr_payload: payload, qr_png_url: png }))
}

/// The history's cursor: the time and id of the last item shown.
const HISTORY: page::Cursor = page::Cursor::of("wallet_transactions");

/// `GET /v1/wallet/transactions`: newest first, a page at a time.
#[utoipa::path(
    operation_id = "wallet_transactions",
    get,
    path = "/v1/wallet/transactions",
    tag = "wallet",
    summary = "The customer's history.",
    params(api::PageQuery),
    responses((status = 200, description = "a page of the history, newest first", body = saoma_api::Page<saoma_api::WalletTransaction>)),
    security(("wallet_session" = [])),
)]
pub async fn transactions(
    State(state): State<AppState>,
    Extension(me): Extension<WalletCaller>,
    ApiQuery(q): ApiQuery<api::PageQuery>,
) -> ApiResult<Json<api::Page<api::WalletTransaction>>> {
    let limit = page::limit(q.limit, 50)?;
    let before = HISTORY.read::<2>(q.cursor.as_deref())?;
    let before = before.as_ref().map(|[at, id]| (at.as_str(), id.as_str()));
    let rows = state.store.history(&me.customer_id, before, limit + 1).await?;
    let (rows, next_cursor) = HISTORY.page(rows, limit, |h| vec![&h.created_at, &h.id])?;
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
    Ok(Json(api::Page { data, next_cursor }))
}
