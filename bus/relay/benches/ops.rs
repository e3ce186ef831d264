//! How long the operator overview takes as mailboxes grow (embedded broker): N units in the
//! directory, one waiting message in each (plus a dead letter in every hundredth), then
//! `Relay::overview(20)` (what the operator page asks for) and `overview(0)` timed, best of 3.
//! `cargo bench -p relay --bench ops [-- N...]` (default 1000 10000 30000). Printed, not asserted.
//!
//! `cargo bench -p relay --bench ops -- --amqp [N [FULL]]` does it over the local RabbitMQ
//! (`TRUC_BENCH_AMQP_URL`, default guest on 127.0.0.1): N mailboxes declared (default 30,000),
//! FULL of them holding a message (default 3,000), then eight overviews two seconds apart, each
//! timed with the age of the figures it showed, the `/metrics` path (`check_broker`) and one
//! bare `Broker::stats` for comparison. Queues under the prefix `truc-bench-ops.` are deleted
//! before and after.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use broker::{Broker, Clock, Publish, contract::message};
use common::*;

fn main() {
    if std::env::args().any(|a| a == "--amqp") {
        let nums: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        amqp(
            nums.first().copied().unwrap_or(30_000),
            nums.get(1).copied().unwrap_or(3_000),
        );
        return;
    }
    let sizes: Vec<usize> = {
        let v: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if v.is_empty() {
            vec![1000, 10_000, 30_000]
        } else {
            v
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for n in sizes {
        let bed = Bed::new();
        let now = bed.clock.now();
        let codes: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "{:03}.{:02}.{:02}.H{:02}",
                    i / 10_000,
                    i / 100 % 100,
                    i % 100,
                    50
                )
            })
            .collect();
        for c in &codes {
            bed.relay
                .directory()
                .upsert(unit(c, &format!("Ủy ban nhân dân xã số {c}"), &[]))
                .unwrap();
        }
        rt.block_on(async {
            for chunk in codes.chunks(1000) {
                let batch: Vec<Publish> = chunk
                    .iter()
                    .map(|c| Publish {
                        mailbox: c.clone(),
                        message: message(&format!("m-{c}"), now),
                    })
                    .collect();
                bed.relay.broker().publish(batch).await.unwrap();
            }
            for c in codes.iter().step_by(100) {
                bed.relay
                    .broker()
                    .dead_letter(c, &format!("m-{c}"), "bench")
                    .await
                    .unwrap();
            }
        });
        bed.clock.advance(Duration::from_secs(90));
        for top in [20, 0] {
            let mut best = Duration::MAX;
            let mut rows = 0;
            for _ in 0..3 {
                let t = Instant::now();
                let o = rt.block_on(bed.relay.overview(top)).unwrap();
                best = best.min(t.elapsed());
                rows = o.mailboxes.len();
                assert_eq!(o.mailboxes_total, n);
            }
            println!(
                "{n} mailboxes: overview(top={top}) {:.1} ms ({rows} rows, {} dead letters)",
                best.as_secs_f64() * 1000.0,
                n.div_ceil(100)
            );
        }
    }
}

fn amqp(n: usize, full: usize) {
    use broker::{AmqpBroker, AmqpConfig, AnyBroker, SystemClock};
    use directory::Directory;
    use relay::{Relay, Want};
    use std::sync::Arc;
    use std::time::SystemTime;

    let url = std::env::var("TRUC_BENCH_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path()).unwrap();
    let codes: Vec<String> = (0..n)
        .map(|i| format!("{:03}.{:02}.{:02}.H50", i / 10_000, i / 100 % 100, i % 100))
        .collect();
    let config = AmqpConfig {
        prefix: "truc-bench-ops.".into(),
        clock: Arc::new(SystemClock),
        ..AmqpConfig::new(url)
    };
    rt.block_on(async {
        // Leftovers of an interrupted run go first (this removes the exchanges too, so the
        // broker that measures is opened after, and declares them again).
        let clean = AmqpBroker::open(store.clone(), config.clone())
            .await
            .expect("RabbitMQ on 127.0.0.1:5672 with the management plugin (bash ops/test.sh)");
        clean.delete(&codes).await.unwrap();
        clean.close().await;
        let amqp = AmqpBroker::open(store.clone(), config).await.unwrap();
        let t = Instant::now();
        amqp.declare_mailboxes(&codes).await.unwrap();
        println!("{n} mailboxes declared in {:.1} s", t.elapsed().as_secs_f64());
        let now = SystemTime::now();
        for chunk in codes.iter().step_by((n / full.max(1)).max(1)).take(full).collect::<Vec<_>>().chunks(500) {
            let batch: Vec<Publish> = chunk
                .iter()
                .map(|c| Publish {
                    mailbox: (*c).clone(),
                    message: message(&format!("m-{c}"), now),
                })
                .collect();
            amqp.publish(batch).await.unwrap();
        }
        let directory = Directory::open(&store).unwrap();
        let pki = dsig::pki::init(&[(A, None)], unix(now)).unwrap();
        let relay = Relay::open(
            store.clone(),
            AnyBroker::Amqp(amqp.clone()),
            directory,
            relay_config(&pki, None, Arc::new(SystemClock)),
        )
        .unwrap();
        let t = Instant::now();
        let stats = amqp.stats().await.unwrap();
        println!(
            "bare Broker::stats: {:.2} s ({} mailboxes holding anything, source {:?})",
            t.elapsed().as_secs_f64(),
            stats.len(),
            amqp.stats_source()
        );
        for i in 1..=8 {
            let t = Instant::now();
            let o = relay.overview(20).await.unwrap();
            println!(
                "overview {i}: answered in {:.2} s, broker_up {}, figures fresh {}, age {:?} s, {} of {} mailboxes, note {:?}",
                t.elapsed().as_secs_f64(),
                o.broker_up,
                o.stats_fresh,
                o.stats_age_s,
                o.mailboxes_shown,
                o.mailboxes_total,
                o.stats_error.map(|e| e.code)
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        for i in 1..=3 {
            let t = Instant::now();
            let c = relay
                .check_broker(Want::Within(Duration::from_secs(5)), Duration::from_secs(3))
                .await;
            println!(
                "/metrics check {i}: {:.2} s, up {}, age {:?}",
                t.elapsed().as_secs_f64(),
                c.up(),
                c.age.map(|a| a.as_secs())
            );
        }
        amqp.delete(&codes).await.unwrap();
        amqp.close().await;
    });
}
