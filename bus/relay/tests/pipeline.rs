//! The admit pipeline end to end (no HTTP): what is accepted, sealed, routed and tracked, and what
//! each class of bad input gets back — with nothing enqueued and nothing tracked.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, SystemTime};

use broker::Clock;
use common::*;
use edxml::Package;
use relay::{PackageQuery, Role};

#[tokio::test]
async fn a_document_is_sealed_routed_and_tracked_until_acked() {
    let bed = Bed::new();
    let signed = bed.sign(A, &document(A, &[B, C], "doc-1", "Công văn số 12"));
    let accepted = bed.relay.submit(A, &signed).await.unwrap();
    assert!(!accepted.duplicate);
    assert_eq!(accepted.document_id, "doc-1");
    let units: Vec<&str> = accepted
        .recipients
        .iter()
        .map(|r| r.unit.as_str())
        .collect();
    assert_eq!(units, [B, C]);
    assert!(accepted.recipients.iter().all(|r| r.state == "queued"));

    // B's inbox offers it; the body is the sealed package: sender + relay signatures verify.
    let items = bed.relay.inbox(B, 10, Duration::ZERO).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].id, accepted.id);
    assert_eq!(items[0].from, A);
    assert_eq!(items[0].subject, "Công văn số 12");
    let body = bed.relay.package_body(B, &accepted.id).unwrap();
    let trust = dsig::TrustStore::new(&bed.pki.ca.cert_pem, &bed.pki.crl_pem).unwrap();
    let report = dsig::verify(&body, &trust, SystemTime::now());
    assert!(report.is_valid(), "{report:?}");
    assert!(report.signature(dsig::Role::Relay).is_some());
    let parsed = edxml::read(&body, &edxml::Limits::default()).unwrap();
    let hops: Vec<&str> = parsed
        .package
        .trace()
        .trace_headers
        .iter()
        .map(|t| t.organ_id.as_str())
        .collect();
    assert_eq!(
        hops.last(),
        Some(&"000.00.00.A00"),
        "relay TraceHeader appended"
    );

    bed.relay.ack(B, &accepted.id).await.unwrap();
    bed.relay.ack(B, &accepted.id).await.unwrap(); // idempotent
    assert!(
        bed.relay
            .inbox(B, 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );

    let t = bed.relay.tracking(A, &accepted.id).unwrap();
    let state = |u: &str| {
        t.recipients
            .iter()
            .find(|r| r.unit == u)
            .unwrap()
            .state
            .clone()
    };
    assert_eq!(state(B), "delivered");
    assert_eq!(state(C), "queued");
    let b_events: Vec<&str> = t.recipients[0]
        .events
        .iter()
        .map(|e| e.state.as_str())
        .collect();
    assert_eq!(b_events, ["queued", "delivered"], "{:?}", t.recipients[0]);

    // "Not yet delivered" is queryable.
    let pending = bed
        .relay
        .packages(
            A,
            &PackageQuery {
                role: Role::Sent,
                state: Some("queued".into()),
                limit: 50,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].delivered, 1);
    assert_eq!(pending[0].recipients, 2);
}

#[tokio::test]
async fn groups_children_and_old_codes_expand_to_current_units() {
    let bed = Bed::new();
    let signed = bed.sign(
        A,
        &document(
            A,
            &["group:tinh", "children:000.00.00.H41", OLD_B],
            "doc-g",
            "Gửi các tỉnh",
        ),
    );
    let accepted = bed.relay.submit(A, &signed).await.unwrap();
    let mut units: Vec<&str> = accepted
        .recipients
        .iter()
        .map(|r| r.unit.as_str())
        .collect();
    units.sort();
    assert_eq!(
        units,
        [B, C, B1],
        "each unit once, old code routed to the current one"
    );
    for u in [B, C, B1] {
        assert_eq!(
            bed.relay.inbox(u, 10, Duration::ZERO).await.unwrap().len(),
            1,
            "{u}"
        );
    }
}

#[tokio::test]
async fn a_resubmission_gets_the_first_answer_and_no_second_delivery_even_after_seven_days() {
    let bed = Bed::new();
    let signed = bed.sign(A, &document(A, &[B], "doc-dup", "Lần một"));
    let first = bed.relay.submit(A, &signed).await.unwrap();
    let items = bed.relay.inbox(B, 10, Duration::ZERO).await.unwrap();
    assert_eq!(items.len(), 1);
    bed.relay.ack(B, &first.id).await.unwrap();

    bed.clock.advance(Duration::from_secs(8 * 86_400));
    let again = bed.relay.submit(A, &signed).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);
    assert_eq!(again.recipients, first.recipients);
    assert!(
        bed.relay
            .inbox(B, 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "a delivered package is never offered again"
    );

    // Same DocumentId, different content: refused, nothing queued.
    let other = bed.sign(A, &document(A, &[B], "doc-dup", "Lần hai, nội dung khác"));
    let err = bed.relay.submit(A, &other).await.unwrap_err();
    assert_eq!(err.code, "document_id_conflict");
    assert_eq!(err.status, 409);
    assert_eq!(bed.queued_total().await, 0);
}

