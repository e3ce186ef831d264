//! The operator overview on the embedded backend: mailboxes worst first, dead letters with their
//! reasons and re-drive, per-minute rates and signature failures, all on a manual clock.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use broker::Broker;
use common::*;

async fn send(bed: &Bed, to: &[&str], doc: &str) -> String {
    let signed = bed.sign(A, &document(A, to, doc, &format!("Công văn {doc}")));
    bed.relay.submit(A, &signed).await.unwrap().id
}

#[tokio::test]
async fn mailboxes_come_worst_first_by_oldest_age_then_depth_with_names_and_totals() {
    let bed = Bed::new();
    send(&bed, &[B], "doc-old").await;
    bed.clock.advance(Duration::from_secs(600));
    send(&bed, &[C], "doc-c1").await;
    send(&bed, &[C], "doc-c2").await;
    send(&bed, &[B1], "doc-b1").await;
    bed.clock.advance(Duration::from_secs(30));

    let o = bed.relay.overview(0).await.unwrap();
    assert_eq!(o.backend, "embedded");
    assert!(o.live && o.broker_up && o.broker_error.is_none());
    let order: Vec<&str> = o.mailboxes.iter().map(|m| m.unit.as_str()).collect();
    assert_eq!(
        order,
        [B, C, B1],
        "oldest first, then the deeper of equal ages"
    );
    assert_eq!(o.mailboxes[0].oldest_ready_age_s, Some(630));
    assert_eq!(o.mailboxes[0].name.as_deref(), Some("UBND tỉnh Hà Nam"));
    assert_eq!(o.mailboxes[1].ready, 2);
    assert_eq!(o.mailboxes[1].oldest_ready_age_s, Some(30));
    assert_eq!(o.totals.mailboxes, 3);
    assert_eq!(o.totals.ready, 4);
    assert_eq!(o.totals.oldest_ready_age_s, Some(630));

    // Taking B's package out of the ready queue (a lease) makes B's age unknown: B drops last.
    let items = bed.relay.inbox(B, 10, Duration::ZERO).await.unwrap();
    assert_eq!(items.len(), 1);
    let o = bed.relay.overview(2).await.unwrap();
    let order: Vec<&str> = o.mailboxes.iter().map(|m| m.unit.as_str()).collect();
    assert_eq!(order, [C, B1], "top 2 of 3");
    assert_eq!((o.mailboxes_shown, o.mailboxes_total), (2, 3));
    assert_eq!(o.totals.in_flight, 1);
    assert_eq!(
        o.totals.ready, 3,
        "totals cover every mailbox, shown or not"
    );

    // Acked: B holds nothing and leaves the table.
    bed.relay.ack(B, &items[0].id).await.unwrap();
    let o = bed.relay.overview(0).await.unwrap();
    assert!(o.mailboxes.iter().all(|m| m.unit != B));
    assert_eq!(o.mailboxes_total, 2);
}

#[tokio::test]
async fn dead_letters_show_their_reasons_and_redrive_brings_them_back() {
    let bed = Bed::new();
    let first = send(&bed, &[B, C], "doc-dl1").await;
    bed.clock.advance(Duration::from_secs(60));
    let second = send(&bed, &[B], "doc-dl2").await;
    let broker = bed.relay.broker();
    broker
        .dead_letter(B, &first, "recipient DMS refuses the attachment")
        .await
        .unwrap();
    bed.clock.advance(Duration::from_secs(60));
    broker
        .dead_letter(B, &second, "too many deliveries")
        .await
        .unwrap();

    let o = bed.relay.overview(0).await.unwrap();
    assert_eq!(o.dead_letters_total, 2);
    assert_eq!(o.totals.dead_lettered, 2);
    let rows: Vec<(&str, &str, &str)> = o
        .dead_letters
        .iter()
        .map(|d| (d.unit.as_str(), d.id.as_str(), d.reason.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            (B, second.as_str(), "too many deliveries"),
            (B, first.as_str(), "recipient DMS refuses the attachment"),
        ],
        "newest first"
    );
    assert_eq!(o.dead_letters[0].from, A);
    assert_eq!(o.dead_letters[0].document_id, "doc-dl2");
    assert!(o.dead_letters[0].at > o.dead_letters[1].at);
    let b = o.mailboxes.iter().find(|m| m.unit == B).unwrap();
    assert_eq!((b.ready, b.dead_lettered), (0, 2));
    assert_eq!(
        o.mailboxes
            .iter()
            .find(|m| m.unit == C)
            .unwrap()
            .dead_lettered,
        0,
        "C's copy of the same package is untouched"
    );

    assert_eq!(bed.relay.redrive(B).await.unwrap(), 2);
    let o = bed.relay.overview(0).await.unwrap();
    assert!(o.dead_letters.is_empty());
    assert_eq!(o.dead_letters_total, 0);
    let mut offered: Vec<String> = bed
        .relay
        .inbox(B, 10, Duration::ZERO)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    offered.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(offered, expected, "both are offered to B again");
    assert_eq!(
        bed.relay.redrive(B).await.unwrap(),
        0,
        "nothing left to re-drive"
    );

    let err = bed.relay.redrive("").await.unwrap_err();
    assert_eq!((err.code, err.status), ("invalid_mailbox", 400));
    assert!(!err.vi.is_empty() && !err.en.is_empty());
}

