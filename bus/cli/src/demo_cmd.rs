//! `truc demo`: the whole bus on one machine in one command. Makes (once) a dev PKI and three demo
//! units (a ministry, a province, a commune) under `./demo/`, starts the relay (`truc serve`) and
//! one folder adapter (`truc-adapter`) per unit as child processes, sends a sample document with an
//! attachment from the ministry to the other two, waits for delivery and both 01 receipts, prints
//! the tracking timeline, and keeps everything running until Ctrl-C, saying which folders to use.
//! Glue only: the work is done by the relay and the adapters.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use edxml::{Attachment, Code, Document, Organization, Package};

use crate::lang::Lang;

/// `truc demo …`
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Thư mục của bản chạy thử. / The demo's folder.
    #[arg(long, default_value = "./demo")]
    dir: PathBuf,
    /// Cổng HTTPS của trục (127.0.0.1). / The relay's HTTPS port (127.0.0.1).
    #[arg(long, default_value_t = 8443)]
    port: u16,
    /// Dừng sau lần gửi mẫu (cho kịch bản, CI). / Stop after the sample exchange (scripts, CI).
    #[arg(long)]
    once: bool,
}

/// (code, name, folder)
const UNITS: [(&str, &str, &str); 3] = [
    ("000.00.00.G09", "Bộ Nội vụ (thử nghiệm)", "bo"),
    (
        "000.00.00.H26",
        "UBND thành phố Hà Nội (thử nghiệm)",
        "tinh",
    ),
    ("000.00.01.H26", "UBND xã Thử Nghiệm (thử nghiệm)", "xa"),
];

/// The child processes; stopped (SIGTERM, then wait) when dropped, whatever happened.
#[derive(Debug, Default)]
struct Children(Vec<(String, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, c) in self.0.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> anyhow::Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).with_context(|| format!("{}", p.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("{}", path.display()))
}

fn spawn(program: &Path, args: &[String], log: &Path) -> anyhow::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("{}", log.display()))?;
    Command::new(program)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(out.try_clone()?)
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("{}", program.display()))
}

/// PKI, directory and configs. The PKI and the directory are made once; configs every time (the
/// port may change).
fn prepare(dir: &Path, port: u16, lang: Lang) -> anyhow::Result<()> {
    let certs = dir.join("certs");
    let data = dir.join("relay");
    if !certs.join("ca.pem").exists() {
        let specs: Vec<(&str, Option<&str>)> = UNITS.iter().map(|(c, _, _)| (*c, None)).collect();
        let pki = dsig::pki::init(&specs, now_unix()).map_err(|e| anyhow::anyhow!("{e}"))?;
        for (rel, content) in pki.files() {
            write(&certs.join(rel), content)?;
        }
        let tls = dsig::pki::issue_tls_server(&pki.ca, &["localhost", "127.0.0.1"], now_unix())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        write(&certs.join("server.pem"), &tls.cert_pem)?;
        write(&certs.join("server.key.pem"), &tls.key_pem)?;
        for (i, (_, _, folder)) in UNITS.iter().enumerate() {
            let unit = &pki.units[i].1;
            write(&dir.join(folder).join("unit.pem"), &unit.cert_pem)?;
            write(&dir.join(folder).join("unit.key.pem"), &unit.key_pem)?;
        }
        let store = store::Store::open(&data)?;
        let directory = directory::Directory::open(&store)?;
        let mut csv = String::from("code,name\n");
        for (code, name, _) in UNITS {
            csv.push_str(&format!("{code},{name}\n"));
        }
        directory
            .import(csv.as_bytes(), &mut |_, _| {})
            .map_err(|e| anyhow::anyhow!("{}", e.message_en()))?;
        tokio::runtime::Builder::new_current_thread()
            .build()?
            .block_on(directory.flush())?;
        println!(
            "{}",
            lang.pick(
                "Đã tạo hạ tầng chứng thư thử nghiệm và danh bạ 3 đơn vị.",
                "Made a development PKI and a directory of 3 units."
            )
        );
    }
    let p = |rel: &str| certs.join(rel).display().to_string();
    write(
        &dir.join("truc.toml"),
        format!(
            "# truc demo: the relay. See ops/config/truc.example.toml for every key.\nversion = 1\ndata_dir = {:?}\n[http]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = {:?}\ntls_key = {:?}\nclient_ca = {:?}\ncrl = {:?}\n[seal]\ncert = {:?}\nkey = {:?}\n[log]\nlevel = \"warn\"\n",
            data.display().to_string(),
            p("server.pem"),
            p("server.key.pem"),
            p("ca.pem"),
            p("ca.crl.pem"),
            p("relay.pem"),
            p("relay.key.pem"),
        ),
    )?;
    for (code, _, folder) in UNITS {
        write(
            &dir.join(folder).join("adapter.toml"),
            format!(
                "# truc demo: the adapter of unit {code}. Drop *.edxml into outbox/.\nversion = 1\n[relay]\nurl = \"https://127.0.0.1:{port}\"\ntrust_root = {:?}\n[unit]\ncode = \"{code}\"\ncert = \"unit.pem\"\nkey = \"unit.key.pem\"\n[folder]\nsettle_ms = 300\n",
                p("ca.pem")
            ),
        )?;
    }
    Ok(())
}

