//! Electronic receipts: issued inside the transaction that charges or refunds, so every
//! succeeded payment and every refund has one; served to the merchant and listed in the
//! customer's history; verified by anyone against `/.well-known/jwks.json`.

use crate::AppState;
use crate::audit::Audit;
use crate::auth::MerchantCaller;
use crate::error::{ApiError, ApiResult};
use crate::secrets::{Place, Sealer};
use crate::util::{new_id, now};
use axum::Json;
use axum::extract::{Extension, Path, State};
use saoma_api::ErrorCode;
use saoma_api::qr_signature::{self, Verdict};
use saoma_api::receipt::{self, ReceiptClaims};
use saoma_core::ids::prefix;
use saoma_core::money::Money;
use saoma_core::payment::Payment;
use saoma_store::{AuditRecord, ReceiptKeyRow, ReceiptRow, RefundRow, Store, StoreError, WriteTx};
use serde_json::json;
use std::sync::Arc;

/// How long a node signs with the receipt key it read before it looks for a newer one: a
/// rotation made on another node reaches this one within this (a rotation on this node at
/// once). Receipts signed with the older key stay valid: it stays published.
const SIGNING_KEY_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// A receipt key: its kid and opened seed.
type SigningKey = Arc<(String, [u8; 32])>;

/// The receipt key this node signs with, as last read, and when.
#[derive(Default)]
pub struct SigningKeyCache(std::sync::Mutex<Option<(std::time::Instant, SigningKey)>>);

impl SigningKeyCache {
    fn remember(&self, kid: String, seed: [u8; 32]) -> SigningKey {
        let key = Arc::new((kid, seed));
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((std::time::Instant::now(), key.clone()));
        }
        key
    }
}

/// The newest receipt key (kid, seed), from this node's cache when fresh.
async fn signing_key(state: &AppState) -> Result<SigningKey, StoreError> {
    if let Ok(slot) = state.signing_key.0.lock()
        && let Some((at, key)) = slot.as_ref()
        && at.elapsed() < SIGNING_KEY_TTL
    {
        return Ok(key.clone());
    }
    let keys = state.store.receipt_keys().await?;
    let newest = keys.first().ok_or_else(|| StoreError::Corrupt("no receipt key".into()))?;
    let seed = open_seed(&state.keys.sealer, newest)?;
    Ok(state.signing_key.remember(newest.kid.clone(), seed))
}

/// What a receipt of `p` as it stands (after `refund`, if given) says.
fn claims_of(
    p: &Payment,
    merchant_name: &str,
    refund: Option<&RefundRow>,
) -> Result<ReceiptClaims, StoreError> {
    Ok(ReceiptClaims {
        payment_id: p.id.clone(),
        out_trade_no: p.out_trade_no.clone(),
        merchant_id: p.merchant_id.clone(),
        merchant_name: merchant_name.to_string(),
        amount: p.amount.amount_minor(),
        currency: p.amount.currency().code().to_string(),
        status: p.status().as_str().to_string(),
        paid_at: p.paid_at.clone(),
        items: serde_json::from_str(&p.items)
            .map_err(|e| StoreError::Corrupt(format!("payment {} items: {e}", p.id)))?,
        refunded_amount: p.refunded.amount_minor(),
        iat: chrono::Utc::now().timestamp(),
        refund_id: refund.map(|r| r.id.clone()),
        refund_amount: refund.map(|r| r.amount),
    })
}

/// A receipt signed before the charge it is for was decided, so that neither the signing
/// nor the reading of the key happens while the charge holds its locks.
#[derive(Clone)]
pub struct Presigned {
    claims: ReceiptClaims,
    kid: String,
    jws: String,
}

/// Signs, off the async workers, the receipt `p` will have once charged at `now`; `None`
/// when `p` cannot be charged (it is not pending).
pub async fn presign(
    state: &AppState,
    p: &Payment,
    merchant_name: &str,
    now: &str,
) -> Result<Option<Box<Presigned>>, StoreError> {
    let mut charged = p.clone();
    // The fee and the payer are not in the receipt.
    if charged.charge("presign", Money::zero(p.amount.currency()), now).is_err() {
        return Ok(None);
    }
    let claims = claims_of(&charged, merchant_name, None)?;
    let key = signing_key(state).await?;
    let signed = tokio::task::spawn_blocking(move || {
        let jws = receipt::sign(&claims, &key.1).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok::<_, StoreError>(Box::new(Presigned { claims, kid: key.0.clone(), jws }))
    })
    .await
    .map_err(|e| StoreError::Corrupt(format!("signing a receipt: {e}")))??;
    Ok(Some(signed))
}

