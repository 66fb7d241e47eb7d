//! API errors: one type, rendered as the `{"error": {...}}` envelope with the request id.
//!
//! Handlers return [`ApiError`]; the request-id middleware fills `request_id` in, so every
//! error a client sees can be found in the logs. Internal errors show only the id.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use saoma_api::{ErrorBody, ErrorEnvelope};
use saoma_store::StoreError;

/// The decline codes of API.md and what they tell the cashier.
const DECLINES: &[(&str, &str)] = &[
    ("insufficient_funds", "the wallet's balance is too low"),
    ("invalid_payment_code", "the payment code is not valid"),
    ("payment_code_expired", "the payment code has expired; ask the customer to refresh it"),
    ("payment_code_used", "the payment code was already used"),
    ("wallet_frozen", "the wallet is frozen"),
    ("limit_exceeded", "the amount is over the customer's limit"),
    ("currency_mismatch", "the wallet cannot pay in this currency"),
    ("risk_declined", "the payment was declined"),
];

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
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
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            param: None,
            payment_id: None,
            retry_after: None,
            sku: None,
        }
    }

    /// 400 `invalid_request` naming the field at fault.
    pub fn invalid(param: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { param: Some(param), ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message) }
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no such {what}"))
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 409 with a code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// 402: a declined payment, with the payment recorded as failed. A failure code this
    /// table does not know is answered as `risk_declined`.
    pub fn declined(code: &str, payment_id: Option<String>) -> ApiError {
        let (code, message) = DECLINES
            .iter()
            .copied()
            .find(|(c, _)| *c == code)
            .unwrap_or(("risk_declined", "the payment was declined"));
        ApiError { payment_id, ..ApiError::new(StatusCode::PAYMENT_REQUIRED, code, message) }
    }

    /// The same error with another code.
    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = code;
        self
    }

    /// 500 `internal_error`; the detail goes to the log once, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(%detail, "Internal error.");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; quote the request id",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if e.is_busy() {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server is busy; retry",
            );
        }
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Renders an error with its request id (called by the request-id middleware).
pub fn render(err: &ApiError, request_id: &str) -> Response {
    let body = ErrorEnvelope {
        error: ErrorBody {
            code: err.code.to_string(),
            message: err.message.clone(),
            param: err.param.map(str::to_string),
            request_id: request_id.to_string(),
            payment_id: err.payment_id.clone(),
            sku: err.sku.as_deref().map(str::to_string),
        },
    };
    let mut response = (err.status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("request-id", v);
    }
    if let Some(seconds) = err.retry_after {
        response.headers_mut().insert("retry-after", HeaderValue::from(seconds));
    }
    response
}
