//! The load: `connections` keep-alive connections, each a till (or a wallet) sending
//! signed requests one after the other. Closed loop by default (each connection sends as
//! soon as its last answer came); with a rate, open loop: payment `k` is due at
//! `start + k / rate` whatever happened before, and its latency runs from that due time,
//! so a slow server's queue shows in the figures instead of slowing the load down.

use super::seed::Till;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use saoma_api as api;
use saoma_client::{Client, Credentials};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What the load does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Tills of 1,000 merchants scan payment codes of 100,000 wallets.
    Spread,
    /// Every payment goes to one merchant, through as many of its tills as connections.
    Hot,
    /// Payments with queries, refunds and cancellations among them.
    Mixed,
    /// Customers pay merchants' static QR codes from their wallets.
    Mpm,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Spread => "spread",
            Scenario::Hot => "hot",
            Scenario::Mixed => "mixed",
            Scenario::Mpm => "mpm",
        }
    }

    /// True when its payments spend pre-issued payment codes.
    pub fn uses_codes(self) -> bool {
        self != Scenario::Mpm
    }
}

/// One run's shape.
pub struct Plan {
    pub scenario: Scenario,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Payments per second, open loop; `None` for closed loop.
    pub rate: Option<f64>,
    /// Distinguishes the order numbers of runs on one database.
    pub run_no: usize,
    /// Codes issued for this run (payments past them stop the run early).
    pub codes: usize,
}

/// What the load generator needs of the set-up.
pub struct Fixture {
    pub url: String,
    /// The operator's token: `/metrics` on the API's address is an operator's.
    pub admin_token: String,
    pub tills: Vec<Till>,
    /// The hot merchant's tills (the first merchant's, one per connection at most).
    pub hot_tills: Vec<Till>,
    pub sessions: Vec<String>,
    pub codes: super::seed::Codes,
}

/// What a run measured. Figures count payments that started inside the measuring window
/// (after the warm-up); `succeeded_all` counts every success, warm-up included, for the
/// checks against the database.
#[derive(Default)]
pub struct LoadResult {
    pub payments: u64,
    pub seconds: f64,
    pub latencies_us: Vec<u64>,
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// Queries, refunds and cancellations done (`mixed`).
    pub other_ops: u64,
    pub succeeded_all: u64,
    pub payment_ids: Vec<String>,
    pub codes_ran_out: bool,
    /// What the counters did over the measuring window.
    pub window: Window,
}

/// CPU seconds and metric counts over the measuring window; the machine's busy share.
#[derive(Default, Clone, Copy)]
pub struct Window {
    pub server_cpu_s: Option<f64>,
    pub db_cpu_s: f64,
    pub bench_cpu_s: Option<f64>,
    pub machine_busy: f64,
    pub flushes: Option<f64>,
    pub payments_metric: Option<f64>,
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u64>,
    errors: u64,
    error_samples: Vec<String>,
    other_ops: u64,
    succeeded_all: u64,
    payment_ids: Vec<String>,
    codes_ran_out: bool,
}

