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
use hmac::{Hmac, Mac};
use saoma_api::ErrorCode;
use saoma_store::{AuditRecord, StrangerPin, WriteTx};
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

/// Whose PIN a check weighs: a customer's, or the made-up one of a phone that belongs to
/// no customer (a stranger, by a keyed hash of the phone). A stranger's guesses are
/// counted and locked out exactly as a customer's, and never match, so neither the
/// answers nor the lockout tell which phones exist.
#[derive(Clone)]
enum Holder {
    Customer(String),
    Stranger(String),
}

impl Holder {
    /// The key its checks in flight are kept under.
    fn key(&self) -> &str {
        match self {
            Holder::Customer(id) | Holder::Stranger(id) => id,
        }
    }
}

/// A holder's lockout state, read under its row lock.
struct PinState {
    /// The Argon2 hash to weigh against; a stranger has none (see [`dummy_hash`]).
    hash: Option<String>,
    failures: i64,
    locks: i64,
    locked_until: Option<String>,
}

impl PinState {
    fn locked_at(&self, now: &str) -> bool {
        self.locked_until.as_deref().is_some_and(|u| u > now)
    }
}

/// Reads a holder's state, locking its row until `tx` ends.
async fn load(tx: &mut WriteTx, who: &Holder, now: &str) -> ApiResult<PinState> {
    Ok(match who {
        Holder::Customer(id) => {
            let c = tx.customer(id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
            PinState {
                hash: Some(c.pin_hash),
                failures: c.pin_failures,
                locks: c.pin_locks,
                locked_until: c.pin_locked_until,
            }
        }
        Holder::Stranger(key) => {
            let s = tx.stranger_pin(key, now).await?;
            PinState {
                hash: None,
                failures: s.pin_failures,
                locks: s.pin_locks,
                locked_until: s.pin_locked_until,
            }
        }
    })
}

/// Saves a holder's failures, locks and lock end.
async fn save(tx: &mut WriteTx, who: &Holder, st: &PinState, now: &str) -> ApiResult<()> {
    match who {
        Holder::Customer(id) => {
            tx.set_pin_state(id, st.failures, st.locks, st.locked_until.as_deref()).await?
        }
        Holder::Stranger(key) => {
            let s = StrangerPin {
                pin_failures: st.failures,
                pin_locks: st.locks,
                pin_locked_until: st.locked_until.clone(),
            };
            tx.set_stranger_pin(key, &s, now).await?
        }
    }
    Ok(())
}

/// Checks a customer's PIN, counting failures (see the module's documentation). The check
/// runs as a task of its own, so a client that hangs up mid-check neither leaves its
/// reservation behind nor escapes having its guess counted.
pub async fn verify_pin(state: &AppState, customer_id: &str, pin: &str) -> ApiResult<()> {
    check(state, Holder::Customer(customer_id.to_string()), pin).await
}

/// Weighs a PIN given for a phone that belongs to no customer, as long and with the same
/// answers and lockout as a customer's wrong PIN. It never succeeds.
pub async fn verify_stranger(state: &AppState, phone: &str, pin: &str) -> ApiResult<()> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&state.keys.customer_ref_key)
        .expect("HMAC takes a key of any length");
    mac.update(b"stranger-phone/");
    mac.update(phone.as_bytes());
    let key = format!("phn_{}", hex::encode(mac.finalize().into_bytes()));
    check(state, Holder::Stranger(key), pin).await
}

async fn check(state: &AppState, who: Holder, pin: &str) -> ApiResult<()> {
    let (state, pin) = (state.clone(), pin.to_string());
    // A task of its own (so a hang-up cannot stop the check half-way), with its own
    // `settled` scope: a refusal read from a group commit waits for that batch too.
    let checked = tokio::spawn(saoma_store::settled(async move {
        let (hash, check_id) = reserve(&state, &who).await?;
        // A stranger weighs a made-up hash, made outside any transaction.
        let hash = match hash {
            Some(h) => h,
            None => dummy_hash().await?,
        };
        let weighed = weigh(&state, hash, &pin).await;
        // A stranger's made-up hash is weighed for its time only.
        let weighed = weighed.map(|ok| ok && matches!(who, Holder::Customer(_)));
        settle(&state, &who, &check_id, weighed).await
    }))
    .await
    .map_err(ApiError::internal)?;
    let (outcome, confirmed) = checked;
    confirmed?;
    outcome
}

/// A made-up Argon2 hash, made once per process: a stranger's check weighs against it.
async fn dummy_hash() -> ApiResult<String> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h.clone());
    }
    let pin = crate::util::random_hex(16);
    let h = tokio::task::spawn_blocking(move || hash_pin(&pin)).await.map_err(ApiError::internal)??;
    Ok(DUMMY.get_or_init(|| h).clone())
}

/// Takes a place for one check, or refuses when PIN use is locked or as many checks are in
/// flight as wrong PINs remain before the lock.
async fn reserve(state: &AppState, who: &Holder) -> ApiResult<(Option<String>, String)> {
    let (t, now) = now();
    let mut tx = state.store.begin().await?;
    let st = load(&mut tx, who, &now).await?;
    if st.locked_at(&now) {
        return Err(pin_locked());
    }
    let in_flight = tx.live_pin_checks(who.key(), &now).await?;
    if st.failures + in_flight >= PIN_FAILURES_MAX {
        // Not locked (yet), but as many checks are running as wrong PINs remain: come back
        // when they are done.
        return Err(ApiError::rate_limited("too many PIN checks at once for this customer; retry", 1));
    }
    let id = new_id("pck_");
    tx.insert_pin_check(&id, who.key(), &rfc3339(t + chrono::Duration::seconds(CHECK_TTL_SECONDS))).await?;
    tx.commit().await?;
    Ok((st.hash, id))
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

/// Ends a check's reservation and counts its outcome under the holder's row lock.
async fn settle(state: &AppState, who: &Holder, check_id: &str, weighed: ApiResult<bool>) -> ApiResult<()> {
    let (t, now) = now();
    let mut tx = state.store.begin().await?;
    let mut st = load(&mut tx, who, &now).await?;
    tx.delete_pin_check(check_id).await?;
    let ok = match weighed {
        Ok(ok) => ok,
        Err(e) => {
            tx.commit().await?;
            return Err(e);
        }
    };
    if st.locked_at(&now) {
        // Another check locked PIN use while this one was being weighed.
        tx.commit().await?;
        return Err(pin_locked());
    }
    if ok {
        if st.failures != 0 {
            st.failures = 0;
            save(&mut tx, who, &st, &now).await?;
        }
        tx.commit().await?;
        return Ok(());
    }
    st.failures += 1;
    if st.failures < PIN_FAILURES_MAX {
        save(&mut tx, who, &st, &now).await?;
        tx.commit().await?;
        return Err(ApiError::new(ErrorCode::InvalidPin, "wrong PIN"));
    }
    let minutes = PIN_LOCK_MINUTES << st.locks.clamp(0, 6);
    st.failures = 0;
    st.locks += 1;
    st.locked_until = Some(rfc3339(t + chrono::Duration::minutes(minutes)));
    save(&mut tx, who, &st, &now).await?;
    let audit = AuditRecord {
        actor: who.key(),
        action: "pin.locked",
        object_id: who.key(),
        detail: json!({"minutes": minutes, "known_phone": matches!(who, Holder::Customer(_))}),
    };
    tx.audit(&audit, &now).await?;
    tx.commit().await?;
    Err(pin_locked())
}