#[tokio::test]
async fn a_resubmission_before_delivery_is_not_queued_twice() {
    let bed = Bed::new();
    let signed = bed.sign(A, &document(A, &[B], "doc-twice", "Hai lần"));
    let first = bed.relay.submit(A, &signed).await.unwrap();
    let second = bed.relay.submit(A, &signed).await.unwrap();
    assert_eq!(first.id, second.id);
    let items = bed.relay.inbox(B, 10, Duration::ZERO).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(bed.relay.counters().duplicates, 1);
    assert_eq!(bed.relay.counters().accepted, 1);
}

/// Each refusal: the code, the HTTP status, and nothing queued or tracked anywhere.
async fn refused(bed: &Bed, unit: &str, body: &[u8], code: &str, status: u16) {
    let err = bed.relay.submit(unit, body).await.unwrap_err();
    assert_eq!(err.code, code, "{err} {:?}", err.problems);
    assert_eq!(err.status, status, "{err}");
    assert!(!err.vi.is_empty() && !err.en.is_empty());
    assert_eq!(
        bed.queued_total().await,
        0,
        "{code}: nothing may be enqueued"
    );
    for u in [A, B, C, B1, S] {
        for role in [Role::Sent, Role::Received] {
            let listed = bed
                .relay
                .packages(
                    u,
                    &PackageQuery {
                        role,
                        limit: 10,
                        ..Default::default()
                    },
                )
                .unwrap();
            assert!(listed.is_empty(), "{code}: nothing may be tracked");
        }
    }
}

#[tokio::test]
async fn every_bad_input_class_is_refused_with_its_code_and_changes_nothing() {
    let bed = Bed::new();
    let good = document(A, &[B], "doc-bad", "Thử");

    // Every rejected example of the corpus (schemas/examples/README.md), at the default limits.
    let table = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schemas/examples/README.md"
    ))
    .unwrap();
    let mut checked = 0;
    for line in table.lines().filter(|l| l.starts_with("| `invalid/")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (file, code, limits) = (cells[1].trim_matches('`'), cells[3], cells[4]);
        if limits != "default" {
            continue;
        }
        let body = std::fs::read(format!(
            "{}/../../schemas/examples/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        refused(&bed, A, &body, code, 400).await;
        checked += 1;
    }
    assert!(checked >= 11, "the corpus table was read ({checked} rows)");
    let deep = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
    refused(&bed, A, deep.as_bytes(), "too_deep", 400).await;
    let text = String::from_utf8(good.clone()).unwrap();
    let no_to = remove_between(&text, "<To>", "</To>");
    refused(&bed, A, no_to.as_bytes(), "no_to", 400).await;
    let bad_b64 = replace_between(
        &text,
        "<ContentTransferEncoded>",
        "</ContentTransferEncoded>",
        "***not base64***",
    );
    refused(&bed, A, &bad_b64.into_bytes(), "bad_attachment", 400).await;

    // Unsigned, tampered, signed by someone else, submitted for someone else.
    refused(&bed, A, &good, "signature_missing", 400).await;
    let tampered = String::from_utf8(bed.sign(A, &good))
        .unwrap()
        .replace("Thử", "Thử đã sửa");
    refused(&bed, A, tampered.as_bytes(), "signature_invalid", 400).await;
    refused(&bed, A, &bed.sign(B, &good), "signer_not_sender", 403).await;
    refused(&bed, B, &bed.sign(A, &good), "sender_mismatch", 403).await;

    // Recipients the directory does not know or has suspended.
    let unknown = bed.sign(A, &document(A, &[B, "000.00.00.H77"], "doc-u", "x"));
    refused(&bed, A, &unknown, "unknown_recipient", 422).await;
    let nobody = bed.sign(A, &document(A, &["children:000.00.00.H42"], "doc-n", "x"));
    refused(&bed, A, &nobody, "unknown_recipient", 422).await;
    let suspended = bed.sign(A, &document(A, &[B, S], "doc-s", "x"));
    refused(&bed, A, &suspended, "recipient_suspended", 422).await;

    // A status about a document the unit never received.
    let st = bed.sign(B, &status(B, A, "never-sent", "01", None));
    refused(&bed, B, &st, "status_unknown_document", 422).await;
    // And a withdrawal (13) of a document the unit never sent.
    let st = bed.sign(B, &status(B, B, "never-sent", "13", None));
    refused(&bed, B, &st, "status_unknown_document", 422).await;
}

#[tokio::test]
async fn oversized_packages_are_refused_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let bed = Bed::new();
    drop(dir);
    let mut big = document(A, &[B], "doc-big", "x");
    big.extend(std::iter::repeat_n(b' ', 101 * 1024 * 1024));
    refused(&bed, A, &big, "too_large", 413).await;
}

