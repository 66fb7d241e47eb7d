//! Signing a browser in: the screens' cookie sessions (`/v1/web/...`).

use serde::{Deserialize, Serialize};

/// `{key_id, secret}`: a merchant key signing a browser in.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeySignIn {
    pub key_id: String,
    pub secret: String,
}

/// `{phone, pin}`: a customer signing the wallet page in.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneSignIn {
    pub phone: String,
    pub pin: String,
}

/// `{token}`: an operator signing the console in.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenSignIn {
    pub token: String,
}

/// Signed in: what a page needs beside the session cookie (`Set-Cookie`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedIn {
    /// Sent back in `X-CSRF-Token` with every write.
    pub csrf_token: String,
    pub expires_at: String,
    /// The key's or the operator's role; absent for a wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The till a terminal key belongs to; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<String>,
}

/// `POST /v1/web/merchant/manager`: the manager's key acting for the till, and until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ManagerActing {
    pub manager_key_id: String,
    pub until: String,
}
