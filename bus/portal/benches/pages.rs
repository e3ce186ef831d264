//! How fast the portal's pages render over a million tracked packages (issue 7 point 6).
//!
//! `cargo bench -p portal --bench pages` fills a store with `PORTAL_BENCH_PACKAGES` (default
//! 1,000,000) tracked packages through `Relay::bulk_record` (events appended and folded, no
//! parsing or signing), kept between runs in `$CARGO_TARGET_DIR/portal-bench-<N>` (delete it to
//! fill again), then renders each page through the portal's router in process (routing,
//! session check, relay reads, template) and prints the median and worst of several runs.
//! Target: under 200 ms each. Figures are printed, not asserted.
//!
//! The history: 1,000 units; the ministry `000.00.00.G22` sent 20% of all packages (the worst
//! case for its lists), every other package comes from one of the other units; 3 recipients
//! each (the ministry among them for one in 7), one in 1,000 to 63 provinces; 98% delivered, one
//! in 50 not yet, one in 500 rejected (a real 02 status package), one in 10 registered (03).
//!
//! `rows` is how many rows the page had: a rare filter or search stops after looking at
//! `portal::PAGE_BUDGET` packages and offers "search older", so an old number is found only
//! after a few such clicks.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use broker::{AnyBroker, Clock, EmbeddedBroker, EmbeddedConfig, MessageKind, SystemClock};
use directory::{Directory, Unit, UnitState};
use http_body_util::BodyExt as _;
use portal::{AccountFile, AccountRole};
use relay::{Event, Relay, RelayConfig};
use store::{Digest, Store};
use tower::ServiceExt as _;

const MINISTRY: &str = "000.00.00.G22";
const PASSWORD: &str = "mat-khau-do-toc-do";

fn unit_code(i: usize) -> String {
    if i == 0 {
        MINISTRY.to_owned()
    } else {
        format!("{:03}.00.00.H{:02}", i / 100, i % 100)
    }
}

fn id(i: usize) -> String {
    format!("bench-{i:08}")
}

