//! kill -9 test: a child process appends events, archives packages and flushes, printing every
//! acknowledged write; the parent SIGKILLs it at random moments, reopens the store and checks that
//! every acknowledged write is present and intact, that every archive segment walks cleanly
//! (`Archive::verify`: torn tails were cut off at open) and that the store opens cleanly every time.
//! Archive segments are kept small (32 KiB) and the large-package threshold low (4 KiB), so kills
//! land around segment rollovers and large writes too, and the writers also archive the same
//! bytes concurrently (dedup under a crash).
//!
//! Runs itself as the child when `STORE_KILL9_CHILD=<dir>` is set. Rounds: `STORE_KILL9_ROUNDS`
//! (default 20). Seed: `STORE_KILL9_SEED` (printed, for replaying a failure).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use store::{Digest, Store, StoreOptions};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    round: u32,
    n: u64,
    /// Deterministic filler so a torn or mixed-up record is detectable.
    body: String,
}

fn body(round: u32, n: u64) -> String {
    format!("{round}:{n}:").repeat(1 + (n % 40) as usize)
}

/// A distinct package, from a few hundred bytes to about 8 KB.
fn package(round: u32, n: u64) -> Vec<u8> {
    format!(
        "<edXML round=\"{round}\" n=\"{n}\">{}</edXML>",
        body(round, n).repeat(1 + (n % 20) as usize)
    )
    .into_bytes()
}

/// A package every writer archives (the same bytes, at about the same time).
fn shared_package(round: u32, k: u64) -> Vec<u8> {
    format!("<edXML round=\"{round}\" shared=\"{k}\"/>").into_bytes()
}

fn options() -> StoreOptions {
    StoreOptions {
        segment_bytes: 32 * 1024,
        // The biggest packages take the large path (a segment of their own, no writer lock).
        large_package_bytes: 4 * 1024,
        // Rounds back to back, as many commits (and crash points inside them) as the disk allows;
        // the relay's kill9 test runs with the default gap.
        commit_gap: std::time::Duration::ZERO,
        ..StoreOptions::default()
    }
}

fn main() {
    if let Ok(dir) = std::env::var("STORE_KILL9_CHILD") {
        // A failure inside a child task must fail the test, not just stop the traffic.
        std::panic::set_hook(Box::new(|info| {
            println!("CHILD-PANIC {info}");
            std::process::exit(101);
        }));
        let round: u32 = std::env::var("STORE_KILL9_ROUND").unwrap().parse().unwrap();
        child(&dir, round);
        return;
    }
    parent();
}

/// Four writers, each: append a record (every 2nd time also archive a distinct package, every
/// 4th time also a package all writers share), flush, print.
fn child(dir: &str, round: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open_with(dir, options()).unwrap();
        println!("OPEN");
        let mut tasks = Vec::new();
        for w in 0..4u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let log = store.events::<Record>();
                for i in 0.. {
                    let n = i * 4 + w;
                    let rec = Record {
                        round,
                        n,
                        body: body(round, n),
                    };
                    let seq = log.append(&rec).unwrap();
                    let s = store.clone();
                    let (digest, shared) = tokio::task::spawn_blocking(move || {
                        let digest =
                            (n % 2 == 0).then(|| s.archive().put(&package(round, n)).unwrap());
                        let shared = (i % 4 == 0)
                            .then(|| s.archive().put(&shared_package(round, i / 4)).unwrap());
                        (digest, shared)
                    })
                    .await
                    .unwrap();
                    store.flush().await.unwrap();
                    let show = |d: Option<Digest>| d.map_or("-".to_owned(), |d| d.to_hex());
                    println!("ACK {seq} {n} {} {}", show(digest), show(shared));
                }
            }));
        }
        // The writers loop until the parent kills the process.
        for t in tasks {
            let _ = t.await;
        }
    });
}

/// The run's directory, deleted at the end of a passing run but kept (and its path printed) when the
/// run fails: a store that does not reopen after a SIGKILL cannot be made again on demand, so what
/// it left on disk is the evidence (a fresh-clone CI run once lost it: sled could not open its own
/// database, and the temporary directory went with the failed test).
struct KeptOnFailure(tempfile::TempDir);

impl Drop for KeptOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.disable_cleanup(true);
            eprintln!(
                "kill9 (store): the failed run's files are kept in {}",
                self.0.path().display()
            );
        }
    }
}

