#![allow(dead_code)] // each test binary uses a part of the shared load
//! The load every relay fault test shares (`durability.rs` on the embedded broker, `amqp_faults.rs`
//! on RabbitMQ): `truc serve` as a child process over mutual TLS, units submitting several
//! thousand signed packages (plus some to an unknown unit, refused with 422) and recipients
//! long-polling, fetching and acknowledging them, while a test-chosen fault runs beside the load.
//! [`run`] then checks what a DMS would notice and prints the counts:
//! - every package that got a 202 is acknowledged by its recipient exactly once in the end (a
//!   fetched but unacknowledged one is offered again; an acknowledged one never is);
//! - nothing else is ever offered (no refused package, nothing after its ack), and what was
//!   offered stays known to tracking;
//! - the relay never exits on its own and starts cleanly after every kill.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use edxml::{Attachment, Document, Organization, Package};
use truc_client::{Client, Identity};

pub const SENDERS: usize = 4;
/// How long a sender retries one package (503s, connection errors) before the run fails. The
/// first package to run out stops every sender (each would otherwise wait as long again for each
/// of its packages: hours against a relay that never comes back).
const GIVE_UP: Duration = Duration::from_secs(180);
pub const RECIPIENTS: usize = 4;

/// The code of bench unit `i` (senders are 1..=SENDERS, recipients the next RECIPIENTS).
pub fn code(i: usize) -> String {
    format!("000.00.{:02}.G{:02}", i / 100, i % 100)
}

/// Every unit code of the load's directory.
pub fn codes() -> Vec<String> {
    (1..=SENDERS + RECIPIENTS).map(code).collect()
}

pub fn document(from: &str, to: &str, document_id: &str) -> Vec<u8> {
    let org = |c: &str| Organization {
        organ_id: c.to_owned(),
        ..Organization::default()
    };
    let doc = Document {
        from: org(from),
        to: vec![org(to)],
        document_id: Some(document_id.to_owned()),
        subject: Some(format!("Văn bản {document_id}")),
        attachments: vec![Attachment {
            content_id: "1".into(),
            name: Some("a.txt".into()),
            description: None,
            content_type: Some("text/plain".into()),
            data: vec![b'x'; 1500],
        }],
        ..Document::default()
    };
    edxml::to_bytes(&Package::Document(doc))
}

/// A tiny deterministic generator (the seed is printed so a failing run can be replayed).
#[derive(Clone)]
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

pub struct RelayProcess {
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl RelayProcess {
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

    /// Exited on its own (it must not): the log says why.
    fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "relay exited by itself ({status}); log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )),
            _ => None,
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Dev PKI, server certificate, the directory and `truc.toml` (with `extra_toml` appended).
fn write_setup(dir: &Path, port: u16, extra_toml: &str) -> (PathBuf, dsig::pki::DevPki) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let codes = codes();
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
    // The directory, written before the relay first starts.
    let data = dir.join("data");
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
    let p = |rel: &str| certs.join(rel).display().to_string();
    let config = dir.join("truc.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\ndata_dir = {:?}\n[relay]\nlease_seconds = 10\n[http]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = {:?}\ntls_key = {:?}\nclient_ca = {:?}\ncrl = {:?}\n[seal]\ncert = {:?}\nkey = {:?}\n[log]\nlevel = \"warn\"\n{extra_toml}",
            data.display().to_string(),
            p("server.pem"),
            p("server.key.pem"),
            p("ca.pem"),
            p("ca.crl.pem"),
            p("relay.pem"),
            p("relay.key.pem"),
        ),
    )
    .unwrap();
    (config, pki)
}

/// What one recipient saw of one package.
#[derive(Debug, Default, Clone)]
struct Seen {
    offers: u32,
    acked: u32,
}

/// The load's shape.
pub struct Load {
    /// Printed before the counts.
    pub name: &'static str,
    /// Packages to a known recipient (each must end acknowledged once).
    pub good: usize,
    /// Packages to an unknown unit (each must be refused, never offered).
    pub bad: usize,
    /// TOML appended to the relay's `truc.toml` (e.g. a `[broker]` section).
    pub extra_toml: String,
}

