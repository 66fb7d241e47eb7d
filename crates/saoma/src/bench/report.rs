//! The figures: percentiles, the ratios against the references and the targets,
//! printed as a table or as one JSON object.

use serde::Serialize;
use std::collections::BTreeMap;

/// Percentiles of latencies in microseconds, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// From unsorted samples (sorted in place).
    pub fn of(samples: &mut [u64]) -> Latency {
        samples.sort_unstable();
        let pct = |p: f64| match samples.len() {
            0 => 0.0,
            n => samples[(((n - 1) as f64) * p).round() as usize] as f64 / 1000.0,
        };
        Latency { p50_ms: pct(0.5), p99_ms: pct(0.99), p999_ms: pct(0.999), max_ms: pct(1.0) }
    }
}

/// One run of Saoma.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub scenario: &'static str,
    pub connections: usize,
    /// The open loop's arrival rate; absent for a closed loop.
    pub rate: Option<f64>,
    pub payments: u64,
    pub seconds: f64,
    pub payments_per_s: f64,
    #[serde(flatten)]
    pub latency: Latency,
    pub errors: u64,
    /// Queries, refunds and cancellations per second (`mixed`).
    pub other_ops_per_s: f64,
    pub server_cpu_ms_per_payment: Option<f64>,
    /// PostgreSQL's processes (all of them on the machine).
    pub db_cpu_ms_per_payment: Option<f64>,
    pub bench_cpu_ms_per_payment: Option<f64>,
    /// Share of the machine's CPU busy during the window, 0-1.
    pub machine_busy: f64,
    pub payments_per_flush: f64,
    /// True when the server exports a flush counter; otherwise each payment is its own
    /// database transaction and `payments_per_flush` is 1 by construction.
    pub flush_metric: bool,
    /// Payments the server's `saoma_payments_total` counted in the window.
    pub payments_counted_by_server: Option<f64>,
    pub codes_ran_out: bool,
    pub invariants: &'static str,
    #[serde(skip)]
    pub latencies_us: Vec<u64>,
}

/// One reference measurement.
#[derive(Debug, Clone, Serialize)]
pub struct RefReport {
    pub name: &'static str,
    /// The connection count of the Saoma runs it is compared with.
    pub connections: usize,
    /// Connections it really used (fewer when PostgreSQL had no more to give; one on
    /// SQLite, which has one writer).
    pub clients: usize,
    pub per_s: f64,
    #[serde(flatten)]
    pub latency: Latency,
    pub commits: u64,
    #[serde(skip)]
    pub latencies_us: Vec<u64>,
}

/// The whole invocation.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The headline run's scenario (the first asked for), at `connections`.
    pub scenario: &'static str,
    pub backend: &'static str,
    pub connections: usize,
    pub payments_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub errors: u64,
    /// Reference name → per second, at the headline's connections.
    pub reference: BTreeMap<String, f64>,
    /// Ratio name → value, at the headline's connections.
    pub ratios: BTreeMap<String, f64>,
    /// The targets: name → (value, target, met).
    pub targets: Vec<Target>,
    /// Invariant checks that ran (one per run) and passed.
    pub invariant_checks: usize,
    pub seed: Seed,
    pub runs: Vec<RunReport>,
    pub references: Vec<RefReport>,
    pub machine: Machine,
}

#[derive(Debug, Serialize)]
pub struct Target {
    pub name: String,
    pub value: f64,
    pub target: String,
    pub met: bool,
}

#[derive(Debug, Serialize)]
pub struct Seed {
    pub merchants: usize,
    pub wallets: usize,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
}

/// Reference names, as they appear in `reference` and in the ratios.
pub const PGBENCH: &str = "pgbench_tpcb";
pub const RAW_SQL: &str = "raw_sql_one_tx";
pub const SQLITE_ONE: &str = "sqlite_one_commit";
pub const SQLITE_BATCHED: &str = "sqlite_batched";
pub const SQLITE_ONE_FULL: &str = "sqlite_one_commit_full";

