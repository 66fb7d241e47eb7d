//! `saoma serve`: the server's settings from the command line and the environment, the
//! master key, and a clean stop on SIGTERM or Ctrl-C.

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct ServeArgs {
    #[arg(long, env = "SAOMA_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// `sqlite:///abs/path.db` or `postgres://user@host/db` (default: ./saoma-data/saoma.db).
    #[arg(long, env = "SAOMA_DATABASE_URL")]
    database: Option<String>,
    /// The scheme clients sign (`https` behind a TLS-terminating proxy).
    #[arg(long, env = "SAOMA_PUBLIC_SCHEME", default_value = "http")]
    public_scheme: String,
    /// A separate address (e.g. `10.0.0.5:9090`, on a private network) serving `/metrics`
    /// without a token; on the API's address `/metrics` needs an operator's token.
    #[arg(long, env = "SAOMA_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
}

pub fn default_database() -> anyhow::Result<String> {
    std::fs::create_dir_all("saoma-data").context("creating ./saoma-data")?;
    let path = std::fs::canonicalize("saoma-data")?.join("saoma.db");
    Ok(format!("sqlite://{}", path.display()))
}

/// `SAOMA_MASTER_KEY`, when set and not blank.
pub fn master_key_from_env() -> Option<String> {
    std::env::var("SAOMA_MASTER_KEY").ok().map(|k| k.trim().to_string()).filter(|k| !k.is_empty())
}

/// The key file beside a SQLite database (`DB.master-key`); none for PostgreSQL.
pub fn master_key_file(database_url: &str) -> Option<String> {
    let path = database_url.strip_prefix("sqlite://")?;
    Some(format!("{}.master-key", path.split('?').next().unwrap_or(path)))
}

/// `SAOMA_MASTER_KEY`, or for SQLite a key file beside the database (made on first use,
/// readable only by its owner). PostgreSQL deployments must set the variable.
pub fn master_key(database_url: &str) -> anyhow::Result<String> {
    if let Some(k) = master_key_from_env() {
        return Ok(k);
    }
    let Some(path) = master_key_file(database_url) else {
        bail!("set SAOMA_MASTER_KEY (64 hex characters) to run on PostgreSQL");
    };
    if let Ok(k) = std::fs::read_to_string(&path) {
        return Ok(k.trim().to_string());
    }
    let key = hex::encode(rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(
        &mut options.open(&path).with_context(|| format!("creating {path}"))?,
        key.as_bytes(),
    )?;
    tracing::warn!(%path, "SAOMA_MASTER_KEY is not set: made a master key file beside the database. Back it up; the secrets cannot be read without it.");
    Ok(key)
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let database_url = match args.database {
        Some(d) => d,
        None => default_database()?,
    };
    let admin_token = std::env::var("SAOMA_ADMIN_TOKEN").ok().filter(|t| !t.is_empty());
    if admin_token.is_none() {
        tracing::warn!("SAOMA_ADMIN_TOKEN is not set: the admin API is off.");
    }
    let master_key = Some(master_key(&database_url)?);
    let config = saoma_server::Config {
        master_key,
        admin_token,
        public_scheme: args.public_scheme,
        webhook_allow_private: std::env::var("SAOMA_WEBHOOK_ALLOW_PRIVATE").is_ok_and(|v| v == "1"),
        risk_velocity: risk_velocity()?,
        trusted_proxies: trusted_proxies()?,
        rate_limit_per_ip: per_second("SAOMA_RATE_LIMIT_IP")?.unwrap_or(saoma_server::RATE_LIMIT_PER_IP),
        rate_limit_per_key: per_second("SAOMA_RATE_LIMIT_KEY")?.unwrap_or(saoma_server::RATE_LIMIT_PER_KEY),
        pin_checks_in_flight: pin_checks()?,
        terminal_reversal_window: terminal_reversal_window()?,
        metrics_listen: args.metrics_listen,
        ..saoma_server::Config::new(&database_url)
    };
    if !config.risk_velocity {
        tracing::warn!("SAOMA_RISK_VELOCITY=off: the velocity rules are off (limits and PIN rules stay on).");
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let server = saoma_server::start(config, listener).await?;
    tracing::info!(url = %server.url(), "Saoma is taking payments.");
    if let Some(at) = server.metrics_addr {
        tracing::info!(%at, "Metrics are served on their own address.");
    }
    shutdown_signal().await;
    tracing::info!("Shutting down: finishing requests in flight.");
    server.stop().await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// `SAOMA_RISK_VELOCITY`: `on` (the default) or `off` (load tests and benchmarks).
fn risk_velocity() -> anyhow::Result<bool> {
    match std::env::var("SAOMA_RISK_VELOCITY").as_deref() {
        Err(_) | Ok("") | Ok("on") => Ok(true),
        Ok("off") => Ok(false),
        Ok(other) => anyhow::bail!("SAOMA_RISK_VELOCITY is \"on\" or \"off\", not {other:?}"),
    }
}

/// `SAOMA_TERMINAL_REVERSAL_WINDOW_SECONDS`: how long after the charge a till may reverse
/// a paid sale (0: never; a refund then always needs a manager or merchant key).
fn terminal_reversal_window() -> anyhow::Result<std::time::Duration> {
    const NAME: &str = "SAOMA_TERMINAL_REVERSAL_WINDOW_SECONDS";
    match std::env::var(NAME) {
        Err(_) => Ok(saoma_server::TERMINAL_REVERSAL_WINDOW_DEFAULT),
        Ok(v) => v
            .trim()
            .parse()
            .map(std::time::Duration::from_secs)
            .with_context(|| format!("{NAME} is a whole number of seconds")),
    }
}

/// `SAOMA_PIN_CHECKS`: PIN checks (Argon2id, about 19 MiB each) at once on this node.
fn pin_checks() -> anyhow::Result<usize> {
    match std::env::var("SAOMA_PIN_CHECKS") {
        Err(_) => Ok(saoma_server::Config::new("").pin_checks_in_flight),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=1024).contains(&n) => Ok(n),
            _ => anyhow::bail!("SAOMA_PIN_CHECKS is a whole number from 1 to 1024, not {v:?}"),
        },
    }
}

/// A requests-per-second setting: a whole number, 0 for off.
fn per_second(name: &str) -> anyhow::Result<Option<u32>> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("{name} is a whole number of requests per second (0: off)")),
    }
}

/// `SAOMA_TRUSTED_PROXIES`: comma-separated addresses of the load balancers in front.
fn trusted_proxies() -> anyhow::Result<Vec<std::net::IpAddr>> {
    let Ok(list) = std::env::var("SAOMA_TRUSTED_PROXIES") else { return Ok(Vec::new()) };
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().with_context(|| format!("SAOMA_TRUSTED_PROXIES: {s:?} is not an IP address")))
        .collect()
}
