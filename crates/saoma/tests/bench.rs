//! `saoma bench` end to end, tiny: on a temporary SQLite file, with a few merchants and
//! wallets and one second per run, `--json` prints one object with the fields the issue
//! names (scenario, backend, payments_per_s, p50_ms, p99_ms, errors, reference, ratios),
//! the SQLite references and their ratios, every run's invariant check having run and
//! passed, and the charts it was asked for. No figure is judged: speed lives in the bench.

use std::process::Command;

#[test]
fn a_short_sqlite_bench_prints_its_figures_and_checks_its_books() {
    let dir = tempfile::tempdir().unwrap();
    let charts = dir.path().join("charts");
    let out = Command::new(env!("CARGO_BIN_EXE_saoma"))
        .args([
            "bench",
            "--merchants",
            "3",
            "--wallets",
            "200",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--connections",
            "2",
            "--scenario",
            "hot,spread,mixed,mpm",
            "--json",
            "--charts",
        ])
        .arg(&charts)
        .env("SAOMA_LOG", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "saoma bench failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["scenario"], "hot");
    assert_eq!(report["backend"], "sqlite");
    for field in ["payments_per_s", "p50_ms", "p99_ms", "errors"] {
        assert!(report[field].is_number(), "{field} is a number: {report}");
    }
    assert!(report["payments_per_s"].as_f64().unwrap() > 0.0, "payments went through");
    for name in ["sqlite_one_commit", "sqlite_batched", "sqlite_one_commit_full"] {
        assert!(report["reference"][name].as_f64().unwrap() > 0.0, "reference {name}: {report}");
    }
    for name in ["hot_vs_sqlite_one_commit", "hot_vs_spread", "mixed_vs_sqlite_one_commit"] {
        assert!(report["ratios"][name].is_number(), "ratio {name}: {report}");
    }
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "one run per scenario");
    assert_eq!(report["invariant_checks"], 4, "the books were checked after every run");
    for run in runs {
        assert_eq!(run["invariants"], "ok");
        assert_eq!(run["errors"], 0, "no payment failed: {run}");
        assert!(run["payments"].as_u64().unwrap() > 0, "{run}");
        // The server's counters are read (with the operator's token): CPU and flushes.
        assert_eq!(run["flush_metric"], true, "{run}");
        assert!(run["payments_counted_by_server"].as_f64().is_some_and(|n| n > 0.0), "{run}");
    }
    let mixed = runs.iter().find(|r| r["scenario"] == "mixed").unwrap();
    assert!(mixed["other_ops_per_s"].as_f64().unwrap() > 0.0, "mixed queried, refunded and cancelled");
    for chart in ["throughput.svg", "latency.svg"] {
        let svg = std::fs::read_to_string(charts.join(chart)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("saoma hot"), "{chart} is drawn");
    }
}

#[test]
fn a_bench_refuses_an_existing_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kept.db");
    std::fs::write(&db, b"precious").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_saoma"))
        .args(["bench", "--database", &format!("sqlite://{}", db.display()), "--duration", "1"])
        .env("SAOMA_LOG", "error")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
    assert_eq!(std::fs::read(&db).unwrap(), b"precious", "the file is untouched");
}
