//! `truc track ID` (a package's per-recipient timeline) and `truc track rebuild` (fold the event
//! log into fresh tracking views): glue over `relay`'s tracking. Opening the store, the language of
//! the labels and printing live here; what a state means lives in `relay`.
//!
//! Both open the store directly, so they run while the relay is stopped. While `truc serve` holds
//! the store, `truc track ID --url …` asks the relay over HTTPS instead (with the sender's
//! certificate), through the `truc-client` crate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use directory::Directory;
use relay::{RelayError, Tracking, TrackingBook};
use store::{Store, StoreError};

use crate::lang::Lang;

/// `truc track …`
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TrackArgs {
    /// Mã gói tin do trục cấp khi nhận (trường `id` trong câu trả lời gửi), không phải
    /// DocumentId. / The package's relay id (the `id` of the submit answer), not the DocumentId.
    #[arg(required = true)]
    id: Option<String>,

    /// Thư mục dữ liệu của trục. / The relay's data directory.
    #[arg(long, global = true, env = "TRUC_DATA", default_value = "./data")]
    data: PathBuf,

    /// In dạng JSON. / Print as JSON.
    #[arg(long)]
    json: bool,

    /// Hỏi trục đang chạy qua HTTPS thay vì mở kho (cần --cert, --key, --ca). / Ask a running
    /// relay over HTTPS instead of opening the store (needs --cert, --key, --ca).
    #[arg(long, value_name = "URL", requires_all = ["cert", "key", "ca"])]
    url: Option<String>,
    /// Chứng thư của đơn vị gửi (PEM), với --url. / The sending unit's certificate (PEM), with --url.
    #[arg(long, value_name = "FILE", requires = "url")]
    cert: Option<PathBuf>,
    /// Khóa bí mật của đơn vị gửi (PEM), với --url. / The sending unit's private key (PEM), with --url.
    #[arg(long, value_name = "FILE", requires = "url")]
    key: Option<PathBuf>,
    /// Chứng thư gốc để tin máy chủ (PEM), với --url. / Root certificate to trust the server (PEM),
    /// with --url.
    #[arg(long, value_name = "FILE", requires = "url")]
    ca: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<TrackCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum TrackCommand {
    /// Dựng lại mọi bảng theo dõi từ nhật ký sự kiện (khi trục đã dừng). / Rebuild every tracking
    /// view from the event log (with the relay stopped).
    Rebuild,
}

pub fn run(args: TrackArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    match (&args.command, &args.id) {
        (Some(TrackCommand::Rebuild), _) => rebuild(&args.data, lang),
        (None, Some(id)) => match &args.url {
            Some(url) => remote(&args, url, id, lang),
            None => local(&args.data, id, args.json, lang),
        },
        (None, None) => Err(anyhow::anyhow!(
            "{}",
            lang.pick(
                "thiếu mã gói tin: truc track ID, hoặc truc track rebuild",
                "missing package id: truc track ID, or truc track rebuild"
            )
        )),
    }
}

fn local(data: &Path, id: &str, json: bool, lang: Lang) -> anyhow::Result<ExitCode> {
    let relay = open(data, lang)?;
    match relay.tracking(id) {
        Ok(t) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                print!("{}", render(&t, &|code| unit_name(&relay, code), lang));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.code == "not_found" => {
            eprintln!(
                "{}: {}",
                lang.pick("lỗi", "error"),
                lang.pick(
                    &format!(
                        "không có gói tin mã \"{id}\" trong kho {}. Mã gói tin là trường `id` trục trả về khi nhận gói (không phải DocumentId); hãy kiểm tra mã và --data.",
                        data.display()
                    ),
                    &format!(
                        "no package with id \"{id}\" in the store at {}. The package id is the `id` the relay answered on submission (not the DocumentId); check the id and --data.",
                        data.display()
                    ),
                )
            );
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(relay_err(&e, lang)),
    }
}

fn unit_name(relay: &TrackingBook, code: &str) -> Option<String> {
    relay
        .directory()
        .resolve(code)
        .ok()
        .flatten()
        .map(|u| u.name)
}

fn rebuild(data: &Path, lang: Lang) -> anyhow::Result<ExitCode> {
    let relay = open(data, lang)?;
    let started = Instant::now();
    // A spinner on stderr (drawn only on a terminal) and, always, one line saying what runs.
    eprintln!(
        "{}",
        lang.pick(
            "Đang dựng lại các bảng theo dõi từ nhật ký sự kiện…",
            "Rebuilding the tracking views from the event log…"
        )
    );
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    let result = relay.rebuild();
    spinner.finish_and_clear();
    let events = result.map_err(|e| relay_err(&e, lang))?;
    block_on(relay.flush())?.map_err(|e| relay_err(&e, lang))?;
    let secs = started.elapsed().as_secs_f64();
    match lang {
        Lang::Vi => println!("Đã gộp {events} sự kiện vào các bảng theo dõi ({secs:.2} giây)."),
        Lang::En => println!("Folded {events} event(s) into the tracking views ({secs:.2} s)."),
    }
    Ok(ExitCode::SUCCESS)
}

fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f))
}

