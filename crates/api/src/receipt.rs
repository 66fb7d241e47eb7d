//! Electronic receipts: a compact JWS (`alg: EdDSA`, Ed25519) over the payment's details,
//! signed by the platform and checkable by anyone with the public keys of
//! `/.well-known/jwks.json` — offline, with any JOSE library.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a receipt says. Payment receipts leave the refund fields out; a refund's receipt
/// carries them, with `status` and `refunded_amount` as they stand after the refund.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReceiptClaims {
    pub payment_id: String,
    pub out_trade_no: String,
    pub merchant_id: String,
    pub merchant_name: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub paid_at: Option<String>,
    pub items: serde_json::Value,
    pub refunded_amount: i64,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refund_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refund_amount: Option<i64>,
}

/// Why a receipt was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("not a compact JWS: {0}")]
    Malformed(String),
    #[error("the receipt's key id {0:?} is not among the platform's public keys")]
    UnknownKey(Option<String>),
    #[error("the signature does not verify: {0}")]
    BadSignature(String),
    #[error("bad signing key: {0}")]
    BadKey(String),
}

/// DER of PKCS#8 v1 for Ed25519 up to the 32-byte seed (RFC 8410): SEQUENCE, version 0,
/// AlgorithmIdentifier 1.3.101.112, OCTET STRING { OCTET STRING seed }.
const PKCS8_ED25519_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// The 48-byte PKCS#8 v1 wrapping of an Ed25519 seed, the form `jsonwebtoken` takes.
fn pkcs8_v1(seed: &[u8; 32]) -> Vec<u8> {
    [&PKCS8_ED25519_PREFIX[..], seed].concat()
}

/// A new random signing seed.
pub fn new_seed() -> [u8; 32] {
    SigningKey::generate(&mut ed25519_dalek::ed25519::signature::rand_core::OsRng).to_bytes()
}

/// The public key of a seed, raw 32 bytes.
pub fn public_key(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// One public key of `/.well-known/jwks.json`: an Ed25519 key (RFC 8037).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// The key's RFC 7638 thumbprint.
    pub kid: String,
    /// `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
}

/// `GET /.well-known/jwks.json`: the receipt keys, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// The set as a JSON document, for the verifiers (which read any JWKS document).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.keys })
    }
}

/// The JWK of a public key, with its RFC 7638 thumbprint as `kid`.
pub fn jwk(public: &[u8; 32]) -> Jwk {
    Jwk {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x: URL_SAFE_NO_PAD.encode(public),
        kid: key_id(public),
        alg: "EdDSA".into(),
        key_use: "sig".into(),
    }
}

/// The RFC 7638 thumbprint of an Ed25519 public key (its required members, sorted).
pub fn key_id(public: &[u8; 32]) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(public));
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Signs a receipt with the seed; the header names the key.
pub fn sign(claims: &ReceiptClaims, seed: &[u8; 32]) -> Result<String, ReceiptError> {
    sign_as(claims, seed, "saoma-receipt+jwt")
}

/// Signs any claims with the seed as a compact JWS of type `typ`; the header names the key.
pub(crate) fn sign_as<T: Serialize>(claims: &T, seed: &[u8; 32], typ: &str) -> Result<String, ReceiptError> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key_id(&public_key(seed)));
    header.typ = Some(typ.into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&pkcs8_v1(seed)))
        .map_err(|e| ReceiptError::BadKey(e.to_string()))
}

/// Verifies a receipt against a JWKS document and returns what it says.
pub fn verify(jws: &str, jwks: &serde_json::Value) -> Result<ReceiptClaims, ReceiptError> {
    verify_as(jws, jwks, None)
}

/// Verifies a compact JWS against a JWKS document (and its type, when `typ` is given).
pub(crate) fn verify_as<T: serde::de::DeserializeOwned>(
    jws: &str,
    jwks: &serde_json::Value,
    typ: Option<&str>,
) -> Result<T, ReceiptError> {
    let jws = jws.trim();
    let header = jsonwebtoken::decode_header(jws).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
    if header.alg != Algorithm::EdDSA {
        return Err(ReceiptError::BadSignature(format!("algorithm {:?} is not EdDSA", header.alg)));
    }
    if let Some(typ) = typ
        && header.typ.as_deref() != Some(typ)
    {
        return Err(ReceiptError::Malformed(format!("not a {typ}")));
    }
    let set: JwkSet =
        serde_json::from_value(jwks.clone()).map_err(|e| ReceiptError::Malformed(format!("JWKS: {e}")))?;
    let kid = header.kid.clone();
    let jwk = kid.as_deref().and_then(|k| set.find(k)).ok_or(ReceiptError::UnknownKey(kid))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| ReceiptError::BadKey(e.to_string()))?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    // A receipt is a record, not a session: it does not expire.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    jsonwebtoken::decode::<T>(jws, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| ReceiptError::BadSignature(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> ReceiptClaims {
        ReceiptClaims {
            payment_id: "pay_1".into(),
            out_trade_no: "o-1".into(),
            merchant_id: "m_1".into(),
            merchant_name: "Tea House".into(),
            amount: 1250,
            currency: "CNY".into(),
            status: "succeeded".into(),
            paid_at: Some("2026-11-25T10:00:00Z".into()),
            items: serde_json::json!([]),
            refunded_amount: 0,
            iat: 1_764_000_000,
            refund_id: None,
            refund_amount: None,
        }
    }

    #[test]
    fn signs_and_verifies_with_old_and_new_keys() {
        let (old, new) = (new_seed(), new_seed());
        let jwks = serde_json::json!({"keys": [jwk(&public_key(&new)), jwk(&public_key(&old))]});
        for seed in [&old, &new] {
            let jws = sign(&claims(), seed).unwrap();
            assert_eq!(jws.split('.').count(), 3);
            assert_eq!(verify(&jws, &jwks).unwrap(), claims());
        }
    }

    #[test]
    fn tampering_and_unknown_keys_are_refused() {
        let seed = new_seed();
        let jwks = serde_json::json!({"keys": [jwk(&public_key(&seed))]});
        let jws = sign(&claims(), &seed).unwrap();
        let parts: Vec<&str> = jws.split('.').collect();
        let mut changed = claims();
        changed.amount = 1;
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&changed).unwrap());
        let forged = format!("{}.{}.{}", parts[0], forged_body, parts[2]);
        assert!(matches!(verify(&forged, &jwks), Err(ReceiptError::BadSignature(_))));
        let stranger = sign(&claims(), &new_seed()).unwrap();
        assert!(matches!(verify(&stranger, &jwks), Err(ReceiptError::UnknownKey(_))));
        assert!(matches!(verify("not a jws", &jwks), Err(ReceiptError::Malformed(_))));
    }

    #[test]
    fn key_id_is_the_rfc7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
        let x = URL_SAFE_NO_PAD.decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        let public: [u8; 32] = x.try_into().unwrap();
        assert_eq!(key_id(&public), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
