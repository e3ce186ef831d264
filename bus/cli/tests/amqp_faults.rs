//! Fault tests through the relay on RabbitMQ: `truc serve` with `[broker] kind = "amqp"` (a
//! unique queue prefix per test, everything under it deleted at the end, pass or fail) carries
//! several thousand packages over mutual TLS while senders submit and recipients fetch and ack
//! (the shared `relay_load`), and mid-load: `rabbitmqctl stop_app` then `start_app`;
//! `rabbitmqctl close_all_connections`; the relay killed with SIGKILL and restarted. After each,
//! every package that got a 202 is acknowledged by its recipient exactly once, nothing else is
//! ever offered (no refused package, nothing after its ack), and the counts are printed.
//!
//! Every test holds `broker::outage::OutageGuard`: a lock file shared with the broker's own fault
//! tests (`bus/broker/tests/faults_amqp.rs`), so no two of them disturb the shared server at
//! once, and the broker is started again when the guard drops, whatever happened.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

mod relay_load;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker::outage::OutageGuard;
use broker::{AmqpBroker, AmqpConfig};
use relay_load::Load;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const GOOD: usize = 3_000;
const BAD: usize = 150;

fn amqp_addr() -> SocketAddr {
    "127.0.0.1:5672".parse().unwrap()
}

/// A unique prefix, and on drop (after the broker is up again) the deletion of everything
/// declared under it: the mailboxes, the dead-letter queue and both exchanges through the
/// backend, then any other queue whose name starts with the prefix (e.g. the shared log).
struct Names(String);

impl Names {
    fn new(test: &str) -> Names {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Names(format!(
            "test.relayfault.{test}.{}.{nanos}.",
            std::process::id()
        ))
    }

    /// The relay's broker section: the defaults (so the shared log of several relay nodes is on,
    /// and must live through every fault too) under the test's own prefix.
    fn relay_toml(&self) -> String {
        format!(
            "[broker]\nkind = \"amqp\"\nurl = \"{URL}\"\n[broker.amqp]\nprefix = \"{}\"\n",
            self.0
        )
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        let prefix = self.0.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = store::Store::open(dir.path()).unwrap();
            let config = AmqpConfig {
                prefix: prefix.clone(),
                reconnect_for: Duration::from_secs(60),
                ..AmqpConfig::new(URL)
            };
            if let Ok(b) = AmqpBroker::open(store, config).await {
                let _ = b.delete(&relay_load::codes()).await;
                b.close().await;
            }
        });
        let listed = Command::new("rabbitmqctl")
            .args(["list_queues", "name", "--no-table-headers", "-q"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for q in listed.lines().filter(|q| q.starts_with(&prefix)) {
            let _ = Command::new("rabbitmqctl")
                .args(["delete_queue", q])
                .output();
        }
    }
}

/// The relay's log shows that it lost its RabbitMQ connection (the fault reached it).
fn lost_connection(log: &str) -> bool {
    [
        "CONNECTION_FORCED",
        "Connection reset",
        "RabbitMQ call failed",
        "not reachable",
    ]
    .iter()
    .any(|sign| log.contains(sign))
}

/// Names first, guard second: the guard drops first (broker started again, lock released), then
/// the names are deleted. A test keeps its guard until it ends (the fault only borrows a clone):
/// the lock covers the drain and the checks after the fault, not just the fault.
fn exclusive(test: &str) -> (Names, Arc<OutageGuard>) {
    let names = Names::new(test);
    let guard = OutageGuard::acquire(amqp_addr()).unwrap();
    (names, Arc::new(guard))
}

#[test]
fn every_accepted_package_is_acknowledged_once_across_stop_app_and_start_app() {
    let (names, held) = exclusive("stop");
    let guard = held.clone();
    let counts = relay_load::run(
        Load {
            name: "amqp, stop_app/start_app",
            good: GOOD,
            bad: BAD,
            extra_toml: names.relay_toml(),
        },
        move |load| async move {
            load.until_accepted(GOOD / 3).await;
            let at = load.accepted();
            assert!(at < GOOD, "the fault must come while packages flow");
            tokio::task::spawn_blocking(move || {
                guard.stop_app().unwrap();
                std::thread::sleep(Duration::from_secs(3));
                guard.start_app().unwrap();
            })
            .await
            .unwrap();
            format!(
                "stop_app at {at} accepted, start_app 3 s later at {}",
                load.accepted()
            )
        },
    );
    assert!(
        lost_connection(&counts.relay_log),
        "the relay never lost its RabbitMQ connection: the fault did not reach it"
    );
}

#[test]
fn every_accepted_package_is_acknowledged_once_across_close_all_connections() {
    let (names, held) = exclusive("close");
    let guard = held.clone();
    let counts = relay_load::run(
        Load {
            name: "amqp, close_all_connections",
            good: GOOD,
            bad: BAD,
            extra_toml: names.relay_toml(),
        },
        move |load| async move {
            let mut at = Vec::new();
            for third in [1, 2] {
                load.until_accepted(GOOD * third / 3).await;
                at.push(load.accepted());
                let guard = guard.clone();
                tokio::task::spawn_blocking(move || guard.close_all_connections().unwrap())
                    .await
                    .unwrap();
            }
            assert!(at[0] < GOOD, "the fault must come while packages flow");
            format!("close_all_connections at {at:?} accepted")
        },
    );
    // At start the relay declared every unit's mailbox (in the background) and said so.
    assert!(
        counts.relay_log.contains(&format!(
            "RabbitMQ: đã khai báo hộp thư của {} đơn vị",
            relay_load::codes().len()
        )),
        "the relay did not report declaring the directory's mailboxes"
    );
    assert!(
        lost_connection(&counts.relay_log),
        "the relay never lost its RabbitMQ connection: the fault did not reach it"
    );
}

#[test]
fn every_accepted_package_is_acknowledged_once_across_sigkills_of_the_relay() {
    let (names, _guard) = exclusive("kill");
    let counts = relay_load::run(
        Load {
            name: "amqp, relay SIGKILLs",
            good: GOOD,
            bad: BAD,
            extra_toml: names.relay_toml(),
        },
        |load| async move {
            let mut at = Vec::new();
            for third in [1, 2] {
                load.until_accepted(GOOD * third / 3).await;
                at.push(load.accepted());
                load.kill9_and_restart().await;
            }
            assert!(at[0] < GOOD, "the fault must come while packages flow");
            format!("SIGKILL + restart at {at:?} accepted")
        },
    );
    assert_eq!(counts.kills, 2);
    assert_eq!(counts.relay_starts, 3);
}
