//! The customer's side of the API: sessions, the wallet, payment codes and devices, paying a
//! scanned code, transfers and history.

use crate::merchant::Payment;
use serde::{Deserialize, Serialize};

/// `POST /v1/wallet/session`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub phone: String,
    pub pin: String,
}

/// A wallet session.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    pub token: String,
    pub expires_at: String,
}

/// One balance of a wallet.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Balance {
    pub currency: String,
    pub available: i64,
}

/// The wallet's limits.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Limits {
    /// Above this, in major units of the payment's currency, a payment asks for the PIN.
    pub password_free_major_units: i64,
    /// The customer's risk tier.
    #[serde(default)]
    pub tier: String,
    /// The largest single payment or transfer, in major units.
    #[serde(default)]
    pub per_payment_major_units: i64,
    /// The most that may be paid out in any 24 hours, in major units.
    #[serde(default)]
    pub daily_major_units: i64,
}

/// `GET /v1/wallet`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Wallet {
    pub customer_id: String,
    pub balances: Vec<Balance>,
    pub limits: Limits,
    /// True while the risk officer has frozen the wallet: it cannot pay or transfer.
    #[serde(default)]
    pub frozen: bool,
}

/// `POST /v1/wallet/payment-codes`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentCodeIssued {
    pub code: String,
    pub expires_at: String,
}

/// `POST /v1/wallet/devices`: the customer's PIN, which enrolling a device needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollDeviceRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

/// An enrolled device as the customer sees it (`GET /v1/wallet/devices`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Device {
    pub id: String,
    pub created_at: String,
}

/// `POST /v1/wallet/devices`: what a device needs to make codes offline
/// (docs/payment-codes.md). Nothing in it is shared with any other device.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceEnrolled {
    pub device_id: String,
    /// The device secret, hex; shown once.
    pub secret: String,
    /// The device's slot: the number that names it to the server, never shown in a code.
    pub slot: u32,
    pub step_seconds: i64,
    /// The device's locators for the steps ahead.
    pub schedule: CodeSchedule,
}

/// A device's own locators, one per time step from `first_step`
/// (`POST /v1/wallet/devices/{id}/schedule` fetches the next ones).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CodeSchedule {
    /// The step (Unix time / `step_seconds`) of the first locator.
    pub first_step: i64,
    /// How many locators there are.
    pub steps: i64,
    /// The locators, each a big-endian u32 below 10^8, in standard base64.
    pub locators: String,
}

/// Why a device cannot make an offline code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfflineCodeError {
    #[error("the device's schedule covers steps {first} to {last}; fetch a new one")]
    OutsideSchedule { first: i64, last: i64 },
    #[error("the device's schedule or secret is not well formed")]
    Malformed,
}

impl CodeSchedule {
    /// A schedule of `locators` from `first_step`.
    pub fn new(first_step: i64, locators: &[u32]) -> CodeSchedule {
        let bytes: Vec<u8> = locators.iter().flat_map(|l| l.to_be_bytes()).collect();
        CodeSchedule {
            first_step,
            steps: locators.len() as i64,
            locators: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes),
        }
    }

    /// The locator for `step`.
    pub fn locator_at(&self, step: i64) -> Result<u32, OfflineCodeError> {
        let outside = OfflineCodeError::OutsideSchedule {
            first: self.first_step,
            last: self.first_step + self.steps - 1,
        };
        let index = usize::try_from(step - self.first_step).map_err(|_| outside.clone())?;
        if step - self.first_step >= self.steps {
            return Err(outside);
        }
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &self.locators)
            .map_err(|_| OfflineCodeError::Malformed)?;
        let word = bytes.get(index * 4..index * 4 + 4).ok_or(OfflineCodeError::Malformed)?;
        let locator = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        if locator >= saoma_core::paycode::SLOT_SPACE {
            return Err(OfflineCodeError::Malformed);
        }
        Ok(locator)
    }
}

impl DeviceEnrolled {
    /// The offline code this device shows at `unix_seconds`.
    pub fn code_at(&self, unix_seconds: i64) -> Result<String, OfflineCodeError> {
        offline_code(&self.secret, self.slot, &self.schedule, unix_seconds)
    }
}

/// The offline code of a device (its hex secret, slot and schedule) at `unix_seconds`.
pub fn offline_code(
    secret_hex: &str,
    slot: u32,
    schedule: &CodeSchedule,
    unix_seconds: i64,
) -> Result<String, OfflineCodeError> {
    let secret = hex::decode(secret_hex).map_err(|_| OfflineCodeError::Malformed)?;
    let step = saoma_core::paycode::step_of(unix_seconds);
    Ok(saoma_core::paycode::offline_code(&secret, slot, schedule.locator_at(step)?, step))
}

/// `POST /v1/wallet/qr/resolve`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QrResolveRequest {
    pub qr_payload: String,
}

/// What paying a scanned code means.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QrResolution {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The platform's signature on the code: `valid`, `invalid` or `absent`.
    #[serde(default)]
    pub signature: String,
    /// What the wallet must show loudly before the customer pays (a bad or missing
    /// signature, a merchant that is not active).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `POST /v1/wallet/qr/pay`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QrPayRequest {
    pub qr_payload: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ref: Option<String>,
}

/// `POST /v1/wallet/payments/{id}/confirm`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub pin: String,
}

/// `POST /v1/wallet/transfers`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_payload: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub pin: String,
    pub client_ref: String,
}

/// A transfer between customers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Transfer {
    pub id: String,
    pub from_customer_id: String,
    pub to_customer_id: String,
    pub amount: i64,
    pub currency: String,
    pub client_ref: String,
    pub created_at: String,
}

/// One line of a customer's history.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WalletTransaction {
    /// `payment`, `refund`, `transfer_in`, `transfer_out`, `top_up`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    /// Signed: negative when money left the wallet.
    pub amount: i64,
    pub currency: String,
    pub description: String,
    pub created_at: String,
    /// The signed receipt of a payment or refund (compact JWS).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receipt_jws: Option<String>,
}

/// `GET /v1/wallet/receive-code`: the code others scan to send this customer money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReceiveCode {
    pub qr_payload: String,
    pub qr_png_url: String,
}

/// `GET /v1/wallet/pending`: a payment a till waits for this customer to confirm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingPayment {
    pub payment: Payment,
    pub merchant_name: String,
}

/// `POST /v1/wallet/recipients/resolve`: whom a transfer would reach, masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recipient {
    pub name_masked: String,
    pub phone_masked: String,
}

/// `POST /v1/wallet/recipients/resolve`: `{to_phone}` or `{qr_payload}` of a transfer to
/// look up.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_payload: Option<String>,
}

/// `POST /v1/qr/decode`: what a scanned string is. `kind` names it (`saoma_payment_code`,
/// `wallet_payment_code`, `emv_mpm`, `emv_cpm`, `upi`, `saoma_receive_code`); the other
/// fields of the classification depend on the kind (an EMV code's tags, a UPI link's
/// parameters), so they stay free-form in `fields`, flattened into the answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QrDecoded {
    pub kind: String,
    /// The platform's signature on a code that claims to be Saoma's: `valid`, `invalid` or
    /// `absent`. Absent for any other code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saoma_signature: Option<String>,
    /// What the decoder noticed in an EMV merchant code (a missing tag, a lower-case CRC)
    /// and, for a code that claims to be Saoma's, what to show loudly before paying it (a
    /// bad or missing signature, a merchant that is not active). Absent for other kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
    /// The rest of the classification, by kind.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}
