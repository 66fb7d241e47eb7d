//! Rows as the database holds them. Amounts are `i64` minor units; times are RFC 3339 UTC
//! text with milliseconds, so text order is time order on both engines.

use sqlx::FromRow;

/// A merchant row.
#[derive(Debug, Clone, FromRow)]
pub struct MerchantRow {
    pub id: String,
    pub name: String,
    pub mcc: String,
    pub city: String,
    pub country: String,
    pub currency: String,
    pub fee_bps: i64,
    pub timezone: String,
    pub status: String,
    pub created_at: String,
}

/// A terminal row.
#[derive(Debug, Clone, FromRow)]
pub struct TerminalRow {
    pub id: String,
    pub merchant_id: String,
    pub name: String,
    pub created_at: String,
}

/// An API key row; `secret` is what verifies its signatures.
#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub merchant_id: String,
    pub terminal_id: Option<String>,
    pub role: String,
    pub secret: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// Set on the old key of a rotation: it stops working then.
    pub expires_at: Option<String>,
}

impl ApiKeyRow {
    /// True while the key may be used at `now` (RFC 3339): not revoked, and not past the
    /// end a rotation gave it.
    pub fn is_live(&self, now: &str) -> bool {
        self.revoked_at.is_none() && self.expires_at.as_deref().is_none_or(|e| e > now)
    }
}

/// An operator of the platform with a role; the token is kept only as its hash.
#[derive(Debug, Clone, FromRow)]
pub struct OperatorRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub token_hash: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A customer row.
#[derive(Debug, Clone, FromRow)]
pub struct CustomerRow {
    pub id: String,
    pub phone: String,
    pub name: String,
    pub pin_hash: String,
    pub pin_failures: i64,
    pub pin_locks: i64,
    pub pin_locked_until: Option<String>,
    pub frozen: i64,
    pub created_at: String,
    /// The risk tier whose limits apply.
    pub tier: String,
}

/// An enrolled device that makes offline payment codes.
#[derive(Debug, Clone, FromRow)]
pub struct DeviceRow {
    pub id: String,
    pub customer_id: String,
    pub slot: i64,
    pub secret: String,
    pub created_at: String,
    /// Set when the customer removed the device or was signed out everywhere; its
    /// offline codes are refused from then on.
    pub revoked_at: Option<String>,
}

/// A payment row. Outside this crate a payment is [`saoma_core::payment::Payment`];
/// [`PaymentRow::into_payment`] and [`PaymentRow::of`] are the one conversion.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub(crate) struct PaymentRow {
    pub id: String,
    pub merchant_id: String,
    pub terminal_id: Option<String>,
    pub out_trade_no: String,
    pub amount: i64,
    pub currency: String,
    pub subject: String,
    /// The order's lines as JSON.
    pub items: String,
    pub mode: String,
    pub status: String,
    pub failure_code: Option<String>,
    pub refunded_amount: i64,
    pub fee: i64,
    pub fee_returned: i64,
    pub customer_id: Option<String>,
    pub customer_ref: Option<String>,
    /// A digest of the creating request, to tell a retry from a conflicting reuse.
    pub fingerprint: Option<String>,
    pub qr_ref: Option<String>,
    pub needs_confirm: i64,
    pub created_at: String,
    pub paid_at: Option<String>,
    pub expires_at: Option<String>,
}

/// A refund row.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct RefundRow {
    pub id: String,
    pub payment_id: String,
    pub merchant_id: String,
    pub out_refund_no: String,
    pub amount: i64,
    pub currency: String,
    pub fee_returned: i64,
    pub status: String,
    pub reason: Option<String>,
    pub created_at: String,
}

/// A top-up row.
#[derive(Debug, Clone, FromRow)]
pub struct TopUpRow {
    pub id: String,
    pub customer_id: String,
    pub reference: String,
    pub amount: i64,
    pub currency: String,
    pub created_at: String,
}

/// A transfer row.
#[derive(Debug, Clone, FromRow)]
pub struct TransferRow {
    pub id: String,
    pub from_customer_id: String,
    pub to_customer_id: String,
    pub amount: i64,
    pub currency: String,
    pub client_ref: String,
    pub created_at: String,
}

/// An outbox event.
#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub tx_id: i64,
    pub id: String,
    pub merchant_id: Option<String>,
    pub customer_id: Option<String>,
    pub kind: String,
    pub data: String,
    pub created_at: String,
    pub terminal_id: Option<String>,
}

