//! The real inputs of the fuzz seed corpus (fuzz/corpus) are made here by the project's
//! own code, and each is read as what it claims to be: a Saoma merchant QR signed by the
//! fuzz targets' key (and a forged copy of it), an offline `67` code from the locator
//! cipher, other wallets' numeric codes, an EMV CPM payload, and receipts signed by the
//! receipt signer. The checked-in files must equal what the code makes now;
//! `SAOMA_WRITE_SEEDS=1 cargo test -p saoma-api --test fuzz_seeds` rewrites them.

use base64::Engine;
use saoma_api::{qr_signature, receipt};
use saoma_core::emv::{self, SaomaMerchantCode};
use saoma_core::{Currency, Money, paycode, scan};
use std::path::Path;

/// The key the fuzz targets' key sets hold (fuzz/fuzz_targets/scan.rs, receipt.rs).
const FUZZ_KEY: [u8; 32] = [7; 32];
/// A key that is not in them.
const OTHER_KEY: [u8; 32] = [9; 32];

/// A seed: the fuzz target, the file name, the input.
type Seed = (&'static str, &'static str, String);

fn merchant_code(amount: Option<i64>, reference: Option<&str>) -> SaomaMerchantCode {
    SaomaMerchantCode {
        merchant_id: "mch_01J9ZK3Q4W8V6T2N5R7M1X0C3B".into(),
        merchant_name: "Tea House".into(),
        mcc: "5814".into(),
        country: "CN".into(),
        city: "Hangzhou".into(),
        currency: Currency::CNY,
        amount: amount.map(|a| Money::new(a, Currency::CNY)),
        reference: reference.map(Into::into),
    }
}

/// Saoma merchant QR codes as the server prints them (signed), one edited after signing,
/// and one with its CRC in lower case.
fn merchant_qr_seeds() -> Vec<Seed> {
    let sign = |input: &[u8]| qr_signature::sign(input, &FUZZ_KEY);
    let dynamic = merchant_code(Some(1250), Some("q_7KX2M9")).encode_signed(sign).unwrap();
    let fixed = merchant_code(None, None).encode_signed(sign).unwrap();
    let body = dynamic[..dynamic.len() - 4].replace("540512.50", "540500.01");
    assert_ne!(body, dynamic[..dynamic.len() - 4], "the amount is in the code");
    let forged = format!("{body}{}", emv::crc_hex(body.as_bytes()));
    let lower_crc = format!("{}{}", &fixed[..fixed.len() - 4], fixed[fixed.len() - 4..].to_ascii_lowercase());
    vec![
        ("scan", "saoma-signed-dynamic", dynamic.clone()),
        ("scan", "saoma-signed-static", fixed.clone()),
        ("scan", "saoma-forged-amount", forged),
        ("emv", "saoma-signed-dynamic", dynamic),
        ("emv", "saoma-signed-static", fixed),
        ("emv", "lower-case-crc", lower_crc),
    ]
}

/// Codes a till scans from a customer's phone: Saoma's own, online and offline (from the
/// locator cipher, as the server's schedule hands them to a device), and other wallets'.
fn numeric_seeds() -> Vec<Seed> {
    let step = paycode::step_of(1_750_000_000);
    let cipher = paycode::SlotCipher::new(&[3; 32]).unwrap();
    let locator = cipher.locator(42, step).unwrap();
    let offline = paycode::offline_code(b"device-secret-of-the-seed-corpus", 42, locator, step);
    vec![
        ("scan", "online-real", paycode::online_code(734_015_226_981_337)),
        ("scan", "offline-real", offline.clone()),
        ("paycode", "offline-real", offline),
        ("scan", "alipay", format!("28{:016}", 7_612_345_678_901_234u64)),
        ("scan", "wechat-pay", format!("13{:016}", 4_567_890_123_456_789u64)),
        ("scan", "unionpay", format!("62{:017}", 12_345_678_901_234_567u64)),
    ]
}

/// One BER-TLV field with a short-form length.
fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let len = u8::try_from(value.len()).ok().filter(|l| *l < 0x80).expect("a short value");
    [tag, &[len], value].concat()
}

