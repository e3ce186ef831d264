//! The operator overview over the real RabbitMQ (127.0.0.1:5672, `TRUC_TEST_AMQP_URL`
//! overrides), under a unique queue prefix deleted at the end. The relay reaches RabbitMQ through
//! a TCP relay of this test, so "broker down" is made by cutting that relay: the shared RabbitMQ
//! itself is never stopped. RabbitMQ must be running (ops/test.sh starts it): a missing server
//! fails the test, it does not skip it.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use broker::{AmqpBroker, AmqpConfig, AnyBroker, Broker, ManualClock};
use common::*;
use directory::Directory;
use relay::Relay;
use store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

fn amqp_addr() -> (String, String) {
    let url = std::env::var("TRUC_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    // amqp://user:pass@HOST:PORT/vhost → (HOST:PORT, url with the address replaced later)
    let after_at = url.rsplit_once('@').map_or(url.as_str(), |(_, r)| r);
    let host_port = after_at.split('/').next().unwrap().to_owned();
    (url.clone(), host_port)
}

fn unique_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("test.ops.{}.{nanos}.", std::process::id())
}

/// A TCP relay from a local port to RabbitMQ that the test can cut (every connection closed,
/// nothing listening) and bring back on the same port; optionally slow (what the client sends
/// reaches the server `delay` late).
struct Cable {
    addr: SocketAddr,
    upstream: String,
    delay: Duration,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Cable {
    async fn new(upstream: String) -> Cable {
        Cable::slow(upstream, Duration::ZERO).await
    }

    async fn slow(upstream: String, delay: Duration) -> Cable {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cable = Cable {
            addr: listener.local_addr().unwrap(),
            upstream,
            delay,
            tasks: Arc::default(),
        };
        cable.serve(listener);
        cable
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, tasks, delay) = (self.upstream.clone(), self.tasks.clone(), self.delay);
        let acceptor = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let copy = tokio::spawn(async move {
                    if delay.is_zero() {
                        if let Ok(mut up) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                        }
                        return;
                    }
                    // Slow: whatever the client sends (each HTTP request, also on a kept-alive
                    // connection) reaches the server `delay` late. The server is dialled only
                    // then, or it would drop the silent connection (RabbitMQ's HTTP server
                    // waits 5 s for a request).
                    let (mut down_r, mut down_w) = down.into_split();
                    let mut buf = vec![0u8; 64 * 1024];
                    let Ok(n @ 1..) = down_r.read(&mut buf).await else {
                        return;
                    };
                    tokio::time::sleep(delay).await;
                    let Ok(up) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut up_r, mut up_w) = up.into_split();
                    let back = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut up_r, &mut down_w).await;
                    });
                    let mut n = n;
                    loop {
                        if up_w.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        match down_r.read(&mut buf).await {
                            Ok(m @ 1..) => n = m,
                            _ => break,
                        }
                        tokio::time::sleep(delay).await;
                    }
                    let _ = back.await;
                });
                tasks.lock().unwrap().push(copy);
            }
        });
        self.tasks.lock().unwrap().push(acceptor);
    }

    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    async fn mend(&self) {
        // The aborted acceptor may take a moment to let go of the port.
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("rebinding {}: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }
}

/// The queues under `prefix` are deleted when this is dropped, pass or fail.
struct Cleanup {
    store: Store,
    config: AmqpConfig,
    mailboxes: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (store, config, mailboxes) = (
            self.store.clone(),
            self.config.clone(),
            self.mailboxes.clone(),
        );
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let b = AmqpBroker::open(store, config).await?;
                b.delete(&mailboxes).await?;
                b.close().await;
                Ok::<(), broker::BrokerError>(())
            })
        });
        if let Ok(Err(e)) = done.join() {
            eprintln!("cleanup of {} failed: {e}", self.config.prefix);
        }
    }
}

