//! Browser sessions: the pages (`/pos`, `/merchant`, `/wallet`, `/console`) call the same
//! `/v1` API as any client, authenticated by a cookie instead of a signature or a bearer
//! token. Signing in proves the same thing the API's own credentials prove (a merchant
//! key's secret, the customer's phone and PIN with the same lock-out, an operator's
//! token) and sets one cookie per realm: `HttpOnly`, `SameSite=Strict`, `Path=/`, and
//! `Secure` when the server is reached over TLS (`--public-scheme https`).
//!
//! CSRF: besides `SameSite=Strict` and the edge's refusal of cross-site requests, every
//! state-changing request authenticated by a cookie must carry `X-CSRF-Token`, a value
//! derived from the session (HMAC under a platform key) that a page learns only by being
//! served on this origin. Reads need no token. Nothing here logs a token or a secret.

use crate::AppState;
use crate::audit::Audit;
use crate::auth::{MerchantCaller, Operator, WalletCaller};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::util::{now, random_token, rfc3339, sha256_hex};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use saoma_api::{ErrorCode, KeySignIn, ManagerActing, PhoneSignIn, SignedIn, TokenSignIn};
use saoma_store::{AuditRecord, WebSessionRow};
use serde_json::json;
use subtle::ConstantTimeEq;

/// The cookie of the till and back office (a merchant key signed in).
pub const MERCHANT_COOKIE: &str = "saoma_m";
/// The cookie of the wallet page (a customer's wallet session).
pub const WALLET_COOKIE: &str = "saoma_w";
/// The cookie of the operator's console.
pub const OPERATOR_COOKIE: &str = "saoma_o";
/// The header a page sends its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

const MERCHANT_HOURS: i64 = 12;
const OPERATOR_HOURS: i64 = 8;
/// How long a till holds a manager's key for a refund.
const MANAGER_SECONDS: i64 = 120;

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of the session whose token hashes to `token_hash`.
pub fn csrf_token(state: &AppState, token_hash: &str) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&state.keys.csrf_key) else {
        return String::new();
    };
    mac.update(b"csrf:");
    mac.update(token_hash.as_bytes());
    hex::encode(mac.finalize().into_bytes())[..32].to_string()
}

/// Refuses a state-changing request without the session's CSRF token.
fn check_csrf(state: &AppState, method: &Method, headers: &HeaderMap, token_hash: &str) -> ApiResult<()> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let expected = csrf_token(state, token_hash);
    if given.is_empty() || !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(ApiError::forbidden("missing or wrong X-CSRF-Token").with_code(ErrorCode::CsrfRejected));
    }
    Ok(())
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, message)
}

/// A live browser session of `realm` named by the request's cookie.
async fn live_session(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    realm: &str,
) -> ApiResult<Option<WebSessionRow>> {
    let Some(token) = cookie(headers, name) else { return Ok(None) };
    let s = state.store.web_session(&sha256_hex(token.as_bytes())).await?;
    Ok(s.filter(|s| s.realm == realm && s.expires_at > now().1))
}

/// A merchant key that still works.
async fn live_key(state: &AppState, key_id: &str) -> ApiResult<Option<saoma_store::ApiKeyRow>> {
    let now = now().1;
    let key = state.store.api_key(key_id).await?;
    Ok(key.filter(|k| k.is_live(&now)))
}

