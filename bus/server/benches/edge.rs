//! Throughput of the HTTPS edge on loopback, with the embedded broker and a real store: one
//! sender submitting signed ~10 KB packages over mutual TLS with several requests in flight, then
//! the recipient long-polling, fetching and acknowledging them. Signing happens before the clock
//! starts (it is the adapter's cost). Prints packages/s and latency percentiles.
//!
//! `cargo bench -p server --bench edge` (TRUC_BENCH_N=… to change the count, default 400).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let n: usize = std::env::var("TRUC_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let concurrency = 8;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let bed = Bed::new().await;
        let attachment: Vec<u8> = (0..7000u32).map(|i| (i % 251) as u8).collect();
        let packages: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                bed.sign(
                    A,
                    &document_with(A, &[B], &format!("bench-{i}"), "Đo tốc độ", attachment.clone()),
                )
            })
            .collect();
        let size = packages[0].len();
        let queue = Arc::new(std::sync::Mutex::new(packages));
        let a = bed.client(A);

        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let queue = queue.clone();
            let a = a.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let Some(p) = queue.lock().unwrap().pop() else { break };
                    let t = Instant::now();
                    a.submit(p).await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        let submit_secs = start.elapsed().as_secs_f64();
        lat.sort();

        let b = bed.client(B);
        let start = Instant::now();
        let mut received = 0;
        while received < n {
            let items = b.inbox(Duration::from_secs(5), 100).await.unwrap();
            assert!(!items.is_empty(), "inbox ran dry at {received}/{n}");
            for item in items {
                b.fetch(&item.id).await.unwrap();
                b.ack(&item.id).await.unwrap();
                received += 1;
            }
        }
        let receive_secs = start.elapsed().as_secs_f64();

        println!(
            "edge: {n} packages of {size} bytes, {concurrency} in flight, one sender over mTLS on loopback"
        );
        println!(
            "  submit: {:.0} packages/s ({:.2} s); latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            n as f64 / submit_secs,
            submit_secs,
            pct(&lat, 0.50),
            pct(&lat, 0.99),
            pct(&lat, 1.0),
        );
        println!(
            "  receive (long-poll, fetch, ack one by one): {:.0} packages/s ({:.2} s)",
            n as f64 / receive_secs,
            receive_secs
        );
    });
}