/// Fills `reference`, `ratios` and `targets` from the runs at `connections`.
pub fn compare(report: &mut Report) {
    let c = report.connections;
    let refs: Vec<&RefReport> = report.references.iter().filter(|r| r.connections == c).collect();
    for r in &refs {
        report.reference.insert(r.name.to_string(), r.per_s);
    }
    let closed: Vec<&RunReport> =
        report.runs.iter().filter(|r| r.connections == c && r.rate.is_none()).collect();
    for run in &closed {
        for r in &refs {
            report
                .ratios
                .insert(format!("{}_vs_{}", run.scenario, r.name), run.payments_per_s / r.per_s.max(1e-9));
            if r.name == PGBENCH || r.name == RAW_SQL {
                report.ratios.insert(
                    format!("p99_{}_vs_{}", run.scenario, r.name),
                    run.latency.p99_ms / r.latency.p99_ms.max(1e-9),
                );
            }
        }
    }
    let find = |s: &str| closed.iter().find(|r| r.scenario == s);
    if let (Some(hot), Some(spread)) = (find("hot"), find("spread")) {
        report.ratios.insert("hot_vs_spread".into(), hot.payments_per_s / spread.payments_per_s.max(1e-9));
    }
    let mut target = |name: &str, at_least: Option<f64>, at_most: Option<f64>| {
        if let Some(&value) = report.ratios.get(name) {
            let (text, met) = match (at_least, at_most) {
                (Some(t), _) => (format!(">= {t}"), value >= t),
                (_, Some(t)) => (format!("<= {t}"), value <= t),
                _ => return,
            };
            report.targets.push(Target { name: name.to_string(), value, target: text, met });
        }
    };
    target("spread_vs_pgbench_tpcb", Some(1.5), None);
    target("hot_vs_spread", Some(0.95), None);
    target("p99_spread_vs_pgbench_tpcb", None, Some(1.0));
    target("hot_vs_sqlite_one_commit", Some(5.0), None);
    for run in report.runs.iter().filter(|r| r.rate.is_some()) {
        report.targets.push(Target {
            name: format!("{} at {:.0}/s open loop: p99_ms", run.scenario, run.rate.unwrap_or(0.0)),
            value: run.latency.p99_ms,
            target: "<= 20".into(),
            met: run.latency.p99_ms <= 20.0,
        });
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.digits$}"))
}

/// A column of a report table: its heading in the text report and in Markdown, its
/// width in the text report, and whether it holds numbers (aligned right).
struct Column(&'static str, &'static str, usize, bool);

/// A table of the report, written as fixed-width text or as Markdown from the same cells.
struct Table {
    columns: &'static [Column],
    rows: Vec<Vec<String>>,
}

impl Table {
    fn text(&self, out: &mut String) {
        use std::fmt::Write;
        let line = |cells: Vec<&str>| {
            let padded =
                self.columns.iter().zip(cells).map(|(&Column(_, _, width, number), cell)| match number {
                    true => format!("{cell:>width$}"),
                    false => format!("{cell:<width$}"),
                });
            padded.collect::<Vec<_>>().join(" ").trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(self.columns.iter().map(|c| c.0).collect()));
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
        }
    }

    fn markdown(&self, out: &mut String) {
        use std::fmt::Write;
        let line = |cells: Vec<&str>| format!("| {} |", cells.join(" | "));
        let _ = writeln!(out, "{}", line(self.columns.iter().map(|c| c.1).collect()));
        let _ = writeln!(
            out,
            "{}",
            line(self.columns.iter().map(|c| if c.3 { "---:" } else { "---" }).collect())
        );
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
        }
    }
}