#[tokio::test]
async fn expired_and_revoked_certificates_are_refused() {
    let mut bed = Bed::new();
    let good = document(A, &[B], "doc-cert", "x");
    // A certificate of A issued three years ago (valid two years) by the same CA.
    let three_years_ago = unix(SystemTime::now()) - 3 * 365 * 86_400;
    let old = dsig::pki::issue(
        &bed.pki.ca.cert_pem,
        &bed.pki.ca.key_pem,
        A,
        None,
        three_years_ago,
    )
    .unwrap();
    let old_key = dsig::SigningKey::from_pem(&old.key_pem, &old.cert_pem).unwrap();
    let signed = dsig::sign(&good, &old_key, dsig::Role::Sender).unwrap();
    refused(&bed, A, &signed, "certificate_expired", 403).await;

    // Revoke A's current certificate; the relay restarts with the new CRL.
    let crl = dsig::pki::revoke(
        &bed.pki.ca.cert_pem,
        &bed.pki.ca.key_pem,
        &bed.pki.crl_pem,
        &bed.issued(A).cert_pem,
        unix(bed.clock.now()),
    )
    .unwrap();
    bed.reopen(Some(&crl));
    refused(&bed, A, &bed.sign(A, &good), "certificate_revoked", 403).await;
}

fn remove_between(text: &str, open: &str, close: &str) -> String {
    let start = text.find(open).unwrap();
    let end = text[start..].find(close).unwrap() + start + close.len();
    format!("{}{}", &text[..start], &text[end..])
}

fn replace_between(text: &str, open: &str, close: &str, with: &str) -> String {
    let start = text.find(open).unwrap() + open.len();
    let end = text[start..].find(close).unwrap() + start;
    format!("{}{}{}", &text[..start], with, &text[end..])
}

#[tokio::test]
async fn a_huge_subject_is_shortened_in_envelopes_but_kept_in_the_package() {
    let bed = Bed::new();
    let subject = "Trích yếu rất dài ".repeat(100);
    let accepted = bed
        .relay
        .submit(A, &bed.sign(A, &document(A, &[B], "doc-long", &subject)))
        .await
        .unwrap();
    let items = bed.relay.inbox(B, 10, Duration::ZERO).await.unwrap();
    assert_eq!(items[0].subject.chars().count(), 501);
    assert!(items[0].subject.ends_with('…'));
    let body = bed.relay.package_body(B, &accepted.id).unwrap();
    let Package::Document(doc) = edxml::read(&body, &edxml::Limits::default())
        .unwrap()
        .package
    else {
        panic!("a document")
    };
    assert_eq!(doc.subject.as_deref(), Some(subject.trim_end()));
}

/// The edge's read, `fetch_body`, reads a small body on the caller's thread and a large one on a
/// blocking thread: both give the archived bytes to a recipient and "not found" to anyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_reads_the_same_on_both_paths_and_only_for_its_recipients() {
    let bed = Bed::new();
    // 10 KB and 600 KB attachments: either side of the 256 KiB inline bound once base64'd.
    for (doc, size) in [("small", 10 * 1024), ("large", 600 * 1024)] {
        let xml = document_with(A, &[B], doc, "Công văn", vec![b'x'; size]);
        let accepted = bed.relay.submit(A, &bed.sign(A, &xml)).await.unwrap();
        let body = bed.relay.fetch_body(B, &accepted.id).await.unwrap();
        assert_eq!(body, bed.relay.package_body(B, &accepted.id).unwrap());
        assert!(body.len() > size, "{doc}: the sealed package, not a part");
        let trust = dsig::TrustStore::new(&bed.pki.ca.cert_pem, &bed.pki.crl_pem).unwrap();
        assert!(dsig::verify(&body, &trust, SystemTime::now()).is_valid());
        for stranger in [A, C] {
            let err = bed
                .relay
                .fetch_body(stranger, &accepted.id)
                .await
                .unwrap_err();
            assert_eq!(err.code, "not_found", "{doc} read by {stranger}");
        }
        let err = bed.relay.fetch_body(B, "no-such-id").await.unwrap_err();
        assert_eq!(err.code, "not_found");
    }
}
