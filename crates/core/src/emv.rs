//! EMVCo Merchant-Presented Mode (MPM) QR payloads: TLV codec, CRC, Saoma's own codes.
//!
//! A payload is a run of `ID(2 digits) LEN(2 digits) VALUE` fields. Lengths count
//! characters (Unicode code points), while the CRC-16/CCITT-FALSE in tag 63 runs over the
//! UTF-8 bytes of everything before its value. The decoder reads any scheme's payload
//! (Pix, PromptPay, SGQR, DuitNow, VietQR...) and is lenient where real codes are, with
//! warnings; it is strict where a misread would pay the wrong party (CRC, TLV framing).

use crate::money::{Currency, Money};
use serde_json::{Map, Value};

/// The GUID in Saoma's merchant account template.
pub const SAOMA_GUID: &str = "io.saoma";
/// The longest payload Saoma accepts from a scanner.
pub const PAYLOAD_CHARS_MAX: usize = 512;

const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);

/// The CRC-16/CCITT-FALSE of bytes, as EMV tag 63 carries it (4 upper-case hex digits).
pub fn crc_hex(bytes: &[u8]) -> String {
    format!("{:04X}", CRC.checksum(bytes))
}

/// Why a payload is not a valid EMV MPM payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmvError {
    #[error("payload is empty")]
    Empty,
    #[error("payload is longer than {PAYLOAD_CHARS_MAX} characters")]
    TooLong,
    #[error("tag id at position {0} is not two digits")]
    BadTag(usize),
    #[error("length of tag {tag} at position {pos} is not two digits")]
    NonNumericLength { tag: String, pos: usize },
    #[error("tag {tag} says {declared} characters but only {available} remain")]
    Truncated { tag: String, declared: usize, available: usize },
    #[error("tag {0} has an empty value")]
    EmptyValue(String),
    #[error("tag {0} appears twice")]
    DuplicateTag(String),
    #[error("payload format indicator (tag 00) must come first")]
    FormatIndicatorNotFirst,
    #[error("CRC (tag 63) must be the last field")]
    CrcNotLast,
    #[error("no CRC (tag 63)")]
    MissingCrc,
    #[error("CRC mismatch: payload says {found}, computed {computed}")]
    BadCrc { found: String, computed: String },
    #[error("value of tag {tag} is longer than 99 characters")]
    ValueTooLong { tag: String },
}

/// One decoded field: a primitive value or a template of sub-fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    Text(String),
    Template(Vec<Field>),
}

/// A tag and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub tag: String,
    pub value: FieldValue,
}

impl Field {
    /// A primitive field.
    pub fn text(tag: &str, value: impl Into<String>) -> Field {
        Field { tag: tag.to_string(), value: FieldValue::Text(value.into()) }
    }

    /// A template field.
    pub fn template(tag: &str, fields: Vec<Field>) -> Field {
        Field { tag: tag.to_string(), value: FieldValue::Template(fields) }
    }
}

/// A decoded MPM payload, with what was lenient about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpmPayload {
    pub fields: Vec<Field>,
    pub warnings: Vec<String>,
}

/// Splits a run of TLV fields. Lengths count characters.
fn split_tlv(chars: &[char], offset: usize) -> Result<Vec<(String, String)>, EmvError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let pos = offset + i;
        let tag: String = chars.get(i..i + 2).ok_or(EmvError::BadTag(pos))?.iter().collect();
        if !tag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EmvError::BadTag(pos));
        }
        let len_str: String = chars
            .get(i + 2..i + 4)
            .ok_or_else(|| EmvError::NonNumericLength { tag: tag.clone(), pos })?
            .iter()
            .collect();
        if !len_str.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EmvError::NonNumericLength { tag, pos });
        }
        let len: usize = len_str.parse().map_err(|_| EmvError::NonNumericLength { tag: tag.clone(), pos })?;
        let start = i + 4;
        let available = chars.len() - start;
        if len > available {
            return Err(EmvError::Truncated { tag, declared: len, available });
        }
        if len == 0 {
            return Err(EmvError::EmptyValue(tag));
        }
        if out.iter().any(|(t, _)| *t == tag) {
            return Err(EmvError::DuplicateTag(tag));
        }
        out.push((tag, chars[start..start + len].iter().collect()));
        i = start + len;
    }
    Ok(out)
}