/// The merchant caller of a request carrying the till's or back office's cookie (and,
/// for a write, its CSRF token); `None` without the cookie. While a till holds a manager's
/// key, the caller is that manager.
pub async fn merchant_caller(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Option<MerchantCaller>> {
    let Some(s) = live_session(state, headers, MERCHANT_COOKIE, "merchant").await? else {
        return match cookie(headers, MERCHANT_COOKIE) {
            Some(_) => Err(unauthenticated("this page's session has ended; sign in again")),
            None => Ok(None),
        };
    };
    check_csrf(state, method, headers, &s.token_hash)?;
    let key = live_key(state, &s.subject_id).await?.ok_or_else(|| unauthenticated("this key was revoked"))?;
    if let (Some(manager), Some(until)) = (&s.manager_key_id, &s.manager_until)
        && *until > now().1
        && let Some(m) = live_key(state, manager).await?.filter(|m| m.merchant_id == key.merchant_id)
    {
        return Ok(Some(MerchantCaller::from(m)));
    }
    Ok(Some(MerchantCaller::from(key)))
}

/// The customer of a request carrying the wallet page's cookie; `None` without it.
pub async fn wallet_caller(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Option<WalletCaller>> {
    let Some(token) = cookie(headers, WALLET_COOKIE) else { return Ok(None) };
    let session = sha256_hex(token.as_bytes());
    let found = state.store.session(&session).await?.filter(|(_, expires_at)| *expires_at > now().1);
    let (customer_id, _) =
        found.ok_or_else(|| unauthenticated("this page's session has ended; sign in again"))?;
    check_csrf(state, method, headers, &session)?;
    Ok(Some(WalletCaller { customer_id, session }))
}

/// The operator of a request carrying the console's cookie; `None` without it.
pub async fn operator(state: &AppState, method: &Method, headers: &HeaderMap) -> ApiResult<Option<Operator>> {
    let Some(s) = live_session(state, headers, OPERATOR_COOKIE, "operator").await? else {
        return match cookie(headers, OPERATOR_COOKIE) {
            Some(_) => Err(unauthenticated("this page's session has ended; sign in again")),
            None => Ok(None),
        };
    };
    check_csrf(state, method, headers, &s.token_hash)?;
    if s.subject_id == "admin" {
        return Ok(Some(Operator { id: "admin".into(), role: "admin".into() }));
    }
    let op = state.store.operator(&s.subject_id).await?.filter(|o| o.revoked_at.is_none());
    let op = op.ok_or_else(|| unauthenticated("this operator was revoked"))?;
    Ok(Some(Operator { id: op.id, role: op.role }))
}

fn set_cookie(state: &AppState, name: &str, token: &str, seconds: i64) -> HeaderValue {
    let secure = if state.config.public_scheme == "https" { "; Secure" } else { "" };
    let v = format!("{name}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={seconds}{secure}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn signed_in(state: &AppState, cookie_name: &str, token: &str, seconds: i64, body: SignedIn) -> Response {
    let mut r = Json(body).into_response();
    r.headers_mut().insert(header::SET_COOKIE, set_cookie(state, cookie_name, token, seconds));
    r
}

async fn open_web_session(
    state: &AppState,
    realm: &str,
    subject: &str,
    hours: i64,
) -> ApiResult<(String, String, String)> {
    let (t, now) = now();
    let token = random_token("web_");
    let hash = sha256_hex(token.as_bytes());
    let expires_at = rfc3339(t + chrono::Duration::hours(hours));
    let row = WebSessionRow {
        token_hash: hash.clone(),
        realm: realm.into(),
        subject_id: subject.into(),
        manager_key_id: None,
        manager_until: None,
        created_at: now.clone(),
        expires_at: expires_at.clone(),
    };
    let mut tx = state.store.begin().await?;
    // Each sign-in sweeps the sessions that have expired, so the table stays small.
    tx.delete_expired_web_sessions(&now).await?;
    tx.insert_web_session(&row).await?;
    let audit = AuditRecord {
        actor: subject,
        action: "web_session.open",
        object_id: subject,
        detail: json!({"realm": realm}),
    };
    tx.audit(&audit, &now).await?;
    tx.commit().await?;
    Ok((token, hash, expires_at))
}

/// Checks a merchant key's id and secret (constant time); the key row when they match.
async fn proven_key(state: &AppState, req: &KeySignIn) -> ApiResult<saoma_store::ApiKeyRow> {
    let denied = || unauthenticated("unknown key or wrong secret");
    let key = live_key(state, req.key_id.trim()).await?.ok_or_else(denied)?;
    let secret = state.keys.sealer.open(crate::secrets::Place::api_key(&key.id), &key.secret)?;
    if !bool::from(secret.as_bytes().ct_eq(req.secret.trim().as_bytes())) {
        return Err(denied());
    }
    state.limits.check_key(&key.id)?;
    Ok(key)
}

/// `POST /v1/web/merchant/session` `{key_id, secret}`: signs a till (terminal key) or the
/// back office (owner or manager key) in.
#[utoipa::path(
    operation_id = "web_merchant_sign_in",
    post,
    path = "/v1/web/merchant/session",
    tag = "screens",
    summary = "Signs a browser in with a merchant key.",
    request_body = KeySignIn,
    responses(
        (status = 200, description = "signed in: a session cookie (`Set-Cookie`) and its CSRF token", body = SignedIn),
        (status = 401, description = "the key or its secret is wrong, or the key was revoked"),
    ),
)]
pub async fn merchant_sign_in(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<KeySignIn>,
) -> ApiResult<Response> {
    let key = proven_key(&state, &req).await?;
    let (token, hash, expires_at) = open_web_session(&state, "merchant", &key.id, MERCHANT_HOURS).await?;
    let body = SignedIn {
        csrf_token: csrf_token(&state, &hash),
        expires_at,
        role: Some(key.role),
        terminal_id: key.terminal_id,
    };
    Ok(signed_in(&state, MERCHANT_COOKIE, &token, MERCHANT_HOURS * 3600, body))
}

/// `POST /v1/web/merchant/manager` `{key_id, secret}` (with the till's cookie and CSRF
/// token): the till acts with a manager's or the owner's key for the next two minutes,
/// for a refund; `DELETE` hands it back at once.
#[utoipa::path(
    operation_id = "web_manager_override",
    post,
    path = "/v1/web/merchant/manager",
    tag = "screens",
    summary = "A manager's key acts for the till for two minutes.",
    request_body = KeySignIn,
    responses(
        (status = 200, description = "the manager key acting, and until when", body = ManagerActing),
        (status = 401, description = "no live till session: sign in first"),
    ),
)]
pub async fn manager_override(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<KeySignIn>,
) -> ApiResult<Json<ManagerActing>> {
    let s = live_session(&state, &headers, MERCHANT_COOKIE, "merchant")
        .await?
        .ok_or_else(|| unauthenticated("sign in first"))?;
    check_csrf(&state, &Method::POST, &headers, &s.token_hash)?;
    let till =
        live_key(&state, &s.subject_id).await?.ok_or_else(|| unauthenticated("this key was revoked"))?;
    let key = proven_key(&state, &req).await?;
    if key.merchant_id != till.merchant_id || key.terminal_id.is_some() {
        return Err(ApiError::forbidden("a manager's or the owner's key of this merchant is needed"));
    }
    let (t, now) = now();
    let until = rfc3339(t + chrono::Duration::seconds(MANAGER_SECONDS));
    let mut tx = state.store.begin().await?;
    tx.set_web_manager(&s.token_hash, Some(&key.id), Some(&until)).await?;
    let audit = AuditRecord {
        actor: &key.id,
        action: "web_session.manager",
        object_id: &till.id,
        detail: json!({"until": until}),
    };
    tx.audit(&audit, &now).await?;
    tx.commit().await?;
    Ok(Json(ManagerActing { manager_key_id: key.id, until }))
}

