//! `Broker::stats` over the real RabbitMQ (127.0.0.1:5672, `TRUC_TEST_AMQP_URL` overrides) with
//! its management API (port 15672; ops/test.sh enables the plugin): every mailbox queue under
//! the prefix is listed, whoever declared it, and the per-queue fallback (management API not
//! answering) gives the same answer. Each test works under a unique prefix deleted at the end,
//! pass or fail. RabbitMQ must be running: a missing server fails the tests, it does not skip them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use broker::contract::message;
use broker::{
    AmqpBroker, AmqpConfig, Broker, Clock, MailboxStats, ManualClock, Publish, StatsSource,
};
use store::Store;

fn url() -> String {
    std::env::var("TRUC_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Nothing answers HTTP there (port 1), as when the management plugin is off.
const NO_API: &str = "http://127.0.0.1:1/";

/// One prefix, one manual clock; dropping it deletes the mailboxes, the dead-letter queue and
/// the exchanges under the prefix.
struct Scope {
    prefix: String,
    clock: Arc<ManualClock>,
    mailboxes: Vec<String>,
}

impl Scope {
    fn new(name: &str, mailboxes: &[&str]) -> Scope {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Scope {
            prefix: format!("test.stats.{name}.{}.{nanos}.", std::process::id()),
            clock: Arc::new(ManualClock::new(
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
            )),
            mailboxes: mailboxes.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    fn config(&self) -> AmqpConfig {
        AmqpConfig {
            prefix: self.prefix.clone(),
            clock: self.clock.clone(),
            poll: Duration::from_millis(50),
            ..AmqpConfig::new(url())
        }
    }

    /// A broker with a store of its own (as another relay process or a restarted one).
    async fn open(&self, config: AmqpConfig) -> (AmqpBroker, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let b = AmqpBroker::open(store, config)
            .await
            .expect("RabbitMQ must run on 127.0.0.1:5672 (bash ops/test.sh starts it)");
        (b, dir)
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let (config, mailboxes) = (self.config(), self.mailboxes.clone());
        let prefix = self.prefix.clone();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let dir = tempfile::tempdir().unwrap();
                let b = AmqpBroker::open(Store::open(dir.path()).unwrap(), config).await?;
                b.delete(&mailboxes).await?;
                b.close().await;
                Ok::<(), broker::BrokerError>(())
            })
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("cleanup of {prefix} failed: {e}");
        }
    }
}

fn publish(mailbox: &str, id: &str, queued_at: SystemTime) -> Publish {
    Publish {
        mailbox: mailbox.to_owned(),
        message: message(id, queued_at),
    }
}

/// (mailbox, ready, in flight, dead, oldest age) of `stats`, for comparing.
fn rows(stats: &[MailboxStats]) -> Vec<(String, u64, u64, u64, Option<Duration>)> {
    stats
        .iter()
        .map(|s| {
            (
                s.mailbox.clone(),
                s.ready,
                s.in_flight,
                s.dead_lettered,
                s.oldest_ready_age,
            )
        })
        .collect()
}

const A: &str = "000.00.00.A01";
const B: &str = "000.00.00.B02";
const C: &str = "000.00.00.C03";
const D: &str = "000.00.00.D04";

#[tokio::test]
async fn stats_list_the_mailboxes_another_broker_declared_with_counts_dead_letters_and_ages() {
    let scope = Scope::new("restart", &[A, B, C, D]);
    let t0 = scope.clock.now();
    // The first relay process declares four mailboxes and leaves a backlog.
    let (first, _dir1) = scope.open(scope.config()).await;
    first
        .declare_mailboxes(&scope.mailboxes.clone())
        .await
        .unwrap();
    first
        .publish(vec![publish(A, "a1", t0), publish(A, "a2", t0)])
        .await
        .unwrap();
    scope.clock.advance(Duration::from_secs(60));
    first
        .publish(vec![
            publish(B, "b1", scope.clock.now()),
            publish(C, "c1", scope.clock.now()),
        ])
        .await
        .unwrap();
    assert_eq!(first.fetch(C, 1, Duration::ZERO).await.unwrap().len(), 1);
    first
        .dead_letter(C, "c1", "test: unreadable")
        .await
        .unwrap();
    first.close().await;

    // Restarted (or another node): it has declared nothing, has polled nothing.
    scope.clock.advance(Duration::from_secs(120));
    let (second, _dir2) = scope.open(scope.config()).await;
    assert!(second.declared_mailboxes().is_empty());
    let stats = second.stats().await.unwrap();
    assert_eq!(second.stats_source(), Some(StatsSource::Management));
    assert_eq!(
        rows(&stats),
        [
            (A.to_owned(), 2, 0, 0, Some(Duration::from_secs(180))),
            (B.to_owned(), 1, 0, 0, Some(Duration::from_secs(120))),
            (C.to_owned(), 0, 0, 1, None),
        ],
        "D is empty, so not listed"
    );

    // A lease held by this node counts as in flight, and the next message is the oldest ready.
    assert_eq!(second.fetch(A, 1, Duration::ZERO).await.unwrap().len(), 1);
    let stats = second.stats().await.unwrap();
    assert_eq!(
        rows(&stats)[0],
        (A.to_owned(), 1, 1, 0, Some(Duration::from_secs(180)))
    );
    second.close().await;
}

#[tokio::test]
async fn without_the_management_api_stats_fall_back_to_the_same_answer() {
    let scope = Scope::new("fallback", &[A, B, C, D]);
    let t0 = scope.clock.now();
    let (blind, _dir1) = scope
        .open(AmqpConfig {
            management_url: Some(NO_API.to_owned()),
            ..scope.config()
        })
        .await;
    blind
        .declare_mailboxes(&scope.mailboxes.clone())
        .await
        .unwrap();
    blind
        .publish(vec![
            publish(A, "a1", t0),
            publish(A, "a2", t0 + Duration::from_millis(1500)),
            publish(B, "b1", t0 + Duration::from_millis(250)),
            publish(C, "c1", t0),
            publish(C, "c2", t0),
        ])
        .await
        .unwrap();
    assert_eq!(blind.fetch(C, 2, Duration::ZERO).await.unwrap().len(), 2);
    blind
        .dead_letter(C, "c1", "test: unreadable")
        .await
        .unwrap();
    scope.clock.advance(Duration::from_secs(30));

    let fallback = blind.stats().await.unwrap();
    assert_eq!(blind.stats_source(), Some(StatsSource::PerQueue));
    let (seeing, _dir2) = scope.open(scope.config()).await;
    let listed = seeing.stats().await.unwrap();
    assert_eq!(seeing.stats_source(), Some(StatsSource::Management));
    assert_eq!(rows(&fallback), rows(&listed));
    assert_eq!(
        rows(&listed),
        [
            (A.to_owned(), 2, 0, 0, Some(Duration::from_secs(30))),
            (B.to_owned(), 1, 0, 0, Some(Duration::from_millis(29_750))),
            (C.to_owned(), 0, 1, 1, None),
        ]
    );
    // The fallback asks again each time: a wrong URL keeps falling back, it never fails stats.
    assert_eq!(rows(&blind.stats().await.unwrap()), rows(&listed));
    assert_eq!(blind.stats_source(), Some(StatsSource::PerQueue));
    blind.close().await;
    seeing.close().await;
}