#[tokio::test]
async fn rates_count_accepted_delivered_and_rejected_per_minute_for_an_hour() {
    let bed = Bed::new();
    // Start on a minute boundary so the advances below land in known minutes.
    let now = unix(broker::Clock::now(&*bed.clock)) as u64;
    bed.clock.advance(Duration::from_secs(60 - now % 60));

    let signed = bed.sign(A, &document(A, &[B], "doc-r1", "Công văn doc-r1"));
    let id = bed.relay.submit(A, &signed).await.unwrap().id;
    // A resubmission is not a new acceptance.
    assert!(bed.relay.submit(A, &signed).await.unwrap().duplicate);
    bed.relay.inbox(B, 10, Duration::ZERO).await.unwrap();
    bed.relay.ack(B, &id).await.unwrap();
    bed.relay.ack(B, &id).await.unwrap(); // an ack repeated is not a second delivery
    bed.clock.advance(Duration::from_secs(120));
    send(&bed, &[C], "doc-r2").await;
    send(&bed, &[C], "doc-r3").await;
    // Refused: unsigned (a signature failure), and an unknown recipient (not one).
    let unsigned = document(A, &[B], "doc-r4", "x");
    assert!(bed.relay.submit(A, &unsigned).await.is_err());
    let unknown = bed.sign(A, &document(A, &["000.00.00.H77"], "doc-r5", "x"));
    assert!(bed.relay.submit(A, &unknown).await.is_err());

    let o = bed.relay.overview(0).await.unwrap();
    assert_eq!(o.rates.minutes.len(), 60);
    let last = &o.rates.minutes[59];
    assert_eq!((last.accepted, last.delivered, last.rejected), (2, 0, 2));
    let first_minute = &o.rates.minutes[57];
    assert_eq!(
        (
            first_minute.accepted,
            first_minute.delivered,
            first_minute.rejected
        ),
        (1, 1, 0)
    );
    assert_eq!(o.rates.minutes[58].accepted, 0, "a quiet minute is zero");
    assert!(o.rates.minutes[57].at < o.rates.minutes[58].at);
    assert_eq!(
        (o.rates.accepted, o.rates.delivered, o.rates.rejected),
        (3, 1, 2)
    );
    assert_eq!(o.signature_failures.total, 1);
    assert_eq!(o.signature_failures.last_hour, 1);

    // An hour later the ring has forgotten it; the total since start has not.
    bed.clock.advance(Duration::from_secs(3600));
    let o = bed.relay.overview(0).await.unwrap();
    assert_eq!(
        (o.rates.accepted, o.rates.delivered, o.rates.rejected),
        (0, 0, 0)
    );
    assert!(o.rates.minutes.iter().all(|m| m.accepted == 0));
    assert_eq!(o.signature_failures.last_hour, 0);
    assert_eq!(o.signature_failures.total, 1);
}

#[tokio::test]
async fn the_overview_serializes_to_the_documented_json_fields() {
    let bed = Bed::new();
    send(&bed, &[B], "doc-j").await;
    let o = bed.relay.overview(10).await.unwrap();
    let v = serde_json::to_value(&o).unwrap();
    for key in [
        "generated_at",
        "backend",
        "live",
        "broker_up",
        "broker_error",
        "stats_at",
        "stats_age_s",
        "stats_fresh",
        "stats_error",
        "mailboxes",
        "mailboxes_shown",
        "mailboxes_total",
        "totals",
        "dead_letters",
        "dead_letters_total",
        "rates",
        "signature_failures",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["mailboxes"][0]["unit"], B);
    assert_eq!(v["mailboxes"][0]["oldest_ready_age_s"], 0);
    // The embedded broker reads in milliseconds: the figures are read for this very call.
    assert_eq!(v["stats_fresh"], true);
    assert_eq!(v["stats_age_s"], 0);
    assert_eq!(v["stats_at"], v["generated_at"]);
    assert!(v["stats_error"].is_null());
    let back: relay::Overview = serde_json::from_value(v).unwrap();
    assert_eq!(
        back, o,
        "what the portal serves, truc ops queues reads back"
    );
}

#[tokio::test]
async fn offline_overview_reads_the_same_mailboxes_without_rates() {
    let bed = Bed::new();
    send(&bed, &[C], "doc-off").await;
    let o = relay::overview_offline(
        bed.relay.broker(),
        bed.relay.directory(),
        broker::Clock::now(&*bed.clock),
        0,
    )
    .await
    .unwrap();
    assert!(!o.live);
    assert_eq!(o.mailboxes.len(), 1);
    assert_eq!(o.mailboxes[0].unit, C);
    assert_eq!(o.rates.accepted, 0);
}
