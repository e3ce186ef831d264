//! `truc ops queues` (the operator's mailbox table in the terminal) and `truc ops redrive`:
//! glue over `relay::Overview` (see `bus/relay/src/ops.rs` for what each figure means). The
//! table, its language and the exit code live here; the figures come from the relay.
//!
//! Two ways to the data, chosen by `--url`:
//! - **from the running relay** (`--url https://HOST:PORT --user NAME --ca CA.pem`): `GET
//!   /portal/ops/queues?top=N` with an operator account of the portal over HTTP Basic, password
//!   from `TRUC_PASSWORD` or asked on the terminal. Live: rates and signature failures included.
//! - **offline** (no `--url`): opens the data directory (`--data`, else the config's
//!   `data_dir`) and reads the embedded broker and the directory directly. Only while the relay
//!   is stopped: the relay holds a lock on its data directory, and the command says so. Rates
//!   are not known offline (they live in the running relay's memory).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use broker::{AnyBroker, EmbeddedBroker, EmbeddedConfig, SystemClock};
use directory::Directory;
use relay::{OpsMessage, Overview};
use store::Store;

use crate::config::{self, BrokerKind, Config};
use crate::lang::Lang;
use crate::track_cmd::store_err;

/// `truc ops …`
#[derive(Debug, clap::Subcommand)]
pub enum OpsCommand {
    /// Bảng hộp thư: tồn đọng theo đơn vị (chờ lâu nhất trước), thư bị gác lại, tốc độ, lỗi chữ ký,
    /// kết nối hàng đợi. Hỏi trục đang chạy với --url (tài khoản vận hành của cổng), hoặc đọc thư
    /// mục dữ liệu khi trục đã dừng. Mã thoát: 0 hàng đợi trả lời, 1 hàng đợi không trả lời, 2
    /// lỗi. / The mailbox table: backlog per unit (longest waiting first), dead letters, rates,
    /// signature failures, broker connectivity. Asks the running relay with --url (a portal
    /// operator account), or reads the data directory while the relay is stopped. Exit 0 when
    /// the broker answers, 1 when it does not, 2 on errors.
    Queues(QueuesArgs),
    /// Đưa mọi thư bị gác lại của một hộp thư về lại hộp thư (khi trục đã dừng; khi trục chạy,
    /// dùng nút trên trang /portal/ops). / Move every dead letter of a mailbox back to it (with
    /// the relay stopped; while it runs, use the button on the /portal/ops page).
    Redrive(RedriveArgs),
}

/// Where the offline commands find the relay's data.
#[derive(Debug, clap::Args)]
pub struct Offline {
    /// Tệp cấu hình của trục (mặc định ./truc.toml nếu có); dùng data_dir và [broker]. / The
    /// relay's configuration file (default ./truc.toml when present); its data_dir and [broker]
    /// are used.
    #[arg(long, env = "TRUC_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Thư mục dữ liệu (ghi đè data_dir). / Data directory (overrides data_dir).
    #[arg(long, env = "TRUC_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct QueuesArgs {
    /// Số hộp thư tối đa được in (0 = tất cả). / Most mailboxes printed (0 = all).
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// In dạng JSON (đúng như GET /portal/ops/queues). / Print JSON (exactly as GET
    /// /portal/ops/queues).
    #[arg(long)]
    json: bool,
    /// Hỏi trục đang chạy: https://MÁY:CỔNG (cần --user, --ca). / Ask the running relay:
    /// https://HOST:PORT (needs --user, --ca).
    #[arg(long, value_name = "URL", requires_all = ["user", "ca"], conflicts_with_all = ["config", "data"])]
    url: Option<String>,
    /// Tài khoản vận hành của cổng (truc accounts); mật khẩu lấy từ TRUC_PASSWORD hoặc hỏi. /
    /// A portal operator account (truc accounts); password from TRUC_PASSWORD or asked.
    #[arg(long, value_name = "NAME", requires = "url")]
    user: Option<String>,
    /// Chứng thư gốc để tin máy chủ (PEM; trục phát triển: DATA/certs/ca.pem). / Root
    /// certificate to trust the server (PEM; development relay: DATA/certs/ca.pem).
    #[arg(long, value_name = "FILE", requires = "url")]
    ca: Option<PathBuf>,
    #[command(flatten)]
    offline: Offline,
}

