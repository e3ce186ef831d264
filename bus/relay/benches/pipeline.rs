//! In-process pipeline throughput (no HTTP, no TLS): N pre-signed 10 KB packages from one sender
//! to one recipient each, submitted with C concurrent callers; prints packages/s and the fsync
//! count. `cargo bench -p relay --bench pipeline [-- N C]`. The end-to-end figure is `truc bench`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use broker::Broker;
use common::*;

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            let p = e.path();
            total += if p.is_dir() {
                dir_size(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            };
        }
    }
    total
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(3000);
    let concurrency = args.get(1).copied().unwrap_or(64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let bed = Bed::new();
        let key = bed.key(A);
        let filler: Vec<u8> = (0..7 * 1024u32).map(|i| (i % 251) as u8).collect(); // ~10 KB with the envelope
        let t0 = Instant::now();
        let packages: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let to = [if i % 2 == 0 { B } else { C }];
                let xml = document_with(A, &to, &format!("bench-{i}"), "Công văn", filler.clone());
                dsig::sign(&xml, &key, dsig::Role::Sender).unwrap()
            })
            .collect();
        let size = packages[0].len();
        println!("prepared {n} signed packages of {size} bytes in {:.1?}", t0.elapsed());
        let packages = Arc::new(packages);
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let fsyncs0 = bed.relay.store().fsync_count();
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let relay = bed.relay.clone();
            let packages = packages.clone();
            let next = next.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= packages.len() {
                        break;
                    }
                    relay.submit(A, &packages[i]).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "submitted {n} in {secs:.2} s = {:.0} packages/s with {concurrency} callers; {} group fsyncs",
            n as f64 / secs,
            bed.relay.store().fsync_count() - fsyncs0
        );

        // Fan-out: one 1 MB package to 10,000 units (group `all`), body archived once.
        let mut csv = String::from("code,name,groups\n");
        for i in 0..10_000 {
            csv.push_str(&format!("{:03}.{:02}.{:02}.K{:02},Xã {i},all\n", i / 100 + 1, i % 100, 1, 10));
        }
        let t0 = Instant::now();
        bed.relay.directory().import(csv.as_bytes(), &mut |_, _| {}).unwrap();
        bed.relay.flush().await.unwrap();
        println!("imported 10,000 units in {:.2?}", t0.elapsed());
        let megabyte: Vec<u8> = (0..750 * 1024u32).map(|i| (i % 251) as u8).collect(); // ~1 MB as base64
        let xml = document_with(A, &["group:all"], "bench-fanout", "Gửi toàn bộ các xã", megabyte);
        let signed = dsig::sign(&xml, &key, dsig::Role::Sender).unwrap();
        let archive_before = dir_size(&bed.dir.path().join("archive"));
        let t0 = Instant::now();
        let accepted = bed.relay.submit(A, &signed).await.unwrap();
        let secs = t0.elapsed().as_secs_f64();
        let archive_growth = dir_size(&bed.dir.path().join("archive")) - archive_before;
        let queued: u64 = bed.relay.broker().stats().await.unwrap().iter().map(|s| s.ready).sum();
        println!(
            "fan-out: {} byte package to {} recipients accepted and enqueued in {secs:.2} s; archive grew {} bytes (body stored once: {}); {queued} messages ready",
            signed.len(),
            accepted.recipients.len(),
            archive_growth,
            archive_growth < 2 * signed.len() as u64,
        );
    });
}
