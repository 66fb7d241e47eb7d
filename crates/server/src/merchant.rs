//! The merchant's own settings: its static QR code.

use crate::auth::MerchantCaller;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, views};
use axum::Json;
use axum::extract::{Extension, State};
use saoma_api as api;

/// `GET /v1/merchant/qr`: the static EMV code the customer scans and types the amount into.
#[utoipa::path(
    operation_id = "merchant_static_qr",
    get,
    path = "/v1/merchant/qr",
    tag = "merchant",
    summary = "The merchant's static QR code.",
    responses((status = 200, description = "the merchant's static code", body = saoma_api::MerchantQr)),
    security(("merchant_signature" = [])),
)]
pub async fn static_qr(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
) -> ApiResult<Json<api::MerchantQr>> {
    let m =
        state.store.merchant(&caller.merchant_id).await?.ok_or_else(|| ApiError::not_found("merchant"))?;
    let payload = views::merchant_code(&m, None, &state.qr_seed())?;
    let (png, svg) = views::qr_urls(&payload);
    Ok(Json(api::MerchantQr { qr_payload: payload, qr_png_url: png, qr_svg_url: svg }))
}
