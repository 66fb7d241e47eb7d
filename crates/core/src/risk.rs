//! The risk rules: limits per customer tier, the password-free limit, velocity, and the
//! bad-code block of a terminal. Pure: the server counts what happened and asks here.
//!
//! Every decline names the failure code the API answers (`limit_exceeded`,
//! `risk_declined`, `wallet_frozen`), the rule that fired, what was observed and the
//! threshold, so a decision can be explained afterwards.

use crate::money::Currency;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A tier's limits, in major units of the payment's currency (1000 = ¥1000.00, ¥1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLimits {
    /// The largest single payment or transfer.
    pub per_payment: i64,
    /// The most a customer may pay out (payments and transfers) in any 24 hours.
    pub daily: i64,
}

/// Velocity rules: counts inside a sliding window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Velocity {
    /// Payment attempts one wallet may make per minute.
    pub wallet_per_minute: i64,
    /// Payment attempts one terminal may make per minute.
    pub terminal_per_minute: i64,
    /// Bad payment codes (invalid, expired, used) after which a till, or a key that is not
    /// a till's, is blocked...
    pub bad_codes: i64,
    /// ...and after which the whole merchant is (all its keys together, so minting keys
    /// does not multiply the budget)...
    #[serde(default = "merchant_bad_codes_default")]
    pub merchant_bad_codes: i64,
    /// ...counted in windows of this many seconds; a block lifts when its window ends.
    pub bad_code_window_seconds: i64,
}

fn merchant_bad_codes_default() -> i64 {
    50
}

/// Whose bad payment codes are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuessScope {
    /// A till (every key of one terminal together).
    Terminal,
    /// A merchant or manager key.
    Key,
    /// Every key of the merchant.
    Merchant,
}

/// The operator's rule set. `version` grows with every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    #[serde(default)]
    pub version: i64,
    /// Above this (major units) a consumer-presented payment needs the customer's PIN.
    pub password_free: i64,
    /// Limits by tier name; a customer of a tier not listed gets the lowest limits listed.
    pub tiers: BTreeMap<String, TierLimits>,
    pub velocity: Velocity,
}

/// The tier a new customer gets.
pub const DEFAULT_TIER: &str = "standard";

impl Default for Rules {
    /// Thresholds that a busy real customer and a busy till never meet.
    fn default() -> Rules {
        let tier = |per_payment, daily| TierLimits { per_payment, daily };
        Rules {
            version: 1,
            password_free: 1000,
            tiers: BTreeMap::from([
                ("basic".to_string(), tier(2_000, 5_000)),
                (DEFAULT_TIER.to_string(), tier(50_000, 100_000)),
                ("premium".to_string(), tier(200_000, 500_000)),
            ]),
            velocity: Velocity {
                wallet_per_minute: 20,
                terminal_per_minute: 120,
                bad_codes: 10,
                merchant_bad_codes: merchant_bad_codes_default(),
                bad_code_window_seconds: 600,
            },
        }
    }
}

/// Why something is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decline {
    /// The API's failure code.
    pub code: &'static str,
    /// The rule that fired.
    pub rule: &'static str,
    /// What was observed (minor units or a count)...
    pub observed: i64,
    /// ...against what the rule allows.
    pub threshold: i64,
}

impl Decline {
    /// A decline by `rule`, answered with the failure `code`.
    pub fn new(code: &'static str, rule: &'static str, observed: i64, threshold: i64) -> Decline {
        Decline { code, rule, observed, threshold }
    }

    /// A decline that is not a risk rule's (a bad payment code, a short balance): the
    /// failure code is the rule.
    pub fn plain(code: &'static str) -> Decline {
        Decline::new(code, code, 0, 0)
    }
}

/// Why a rule set is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRules(pub String);

