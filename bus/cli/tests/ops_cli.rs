//! `truc ops queues` and `truc ops redrive` as an operator runs them: the real binary against a
//! data directory filled by a real `truc serve`, exit codes and what is printed checked.

// Test code: a panic here is a failed test, not a crash on the message path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
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
        .env_remove("TRUC_PASSWORD")
        .env_remove("RUST_LOG");
    c
}

fn truc(cwd: &Path, args: &[&str]) -> Output {
    truc_cmd(cwd).args(args).output().expect("run truc")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A running `truc serve`, killed if the test fails before stopping it.
struct Running {
    child: Option<Child>,
    url: String,
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
    fn start(cwd: &Path, data: &str) -> Running {
        let mut child = truc_cmd(cwd)
            .args(["serve", "--data", data, "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn truc serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.split(" / listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(START_TIMEOUT)
            .expect("truc serve printed its listening line");
        Running {
            child: Some(child),
            url,
        }
    }

    fn terminate(mut self) {
        let mut child = self.child.take().unwrap();
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let started = Instant::now();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                assert_eq!(s.code(), Some(0), "truc serve stops cleanly");
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "truc serve did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Makes, signs (with the unit's dev certificate) and submits a document from `from` to `to`.
fn submit(dir: &Path, data: &Path, url: &str, from: &str, to: &str, n: usize) {
    let certs = data.join("certs/units");
    let cert = certs.join(format!("{from}.pem"));
    let key = certs.join(format!("{from}.key.pem"));
    let identity = truc_client::Identity {
        cert_pem: std::fs::read(&cert).unwrap(),
        key_pem: std::fs::read(&key).unwrap(),
    };
    let ca = std::fs::read(data.join("certs/ca.pem")).unwrap();
    let client = truc_client::Client::new(url, &identity, &ca).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for i in 0..n {
        let out = truc(
            dir,
            &[
                "edxml",
                "new",
                "--from",
                from,
                "--to",
                to,
                "--subject",
                &format!("Công văn thử số {i}"),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let unsigned = dir.join("doc.edxml");
        std::fs::write(&unsigned, &out.stdout).unwrap();
        let out = truc(
            dir,
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
        rt.block_on(client.submit(out.stdout)).unwrap();
    }
}

const G22: &str = "000.00.00.G22";
const H41: &str = "000.00.00.H41";
const H42: &str = "000.00.00.H42";

/// The line of `unit` in the table, and its index among the lines.
fn row<'a>(table: &'a str, unit: &str) -> Option<(usize, &'a str)> {
    table.lines().enumerate().find(|(_, l)| l.starts_with(unit))
}

#[test]
fn ops_queues_asks_a_running_relay_as_an_operator_and_reads_a_stopped_ones_data_dir_worst_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let data_s = data.to_str().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/units/sample.csv");
    let out = truc(
        dir,
        &[
            "units",
            "import",
            "--data",
            data_s,
            sample.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // H41 gets one package; two seconds later H42 gets two: H41 has waited longer, so it comes
    // first although H42 is deeper.
    let relay = Running::start(dir, data_s);
    submit(dir, &data, &relay.url, G22, H41, 1);
    std::thread::sleep(Duration::from_millis(2100));
    submit(dir, &data, &relay.url, G22, H42, 2);

    // While the relay holds the data directory, the offline mode says so and what to do.
    let out = truc(dir, &["ops", "queues", "--data", data_s]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("[store_locked]"), "{err}");
    assert!(err.contains("truc ops queues --url"), "{err}");

    // ... and the running relay answers an operator account over HTTPS, with live rates.
    let password = "mat-khau-van-hanh-2026";
    for (name, role) in [("vanhanh", "--operator"), ("vanthu", "--unit")] {
        let mut args = vec!["accounts", "add", "--data", data_s, name, role];
        if role == "--unit" {
            args.push(H41);
        }
        let out = truc_cmd(dir)
            .args(&args)
            .env("TRUC_PASSWORD", password)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let ca = data.join("certs/ca.pem");
    let ca_s = ca.to_str().unwrap();
    let remote = |user: &str, password: Option<&str>, stdin: &str, extra: &[&str]| {
        use std::io::Write as _;
        let mut cmd = truc_cmd(dir);
        cmd.args([
            "ops", "queues", "--url", &relay.url, "--user", user, "--ca", ca_s,
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if let Some(p) = password {
            cmd.env("TRUC_PASSWORD", p);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = remote("vanhanh", Some(password), "", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let (i41, _) = row(&table, H41).unwrap_or_else(|| panic!("{H41} row:\n{table}"));
    let (i42, _) = row(&table, H42).unwrap_or_else(|| panic!("{H42} row:\n{table}"));
    assert!(i41 < i42, "{table}");
    assert!(
        table.contains("60 phút qua: tiếp nhận 3"),
        "live rates from the running relay:\n{table}"
    );
    // The password can come on standard input (scripts); JSON is the relay's Overview.
    let out = remote("vanhanh", None, &format!("{password}\n"), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let o: relay::Overview = serde_json::from_slice(&out.stdout).unwrap();
    assert!(o.live);
    assert_eq!(o.rates.accepted, 3);
    // A wrong password and a clerk account are refused, each with what to do.
    let out = remote("vanhanh", Some("sai-mat-khau"), "", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("truc accounts add"),
        "{}",
        text(&out.stderr)
    );
    let out = remote("vanthu", Some(password), "", &["--lang", "en"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not an operator account"),
        "{}",
        text(&out.stderr)
    );
    relay.terminate();

    let out = truc(dir, &["ops", "queues", "--data", data_s]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    for head in ["Đơn vị", "Tên", "Chờ nhận", "Đang giao", "Chờ lâu nhất"] {
        assert!(table.contains(head), "Vietnamese header {head}:\n{table}");
    }
    let (i41, line41) = row(&table, H41).unwrap_or_else(|| panic!("{H41} row:\n{table}"));
    let (i42, line42) = row(&table, H42).unwrap_or_else(|| panic!("{H42} row:\n{table}"));
    assert!(i41 < i42, "the longest waiting first:\n{table}");
    assert!(
        line41.contains("Ủy ban nhân dân tỉnh Khánh Hòa"),
        "{line41}"
    );
    let cells: Vec<&str> = line42.split_whitespace().collect();
    assert!(cells.contains(&"2"), "H42 has 2 ready: {line42}");
    assert!(table.contains("3 chờ nhận"), "totals: {table}");
    assert!(
        table.contains("trục đã dừng"),
        "says rates are not known: {table}"
    );

    // --top cuts the rows and says how many more there are; English on request.
    let out = truc(
        dir,
        &[
            "--lang", "en", "ops", "queues", "--data", data_s, "--top", "1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    for head in ["Unit", "Name", "Ready", "In flight", "Oldest waiting"] {
        assert!(table.contains(head), "English header {head}:\n{table}");
    }
    assert!(
        row(&table, H41).is_some() && row(&table, H42).is_none(),
        "{table}"
    );
    assert!(table.contains("1 more mailbox"), "{table}");

    // --json is the relay's Overview, exactly what GET /portal/ops/queues serves.
    let out = truc(dir, &["ops", "queues", "--data", data_s, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let o: relay::Overview = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(o.backend, "embedded");
    assert!(o.broker_up && !o.live);
    let units: Vec<&str> = o.mailboxes.iter().map(|m| m.unit.as_str()).collect();
    assert_eq!(units, [H41, H42]);
    assert_eq!(o.mailboxes[1].ready, 2);
    assert!(o.mailboxes[0].oldest_ready_age_s > o.mailboxes[1].oldest_ready_age_s);

    // Re-drive with nothing dead-lettered moves nothing and says so.
    let out = truc(dir, &["ops", "redrive", H41, "--data", data_s]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Đã đưa 0"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn ops_queues_without_a_store_or_on_rabbitmq_says_where_to_look() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = truc(dir, &["ops", "queues", "--data", "khong-co"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("[store_missing]") && err.contains("--data"),
        "{err}"
    );
    assert!(!dir.join("khong-co").exists(), "nothing is created");

    let config = dir.join("truc.toml");
    std::fs::write(
        &config,
        "version = 1\n[broker]\nkind = \"amqp\"\nurl = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\n",
    )
    .unwrap();
    let out = truc(
        dir,
        &[
            "--lang",
            "en",
            "ops",
            "queues",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("[ops_offline_amqp]"), "{err}");
    assert!(
        err.contains("--url") && err.contains("rabbitmqctl"),
        "{err}"
    );

    // --url needs an account and a root certificate.
    let out = truc(dir, &["ops", "queues", "--url", "https://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--user"),
        "{}",
        text(&out.stderr)
    );
}
