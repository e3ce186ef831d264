//! The ops kit against the real tools: `/metrics` of a live relay with traffic passes `promtool
//! check metrics`; `ops/prometheus/alerts.yml` passes `promtool check rules` and its unit tests
//! (`promtool test rules`, each alert fires); the example `prometheus.yml` passes `promtool check
//! config`; the Grafana dashboard and the alerts use only metric names the relay exports, and
//! every alert has its section in `ops/RUNBOOK.md`. promtool comes from Debian's `prometheus`
//! package (ops/test.sh installs it); a missing promtool fails these tests, it does not skip them.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

fn ops_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops")
}

fn promtool(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(ops_dir().join("prometheus"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "promtool is needed ({e}): apt-get install -y --no-install-recommends prometheus (bash ops/test.sh does it)"
            )
        });
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `/metrics` of a live relay after some traffic: a document to two units, its resubmission, an
/// unsigned package (refused), a fetch and an ack, a 404. Returns (classic, OpenMetrics) bodies.
async fn scrape_after_traffic() -> (String, String) {
    let bed = Bed::new().await;
    let a = bed.client(A);
    let body = bed.package(A, &[B, C], "doc-ops", "Số liệu vận hành");
    let accepted = a.submit(body.clone()).await.unwrap();
    assert!(a.submit(body).await.unwrap().duplicate);
    let unsigned = document(A, &[B], "doc-unsigned", "Chưa ký");
    let refused = a.submit(unsigned).await.unwrap_err();
    assert_eq!(refused.code(), "signature_missing");
    let b = bed.client(B);
    b.fetch(&accepted.id).await.unwrap();
    b.ack(&accepted.id).await.unwrap();
    let _ = a.tracking("khong-co").await;

    let http = bed.raw(None);
    let classic = http.get(bed.url("/metrics")).send().await.unwrap();
    assert_eq!(classic.status(), 200);
    assert_eq!(
        classic.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let classic = classic.text().await.unwrap();
    let open = http
        .get(bed.url("/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(
        open.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "Prometheus gets OpenMetrics"
    );
    let open = open.text().await.unwrap();
    for id in [accepted.id.as_str(), "doc-ops", A, B, C] {
        assert!(!classic.contains(id), "{id} is never a label");
    }
    (classic, open)
}

/// Sample lines without comments, sorted.
fn samples(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    v.sort_unstable();
    v
}

/// The value of the sample line that starts with `prefix` (name and labels).
fn value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("{prefix} missing:\n{text}"))
        .rsplit_once(' ')
        .unwrap()
        .1
        .parse()
        .unwrap()
}

/// Metric names a query can use: every sample's name, and every declared family (a labelled
/// counter with no sample yet is declared by its `# TYPE` line; a histogram `x` as `x_bucket`,
/// `x_sum`, `x_count`).
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = samples(text)
        .into_iter()
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect();
    for declared in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = declared.split_once(' ').unwrap();
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        } else {
            names.insert(name.to_owned());
        }
    }
    names
}

/// Every `truc_…` metric name in a PromQL expression (or any text).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("truc_") {
        let before = rest[..i].chars().last();
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    out
}