/// `DELETE /v1/web/merchant/manager`: the till stops acting with the manager's key.
#[utoipa::path(
    operation_id = "web_manager_release",
    delete,
    path = "/v1/web/merchant/manager",
    tag = "screens",
    summary = "Hands the manager's key back.",
    responses(
        (status = 204, description = "handed back"),
        (status = 401, description = "no live till session: sign in first"),
        (status = 403, description = "`csrf_rejected`: missing or wrong `X-CSRF-Token`"),
    ),
)]
pub async fn manager_release(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<StatusCode> {
    let s = live_session(&state, &headers, MERCHANT_COOKIE, "merchant")
        .await?
        .ok_or_else(|| unauthenticated("sign in first"))?;
    check_csrf(&state, &Method::DELETE, &headers, &s.token_hash)?;
    let mut tx = state.store.begin().await?;
    tx.set_web_manager(&s.token_hash, None, None).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/web/wallet/session` `{phone, pin}`: the wallet's own session (same PIN
/// lock-out, revoked by "sign out everywhere"), carried in a cookie.
#[utoipa::path(
    operation_id = "web_wallet_sign_in",
    post,
    path = "/v1/web/wallet/session",
    tag = "screens",
    summary = "Signs the wallet page in.",
    request_body = PhoneSignIn,
    responses(
        (status = 200, description = "signed in: a session cookie (`Set-Cookie`) and its CSRF token", body = SignedIn),
        (status = 401, description = "wrong phone or PIN"),
    ),
)]
pub async fn wallet_sign_in(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PhoneSignIn>,
) -> ApiResult<Response> {
    let req = saoma_api::SessionRequest { phone: req.phone.trim().to_string(), pin: req.pin };
    let Json(s) = crate::wallet::create_session(State(state.clone()), ApiJson(req)).await?;
    let hash = sha256_hex(s.token.as_bytes());
    let body = SignedIn {
        csrf_token: csrf_token(&state, &hash),
        expires_at: s.expires_at,
        role: None,
        terminal_id: None,
    };
    Ok(signed_in(&state, WALLET_COOKIE, &s.token, 7 * 24 * 3600, body))
}

/// `POST /v1/web/operator/session` `{token}`: the operator's bearer token, checked as the
/// admin API checks it, opens a console session.
#[utoipa::path(
    operation_id = "web_operator_sign_in",
    post,
    path = "/v1/web/operator/session",
    tag = "screens",
    summary = "Signs the console in.",
    request_body = TokenSignIn,
    responses(
        (status = 200, description = "signed in: a session cookie (`Set-Cookie`) and its CSRF token", body = SignedIn),
        (status = 401, description = "no such operator token"),
    ),
)]
pub async fn operator_sign_in(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenSignIn>,
) -> ApiResult<Response> {
    let given = sha256_hex(req.token.trim().as_bytes());
    let start_up = state
        .config
        .admin_token
        .as_deref()
        .is_some_and(|t| bool::from(given.as_bytes().ct_eq(sha256_hex(t.as_bytes()).as_bytes())));
    let (id, role) = if start_up {
        ("admin".to_string(), "admin".to_string())
    } else {
        let op = state.store.operator_by_token(&given).await?.filter(|o| o.revoked_at.is_none());
        let op = op.ok_or_else(|| unauthenticated("invalid operator token"))?;
        (op.id, op.role)
    };
    let (token, hash, expires_at) = open_web_session(&state, "operator", &id, OPERATOR_HOURS).await?;
    let body =
        SignedIn { csrf_token: csrf_token(&state, &hash), expires_at, role: Some(role), terminal_id: None };
    Ok(signed_in(&state, OPERATOR_COOKIE, &token, OPERATOR_HOURS * 3600, body))
}

/// `POST /v1/web/sign-out` (with a page's CSRF token): ends the session that token
/// belongs to, and clears its cookie. Other pages' sessions in the same browser stay.
#[utoipa::path(
    operation_id = "web_sign_out",
    post,
    path = "/v1/web/sign-out",
    tag = "screens",
    summary = "Signs a browser session out.",
    responses(
        (status = 204, description = "signed out"),
        (status = 403, description = "`csrf_rejected`: missing or wrong `X-CSRF-Token`"),
    ),
)]
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mine = [MERCHANT_COOKIE, OPERATOR_COOKIE, WALLET_COOKIE].into_iter().find_map(|name| {
        let hash = sha256_hex(cookie(&headers, name)?.as_bytes());
        let token = csrf_token(&state, &hash);
        (!given.is_empty() && bool::from(given.as_bytes().ct_eq(token.as_bytes()))).then_some((name, hash))
    });
    let (name, hash) = mine.ok_or_else(|| {
        ApiError::forbidden("missing or wrong X-CSRF-Token").with_code(ErrorCode::CsrfRejected)
    })?;
    let mut tx = state.store.begin().await?;
    if name == WALLET_COOKIE {
        tx.delete_session(&hash).await?;
    } else {
        tx.delete_web_session(&hash).await?;
    }
    tx.commit().await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(header::SET_COOKIE, set_cookie(&state, name, "", 0));
    Ok(r)
}

/// The CSRF token of the session a page is served with, for the page to send back.
pub async fn page_csrf(
    state: &AppState,
    headers: &HeaderMap,
    cookie_name: &str,
) -> ApiResult<Option<String>> {
    let realm = match cookie_name {
        MERCHANT_COOKIE => "merchant",
        OPERATOR_COOKIE => "operator",
        _ => {
            let Some(token) = cookie(headers, WALLET_COOKIE) else { return Ok(None) };
            let hash = sha256_hex(token.as_bytes());
            let live = state.store.session(&hash).await?.is_some_and(|(_, e)| e > now().1);
            return Ok(live.then(|| csrf_token(state, &hash)));
        }
    };
    Ok(live_session(state, headers, cookie_name, realm).await?.map(|s| csrf_token(state, &s.token_hash)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("lang=zh; saoma_m=web_abc; saoma_w="));
        assert_eq!(cookie(&h, "saoma_m"), Some("web_abc"));
        assert_eq!(cookie(&h, "lang"), Some("zh"));
        assert_eq!(cookie(&h, "saoma_w"), None, "an emptied cookie is no cookie");
        assert_eq!(cookie(&h, "saoma_o"), None);
    }
}
