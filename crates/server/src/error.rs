//! API errors: one type, rendered as the `{"error": {...}}` envelope with the request id.
//!
//! Handlers return [`ApiError`]; the request-id middleware fills `request_id` in, so every
//! error a client sees can be found in the logs. Internal errors show only the id.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use saoma_api::{ErrorBody, ErrorCode, ErrorEnvelope};
use saoma_store::StoreError;

/// An error answer of the API. Its code comes from the table of codes
/// ([`ErrorCode`], which the OpenAPI document lists), and so does its status: no error
/// can be answered with a code or status that the table does not have.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub param: Option<&'static str>,
    pub payment_id: Option<String>,
    /// Seconds to wait before retrying (`Retry-After`), for 429.
    pub retry_after: Option<u64>,
    /// The product at fault (`out_of_stock`, a bad catalogue line).
    pub sku: Option<Box<str>>,
}

/// Result of a handler or service.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with a code (which decides the status) and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            param: None,
            payment_id: None,
            retry_after: None,
            sku: None,
        }
    }

    /// The HTTP status of the error's code.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 400 `invalid_request` naming the field at fault.
    pub fn invalid(param: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { param: Some(param), ..ApiError::new(ErrorCode::InvalidRequest, message) }
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(ErrorCode::NotFound, format!("no such {what}"))
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    /// 402: a declined payment, with the payment recorded as failed. A failure code the
    /// table does not know as a decline is answered as `risk_declined`.
    pub fn declined(failure_code: &str, payment_id: Option<String>) -> ApiError {
        let code = ErrorCode::decline(failure_code).unwrap_or(ErrorCode::RiskDeclined);
        ApiError { payment_id, ..ApiError::new(code, code.meaning().trim_start_matches("declined: ")) }
    }

    /// 429 `rate_limited`, with when to retry (`Retry-After`, at least 1 s).
    pub fn rate_limited(message: impl Into<String>, retry_after_seconds: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after_seconds.max(1)),
            ..ApiError::new(ErrorCode::RateLimited, message)
        }
    }

    /// The same error with another code (and so, perhaps, another status).
    pub fn with_code(mut self, code: ErrorCode) -> ApiError {
        self.code = code;
        self
    }

    /// 500 `internal_error`; the detail goes to the log once, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(%detail, "Internal error.");
        ApiError::new(ErrorCode::InternalError, "internal error; quote the request id")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if e.is_busy() {
            return ApiError::new(ErrorCode::Unavailable, "the server is busy; retry");
        }
        if let StoreError::Flush(why) = &e {
            // Nothing of the operation landed, or what it read may be gone: a retry is safe.
            tracing::warn!(error = %why, "A group commit failed; the request is answered 503.");
            return ApiError {
                retry_after: Some(1),
                ..ApiError::new(ErrorCode::Unavailable, "the server could not commit this request; retry")
            };
        }
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Renders an error with its request id (called by the request-id middleware).
pub fn render(err: &ApiError, request_id: &str) -> Response {
    let body = ErrorEnvelope {
        error: ErrorBody {
            code: err.code.as_str().to_string(),
            message: err.message.clone(),
            param: err.param.map(str::to_string),
            request_id: request_id.to_string(),
            payment_id: err.payment_id.clone(),
            sku: err.sku.as_deref().map(str::to_string),
        },
    };
    let mut response = (err.status(), axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("request-id", v);
    }
    if let Some(seconds) = err.retry_after {
        response.headers_mut().insert("retry-after", HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_answered_with_its_status_from_the_table() {
        for code in ErrorCode::ALL {
            let response = render(&ApiError::new(*code, "m"), "req_1");
            assert_eq!(response.status().as_u16(), code.status(), "{code}");
        }
        let changed = ApiError::forbidden("m").with_code(ErrorCode::MerchantInactive);
        assert_eq!((changed.status(), changed.code.as_str()), (StatusCode::FORBIDDEN, "merchant_inactive"));
    }

    #[test]
    fn declines_keep_their_code_and_unknown_ones_are_risk_declined() {
        let d = ApiError::declined("currency_mismatch", Some("pay_1".into()));
        assert_eq!((d.status(), d.code.as_str()), (StatusCode::PAYMENT_REQUIRED, "currency_mismatch"));
        assert_eq!(d.message, "the wallet cannot pay in this currency");
        let unknown = ApiError::declined("made_up", None);
        assert_eq!((unknown.status(), unknown.code), (StatusCode::PAYMENT_REQUIRED, ErrorCode::RiskDeclined));
        let not_a_decline = ApiError::declined("not_found", None);
        assert_eq!(not_a_decline.code, ErrorCode::RiskDeclined, "only 402 codes are declines");
    }
}
