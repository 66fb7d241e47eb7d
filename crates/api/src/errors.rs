//! Every error code the API answers, with its HTTP status and what it means: one table.
//!
//! The server builds its errors only from [`ErrorCode`], so a code cannot be answered
//! without being here, and the OpenAPI document lists this table. A code keeps its
//! status; `currency_mismatch` is the one code with two entries (a request in a currency
//! the merchant does not take is 400, a wallet that cannot pay in it is a 402 decline).

use std::borrow::Cow;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{RefOr, Response, ResponseBuilder};

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = ($code:literal, $status:literal, $meaning:literal),)+) => {
        /// An error code of the API, with its status (`status`) and meaning (`meaning`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every entry of the table, in order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code on the wire (`error.code`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)+
                }
            }

            /// The HTTP status the code is answered with.
            pub const fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)+
                }
            }

            /// What the code tells the caller.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $meaning,)+
                }
            }
        }
    };
}

error_codes! {
    InvalidRequest = ("invalid_request", 400, "the request is malformed: its body, query, path or a field (named in `param`) is wrong"),
    AmountMismatch = ("amount_mismatch", 400, "the amount given differs from the total (or value) of the items"),
    RefundExceedsPayment = ("refund_exceeds_payment", 400, "the refund is more than what is left of the payment"),
    /// A request in a currency the merchant does not take.
    CurrencyMismatch = ("currency_mismatch", 400, "the request's currency is not the merchant's"),
    WebhookUrlNotAllowed = ("webhook_url_not_allowed", 400, "the webhook URL is not https, or points at a loopback or private address"),
    InvalidQr = ("invalid_qr", 400, "the payload is not a well-formed QR payload (bad TLV, bad CRC)"),
    UnsupportedQr = ("unsupported_qr", 400, "the code belongs to another payment scheme"),
    QrSignatureInvalid = ("qr_signature_invalid", 400, "the code claims to be Saoma's but its signature is not valid"),
    Unauthenticated = ("unauthenticated", 401, "no credentials, or unknown, expired or revoked ones"),
    InvalidSignature = ("invalid_signature", 401, "the HTTP message signature or content digest does not verify"),
    StaleRequest = ("stale_request", 401, "the signature's `created` is more than 300 s from the server's clock"),
    ReplayedRequest = ("replayed_request", 401, "the signature's nonce was already used"),
    InsufficientFunds = ("insufficient_funds", 402, "declined: the wallet's balance is too low"),
    InvalidPaymentCode = ("invalid_payment_code", 402, "declined: the payment code is not valid"),
    PaymentCodeExpired = ("payment_code_expired", 402, "declined: the payment code has expired; ask the customer to refresh it"),
    PaymentCodeUsed = ("payment_code_used", 402, "declined: the payment code was already used"),
    WalletFrozen = ("wallet_frozen", 402, "declined: the wallet is frozen"),
    LimitExceeded = ("limit_exceeded", 402, "declined: the amount is over the customer's limit"),
    /// A wallet that cannot pay in the payment's currency.
    DeclinedCurrencyMismatch = ("currency_mismatch", 402, "declined: the wallet cannot pay in this currency"),
    RiskDeclined = ("risk_declined", 402, "declined: the payment was declined"),
    Forbidden = ("forbidden", 403, "the caller is known but may not do this"),
    MerchantInactive = ("merchant_inactive", 403, "the merchant is not active (pending review, suspended)"),
    CsrfRejected = ("csrf_rejected", 403, "a cross-site request, or a browser session's write without its CSRF token"),
    PinRequired = ("pin_required", 403, "this needs the customer's PIN"),
    InvalidPin = ("invalid_pin", 403, "wrong PIN"),
    PinLocked = ("pin_locked", 403, "too many wrong PINs: PIN use is locked for a while"),
    ReversalWindowClosed = ("reversal_window_closed", 403, "a till may reverse a paid sale only shortly after the charge; refund it with a manager or merchant key"),
    NotFound = ("not_found", 404, "no such object (or route), or it is another merchant's"),
    MethodNotAllowed = ("method_not_allowed", 405, "the route does not take this method"),
    IdempotencyConflict = ("idempotency_conflict", 409, "the idempotency key was already used with other parameters"),
    ConcurrentRequest = ("concurrent_request", 409, "a concurrent request with the same key is in flight; retry"),
    PaymentNotPending = ("payment_not_pending", 409, "the payment is no longer pending"),
    TooManyDevices = ("too_many_devices", 409, "the customer has as many devices making codes as allowed; remove one first"),
    PaymentClosed = ("payment_closed", 409, "this out_trade_no was cancelled before it was charged; use a new one"),
    PaymentExpired = ("payment_expired", 409, "the payment has expired"),
    PaymentNotRefundable = ("payment_not_refundable", 409, "the payment cannot be refunded (not paid, or fully refunded)"),
    ReceiptUnavailable = ("receipt_unavailable", 409, "receipts are for paid payments"),
    OutOfStock = ("out_of_stock", 409, "a product of the order is out of stock (`sku` names it)"),
    StockUntracked = ("stock_untracked", 409, "the product's stock is not tracked"),
    SkuTaken = ("sku_taken", 409, "another product has this sku"),
    BarcodeTaken = ("barcode_taken", 409, "another product has this barcode"),
    PhoneTaken = ("phone_taken", 409, "a customer with this phone exists"),
    KeyRevoked = ("key_revoked", 409, "a revoked key cannot be rotated"),
    KeyExpired = ("key_expired", 409, "an expired key cannot be rotated"),
    InvalidTransition = ("invalid_transition", 409, "the merchant's review status does not allow this step"),
    ApplicationNotSubmitted = ("application_not_submitted", 409, "the merchant's application is not submitted"),
    BusinessDayOpen = ("business_day_open", 409, "the business day is not over yet"),
    SettlementOutOfOrder = ("settlement_out_of_order", 409, "the merchant is already settled past this day"),
    BodyTooLarge = ("body_too_large", 413, "the request body is over 64 KiB"),
    RateLimited = ("rate_limited", 429, "too many requests; retry after `Retry-After` seconds"),
    InternalError = ("internal_error", 500, "a fault of the server; quote the request id"),
    Unavailable = ("unavailable", 503, "the server or its database is busy or down; retry"),
}

