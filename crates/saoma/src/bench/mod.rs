//! `saoma bench`: payments per second through the real HTTP API, as tills send them
//! (signed requests over keep-alive connections), against a `saoma serve` it starts (or
//! one at `--url`), on SQLite or PostgreSQL. In the same invocation, interleaved with its
//! own runs, it measures its yardsticks (pgbench tpcb-like and the raw SQL payment on
//! PostgreSQL; the raw SQLite loop, one commit per payment and batched), prints every
//! ratio, and after each run checks the books (trial balance, wallet debits = merchant
//! credits + fees, no payment charged twice), failing loudly if one is off.
//!
//! It never touches a database it did not make, except the one of `--url`'s server.

mod chart;
mod load;
mod reference;
mod report;
mod seed;
mod server;
mod setup;

use anyhow::Context;
use load::{Fixture, Plan, Scenario};
use report::{Latency, RefReport, Report, RunReport};
use saoma_client::{Client, Credentials};
use saoma_store::{LedgerFlows, Store};
use setup::{Seeded, database_under_test, seed_all, yardsticks};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The counter a batching writer exports: database transactions that carried payments.
/// Payments per flush = payments / its increase. Without it each payment is one
/// transaction.
pub const FLUSH_METRIC: &str = "saoma_store_flushes_total";

const ADMIN: &str = "bench-admin-token";
const PIN: &str = "246810";
/// Tills of the hot merchant at most (one per connection up to this).
const HOT_TILLS_MAX: usize = 64;
/// Wallets that get a session for the `mpm` scenario.
const SESSIONS_MAX: usize = 20_000;

/// An arrival rate: payments per second, or half of the best closed-loop rate measured.
#[derive(Clone, Copy, Debug)]
pub enum Rate {
    PerSecond(f64),
    HalfOfPeak,
}

fn parse_rate(s: &str) -> Result<Rate, String> {
    match s {
        "half" => Ok(Rate::HalfOfPeak),
        _ => match s.parse::<f64>() {
            Ok(r) if r > 0.0 && r.is_finite() => Ok(Rate::PerSecond(r)),
            _ => Err("a rate is payments per second (a positive number) or `half`".into()),
        },
    }
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The database: `sqlite:///path.db` (must not exist yet) or a PostgreSQL server
    /// `postgres://user@host:port` (the bench makes its own databases there and drops them).
    /// Default: a temporary SQLite file.
    #[arg(long, env = "SAOMA_BENCH_DATABASE")]
    database: Option<String>,
    /// Drive a server already running there instead of starting one; `--database` must then
    /// be that server's database (it is seeded directly) and SAOMA_ADMIN_TOKEN its token.
    #[arg(long)]
    url: Option<String>,
    /// Scenarios, in order: spread (1,000 merchants, 100,000 wallets), hot (every payment to
    /// one merchant), mixed (with queries, refunds, cancellations), mpm (wallets pay
    /// merchants' QR codes).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "spread,hot")]
    scenario: Vec<Scenario>,
    /// Connections (requests in flight), one run per count and scenario: `1,8,32,64`.
    #[arg(long, value_delimiter = ',', default_value = "32")]
    connections: Vec<usize>,
    /// Seconds measured per run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of load before the measuring starts, per run.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Adds an open-loop run per scenario at this arrival rate (payments per second, or
    /// `half`: half of the scenario's best closed-loop rate), at the headline connections;
    /// latency runs from each payment's due time.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<Rate>,
    /// Merchants.
    #[arg(long, default_value_t = 1000)]
    merchants: usize,
    /// Wallets.
    #[arg(long, default_value_t = 100_000)]
    wallets: usize,
    /// Skip the reference measurements.
    #[arg(long)]
    no_references: bool,
    /// pgbench's scale factor (10 = 1,000,000 accounts, 10 branches).
    #[arg(long, default_value_t = 10)]
    pgbench_scale: u32,
    /// Writes throughput.svg and latency.svg into this folder.
    #[arg(long)]
    charts: Option<PathBuf>,
    /// Prints one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Also writes the report's tables as Markdown to this file (as docs/performance.md
    /// shows them).
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// The databases a run made, dropped at the end whatever happened.
struct Made {
    postgres_server: Option<String>,
    databases: Vec<String>,
}

impl Made {
    async fn drop_all(&self) {
        if let Some(server) = &self.postgres_server {
            for name in &self.databases {
                if let Err(e) = saoma_store::drop_postgres_database(&format!("{server}/{name}")).await {
                    eprintln!("saoma bench: could not drop database {name}: {e}");
                }
            }
        }
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.scenario.is_empty(), "name at least one scenario");
    anyhow::ensure!(
        !args.connections.is_empty() && !args.connections.contains(&0),
        "connections must be positive"
    );
    anyhow::ensure!(args.duration > 0, "--duration must be positive");
    anyhow::ensure!(args.merchants > 0 && args.wallets > 0, "--merchants and --wallets must be positive");
    let tmp = tempfile::tempdir()?;
    let mut made = Made { postgres_server: None, databases: Vec::new() };
    let outcome = bench(&args, tmp.path(), &mut made).await;
    made.drop_all().await;
    let report = outcome?;
    if let Some(dir) = &args.charts {
        draw(dir, &report)?;
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, report::markdown(&report))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    if args.json {
        // The table still goes to the terminal; the object alone to stdout.
        eprint!("{}", report::text(&report));
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::text(&report));
    }
    Ok(())
}

