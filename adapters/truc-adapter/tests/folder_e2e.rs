//! Folder mode end to end: a relay (`truc serve`) and two adapters (`truc-adapter`), each its own
//! process, on loopback with a dev PKI. A fake DMS drops documents into A's `outbox/` (written
//! then renamed, as a DMS should) and takes every file that appears in B's `inbox/` and A's
//! `receipts/` away at once, counting them by DocumentId, so a package written twice would be
//! seen twice. The relay is stopped for a while, adapters are SIGKILLed mid-transfer; in every
//! case each document reaches B exactly once and each 01 comes back to A exactly once.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use edxml::{Attachment, Document, Organization, Package};

const A: &str = "000.00.00.G01";
const B: &str = "000.00.00.H41";

/// One at a time: each test runs three processes on a 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// The `truc` binary, built beside `truc-adapter` (a no-op when the workspace is already built).
fn truc_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let adapter = PathBuf::from(env!("CARGO_BIN_EXE_truc-adapter"));
        let bin = adapter.with_file_name("truc");
        let target = adapter
            .parent()
            .and_then(Path::parent)
            .expect("target dir")
            .to_path_buf();
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "cli", "--bin", "truc"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build -p cli");
        assert!(status.success(), "building truc failed");
        assert!(bin.exists(), "{} missing", bin.display());
        bin
    })
}

