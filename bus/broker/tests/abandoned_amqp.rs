//! Broker calls abandoned half-way, against the real RabbitMQ on 127.0.0.1:5672
//! (`TRUC_TEST_AMQP_URL` overrides). The relay's callers do abandon calls: hyper drops an HTTP
//! handler (and the `fetch` or `ack` it awaits) when the unit's adapter goes away mid long-poll,
//! and a timeout drops what it wraps. A call dropped between a RabbitMQ operation and this
//! process's record of it must leave nothing taken and offered to nobody: a `basic.get` whose
//! answer nobody reads leaves its message unacknowledged on a live channel until the connection
//! closes (days, in production), and so does a lease taken out of the map and never settled.
//!
//! The clock is a manual one that never moves: no lease ever runs out here, so everything a
//! dropped call took must come back because the call gave it back, not because time passed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use broker::contract::abandoned_at;
use broker::{
    AckOutcome, AmqpBroker, AmqpConfig, Broker, ManualClock, Message, Publish, StatsSource,
};
use store::Store;

fn url() -> String {
    std::env::var("TRUC_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

fn unique_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "test.abandon.{}.{}.{nanos}.",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The contract suite's envelope, queued now.
fn message(id: &str) -> Message {
    broker::contract::message(id, SystemTime::now())
}

/// A broker under a unique prefix, deleted (queues and exchanges) when dropped.
struct Rig {
    broker: AmqpBroker,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = AmqpConfig {
            prefix: unique_prefix(),
            lease: Duration::from_secs(300),
            clock: Arc::new(ManualClock::new(
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
            )),
            poll: Duration::from_millis(20),
            ..AmqpConfig::new(url())
        };
        let broker = AmqpBroker::open(store, config)
            .await
            .expect("RabbitMQ must run on 127.0.0.1:5672 (bash .ci/run starts it)");
        Rig { broker, _dir: dir }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let broker = self.broker.clone();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move { broker.delete(&[]).await })
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("cleanup failed: {e}");
        }
    }
}

/// Fetches and acks until every id of `want` is acked or nothing new came for `quiet`; returns
/// the ids still missing.
async fn drain(
    broker: &AmqpBroker,
    mailbox: &str,
    want: &BTreeSet<String>,
    acked: &mut BTreeSet<String>,
    quiet: Duration,
) -> BTreeSet<String> {
    let mut last_new = Instant::now();
    while acked.len() < want.len() && last_new.elapsed() < quiet {
        let got = broker
            .fetch(mailbox, 50, Duration::from_millis(200))
            .await
            .unwrap();
        for d in got {
            assert!(
                want.contains(&d.message.id),
                "offered {:?}, which was never published",
                d.message.id
            );
            assert!(
                !acked.contains(&d.message.id),
                "{} offered again after it was acked",
                d.message.id
            );
            assert_eq!(
                broker.ack(mailbox, &d.message.id).await.unwrap(),
                AckOutcome::Acked
            );
            acked.insert(d.message.id);
            last_new = Instant::now();
        }
    }
    want.difference(acked).cloned().collect()
}