/// One currency's totals of the trial balance.
#[derive(Debug, Clone, FromRow)]
pub struct TrialBalanceRow {
    pub currency: String,
    pub debits: i64,
    pub credits: i64,
}

/// A wallet balance.
#[derive(Debug, Clone, FromRow)]
pub struct BalanceRow {
    pub currency: String,
    pub balance: i64,
}

/// One line of a customer's history, as the store assembles it.
#[derive(Debug, Clone, FromRow)]
pub struct HistoryRow {
    pub kind: String,
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub description: String,
    pub created_at: String,
    pub receipt_jws: Option<String>,
}

/// A receipt signing key: an Ed25519 seed (hex) and its public key (hex).
#[derive(Debug, Clone, FromRow)]
pub struct ReceiptKeyRow {
    pub kid: String,
    pub seed: String,
    pub public_key: String,
    pub generation: i64,
    pub created_at: String,
}

/// An issued receipt.
#[derive(Debug, Clone, FromRow)]
pub struct ReceiptRow {
    pub id: String,
    pub payment_id: String,
    pub refund_id: Option<String>,
    pub merchant_id: String,
    pub customer_id: Option<String>,
    pub kid: String,
    pub jws: String,
    pub created_at: String,
}

/// A new audit record: who did what to which object.
#[derive(Debug, Clone)]
pub struct AuditRecord<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub object_id: &'a str,
    pub detail: serde_json::Value,
}

/// A new outbox event.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub id: &'a str,
    pub merchant_id: Option<&'a str>,
    /// The till whose payment this is about: its terminal key's feed carries it.
    pub terminal_id: Option<&'a str>,
    pub customer_id: Option<&'a str>,
    pub kind: &'a str,
    pub data: serde_json::Value,
}

/// A position in the outbox: events are read in (writer transaction, sequence) order, so
/// an event whose transaction commits late still sorts after every position handed out
/// before it became visible. On SQLite `tx_id` is always 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct EventCursor {
    pub tx_id: i64,
    pub seq: i64,
}

impl EventCursor {
    /// The cursor just after an event.
    pub fn of(e: &EventRow) -> EventCursor {
        EventCursor { tx_id: e.tx_id, seq: e.seq }
    }

    /// Parses `TX.SEQ` (what [`EventCursor::to_string`] writes) or a bare `SEQ`.
    pub fn parse(s: &str) -> Option<EventCursor> {
        match s.split_once('.') {
            Some((tx, seq)) => Some(EventCursor { tx_id: tx.parse().ok()?, seq: seq.parse().ok()? }),
            None => Some(EventCursor { tx_id: 0, seq: s.parse().ok()? }),
        }
    }
}

impl std::fmt::Display for EventCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.tx_id, self.seq)
    }
}

/// A merchant's webhook endpoint.
#[derive(Debug, Clone, FromRow)]
pub struct WebhookEndpointRow {
    pub merchant_id: String,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One event to deliver to one endpoint; `id` is the event id, sent as `webhook-id`.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub merchant_id: String,
    pub kind: String,
    pub body: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

/// One attempt to deliver.
#[derive(Debug, Clone, FromRow)]
pub struct AttemptRow {
    pub seq: i64,
    pub delivery_id: String,
    pub node: String,
    pub attempted_at: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// What an attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptOutcome<'a> {
    pub node: &'a str,
    pub attempted_at: &'a str,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// `delivered`, or `pending` with the next attempt's time, or `dead`.
    pub status: &'a str,
    pub next_attempt_at: &'a str,
}

/// A statement line as stored: a payment (`kind` payment) or a refund.
#[derive(Debug, Clone, FromRow)]
pub struct StatementRow {
    pub kind: String,
    pub id: String,
    pub reference: String,
    pub payment_id: String,
    pub at: String,
    pub currency: String,
    pub amount: i64,
    pub fee: i64,
}

/// A settled (or carried) business day of a merchant in one currency.
#[derive(Debug, Clone, FromRow)]
pub struct SettlementRow {
    pub id: String,
    pub merchant_id: String,
    pub business_date: String,
    pub currency: String,
    pub amount: i64,
    pub carried: i64,
    pub entry_id: Option<String>,
    pub created_at: String,
}

/// A sum per currency.
#[derive(Debug, Clone, FromRow)]
pub struct CurrencySum {
    pub currency: String,
    pub total: i64,
}

/// An audit record with its chain link.
#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub actor: String,
    pub action: String,
    pub object_id: String,
    pub detail: String,
    pub created_at: String,
    pub chain: Option<i64>,
    pub chain_seq: Option<i64>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

/// A signed checkpoint of the audit chains' heads.
#[derive(Debug, Clone, FromRow)]
pub struct AuditCheckpointRow {
    pub seq: i64,
    pub created_at: String,
    /// The receipt key that signed it.
    pub kid: String,
    /// The compact JWS (`saoma_api::checkpoint`).
    pub jws: String,
}

/// A risk decline, kept so it can be explained afterwards.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct RiskDecisionRow {
    pub id: String,
    /// The customer or terminal the rule looked at.
    pub subject_id: String,
    pub payment_id: Option<String>,
    /// The API failure code answered.
    pub code: String,
    pub rule: String,
    pub observed: i64,
    pub threshold: i64,
    pub rules_version: i64,
    pub created_at: String,
}

