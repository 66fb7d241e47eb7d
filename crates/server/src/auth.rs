//! Who is calling: the operator (bearer token), a merchant or terminal key (RFC 9421
//! signature with a replay-proof nonce), or a customer (wallet session token).
//!
//! Each is a middleware that puts the caller into the request's extensions; handlers take
//! it from there. Nothing here logs a header, a token or a secret.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::util::{now, sha256_hex};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use saoma_api::ErrorCode;
use saoma_api::signing;
use subtle::ConstantTimeEq;

/// The largest request body accepted.
pub const BODY_BYTES_MAX: usize = 64 * 1024;

/// A merchant back-end or POS terminal, authenticated by its key.
#[derive(Debug, Clone)]
pub struct MerchantCaller {
    pub key_id: String,
    pub merchant_id: String,
    /// Set for a terminal key: it may act only on this terminal's payments.
    pub terminal_id: Option<String>,
    /// `merchant` (the owner), `manager` or `terminal` (a cashier's till).
    pub role: String,
    /// The key was rotated out: it works until its grace ends, for the tills to switch
    /// over, but may not manage keys or settings (it could outlive or undo its rotation).
    pub rotated_out: bool,
    /// The merchant as read with the key, when it was (a signed request): its handler
    /// needs no second look-up.
    pub merchant: Option<saoma_store::MerchantRow>,
}

impl From<saoma_store::ApiKeyRow> for MerchantCaller {
    fn from(key: saoma_store::ApiKeyRow) -> MerchantCaller {
        MerchantCaller {
            rotated_out: key.expires_at.is_some(),
            key_id: key.id,
            merchant_id: key.merchant_id,
            terminal_id: key.terminal_id,
            role: key.role,
            merchant: None,
        }
    }
}

impl MerchantCaller {
    /// Refuses a terminal key: the action needs a manager or merchant key.
    pub fn require_merchant_key(&self) -> ApiResult<()> {
        match self.terminal_id {
            Some(_) => {
                Err(ApiError::forbidden("this action needs a manager or merchant key, not a terminal key"))
            }
            None => Ok(()),
        }
    }

    /// Refuses all but the owner's merchant key, and that key once rotated out: settings
    /// and keys.
    pub fn require_owner(&self) -> ApiResult<()> {
        match self.role.as_str() {
            "merchant" if self.rotated_out => Err(ApiError::forbidden(
                "this key was rotated out: it may not manage keys or settings; use the key that replaced it",
            )),
            "merchant" => Ok(()),
            _ => Err(ApiError::forbidden("this action needs the owner's merchant key")),
        }
    }
}

/// Refuses, inside the transaction that makes the change, a change to a suspended
/// merchant: its keys may read, but not refund, issue keys or change the webhook. The
/// status is read under a lock, so a suspension cannot slip in before the commit.
pub async fn refuse_suspended(tx: &mut saoma_store::WriteTx, merchant_id: &str) -> ApiResult<()> {
    match tx.merchant_status(merchant_id).await?.as_deref() {
        Some("suspended") => Err(ApiError::forbidden(
            "the merchant is suspended: its keys may read, but not refund, issue keys or change the webhook",
        )
        .with_code(ErrorCode::MerchantInactive)),
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("merchant")),
    }
}

/// The operator roles, and what each may do (docs/security.md).
pub const OPERATOR_ROLES: &[&str] = &["admin", "risk_officer", "support", "auditor"];
/// Every operator: read-only views.
pub const ANY_OPERATOR: &[&str] = OPERATOR_ROLES;
/// Onboarding, keys, money in, settlement, operators.
pub const ADMIN_ONLY: &[&str] = &["admin"];
/// Freezes, tiers, rules, suspending merchants.
pub const RISK: &[&str] = &["admin", "risk_officer"];
/// The audit chain, the trial balance, reconciliation.
pub const AUDIT: &[&str] = &["admin", "auditor"];

/// An operator of the platform, authenticated by a bearer token.
#[derive(Debug, Clone)]
pub struct Operator {
    /// `admin` for the start-up token, else the operator's id.
    pub id: String,
    pub role: String,
}

/// Lets only `roles` through (after [`admin_auth`]).
pub async fn require_role(
    roles: &'static [&'static str],
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let role = req.extensions().get::<Operator>().map(|o| o.role.as_str()).unwrap_or("");
    if !roles.contains(&role) {
        return Err(ApiError::forbidden(format!("the {role} role may not do this")));
    }
    Ok(next.run(req).await)
}

/// A customer with a wallet session.
#[derive(Debug, Clone)]
pub struct WalletCaller {
    pub customer_id: String,
    /// The hash of the session's token.
    pub session: String,
}