fn parent() {
    let rounds: u32 = std::env::var("STORE_KILL9_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("STORE_KILL9_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("kill9 (store): {rounds} rounds, seed {seed}");
    let mut rng = seed;
    let tmp = KeptOnFailure(tempfile::tempdir().unwrap());
    let dir = tmp.0.path().join("store");
    // (round, n) -> (seq, archived digest) for every write the child was told is durable.
    let mut acked: BTreeMap<(u32, u64), (u64, Option<Digest>)> = BTreeMap::new();
    // Shared packages acknowledged: digest -> (round, k).
    let mut acked_shared: BTreeMap<Digest, (u32, u64)> = BTreeMap::new();
    let exe = std::env::current_exe().unwrap();
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .env("STORE_KILL9_CHILD", &dir)
            .env("STORE_KILL9_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        // Kill anywhere from during open to well into the writes.
        let delay = 20 + next(&mut rng) % 600;
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: the child was not killed");
        let lines = reader.join().unwrap();
        let mut new = 0;
        for line in &lines {
            assert!(!line.starts_with("CHILD-PANIC"), "round {round}: {line}");
            let parts: Vec<&str> = line.split(' ').collect();
            if parts.first() != Some(&"ACK") {
                continue;
            }
            let seq: u64 = parts[1].parse().unwrap();
            let n: u64 = parts[2].parse().unwrap();
            let digest = (parts[3] != "-").then(|| parts[3].parse::<Digest>().unwrap());
            acked.insert((round, n), (seq, digest));
            if parts[4] != "-" {
                let k = n / 4 / 4; // i = (n - w) / 4, k = i / 4
                acked_shared.insert(parts[4].parse::<Digest>().unwrap(), (round, k));
            }
            new += 1;
        }
        // Reopen: must open cleanly and hold every acknowledged write of every round so far.
        let store = Store::open_with(&dir, options())
            .unwrap_or_else(|e| panic!("round {round}: store did not reopen: {e}"));
        let log = store.events::<Record>();
        let mut found = BTreeMap::new();
        let mut last = 0;
        for r in log.scan(1) {
            let (seq, rec) =
                r.unwrap_or_else(|e| panic!("round {round}: unreadable event log: {e}"));
            assert!(seq > last, "round {round}: seq {seq} after {last}");
            last = seq;
            assert_eq!(
                rec.body,
                body(rec.round, rec.n),
                "round {round}: record {seq} damaged"
            );
            found.insert((rec.round, rec.n), seq);
        }
        for ((r, n), (seq, digest)) in &acked {
            assert_eq!(
                found.get(&(*r, *n)),
                Some(seq),
                "round {round}: acknowledged record (round {r}, n {n}, seq {seq}) lost"
            );
            if let Some(d) = digest {
                let bytes = store
                    .archive()
                    .get(d)
                    .unwrap_or_else(|e| panic!("round {round}: archive {d}: {e}"));
                assert_eq!(
                    bytes,
                    Some(package(*r, *n)),
                    "round {round}: archived package {d} lost"
                );
            }
        }
        for (d, (r, k)) in &acked_shared {
            let bytes = store
                .archive()
                .get(d)
                .unwrap_or_else(|e| panic!("round {round}: shared archive {d}: {e}"));
            assert_eq!(
                bytes,
                Some(shared_package(*r, *k)),
                "round {round}: shared package {d} lost"
            );
        }
        let report = store
            .archive()
            .verify()
            .unwrap_or_else(|e| panic!("round {round}: archive verify: {e}"));
        assert_eq!(
            report.problems,
            vec![],
            "round {round}: archive segments damaged after reopen"
        );
        println!(
            "round {round:2}: killed after {delay:3} ms, {new:5} new acknowledged writes, {:6} records in log, {:5} packages in {:3} segments, all present",
            found.len(),
            report.records,
            report.segments
        );
        drop(log);
        drop(store);
    }
    assert!(
        acked.len() > 100,
        "too few acknowledged writes ({}) for the test to mean anything",
        acked.len()
    );
    println!(
        "kill9 (store): {} acknowledged writes survived {rounds} SIGKILLs",
        acked.len()
    );
    println!("kill9: 1 passed, 0 failed");
}

/// xorshift64: enough randomness for kill timing, no dependency.
fn next(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}
