//! The platform's Ed25519 signature on Saoma's merchant QR codes, against stickers swapped
//! over a real code. The signature sits in EMV tags 80 and 81 (`saoma_core::emv`); the
//! keys are the receipt keys published at `/.well-known/jwks.json`, and the signed bytes
//! start with their own context, so a QR signature can never pass for a receipt's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use saoma_core::emv::MpmPayload;
use serde::Serialize;

/// What a scanned code's signature says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "signature", content = "detail")]
pub enum Verdict {
    /// Signed by the key whose `kid` is given.
    Valid(String),
    /// Claims to be Saoma's and carries a signature that does not verify: a forged or
    /// edited code.
    Invalid(String),
    /// Claims to be Saoma's and carries no signature: printed before signing, or stripped.
    Absent,
    /// Another scheme's code: not Saoma's to judge.
    NotSaoma,
}

impl Verdict {
    /// The warning to show loudly, if any.
    pub fn warning(&self) -> Option<String> {
        match self {
            Verdict::Invalid(why) => Some(format!(
                "this code claims to be Saoma's but its signature is not valid ({why}): it may be a sticker placed over the real code; do not pay"
            )),
            Verdict::Absent => Some(
                "this code claims to be Saoma's but is not signed: check the merchant's name before paying"
                    .into(),
            ),
            Verdict::Valid(_) | Verdict::NotSaoma => None,
        }
    }

    /// The short name: `valid`, `invalid`, `absent` or `not_saoma`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Valid(_) => "valid",
            Verdict::Invalid(_) => "invalid",
            Verdict::Absent => "absent",
            Verdict::NotSaoma => "not_saoma",
        }
    }
}

/// Signs a code's signing input: answers the key id and the base64url signature, as
/// `SaomaMerchantCode::encode_signed` wants them.
pub fn sign(input: &[u8], seed: &[u8; 32]) -> (String, String) {
    let key = SigningKey::from_bytes(seed);
    let kid = crate::receipt::key_id(&key.verifying_key().to_bytes());
    (kid, URL_SAFE_NO_PAD.encode(key.sign(input).to_bytes()))
}

/// Verifies a decoded payload against a JWKS document (`{"keys": [...]}`).
pub fn verify(payload: &MpmPayload, jwks: &serde_json::Value) -> Verdict {
    if !payload.claims_saoma() {
        return Verdict::NotSaoma;
    }
    let Some(found) = payload.signature() else { return Verdict::Absent };
    if found.kid_prefix.chars().count() != 8 {
        return Verdict::Invalid("malformed key id".into());
    }
    let Some(signature) = URL_SAFE_NO_PAD
        .decode(&found.signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b))
    else {
        return Verdict::Invalid("malformed signature".into());
    };
    let input = payload.signing_input();
    let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    let candidates = keys.iter().filter(|k| {
        k["kid"].as_str().is_some_and(|kid| kid.starts_with(&found.kid_prefix)) && k["crv"] == "Ed25519"
    });
    for k in candidates {
        let public = k["x"]
            .as_str()
            .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .and_then(|b| VerifyingKey::from_bytes(&b).ok());
        if let Some(public) = public
            && public.verify(&input, &signature).is_ok()
        {
            return Verdict::Valid(k["kid"].as_str().unwrap_or_default().to_string());
        }
    }
    Verdict::Invalid("no published key verifies it".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use saoma_core::emv::{self, SaomaMerchantCode};
    use saoma_core::{Currency, Money};

    fn code(name: &str) -> SaomaMerchantCode {
        SaomaMerchantCode {
            merchant_id: "mch_1".into(),
            merchant_name: name.into(),
            mcc: "5812".into(),
            country: "CN".into(),
            city: "Hangzhou".into(),
            currency: Currency::CNY,
            amount: Some(Money::new(1250, Currency::CNY)),
            reference: None,
        }
    }

    fn jwks(seed: &[u8; 32]) -> serde_json::Value {
        serde_json::json!({"keys": [crate::receipt::jwk(&crate::receipt::public_key(seed))]})
    }

    #[test]
    fn signed_codes_verify_and_edits_do_not() {
        let seed = crate::receipt::new_seed();
        let payload = code("Tea House").encode_signed(|input| sign(input, &seed)).unwrap();
        let decoded = emv::decode(&payload).unwrap();
        assert!(matches!(verify(&decoded, &jwks(&seed)), Verdict::Valid(_)));
        // Another key, an edited amount, a stripped signature, another scheme.
        assert_eq!(verify(&decoded, &jwks(&crate::receipt::new_seed())).name(), "invalid");
        let body = payload[..payload.len() - 4].replace("540512.50", "540500.01");
        let edited = format!("{body}{}", emv::crc_hex(body.as_bytes()));
        assert_ne!(edited, payload);
        assert_eq!(verify(&emv::decode(&edited).unwrap(), &jwks(&seed)).name(), "invalid");
        let unsigned = emv::decode(&code("Tea House").encode().unwrap()).unwrap();
        assert_eq!(verify(&unsigned, &jwks(&seed)), Verdict::Absent);
        assert!(Verdict::Absent.warning().is_some());
        let pix = emv::encode(&[
            emv::Field::text("00", "01"),
            emv::Field::template("26", vec![emv::Field::text("00", "br.gov.bcb.pix")]),
            emv::Field::text("52", "0000"),
        ])
        .unwrap();
        assert_eq!(verify(&emv::decode(&pix).unwrap(), &jwks(&seed)), Verdict::NotSaoma);
    }
}