#[derive(Debug, clap::Args)]
pub struct RedriveArgs {
    /// Mã đơn vị của hộp thư. / The mailbox's unit code.
    unit: String,
    #[command(flatten)]
    offline: Offline,
}

pub fn run(cmd: OpsCommand, lang: Lang) -> anyhow::Result<ExitCode> {
    match cmd {
        OpsCommand::Queues(args) => queues(args, lang),
        OpsCommand::Redrive(args) => redrive(args, lang),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn queues(args: QueuesArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    let overview = match (&args.url, &args.user, &args.ca) {
        (Some(url), Some(user), Some(ca)) => remote(url, user, ca, args.top, lang)?,
        _ => {
            let (broker, directory, _data) = open_offline(&args.offline, lang)?;
            runtime()?
                .block_on(relay::overview_offline(
                    &broker,
                    &directory,
                    SystemTime::now(),
                    args.top,
                ))
                .map_err(|e| anyhow::anyhow!("{} [{}]", lang.pick(&e.vi, &e.en), e.code))?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&overview)?);
    } else {
        print!("{}", render(&overview, lang));
    }
    Ok(if overview.broker_up {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn redrive(args: RedriveArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    let (broker, _directory, _data) = open_offline(&args.offline, lang)?;
    let relay_err = |e: broker::BrokerError| {
        anyhow::anyhow!(
            "{} [{}]",
            lang.pick(&e.message_vi(), &e.message_en()),
            e.code()
        )
    };
    let n = runtime()?
        .block_on(broker::Broker::redrive(&broker, &args.unit))
        .map_err(relay_err)?;
    match lang {
        Lang::Vi => println!(
            "Đã đưa {n} thư bị gác lại về hộp thư {}; đơn vị sẽ nhận lại khi trục chạy.",
            args.unit
        ),
        Lang::En => println!(
            "Moved {n} dead letter(s) back to mailbox {}; the unit gets them again once the relay runs.",
            args.unit
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The password: `TRUC_PASSWORD`, else asked on the terminal without echo, else one line of
/// standard input (scripts).
fn password(user: &str, lang: Lang) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("TRUC_PASSWORD") {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("{} {user}: ", lang.pick("Mật khẩu của", "Password for"));
        std::io::stderr().flush()?;
        // No echo while typing; put it back whatever happens.
        let _ = std::process::Command::new("stty").arg("-echo").status();
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if terminal {
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
    }
    read?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        anyhow::bail!(
            "{}",
            lang.pick(
                "chưa có mật khẩu: đặt TRUC_PASSWORD hoặc nhập khi được hỏi.",
                "no password: set TRUC_PASSWORD or type it when asked."
            )
        );
    }
    Ok(p)
}

fn remote(url: &str, user: &str, ca: &Path, top: usize, lang: Lang) -> anyhow::Result<Overview> {
    let ca_pem = std::fs::read(ca).map_err(|e| {
        anyhow::anyhow!(
            "{} {}: {e}",
            lang.pick(
                "không đọc được chứng thư gốc",
                "cannot read the root certificate"
            ),
            ca.display()
        )
    })?;
    let password = password(user, lang)?;
    let client = truc_client::Client::anonymous(url, &ca_pem)
        .map(|c| c.english(lang == Lang::En))
        .map_err(|e| client_err(&e, url, lang))?;
    runtime()?
        .block_on(client.ops_queues::<Overview>(top, user, &password))
        .map_err(|e| client_err(&e, url, lang))
}

fn client_err(e: &truc_client::ClientError, url: &str, lang: Lang) -> anyhow::Error {
    let hint = match e.status() {
        Some(401) => lang.pick(
            "Sai tài khoản hoặc mật khẩu (tài khoản tạo bằng truc accounts add).",
            "Wrong account or password (accounts are made with truc accounts add).",
        ),
        Some(403) => lang.pick(
            "Tài khoản này không phải tài khoản vận hành (operator).",
            "This account is not an operator account.",
        ),
        Some(404) => lang.pick(
            "Trục này không phục vụ /portal/ops/queues: hãy kiểm tra --url (cổng HTTPS của truc serve) và phiên bản trục.",
            "This relay does not serve /portal/ops/queues: check --url (truc serve's HTTPS port) and the relay's version.",
        ),
        _ => "",
    };
    anyhow::anyhow!(
        "{url}: {} [{}] {hint}",
        lang.pick(&e.message_vi(), &e.message_en()),
        e.code()
    )
}

/// The configuration as `truc serve` would read it (file or defaults, `--data` overriding).
fn load_config(offline: &Offline, lang: Lang) -> anyhow::Result<Config> {
    let file = match &offline.config {
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from(config::DEFAULT_FILE)).filter(|p| p.is_file()),
    };
    let mut config = match &file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!(
                    "{} {}: {e}",
                    lang.pick(
                        "không đọc được tệp cấu hình",
                        "cannot read the configuration file"
                    ),
                    path.display()
                )
            })?;
            let (mut config, problems) = config::load(&text);
            if !problems.is_empty() {
                let lines: Vec<String> =
                    problems.iter().map(|p| p.line(lang == Lang::En)).collect();
                anyhow::bail!("{}:\n{}", path.display(), lines.join("\n"));
            }
            config.resolve_paths(path.parent().unwrap_or(Path::new("")));
            config
        }
        None => Config::default(),
    };
    if let Some(data) = &offline.data {
        config.data_dir = data.clone();
    }
    Ok(config)
}

/// Opens the stopped relay's broker and directory. With `[broker] kind = "amqp"` the mailboxes
/// are in RabbitMQ, which only the running relay lists completely: the command says to use
/// `--url` (or `rabbitmqctl`) instead.
fn open_offline(offline: &Offline, lang: Lang) -> anyhow::Result<(AnyBroker, Directory, PathBuf)> {
    let config = load_config(offline, lang)?;
    let data = config.data_dir.clone();
    if config.broker.kind == BrokerKind::Amqp {
        anyhow::bail!(
            "{} [ops_offline_amqp]",
            lang.pick(
                "trục này dùng RabbitMQ ([broker] kind = \"amqp\"): hộp thư nằm trong RabbitMQ, không trong thư mục dữ liệu. Hãy hỏi trục đang chạy: truc ops queues --url https://MÁY:CỔNG --user TÀI_KHOẢN_VẬN_HÀNH --ca CA.pem, hoặc xem trực tiếp: rabbitmqctl list_queues name messages_ready messages_unacknowledged.",
                "this relay uses RabbitMQ ([broker] kind = \"amqp\"): the mailboxes live in RabbitMQ, not in the data directory. Ask the running relay: truc ops queues --url https://HOST:PORT --user OPERATOR --ca CA.pem, or look directly: rabbitmqctl list_queues name messages_ready messages_unacknowledged."
            )
        );
    }
    if !data.join("db").exists() {
        anyhow::bail!(
            "{} [store_missing]",
            lang.pick(
                &format!(
                    "không có kho dữ liệu của trục tại {} (chưa có thư mục db/). Hãy chỉ đúng thư mục dữ liệu bằng --data (hoặc TRUC_DATA, hoặc data_dir trong --config).",
                    data.display()
                ),
                &format!(
                    "there is no relay store at {} (no db/ folder). Point --data (or TRUC_DATA, or data_dir in --config) at the relay's data directory.",
                    data.display()
                ),
            )
        );
    }
    let store = Store::open(&data).map_err(|e| {
        if crate::track_cmd::is_locked(&e) {
            anyhow::anyhow!(
                "{} [store_locked]",
                lang.pick(
                    &format!(
                        "thư mục dữ liệu {} đang bị khóa: trục (truc serve) đang chạy trên nó. Khi trục chạy, hãy hỏi chính trục: truc ops queues --url https://MÁY:CỔNG --user TÀI_KHOẢN_VẬN_HÀNH --ca CA.pem (hoặc mở trang /portal/ops); hoặc dừng trục rồi chạy lại lệnh này.",
                        data.display()
                    ),
                    &format!(
                        "the data directory {} is locked: the relay (truc serve) is running on it. While it runs, ask the relay itself: truc ops queues --url https://HOST:PORT --user OPERATOR --ca CA.pem (or open the /portal/ops page); or stop the relay and run this again.",
                        data.display()
                    ),
                )
            )
        } else {
            store_err(&e, &data, lang)
        }
    })?;
    let directory = Directory::open(&store).map_err(|e| {
        anyhow::anyhow!(
            "{} [{}]",
            lang.pick(&e.message_vi(), &e.message_en()),
            e.code()
        )
    })?;
    let broker = EmbeddedBroker::open(
        store,
        EmbeddedConfig {
            lease: Duration::from_secs(config.relay.lease_seconds),
            clock: Arc::new(SystemClock),
        },
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "{} [{}]",
            lang.pick(&e.message_vi(), &e.message_en()),
            e.code()
        )
    })?;
    Ok((AnyBroker::Embedded(broker), directory, data))
}

