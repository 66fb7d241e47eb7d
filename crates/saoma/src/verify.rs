//! `saoma verify-receipt`: checks a receipt offline, from a JWS string, a file holding one,
//! or a photo/screenshot (PNG) of the receipt's QR code.

use anyhow::Context;
use saoma_api::{qr_signature, receipt};

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The receipt: a compact JWS, a file holding one, or a PNG of its QR code.
    receipt: String,
    /// The platform's public keys: a JWKS file (offline) or an http(s) URL. Without it,
    /// they are fetched from SAOMA_URL's /.well-known/jwks.json.
    #[arg(long)]
    jwks: Option<String>,
    #[arg(long, env = "SAOMA_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
}

/// Exit 0 when the receipt verifies (its claims printed as JSON), 1 when it does not.
pub async fn run(args: VerifyArgs) -> anyhow::Result<i32> {
    let jws = read_receipt(&args.receipt)?;
    let jwks = load_jwks(args.jwks.as_deref(), &args.url).await?;
    match receipt::verify(&jws, &jwks) {
        Ok(claims) => {
            println!("{}", serde_json::to_string_pretty(&claims)?);
            eprintln!("saoma: receipt verified");
            Ok(0)
        }
        Err(e) => {
            eprintln!("saoma: receipt NOT valid: {e}");
            Ok(1)
        }
    }
}

/// The platform's keys: a JWKS file, an http(s) URL, or SAOMA_URL's well-known one.
async fn load_jwks(jwks: Option<&str>, url: &str) -> anyhow::Result<serde_json::Value> {
    Ok(match jwks {
        Some(src) if src.starts_with("http://") || src.starts_with("https://") => {
            reqwest::get(src).await?.error_for_status()?.json().await?
        }
        Some(path) => {
            serde_json::from_str(&std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?)
                .with_context(|| format!("{path} is not a JWKS document"))?
        }
        None => saoma_client::Client::new(url, saoma_client::Credentials::None).jwks().await?.to_value(),
    })
}

#[derive(clap::Args)]
pub struct QrDecodeArgs {
    /// The scanned text.
    payload: String,
    /// The platform's public keys, to check a Saoma code's signature: a JWKS file
    /// (offline) or an http(s) URL. Without it, SAOMA_URL's are fetched.
    #[arg(long)]
    jwks: Option<String>,
    #[arg(long, env = "SAOMA_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
}

/// `saoma qr decode`: prints what a scanned string is, as JSON. A code that claims to be
/// Saoma's is checked against the platform's keys and warned about loudly. Exit 0, 1 when
/// it cannot be read, 4 when it claims to be Saoma's and its signature is not valid.
pub async fn decode_qr(args: QrDecodeArgs) -> anyhow::Result<i32> {
    let mut v = match saoma_core::scan::classify(&args.payload) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("saoma: cannot decode: {e}");
            return Ok(1);
        }
    };
    let saoma_code = saoma_core::emv::decode(args.payload.trim()).ok().filter(|p| p.claims_saoma());
    let mut code = 0;
    if let Some(payload) = saoma_code {
        match load_jwks(args.jwks.as_deref(), &args.url).await {
            Ok(jwks) => {
                let verdict = qr_signature::verify(&payload, &jwks);
                if let Some(w) = verdict.warning() {
                    eprintln!("saoma: WARNING: {w}");
                }
                if matches!(verdict, qr_signature::Verdict::Invalid(_)) {
                    code = 4;
                }
                v["saoma_signature"] = verdict.name().into();
            }
            Err(e) => {
                eprintln!(
                    "saoma: WARNING: this code claims to be Saoma's; its signature is unchecked ({e}): pass --jwks or set SAOMA_URL"
                );
                v["saoma_signature"] = "unchecked".into();
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(code)
}

fn read_receipt(input: &str) -> anyhow::Result<String> {
    let path = std::path::Path::new(input);
    if !path.is_file() {
        return Ok(input.trim().to_string());
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {input}"))?;
    if bytes.starts_with(b"\x89PNG") {
        return qr_text(&bytes);
    }
    Ok(String::from_utf8(bytes).context("the receipt file is neither text nor a PNG")?.trim().to_string())
}

/// The text of the first QR code in a PNG image.
pub fn qr_text(png: &[u8]) -> anyhow::Result<String> {
    Ok(saoma_api::qr_image::qr_text(png)?)
}
