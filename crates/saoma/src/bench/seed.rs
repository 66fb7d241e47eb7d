//! What a bench run needs before the clock starts: merchants with a till key each (made
//! through the admin API, as an operator would), and customers with funded wallets,
//! payment codes and wallet sessions written straight into the store in bulk (one PIN
//! hash reused, top-ups as real balanced journal entries), since 100,000 customers made
//! one Argon2 hash at a time would take hours.

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use futures::{StreamExt, TryStreamExt};
use saoma_api as api;
use saoma_client::{Client, Credentials};
use saoma_core::money::{Currency, Money};
use saoma_store::{CustomerRow, Store, TopUpRow};
use sha2::{Digest, Sha256};
use std::time::Instant;

/// What each wallet is topped up with: ¥1,000,000.00, enough for any run.
const TOP_UP_MINOR: i64 = 100_000_000;
/// Customers per seeding transaction.
const CHUNK: usize = 5_000;
/// How long a pre-issued code or a session lives: longer than any run.
const CODE_TTL_HOURS: i64 = 6;

/// A merchant's till as the load generator signs for it.
#[derive(Clone)]
pub struct Till {
    pub merchant_id: String,
    /// The terminal's key: it takes payments.
    pub credentials: Credentials,
    /// The merchant's own key: it refunds and cancels.
    pub manager: Credentials,
    /// The merchant's static QR code (read only for the `mpm` scenario).
    pub qr_payload: Option<String>,
}

/// Makes `count` approved merchants with one terminal, a terminal key and a merchant key
/// each, 8 merchants at a time; reads each one's static QR code when `with_qr`.
pub async fn merchants(admin: &Client, count: usize, with_qr: bool) -> anyhow::Result<Vec<Till>> {
    futures::stream::iter(0..count)
        .map(|i| async move {
            let req = api::CreateMerchantRequest {
                name: format!("Bench Shop {i}"),
                mcc: "5812".into(),
                city: "Hangzhou".into(),
                country: "CN".into(),
                currency: "CNY".into(),
                fee_bps: 60,
                timezone: None,
            };
            let m = busy_retry(|| admin.create_merchant(&req)).await?;
            busy_retry(|| admin.approve_merchant(&m.id)).await?;
            let t = busy_retry(|| admin.create_terminal(&m.id, "Till")).await?;
            let k = busy_retry(|| admin.create_key(&m.id, Some(&t.id))).await?;
            let credentials = Credentials::Key { key_id: k.key_id, secret: k.secret };
            let k = busy_retry(|| admin.create_key(&m.id, None)).await?;
            let manager = Credentials::Key { key_id: k.key_id, secret: k.secret };
            let qr_payload = match with_qr {
                true => {
                    let till = admin.with_credentials(credentials.clone());
                    Some(busy_retry(|| till.merchant_qr()).await?.qr_payload)
                }
                false => None,
            };
            Ok::<Till, anyhow::Error>(Till { merchant_id: m.id.clone(), credentials, manager, qr_payload })
        })
        .buffered(8)
        .try_collect()
        .await
        .context("making the merchants")
}

/// `count` tills of one merchant: `first` and `count - 1` more terminals with a key each,
/// as a busy shop has many checkouts.
pub async fn more_tills(admin: &Client, first: &Till, count: usize) -> anyhow::Result<Vec<Till>> {
    let mut tills = vec![first.clone()];
    for i in 1..count {
        let name = format!("Till {i}");
        let t = busy_retry(|| admin.create_terminal(&first.merchant_id, &name)).await?;
        let k = busy_retry(|| admin.create_key(&first.merchant_id, Some(&t.id))).await?;
        tills.push(Till {
            credentials: Credentials::Key { key_id: k.key_id, secret: k.secret },
            ..first.clone()
        });
    }
    Ok(tills)
}

/// Sends again, up to five times, what the server refused with 503 (no database
/// connection came free in time: nothing of the request was done).
async fn busy_retry<T, F, Fut>(mut send: F) -> Result<T, saoma_client::ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, saoma_client::ClientError>>,
{
    let mut tries = 0;
    loop {
        match send().await {
            Err(e) if e.status() == Some(503) && tries < 5 => {
                tries += 1;
                eprintln!("saoma bench: the server is busy while seeding; trying again ({tries}/5)");
                tokio::time::sleep(std::time::Duration::from_millis(500 * tries)).await;
            }
            other => return other,
        }
    }
}

