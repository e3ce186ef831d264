//! Two relay nodes (`truc serve` children with their own data directories) on the real RabbitMQ
//! (127.0.0.1:5672, `TRUC_TEST_AMQP_URL` overrides) form one bus: senders spread their
//! submissions over both nodes, recipients fetch at one node, read the body and ack at either
//! node at random, and read tracking at the node they did not ack at, which must already say
//! delivered. Nodes are SIGKILLed at random moments under load and restarted. In the end every
//! package that got a 202 is acknowledged by its recipient exactly once, no refused package is
//! ever offered, no acknowledged one is offered again; counts are printed. Every RabbitMQ object
//! lives under a unique prefix and is deleted at the end, pass or fail.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use truc_client::{Client, Identity};

mod relay_load;

use relay_load::{Lcg, code, document};

const NODES: usize = 2;
const SENDERS: usize = 4;
const RECIPIENTS: usize = 4;
const GOOD: usize = 1_500;
const BAD: usize = 60;
const KILLS: u64 = 3;

fn url() -> String {
    std::env::var("TRUC_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

struct Node {
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Node {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_truc"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.starts += 1;
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }

    fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "node exited by itself ({status}); log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )),
            _ => None,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Deletes every RabbitMQ object of the test's prefix when dropped (pass or fail).
struct Cleanup {
    prefix: String,
    mailboxes: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (prefix, mailboxes) = (self.prefix.clone(), self.mailboxes.clone());
        let r = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let store = store::Store::open(dir.path()).unwrap();
                let config = broker::AmqpConfig {
                    prefix: prefix.clone(),
                    ..broker::AmqpConfig::new(url())
                };
                let b = broker::AmqpBroker::open(store, config).await?;
                b.delete(&mailboxes).await?;
                b.close().await;
                let log =
                    broker::SharedLog::open(broker::SharedLogConfig::new(url(), prefix)).await?;
                log.delete().await?;
                log.close().await;
                Ok::<(), broker::BrokerError>(())
            })
        })
        .join();
        println!("RabbitMQ objects of prefix {} deleted: {r:?}", self.prefix);
    }
}

fn write_setup(dir: &Path, ports: &[u16], prefix: &str) -> (Vec<PathBuf>, dsig::pki::DevPki) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let codes: Vec<String> = (1..=SENDERS + RECIPIENTS).map(code).collect();
    let specs: Vec<(&str, Option<&str>)> = codes.iter().map(|c| (c.as_str(), None)).collect();
    let pki = dsig::pki::init(&specs, now).unwrap();
    let certs = dir.join("certs");
    for (rel, content) in pki.files() {
        let p = certs.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let tls = dsig::pki::issue_tls_server(&pki.ca, &["localhost", "127.0.0.1"], now).unwrap();
    std::fs::write(certs.join("server.pem"), &tls.cert_pem).unwrap();
    std::fs::write(certs.join("server.key.pem"), &tls.key_pem).unwrap();
    let p = |rel: &str| certs.join(rel).display().to_string();
    let mut configs = Vec::new();
    for (n, port) in ports.iter().enumerate() {
        // Each node its own data directory, with the same unit directory imported.
        let data = dir.join(format!("data{n}"));
        {
            let store = store::Store::open(&data).unwrap();
            let directory = directory::Directory::open(&store).unwrap();
            let mut csv = String::from("code,name\n");
            for c in &codes {
                csv.push_str(&format!("{c},Đơn vị {c}\n"));
            }
            directory.import(csv.as_bytes(), &mut |_, _| {}).unwrap();
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(directory.flush())
                .unwrap();
        }
        let config = dir.join(format!("truc{n}.toml"));
        std::fs::write(
            &config,
            format!(
                "version = 1\ndata_dir = {:?}\n[relay]\nlease_seconds = 10\n[http]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = {:?}\ntls_key = {:?}\nclient_ca = {:?}\ncrl = {:?}\n[seal]\ncert = {:?}\nkey = {:?}\n[broker]\nkind = \"amqp\"\nurl = {:?}\n[broker.amqp]\nprefix = {prefix:?}\nshared_log = true\n[log]\nlevel = \"warn\"\n",
                data.display().to_string(),
                p("server.pem"),
                p("server.key.pem"),
                p("ca.pem"),
                p("ca.crl.pem"),
                p("relay.pem"),
                p("relay.key.pem"),
                url(),
            ),
        )
        .unwrap();
        configs.push(config);
    }
    (configs, pki)
}

