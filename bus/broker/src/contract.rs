//! The contract every [`Broker`] backend must meet, written once as generic async functions over
//! a [`Harness`] (which opens, closes and reopens one backend over the same durable state and
//! makes lease time pass). [`contract_tests!`](crate::contract_tests) turns them into one
//! `#[tokio::test]` each, so a new backend runs the whole suite with one line.
//!
//! This is test code shipped in the library so other backends' tests can reach it; it panics on
//! failure like any test.
//!
//! How far each item holds per backend (the suite runs unchanged against both):
//! - "acked ids are remembered" (`AlreadyAcked` after a restart, an acked id republished is not
//!   offered again): the embedded backend keeps tombstones in its store; the RabbitMQ backend
//!   keeps an ack ledger in the relay's store and skips (acks) a ledgered id when a fetch meets
//!   it. With several relay nodes on one RabbitMQ, each node's ledger knows only the acks made
//!   through that node.
//! - "a lease ends, the message is offered again": RabbitMQ has no lease, so the backend keeps
//!   one per delivery tag and nacks (requeue) at expiry; the lease lives on the node that
//!   fetched, and is lost with its connection (the message comes back: at-least-once).
//! - `delivery_count` on RabbitMQ classic queues is exact for deliveries made by this process;
//!   after a restart a redelivery says at least 2 (the redelivered flag), as the suite asks.
//! - `stats` on RabbitMQ lists the mailboxes the process declared since it started.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::{AckOutcome, Broker, BrokerError, Digest, Message, MessageKind, Publish};

/// Opens one backend over durable state that outlives it, and controls lease time.
pub trait Harness: Send {
    type Backend: Broker + Clone + 'static;
    /// Opens the backend (the first time, or again after [`Harness::close`]: a restart).
    fn open(&mut self) -> impl Future<Output = Self::Backend> + Send;
    /// Closes the backend completely (the caller holds no other handle), like a process exit.
    fn close(&mut self, broker: Self::Backend) -> impl Future<Output = ()> + Send;
    /// Makes `by` pass for leases.
    fn advance(&self, by: Duration) -> impl Future<Output = ()> + Send;
    /// The lease the backend was opened with.
    fn lease(&self) -> Duration;
    /// "Now" as the backend sees it.
    fn now(&self) -> SystemTime;
    /// A mailbox name private to this harness (several runs may share one server).
    fn mailbox(&self, name: &str) -> String;
}

/// A small envelope with id `id`.
pub fn message(id: &str, queued_at: SystemTime) -> Message {
    Message {
        id: id.to_owned(),
        kind: MessageKind::Package,
        from: "000.00.00.G22".to_owned(),
        document_id: format!("000.00.00.G22,2026/11/23,{id}/QD-TTg"),
        subject: format!("Văn bản {id}"),
        size: 10_240,
        digest: Digest::of(id.as_bytes()),
        queued_at,
    }
}

fn publish(mailbox: &str, id: &str, at: SystemTime) -> Publish {
    Publish {
        mailbox: mailbox.to_owned(),
        message: message(id, at),
    }
}

fn ids(deliveries: &[crate::Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.message.id.clone()).collect()
}

const NO_WAIT: Duration = Duration::ZERO;

/// Messages come out of a mailbox in publish order, across single and batch publishes, and a
/// fetch returns at most `max`.
pub async fn fifo_per_mailbox<H: Harness>(h: &mut H) {
    let b = h.open().await;
    let mb = h.mailbox("fifo");
    let now = h.now();
    for id in ["a1", "a2", "a3"] {
        b.publish(vec![publish(&mb, id, now)]).await.unwrap();
    }
    b.publish(
        ["b1", "b2", "b3", "b4", "b5"]
            .iter()
            .map(|id| publish(&mb, id, now))
            .collect(),
    )
    .await
    .unwrap();
    let first = b.fetch(&mb, 2, NO_WAIT).await.unwrap();
    assert_eq!(ids(&first), ["a1", "a2"]);
    let rest = b.fetch(&mb, 100, NO_WAIT).await.unwrap();
    assert_eq!(ids(&rest), ["a3", "b1", "b2", "b3", "b4", "b5"]);
    assert!(
        rest.iter()
            .all(|d| d.delivery_count == 1 && d.mailbox == mb)
    );
    assert_eq!(rest[0].message, message("a3", now));
    h.close(b).await;
}

