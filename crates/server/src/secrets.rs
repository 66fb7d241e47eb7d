//! Secrets at rest: API-key secrets, device seeds, webhook secrets, receipt signing
//! seeds, the owner identity numbers of merchant applications and the platform keys in
//! `settings` are stored sealed with AES-256-GCM under the master key (`SAOMA_MASTER_KEY`),
//! as `enc:v2:<base64 of nonce and ciphertext>`. A database copied without the key yields
//! no secret.
//!
//! Each sealed value is bound to its place: the AES-GCM associated data names the table,
//! the column and the row's key, so a value opens only where it was sealed. A sealed value
//! copied to another row or column, a value sealed without a place (`enc:v1:`), and a plain
//! value written over a sealed one are refused when used, never trusted. Older forms (plain
//! values, `enc:v1:`) are accepted only by the one-time migration at start ([`unlock`]),
//! which runs while the database's key check value is still of the old form and seals every
//! such value to its place in one transaction. This module never logs a secret.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use saoma_store::{SEALED_COLUMNS, StoreError};

/// Sealed and bound to its place.
const PREFIX: &str = "enc:v2:";
/// Sealed by older versions without a place: opened only by the one-time migration.
const LEGACY_PREFIX: &str = "enc:v1:";

/// Platform keys kept sealed in `settings`: the key of the per-merchant customer handle
/// and the key that enciphers device slots into the locators of offline payment codes.
pub const SEALED_SETTINGS: &[&str] = &["customer_ref_key", "code_locator_key", "csrf_key"];
/// The setting whose sealed value proves which master key the database is sealed with.
const CHECK_SETTING: &str = "master_key_check";
const CHECK: &str = "saoma master key check";

/// Where a sealed value lives: its table, its column and its row's key. A value sealed for
/// one place does not open at another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row: &'a str,
}

impl<'a> Place<'a> {
    /// The secret of API key `id`.
    pub fn api_key(id: &'a str) -> Place<'a> {
        Place { table: "api_keys", column: "secret", row: id }
    }

    /// The secret of device `id`.
    pub fn device(id: &'a str) -> Place<'a> {
        Place { table: "devices", column: "secret", row: id }
    }

    /// The current webhook secret of a merchant.
    pub fn webhook_secret(merchant_id: &'a str) -> Place<'a> {
        Place { table: "webhook_endpoints", column: "secret", row: merchant_id }
    }

    /// The webhook secret a merchant replaced, still signing for a while.
    pub fn webhook_previous_secret(merchant_id: &'a str) -> Place<'a> {
        Place { table: "webhook_endpoints", column: "previous_secret", row: merchant_id }
    }

    /// The signing seed of receipt key `kid`.
    pub fn receipt_seed(kid: &'a str) -> Place<'a> {
        Place { table: "receipt_keys", column: "seed", row: kid }
    }

    /// The owner's identity number in a merchant's application.
    pub fn owner_id_number(merchant_id: &'a str) -> Place<'a> {
        Place { table: "merchant_applications", column: "owner_id_number", row: merchant_id }
    }

    /// A platform key of `settings`.
    pub fn setting(name: &'a str) -> Place<'a> {
        Place { table: "settings", column: "value", row: name }
    }

    /// The associated data: every part length-prefixed, so no two places encode alike.
    fn aad(&self) -> Vec<u8> {
        let mut aad = b"saoma-sealed-v2".to_vec();
        for part in [self.table, self.column, self.row] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }

    fn refused(&self, why: &str) -> StoreError {
        StoreError::Corrupt(format!("{}.{} of {:?} {why}", self.table, self.column, self.row))
    }
}

/// What the key check value says about a master key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyCheck {
    /// The right key, and every secret is bound to its place.
    Bound,
    /// The right key, on a database sealed before values were bound to their places.
    Legacy,
    /// Not the key this database is sealed with.
    Wrong,
}

/// Seals and opens secrets with one master key.
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl Sealer {
    /// A sealer for a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Sealer {
        Sealer { cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)) }
    }

    /// Parses a master key given as 64 hex characters.
    pub fn from_hex(hex_key: &str) -> anyhow::Result<Sealer> {
        let bytes = hex::decode(hex_key.trim())
            .map_err(|_| anyhow::anyhow!("the master key must be 64 hex characters"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the master key must be 64 hex characters (32 bytes)"))?;
        Ok(Sealer::new(&key))
    }

    /// Seals a secret for its place, with a fresh random nonce.
    pub fn seal(&self, at: Place<'_>, plain: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = at.aad();
        // Encryption fails only for inputs of many gigabytes; secrets are short. An empty
        // ciphertext would be a secret lost for good, so this is an invariant, not a default.
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: plain.as_bytes(), aad: &aad })
            .expect("AES-GCM seals any secret shorter than 64 GiB");
        format!("{PREFIX}{}", STANDARD.encode([nonce.as_slice(), &sealed].concat()))
    }

    /// Opens a secret sealed for `at`. Anything else is refused: a value sealed for
    /// another place or with another key, a value sealed without a place, a plain value.
    pub fn open(&self, at: Place<'_>, stored: &str) -> Result<String, StoreError> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Err(at.refused("is not sealed to its place (a plain or older value was written there)"));
        };
        let bad = || at.refused("does not open here (sealed for another place, or with another key)");
        let bytes = STANDARD.decode(b64).map_err(|_| bad())?;
        if bytes.len() < 12 {
            return Err(bad());
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: &at.aad() })
            .map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }

    /// Opens a value of an older version: sealed without a place, or plain. Only the
    /// one-time migration calls this.
    fn open_legacy(&self, at: Place<'_>, stored: &str) -> Result<String, StoreError> {
        let Some(b64) = stored.strip_prefix(LEGACY_PREFIX) else { return Ok(stored.to_string()) };
        let bad = || at.refused("(sealed by an older version) does not open with this master key");
        let bytes = STANDARD.decode(b64).map_err(|_| bad())?;
        if bytes.len() < 12 {
            return Err(bad());
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), sealed).map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }

