//! Audit checkpoints: the head (last sequence number and hash) of every audit chain at one
//! moment, signed with the platform's receipt key as a compact JWS (`alg: EdDSA`). The
//! server checks its audit log against the newest one; anyone with the public keys of
//! `/.well-known/jwks.json` can check a checkpoint kept outside the database.

use crate::receipt::{self, ReceiptError};
use serde::{Deserialize, Serialize};

/// The JWS `typ` of a checkpoint, so a receipt is never taken for one.
pub const TYP: &str = "saoma-audit-checkpoint+jwt";

/// The head of one audit chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    pub chain: i64,
    /// Records in the chain: the last one's `chain_seq`.
    pub seq_no: i64,
    /// The last record's hash.
    pub hash: String,
}

/// What a checkpoint says: every chain's head when it was taken.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CheckpointClaims {
    /// When it was taken (RFC 3339).
    pub created_at: String,
    pub iat: i64,
    /// How many chains there were: `heads` has one per chain.
    pub chains: i64,
    pub heads: Vec<ChainHead>,
}

/// Signs a checkpoint with a receipt key's seed.
pub fn sign(claims: &CheckpointClaims, seed: &[u8; 32]) -> Result<String, ReceiptError> {
    receipt::sign_as(claims, seed, TYP)
}

/// Verifies a checkpoint against a JWKS document and returns what it says.
pub fn verify(jws: &str, jwks: &serde_json::Value) -> Result<CheckpointClaims, ReceiptError> {
    let claims: CheckpointClaims = receipt::verify_as(jws, jwks, Some(TYP))?;
    if claims.chains != claims.heads.len() as i64 {
        return Err(ReceiptError::Malformed("the checkpoint's chain count and heads differ".into()));
    }
    Ok(claims)
}

/// The key id a JWS names in its header, read without verifying anything.
pub fn key_id_of(jws: &str) -> Option<String> {
    jsonwebtoken::decode_header(jws.trim()).ok().and_then(|h| h.kid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{jwk, new_seed, public_key};

    fn claims() -> CheckpointClaims {
        CheckpointClaims {
            created_at: "2026-11-25T10:00:00.000Z".into(),
            iat: 1_764_000_000,
            chains: 2,
            heads: vec![
                ChainHead { chain: 0, seq_no: 12, hash: "ab".repeat(32) },
                ChainHead { chain: 1, seq_no: 3, hash: "cd".repeat(32) },
            ],
        }
    }

    #[test]
    fn a_checkpoint_verifies_and_a_forged_one_does_not() {
        let seed = new_seed();
        let jwks = serde_json::json!({"keys": [jwk(&public_key(&seed))]});
        let jws = sign(&claims(), &seed).unwrap();
        assert_eq!(verify(&jws, &jwks).unwrap(), claims());
        assert_eq!(key_id_of(&jws), Some(receipt::key_id(&public_key(&seed))));
        // Signed by a key that is not the platform's.
        let stranger = sign(&claims(), &new_seed()).unwrap();
        assert!(verify(&stranger, &jwks).is_err());
        // A chain left out of a signed checkpoint.
        let parts: Vec<&str> = jws.split('.').collect();
        let mut fewer = claims();
        fewer.heads.pop();
        let body = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&fewer).unwrap(),
        );
        assert!(verify(&format!("{}.{body}.{}", parts[0], parts[2]), &jwks).is_err());
    }

    #[test]
    fn a_receipt_is_not_a_checkpoint() {
        let seed = new_seed();
        let jwks = serde_json::json!({"keys": [jwk(&public_key(&seed))]});
        let jws = receipt::sign_as(&claims(), &seed, "saoma-receipt+jwt").unwrap();
        assert!(matches!(verify(&jws, &jwks), Err(ReceiptError::Malformed(_))));
    }
}