struct Proc {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.program)
            .args(&self.args)
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait: a clean stop must exit 0.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        c.wait().unwrap()
    }

    fn assert_running(&mut self) {
        if let Some(c) = self.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            panic!(
                "{} exited by itself ({status}); log:\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct Unit {
    dir: PathBuf,
    proc: Proc,
}

impl Unit {
    fn folder(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

struct Bus {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    relay: Proc,
    a: Unit,
    b: Unit,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Dev PKI, directory with A and B, relay config, and one adapter config per unit.
fn setup(settle_ms: u64) -> Bus {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let port = free_port();
    let pki = dsig::pki::init(&[(A, None), (B, None)], now()).unwrap();
    let certs = root.join("certs");
    for (rel, content) in pki.files() {
        let p = certs.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let tls = dsig::pki::issue_tls_server(&pki.ca, &["localhost", "127.0.0.1"], now()).unwrap();
    std::fs::write(certs.join("server.pem"), &tls.cert_pem).unwrap();
    std::fs::write(certs.join("server.key.pem"), &tls.key_pem).unwrap();
    let data = root.join("relay-data");
    {
        let store = store::Store::open(&data).unwrap();
        let directory = directory::Directory::open(&store).unwrap();
        let csv = format!("code,name\n{A},Bộ Thử nghiệm\n{B},Tỉnh Thử nghiệm\n");
        directory.import(csv.as_bytes(), &mut |_, _| {}).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(directory.flush())
            .unwrap();
    }
    let p = |rel: &str| certs.join(rel).display().to_string();
    let relay_config = root.join("truc.toml");
    std::fs::write(
        &relay_config,
        format!(
            "version = 1\ndata_dir = {:?}\n[relay]\nlease_seconds = 10\n[http]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = {:?}\ntls_key = {:?}\nclient_ca = {:?}\ncrl = {:?}\n[seal]\ncert = {:?}\nkey = {:?}\n[log]\nlevel = \"warn\"\n",
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
    let relay = Proc {
        name: "relay",
        program: truc_bin().to_path_buf(),
        args: vec![
            "serve".into(),
            "--config".into(),
            relay_config.display().to_string(),
        ],
        log: root.join("relay.log"),
        child: None,
    };
    let unit = |code: &str, index: usize, name: &'static str| {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let ident = &pki.units[index].1;
        std::fs::write(dir.join("unit.pem"), &ident.cert_pem).unwrap();
        std::fs::write(dir.join("unit.key.pem"), &ident.key_pem).unwrap();
        let config = dir.join("adapter.toml");
        std::fs::write(
            &config,
            format!(
                "version = 1\n[relay]\nurl = \"https://127.0.0.1:{port}\"\ntrust_root = {:?}\n[unit]\ncode = \"{code}\"\ncert = \"unit.pem\"\nkey = \"unit.key.pem\"\n[folder]\nsettle_ms = {settle_ms}\n[send]\nparallel = 8\nmax_backoff_seconds = 2\n[receive]\nwait_seconds = 2\n",
                p("ca.pem")
            ),
        )
        .unwrap();
        Unit {
            proc: Proc {
                name,
                program: PathBuf::from(env!("CARGO_BIN_EXE_truc-adapter")),
                args: vec!["--config".into(), config.display().to_string()],
                log: dir.join("adapter.log"),
                child: None,
            },
            dir,
        }
    };
    let a = unit(A, 0, "a");
    let b = unit(B, 1, "b");
    Bus {
        _tmp: tmp,
        root,
        relay,
        a,
        b,
    }
}

fn document(to: &str, document_id: &str) -> Vec<u8> {
    let org = |c: &str| Organization {
        organ_id: c.to_owned(),
        ..Organization::default()
    };
    let doc = Document {
        from: org(A),
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

/// As a DMS should: write a hidden temp file, then rename it into `outbox/`.
fn drop_in(outbox: &Path, name: &str, bytes: &[u8]) {
    let temp = outbox.join(format!(".{name}.tmp"));
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, outbox.join(name)).unwrap();
}

fn doc_id_of(i: usize) -> String {
    format!("{A},2026/11/23,{i}/TEST")
}

/// The fake DMS's view: each file taken out of a folder, counted by DocumentId.
#[derive(Default)]
struct Taken {
    counts: HashMap<String, u32>,
    files: u64,
}

impl Taken {
    /// Moves every `*.edxml` of `dir` away and counts it; returns how many were new.
    fn collect(&mut self, dir: &Path, status: bool) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".edxml") || name.starts_with('.') {
                continue;
            }
            let bytes = std::fs::read(e.path()).unwrap();
            let parsed = edxml::read(&bytes, &edxml::Limits::default())
                .unwrap_or_else(|r| panic!("{name} is not whole: {:?}", r.findings));
            let doc_id = match parsed.package {
                Package::Document(d) if !status => d.document_id.unwrap_or_default(),
                Package::Status(s) if status => {
                    assert_eq!(s.status_code.code(), "01", "{name}");
                    s.response_for.document_id.unwrap_or_default()
                }
                other => panic!("{name}: unexpected package kind {other:?}"),
            };
            std::fs::remove_file(e.path()).unwrap();
            *self.counts.entry(doc_id).or_default() += 1;
            self.files += 1;
        }
    }

    fn twice(&self) -> Vec<&String> {
        self.counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| k)
            .collect()
    }
}

fn count_files(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .count()
        })
        .unwrap_or(0)
}

/// Runs the fake DMS until every one of `expected` document ids arrived at B and its 01 came back
/// to A (or the deadline passes), calling `during` on each round (to kill and restart things).
fn settle(
    bus: &mut Bus,
    expected: &[String],
    sent_total: usize,
    mut during: impl FnMut(&mut Bus, Duration),
) -> (Taken, Taken) {
    let mut inbox = Taken::default();
    let mut receipts = Taken::default();
    let started = Instant::now();
    let deadline = Duration::from_secs(240);
    loop {
        inbox.collect(&bus.b.folder("inbox"), false);
        receipts.collect(&bus.a.folder("receipts"), true);
        let twice_in = inbox.twice();
        assert!(
            twice_in.is_empty(),
            "written twice into B's inbox: {twice_in:?}"
        );
        let twice_r = receipts.twice();
        assert!(twice_r.is_empty(), "01 received twice by A: {twice_r:?}");
        let done = expected
            .iter()
            .all(|d| inbox.counts.contains_key(d) && receipts.counts.contains_key(d));
        if done && count_files(&bus.a.folder("sent"), ".result.json") >= sent_total {
            return (inbox, receipts);
        }
        let elapsed = started.elapsed();
        if elapsed > deadline {
            let missing_in = expected
                .iter()
                .filter(|d| !inbox.counts.contains_key(*d))
                .count();
            let missing_r = expected
                .iter()
                .filter(|d| !receipts.counts.contains_key(*d))
                .count();
            panic!(
                "after {elapsed:?}: {missing_in} documents missing in B's inbox, {missing_r} receipts missing at A; logs in {}:\nA: {}\nB: {}\nrelay: {}",
                bus.root.display(),
                tail(&bus.a.proc.log),
                tail(&bus.b.proc.log),
                tail(&bus.relay.log),
            );
        }
        during(bus, elapsed);
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let start = s.len().saturating_sub(3000);
    s.get(start..).unwrap_or(&s).to_owned()
}

fn drop_documents(bus: &Bus, range: std::ops::Range<usize>) -> Vec<String> {
    let outbox = bus.a.folder("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    range
        .map(|i| {
            let id = doc_id_of(i);
            drop_in(&outbox, &format!("doc-{i:05}.edxml"), &document(B, &id));
            id
        })
        .collect()
}

fn check_sent(bus: &Bus, n: usize) {
    let sent = bus.a.folder("sent");
    assert_eq!(count_files(&sent, ".edxml"), n, "files in A's sent/");
    assert_eq!(
        count_files(&sent, ".result.json"),
        n,
        "results in A's sent/"
    );
    assert_eq!(count_files(&bus.a.folder("outbox"), ".edxml"), 0);
    assert_eq!(
        count_files(&bus.a.folder("failed"), ".edxml"),
        0,
        "nothing in failed/"
    );
}

#[test]
fn documents_arrive_once_receipts_come_back_and_refusals_are_explained() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut bus = setup(300);
    bus.relay.start();
    bus.a.proc.start();
    bus.b.proc.start();
    let expected = drop_documents(&bus, 0..20);
    // A file the DMS writes slowly in place (no rename): never taken half-written.
    let slow = bus.a.folder("outbox").join("slow.edxml");
    let slow_id = doc_id_of(999);
    let slow_bytes = document(B, &slow_id);
    let (first, rest) = slow_bytes.split_at(slow_bytes.len() / 2);
    std::fs::write(&slow, first).unwrap();
    for chunk in rest.chunks(rest.len() / 5 + 1) {
        std::thread::sleep(Duration::from_millis(150));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&slow)
            .unwrap();
        std::io::Write::write_all(&mut f, chunk).unwrap();
    }
    // Refused by the relay (unknown recipient) and unreadable locally.
    drop_in(
        &bus.a.folder("outbox"),
        "unknown.edxml",
        &document("000.00.00.Z99", &doc_id_of(5000)),
    );
    drop_in(
        &bus.a.folder("outbox"),
        "broken.edxml",
        b"<edXML><khong-dong",
    );

    let mut all = expected.clone();
    all.push(slow_id.clone());
    let (inbox, receipts) = settle(&mut bus, &all, 21, |bus, _| {
        bus.relay.assert_running();
        bus.a.proc.assert_running();
        bus.b.proc.assert_running();
    });
    assert_eq!(inbox.files, 21);
    assert_eq!(receipts.files, 21);

    let failed = bus.a.folder("failed");
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_files(&failed, ".error.txt") < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let unknown = std::fs::read_to_string(failed.join("unknown.edxml.error.txt")).unwrap();
    assert!(unknown.contains("unknown_recipient"), "{unknown}");
    assert!(unknown.contains("KHÔNG được gửi"), "{unknown}");
    assert!(unknown.contains("000.00.00.Z99"), "{unknown}");
    let vi_at = unknown
        .find("không có trong danh bạ")
        .expect("the relay's Vietnamese message");
    let en_at = unknown
        .find("is not in the relay's directory")
        .expect("the relay's English message");
    assert!(vi_at < en_at, "Vietnamese first:\n{unknown}");
    let broken = std::fs::read_to_string(failed.join("broken.edxml.error.txt")).unwrap();
    assert!(broken.contains("package_unreadable"), "{broken}");
    assert_eq!(
        std::fs::read(failed.join("broken.edxml")).unwrap(),
        b"<edXML><khong-dong",
        "the clerk gets the file back as dropped"
    );
    let result: serde_json::Value = serde_json::from_slice(
        &std::fs::read(bus.a.folder("sent").join("doc-00000.edxml.result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(result["document_id"], doc_id_of(0));
    assert_eq!(result["recipients"][0]["unit"], B);
    assert!(!result["id"].as_str().unwrap().is_empty());
    assert_eq!(count_files(&bus.a.folder("sent"), ".edxml"), 21);

    // A clean stop exits 0 and leaves nothing in flight.
    assert!(bus.a.proc.stop().success());
    assert!(bus.b.proc.stop().success());
}

#[test]
fn a_relay_outage_delays_but_loses_and_duplicates_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut bus = setup(100);
    // The relay is down when the DMS drops its files.
    bus.a.proc.start();
    bus.b.proc.start();
    let first = drop_documents(&bus, 0..30);
    std::thread::sleep(Duration::from_secs(3));
    // The files left outbox/ while the relay was down: they are in the durable local outbox.
    assert_eq!(count_files(&bus.a.folder("outbox"), ".edxml"), 0);
    assert_eq!(count_files(&bus.b.folder("inbox"), ".edxml"), 0);
    bus.relay.start();
    let (inbox, receipts) = settle(&mut bus, &first, 30, |_, _| {});
    // Down again in the middle of a transfer, for a while.
    let second = drop_documents(&bus, 30..90);
    let mut outage = false;
    let (inbox2, receipts2) = settle(&mut bus, &second, 90, |bus, elapsed| {
        if !outage && elapsed > Duration::from_millis(300) {
            bus.relay.kill9();
            std::thread::sleep(Duration::from_secs(2));
            bus.relay.start();
            outage = true;
        }
    });
    assert!(outage);
    assert_eq!(inbox.files + inbox2.files, 90);
    assert_eq!(receipts.files + receipts2.files, 90);
    check_sent(&bus, 90);
}

#[test]
fn adapters_killed_with_sigkill_mid_transfer_lose_and_duplicate_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut bus = setup(100);
    bus.relay.start();
    bus.a.proc.start();
    bus.b.proc.start();
    let n = 300;
    let expected = drop_documents(&bus, 0..n);
    let mut kills = 0;
    let mut next_kill = Duration::from_millis(700);
    let (inbox, receipts) = settle(&mut bus, &expected, n, |bus, elapsed| {
        if kills < 8 && elapsed > next_kill {
            // Alternate: the sender's adapter, then the recipient's.
            let unit = if kills % 2 == 0 {
                &mut bus.a
            } else {
                &mut bus.b
            };
            unit.proc.kill9();
            std::thread::sleep(Duration::from_millis(200));
            unit.proc.start();
            kills += 1;
            next_kill = elapsed + Duration::from_millis(600);
        }
    });
    println!("adapter SIGKILLs: {kills}");
    assert!(
        kills >= 4,
        "the transfer ended before enough kills ({kills})"
    );
    assert_eq!(inbox.files, n as u64);
    assert_eq!(receipts.files, n as u64);
    check_sent(&bus, n);
}

/// Issue 5, point 7.
#[test]
fn a_thousand_packages_dropped_in_one_outbox_arrive_once_with_every_receipt() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut bus = setup(100);
    bus.relay.start();
    bus.a.proc.start();
    bus.b.proc.start();
    let n = 1_000;
    let started = Instant::now();
    let expected = drop_documents(&bus, 0..n);
    let (inbox, receipts) = settle(&mut bus, &expected, n, |bus, _| {
        bus.relay.assert_running();
        bus.a.proc.assert_running();
        bus.b.proc.assert_running();
    });
    let took = started.elapsed();
    println!(
        "{n} documents delivered and receipted end to end in {:.1} s ({:.0} documents/s)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    assert_eq!(inbox.files, n as u64);
    assert_eq!(receipts.files, n as u64);
    check_sent(&bus, n);
}