fn sample(document_id: &str) -> Vec<u8> {
    let org = |i: usize| Organization {
        organ_id: UNITS[i].0.to_owned(),
        organ_name: Some(UNITS[i].1.to_owned()),
        ..Organization::default()
    };
    let doc = Document {
        from: org(0),
        to: vec![org(1), org(2)],
        document_id: Some(document_id.to_owned()),
        code: Some(Code {
            code_number: Some("15".into()),
            code_notation: Some("BNV-VP".into()),
        }),
        subject: Some("Về việc chạy thử Trục liên thông văn bản".into()),
        content: Some("Đề nghị các đơn vị xác nhận đã nhận văn bản qua Trục.".into()),
        attachments: vec![Attachment {
            content_id: "1".into(),
            name: Some("cong-van-15.txt".into()),
            description: Some("Toàn văn công văn".into()),
            content_type: Some("text/plain".into()),
            data: "CÔNG VĂN số 15/BNV-VP\nVề việc chạy thử Trục liên thông văn bản.\n"
                .as_bytes()
                .to_vec(),
        }],
        ..Document::default()
    };
    edxml::to_bytes(&Package::Document(doc))
}

/// Waits for `f` to find something, up to a minute; fails with `what` and the logs' folder.
fn wait_for<T>(
    what: &str,
    dir: &Path,
    children: &mut Children,
    mut f: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        for (name, c) in children.0.iter_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                bail!(
                    "{name} exited ({status}) while waiting for {what}; see the logs in {}",
                    dir.display()
                );
            }
        }
        if Instant::now() > deadline {
            bail!(
                "timed out waiting for {what}; see the logs in {}",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The files of `folder` whose package is (or answers) `document_id`.
fn find(folder: &Path, document_id: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".edxml"))
        .filter(|e| {
            let Ok(bytes) = std::fs::read(e.path()) else {
                return false;
            };
            match edxml::read(&bytes, &edxml::Limits::default()).map(|p| p.package) {
                Ok(Package::Document(d)) => d.document_id.as_deref() == Some(document_id),
                Ok(Package::Status(s)) => {
                    s.response_for.document_id.as_deref() == Some(document_id)
                }
                Err(_) => false,
            }
        })
        .map(|e| e.path())
        .collect()
}

