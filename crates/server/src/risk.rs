//! The risk engine's glue: loads the operator's rules, counts what the velocity and
//! daily rules look at, asks `saoma_core::risk` to decide, and keeps every decline.
//!
//! The wallet's own checks (frozen, limits, velocity, balance) are decided by
//! `saoma_core::payment::decide_charge` inside the charge's transaction (`crate::charge`).

use crate::AppState;
use crate::util::{new_id, rfc3339};
use chrono::{DateTime, Duration, Utc};
use saoma_core::risk::{Decline, Rules};
use saoma_store::{RiskDecisionRow, StoreError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The settings row holding the rules as JSON.
pub const RULES_SETTING: &str = "risk_rules";
/// How long a node uses the rules it read before it reads them again: a change made on
/// one node reaches the others within this.
const RULES_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// The rules as last read, and when.
#[derive(Default)]
pub struct RulesCache(Mutex<Option<(Instant, Arc<Rules>)>>);

impl RulesCache {
    /// Replaces the cached rules (after this node stored new ones).
    pub fn remember(&self, rules: Rules) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((Instant::now(), Arc::new(rules)));
        }
    }
}

/// The rules in force.
pub async fn rules(state: &AppState) -> Result<Arc<Rules>, StoreError> {
    if let Ok(slot) = state.risk_rules.0.lock()
        && let Some((at, rules)) = slot.as_ref()
        && at.elapsed() < RULES_TTL
    {
        return Ok(rules.clone());
    }
    // Read-only (no default is written): this runs inside payments' transactions, and
    // SQLite has one writer.
    let rules = match state.store.setting(RULES_SETTING).await? {
        Some(text) => parse(&text)?,
        None => Rules::default(),
    };
    state.risk_rules.remember(rules.clone());
    Ok(Arc::new(rules))
}

/// Stored rules, parsed.
pub fn parse(text: &str) -> Result<Rules, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("risk rules: {e}")))
}

fn ago(t: DateTime<Utc>, seconds: i64) -> String {
    rfc3339(t - Duration::seconds(seconds))
}

/// A terminal about to take a payment code: its velocity (the bad-code block is
/// `crate::guesses`'s, inside the charge's transaction).
pub async fn check_terminal(
    state: &AppState,
    rules: &Rules,
    terminal_id: &str,
    t: DateTime<Utc>,
) -> Result<Result<(), Decline>, StoreError> {
    if !state.config.risk_velocity {
        return Ok(rules.check_terminal(None));
    }
    let recent = state.store.terminal_attempts(terminal_id, &ago(t, 60)).await?;
    Ok(rules.check_terminal(Some(recent)))
}

/// The row that keeps a decline for explanation.
pub fn decision(
    d: &Decline,
    subject_id: &str,
    payment_id: Option<&str>,
    rules: &Rules,
    now: &str,
) -> RiskDecisionRow {
    RiskDecisionRow {
        id: new_id("rsk_"),
        subject_id: subject_id.to_string(),
        payment_id: payment_id.map(str::to_string),
        code: d.code.to_string(),
        rule: d.rule.to_string(),
        observed: d.observed,
        threshold: d.threshold,
        rules_version: rules.version,
        created_at: now.to_string(),
    }
}
