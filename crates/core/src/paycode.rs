//! Customer payment codes: 18 digits, one-time, valid for at most 60 seconds.
//!
//! Two kinds share the length and differ by prefix:
//! - `66` + 15 random digits + a Luhn check digit: issued online by the server, which
//!   remembers it (hashed). The check digit lets a till refuse a misread before it asks
//!   the server (and before a misread counts as a guess against it).
//! - `67` + 8-digit masked device slot + 8-digit one-time password: computed offline on
//!   an enrolled device from its secret, RFC 6238-style with a 30-second step.
//!
//! The slot is a random number given to the device at enrollment, not derived from the
//! customer; it is masked with a per-step value from the platform's mask key so two
//! codes of one device do not share digits. The server unmasks it for the current and the
//! previous step and finds the device with one indexed look-up. Nothing here draws
//! random numbers or reads the clock: callers pass them in.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Digits in every payment code.
pub const CODE_DIGITS: usize = 18;
/// Prefix of codes issued online.
pub const ONLINE_PREFIX: &str = "66";
/// Prefix of codes computed on an enrolled device.
pub const OFFLINE_PREFIX: &str = "67";
/// Length of one time step, in seconds.
pub const STEP_SECONDS: i64 = 30;
/// How long an online code lives, in seconds.
pub const ONLINE_TTL_SECONDS: i64 = 60;
/// Number of slots: 8 digits.
pub const SLOT_SPACE: u32 = 100_000_000;

type HmacSha256 = Hmac<Sha256>;

/// A code as read, before the server looks anything up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCode {
    /// An online code: look its hash up.
    Online(String),
    /// An offline code: unmask the slot, then check the password.
    Offline { masked_slot: u32, otp: u32 },
}

/// Why a string is not a Saoma payment code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentCodeError {
    #[error("a payment code is 18 digits")]
    BadFormat,
    #[error("not a Saoma payment code prefix")]
    UnknownPrefix,
    #[error("the check digit does not match: the code was misread")]
    BadCheck,
}

/// The Luhn check digit of `digits` (ASCII digits).
pub fn luhn_digit(digits: &str) -> u8 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Reads a payment code (digits only; the caller trims scanner line endings).
pub fn parse(code: &str) -> Result<PaymentCode, PaymentCodeError> {
    if code.len() != CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PaymentCodeError::BadFormat);
    }
    match &code[..2] {
        ONLINE_PREFIX => {
            if luhn_digit(&code[..CODE_DIGITS - 1]) != code.as_bytes()[CODE_DIGITS - 1] - b'0' {
                return Err(PaymentCodeError::BadCheck);
            }
            Ok(PaymentCode::Online(code.to_string()))
        }
        OFFLINE_PREFIX => {
            let masked_slot = code[2..10].parse().map_err(|_| PaymentCodeError::BadFormat)?;
            let otp = code[10..18].parse().map_err(|_| PaymentCodeError::BadFormat)?;
            Ok(PaymentCode::Offline { masked_slot, otp })
        }
        _ => Err(PaymentCodeError::UnknownPrefix),
    }
}

/// Builds an online code from 15 random digits drawn by the caller (any `random`; only
/// its value modulo 10^15 is used), and the check digit.
pub fn online_code(random: u64) -> String {
    let body = format!("{ONLINE_PREFIX}{:015}", random % 1_000_000_000_000_000);
    let check = luhn_digit(&body);
    format!("{body}{check}")
}

/// The time step of a Unix time.
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

fn hmac_u32(key: &[u8], parts: &[&[u8]]) -> u32 {
    // HMAC accepts keys of any length, so new_from_slice cannot fail here.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return 0,
    };
    for p in parts {
        mac.update(p);
    }
    let out = mac.finalize().into_bytes();
    // RFC 4226 dynamic truncation.
    let offset = usize::from(out[out.len() - 1] & 0x0f);
    u32::from_be_bytes([out[offset] & 0x7f, out[offset + 1], out[offset + 2], out[offset + 3]])
}