impl ErrorCode {
    /// The decline of a payment with this failure code (402), if it names one.
    pub fn decline(failure_code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.status() == 402 && c.as_str() == failure_code)
    }

    /// The codes answered with `status`, each once.
    pub fn with_status(status: u16) -> impl Iterator<Item = ErrorCode> {
        ErrorCode::ALL.iter().copied().filter(move |c| c.status() == status)
    }

    /// Every status some code is answered with, ascending, each once.
    pub fn statuses() -> Vec<u16> {
        let mut all: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.status()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The error answer of `status` for the OpenAPI document: the envelope, and the codes
    /// it may carry with what each means.
    pub fn response(status: u16) -> Response {
        let lines: Vec<String> =
            ErrorCode::with_status(status).map(|c| format!("- `{}`: {}", c.as_str(), c.meaning())).collect();
        ResponseBuilder::new()
            .description(format!("The error envelope, with one of these codes:\n\n{}", lines.join("\n")))
            .content(
                "application/json",
                utoipa::openapi::content::ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorEnvelope"))))
                    .build(),
            )
            .build()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let table: Vec<String> = ErrorCode::ALL
            .iter()
            .map(|c| format!("| `{}` | {} | {} |", c.as_str(), c.status(), c.meaning()))
            .collect();
        let description = format!(
            "Every code the server answers.\n\n| code | status | meaning |\n| --- | --- | --- |\n{}",
            table.join("\n")
        );
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .enum_values(Some(unique(codes)))
            .description(Some(description))
            .into()
    }
}

fn unique(codes: Vec<&'static str>) -> Vec<&'static str> {
    let mut seen = Vec::new();
    for c in codes {
        if !seen.contains(&c) {
            seen.push(c);
        }
    }
    seen
}

impl utoipa::ToSchema for ErrorCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn a_code_has_one_status_but_currency_mismatch() {
        for a in ErrorCode::ALL {
            for b in ErrorCode::ALL {
                if a != b && a.as_str() == b.as_str() {
                    assert_eq!(a.as_str(), "currency_mismatch", "{a:?} and {b:?} share a code");
                }
            }
        }
    }

    #[test]
    fn codes_are_snake_case_and_meanings_lowercase_sentences() {
        for c in ErrorCode::ALL {
            assert!(c.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{c:?}");
            assert!((400..600).contains(&c.status()), "{c:?}");
            assert!(!c.meaning().ends_with('.'), "{c:?}: no trailing period");
        }
    }

    #[test]
    fn declines_are_the_402_codes() {
        assert_eq!(ErrorCode::decline("insufficient_funds"), Some(ErrorCode::InsufficientFunds));
        assert_eq!(ErrorCode::decline("currency_mismatch"), Some(ErrorCode::DeclinedCurrencyMismatch));
        assert_eq!(ErrorCode::decline("not_found"), None);
        assert_eq!(ErrorCode::decline("no_such_code"), None);
    }
}
