//! `truc serve` and `truc track` as an operator runs them: the real binary, a temp data dir, a
//! real TLS connection, real signals, exit codes and messages checked.

// Test code: a panic here is a failed test, not a crash on the message path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous bound for a debug build on a busy 2-core machine; only guards against a hang.
const START_TIMEOUT: Duration = Duration::from_secs(90);

fn truc_cmd(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_truc"));
    c.current_dir(cwd)
        .env_remove("TRUC_LANG")
        .env_remove("TRUC_DATA")
        .env_remove("TRUC_CONFIG")
        .env_remove("RUST_LOG");
    c
}

fn truc(cwd: &Path, args: &[&str]) -> Output {
    truc_cmd(cwd).args(args).output().expect("run truc")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/config/truc.example.toml")
}

/// A running `truc serve`, killed if the test fails before stopping it.
struct Running {
    child: Option<Child>,
    url: String,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Running {
    fn start(cwd: &Path, args: &[&str]) -> Running {
        let mut child = truc_cmd(cwd)
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn truc serve");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (url_tx, url_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.split(" / listening on ").nth(1) {
                    let _ = url_tx.send((line.clone(), url.trim().to_owned()));
                }
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        let mut running = Running {
            child: Some(child),
            url: String::new(),
            stderr: err_rx,
        };
        match url_rx.recv_timeout(START_TIMEOUT) {
            Ok((line, url)) => {
                assert!(line.starts_with("Trục đang chạy tại https://"), "{line}");
                running.url = url;
            }
            Err(_) => {
                let status = running.child.as_mut().unwrap().try_wait();
                panic!(
                    "truc serve printed no listening line ({status:?}); stderr:\n{}",
                    running.drain_stderr()
                );
            }
        }
        running
    }

