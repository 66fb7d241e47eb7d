//! API keys: issued, listed, revoked and rotated, by the operator for any merchant and by
//! the owner (the merchant key) for its own. Roles: `merchant` (the owner: everything),
//! `manager` (payments, refunds, bills, the delivery log; no settings, no keys) and
//! `terminal` (a cashier's till: its own terminal's payments). Every change is audited.

use crate::AppState;
use crate::audit::Audit;
use crate::auth::{MerchantCaller, Operator};
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiQuery};
use crate::page;
use crate::util::{new_id, now, random_token, rfc3339};
use axum::Json;
use axum::extract::{Extension, Path, State};
use saoma_api as api;
use saoma_api::ErrorCode;
use saoma_core::ids::prefix;
use saoma_store::{ApiKeyRow, AuditRecord, WriteTx};
use serde_json::json;

/// The longest a rotated-out key keeps working.
const GRACE_SECONDS_MAX: i64 = 7 * 24 * 3600;
/// How long a rotated-out key keeps working by default: time to roll the new one out.
const GRACE_SECONDS_DEFAULT: i64 = 24 * 3600;

/// Checks a key request against the merchant's terminals.
async fn check_request(state: &AppState, merchant_id: &str, req: &api::CreateKeyRequest) -> ApiResult<()> {
    match (req.role.as_str(), &req.terminal_id) {
        ("merchant" | "manager", None) => Ok(()),
        ("terminal", Some(t)) => {
            let terminal = state.store.terminal(t).await?;
            if terminal.is_none_or(|t| t.merchant_id != merchant_id) {
                return Err(ApiError::invalid("terminal_id", "no such terminal of this merchant"));
            }
            Ok(())
        }
        ("terminal", None) => Err(ApiError::invalid("terminal_id", "a terminal key needs terminal_id")),
        ("merchant" | "manager", Some(_)) => {
            Err(ApiError::invalid("terminal_id", "only a terminal key has a terminal_id"))
        }
        _ => Err(ApiError::invalid("role", "role is \"merchant\", \"manager\" or \"terminal\"")),
    }
}

/// Inserts a key inside `tx` and audits it (`rotates`: the key it replaces); its secret
/// is in the answer only (stored sealed).
async fn insert_key(
    state: &AppState,
    tx: &mut WriteTx,
    merchant_id: &str,
    req: &api::CreateKeyRequest,
    actor: &str,
    rotates: Option<&str>,
    now: &str,
) -> ApiResult<api::KeyCreated> {
    let key_id = new_id(prefix::KEY);
    let secret = random_token("sk_");
    let sealed = state.keys.sealer.seal(crate::secrets::Place::api_key(&key_id), &secret);
    tx.insert_api_key(&key_id, merchant_id, req.terminal_id.as_deref(), &req.role, &sealed, now).await?;
    let detail = json!({"merchant_id": merchant_id, "role": req.role, "rotates": rotates});
    tx.audit(&AuditRecord { actor, action: "key.create", object_id: &key_id, detail }, now).await?;
    Ok(api::KeyCreated {
        key_id,
        secret,
        role: req.role.clone(),
        merchant_id: merchant_id.to_string(),
        terminal_id: req.terminal_id.clone(),
    })
}

/// Who asks for a key change: the operator, or the merchant's own key (refused while the
/// merchant is suspended).
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Operator,
    Owner,
}

/// Issues a key after checking the request.
async fn issue(
    state: &AppState,
    merchant_id: &str,
    req: &api::CreateKeyRequest,
    actor: &str,
    by: By,
) -> ApiResult<api::KeyCreated> {
    check_request(state, merchant_id, req).await?;
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    if by == By::Owner {
        crate::auth::refuse_suspended(&mut tx, merchant_id).await?;
    }
    let created = insert_key(state, &mut tx, merchant_id, req, actor, None, &now).await?;
    tx.commit().await?;
    Ok(created)
}

/// A key without its secret.
fn view(k: &ApiKeyRow) -> api::ApiKey {
    api::ApiKey {
        key_id: k.id.clone(),
        merchant_id: k.merchant_id.clone(),
        role: k.role.clone(),
        terminal_id: k.terminal_id.clone(),
        created_at: k.created_at.clone(),
        revoked_at: k.revoked_at.clone(),
        expires_at: k.expires_at.clone(),
    }
}

/// The keys list's cursor: the time and id of the last key shown.
const KEYS: page::Cursor = page::Cursor::of("api_keys");