async fn bench(args: &BenchArgs, tmp: &Path, made: &mut Made) -> anyhow::Result<Report> {
    let is_postgres = args
        .database
        .as_deref()
        .is_some_and(|d| d.starts_with("postgres://") || d.starts_with("postgresql://"));
    let backend = if is_postgres { "postgres" } else { "sqlite" };
    let database = database_under_test(args, is_postgres, tmp, made).await?;
    let admin_token = match &args.url {
        Some(_) => std::env::var("SAOMA_ADMIN_TOKEN").context("--url needs SAOMA_ADMIN_TOKEN")?,
        None => ADMIN.to_string(),
    };
    let target = match &args.url {
        Some(url) => server::Target::external(url),
        None => {
            let master_key = hex::encode(rand::random::<[u8; 32]>());
            server::Target::spawn(&database, &admin_token, &master_key, &tmp.join("server.log")).await?
        }
    };
    // The bench's own writes (seeding, codes) need no batching, whatever the server does.
    let store = Store::open_with(&database, false).await.context("opening the database to seed it")?;
    let admin = Client::new(&target.url, Credentials::Admin(admin_token.clone()));

    let (seeded, seed_seconds) = seed_all(args, &admin, &store).await?;

    let (pgbench, raw) = match args.no_references {
        true => (None, None),
        false => yardsticks(args, &database, is_postgres, tmp, made).await?,
    };

    let Seeded { tills, hot_tills, wallets, sessions } = seeded;
    let mut fixture = Fixture {
        url: target.url.clone(),
        admin_token,
        tills,
        hot_tills,
        sessions,
        codes: seed::Codes::new(),
    };
    let mut books =
        Books { store: &store, before: store.ledger_flows().await?, checks: 0, wallets, best_rate: 0.0 };
    let warmup = Duration::from_secs(args.warmup);
    let duration = Duration::from_secs(args.duration);
    let mut runs: Vec<RunReport> = Vec::new();
    let mut references: Vec<RefReport> = Vec::new();
    let mut run_no = 0;
    let hot_refs = args.scenario.first() == Some(&Scenario::Hot);
    for &c in &args.connections {
        // References and runs alternate, so a drift of the machine touches all alike.
        if let Some(p) = &pgbench {
            let clients = clients_for(&database, c).await?;
            let m = p.run(clients, duration, &format!("pgbench tpcb c={clients}")).await?;
            references.push(ref_report(report::PGBENCH, c, clients, m));
        }
        for (i, &scenario) in args.scenario.iter().enumerate() {
            run_no += 1;
            let plan = Plan { scenario, connections: c, warmup, duration, rate: None, run_no, codes: 0 };
            runs.push(one_run(&mut fixture, &mut books, plan, &store, target.pid()).await?);
            // Between the scenarios, the raw loop: interleaved.
            if i == 0
                && let Some(r) = &raw
            {
                let clients = if is_postgres { clients_for(&database, c).await? } else { 1 };
                references.extend(raw_references(r, is_postgres, c, clients, duration, hot_refs).await?);
            }
        }
    }
    let headline_c =
        if args.connections.contains(&32) { 32 } else { *args.connections.last().unwrap_or(&32) };
    if let Some(rate) = args.rate {
        for &scenario in &args.scenario {
            let per_s = match rate {
                Rate::PerSecond(r) => r,
                Rate::HalfOfPeak => half_of_peak(&runs, scenario),
            };
            run_no += 1;
            let plan = Plan {
                scenario,
                connections: headline_c,
                warmup,
                duration,
                rate: Some(per_s),
                run_no,
                codes: 0,
            };
            runs.push(one_run(&mut fixture, &mut books, plan, &store, target.pid()).await?);
        }
    }
    if let Some(r) = &raw {
        r.close().await;
    }
    store.close().await;
    target.stop().await?;

    let seed = report::Seed { merchants: args.merchants, wallets: args.wallets, seconds: seed_seconds };
    let measured =
        Measured { backend, connections: headline_c, runs, references, invariant_checks: books.checks };
    assemble(args, seed, measured)
}

