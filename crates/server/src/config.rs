//! How the server is set up: every setting, its default, and a `Debug` that prints no secret.

use crate::{limits, util, webhooks};
use std::net::SocketAddr;
use std::sync::Arc;

/// How long after the charge a till may reverse a paid sale, unless the operator says.
pub const TERMINAL_REVERSAL_WINDOW_DEFAULT: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// The longest reversal window an operator may set: a till's reversal stays a correction
/// made at the counter, never a refund days later.
pub const TERMINAL_REVERSAL_WINDOW_MAX: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How the server is set up. Its `Debug` names every setting but prints no secret.
#[derive(Clone)]
pub struct Config {
    /// `sqlite:///path.db` or `postgres://...`.
    pub database_url: String,
    /// The operator's bearer token; the admin API is off without one.
    pub admin_token: Option<String>,
    /// The scheme clients sign in `@target-uri` (`https` behind a TLS proxy).
    pub public_scheme: String,
    /// `SAOMA_WEBHOOK_ALLOW_PRIVATE=1`: webhook URLs may be plain http and point at
    /// loopback or private addresses (development and tests only).
    pub webhook_allow_private: bool,
    /// Waits between webhook attempts; after the last, a delivery is dead-lettered.
    pub webhook_retry_delays: Vec<std::time::Duration>,
    /// The master key (64 hex characters) that seals secrets at rest; required.
    pub master_key: Option<String>,
    /// Settles yesterday of every merchant in the background (on by default).
    pub settle_daily: bool,
    /// Lets an operator settle a business day that is not over (tests and drills only).
    pub settle_open_days: bool,
    /// Load balancers whose `X-Forwarded-For` is believed (`SAOMA_TRUSTED_PROXIES`): the
    /// client address they name is the one rate-limited and audited.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Requests per second from one address (`SAOMA_RATE_LIMIT_IP`, 0 = off).
    pub rate_limit_per_ip: u32,
    /// Requests per second with one API key (`SAOMA_RATE_LIMIT_KEY`, 0 = off).
    pub rate_limit_per_key: u32,
    /// The velocity rules (payments per minute, bad codes per terminal); `false` with
    /// `SAOMA_RISK_VELOCITY=off` for load tests. Limits and PIN rules stay on.
    pub risk_velocity: bool,
    /// PIN checks (Argon2id, about 19 MiB each) running at once on this node
    /// (`SAOMA_PIN_CHECKS`); more wait, then get 503.
    pub pin_checks_in_flight: usize,
    /// How often this node closes pending payments past their expiry.
    pub expiry_sweep_every: std::time::Duration,
    /// How long after the charge a till (terminal key) may still reverse a paid sale
    /// (`SAOMA_TERMINAL_REVERSAL_WINDOW_SECONDS`); after it, a refund needs a manager or
    /// merchant key.
    pub terminal_reversal_window: std::time::Duration,
    /// A separate address serving `/metrics` to anyone who can reach it (`--metrics-listen`,
    /// for a private network); on the API's address `/metrics` needs an operator's token.
    pub metrics_listen: Option<SocketAddr>,
    /// Resolves webhook hosts; the system's resolver when `None`. Each attempt resolves
    /// once, vets the answer, and connects only to it.
    pub webhook_lookup: Option<Arc<dyn webhooks::HostLookup>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Every field is named here, so a new one cannot be printed without a thought.
        let Config {
            database_url,
            admin_token,
            public_scheme,
            webhook_allow_private,
            webhook_retry_delays,
            master_key,
            settle_daily,
            settle_open_days,
            trusted_proxies,
            rate_limit_per_ip,
            rate_limit_per_key,
            risk_velocity,
            terminal_reversal_window,
            metrics_listen,
            webhook_lookup,
            pin_checks_in_flight,
            expiry_sweep_every,
        } = self;
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("database_url", &util::without_password(database_url))
            .field("admin_token", &hidden(admin_token))
            .field("public_scheme", public_scheme)
            .field("webhook_allow_private", webhook_allow_private)
            .field("webhook_retry_delays", webhook_retry_delays)
            .field("master_key", &hidden(master_key))
            .field("settle_daily", settle_daily)
            .field("settle_open_days", settle_open_days)
            .field("trusted_proxies", trusted_proxies)
            .field("rate_limit_per_ip", rate_limit_per_ip)
            .field("rate_limit_per_key", rate_limit_per_key)
            .field("risk_velocity", risk_velocity)
            .field("terminal_reversal_window", terminal_reversal_window)
            .field("metrics_listen", metrics_listen)
            .field("webhook_lookup", &webhook_lookup.as_ref().map_or("system", |_| "custom"))
            .field("pin_checks_in_flight", pin_checks_in_flight)
            .field("expiry_sweep_every", expiry_sweep_every)
            .finish()
    }
}

impl Config {
    /// A configuration with the defaults of DESIGN.md for everything but the database.
    pub fn new(database_url: &str) -> Config {
        Config {
            database_url: database_url.to_string(),
            admin_token: None,
            public_scheme: "http".into(),
            webhook_allow_private: false,
            webhook_retry_delays: webhooks::STANDARD_RETRY_DELAYS.to_vec(),
            master_key: None,
            settle_daily: true,
            settle_open_days: false,
            risk_velocity: true,
            pin_checks_in_flight: 8,
            expiry_sweep_every: std::time::Duration::from_secs(5),
            trusted_proxies: Vec::new(),
            rate_limit_per_ip: limits::PER_IP_DEFAULT,
            rate_limit_per_key: limits::PER_KEY_DEFAULT,
            terminal_reversal_window: TERMINAL_REVERSAL_WINDOW_DEFAULT,
            metrics_listen: None,
            webhook_lookup: None,
        }
    }
}