    /// The check value stored beside the data: it opens only with the right key.
    pub fn check_value(&self) -> String {
        self.seal(Place::setting(CHECK_SETTING), CHECK)
    }

    fn check(&self, stored: &str) -> KeyCheck {
        let at = Place::setting(CHECK_SETTING);
        if stored.starts_with(PREFIX) {
            return match self.open(at, stored) {
                Ok(v) if v == CHECK => KeyCheck::Bound,
                _ => KeyCheck::Wrong,
            };
        }
        match stored.starts_with(LEGACY_PREFIX).then(|| self.open_legacy(at, stored)) {
            Some(Ok(v)) if v == CHECK => KeyCheck::Legacy,
            _ => KeyCheck::Wrong,
        }
    }
}

/// Checks that `sealer` holds the database's master key, and on a database sealed before
/// values were bound to their places runs the one-time migration: every plain or unbound
/// value is sealed to its place, then the check value too, in one transaction. After that,
/// only values bound to their place open. Called at every start, and before a rotation.
pub async fn unlock(store: &saoma_store::Store, sealer: &Sealer) -> anyhow::Result<()> {
    let check = match store.setting(CHECK_SETTING).await? {
        Some(check) => check,
        None => {
            // A new database. One that holds secrets lost its check value: starting anyway
            // would let any key (and a migration) in.
            anyhow::ensure!(
                !holds_secrets(store).await?,
                "the database holds sealed secrets but no master key check value: restore it from a backup"
            );
            store.setting_or_init(CHECK_SETTING, &sealer.check_value()).await?
        }
    };
    match sealer.check(&check) {
        KeyCheck::Bound => Ok(()),
        KeyCheck::Wrong => anyhow::bail!("this is not the master key the database's secrets are sealed with"),
        KeyCheck::Legacy => {
            let count = bind_legacy(store, sealer).await?;
            tracing::info!(count, "Sealed every secret to its place (one-time migration).");
            Ok(())
        }
    }
}

