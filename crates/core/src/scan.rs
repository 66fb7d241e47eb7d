//! The scanner pipeline: whatever a camera or a keyboard-wedge scanner read, say what it
//! is and decode it, or say clearly why not.
//!
//! Kinds: a Saoma payment code, another wallet's numeric payment code (Alipay, WeChat Pay,
//! UnionPay, by prefix), an EMV MPM payload of any scheme, an EMV CPM payload (base64
//! BER-TLV, `hQVDUFYw…`), a UPI `upi://pay` URI. The result is JSON so the CLI, the POS
//! and the pages show the same thing. A card number read from a CPM payload is masked.

use crate::{emv, paycode};
use base64::Engine;
use serde_json::{Map, Value, json};

/// Why a scan could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("nothing was scanned")]
    Empty,
    #[error("scan is longer than {0} characters")]
    TooLong(usize),
    #[error("invalid EMV MPM payload: {0}")]
    Mpm(#[from] emv::EmvError),
    #[error("invalid EMV CPM payload: {0}")]
    Cpm(String),
    #[error("invalid UPI URI: {0}")]
    Upi(String),
    #[error("{0} digits match no known payment code")]
    UnknownNumeric(usize),
    #[error("not a payment code or QR payload this scanner knows")]
    Unknown,
}

/// What the scanned text is, as JSON with a `kind` field.
pub fn classify(scanned: &str) -> Result<Value, ScanError> {
    // Keyboard-wedge scanners end with CR or LF; some cameras add spaces.
    let s = scanned.trim();
    if s.is_empty() {
        return Err(ScanError::Empty);
    }
    if s.chars().count() > emv::PAYLOAD_CHARS_MAX {
        return Err(ScanError::TooLong(emv::PAYLOAD_CHARS_MAX));
    }
    // No wallet's numeric code starts with "00", so such a string is read as EMV MPM.
    if s.starts_with("00") && s.len() > 4 && s.as_bytes()[2..4].iter().all(u8::is_ascii_digit) {
        return mpm_json(s);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return classify_numeric(s);
    }
    if s.starts_with("hQ") {
        return cpm_json(s);
    }
    if s.get(..9).is_some_and(|head| head.eq_ignore_ascii_case("upi://pay")) {
        return upi_json(s);
    }
    if let Some(token) = receive_token(s) {
        return Ok(serde_json::json!({"kind": "saoma_receive_code", "token": token}));
    }
    Err(ScanError::Unknown)
}

/// The prefix of a person's receive code (what a friend scans to transfer money).
pub const RECEIVE_PREFIX: &str = "saoma://receive/";

/// The token of a Saoma receive code, if `s` is one (26 characters of Crockford base32).
pub fn receive_token(s: &str) -> Option<&str> {
    let token = s.trim().strip_prefix(RECEIVE_PREFIX)?;
    (token.len() == 26 && token.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(token)
}

fn classify_numeric(s: &str) -> Result<Value, ScanError> {
    if let Ok(code) = paycode::parse(s) {
        let kind = match code {
            paycode::PaymentCode::Online(_) => "online",
            paycode::PaymentCode::Offline { .. } => "offline",
        };
        return Ok(json!({"kind": "saoma_payment_code", "issued": kind, "digits": s.len()}));
    }
    let prefix: u32 = s.get(..2).and_then(|p| p.parse().ok()).unwrap_or(0);
    let wallet = match (s.len(), prefix) {
        (16..=24, 25..=30) => Some("alipay"),
        (18, 10..=15) => Some("wechat_pay"),
        (19, 62) => Some("unionpay"),
        _ => None,
    };
    match wallet {
        Some(w) => Ok(json!({"kind": "wallet_payment_code", "wallet": w, "digits": s.len(),
            "note": "another wallet's code; Saoma cannot charge it"})),
        None => Err(ScanError::UnknownNumeric(s.len())),
    }
}

/// The scheme of an MPM payload, from its merchant account templates' GUIDs.
fn mpm_scheme(p: &emv::MpmPayload) -> &'static str {
    let guids: Vec<String> = p
        .fields
        .iter()
        .filter(|f| matches!(f.tag.parse::<u8>(), Ok(26..=51)))
        .filter_map(|f| match &f.value {
            emv::FieldValue::Template(subs) => subs.iter().find(|s| s.tag == "00").map(|s| match &s.value {
                emv::FieldValue::Text(t) => t.to_ascii_uppercase(),
                emv::FieldValue::Template(_) => String::new(),
            }),
            emv::FieldValue::Text(_) => None,
        })
        .collect();
    let has = |needle: &str| guids.iter().any(|g| g.contains(needle));
    if has(&emv::SAOMA_GUID.to_ascii_uppercase()) {
        "saoma"
    } else if has("BR.GOV.BCB.PIX") {
        "pix"
    } else if has("A000000677") {
        "promptpay"
    } else if has("SG.SGQR") || has("SG.PAYNOW") || has("SG.COM.NETS") {
        "sgqr"
    } else if has("A0000006150001") {
        "duitnow"
    } else if has("A000000727") {
        "vietqr"
    } else if has("HK.COM.HKICL") {
        "fps"
    } else {
        "unknown"
    }
}

