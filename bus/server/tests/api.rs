//! The /v1 API over real mutual TLS: what a unit's adapter sees when it submits, polls, fetches,
//! acks and tracks, and what it can never see.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use truc_client::{ClientError, PackageQuery};

fn api_code(e: &ClientError) -> (u16, String) {
    match e {
        ClientError::Api { status, code, .. } => (*status, code.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn submit_then_the_recipient_fetches_and_acks() {
    let bed = Bed::new().await;
    let a = bed.client(A);
    let b = bed.client(B);
    let signed = bed.package(A, &[B, C], "doc-1", "Công văn số 12");

    let accepted = a.submit(signed.clone()).await.unwrap();
    assert!(!accepted.duplicate);
    assert_eq!(accepted.document_id, "doc-1");
    let recipients: Vec<(&str, &str)> = accepted
        .recipients
        .iter()
        .map(|r| (r.unit.as_str(), r.state.as_str()))
        .collect();
    assert_eq!(recipients, [(B, "queued"), (C, "queued")]);

    // The same bytes again: the same answer, flagged as a duplicate, nothing queued twice.
    let again = a.submit(signed).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.id, accepted.id);

    let items = b.inbox(Duration::from_secs(5), 10).await.unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(item.id, accepted.id);
    assert_eq!(item.kind, "package");
    assert_eq!(item.from, A);
    assert_eq!(item.document_id, "doc-1");
    assert_eq!(item.subject, "Công văn số 12");
    assert!(item.size > 0);
    assert!(item.queued_at.ends_with('Z'), "{}", item.queued_at);

    // The body is the sealed package: the sender's and the relay's signatures verify.
    let body = b.fetch(&item.id).await.unwrap();
    let trust = dsig::TrustStore::new(&bed.pki.ca.cert_pem, &bed.pki.crl_pem).unwrap();
    let report = dsig::verify(&body, &trust, SystemTime::now());
    assert!(report.is_valid(), "{report:?}");
    assert!(report.signature(dsig::Role::Relay).is_some(), "sealed");

    b.ack(&item.id).await.unwrap();
    b.ack(&item.id).await.unwrap(); // idempotent
    assert!(b.inbox(Duration::ZERO, 10).await.unwrap().is_empty());

    let t = a.tracking(&accepted.id).await.unwrap();
    assert_eq!(t.document_id, "doc-1");
    assert_eq!(t.from, A);
    let state = |u: &str| {
        t.recipients
            .iter()
            .find(|r| r.unit == u)
            .map(|r| r.state.clone())
    };
    assert_eq!(state(B).as_deref(), Some("delivered"));
    assert_eq!(state(C).as_deref(), Some("queued"));
    let b_row = t.recipients.iter().find(|r| r.unit == B).unwrap();
    let steps: Vec<&str> = b_row.events.iter().map(|e| e.state.as_str()).collect();
    assert_eq!(steps, ["queued", "delivered"]);

    // The sender's list and the recipient's list both show it; the recipient sees its own state.
    let sent = a.packages(&PackageQuery::default()).await.unwrap();
    assert_eq!(sent.items.len(), 1);
    assert_eq!(sent.items[0].id, accepted.id);
    assert_eq!(sent.items[0].recipients, 2);
    assert_eq!(sent.items[0].delivered, 1);
    let received = b
        .packages(&PackageQuery {
            role: Some("received".into()),
            ..PackageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(received.items.len(), 1);
    assert_eq!(received.items[0].state.as_deref(), Some("delivered"));
    let not_delivered = a
        .packages(&PackageQuery {
            q: Some("khong-co-gi".into()),
            ..PackageQuery::default()
        })
        .await
        .unwrap();
    assert!(not_delivered.items.is_empty(), "q filters");
}

#[tokio::test]
async fn a_waiting_long_poll_gets_the_package_submitted_meanwhile() {
    let bed = Bed::new().await;
    let b = bed.client(B);
    let poll = tokio::spawn(async move { b.inbox(Duration::from_secs(20), 10).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let accepted = bed
        .client(A)
        .submit(bed.package(A, &[B], "doc-poll", "Khẩn"))
        .await
        .unwrap();
    let items = poll.await.unwrap().unwrap();
    assert_eq!(
        items.len(),
        1,
        "the poll returns the new package, not an empty page"
    );
    assert_eq!(items[0].id, accepted.id);
}

#[tokio::test]
async fn pages_of_packages_follow_next() {
    let bed = Bed::new().await;
    let a = bed.client(A);
    let mut ids = Vec::new();
    for n in 0..5 {
        let doc = bed.package(A, &[B], &format!("doc-page-{n}"), &format!("Văn bản {n}"));
        ids.push(a.submit(doc).await.unwrap().id);
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = a
            .packages(&PackageQuery {
                limit: Some(2),
                after: after.clone(),
                ..PackageQuery::default()
            })
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|i| i.id.clone()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
        assert!(seen.len() <= 5, "paging must end: {seen:?}");
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids, "every package exactly once across pages");

    // `since` in the future hides everything; a bad `since` is a 400 with the JSON shape.
    let future = a
        .packages(&PackageQuery {
            since: Some("2999-01-01".into()),
            ..PackageQuery::default()
        })
        .await
        .unwrap();
    assert!(future.items.is_empty());
    let bad = a
        .packages(&PackageQuery {
            since: Some("hôm qua".into()),
            ..PackageQuery::default()
        })
        .await
        .unwrap_err();
    assert_eq!(api_code(&bad), (400, "bad_query".into()));
}

#[tokio::test]
async fn a_unit_never_reads_another_units_inbox_or_tracking() {
    let bed = Bed::new().await;
    let accepted = bed
        .client(A)
        .submit(bed.package(A, &[B], "doc-secret", "Mật"))
        .await
        .unwrap();
    let c = bed.client(C);
    for result in [
        c.fetch(&accepted.id).await.map(|_| ()),
        c.tracking(&accepted.id).await.map(|_| ()),
        c.ack(&accepted.id).await,
    ] {
        assert_eq!(api_code(&result.unwrap_err()), (404, "not_found".into()));
    }
    assert!(c.inbox(Duration::ZERO, 10).await.unwrap().is_empty());
    // The ack by C did not take it out of B's inbox.
    let b = bed.client(B);
    assert_eq!(b.inbox(Duration::ZERO, 10).await.unwrap().len(), 1);
    // B sees only its own row of the tracking, not the other recipients'.
    let t = b.tracking(&accepted.id).await.unwrap();
    assert!(t.recipients.iter().all(|r| r.unit == B));
    // And an id that exists nowhere looks the same as someone else's.
    assert_eq!(
        api_code(&c.fetch("khong-ton-tai").await.unwrap_err()),
        (404, "not_found".into())
    );
}

#[tokio::test]
async fn without_a_client_certificate_v1_is_401_but_health_and_metrics_answer() {
    let bed = Bed::new().await;
    let anon = truc_client::Client::anonymous(&bed.base, &bed.pki.ca.cert_pem).unwrap();
    assert_eq!(anon.health().await.unwrap().status, "ok");
    assert!(
        anon.metrics()
            .await
            .unwrap()
            .contains("truc_packages_accepted")
    );
    let raw = bed.raw(None);
    for (method, path) in [
        ("GET", "/v1/inbox"),
        ("POST", "/v1/packages"),
        ("GET", "/v1/units?q=a"),
    ] {
        let res = raw
            .request(method.parse().unwrap(), bed.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{method} {path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["code"], "client_certificate_required");
    }
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_at_the_tls_layer() {
    let bed = Bed::new().await;
    let other = dsig::pki::init(&[(A, None)], unix(SystemTime::now())).unwrap();
    let stranger = truc_client::Identity {
        cert_pem: other.units[0].1.cert_pem.clone(),
        key_pem: other.units[0].1.key_pem.clone(),
    };
    // Same unit code as a real unit, but not issued by the relay's CA.
    let client = truc_client::Client::new(&bed.base, &stranger, &bed.pki.ca.cert_pem).unwrap();
    let err = client.inbox(Duration::ZERO, 1).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Network { .. }),
        "refused in the handshake, no HTTP answer: {err:?}"
    );
    let err = client.health().await.unwrap_err();
    assert!(matches!(err, ClientError::Network { .. }), "{err:?}");
    // The server is unharmed.
    assert_eq!(bed.client(A).health().await.unwrap().status, "ok");
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_when_a_crl_is_configured() {
    let bed = Bed::with(Options {
        revoke: vec![B],
        ..Options::default()
    })
    .await;
    let err = bed.client(B).inbox(Duration::ZERO, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Network { .. }), "{err:?}");
    assert!(bed.client(C).inbox(Duration::ZERO, 1).await.is_ok());
}

#[tokio::test]
async fn unknown_and_suspended_units_are_403() {
    let bed = Bed::new().await;
    let err = bed.client(U).inbox(Duration::ZERO, 1).await.unwrap_err();
    assert_eq!(api_code(&err), (403, "unknown_unit".into()));
    assert!(!err.retryable());
    let err = bed.client(S).inbox(Duration::ZERO, 1).await.unwrap_err();
    assert_eq!(api_code(&err), (403, "unit_suspended".into()));
}

#[tokio::test]
async fn the_directory_answers_searches_and_lookups() {
    let bed = Bed::new().await;
    let a = bed.client(A);
    let found = a.units("nam dinh").await.unwrap();
    assert_eq!(
        found.iter().map(|u| u.code.as_str()).collect::<Vec<_>>(),
        [C],
        "diacritics-insensitive"
    );
    let unit = a.unit(B).await.unwrap();
    assert_eq!(unit.name, "UBND tỉnh Hà Nam");
    assert_eq!(unit.state, "active");
    assert_eq!(
        api_code(&a.unit("000.00.00.Z99").await.unwrap_err()),
        (404, "not_found".into())
    );
}

#[tokio::test]
async fn shutdown_ends_waiting_long_polls_and_serve_returns() {
    let mut bed = Bed::new().await;
    let b = bed.client(B);
    // Open the connection first, so the poll below is surely in flight when shutdown starts.
    assert!(b.inbox(Duration::ZERO, 1).await.unwrap().is_empty());
    let poll = tokio::spawn(async move { b.inbox(Duration::from_secs(50), 10).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // serve returns only after the long-poll has been answered (in-flight requests finish).
    tokio::time::timeout(Duration::from_secs(20), bed.stop())
        .await
        .expect("serve returns well before the 50 s poll would end");
    let items = poll.await.unwrap().unwrap();
    assert!(items.is_empty(), "the poll got an empty page, not an error");
    // And nothing listens any more.
    assert!(bed.client(A).health().await.is_err());
}

#[tokio::test]
async fn clients_that_never_finish_the_handshake_do_not_hold_up_others() {
    let bed = Bed::new().await;
    // Connections that send nothing, and one that sends garbage instead of a ClientHello.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(tokio::net::TcpStream::connect(bed.addr).await.unwrap());
    }
    let mut garbage = tokio::net::TcpStream::connect(bed.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut garbage, b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    // A real unit is served meanwhile, over several requests.
    let a = bed.client(A);
    for _ in 0..3 {
        assert_eq!(a.health().await.unwrap().status, "ok");
        assert!(a.inbox(Duration::ZERO, 1).await.unwrap().is_empty());
    }
    // The plain-HTTP client got its connection closed, not an answer.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut garbage, &mut buf),
    )
    .await
    .expect("closed promptly");
    assert!(read.is_err() || !String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"));
    drop(idle);
}
