//! `truc bench`: drives a real relay (`truc serve`, a child process) through its HTTPS edge with
//! mutual TLS, the way units do, and prints what it measured:
//!
//! 1. throughput: signed 10 KB packages, one recipient each, as fast as the relay takes them,
//!    with recipients long-polling, fetching and acknowledging at the same time; packages/s
//!    end to end (submitted → fetched by the recipient) and the submit-to-delivered latency;
//! 2. latency at a fixed offered rate (500/s by default): p50/p99 submit-to-delivered;
//! 3. fan-out: one 1 MB package to 10,000 units, time to the 202 and archive growth (the body
//!    must be stored once);
//! 4. scale: a 30,000-unit directory and 1,000,000 queued mailbox entries, then the relay's peak
//!    resident memory (VmHWM) and start time;
//!
//! plus `openssl speed rsa2048`'s sign rate measured in the same run, since sealing costs one
//! RSA signature per package and sets the ceiling on this machine.
//!
//! `--broker amqp` runs the relay on RabbitMQ (`--amqp-url`, objects under the prefix
//! `truc-bench.`, deleted before and after) and also reports how long the relay took to declare
//! every unit's mailbox and RabbitMQ's memory; `--broker both` runs embedded then amqp in the same
//! run and prints amqp / embedded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use edxml::{Attachment, Document, Organization, Package};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use truc_client::{Client, Identity};

use crate::lang::Lang;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Gói tin cho pha thông lượng (0 = bỏ qua). / Packages in the throughput phase (0 = skip).
    #[arg(long, default_value_t = 20_000)]
    packages: usize,
    /// Số yêu cầu gửi đồng thời. / Concurrent submissions.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Số đơn vị gửi và số đơn vị nhận (mỗi bên). / Sending units and receiving units (each).
    #[arg(long, default_value_t = 8)]
    units_each: usize,
    /// Tốc độ gửi cố định cho pha độ trễ (gói/giây). / Offered rate of the latency phase (packages/s).
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Số gói tin của pha độ trễ (0 = bỏ qua). / Packages in the latency phase (0 = skip).
    #[arg(long, default_value_t = 5_000)]
    rate_packages: usize,
    /// Kích thước gói tin (byte). / Package size (bytes).
    #[arg(long, default_value_t = 10 * 1024)]
    size: usize,
    /// Số đơn vị trong danh bạ. / Units in the directory.
    #[arg(long, default_value_t = 30_000)]
    units: usize,
    /// Số nơi nhận của gói 1 MB (0 = bỏ qua). / Recipients of the 1 MB package (0 = skip).
    #[arg(long, default_value_t = 10_000)]
    fanout: usize,
    /// Tổng số mục chờ trong hộp thư ở pha quy mô (0 = bỏ qua). / Queued mailbox entries in the scale phase (0 = skip).
    #[arg(long, default_value_t = 1_000_000)]
    queued: u64,
    /// Hàng đợi của trục: embedded, amqp (RabbitMQ) hoặc both (đo cả hai trong cùng lần chạy và in tỷ lệ). / The relay's broker: embedded, amqp (RabbitMQ) or both (both in the same run, with the ratio).
    #[arg(long, value_enum, default_value_t = BenchBroker::Embedded)]
    broker: BenchBroker,
    /// RabbitMQ cho --broker amqp/both (hàng đợi dưới tiền tố truc-bench., xóa trước và sau). / RabbitMQ for --broker amqp/both (queues under the prefix truc-bench., deleted before and after).
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// Với --broker amqp/both: nhật ký chung giữa các nút trục ([broker.amqp] shared_log; mặc định true như trong cấu hình; false: một nút duy nhất). / With --broker amqp/both: the shared log between relay nodes ([broker.amqp] shared_log; default true, as in the config; false: one node only).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    shared_log: bool,
    /// Thư mục làm việc (mặc định: thư mục tạm, xóa khi xong). / Work directory (default: a temp dir, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// In kết quả dạng JSON. / Print the results as JSON.
    #[arg(long)]
    json: bool,
}

