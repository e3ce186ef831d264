//! `truc serve`: reads and checks the configuration, opens the store, the unit directory, the
//! broker (embedded, or RabbitMQ with `[broker] kind = "amqp"`) and the relay, makes a
//! development PKI when no certificates are configured, and runs the HTTPS edge until Ctrl-C or
//! SIGTERM. Glue only: every rule lives in `relay`, `server`, `store`, `broker`, `directory` and
//! `dsig`.
//!
//! Shutdown order: the signal resolves the server's shutdown future; `server::serve` stops
//! accepting, lets in-flight requests finish and returns; then the relay flushes the store (group
//! commit) and is dropped, which closes the store after a final fsync. A second signal while that
//! runs exits at once (every accepted package was already durable before its sender heard so).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use broker::{AmqpBroker, AmqpConfig, AnyBroker, EmbeddedBroker, EmbeddedConfig, SystemClock};
use directory::Directory;
use relay::{Relay, RelayConfig};
use store::{Store, StoreOptions};

use crate::config::{self, AmqpQueueType, BrokerKind, Config, ConfigError, LogFormat};
use crate::lang::Lang;

/// `truc serve …`
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Tệp cấu hình TOML (mặc định ./truc.toml nếu có, không thì cấu hình mặc định); xem
    /// ops/config/truc.example.toml. / TOML configuration file (default ./truc.toml when present,
    /// else the built-in defaults); see ops/config/truc.example.toml.
    #[arg(long, env = "TRUC_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Thư mục dữ liệu (ghi đè data_dir). / Data directory (overrides data_dir).
    #[arg(long, env = "TRUC_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Địa chỉ lắng nghe IP:cổng (ghi đè http.listen; cổng 0 = cổng trống bất kỳ). / Listen
    /// address IP:port (overrides http.listen; port 0 = any free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Chỉ kiểm tra cấu hình rồi thoát (0 = hợp lệ, 2 = có lỗi). / Only check the configuration
    /// and exit (0 = valid, 2 = problems).
    #[arg(long)]
    check: bool,
}

/// At most this many unit certificates are made for the development PKI (an RSA key each).
const DEV_PKI_MAX_UNITS: usize = 25;
/// Names the development TLS server certificate is valid for.
const DEV_TLS_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

pub fn run(args: ServeArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    let config = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            // The code first: the message may run over several lines (one per problem).
            eprintln!(
                "{} [{}]: {}",
                lang.pick("lỗi", "error"),
                e.code(),
                lang.pick(&e.message_vi(), &e.message_en())
            );
            return Ok(ExitCode::from(2));
        }
    };
    if args.check {
        println!(
            "{}",
            lang.pick("Cấu hình hợp lệ.", "The configuration is valid.")
        );
        return Ok(ExitCode::SUCCESS);
    }
    init_logging(&config);
    serve(&config, lang)
}

/// The configuration: file (or defaults), then command-line overrides, then every check; all
/// problems in one error.
fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
    let file = match &args.config {
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from(config::DEFAULT_FILE)).filter(|p| p.is_file()),
    };
    let (mut config, mut problems) = match &file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let (mut config, problems) = config::load(&text);
            let base = path.parent().unwrap_or(Path::new(""));
            config.resolve_paths(base);
            (config, problems)
        }
        None => (Config::default(), Vec::new()),
    };
    if let Some(data) = &args.data {
        config.data_dir = data.clone();
    }
    if let Some(listen) = &args.listen {
        config.http.listen = listen.clone();
    }
    problems.extend(config.validate());
    problems.extend(config.file_problems());
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid {
            origin: file,
            problems,
        })
    }
}

fn init_logging(config: &Config) {
    // RUST_LOG, when set, wins over [log] level (validated already, so the fallback is unused).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // Err only when a subscriber is already set, which cannot happen in this process.
    let _ = match config.log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn read(path: &Path, lang: Lang) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| {
        format!(
            "{} {}",
            lang.pick("không đọc được", "cannot read"),
            path.display()
        )
    })
}

