//! Relay nodes sharing one RabbitMQ (127.0.0.1:5672, `TRUC_TEST_AMQP_URL` overrides) through the
//! shared log, in one process: what a unit does at one node is seen at the other, an ack at the
//! node without the lease counts, a resubmission at the other node is the same package (also when
//! both nodes accept it at the same moment), and a node
//! started on an empty data directory rebuilds everything from the stream. Every RabbitMQ object
//! lives under a unique prefix and is deleted at the end, pass or fail.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use broker::{AmqpBroker, AmqpConfig, AnyBroker, ManualClock, SharedLog, SharedLogConfig};
use common::*;
use directory::Directory;
use relay::Relay;
use store::Store;

fn url() -> String {
    std::env::var("TRUC_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Deletes the mailboxes, exchanges and the stream of `prefix` when dropped.
struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let prefix = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let config = AmqpConfig {
                    prefix: prefix.clone(),
                    ..AmqpConfig::new(url())
                };
                let b = AmqpBroker::open(Store::open(dir.path()).unwrap(), config).await?;
                b.delete(&[A.to_owned(), B.to_owned(), C.to_owned()])
                    .await?;
                b.close().await;
                let log = SharedLog::open(SharedLogConfig::new(url(), prefix)).await?;
                log.delete().await?;
                log.close().await;
                Ok::<(), broker::BrokerError>(())
            })
        })
        .join();
    }
}

/// One node: its own data directory, store, broker connection and relay.
struct Node {
    _dir: tempfile::TempDir,
    relay: Relay,
    broker: AmqpBroker,
}