/// A merchant's review application.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct MerchantApplicationRow {
    pub merchant_id: String,
    pub legal_name: String,
    pub licence_number: String,
    pub owner_name: String,
    /// Sealed under the master key.
    pub owner_id_number: String,
    /// What may be shown of the identity number (masked).
    pub id_number_tail: String,
    /// JSON `[{kind, sha256}]`.
    pub documents: String,
    /// `submitted`, `more_info`, `approved` or `rejected`.
    pub status: String,
    /// The operator's reason for a rejection or a request for more.
    pub reason: Option<String>,
    pub submitted_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
}

impl PaymentRow {
    /// The domain payment this row holds; a row the rules cannot read is corrupt.
    pub(crate) fn into_payment(self) -> crate::StoreResult<saoma_core::payment::Payment> {
        use saoma_core::payment::{Order, Payment, PaymentMode, PaymentStatus};
        use saoma_core::{Currency, Money};
        let corrupt = |what: &str| crate::StoreError::Corrupt(format!("payment {}: {what}", self.id));
        let currency = Currency::from_code(&self.currency).ok_or_else(|| corrupt("currency"))?;
        let status = PaymentStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?;
        let mode = PaymentMode::parse(&self.mode).ok_or_else(|| corrupt("mode"))?;
        let needs_confirm = match self.needs_confirm {
            0 => false,
            1 => true,
            _ => return Err(corrupt("needs_confirm")),
        };
        let money = |minor: i64| Money::new(minor, currency);
        let mut p = Payment::pending(Order {
            id: self.id,
            merchant_id: self.merchant_id,
            terminal_id: self.terminal_id,
            out_trade_no: self.out_trade_no,
            amount: money(self.amount),
            subject: self.subject,
            items: self.items,
            mode,
            fingerprint: self.fingerprint,
            created_at: self.created_at,
        })
        .restored(status, self.failure_code);
        p.refunded = money(self.refunded_amount);
        p.fee = money(self.fee);
        p.fee_returned = money(self.fee_returned);
        p.customer_id = self.customer_id;
        p.customer_ref = self.customer_ref;
        p.qr_ref = self.qr_ref;
        p.needs_confirm = needs_confirm;
        p.paid_at = self.paid_at;
        p.expires_at = self.expires_at;
        Ok(p)
    }

    /// The row that stores a domain payment.
    pub(crate) fn of(p: &saoma_core::payment::Payment) -> PaymentRow {
        PaymentRow {
            id: p.id.clone(),
            merchant_id: p.merchant_id.clone(),
            terminal_id: p.terminal_id.clone(),
            out_trade_no: p.out_trade_no.clone(),
            amount: p.amount.amount_minor(),
            currency: p.amount.currency().code().to_string(),
            subject: p.subject.clone(),
            items: p.items.clone(),
            mode: p.mode.as_str().to_string(),
            status: p.status().as_str().to_string(),
            failure_code: p.failure_code().map(str::to_string),
            refunded_amount: p.refunded.amount_minor(),
            fee: p.fee.amount_minor(),
            fee_returned: p.fee_returned.amount_minor(),
            customer_id: p.customer_id.clone(),
            customer_ref: p.customer_ref.clone(),
            fingerprint: p.fingerprint.clone(),
            qr_ref: p.qr_ref.clone(),
            needs_confirm: i64::from(p.needs_confirm),
            created_at: p.created_at.clone(),
            paid_at: p.paid_at.clone(),
            expires_at: p.expires_at.clone(),
        }
    }
}

/// Converts an optional row read from the database.
pub(crate) fn payment_of(
    row: Option<PaymentRow>,
) -> crate::StoreResult<Option<saoma_core::payment::Payment>> {
    row.map(PaymentRow::into_payment).transpose()
}
