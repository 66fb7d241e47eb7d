//! The block against guessing payment codes. Every bad code (invalid, expired, used) a
//! caller presents is counted against its till (or its key, when not a till's) and
//! against its merchant, so neither one key nor many keys of one merchant can keep
//! guessing. The counters are read inside the charge's transaction before the code is
//! spent: while blocked, a good code shown is refused and not spent.
//!
//! The code is first looked at without spending it. A bad code then takes the counters'
//! guards exclusively (till or key first, then merchant: one order, no deadlock), checks
//! the block and counts itself, all in its charge's transaction, so however many arrive
//! at once no more than the threshold are ever answered as bad codes. A good code takes
//! the guards shared (on PostgreSQL; SQLite has one writer), so it waits for a bad code
//! being counted and sees its count. The guards are advisory locks, not row locks: a
//! shared row lock writes the merchant's counter row in every charge, which serialised a
//! busy merchant's payments (`WriteTx::guess_counts`). What can still slip is a good code
//! whose shared read comes before the counting of bad codes already looked at but not yet
//! locked: the window between a bad code's look-up and its lock (for an online code,
//! looked up before its transaction, the transaction's first statements too).

use crate::AppState;
use crate::auth::MerchantCaller;
use crate::util::rfc3339;
use crate::work::Work;
use chrono::{DateTime, Duration, Utc};
use saoma_core::risk::{Decline, GuessScope, Rules};
use saoma_store::StoreError;

/// How many scopes the node remembers as existing before it forgets them all.
const KNOWN_SCOPES_MAX: usize = 100_000;

/// The counters a caller's scans count against.
pub fn scopes(caller: &MerchantCaller) -> [(String, GuessScope); 2] {
    let first = match &caller.terminal_id {
        Some(t) => (format!("terminal:{t}"), GuessScope::Terminal),
        None => (format!("key:{}", caller.key_id), GuessScope::Key),
    };
    [first, (format!("merchant:{}", caller.merchant_id), GuessScope::Merchant)]
}

/// Makes sure the caller's counters exist, outside any transaction (a row being inserted
/// by another transaction could not be locked). Remembered per node after the first time.
pub async fn ensure_counters(state: &AppState, caller: &MerchantCaller) -> Result<(), StoreError> {
    let now = crate::util::now().1;
    for (scope, _) in scopes(caller) {
        let known = state.guess_scopes.lock().is_ok_and(|s| s.contains(&scope));
        if known {
            continue;
        }
        state.store.ensure_guess_counter(&scope, &now).await?;
        if let Ok(mut s) = state.guess_scopes.lock() {
            if s.len() >= KNOWN_SCOPES_MAX {
                s.clear();
            }
            s.insert(scope);
        }
    }
    Ok(())
}

fn window_start_min(rules: &Rules, t: DateTime<Utc>) -> String {
    rfc3339(t - Duration::seconds(rules.velocity.bad_code_window_seconds))
}

/// The block, if the caller is blocked now. `exclusive`: take the counters' guards for a
/// count that follows (a bad code); otherwise share them (a good code).
pub async fn blocked(
    work: &mut Work,
    caller: &MerchantCaller,
    rules: &Rules,
    t: DateTime<Utc>,
    exclusive: bool,
) -> Result<Option<Decline>, StoreError> {
    let since = window_start_min(rules, t);
    let scopes = scopes(caller);
    let names: Vec<&str> = scopes.iter().map(|(s, _)| s.as_str()).collect();
    let counts = work.guess_counts(&names, &since, exclusive).await?;
    for ((_, kind), count) in scopes.iter().zip(counts) {
        if let Err(d) = rules.check_bad_codes(*kind, count.bad) {
            return Ok(Some(d));
        }
    }
    Ok(None)
}

/// Counts one bad code against the caller's counters, after `blocked(.., true)`.
pub async fn count_bad(
    work: &mut Work,
    caller: &MerchantCaller,
    rules: &Rules,
    t: DateTime<Utc>,
) -> Result<(), StoreError> {
    let since = window_start_min(rules, t);
    let now = rfc3339(t);
    // Always in the same order (till or key, then merchant), as `blocked` reads them.
    for (scope, _) in scopes(caller) {
        work.count_bad_code(&scope, &now, &since).await?;
    }
    Ok(())
}

/// Phones a customer may look up per hour to send money to (resolve or transfer). A
/// person pays a handful of people a day; a session checking which phones have wallets
/// needs thousands.
pub const RECIPIENT_LOOKUPS_PER_HOUR: i64 = 30;

/// Counts one lookup of a recipient's phone by `customer_id`, on every node alike, and
/// refuses it with 429 `rate_limited` (and when to retry) once the hour's budget is spent.
pub async fn count_recipient_lookup(
    state: &AppState,
    customer_id: &str,
) -> Result<(), crate::error::ApiError> {
    let (t, now) = crate::util::now();
    let hour = Duration::hours(1);
    let (lookups, started) =
        state.store.count_recipient_lookup(customer_id, &now, &rfc3339(t - hour)).await?;
    if lookups <= RECIPIENT_LOOKUPS_PER_HOUR {
        return Ok(());
    }
    let ends = DateTime::parse_from_rfc3339(&started).map_err(crate::error::ApiError::internal)? + hour;
    let wait = (ends.with_timezone(&Utc) - t).num_seconds().max(1);
    Err(crate::error::ApiError::rate_limited(
        "too many recipients looked up this hour; retry later",
        wait as u64,
    ))
}