async fn node(prefix: &str, pki: &dsig::pki::DevPki, clock: Arc<ManualClock>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let directory = Directory::open(&store).unwrap();
    for (code, name) in [
        (A, "Bộ Nội vụ"),
        (B, "UBND tỉnh Hà Nam"),
        (C, "UBND tỉnh Nam Định"),
    ] {
        directory.upsert(unit(code, name, &[])).unwrap();
    }
    let broker = AmqpBroker::open(
        store.clone(),
        AmqpConfig {
            prefix: prefix.to_owned(),
            clock: clock.clone(),
            ..AmqpConfig::new(url())
        },
    )
    .await
    .unwrap();
    let log = SharedLog::open(SharedLogConfig::new(url(), prefix))
        .await
        .unwrap();
    let relay = Relay::open_clustered(
        store,
        AnyBroker::Amqp(broker.clone()),
        directory,
        relay_config(pki, None, clock),
        log,
    )
    .await
    .unwrap();
    Node {
        _dir: dir,
        relay,
        broker,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_are_one_bus_and_a_new_node_rebuilds_from_the_stream() {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("test.relaycluster.{}.{nanos}.", std::process::id());
    let _cleanup = Cleanup(prefix.clone());
    let now = SystemTime::now();
    let pki = dsig::pki::init(&[(A, Some("Bộ Nội vụ")), (B, None), (C, None)], unix(now)).unwrap();
    let clock = Arc::new(ManualClock::new(now));
    let n1 = node(&prefix, &pki, clock.clone()).await;
    let n2 = node(&prefix, &pki, clock.clone()).await;
    assert_ne!(n1.relay.cluster_node(), n2.relay.cluster_node());
    let sign = |who: &str, xml: &[u8]| {
        let i = &pki.units.iter().find(|(c, _)| c == who).unwrap().1;
        let key = dsig::SigningKey::from_pem(&i.key_pem, &i.cert_pem).unwrap();
        dsig::sign(xml, &key, dsig::Role::Sender).unwrap()
    };

    // Submitted at node 1, fetched at node 2, its body read at both.
    let doc_id = "000.00.00.G22,2026/11/24,7/BNV";
    let signed = sign(A, &document(A, &[B], doc_id, "Công văn qua hai nút"));
    let accepted = n1.relay.submit(A, &signed).await.unwrap();
    let id = accepted.id.clone();
    let items = n2.relay.inbox(B, 10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec![id.as_str()]
    );
    let body2 = n2.relay.package_body(B, &id).unwrap();
    let body1 = n1.relay.package_body(B, &id).unwrap();
    assert_eq!(body1, body2, "both nodes serve the same sealed package");
    assert!(String::from_utf8_lossy(&body2).contains("Công văn qua hai nút"));

    // The same bytes again, at the other node: the same package, nothing new in the mailbox.
    let again = n2.relay.submit(A, &signed).await.unwrap();
    assert!(
        again.duplicate,
        "a resubmission at another node is recognised"
    );
    assert_eq!(again.id, id);

    // Acked at node 1, which does not hold the lease (node 2 does): 204, and tracking at node 2
    // says delivered at once.
    n1.relay.ack(B, &id).await.unwrap();
    let t = n2.relay.tracking(A, &id).unwrap();
    assert_eq!(t.recipients.len(), 1);
    assert!(t.recipients[0].delivered, "{t:?}");
    // Node 2 let go of its lease by acking it on RabbitMQ; even with every lease given back (the
    // connection closed, as when a node dies), neither node offers it again.
    n2.broker.close().await;
    for n in [&n1, &n2] {
        let offered = n
            .relay
            .inbox(B, 10, Duration::from_millis(800))
            .await
            .unwrap();
        assert!(
            offered.is_empty(),
            "offered again after its ack: {offered:?}"
        );
    }
    n2.relay.ack(B, &id).await.unwrap(); // a repeated ack anywhere is still fine

    // B answers 01 at node 2 about the document it was sent through node 1.
    let receipt = sign(B, &status(B, A, doc_id, "01", None));
    n2.relay.submit(B, &receipt).await.unwrap();
    let t = n1.relay.tracking(A, &id).unwrap();
    assert_eq!(t.recipients[0].state, "arrived", "{t:?}");
    let at_a = n1.relay.inbox(A, 10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(at_a.len(), 1, "the 01 reaches the sender at the other node");
    n1.relay.ack(A, &at_a[0].id).await.unwrap();

    // The same package submitted at both nodes at the same moment (neither can see the other's
    // yet): one package id, and once acked it is offered by neither node again, whatever copies
    // the two acceptances put in the mailbox.
    let twin = sign(
        A,
        &document(A, &[B], "000.00.00.G22,2026/11/24,8/BNV", "Gửi hai lần"),
    );
    let (r1, r2) = tokio::join!(n1.relay.submit(A, &twin), n2.relay.submit(A, &twin));
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.id, r2.id, "one package id at both nodes");
    let first = n1.relay.inbox(B, 10, Duration::from_secs(5)).await.unwrap();
    assert!(
        !first.is_empty() && first.iter().all(|i| i.id == r1.id),
        "{first:?}"
    );
    n2.relay.ack(B, &r1.id).await.unwrap();
    for n in [&n1, &n2, &n1, &n2] {
        let offered = n
            .relay
            .inbox(B, 10, Duration::from_millis(500))
            .await
            .unwrap();
        assert!(
            offered.is_empty(),
            "offered again after its ack: {offered:?}"
        );
    }

    // A third node on an empty data directory reads the whole stream: same tracking, same body.
    let n3 = node(&prefix, &pki, clock.clone()).await;
    let t3 = n3.relay.tracking(A, &id).unwrap();
    assert_eq!(t3, n1.relay.tracking(A, &id).unwrap());
    assert_eq!(n3.relay.package_body(B, &id).unwrap(), body1);
    let sent = n3
        .relay
        .packages(
            A,
            &relay::PackageQuery {
                limit: 10,
                ..relay::PackageQuery::default()
            },
        )
        .unwrap();
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter().all(|p| (p.delivered, p.recipients) == (1, 1)),
        "{sent:?}"
    );
    for n in [&n1, &n2, &n3] {
        n.broker.close().await;
    }
}

/// An inbox call its caller drops at any moment (hyper drops the handler when the unit's adapter
/// goes away; here `broker::contract::abandoned_at` cuts it at its first wait or within 1.5 ms,
/// which lands in the broker's fetch or in the sync with the shared log after it), or that fails
/// after its fetch, gives back what it fetched at once: with a clock that never moves no lease
/// runs out, and still every package is offered and acked in the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_call_dropped_at_any_moment_gives_back_what_it_fetched() {
    const N: usize = 120;
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("test.relayabandon.{}.{nanos}.", std::process::id());
    let _cleanup = Cleanup(prefix.clone());
    let now = SystemTime::now();
    let pki = dsig::pki::init(&[(A, Some("Bộ Nội vụ")), (B, None), (C, None)], unix(now)).unwrap();
    let clock = Arc::new(ManualClock::new(now));
    let n = node(&prefix, &pki, clock).await;
    let i_a = &pki.units.iter().find(|(c, _)| c == A).unwrap().1;
    let key = dsig::SigningKey::from_pem(&i_a.key_pem, &i_a.cert_pem).unwrap();
    let mut ids = std::collections::BTreeSet::new();
    let mut acked = std::collections::BTreeSet::new();
    let mut cut = 0;
    for i in 0..N {
        let doc_id = format!("000.00.00.G22,2026/11/24,{}/BNV", 1000 + i);
        let xml = document(A, &[B], &doc_id, "Công văn bị bỏ dở");
        let signed = dsig::sign(&xml, &key, dsig::Role::Sender).unwrap();
        ids.insert(n.relay.submit(A, &signed).await.unwrap().id);
        match broker::contract::abandoned_at(i, n.relay.inbox(B, 1, Duration::ZERO)).await {
            Some(items) => {
                for item in items.unwrap() {
                    n.relay.ack(B, &item.id).await.unwrap();
                    acked.insert(item.id);
                }
            }
            None => cut += 1,
        }
    }
    println!("{N} inbox calls: {cut} cut");
    assert!(
        cut >= N / 8,
        "only {cut} of {N} inbox calls were cut: too few for this test to mean anything"
    );
    let mut quiet = std::time::Instant::now();
    while acked.len() < N && quiet.elapsed() < Duration::from_secs(5) {
        for item in n
            .relay
            .inbox(B, 50, Duration::from_millis(300))
            .await
            .unwrap()
        {
            assert!(ids.contains(&item.id), "offered a package never accepted");
            assert!(
                acked.insert(item.id.clone()),
                "{} offered again after its ack",
                item.id
            );
            n.relay.ack(B, &item.id).await.unwrap();
            quiet = std::time::Instant::now();
        }
    }
    let missing: Vec<&String> = ids.difference(&acked).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} of {N} packages were fetched by a dropped inbox call and never offered again (no lease runs out here): {missing:?}",
        ids.len() - acked.len()
    );
    n.broker.close().await;
}
