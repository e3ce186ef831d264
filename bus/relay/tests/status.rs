//! Status packages: from a recipient back to the sender (and into tracking), a withdrawal (13)
//! from the sender out to the recipients and their 15/16 back; access to tracking; rebuilding the
//! views from the event log.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use relay::{PackageQuery, Role, Tracking};

async fn receive_all(bed: &Bed, unit: &str) -> Vec<relay::InboxItem> {
    let items = bed.relay.inbox(unit, 100, Duration::ZERO).await.unwrap();
    for item in &items {
        bed.relay.package_body(unit, &item.id).unwrap();
        bed.relay.ack(unit, &item.id).await.unwrap();
    }
    items
}

fn row<'a>(t: &'a Tracking, unit: &str) -> &'a relay::RecipientTrack {
    t.recipients.iter().find(|r| r.unit == unit).unwrap()
}

#[tokio::test]
async fn statuses_route_back_to_the_sender_and_into_tracking() {
    let bed = Bed::new();
    let doc = bed
        .relay
        .submit(A, &bed.sign(A, &document(A, &[B, C], "doc-st", "Báo cáo")))
        .await
        .unwrap();
    receive_all(&bed, B).await;
    receive_all(&bed, C).await;

    // B: arrived, then registered. C: rejects with a reason.
    for (unit, code, why) in [
        (B, "01", None),
        (B, "03", None),
        (C, "02", Some("Sai nơi nhận")),
    ] {
        let st = bed.sign(unit, &status(unit, A, "doc-st", code, why));
        let accepted = bed.relay.submit(unit, &st).await.unwrap();
        assert_eq!(accepted.recipients.len(), 1);
        assert_eq!(
            accepted.recipients[0].unit, A,
            "a status goes to the original sender"
        );
    }
    let at_sender = receive_all(&bed, A).await;
    assert_eq!(at_sender.len(), 3);
    assert!(
        at_sender
            .iter()
            .all(|i| i.kind == broker::MessageKind::Status)
    );
    assert!(at_sender.iter().all(|i| i.document_id == "doc-st"));

    let t = bed.relay.tracking(A, &doc.id).unwrap();
    assert_eq!(row(&t, B).state, "registered");
    let b_codes: Vec<Option<&str>> = row(&t, B)
        .events
        .iter()
        .map(|e| e.status_code.as_deref())
        .collect();
    assert_eq!(b_codes, [None, None, Some("01"), Some("03")]);
    let c = row(&t, C);
    assert_eq!(c.state, "rejected");
    assert_eq!(
        c.events.last().unwrap().description.as_deref(),
        Some("Sai nơi nhận")
    );
    assert!(c.delivered);

    // "Not yet registered (03)" finds the package (C has not registered it); once both have, it
    // no longer does.
    let query = PackageQuery {
        role: Role::Sent,
        state: Some("not_registered".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(bed.relay.packages(A, &query).unwrap().len(), 1);
    let summary = &bed
        .relay
        .packages(
            A,
            &PackageQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap()[0];
    assert_eq!(
        (summary.recipients, summary.delivered, summary.registered),
        (2, 2, 1)
    );
}

#[tokio::test]
async fn a_withdrawal_reaches_every_recipient_and_their_answers_come_back() {
    let bed = Bed::new();
    let doc = bed
        .relay
        .submit(A, &bed.sign(A, &document(A, &[B, C], "doc-w", "Thu hồi")))
        .await
        .unwrap();
    receive_all(&bed, B).await;
    receive_all(&bed, C).await;

    let withdraw = bed.sign(A, &status(A, A, "doc-w", "13", Some("Ban hành nhầm")));
    let accepted = bed.relay.submit(A, &withdraw).await.unwrap();
    let mut to: Vec<&str> = accepted
        .recipients
        .iter()
        .map(|r| r.unit.as_str())
        .collect();
    to.sort();
    assert_eq!(to, [B, C]);
    for unit in [B, C] {
        let got = receive_all(&bed, unit).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, broker::MessageKind::Status);
    }
    let t = bed.relay.tracking(A, &doc.id).unwrap();
    assert_eq!(row(&t, B).state, "withdrawal_requested");
    assert_eq!(row(&t, C).state, "withdrawal_requested");

    bed.relay
        .submit(B, &bed.sign(B, &status(B, A, "doc-w", "15", None)))
        .await
        .unwrap();
    bed.relay
        .submit(
            C,
            &bed.sign(C, &status(C, A, "doc-w", "16", Some("Đã vào sổ"))),
        )
        .await
        .unwrap();
    assert_eq!(receive_all(&bed, A).await.len(), 2);
    let t = bed.relay.tracking(A, &doc.id).unwrap();
    assert_eq!(row(&t, B).state, "withdrawn");
    assert_eq!(row(&t, C).state, "withdrawal_refused");

    // A recipient cannot withdraw someone else's document.
    let err = bed
        .relay
        .submit(B, &bed.sign(B, &status(B, A, "doc-w", "13", None)))
        .await
        .unwrap_err();
    assert_eq!(err.code, "status_unknown_document");
}

#[tokio::test]
async fn a_repeated_status_is_delivered_once() {
    let bed = Bed::new();
    bed.relay
        .submit(A, &bed.sign(A, &document(A, &[B], "doc-r", "x")))
        .await
        .unwrap();
    receive_all(&bed, B).await;
    let st = bed.sign(B, &status(B, A, "doc-r", "01", None));
    let first = bed.relay.submit(B, &st).await.unwrap();
    let again = bed.relay.submit(B, &st).await.unwrap();
    assert_eq!(first.id, again.id);
    assert!(again.duplicate);
    assert_eq!(receive_all(&bed, A).await.len(), 1);
}

#[tokio::test]
async fn only_the_sender_and_the_recipients_see_a_package() {
    let bed = Bed::new();
    let doc = bed
        .relay
        .submit(A, &bed.sign(A, &document(A, &[B], "doc-p", "Mật")))
        .await
        .unwrap();
    // C is neither sender nor recipient: not found, for tracking, the body and the ack alike.
    assert_eq!(
        bed.relay.tracking(C, &doc.id).unwrap_err().code,
        "not_found"
    );
    assert_eq!(
        bed.relay.package_body(C, &doc.id).unwrap_err().code,
        "not_found"
    );
    assert_eq!(
        bed.relay.ack(C, &doc.id).await.unwrap_err().code,
        "not_found"
    );
    // C's inbox never shows it; B's does.
    assert!(
        bed.relay
            .inbox(C, 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    // The sender reads its own package's body? No: bodies are for recipients only.
    assert_eq!(
        bed.relay.package_body(A, &doc.id).unwrap_err().code,
        "not_found"
    );
    // A recipient sees only its own row.
    let t = bed.relay.tracking(B, &doc.id).unwrap();
    assert_eq!(t.recipients.len(), 1);
    assert_eq!(t.recipients[0].unit, B);
    assert_eq!(bed.relay.tracking(A, &doc.id).unwrap().recipients.len(), 1);
    assert_eq!(
        bed.relay.tracking(A, "no-such-id").unwrap_err().code,
        "not_found"
    );
}

#[tokio::test]
async fn tracking_rebuilt_from_the_event_log_equals_the_live_views() {
    let mut bed = Bed::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        let doc = document(A, &[B, C], &format!("doc-{i}"), &format!("Văn bản {i}"));
        ids.push(bed.relay.submit(A, &bed.sign(A, &doc)).await.unwrap().id);
    }
    receive_all(&bed, B).await;
    for i in 0..3 {
        let st = bed.sign(B, &status(B, A, &format!("doc-{i}"), "03", None));
        ids.push(bed.relay.submit(B, &st).await.unwrap().id);
    }
    let withdraw = bed.sign(A, &status(A, A, "doc-4", "13", None));
    ids.push(bed.relay.submit(A, &withdraw).await.unwrap().id);

    let snapshot = |bed: &Bed| -> Vec<Tracking> {
        ids.iter()
            .map(|id| bed.relay.tracking_any(id).unwrap())
            .collect()
    };
    let lists = |bed: &Bed| {
        let mut all = Vec::new();
        for u in [A, B, C] {
            for role in [Role::Sent, Role::Received] {
                all.push(
                    bed.relay
                        .packages(
                            u,
                            &PackageQuery {
                                role,
                                limit: 100,
                                ..Default::default()
                            },
                        )
                        .unwrap(),
                );
            }
        }
        all
    };
    let live = snapshot(&bed);
    let live_lists = lists(&bed);
    assert!(
        live.iter()
            .any(|t| t.recipients.iter().any(|r| r.state == "registered"))
    );

    // Lose every view (as if the index files were deleted): tracking is gone...
    for tree in [
        "trk_pkg", "trk_rcp", "trk_sent", "trk_recv", "trk_doc", "trk_got", "trk_meta",
    ] {
        bed.relay.store().tree(tree).unwrap().clear().unwrap();
    }
    assert_eq!(
        bed.relay.tracking_any(&ids[0]).unwrap_err().code,
        "not_found"
    );
    // ...and comes back, identical, from the event log alone.
    let folded = bed.relay.rebuild_tracking().unwrap();
    assert!(folded >= ids.len() as u64, "{folded} events folded");
    assert_eq!(snapshot(&bed), live);
    assert_eq!(lists(&bed), live_lists);

    // And after a restart, the same again (views reopen from disk, nothing to catch up).
    bed.relay.flush().await.unwrap();
    bed.reopen(None);
    assert_eq!(snapshot(&bed), live);
    // A resubmission after the rebuild is still recognised.
    let again = bed
        .relay
        .submit(A, &bed.sign(A, &document(A, &[B, C], "doc-0", "Văn bản 0")))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.id, ids[0]);
}