fn is_template(tag: &str) -> bool {
    matches!(tag.parse::<u8>(), Ok(26..=51 | 62 | 64 | 80..=99))
}

/// Decodes any EMV MPM payload: checks framing, order and CRC; splits templates.
pub fn decode(payload: &str) -> Result<MpmPayload, EmvError> {
    if payload.is_empty() {
        return Err(EmvError::Empty);
    }
    let chars: Vec<char> = payload.chars().collect();
    if chars.len() > PAYLOAD_CHARS_MAX {
        return Err(EmvError::TooLong);
    }
    let raw = split_tlv(&chars, 0)?;
    let mut warnings = Vec::new();
    if raw.first().map(|(t, _)| t.as_str()) != Some("00") {
        return Err(EmvError::FormatIndicatorNotFirst);
    }
    let Some((last_tag, crc_found)) = raw.last() else { return Err(EmvError::Empty) };
    if last_tag != "63" {
        return if raw.iter().any(|(t, _)| t == "63") {
            Err(EmvError::CrcNotLast)
        } else {
            Err(EmvError::MissingCrc)
        };
    }
    // The CRC covers everything up to and including "6304": all but the last 4 characters.
    let covered: String = chars[..chars.len() - crc_found.chars().count()].iter().collect();
    let computed = crc_hex(covered.as_bytes());
    if !crc_found.eq_ignore_ascii_case(&computed) {
        return Err(EmvError::BadCrc { found: crc_found.clone(), computed });
    }
    if crc_found != &computed {
        warnings.push("CRC is written in lower case".to_string());
    }
    if raw[0].1 != "01" {
        warnings.push(format!("payload format indicator is {:?}, expected \"01\"", raw[0].1));
    }
    for required in ["52", "53", "58", "59", "60"] {
        if !raw.iter().any(|(t, _)| t == required) {
            warnings.push(format!("mandatory tag {required} is missing"));
        }
    }
    if !raw.iter().any(|(t, _)| matches!(t.parse::<u8>(), Ok(2..=51))) {
        warnings.push("no merchant account information (tags 02-51)".to_string());
    }
    let mut fields = Vec::with_capacity(raw.len());
    for (tag, value) in raw {
        let field = if is_template(&tag) {
            let sub: Vec<char> = value.chars().collect();
            match split_tlv(&sub, 0) {
                Ok(subs) => {
                    Field::template(&tag, subs.into_iter().map(|(t, v)| Field::text(&t, v)).collect())
                }
                Err(e) => {
                    warnings.push(format!("template {tag} is not TLV ({e}); kept as text"));
                    Field::text(&tag, value)
                }
            }
        } else {
            Field::text(&tag, value)
        };
        fields.push(field);
    }
    Ok(MpmPayload { fields, warnings })
}

fn encode_fields(fields: &[Field], out: &mut String) -> Result<(), EmvError> {
    for f in fields {
        let value = match &f.value {
            FieldValue::Text(t) => t.clone(),
            FieldValue::Template(subs) => {
                let mut inner = String::new();
                encode_fields(subs, &mut inner)?;
                inner
            }
        };
        let len = value.chars().count();
        if len == 0 || len > 99 {
            return Err(EmvError::ValueTooLong { tag: f.tag.clone() });
        }
        out.push_str(&f.tag);
        out.push_str(&format!("{len:02}"));
        out.push_str(&value);
    }
    Ok(())
}

/// Encodes fields (without tag 63) and appends the CRC.
pub fn encode(fields: &[Field]) -> Result<String, EmvError> {
    let mut out = String::new();
    encode_fields(fields, &mut out)?;
    out.push_str("6304");
    let crc = crc_hex(out.as_bytes());
    out.push_str(&crc);
    Ok(out)
}