/// A page of a merchant's keys, oldest first, without secrets.
async fn list_page(
    state: &AppState,
    merchant_id: &str,
    q: &saoma_api::PageQuery,
) -> ApiResult<api::Page<api::ApiKey>> {
    let limit = page::limit(q.limit, 50)?;
    let after = KEYS.read::<2>(q.cursor.as_deref())?;
    let after = after.as_ref().map(|[at, id]| (at.as_str(), id.as_str()));
    let rows = state.store.api_keys_of(merchant_id, after, limit + 1).await?;
    let (rows, next_cursor) = KEYS.page(rows, limit, |k| vec![&k.created_at, &k.id])?;
    Ok(api::Page { data: rows.iter().map(view).collect(), next_cursor })
}

/// Loads a key of `merchant_id` (any merchant's when `None`), locked.
async fn owned(tx: &mut saoma_store::WriteTx, id: &str, merchant_id: Option<&str>) -> ApiResult<ApiKeyRow> {
    let k = tx.api_key(id).await?.filter(|k| merchant_id.is_none_or(|m| m == k.merchant_id));
    k.ok_or_else(|| ApiError::not_found("key"))
}

async fn revoke(
    state: &AppState,
    id: &str,
    merchant_id: Option<&str>,
    actor: &str,
) -> ApiResult<api::ApiKey> {
    let (_, now) = now();
    let mut tx = state.store.begin().await?;
    let mut k = owned(&mut tx, id, merchant_id).await?;
    tx.revoke_api_key(id, &now).await?;
    let audit = AuditRecord { actor, action: "key.revoke", object_id: id, detail: json!({}) };
    tx.audit(&audit, &now).await?;
    tx.commit().await?;
    k.revoked_at = Some(k.revoked_at.unwrap_or(now));
    Ok(view(&k))
}

/// Issues a key like the old one, and lets the old one work `grace_seconds` more; both
/// in one transaction, so a rotation never half-happens. A key already on its way out
/// keeps the sooner of its end and the new one, and an expired key cannot be rotated: no
/// rotation makes a key live longer.
async fn rotate(
    state: &AppState,
    id: &str,
    merchant_id: Option<&str>,
    grace: Option<i64>,
    actor: &str,
) -> ApiResult<api::KeyCreated> {
    let grace = grace.unwrap_or(GRACE_SECONDS_DEFAULT);
    if !(0..=GRACE_SECONDS_MAX).contains(&grace) {
        return Err(ApiError::invalid("grace_seconds", "grace_seconds is 0-604800"));
    }
    let (t, now) = now();
    let until = rfc3339(t + chrono::Duration::seconds(grace));
    let mut tx = state.store.begin().await?;
    let old = owned(&mut tx, id, merchant_id).await?;
    if old.revoked_at.is_some() {
        return Err(ApiError::new(ErrorCode::KeyRevoked, "a revoked key cannot be rotated"));
    }
    if old.expires_at.as_deref().is_some_and(|e| e <= now.as_str()) {
        return Err(ApiError::new(ErrorCode::KeyExpired, "an expired key cannot be rotated"));
    }
    if merchant_id.is_some() {
        crate::auth::refuse_suspended(&mut tx, &old.merchant_id).await?;
    }
    let req = api::CreateKeyRequest { terminal_id: old.terminal_id.clone(), role: old.role.clone() };
    let new = insert_key(state, &mut tx, &old.merchant_id, &req, actor, Some(id), &now).await?;
    let until = tx.expire_api_key(id, &until).await?;
    let detail = json!({"replaced_by": new.key_id, "expires_at": until});
    tx.audit(&AuditRecord { actor, action: "key.rotate", object_id: id, detail }, &now).await?;
    tx.commit().await?;
    Ok(new)
}

/// `POST /v1/admin/merchants/{id}/keys`: the secret is in this answer only.
#[utoipa::path(
    operation_id = "keys_admin_create",
    post,
    path = "/v1/admin/merchants/{id}/keys",
    tag = "admin",
    summary = "Issues an API key to a merchant.",
    request_body = saoma_api::CreateKeyRequest,
    params(("id" = String, Path, description = "the merchant's id")),
    responses((status = 200, description = "the key; its secret is shown this once", body = saoma_api::KeyCreated), (status = 409, description = "error")),
    security(("operator_token" = [])),
)]
pub async fn admin_create(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::CreateKeyRequest>,
) -> ApiResult<Json<api::KeyCreated>> {
    state.store.merchant(&id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    Ok(Json(issue(&state, &id, &req, &op.id, By::Operator).await?))
}

/// `GET /v1/admin/merchants/{id}/keys`.
#[utoipa::path(
    operation_id = "keys_admin_list",
    get,
    path = "/v1/admin/merchants/{id}/keys",
    tag = "admin",
    summary = "A merchant's keys.",
    params(("id" = String, Path, description = "the merchant's id"), saoma_api::PageQuery),
    responses((status = 200, description = "a page of the merchant's keys (no secrets)", body = api::Page<api::ApiKey>)),
    security(("operator_token" = [])),
)]
pub async fn admin_list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<saoma_api::PageQuery>,
) -> ApiResult<Json<api::Page<api::ApiKey>>> {
    Ok(Json(list_page(&state, &id, &q).await?))
}