/// Which broker the bench runs the relay on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchBroker {
    /// The embedded queues in the relay's store (the default).
    Embedded,
    /// RabbitMQ at --amqp-url.
    Amqp,
    /// Embedded, then RabbitMQ, in the same run; prints amqp / embedded.
    Both,
}

/// The queue-name prefix of the bench's RabbitMQ objects (deleted before and after a run).
const AMQP_PREFIX: &str = "truc-bench.";

/// Everything measured, in one record (printed as a table or JSON).
#[derive(Debug, Default, Serialize)]
struct Report {
    /// `embedded` or `amqp`.
    broker: &'static str,
    openssl_rsa2048_sign_per_s: f64,
    throughput: Option<Phase>,
    latency: Option<Phase>,
    fanout: Option<Fanout>,
    scale: Option<Scale>,
    relay_start_ms: u64,
    relay_peak_rss_mb: f64,
    /// amqp: whether the relay ran with the shared log (`[broker.amqp] shared_log`).
    shared_log: Option<bool>,
    /// amqp: from the relay's start until it reported every unit's mailbox declared.
    mailboxes_declared_ms: Option<u64>,
    /// amqp: RabbitMQ's memory (`rabbitmqctl status`) before the relay started, once every
    /// mailbox was declared, and at the end (before the bench's queues were deleted), MiB.
    rabbitmq_mb_before: Option<f64>,
    rabbitmq_mb_declared: Option<f64>,
    rabbitmq_mb_end: Option<f64>,
}

/// `--broker both`: the two reports and amqp / embedded for each exchange phase.
#[derive(Debug, Serialize)]
struct Comparison<'a> {
    embedded: &'a Report,
    amqp: &'a Report,
    throughput_ratio_amqp_to_embedded: Option<f64>,
    latency_phase_ratio_amqp_to_embedded: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
struct Phase {
    packages: usize,
    seconds: f64,
    packages_per_s: f64,
    offered_per_s: Option<u64>,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Packages per second divided by openssl's single-run RSA-2048 sign rate.
    ratio_to_rsa_sign: f64,
}

#[derive(Debug, Default, Serialize)]
struct Fanout {
    recipients: usize,
    package_bytes: usize,
    accept_seconds: f64,
    archive_growth_bytes: u64,
}

#[derive(Debug, Default, Serialize)]
struct Scale {
    directory_units: usize,
    queued_entries: u64,
    fill_seconds: f64,
    relay_rss_mb: f64,
    relay_peak_rss_mb: f64,
    data_dir_mb: f64,
}

/// One bench unit: its code and its HTTPS client.
struct BenchUnit {
    code: String,
    client: Client,
    key: dsig::SigningKey,
}

pub fn run(args: BenchArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(bench(args, lang))
}

fn progress(len: u64, msg: String) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:40} {bar:30} {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(msg);
    bar
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `openssl speed -seconds 2 rsa2048`: signatures per second on one core.
fn openssl_sign_rate() -> anyhow::Result<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", "2", "rsa2048"])
        .stderr(Stdio::null())
        .output()
        .context("openssl speed")?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() >= 6
            && fields[0] == "rsa"
            && fields[1] == "2048"
            && let Ok(v) = fields[fields.len() - 2].parse::<f64>()
        {
            return Ok(v);
        }
    }
    bail!("could not read the sign rate from `openssl speed rsa2048`: {text}")
}

fn unit_code(i: usize) -> String {
    format!("000.00.{:02}.G{:02}", i / 100, i % 100)
}

fn fanout_code(i: usize) -> String {
    format!("{:03}.{:02}.01.K{:02}", i / 100 + 1, i % 100, 10)
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            let p = e.path();
            total += if p.is_dir() {
                dir_size(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            };
        }
    }
    total
}