impl MpmPayload {
    /// The text of a top-level primitive tag.
    pub fn text(&self, tag: &str) -> Option<&str> {
        self.fields.iter().find(|f| f.tag == tag).and_then(|f| match &f.value {
            FieldValue::Text(t) => Some(t.as_str()),
            FieldValue::Template(_) => None,
        })
    }

    /// The sub-fields of a top-level template tag.
    pub fn template(&self, tag: &str) -> Option<&[Field]> {
        self.fields.iter().find(|f| f.tag == tag).and_then(|f| match &f.value {
            FieldValue::Template(subs) => Some(subs.as_slice()),
            FieldValue::Text(_) => None,
        })
    }

    /// As JSON: an object keyed by two-digit tag id, templates as objects of sub-tags.
    pub fn to_json(&self) -> Value {
        fn obj(fields: &[Field]) -> Value {
            let mut m = Map::new();
            for f in fields {
                let v = match &f.value {
                    FieldValue::Text(t) => Value::String(t.clone()),
                    FieldValue::Template(subs) => obj(subs),
                };
                m.insert(f.tag.clone(), v);
            }
            Value::Object(m)
        }
        obj(&self.fields)
    }

    /// True when tag 01 says the code is dynamic (`12`).
    pub fn is_dynamic(&self) -> bool {
        self.text("01") == Some("12")
    }

    /// The transaction currency of tag 53, when known.
    pub fn currency(&self) -> Option<Currency> {
        self.text("53").and_then(|n| n.parse().ok()).and_then(Currency::from_numeric)
    }

    /// The amount of tag 54, parsed with the currency's exponent.
    pub fn amount(&self) -> Option<Money> {
        let currency = self.currency()?;
        Money::parse_decimal(self.text("54")?, currency).ok()
    }

    /// Saoma's merchant id, from the account template whose GUID is `io.saoma`.
    pub fn saoma_merchant_id(&self) -> Option<&str> {
        self.fields.iter().filter(|f| matches!(f.tag.parse::<u8>(), Ok(26..=51))).find_map(|f| {
            let FieldValue::Template(subs) = &f.value else { return None };
            let guid = subs.iter().find(|s| s.tag == "00")?;
            if guid.value != FieldValue::Text(SAOMA_GUID.to_string()) {
                return None;
            }
            match &subs.iter().find(|s| s.tag == "01")?.value {
                FieldValue::Text(t) => Some(t.as_str()),
                FieldValue::Template(_) => None,
            }
        })
    }

    /// The payment reference of tag 62 sub-tag 05 (reference label).
    pub fn reference(&self) -> Option<&str> {
        self.template("62")?.iter().find(|f| f.tag == "05").and_then(|f| match &f.value {
            FieldValue::Text(t) => Some(t.as_str()),
            FieldValue::Template(_) => None,
        })
    }
}

/// What Saoma puts in a merchant's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaomaMerchantCode {
    pub merchant_id: String,
    pub merchant_name: String,
    pub mcc: String,
    pub country: String,
    pub city: String,
    pub currency: Currency,
    /// Present for a dynamic code; a static code lets the customer type the amount.
    pub amount: Option<Money>,
    /// The payment's reference, for a dynamic code.
    pub reference: Option<String>,
}

fn clip(s: &str, max: usize) -> String {
    let clipped: String = s.chars().filter(|c| !c.is_control()).take(max).collect();
    if clipped.is_empty() { "-".to_string() } else { clipped }
}

/// The tags of Saoma's signature (unreserved templates, so any EMV wallet still reads the
/// code): 80 holds the GUID, the key id's first 8 characters and the first half of the
/// base64url Ed25519 signature; 81 the GUID and the second half. One template cannot hold
/// it all: a TLV value is at most 99 characters.
pub const SIGNATURE_TAGS: [&str; 2] = ["80", "81"];
/// What the signature covers is prefixed with this, so it can mean nothing else.
pub const SIGNING_CONTEXT: &str = "saoma-mpm-v1\n";

/// A signature found in a payload: the key id's prefix and the base64url signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpmSignature {
    pub kid_prefix: String,
    pub signature: String,
}