/// What is published to one mailbox is never seen, acked or counted in another.
pub async fn mailboxes_are_isolated<H: Harness>(h: &mut H) {
    let b = h.open().await;
    let (x, y) = (h.mailbox("x"), h.mailbox("y"));
    let now = h.now();
    b.publish(vec![publish(&x, "for-x", now), publish(&y, "for-y", now)])
        .await
        .unwrap();
    assert_eq!(ids(&b.fetch(&x, 10, NO_WAIT).await.unwrap()), ["for-x"]);
    let err = b.ack(&x, "for-y").await.unwrap_err();
    assert!(matches!(err, BrokerError::UnknownDelivery { .. }), "{err}");
    assert_eq!(ids(&b.fetch(&y, 10, NO_WAIT).await.unwrap()), ["for-y"]);
    assert!(
        b.fetch(&h.mailbox("z"), 10, NO_WAIT)
            .await
            .unwrap()
            .is_empty()
    );
    h.close(b).await;
}

/// A fetch waiting on an empty mailbox returns the message as soon as it is published.
pub async fn long_poll_wakes_on_publish<H: Harness>(h: &mut H) {
    let b = h.open().await;
    let mb = h.mailbox("longpoll");
    let waiter = {
        let (b, mb) = (b.clone(), mb.clone());
        tokio::spawn(async move { b.fetch(&mb, 10, Duration::from_secs(600)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    b.publish(vec![publish(&mb, "late", h.now())])
        .await
        .unwrap();
    // The guard is far shorter than the 600 s wait: only a wake-up can satisfy it.
    let got = tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .expect("the waiting fetch was not woken by the publish")
        .unwrap()
        .unwrap();
    assert_eq!(ids(&got), ["late"]);
    h.close(b).await;
}

/// A fetch on an empty mailbox returns an empty list once its wait is over.
pub async fn long_poll_returns_empty_after_wait<H: Harness>(h: &mut H) {
    let b = h.open().await;
    let got = b
        .fetch(&h.mailbox("quiet"), 10, Duration::from_millis(100))
        .await
        .unwrap();
    assert!(got.is_empty());
    h.close(b).await;
}

/// A fetched message is invisible while leased and offered again, with a higher delivery count,
/// once the lease runs out.
pub async fn lease_expiry_redelivers<H: Harness>(h: &mut H) {
    let b = h.open().await;
    let mb = h.mailbox("lease");
    b.publish(vec![publish(&mb, "m1", h.now())]).await.unwrap();
    let first = b.fetch(&mb, 10, NO_WAIT).await.unwrap();
    assert_eq!(ids(&first), ["m1"]);
    assert_eq!(first[0].delivery_count, 1);
    assert!(first[0].lease_until > h.now());
    assert!(b.fetch(&mb, 10, NO_WAIT).await.unwrap().is_empty());
    h.advance(h.lease() + Duration::from_secs(1)).await;
    let again = b.fetch(&mb, 10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(ids(&again), ["m1"]);
    assert_eq!(again[0].delivery_count, 2);
    h.close(b).await;
}

/// Release makes an in-flight message ready at once (no lease wait).
pub async fn release_makes_ready_now<H: Harness>(h: &mut H) {
    let b = h.open().await;
    let mb = h.mailbox("release");
    b.publish(vec![publish(&mb, "r1", h.now())]).await.unwrap();
    assert_eq!(ids(&b.fetch(&mb, 10, NO_WAIT).await.unwrap()), ["r1"]);
    b.release(&mb, "r1").await.unwrap();
    let again = b.fetch(&mb, 10, NO_WAIT).await.unwrap();
    assert_eq!(ids(&again), ["r1"]);
    assert_eq!(again[0].delivery_count, 2);
    let err = b.release(&mb, "never").await.unwrap_err();
    assert!(matches!(err, BrokerError::UnknownDelivery { .. }), "{err}");
    h.close(b).await;
}

/// Ack removes for good; acking again is fine and says so; acking an unknown id is an error.
pub async fn ack_is_idempotent_and_unknown_is_an_error<H: Harness>(h: &mut H) {
    let b = h.open().await;
    let mb = h.mailbox("ack");
    b.publish(vec![
        publish(&mb, "k1", h.now()),
        publish(&mb, "k2", h.now()),
    ])
    .await
    .unwrap();
    assert_eq!(b.fetch(&mb, 10, NO_WAIT).await.unwrap().len(), 2);
    assert_eq!(b.ack(&mb, "k1").await.unwrap(), AckOutcome::Acked);
    assert_eq!(b.ack(&mb, "k1").await.unwrap(), AckOutcome::AlreadyAcked);
    let err = b.ack(&mb, "never-published").await.unwrap_err();
    assert_eq!(err.code(), "broker.unknown_delivery");
    assert_eq!(err.fault(), crate::Fault::Caller);
    assert!(!err.retryable());
    h.advance(h.lease() + Duration::from_secs(1)).await;
    // Only the unacked one comes back.
    assert_eq!(
        ids(&b.fetch(&mb, 10, Duration::from_secs(5)).await.unwrap()),
        ["k2"]
    );
    h.close(b).await;
}

/// Dead-lettering keeps the reason and time for operators and stops delivery; redrive brings the
/// message back.
pub async fn dead_letter_with_reason_and_redrive<H: Harness>(h: &mut H) {
    let b = h.open().await;
    let mb = h.mailbox("dlq");
    b.publish(vec![
        publish(&mb, "bad", h.now()),
        publish(&mb, "good", h.now()),
    ])
    .await
    .unwrap();
    assert_eq!(b.fetch(&mb, 1, NO_WAIT).await.unwrap()[0].message.id, "bad");
    let before = h.now();
    b.dead_letter(&mb, "bad", "recipient DMS rejects the attachment")
        .await
        .unwrap();
    let dead = b.dead_letters(&mb).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.id, "bad");
    assert_eq!(dead[0].reason, "recipient DMS rejects the attachment");
    assert!(dead[0].at >= before);
    h.advance(h.lease() + Duration::from_secs(1)).await;
    assert_eq!(ids(&b.fetch(&mb, 10, NO_WAIT).await.unwrap()), ["good"]);
    let stats = b.stats().await.unwrap();
    let s = stats.iter().find(|s| s.mailbox == mb).unwrap();
    assert_eq!((s.ready, s.in_flight, s.dead_lettered), (0, 1, 1));
    assert_eq!(b.redrive(&mb).await.unwrap(), 1);
    assert!(b.dead_letters(&mb).await.unwrap().is_empty());
    assert_eq!(ids(&b.fetch(&mb, 10, NO_WAIT).await.unwrap()), ["bad"]);
    h.close(b).await;
}

/// Queued messages survive a close and reopen, in order.
pub async fn backlog_survives_reopen<H: Harness>(h: &mut H) {
    let b = h.open().await;
    let mb = h.mailbox("backlog");
    let want: Vec<String> = (0..10).map(|i| format!("q{i}")).collect();
    b.publish(want.iter().map(|id| publish(&mb, id, h.now())).collect())
        .await
        .unwrap();
    h.close(b).await;
    let b = h.open().await;
    assert_eq!(ids(&b.fetch(&mb, 100, NO_WAIT).await.unwrap()), want);
    h.close(b).await;
}

/// Fetched-but-unacked messages are offered again after a restart; acked ones never are.
pub async fn in_flight_is_ready_after_reopen<H: Harness>(h: &mut H) {
    let b = h.open().await;
    let mb = h.mailbox("inflight");
    b.publish(vec![
        publish(&mb, "acked", h.now()),
        publish(&mb, "unacked", h.now()),
    ])
    .await
    .unwrap();
    assert_eq!(b.fetch(&mb, 10, NO_WAIT).await.unwrap().len(), 2);
    b.ack(&mb, "acked").await.unwrap();
    h.close(b).await;
    let b = h.open().await;
    let again = b.fetch(&mb, 10, NO_WAIT).await.unwrap();
    assert_eq!(ids(&again), ["unacked"]);
    assert!(again[0].delivery_count >= 2, "a redelivery says so");
    assert_eq!(b.ack(&mb, "acked").await.unwrap(), AckOutcome::AlreadyAcked);
    h.close(b).await;
}

/// One batch publish reaches 1,000 mailboxes, once each.
pub async fn batch_publish_to_1000_mailboxes<H: Harness>(h: &mut H) {
    let b = h.open().await;
    let boxes: Vec<String> = (0..1000)
        .map(|i| h.mailbox(&format!("unit{i:04}")))
        .collect();
    b.publish(
        boxes
            .iter()
            .map(|mb| publish(mb, "directive-1", h.now()))
            .collect(),
    )
    .await
    .unwrap();
    let stats = b.stats().await.unwrap();
    let mine: HashSet<&str> = boxes.iter().map(String::as_str).collect();
    let counted: Vec<_> = stats
        .iter()
        .filter(|s| mine.contains(s.mailbox.as_str()))
        .collect();
    assert_eq!(counted.len(), 1000);
    assert!(counted.iter().all(|s| s.ready == 1 && s.in_flight == 0));
    for mb in &boxes {
        let got = b.fetch(mb, 10, NO_WAIT).await.unwrap();
        assert_eq!(ids(&got), ["directive-1"], "mailbox {mb}");
        assert_eq!(b.ack(mb, "directive-1").await.unwrap(), AckOutcome::Acked);
    }
    h.close(b).await;
}

/// Stats give ready, in-flight and dead-lettered counts and the oldest ready message's age.
pub async fn stats_report_depths_and_oldest_age<H: Harness>(h: &mut H) {
    let b = h.open().await;
    b.ping().await.expect("a running broker answers a ping");
    let mb = h.mailbox("stats");
    let t0 = h.now();
    b.publish(vec![
        publish(&mb, "s1", t0),
        publish(&mb, "s2", t0),
        publish(&mb, "s3", t0),
    ])
    .await
    .unwrap();
    h.advance(Duration::from_secs(60)).await;
    let stats = b.stats().await.unwrap();
    let s = stats.iter().find(|s| s.mailbox == mb).unwrap();
    assert_eq!((s.ready, s.in_flight, s.dead_lettered), (3, 0, 0));
    assert!(s.oldest_ready_age.unwrap() >= Duration::from_secs(60));
    b.fetch(&mb, 1, NO_WAIT).await.unwrap();
    b.fetch(&mb, 1, NO_WAIT).await.unwrap();
    b.dead_letter(&mb, "s2", "test").await.unwrap();
    let stats = b.stats().await.unwrap();
    let s = stats.iter().find(|s| s.mailbox == mb).unwrap();
    assert_eq!((s.ready, s.in_flight, s.dead_lettered), (1, 1, 1));
    b.fetch(&mb, 1, NO_WAIT).await.unwrap();
    let stats = b.stats().await.unwrap();
    let s = stats.iter().find(|s| s.mailbox == mb).unwrap();
    assert_eq!((s.ready, s.in_flight), (0, 2));
    assert_eq!(s.oldest_ready_age, None);
    h.close(b).await;
}

/// Runs call number `i` of a series and abandons it part-way, as a caller that drops it does
/// (hyper drops an HTTP handler when its client goes away): every fourth is polled exactly once,
/// so cut at its first wait (a `basic.get` or a flush under way); the others get 0–1.5 ms, cut at
/// the timer's next tick or the one after (mid-call or just after it: a local round trip to
/// RabbitMQ is well under a millisecond). `None` when it was cut. (A zero timeout would not cut
/// at the first wait: tokio's timer fires at its next tick, and the call runs on until then.)
pub async fn abandoned_at<F: Future>(i: usize, call: F) -> Option<F::Output> {
    if i.is_multiple_of(4) {
        let mut call = std::pin::pin!(call);
        std::future::poll_fn(|cx| match call.as_mut().poll(cx) {
            std::task::Poll::Ready(out) => std::task::Poll::Ready(Some(out)),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        })
        .await
    } else {
        let within = Duration::from_micros((i as u64 * 97) % 1_500);
        tokio::time::timeout(within, call).await.ok()
    }
}

/// A fetch its caller abandons (hyper drops the relay's handler when the unit's adapter goes
/// away; a timeout drops what it wraps), at any moment, strands nothing: what it took is offered
/// again at once, with no lease running out (the clock does not move here). Cut by
/// [`abandoned_at`]. The embedded backend takes a ready message without waiting, so there no
/// fetch is cut (the test holds it to that); on RabbitMQ about a quarter are, and
/// `tests/abandoned_amqp.rs` asserts as much and checks RabbitMQ's own count of what stays
/// unacknowledged.
pub async fn an_abandoned_fetch_strands_nothing<H: Harness>(h: &mut H) {
    const N: usize = 200;
    let b = h.open().await;
    let mb = h.mailbox("abandoned");
    let mut acked = HashSet::new();
    let mut abandoned = 0;
    for i in 0..N {
        b.publish(vec![publish(&mb, &format!("c{i:03}"), h.now())])
            .await
            .unwrap();
        match abandoned_at(i, b.fetch(&mb, 1, NO_WAIT)).await {
            Some(got) => {
                for d in got.unwrap() {
                    b.ack(&mb, &d.message.id).await.unwrap();
                    acked.insert(d.message.id);
                }
            }
            None => abandoned += 1,
        }
    }
    let mut quiet = std::time::Instant::now();
    while acked.len() < N && quiet.elapsed() < Duration::from_secs(5) {
        for d in b.fetch(&mb, 50, Duration::from_millis(200)).await.unwrap() {
            assert!(
                acked.insert(d.message.id.clone()),
                "{} offered after its ack",
                d.message.id
            );
            b.ack(&mb, &d.message.id).await.unwrap();
            quiet = std::time::Instant::now();
        }
    }
    let mut missing: Vec<String> = (0..N)
        .map(|i| format!("c{i:03}"))
        .filter(|id| !acked.contains(id))
        .collect();
    missing.truncate(10);
    assert!(
        missing.is_empty(),
        "taken by an abandoned fetch ({abandoned} of {N} were abandoned) and not offered again: {missing:?}"
    );

    h.close(b).await;
}

/// Expands to one `#[tokio::test]` per contract function, each with a fresh harness from
/// `$make` (an expression producing a [`Harness`]).
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@each $make;
            fifo_per_mailbox,
            mailboxes_are_isolated,
            long_poll_wakes_on_publish,
            long_poll_returns_empty_after_wait,
            lease_expiry_redelivers,
            release_makes_ready_now,
            ack_is_idempotent_and_unknown_is_an_error,
            dead_letter_with_reason_and_redrive,
            backlog_survives_reopen,
            in_flight_is_ready_after_reopen,
            batch_publish_to_1000_mailboxes,
            stats_report_depths_and_oldest_age,
            an_abandoned_fetch_strands_nothing
        );
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let mut h = $make;
                $crate::contract::$name(&mut h).await;
            }
        )*
    };
}
