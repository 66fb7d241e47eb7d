//! The JSON body extractor: reads the bytes, refuses what does not parse with a 400 that
//! says why (unknown field, wrong type), never a 422 or a 500.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use axum::http::StatusCode;
use saoma_api::ErrorCode;
use serde::de::DeserializeOwned;

/// A JSON request body.
pub struct ApiJson<T>(pub T);

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::BodyTooLarge, "request body is over 64 KiB")
        } else {
            ApiError::new(ErrorCode::InvalidRequest, "could not read the request body")
        }
    })
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<ApiJson<T>, ApiError> {
    // A JSON string can carry NUL only as the escape `\u0000`; no text the server keeps may
    // hold it (PostgreSQL refuses it), so it is a client's mistake, answered as one.
    if bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "text may not contain NUL (\\u0000)"));
    }
    serde_json::from_slice(bytes)
        .map(ApiJson)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("invalid JSON body: {e}")))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        parse(&body_bytes(req, state).await?)
    }
}

/// An optional body: none at all is `None`; a body that is there must parse.
impl<S: Send + Sync, T: DeserializeOwned> OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() { Ok(None) } else { parse(&bytes).map(Some) }
    }
}

/// A query string. One that does not parse (`?limit=ten`) is refused 400 `invalid_request`
/// in the error envelope, like a bad body.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri).map(|q| ApiQuery(q.0)).map_err(|e| {
            ApiError::new(ErrorCode::InvalidRequest, format!("invalid query string: {}", e.body_text()))
        })
    }
}