/// Saoma's runs, one row each.
fn runs_table(report: &Report) -> Table {
    const COLUMNS: &[Column] = &[
        Column("scenario", "scenario", 8, false),
        Column("conns", "connections", 5, true),
        Column("loop", "loop", 11, false),
        Column("payments/s", "payments/s", 10, true),
        Column("p50 ms", "p50 ms", 8, true),
        Column("p99 ms", "p99 ms", 8, true),
        Column("p99.9 ms", "p99.9 ms", 8, true),
        Column("errors", "errors", 7, true),
        Column("server ms", "server CPU ms/payment", 10, true),
        Column("db ms", "PostgreSQL CPU ms/payment", 9, true),
        Column("bench ms", "bench CPU ms/payment", 9, true),
        Column("/flush", "payments/flush", 6, true),
        Column("busy", "machine busy", 5, true),
    ];
    let rows = report.runs.iter().map(|r| {
        vec![
            r.scenario.to_string(),
            r.connections.to_string(),
            r.rate.map_or_else(|| "closed".into(), |v| format!("open, {v:.0}/s")),
            format!("{:.1}", r.payments_per_s),
            format!("{:.1}", r.latency.p50_ms),
            format!("{:.1}", r.latency.p99_ms),
            format!("{:.1}", r.latency.p999_ms),
            r.errors.to_string(),
            opt(r.server_cpu_ms_per_payment, 2),
            opt(r.db_cpu_ms_per_payment, 2),
            opt(r.bench_cpu_ms_per_payment, 2),
            format!("{:.2}", r.payments_per_flush),
            format!("{:.0}%", r.machine_busy * 100.0),
        ]
    });
    Table { columns: COLUMNS, rows: rows.collect() }
}

/// The references measured beside the runs, one row each.
fn references_table(report: &Report) -> Table {
    const COLUMNS: &[Column] = &[
        Column("reference", "reference", 24, false),
        Column("conns", "connections", 5, true),
        Column("clients", "clients", 7, true),
        Column("per s", "per second", 10, true),
        Column("p50 ms", "p50 ms", 8, true),
        Column("p99 ms", "p99 ms", 8, true),
        Column("p99.9 ms", "p99.9 ms", 8, true),
    ];
    let rows = report.references.iter().map(|r| {
        vec![
            r.name.to_string(),
            r.connections.to_string(),
            r.clients.to_string(),
            format!("{:.1}", r.per_s),
            format!("{:.1}", r.latency.p50_ms),
            format!("{:.1}", r.latency.p99_ms),
            format!("{:.1}", r.latency.p999_ms),
        ]
    });
    Table { columns: COLUMNS, rows: rows.collect() }
}

/// The human-readable report.
pub fn text(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "saoma bench: {} backend, {} merchants, {} wallets (seeded in {:.1} s), {} s per run after {} s warm-up, {} cores",
        report.backend,
        report.seed.merchants,
        report.seed.wallets,
        report.seed.seconds,
        report.machine.duration_s,
        report.machine.warmup_s,
        report.machine.cores
    );
    let _ = writeln!(out);
    runs_table(report).text(&mut out);
    let _ = writeln!(
        out,
        "(server/db/bench ms: CPU milliseconds per payment of the server process, of PostgreSQL, of this load generator)"
    );
    if report.runs.iter().any(|r| !r.flush_metric) {
        let _ = writeln!(
            out,
            "(/flush: the server exports no {} counter: each payment is its own database transaction, 1.00 by construction)",
            super::FLUSH_METRIC
        );
    }
    if !report.references.is_empty() {
        let _ = writeln!(out);
        references_table(report).text(&mut out);
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "ratios at {} connections:", report.connections);
    for (name, value) in &report.ratios {
        let _ = writeln!(out, "  {name:<40} {value:>8.2}");
    }
    if !report.targets.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "targets of issue #13:");
        for t in &report.targets {
            let _ = writeln!(
                out,
                "  {:<40} {:>8.2}  target {:<7} {}",
                t.name,
                t.value,
                t.target,
                if t.met { "met" } else { "MISSED" }
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "invariants: checked after each of the {} runs (trial balance, wallet debits = merchant credits + fees, no duplicate payment): ok",
        report.invariant_checks
    );
    out
}

