//! The screens' reads beyond the payment API: the operator's lists of customers and audit
//! records, and the merchant's sales report.

use crate::admin::Customer;
use crate::wallet::Balance;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /v1/admin/customers`: a customer with the wallet's balances.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerListed {
    pub customer: Customer,
    pub balances: Vec<Balance>,
}

/// One record of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub actor: String,
    pub action: String,
    pub object_id: String,
    /// What the action recorded (before and after, a reason, where the request came
    /// from); its fields differ by action, so it stays free-form.
    #[schema(value_type = Object)]
    pub detail: Value,
    pub created_at: String,
    /// The hash chain the record is in; null for a record written before chaining.
    pub chain: Option<i64>,
    pub chain_seq: Option<i64>,
}

/// `GET /v1/admin/audit`: a page of audit records, newest first. The cursor is the last
/// record's `seq`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditEntry>,
    pub next_cursor: Option<i64>,
}

/// The totals of one bucket of the sales report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SalesBucket {
    pub key: String,
    pub label: String,
    pub count: u64,
    pub amount: i64,
    pub fee: i64,
    pub refunded: i64,
    /// What the merchant keeps: amount − fee − refunded + fee returned.
    pub net: i64,
}

/// The report's totals and its four breakdowns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SalesBreakdown {
    pub totals: SalesBucket,
    /// All 24 hours, in order.
    pub by_hour: Vec<SalesBucket>,
    /// Each day of the period, in order.
    pub by_day: Vec<SalesBucket>,
    pub by_terminal: Vec<SalesBucket>,
    /// Products by amount sold, largest first (count is units; fee and refunds are not
    /// split by product).
    pub by_product: Vec<SalesBucket>,
}

impl From<saoma_core::report::Bucket> for SalesBucket {
    fn from(b: saoma_core::report::Bucket) -> SalesBucket {
        let saoma_core::report::Bucket { key, label, count, amount, fee, refunded, net } = b;
        SalesBucket { key, label, count, amount, fee, refunded, net }
    }
}

impl From<saoma_core::report::Report> for SalesBreakdown {
    fn from(r: saoma_core::report::Report) -> SalesBreakdown {
        let all = |v: Vec<saoma_core::report::Bucket>| v.into_iter().map(SalesBucket::from).collect();
        SalesBreakdown {
            totals: r.totals.into(),
            by_hour: all(r.by_hour),
            by_day: all(r.by_day),
            by_terminal: all(r.by_terminal),
            by_product: all(r.by_product),
        }
    }
}

/// `GET /v1/merchant/reports/sales`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SalesReport {
    pub currency: String,
    pub timezone: String,
    /// The business days of the period, `YYYY-MM-DD`, oldest first.
    pub days: Vec<String>,
    pub report: SalesBreakdown,
    /// True when the period held more payments than one report reads.
    pub truncated: bool,
}
