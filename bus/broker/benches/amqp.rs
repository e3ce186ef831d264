//! RabbitMQ backend benchmarks against 127.0.0.1:5672, printing figures (no assertions):
//! 1. publish + confirm of `AMQP_BENCH_MESSAGES` envelopes (default 20,000) in batches of 100
//!    over 100 mailboxes, 8 publishers; then fetch + ack of all of them, one consumer per mailbox;
//! 2. `AMQP_BENCH_MAILBOXES` mailboxes (default 30,000) declared at once (`declare_mailboxes`, as
//!    the relay does at start), then one message published to each, with the broker's memory
//!    (`rabbitmqctl status`) before, after the declare and after the publish.
//!
//! Everything is declared under a unique prefix and deleted at the end.
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
    let b = AmqpBroker::open(store, config).await.unwrap();

    // 1. publish + confirm, then fetch + ack.
    let boxes: Vec<String> = (0..100).map(|i| format!("000.00.{i:02}.B00")).collect();
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
    let many: Vec<String> = (0..units).map(|i| format!("000.{i:05}.00.U00")).collect();
    b.declare_mailboxes(&many).await.unwrap();
    let declare_s = started.elapsed().as_secs_f64();
    let declared_mib = broker_memory_mib();
    println!(
        "{units} mailboxes declared at once (declare_mailboxes: pipelined over {} channels) in {declare_s:.1} s; broker RSS {before:.0} -> {declared_mib:.0} MiB ({:.1} KiB per empty mailbox)",
        AmqpBroker::DECLARE_CHANNELS,
        (declared_mib - before) * 1024.0 / units as f64,
    );
    let started = Instant::now();
    for chunk in many.chunks(1000) {
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
    let started = Instant::now();
    let stats = b.stats().await.unwrap();
    let stats_s = started.elapsed().as_secs_f64();
    let after = broker_memory_mib();
    println!(
        "{units} mailboxes, 1 message each, published in {publish_s:.1} s; broker RSS {before:.0} -> {after:.0} MiB ({:.1} KiB per mailbox); stats() over {} mailboxes in {stats_s:.1} s",
        (after - before) * 1024.0 / units as f64,
        stats.len()
    );
    let started = Instant::now();
    b.delete(&[]).await.unwrap();
    println!("deleted in {:.1} s", started.elapsed().as_secs_f64());
    b.close().await;
}
