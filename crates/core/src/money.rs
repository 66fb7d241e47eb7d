//! Money: integer minor units tagged with an ISO 4217 currency.
//!
//! Never a float. Arithmetic is checked and refuses to mix currencies. Decimal strings
//! (EMV tag 54, what a person types) are parsed here, at the edge, with the currency's
//! exponent.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest amount the API accepts, in minor units (10^12).
pub const AMOUNT_MINOR_MAX: i64 = 1_000_000_000_000;

/// An ISO 4217 currency: alphabetic code, numeric code and minor-unit exponent.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    alpha: &'static str,
    numeric: u16,
    exponent: u8,
}

/// The currencies Saoma knows (ISO 4217).
pub const CURRENCIES: &[Currency] = &[
    Currency::of("CNY", 156, 2),
    Currency::of("HKD", 344, 2),
    Currency::of("TWD", 901, 2),
    Currency::of("MOP", 446, 2),
    Currency::of("USD", 840, 2),
    Currency::of("EUR", 978, 2),
    Currency::of("GBP", 826, 2),
    Currency::of("JPY", 392, 0),
    Currency::of("KRW", 410, 0),
    Currency::of("SGD", 702, 2),
    Currency::of("THB", 764, 2),
    Currency::of("MYR", 458, 2),
    Currency::of("IDR", 360, 2),
    Currency::of("VND", 704, 0),
    Currency::of("PHP", 608, 2),
    Currency::of("INR", 356, 2),
    Currency::of("BRL", 986, 2),
    Currency::of("KHR", 116, 2),
    Currency::of("AUD", 36, 2),
    Currency::of("CAD", 124, 2),
    Currency::of("CHF", 756, 2),
    Currency::of("BHD", 48, 3),
    Currency::of("KWD", 414, 3),
];

impl Currency {
    const fn of(alpha: &'static str, numeric: u16, exponent: u8) -> Self {
        Currency { alpha, numeric, exponent }
    }

    /// Chinese yuan renminbi, the default currency of the demo.
    pub const CNY: Currency = Currency::of("CNY", 156, 2);

    /// Looks a currency up by its alphabetic code (upper case, as ISO 4217 writes it).
    pub fn from_code(code: &str) -> Option<Currency> {
        CURRENCIES.iter().copied().find(|c| c.alpha == code)
    }

    /// Looks a currency up by its numeric code, as EMV tag 53 carries it ("156").
    pub fn from_numeric(numeric: u16) -> Option<Currency> {
        CURRENCIES.iter().copied().find(|c| c.numeric == numeric)
    }

    /// The alphabetic code, such as `CNY`.
    pub fn code(&self) -> &'static str {
        self.alpha
    }

    /// The numeric code, such as 156.
    pub fn numeric(&self) -> u16 {
        self.numeric
    }

    /// Digits after the decimal point: 2 for CNY, 0 for JPY.
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// How many minor units make one major unit (100 for CNY, 1 for JPY).
    pub fn minor_per_major(&self) -> i64 {
        10_i64.pow(u32::from(self.exponent))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.alpha)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown currency {code:?}")))
    }
}

/// Why a money operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currencies differ: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount overflows")]
    Overflow,
    #[error("amount must be greater than zero and at most 10^12 minor units")]
    OutOfRange,
    #[error("not a decimal amount for {currency}: {input:?}")]
    BadDecimal { currency: Currency, input: String },
}

/// An amount of one currency in minor units. Fields are private so every value is checked.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    /// Any amount, including zero or negative (balances); see [`Money::positive`] for prices.
    pub fn new(amount_minor: i64, currency: Currency) -> Money {
        Money { amount_minor, currency }
    }

    /// An amount a client may ask to move: greater than zero and at most 10^12.
    pub fn positive(amount_minor: i64, currency: Currency) -> Result<Money, MoneyError> {
        if amount_minor <= 0 || amount_minor > AMOUNT_MINOR_MAX {
            return Err(MoneyError::OutOfRange);
        }
        Ok(Money { amount_minor, currency })
    }

    /// Zero of a currency.
    pub fn zero(currency: Currency) -> Money {
        Money { amount_minor: 0, currency }
    }

    /// The amount in minor units.
    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Adds two amounts of the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let sum = self.amount_minor.checked_add(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(sum, self.currency))
    }

    /// Subtracts an amount of the same currency.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let diff = self.amount_minor.checked_sub(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(diff, self.currency))
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        Ok(())
    }

    /// Parses a decimal string such as `"12.50"` (EMV tag 54, user input) into minor units.
    /// At most the currency's exponent of fraction digits; no sign, no exponent, no spaces.
    pub fn parse_decimal(input: &str, currency: Currency) -> Result<Money, MoneyError> {
        let bad = || MoneyError::BadDecimal { currency, input: input.to_string() };
        let (whole, frac) = match input.split_once('.') {
            Some((w, f)) => (w, f),
            None => (input, ""),
        };
        let exponent = usize::from(currency.exponent);
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(frac) || whole.len() > 13 {
            return Err(bad());
        }
        if input.contains('.') && frac.is_empty() && exponent > 0 {
            return Err(bad());
        }
        // Trailing zeros beyond the exponent are harmless ("12.500" for CNY); other digits are not.
        let frac_trimmed = if frac.len() > exponent {
            if !frac[exponent..].bytes().all(|b| b == b'0') {
                return Err(bad());
            }
            &frac[..exponent]
        } else {
            frac
        };
        let whole_minor = whole
            .parse::<i64>()
            .map_err(|_| bad())?
            .checked_mul(currency.minor_per_major())
            .ok_or(MoneyError::Overflow)?;
        let mut frac_minor: i64 = 0;
        for i in 0..exponent {
            let digit = frac_trimmed.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
            frac_minor = frac_minor * 10 + digit;
        }
        let total = whole_minor.checked_add(frac_minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(total, currency))
    }

    /// Formats the amount as a plain decimal with the currency's exponent: `"12.50"`, `"1250"`.
    pub fn to_decimal(&self) -> String {
        let exponent = u32::from(self.currency.exponent);
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        if exponent == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10_u64.pow(exponent);
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = exponent as usize)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

