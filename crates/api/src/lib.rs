//! The JSON types of the Saoma HTTP API (docs/api-notes.md), shared by server and client, and
//! the request-signing scheme. Wire formats live only here. Requests refuse unknown fields.

pub mod checkpoint;
pub mod errors;
pub mod qr_image;
pub mod qr_signature;
pub mod receipt;
pub mod signing;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use errors::ErrorCode;

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

// ---- Admin ----

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

// ---- Merchant ----

/// One line of an order. Given in full (`name` and `unit_amount`), it is taken as sent.
/// Given as `{sku, quantity}` only, it is a catalogue line: the server fills in the
/// product's name and price. Either way, a line whose `sku` names a product of the
/// merchant's catalogue takes that product's stock when the payment succeeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// Empty (absent) on a catalogue line of a request.
    #[serde(default)]
    pub name: String,
    pub quantity: u32,
    /// Absent (0) on a catalogue line of a request.
    #[serde(default)]
    pub unit_amount: i64,
}

/// `POST /v1/payments`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentRequest {
    pub out_trade_no: String,
    /// May be left out (0) when `items` has catalogue lines: the total of the lines. When
    /// given with catalogue lines it must equal that total (`amount_mismatch`).
    #[serde(default)]
    pub amount: i64,
    pub currency: String,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Item>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
}

/// A payment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Payment {
    pub id: String,
    pub out_trade_no: String,
    pub merchant_id: String,
    pub terminal_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub subject: String,
    pub items: Vec<Item>,
    pub mode: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    pub refunded_amount: i64,
    pub fee: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_ref: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// `customer_confirm` while a consumer-presented payment waits for the customer's PIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_png_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_svg_url: Option<String>,
}

/// `POST /v1/payments/cancel`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelByTradeNoRequest {
    pub out_trade_no: String,
}

/// `POST /v1/payments/{id}/refunds`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefundRequest {
    pub out_refund_no: String,
    /// May be left out (0) with `items`: their value at the payment's prices, which a
    /// given amount must then equal (`amount_mismatch`).
    #[serde(default)]
    pub amount: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Units coming back: their stock is put back in the refund's transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<RefundItem>>,
}

/// Units of one sku a refund brings back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundItem {
    pub sku: String,
    pub quantity: u32,
}

/// A refund.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    pub out_refund_no: String,
    pub amount: i64,
    pub currency: String,
    pub fee_returned: i64,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: String,
}

/// `GET /v1/merchant/qr`: the merchant's static code.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MerchantQr {
    pub qr_payload: String,
    pub qr_png_url: String,
    pub qr_svg_url: String,
}

/// An event of the outbox, as the live feed and webhooks send it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    pub data: Value,
}

// ---- Products and stock ----

/// `POST /v1/merchant/products`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    pub sku: String,
    pub name: String,
    /// Unit price in minor units of `currency`.
    pub price: i64,
    /// The merchant's currency.
    pub currency: String,
    /// Units in stock; absent or null: not tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// At or under this many units the product is low on stock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_stock_threshold: Option<i64>,
}

fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /v1/merchant/products/{id}`: only the fields given change; `null` clears
/// `stock` (no longer tracked), `barcode` and `low_stock_threshold`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProductRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub stock: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub barcode: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub low_stock_threshold: Option<Option<i64>>,
    /// Why the stock was set (a count, a delivery); kept on the stock movement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A product of the merchant's catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub price: i64,
    pub currency: String,
    /// Units in stock; null when not tracked.
    pub stock: Option<i64>,
    pub barcode: Option<String>,
    pub active: bool,
    pub low_stock_threshold: Option<i64>,
    /// True when tracked stock is at or under the threshold.
    pub low_stock: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /v1/merchant/products/{id}/adjustments`: a manual change of stock, with why.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockAdjustmentRequest {
    /// Units added (positive) or removed (negative).
    pub delta: i64,
    pub reason: String,
}

/// One change of a product's stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StockMovement {
    pub id: String,
    pub product_id: String,
    pub sku: String,
    pub delta: i64,
    /// `initial`, `sale`, `refund` or `adjustment`.
    pub kind: String,
    /// Null for a product whose stock is not tracked.
    pub stock_after: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub actor: String,
    pub created_at: String,
}

// ---- Wallet ----

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

/// `GET /v1/payments/{id}/receipt`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReceiptResponse {
    pub receipt_jws: String,
}

// ---- Keys, operators, webhooks (answers the server once built as ad-hoc JSON) ----

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

/// `PUT /v1/merchant/webhook`: the endpoint and its signing secret, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookEndpoint {
    pub url: String,
    /// `whsec_` and standard base64 (Standard Webhooks).
    pub secret: String,
}

/// One attempt to deliver a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryAttempt {
    pub attempted_at: String,
    pub node: String,
    /// The endpoint's HTTP status, if it answered.
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A webhook delivery: one event to the merchant's endpoint, with its attempts when asked
/// for alone (`GET /v1/merchant/webhook/deliveries/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    pub id: String,
    /// The event's type (`payment.succeeded`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempt_count: i64,
    /// When the next attempt is due, while `pending`.
    pub next_attempt_at: Option<String>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<DeliveryAttempt>>,
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

/// `GET /v1/merchant/terminals`: one of the merchant's tills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TerminalListed {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// `GET /v1/merchant/settlements`: what one business day paid out or carried forward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MerchantSettlement {
    pub business_date: String,
    pub currency: String,
    pub amount: i64,
    pub carried: i64,
    /// `paid_out` or `carried`.
    pub status: String,
    pub created_at: String,
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
