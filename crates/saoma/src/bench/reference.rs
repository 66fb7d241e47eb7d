//! The yardsticks, measured in the same invocation as Saoma's runs: PostgreSQL's own
//! `pgbench` tpcb-like (a bank debit/credit) on the same server, and the raw SQL payment
//! of `saoma_store::reference` one transaction at a time (PostgreSQL), one commit per
//! payment or batched (SQLite).

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use saoma_store::reference::Reference;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Payments per transaction in the batched SQLite loop.
pub const SQLITE_BATCH: usize = 100;

/// One reference measurement.
pub struct Measured {
    pub per_s: f64,
    pub latencies_us: Vec<u64>,
    pub commits: u64,
}

/// pgbench on a database of its own.
pub struct Pgbench {
    server: PgServer,
    database: String,
    dir: PathBuf,
}

/// Where a PostgreSQL server is, for command-line tools.
struct PgServer {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
}

impl PgServer {
    fn parse(url: &str) -> anyhow::Result<PgServer> {
        let u = reqwest::Url::parse(url).with_context(|| "the PostgreSQL URL does not parse")?;
        Ok(PgServer {
            host: u.host_str().unwrap_or("127.0.0.1").to_string(),
            port: u.port().unwrap_or(5432),
            user: match u.username() {
                "" => "postgres".to_string(),
                name => name.to_string(),
            },
            password: u.password().map(str::to_string),
        })
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.args(["-h", &self.host, "-p", &self.port.to_string(), "-U", &self.user]);
        if let Some(p) = &self.password {
            c.env("PGPASSWORD", p);
        }
        c
    }
}

/// True when `pgbench` is on the path.
pub fn pgbench_available() -> bool {
    Command::new("pgbench").arg("--version").output().is_ok_and(|o| o.status.success())
}

impl Pgbench {
    /// Initialises pgbench's tables at `scale` in `database` (created by the caller on
    /// the server of `url`).
    pub async fn init(url: &str, database: &str, scale: u32, dir: &Path) -> anyhow::Result<Pgbench> {
        let server = PgServer::parse(url)?;
        let mut init = server.command("pgbench");
        init.args(["-i", "-q", "-s", &scale.to_string(), database]);
        let out = tokio::task::spawn_blocking(move || init.output()).await??;
        anyhow::ensure!(
            out.status.success(),
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
        let dir = dir.join("pgbench");
        std::fs::create_dir_all(&dir)?;
        Ok(Pgbench { server, database: database.to_string(), dir })
    }

    /// Runs tpcb-like with `clients` clients for `duration`; throughput from pgbench's
    /// own `tps` line, latencies from its per-transaction log.
    pub async fn run(&self, clients: usize, duration: Duration, label: &str) -> anyhow::Result<Measured> {
        for f in std::fs::read_dir(&self.dir)?.flatten() {
            std::fs::remove_file(f.path())?;
        }
        let mut cmd = self.server.command("pgbench");
        cmd.args([
            "-b",
            "tpcb-like",
            "-c",
            &clients.to_string(),
            "-j",
            &clients.clamp(1, 2).to_string(),
            "-T",
            &duration.as_secs().max(1).to_string(),
            "-l",
            "--log-prefix",
            &self.dir.join("tx").display().to_string(),
            &self.database,
        ]);
        let bar = timer(label, duration);
        let out = tokio::task::spawn_blocking(move || cmd.output()).await??;
        bar.finish_and_clear();
        let stdout = String::from_utf8_lossy(&out.stdout);
        anyhow::ensure!(
            out.status.success(),
            "pgbench failed: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
        let per_s = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| anyhow::anyhow!("no tps line in pgbench's output"))?;
        let mut latencies_us = Vec::new();
        for f in std::fs::read_dir(&self.dir)?.flatten() {
            let text = std::fs::read_to_string(f.path())?;
            // client_id transaction_no time script_no time_epoch time_us: time is the
            // latency in microseconds ("failed" or "skipped" for those that were not).
            latencies_us
                .extend(text.lines().filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()));
        }
        let commits = latencies_us.len() as u64;
        Ok(Measured { per_s, latencies_us, commits })
    }
}

/// Runs the raw payment loop of `saoma_store::reference`.
pub async fn raw(
    reference: &Reference,
    connections: usize,
    duration: Duration,
    batch: usize,
    hot: bool,
    label: &str,
) -> anyhow::Result<Measured> {
    let done = Arc::new(AtomicU64::new(0));
    let bar = timer(label, duration);
    let ticker = {
        let (bar, done) = (bar.clone(), done.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                bar.set_message(format!("{} payments", done.load(Ordering::Relaxed)));
            }
        })
    };
    let run = reference.run(connections, duration, batch, hot, done).await;
    ticker.abort();
    bar.finish_and_clear();
    let run = run?;
    reference.check().await.context("the reference loop's own books")?;
    Ok(Measured {
        per_s: run.payments as f64 / run.seconds,
        latencies_us: run.latencies_us,
        commits: run.commits,
    })
}

/// A progress bar that only tracks time (pgbench and the raw loops run on their own).
fn timer(label: &str, duration: Duration) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(duration.as_millis() as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix:>22} [{bar:30}] {elapsed:>3} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    let started = Instant::now();
    let ticking = bar.clone();
    tokio::spawn(async move {
        while !ticking.is_finished() {
            ticking.set_position(started.elapsed().as_millis() as u64);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    bar
}