impl MpmPayload {
    /// The bytes Saoma's signature covers: the context, then every field but the
    /// signature's and the CRC, encoded as they were read.
    pub fn signing_input(&self) -> Vec<u8> {
        let unsigned: Vec<Field> = self
            .fields
            .iter()
            .filter(|f| f.tag != "63" && !SIGNATURE_TAGS.contains(&f.tag.as_str()))
            .cloned()
            .collect();
        let mut out = String::from(SIGNING_CONTEXT);
        // Fields that were decoded re-encode to the same text; a failure leaves the input
        // short, so no signature verifies against it.
        let _ = encode_fields(&unsigned, &mut out);
        out.into_bytes()
    }

    /// Saoma's signature in tags 80 and 81, when both carry Saoma's GUID.
    pub fn signature(&self) -> Option<MpmSignature> {
        let sub = |tag: &str, sub: &str| -> Option<String> {
            let t = self.template(tag)?;
            let text = |s: &str| {
                t.iter().find(|f| f.tag == s).and_then(|f| match &f.value {
                    FieldValue::Text(v) => Some(v.clone()),
                    FieldValue::Template(_) => None,
                })
            };
            (text("00")? == SAOMA_GUID).then(|| text(sub)).flatten()
        };
        let kid_prefix = sub("80", "01")?;
        let signature = format!("{}{}", sub("80", "02")?, sub("81", "01")?);
        Some(MpmSignature { kid_prefix, signature })
    }

    /// True when any field other than the signature's says the code is Saoma's.
    pub fn claims_saoma(&self) -> bool {
        self.saoma_merchant_id().is_some()
    }
}

impl SaomaMerchantCode {
    /// The signed payload: `sign` gets the signing input and answers the key id and the
    /// base64url Ed25519 signature (86 characters).
    pub fn encode_signed(&self, sign: impl FnOnce(&[u8]) -> (String, String)) -> Result<String, EmvError> {
        let fields = self.fields();
        let mut input = String::from(SIGNING_CONTEXT);
        encode_fields(&fields, &mut input)?;
        let (kid, signature) = sign(input.as_bytes());
        let kid_prefix: String = kid.chars().take(8).collect();
        let half = signature.len() / 2;
        let (first, second) = signature.split_at(half);
        let mut fields = fields;
        fields.push(Field::template(
            "80",
            vec![Field::text("00", SAOMA_GUID), Field::text("01", kid_prefix), Field::text("02", first)],
        ));
        fields.push(Field::template("81", vec![Field::text("00", SAOMA_GUID), Field::text("01", second)]));
        encode(&fields)
    }

    /// The EMV MPM payload: static (01=11) without an amount, dynamic (01=12) with one.
    pub fn encode(&self) -> Result<String, EmvError> {
        encode(&self.fields())
    }

    fn fields(&self) -> Vec<Field> {
        let mut fields = vec![
            Field::text("00", "01"),
            Field::text("01", if self.amount.is_some() { "12" } else { "11" }),
            Field::template("26", vec![Field::text("00", SAOMA_GUID), Field::text("01", &self.merchant_id)]),
            Field::text("52", &self.mcc),
            Field::text("53", format!("{:03}", self.currency.numeric())),
        ];
        if let Some(amount) = self.amount {
            fields.push(Field::text("54", amount.to_decimal()));
        }
        fields.push(Field::text("58", &self.country));
        fields.push(Field::text("59", clip(&self.merchant_name, 25)));
        fields.push(Field::text("60", clip(&self.city, 15)));
        if let Some(reference) = &self.reference {
            fields.push(Field::template("62", vec![Field::text("05", reference)]));
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc_hex(b"123456789"), "29B1");
    }

