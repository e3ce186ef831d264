//! Group-commit benchmark: N concurrent writers, each in a loop appending one event and awaiting
//! `flush()`. Prints appends/s (each one durable before its writer goes on) and fsyncs/s.
//!
//! Then N concurrent writers each archiving a distinct 10 KB package (`spawn_blocking`) and
//! awaiting `flush()` (which fsyncs the archive segments written since the last round, then
//! indexes them), since every accepted package costs one put before the sender hears "accepted".
//!
//! Last, one 100 MB package: put, flush, get, while another thread keeps putting and flushing
//! 10 KB packages (their slowest put + flush, alone and beside the big one, shows whether the big
//! put holds up the small ones' acceptance).
//!
//! `cargo bench -p store` (env `STORE_BENCH_SECS`, default 3 s per writer count).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use store::Store;

#[derive(Serialize, Deserialize)]
struct Accepted {
    doc: String,
    sender: String,
    digest: String,
    recipients: u32,
}

fn main() {
    let secs: u64 = std::env::var("STORE_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("writers  appends/s  fsyncs/s  appends/fsync");
    for writers in [1usize, 4, 16, 64, 256] {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let appended = Arc::new(AtomicU64::new(0));
        let (appends, fsyncs, elapsed) = rt.block_on(async {
            let fsyncs0 = store.fsync_count();
            let start = Instant::now();
            let deadline = start + Duration::from_secs(secs);
            let mut tasks = Vec::new();
            for w in 0..writers {
                let store = store.clone();
                let appended = Arc::clone(&appended);
                tasks.push(tokio::spawn(async move {
                    let log = store.events::<Accepted>();
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        log.append(&Accepted {
                            doc: format!("000.00.00.H41,2026/11/23,{w}-{i}/QD-UBND"),
                            sender: "000.00.00.H41".into(),
                            digest: "ab".repeat(32),
                            recipients: 3,
                        })
                        .unwrap();
                        store.flush().await.unwrap();
                        appended.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            (
                appended.load(Ordering::Relaxed),
                store.fsync_count() - fsyncs0,
                start.elapsed().as_secs_f64(),
            )
        });
        println!(
            "{writers:7}  {:9.0}  {:8.0}  {:13.1}",
            appends as f64 / elapsed,
            fsyncs as f64 / elapsed,
            appends as f64 / fsyncs.max(1) as f64
        );
    }
    archive_puts(&rt, secs);
    large_package(&rt);
}

fn archive_puts(rt: &tokio::runtime::Runtime, secs: u64) {
    println!("archive put + flush of distinct 10 KB packages (durable before the writer goes on)");
    println!("writers  puts/s  fsync rounds/s");
    for writers in [1u64, 4, 16, 64] {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let (total, rounds, elapsed) = rt.block_on(async {
            let rounds0 = store.fsync_count();
            let start = Instant::now();
            let deadline = start + Duration::from_secs(secs);
            let tasks: Vec<_> = (0..writers)
                .map(|w| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let mut n = 0u64;
                        while Instant::now() < deadline {
                            let mut body = vec![b'x'; 10 * 1024];
                            body[..8].copy_from_slice(&(w << 40 | n).to_be_bytes());
                            let s = store.clone();
                            tokio::task::spawn_blocking(move || s.archive().put(&body))
                                .await
                                .unwrap()
                                .unwrap();
                            store.flush().await.unwrap();
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap();
            }
            (
                total,
                store.fsync_count() - rounds0,
                start.elapsed().as_secs_f64(),
            )
        });
        println!(
            "{writers:7}  {:6.0}  {:14.0}",
            total as f64 / elapsed,
            rounds as f64 / elapsed
        );
    }
}

fn large_package(rt: &tokio::runtime::Runtime) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let big: Vec<u8> = (0..100 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    // 0: small puts alone (a baseline for the slowest one), 1: beside the big put, 2: stop.
    let phase = Arc::new(AtomicU64::new(0));
    let small = {
        let store = store.clone();
        let phase = Arc::clone(&phase);
        let handle = rt.handle().clone();
        std::thread::spawn(move || {
            let (mut n, mut slowest) = ([0u64; 2], [Duration::ZERO; 2]);
            loop {
                let p = phase.load(Ordering::Relaxed) as usize;
                if p > 1 {
                    break;
                }
                let mut body = vec![b's'; 10 * 1024];
                body[..8].copy_from_slice(&(n[0] + n[1]).to_be_bytes());
                let t = Instant::now();
                store.archive().put(&body).unwrap();
                handle.block_on(store.flush()).unwrap();
                slowest[p] = slowest[p].max(t.elapsed());
                n[p] += 1;
            }
            (n, slowest)
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    phase.store(1, Ordering::Relaxed);
    let t = Instant::now();
    let digest = store.archive().put(&big).unwrap();
    let put = t.elapsed();
    let t = Instant::now();
    rt.block_on(store.flush()).unwrap();
    let flush = t.elapsed();
    phase.store(2, Ordering::Relaxed);
    let t = Instant::now();
    let back = store.archive().get(&digest).unwrap().unwrap();
    let get = t.elapsed();
    let (n, slowest) = small.join().unwrap();
    assert_eq!(back.len(), big.len());
    println!(
        "100 MB package: put {put:.0?} (hash + append + fsync), flush {flush:.0?}, get {get:.0?} (read + check)"
    );
    println!(
        "  10 KB put + flush from another thread: alone for 1 s {} times, slowest {:.1?}; during the big put + flush {} times, slowest {:.1?}",
        n[0], slowest[0], n[1], slowest[1]
    );
}
