//! Group-commit benchmark: N concurrent writers, each in a loop appending one event and awaiting
//! `flush()`. Prints appends/s (each one durable before its writer goes on) and fsyncs/s.
//!
//! Then N concurrent writers each archiving a distinct 10 KB package (`spawn_blocking`) and
//! awaiting `flush()` (which fsyncs the archive folders), since every accepted package costs one put before the sender hears "accepted".
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
