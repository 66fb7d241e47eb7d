//! The customer's PIN: Argon2id hashes and the lockout. Five wrong PINs in a row lock PIN
//! use for 15 minutes, doubling with each further lock.
//!
//! The lockout holds however many checks arrive at once: before its slow Argon2 work a
//! check reserves a place in the database (`pin_checks`) under the customer's row lock,
//! and no more checks are let in than wrong PINs remain before the lock, so at most five
//! wrong PINs are ever weighed per lock cycle. After the work, the outcome is settled
//! under the same lock, and a right PIN whose check ends after the lock fell gets
//! `pin_locked` too. Argon2 work is bounded on each node by a semaphore, and per customer
//! by the reservations. Never log a PIN.

use crate::AppState;
use crate::audit::Audit;
use crate::error::{ApiError, ApiResult};
use crate::util::{new_id, now, rfc3339};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use saoma_api::ErrorCode;
use saoma_store::AuditRecord;
use serde_json::json;
use std::sync::OnceLock;
use std::time::Duration;

/// Wrong PINs in a row that lock PIN use.
pub const PIN_FAILURES_MAX: i64 = 5;
const PIN_LOCK_MINUTES: i64 = 15;
/// How long a reservation lives if its check never settles (the node died mid-check).
const CHECK_TTL_SECONDS: i64 = 30;
/// How long a check waits for a free Argon2 worker before the node answers busy.
const WORKER_WAIT: Duration = Duration::from_secs(5);

/// Hashes a PIN with Argon2id.
pub fn hash_pin(pin: &str) -> ApiResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(pin.as_bytes(), &salt).map(|h| h.to_string()).map_err(ApiError::internal)
}

fn pin_matches(hash: &str, pin: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(pin.as_bytes(), &h).is_ok())
}

/// The answer while PIN use is locked.
pub fn pin_locked() -> ApiError {
    ApiError::new(ErrorCode::PinLocked, "too many wrong PINs; PIN use is locked for a while")
}

/// Checks a customer's PIN, counting failures (see the module's documentation). The check
/// runs as a task of its own, so a client that hangs up mid-check neither leaves its
/// reservation behind nor escapes having its guess counted.
pub async fn verify_pin(state: &AppState, customer_id: &str, pin: &str) -> ApiResult<()> {
    let (state, customer_id, pin) = (state.clone(), customer_id.to_string(), pin.to_string());
    tokio::spawn(async move {
        let (hash, check_id) = reserve(&state, &customer_id).await?;
        let weighed = weigh(&state, hash, &pin).await;
        settle(&state, &customer_id, &check_id, weighed).await
    })
    .await
    .map_err(ApiError::internal)?
}

/// Spends the time of a PIN check on a made-up hash: a wrong phone takes as long as a
/// wrong PIN.
pub async fn weigh_nothing(state: &AppState, pin: &str) -> ApiResult<()> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = match DUMMY.get() {
        Some(h) => h.clone(),
        None => {
            let h =
                tokio::task::spawn_blocking(|| hash_pin("000000")).await.map_err(ApiError::internal)??;
            DUMMY.get_or_init(|| h).clone()
        }
    };
    weigh(state, hash, pin).await.map(|_| ())
}

/// Takes a place for one check, or refuses when PIN use is locked or as many checks are in
/// flight as wrong PINs remain before the lock.
async fn reserve(state: &AppState, customer_id: &str) -> ApiResult<(String, String)> {
    let (t, now) = now();
    let mut tx = state.store.begin().await?;
    let c = tx.customer(customer_id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    if c.pin_locked_until.as_deref().is_some_and(|u| u > now.as_str()) {
        return Err(pin_locked());
    }
    let in_flight = tx.live_pin_checks(customer_id, &now).await?;
    if c.pin_failures + in_flight >= PIN_FAILURES_MAX {
        // Not locked (yet), but as many checks are running as wrong PINs remain: come back
        // when they are done.
        let mut e =
            ApiError::new(ErrorCode::RateLimited, "too many PIN checks at once for this customer; retry");
        e.retry_after = Some(1);
        return Err(e);
    }
    let id = new_id("pck_");
    tx.insert_pin_check(&id, customer_id, &rfc3339(t + chrono::Duration::seconds(CHECK_TTL_SECONDS))).await?;
    tx.commit().await?;
    Ok((c.pin_hash, id))
}

/// Runs Argon2 off the async workers, at most as many at once on this node as configured.
async fn weigh(state: &AppState, hash: String, pin: &str) -> ApiResult<bool> {
    let busy = || {
        let mut e = ApiError::new(ErrorCode::Unavailable, "the server is busy; retry");
        e.retry_after = Some(1);
        e
    };
    let permit = tokio::time::timeout(WORKER_WAIT, state.pin_workers.clone().acquire_owned())
        .await
        .map_err(|_| busy())?
        .map_err(ApiError::internal)?;
    let pin = pin.to_string();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        pin_matches(&hash, &pin)
    })
    .await
    .map_err(ApiError::internal)
}

/// Ends a check's reservation and counts its outcome under the customer's row lock.
async fn settle(
    state: &AppState,
    customer_id: &str,
    check_id: &str,
    weighed: ApiResult<bool>,
) -> ApiResult<()> {
    let (t, now) = now();
    let mut tx = state.store.begin().await?;
    let fresh = tx.customer(customer_id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    tx.delete_pin_check(check_id).await?;
    let ok = match weighed {
        Ok(ok) => ok,
        Err(e) => {
            tx.commit().await?;
            return Err(e);
        }
    };
    if fresh.pin_locked_until.as_deref().is_some_and(|u| u > now.as_str()) {
        // Another check locked PIN use while this one was being weighed.
        tx.commit().await?;
        return Err(pin_locked());
    }
    if ok {
        if fresh.pin_failures != 0 {
            tx.set_pin_state(customer_id, 0, fresh.pin_locks, None).await?;
        }
        tx.commit().await?;
        return Ok(());
    }
    let failures = fresh.pin_failures + 1;
    if failures < PIN_FAILURES_MAX {
        tx.set_pin_state(customer_id, failures, fresh.pin_locks, None).await?;
        tx.commit().await?;
        return Err(ApiError::new(ErrorCode::InvalidPin, "wrong PIN"));
    }
    let minutes = PIN_LOCK_MINUTES << fresh.pin_locks.clamp(0, 6);
    let until = rfc3339(t + chrono::Duration::minutes(minutes));
    tx.set_pin_state(customer_id, 0, fresh.pin_locks + 1, Some(&until)).await?;
    let audit = AuditRecord {
        actor: customer_id,
        action: "pin.locked",
        object_id: customer_id,
        detail: json!({"minutes": minutes}),
    };
    tx.audit(&audit, &now).await?;
    tx.commit().await?;
    Err(pin_locked())
}