fn relay_err(e: &RelayError, lang: Lang) -> anyhow::Error {
    anyhow::anyhow!("{} [{}]", lang.pick(&e.vi, &e.en), e.code)
}

/// Opens the tracking views of the store in `data` (no broker, no keys, no network).
fn open(data: &Path, lang: Lang) -> anyhow::Result<TrackingBook> {
    if !data.join("db").exists() {
        anyhow::bail!(
            "{}",
            lang.pick(
                &format!(
                    "không có kho dữ liệu của trục tại {} (chưa có thư mục db/). Hãy chỉ đúng thư mục dữ liệu bằng --data (hoặc TRUC_DATA), là data_dir trong tệp cấu hình của truc serve.",
                    data.display()
                ),
                &format!(
                    "there is no relay store at {} (no db/ folder). Point --data (or TRUC_DATA) at the relay's data directory, the data_dir of truc serve's configuration.",
                    data.display()
                ),
            )
        );
    }
    let store = Store::open(data).map_err(|e| store_err(&e, data, lang))?;
    let directory = Directory::open(&store).map_err(|e| {
        anyhow::anyhow!(
            "{} [{}]",
            lang.pick(&e.message_vi(), &e.message_en()),
            e.code()
        )
    })?;
    TrackingBook::open(store, directory).map_err(|e| relay_err(&e, lang))
}

/// The store error, with the case an operator meets most (the relay is running) spelt out.
pub fn store_err(e: &StoreError, data: &Path, lang: Lang) -> anyhow::Error {
    if is_locked(e) {
        return anyhow::anyhow!(
            "{} [store_locked]",
            lang.pick(
                &format!(
                    "kho dữ liệu {} đang được một tiến trình khác dùng (thường là truc serve đang chạy). Hãy dừng trục rồi chạy lại lệnh, hoặc hỏi trục đang chạy: truc track ID --url https://MÁY:CỔNG --cert CHỨNG_THƯ_ĐƠN_VỊ_GỬI --key KHÓA --ca CA.pem (GET /v1/packages/ID).",
                    data.display()
                ),
                &format!(
                    "the store {} is in use by another process (usually a running truc serve). Stop the relay and run the command again, or ask the running relay: truc track ID --url https://HOST:PORT --cert SENDER_CERT --key KEY --ca CA.pem (GET /v1/packages/ID).",
                    data.display()
                ),
            )
        );
    }
    anyhow::anyhow!(
        "{} [{}]",
        lang.pick(&e.message_vi(), &e.message_en()),
        e.code()
    )
}

/// sled reports a held lock only as text.
pub fn is_locked(e: &StoreError) -> bool {
    matches!(e, StoreError::DbOpen { detail, .. } if detail.contains("could not acquire lock"))
}

/// The label of a tracking state (`queued`, `delivered`, `arrived`, …) in the chosen language.
pub fn state_label(state: &str, lang: Lang) -> String {
    let (vi, en) = match state {
        "queued" => ("chờ nhận", "waiting in the mailbox"),
        "delivered" => ("đã chuyển đến đơn vị", "delivered to the unit"),
        "arrived" => ("đã đến (01)", "arrived (01)"),
        "rejected" => ("bị từ chối / trả lại (02)", "rejected / returned (02)"),
        "registered" => ("đã tiếp nhận, vào sổ (03)", "accepted, registered (03)"),
        "assigned" => ("đã phân công (04)", "assigned (04)"),
        "processing" => ("đang xử lý (05)", "processing (05)"),
        "completed" => ("đã hoàn thành (06)", "completed (06)"),
        "withdrawal_requested" => (
            "bên gửi đề nghị thu hồi (13)",
            "sender asks to withdraw (13)",
        ),
        "withdrawn" => (
            "đồng ý thu hồi / cập nhật (15)",
            "agrees to withdraw / update (15)",
        ),
        "withdrawal_refused" => ("từ chối thu hồi (16)", "refuses the withdrawal (16)"),
        other => return other.to_owned(),
    };
    lang.pick(vi, en).to_owned()
}

