//! Embedded broker benchmarks, printing figures (no assertions):
//! 1. publish + fetch + ack of 10 KB-reference envelopes over 100 mailboxes (16 publishers
//!    sending one message per publish, one long-polling consumer per mailbox acking each one);
//! 2. fan-out: one publish of one message to 10,000 mailboxes;
//! 3. backlog: `BROKER_BENCH_BACKLOG` messages (default 200,000) over 30,000 mailboxes, then RSS,
//!    reopen time (counters rebuilt by a key scan) and `stats()` time.
//!
//! `cargo bench -p broker` (env `BROKER_BENCH_MESSAGES`, default 20,000, for part 1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use broker::contract::message;
use broker::{Broker, EmbeddedBroker, EmbeddedConfig, Publish};
use store::Store;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn open(dir: &std::path::Path) -> EmbeddedBroker {
    EmbeddedBroker::open(Store::open(dir).unwrap(), EmbeddedConfig::default()).unwrap()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        pipeline(env("BROKER_BENCH_MESSAGES", 20_000)).await;
        fan_out(10_000).await;
        backlog(env("BROKER_BENCH_BACKLOG", 200_000), 30_000).await;
    });
}

async fn pipeline(total: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let b = open(tmp.path());
    let mailboxes = 100u64;
    let producers = 16u64;
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut consumers = Vec::new();
    for m in 0..mailboxes {
        let (b, acked) = (b.clone(), Arc::clone(&acked));
        consumers.push(tokio::spawn(async move {
            let mb = format!("000.00.{m:02}.H41");
            while acked.load(Ordering::Relaxed) < total {
                for d in b.fetch(&mb, 50, Duration::from_millis(50)).await.unwrap() {
                    b.ack(&mb, &d.message.id).await.unwrap();
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let mut pubs = Vec::new();
    for p in 0..producers {
        let b = b.clone();
        pubs.push(tokio::spawn(async move {
            let mut k = p;
            while k < total {
                let mb = format!("000.00.{:02}.H41", k % mailboxes);
                let msg = message(&format!("pkg-{k}"), SystemTime::now());
                b.publish(vec![Publish {
                    mailbox: mb,
                    message: msg,
                }])
                .await
                .unwrap();
                k += producers;
            }
        }));
    }
    for p in pubs {
        p.await.unwrap();
    }
    let published_at = start.elapsed().as_secs_f64();
    for c in consumers {
        c.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "pipeline: {total} messages over {mailboxes} mailboxes ({producers} publishers, 1 consumer per mailbox): \
         publish+fetch+ack {:.0} msg/s end to end ({elapsed:.2} s; publishing alone done at {published_at:.2} s)",
        total as f64 / elapsed
    );
}

async fn fan_out(recipients: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let b = open(tmp.path());
    let msg = message("directive-2026-001", SystemTime::now());
    let batch: Vec<Publish> = (0..recipients)
        .map(|i| Publish {
            mailbox: format!(
                "{:03}.{:02}.{:02}.X{:02}",
                i / 1000,
                (i / 100) % 10,
                (i / 10) % 10,
                i % 10
            ),
            message: msg.clone(),
        })
        .collect();
    let start = Instant::now();
    b.publish(batch).await.unwrap();
    let elapsed = start.elapsed();
    println!(
        "fan-out: one message to {recipients} mailboxes published durably in {:.1} ms",
        elapsed.as_secs_f64() * 1e3
    );
}

async fn backlog(total: u64, mailboxes: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let rss0 = rss_mib();
    let b = open(tmp.path());
    let start = Instant::now();
    let mut k = 0u64;
    while k < total {
        let batch: Vec<Publish> = (k..(k + 1000).min(total))
            .map(|i| Publish {
                mailbox: format!("unit-{:05}", i % mailboxes),
                message: message(&format!("pkg-{i}"), SystemTime::now()),
            })
            .collect();
        k += batch.len() as u64;
        b.publish(batch).await.unwrap();
    }
    let publish_s = start.elapsed().as_secs_f64();
    let t = Instant::now();
    let stats = b.stats().await.unwrap();
    let stats_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss_open = rss_mib();
    drop(b);
    let t = Instant::now();
    let b = open(tmp.path());
    let reopen_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let stats2 = b.stats().await.unwrap();
    let stats2_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    b.stats().await.unwrap();
    let stats3_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "backlog: {total} messages in {mailboxes} mailboxes published at {:.0} msg/s (batches of 1000); \
         stats() {stats_ms:.1} ms for {} mailboxes (after reopen: first call {stats2_ms:.1} ms, next {stats3_ms:.1} ms); \
         reopen (counter rebuild) {reopen_s:.2} s; RSS {rss0:.0} MiB before, {rss_open:.0} MiB with the backlog, {:.0} MiB after reopen",
        total as f64 / publish_s,
        stats.len(),
        rss_mib()
    );
    assert_eq!(stats2.len(), stats.len());
}
