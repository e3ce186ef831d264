//! The harness shared by the end-to-end tests: a relay (`truc serve`) and two adapters
//! (`truc-adapter`) as processes on loopback with a dev PKI, and a fake DMS.
#![allow(
    dead_code,
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

pub const A: &str = "000.00.00.G01";
pub const B: &str = "000.00.00.H41";

/// One at a time: each test runs three processes on a 2-core machine.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// The `truc` binary, built beside `truc-adapter` (a no-op when the workspace is already built).
pub fn truc_bin() -> &'static Path {
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

pub struct Proc {
    pub name: &'static str,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub log: PathBuf,
    pub child: Option<Child>,
}

impl Proc {
    pub fn start(&mut self) {
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

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait: a clean stop must exit 0.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        c.wait().unwrap()
    }

    pub fn assert_running(&mut self) {
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

pub struct Unit {
    pub dir: PathBuf,
    pub proc: Proc,
    /// Local HTTP mode's port, when on.
    pub http: Option<u16>,
}

impl Unit {
    pub fn folder(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

pub struct Bus {
    pub _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub relay: Proc,
    pub a: Unit,
    pub b: Unit,
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Dev PKI, directory with A and B, relay config, and one adapter config per unit.
pub fn setup(settle_ms: u64) -> Bus {
    setup_with(settle_ms, false)
}

/// `http`: both adapters also run local HTTP mode.
pub fn setup_with(settle_ms: u64, http: bool) -> Bus {
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
        let http_port = http.then(free_port);
        let http_section = http_port
            .map(|p| format!("[http]\nlisten = \"127.0.0.1:{p}\"\n"))
            .unwrap_or_default();
        std::fs::write(
            &config,
            format!(
                "version = 1\n[relay]\nurl = \"https://127.0.0.1:{port}\"\ntrust_root = {:?}\n[unit]\ncode = \"{code}\"\ncert = \"unit.pem\"\nkey = \"unit.key.pem\"\n[folder]\nsettle_ms = {settle_ms}\n[send]\nparallel = 8\nmax_backoff_seconds = 2\n[receive]\nwait_seconds = 2\n{http_section}",
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
            http: http_port,
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

pub fn document(to: &str, document_id: &str) -> Vec<u8> {
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
pub fn drop_in(outbox: &Path, name: &str, bytes: &[u8]) {
    let temp = outbox.join(format!(".{name}.tmp"));
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, outbox.join(name)).unwrap();
}

pub fn doc_id_of(i: usize) -> String {
    format!("{A},2026/11/23,{i}/TEST")
}

/// The fake DMS's view: each file taken out of a folder, counted by DocumentId.
#[derive(Default)]
pub struct Taken {
    pub counts: HashMap<String, u32>,
    pub files: u64,
}

impl Taken {
    /// Moves every `*.edxml` of `dir` away and counts it; returns how many were new.
    pub fn collect(&mut self, dir: &Path, status: bool) {
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

    pub fn twice(&self) -> Vec<&String> {
        self.counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| k)
            .collect()
    }
}

pub fn count_files(dir: &Path, suffix: &str) -> usize {
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
pub fn settle(
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

pub fn tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let start = s.len().saturating_sub(3000);
    s.get(start..).unwrap_or(&s).to_owned()
}

pub fn drop_documents(bus: &Bus, range: std::ops::Range<usize>) -> Vec<String> {
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

pub fn check_sent(bus: &Bus, n: usize) {
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
