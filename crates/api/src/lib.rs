//! The JSON types of the Saoma HTTP API (docs/api-notes.md), shared by server and client, and
//! the request-signing scheme. Wire formats live only here. Requests refuse unknown fields.

pub mod admin;
pub mod books;
pub mod checkpoint;
pub mod desk;
pub mod errors;
pub mod merchant;
pub mod qr_image;
pub mod qr_signature;
pub mod query;
pub mod receipt;
pub mod review;
pub mod risk;
pub mod signing;
pub mod wallet;
pub mod web;

use serde::{Deserialize, Serialize};

pub use admin::*;
pub use books::*;
pub use desk::*;
pub use errors::ErrorCode;
pub use merchant::*;
pub use query::*;
pub use receipt::{Jwk, Jwks};
pub use review::*;
pub use risk::*;
pub use wallet::*;
pub use web::*;

/// The error envelope: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// What went wrong, for a machine (`code`) and a person (`message`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// One of the table's codes ([`ErrorCode`]).
    #[schema(value_type = ErrorCode)]
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    #[serde(default)]
    pub request_id: String,
    /// For a declined payment: the payment recorded as `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// For `out_of_stock`: the product that ran out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
}

/// A page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}