/// True when any sealed column or platform key holds a value.
async fn holds_secrets(store: &saoma_store::Store) -> anyhow::Result<bool> {
    let mut tx = store.begin().await?;
    for column in 0..SEALED_COLUMNS.len() {
        if tx.sealed_values(column).await?.iter().any(|(_, v)| v.is_some()) {
            return Ok(true);
        }
    }
    for name in SEALED_SETTINGS {
        if tx.setting(name).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The one-time migration; several nodes may start at once: the first one does it.
async fn bind_legacy(store: &saoma_store::Store, sealer: &Sealer) -> anyhow::Result<usize> {
    let mut tx = store.begin().await?;
    let check = tx.setting(CHECK_SETTING).await?.unwrap_or_default();
    if sealer.check(&check) != KeyCheck::Legacy {
        return Ok(0);
    }
    let mut count = 0;
    for (column, (table, _, col)) in SEALED_COLUMNS.iter().enumerate() {
        for (row, value) in tx.sealed_values(column).await? {
            let Some(value) = value else { continue };
            let at = Place { table, column: col, row: &row };
            if value.starts_with(PREFIX) {
                sealer.open(at, &value)?;
                continue;
            }
            let plain = sealer.open_legacy(at, &value)?;
            tx.set_sealed_value(column, &row, &sealer.seal(at, &plain)).await?;
            count += 1;
        }
    }
    for name in SEALED_SETTINGS {
        let at = Place::setting(name);
        if let Some(value) = tx.setting(name).await?
            && !value.starts_with(PREFIX)
        {
            let plain = sealer.open_legacy(at, &value)?;
            tx.set_setting(name, &sealer.seal(at, &plain)).await?;
            count += 1;
        }
    }
    tx.set_setting(CHECK_SETTING, &sealer.check_value()).await?;
    tx.commit().await?;
    Ok(count)
}

/// A platform key of [`SEALED_SETTINGS`]: made (32 random bytes) and stored sealed to its
/// place the first time.
pub async fn platform_key(
    store: &saoma_store::Store,
    sealer: &Sealer,
    name: &str,
) -> anyhow::Result<Vec<u8>> {
    let at = Place::setting(name);
    let fresh = sealer.seal(at, &crate::util::random_hex(32));
    let stored = store.setting_or_init(name, &fresh).await?;
    let plain = sealer.open(at, &stored).with_context(|| format!("the platform key {name}"))?;
    Ok(hex::decode(plain)?)
}

/// Re-seals every secret of the database under a new master key, in one transaction,
/// and updates the check value. Run it with the servers stopped, then start them with the
/// new key. A database not yet migrated is first sealed to its places under the old key;
/// a value that is not sealed to its place stops the rotation (it is named), so a value
/// written behind the server's back is never laundered into the new key. Returns how
/// many values were re-sealed.
pub async fn rotate_master_key(database_url: &str, old_hex: &str, new_hex: &str) -> anyhow::Result<usize> {
    let (old, new) = (Sealer::from_hex(old_hex)?, Sealer::from_hex(new_hex)?);
    let store = saoma_store::Store::open(database_url).await?;
    unlock(&store, &old).await.context("SAOMA_MASTER_KEY")?;
    let mut tx = store.begin().await?;
    let mut count = 0;
    for (column, (table, _, col)) in SEALED_COLUMNS.iter().enumerate() {
        for (row, value) in tx.sealed_values(column).await? {
            let Some(value) = value else { continue };
            let at = Place { table, column: col, row: &row };
            let plain = old.open(at, &value)?;
            tx.set_sealed_value(column, &row, &new.seal(at, &plain)).await?;
            count += 1;
        }
    }
    for name in SEALED_SETTINGS {
        let at = Place::setting(name);
        if let Some(value) = tx.setting(name).await? {
            tx.set_setting(name, &new.seal(at, &old.open(at, &value)?)).await?;
            count += 1;
        }
    }
    tx.set_setting(CHECK_SETTING, &new.check_value()).await?;
    tx.commit().await?;
    store.close().await;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_their_key_at_their_place() {
        let a = Sealer::new(&[7; 32]);
        let b = Sealer::new(&[8; 32]);
        let here = Place::api_key("key_1");
        let sealed = a.seal(here, "sk_live_secret");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("sk_live_secret"));
        assert_ne!(sealed, a.seal(here, "sk_live_secret"), "a fresh nonce every time");
        assert_eq!(a.open(here, &sealed).unwrap(), "sk_live_secret");
        assert!(b.open(here, &sealed).is_err());
        // Another row, another column, another table: refused.
        for there in
            [Place::api_key("key_2"), Place::device("key_1"), Place::webhook_previous_secret("key_1")]
        {
            assert!(a.open(there, &sealed).is_err(), "{there:?}");
        }
        // A plain value and a value sealed without a place are refused at use.
        assert!(a.open(here, "sk_live_secret").is_err());
        assert!(Sealer::from_hex("abcd").is_err());
    }

    #[test]
    fn the_check_value_tells_bound_legacy_and_wrong_keys_apart() {
        let a = Sealer::new(&[7; 32]);
        let b = Sealer::new(&[8; 32]);
        assert_eq!(a.check(&a.check_value()), KeyCheck::Bound);
        assert_eq!(b.check(&a.check_value()), KeyCheck::Wrong);
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let legacy = a.cipher.encrypt(&nonce, CHECK.as_bytes()).unwrap();
        let legacy = format!("{LEGACY_PREFIX}{}", STANDARD.encode([nonce.as_slice(), &legacy].concat()));
        assert_eq!(a.check(&legacy), KeyCheck::Legacy);
        assert_eq!(b.check(&legacy), KeyCheck::Wrong);
        assert_eq!(a.check(CHECK), KeyCheck::Wrong, "a plain check value proves nothing");
        assert_eq!(a.open_legacy(Place::setting("x"), &legacy).unwrap(), CHECK);
        assert_eq!(a.open_legacy(Place::setting("x"), "plain").unwrap(), "plain");
    }

    #[test]
    fn every_sealed_column_has_its_place() {
        let places = [
            Place::api_key("r"),
            Place::device("r"),
            Place::webhook_secret("r"),
            Place::webhook_previous_secret("r"),
            Place::receipt_seed("r"),
            Place::owner_id_number("r"),
        ];
        let named: Vec<(&str, &str)> = places.iter().map(|p| (p.table, p.column)).collect();
        let listed: Vec<(&str, &str)> = SEALED_COLUMNS.iter().map(|(t, _, c)| (*t, *c)).collect();
        assert_eq!(named, listed);
    }

    #[test]
    fn places_do_not_run_into_each_other() {
        let a = Place { table: "ab", column: "c", row: "d" };
        let b = Place { table: "a", column: "bc", row: "d" };
        assert_ne!(a.aad(), b.aad());
    }
}