/// An EMV CPM payload (EMVCo consumer-presented QR): the payload format indicator, then an
/// application template with the AID, label, PAN, name and the cryptogram's template.
fn cpm_seed() -> Seed {
    let cryptogram = [
        tlv(&[0x9F, 0x26], &[0x1A, 0x2B, 0x3C, 0x4D, 0x5E, 0x6F, 0x70, 0x81]),
        tlv(&[0x9F, 0x27], &[0x80]),
        tlv(&[0x9F, 0x10], &[0x07, 0x01, 0x01, 0x03, 0xA0, 0x00, 0x00]),
        tlv(&[0x9F, 0x36], &[0x00, 0x2A]),
        tlv(&[0x9F, 0x37], &[0xDE, 0xAD, 0xBE, 0xEF]),
    ]
    .concat();
    let app = [
        tlv(&[0x4F], &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01]),
        tlv(&[0x50], b"UnionPay Debit"),
        tlv(&[0x5A], &[0x62, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34]),
        tlv(&[0x5F, 0x20], b"GUEST/SAOMA"),
        tlv(&[0x9F, 0x25], &[0x12, 0x34]),
        tlv(&[0x63], &cryptogram),
    ]
    .concat();
    let bytes = [tlv(&[0x85], b"CPV01"), tlv(&[0x61], &app)].concat();
    ("scan", "emv-cpm", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Receipts as the server signs them: a payment's, a refund's, and one by a key the fuzz
/// target does not know.
fn receipt_seeds() -> Vec<Seed> {
    let item = saoma_api::Item { sku: None, name: "Oolong".into(), quantity: 2, unit_amount: 625 };
    let paid = receipt::ReceiptClaims {
        payment_id: "pay_01J9ZM0A8S3D5F7G9H1J3K5L7N".into(),
        out_trade_no: "till-1-000042".into(),
        merchant_id: "mch_01J9ZK3Q4W8V6T2N5R7M1X0C3B".into(),
        merchant_name: "Tea House".into(),
        amount: 1250,
        currency: "CNY".into(),
        status: "succeeded".into(),
        paid_at: Some("2025-06-15T08:26:40Z".into()),
        items: serde_json::to_value([item]).unwrap(),
        refunded_amount: 0,
        iat: 1_750_000_000,
        refund_id: None,
        refund_amount: None,
    };
    let refund = receipt::ReceiptClaims {
        status: "succeeded".into(),
        refunded_amount: 625,
        iat: 1_750_000_600,
        refund_id: Some("ref_01J9ZM4B2C4D6E8F0G2H4J6K8M".into()),
        refund_amount: Some(625),
        ..paid.clone()
    };
    vec![
        ("receipt", "signed-payment", receipt::sign(&paid, &FUZZ_KEY).unwrap()),
        ("receipt", "signed-refund", receipt::sign(&refund, &FUZZ_KEY).unwrap()),
        ("receipt", "other-key", receipt::sign(&paid, &OTHER_KEY).unwrap()),
    ]
}

fn real_seeds() -> Vec<Seed> {
    let mut seeds = merchant_qr_seeds();
    seeds.extend(numeric_seeds());
    seeds.push(cpm_seed());
    seeds.extend(receipt_seeds());
    seeds
}

fn jwks(seed: &[u8; 32]) -> serde_json::Value {
    serde_json::json!({"keys": [receipt::jwk(&receipt::public_key(seed))]})
}

#[test]
fn each_real_seed_reads_as_what_it_claims() {
    let scanned = |name: &str| {
        let (_, _, text) = real_seeds().into_iter().find(|(t, n, _)| *t == "scan" && *n == name).unwrap();
        scan::classify(&text).unwrap_or_else(|e| panic!("scan/{name}: {e}"))
    };
    assert_eq!(scanned("online-real")["issued"], "online");
    assert_eq!(scanned("offline-real")["issued"], "offline");
    assert_eq!(scanned("alipay")["wallet"], "alipay");
    assert_eq!(scanned("wechat-pay")["wallet"], "wechat_pay");
    assert_eq!(scanned("unionpay")["wallet"], "unionpay");
    let cpm = scanned("emv-cpm");
    assert_eq!(
        (cpm["kind"].as_str(), cpm["tlv"][1]["template"][2]["hex"].as_str()),
        (Some("emv_cpm"), Some("****1234"))
    );
    let verdict = |name: &str| {
        let (_, _, text) = real_seeds().into_iter().find(|(t, n, _)| *t == "scan" && *n == name).unwrap();
        qr_signature::verify(&emv::decode(&text).unwrap(), &jwks(&FUZZ_KEY)).name()
    };
    assert_eq!(verdict("saoma-signed-dynamic"), "valid");
    assert_eq!(verdict("saoma-signed-static"), "valid");
    assert_eq!(verdict("saoma-forged-amount"), "invalid");
    for (_, name, jws) in receipt_seeds() {
        let verified = receipt::verify(&jws, &jwks(&FUZZ_KEY));
        assert_eq!(verified.is_ok(), name.starts_with("signed-"), "receipt/{name}: {verified:?}");
    }
}

#[test]
fn the_seed_corpus_holds_the_real_seeds_as_the_code_makes_them() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let write = std::env::var("SAOMA_WRITE_SEEDS").as_deref() == Ok("1");
    for (target, name, text) in real_seeds() {
        let path = corpus.join(target).join(name);
        if write {
            std::fs::write(&path, &text).unwrap();
        }
        let found = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            found, text,
            "fuzz/corpus/{target}/{name} is not what the code makes: SAOMA_WRITE_SEEDS=1 rewrites it"
        );
    }
}