/// What the runs measured, for the report.
struct Measured {
    backend: &'static str,
    /// The headline connection count.
    connections: usize,
    runs: Vec<RunReport>,
    references: Vec<RefReport>,
    invariant_checks: usize,
}

/// The report: the headline run (the first scenario, closed loop, at the headline
/// connection count), every run and reference, and the ratios and targets between them.
fn assemble(args: &BenchArgs, seed: report::Seed, m: Measured) -> anyhow::Result<Report> {
    let first = args.scenario[0].name();
    let headline = m
        .runs
        .iter()
        .find(|r| r.scenario == first && r.connections == m.connections && r.rate.is_none())
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no headline run"))?;
    let mut report = Report {
        scenario: first,
        backend: m.backend,
        connections: m.connections,
        payments_per_s: headline.payments_per_s,
        p50_ms: headline.latency.p50_ms,
        p99_ms: headline.latency.p99_ms,
        p999_ms: headline.latency.p999_ms,
        errors: headline.errors,
        reference: Default::default(),
        ratios: Default::default(),
        targets: Vec::new(),
        invariant_checks: m.invariant_checks,
        seed,
        runs: m.runs,
        references: m.references,
        machine: report::Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            duration_s: args.duration as f64,
            warmup_s: args.warmup as f64,
        },
    };
    report::compare(&mut report);
    Ok(report)
}

/// The raw SQL payment loop at `connections`: on PostgreSQL over `clients` connections, on
/// SQLite on one, with one commit per payment, batched, and with a sync on every commit.
async fn raw_references(
    r: &saoma_store::reference::Reference,
    is_postgres: bool,
    connections: usize,
    clients: usize,
    duration: Duration,
    hot: bool,
) -> anyhow::Result<Vec<RefReport>> {
    if is_postgres {
        let m = reference::raw(r, clients, duration, 1, hot, &format!("raw SQL c={clients}")).await?;
        return Ok(vec![ref_report(report::RAW_SQL, connections, clients, m)]);
    }
    let one = reference::raw(r, 1, duration, 1, hot, "sqlite one commit").await?;
    let batched = reference::raw(r, 1, duration, reference::SQLITE_BATCH, hot, "sqlite batched").await?;
    // What a sync on every commit costs (synchronous = FULL).
    r.set_sqlite_synchronous(true).await?;
    let full = reference::raw(r, 1, duration, 1, hot, "sqlite one commit FULL").await;
    r.set_sqlite_synchronous(false).await?;
    Ok(vec![
        ref_report(report::SQLITE_ONE, connections, 1, one),
        ref_report(report::SQLITE_BATCHED, connections, 1, batched),
        ref_report(report::SQLITE_ONE_FULL, connections, 1, full?),
    ])
}

/// Half of the best closed-loop rate of `scenario` among `runs` (at least one a second).
fn half_of_peak(runs: &[RunReport], scenario: Scenario) -> f64 {
    let same = runs.iter().filter(|r| r.scenario == scenario.name() && r.rate.is_none());
    let peak = same.map(|r| r.payments_per_s).fold(0.0, f64::max);
    (peak / 2.0).max(1.0)
}

