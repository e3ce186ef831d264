//! kill -9 test: a child process publishes, fetches and acks through the embedded broker,
//! printing each step the broker confirmed; the parent SIGKILLs it at random moments, reopens and
//! checks after every round that every published-and-not-acked message is still there exactly
//! once, intact, and that no acked message is ever offered again.
//!
//! Runs itself as the child when `BROKER_KILL9_CHILD=<dir>` is set. Rounds: `BROKER_KILL9_ROUNDS`
//! (default 20). Seed: `BROKER_KILL9_SEED` (printed, for replaying a failure).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use broker::contract::message;
use broker::{Broker, EmbeddedBroker, EmbeddedConfig, Publish};
use store::{Store, StoreOptions};

const MAILBOXES: usize = 5;

fn mailbox(i: usize) -> String {
    format!("000.00.00.K{i:02}")
}

fn open(dir: &std::path::Path) -> EmbeddedBroker {
    // Group commits back to back (no gap): as many commits, and crash points inside them, as the
    // disk allows. With the default 8 ms gap this test made about a tenth of the operations
    // (1,023 published in CI); the relay's own kill9 test runs with the default.
    let options = StoreOptions {
        commit_gap: std::time::Duration::ZERO,
        ..StoreOptions::default()
    };
    let store =
        Store::open_with(dir, options).unwrap_or_else(|e| panic!("store did not reopen: {e}"));
    EmbeddedBroker::open(store, EmbeddedConfig::default())
        .unwrap_or_else(|e| panic!("broker did not reopen: {e}"))
}

fn main() {
    if let Ok(dir) = std::env::var("BROKER_KILL9_CHILD") {
        // A failure inside a child task must fail the test, not just stop the traffic.
        std::panic::set_hook(Box::new(|info| {
            println!("CHILD-PANIC {info}");
            std::process::exit(101);
        }));
        let round: u32 = std::env::var("BROKER_KILL9_ROUND")
            .unwrap()
            .parse()
            .unwrap();
        child(std::path::Path::new(&dir), round);
        return;
    }
    parent();
}

/// One publisher (batches of 1–3 across mailboxes) and one consumer (fetch + ack), concurrently.
fn child(dir: &std::path::Path, round: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let b = open(dir);
        println!("OPEN");
        let publisher = {
            let b = b.clone();
            tokio::spawn(async move {
                let mut n = 0usize;
                loop {
                    let size = 1 + n % 3;
                    let batch: Vec<Publish> = (n..n + size)
                        .map(|k| Publish {
                            mailbox: mailbox(k % MAILBOXES),
                            message: message(&format!("r{round}-{k}"), SystemTime::now()),
                        })
                        .collect();
                    for p in &batch {
                        println!("PUBLISHING {} {}", p.mailbox, p.message.id);
                    }
                    b.publish(batch.clone()).await.unwrap();
                    for p in &batch {
                        println!("PUBLISHED {} {}", p.mailbox, p.message.id);
                    }
                    n += size;
                }
            })
        };
        let consumer = {
            let b = b.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let mb = mailbox(i % MAILBOXES);
                    let got = b.fetch(&mb, 7, Duration::from_millis(20)).await.unwrap();
                    for d in got {
                        println!("ACKING {mb} {}", d.message.id);
                        b.ack(&mb, &d.message.id).await.unwrap();
                        println!("ACKED {mb} {}", d.message.id);
                    }
                }
            })
        };
        // Both loop until the parent kills the process.
        let _ = tokio::join!(publisher, consumer);
    });
}

#[derive(Default)]
struct Seen {
    attempted: BTreeSet<(String, String)>,
    published: BTreeSet<(String, String)>,
    acking: BTreeSet<(String, String)>,
    acked: BTreeSet<(String, String)>,
}

fn parent() {
    let rounds: u32 = std::env::var("BROKER_KILL9_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("BROKER_KILL9_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("kill9 (broker): {rounds} rounds, seed {seed}");
    let mut rng = seed;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("relay");
    let exe = std::env::current_exe().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut seen = Seen::default();
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .env("BROKER_KILL9_CHILD", &dir)
            .env("BROKER_KILL9_ROUND", round.to_string())
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
        let delay = 20 + next(&mut rng) % 600;
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL on Unix
        assert!(!child.wait().unwrap().success());
        let (mut published, mut acked) = (0, 0);
        for line in reader.join().unwrap() {
            assert!(!line.starts_with("CHILD-PANIC"), "round {round}: {line}");
            let mut parts = line.split(' ');
            let (Some(what), Some(mb), Some(id)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let key = (mb.to_owned(), id.to_owned());
            match what {
                "PUBLISHING" => seen.attempted.insert(key),
                "PUBLISHED" => {
                    published += 1;
                    seen.published.insert(key)
                }
                "ACKING" => seen.acking.insert(key),
                "ACKED" => {
                    acked += 1;
                    seen.acked.insert(key)
                }
                _ => false,
            };
        }
        let present = rt.block_on(check(&dir, round, &mut seen));
        println!(
            "round {round:2}: killed after {delay:3} ms, {published:5} published, {acked:5} acked, {present:5} queued after reopen: all accounted for"
        );
    }
    assert!(
        seen.published.len() > 100 && seen.acked.len() > 100,
        "too little traffic for the test to mean anything: {} published, {} acked",
        seen.published.len(),
        seen.acked.len()
    );
    println!(
        "kill9 (broker): {} published, {} acked across {rounds} SIGKILLs; none lost, none duplicated, no acked one offered again",
        seen.published.len(),
        seen.acked.len()
    );
    println!("kill9: 1 passed, 0 failed");
}

/// Reopens and checks the broker against what the child was told; returns how many are queued.
async fn check(dir: &std::path::Path, round: u32, seen: &mut Seen) -> usize {
    let b = open(dir);
    let stats: BTreeMap<String, u64> = b
        .stats()
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            assert_eq!(s.in_flight, 0, "round {round}: leases survived a restart");
            (s.mailbox, s.ready)
        })
        .collect();
    let mut present = BTreeSet::new();
    for i in 0..MAILBOXES {
        let mb = mailbox(i);
        let got = b.fetch(&mb, usize::MAX, Duration::ZERO).await.unwrap();
        assert_eq!(
            got.len() as u64,
            stats.get(&mb).copied().unwrap_or(0),
            "round {round}: stats disagree with the queue of {mb}"
        );
        for d in got {
            let key = (mb.clone(), d.message.id.clone());
            let want = message(&d.message.id, d.message.queued_at);
            assert_eq!(d.message, want, "round {round}: message {key:?} damaged");
            assert!(
                seen.attempted.contains(&key),
                "round {round}: {key:?} was never published"
            );
            assert!(
                !seen.acked.contains(&key),
                "round {round}: acked message {key:?} offered again"
            );
            assert!(
                present.insert(key.clone()),
                "round {round}: {key:?} queued twice"
            );
        }
    }
    for key in &seen.published {
        if !present.contains(key) && !seen.acked.contains(key) {
            assert!(
                seen.acking.contains(key),
                "round {round}: published message {key:?} lost (never acked)"
            );
        }
    }
    // An ack the child started whose message is gone did land: from now on it must never return.
    let landed: Vec<_> = seen
        .acking
        .iter()
        .filter(|k| !present.contains(*k))
        .cloned()
        .collect();
    seen.acked.extend(landed);
    present.len()
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
