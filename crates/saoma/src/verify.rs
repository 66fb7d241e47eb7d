//! `saoma verify-receipt`: checks a receipt offline, from a JWS string, a file holding one,
//! or a photo/screenshot (PNG) of the receipt's QR code.

use anyhow::{Context, bail};
use saoma_api::receipt;

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
    let jwks: serde_json::Value = match &args.jwks {
        Some(src) if src.starts_with("http://") || src.starts_with("https://") => {
            reqwest::get(src).await?.error_for_status()?.json().await?
        }
        Some(path) => {
            serde_json::from_str(&std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?)
                .with_context(|| format!("{path} is not a JWKS document"))?
        }
        None => saoma_client::Client::new(&args.url, saoma_client::Credentials::None).jwks().await?,
    };
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
    let image = image::load_from_memory(png).context("not a readable image")?.to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    for grid in prepared.detect_grids() {
        if let Ok((_, text)) = grid.decode() {
            return Ok(text);
        }
    }
    bail!("no readable QR code in the image")
}