#[tokio::test]
async fn metrics_of_a_live_relay_with_traffic_pass_promtool_check_metrics() {
    let (classic, open) = scrape_after_traffic().await;
    let out = promtool(&["check", "metrics"], Some(&classic));
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{classic}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Counters, by outcome and by code.
    assert_eq!(value(&classic, "truc_packages_accepted_total "), 1.0);
    assert_eq!(value(&classic, "truc_packages_duplicate_total "), 1.0);
    assert_eq!(value(&classic, "truc_deliveries_total "), 1.0);
    assert_eq!(value(&classic, "truc_signature_failures_total "), 1.0);
    assert_eq!(
        value(
            &classic,
            "truc_packages_rejected_total{code=\"signature_missing\",fault=\"sender\"}"
        ),
        1.0
    );
    // The submit histogram, one observation per outcome.
    for outcome in ["accepted", "duplicate", "rejected"] {
        assert_eq!(
            value(
                &classic,
                &format!("truc_submit_duration_seconds_count{{outcome=\"{outcome}\"}}")
            ),
            1.0,
            "{outcome}"
        );
    }
    // Gauges: C has not fetched; nothing has waited 5 minutes; the broker answers.
    assert_eq!(value(&classic, "truc_mailbox_ready_messages "), 1.0);
    assert_eq!(
        value(&classic, "truc_mailboxes_waiting{older_than=\"5m\"}"),
        0.0
    );
    assert_eq!(value(&classic, "truc_broker_up "), 1.0);

    // OpenMetrics for Prometheus carries exactly the same samples (but for the first scrape,
    // which the second one counts, and the figures' age, which grows between the two).
    assert!(open.trim_end().ends_with("# EOF"));
    assert!(!classic.contains("# EOF"));
    const AGE: &str = "truc_mailbox_stats_age_seconds ";
    let (age_open, age_classic) = (value(&open, AGE), value(&classic, AGE));
    assert!(
        (0.0..5.0).contains(&age_classic) && age_open >= age_classic,
        "the second scrape reuses the first one's reading: ages {age_classic} then {age_open}"
    );
    let not_metrics = |v: Vec<&str>| -> BTreeSet<String> {
        v.into_iter()
            .filter(|l| !l.contains("route=\"/metrics\"") && !l.starts_with(AGE))
            .map(str::to_owned)
            .collect()
    };
    let (o, c) = (not_metrics(samples(&open)), not_metrics(samples(&classic)));
    let differ: Vec<&String> = o.symmetric_difference(&c).collect();
    assert!(
        differ.is_empty(),
        "samples differ between the formats: {differ:?}"
    );
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_use_only_metrics_the_relay_exports() {
    let (classic, _) = scrape_after_traffic().await;
    let exported = exported_names(&classic);

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ops_dir().join("grafana/truc.json")).unwrap(),
    )
    .expect("ops/grafana/truc.json is JSON");
    assert_eq!(dashboard["uid"], "truc-relay");
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8, "{} panels", panels.len());
    let mut used = BTreeSet::new();
    for p in panels {
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has a query", p["title"]);
        for t in targets {
            used.extend(metric_names(t["expr"].as_str().unwrap()));
        }
    }
    let alerts = std::fs::read_to_string(ops_dir().join("prometheus/alerts.yml")).unwrap();
    let exprs: Vec<&str> = alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .collect();
    assert!(exprs.len() >= 5);
    for e in &exprs {
        used.extend(metric_names(e));
    }
    assert!(used.len() >= 10, "{used:?}");
    let unknown: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "not exported by the relay: {unknown:?}\nexported: {exported:?}"
    );
    // And the other way: every family the relay exports is on the dashboard.
    let families: BTreeSet<String> = exported
        .iter()
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n)
                .to_owned()
        })
        .collect();
    let shown: BTreeSet<String> = used
        .iter()
        .map(|n| n.strip_suffix("_bucket").unwrap_or(n).to_owned())
        .map(|n| n.strip_suffix("_count").map_or(n.clone(), str::to_owned))
        .collect();
    let missing: Vec<&String> = families.iter().filter(|f| !shown.contains(*f)).collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");

    // Every alert is unit-tested and has a runbook section.
    let tests = std::fs::read_to_string(ops_dir().join("prometheus/alerts_test.yml")).unwrap();
    let runbook = std::fs::read_to_string(ops_dir().join("RUNBOOK.md")).unwrap();
    let names: Vec<&str> = alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(str::trim)
        .collect();
    assert!(names.len() >= 5);
    for name in names {
        assert!(
            tests.contains(&format!(
                "alertname: {name}\n        exp_alerts:\n          - exp_labels"
            )),
            "{name} has a firing case in alerts_test.yml"
        );
        assert!(
            runbook.contains(&format!("## {name}")),
            "{name} has a section in RUNBOOK.md"
        );
        assert!(
            alerts.contains(&format!("ops/RUNBOOK.md#{}", name.to_lowercase())),
            "{name} links its runbook section"
        );
    }
}

#[test]
fn promtool_checks_the_rules_runs_their_unit_tests_and_checks_the_example_config() {
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts_test.yml"][..],
        &["check", "config", "prometheus.yml"][..],
    ] {
        let out = promtool(args, None);
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}
