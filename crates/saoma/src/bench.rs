//! `saoma bench`: payments per second through the real HTTP API on an in-process server,
//! with every payment crediting one merchant versus spread over many, on SQLite and on
//! PostgreSQL. The ratio shows whether one hot merchant collapses onto a row lock.

use anyhow::Context;
use futures::future::join_all;
use saoma_api as api;
use saoma_client::{Client, Credentials};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const ADMIN: &str = "bench-admin-token";
const PIN: &str = "246810";

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Payments per run.
    #[arg(long, default_value_t = 2000)]
    payments: usize,
    /// Payments in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Merchant counts to compare (the first against the last).
    #[arg(long, value_delimiter = ',', default_value = "1,1000")]
    merchants: Vec<usize>,
    /// Paying customers (their wallets are distinct rows).
    #[arg(long, default_value_t = 64)]
    customers: usize,
    /// PostgreSQL server for the PostgreSQL runs (a database is made and dropped per run);
    /// `none` skips them.
    #[arg(long, env = "SAOMA_BENCH_POSTGRES", default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
}

struct Figures {
    backend: &'static str,
    merchants: usize,
    payments: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.payments > 0 && args.concurrency > 0 && args.customers > 0,
        "counts must be positive"
    );
    anyhow::ensure!(
        !args.merchants.is_empty() && !args.merchants.contains(&0),
        "merchant counts must be positive"
    );
    let mut backends: Vec<(&'static str, Option<String>)> = vec![("sqlite", None)];
    if args.postgres != "none" {
        backends.push(("postgres", Some(args.postgres.clone())));
    }
    let mut all = Vec::new();
    for (backend, server) in &backends {
        for &merchants in &args.merchants {
            let dir = tempfile::tempdir()?;
            let url = match server {
                None => format!("sqlite://{}", dir.path().join("bench.db").display()),
                Some(s) => {
                    let url = format!("{s}/saoma_bench_{}", std::process::id());
                    let _ = saoma_store::drop_postgres_database(&url).await;
                    if let Err(e) = saoma_store::create_postgres_database(&url).await {
                        eprintln!("PostgreSQL runs skipped: no PostgreSQL at {s} ({e})");
                        break;
                    }
                    url
                }
            };
            let figures = run_one(backend, &url, merchants, &args).await;
            if server.is_some() {
                saoma_store::drop_postgres_database(&url).await?;
            }
            let f = figures?;
            println!(
                "{:<8} merchants={:<5} payments={} in {:.2} s: {:>7.1} payments/s  p50 {:.1} ms  p99 {:.1} ms",
                f.backend,
                f.merchants,
                f.payments,
                f.seconds,
                f.payments as f64 / f.seconds,
                f.p50_ms,
                f.p99_ms
            );
            all.push(f);
        }
    }
    println!();
    for (backend, _) in &backends {
        let runs: Vec<&Figures> = all.iter().filter(|f| f.backend == *backend).collect();
        if let (Some(first), Some(last)) = (runs.first(), runs.last())
            && runs.len() > 1
        {
            let rate = |f: &Figures| f.payments as f64 / f.seconds;
            println!(
                "{backend}: {} merchant(s) / {} merchants = {:.2} (1.00 means a hot merchant costs nothing)",
                first.merchants,
                last.merchants,
                rate(first) / rate(last)
            );
        }
    }
    Ok(())
}

async fn run_one(
    backend: &'static str,
    url: &str,
    merchants: usize,
    args: &BenchArgs,
) -> anyhow::Result<Figures> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let config = saoma_server::Config {
        admin_token: Some(ADMIN.into()),
        settle_daily: false,
        // A benchmark pays faster than any customer: the velocity rules would stop it.
        risk_velocity: false,
        // One client sends everything: per-address and per-key limits would throttle it.
        rate_limit_per_ip: 0,
        rate_limit_per_key: 0,
        master_key: Some(hex::encode(rand::random::<[u8; 32]>())),
        ..saoma_server::Config::new(url)
    };
    let server = saoma_server::start(config, listener).await?;
    let base = server.url();
    let admin = Client::new(&base, Credentials::Admin(ADMIN.into()));
    eprintln!("{backend}: setting up {merchants} merchant(s) and {} customers...", args.customers);
    let tills = join_all((0..merchants).map(|i| make_till(&admin, &base, i))).await;
    let tills: Vec<Client> = tills.into_iter().collect::<anyhow::Result<_>>()?;
    let mut wallets = Vec::new();
    for i in 0..args.customers {
        let phone = format!("1770000{i:04}");
        let c = admin.create_customer(&phone, &format!("Bench {i}"), PIN).await?;
        admin.top_up(&c.id, 1_000_000_000, "CNY", &format!("bench-{i}")).await?;
        wallets.push(Client::new(&base, Credentials::None).wallet_session(&phone, PIN).await?);
    }
    // Codes are issued before the clock starts: the figure is for payments alone.
    let codes = join_all((0..args.payments).map(|i| {
        let wallet = wallets[i % wallets.len()].clone();
        async move { wallet.payment_code().await.map(|c| c.code) }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let codes = Arc::new(codes);
    let tills = Arc::new(tills);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..args.concurrency).map(|_| {
        let (codes, tills, next) = (codes.clone(), tills.clone(), next.clone());
        async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(code) = codes.get(i) else { return Ok::<_, anyhow::Error>(latencies) };
                let till = &tills[i % tills.len()];
                let t = Instant::now();
                let req = api::CreatePaymentRequest {
                    out_trade_no: format!("b-{i}"),
                    amount: 100 + (i % 900) as i64,
                    currency: "CNY".into(),
                    subject: "Bench".into(),
                    items: None,
                    payment_code: Some(code.clone()),
                    expires_in: None,
                };
                let p = till.create_payment(&req).await.with_context(|| format!("payment {i}"))?;
                anyhow::ensure!(p.status == "succeeded", "payment {i} is {}", p.status);
                latencies.push(t.elapsed());
            }
        }
    });
    let results = join_all(workers).await;
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies: Vec<Duration> = Vec::new();
    for r in results {
        latencies.extend(r?);
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    let balanced = admin.trial_balance().await?.balanced;
    anyhow::ensure!(balanced, "the trial balance is off after the run");
    let figures = Figures {
        backend,
        merchants,
        payments: latencies.len(),
        seconds,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    };
    server.stop().await?;
    Ok(figures)
}

async fn make_till(admin: &Client, base: &str, i: usize) -> anyhow::Result<Client> {
    let m = admin
        .create_merchant(&api::CreateMerchantRequest {
            name: format!("Bench Shop {i}"),
            mcc: "5812".into(),
            city: "Hangzhou".into(),
            country: "CN".into(),
            currency: "CNY".into(),
            fee_bps: 60,
            timezone: None,
        })
        .await?;
    admin.approve_merchant(&m.id).await?;
    let t = admin.create_terminal(&m.id, "Till").await?;
    let k = admin.create_key(&m.id, Some(&t.id)).await?;
    Ok(Client::new(base, Credentials::Key { key_id: k.key_id, secret: k.secret }))
}