/// Runs one plan against the fixture. `server_pid` is read for CPU when known.
pub async fn run(
    fx: &Fixture,
    plan: &Plan,
    server_pid: Option<u32>,
    label: &str,
) -> anyhow::Result<LoadResult> {
    let started = Instant::now() + Duration::from_millis(50);
    let window_start = started + plan.warmup;
    let end = window_start + plan.duration;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tills = Arc::new(match plan.scenario {
        Scenario::Hot => fx.hot_tills.clone(),
        _ => fx.tills.clone(),
    });
    let sessions = Arc::new(fx.sessions.clone());
    let codes: Arc<Vec<String>> = Arc::new(match plan.scenario.uses_codes() {
        true => (0..plan.codes).map(|k| fx.codes.code(k + fx.codes.issued - plan.codes)).collect(),
        false => Vec::new(),
    });
    let mut workers = Vec::new();
    for _ in 0..plan.connections {
        // One reqwest client per connection: its keep-alive connection is this till's line.
        let http = Client::new(&fx.url, Credentials::None);
        let ctx = Worker {
            http,
            tills: tills.clone(),
            sessions: sessions.clone(),
            codes: codes.clone(),
            next: next.clone(),
            done: done.clone(),
            stop: stop.clone(),
            scenario: plan.scenario,
            rate: plan.rate,
            run_no: plan.run_no,
            started,
            window_start,
            end,
        };
        workers.push(tokio::spawn(ctx.work()));
    }
    let bar = progress_bar(label, plan.warmup + plan.duration);
    let ticker = {
        let (bar, done) = (bar.clone(), done.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let elapsed = Instant::now().saturating_duration_since(started);
                let n = done.load(Ordering::Relaxed);
                bar.set_position(elapsed.as_millis() as u64);
                bar.set_message(format!(
                    "{n} payments, {:.0}/s",
                    n as f64 / elapsed.as_secs_f64().max(0.001)
                ));
            }
        })
    };
    tokio::time::sleep_until(window_start.into()).await;
    let w0 = read_window(fx, server_pid).await;
    tokio::time::sleep_until(end.into()).await;
    let w1 = read_window(fx, server_pid).await;
    let mut result = LoadResult { seconds: plan.duration.as_secs_f64(), ..LoadResult::default() };
    for w in workers {
        let r = w.await?;
        result.latencies_us.extend(r.latencies_us);
        result.errors += r.errors;
        result.other_ops += r.other_ops;
        result.succeeded_all += r.succeeded_all;
        result.payment_ids.extend(r.payment_ids);
        result.codes_ran_out |= r.codes_ran_out;
        for s in r.error_samples {
            if result.error_samples.len() < 5 {
                result.error_samples.push(s);
            }
        }
    }
    ticker.abort();
    bar.finish_and_clear();
    result.payments = result.latencies_us.len() as u64;
    result.window = Window {
        server_cpu_s: difference(w1.server_cpu_s, w0.server_cpu_s),
        db_cpu_s: w1.db_cpu_s - w0.db_cpu_s,
        bench_cpu_s: difference(w1.bench_cpu_s, w0.bench_cpu_s),
        machine_busy: match (w0.machine_ticks, w1.machine_ticks) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => (b1 - b0) as f64 / (t1 - t0) as f64,
            _ => 0.0,
        },
        flushes: difference(w1.flushes, w0.flushes),
        payments_metric: difference(w1.payments_metric, w0.payments_metric),
    };
    Ok(result)
}

/// Counters at one instant.
struct Reading {
    server_cpu_s: Option<f64>,
    db_cpu_s: f64,
    bench_cpu_s: Option<f64>,
    machine_ticks: Option<(u64, u64)>,
    flushes: Option<f64>,
    payments_metric: Option<f64>,
}

async fn read_window(fx: &Fixture, server_pid: Option<u32>) -> Reading {
    let metrics = super::server::metrics_text(&fx.url, &fx.admin_token).await.ok();
    let m = |name: &str, label: &str| metrics.as_deref().and_then(|t| super::server::metric(t, name, label));
    Reading {
        server_cpu_s: server_pid.and_then(super::server::process_cpu_seconds),
        db_cpu_s: super::server::processes_cpu_seconds("postgres"),
        bench_cpu_s: super::server::process_cpu_seconds(std::process::id()),
        machine_ticks: super::server::machine_ticks(),
        flushes: m(super::FLUSH_METRIC, ""),
        payments_metric: m("saoma_payments_total", "succeeded"),
    }
}

fn difference(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    a.zip(b).map(|(a, b)| a - b)
}

fn progress_bar(label: &str, length: Duration) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(length.as_millis() as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix:>22} [{bar:30}] {elapsed:>3} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    bar
}

struct Worker {
    http: Client,
    tills: Arc<Vec<Till>>,
    sessions: Arc<Vec<String>>,
    codes: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    scenario: Scenario,
    rate: Option<f64>,
    run_no: usize,
    started: Instant,
    window_start: Instant,
    end: Instant,
}