/// RabbitMQ's own count of the mailbox's unacknowledged messages (the management API's figures
/// lag by a few seconds: waits up to 20 s for them to settle at zero).
async fn unacked_settles_at_zero(broker: &AmqpBroker, mailbox: &str) -> u64 {
    let t0 = Instant::now();
    loop {
        let stats = broker.stats().await.unwrap();
        assert_eq!(
            broker.stats_source(),
            Some(StatsSource::Management),
            "RabbitMQ's management API must answer (bash .ci/run enables it): only it counts the unacknowledged messages this process no longer knows of"
        );
        let row = stats.iter().find(|s| s.mailbox == mailbox);
        let in_flight = row.map_or(0, |s| s.in_flight);
        if in_flight == 0 || t0.elapsed() > Duration::from_secs(20) {
            return in_flight;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_abandoned_at_any_moment_gives_back_what_it_took() {
    const N: usize = 400;
    let rig = Rig::new().await;
    let broker = &rig.broker;
    let mailbox = "000.00.00.H41";
    let mut want = BTreeSet::new();
    let mut acked = BTreeSet::new();
    let mut completed = 0usize;
    for i in 0..N {
        let id = format!("m{i:04}");
        broker
            .publish(vec![Publish {
                mailbox: mailbox.to_owned(),
                message: message(&id),
            }])
            .await
            .unwrap();
        want.insert(id);
        if let Some(got) = abandoned_at(i, broker.fetch(mailbox, 1, Duration::ZERO)).await {
            completed += 1;
            for d in got.unwrap() {
                broker.ack(mailbox, &d.message.id).await.unwrap();
                acked.insert(d.message.id);
            }
        }
    }
    let abandoned = N - completed;
    println!("{N} fetches: {completed} completed, {abandoned} abandoned by the timeout");
    assert!(
        abandoned >= N / 8 && completed >= N / 8,
        "the cuts must land on both sides of the calls for this test to mean anything"
    );
    let missing = drain(broker, mailbox, &want, &mut acked, Duration::from_secs(5)).await;
    assert!(
        missing.is_empty(),
        "{} of {N} messages were taken by an abandoned fetch and never offered again (no lease runs out here): {:?}",
        missing.len(),
        missing.iter().take(10).collect::<Vec<_>>()
    );
    assert_eq!(
        unacked_settles_at_zero(broker, mailbox).await,
        0,
        "RabbitMQ still holds messages unacknowledged after every id was acked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_abandoned_at_any_moment_still_settles_the_message() {
    const N: usize = 300;
    let rig = Rig::new().await;
    let broker = &rig.broker;
    let mailbox = "000.00.00.H42";
    let batch: Vec<Publish> = (0..N)
        .map(|i| Publish {
            mailbox: mailbox.to_owned(),
            message: message(&format!("a{i:04}")),
        })
        .collect();
    broker.publish(batch).await.unwrap();
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut i = 0usize;
    let mut seen = BTreeSet::new();
    let t0 = Instant::now();
    while seen.len() < N && t0.elapsed() < Duration::from_secs(60) {
        for d in broker
            .fetch(mailbox, 10, Duration::from_millis(200))
            .await
            .unwrap()
        {
            assert!(
                seen.insert(d.message.id.clone()),
                "{} offered again after an ack (abandoned or not) was sent for it",
                d.message.id
            );
            let cut_short = abandoned_at(i, broker.ack(mailbox, &d.message.id))
                .await
                .is_none();
            i += 1;
            // Like an adapter whose ack got no answer: ack again, until the relay answers.
            let outcome = broker.ack(mailbox, &d.message.id).await.unwrap();
            let key = match (cut_short, outcome) {
                (false, AckOutcome::AlreadyAcked) => "completed",
                (true, AckOutcome::Acked) => "abandoned, the second ack did it",
                (true, AckOutcome::AlreadyAcked) => "abandoned, done by the time of the second",
                (false, AckOutcome::Acked) => panic!("a completed ack left the message unacked"),
            };
            *outcomes.entry(key).or_default() += 1;
        }
    }
    println!("{N} acks: {outcomes:?}");
    assert_eq!(seen.len(), N, "not every message was offered");
    let cut = N - outcomes.get("completed").copied().unwrap_or(0);
    assert!(
        cut >= N / 8,
        "only {cut} of {N} acks were cut: too few for this test to mean anything"
    );
    assert_eq!(
        unacked_settles_at_zero(broker, mailbox).await,
        0,
        "an abandoned ack left its message unacknowledged at RabbitMQ"
    );
    // Nothing comes back: every message was settled at RabbitMQ or is known to the ledger.
    let again = broker
        .fetch(mailbox, 10, Duration::from_millis(500))
        .await
        .unwrap();
    assert!(
        again.is_empty(),
        "offered again after its ack: {:?}",
        again.iter().map(|d| &d.message.id).collect::<Vec<_>>()
    );
}
