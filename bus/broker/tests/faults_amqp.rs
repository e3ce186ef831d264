//! Fault tests against the real RabbitMQ on 127.0.0.1:5672, each with a load of several thousand
//! messages in flight: `rabbitmqctl stop_app` + `start_app` mid-load, and
//! `rabbitmqctl close_all_connections` mid-load. After each, every message whose publish
//! returned `Ok` (the relay's 202) is acknowledged exactly once (`AckOutcome::Acked` once per
//! id), nothing that was never published is offered, and the counts are printed. The broker is
//! always started again when a test ends, pass or fail (a guard runs `start_app` on drop).
//!
//! Each test holds `broker::outage::OutageGuard`, a lock file shared by every fault test on the
//! machine (this file's and the relay's in `bus/cli/tests/amqp_faults.rs`): they disturb the whole
//! server, so they never overlap, and the guard starts the broker again whatever happens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use broker::outage::OutageGuard;
use broker::{AckOutcome, AmqpBroker, AmqpConfig, Broker, Digest, Message, MessageKind, Publish};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const MAILBOXES: usize = 8;
const MESSAGES: usize = 4_000;
const BATCH: usize = 40;
const PACE: Duration = Duration::from_millis(60);

fn message(id: &str) -> Message {
    Message {
        id: id.to_owned(),
        kind: MessageKind::Package,
        from: "000.00.00.G22".to_owned(),
        document_id: format!("000.00.00.G22,2026/11/23,{id}/QD"),
        subject: format!("Văn bản {id}"),
        size: 10_240,
        digest: Digest::of(id.as_bytes()),
        queued_at: SystemTime::now(),
    }
}

#[derive(Default)]
struct Counts {
    /// Ids whose publish returned Ok.
    confirmed: HashSet<String>,
    /// Times each id was offered by a fetch.
    offered: HashMap<String, u32>,
    /// Times an ack of each id answered `Acked`.
    acked: HashMap<String, u32>,
    publish_errors: u64,
    fetch_errors: u64,
    ack_errors: u64,
}

