//! The operator's books: settling a business day, the settlement report, reconciliation,
//! and the audit log's checkpoints and verification.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/admin/settlements` `{date}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    /// The business day, `YYYY-MM-DD`.
    pub date: String,
}

/// What became of one merchant's settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SettlementOutcome {
    /// Paid out now.
    Paid,
    /// Nothing to pay out now: a negative balance carried forward.
    Carried,
    /// Settled before (by a run, the daily job or another node).
    AlreadySettled,
    /// As the settlement report lists it.
    Settled,
}

impl SettlementOutcome {
    /// The outcome as the wire spells it.
    pub fn name(self) -> &'static str {
        match self {
            SettlementOutcome::Paid => "paid",
            SettlementOutcome::Carried => "carried",
            SettlementOutcome::AlreadySettled => "already_settled",
            SettlementOutcome::Settled => "settled",
        }
    }
}

/// One merchant's settlement of a day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SettlementLine {
    pub settlement_id: String,
    pub merchant_id: String,
    pub merchant_name: String,
    pub currency: String,
    /// Paid out, in minor units (0 when carried).
    pub amount: i64,
    /// Carried forward (0 or negative).
    pub carried: i64,
    /// The ledger entry of the payout; null when nothing was paid out.
    pub entry_id: Option<String>,
    pub outcome: SettlementOutcome,
}

/// `POST /v1/admin/settlements`: the settlements of that day, one per merchant.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SettlementRun {
    pub date: String,
    pub settlements: Vec<SettlementLine>,
}

/// `GET /v1/admin/settlements/{date}`: a page of the day's settlements.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SettlementReport {
    pub date: String,
    pub settlements: Vec<SettlementLine>,
    pub next_cursor: Option<String>,
}

/// One difference reconciliation found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Difference {
    /// The merchant concerned; null for a platform-wide difference (an orphan entry, an
    /// account out of step, the trial balance).
    pub merchant_id: Option<String>,
    pub what: String,
    /// What should be there, and what is: ledger lines, a total, an id or null, depending
    /// on `what`, so both stay free-form.
    pub expected: Value,
    pub found: Value,
}

/// How much reconciliation looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReconciliationChecked {
    pub payments: i64,
    pub refunds: i64,
}

/// `GET /v1/admin/reconciliation/{date}`: every difference; none means all agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reconciliation {
    pub date: String,
    pub balanced: bool,
    pub differences: Vec<Difference>,
    pub checked: ReconciliationChecked,
}

/// `POST /v1/admin/audit/checkpoints`: the newest signed checkpoint, JWS included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckpointTaken {
    /// False when the log had not grown since the newest checkpoint (which is answered).
    pub written: bool,
    pub seq: i64,
    pub created_at: String,
    pub kid: String,
    /// The checkpoint, a compact JWS (`alg: EdDSA`).
    pub jws: String,
}

/// The newest checkpoint as the verification saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckpointSeen {
    pub seq: i64,
    pub created_at: String,
    /// How many chains it anchors; absent when it cannot be believed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chains: Option<i64>,
    /// The key that signed it; absent when it cannot be believed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `false` when it cannot be believed; absent when it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<bool>,
}

/// What is broken in the audit log. A broken link inside a chain names the chain, the
/// place and the record (`audit_seq`, `action`, `object_id`: null when the record itself is
/// gone); a removed chain names the chain; a missing or forged checkpoint names the
/// checkpoint or nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BrokenLink {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_seq: Option<i64>,
    /// The checkpoint's seq, when it is the checkpoint that cannot be believed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<i64>,
    pub reason: String,
    #[serde(default, deserialize_with = "crate::merchant::present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub audit_seq: Option<Option<i64>>,
    #[serde(default, deserialize_with = "crate::merchant::present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub action: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::merchant::present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub object_id: Option<Option<String>>,
}

impl BrokenLink {
    /// A break that only has a reason.
    pub fn because(reason: impl Into<String>) -> BrokenLink {
        BrokenLink {
            chain: None,
            chain_seq: None,
            checkpoint: None,
            reason: reason.into(),
            audit_seq: None,
            action: None,
            object_id: None,
        }
    }
}

/// `GET /v1/admin/audit/verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditVerification {
    /// False when anything in `broken` is.
    pub intact: bool,
    /// Records walked.
    pub records: i64,
    /// Chains walked.
    pub chains: i64,
    /// The newest checkpoint; null when there is none.
    pub checkpoint: Option<CheckpointSeen>,
    pub broken: Vec<BrokenLink>,
    /// Records written before the log was chained.
    pub unsealed_before_chaining: i64,
}
