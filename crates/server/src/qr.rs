//! QR images of any payload, as PNG and SVG (`qrcode` crate), and the scanner's decoder.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, ApiQuery};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use qrcode::QrCode;
use saoma_api as api;
use saoma_api::ErrorCode;
use saoma_api::{QrDecoded, QrResolveRequest};

/// The longest payload drawn: room for a signed receipt (a JWS of about 1 KB) and far
/// below a version-40 code's 2953 bytes.
const PAYLOAD_CHARS_MAX: usize = 2048;

fn code_for(payload: &str) -> ApiResult<QrCode> {
    if payload.is_empty() || payload.chars().count() > PAYLOAD_CHARS_MAX {
        return Err(ApiError::invalid(
            "payload",
            format!("payload must be 1 to {PAYLOAD_CHARS_MAX} characters"),
        ));
    }
    QrCode::new(payload.as_bytes()).map_err(|e| ApiError::invalid("payload", format!("cannot draw QR: {e}")))
}

/// `GET /v1/qr.png?payload=...`.
#[utoipa::path(
    operation_id = "qr_png",
    get,
    path = "/v1/qr.png",
    tag = "public",
    summary = "Draws a payload as a QR code (PNG).",
    params(api::PayloadQuery),
    responses((status = 200, description = "the QR image", body = Vec<u8>, content_type = "image/png")),
)]
pub async fn png(ApiQuery(q): ApiQuery<api::PayloadQuery>) -> ApiResult<Response> {
    let code = code_for(&q.payload)?;
    let img = code.render::<image::Luma<u8>>().min_dimensions(256, 256).build();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).map_err(ApiError::internal)?;
    Ok(([("content-type", "image/png"), ("cache-control", "no-store")], out.into_inner()).into_response())
}

/// `GET /v1/qr.svg?payload=...`.
#[utoipa::path(
    operation_id = "qr_svg",
    get,
    path = "/v1/qr.svg",
    tag = "public",
    summary = "Draws a payload as a QR code (SVG).",
    params(api::PayloadQuery),
    responses((status = 200, description = "the QR image", body = String, content_type = "image/svg+xml")),
)]
pub async fn svg(ApiQuery(q): ApiQuery<api::PayloadQuery>) -> ApiResult<Response> {
    let code = code_for(&q.payload)?;
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(256, 256).build();
    Ok(([("content-type", "image/svg+xml"), ("cache-control", "no-store")], svg).into_response())
}

/// `POST /v1/qr/decode` `{qr_payload}`: what a scanned string is, as JSON; a code that
/// claims to be Saoma's also gets `saoma_signature` and `warnings` (checked against this
/// server's keys and the merchant's status).
#[utoipa::path(
    operation_id = "qr_decode",
    method(put, post),
    path = "/v1/qr/decode",
    tag = "public",
    summary = "Reads any scanned string.",
    request_body = saoma_api::QrResolveRequest,
    responses((status = 200, description = "what the scanned string is", body = saoma_api::QrDecoded)),
)]
pub async fn decode(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<QrResolveRequest>,
) -> ApiResult<Json<QrDecoded>> {
    let classified = saoma_core::scan::classify(&req.qr_payload)
        .map_err(|e| ApiError::new(ErrorCode::InvalidQr, e.to_string()))?;
    let mut decoded = decoded(classified)?;
    // Only a code that claims to be Saoma's needs the keys and the merchant.
    let payload = saoma_core::emv::decode(req.qr_payload.trim()).ok();
    if let Some((payload, id)) = payload.as_ref().and_then(|p| Some((p, p.saoma_merchant_id()?))) {
        let verdict = crate::receipts::verify_qr(&state, payload).await?;
        // The signature's and the merchant's warnings come after the decoder's own.
        let mut warnings = decoded.warnings.take().unwrap_or_default();
        warnings.extend(verdict.warning());
        match state.store.merchant(id).await? {
            Some(m) if m.status == "active" => {}
            Some(m) => warnings.push(format!("the merchant is not active ({}): do not pay", m.status)),
            None => warnings.push("no such merchant on this platform: do not pay".into()),
        }
        decoded.saoma_signature = Some(verdict.name().to_string());
        decoded.warnings = Some(warnings);
    }
    Ok(Json(decoded))
}

/// The scanner's classification as the answer: its `kind`, and the rest by kind.
fn decoded(classified: serde_json::Value) -> ApiResult<QrDecoded> {
    let serde_json::Value::Object(mut fields) = classified else {
        return Err(ApiError::internal("the scanner's classification is not an object"));
    };
    let kind = match fields.remove("kind") {
        Some(serde_json::Value::String(kind)) => kind,
        _ => return Err(ApiError::internal("the scanner's classification has no kind")),
    };
    let warnings = match fields.remove("warnings") {
        None => None,
        Some(w) => Some(serde_json::from_value(w).map_err(ApiError::internal)?),
    };
    Ok(QrDecoded { kind, saoma_signature: None, warnings, fields })
}

/// `GET /v1/barcode.svg?code=DIGITS`: a payment code as a Code 128 barcode.
#[utoipa::path(
    operation_id = "qr_barcode_svg",
    get,
    path = "/v1/barcode.svg",
    tag = "public",
    summary = "Draws a payment code as a Code 128 barcode.",
    params(api::BarcodeQuery),
    responses((status = 200, description = "the barcode", body = String, content_type = "image/svg+xml")),
)]
pub async fn barcode_svg(ApiQuery(q): ApiQuery<api::BarcodeQuery>) -> ApiResult<Response> {
    let svg = saoma_core::barcode::code128_svg(&q.code, 80)
        .map_err(|e| ApiError::invalid("code", e.to_string()))?;
    Ok(([("content-type", "image/svg+xml"), ("cache-control", "no-store")], svg).into_response())
}