/// What a fault sees of the running load.
#[derive(Clone)]
pub struct Faulting {
    relay: Arc<Mutex<RelayProcess>>,
    anonymous: Client,
    accepted: Arc<Mutex<HashMap<String, String>>>,
    senders_done: Arc<AtomicBool>,
    kills: Arc<AtomicU64>,
}

impl Faulting {
    /// Packages that got their 202 so far.
    pub fn accepted(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    /// Waits until at least `n` packages got their 202.
    pub async fn until_accepted(&self, n: usize) {
        while self.accepted() < n && !self.senders_done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every sender has its definite answer for every package.
    pub fn senders_done(&self) -> bool {
        self.senders_done.load(Ordering::Relaxed)
    }

    /// SIGKILLs the relay, starts it again on the same data and waits until it answers.
    pub async fn kill9_and_restart(&self) {
        self.relay.lock().unwrap().kill9();
        self.kills.fetch_add(1, Ordering::Relaxed);
        self.relay.lock().unwrap().start();
        wait_healthy(&self.anonymous, &self.relay).await;
    }

    /// SIGKILLs so far.
    pub fn kills(&self) -> u64 {
        self.kills.load(Ordering::Relaxed)
    }
}

/// What [`run`] counted (already checked; printed by `run`).
#[derive(Debug)]
pub struct Counts {
    pub kills: u64,
    pub relay_starts: u32,
    pub accepted: usize,
    pub refused: usize,
    pub submit_retries: u64,
    pub offers: u64,
    pub re_offers: u64,
    pub acknowledged_once: usize,
    /// The relay's log (stdout and stderr of every start), to check that a fault reached it.
    pub relay_log: String,
}

/// Runs the load with `fault` beside it (a task started with the load; the load waits for it
/// after the last submission), checks the outcome (module doc) and prints the counts.
pub fn run<F, Fut>(load: Load, fault: F) -> Counts
where
    F: FnOnce(Faulting) -> Fut,
    Fut: Future<Output = String> + Send + 'static,
{
    let Load {
        name,
        good,
        bad,
        extra_toml,
    } = load;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (config, pki) = write_setup(dir.path(), port, &extra_toml);

    // Packages: `good` to a known recipient, `bad` to an unknown one (refused with 422), mixed.
    let keys: Vec<dsig::SigningKey> = pki
        .units
        .iter()
        .map(|(_, i)| dsig::SigningKey::from_pem(&i.key_pem, &i.cert_pem).unwrap())
        .collect();
    let mut work: Vec<(usize, String, Vec<u8>, bool)> = Vec::new();
    let every = (good + bad) / bad.max(1);
    for i in 0..good + bad {
        let is_bad = bad > 0 && i % every == 0 && work.iter().filter(|w| !w.3).count() < bad;
        let s = i % SENDERS;
        let to = if is_bad {
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
        work.push((s, doc_id, signed, !is_bad));
    }
    let good_total = work.iter().filter(|w| w.3).count();
    let bad_total = work.len() - good_total;

    let relay = Arc::new(Mutex::new(RelayProcess {
        config,
        log: dir.path().join("relay.log"),
        child: None,
        starts: 0,
    }));
    relay.lock().unwrap().start();
    let url = format!("https://127.0.0.1:{port}");
    let clients: Vec<Client> = pki
        .units
        .iter()
        .map(|(_, i)| {
            let id = Identity {
                cert_pem: i.cert_pem.clone(),
                key_pem: i.key_pem.clone(),
            };
            Client::new(&url, &id, &pki.ca.cert_pem).unwrap()
        })
        .collect();
    let anonymous = Client::anonymous(&url, &pki.ca.cert_pem).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let accepted: Arc<Mutex<HashMap<String, String>>> = Arc::default(); // doc id -> relay id
    let refused: Arc<Mutex<HashSet<String>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<(usize, String), Seen>>> = Arc::default();
    let violations: Arc<Mutex<Vec<String>>> = Arc::default();
    let kills = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let senders_done = Arc::new(AtomicBool::new(false));
    let gave_up = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let faulting = Faulting {
        relay: relay.clone(),
        anonymous: anonymous.clone(),
        accepted: accepted.clone(),
        senders_done: senders_done.clone(),
        kills: kills.clone(),
    };

    let clients = Arc::new(clients);
    // Who sent each document, for asking the relay about it afterwards.
    let sender_of: HashMap<String, usize> = work.iter().map(|w| (w.1.clone(), w.0)).collect();
    let fault_did = rt.block_on(async {
        wait_healthy(&anonymous, &relay).await;
        let work = Arc::new(work);
        let clients = clients.clone();
        let next = Arc::new(AtomicUsize::new(0));

        // Senders: each package until a definite answer; transport errors and 5xx are retried
        // with the same bytes, as an adapter would.
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (work, clients, next, gave_up) =
                (work.clone(), clients.clone(), next.clone(), gave_up.clone());
            let (accepted, refused, retries, violations) = (
                accepted.clone(),
                refused.clone(),
                retries.clone(),
                violations.clone(),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((s, doc_id, body, good)) = work.get(i) else {
                        break;
                    };
                    if gave_up.load(Ordering::Relaxed) {
                        break; // the violation that stopped the run is already written down
                    }
                    let since = Instant::now();
                    loop {
                        if since.elapsed() > GIVE_UP {
                            violations.lock().unwrap().push(format!(
                                "{doc_id}: no definite answer within {GIVE_UP:?} of retries; the senders stopped here"
                            ));
                            gave_up.store(true, Ordering::Relaxed);
                            break;
                        }
                        if gave_up.load(Ordering::Relaxed) {
                            break;
                        }
                        match clients[*s].submit(body.clone()).await {
                            Ok(a) => {
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

        // Recipients: long-poll, fetch, ack; every offer is counted.
        let mut consumers = Vec::new();
        for r in SENDERS..SENDERS + RECIPIENTS {
            let (clients, seen, violations, refused, stop) = (
                clients.clone(),
                seen.clone(),
                violations.clone(),
                refused.clone(),
                stop.clone(),
            );
            consumers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(items) = clients[r].inbox(Duration::from_secs(1), 50).await else {
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
                        let Ok(body) = clients[r].fetch(&item.id).await else {
                            continue;
                        };
                        if !String::from_utf8_lossy(&body).contains(&item.document_id) {
                            violations
                                .lock()
                                .unwrap()
                                .push(format!("{}: body is not the package", item.document_id));
                        }
                        // What a recipient was given, the relay must still know (a recipient
                        // answers with a status about it): tracking finds it, whatever crashed.
                        for _ in 0..600 {
                            match clients[r].tracking(&item.id).await {
                                Ok(_) => break,
                                Err(e) if e.retryable() => {
                                    tokio::time::sleep(Duration::from_millis(100)).await
                                }
                                Err(e) => {
                                    violations.lock().unwrap().push(format!(
                                        "{}: offered, then unknown to the relay: {e}",
                                        item.document_id
                                    ));
                                    break;
                                }
                            }
                        }
                        // Like an adapter: an ack whose answer was lost is sent again (acks are
                        // idempotent) until the relay answers it.
                        let mut acked = false;
                        for _ in 0..600 {
                            match clients[r].ack(&item.id).await {
                                Ok(()) => {
                                    acked = true;
                                    break;
                                }
                                Err(e) if e.retryable() => {
                                    tokio::time::sleep(Duration::from_millis(100)).await
                                }
                                Err(e) => {
                                    violations
                                        .lock()
                                        .unwrap()
                                        .push(format!("{}: ack refused: {e}", item.document_id));
                                    break;
                                }
                            }
                        }
                        if acked {
                            seen.lock()
                                .unwrap()
                                .get_mut(&(r, item.document_id.clone()))
                                .unwrap()
                                .acked += 1;
                        }
                    }
                }
            }));
        }

        let fault = tokio::spawn(fault(faulting));
        for t in tasks {
            t.await.unwrap();
        }
        senders_done.store(true, Ordering::Relaxed);
        let fault_did = fault.await.unwrap();

        // Let the recipients drain, then check that nothing more is offered.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let done = {
                let acc = accepted.lock().unwrap();
                let seen = seen.lock().unwrap();
                acc.len() == good_total
                    && seen.values().filter(|s| s.acked > 0).count() == good_total
            };
            if done || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(11)).await; // past one lease: anything unacked would reappear
        stop.store(true, Ordering::Relaxed);
        for c in consumers {
            c.await.unwrap();
        }
        fault_did
    });

    if let Some(why) = relay.lock().unwrap().exited() {
        panic!("{why}");
    }
    let accepted = accepted.lock().unwrap();
    let refused = refused.lock().unwrap();
    let seen = seen.lock().unwrap();
    let violations = violations.lock().unwrap();
    let offers: u64 = seen.values().map(|s| u64::from(s.offers)).sum();
    let counts = Counts {
        kills: kills.load(Ordering::Relaxed),
        relay_starts: relay.lock().unwrap().starts,
        accepted: accepted.len(),
        refused: refused.len(),
        submit_retries: retries.load(Ordering::Relaxed),
        offers,
        re_offers: offers - seen.len() as u64,
        acknowledged_once: seen.values().filter(|s| s.acked == 1).count(),
        relay_log: std::fs::read_to_string(dir.path().join("relay.log")).unwrap_or_default(),
    };
    let acked_twice = seen.values().filter(|s| s.acked > 1).count();
    println!(
        "{name} ({fault_did}): kills {}, relay starts {}, accepted (202) {} of {good_total}, refused {} of {bad_total}, submit retries {}, offers {}, re-offers {}, acknowledged once {}, twice or more {acked_twice}, never offered after ack: {}",
        counts.kills,
        counts.relay_starts,
        counts.accepted,
        counts.refused,
        counts.submit_retries,
        counts.offers,
        counts.re_offers,
        counts.acknowledged_once,
        violations.is_empty(),
    );
    assert!(
        violations.is_empty(),
        "{} violations, first: {:?}",
        violations.len(),
        &violations[..violations.len().min(10)]
    );
    assert_eq!(
        accepted.len(),
        good_total,
        "every good package got a 202 in the end"
    );
    assert_eq!(refused.len(), bad_total, "every bad package was refused");
    let missing: Vec<&String> = accepted
        .keys()
        .filter(|doc| !seen.iter().any(|((_, d), s)| d == *doc && s.acked == 1))
        .collect();
    for doc in missing.iter().take(5) {
        let offers: Vec<(usize, Seen)> = seen
            .iter()
            .filter(|((_, d), _)| d == *doc)
            .map(|((r, _), s)| (*r, s.clone()))
            .collect();
        println!(
            "never acknowledged: {doc} (relay id {}), offers {offers:?}",
            accepted[*doc]
        );
    }
    if !missing.is_empty() {
        let log = std::fs::read_to_string(dir.path().join("relay.log")).unwrap_or_default();
        // What the relay and the broker say of each: its tracking (queued, delivered, events),
        // any log line naming it, and where RabbitMQ holds messages of this load's queues.
        for doc in missing.iter().take(5) {
            let id = &accepted[*doc];
            let tracking = sender_of
                .get(*doc)
                .map(|&s| rt.block_on(clients[s].tracking(id)));
            println!("relay's tracking of {doc}: {tracking:?}");
            for line in log.lines().filter(|l| l.contains(id.as_str())) {
                println!("  log: {line}");
            }
        }
        if extra_toml.contains("amqp") {
            let queues = std::process::Command::new("rabbitmqctl")
                .args([
                    "list_queues",
                    "name",
                    "messages_ready",
                    "messages_unacknowledged",
                    "--no-table-headers",
                    "-q",
                ])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let prefix = extra_toml
                .split("prefix = \"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("");
            println!("RabbitMQ queues of this load (name, ready, unacknowledged):");
            for line in queues.lines().filter(|l| l.starts_with(prefix)) {
                println!("  {line}");
            }
        }
        println!(
            "relay log, first 30 lines:\n{}\nrelay log tail:\n{}",
            log.lines().take(30).collect::<Vec<_>>().join("\n"),
            log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
        );
    }
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
    counts
}

async fn wait_healthy(client: &Client, relay: &Arc<Mutex<RelayProcess>>) {
    let t0 = Instant::now();
    loop {
        if client.health().await.is_ok() {
            return;
        }
        if let Some(why) = relay.lock().unwrap().exited() {
            panic!("the relay did not start cleanly: {why}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the relay did not answer within 60 s of starting"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
