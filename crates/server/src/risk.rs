//! The risk engine's glue: loads the operator's rules, counts what the velocity and
//! daily rules look at, asks `saoma_core::risk` to decide, and keeps every decline.
//!
//! Velocity counts are read outside the money transaction: they may be off by the
//! payments in flight, which a velocity rule tolerates. The daily limit is checked inside
//! it, after the wallet's row is locked by the posting, so two payments of one customer
//! cannot both slip under it.

use crate::AppState;
use crate::util::{new_id, rfc3339};
use chrono::{DateTime, Duration, Utc};
use saoma_core::money::Money;
use saoma_core::risk::{Decline, Rules};
use saoma_store::{CustomerRow, RiskDecisionRow, StoreError, WriteTx};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The settings row holding the rules as JSON.
pub const RULES_SETTING: &str = "risk_rules";
/// How long a node uses the rules it read before it reads them again: a change made on
/// one node reaches the others within this.
const RULES_TTL: std::time::Duration = std::time::Duration::from_secs(2);
/// How far back the daily limit looks.
const DAILY_WINDOW_HOURS: i64 = 24;
/// The longest a payment can stay pending before it is paid (`expires_in` ≤ 86400 s).
const PENDING_HOURS_MAX: i64 = 24;

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

/// A terminal about to take a payment code: the bad-code block and its velocity.
pub async fn check_terminal(
    state: &AppState,
    rules: &Rules,
    terminal_id: &str,
    t: DateTime<Utc>,
) -> Result<Result<(), Decline>, StoreError> {
    if !state.config.risk_velocity {
        return Ok(rules.check_terminal(None, None));
    }
    let (recent, bad) = state
        .store
        .terminal_activity(terminal_id, &ago(t, 60), &ago(t, rules.velocity.bad_code_window_seconds))
        .await?;
    Ok(rules.check_terminal(Some(bad), Some(recent)))
}

/// A customer about to pay `amount`: frozen, the tier's per-payment limit, velocity
/// (`count_velocity`: false for transfers, which the PIN guards).
pub async fn check_wallet(
    state: &AppState,
    rules: &Rules,
    customer: &CustomerRow,
    amount: Money,
    count_velocity: bool,
) -> Result<Result<(), Decline>, StoreError> {
    let recent = if state.config.risk_velocity && count_velocity {
        Some(state.store.wallet_attempts(&customer.id, &ago(Utc::now(), 60)).await?)
    } else {
        None
    };
    Ok(rules.check_wallet(
        customer.frozen != 0,
        &customer.tier,
        amount.amount_minor(),
        amount.currency(),
        recent,
    ))
}

/// Inside the money transaction, after the customer's wallet is debited: the daily limit,
/// counting `amount` of `except_id` (the payment or transfer being made) once.
pub async fn check_daily(
    tx: &mut WriteTx,
    rules: &Rules,
    customer: &CustomerRow,
    amount: Money,
    except_id: &str,
) -> Result<Result<(), Decline>, StoreError> {
    let t = Utc::now();
    let since = ago(t, DAILY_WINDOW_HOURS * 3600);
    let created_since = ago(t, (DAILY_WINDOW_HOURS + PENDING_HOURS_MAX) * 3600);
    let before = tx
        .paid_out_since(&customer.id, amount.currency().code(), (&since, &created_since), except_id)
        .await?;
    let spent = before.saturating_add(amount.amount_minor());
    Ok(rules.check_daily(&customer.tier, spent, amount.currency()))
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

/// Keeps a decline in a transaction of its own (when nothing else is written with it).
pub async fn record(
    state: &AppState,
    d: &Decline,
    subject_id: &str,
    payment_id: Option<&str>,
    rules: &Rules,
) -> Result<(), StoreError> {
    let now = crate::util::now().1;
    let mut tx = state.store.begin().await?;
    tx.insert_risk_decision(&decision(d, subject_id, payment_id, rules, &now)).await?;
    tx.commit().await
}
