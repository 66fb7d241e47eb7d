//! The risk rules on the wire (`GET`/`PUT /v1/admin/risk/rules`): the same fields as
//! `saoma_core::risk::Rules`, which decides with them; the conversions below name every
//! field, so the two cannot drift apart silently.

use saoma_core::risk as core;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A tier's limits, in major units of the payment's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierLimits {
    /// The largest single payment or transfer.
    pub per_payment: i64,
    /// The most a customer may pay out (payments and transfers) in any 24 hours.
    pub daily: i64,
}

/// Velocity rules: counts inside a sliding window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VelocityRules {
    /// Payment attempts one wallet may make per minute.
    pub wallet_per_minute: i64,
    /// Payment attempts one terminal may make per minute.
    pub terminal_per_minute: i64,
    /// Bad payment codes after which a till, or a key that is not a till's, is blocked.
    pub bad_codes: i64,
    /// Bad payment codes after which the whole merchant is blocked (default 50).
    #[serde(default = "merchant_bad_codes_default")]
    pub merchant_bad_codes: i64,
    /// The window, in seconds, the bad codes are counted in.
    pub bad_code_window_seconds: i64,
}

fn merchant_bad_codes_default() -> i64 {
    core::Rules::default().velocity.merchant_bad_codes
}

/// The operator's rule set. `version` is assigned by the server and grows with every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskRules {
    #[serde(default)]
    pub version: i64,
    /// Above this (major units) a consumer-presented payment needs the customer's PIN.
    pub password_free: i64,
    /// Limits by tier name; a customer of a tier not listed gets the lowest limits listed.
    pub tiers: BTreeMap<String, TierLimits>,
    pub velocity: VelocityRules,
}

impl From<core::Rules> for RiskRules {
    fn from(r: core::Rules) -> RiskRules {
        let core::Rules { version, password_free, tiers, velocity } = r;
        let core::Velocity {
            wallet_per_minute,
            terminal_per_minute,
            bad_codes,
            merchant_bad_codes,
            bad_code_window_seconds,
        } = velocity;
        RiskRules {
            version,
            password_free,
            tiers: tiers
                .into_iter()
                .map(|(name, t)| (name, TierLimits { per_payment: t.per_payment, daily: t.daily }))
                .collect(),
            velocity: VelocityRules {
                wallet_per_minute,
                terminal_per_minute,
                bad_codes,
                merchant_bad_codes,
                bad_code_window_seconds,
            },
        }
    }
}

impl From<RiskRules> for core::Rules {
    fn from(r: RiskRules) -> core::Rules {
        let RiskRules { version, password_free, tiers, velocity } = r;
        let VelocityRules {
            wallet_per_minute,
            terminal_per_minute,
            bad_codes,
            merchant_bad_codes,
            bad_code_window_seconds,
        } = velocity;
        core::Rules {
            version,
            password_free,
            tiers: tiers
                .into_iter()
                .map(|(name, t)| (name, core::TierLimits { per_payment: t.per_payment, daily: t.daily }))
                .collect(),
            velocity: core::Velocity {
                wallet_per_minute,
                terminal_per_minute,
                bad_codes,
                merchant_bad_codes,
                bad_code_window_seconds,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_rules_are_the_core_rules_in_json() {
        let rules = core::Rules::default();
        let wire = RiskRules::from(rules.clone());
        assert_eq!(serde_json::to_value(&wire).unwrap(), serde_json::to_value(&rules).unwrap());
        assert_eq!(core::Rules::from(wire), rules);
    }
}
