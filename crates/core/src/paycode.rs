//! Customer payment codes: 18 digits, one-time, valid for at most 60 seconds.
//!
//! Two kinds share the length and differ by prefix:
//! - `66` + 15 random digits + a Luhn check digit: issued online by the server, which
//!   remembers it (hashed). The check digit lets a till refuse a misread before it asks
//!   the server (and before a misread counts as a guess against it).
//! - `67` + 8-digit locator + 8-digit one-time password: computed offline on an enrolled
//!   device, RFC 6238-style with a 30-second step.
//!
//! Each device has a random 8-digit slot that names it to the server, and its own secret.
//! The locator of a step is the slot enciphered with FF1 (NIST SP 800-38G, AES-256, radix
//! 10) under the platform's locator key, tweaked by the step: a permutation of the 10^8
//! slots that changes every step. Only the server holds that key. It hands each device the
//! locators of its own slot for the steps ahead (its schedule) and deciphers a scanned
//! locator back to the slot with one indexed look-up per step it accepts. Without the key
//! no locator says anything about another step's: two codes of one device cannot be
//! linked, and no device learns anything that unmasks another's codes. Nothing here draws
//! random numbers or reads the clock: callers pass them in.

use aes::Aes256;
use fpe::ff1::{FF1, FlexibleNumeralString};
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
/// Number of slots (and of locators): 8 digits.
pub const SLOT_SPACE: u32 = 100_000_000;
/// Digits of a slot and of a locator.
const SLOT_DIGITS: usize = 8;
/// Steps a schedule reaches back: a device whose clock is up to ten minutes slow still
/// finds its step (its codes are then declined as expired, not as invalid).
pub const SCHEDULE_BACK_STEPS: i64 = 20;
/// Steps a schedule reaches ahead: 48 hours. A device that stays offline longer makes no
/// offline codes until it fetches a new schedule.
pub const SCHEDULE_AHEAD_STEPS: i64 = 48 * 3600 / STEP_SECONDS;

type HmacSha256 = Hmac<Sha256>;

/// A code as read, before the server looks anything up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCode {
    /// An online code: look its hash up.
    Online(String),
    /// An offline code: decipher the locator to a slot, then check the password.
    Offline { locator: u32, otp: u32 },
}

/// Why a string is not a Saoma payment code, or a locator cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentCodeError {
    #[error("a payment code is 18 digits")]
    BadFormat,
    #[error("not a Saoma payment code prefix")]
    UnknownPrefix,
    #[error("the check digit does not match: the code was misread")]
    BadCheck,
    #[error("the locator key must be 32 bytes")]
    BadKey,
    #[error("the locator cipher failed: {0}")]
    Cipher(String),
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
            let locator = code[2..10].parse().map_err(|_| PaymentCodeError::BadFormat)?;
            let otp = code[10..18].parse().map_err(|_| PaymentCodeError::BadFormat)?;
            Ok(PaymentCode::Offline { locator, otp })
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
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    for p in parts {
        mac.update(p);
    }
    let out = mac.finalize().into_bytes();
    // RFC 4226 dynamic truncation.
    let offset = usize::from(out[out.len() - 1] & 0x0f);
    u32::from_be_bytes([out[offset] & 0x7f, out[offset + 1], out[offset + 2], out[offset + 3]])
}

/// The one-time password of a device for a step.
pub fn otp(device_secret: &[u8], slot: u32, step: i64) -> u32 {
    hmac_u32(device_secret, &[b"saoma-otp", &step.to_be_bytes(), &slot.to_be_bytes()]) % SLOT_SPACE
}

/// The offline code a device shows in `step`, from its secret, its slot and its locator
/// for that step (from its schedule).
pub fn offline_code(device_secret: &[u8], slot: u32, locator: u32, step: i64) -> String {
    format!("{OFFLINE_PREFIX}{:08}{:08}", locator % SLOT_SPACE, otp(device_secret, slot, step))
}

/// The platform's locator cipher: FF1 over 8 decimal digits under the 32-byte locator key.
/// Only the server builds one.
pub struct SlotCipher {
    ff1: FF1<Aes256>,
}

impl SlotCipher {
    /// The cipher of a 32-byte locator key.
    pub fn new(key: &[u8]) -> Result<SlotCipher, PaymentCodeError> {
        if key.len() != 32 {
            return Err(PaymentCodeError::BadKey);
        }
        let ff1 = FF1::<Aes256>::new(key, 10).map_err(|e| PaymentCodeError::Cipher(format!("{e:?}")))?;
        Ok(SlotCipher { ff1 })
    }

