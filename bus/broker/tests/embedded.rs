//! Embedded-backend behaviour beyond the shared contract: duplicate publishes, validation,
//! error texts, and the run-time backend enum.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use broker::contract::message;
use broker::{AnyBroker, Broker, EmbeddedBroker, EmbeddedConfig, Fault, Publish};
use store::Store;

fn open(dir: &std::path::Path) -> EmbeddedBroker {
    EmbeddedBroker::open(Store::open(dir).unwrap(), EmbeddedConfig::default()).unwrap()
}

fn publish(mailbox: &str, id: &str) -> Publish {
    Publish {
        mailbox: mailbox.into(),
        message: message(id, std::time::SystemTime::now()),
    }
}

#[tokio::test]
async fn republishing_a_queued_or_acked_id_never_delivers_it_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let b = open(tmp.path());
    let mb = "000.00.00.H41";
    // Same id twice in one batch and again in a later batch: one message.
    b.publish(vec![publish(mb, "p1"), publish(mb, "p1")])
        .await
        .unwrap();
    b.publish(vec![publish(mb, "p1")]).await.unwrap();
    let got = b.fetch(mb, 10, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 1);
    b.ack(mb, "p1").await.unwrap();
    // A relay retry after the recipient acked must not deliver it again.
    b.publish(vec![publish(mb, "p1")]).await.unwrap();
    assert!(b.fetch(mb, 10, Duration::ZERO).await.unwrap().is_empty());
    // The same id to another mailbox is a different delivery.
    b.publish(vec![publish("000.00.00.H42", "p1")])
        .await
        .unwrap();
    assert_eq!(
        b.fetch("000.00.00.H42", 10, Duration::ZERO)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn unusable_mailbox_names_are_refused_with_a_bilingual_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let b = open(tmp.path());
    for bad in ["", "a\0b", "line\nbreak", &"x".repeat(200)] {
        let err = b.publish(vec![publish(bad, "p")]).await.unwrap_err();
        assert_eq!(err.code(), "broker.invalid_mailbox");
        assert_eq!(err.fault(), Fault::Caller);
        assert!(
            err.message_vi().contains("mã định danh"),
            "{}",
            err.message_vi()
        );
        assert!(
            err.message_en().contains("unit code"),
            "{}",
            err.message_en()
        );
        assert!(b.fetch(bad, 1, Duration::ZERO).await.is_err());
    }
    // Nothing was queued anywhere by the refused batch.
    assert!(b.stats().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_batch_with_one_bad_mailbox_queues_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let b = open(tmp.path());
    let err = b
        .publish(vec![publish("000.00.00.H41", "p"), publish("", "p")])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "broker.invalid_mailbox");
    assert!(
        b.fetch("000.00.00.H41", 1, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn unknown_delivery_error_names_mailbox_and_id_in_both_languages() {
    let tmp = tempfile::tempdir().unwrap();
    let b = open(tmp.path());
    let err = b.ack("000.00.00.H41", "ghost").await.unwrap_err();
    for text in [err.message_vi(), err.message_en()] {
        assert!(
            text.contains("000.00.00.H41") && text.contains("ghost"),
            "{text}"
        );
    }
    let err = b
        .dead_letter("000.00.00.H41", "ghost", "x")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "broker.unknown_delivery");
}

#[tokio::test]
async fn the_runtime_enum_forwards_to_the_embedded_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let b = AnyBroker::Embedded(open(tmp.path()));
    b.publish(vec![publish("000.00.00.H41", "p1")])
        .await
        .unwrap();
    let got = b.fetch("000.00.00.H41", 5, Duration::ZERO).await.unwrap();
    assert_eq!(got[0].message.id, "p1");
    let stats = b.stats().await.unwrap();
    assert_eq!((stats[0].ready, stats[0].in_flight), (0, 1));
}

#[tokio::test]
async fn counters_are_rebuilt_from_the_data_on_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let b = open(tmp.path());
        b.publish(
            (0..5)
                .map(|i| publish("000.00.00.H41", &format!("p{i}")))
                .collect(),
        )
        .await
        .unwrap();
        b.fetch("000.00.00.H41", 2, Duration::ZERO).await.unwrap();
        b.ack("000.00.00.H41", "p0").await.unwrap();
        b.dead_letter("000.00.00.H41", "p1", "bad").await.unwrap();
    }
    let b = open(tmp.path());
    let stats = b.stats().await.unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(
        (stats[0].ready, stats[0].in_flight, stats[0].dead_lettered),
        (3, 0, 1)
    );
    assert!(stats[0].oldest_ready_age.is_some());
}

#[tokio::test]
async fn a_waiting_fetch_gets_a_message_whose_lease_runs_out() {
    let tmp = tempfile::tempdir().unwrap();
    let b = EmbeddedBroker::open(
        Store::open(tmp.path()).unwrap(),
        EmbeddedConfig {
            lease: Duration::from_millis(200),
            ..EmbeddedConfig::default()
        },
    )
    .unwrap();
    let mb = "000.00.00.H41";
    b.publish(vec![publish(mb, "p1")]).await.unwrap();
    assert_eq!(b.fetch(mb, 1, Duration::ZERO).await.unwrap().len(), 1);
    // Nothing is published while this waits: only the lease running out can answer it.
    let got = tokio::time::timeout(
        Duration::from_secs(30),
        b.fetch(mb, 1, Duration::from_secs(60)),
    )
    .await
    .expect("the waiting fetch did not get the expired message")
    .unwrap();
    assert_eq!(got[0].message.id, "p1");
    assert_eq!(got[0].delivery_count, 2);
}

#[tokio::test]
async fn old_ack_tombstones_can_be_forgotten() {
    let tmp = tempfile::tempdir().unwrap();
    let b = open(tmp.path());
    let mb = "000.00.00.H41";
    b.publish(vec![publish(mb, "old")]).await.unwrap();
    b.ack(mb, "old").await.unwrap();
    let cutoff = std::time::SystemTime::now() + Duration::from_secs(1);
    b.publish(vec![publish(mb, "recent")]).await.unwrap();
    assert_eq!(b.forget_acked_before(cutoff).await.unwrap(), 1);
    // Forgotten: the id is as if never seen.
    let err = b.ack(mb, "old").await.unwrap_err();
    assert_eq!(err.code(), "broker.unknown_delivery");
    // Queued messages are untouched.
    assert_eq!(
        b.fetch(mb, 10, Duration::ZERO).await.unwrap()[0].message.id,
        "recent"
    );
}