/// The readable timeline: a header, then per recipient its state and every step.
pub fn render(t: &Tracking, name_of: &dyn Fn(&str) -> Option<String>, lang: Lang) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let named = |code: &str| match name_of(code) {
        Some(n) => format!("{code} ({n})"),
        None => code.to_owned(),
    };
    let kind = match t.kind {
        broker::MessageKind::Package => lang.pick("văn bản", "document"),
        broker::MessageKind::Status => lang.pick("gói trạng thái", "status package"),
    };
    let rows: [(&str, &str, Option<String>); 6] = [
        (
            "Số hiệu (DocumentId)",
            "DocumentId",
            Some(t.document_id.clone()),
        ),
        ("Số, ký hiệu", "Number/notation", t.code.clone()),
        ("Trích yếu", "Subject", Some(t.subject.clone())),
        ("Đơn vị gửi", "From", Some(named(&t.from))),
        (
            "Trục tiếp nhận lúc",
            "Accepted at",
            Some(t.accepted_at.clone()),
        ),
        ("Mã trạng thái", "Status code", t.status_code.clone()),
    ];
    let _ = writeln!(s, "{} {} ({kind})", lang.pick("Gói tin", "Package"), t.id);
    for (vi, en, value) in rows {
        if let Some(v) = value {
            let label = lang.pick(vi, en);
            let _ = writeln!(s, "  {label:<22} {v}");
        }
    }
    if let Some(about) = &t.about {
        let _ = writeln!(
            s,
            "  {:<22} {about}",
            lang.pick("Trả lời cho gói", "About package")
        );
    }
    let _ = writeln!(
        s,
        "\n{} ({}):",
        lang.pick("Nơi nhận", "Recipients"),
        t.recipients.len()
    );
    for r in &t.recipients {
        let _ = writeln!(s, "  {}  — {}", named(&r.unit), state_label(&r.state, lang));
        for e in &r.events {
            let mut line = format!("    {}  {}", e.at, state_label(&e.state, lang));
            if let Some(d) = e.description.as_deref().filter(|d| !d.is_empty()) {
                line.push_str(&format!(": {d}"));
            }
            let _ = writeln!(s, "{line}");
        }
    }
    s
}