/// A tier name: 1-32 of `[a-z0-9_]`.
pub fn valid_tier(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

const MAJOR_MAX: i64 = 1_000_000_000;

impl Rules {
    /// Checks a rule set before it is stored.
    pub fn validate(&self) -> Result<(), InvalidRules> {
        let bad = |s: &str| Err(InvalidRules(s.to_string()));
        if !(0..=MAJOR_MAX).contains(&self.password_free) {
            return bad("password_free is 0-1000000000 major units");
        }
        if self.tiers.is_empty() {
            return bad("tiers must name at least one tier");
        }
        if !self.tiers.contains_key(DEFAULT_TIER) {
            return bad("tiers must include \"standard\", the tier of new customers");
        }
        for (name, t) in &self.tiers {
            if !valid_tier(name) {
                return bad("a tier name is 1-32 of [a-z0-9_]");
            }
            if !(1..=MAJOR_MAX).contains(&t.per_payment) || !(1..=MAJOR_MAX).contains(&t.daily) {
                return bad("per_payment and daily are 1-1000000000 major units");
            }
            if t.per_payment > t.daily {
                return bad("a tier's per_payment cannot exceed its daily limit");
            }
        }
        let v = &self.velocity;
        let counts = [v.wallet_per_minute, v.terminal_per_minute, v.bad_codes, v.merchant_bad_codes];
        if counts.iter().any(|n| !(1..=100_000).contains(n)) {
            return bad("velocity counts are 1-100000");
        }
        if !(60..=86_400).contains(&v.bad_code_window_seconds) {
            return bad("bad_code_window_seconds is 60-86400");
        }
        Ok(())
    }

    /// The limits of `tier`, or the lowest listed when the tier is not (any more).
    pub fn limits(&self, tier: &str) -> TierLimits {
        self.tiers.get(tier).copied().unwrap_or_else(|| TierLimits {
            per_payment: self.tiers.values().map(|t| t.per_payment).min().unwrap_or(0),
            daily: self.tiers.values().map(|t| t.daily).min().unwrap_or(0),
        })
    }

    /// The password-free limit in minor units of `currency`.
    pub fn password_free_minor(&self, currency: Currency) -> i64 {
        self.password_free.saturating_mul(currency.minor_per_major())
    }

    /// True when a consumer-presented payment of `amount_minor` needs the PIN.
    pub fn needs_pin(&self, amount_minor: i64, currency: Currency) -> bool {
        amount_minor > self.password_free_minor(currency)
    }

    /// A terminal about to take a payment code, making payments faster than a till can
    /// (`recent` attempts in the last minute). `None`: not counted (the velocity rules
    /// are off). Bad codes are [`Rules::check_bad_codes`]'s.
    pub fn check_terminal(&self, recent: Option<i64>) -> Result<(), Decline> {
        let v = &self.velocity;
        if let Some(n) = recent
            && n >= v.terminal_per_minute
        {
            return Err(Decline::new("risk_declined", "terminal_velocity", n, v.terminal_per_minute));
        }
        Ok(())
    }

    /// A till, key or merchant about to present a payment code, after `bad` bad codes in
    /// the current window: blocked at the threshold, before the code is even looked at.
    pub fn check_bad_codes(&self, scope: GuessScope, bad: i64) -> Result<(), Decline> {
        let (rule, limit) = match scope {
            GuessScope::Terminal => ("terminal_bad_codes", self.velocity.bad_codes),
            GuessScope::Key => ("key_bad_codes", self.velocity.bad_codes),
            GuessScope::Merchant => ("merchant_bad_codes", self.velocity.merchant_bad_codes),
        };
        if bad >= limit {
            return Err(Decline::new("risk_declined", rule, bad, limit));
        }
        Ok(())
    }

    /// A wallet about to pay `amount_minor`: frozen, over its tier's per-payment limit,
    /// or paying too often (`recent` attempts in the last minute; `None`: not counted).
    pub fn check_wallet(
        &self,
        frozen: bool,
        tier: &str,
        amount_minor: i64,
        currency: Currency,
        recent: Option<i64>,
    ) -> Result<(), Decline> {
        if frozen {
            return Err(Decline::new("wallet_frozen", "wallet_frozen", 1, 0));
        }
        let cap = self.limits(tier).per_payment.saturating_mul(currency.minor_per_major());
        if amount_minor > cap {
            return Err(Decline::new("limit_exceeded", "per_payment_limit", amount_minor, cap));
        }
        if let Some(n) = recent
            && n >= self.velocity.wallet_per_minute
        {
            return Err(Decline::new("risk_declined", "wallet_velocity", n, self.velocity.wallet_per_minute));
        }
        Ok(())
    }

    /// After a payment is posted: `spent_minor` is what the customer paid out in the last
    /// 24 hours in this currency, this payment included.
    pub fn check_daily(&self, tier: &str, spent_minor: i64, currency: Currency) -> Result<(), Decline> {
        let cap = self.limits(tier).daily.saturating_mul(currency.minor_per_major());
        if spent_minor > cap {
            return Err(Decline::new("limit_exceeded", "daily_limit", spent_minor, cap));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CNY: Currency = Currency::CNY;

    #[test]
    fn defaults_are_valid_and_fit_a_busy_customer() {
        let r = Rules::default();
        r.validate().unwrap();
        // Ten coffees in a minute and a ¥40,000 purchase pass for a standard customer.
        assert!(r.check_wallet(false, "standard", 4_000_000, CNY, Some(10)).is_ok());
        assert!(r.check_terminal(Some(60)).is_ok());
        assert!(r.check_bad_codes(GuessScope::Terminal, 3).is_ok());
        assert!(r.check_daily("standard", 10_000_000, CNY).is_ok());
    }

    #[test]
    fn each_rule_names_itself() {
        let r = Rules::default();
        let rule = |d: Result<(), Decline>| d.unwrap_err().rule;
        assert_eq!(rule(r.check_wallet(true, "standard", 1, CNY, None)), "wallet_frozen");
        assert_eq!(rule(r.check_wallet(false, "basic", 200_001, CNY, None)), "per_payment_limit");
        assert_eq!(rule(r.check_wallet(false, "standard", 1, CNY, Some(20))), "wallet_velocity");
        assert_eq!(rule(r.check_bad_codes(GuessScope::Terminal, 10)), "terminal_bad_codes");
        assert_eq!(rule(r.check_bad_codes(GuessScope::Key, 10)), "key_bad_codes");
        assert_eq!(rule(r.check_bad_codes(GuessScope::Merchant, 50)), "merchant_bad_codes");
        assert!(r.check_bad_codes(GuessScope::Merchant, 49).is_ok());
        assert_eq!(rule(r.check_terminal(Some(120))), "terminal_velocity");
        let d = r.check_daily("basic", 500_001, CNY).unwrap_err();
        assert_eq!(
            (d.code, d.rule, d.observed, d.threshold),
            ("limit_exceeded", "daily_limit", 500_001, 500_000)
        );
    }

    #[test]
    fn limits_are_exact_at_the_edge() {
        let r = Rules::default();
        assert!(r.check_wallet(false, "basic", 200_000, CNY, None).is_ok());
        assert!(r.check_daily("basic", 500_000, CNY).is_ok());
        assert!(!r.needs_pin(100_000, CNY));
        assert!(r.needs_pin(100_001, CNY));
        // JPY has no minor unit: ¥1000 is 1000.
        assert!(r.needs_pin(1_001, Currency::from_code("JPY").unwrap()));
    }

    #[test]
    fn velocity_off_counts_nothing() {
        let r = Rules::default();
        assert!(r.check_terminal(None).is_ok());
        assert!(r.check_wallet(false, "standard", 1, CNY, None).is_ok());
    }

    #[test]
    fn an_unknown_tier_gets_the_lowest_limits() {
        let r = Rules::default();
        assert_eq!(r.limits("gone"), TierLimits { per_payment: 2_000, daily: 5_000 });
    }

    #[test]
    fn bad_rule_sets_are_refused() {
        let mut r = Rules::default();
        r.tiers.remove("standard");
        assert!(r.validate().is_err());
        let mut r = Rules::default();
        r.tiers.insert("Bad Name".into(), TierLimits { per_payment: 1, daily: 1 });
        assert!(r.validate().is_err());
        let mut r = Rules::default();
        r.tiers.insert("odd".into(), TierLimits { per_payment: 10, daily: 5 });
        assert!(r.validate().is_err());
        let mut r = Rules::default();
        r.velocity.wallet_per_minute = 0;
        assert!(r.validate().is_err());
        let json = r#"{"password_free":1,"tiers":{},"velocity":{},"extra":1}"#;
        assert!(serde_json::from_str::<Rules>(json).is_err());
    }
}