/// The part of `amount` that `bps` basis points make, rounded half-up to the minor unit.
pub fn basis_points_half_up(amount_minor: i64, bps: u32) -> i64 {
    // i128 cannot overflow here: amounts are at most 10^12 and bps at most 10^4.
    let product = i128::from(amount_minor) * i128::from(bps);
    let rounded = (product + 5_000).div_euclid(10_000);
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_with_exponent() {
        let cny = Currency::CNY;
        assert_eq!(Money::parse_decimal("12.50", cny).unwrap().amount_minor(), 1250);
        assert_eq!(Money::parse_decimal("12.5", cny).unwrap().amount_minor(), 1250);
        assert_eq!(Money::parse_decimal("12", cny).unwrap().amount_minor(), 1200);
        assert_eq!(Money::parse_decimal("12.500", cny).unwrap().amount_minor(), 1250);
        assert!(Money::parse_decimal("12.505", cny).is_err());
        assert!(Money::parse_decimal("-1", cny).is_err());
        assert!(Money::parse_decimal("1e3", cny).is_err());
        assert!(Money::parse_decimal("", cny).is_err());
        assert!(Money::parse_decimal(".5", cny).is_err());
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(Money::parse_decimal("1250", jpy).unwrap().amount_minor(), 1250);
        assert!(Money::parse_decimal("12.5", jpy).is_err());
        assert_eq!(Money::new(1250, jpy).to_decimal(), "1250");
        assert_eq!(Money::new(5, cny).to_decimal(), "0.05");
        let kwd = Currency::from_code("KWD").unwrap();
        assert_eq!(Money::new(1234, kwd).to_decimal(), "1.234");
    }

    #[test]
    fn refuses_mixed_currencies_and_overflow() {
        let cny = Money::new(1, Currency::CNY);
        let usd = Money::new(1, Currency::from_code("USD").unwrap());
        assert!(matches!(cny.checked_add(usd), Err(MoneyError::CurrencyMismatch(..))));
        assert_eq!(Money::new(i64::MAX, Currency::CNY).checked_add(cny), Err(MoneyError::Overflow));
    }

    #[test]
    fn positive_bounds() {
        assert!(Money::positive(0, Currency::CNY).is_err());
        assert!(Money::positive(-5, Currency::CNY).is_err());
        assert!(Money::positive(AMOUNT_MINOR_MAX, Currency::CNY).is_ok());
        assert!(Money::positive(AMOUNT_MINOR_MAX + 1, Currency::CNY).is_err());
    }

    #[test]
    fn table_has_the_required_currencies() {
        for code in [
            "CNY", "HKD", "TWD", "USD", "EUR", "GBP", "JPY", "KRW", "SGD", "THB", "MYR", "IDR", "VND", "PHP",
            "INR", "BRL", "KHR",
        ] {
            let c = Currency::from_code(code).unwrap();
            assert_eq!(Currency::from_numeric(c.numeric()), Some(c));
        }
        assert_eq!(Currency::from_code("cny"), None);
    }

    #[test]
    fn basis_points_round_half_up() {
        assert_eq!(basis_points_half_up(1000, 60), 6);
        assert_eq!(basis_points_half_up(250, 60), 2); // 1.5 rounds up to 2
        assert_eq!(basis_points_half_up(249, 60), 1); // 1.494 rounds down
        assert_eq!(basis_points_half_up(1, 0), 0);
        assert_eq!(basis_points_half_up(AMOUNT_MINOR_MAX, 10_000), AMOUNT_MINOR_MAX);
    }
}