fn unauthenticated(code: ErrorCode, message: &str) -> ApiError {
    ApiError::new(code, message)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// Admin API: `Authorization: Bearer <token>`, the start-up `SAOMA_ADMIN_TOKEN` (role
/// `admin`) or an operator's token (its role).
pub async fn admin_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if bearer(req.headers()).is_none()
        && let Some(op) = crate::web::operator(&state, req.method(), req.headers()).await?
    {
        req.extensions_mut().insert(op);
        return Ok(next.run(req).await);
    }
    let given = bearer(req.headers())
        .ok_or_else(|| unauthenticated(ErrorCode::Unauthenticated, "missing bearer token"))?;
    let given_hash = sha256_hex(given.as_bytes());
    // Compare digests so the comparison takes the same time whatever the lengths.
    let start_up = state
        .config
        .admin_token
        .as_deref()
        .is_some_and(|t| bool::from(given_hash.as_bytes().ct_eq(sha256_hex(t.as_bytes()).as_bytes())));
    let (id, role) = if start_up {
        ("admin".to_string(), "admin".to_string())
    } else {
        let op = state.store.operator_by_token(&given_hash).await?.filter(|o| o.revoked_at.is_none());
        let op = op.ok_or_else(|| unauthenticated(ErrorCode::Unauthenticated, "invalid admin token"))?;
        (op.id, op.role)
    };
    req.extensions_mut().insert(Operator { id, role });
    Ok(next.run(req).await)
}

/// Wallet API: `Authorization: Bearer <session token>`.
pub async fn wallet_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if bearer(req.headers()).is_none()
        && let Some(me) = crate::web::wallet_caller(&state, req.method(), req.headers()).await?
    {
        req.extensions_mut().insert(me);
        return Ok(next.run(req).await);
    }
    let token = bearer(req.headers())
        .ok_or_else(|| unauthenticated(ErrorCode::Unauthenticated, "missing bearer token"))?;
    let session = sha256_hex(token.as_bytes());
    let (customer_id, expires_at) = state
        .store
        .session(&session)
        .await?
        .ok_or_else(|| unauthenticated(ErrorCode::Unauthenticated, "unknown or expired session"))?;
    if expires_at <= now().1 {
        return Err(unauthenticated(ErrorCode::Unauthenticated, "unknown or expired session"));
    }
    req.extensions_mut().insert(WalletCaller { customer_id, session });
    Ok(next.run(req).await)
}

/// Merchant API: verifies the RFC 9421 signature, the content digest, the clock window and
/// the nonce, then passes the request on with its body intact.
pub async fn merchant_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // A page of this origin signed in with a merchant key (cookie and CSRF token).
    if req.headers().get("signature").is_none()
        && let Some(caller) = crate::web::merchant_caller(&state, req.method(), req.headers()).await?
    {
        state.limits.check_key(&caller.key_id)?;
        req.extensions_mut().insert(caller);
        return Ok(next.run(req).await);
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, BODY_BYTES_MAX)
        .await
        .map_err(|_| ApiError::new(ErrorCode::BodyTooLarge, "request body is over 64 KiB"))?;
    let header = |name: &'static str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(input), Some(sig)) = (header("signature-input"), header("signature")) else {
        return Err(unauthenticated(
            ErrorCode::Unauthenticated,
            "missing Signature-Input or Signature header",
        ));
    };
    let received = signing::parse_received(input, sig)
        .map_err(|e| unauthenticated(ErrorCode::InvalidSignature, &e.to_string()))?;
    let now_unix = chrono::Utc::now().timestamp();
    if (now_unix - received.created).abs() > signing::CREATED_SKEW_SECONDS {
        return Err(unauthenticated(
            ErrorCode::StaleRequest,
            "signature created too far from the server's clock",
        ));
    }
    let digest = header("content-digest");
    if !bytes.is_empty() {
        if !received.components.iter().any(|c| c == "content-digest") {
            return Err(unauthenticated(
                ErrorCode::InvalidSignature,
                "a request with a body must sign content-digest",
            ));
        }
        if digest != Some(signing::content_digest(&bytes).as_str()) {
            return Err(unauthenticated(
                ErrorCode::InvalidSignature,
                "content-digest does not match the body",
            ));
        }
    }
    let host = header("host").unwrap_or("localhost");
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let target_uri = format!("{}://{host}{path}", state.config.public_scheme);
    let base = signing::signature_base(
        &received.components,
        parts.method.as_str(),
        &target_uri,
        digest,
        &received.params,
    )
    .map_err(|e| unauthenticated(ErrorCode::InvalidSignature, &e.to_string()))?;
    let found = state.store.api_key_and_merchant(&received.key_id).await?;
    let now_text = now().1;
    let Some((key, merchant)) = found.filter(|(k, _)| k.is_live(&now_text)) else {
        return Err(unauthenticated(ErrorCode::InvalidSignature, "unknown key or bad signature"));
    };
    let expected =
        signing::hmac(&state.keys.sealer.open(crate::secrets::Place::api_key(&key.id), &key.secret)?, &base);
    if !bool::from(expected.as_slice().ct_eq(received.signature.as_slice())) {
        return Err(unauthenticated(ErrorCode::InvalidSignature, "unknown key or bad signature"));
    }
    // The nonce decides first, committed on its own: a replayed request is refused
    // before it is counted, so replaying a captured request cannot spend the key's rate
    // budget. A fresh request is counted next, once the key is proven (nobody can spend
    // another merchant's budget); if it is over the limit, the nonce is given back unused.
    let Some(claim) = state.store.claim_nonce(&key.id, &received.nonce, now_unix).await? else {
        return Err(unauthenticated(ErrorCode::ReplayedRequest, "this nonce was already used"));
    };
    if let Err(e) = state.limits.check_key(&key.id) {
        claim.give_back().await?;
        return Err(e);
    }
    claim.keep().await?;
    let caller = MerchantCaller { merchant: Some(merchant), ..MerchantCaller::from(key) };
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}