/// Records the receipt of a payment as it now stands (after `refund`, if given): the
/// presigned one when it says exactly that, else one signed here.
pub async fn issue(
    sealer: &Sealer,
    tx: &mut WriteTx,
    p: &Payment,
    merchant_name: &str,
    refund: Option<&RefundRow>,
    now: &str,
    presigned: Option<Box<Presigned>>,
) -> Result<(), StoreError> {
    let mut claims = claims_of(p, merchant_name, refund)?;
    if let Some(pre) = &presigned {
        claims.iat = pre.claims.iat;
    }
    let (kid, jws) = match presigned {
        Some(pre) if pre.claims == claims => (pre.kid, pre.jws),
        _ => {
            let key = tx
                .signing_receipt_key()
                .await?
                .ok_or_else(|| StoreError::Corrupt("no receipt key".into()))?;
            let seed = open_seed(sealer, &key)?;
            let jws = receipt::sign(&claims, &seed).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            (key.kid, jws)
        }
    };
    let row = ReceiptRow {
        id: new_id(prefix::RECEIPT),
        payment_id: p.id.clone(),
        refund_id: refund.map(|r| r.id.clone()),
        merchant_id: p.merchant_id.clone(),
        customer_id: p.customer_id.clone(),
        kid,
        jws,
        created_at: now.to_string(),
    };
    tx.insert_receipt(&row).await
}

/// The signing seed of a receipt key, opened at its place.
pub fn open_seed(sealer: &Sealer, key: &ReceiptKeyRow) -> Result<[u8; 32], StoreError> {
    hex::decode(sealer.open(Place::receipt_seed(&key.kid), &key.seed)?)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| StoreError::Corrupt("receipt key seed".into()))
}

/// Adds a new receipt signing key; it signs from now on, and the old ones stay published.
/// `actor`: the operator who asked, or `system` for the first key of a new database.
pub async fn rotate_key(store: &Store, sealer: &Sealer, actor: &str) -> Result<String, StoreError> {
    let seed = receipt::new_seed();
    let public = receipt::public_key(&seed);
    let kid = receipt::key_id(&public);
    let now = now().1;
    let mut tx = store.begin().await?;
    tx.add_receipt_key(
        &kid,
        &sealer.seal(Place::receipt_seed(&kid), &hex::encode(seed)),
        &hex::encode(public),
        &now,
    )
    .await?;
    let audit = AuditRecord { actor, action: "receipt_key.add", object_id: &kid, detail: json!({}) };
    tx.audit(&audit, &now).await?;
    tx.commit().await?;
    Ok(kid)
}

