//! What the shared log costs, in process (no HTTP, no TLS), on the RabbitMQ at 127.0.0.1:5672
//! (`TRUC_TEST_AMQP_URL` overrides): N pre-signed ~10 KB packages A→B submitted by C concurrent
//! callers, then fetched in batches of 100 and acked by 8 concurrent recipients' workers, for
//! (1) one relay on RabbitMQ without the shared log, (2) one relay with it, (3) two relays with it
//! (submissions alternate between nodes; each batch fetched at one node is acked at the other).
//! Prints packages/s for each phase. Every RabbitMQ object lives under a unique prefix, deleted at
//! the end. `cargo bench -p relay --bench cluster [-- N C]`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use broker::{AmqpBroker, AmqpConfig, AnyBroker, Clock, SharedLog, SharedLogConfig, SystemClock};
use common::*;
use directory::Directory;
use relay::{Relay, RelayConfig};
use store::Store;

fn url() -> String {
    std::env::var("TRUC_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

struct Node {
    _dir: tempfile::TempDir,
    relay: Relay,
    broker: AmqpBroker,
    log: Option<SharedLog>,
}

async fn node(prefix: &str, pki: &dsig::pki::DevPki, shared: bool) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let directory = Directory::open(&store).unwrap();
    for code in [A, B] {
        directory.upsert(unit(code, code, &[])).unwrap();
    }
    let broker = AmqpBroker::open(
        store.clone(),
        AmqpConfig {
            prefix: prefix.to_owned(),
            ..AmqpConfig::new(url())
        },
    )
    .await
    .unwrap();
    let config = RelayConfig {
        relay_id: "000.00.00.A00".into(),
        seal: Arc::new(
            dsig::SigningKey::from_pem(&pki.relay.key_pem, &pki.relay.cert_pem).unwrap(),
        ),
        trust: Arc::new(dsig::TrustStore::new(&pki.ca.cert_pem, &pki.crl_pem).unwrap()),
        limits: edxml::Limits::default(),
        clock: Arc::new(SystemClock) as Arc<dyn Clock>,
    };
    let (relay, log) = if shared {
        let log = SharedLog::open(SharedLogConfig::new(url(), prefix))
            .await
            .unwrap();
        let relay = Relay::open_clustered(
            store,
            AnyBroker::Amqp(broker.clone()),
            directory,
            config,
            log.clone(),
        )
        .await
        .unwrap();
        (relay, Some(log))
    } else {
        let relay = Relay::open(store, AnyBroker::Amqp(broker.clone()), directory, config).unwrap();
        (relay, None)
    };
    Node {
        _dir: dir,
        relay,
        broker,
        log,
    }
}

async fn run(
    label: &str,
    packages: Arc<Vec<Vec<u8>>>,
    pki: &dsig::pki::DevPki,
    nodes: usize,
    concurrency: usize,
) {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("bench.cluster.{}.{nanos}.", std::process::id());
    let shared = nodes > 1 || label.contains("with");
    let mut all = Vec::new();
    for _ in 0..nodes {
        all.push(node(&prefix, pki, shared).await);
    }
    let relays: Arc<Vec<Relay>> = Arc::new(all.iter().map(|n| n.relay.clone()).collect());
    let n = packages.len();

    let t0 = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (relays, packages, next) = (relays.clone(), packages.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= packages.len() {
                    break;
                }
                relays[i % relays.len()]
                    .submit(A, &packages[i])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let submit = t0.elapsed();

    let t1 = Instant::now();
    let acked = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (relays, acked) = (relays.clone(), acked.clone());
        workers.push(tokio::spawn(async move {
            let mut round = w;
            while acked.load(Ordering::Relaxed) < n {
                let at = round % relays.len();
                round += 1;
                let items = relays[at]
                    .inbox(B, 100, Duration::from_millis(200))
                    .await
                    .unwrap();
                let ack_at = (at + 1) % relays.len();
                for item in items {
                    relays[ack_at].ack(B, &item.id).await.unwrap();
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let drain = t1.elapsed();
    println!(
        "{label}: submit {:.0} packages/s ({n} in {:.1?}), fetch+ack {:.0} packages/s ({:.1?}), end to end {:.0} packages/s",
        n as f64 / submit.as_secs_f64(),
        submit,
        n as f64 / drain.as_secs_f64(),
        drain,
        n as f64 / (submit + drain).as_secs_f64(),
    );
    // Every node shares the same names: delete them once.
    all[0]
        .broker
        .delete(&[A.to_owned(), B.to_owned()])
        .await
        .unwrap();
    for node in &all {
        node.broker.close().await;
    }
    if let Some(log) = all.iter().find_map(|n| n.log.clone()) {
        log.delete().await.unwrap();
        log.close().await;
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(2000);
    let concurrency = args.get(1).copied().unwrap_or(32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let pki = dsig::pki::init(&[(A, None), (B, None)], unix(SystemTime::now())).unwrap();
        let i = &pki.units.iter().find(|(c, _)| c == A).unwrap().1;
        let key = dsig::SigningKey::from_pem(&i.key_pem, &i.cert_pem).unwrap();
        let filler: Vec<u8> = (0..7 * 1024u32).map(|i| (i % 251) as u8).collect();
        let sign_all = |tag: &str| -> Arc<Vec<Vec<u8>>> {
            Arc::new(
                (0..n)
                    .map(|i| {
                        let xml = document_with(
                            A,
                            &[B],
                            &format!("{tag}-{i}"),
                            "Công văn",
                            filler.clone(),
                        );
                        dsig::sign(&xml, &key, dsig::Role::Sender).unwrap()
                    })
                    .collect(),
            )
        };
        println!(
            "{n} packages of ~10 KB, {concurrency} concurrent submitters, 8 fetch+ack workers"
        );
        run(
            "one node, amqp without shared log",
            sign_all("a"),
            &pki,
            1,
            concurrency,
        )
        .await;
        run(
            "one node, amqp with shared log",
            sign_all("b"),
            &pki,
            1,
            concurrency,
        )
        .await;
        run("two nodes, shared log", sign_all("c"), &pki, 2, concurrency).await;
    });
}