/// A relay on RabbitMQ through `config`, for the units `units` (code, name) of `pki`, with the
/// broker it runs on and the guard that deletes their queues at the end, reaching RabbitMQ at
/// `cleanup_url` (the real address, when the test sends `config` through a cable it cuts).
async fn relay_on_amqp(
    store: Store,
    config: AmqpConfig,
    cleanup_url: &str,
    units: &[(&str, &str)],
    pki: &dsig::pki::DevPki,
    clock: Arc<ManualClock>,
) -> (Relay, AmqpBroker, Cleanup) {
    let cleanup = Cleanup {
        store: store.clone(),
        config: AmqpConfig {
            url: cleanup_url.to_owned(),
            ..config.clone()
        },
        mailboxes: units.iter().map(|(code, _)| (*code).to_owned()).collect(),
    };
    let amqp = AmqpBroker::open(store.clone(), config)
        .await
        .expect("RabbitMQ must run on 127.0.0.1:5672 (bash ops/test.sh starts it)");
    let directory = Directory::open(&store).unwrap();
    for (code, name) in units {
        directory.upsert(unit(code, name, &[])).unwrap();
    }
    let relay = Relay::open(
        store,
        AnyBroker::Amqp(amqp.clone()),
        directory,
        relay_config(pki, None, clock),
    )
    .unwrap();
    (relay, amqp, cleanup)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rabbitmq_the_overview_orders_dead_letters_redrives_and_reports_the_broker_down() {
    let (url, host_port) = amqp_addr();
    let cable = Cable::new(host_port.clone()).await;
    let cabled_url = url.replacen(&host_port, &cable.addr.to_string(), 1);

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let now = SystemTime::now();
    let pki = dsig::pki::init(&[(A, None), (B, None), (C, None)], unix(now)).unwrap();
    let clock = Arc::new(ManualClock::new(now));
    let prefix = unique_prefix();
    let config = AmqpConfig {
        prefix: prefix.clone(),
        clock: clock.clone(),
        poll: Duration::from_millis(50),
        reconnect_for: Duration::from_secs(1),
        ..AmqpConfig::new(cabled_url)
    };
    let (relay, _amqp, _cleanup) = relay_on_amqp(
        store,
        config,
        &url,
        &[
            (A, "Bộ Nội vụ"),
            (B, "UBND tỉnh Hà Nam"),
            (C, "UBND tỉnh Nam Định"),
        ],
        &pki,
        clock.clone(),
    )
    .await;
    let key = unit_key(&pki, A);
    let send = |to: &'static str, doc: &'static str| {
        let signed = dsig::sign(&document(A, &[to], doc, doc), &key, dsig::Role::Sender).unwrap();
        let relay = relay.clone();
        async move { relay.submit(A, &signed).await.unwrap().id }
    };

    // B: one package, 15 minutes old. C: two packages, fresh.
    send(B, "doc-old").await;
    clock.advance(Duration::from_secs(900));
    send(C, "doc-c1").await;
    let c2 = send(C, "doc-c2").await;
    let o = relay.overview(0).await.unwrap();
    assert_eq!(o.backend, "amqp");
    assert!(o.broker_up, "{:?}", o.broker_error);
    let rows: Vec<(&str, u64, Option<u64>)> = o
        .mailboxes
        .iter()
        .map(|m| (m.unit.as_str(), m.ready, m.oldest_ready_age_s))
        .collect();
    assert_eq!(rows, [(B, 1, Some(900)), (C, 2, Some(0))]);
    assert_eq!(o.mailboxes[1].name.as_deref(), Some("UBND tỉnh Nam Định"));
    assert_eq!(o.rates.accepted, 3);

    // A dead letter with its reason, then re-driven back to C.
    relay.inbox(C, 10, Duration::ZERO).await.unwrap();
    relay
        .broker()
        .dead_letter(C, &c2, "DMS refuses the attachment")
        .await
        .unwrap();
    let o = relay.overview(0).await.unwrap();
    assert_eq!(o.dead_letters_total, 1);
    assert_eq!(o.dead_letters[0].unit, C);
    assert_eq!(o.dead_letters[0].id, c2);
    assert_eq!(o.dead_letters[0].reason, "DMS refuses the attachment");
    assert_eq!(o.dead_letters[0].document_id, "doc-c2");
    assert_eq!(relay.redrive(C).await.unwrap(), 1);
    let o = relay.overview(0).await.unwrap();
    assert_eq!(o.dead_letters_total, 0);
    let c = o.mailboxes.iter().find(|m| m.unit == C).unwrap();
    assert_eq!(c.dead_lettered, 0);
    assert!(c.ready >= 1, "the re-driven message is ready again: {c:?}");

    assert!(o.stats_fresh && o.stats_error.is_none());
    let before = o.mailboxes.clone();

    // The broker goes away: the overview says so (with what to check), it does not fail, and
    // it keeps the last figures on show with the time they were read.
    cable.cut();
    clock.advance(Duration::from_secs(60));
    let o = relay.overview(0).await.unwrap();
    assert!(!o.broker_up);
    let problem = o.broker_error.expect("a reason when the broker is down");
    assert_eq!(problem.code, "broker.amqp");
    assert!(problem.vi.contains("RabbitMQ") && problem.en.contains("RabbitMQ"));
    assert!(!o.stats_fresh);
    assert_eq!(o.stats_age_s, Some(60));
    assert_eq!(
        o.stats_error.map(|e| e.code).as_deref(),
        Some("broker.amqp")
    );
    assert_eq!(o.mailboxes, before, "the last figures stay, dated");
    assert_eq!(o.rates.accepted, 3, "rates survive a broker outage");
    let err = relay.redrive(C).await.unwrap_err();
    assert_eq!((err.code, err.status), ("broker_unavailable", 503));

    // Back again: the relay reconnects by itself.
    cable.mend().await;
    let o = relay.overview(0).await.unwrap();
    assert!(o.broker_up, "{:?}", o.broker_error);
    assert!(o.stats_fresh && o.stats_error.is_none() && o.stats_age_s == Some(0));
    assert!(o.mailboxes.iter().any(|m| m.unit == B));
}

/// At tens of thousands of mailboxes RabbitMQ takes seconds to list its queues (3.3–5.5 s at
/// 30,000 on this machine). Here its management API answers 8 s late, through a slow cable, the
/// same for the relay: the overview must neither wait for it nor call the broker down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_slow_to_count_its_queues_is_up_and_its_figures_come_with_their_time() {
    let (url, _) = amqp_addr();
    let management = Cable::slow("127.0.0.1:15672".into(), Duration::from_secs(8)).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let now = SystemTime::now();
    let pki = dsig::pki::init(&[(A, None), (B, None)], unix(now)).unwrap();
    let clock = Arc::new(ManualClock::new(now));
    let config = AmqpConfig {
        prefix: unique_prefix(),
        clock: clock.clone(),
        poll: Duration::from_millis(50),
        management_url: Some(format!("http://{}/", management.addr)),
        ..AmqpConfig::new(url.clone())
    };
    let (relay, amqp, _cleanup) = relay_on_amqp(
        store,
        config,
        &url,
        &[(A, "Bộ Nội vụ"), (B, "UBND tỉnh Hà Nam")],
        &pki,
        clock.clone(),
    )
    .await;
    let key = unit_key(&pki, A);
    let signed = dsig::sign(
        &document(A, &[B], "doc-1", "doc-1"),
        &key,
        dsig::Role::Sender,
    )
    .unwrap();
    relay.submit(A, &signed).await.unwrap();

    // First look: the reading (8 s) is not waited for; the broker is up, no figures yet.
    let asked = std::time::Instant::now();
    let o = relay.overview(0).await.unwrap();
    let waited = asked.elapsed();
    assert!(
        o.broker_up,
        "a slow count is not an outage: {:?}",
        o.broker_error
    );
    assert!(o.broker_error.is_none());
    assert!(!o.stats_fresh && o.stats_at.is_none() && o.mailboxes.is_empty());
    assert_eq!(
        o.stats_error.map(|e| e.code).as_deref(),
        Some("broker.stats_pending")
    );
    eprintln!("first overview answered after {waited:?} (reading still running)");
    assert!(
        waited < Duration::from_secs(8),
        "it did not wait for the 8 s reading"
    );

    // The reading went on without the page: a little later it is there, dated.
    tokio::time::sleep(Duration::from_secs(8)).await;
    clock.advance(Duration::from_secs(30));
    let o = relay.overview(0).await.unwrap();
    assert!(o.broker_up);
    assert!(!o.stats_fresh, "the next reading is still running");
    assert_eq!(o.stats_age_s, Some(30));
    assert_eq!(
        o.stats_error.map(|e| e.code).as_deref(),
        Some("broker.stats_slow")
    );
    let rows: Vec<(&str, u64)> = o
        .mailboxes
        .iter()
        .map(|m| (m.unit.as_str(), m.ready))
        .collect();
    assert_eq!(rows, [(B, 1)]);
    assert_eq!(amqp.stats_source(), Some(broker::StatsSource::Management));

    // And /metrics' view: up, with the figures' age.
    let check = relay
        .check_broker(relay::Want::Within(Duration::from_secs(5)), Duration::ZERO)
        .await;
    assert!(check.up() && check.reading.is_some());
    assert_eq!(check.age, Some(Duration::from_secs(30)));
}
