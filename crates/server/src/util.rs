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
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_string() };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn database_passwords_are_not_printed() {
        assert_eq!(
            without_password("postgres://saoma:s3cret@db:5432/saoma"),
            "postgres://saoma:***@db:5432/saoma"
        );
        assert_eq!(without_password("postgres://p:a@b@db/x"), "postgres://p:***@db/x");
        assert_eq!(without_password("postgres://saoma@db/saoma"), "postgres://saoma@db/saoma");
        assert_eq!(without_password("sqlite:///var/lib/saoma.db"), "sqlite:///var/lib/saoma.db");
    }
}
