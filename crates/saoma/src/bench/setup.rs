//! Setting up a bench: the database under test, the seed (merchants, tills, wallets,
//! sessions) and the yardsticks measured beside Saoma.

use super::load::Scenario;
use super::{BenchArgs, HOT_TILLS_MAX, Made, PIN, SESSIONS_MAX, reference, seed};
use anyhow::Context;
use saoma_client::Client;
use saoma_store::Store;
use std::path::Path;
use std::time::Instant;

/// The database under test: the one given with `--url`, a new SQLite file, or a new
/// database on the PostgreSQL server given (recorded in `made`, to be dropped).
pub(super) async fn database_under_test(
    args: &BenchArgs,
    is_postgres: bool,
    tmp: &Path,
    made: &mut Made,
) -> anyhow::Result<String> {
    let pid = std::process::id();
    Ok(match (&args.url, &args.database) {
        (Some(_), None) => anyhow::bail!("--url needs --database: the server's database, to seed it"),
        (Some(_), Some(d)) => d.clone(),
        (None, None) => format!("sqlite://{}", tmp.join("bench.db").display()),
        (None, Some(d)) if is_postgres => {
            let server = postgres_server(d);
            made.postgres_server = Some(server.clone());
            let name = format!("saoma_bench_{pid}");
            let url = format!("{server}/{name}");
            saoma_store::create_postgres_database(&url)
                .await
                .with_context(|| format!("making database {name} on {server}"))?;
            made.databases.push(name);
            url
        }
        (None, Some(d)) => {
            let path = d.strip_prefix("sqlite://").unwrap_or(d).split('?').next().unwrap_or_default();
            anyhow::ensure!(
                !Path::new(path).exists(),
                "{path} exists: the bench only runs on a new SQLite file"
            );
            d.clone()
        }
    })
}

/// The yardsticks, each in a database of its own: pgbench (on PostgreSQL, when it is on
/// the path) and the raw SQL payment loop.
pub(super) async fn yardsticks(
    args: &BenchArgs,
    database: &str,
    is_postgres: bool,
    tmp: &Path,
    made: &mut Made,
) -> anyhow::Result<(Option<reference::Pgbench>, Option<saoma_store::reference::Reference>)> {
    let pid = std::process::id();
    let mut pgbench = None;
    let raw_url = if is_postgres {
        let server = postgres_server(database);
        made.postgres_server.get_or_insert_with(|| server.clone());
        if reference::pgbench_available() {
            let name = format!("saoma_bench_pgbench_{pid}");
            saoma_store::create_postgres_database(&format!("{server}/{name}")).await?;
            made.databases.push(name.clone());
            eprintln!("saoma bench: pgbench -i -s {} ...", args.pgbench_scale);
            pgbench = Some(reference::Pgbench::init(&server, &name, args.pgbench_scale, tmp).await?);
        } else {
            eprintln!("saoma bench: pgbench is not on the path: no tpcb-like reference");
        }
        let name = format!("saoma_bench_ref_{pid}");
        saoma_store::create_postgres_database(&format!("{server}/{name}")).await?;
        made.databases.push(name.clone());
        format!("{server}/{name}")
    } else {
        format!("sqlite://{}", tmp.join("reference.db").display())
    };
    let raw =
        saoma_store::reference::Reference::open(&raw_url, args.wallets as u64, args.merchants as u64).await?;
    Ok((pgbench, Some(raw)))
}

/// The server part of a PostgreSQL URL (`postgres://user@host:port`), without a database.
fn postgres_server(url: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    match url[scheme_end..].find('/') {
        Some(i) => url[..scheme_end + i].to_string(),
        None => url.to_string(),
    }
}

/// What the bench seeds before its runs.
pub(super) struct Seeded {
    pub(super) tills: Vec<seed::Till>,
    pub(super) hot_tills: Vec<seed::Till>,
    pub(super) wallets: Vec<String>,
    pub(super) sessions: Vec<String>,
}

/// Seeds the merchants and their tills (through the API, as an operator onboards them),
/// the hot merchant's extra tills, the wallets and, for `mpm`, their sessions; returns
/// them and the seconds it took.
pub(super) async fn seed_all(
    args: &BenchArgs,
    admin: &Client,
    store: &Store,
) -> anyhow::Result<(Seeded, f64)> {
    eprintln!("saoma bench: seeding {} merchants and {} wallets...", args.merchants, args.wallets);
    let started = Instant::now();
    let wants_qr = args.scenario.contains(&Scenario::Mpm);
    let tills = seed::merchants(admin, args.merchants, wants_qr).await?;
    eprintln!("saoma bench: merchants made in {:.1} s", started.elapsed().as_secs_f64());
    let hot_tills = match (args.scenario.contains(&Scenario::Hot), tills.first()) {
        (true, Some(first)) => {
            let count = args.connections.iter().copied().max().unwrap_or(1).min(HOT_TILLS_MAX);
            seed::more_tills(admin, first, count).await?
        }
        _ => tills.iter().take(1).cloned().collect(),
    };
    let wallets = seed::wallets(store, args.wallets, PIN).await?;
    let sessions = match wants_qr {
        true => seed::sessions(store, &wallets, SESSIONS_MAX).await?,
        false => Vec::new(),
    };
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("saoma bench: seeded in {seconds:.1} s");
    Ok((Seeded { tills, hot_tills, wallets, sessions }, seconds))
}