    fn drain_stderr(&self) -> String {
        let mut s = String::new();
        while let Ok(line) = self.stderr.try_recv() {
            s.push_str(&line);
            s.push('\n');
        }
        s
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and everything on stderr.
    fn terminate(mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().unwrap();
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let started = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "truc serve did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader thread ends at EOF; give it a moment to pass on the last lines.
        std::thread::sleep(Duration::from_millis(100));
        (status.code(), self.drain_stderr())
    }
}

/// `GET path` over TLS, trusting only `ca`; checks the server's name against the URL's host.
fn get(url: &str, path: &str, ca: &Path) -> (u16, String) {
    use openssl::ssl::{SslConnector, SslMethod};
    let hostport = url.strip_prefix("https://").unwrap();
    let host = hostport.rsplit_once(':').unwrap().0;
    let mut builder = SslConnector::builder(SslMethod::tls()).unwrap();
    builder.set_ca_file(ca).unwrap();
    let tcp = TcpStream::connect(hostport).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut tls = builder.build().connect(host, tcp).expect("TLS handshake");
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    // A peer that closes without close_notify is fine here once the response is in.
    let _ = tls.read_to_end(&mut response);
    let response = text(&response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serve_starts_with_a_dev_pki_answers_healthz_stops_on_sigterm_and_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_s = data.to_str().unwrap();

    let relay = Running::start(tmp.path(), &["--data", data_s, "--listen", "127.0.0.1:0"]);
    let ca = data.join("certs/ca.pem");
    assert!(ca.is_file(), "the dev CA is where clients are told to look");
    let (status, body) = get(&relay.url, "/healthz", &ca);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ok"), "{body}");

    // While the relay holds the store, `truc track` says so and points at --url.
    let out = truc(tmp.path(), &["track", "rebuild", "--data", data_s]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("[store_locked]"), "{err}");
    assert!(err.contains("--url"), "{err}");

    let (code, stderr) = relay.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("PHÁT TRIỂN"), "loud dev notice: {stderr}");
    assert!(
        stderr.contains("DEVELOPMENT ONLY"),
        "in English too: {stderr}"
    );
    assert!(
        stderr.contains(&ca.display().to_string()),
        "says where the CA is: {stderr}"
    );
    assert!(
        stderr.contains("truc units import"),
        "empty directory hint: {stderr}"
    );
    assert!(stderr.contains("Trục đã dừng."), "{stderr}");

    // Import the sample directory, then restart on the same data dir: same PKI (not made
    // again), certificates issued for the units imported since, still serving.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/units/sample.csv");
    let out = truc(
        tmp.path(),
        &[
            "units",
            "import",
            "--data",
            data_s,
            sample.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ca_before = std::fs::read(&ca).unwrap();
    let relay = Running::start(tmp.path(), &["--data", data_s, "--listen", "127.0.0.1:0"]);
    assert_eq!(std::fs::read(&ca).unwrap(), ca_before, "dev PKI kept");
    let (status, _) = get(&relay.url, "/healthz", &ca);
    assert_eq!(status, 200);
    let unit = data.join("certs/units/000.00.00.G22.pem");
    assert!(unit.is_file(), "a certificate for an imported unit");

    // While it runs, `truc track --url` asks it over mTLS as that unit.
    let key = data.join("certs/units/000.00.00.G22.key.pem");
    let args = [
        "track",
        "no-such-id",
        "--url",
        relay.url.as_str(),
        "--cert",
        unit.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--ca",
        ca.to_str().unwrap(),
    ];
    let out = truc(tmp.path(), &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("\"no-such-id\"") && err.contains(&relay.url),
        "{err}"
    );

    // A package from the Government Office to a province, signed with the issued certificate.
    let id = submit(&tmp, &relay.url, &ca, "000.00.00.G22", "000.00.00.H41");
    let mut args = args.to_vec();
    args[1] = &id;
    let out = truc(tmp.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let timeline = text(&out.stdout);
    assert!(timeline.contains("Công văn thử theo dõi"), "{timeline}");
    assert!(timeline.contains("000.00.00.H41  — chờ nhận"), "{timeline}");

    let (code, stderr) = relay.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("TẠO PKI"), "not created twice: {stderr}");
    assert!(
        stderr.contains("000.00.00.G22"),
        "says which certificates it issued: {stderr}"
    );

    // Stopped: the store is free, `truc track` reads it directly (unit names from the directory).
    let out = truc(
        tmp.path(),
        &["--lang", "en", "track", &id, "--data", data_s],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let timeline = text(&out.stdout);
    assert!(
        timeline.contains(&format!("Package {id} (document)")),
        "{timeline}"
    );
    assert!(timeline.contains("Subject"), "{timeline}");
    assert!(
        timeline
            .contains("000.00.00.H41 (Ủy ban nhân dân tỉnh Khánh Hòa)  — waiting in the mailbox"),
        "{timeline}"
    );
    let out = truc(tmp.path(), &["track", &id, "--data", data_s, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["id"], id.as_str());
    assert_eq!(json["from"], "000.00.00.G22");
    assert_eq!(json["recipients"][0]["unit"], "000.00.00.H41");
    assert_eq!(json["recipients"][0]["state"], "queued");

    // Rebuilding folds the one event again and the timeline reads the same.
    let out = truc(tmp.path(), &["track", "rebuild", "--data", data_s]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Đã gộp 1 sự kiện"),
        "{}",
        text(&out.stdout)
    );
    let again = truc(tmp.path(), &["track", &id, "--data", data_s, "--json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&again.stdout).unwrap(),
        json
    );
}

/// Makes, signs (with the unit's dev certificate) and submits a document; returns its relay id.
fn submit(tmp: &tempfile::TempDir, url: &str, ca: &Path, from: &str, to: &str) -> String {
    let certs = tmp.path().join("data/certs/units");
    let out = truc(
        tmp.path(),
        &[
            "edxml",
            "new",
            "--from",
            from,
            "--to",
            to,
            "--subject",
            "Công văn thử theo dõi",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let unsigned = tmp.path().join("doc.edxml");
    std::fs::write(&unsigned, &out.stdout).unwrap();
    let cert = certs.join(format!("{from}.pem"));
    let key = certs.join(format!("{from}.key.pem"));
    let out = truc(
        tmp.path(),
        &[
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            unsigned.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let identity = truc_client::Identity {
        cert_pem: std::fs::read(&cert).unwrap(),
        key_pem: std::fs::read(&key).unwrap(),
    };
    let client = truc_client::Client::new(url, &identity, &std::fs::read(ca).unwrap()).unwrap();
    let accepted = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client.submit(out.stdout))
        .unwrap();
    accepted.id
}

#[test]
fn a_config_with_three_mistakes_lists_all_three_and_exits_2_without_starting() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("truc.toml");
    std::fs::write(
        &cfg,
        "version = 1\ndata_dir = \"d\"\n[relay]\nlease_seconds = 2\n[http]\nlisten = \"localhost:8443\"\nlisen = \"x\"\n",
    )
    .unwrap();
    // Found as ./truc.toml without --config.
    let out = truc(tmp.path(), &["serve"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("3 vấn đề"), "{err}");
    assert!(
        err.contains("http.lisen: ") && err.contains("`listen`"),
        "{err}"
    );
    assert!(
        err.contains("http.listen: ") && err.contains("[bad_address]"),
        "{err}"
    );
    assert!(
        err.contains("relay.lease_seconds: ") && err.contains("[out_of_range]"),
        "{err}"
    );
    assert!(!tmp.path().join("d").exists(), "nothing started");

    let out = truc(
        tmp.path(),
        &[
            "--lang",
            "en",
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--check",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("3 problem(s)"), "{err}");
    assert!(err.contains("Did you mean `listen`?"), "{err}");
}

#[test]
fn the_example_config_is_valid_except_for_the_certificate_files_it_names() {
    let tmp = tempfile::tempdir().unwrap();
    let example = example_config();
    let out = truc(
        tmp.path(),
        &[
            "--lang",
            "en",
            "serve",
            "--config",
            example.to_str().unwrap(),
            "--check",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let problems: Vec<&str> = err.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(problems.len(), 6, "{err}");
    assert!(
        problems.iter().all(|l| l.ends_with("[file_unreadable]")),
        "{err}"
    );

    // With its five certificate lines and the CRL removed it is a clean, startable file.
    let trimmed: String = std::fs::read_to_string(&example)
        .unwrap()
        .lines()
        .filter(|l| {
            !["tls_cert", "tls_key", "client_ca", "crl", "cert", "key"]
                .iter()
                .any(|k| l.starts_with(&format!("{k} =")))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let cfg = tmp.path().join("dev.toml");
    std::fs::write(&cfg, trimmed).unwrap();
    let out = truc(
        tmp.path(),
        &["serve", "--config", cfg.to_str().unwrap(), "--check"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Cấu hình hợp lệ"));
}

#[test]
fn amqp_with_an_unreachable_broker_stops_at_startup_and_says_what_to_do() {
    // `[broker] kind = "amqp"` opens RabbitMQ (issue 6); when it cannot be reached the relay
    // does not fall back to the embedded queues: it stops with exit 2 and names the check.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("amqp.toml");
    std::fs::write(
        &cfg,
        "version = 1\ndata_dir = \"data\"\n[http]\nlisten = \"127.0.0.1:0\"\n[broker]\nkind = \"amqp\"\nurl = \"amqp://guest:guest@127.0.0.1:1/%2f\"\n",
    )
    .unwrap();
    let out = truc(tmp.path(), &["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("[broker.amqp]"), "{err}");
    assert!(err.contains("rabbitmqctl status"), "{err}");
}

#[test]
fn track_of_an_unknown_id_or_a_missing_store_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_s = data.to_str().unwrap();

    let out = truc(tmp.path(), &["track", "no-such-id", "--data", data_s]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("không có kho dữ liệu"),
        "{}",
        text(&out.stderr)
    );
    assert!(!data.exists(), "no store made by a read");

    // An empty store (the directory command makes one).
    let out = truc(tmp.path(), &["units", "list", "--data", data_s]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = truc(tmp.path(), &["track", "no-such-id", "--data", data_s]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("\"no-such-id\"") && err.contains("DocumentId"),
        "{err}"
    );

    let out = truc(
        tmp.path(),
        &["--lang", "en", "track", "rebuild", "--data", data_s],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Folded 0 event(s)"),
        "{}",
        text(&out.stdout)
    );
}

/// Regression: the stop signals used to be registered after the "listening" line was printed, so
/// a SIGTERM sent right after it (as a supervisor or script may) killed the process by the signal
/// instead of stopping it cleanly. The signal goes from a shell that is already running and waits
/// on a pipe, so it follows the line within microseconds (a `kill` spawned afterwards is too slow
/// to hit the window).
#[test]
fn sigterm_right_after_the_listening_line_is_a_clean_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for round in 0..6 {
        let mut relay = truc_cmd(tmp.path())
            .args([
                "serve",
                "--data",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut killer = Command::new("sh")
            .args(["-c", &format!("read go; kill -TERM {}", relay.id())])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(relay.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        killer.stdin.take().unwrap().write_all(b"go\n").unwrap();
        assert!(killer.wait().unwrap().success());
        let status = relay.wait().unwrap();
        assert!(line.contains("listening on"), "round {round}: {line}");
        assert_eq!(status.code(), Some(0), "round {round}: {status:?}");
    }
}