fn main() {
    let n: usize = std::env::var("PORTAL_BENCH_PACKAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let dir = PathBuf::from(target).join(format!("portal-bench-{n}"));
    let fresh = !dir.join("filled").exists();
    if fresh {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pki = dsig::pki::init(
        &[(MINISTRY, None)],
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
    .unwrap();
    let store = Store::open(dir.join("data")).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let broker = EmbeddedBroker::open(
        store.clone(),
        EmbeddedConfig {
            lease: Duration::from_secs(300),
            clock: clock.clone(),
        },
    )
    .unwrap();
    let directory = Directory::open(&store).unwrap();
    let trust = dsig::TrustStore::new(&pki.ca.cert_pem, &pki.crl_pem).unwrap();
    let seal = dsig::SigningKey::from_pem(&pki.relay.key_pem, &pki.relay.cert_pem).unwrap();
    let relay = Relay::open(
        store.clone(),
        AnyBroker::Embedded(broker),
        directory.clone(),
        RelayConfig {
            relay_id: "000.00.00.A00".into(),
            seal: Arc::new(seal),
            trust: Arc::new(trust),
            limits: edxml::Limits::default(),
            clock,
        },
    )
    .unwrap();
    let accounts = dir.join("accounts.json");
    if fresh {
        let t = Instant::now();
        for u in 0..1000 {
            directory
                .upsert(Unit {
                    code: unit_code(u),
                    name: format!("Đơn vị thử {u}"),
                    parent: None,
                    aliases: vec![],
                    state: UnitState::Active,
                    fingerprints: vec![],
                    groups: vec![],
                })
                .unwrap();
        }
        let body = sample_package();
        let digest = store.archive().put(&body).unwrap();
        let file = AccountFile::new(&accounts);
        file.add(
            "vanthu",
            AccountRole::Clerk {
                unit: MINISTRY.into(),
            },
            PASSWORD,
            "t",
        )
        .unwrap();
        fill(&relay, n, digest);
        rt.block_on(relay.flush()).unwrap();
        std::fs::write(dir.join("filled"), b"").unwrap();
        println!(
            "filled {n} tracked packages in {:.1} s ({:.0}/s), store {} MiB",
            t.elapsed().as_secs_f64(),
            n as f64 / t.elapsed().as_secs_f64(),
            store.db_size_on_disk().unwrap_or(0) / (1024 * 1024)
        );
    } else {
        println!("reusing the {n}-package store in {}", dir.display());
    }
    let app = Router::new().nest(
        "/portal",
        portal::router(
            relay.clone(),
            portal::Settings {
                accounts,
                session: Duration::from_secs(3600),
            },
        ),
    );
    rt.block_on(measure(app, n));
}

/// One real package in the archive: every bulk event points at it, so document pages parse a
/// real package with a header and an attachment.
fn sample_package() -> Vec<u8> {
    let doc = edxml::Document {
        from: edxml::Organization {
            organ_id: MINISTRY.into(),
            organ_name: Some("Bộ thử nghiệm".into()),
            ..Default::default()
        },
        to: vec![edxml::Organization {
            organ_id: unit_code(1),
            ..Default::default()
        }],
        document_id: Some(format!("{MINISTRY},2026/11/24,1/BTN")),
        subject: Some("Văn bản mẫu cho phép đo".into()),
        code: Some(edxml::Code {
            code_number: Some("1".into()),
            code_notation: Some("BTN".into()),
        }),
        attachments: vec![edxml::Attachment {
            content_id: "a1".into(),
            name: Some("vanban.pdf".into()),
            description: None,
            content_type: Some("application/pdf".into()),
            data: vec![b'x'; 200_000],
        }],
        ..Default::default()
    };
    edxml::to_bytes(&edxml::Package::Document(doc))
}

fn fill(relay: &Relay, n: usize, digest: Digest) {
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - n as u64 * 1000;
    let mut batch = Vec::with_capacity(10_000);
    let mut next_status = n;
    for i in 0..n {
        let from = if i % 5 == 0 { 0 } else { 1 + (i * 7919) % 999 };
        let mut recipients: Vec<String> = if i % 1000 == 5 {
            (1..=63).map(unit_code).collect()
        } else {
            (0..3)
                .map(|k| unit_code(1 + (i * 31 + k * 331) % 999))
                .filter(|u| *u != unit_code(from))
                .collect()
        };
        if i % 7 == 1 {
            recipients[0] = MINISTRY.to_owned();
        }
        let at_ms = start_ms + i as u64 * 1000;
        let subject = if i % 100_000 == 15 {
            format!("Kế hoạch phòng chống thiên tai số {i}")
        } else {
            format!("Công văn về việc triển khai nhiệm vụ số {i}")
        };
        let document_id = format!("{},2026/11/24,{i}/VB", unit_code(from));
        batch.push(Event::Accepted {
            id: id(i),
            at_ms,
            kind: MessageKind::Package,
            from: unit_code(from),
            doc_key: document_id.clone(),
            document_id: document_id.clone(),
            code: Some(format!("{i}/VB")),
            subject,
            digest,
            size: 200_000,
            submitted: digest,
            recipients: recipients.clone(),
            about: None,
            status_code: None,
            description: None,
        });
        if i % 50 != 10 {
            for (k, u) in recipients.iter().enumerate() {
                batch.push(Event::Delivered {
                    id: id(i),
                    unit: u.clone(),
                    at_ms: at_ms + 500,
                });
                let code = if i % 500 == 20 && k == 0 {
                    Some(("02", Some("Sai thẩm quyền".to_owned())))
                } else if i % 10 == 5 {
                    Some(("03", None))
                } else {
                    None
                };
                if let Some((code, description)) = code {
                    next_status += 1;
                    batch.push(Event::Accepted {
                        id: id(next_status),
                        at_ms: at_ms + 700,
                        kind: MessageKind::Status,
                        from: u.clone(),
                        doc_key: format!("status:{document_id}{code}"),
                        document_id: document_id.clone(),
                        code: None,
                        subject: String::new(),
                        digest,
                        size: 2_000,
                        submitted: digest,
                        recipients: vec![unit_code(from)],
                        about: Some(id(i)),
                        status_code: Some(code.into()),
                        description,
                    });
                }
            }
        }
        if batch.len() >= 10_000 {
            relay.bulk_record(&batch).unwrap();
            batch.clear();
        }
        if i % 100_000 == 99_999 {
            println!("  … {} packages", i + 1);
        }
    }
    relay.bulk_record(&batch).unwrap();
}

async fn call(
    app: &Router,
    path: &str,
    cookie: &str,
) -> (u16, Vec<u8>, Option<String>, Option<String>) {
    let mut r = Request::get(path);
    if !cookie.is_empty() {
        r = r.header(header::COOKIE, cookie);
    }
    let res = app
        .clone()
        .oneshot(r.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let set = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .next();
    let loc = res
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, body, set, loc)
}

async fn sign_in(app: &Router) -> String {
    let (_, body, pre, _) = call(app, "/portal/signin", "").await;
    let text = String::from_utf8_lossy(&body);
    let marker = "name=\"csrf\" value=\"";
    let i = text.find(marker).unwrap() + marker.len();
    let csrf = &text[i..i + text[i..].find('"').unwrap()];
    let req = Request::post("/portal/signin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, pre.unwrap())
        .body(Body::from(format!(
            "name=vanthu&password={PASSWORD}&csrf={csrf}"
        )))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("truc_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .expect("signed in")
}

async fn measure(app: Router, n: usize) {
    let cookie = sign_in(&app).await;
    let deep = id((n * 3 / 4) / 5 * 5); // a ministry package three quarters of the way back
    let with63 = id(((n / 2) / 1000) * 1000 + 5);
    let cases: Vec<(&str, String)> = vec![
        ("list, first page (sent)", "/portal/documents".into()),
        ("list, received", "/portal/documents?role=received".into()),
        (
            "list, filter not delivered",
            "/portal/documents?state=not_delivered".into(),
        ),
        (
            "list, filter not registered",
            "/portal/documents?state=not_registered".into(),
        ),
        (
            "list, filter rejected (rare)",
            "/portal/documents?state=rejected".into(),
        ),
        (
            "list, search subject (rare)",
            "/portal/documents?q=ph%C3%B2ng%20ch%E1%BB%91ng%20thi%C3%AAn%20tai".into(),
        ),
        (
            "list, search number (recent)",
            format!("/portal/documents?q={}%2FVB", (n - 500) / 5 * 5),
        ),
        (
            "list, search number (old)",
            format!("/portal/documents?q={}%2FVB", n / 2 / 5 * 5),
        ),
        (
            "list, recipient filter",
            "/portal/documents?recipient=000.00.00.H05".into(),
        ),
        (
            "list, date range",
            "/portal/documents?from=2026-01-01&to=2026-12-31".into(),
        ),
        (
            "list, deep page (keyset)",
            format!("/portal/documents?after={deep}"),
        ),
        (
            "document page, 3 recipients",
            format!("/portal/documents/{}", id(n / 2 / 5 * 5)),
        ),
        (
            "document page, 63 recipients",
            format!("/portal/documents/{with63}"),
        ),
    ];
    println!(
        "{:<32} {:>10} {:>10} {:>8}",
        "page", "median ms", "worst ms", "rows"
    );
    for (name, path) in cases {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..9 {
            let t = Instant::now();
            let (status, body, _, _) = call(&app, &path, &cookie).await;
            times.push(t.elapsed());
            assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
            let text = String::from_utf8_lossy(&body);
            rows = text.matches("<tr data-id=").count() + text.matches("<tr data-unit=").count();
        }
        times.sort();
        println!(
            "{:<32} {:>10.1} {:>10.1} {:>8}",
            name,
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0,
            rows
        );
    }
}