fn mask(mask_key: &[u8], step: i64) -> u32 {
    hmac_u32(mask_key, &[b"saoma-slot-mask", &step.to_be_bytes()]) % SLOT_SPACE
}

/// The one-time password of a device for a step.
pub fn otp(device_secret: &[u8], slot: u32, step: i64) -> u32 {
    hmac_u32(device_secret, &[b"saoma-otp", &step.to_be_bytes(), &slot.to_be_bytes()]) % SLOT_SPACE
}

/// The offline code a device shows at a given time.
pub fn offline_code(device_secret: &[u8], slot: u32, mask_key: &[u8], unix_seconds: i64) -> String {
    let step = step_of(unix_seconds);
    let masked = (slot % SLOT_SPACE + mask(mask_key, step)) % SLOT_SPACE;
    format!("{OFFLINE_PREFIX}{masked:08}{:08}", otp(device_secret, slot, step))
}

/// The slot a masked slot stands for, if the code was made in `step`.
pub fn unmask_slot(masked_slot: u32, mask_key: &[u8], step: i64) -> u32 {
    (masked_slot % SLOT_SPACE + SLOT_SPACE - mask(mask_key, step)) % SLOT_SPACE
}

/// Steps in which an offline code is accepted at `unix_seconds`: this one and the one
/// before, so a code lives between 30 and 60 seconds.
pub fn accepted_steps(unix_seconds: i64) -> [i64; 2] {
    let now = step_of(unix_seconds);
    [now, now - 1]
}

/// Earlier steps checked only to tell "expired" from "invalid" (the last ten minutes).
pub fn expired_steps(unix_seconds: i64) -> impl Iterator<Item = i64> {
    let now = step_of(unix_seconds);
    (2..=20).map(move |back| now - back)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_code_round_trip() {
        let secret = b"device secret of thirty-two byte";
        let mask_key = b"platform mask key";
        let t = 1_764_000_000;
        let code = offline_code(secret, 4242, mask_key, t);
        assert_eq!(code.len(), 18);
        let PaymentCode::Offline { masked_slot, otp: pw } = parse(&code).unwrap() else {
            panic!("not offline")
        };
        let step = step_of(t);
        assert_eq!(unmask_slot(masked_slot, mask_key, step), 4242);
        assert_eq!(otp(secret, 4242, step), pw);
        // The next step's code of the same device looks different in both halves.
        let next = offline_code(secret, 4242, mask_key, t + 30);
        assert_ne!(code[2..10], next[2..10]);
        assert_ne!(code[10..], next[10..]);
    }

    #[test]
    fn parse_rejects_bad_codes() {
        assert_eq!(parse("66123"), Err(PaymentCodeError::BadFormat));
        assert_eq!(parse("66123456789012345a"), Err(PaymentCodeError::BadFormat));
        assert_eq!(parse("281234567890123456"), Err(PaymentCodeError::UnknownPrefix));
        assert!(matches!(parse(&online_code(7)), Ok(PaymentCode::Online(_))));
    }

    #[test]
    fn a_misread_digit_or_swap_fails_the_check() {
        assert_eq!(luhn_digit("7992739871"), 3, "the textbook Luhn example");
        let code = online_code(123_456_789_012_345);
        for i in 2..CODE_DIGITS {
            let mut wrong = code.clone().into_bytes();
            wrong[i] = b'0' + (wrong[i] - b'0' + 1) % 10;
            let wrong = String::from_utf8(wrong).unwrap();
            assert_eq!(parse(&wrong), Err(PaymentCodeError::BadCheck), "digit {i} misread");
        }
        let mut swapped = code.clone().into_bytes();
        let i = (2..CODE_DIGITS - 2).find(|&i| swapped[i] != swapped[i + 1]).unwrap();
        swapped.swap(i, i + 1);
        assert_eq!(parse(&String::from_utf8(swapped).unwrap()), Err(PaymentCodeError::BadCheck));
    }
}