fn mpm_json(s: &str) -> Result<Value, ScanError> {
    let p = emv::decode(s)?;
    let mut out = match p.to_json() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    out.insert("kind".into(), json!("emv_mpm"));
    out.insert("scheme".into(), json!(mpm_scheme(&p)));
    out.insert("dynamic".into(), json!(p.is_dynamic()));
    if let (Some(c), Some(a)) = (p.currency(), p.amount()) {
        out.insert("amount".into(), json!({"amount": a.amount_minor(), "currency": c.code()}));
    }
    out.insert("warnings".into(), json!(p.warnings));
    Ok(Value::Object(out))
}

/// Reads BER-TLV (EMV Book 3): multi-byte tags, long-form lengths, constructed templates.
fn ber_tlv(mut b: &[u8], depth: u8) -> Result<Vec<Value>, ScanError> {
    let err = |m: &str| ScanError::Cpm(m.to_string());
    let mut out = Vec::new();
    while !b.is_empty() {
        let first = b[0];
        let mut tag_len = 1;
        if first & 0x1f == 0x1f {
            while b.get(tag_len).ok_or_else(|| err("truncated tag"))? & 0x80 != 0 {
                tag_len += 1;
            }
            tag_len += 1;
        }
        let tag = &b[..tag_len];
        b = &b[tag_len..];
        let l0 = *b.first().ok_or_else(|| err("missing length"))?;
        let (len, len_len) = if l0 & 0x80 == 0 {
            (usize::from(l0), 1)
        } else {
            let n = usize::from(l0 & 0x7f);
            if n == 0 || n > 2 || b.len() < 1 + n {
                return Err(err("bad length"));
            }
            (b[1..=n].iter().fold(0usize, |acc, x| acc << 8 | usize::from(*x)), 1 + n)
        };
        b = &b[len_len..];
        let value = b.get(..len).ok_or_else(|| err("value runs past the end"))?;
        b = &b[len..];
        let tag_hex: String = tag.iter().map(|x| format!("{x:02X}")).collect();
        let constructed = first & 0x20 != 0;
        let v = if constructed && depth < 4 {
            json!({"tag": tag_hex, "template": ber_tlv(value, depth + 1)?})
        } else {
            let hex: String = value.iter().map(|x| format!("{x:02X}")).collect();
            let shown = match tag_hex.as_str() {
                // PAN and track 2 equivalent data: show only the last four digits.
                "5A" | "57" => format!("****{}", &hex[hex.len().saturating_sub(4)..]),
                _ => hex,
            };
            let mut m = Map::new();
            m.insert("tag".into(), json!(tag_hex));
            m.insert("hex".into(), json!(shown));
            if matches!(tag_hex.as_str(), "85" | "50" | "5F20" | "9F12")
                && let Ok(text) = std::str::from_utf8(value)
            {
                m.insert("text".into(), json!(text));
            }
            Value::Object(m)
        };
        out.push(v);
    }
    Ok(out)
}