fn dsig_err(e: dsig::Error, lang: Lang) -> anyhow::Error {
    anyhow::anyhow!("{} [{}]", e.text(lang == Lang::Vi), e.code)
}

/// The certificates and keys the relay runs with (all PEM).
struct Material {
    /// HTTPS server certificate and key.
    tls_cert: Vec<u8>,
    tls_key: Vec<u8>,
    /// Roots for client certificates and sender signatures.
    roots: Vec<u8>,
    crl: Option<Vec<u8>>,
    seal_cert: Vec<u8>,
    seal_key: Vec<u8>,
}

fn serve(config: &Config, lang: Lang) -> anyhow::Result<ExitCode> {
    let data = &config.data_dir;
    std::fs::create_dir_all(data).with_context(|| {
        format!(
            "{} {}",
            lang.pick(
                "không tạo được thư mục dữ liệu",
                "cannot create the data directory"
            ),
            data.display()
        )
    })?;
    // The store's other options keep their defaults.
    let options = StoreOptions {
        cache_bytes: config.broker.embedded.cache_mb * 1024 * 1024,
        commit_gap: Duration::from_millis(config.relay.commit_gap_ms),
        ..StoreOptions::default()
    };
    let store = Store::open_with(
        data,
        options,
    )
    .map_err(|e| {
        if crate::track_cmd::is_locked(&e) {
            anyhow::anyhow!(
                "{} [store_locked]",
                lang.pick(
                    &format!(
                        "thư mục dữ liệu {} đang được một trục khác (truc serve) dùng. Mỗi thư mục dữ liệu chỉ một trục; hãy dừng trục kia hoặc chọn --data khác.",
                        data.display()
                    ),
                    &format!(
                        "the data directory {} is in use by another relay (truc serve). One relay per data directory: stop the other one or pick another --data.",
                        data.display()
                    ),
                )
            )
        } else {
            anyhow::anyhow!("{} [{}]", lang.pick(&e.message_vi(), &e.message_en()), e.code())
        }
    })?;
    let directory = Directory::open(&store).map_err(|e| {
        anyhow::anyhow!(
            "{} [{}]",
            lang.pick(&e.message_vi(), &e.message_en()),
            e.code()
        )
    })?;
    let units = directory.len().unwrap_or(0);
    let material = if config.has_certificates() {
        configured_material(config, lang)?
    } else {
        dev_material(data, &directory, lang)?
    };
    let seal = dsig::SigningKey::from_pem(&material.seal_key, &material.seal_cert)
        .map_err(|e| dsig_err(e, lang))?;
    if !dsig::is_relay_certificate(seal.certificate()) {
        anyhow::bail!(
            "{}",
            lang.pick(
                "seal.cert không phải chứng thư của trục (cần OU=Relay và EKU của trục): đơn vị nhận sẽ từ chối niêm phong này. Hãy dùng chứng thư trục được cấp cho trục.",
                "seal.cert is not a relay certificate (it needs OU=Relay and the relay EKU): recipients would refuse this seal. Use the certificate issued to the relay."
            )
        );
    }
    let trust = dsig::TrustStore::new(&material.roots, material.crl.as_deref().unwrap_or(b""))
        .map_err(|e| dsig_err(e, lang))?;
    let lease = Duration::from_secs(config.relay.lease_seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("truc-serve")
        .build()
        .context("tokio runtime")?;
    let broker_err = |e: broker::BrokerError| {
        anyhow::anyhow!(
            "{} [{}]",
            lang.pick(&e.message_vi(), &e.message_en()),
            e.code()
        )
    };
    let broker = match config.broker.kind {
        BrokerKind::Embedded => AnyBroker::Embedded(
            EmbeddedBroker::open(
                store.clone(),
                EmbeddedConfig {
                    lease,
                    clock: Arc::new(SystemClock),
                },
            )
            .map_err(broker_err)?,
        ),
        BrokerKind::Amqp => {
            let amqp = AmqpConfig {
                lease,
                queue_type: match config.broker.amqp.queue_type {
                    AmqpQueueType::Classic => broker::QueueType::Classic,
                    AmqpQueueType::Quorum => broker::QueueType::Quorum,
                },
                prefix: config.broker.amqp.prefix.clone(),
                management_url: Some(config.broker.amqp.management_url.clone())
                    .filter(|u| !u.is_empty()),
                ..AmqpConfig::new(config.broker.url.clone())
            };
            // Retries for up to 30 s while RabbitMQ is starting; then fails with what to check.
            let amqp = runtime
                .block_on(AmqpBroker::open(store.clone(), amqp))
                .map_err(broker_err)?;
            declare_mailboxes(&runtime, &amqp, &directory, lang);
            AnyBroker::Amqp(amqp)
        }
    };
    let max_bytes =
        usize::try_from(config.relay.max_package_mb * 1024 * 1024).unwrap_or(usize::MAX);
    let max_depth = usize::try_from(config.relay.max_depth).unwrap_or(usize::MAX);
    let relay_config = RelayConfig {
        relay_id: config.relay.id.clone(),
        seal: Arc::new(seal),
        trust: Arc::new(trust),
        limits: edxml::Limits {
            max_bytes,
            max_depth,
        },
        clock: Arc::new(SystemClock),
    };
    let shared_log = config.broker.kind == BrokerKind::Amqp && config.broker.amqp.shared_log;
    let relay = if shared_log {
        // One node of several on this RabbitMQ: catches up with the shared log before serving.
        let log = broker::SharedLogConfig {
            append_gap: Duration::from_millis(config.broker.amqp.shared_log_gap_ms),
            ..broker::SharedLogConfig::new(
                config.broker.url.clone(),
                config.broker.amqp.prefix.clone(),
            )
        };
        runtime.block_on(async {
            let log = broker::SharedLog::open(log).await.map_err(broker_err)?;
            Relay::open_clustered(store, broker, directory, relay_config, log)
                .await
                .map_err(|e| anyhow::anyhow!("{} [{}]", lang.pick(&e.vi, &e.en), e.code))
        })?
    } else {
        Relay::open(store, broker, directory, relay_config)
            .map_err(|e| anyhow::anyhow!("{} [{}]", lang.pick(&e.vi, &e.en), e.code))?
    };
    if units == 0 {
        eprintln!(
            "{}",
            lang.pick(
                &format!(
                    "Lưu ý: danh bạ đơn vị đang trống nên chưa đơn vị nào gửi, nhận được. Hãy dừng trục rồi nhập danh bạ: truc units import --data {} schemas/units/sample.csv (định dạng: schemas/units/README.md), sau đó chạy lại truc serve.",
                    data.display()
                ),
                &format!(
                    "Note: the unit directory is empty, so no unit can send or receive yet. Stop the relay and import it: truc units import --data {} schemas/units/sample.csv (format: schemas/units/README.md), then run truc serve again.",
                    data.display()
                ),
            )
        );
    } else {
        eprintln!(
            "{}",
            match lang {
                Lang::Vi => format!("Danh bạ: {units} đơn vị."),
                Lang::En => format!("Directory: {units} unit(s)."),
            }
        );
    }
    let tls = server::TlsSettings {
        cert_pem: material.tls_cert,
        key_pem: material.tls_key,
        client_roots_pem: material.roots,
        crl_pem: material.crl,
    };
    let listen: SocketAddr = config
        .http
        .listen
        .parse()
        .context("http.listen (validated)")?;
    let portal = portal::Settings {
        accounts: config.accounts_file(),
        session: Duration::from_secs(config.portal.session_minutes * 60),
    };
    runtime.block_on(run_server(listen, tls, relay, portal, lang))
}

/// Declares the RabbitMQ mailbox of every unit of the directory, in the background: the relay
/// serves at once (a mailbox not declared yet is declared on its first publish or fetch), and
/// prints one line when all are declared (30,000 units take tens of seconds of RabbitMQ's time).
fn declare_mailboxes(
    runtime: &tokio::runtime::Runtime,
    amqp: &AmqpBroker,
    directory: &Directory,
    lang: Lang,
) {
    let units: Vec<String> = match directory.list(None) {
        Ok(units) => units.into_iter().map(|u| u.code).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the directory; mailboxes are declared on first use");
            return;
        }
    };
    if units.is_empty() {
        return;
    }
    let amqp = amqp.clone();
    runtime.spawn(async move {
        let started = std::time::Instant::now();
        match amqp.declare_mailboxes(&units).await {
            Ok(_) => eprintln!(
                "{}",
                match lang {
                    Lang::Vi => format!(
                        "RabbitMQ: đã khai báo hộp thư của {} đơn vị trong {:.1} s.",
                        units.len(),
                        started.elapsed().as_secs_f64()
                    ),
                    Lang::En => format!(
                        "RabbitMQ: mailboxes of {} units declared in {:.1} s.",
                        units.len(),
                        started.elapsed().as_secs_f64()
                    ),
                }
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "declaring the units' mailboxes failed; each is declared on its first use"
            ),
        }
    });
}

