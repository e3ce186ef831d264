//! `truc bench` as an operator runs it, scaled down: the real binary starts its own relay (a
//! child `truc serve`) on each backend and drives every phase through the mTLS edge. The figures
//! themselves are not judged here (speed is for the bench to report, not for a test to assert);
//! what is checked is that every phase ran to the end and that its report adds up: every package
//! counted, percentiles in order, the 1 MB package stored once whatever its recipients, the
//! scale phase reaching the entries asked for, the amqp / embedded ratio the two runs' own.

// Test code: a panic here is a failed test, not a crash on the message path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::Value;

fn num(v: &Value, path: &str) -> f64 {
    let mut at = v;
    for key in path.split('.') {
        at = &at[key];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number in the report: {v:#}"))
}

/// One backend's report: each phase complete and consistent.
fn check_report(r: &Value, broker: &str) {
    assert_eq!(r["broker"], broker, "{r:#}");
    assert!(num(r, "openssl_rsa2048_sign_per_s") > 0.0, "{r:#}");
    for (phase, packages, offered) in [("throughput", 300.0, None), ("latency", 200.0, Some(200.0))]
    {
        let p = &r[phase];
        assert_eq!(num(p, "packages"), packages, "{phase}: {r:#}");
        let seconds = num(p, "seconds");
        assert!(seconds > 0.0, "{phase}: {r:#}");
        // The rate is the count over the time, not a figure from elsewhere.
        let rate = num(p, "packages_per_s");
        assert!(
            (rate - packages / seconds).abs() < 1e-6 * rate.max(1.0),
            "{phase}: {r:#}"
        );
        assert_eq!(p["offered_per_s"].as_f64(), offered, "{phase}: {r:#}");
        let (p50, p99, max) = (num(p, "p50_ms"), num(p, "p99_ms"), num(p, "max_ms"));
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{phase}: {r:#}");
        let ratio = num(p, "ratio_to_rsa_sign");
        let expected = rate / num(r, "openssl_rsa2048_sign_per_s");
        assert!((ratio - expected).abs() < 1e-9, "{phase}: {r:#}");
    }
    let f = &r["fanout"];
    assert_eq!(num(f, "recipients"), 30.0, "{r:#}");
    let bytes = num(f, "package_bytes");
    assert!(bytes > 1_000_000.0, "{r:#}");
    assert!(num(f, "accept_seconds") > 0.0, "{r:#}");
    // Stored once: the archive grew by about one sealed package, not by one per recipient
    // (with 30 recipients a copy each would be 30 MB). The embedded backend keeps its queue
    // entries in the store beside the archive, not in it.
    let growth = num(f, "archive_growth_bytes");
    assert!(growth >= bytes && growth < 2.0 * bytes, "{r:#}");
    let s = &r["scale"];
    assert!(num(s, "queued_entries") >= 120.0, "{r:#}");
    assert!(
        num(s, "relay_rss_mb") > 0.0 && num(s, "relay_peak_rss_mb") > 0.0,
        "{r:#}"
    );
    assert!(num(s, "data_dir_mb") > 0.0, "{r:#}");
    assert!(
        num(r, "relay_peak_rss_mb") >= num(s, "relay_rss_mb"),
        "{r:#}"
    );
}

#[test]
fn a_scaled_down_bench_on_both_backends_runs_every_phase_and_reports_consistent_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_truc"))
        .env_remove("TRUC_CONFIG")
        .env_remove("TRUC_DATA")
        .env_remove("RUST_LOG")
        .args([
            "--lang",
            "en",
            "bench",
            "--json",
            "--broker",
            "both",
            "--units",
            "800",
            "--units-each",
            "2",
            "--concurrency",
            "8",
            "--packages",
            "300",
            "--rate",
            "200",
            "--rate-packages",
            "200",
            "--fanout",
            "30",
            "--queued",
            "120",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run truc bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "truc bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    check_report(&report["embedded"], "embedded");
    let amqp = &report["amqp"];
    check_report(amqp, "amqp");
    assert_eq!(amqp["shared_log"], true, "{report:#}");
    assert!(num(amqp, "mailboxes_declared_ms") > 0.0, "{report:#}");
    let ratio = num(&report, "throughput_ratio_amqp_to_embedded");
    let expected = num(amqp, "throughput.packages_per_s")
        / num(&report["embedded"], "throughput.packages_per_s");
    assert!((ratio - expected).abs() < 1e-9, "{report:#}");
    // The bench cleans up after itself on RabbitMQ: its objects (prefix `truc-bench.`) are gone.
    if let Ok(list) = Command::new("rabbitmqctl")
        .args(["list_queues", "name", "--quiet"])
        .output()
        && list.status.success()
    {
        let names = String::from_utf8_lossy(&list.stdout);
        assert!(
            !names.lines().any(|l| l.starts_with("truc-bench.")),
            "bench queues left on RabbitMQ: {names}"
        );
    }
    // Progress went to stderr, the report alone to stdout (the JSON parsed above).
    assert!(stderr.contains("broker: amqp"), "{stderr}");
}