/// `POST /v1/admin/keys/{id}/revoke`.
#[utoipa::path(
    operation_id = "keys_admin_revoke",
    post,
    path = "/v1/admin/keys/{id}/revoke",
    tag = "admin",
    summary = "Revokes a key at once.",
    params(("id" = String, Path, description = "the key's id")),
    responses((status = 200, description = "the revoked key", body = api::ApiKey)),
    security(("operator_token" = [])),
)]
pub async fn admin_revoke(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
) -> ApiResult<Json<api::ApiKey>> {
    Ok(Json(revoke(&state, &id, None, &op.id).await?))
}

/// `POST /v1/admin/keys/{id}/rotate` `{grace_seconds?}`.
#[utoipa::path(
    operation_id = "keys_admin_rotate",
    post,
    path = "/v1/admin/keys/{id}/rotate",
    tag = "admin",
    summary = "Rotates a key.",
    request_body = api::Rotation,
    params(("id" = String, Path, description = "the key's id")),
    responses((status = 200, description = "the new key; the old one works for `grace_seconds` more", body = saoma_api::KeyCreated), (status = 409, description = "error")),
    security(("operator_token" = [])),
)]
pub async fn admin_rotate(
    State(state): State<AppState>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::Rotation>,
) -> ApiResult<Json<api::KeyCreated>> {
    Ok(Json(rotate(&state, &id, None, req.grace_seconds, &op.id).await?))
}

/// `POST /v1/merchant/keys` (owner): a manager or terminal key, or another owner key.
#[utoipa::path(
    operation_id = "keys_own_create",
    post,
    path = "/v1/merchant/keys",
    tag = "merchant",
    summary = "Issues a key (owner's key only).",
    request_body = saoma_api::CreateKeyRequest,
    responses((status = 200, description = "the key; its secret is shown this once", body = saoma_api::KeyCreated), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn own_create(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiJson(req): ApiJson<api::CreateKeyRequest>,
) -> ApiResult<Json<api::KeyCreated>> {
    caller.require_owner()?;
    Ok(Json(issue(&state, &caller.merchant_id, &req, &caller.key_id, By::Owner).await?))
}

/// `GET /v1/merchant/keys` (owner).
#[utoipa::path(
    operation_id = "keys_own_list",
    get,
    path = "/v1/merchant/keys",
    tag = "merchant",
    summary = "The merchant's keys.",
    params(saoma_api::PageQuery),
    responses((status = 200, description = "a page of the merchant's keys (no secrets)", body = api::Page<api::ApiKey>)),
    security(("merchant_signature" = [])),
)]
pub async fn own_list(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    ApiQuery(q): ApiQuery<saoma_api::PageQuery>,
) -> ApiResult<Json<api::Page<api::ApiKey>>> {
    caller.require_owner()?;
    Ok(Json(list_page(&state, &caller.merchant_id, &q).await?))
}

/// `POST /v1/merchant/keys/{id}/revoke` (owner).
#[utoipa::path(
    operation_id = "keys_own_revoke",
    post,
    path = "/v1/merchant/keys/{id}/revoke",
    tag = "merchant",
    summary = "Revokes a key.",
    params(("id" = String, Path, description = "the key's id")),
    responses((status = 200, description = "the revoked key", body = api::ApiKey)),
    security(("merchant_signature" = [])),
)]
pub async fn own_revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
) -> ApiResult<Json<api::ApiKey>> {
    caller.require_owner()?;
    Ok(Json(revoke(&state, &id, Some(&caller.merchant_id), &caller.key_id).await?))
}

/// `POST /v1/merchant/keys/{id}/rotate` `{grace_seconds?}` (owner).
#[utoipa::path(
    operation_id = "keys_own_rotate",
    post,
    path = "/v1/merchant/keys/{id}/rotate",
    tag = "merchant",
    summary = "Rotates a key.",
    request_body = api::Rotation,
    params(("id" = String, Path, description = "the key's id")),
    responses((status = 200, description = "the new key; the old one works for `grace_seconds` more", body = saoma_api::KeyCreated), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn own_rotate(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::Rotation>,
) -> ApiResult<Json<api::KeyCreated>> {
    caller.require_owner()?;
    let merchant = Some(caller.merchant_id.as_str());
    Ok(Json(rotate(&state, &id, merchant, req.grace_seconds, &caller.key_id).await?))
}