async fn run_server(
    listen: SocketAddr,
    tls: server::TlsSettings,
    relay: Relay,
    portal: portal::Settings,
    lang: Lang,
) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!(
            "{}",
            lang.pick(
                &format!(
                    "không lắng nghe được tại {listen} ({e}). Có thể cổng đang bị chương trình khác dùng, hoặc cần quyền để dùng cổng dưới 1024; hãy chọn --listen khác."
                ),
                &format!(
                    "cannot listen on {listen} ({e}). The port may be taken by another program, or ports under 1024 need privileges; pick another --listen."
                ),
            )
        )
    })?;
    let mut signals = StopSignals::new().context("signal handlers")?;
    let local = listener.local_addr().unwrap_or(listen);
    let url = format!("https://{local}");
    println!("Trục đang chạy tại {url} / listening on {url}");
    let _ = std::io::stdout().flush();

    // One task owns the signals: the first asks for a graceful stop, a second exits at once.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        signals.next().await;
        eprintln!(
            "{}",
            lang.pick(
                "Đang dừng: không nhận kết nối mới, chờ các yêu cầu đang chạy xong… (nhấn Ctrl-C lần nữa để thoát ngay)",
                "Stopping: no new connections, waiting for requests in flight… (Ctrl-C again to exit at once)"
            )
        );
        let _ = stop_tx.send(());
        signals.next().await;
        eprintln!(
            "{}",
            lang.pick(
                "Nhận tín hiệu dừng lần hai: thoát ngay.",
                "Second stop signal: exiting now."
            )
        );
        std::process::exit(130);
    });
    let shutdown = async move {
        let _ = stop_rx.await;
    };
    eprintln!(
        "{}",
        lang.pick(
            &format!("Cổng văn thư: {url}/portal/ (tài khoản: truc accounts add)"),
            &format!("Clerk portal: {url}/portal/ (accounts: truc accounts add)"),
        )
    );
    let result = server::serve_with(listener, tls, relay.clone(), Some(portal), shutdown).await;
    result.map_err(|e| {
        anyhow::anyhow!(
            "{} [{}]",
            lang.pick(&e.message_vi(), &e.message_en()),
            e.code()
        )
    })?;
    relay
        .flush()
        .await
        .map_err(|e| anyhow::anyhow!("{} [{}]", lang.pick(&e.vi, &e.en), e.code))?;
    drop(relay);
    eprintln!("{}", lang.pick("Trục đã dừng.", "The relay has stopped."));
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C and SIGTERM, registered when made: a signal that arrives before anyone waits is kept
/// (made before the "listening" line, so a supervisor's early SIGTERM is a clean stop too).
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> std::io::Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Resolves at the next Ctrl-C or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            Some(()) = self.interrupt.recv() => {}
            Some(()) = self.terminate.recv() => {}
            else => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The five configured files (validated to exist) and the optional CRL.