/// A waiting time, readably: `45 giây`, `12 phút`, `3 giờ 12 phút`, `2 ngày 3 giờ`.
pub fn age(secs: u64, lang: Lang) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let (ud, uh, um, us) = match lang {
        Lang::Vi => ("ngày", "giờ", "phút", "giây"),
        Lang::En => ("d", "h", "min", "s"),
    };
    if d > 0 {
        format!("{d} {ud} {h} {uh}")
    } else if h > 0 {
        format!("{h} {uh} {m} {um}")
    } else if m > 0 {
        format!("{m} {um}")
    } else {
        format!("{s} {us}")
    }
}

/// Left-aligns `s` in `width` characters (not bytes: Vietnamese letters are one column each).
fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n > width {
        let mut cut: String = s.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        format!("{s}{}", " ".repeat(width - n))
    }
}

fn rpad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{}{s}", " ".repeat(width.saturating_sub(n)))
}

/// " why [code]" in the user's language, or nothing.
fn reason(e: Option<&OpsMessage>, lang: Lang) -> String {
    e.map(|e| format!(" {} [{}]", lang.pick(&e.vi, &e.en), e.code))
        .unwrap_or_default()
}

/// The table as printed.
pub fn render(o: &Overview, lang: Lang) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let backend = match o.backend.as_str() {
        "amqp" => "RabbitMQ (amqp)",
        _ => lang.pick("nhúng (embedded)", "embedded"),
    };
    let _ = writeln!(
        out,
        "{} {backend} · {} {}",
        lang.pick("Hàng đợi:", "Broker:"),
        lang.pick("lúc", "at"),
        o.generated_at
    );
    if !o.broker_up {
        let why = reason(o.broker_error.as_ref(), lang);
        let _ = writeln!(
            out,
            "!! {}{why}",
            lang.pick("HÀNG ĐỢI KHÔNG TRẢ LỜI:", "BROKER DOWN:")
        );
    }
    if !o.stats_fresh {
        let why = reason(o.stats_error.as_ref(), lang);
        let when = match (&o.stats_at, o.stats_age_s) {
            (Some(at), Some(a)) => format!(
                "{} {at} ({} {})",
                lang.pick("Số liệu hộp thư đọc lúc", "Mailbox figures read at"),
                age(a, lang),
                lang.pick("trước", "ago")
            ),
            _ => lang
                .pick("Chưa có số liệu hộp thư.", "No mailbox figures yet.")
                .to_owned(),
        };
        let _ = writeln!(out, "!! {when}{why}");
    }
    let t = &o.totals;
    let _ = writeln!(
        out,
        "{}",
        match lang {
            Lang::Vi => format!(
                "Tổng: {} hộp thư có thư, {} chờ nhận, {} đang giao, {} bị gác lại; chờ lâu nhất {}.",
                t.mailboxes,
                t.ready,
                t.in_flight,
                t.dead_lettered,
                t.oldest_ready_age_s
                    .map_or("—".to_owned(), |a| age(a, lang))
            ),
            Lang::En => format!(
                "Total: {} mailbox(es) holding mail, {} ready, {} in flight, {} dead-lettered; longest wait {}.",
                t.mailboxes,
                t.ready,
                t.in_flight,
                t.dead_lettered,
                t.oldest_ready_age_s
                    .map_or("—".to_owned(), |a| age(a, lang))
            ),
        }
    );
    let _ = writeln!(out);
    let head = [
        lang.pick("Đơn vị", "Unit"),
        lang.pick("Tên", "Name"),
        lang.pick("Chờ nhận", "Ready"),
        lang.pick("Đang giao", "In flight"),
        lang.pick("Gác lại", "Dead"),
        lang.pick("Chờ lâu nhất", "Oldest waiting"),
    ];
    let _ = writeln!(
        out,
        "{} {} {} {} {} {}",
        pad(head[0], 14),
        pad(head[1], 34),
        rpad(head[2], 9),
        rpad(head[3], 9),
        rpad(head[4], 8),
        rpad(head[5], 16)
    );
    if o.mailboxes.is_empty() {
        let _ = writeln!(
            out,
            "  {}",
            lang.pick("(không hộp thư nào có thư)", "(no mailbox holds anything)")
        );
    }
    for m in &o.mailboxes {
        let _ = writeln!(
            out,
            "{} {} {} {} {} {}",
            pad(&m.unit, 14),
            pad(m.name.as_deref().unwrap_or("?"), 34),
            rpad(&m.ready.to_string(), 9),
            rpad(&m.in_flight.to_string(), 9),
            rpad(&m.dead_lettered.to_string(), 8),
            rpad(
                &m.oldest_ready_age_s
                    .map_or("—".to_owned(), |a| age(a, lang)),
                16
            )
        );
    }
    if o.mailboxes_shown < o.mailboxes_total {
        let _ = writeln!(
            out,
            "  {}",
            match lang {
                Lang::Vi => format!(
                    "… còn {} hộp thư nữa (--top 0 để xem tất cả)",
                    o.mailboxes_total - o.mailboxes_shown
                ),
                Lang::En => format!(
                    "… {} more mailbox(es) (--top 0 shows all)",
                    o.mailboxes_total - o.mailboxes_shown
                ),
            }
        );
    }
    if o.dead_letters_total > 0 {
        let _ = writeln!(
            out,
            "\n{} ({}):",
            lang.pick("Thư bị gác lại", "Dead letters"),
            o.dead_letters_total
        );
        for d in &o.dead_letters {
            let _ = writeln!(
                out,
                "  {}  {}  {} {}  {} {}  ({} {}): {}",
                d.at,
                d.unit,
                lang.pick("gói", "package"),
                d.id,
                lang.pick("từ", "from"),
                d.from,
                lang.pick("lần giao", "deliveries"),
                d.delivery_count,
                d.reason
            );
        }
        let _ = writeln!(
            out,
            "  {}",
            lang.pick(
                "Đưa lại: nút trên trang /portal/ops, hoặc truc ops redrive MÃ_ĐƠN_VỊ khi trục đã dừng.",
                "Re-drive: the button on /portal/ops, or truc ops redrive UNIT_CODE with the relay stopped."
            )
        );
    }
    let _ = writeln!(out);
    if o.live {
        let r = &o.rates;
        let last = r.minutes.last();
        let _ = writeln!(
            out,
            "{}",
            match lang {
                Lang::Vi => format!(
                    "60 phút qua: tiếp nhận {}, đã giao {}, từ chối {} (phút này: {}/{}/{}).",
                    r.accepted,
                    r.delivered,
                    r.rejected,
                    last.map_or(0, |m| m.accepted),
                    last.map_or(0, |m| m.delivered),
                    last.map_or(0, |m| m.rejected)
                ),
                Lang::En => format!(
                    "Last 60 minutes: accepted {}, delivered {}, rejected {} (this minute: {}/{}/{}).",
                    r.accepted,
                    r.delivered,
                    r.rejected,
                    last.map_or(0, |m| m.accepted),
                    last.map_or(0, |m| m.delivered),
                    last.map_or(0, |m| m.rejected)
                ),
            }
        );
        let s = &o.signature_failures;
        let _ = writeln!(
            out,
            "{}",
            match lang {
                Lang::Vi => format!(
                    "Lỗi chữ ký: {} trong 60 phút qua, {} từ khi trục chạy.",
                    s.last_hour, s.total
                ),
                Lang::En => format!(
                    "Signature failures: {} in the last 60 minutes, {} since the relay started.",
                    s.last_hour, s.total
                ),
            }
        );
    } else {
        let _ = writeln!(
            out,
            "{}",
            lang.pick(
                "Đọc từ thư mục dữ liệu (trục đã dừng): không có tốc độ và lỗi chữ ký (chỉ trục đang chạy mới biết).",
                "Read from the data directory (relay stopped): no rates or signature failures (only the running relay knows them)."
            )
        );
    }
    out
}