/// Publishes MESSAGES ids in batches over MAILBOXES mailboxes (retrying a failed batch with the
/// same ids, as a sender retries after a 503), while consumers fetch and ack; runs `fault` once
/// about a third of the messages are published; then checks and prints the counts.
async fn load_with_fault(name: &str, fault: impl FnOnce(&OutageGuard) + Send + 'static) {
    let guard = Arc::new(
        tokio::task::spawn_blocking(|| OutageGuard::acquire("127.0.0.1:5672".parse().unwrap()))
            .await
            .unwrap()
            .unwrap(),
    );
    // A counter beside the time: the tests of this file may start in the same nanosecond.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let prefix = format!(
        "test.fault.{}.{}.{}.",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path()).unwrap();
    let config = AmqpConfig {
        prefix,
        lease: Duration::from_secs(30),
        reconnect_for: Duration::from_secs(90),
        poll: Duration::from_millis(100),
        ..AmqpConfig::new(URL)
    };
    let b = AmqpBroker::open(store, config).await.unwrap();
    let boxes: Vec<String> = (0..MAILBOXES)
        .map(|i| format!("000.00.{i:02}.H41"))
        .collect();
    let counts = Arc::new(Mutex::new(Counts::default()));
    let published = Arc::new(AtomicU64::new(0));
    let publishing_done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let mut consumers = Vec::new();
    for mb in boxes.clone() {
        let (b, counts, done) = (b.clone(), counts.clone(), publishing_done.clone());
        consumers.push(tokio::spawn(async move {
            loop {
                let all_acked = {
                    let c = counts.lock().unwrap();
                    done.load(Ordering::SeqCst)
                        && c.confirmed
                            .iter()
                            .filter(|id| id.starts_with(&format!("{mb}/")))
                            .all(|id| c.acked.contains_key(id))
                };
                if all_acked {
                    return;
                }
                let got = match b.fetch(&mb, 50, Duration::from_millis(500)).await {
                    Ok(got) => got,
                    Err(_) => {
                        counts.lock().unwrap().fetch_errors += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                for d in got {
                    let id = d.message.id.clone();
                    *counts
                        .lock()
                        .unwrap()
                        .offered
                        .entry(id.clone())
                        .or_default() += 1;
                    loop {
                        match b.ack(&mb, &id).await {
                            Ok(AckOutcome::Acked) => {
                                *counts.lock().unwrap().acked.entry(id.clone()).or_default() += 1;
                                break;
                            }
                            Ok(AckOutcome::AlreadyAcked) => break,
                            Err(_) => {
                                counts.lock().unwrap().ack_errors += 1;
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                        }
                    }
                }
            }
        }));
    }

    let faulted = {
        let published = published.clone();
        let guard = guard.clone();
        tokio::task::spawn_blocking(move || {
            while published.load(Ordering::SeqCst) < (MESSAGES / 3) as u64 {
                std::thread::sleep(Duration::from_millis(5));
            }
            let at = published.load(Ordering::SeqCst);
            fault(&guard);
            (at, published.load(Ordering::SeqCst))
        })
    };

    let ids: Vec<(String, String)> = (0..MESSAGES)
        .map(|i| {
            let mb = boxes[i % MAILBOXES].clone();
            (mb.clone(), format!("{mb}/{i:05}"))
        })
        .collect();
    for chunk in ids.chunks(BATCH) {
        let batch: Vec<Publish> = chunk
            .iter()
            .map(|(mb, id)| Publish {
                mailbox: mb.clone(),
                message: message(id),
            })
            .collect();
        loop {
            match b.publish(batch.clone()).await {
                Ok(()) => break,
                Err(_) => {
                    counts.lock().unwrap().publish_errors += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        {
            let mut c = counts.lock().unwrap();
            c.confirmed.extend(chunk.iter().map(|(_, id)| id.clone()));
            published.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
        // Paced (about 6 s in all) so the fault, which rabbitmqctl takes a second or two to
        // deliver, lands while messages are still being published and fetched.
        tokio::time::sleep(PACE).await;
    }
    publishing_done.store(true, Ordering::SeqCst);
    let (fault_from, fault_to) = faulted.await.unwrap();
    for c in consumers {
        tokio::time::timeout(Duration::from_secs(120), c)
            .await
            .expect("consumers did not get every confirmed message within 120 s")
            .unwrap();
    }
    let took = started.elapsed();
    // Anything still in a mailbox now would be a duplicate copy; take it to count it.
    let mut leftovers = 0;
    for mb in &boxes {
        for d in b.fetch(mb, 1000, Duration::ZERO).await.unwrap() {
            leftovers += 1;
            *counts
                .lock()
                .unwrap()
                .offered
                .entry(d.message.id)
                .or_default() += 1;
        }
    }
    let connections = b.connections();
    b.delete(&[]).await.unwrap();
    b.close().await;

    let c = counts.lock().unwrap();
    let offered_total: u32 = c.offered.values().sum();
    let redelivered = offered_total as usize - c.offered.len();
    println!(
        "{name} (fault while {fault_from}..{fault_to} of {MESSAGES} were published; {connections} connections): {} published and confirmed, {} distinct offered ({redelivered} offered again), {} acked once, {} acked twice or more, {leftovers} left over; errors seen and retried: publish {}, fetch {}, ack {}; {:.1} s",
        c.confirmed.len(),
        c.offered.len(),
        c.acked.values().filter(|n| **n == 1).count(),
        c.acked.values().filter(|n| **n > 1).count(),
        c.publish_errors,
        c.fetch_errors,
        c.ack_errors,
        took.as_secs_f64()
    );
    assert_eq!(c.confirmed.len(), MESSAGES);
    assert!(connections >= 2, "the fault did not cut the connection");
    assert!(
        fault_from < MESSAGES as u64,
        "the fault came after the load"
    );
    let never_published: Vec<&String> = c
        .offered
        .keys()
        .filter(|id| !c.confirmed.contains(*id))
        .collect();
    assert!(
        never_published.is_empty(),
        "offered but never published: {never_published:?}"
    );
    let missing: Vec<&String> = c
        .confirmed
        .iter()
        .filter(|id| !c.acked.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "confirmed but never acked: {} e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let twice: Vec<(&String, &u32)> = c.acked.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "acked more than once: {twice:?}");
    assert_eq!(leftovers, 0, "copies left in the mailboxes after every ack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_confirmed_message_is_acked_once_across_stop_app_and_start_app() {
    load_with_fault("stop_app/start_app", |broker| {
        broker.stop_app().unwrap();
        std::thread::sleep(Duration::from_secs(2));
        broker.start_app().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_confirmed_message_is_acked_once_across_close_all_connections() {
    load_with_fault("close_all_connections", |broker| {
        broker.close_all_connections().unwrap();
    })
    .await;
}