/// VmRSS and VmHWM of `pid`, in MB.
fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn document(from: &str, to: &[String], document_id: &str, attachment: Vec<u8>) -> Vec<u8> {
    let org = |code: &str| Organization {
        organ_id: code.to_owned(),
        ..Organization::default()
    };
    let doc = Document {
        from: org(from),
        to: to.iter().map(|t| org(t)).collect(),
        document_id: Some(document_id.to_owned()),
        subject: Some("Công văn đo hiệu năng".into()),
        attachments: vec![Attachment {
            content_id: "1".into(),
            name: Some("vanban.pdf".into()),
            description: None,
            content_type: Some("application/pdf".into()),
            data: attachment,
        }],
        ..Document::default()
    };
    edxml::to_bytes(&Package::Document(doc))
}

/// Attachment bytes that make a package of about `size` bytes once base64-encoded and signed.
fn filler(size: usize) -> Vec<u8> {
    let raw = size.saturating_sub(4_000) * 3 / 4;
    (0..raw).map(|i| (i % 251) as u8).collect()
}

struct Relay {
    child: Child,
    url: String,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn bench(args: BenchArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    eprintln!(
        "{}",
        lang.pick(
            "Đo tốc độ ký RSA-2048 của máy (openssl speed)…",
            "Measuring this machine's RSA-2048 sign rate (openssl speed)…"
        )
    );
    let sign_rate = openssl_sign_rate()?;
    let brokers: &[&'static str] = match args.broker {
        BenchBroker::Embedded => &["embedded"],
        BenchBroker::Amqp => &["amqp"],
        BenchBroker::Both => &["embedded", "amqp"],
    };
    let mut reports = Vec::new();
    for broker in brokers {
        eprintln!("— broker: {broker} —");
        let mut report = Report {
            broker,
            openssl_rsa2048_sign_per_s: sign_rate,
            ..Report::default()
        };
        run_on(&args, &dir.join(broker), &mut report, lang).await?;
        reports.push(report);
    }
    if let [embedded, amqp] = &reports[..] {
        let ratio = |a: &Option<Phase>, e: &Option<Phase>| match (a, e) {
            (Some(a), Some(e)) if e.packages_per_s > 0.0 => {
                Some(a.packages_per_s / e.packages_per_s)
            }
            _ => None,
        };
        let comparison = Comparison {
            embedded,
            amqp,
            throughput_ratio_amqp_to_embedded: ratio(&amqp.throughput, &embedded.throughput),
            latency_phase_ratio_amqp_to_embedded: ratio(&amqp.latency, &embedded.latency),
        };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&comparison)?);
        } else {
            for r in &reports {
                print(r, false, lang)?;
            }
            if let Some(x) = comparison.throughput_ratio_amqp_to_embedded {
                println!(
                    "{}: {x:.2}",
                    lang.pick(
                        "Thông lượng amqp / embedded (cùng lần chạy)",
                        "Throughput amqp / embedded (same run)"
                    )
                );
            }
            if let Some(x) = comparison.latency_phase_ratio_amqp_to_embedded {
                println!(
                    "{}: {x:.2}",
                    lang.pick(
                        "Pha tốc độ cố định amqp / embedded",
                        "Fixed-rate phase amqp / embedded"
                    )
                );
            }
        }
    } else {
        for r in &reports {
            print(r, args.json, lang)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One full bench run with the relay on `report.broker`, in `dir`.
async fn run_on(
    args: &BenchArgs,
    dir: &Path,
    report: &mut Report,
    lang: Lang,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let amqp = report.broker == "amqp";
    // Dev PKI: the bench units (senders then recipients) and a TLS certificate for localhost.
    let n_units = args.units_each.max(1) * 2;
    let codes: Vec<String> = (1..=n_units).map(unit_code).collect();
    eprintln!(
        "{} {n_units} …",
        lang.pick(
            "Tạo hạ tầng chứng thư thử nghiệm cho",
            "Making a dev PKI for"
        )
    );
    let specs: Vec<(&str, Option<&str>)> = codes.iter().map(|c| (c.as_str(), None)).collect();
    let pki = dsig::pki::init(&specs, unix_now())?;
    let certs = dir.join("certs");
    for (rel, content) in pki.files() {
        let p = certs.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, content)?;
    }
    let tls = dsig::pki::issue_tls_server(&pki.ca, &["localhost", "127.0.0.1"], unix_now())?;
    std::fs::write(certs.join("server.pem"), &tls.cert_pem)?;
    std::fs::write(certs.join("server.key.pem"), &tls.key_pem)?;

    // Directory: a national-shaped sample, the fan-out units (group `fanout`) and the bench units.
    let data = dir.join("data");
    let all_codes: Vec<String>;
    {
        let store = store::Store::open(&data)?;
        let directory = directory::Directory::open(&store)?;
        let fanout = args.fanout.min(args.units.saturating_sub(n_units));
        let sample = args.units.saturating_sub(n_units + fanout).max(756);
        let mut csv = directory::sample::national_csv(sample);
        for i in 0..fanout {
            csv.extend_from_slice(
                format!("{},Xã đo tải {i},,,,,fanout\n", fanout_code(i)).as_bytes(),
            );
        }
        for code in &codes {
            csv.extend_from_slice(format!("{code},Đơn vị đo tải {code},,,,,bench\n").as_bytes());
        }
        let total = csv.iter().filter(|b| **b == b'\n').count() as u64 - 1;
        let bar = progress(
            total,
            lang.pick("Nhập danh bạ", "Importing the directory").into(),
        );
        directory.import(&csv, &mut |done, _| bar.set_position(done))?;
        directory.flush().await?;
        bar.finish();
        all_codes = directory.list(None)?.into_iter().map(|u| u.code).collect();
    }
    let broker_toml = if amqp {
        // Leftovers of an earlier run that stopped half-way go first.
        delete_amqp(&args.amqp_url, &all_codes).await?;
        report.rabbitmq_mb_before = rabbitmq_memory_mb();
        report.shared_log = Some(args.shared_log);
        format!(
            "[broker]\nkind = \"amqp\"\nurl = {:?}\n[broker.amqp]\nprefix = \"{AMQP_PREFIX}\"\nshared_log = {}\n",
            args.amqp_url, args.shared_log
        )
    } else {
        String::new()
    };

    // The relay, as a separate process.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.join("truc.toml");
    let p = |rel: &str| certs.join(rel).display().to_string();
    std::fs::write(
        &config,
        format!(
            "version = 1\ndata_dir = {:?}\n[http]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = {:?}\ntls_key = {:?}\nclient_ca = {:?}\ncrl = {:?}\n[seal]\ncert = {:?}\nkey = {:?}\n[log]\nlevel = \"warn\"\n{broker_toml}",
            data.display().to_string(),
            p("server.pem"),
            p("server.key.pem"),
            p("ca.pem"),
            p("ca.crl.pem"),
            p("relay.pem"),
            p("relay.key.pem"),
        ),
    )?;
    let log = std::fs::File::create(dir.join("relay.log"))?;
    let started = Instant::now();
    let child = Command::new(std::env::current_exe()?)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("TRUC_LANG", "en") // the bench reads the relay's "mailboxes declared" line
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting `truc serve`")?;
    let relay = Relay {
        child,
        url: format!("https://127.0.0.1:{port}"),
    };
    let anonymous = Client::anonymous(&relay.url, &pki.ca.cert_pem)?;
    loop {
        if anonymous.health().await.is_ok() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "{}: {}",
                lang.pick(
                    "trục không khởi động được; xem",
                    "the relay did not start; see"
                ),
                dir.join("relay.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    report.relay_start_ms = started.elapsed().as_millis() as u64;
    let pid = relay.child.id();
    if amqp {
        // The relay serves at once and declares every unit's mailbox in the background; the
        // phases start once it said it is done, so they measure the steady state.
        let bar = ProgressBar::new_spinner();
        bar.set_message(
            lang.pick(
                "Trục đang khai báo hộp thư trên RabbitMQ",
                "The relay is declaring the mailboxes on RabbitMQ",
            )
            .to_owned(),
        );
        let log = dir.join("relay.log");
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("RabbitMQ: mailboxes of") {
                break;
            }
            if text.contains("declaring the units' mailboxes failed")
                || started.elapsed() > Duration::from_secs(600)
            {
                bail!(
                    "{}: {}",
                    lang.pick(
                        "trục không khai báo xong hộp thư trên RabbitMQ; xem",
                        "the relay did not finish declaring the mailboxes on RabbitMQ; see"
                    ),
                    log.display()
                );
            }
            bar.tick();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bar.finish_and_clear();
        report.mailboxes_declared_ms = Some(started.elapsed().as_millis() as u64);
        report.rabbitmq_mb_declared = rabbitmq_memory_mb();
    }

    let mut units = Vec::new();
    for (code, issued) in &pki.units {
        let identity = Identity {
            cert_pem: issued.cert_pem.clone(),
            key_pem: issued.key_pem.clone(),
        };
        units.push(BenchUnit {
            code: code.clone(),
            client: Client::new(&relay.url, &identity, &pki.ca.cert_pem)?,
            key: dsig::SigningKey::from_pem(&issued.key_pem, &issued.cert_pem)?,
        });
    }
    let units = Arc::new(units);
    let half = units.len() / 2;

    if args.packages > 0 {
        let phase = exchange(
            &units,
            half,
            args.packages,
            args.size,
            args.concurrency,
            None,
            "t",
            lang,
        )
        .await?;
        report.throughput = Some(phase);
    }
    if args.rate_packages > 0 {
        let phase = exchange(
            &units,
            half,
            args.rate_packages,
            args.size,
            args.concurrency,
            Some(args.rate),
            "r",
            lang,
        )
        .await?;
        report.latency = Some(phase);
    }
    for phase in [&mut report.throughput, &mut report.latency]
        .into_iter()
        .flatten()
    {
        phase.ratio_to_rsa_sign = phase.packages_per_s / report.openssl_rsa2048_sign_per_s;
    }

    let archive = data.join("archive");
    if args.fanout > 0 {
        let sender = &units[0];
        let xml = document(
            &sender.code,
            &["group:fanout".to_owned()],
            "bench-fanout-1mb",
            filler(1024 * 1024),
        );
        let signed = dsig::sign(&xml, &sender.key, dsig::Role::Sender)?;
        let before = dir_size(&archive);
        let t0 = Instant::now();
        let accepted = sender.client.submit(signed.clone()).await?;
        let accept_seconds = t0.elapsed().as_secs_f64();
        report.fanout = Some(Fanout {
            recipients: accepted.recipients.len(),
            package_bytes: signed.len(),
            accept_seconds,
            archive_growth_bytes: dir_size(&archive).saturating_sub(before),
        });
    }

    if args.queued > 0 && args.fanout > 0 {
        let already = report
            .fanout
            .as_ref()
            .map(|f| f.recipients as u64)
            .unwrap_or(0);
        let per = args.fanout as u64;
        let rounds = args.queued.saturating_sub(already).div_ceil(per);
        let bar = progress(
            args.queued,
            lang.pick("Xếp hàng mục chờ (quy mô)", "Queueing entries (scale)")
                .into(),
        );
        bar.set_position(already);
        let sender = &units[0];
        let t0 = Instant::now();
        let body = filler(args.size);
        for r in 0..rounds {
            let xml = document(
                &sender.code,
                &["group:fanout".to_owned()],
                &format!("bench-scale-{r}"),
                body.clone(),
            );
            let signed = dsig::sign(&xml, &sender.key, dsig::Role::Sender)?;
            sender.client.submit(signed).await?;
            bar.inc(per);
        }
        bar.finish();
        let (rss, hwm) = rss_mb(pid);
        report.scale = Some(Scale {
            directory_units: args.units,
            queued_entries: already + rounds * per,
            fill_seconds: t0.elapsed().as_secs_f64(),
            relay_rss_mb: rss,
            relay_peak_rss_mb: hwm,
            data_dir_mb: dir_size(&data) as f64 / 1e6,
        });
    }
    report.relay_peak_rss_mb = rss_mb(pid).1;
    drop(relay);
    if amqp {
        report.rabbitmq_mb_end = rabbitmq_memory_mb();
        let t0 = Instant::now();
        delete_amqp(&args.amqp_url, &all_codes).await?;
        eprintln!(
            "{} {:.1} s",
            lang.pick(
                "Đã xóa hàng đợi RabbitMQ của lần đo trong",
                "Deleted the bench's RabbitMQ queues in"
            ),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// RabbitMQ's total memory in MiB (`rabbitmqctl status`), if rabbitmqctl answers here.
fn rabbitmq_memory_mb() -> Option<f64> {
    let out = Command::new("rabbitmqctl")
        .args(["status", "--formatter", "json"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["memory"]["total"]["rss"]
        .as_f64()
        .map(|b| b / 1024.0 / 1024.0)
}

/// Deletes every RabbitMQ object of the bench (prefix [`AMQP_PREFIX`]): the mailboxes of
/// `units`, the dead-letter queue, both exchanges and the shared log's stream.
async fn delete_amqp(url: &str, units: &[String]) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let store = store::Store::open(scratch.path())?;
    let b = broker::AmqpBroker::open(
        store,
        broker::AmqpConfig {
            prefix: AMQP_PREFIX.to_owned(),
            reconnect_for: Duration::from_secs(5),
            ..broker::AmqpConfig::new(url)
        },
    )
    .await?;
    b.delete(units).await?;
    b.close().await;
    let log = broker::SharedLog::open(broker::SharedLogConfig::new(url, AMQP_PREFIX)).await?;
    log.delete().await?;
    log.close().await;
    Ok(())
}

/// One exchange phase: `n` packages from the first `half` units to the others (one recipient
/// each), recipients consuming concurrently. `rate`: offered packages/s, else as fast as
/// `concurrency` callers go.
#[allow(clippy::too_many_arguments)]
async fn exchange(
    units: &Arc<Vec<BenchUnit>>,
    half: usize,
    n: usize,
    size: usize,
    concurrency: usize,
    rate: Option<u64>,
    tag: &str,
    lang: Lang,
) -> anyhow::Result<Phase> {
    // Sign everything first, on every core, so the bench does not compete with the relay.
    let body = filler(size);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let bar = progress(
        n as u64,
        lang.pick("Ký trước các gói tin", "Signing the packages")
            .into(),
    );
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let chunks: Vec<Vec<(String, Vec<u8>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let bar = bar.clone();
                let body = body.clone();
                let run_id = run_id.clone();
                s.spawn(move || {
                    let mut out = Vec::new();
                    for i in (t..n).step_by(threads) {
                        let from = &units[i % half];
                        let to = &units[half + (i % (units.len() - half))];
                        let doc_id = format!("bench-{tag}-{run_id}-{i}");
                        let xml = document(
                            &from.code,
                            std::slice::from_ref(&to.code),
                            &doc_id,
                            body.clone(),
                        );
                        match dsig::sign(&xml, &from.key, dsig::Role::Sender) {
                            Ok(signed) => out.push((doc_id, signed)),
                            Err(e) => eprintln!("sign: {e}"),
                        }
                        bar.inc(1);
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    bar.finish();
    let mut packages: Vec<(usize, String, Vec<u8>)> = Vec::with_capacity(n);
    for chunk in chunks {
        for (doc_id, signed) in chunk {
            let i: usize = doc_id
                .rsplit('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            packages.push((i, doc_id, signed));
        }
    }
    packages.sort_by_key(|p| p.0);
    if packages.len() != n {
        bail!("signed {} of {n} packages", packages.len());
    }

    let started: Arc<Mutex<HashMap<String, Instant>>> =
        Arc::new(Mutex::new(HashMap::with_capacity(n)));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let delivered = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let title = match rate {
        Some(r) => format!("{} {r}/s", lang.pick("Gửi nhận ở tốc độ", "Exchange at")),
        None => lang
            .pick("Gửi nhận tối đa", "Exchange, full speed")
            .to_owned(),
    };
    let bar = progress(n as u64, title);

    // Recipients: long-poll, then fetch and ack the items of one poll side by side, as the
    // adapter does (truc-adapter's receive loop: 32 per poll, the next poll once all are done).
    let mut consumers = Vec::new();
    for r in half..units.len() {
        let units = units.clone();
        let started = started.clone();
        let latencies = latencies.clone();
        let delivered = delivered.clone();
        let failures = failures.clone();
        let bar = bar.clone();
        let total = n as u64;
        consumers.push(tokio::spawn(async move {
            while delivered.load(Ordering::Relaxed) < total {
                let items = match units[r].client.inbox(Duration::from_secs(1), 32).await {
                    Ok(items) => items,
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let mut tasks = tokio::task::JoinSet::new();
                for item in items {
                    let units = units.clone();
                    tasks.spawn(async move {
                        let client = &units[r].client;
                        let ok = client.fetch(&item.id).await.is_ok()
                            && client.ack(&item.id).await.is_ok();
                        (item, ok)
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    let Ok((item, ok)) = done else {
                        failures.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let t0 = started
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(&item.document_id)
                        .copied();
                    if let Some(t0) = t0 {
                        latencies
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(t0.elapsed().as_secs_f64() * 1000.0);
                        delivered.fetch_add(1, Ordering::Relaxed);
                        bar.inc(1);
                    }
                }
            }
        }));
    }

    // Senders.
    let packages = Arc::new(packages);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut senders = Vec::new();
    let callers = if rate.is_some() {
        concurrency.max(64)
    } else {
        concurrency
    };
    for _ in 0..callers {
        let units = units.clone();
        let packages = packages.clone();
        let next = next.clone();
        let started = started.clone();
        let failures = failures.clone();
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((idx, doc_id, body)) = packages.get(i) else {
                    break;
                };
                if let Some(r) = rate {
                    let due = t0 + Duration::from_secs_f64(i as f64 / r as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                started
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(doc_id.clone(), Instant::now());
                let from = &units[idx % half];
                // Retry on transient errors with the same bytes (the relay deduplicates).
                for _ in 0..5 {
                    match from.client.submit(body.clone()).await {
                        Ok(_) => break,
                        Err(e) if e.retryable() => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => {
                            eprintln!("submit {doc_id}: {e}");
                            failures.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            }
        }));
    }
    for s in senders {
        s.await?;
    }
    // Wait for the recipients (bounded: a lost package must not hang the bench).
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered.load(Ordering::Relaxed) < n as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let got = delivered.load(Ordering::Relaxed);
    delivered.store(u64::MAX / 2, Ordering::Relaxed); // release the consumers
    for c in consumers {
        c.await?;
    }
    bar.finish();
    if got < n as u64 {
        bail!(
            "only {got} of {n} packages reached their recipient within 120 s after the last submission"
        );
    }
    let mut lat = std::mem::take(&mut *latencies.lock().unwrap_or_else(PoisonError::into_inner));
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Ok(Phase {
        packages: n,
        seconds,
        packages_per_s: n as f64 / seconds,
        offered_per_s: rate,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: lat.last().copied().unwrap_or(0.0),
        ratio_to_rsa_sign: 0.0,
    })
}

fn print(report: &Report, json: bool, lang: Lang) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    match report.shared_log {
        Some(on) => println!(
            "== broker: {} ({}: {on}) ==",
            report.broker,
            lang.pick("nhật ký chung", "shared log")
        ),
        None => println!("== broker: {} ==", report.broker),
    }
    println!(
        "{}: {:.0}/s",
        lang.pick(
            "openssl speed rsa2048, ký (1 lõi)",
            "openssl speed rsa2048, sign (1 core)"
        ),
        report.openssl_rsa2048_sign_per_s
    );
    println!(
        "{}: {} ms",
        lang.pick("Thời gian khởi động trục", "Relay start time"),
        report.relay_start_ms
    );
    if let Some(ms) = report.mailboxes_declared_ms {
        let mb = |v: Option<f64>| v.map_or_else(|| "?".to_owned(), |v| format!("{v:.0}"));
        println!(
            "{}: {:.1} s; RabbitMQ {} {} → {} → {} MiB",
            lang.pick(
                "Mọi hộp thư đã khai báo trên RabbitMQ sau khi khởi động",
                "Every mailbox declared on RabbitMQ after the start"
            ),
            ms as f64 / 1000.0,
            lang.pick(
                "bộ nhớ (trước, sau khai báo, cuối)",
                "memory (before, declared, end)"
            ),
            mb(report.rabbitmq_mb_before),
            mb(report.rabbitmq_mb_declared),
            mb(report.rabbitmq_mb_end),
        );
    }
    for (name, phase) in [
        (lang.pick("Thông lượng", "Throughput"), &report.throughput),
        (
            lang.pick("Độ trễ ở tốc độ cố định", "Latency at a fixed rate"),
            &report.latency,
        ),
    ] {
        if let Some(p) = phase {
            println!(
                "{name}: {} {} {:.1} s = {:.0} {}/s{}; {} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} {:.2}",
                p.packages,
                lang.pick("gói trong", "packages in"),
                p.seconds,
                p.packages_per_s,
                lang.pick("gói", "packages"),
                p.offered_per_s
                    .map(|r| format!(" ({} {r}/s)", lang.pick("chào", "offered")))
                    .unwrap_or_default(),
                lang.pick("gửi→nhận", "submit→delivered"),
                p.p50_ms,
                p.p99_ms,
                p.max_ms,
                lang.pick("tỷ lệ so với tốc độ ký RSA", "ratio to the RSA sign rate"),
                p.ratio_to_rsa_sign
            );
        }
    }
    if let Some(f) = &report.fanout {
        println!(
            "{}: {} byte → {} {}: {:.2} s; {} {} byte",
            lang.pick("Phát tán", "Fan-out"),
            f.package_bytes,
            f.recipients,
            lang.pick(
                "nơi nhận, nhận và xếp hàng trong",
                "recipients, accepted and enqueued in"
            ),
            f.accept_seconds,
            lang.pick("kho lưu trữ tăng", "archive grew"),
            f.archive_growth_bytes
        );
    }
    if let Some(s) = &report.scale {
        println!(
            "{}: {} {}, {} {} ({:.0} s); RSS {:.0} MB, {} {:.0} MB; {} {:.0} MB",
            lang.pick("Quy mô", "Scale"),
            s.directory_units,
            lang.pick("đơn vị", "units"),
            s.queued_entries,
            lang.pick("mục chờ trong hộp thư", "queued mailbox entries"),
            s.fill_seconds,
            s.relay_rss_mb,
            lang.pick("đỉnh", "peak"),
            s.relay_peak_rss_mb,
            lang.pick("dữ liệu trên đĩa", "data on disk"),
            s.data_dir_mb
        );
    }
    println!(
        "{}: {:.0} MB",
        lang.pick("Bộ nhớ đỉnh của trục (VmHWM)", "Relay peak memory (VmHWM)"),
        report.relay_peak_rss_mb
    );
    Ok(())
}
