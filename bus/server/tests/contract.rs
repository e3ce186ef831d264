//! The published contract: `schemas/openapi.yaml` lists exactly the routes the router serves
//! (`server::ROUTES`), every one of them reaches a handler, and `/metrics` is Prometheus text
//! with bounded labels.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use yaml_rust2::{Yaml, YamlLoader};

fn openapi() -> Yaml {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/openapi.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[test]
fn openapi_lists_exactly_the_routes_the_router_serves() {
    let doc = openapi();
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_hash().expect("paths") {
        for (method, _) in item.as_hash().expect("path item") {
            let method = method.as_str().unwrap();
            if HTTP_METHODS.contains(&method) {
                documented.insert((method.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = server::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        served.len(),
        server::ROUTES.len(),
        "ROUTES has no duplicates"
    );
    assert_eq!(documented, served, "openapi.yaml paths == server::ROUTES");
}

#[test]
fn every_error_code_the_edge_emits_is_documented() {
    let doc = openapi();
    let mut codes = BTreeSet::new();
    for group in doc["components"]["schemas"]["ErrorCode"]["anyOf"]
        .as_vec()
        .unwrap()
    {
        for c in group["enum"].as_vec().unwrap() {
            codes.insert(c.as_str().unwrap().to_owned());
        }
    }
    for code in [
        "client_certificate_required",
        "bad_query",
        "bad_path",
        "bad_body",
        "route_not_found",
        "method_not_allowed",
        "too_large",
        "internal",
        "not_found",
        "unknown_unit",
        "unit_suspended",
        "certificate_not_registered",
        "store_unavailable",
        "broker_unavailable",
        "not_xml",
        "sender_mismatch",
        "signer_not_sender",
        "signature_invalid",
        "signature_missing",
        "no_document_id",
        "document_id_conflict",
        "unknown_recipient",
        "recipient_suspended",
        "status_unknown_document",
        "already_sealed",
    ] {
        assert!(codes.contains(code), "{code} is not in ErrorCode");
    }
}

#[tokio::test]
async fn every_route_reaches_a_handler() {
    let bed = Bed::new().await;
    let a = bed.raw(Some(A));
    for (method, path) in server::ROUTES {
        let concrete = path.replace("{id}", "x").replace("{code}", A);
        let res = a
            .request(method.parse().unwrap(), bed.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert!(
            !body.contains("route_not_found") && !body.contains("method_not_allowed"),
            "{method} {path} fell through to the router's fallback: {status} {body}"
        );
    }
}

/// `name{labels} value` or `name value`; label values quoted. Returns the name and labels.
fn sample(line: &str) -> Option<(&str, &str)> {
    let (head, value) = line.rsplit_once(' ')?;
    value.parse::<f64>().ok()?;
    let (name, labels) = match head.split_once('{') {
        Some((n, rest)) => (n, rest.strip_suffix('}')?),
        None => (head, ""),
    };
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !name_ok {
        return None;
    }
    if !labels.is_empty() {
        for pair in labels.split(',') {
            let (k, v) = pair.split_once('=')?;
            if k.is_empty() || !(v.starts_with('"') && v.ends_with('"') && v.len() >= 2) {
                return None;
            }
        }
    }
    Some((name, labels))
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_bounded_labels() {
    let bed = Bed::new().await;
    let a = bed.client(A);
    let accepted = a
        .submit(bed.package(A, &[B, C], "doc-m", "Số liệu"))
        .await
        .unwrap();
    let b = bed.client(B);
    b.fetch(&accepted.id).await.unwrap();
    b.ack(&accepted.id).await.unwrap();
    let _ = a.tracking("khong-co").await; // a 404
    let _ = b.inbox(Duration::ZERO, 1).await;

    let text = a.metrics().await.unwrap();
    let mut names = BTreeSet::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, labels) = sample(line).unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        assert!(
            !labels.contains(&accepted.id),
            "an id is never a label: {line}"
        );
        assert!(
            !labels.contains("000.00"),
            "a unit code is never a label: {line}"
        );
        names.insert(name.to_owned());
    }
    // truc-client asks for no format: the classic text format (OpenMetrics only on request).
    assert!(!text.contains("# EOF"));
    assert!(text.contains("# TYPE truc_packages_rejected_total counter"));
    let value = |needle: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("{needle} missing:\n{text}"))
            .rsplit_once(' ')
            .unwrap()
            .1
            .parse()
            .unwrap()
    };
    assert_eq!(value("truc_packages_accepted_total "), 1.0);
    assert_eq!(value("truc_deliveries_total "), 1.0);
    assert_eq!(
        value("truc_mailbox_ready_messages "),
        1.0,
        "C has not fetched"
    );
    assert!(value("truc_broker_up ") == 1.0);
    for n in [
        "truc_packages_duplicate_total",
        "truc_signature_failures_total",
        "truc_statuses_total",
        "truc_mailbox_in_flight_messages",
        "truc_mailbox_dead_lettered_messages",
        "truc_mailbox_oldest_ready_age_seconds",
        "truc_http_request_duration_seconds_bucket",
        "truc_http_request_duration_seconds_count",
    ] {
        assert!(names.contains(n), "{n} missing");
    }
    // Requests are counted under their route template and status class.
    let count = |route: &str, status: &str| {
        text.lines()
            .filter(|l| l.starts_with("truc_http_request_duration_seconds_count"))
            .find(|l| {
                l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("status=\"{status}\""))
            })
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
    };
    assert_eq!(count("/v1/packages", "2xx"), Some(1.0));
    assert_eq!(count("/v1/inbox/{id}", "2xx"), Some(1.0));
    assert_eq!(count("/v1/packages/{id}", "4xx"), Some(1.0));
}
