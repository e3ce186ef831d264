//! The broker contract suite, run unchanged against the RabbitMQ backend on 127.0.0.1:5672
//! (`TRUC_TEST_AMQP_URL` overrides). Each test declares its own exchanges and queues under a
//! unique prefix and deletes them at the end, pass or fail. RabbitMQ must be running (ops/test.sh
//! starts it): a missing server fails the tests, it does not skip them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use broker::contract::Harness;
use broker::{AmqpBroker, AmqpConfig, ManualClock};
use store::Store;

fn url() -> String {
    std::env::var("TRUC_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A unique name prefix per harness: process id, a counter and the time.
fn unique_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "test.{}.{}.{nanos}.",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One RabbitMQ name space (prefix) and one store (the ack ledger) kept across reopens, and a
/// manual clock for leases. Dropping it deletes what the brokers declared.
struct Amqp {
    prefix: String,
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<ManualClock>,
    /// Mailboxes declared by every broker opened so far (to delete at the end).
    declared: Vec<String>,
}

impl Amqp {
    fn new() -> Amqp {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        Amqp {
            prefix: unique_prefix(),
            _dir: dir,
            store,
            clock: Arc::new(ManualClock::new(
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
            )),
            declared: Vec::new(),
        }
    }

    fn config(&self) -> AmqpConfig {
        AmqpConfig {
            prefix: self.prefix.clone(),
            lease: LEASE,
            clock: self.clock.clone(),
            poll: Duration::from_millis(50),
            ..AmqpConfig::new(url())
        }
    }
}

const LEASE: Duration = Duration::from_secs(300);

impl Harness for Amqp {
    type Backend = AmqpBroker;

    async fn open(&mut self) -> AmqpBroker {
        AmqpBroker::open(self.store.clone(), self.config())
            .await
            .expect("RabbitMQ must run on 127.0.0.1:5672 (bash ops/test.sh starts it)")
    }

    async fn close(&mut self, broker: AmqpBroker) {
        self.declared.extend(broker.declared_mailboxes());
        broker.close().await;
    }

    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn lease(&self) -> Duration {
        LEASE
    }

    fn now(&self) -> SystemTime {
        broker::Clock::now(&*self.clock)
    }

    fn mailbox(&self, name: &str) -> String {
        format!("000.00.00.{name}")
    }
}

impl Drop for Amqp {
    fn drop(&mut self) {
        // Runs on a thread of its own: Drop cannot await, and a test may end by a panic.
        let (config, declared) = (self.config(), std::mem::take(&mut self.declared));
        let store = self.store.clone();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let b = AmqpBroker::open(store, config).await?;
                b.delete(&declared).await?;
                b.close().await;
                Ok::<(), broker::BrokerError>(())
            })
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("cleanup of {} failed: {e}", self.prefix);
        }
    }
}

broker::contract_tests!(Amqp::new());