pub fn run(args: DemoArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    let dir = std::path::absolute(&args.dir)?;
    let exe = std::env::current_exe()?;
    let adapter_exe = exe.with_file_name("truc-adapter");
    if !adapter_exe.exists() {
        bail!(
            "{} {}",
            lang.pick(
                "Không thấy chương trình truc-adapter cạnh truc; hãy dựng nó: cargo build -p truc-adapter (hoặc --release). Đường dẫn đã tìm:",
                "truc-adapter is not next to truc; build it: cargo build -p truc-adapter (or --release). Looked for:"
            ),
            adapter_exe.display()
        );
    }
    prepare(&dir, args.port, lang)?;
    let url = format!("https://127.0.0.1:{}", args.port);
    let ca = std::fs::read(dir.join("certs/ca.pem"))?;
    let mut children = Children::default();
    let relay_args = vec![
        "serve".to_owned(),
        "--config".to_owned(),
        dir.join("truc.toml").display().to_string(),
    ];
    children.0.push((
        "truc serve".into(),
        spawn(&exe, &relay_args, &dir.join("relay.log"))?,
    ));
    let anonymous = truc_client::Client::anonymous(&url, &ca)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    wait_for("the relay", &dir, &mut children, || {
        rt.block_on(anonymous.health()).ok()
    })?;
    println!(
        "{} {url}",
        lang.pick("Trục đang chạy tại", "The relay is running at")
    );
    for (code, _, folder) in UNITS {
        let cfg = dir.join(folder).join("adapter.toml");
        let args = vec!["--config".to_owned(), cfg.display().to_string()];
        children.0.push((
            format!("truc-adapter {code}"),
            spawn(&adapter_exe, &args, &dir.join(folder).join("adapter.log"))?,
        ));
    }

    // The sample document, dropped as a DMS should: written aside, then renamed into outbox/.
    // A number no earlier run in this folder used. Seconds were not enough: two `--once` runs
    // within one second sent the same bytes, the relay answered with the first run's package
    // (a resubmission), and the second run reported the first run's delivery as its own.
    let sent = dir.join("bo").join("sent");
    let mut n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() % 1_000_000_000)
        .unwrap_or(0);
    while sent
        .join(format!("cong-van-{n}.edxml.result.json"))
        .exists()
        || dir
            .join("bo")
            .join("outbox")
            .join(format!("cong-van-{n}.edxml"))
            .exists()
    {
        n += 1;
    }
    let today = time::OffsetDateTime::now_utc();
    let document_id = format!(
        "{},{:04}/{:02}/{:02},{n}/BNV-VP",
        UNITS[0].0,
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    let outbox = dir.join("bo").join("outbox");
    wait_for("the ministry's adapter", &dir, &mut children, || {
        outbox.is_dir().then_some(())
    })?;
    let name = format!("cong-van-{n}.edxml");
    let temp = outbox.join(format!(".{name}.tmp"));
    write(&temp, sample(&document_id))?;
    std::fs::rename(&temp, outbox.join(&name))?;
    println!(
        "{} {} → {}, {} ({document_id})",
        lang.pick("Đã gửi văn bản mẫu:", "Sent a sample document:"),
        UNITS[0].1,
        UNITS[1].1,
        UNITS[2].1
    );
    let result = dir
        .join("bo")
        .join("sent")
        .join(format!("{name}.result.json"));
    let failed = dir
        .join("bo")
        .join("failed")
        .join(format!("{name}.error.txt"));
    let relay_id = wait_for("the relay's answer", &dir, &mut children, || {
        if let Ok(text) = std::fs::read_to_string(&failed) {
            return Some(Err(text));
        }
        let bytes = std::fs::read(&result).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        Some(Ok(v["id"].as_str()?.to_owned()))
    })?
    .map_err(|text| anyhow::anyhow!("{text}"))?;
    println!(
        "  {} {relay_id}",
        lang.pick("trục đã nhận, mã", "accepted by the relay, id")
    );
    for (_, unit_name, folder) in &UNITS[1..] {
        let inbox = dir.join(folder).join("inbox");
        let file = wait_for("delivery", &dir, &mut children, || {
            find(&inbox, &document_id).into_iter().next()
        })?;
        println!(
            "  {} {unit_name}: {}",
            lang.pick("đã đến", "arrived at"),
            file.display()
        );
    }
    let receipts = dir.join("bo").join("receipts");
    wait_for("both 01 receipts", &dir, &mut children, || {
        (find(&receipts, &document_id).len() >= 2).then_some(())
    })?;
    println!(
        "  {} {}",
        lang.pick(
            "hai trạng thái 01 (đã đến) đã về Bộ:",
            "both 01 (arrived) receipts are back at the ministry:"
        ),
        receipts.display()
    );
    println!();
    let bo = dir.join("bo");
    let status = Command::new(&exe)
        .args([
            "--lang",
            lang.pick("vi", "en"),
            "track",
            "--url",
            &url,
            "--cert",
            &bo.join("unit.pem").display().to_string(),
            "--key",
            &bo.join("unit.key.pem").display().to_string(),
            "--ca",
            &dir.join("certs/ca.pem").display().to_string(),
            &relay_id,
        ])
        .status()?;
    if !status.success() {
        bail!("truc track: {status}");
    }
    println!();
    for (code, unit_name, folder) in UNITS {
        println!(
            "{unit_name} ({code}): {} {}  {} {}  {} {}",
            lang.pick("gửi: thả tệp .edxml vào", "send: drop .edxml files into"),
            dir.join(folder).join("outbox").display(),
            lang.pick("nhận:", "receive:"),
            dir.join(folder).join("inbox").display(),
            lang.pick("trạng thái:", "receipts:"),
            dir.join(folder).join("receipts").display(),
        );
    }
    println!(
        "{} {url} ({} {})",
        lang.pick("API của trục:", "Relay API:"),
        lang.pick("chứng thư đơn vị trong", "unit certificates in"),
        dir.display()
    );
    if args.once {
        drop(children);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}",
        lang.pick(
            "Đang chạy; nhấn Ctrl-C để dừng.",
            "Running; press Ctrl-C to stop."
        )
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
        }
        let _ = tokio::signal::ctrl_c().await;
    });
    drop(children);
    println!(
        "{}",
        lang.pick("Đã dừng bản chạy thử.", "The demo has stopped.")
    );
    Ok(ExitCode::SUCCESS)
}