fn remote(args: &TrackArgs, url: &str, id: &str, lang: Lang) -> anyhow::Result<ExitCode> {
    // clap guarantees the three with --url.
    let (Some(cert), Some(key), Some(ca)) = (&args.cert, &args.key, &args.ca) else {
        anyhow::bail!("--url needs --cert, --key and --ca");
    };
    let identity = truc_client::Identity {
        cert_pem: read(cert, lang)?,
        key_pem: read(key, lang)?,
    };
    let client_err = |e: truc_client::ClientError| {
        anyhow::anyhow!(
            "{} [{}]",
            lang.pick(&e.message_vi(), &e.message_en()),
            e.code()
        )
    };
    let client = truc_client::Client::new(url, &identity, &read(ca, lang)?)
        .map_err(client_err)?
        .english(lang == Lang::En);
    match block_on(client.tracking(id))? {
        Ok(t) => {
            let t = from_client(t);
            if args.json {
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                print!("{}", render(&t, &|_| None, lang));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.status() == Some(404) => {
            eprintln!(
                "{}: {}",
                lang.pick("lỗi", "error"),
                lang.pick(
                    &format!(
                        "trục {url} không có gói tin mã \"{id}\" mà đơn vị của chứng thư này gửi hoặc nhận. Mã gói tin là trường `id` trục trả về khi nhận gói (không phải DocumentId); chỉ đơn vị gửi thấy mọi nơi nhận."
                    ),
                    &format!(
                        "the relay at {url} has no package \"{id}\" sent or received by this certificate's unit. The package id is the `id` the relay answered on submission (not the DocumentId); only the sender sees every recipient."
                    ),
                )
            );
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(client_err(e)),
    }
}

/// The client's mirror of the tracking answer, as the relay's type (one renderer for both).
fn from_client(t: truc_client::Tracking) -> Tracking {
    Tracking {
        id: t.id,
        kind: if t.kind == "status" {
            broker::MessageKind::Status
        } else {
            broker::MessageKind::Package
        },
        document_id: t.document_id,
        code: t.code,
        from: t.from,
        subject: t.subject,
        accepted_at: t.accepted_at,
        status_code: t.status_code,
        about: t.about,
        recipients: t
            .recipients
            .into_iter()
            .map(|r| relay::RecipientTrack {
                unit: r.unit,
                state: r.state,
                delivered: r.delivered,
                events: r
                    .events
                    .into_iter()
                    .map(|e| relay::TrackEvent {
                        at: e.at,
                        state: e.state,
                        status_code: e.status_code,
                        description: e.description,
                    })
                    .collect(),
            })
            .collect(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn step(
        at: &str,
        state: &str,
        code: Option<&str>,
        description: Option<&str>,
    ) -> relay::TrackEvent {
        relay::TrackEvent {
            at: at.into(),
            state: state.into(),
            status_code: code.map(Into::into),
            description: description.map(Into::into),
        }
    }

    fn tracking() -> Tracking {
        Tracking {
            id: "p1".into(),
            kind: broker::MessageKind::Package,
            document_id: "000.00.00.G22,2024/05/02,12/VPCP-TH".into(),
            code: Some("12/VPCP-TH".into()),
            from: "000.00.00.G22".into(),
            subject: "Về việc thử nghiệm".into(),
            accepted_at: "2024-05-02T01:00:00.000Z".into(),
            status_code: None,
            about: None,
            recipients: vec![
                relay::RecipientTrack {
                    unit: "000.00.00.H41".into(),
                    state: "rejected".into(),
                    delivered: true,
                    events: vec![
                        step("2024-05-02T01:00:00.000Z", "queued", None, None),
                        step("2024-05-02T01:00:05.000Z", "delivered", None, None),
                        step(
                            "2024-05-02T02:00:00.000Z",
                            "rejected",
                            Some("02"),
                            Some("Gửi nhầm nơi nhận"),
                        ),
                    ],
                },
                relay::RecipientTrack {
                    unit: "000.00.00.H42".into(),
                    state: "queued".into(),
                    delivered: false,
                    events: vec![step("2024-05-02T01:00:00.000Z", "queued", None, None)],
                },
            ],
        }
    }

    #[test]
    fn the_timeline_shows_header_each_recipient_and_each_step_with_code_and_reason() {
        let names =
            |code: &str| (code == "000.00.00.H41").then(|| "UBND tỉnh Khánh Hòa".to_owned());
        let vi = render(&tracking(), &names, Lang::Vi);
        let lines: Vec<&str> = vi.lines().collect();
        assert_eq!(lines[0], "Gói tin p1 (văn bản)");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("  Số, ký hiệu ") && l.ends_with(" 12/VPCP-TH")),
            "{vi}"
        );
        assert!(vi.contains("Nơi nhận (2):"), "{vi}");
        assert!(
            vi.contains("  000.00.00.H41 (UBND tỉnh Khánh Hòa)  — bị từ chối / trả lại (02)\n"),
            "{vi}"
        );
        assert!(
            vi.contains(
                "    2024-05-02T02:00:00.000Z  bị từ chối / trả lại (02): Gửi nhầm nơi nhận\n"
            ),
            "{vi}"
        );
        assert!(vi.contains("  000.00.00.H42  — chờ nhận\n"), "{vi}");

        let en = render(&tracking(), &|_| None, Lang::En);
        assert!(en.contains("Number/notation"), "{en}");
        assert!(
            en.contains("    2024-05-02T01:00:05.000Z  delivered to the unit\n"),
            "{en}"
        );
        assert!(
            en.contains("rejected / returned (02): Gửi nhầm nơi nhận"),
            "{en}"
        );
    }

    #[test]
    fn every_state_the_relay_names_has_a_label_in_both_languages() {
        // The states relay's tracking gives status codes (relay::tracking::state_of_status).
        for (code, state) in [
            ("01", "arrived"),
            ("02", "rejected"),
            ("03", "registered"),
            ("04", "assigned"),
            ("05", "processing"),
            ("06", "completed"),
            ("13", "withdrawal_requested"),
            ("15", "withdrawn"),
            ("16", "withdrawal_refused"),
        ] {
            for lang in [Lang::Vi, Lang::En] {
                let label = state_label(state, lang);
                assert_ne!(label, state, "{code} has no {lang:?} label");
                assert!(label.contains(code), "{label} names the code {code}");
            }
        }
        assert_eq!(state_label("status_99", Lang::Vi), "status_99");
    }
}