fn ref_report(
    name: &'static str,
    connections: usize,
    clients: usize,
    mut m: reference::Measured,
) -> RefReport {
    let latency = Latency::of(&mut m.latencies_us);
    RefReport {
        name,
        connections,
        clients,
        per_s: m.per_s,
        latency,
        commits: m.commits,
        latencies_us: m.latencies_us,
    }
}

/// How many connections a PostgreSQL reference may open for `wanted`: what the server
/// can still accept less a margin, since Saoma's own pools stay open beside it.
async fn clients_for(database: &str, wanted: usize) -> anyhow::Result<usize> {
    let free = saoma_store::reference::postgres_free_connections(database).await?;
    let clients = wanted.min((free - 5).max(1) as usize);
    if clients < wanted {
        eprintln!(
            "saoma bench: PostgreSQL takes only {free} more connections: the reference runs with {clients} clients, not {wanted}"
        );
    }
    Ok(clients)
}

/// One run of Saoma: codes issued, the load, then the books checked.
async fn one_run(
    fx: &mut Fixture,
    books: &mut Books<'_>,
    mut plan: Plan,
    store: &Store,
    server_pid: Option<u32>,
) -> anyhow::Result<RunReport> {
    let postgres = store.backend() == saoma_store::Backend::Postgres;
    let seconds = (plan.warmup + plan.duration).as_secs_f64() + 1.0;
    if plan.scenario.uses_codes() {
        // Enough codes for the run: at the rate asked, or at well above the best so far.
        let per_s = plan.rate.unwrap_or_else(|| (books.best_rate * 2.0).max(3000.0));
        plan.codes = (per_s * seconds) as usize;
        let target = fx.codes.issued + plan.codes;
        fx.codes.issue_up_to(store, &books.wallets, target).await?;
    }
    let label = match plan.rate {
        Some(r) => format!("{} c={} {r:.0}/s", plan.scenario.name(), plan.connections),
        None => format!("{} c={}", plan.scenario.name(), plan.connections),
    };
    let mut result = load::run(fx, &plan, server_pid, &label).await?;
    books.check(&result).await.with_context(|| format!("INVARIANT BROKEN after the {label} run"))?;
    let per_payment =
        |cpu: Option<f64>| cpu.filter(|_| result.payments > 0).map(|s| s * 1000.0 / result.payments as f64);
    let payments_per_s = result.payments as f64 / result.seconds;
    books.best_rate = books.best_rate.max(payments_per_s);
    let w = result.window;
    for e in &result.error_samples {
        eprintln!("saoma bench: {label}: {e}");
    }
    if result.codes_ran_out {
        eprintln!(
            "saoma bench: {label}: the pre-issued codes ran out before the end; figures cover less time"
        );
    }
    let latency = Latency::of(&mut result.latencies_us);
    Ok(RunReport {
        scenario: plan.scenario.name(),
        connections: plan.connections,
        rate: plan.rate,
        payments: result.payments,
        seconds: result.seconds,
        payments_per_s,
        latency,
        errors: result.errors,
        other_ops_per_s: result.other_ops as f64 / (plan.warmup + plan.duration).as_secs_f64(),
        server_cpu_ms_per_payment: per_payment(w.server_cpu_s),
        // PostgreSQL's processes; nothing to read for SQLite, which runs inside the server.
        db_cpu_ms_per_payment: per_payment(Some(w.db_cpu_s).filter(|_| postgres)),
        bench_cpu_ms_per_payment: per_payment(w.bench_cpu_s),
        machine_busy: w.machine_busy,
        payments_per_flush: match w.flushes {
            Some(f) if f > 0.0 => w.payments_metric.unwrap_or(result.payments as f64) / f,
            _ => 1.0,
        },
        flush_metric: w.flushes.is_some(),
        payments_counted_by_server: w.payments_metric,
        codes_ran_out: result.codes_ran_out,
        invariants: "ok",
        latencies_us: result.latencies_us,
    })
}

/// The books between runs: what the ledger said after the last run.
struct Books<'a> {
    store: &'a Store,
    before: LedgerFlows,
    checks: usize,
    /// The seeded wallets, in order (code `k` belongs to wallet `k mod len`).
    wallets: Vec<String>,
    /// The best closed-loop payments per second so far (sizes the next run's codes).
    best_rate: f64,
}