    #[test]
    fn decodes_a_pix_code() {
        // A Pix static code as published in the Banco Central do Brasil manual's examples.
        let body = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***6304";
        let payload = format!("{body}{}", crc_hex(body.as_bytes()));
        let p = decode(&payload).unwrap();
        assert_eq!(p.template("26").unwrap()[0].value, FieldValue::Text("br.gov.bcb.pix".into()));
        assert_eq!(p.currency().unwrap().code(), "BRL");
        assert_eq!(p.reference(), Some("***"));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn lengths_count_characters_and_crc_counts_bytes() {
        let fields = vec![
            Field::text("00", "01"),
            Field::text("01", "11"),
            Field::template("26", vec![Field::text("00", SAOMA_GUID), Field::text("01", "mch_1")]),
            Field::text("52", "5812"),
            Field::text("53", "156"),
            Field::text("58", "CN"),
            Field::text("59", "小笼包"),
            Field::text("60", "上海"),
        ];
        let s = encode(&fields).unwrap();
        assert!(s.contains("5903小笼包"));
        assert_eq!(decode(&s).unwrap().text("59"), Some("小笼包"));
    }

    #[test]
    fn typed_errors() {
        let good = SaomaMerchantCode {
            merchant_id: "mch_1".into(),
            merchant_name: "Tea".into(),
            mcc: "5812".into(),
            country: "CN".into(),
            city: "Shanghai".into(),
            currency: Currency::CNY,
            amount: None,
            reference: None,
        }
        .encode()
        .unwrap();
        let mut bad_crc = good.clone();
        bad_crc.replace_range(good.len() - 4.., "0000");
        assert!(matches!(decode(&bad_crc), Err(EmvError::BadCrc { .. })));
        assert!(matches!(decode(&good[..good.len() - 2]), Err(EmvError::Truncated { .. })));
        assert!(matches!(
            decode("0002016304ABCD"),
            Err(EmvError::Truncated { .. }) | Err(EmvError::BadCrc { .. })
        ));
        assert!(matches!(decode("00AB01"), Err(EmvError::NonNumericLength { .. })));
        assert!(matches!(decode("0x0201"), Err(EmvError::BadTag(0))));
        assert_eq!(decode(""), Err(EmvError::Empty));
        let dup = encode(&[Field::text("00", "01"), Field::text("59", "A"), Field::text("59", "B")]).unwrap();
        assert_eq!(decode(&dup), Err(EmvError::DuplicateTag("59".into())));
        let misordered = encode(&[Field::text("59", "A"), Field::text("00", "01")]).unwrap();
        assert_eq!(decode(&misordered), Err(EmvError::FormatIndicatorNotFirst));
        assert_eq!(decode("000201"), Err(EmvError::MissingCrc));
    }

    #[test]
    fn a_signed_code_carries_its_signature_and_stays_readable() {
        let code = SaomaMerchantCode {
            merchant_id: "mch_01J0000000000000000000000".into(),
            merchant_name: "Dragon Well Tea".into(),
            mcc: "5812".into(),
            country: "CN".into(),
            city: "Hangzhou".into(),
            currency: Currency::CNY,
            amount: Some(Money::new(1250, Currency::CNY)),
            reference: Some("REF123".into()),
        };
        let mut seen = Vec::new();
        let sig = "s".repeat(43) + &"t".repeat(43);
        let payload = code
            .encode_signed(|input| {
                seen = input.to_vec();
                ("KIDabcdefghijk".into(), sig.clone())
            })
            .unwrap();
        let decoded = decode(&payload).unwrap();
        assert_eq!(decoded.saoma_merchant_id(), Some("mch_01J0000000000000000000000"));
        assert_eq!(decoded.reference(), Some("REF123"));
        let found = decoded.signature().unwrap();
        assert_eq!((found.kid_prefix.as_str(), found.signature.as_str()), ("KIDabcde", sig.as_str()));
        assert_eq!(decoded.signing_input(), seen, "what was signed is what a verifier rebuilds");
        assert!(seen.starts_with(SIGNING_CONTEXT.as_bytes()));
        // An edit anywhere else changes the signing input.
        let body = payload[..payload.len() - 4].replace("Dragon Well Tea", "Dragon Wall Tea");
        let edited = format!("{body}{}", crc_hex(body.as_bytes()));
        assert_ne!(decode(&edited).unwrap().signing_input(), seen);
        assert!(payload.chars().count() <= PAYLOAD_CHARS_MAX);
        assert!(decode(&code.encode().unwrap()).unwrap().signature().is_none());
    }
}