impl Worker {
    async fn work(self) -> WorkerResult {
        let mut r = WorkerResult::default();
        while !self.stop.load(Ordering::Relaxed) {
            let k = self.next.fetch_add(1, Ordering::Relaxed);
            let due = match self.rate {
                Some(rate) => self.started + Duration::from_secs_f64(k as f64 / rate),
                None => Instant::now(),
            };
            if due >= self.end {
                break;
            }
            if self.scenario.uses_codes() && k >= self.codes.len() {
                r.codes_ran_out = true;
                self.stop.store(true, Ordering::Relaxed);
                break;
            }
            tokio::time::sleep_until(due.into()).await;
            let counted = due >= self.window_start;
            match self.pay(k).await {
                Ok(payment) => {
                    let latency = due.elapsed();
                    r.succeeded_all += 1;
                    self.done.fetch_add(1, Ordering::Relaxed);
                    if counted {
                        r.latencies_us.push(latency.as_micros() as u64);
                    }
                    r.payment_ids.push(payment.id.clone());
                    if self.scenario == Scenario::Mixed {
                        match self.follow_up(k, &payment).await {
                            Ok(n) => r.other_ops += n,
                            Err(e) => note_error(&mut r, counted, format!("follow-up of payment {k}: {e:#}")),
                        }
                    }
                }
                Err(e) => note_error(&mut r, counted, format!("payment {k}: {e:#}")),
            }
        }
        r
    }

    fn till(&self, k: usize) -> &Till {
        &self.tills[k % self.tills.len()]
    }

    async fn pay(&self, k: usize) -> anyhow::Result<api::Payment> {
        let amount = 100 + (k % 900) as i64;
        let reference = format!("b{}-{k}", self.run_no);
        let p = match self.scenario {
            Scenario::Mpm => {
                let token = &self.sessions[k % self.sessions.len()];
                let till = self.till(k);
                let qr = till.qr_payload.clone().ok_or_else(|| anyhow::anyhow!("no merchant QR code"))?;
                self.http
                    .with_credentials(Credentials::Session(token.clone()))
                    .pay_qr(&api::QrPayRequest {
                        qr_payload: qr,
                        amount: Some(amount),
                        pin: None,
                        client_ref: Some(reference),
                    })
                    .await?
            }
            _ => {
                self.http
                    .with_credentials(self.till(k).credentials.clone())
                    .create_payment(&api::CreatePaymentRequest {
                        out_trade_no: reference,
                        amount,
                        currency: "CNY".into(),
                        subject: "Bench".into(),
                        items: None,
                        payment_code: Some(self.codes[k].clone()),
                        expires_in: None,
                    })
                    .await?
            }
        };
        anyhow::ensure!(p.status == "succeeded", "payment {} is {}", p.id, p.status);
        Ok(p)
    }

    /// `mixed`: every second payment is queried, every tenth half refunded, every
    /// twentieth cancelled (refunded in full), as tills do after a sale.
    async fn follow_up(&self, k: usize, p: &api::Payment) -> anyhow::Result<u64> {
        let till = self.http.with_credentials(self.till(k).credentials.clone());
        let manager = self.http.with_credentials(self.till(k).manager.clone());
        let mut ops = 0;
        if k.is_multiple_of(2) {
            let q = till.payment(&p.id, 0).await?;
            anyhow::ensure!(q.id == p.id, "the query answered another payment");
            ops += 1;
        }
        if k % 10 == 1 {
            manager.refund(&p.id, &format!("r{}-{k}", self.run_no), p.amount / 2).await?;
            ops += 1;
        } else if k % 20 == 3 {
            let c = manager.cancel(&p.id).await?;
            anyhow::ensure!(c.status == "refunded", "a cancelled paid payment is {}", c.status);
            ops += 1;
        }
        Ok(ops)
    }
}

fn note_error(r: &mut WorkerResult, counted: bool, message: String) {
    if counted {
        r.errors += 1;
    }
    if r.error_samples.len() < 3 {
        r.error_samples.push(message);
    }
}