impl Books<'_> {
    /// Checks the invariants after a run; an error names the one that broke.
    async fn check(&mut self, run: &load::LoadResult) -> anyhow::Result<()> {
        let store = self.store;
        for line in store.trial_balance().await? {
            anyhow::ensure!(
                line.debits == line.credits,
                "trial balance off in {}: debits {} credits {}",
                line.currency,
                line.debits,
                line.credits
            );
        }
        let drift = store.accounts_out_of_step().await?;
        anyhow::ensure!(drift.is_empty(), "balances disagree with their postings: {drift:?}");
        let f = store.ledger_flows().await?;
        anyhow::ensure!(
            f.payment_wallet_debits == f.payment_merchant_credits + f.payment_fee_credits,
            "wallet debits {} != merchant credits {} + fees {}",
            f.payment_wallet_debits,
            f.payment_merchant_credits,
            f.payment_fee_credits
        );
        anyhow::ensure!(
            f.refund_wallet_credits == f.refund_merchant_debits + f.refund_fee_debits,
            "refunded to wallets {} != taken from merchants {} + fees returned {}",
            f.refund_wallet_credits,
            f.refund_merchant_debits,
            f.refund_fee_debits
        );
        anyhow::ensure!(
            f.payment_wallet_debits == f.charged_amount && f.payment_fee_credits == f.charged_fees,
            "the ledger's payment postings ({} paid, {} fees) disagree with the charged payments ({}, {})",
            f.payment_wallet_debits,
            f.payment_fee_credits,
            f.charged_amount,
            f.charged_fees
        );
        anyhow::ensure!(
            f.refund_wallet_credits == f.refunded_amount,
            "refund postings {} != refunds recorded {}",
            f.refund_wallet_credits,
            f.refunded_amount
        );
        anyhow::ensure!(
            f.payments_charged_twice == 0,
            "{} payments were charged twice",
            f.payments_charged_twice
        );
        anyhow::ensure!(
            f.payment_entries == f.charged_payments,
            "{} payment entries for {} charged payments",
            f.payment_entries,
            f.charged_payments
        );
        let charged = f.charged_payments - self.before.charged_payments;
        anyhow::ensure!(
            charged == run.succeeded_all as i64,
            "the server answered {} payments succeeded but {charged} were charged",
            run.succeeded_all
        );
        let distinct: HashSet<&String> = run.payment_ids.iter().collect();
        anyhow::ensure!(
            distinct.len() == run.payment_ids.len(),
            "{} answers named a payment already answered",
            run.payment_ids.len() - distinct.len()
        );
        self.before = f;
        self.checks += 1;
        Ok(())
    }
}

/// Draws the charts of a report into `dir`.
fn draw(dir: &Path, report: &Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    let mut series: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for r in report.runs.iter().filter(|r| r.rate.is_none()) {
        let name = format!("saoma {}", r.scenario);
        if !names.contains(&name) {
            names.push(name.clone());
            series.push((name.clone(), Vec::new()));
        }
        if let Some(s) = series.iter_mut().find(|(n, _)| *n == name) {
            s.1.push((r.connections, r.payments_per_s));
        }
    }
    for r in &report.references {
        let name = r.name.to_string();
        match series.iter_mut().find(|(n, _)| *n == name) {
            Some(s) => s.1.push((r.connections, r.per_s)),
            None => series.push((name, vec![(r.connections, r.per_s)])),
        }
    }
    let title =
        format!("throughput on {} ({} cores, load generator included)", report.backend, report.machine.cores);
    chart::throughput(&dir.join("throughput.svg"), &title, &series)?;
    let mut dists: Vec<(String, &[u64])> = Vec::new();
    for r in report.runs.iter().filter(|r| r.connections == report.connections) {
        let name = match r.rate {
            Some(rate) => format!("saoma {} at {rate:.0}/s (open loop)", r.scenario),
            None => format!("saoma {} (closed loop)", r.scenario),
        };
        dists.push((name, &r.latencies_us));
    }
    for r in report.references.iter().filter(|r| r.connections == report.connections) {
        if r.name != report::SQLITE_BATCHED {
            dists.push((r.name.to_string(), &r.latencies_us));
        }
    }
    let title = format!("latency at {} connections on {}", report.connections, report.backend);
    chart::latency(&dir.join("latency.svg"), &title, &dists)?;
    Ok(())
}
