//! RFC 9421 HTTP Message Signatures with `hmac-sha256`, and RFC 9530 `Content-Digest`.
//!
//! Both sides use this module: the client to sign, the server to verify. The server takes
//! the `@signature-params` line verbatim from the received `Signature-Input` (re-serialised
//! from its parsed form, order kept), because RFC 9421 lets the signer choose the order of
//! parameters; rebuilding it in a fixed order would reject valid signatures.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The only algorithm accepted.
pub const ALG: &str = "hmac-sha256";
/// How far `created` may be from the server's clock, in seconds.
pub const CREATED_SKEW_SECONDS: i64 = 300;

/// Why a signature header is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("signature must cover {0}")]
    MissingComponent(&'static str),
    #[error("signature parameter {0} is missing or malformed")]
    MissingParam(&'static str),
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlg(String),
    #[error("unsupported covered component {0:?}")]
    UnsupportedComponent(String),
}

/// The `Content-Digest` value of a body: `sha-256=:<base64>:`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", B64.encode(Sha256::digest(body)))
}

/// The `@signature-params` value a client sends.
pub fn signature_params(has_body: bool, created: i64, key_id: &str, nonce: &str) -> String {
    let components = if has_body {
        r#"("@method" "@target-uri" "content-digest")"#
    } else {
        r#"("@method" "@target-uri")"#
    };
    format!(r#"{components};created={created};keyid="{key_id}";alg="{ALG}";nonce="{nonce}""#)
}

/// Builds the signature base (RFC 9421 §2.5) for the components Saoma supports.
pub fn signature_base(
    components: &[String],
    method: &str,
    target_uri: &str,
    content_digest: Option<&str>,
    params: &str,
) -> Result<String, SignatureError> {
    let mut base = String::new();
    for c in components {
        let value = match c.as_str() {
            "@method" => method.to_ascii_uppercase(),
            "@target-uri" => target_uri.to_string(),
            "content-digest" => {
                content_digest.ok_or(SignatureError::MissingHeader("content-digest"))?.to_string()
            }
            other => return Err(SignatureError::UnsupportedComponent(other.to_string())),
        };
        base.push_str(&format!("\"{c}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {params}"));
    Ok(base)
}

/// The HMAC-SHA256 of a signature base under a key secret (its UTF-8 bytes).
pub fn hmac(secret: &str, base: &str) -> Vec<u8> {
    // HMAC takes keys of any length; the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return Vec::new() };
    mac.update(base.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The headers a client adds to sign a request.
pub struct SignedHeaders {
    pub signature_input: String,
    pub signature: String,
    pub content_digest: Option<String>,
}

/// Signs a request: `target_uri` is the full URL as sent (`http://host:port/path?query`).
pub fn sign_request(
    method: &str,
    target_uri: &str,
    body: Option<&[u8]>,
    key_id: &str,
    secret: &str,
    created: i64,
    nonce: &str,
) -> SignedHeaders {
    let digest = body.map(content_digest);
    let params = signature_params(digest.is_some(), created, key_id, nonce);
    let mut components = vec!["@method".to_string(), "@target-uri".to_string()];
    if digest.is_some() {
        components.push("content-digest".to_string());
    }
    // Only supported components are listed, so building the base cannot fail.
    let base =
        signature_base(&components, method, target_uri, digest.as_deref(), &params).unwrap_or_default();
    SignedHeaders {
        signature_input: format!("sig1={params}"),
        signature: format!("sig1=:{}:", B64.encode(hmac(secret, &base))),
        content_digest: digest,
    }
}

/// What the server reads out of `Signature-Input` and `Signature`.
#[derive(Debug, Clone)]
pub struct ReceivedSignature {
    pub components: Vec<String>,
    /// The `@signature-params` value, serialised in the order received.
    pub params: String,
    pub created: i64,
    pub key_id: String,
    pub nonce: String,
    pub signature: Vec<u8>,
}

/// Parses the first signature of a request.
pub fn parse_received(signature_input: &str, signature: &str) -> Result<ReceivedSignature, SignatureError> {
    use sfv::{BareItem, Dictionary, ListEntry, Parser};
    let inputs: Dictionary =
        Parser::new(signature_input).parse().map_err(|_| SignatureError::Malformed("signature-input"))?;
    let sigs: Dictionary =
        Parser::new(signature).parse().map_err(|_| SignatureError::Malformed("signature"))?;
    let (label, entry) = inputs.first().ok_or(SignatureError::Malformed("signature-input"))?;
    let ListEntry::InnerList(list) = entry else { return Err(SignatureError::Malformed("signature-input")) };
    let mut components = Vec::new();
    for item in &list.items {
        let name = item.bare_item.as_string().ok_or(SignatureError::Malformed("signature-input"))?;
        if !item.params.is_empty() {
            return Err(SignatureError::UnsupportedComponent(name.as_str().to_string()));
        }
        components.push(name.as_str().to_string());
    }
    let mut ser = sfv::DictSerializer::new();
    ser.members([(label, entry)]);
    let serialised = ser.finish().ok_or(SignatureError::Malformed("signature-input"))?;
    let params = serialised
        .strip_prefix(&format!("{}=", label.as_str()))
        .ok_or(SignatureError::Malformed("signature-input"))?
        .to_string();
    let param = |name: &str| list.params.iter().find(|(k, _)| k.as_str() == name).map(|(_, v)| v);
    let text = |name: &'static str| -> Result<String, SignatureError> {
        match param(name) {
            Some(BareItem::String(s)) => Ok(s.as_str().to_string()),
            _ => Err(SignatureError::MissingParam(name)),
        }
    };
    if let Some(alg) = param("alg") {
        let alg = alg.as_string().map(|s| s.as_str().to_string()).unwrap_or_default();
        if alg != ALG {
            return Err(SignatureError::UnsupportedAlg(alg));
        }
    }
    let created = match param("created") {
        Some(BareItem::Integer(i)) => i64::from(*i),
        _ => return Err(SignatureError::MissingParam("created")),
    };
    let key_id = text("keyid")?;
    let nonce = text("nonce")?;
    if nonce.is_empty() || nonce.len() > 255 {
        return Err(SignatureError::MissingParam("nonce"));
    }
    let signature = match sigs.get(label) {
        Some(ListEntry::Item(item)) => {
            item.bare_item.as_byte_sequence().ok_or(SignatureError::Malformed("signature"))?.to_vec()
        }
        _ => return Err(SignatureError::Malformed("signature")),
    };
    for required in ["@method", "@target-uri"] {
        if !components.iter().any(|c| c == required) {
            return Err(SignatureError::MissingComponent(required));
        }
    }
    Ok(ReceivedSignature { components, params, created, key_id, nonce, signature })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_foreign_parameter_order() {
        // A Python-style signer puts created first and alg after keyid: keep its order.
        let params = r#"("@method" "@target-uri" "content-digest");created=1700000000;keyid="key_1";alg="hmac-sha256";nonce="n1""#;
        let digest = content_digest(b"{}");
        let comps: Vec<String> = ["@method", "@target-uri", "content-digest"].map(String::from).to_vec();
        let base = signature_base(&comps, "POST", "http://h/v1/payments", Some(&digest), params).unwrap();
        let sig = B64.encode(hmac("s3cret", &base));
        let got = parse_received(&format!("pyhms={params}"), &format!("pyhms=:{sig}:")).unwrap();
        assert_eq!(got.params, params);
        assert_eq!(got.key_id, "key_1");
        let rebuilt =
            signature_base(&got.components, "POST", "http://h/v1/payments", Some(&digest), &got.params)
                .unwrap();
        assert_eq!(hmac("s3cret", &rebuilt), got.signature);
    }

    #[test]
    fn client_signature_parses() {
        let h = sign_request("GET", "http://h/x?a=1", None, "key_2", "k", 5, "abc");
        let got = parse_received(&h.signature_input, &h.signature).unwrap();
        let base = signature_base(&got.components, "GET", "http://h/x?a=1", None, &got.params).unwrap();
        assert_eq!(hmac("k", &base), got.signature);
        assert!(
            parse_received("sig1=(\"@method\");created=1;keyid=\"k\";nonce=\"n\"", "sig1=:AA==:").is_err()
        );
        let bad_alg = r#"sig1=("@method" "@target-uri");created=1;keyid="k";nonce="n";alg="rsa-pss-sha512""#;
        assert!(matches!(parse_received(bad_alg, "sig1=:AA==:"), Err(SignatureError::UnsupportedAlg(_))));
    }
}
