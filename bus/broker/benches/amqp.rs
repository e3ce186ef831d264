//! RabbitMQ backend benchmarks against 127.0.0.1:5672, printing figures (no assertions):
//! 1. publish + confirm of `AMQP_BENCH_MESSAGES` envelopes (default 20,000) in batches of 100
//!    over 100 mailboxes, 8 publishers; then fetch + ack of all of them, one consumer per mailbox;
//! 2. `AMQP_BENCH_MAILBOXES` mailboxes (default 30,000) declared at once (`declare_mailboxes`, as
//!    the relay does at start), then one message published to each of the first
//!    `AMQP_BENCH_FULL` (default all), with the broker's memory (`rabbitmqctl status`) before,
//!    after the declare and after the publish;
//! 3. `Broker::stats` over them: by this broker, by another one that declared nothing (a restart),
//!    both through the management API, and (`AMQP_BENCH_FALLBACK=1`) by the per-queue fallback.
//!
//! Everything is declared under a unique prefix and deleted at the end, also when the bench
//! panics (RabbitMQ stalls on restart with tens of thousands of leftover queues).
//! `cargo bench -p broker --bench amqp`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use broker::contract::message;
use broker::{AmqpBroker, AmqpConfig, Broker, Publish};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The broker node's total memory in MiB, as `rabbitmqctl status` reports it.
fn broker_memory_mib() -> f64 {
    let out = Command::new("rabbitmqctl")
        .args(["status", "--formatter", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["memory"]["total"]["rss"]
        .as_f64()
        .map_or(f64::NAN, |b| b / 1024.0 / 1024.0)
}

/// Deletes the bench's queues and exchanges when dropped, pass or panic.
struct Cleanup {
    config: AmqpConfig,
    mailboxes: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (config, mailboxes) = (self.config.clone(), std::mem::take(&mut self.mailboxes));
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let dir = tempfile::tempdir().unwrap();
                let b = AmqpBroker::open(store::Store::open(dir.path()).unwrap(), config).await?;
                let started = Instant::now();
                b.delete(&mailboxes).await?;
                println!("deleted in {:.1} s", started.elapsed().as_secs_f64());
                b.close().await;
                Ok::<(), broker::BrokerError>(())
            })
        });
        if let Ok(Err(e)) = done.join() {
            eprintln!("cleanup of {} failed: {e}", self.config.prefix);
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env("AMQP_BENCH_MESSAGES", 20_000);
    let units = env("AMQP_BENCH_MAILBOXES", 30_000);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path()).unwrap();
    let config = AmqpConfig {
        prefix: format!("bench.{nanos}."),
        ..AmqpConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f")
    };
    let full = env("AMQP_BENCH_FULL", units).min(units);
    let boxes: Vec<String> = (0..100).map(|i| format!("000.00.{i:02}.B00")).collect();
    let many: Vec<String> = (0..units).map(|i| format!("000.{i:05}.00.U00")).collect();
    let _cleanup = Cleanup {
        config: config.clone(),
        mailboxes: boxes.iter().chain(&many).cloned().collect(),
    };
    let b = AmqpBroker::open(store, config.clone()).await.unwrap();

    // 1. publish + confirm, then fetch + ack.
    let now = SystemTime::now();
    let batches: Vec<Vec<Publish>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(|c| {
            c.iter()
                .map(|i| Publish {
                    mailbox: boxes[i % boxes.len()].clone(),
                    message: message(&format!("m{i}"), now),
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    let mut publishers = Vec::new();
    for part in 0..8 {
        let b = b.clone();
        let mine: Vec<Vec<Publish>> = batches.iter().skip(part).step_by(8).cloned().collect();
        publishers.push(tokio::spawn(async move {
            for batch in mine {
                b.publish(batch).await.unwrap();
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    let publish_s = started.elapsed().as_secs_f64();
    println!(
        "publish + confirm: {n} envelopes in {publish_s:.2} s = {:.0} msgs/s (batches of 100, 8 publishers)",
        n as f64 / publish_s
    );
    let started = Instant::now();
    let mut consumers = Vec::new();
    for mb in boxes.clone() {
        let b = b.clone();
        consumers.push(tokio::spawn(async move {
            let mut got = 0;
            loop {
                let ds = b.fetch(&mb, 100, Duration::ZERO).await.unwrap();
                if ds.is_empty() {
                    return got;
                }
                for d in ds {
                    b.ack(&mb, &d.message.id).await.unwrap();
                    got += 1;
                }
            }
        }));
    }
    let mut total = 0;
    for c in consumers {
        total += c.await.unwrap();
    }
    let consume_s = started.elapsed().as_secs_f64();
    println!(
        "fetch + ack: {total} envelopes in {consume_s:.2} s = {:.0} msgs/s (100 consumers, ack = ledger fsync + basic.ack)",
        total as f64 / consume_s
    );

    // 2. many mailboxes.
    let before = broker_memory_mib();
    let started = Instant::now();
    b.declare_mailboxes(&many).await.unwrap();
    let declare_s = started.elapsed().as_secs_f64();
    let declared_mib = broker_memory_mib();
    println!(
        "{units} mailboxes declared at once (declare_mailboxes: pipelined over {} channels) in {declare_s:.1} s; broker RSS {before:.0} -> {declared_mib:.0} MiB ({:.1} KiB per empty mailbox)",
        AmqpBroker::DECLARE_CHANNELS,
        (declared_mib - before) * 1024.0 / units as f64,
    );
    let started = Instant::now();
    for chunk in many[..full].chunks(1000) {
        b.publish(
            chunk
                .iter()
                .map(|mb| Publish {
                    mailbox: mb.clone(),
                    message: message("hello", now),
                })
                .collect(),
        )
        .await
        .unwrap();
    }
    let publish_s = started.elapsed().as_secs_f64();
    let after = broker_memory_mib();
    println!(
        "{units} mailboxes, 1 message in each of {full}, published in {publish_s:.1} s; broker RSS {before:.0} -> {after:.0} MiB ({:.1} KiB per mailbox)",
        (after - before) * 1024.0 / units as f64,
    );

    // 3. stats.
    let timed = |label: &'static str, b: AmqpBroker| async move {
        for run in 1..=3 {
            let started = Instant::now();
            let stats = b.stats().await.unwrap();
            let stats_s = started.elapsed().as_secs_f64();
            println!(
                "stats() {label}, run {run}: {} mailboxes listed ({} with a message) out of {units} in {stats_s:.2} s, from {:?}",
                stats.len(),
                stats.iter().filter(|s| s.ready > 0).count(),
                b.stats_source()
            );
        }
        b
    };
    let b = timed("by the broker that declared them", b).await;
    b.close().await;
    let dir2 = tempfile::tempdir().unwrap();
    let other = AmqpBroker::open(store::Store::open(dir2.path()).unwrap(), config.clone())
        .await
        .unwrap();
    let other = timed("by another broker that declared nothing (a restart)", other).await;
    other.close().await;
    if env("AMQP_BENCH_FALLBACK", 0) == 1 {
        let dir3 = tempfile::tempdir().unwrap();
        let blind = AmqpBroker::open(
            store::Store::open(dir3.path()).unwrap(),
            AmqpConfig {
                management_url: Some("http://127.0.0.1:1/".to_owned()),
                ..config.clone()
            },
        )
        .await
        .unwrap();
        blind.declare_mailboxes(&many).await.unwrap();
        let blind = timed("without the management API (one queue.declare each)", blind).await;
        blind.close().await;
    }
}