/// The report's tables in Markdown: the runs, the references, the ratios and the targets.
pub fn markdown(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    runs_table(report).markdown(&mut out);
    if !report.references.is_empty() {
        let _ = writeln!(out);
        references_table(report).markdown(&mut out);
    }
    if !report.ratios.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Ratios at {} connections:", report.connections);
        let _ = writeln!(out);
        let _ = writeln!(out, "| ratio | value |");
        let _ = writeln!(out, "| --- | ---: |");
        for (name, value) in &report.ratios {
            let _ = writeln!(out, "| `{name}` | {value:.2} |");
        }
    }
    if !report.targets.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "| target | value | target | met |");
        let _ = writeln!(out, "| --- | ---: | --- | --- |");
        for t in &report.targets {
            let met = if t.met { "yes" } else { "**no**" };
            let _ = writeln!(out, "| {} | {:.2} | {} | {met} |", t.name, t.value, t.target);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_sample_at_their_rank() {
        let mut samples: Vec<u64> = (1..=1000).map(|v| v * 1000).collect();
        let l = Latency::of(&mut samples);
        assert_eq!((l.p50_ms, l.p99_ms, l.max_ms), (501.0, 990.0, 1000.0));
        assert_eq!(Latency::of(&mut []).p99_ms, 0.0);
    }

    fn run(scenario: &'static str, per_s: f64) -> RunReport {
        RunReport {
            scenario,
            connections: 32,
            rate: None,
            payments: (per_s * 10.0) as u64,
            seconds: 10.0,
            payments_per_s: per_s,
            latency: Latency { p50_ms: 40.0, p99_ms: 60.0, p999_ms: 70.0, max_ms: 80.0 },
            errors: 0,
            other_ops_per_s: 0.0,
            server_cpu_ms_per_payment: Some(0.9),
            db_cpu_ms_per_payment: Some(1.8),
            bench_cpu_ms_per_payment: None,
            machine_busy: 0.97,
            payments_per_flush: 0.5,
            flush_metric: true,
            payments_counted_by_server: None,
            codes_ran_out: false,
            invariants: "ok",
            latencies_us: Vec::new(),
        }
    }

    /// The Markdown that goes into docs/performance.md carries each run, each reference,
    /// the ratios between them and whether each target was met.
    #[test]
    fn markdown_tables_carry_runs_references_ratios_and_targets() {
        let pgbench = RefReport {
            name: PGBENCH,
            connections: 32,
            clients: 32,
            per_s: 2000.0,
            latency: Latency { p50_ms: 10.0, p99_ms: 40.0, p999_ms: 50.0, max_ms: 60.0 },
            commits: 20_000,
            latencies_us: Vec::new(),
        };
        let mut report = Report {
            scenario: "spread",
            backend: "postgres",
            connections: 32,
            payments_per_s: 800.0,
            p50_ms: 40.0,
            p99_ms: 60.0,
            p999_ms: 70.0,
            errors: 0,
            reference: BTreeMap::new(),
            ratios: BTreeMap::new(),
            targets: Vec::new(),
            invariant_checks: 2,
            seed: Seed { merchants: 200, wallets: 20_000, seconds: 2.0 },
            runs: vec![run("spread", 800.0), run("hot", 780.0)],
            references: vec![pgbench],
            machine: Machine { cores: 2, duration_s: 10.0, warmup_s: 1.0 },
        };
        compare(&mut report);
        let md = markdown(&report);
        assert!(
            md.contains(
                "| spread | 32 | closed | 800.0 | 40.0 | 60.0 | 70.0 | 0 | 0.90 | 1.80 | n/a | 0.50 | 97% |"
            ),
            "{md}"
        );
        assert!(md.contains("| pgbench_tpcb | 32 | 32 | 2000.0 | 10.0 | 40.0 | 50.0 |"), "{md}");
        assert!(md.contains("| `spread_vs_pgbench_tpcb` | 0.40 |"), "{md}");
        assert!(md.contains("| spread_vs_pgbench_tpcb | 0.40 | >= 1.5 | **no** |"), "{md}");
        assert!(md.contains("| hot_vs_spread | 0.97 | >= 0.95 | yes |"), "{md}");
        // The text report carries the same cells, in columns.
        let text = text(&report);
        let row = text.lines().find(|l| l.starts_with("spread ")).unwrap_or_default();
        let cells = row.split_whitespace().collect::<Vec<_>>();
        assert_eq!(
            cells,
            [
                "spread", "32", "closed", "800.0", "40.0", "60.0", "70.0", "0", "0.90", "1.80", "n/a",
                "0.50", "97%"
            ],
            "{text}"
        );
        assert!(
            text.lines().any(|l| l.split_whitespace().eq([
                "pgbench_tpcb",
                "32",
                "32",
                "2000.0",
                "10.0",
                "40.0",
                "50.0"
            ])),
            "{text}"
        );
    }
}