/// Makes `count` customers (phones `188` + 8 digits) with the PIN `pin`, each with a
/// wallet topped up by one balanced journal entry. Returns their ids, in order.
pub async fn wallets(store: &Store, count: usize, pin: &str) -> anyhow::Result<Vec<String>> {
    let salt = SaltString::generate(&mut OsRng);
    let pin_hash = Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the PIN: {e}"))?
        .to_string();
    let now = now_text(chrono::Utc::now());
    let amount = Money::new(TOP_UP_MINOR, Currency::CNY);
    let run = ulid::Ulid::new();
    let mut ids = Vec::with_capacity(count);
    for start in (0..count).step_by(CHUNK) {
        let end = (start + CHUNK).min(count);
        let customers: Vec<CustomerRow> = (start..end)
            .map(|i| CustomerRow {
                id: format!("cus_{}", ulid::Ulid::new()),
                phone: format!("188{i:08}"),
                name: format!("Bench {i}"),
                pin_hash: pin_hash.clone(),
                pin_failures: 0,
                pin_locks: 0,
                pin_locked_until: None,
                frozen: 0,
                created_at: now.clone(),
                tier: saoma_core::risk::DEFAULT_TIER.to_string(),
            })
            .collect();
        let top_ups: Vec<TopUpRow> = customers
            .iter()
            .map(|c| TopUpRow {
                id: format!("top_{}", ulid::Ulid::new()),
                customer_id: c.id.clone(),
                reference: format!("bench-{run}-{}", c.phone),
                amount: TOP_UP_MINOR,
                currency: "CNY".into(),
                created_at: now.clone(),
            })
            .collect();
        let entries = top_ups
            .iter()
            .map(|t| {
                let entry = saoma_core::ledger::top_up_entry(&t.customer_id, amount)?;
                Ok((format!("je_{}", ulid::Ulid::new()), "top_up", t.id.clone(), entry))
            })
            .collect::<Result<Vec<_>, saoma_core::ledger::LedgerError>>()?;
        let mut tx = store.begin().await?;
        tx.insert_customers(&customers).await?;
        tx.insert_top_ups(&top_ups).await?;
        tx.post_entries(&entries, &now).await?;
        tx.commit().await?;
        ids.extend(customers.into_iter().map(|c| c.id));
    }
    Ok(ids)
}

/// Online payment codes, pre-issued as the server issues them (stored by the hash
/// `codes::code_hash` uses), one per payment: code `k` belongs to wallet `k mod wallets`.
/// Codes are numbered from a random base, so a run never meets another's.
pub struct Codes {
    base: u64,
    pub issued: usize,
}

impl Codes {
    pub fn new() -> Codes {
        Codes { base: rand::random::<u64>() % 1_000_000_000_000_000, issued: 0 }
    }

    /// The code of payment `k`.
    pub fn code(&self, k: usize) -> String {
        saoma_core::paycode::online_code(self.base + k as u64)
    }

    /// Makes sure codes `0..count` exist.
    pub async fn issue_up_to(
        &mut self,
        store: &Store,
        wallets: &[String],
        count: usize,
    ) -> anyhow::Result<f64> {
        let started = Instant::now();
        let expires = now_text(chrono::Utc::now() + chrono::Duration::hours(CODE_TTL_HOURS));
        while self.issued < count {
            let end = (self.issued + 20_000).min(count);
            let rows: Vec<(String, String, String)> = (self.issued..end)
                .map(|k| (code_hash(&self.code(k)), wallets[k % wallets.len()].clone(), expires.clone()))
                .collect();
            let mut tx = store.begin().await?;
            tx.insert_online_codes(&rows).await?;
            tx.commit().await?;
            self.issued = end;
        }
        Ok(started.elapsed().as_secs_f64())
    }
}

/// Wallet sessions for the first `count` wallets, as `POST /v1/wallet/session` stores
/// them (by the SHA-256 of the token). Returns the tokens.
pub async fn sessions(store: &Store, wallets: &[String], count: usize) -> anyhow::Result<Vec<String>> {
    let t = chrono::Utc::now();
    let (now, expires) = (now_text(t), now_text(t + chrono::Duration::hours(CODE_TTL_HOURS)));
    let tokens: Vec<String> = (0..count.min(wallets.len()))
        .map(|_| format!("ws_bench{}", hex::encode(rand::random::<[u8; 24]>())))
        .collect();
    let rows: Vec<(String, String, String)> = tokens
        .iter()
        .zip(wallets)
        .map(|(token, w)| (hex::encode(Sha256::digest(token.as_bytes())), w.clone(), expires.clone()))
        .collect();
    let mut tx = store.begin().await?;
    tx.insert_sessions(&rows, &now).await?;
    tx.commit().await?;
    Ok(tokens)
}

/// The hash a payment code is stored under (as the server's `codes::code_hash`).
fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(format!("saoma-payment-code:{code}").as_bytes()))
}

/// RFC 3339 UTC with milliseconds, as the server writes times (they compare as text).
fn now_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