#[derive(Debug, Default, Clone)]
struct Seen {
    offers: u32,
    acked: u32,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn two_nodes_on_one_rabbitmq_are_one_bus_and_a_sigkilled_node_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("test.cluster.{}.{nanos}.", std::process::id());
    let _cleanup = Cleanup {
        prefix: prefix.clone(),
        mailboxes: (1..=SENDERS + RECIPIENTS).map(code).collect(),
    };
    let (configs, pki) = write_setup(dir.path(), &ports, &prefix);
    let seed = nanos as u64;
    println!("seed {seed}, prefix {prefix}");
    let mut rng = Lcg(seed);

    let keys: Vec<dsig::SigningKey> = pki
        .units
        .iter()
        .map(|(_, i)| dsig::SigningKey::from_pem(&i.key_pem, &i.cert_pem).unwrap())
        .collect();
    let mut work: Vec<(usize, String, Vec<u8>, bool)> = Vec::new();
    for i in 0..GOOD + BAD {
        let bad = i % ((GOOD + BAD) / BAD) == 0 && work.iter().filter(|w| !w.3).count() < BAD;
        let s = i % SENDERS;
        let to = if bad {
            "000.00.00.Z99".to_owned()
        } else {
            code(SENDERS + 1 + (i / SENDERS) % RECIPIENTS)
        };
        let doc_id = format!("d-{i}");
        let signed = dsig::sign(
            &document(&code(s + 1), &to, &doc_id),
            &keys[s],
            dsig::Role::Sender,
        )
        .unwrap();
        work.push((s, doc_id, signed, !bad));
    }
    let good_total = work.iter().filter(|w| w.3).count();

    let nodes: Vec<Arc<Mutex<Node>>> = configs
        .into_iter()
        .enumerate()
        .map(|(n, config)| {
            Arc::new(Mutex::new(Node {
                config,
                log: dir.path().join(format!("node{n}.log")),
                child: None,
                starts: 0,
            }))
        })
        .collect();
    for n in &nodes {
        n.lock().unwrap().start();
    }
    // clients[node][unit]
    let clients: Vec<Vec<Client>> = ports
        .iter()
        .map(|port| {
            let url = format!("https://127.0.0.1:{port}");
            pki.units
                .iter()
                .map(|(_, i)| {
                    let id = Identity {
                        cert_pem: i.cert_pem.clone(),
                        key_pem: i.key_pem.clone(),
                    };
                    Client::new(&url, &id, &pki.ca.cert_pem).unwrap()
                })
                .collect()
        })
        .collect();
    let anonymous: Vec<Client> = ports
        .iter()
        .map(|port| {
            Client::anonymous(&format!("https://127.0.0.1:{port}"), &pki.ca.cert_pem).unwrap()
        })
        .collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let accepted: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let accepted_at: Arc<Mutex<[u64; NODES]>> = Arc::default();
    let refused: Arc<Mutex<HashSet<String>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<(usize, String), Seen>>> = Arc::default();
    let violations: Arc<Mutex<Vec<String>>> = Arc::default();
    let cross = Arc::new(AtomicU64::new(0)); // fetched at one node, acked at the other
    let tracked = Arc::new(AtomicU64::new(0)); // tracking read at the other node said delivered
    let kills = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let senders_done = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let phases: Arc<Mutex<(Duration, Duration)>> = Arc::default(); // (sending, until all acked)

