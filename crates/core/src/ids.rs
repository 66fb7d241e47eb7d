//! Identifier prefixes and checks. Ids are opaque strings with a type prefix on the wire
//! (`pay_01J…`); the random part is drawn by the caller, never here.

/// The prefixes the API uses.
pub mod prefix {
    pub const MERCHANT: &str = "mch_";
    pub const TERMINAL: &str = "term_";
    pub const CUSTOMER: &str = "cus_";
    pub const PAYMENT: &str = "pay_";
    pub const REFUND: &str = "ref_";
    pub const TRANSFER: &str = "trf_";
    pub const EVENT: &str = "evt_";
    pub const KEY: &str = "key_";
    pub const TOP_UP: &str = "top_";
    pub const DEVICE: &str = "dev_";
    pub const ENTRY: &str = "je_";
    pub const RECEIPT: &str = "rct_";
}

/// True when `id` has `prefix` and a plausible body (1-40 of `[0-9A-Za-z]`).
pub fn well_formed(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|body| (1..=40).contains(&body.len()) && body.bytes().all(|b| b.is_ascii_alphanumeric()))
}