fn cpm_json(s: &str) -> Result<Value, ScanError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| ScanError::Cpm(format!("not base64: {e}")))?;
    if bytes.len() < 7 || bytes[0] != 0x85 || &bytes[2..7] != b"CPV01" {
        return Err(ScanError::Cpm("does not start with payload format indicator CPV01".into()));
    }
    Ok(json!({"kind": "emv_cpm", "tlv": ber_tlv(&bytes, 0)?}))
}

fn percent_decode(s: &str) -> Result<String, ScanError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3).ok_or_else(|| ScanError::Upi("bad percent escape".into()))?;
                out.push(
                    u8::from_str_radix(hex, 16).map_err(|_| ScanError::Upi("bad percent escape".into()))?,
                );
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ScanError::Upi("not UTF-8".into()))
}

fn upi_json(s: &str) -> Result<Value, ScanError> {
    let query = s.split_once('?').map(|(_, q)| q).ok_or_else(|| ScanError::Upi("no parameters".into()))?;
    let mut params = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.insert(percent_decode(k)?.to_ascii_lowercase(), json!(percent_decode(v)?));
    }
    if !params.contains_key("pa") {
        return Err(ScanError::Upi("missing payee address (pa)".into()));
    }
    Ok(json!({"kind": "upi", "params": params}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_codes_by_prefix() {
        assert_eq!(classify("281234567890123456\r\n").unwrap()["wallet"], "alipay");
        assert_eq!(classify("134567890123456789").unwrap()["wallet"], "wechat_pay");
        assert_eq!(classify(&paycode::online_code(1)).unwrap()["kind"], "saoma_payment_code");
        assert_eq!(classify("12345"), Err(ScanError::UnknownNumeric(5)));
    }

    #[test]
    fn receive_codes() {
        let v = classify("saoma://receive/01M8AFGR63FNYHZ0FJF0J3TWJS\n").unwrap();
        assert_eq!(
            (v["kind"].as_str(), v["token"].as_str()),
            (Some("saoma_receive_code"), Some("01M8AFGR63FNYHZ0FJF0J3TWJS"))
        );
        assert!(classify("saoma://receive/short").is_err());
        assert!(classify("saoma://receive/01M8AFGR63FNYHZ0FJF0J3TW!S").is_err());
    }

    #[test]
    fn upi_uri() {
        let v = classify("upi://pay?pa=shop@okbank&pn=Chai%20Stall&am=20.00&cu=INR").unwrap();
        assert_eq!(v["params"]["pn"], "Chai Stall");
        assert!(classify("upi://pay?pn=x").is_err());
    }

    #[test]
    fn cpm_payload() {
        // 85 05 "CPV01", 61 template { 4F AID, 5A PAN }.
        let mut b = vec![0x85, 0x05];
        b.extend_from_slice(b"CPV01");
        let inner = [
            0x4F, 0x07, 0xA0, 0, 0, 0, 0x03, 0x10, 0x10, 0x5A, 0x08, 0x47, 0x61, 0x73, 0x90, 0x01, 0x01,
            0x01, 0x19,
        ];
        b.push(0x61);
        b.push(inner.len() as u8);
        b.extend_from_slice(&inner);
        let s = base64::engine::general_purpose::STANDARD.encode(&b);
        assert!(s.starts_with("hQVDUFYw"));
        let v = classify(&s).unwrap();
        assert_eq!(v["kind"], "emv_cpm");
        assert_eq!(v["tlv"][1]["template"][1]["hex"], "****0119");
        assert!(classify("hQVDUFYwYQ").is_err());
    }

    #[test]
    fn garbage_is_refused_clearly() {
        assert_eq!(classify("   "), Err(ScanError::Empty));
        assert_eq!(classify("hello"), Err(ScanError::Unknown));
        assert!(matches!(classify("000201010211"), Err(ScanError::Mpm(_))));
    }
}