/// Makes the first receipt key of a new database (several nodes may race: one wins).
pub async fn ensure_key(store: &Store, sealer: &Sealer) -> Result<(), StoreError> {
    if store.receipt_keys().await?.is_empty() {
        match rotate_key(store, sealer, "system").await {
            Ok(_) | Err(StoreError::UniqueViolation) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The published receipt keys as this node last read them, and when. Keys are only ever
/// added (a rotation adds the next; none is deleted or changed), so a signature that
/// verifies against this set verifies against the stored one. The set is read again at
/// least every [`KEY_SET_TTL`] all the same, so a database restored to an older state is
/// followed within that.
#[derive(Default)]
pub struct KeySetCache(std::sync::RwLock<Option<(std::time::Instant, Arc<serde_json::Value>)>>);

/// How long a node checks merchant codes against the key set it read.
const KEY_SET_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// The verdict on a scanned merchant code's signature: against the keys this node read
/// before when it verifies there, else against the keys as stored now (a key added since,
/// a bad or missing signature).
pub async fn verify_qr(
    state: &AppState,
    payload: &saoma_core::emv::MpmPayload,
) -> Result<Verdict, StoreError> {
    let cached = state.key_set.0.read().ok().and_then(|slot| slot.clone());
    if let Some((at, keys)) = cached
        && at.elapsed() < KEY_SET_TTL
        && let verdict @ Verdict::Valid(_) = qr_signature::verify(payload, &keys)
    {
        return Ok(verdict);
    }
    let keys = Arc::new(key_set(&state.store).await?.to_value());
    if let Ok(mut slot) = state.key_set.0.write() {
        *slot = Some((std::time::Instant::now(), keys.clone()));
    }
    Ok(qr_signature::verify(payload, &keys))
}

/// The JWKS document of every receipt key, newest first.
pub async fn key_set(store: &Store) -> Result<saoma_api::Jwks, StoreError> {
    let mut keys = Vec::new();
    for k in store.receipt_keys().await? {
        let public = hex::decode(&k.public_key)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| StoreError::Corrupt("receipt public key".into()))?;
        keys.push(receipt::jwk(&public));
    }
    Ok(saoma_api::Jwks { keys })
}

/// The seed of the newest receipt key: it also signs merchant QR codes.
pub async fn newest_seed(store: &Store, sealer: &Sealer) -> Result<[u8; 32], StoreError> {
    let keys = store.receipt_keys().await?;
    let newest = keys.first().ok_or_else(|| StoreError::Corrupt("no receipt key".into()))?;
    open_seed(sealer, newest)
}

/// `GET /.well-known/jwks.json`: every receipt key, newest first. They verify receipts
/// and the signatures on merchant QR codes.
#[utoipa::path(
    operation_id = "receipts_jwks",
    get,
    path = "/.well-known/jwks.json",
    tag = "public",
    summary = "The public keys of receipts and QR signatures.",
    responses((status = 200, description = "the receipt keys (JWK set)", body = saoma_api::Jwks)),
)]
pub async fn jwks(State(state): State<AppState>) -> ApiResult<Json<saoma_api::Jwks>> {
    Ok(Json(key_set(&state.store).await?))
}

/// `GET /v1/payments/{id}/receipt`: the payment's newest receipt.
#[utoipa::path(
    operation_id = "receipts_get",
    get,
    path = "/v1/payments/{id}/receipt",
    tag = "merchant",
    summary = "The payment's signed receipt (JWS).",
    params(("id" = String, Path, description = "the payment's id")),
    responses((status = 200, description = "the signed receipt", body = saoma_api::ReceiptResponse), (status = 409, description = "error")),
    security(("merchant_signature" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    Path(id): Path<String>,
) -> ApiResult<Json<saoma_api::ReceiptResponse>> {
    let p = crate::payments::visible(&caller, state.store.payment(&id).await?)?;
    let r = state.store.latest_receipt(&p.id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::ReceiptUnavailable,
            format!("payment is {}: receipts are for paid payments", p.status().as_str()),
        )
    })?;
    Ok(Json(saoma_api::ReceiptResponse { receipt_jws: r.jws }))
}

/// `POST /v1/admin/receipt-keys/rotate` → `{kid}`. This node signs QR codes with the new
/// key at once, other nodes after a restart; codes signed with older keys stay valid
/// while their keys stay published.
#[utoipa::path(
    operation_id = "receipts_rotate",
    post,
    path = "/v1/admin/receipt-keys/rotate",
    tag = "admin",
    summary = "Adds a new receipt signing key.",
    responses((status = 200, description = "`{kid}` of the new receipt key", body = saoma_api::ReceiptKeyAdded)),
    security(("operator_token" = [])),
)]
pub async fn rotate(
    State(state): State<AppState>,
    Extension(op): Extension<crate::auth::Operator>,
) -> ApiResult<Json<saoma_api::ReceiptKeyAdded>> {
    let kid = rotate_key(&state.store, &state.keys.sealer, &op.id).await?;
    let seed = newest_seed(&state.store, &state.keys.sealer).await?;
    state.set_qr_seed(seed);
    state.signing_key.remember(kid.clone(), seed);
    Ok(Json(saoma_api::ReceiptKeyAdded { kid }))
}