    fn tweak(step: i64) -> [u8; 21] {
        let mut t = [0u8; 21];
        t[..13].copy_from_slice(b"saoma-locator");
        t[13..].copy_from_slice(&step.to_be_bytes());
        t
    }

    /// The locator of `slot` in `step`.
    pub fn locator(&self, slot: u32, step: i64) -> Result<u32, PaymentCodeError> {
        let out = self.ff1.encrypt(&Self::tweak(step), &digits(slot)).map_err(cipher_error)?;
        Ok(number(out))
    }

    /// The slot whose locator in `step` is `locator`.
    pub fn slot_of(&self, locator: u32, step: i64) -> Result<u32, PaymentCodeError> {
        let out = self.ff1.decrypt(&Self::tweak(step), &digits(locator)).map_err(cipher_error)?;
        Ok(number(out))
    }

    /// The locators of `slot` for `count` steps from `first_step`: a device's schedule.
    pub fn schedule(&self, slot: u32, first_step: i64, count: i64) -> Result<Vec<u32>, PaymentCodeError> {
        (first_step..first_step + count.max(0)).map(|step| self.locator(slot, step)).collect()
    }
}

fn cipher_error(e: fpe::ff1::NumeralStringError) -> PaymentCodeError {
    PaymentCodeError::Cipher(format!("{e:?}"))
}

fn digits(n: u32) -> FlexibleNumeralString {
    let n = n % SLOT_SPACE;
    let digits: Vec<u16> = (0..SLOT_DIGITS).rev().map(|i| ((n / 10u32.pow(i as u32)) % 10) as u16).collect();
    FlexibleNumeralString::from(digits)
}

fn number(s: FlexibleNumeralString) -> u32 {
    Vec::<u16>::from(s).iter().fold(0u32, |n, d| n * 10 + u32::from(*d))
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
    (2..=SCHEDULE_BACK_STEPS).map(move |back| now - back)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8; 32] = b"platform locator key, 32 bytes!!";

    #[test]
    fn offline_code_round_trip() {
        let cipher = SlotCipher::new(KEY).unwrap();
        let secret = b"device secret of thirty-two byte";
        let step = step_of(1_764_000_000);
        let code = offline_code(secret, 4242, cipher.locator(4242, step).unwrap(), step);
        assert_eq!(code.len(), 18);
        let PaymentCode::Offline { locator, otp: pw } = parse(&code).unwrap() else { panic!("not offline") };
        assert_eq!(cipher.slot_of(locator, step).unwrap(), 4242);
        assert_eq!(otp(secret, 4242, step), pw);
        // The next step's code of the same device looks different in both halves.
        let next = offline_code(secret, 4242, cipher.locator(4242, step + 1).unwrap(), step + 1);
        assert_ne!(code[2..10], next[2..10]);
        assert_ne!(code[10..], next[10..]);
    }

    #[test]
    fn a_step_permutes_the_slots() {
        let cipher = SlotCipher::new(KEY).unwrap();
        let step = 58_800_000;
        let slots = [0, 1, 2, 99_999_999, 12_345_678];
        let locators: Vec<u32> = slots.iter().map(|s| cipher.locator(*s, step).unwrap()).collect();
        for (slot, locator) in slots.iter().zip(&locators) {
            assert!(*locator < SLOT_SPACE);
            assert_eq!(cipher.slot_of(*locator, step).unwrap(), *slot);
        }
        let mut distinct = locators.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), slots.len(), "distinct slots, distinct locators");
        // Another key deciphers a locator to some other slot.
        let other = SlotCipher::new(&[9; 32]).unwrap();
        assert_ne!(other.slot_of(locators[4], step).unwrap(), slots[4]);
        assert!(SlotCipher::new(b"short").is_err());
    }

    #[test]
    fn two_devices_codes_keep_no_fixed_offset() {
        // With a mask shared by all devices (the old scheme), the difference between two
        // devices' masked slots was the same at every step, so one device could unmask
        // another's slot from its own codes. Locators keep no such relation.
        let cipher = SlotCipher::new(KEY).unwrap();
        let (a, b) = (cipher.schedule(1111, 1000, 40).unwrap(), cipher.schedule(2222, 1000, 40).unwrap());
        let mut offsets: Vec<u32> =
            a.iter().zip(&b).map(|(x, y)| (x + SLOT_SPACE - y) % SLOT_SPACE).collect();
        offsets.sort();
        offsets.dedup();
        assert!(offsets.len() > 35, "{offsets:?}");
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
