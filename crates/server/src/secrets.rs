//! Secrets at rest: API-key secrets, device seeds, webhook secrets, receipt signing
//! seeds, the owner identity numbers of merchant applications and the platform keys in
//! `settings` are stored sealed with AES-256-GCM under the master key (`SAOMA_MASTER_KEY`), as
//! `enc:v1:<base64 of nonce and ciphertext>`. A database copied without the key yields no
//! secret. Values written before sealing existed are read as they are and sealed by
//! `saoma admin rotate-master-key`.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use saoma_store::StoreError;

const PREFIX: &str = "enc:v1:";

/// Platform keys kept sealed in `settings`: the key of the per-merchant customer handle
/// and the key that masks device slots in offline payment codes.
pub const SEALED_SETTINGS: &[&str] = &["customer_ref_key", "code_mask_key", "csrf_key"];
const CHECK: &str = "saoma master key check";

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

    /// Seals a secret with a fresh random nonce.
    pub fn seal(&self, plain: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption fails only for inputs of many gigabytes; secrets are short.
        let sealed = self.cipher.encrypt(&nonce, plain.as_bytes()).unwrap_or_default();
        format!("{PREFIX}{}", STANDARD.encode([nonce.as_slice(), &sealed].concat()))
    }

    /// Opens a sealed secret (an unsealed legacy value is returned as it is).
    pub fn open(&self, stored: &str) -> Result<String, StoreError> {
        let Some(b64) = stored.strip_prefix(PREFIX) else { return Ok(stored.to_string()) };
        let bad = || StoreError::Corrupt("a sealed secret does not open with this master key".into());
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
        self.seal(CHECK)
    }

    /// True when `stored` was sealed by this key.
    pub fn opens_check(&self, stored: &str) -> bool {
        self.open(stored).is_ok_and(|v| v == CHECK)
    }
}

/// A platform key of [`SEALED_SETTINGS`]: made (32 random bytes) and stored sealed the
/// first time; a value stored plain by an older version is sealed in place.
pub async fn platform_key(
    store: &saoma_store::Store,
    sealer: &Sealer,
    name: &str,
) -> anyhow::Result<Vec<u8>> {
    let fresh = sealer.seal(&crate::util::random_hex(32));
    let stored = store.setting_or_init(name, &fresh).await?;
    let plain = sealer.open(&stored)?;
    if !stored.starts_with(PREFIX) {
        let mut tx = store.begin().await?;
        tx.set_setting(name, &sealer.seal(&plain)).await?;
        tx.commit().await?;
    }
    Ok(hex::decode(plain)?)
}

/// Re-seals every secret of the database under a new master key, in one transaction,
/// and updates the check value. Run it with the servers stopped, then start them with the
/// new key. Legacy unsealed values are sealed on the way. Returns how many were sealed.
pub async fn rotate_master_key(database_url: &str, old_hex: &str, new_hex: &str) -> anyhow::Result<usize> {
    let (old, new) = (Sealer::from_hex(old_hex)?, Sealer::from_hex(new_hex)?);
    let store = saoma_store::Store::open(database_url).await?;
    let check = store.setting_or_init("master_key_check", &old.check_value()).await?;
    anyhow::ensure!(old.opens_check(&check), "SAOMA_MASTER_KEY is not the key this database is sealed with");
    let mut tx = store.begin().await?;
    let mut count = 0;
    for column in 0..saoma_store::SEALED_COLUMNS.len() {
        for (key, value) in tx.sealed_values(column).await? {
            let Some(value) = value else { continue };
            let plain = old.open(&value)?;
            tx.set_sealed_value(column, &key, &new.seal(&plain)).await?;
            count += 1;
        }
    }
    for name in SEALED_SETTINGS {
        if let Some(value) = store.setting(name).await? {
            tx.set_setting(name, &new.seal(&old.open(&value)?)).await?;
            count += 1;
        }
    }
    tx.set_setting("master_key_check", &new.check_value()).await?;
    tx.commit().await?;
    store.close().await;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_their_key() {
        let a = Sealer::new(&[7; 32]);
        let b = Sealer::new(&[8; 32]);
        let sealed = a.seal("sk_live_secret");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("sk_live_secret"));
        assert_ne!(sealed, a.seal("sk_live_secret"), "a fresh nonce every time");
        assert_eq!(a.open(&sealed).unwrap(), "sk_live_secret");
        assert!(b.open(&sealed).is_err());
        assert!(a.opens_check(&a.check_value()) && !b.opens_check(&a.check_value()));
        assert_eq!(a.open("legacy-plain").unwrap(), "legacy-plain");
        assert!(Sealer::from_hex("abcd").is_err());
    }
}
