//! The server under test: a `saoma serve` child process the bench starts (so its CPU can
//! be read from `/proc`), or a server already running at `--url`. Also the machine's and
//! the database's CPU counters, and the server's metrics.

use anyhow::Context;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `/proc` counts CPU time in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// The server the load goes to.
pub struct Target {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    child: Option<Child>,
}

impl Target {
    /// Starts `saoma serve` (this same binary) on `database` with the limits a load test
    /// needs off (velocity rules and rate limits: one load generator is every till), and
    /// waits until it answers. Its log goes to `log` (errors only).
    pub async fn spawn(
        database: &str,
        admin_token: &str,
        master_key: &str,
        log: &Path,
    ) -> anyhow::Result<Target> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let exe = std::env::current_exe().context("finding the saoma binary")?;
        let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(exe)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database", database])
            .env("SAOMA_ADMIN_TOKEN", admin_token)
            .env("SAOMA_MASTER_KEY", master_key)
            .env("SAOMA_RISK_VELOCITY", "off")
            .env("SAOMA_RATE_LIMIT_IP", "0")
            .env("SAOMA_RATE_LIMIT_KEY", "0")
            .env("SAOMA_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .context("starting saoma serve")?;
        let target = Target { url: format!("http://127.0.0.1:{port}"), child: Some(child) };
        target.wait_healthy(log).await?;
        Ok(target)
    }

    /// A server someone else runs.
    pub fn external(url: &str) -> Target {
        Target { url: url.trim_end_matches('/').to_string(), child: None }
    }

    async fn wait_healthy(&self, log: &Path) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if http.get(format!("{}/healthz", self.url)).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let tail = std::fs::read_to_string(log).unwrap_or_default();
        anyhow::bail!("saoma serve did not come up in 30 s; its log:\n{tail}")
    }

    /// The server process's id, when the bench started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the child: SIGTERM, then SIGKILL if it is still there after 10 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        for _ in 0..200 {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child.kill()?;
        child.wait()?;
        Ok(())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // A bench that fails half-way must not leave its server running.
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// CPU seconds used so far by one process (user + system), if it can be read.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    ticks_of_stat(&stat).map(|t| t as f64 / TICKS_PER_SECOND)
}

/// utime + stime of a `/proc/PID/stat` line (fields 14 and 15, after the command name,
/// which may hold spaces and is closed by the last parenthesis).
fn ticks_of_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds used so far by every process named `name` (PostgreSQL's backends are all
/// `postgres`); processes that end in between are lost, so take it over short windows.
pub fn processes_cpu_seconds(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    let wanted = format!("({name})");
    let mut ticks = 0;
    for entry in dir.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            && stat.contains(&wanted)
        {
            ticks += ticks_of_stat(&stat).unwrap_or(0);
        }
    }
    ticks as f64 / TICKS_PER_SECOND
}

/// The machine's CPU counters: (busy, total) in ticks, from the `cpu` line of /proc/stat.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    // idle and iowait are fields 4 and 5.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// A counter of the server's Prometheus text, summed over its label sets that contain
/// `label` (all when empty); `None` when the server does not export it.
pub fn metric(text: &str, name: &str, label: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let series_name = series.split('{').next().unwrap_or(series);
        if series_name == name && series.contains(label) {
            *found.get_or_insert(0.0) += value.trim().parse::<f64>().unwrap_or(0.0);
        }
    }
    found
}

/// The server's metrics text (on the API's address, with the operator's token).
pub async fn metrics_text(url: &str, admin_token: &str) -> anyhow::Result<String> {
    let r = reqwest::Client::new()
        .get(format!("{url}/metrics"))
        .bearer_auth(admin_token)
        .send()
        .await
        .context("reading /metrics")?;
    anyhow::ensure!(r.status().is_success(), "/metrics answered {}", r.status());
    Ok(r.text().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks_past_a_command_with_spaces() {
        let stat = "42 (saoma serve) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1 1";
        assert_eq!(ticks_of_stat(stat), Some(300));
    }

    #[test]
    fn sums_a_counter_over_its_labels() {
        let text = "# TYPE saoma_payments_total counter\n\
                    saoma_payments_total{status=\"succeeded\"} 12\n\
                    saoma_payments_total{status=\"failed\"} 3\n";
        assert_eq!(metric(text, "saoma_payments_total", "succeeded"), Some(12.0));
        assert_eq!(metric(text, "saoma_payments_total", ""), Some(15.0));
        assert_eq!(metric(text, "saoma_store_flushes_total", ""), None);
    }
}
