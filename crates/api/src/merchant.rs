//! The merchant's side of the API: payments, refunds, the catalogue and stock, webhooks,
//! terminals and settlements.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// The object the event is about (a payment, a refund, a product), as its own answer
    /// shows it: its shape depends on `type`, so it stays free-form.
    pub data: Value,
}

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

/// An optional field whose `null` is kept apart from its absence: absent is `None`, `null`
/// is `Some(None)`.
pub(crate) fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
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

/// `GET /v1/payments/{id}/receipt`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReceiptResponse {
    pub receipt_jws: String,
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

/// `PUT /v1/merchant/webhook` `{url}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    pub url: String,
}
