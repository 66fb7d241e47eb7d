//! Merchant review (KYC): the application a merchant submits and the views of it the
//! merchant and the operator get (the owner's identity number masked).

use crate::admin::Merchant;
use serde::{Deserialize, Serialize};

/// One document, by hash: the file stays with the merchant and the operator's archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// One of the document kinds (`business_licence`, ...).
    pub kind: String,
    /// 64 lower-case hex digits.
    pub sha256: String,
}

/// `PUT /v1/merchant/application`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub legal_name: String,
    pub licence_number: String,
    pub owner_name: String,
    pub owner_id_number: String,
    pub documents: Vec<Document>,
}

/// An application as the merchant and the operator see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplicationView {
    pub merchant_id: String,
    pub legal_name: String,
    pub licence_number: String,
    pub owner_name: String,
    /// Masked: only its last characters are shown.
    pub owner_id_number: String,
    pub documents: Vec<Document>,
    /// `submitted`, `more_info`, `approved` or `rejected`.
    pub status: String,
    /// The operator's reason for a rejection or a request for more.
    pub reason: Option<String>,
    pub submitted_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
}

/// An application as the review queue lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplicationSummary {
    pub legal_name: String,
    pub licence_number: String,
    pub owner_name: String,
    pub status: String,
    pub reason: Option<String>,
    pub submitted_at: String,
}

/// `GET /v1/admin/merchants`: a merchant with its application, if it applied.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MerchantListed {
    pub merchant: Merchant,
    pub application: Option<ApplicationSummary>,
}

/// `{reason}` of an operator's decision; for approve and suspend it may be left out (or
/// the body be empty).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewReason {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
