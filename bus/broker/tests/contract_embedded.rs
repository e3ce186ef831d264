//! The broker contract suite, run against the embedded backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use broker::contract::Harness;
use broker::{EmbeddedBroker, EmbeddedConfig, ManualClock};
use store::Store;

/// A temp store directory reopened on every `open`, and a manual clock for leases.
struct Embedded {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
}

impl Embedded {
    fn new() -> Embedded {
        Embedded {
            dir: tempfile::tempdir().unwrap(),
            clock: Arc::new(ManualClock::new(
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
            )),
        }
    }
}

const LEASE: Duration = Duration::from_secs(300);

impl Harness for Embedded {
    type Backend = EmbeddedBroker;

    async fn open(&mut self) -> EmbeddedBroker {
        let store = Store::open(self.dir.path()).unwrap();
        EmbeddedBroker::open(
            store,
            EmbeddedConfig {
                lease: LEASE,
                clock: self.clock.clone(),
            },
        )
        .unwrap()
    }

    async fn close(&mut self, broker: EmbeddedBroker) {
        drop(broker);
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

broker::contract_tests!(Embedded::new());