fn configured_material(config: &Config, lang: Lang) -> anyhow::Result<Material> {
    let path = |p: &Option<PathBuf>| p.clone().unwrap_or_default();
    Ok(Material {
        tls_cert: read(&path(&config.http.tls_cert), lang)?,
        tls_key: read(&path(&config.http.tls_key), lang)?,
        roots: read(&path(&config.http.client_ca), lang)?,
        crl: match &config.http.crl {
            Some(p) => Some(read(p, lang)?),
            None => None,
        },
        seal_cert: read(&path(&config.seal.cert), lang)?,
        seal_key: read(&path(&config.seal.key), lang)?,
    })
}

/// The development PKI in `DATA/certs`: made on first start (with certificates for the units
/// already in the directory, if few), completed on later starts (TLS server certificate, unit
/// certificates for units imported since), and announced loudly every time.
fn dev_material(data: &Path, directory: &Directory, lang: Lang) -> anyhow::Result<Material> {
    let certs = data.join("certs");
    let now = now_unix();
    let units = directory.list(None).map_err(|e| {
        anyhow::anyhow!(
            "{} [{}]",
            lang.pick(&e.message_vi(), &e.message_en()),
            e.code()
        )
    })?;
    let few = units.len() <= DEV_PKI_MAX_UNITS;
    if !certs.exists() {
        let specs: Vec<(&str, Option<&str>)> = if few {
            units
                .iter()
                .map(|u| (u.code.as_str(), Some(u.name.as_str())))
                .collect()
        } else {
            Vec::new()
        };
        let pki = dsig::pki::init(&specs, now).map_err(|e| dsig_err(e, lang))?;
        let tls = dsig::pki::issue_tls_server(&pki.ca, &DEV_TLS_NAMES, now)
            .map_err(|e| dsig_err(e, lang))?;
        let mut files = pki.files();
        files.push(("server.pem".into(), tls.cert_pem));
        files.push(("server.key.pem".into(), tls.key_pem));
        // Written beside, then renamed into place: a crash never leaves half a PKI behind.
        let tmp = data.join(format!("certs.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        for (rel, content) in &files {
            write_file(&tmp.join(rel), content, lang)?;
        }
        std::fs::rename(&tmp, &certs)
            .with_context(|| format!("rename {} -> {}", tmp.display(), certs.display()))?;
        dev_banner(&certs, true, specs.len(), lang);
    } else {
        dev_banner(&certs, false, 0, lang);
    }
    let ca = dsig::pki::Issued {
        cert_pem: read(&certs.join("ca.pem"), lang)?,
        key_pem: read(&certs.join("ca.key.pem"), lang)?,
    };
    if !certs.join("server.pem").exists() {
        // A PKI made by `truc certs init` has no TLS server certificate yet.
        let tls =
            dsig::pki::issue_tls_server(&ca, &DEV_TLS_NAMES, now).map_err(|e| dsig_err(e, lang))?;
        write_file(&certs.join("server.key.pem"), &tls.key_pem, lang)?;
        write_file(&certs.join("server.pem"), &tls.cert_pem, lang)?;
    }
    if few {
        let mut issued = Vec::new();
        for u in &units {
            let cert = certs.join("units").join(format!("{}.pem", u.code));
            if cert.exists() || dsig::pki::check_unit_code(&u.code).is_err() {
                continue;
            }
            let m = dsig::pki::issue(&ca.cert_pem, &ca.key_pem, &u.code, Some(&u.name), now)
                .map_err(|e| dsig_err(e, lang))?;
            write_file(
                &certs.join("units").join(format!("{}.key.pem", u.code)),
                &m.key_pem,
                lang,
            )?;
            write_file(&cert, &m.cert_pem, lang)?;
            issued.push(u.code.clone());
        }
        if !issued.is_empty() {
            eprintln!(
                "{}",
                match lang {
                    Lang::Vi => format!(
                        "Đã cấp chứng thư phát triển cho {} đơn vị mới trong danh bạ: {}.",
                        issued.len(),
                        issued.join(", ")
                    ),
                    Lang::En => format!(
                        "Issued development certificates for {} new unit(s) of the directory: {}.",
                        issued.len(),
                        issued.join(", ")
                    ),
                }
            );
        }
    } else {
        eprintln!(
            "{}",
            lang.pick(
                &format!(
                    "Danh bạ có {} đơn vị (nhiều hơn {DEV_PKI_MAX_UNITS}) nên trục không tự cấp chứng thư phát triển cho từng đơn vị; cấp khi cần: truc certs issue --ca {} --unit MÃ.",
                    units.len(),
                    certs.display()
                ),
                &format!(
                    "The directory has {} units (more than {DEV_PKI_MAX_UNITS}), so no development certificate is made for each; issue one when needed: truc certs issue --ca {} --unit CODE.",
                    units.len(),
                    certs.display()
                ),
            )
        );
    }
    let crl_path = certs.join("ca.crl.pem");
    Ok(Material {
        tls_cert: read(&certs.join("server.pem"), lang)?,
        tls_key: read(&certs.join("server.key.pem"), lang)?,
        roots: ca.cert_pem,
        crl: if crl_path.exists() {
            Some(read(&crl_path, lang)?)
        } else {
            None
        },
        seal_cert: read(&certs.join("relay.pem"), lang)?,
        seal_key: read(&certs.join("relay.key.pem"), lang)?,
    })
}

/// The development warning, in both languages whatever `--lang` says: it must not be missed.
fn dev_banner(certs: &Path, created: bool, units: usize, lang: Lang) {
    let c = certs.display();
    let (vi_head, en_head) = if created {
        (
            format!(
                "đã TẠO PKI phát triển tại {c} (CA gốc, chứng thư niêm phong của trục, chứng thư TLS cho localhost/127.0.0.1/::1, {units} chứng thư đơn vị)"
            ),
            format!(
                "CREATED a development PKI in {c} (root CA, relay sealing certificate, TLS certificate for localhost/127.0.0.1/::1, {units} unit certificate(s))"
            ),
        )
    } else {
        (
            format!("đang dùng PKI phát triển tại {c}"),
            format!("using the development PKI in {c}"),
        )
    };
    let vi = format!(
        "!!! CHỈ ĐỂ PHÁT TRIỂN: {vi_head}, vì tệp cấu hình không khai báo chứng thư. Khóa bí mật nằm ngay trong thư mục dữ liệu: KHÔNG dùng cho hệ thống thật; hãy khai báo [http] tls_cert, tls_key, client_ca và [seal] cert, key (ops/config/truc.example.toml)."
    );
    let en = format!(
        "!!! DEVELOPMENT ONLY: {en_head}, because the configuration names no certificates. Its private keys sit in the data directory: NEVER use it in production; configure [http] tls_cert, tls_key, client_ca and [seal] cert, key (ops/config/truc.example.toml)."
    );
    let (first, second) = match lang {
        Lang::Vi => (vi, en),
        Lang::En => (en, vi),
    };
    eprintln!("{first}\n{second}");
    eprintln!(
        "{}",
        lang.pick(
            &format!(
                "CA cho phía khách (bộ chuyển đổi, curl --cacert): {c}/ca.pem; chứng thư và khóa của từng đơn vị: {c}/units/MÃ.pem, {c}/units/MÃ.key.pem."
            ),
            &format!(
                "CA for clients (adapters, curl --cacert): {c}/ca.pem; each unit's certificate and key: {c}/units/CODE.pem, {c}/units/CODE.key.pem."
            ),
        )
    );
}

/// Writes a new file; private keys (`*.key.pem`) readable by the owner only.
fn write_file(path: &Path, content: &[u8], lang: Lang) -> anyhow::Result<()> {
    let ctx = || {
        format!(
            "{} {}",
            lang.pick("không ghi được", "cannot write"),
            path.display()
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(ctx)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if path.to_string_lossy().ends_with(".key.pem") {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).with_context(ctx)?;
    f.write_all(content).with_context(ctx)?;
    f.sync_all().with_context(ctx)?;
    Ok(())
}
