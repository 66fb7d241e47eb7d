//! Small helpers: the clock, ids, hashing, percent-encoding.

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use sha2::{Digest, Sha256};

/// The current time and its RFC 3339 UTC text with milliseconds.
pub fn now() -> (DateTime<Utc>, String) {
    let t = Utc::now();
    (t, rfc3339(t))
}

/// RFC 3339 UTC with milliseconds: sorts as text in time order.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A new id with a type prefix: `pay_01J…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", ulid::Ulid::new())
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `n` random bytes, hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::thread_rng().fill(bytes.as_mut_slice());
    hex::encode(bytes)
}

/// A random token: 32 bytes, URL-safe characters.
pub fn random_token(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let body: String = (0..43).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect();
    format!("{prefix}{body}")
}

/// Checks a free-text field: 1 to `max` characters once trimmed, none of them control
/// characters.
pub fn text_field(param: &'static str, value: &str, max: usize) -> crate::ApiResult<()> {
    let n = value.trim().chars().count();
    if n == 0 || n > max || value.chars().any(char::is_control) {
        return Err(crate::ApiError::invalid(param, format!("{param} must be 1-{max} printable characters")));
    }
    Ok(())
}

/// A database URL with the password of its user part, if any, replaced by `***`
/// (`postgres://saoma:***@db/saoma`), for printing.
pub fn without_password(url: &str) -> String {
    let hidden = hide_query_password(url);
    let Some((scheme, rest)) = hidden.split_once("://") else { return hidden };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return hidden };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => hidden,
    }
}

/// Hides a `password=` query parameter (libpq's other way to give one).
fn hide_query_password(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_string() };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => p.to_string(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Spaces the rounds of a background loop at least `gap` apart, so that a burst of
/// wake-ups (one per commit under load) becomes one round per gap instead of a busy loop,
/// while the first wake-up after a quiet spell is served at once.
pub struct Pace {
    gap: std::time::Duration,
    last: Option<std::time::Instant>,
}

impl Pace {
    pub fn new(gap: std::time::Duration) -> Pace {
        Pace { gap, last: None }
    }

    /// How long a round that is due at `now` waits; the round counts as started then.
    pub fn delay(&mut self, now: std::time::Instant) -> std::time::Duration {
        let wait = self
            .last
            .map_or(std::time::Duration::ZERO, |last| (last + self.gap).saturating_duration_since(now));
        self.last = Some(now + wait);
        wait
    }

    /// Waits until the next round may start.
    pub async fn wait(&mut self) {
        let wait = self.delay(std::time::Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Pace, without_password};
    use std::time::{Duration, Instant};

    #[test]
    fn a_burst_of_wake_ups_is_one_round_per_gap() {
        let gap = Duration::from_millis(50);
        let mut pace = Pace::new(gap);
        let t0 = Instant::now();
        assert_eq!(pace.delay(t0), Duration::ZERO, "the first wake-up is served at once");
        // Commits 1 ms apart: the next round waits for the rest of the gap, and one after
        // it waits a whole gap more.
        assert_eq!(pace.delay(t0 + Duration::from_millis(1)), Duration::from_millis(49));
        assert_eq!(pace.delay(t0 + Duration::from_millis(2)), Duration::from_millis(98));
        // After a quiet spell longer than the gap, at once again.
        assert_eq!(pace.delay(t0 + Duration::from_millis(500)), Duration::ZERO);
        assert_eq!(pace.delay(t0 + Duration::from_millis(520)), Duration::from_millis(30));
    }

    #[test]
    fn database_passwords_are_not_printed() {
        assert_eq!(
            without_password("postgres://saoma:s3cret@db:5432/saoma"),
            "postgres://saoma:***@db:5432/saoma"
        );
        assert_eq!(without_password("postgres://p:a@b@db/x"), "postgres://p:***@db/x");
        assert_eq!(without_password("postgres://saoma@db/saoma"), "postgres://saoma@db/saoma");
        assert_eq!(without_password("sqlite:///var/lib/saoma.db"), "sqlite:///var/lib/saoma.db");
        assert_eq!(
            without_password("postgres://saoma@db:5432/saoma?password=s3cret&sslmode=require"),
            "postgres://saoma@db:5432/saoma?password=***&sslmode=require"
        );
        assert_eq!(
            without_password("postgres://db/saoma?user=u&PASSWORD=s3cret"),
            "postgres://db/saoma?user=u&PASSWORD=***"
        );
    }
}
