//! The operator's side of the API: merchants, terminals, keys, customers, top-ups, the
//! books, operators and the risk desk's records.

use serde::{Deserialize, Serialize};

/// `POST /v1/admin/merchants`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchantRequest {
    pub name: String,
    pub mcc: String,
    pub city: String,
    pub country: String,
    pub currency: String,
    pub fee_bps: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// A merchant.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Merchant {
    pub id: String,
    pub name: String,
    pub mcc: String,
    pub city: String,
    pub country: String,
    pub currency: String,
    pub fee_bps: u32,
    pub timezone: String,
    pub status: String,
    pub created_at: String,
}

/// `POST /v1/admin/merchants/{id}/terminals`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTerminalRequest {
    pub name: String,
}

/// A terminal (till) of a merchant.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Terminal {
    pub id: String,
    pub merchant_id: String,
    pub name: String,
}

/// `POST /v1/admin/merchants/{id}/keys`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<String>,
    pub role: String,
}

/// A new API key; the secret is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyCreated {
    pub key_id: String,
    pub secret: String,
    pub role: String,
    pub merchant_id: String,
    pub terminal_id: Option<String>,
}

/// `POST /v1/admin/customers`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerRequest {
    pub phone: String,
    pub name: String,
    pub pin: String,
    /// The risk tier whose limits apply (default `standard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

/// A customer as the operator sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Customer {
    pub id: String,
    pub phone: String,
    pub name: String,
    pub created_at: String,
    /// The risk tier whose limits apply.
    #[serde(default)]
    pub tier: String,
    /// True while the wallet is frozen.
    #[serde(default)]
    pub frozen: bool,
}

/// `POST /v1/admin/customers/{id}/topups`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    pub amount: i64,
    pub currency: String,
    pub reference: String,
}

/// A top-up (cash-in).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopUp {
    pub id: String,
    pub customer_id: String,
    pub amount: i64,
    pub currency: String,
    pub reference: String,
    pub created_at: String,
}

/// One currency's line of the trial balance.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrialBalanceLine {
    pub currency: String,
    pub debits: i64,
    pub credits: i64,
    pub balanced: bool,
}

/// `GET /v1/admin/ledger/trial-balance`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrialBalance {
    pub currencies: Vec<TrialBalanceLine>,
    pub balanced: bool,
}

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub key_id: String,
    pub merchant_id: String,
    /// `merchant` (the owner), `manager` or `terminal`.
    pub role: String,
    pub terminal_id: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// Set while a rotated key works out its grace period.
    pub expires_at: Option<String>,
}

/// An operator of the platform: never its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Operator {
    pub id: String,
    pub name: String,
    /// `admin`, `risk_officer`, `support` or `auditor`.
    pub role: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// `POST /v1/admin/operators`: the operator and its bearer token, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorCreated {
    #[serde(flatten)]
    pub operator: Operator,
    pub token: String,
}

/// `POST /v1/admin/operators/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorRevoked {
    pub id: String,
    pub revoked_at: String,
}

/// `POST /v1/admin/customers/{id}/sessions/revoke`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionsRevoked {
    pub customer_id: String,
    pub sessions_ended: u64,
    pub devices_revoked: u64,
}

/// `POST /v1/admin/receipt-keys/rotate`: the new signing key's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReceiptKeyAdded {
    pub kid: String,
}

/// `GET /v1/admin/risk/decisions`: a decline, with the rule that fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RiskDecision {
    pub id: String,
    /// The customer, terminal, key or merchant the rule looked at.
    pub subject_id: String,
    pub payment_id: Option<String>,
    /// The failure code answered (`limit_exceeded`, `risk_declined`, ...).
    pub code: String,
    pub rule: String,
    pub observed: i64,
    pub threshold: i64,
    pub rules_version: i64,
    pub created_at: String,
}

/// `POST /v1/admin/operators` `{name, role}`: a new operator.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOperator {
    pub name: String,
    /// `admin`, `risk_officer`, `support` or `auditor`.
    pub role: String,
}

/// `{grace_seconds?}` of a key rotation: how long the old key keeps working.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_seconds: Option<i64>,
}

/// `{reason}` of a freeze or an unfreeze.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskReason {
    pub reason: String,
}

/// `PUT /v1/admin/customers/{id}/tier` `{tier}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierChange {
    pub tier: String,
}