    rt.block_on(async {
        for (n, a) in anonymous.iter().enumerate() {
            wait_healthy(a, &nodes[n]).await;
        }
        let work = Arc::new(work);
        let clients = Arc::new(clients);
        let next = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();

        // Senders: each attempt at a node picked at random; transport errors and 5xx are retried
        // with the same bytes (maybe at the other node), as an adapter behind a load balancer.
        let mut tasks = Vec::new();
        for t in 0..16u64 {
            let (work, clients, next) = (work.clone(), clients.clone(), next.clone());
            let (accepted, accepted_at, refused, retries, violations) = (
                accepted.clone(),
                accepted_at.clone(),
                refused.clone(),
                retries.clone(),
                violations.clone(),
            );
            let mut rng = Lcg(seed ^ (t + 1));
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((s, doc_id, body, good)) = work.get(i) else {
                        break;
                    };
                    loop {
                        let node = rng.next(NODES as u64) as usize;
                        match clients[node][*s].submit(body.clone()).await {
                            Ok(a) => {
                                accepted_at.lock().unwrap()[node] += 1;
                                if !good {
                                    violations
                                        .lock()
                                        .unwrap()
                                        .push(format!("{doc_id}: a bad package got a 202"));
                                }
                                let mut acc = accepted.lock().unwrap();
                                if let Some(first) = acc.insert(doc_id.clone(), a.id.clone())
                                    && first != a.id
                                {
                                    violations
                                        .lock()
                                        .unwrap()
                                        .push(format!("{doc_id}: two relay ids {first} {}", a.id));
                                }
                                break;
                            }
                            Err(e) if e.retryable() => {
                                retries.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            Err(e) => {
                                if *good {
                                    violations
                                        .lock()
                                        .unwrap()
                                        .push(format!("{doc_id}: a good package was refused: {e}"));
                                }
                                refused.lock().unwrap().insert(doc_id.clone());
                                break;
                            }
                        }
                    }
                }
            }));
        }

        // Recipients: long-poll at a node picked at random, read the body at either node, ack at
        // either node, then read tracking at the node the ack did not go to.
        let mut consumers = Vec::new();
        for r in SENDERS..SENDERS + RECIPIENTS {
            let (clients, seen, violations, refused, stop) = (
                clients.clone(),
                seen.clone(),
                violations.clone(),
                refused.clone(),
                stop.clone(),
            );
            let (cross, tracked) = (cross.clone(), tracked.clone());
            let mut rng = Lcg(seed ^ (100 + r as u64));
            consumers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let at = rng.next(NODES as u64) as usize;
                    let Ok(items) = clients[at][r].inbox(Duration::from_secs(1), 50).await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    for item in items {
                        {
                            let mut seen = seen.lock().unwrap();
                            let s = seen.entry((r, item.document_id.clone())).or_default();
                            s.offers += 1;
                            if s.acked > 0 {
                                violations.lock().unwrap().push(format!(
                                    "{}: offered to unit {r} after its ack",
                                    item.document_id
                                ));
                            }
                        }
                        if refused.lock().unwrap().contains(&item.document_id) {
                            violations.lock().unwrap().push(format!(
                                "{}: a refused package was offered",
                                item.document_id
                            ));
                        }
                        let body_at = rng.next(NODES as u64) as usize;
                        let body = match clients[body_at][r].fetch(&item.id).await {
                            Ok(b) => Some(b),
                            // That node is down: leave it unacked; it is offered again after the lease.
                            Err(e) if e.retryable() => None,
                            Err(e) => {
                                violations.lock().unwrap().push(format!(
                                    "{}: body refused at node {body_at}: {e}",
                                    item.document_id
                                ));
                                None
                            }
                        };
                        let Some(body) = body else { continue };
                        if !String::from_utf8_lossy(&body).contains(&item.document_id) {
                            violations
                                .lock()
                                .unwrap()
                                .push(format!("{}: body is not the package", item.document_id));
                        }
                        // Ack at either node, retried (at either node) until answered.
                        let mut acked_at = None;
                        for _ in 0..600 {
                            let n = rng.next(NODES as u64) as usize;
                            match clients[n][r].ack(&item.id).await {
                                Ok(()) => {
                                    acked_at = Some(n);
                                    break;
                                }
                                Err(e) if e.retryable() => {
                                    tokio::time::sleep(Duration::from_millis(100)).await
                                }
                                Err(e) => {
                                    violations.lock().unwrap().push(format!(
                                        "{}: ack refused at node {n}: {e}",
                                        item.document_id
                                    ));
                                    break;
                                }
                            }
                        }
                        let Some(n) = acked_at else { continue };
                        if n != at {
                            cross.fetch_add(1, Ordering::Relaxed);
                        }
                        seen.lock()
                            .unwrap()
                            .get_mut(&(r, item.document_id.clone()))
                            .unwrap()
                            .acked += 1;
                        // Tracking at the other node already says delivered (when it is up).
                        let other = (n + 1) % NODES;
                        match clients[other][r].tracking(&item.id).await {
                            Ok(t) => {
                                if t.recipients.iter().any(|row| row.delivered) {
                                    tracked.fetch_add(1, Ordering::Relaxed);
                                } else {
                                    violations.lock().unwrap().push(format!(
                                        "{}: acked at node {n}, node {other} tracks it as {:?}",
                                        item.document_id,
                                        t.recipients.iter().map(|r| &r.state).collect::<Vec<_>>()
                                    ));
                                }
                            }
                            Err(e) if e.retryable() => {}
                            Err(e) => violations.lock().unwrap().push(format!(
                                "{}: tracking at node {other} failed: {e}",
                                item.document_id
                            )),
                        }
                    }
                }
            }));
        }

        // The killer: SIGKILL a node at random moments under load; it comes back 1–3 s later.
        let killer = {
            let (nodes, kills, senders_done) = (nodes.clone(), kills.clone(), senders_done.clone());
            let anonymous = anonymous.clone();
            tokio::spawn(async move {
                while kills.load(Ordering::Relaxed) < KILLS {
                    tokio::time::sleep(Duration::from_millis(1500 + rng.next(2500))).await;
                    let n = rng.next(NODES as u64) as usize;
                    nodes[n].lock().unwrap().kill9();
                    kills.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(1000 + rng.next(2000))).await;
                    nodes[n].lock().unwrap().start();
                    wait_healthy(&anonymous[n], &nodes[n]).await;
                    if senders_done.load(Ordering::Relaxed) && kills.load(Ordering::Relaxed) >= 1 {
                        break;
                    }
                }
            })
        };
        for t in tasks {
            t.await.unwrap();
        }
        senders_done.store(true, Ordering::Relaxed);
        phases.lock().unwrap().0 = t0.elapsed();
        killer.await.unwrap();

        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let done = {
                let acc = accepted.lock().unwrap();
                let seen = seen.lock().unwrap();
                acc.len() == good_total
                    && seen.values().filter(|s| s.acked > 0).count() == good_total
            };
            if done || Instant::now() > deadline {
                phases.lock().unwrap().1 = t0.elapsed();
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(11)).await; // past one lease
        stop.store(true, Ordering::Relaxed);
        for c in consumers {
            c.await.unwrap();
        }
    });

    for n in &nodes {
        if let Some(why) = n.lock().unwrap().exited() {
            panic!("{why}");
        }
    }
    let accepted = accepted.lock().unwrap();
    let refused = refused.lock().unwrap();
    let seen = seen.lock().unwrap();
    let violations = violations.lock().unwrap();
    let offers: u32 = seen.values().map(|s| s.offers).sum();
    let acked_once = seen.values().filter(|s| s.acked == 1).count();
    let acked_twice = seen.values().filter(|s| s.acked > 1).count();
    let starts: Vec<u32> = nodes.iter().map(|n| n.lock().unwrap().starts).collect();
    let (sending, all_acked) = *phases.lock().unwrap();
    println!(
        "sending {:.1} s ({:.0} packages/s over both nodes, kills and restarts included), every package acked after {:.1} s",
        sending.as_secs_f64(),
        (GOOD + BAD) as f64 / sending.as_secs_f64(),
        all_acked.as_secs_f64()
    );
    println!(
        "nodes {NODES}, kills {}, starts per node {starts:?}, accepted {} (202s per node {:?}), refused {}, submit retries {}, offers {offers}, re-offers {}, acked at the other node than fetched {}, tracking at the other node said delivered {}, acknowledged once {acked_once}, twice {acked_twice}",
        kills.load(Ordering::Relaxed),
        accepted.len(),
        accepted_at.lock().unwrap(),
        refused.len(),
        retries.load(Ordering::Relaxed),
        offers as usize - seen.len(),
        cross.load(Ordering::Relaxed),
        tracked.load(Ordering::Relaxed),
    );
    let missing: Vec<&String> = accepted
        .keys()
        .filter(|doc| !seen.iter().any(|((_, d), s)| d == *doc && s.acked == 1))
        .collect();
    if !missing.is_empty() || !violations.is_empty() {
        for n in 0..NODES {
            println!(
                "node {n} log tail:\n{}",
                std::fs::read_to_string(dir.path().join(format!("node{n}.log")))
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    assert!(
        violations.is_empty(),
        "{} violations, first: {:?}",
        violations.len(),
        &violations[..violations.len().min(10)]
    );
    assert!(kills.load(Ordering::Relaxed) >= 1, "a node was killed");
    assert_eq!(accepted.len(), good_total, "every good package got a 202");
    assert_eq!(refused.len(), BAD, "every bad package was refused");
    let per_node = *accepted_at.lock().unwrap();
    assert!(
        per_node.iter().all(|n| *n > 0),
        "both nodes accepted submissions: {per_node:?}"
    );
    assert!(
        cross.load(Ordering::Relaxed) > 0,
        "some packages were fetched at one node and acked at the other"
    );
    assert!(
        missing.is_empty(),
        "{} accepted packages never acknowledged, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(acked_twice, 0, "no package is acknowledged twice");
    assert_eq!(
        seen.len(),
        good_total,
        "only accepted packages were ever offered"
    );
}

async fn wait_healthy(client: &Client, node: &Arc<Mutex<Node>>) {
    let t0 = Instant::now();
    loop {
        if client.health().await.is_ok() {
            return;
        }
        if let Some(why) = node.lock().unwrap().exited() {
            panic!("a node did not start cleanly: {why}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "a node did not answer within 90 s of starting"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
