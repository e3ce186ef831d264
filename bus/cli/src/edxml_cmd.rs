//! `truc edxml …`: glue over the `edxml` crate — read files, call the reader or the writer, print.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use edxml::{
    Attachment, Business, BusinessDocType, Code, Date, Document, Finding, Lenient, Limits,
    Organization, Package, PromulgationInfo, Reference, ResponseFor, Severity, Status, StatusCode,
    Timestamp, TraceHeader, TraceHeaderList, UnitCode,
};

use crate::lang::Lang;

/// `truc edxml …`
#[derive(Debug, clap::Subcommand)]
pub enum EdxmlCommand {
    /// Kiểm tra gói tin; in từng phát hiện dạng `tệp:dòng:cột: mức: nội dung`. / Check packages; print each finding as
    /// `file:line:col: level: message`. Exit 0 when every file is usable, 1 otherwise.
    Validate {
        /// Các tệp .edxml cần kiểm tra. / The .edxml files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// In kết quả dạng JSON (mỗi tệp một đối tượng). / Print JSON (one object per file).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// In dạng chuẩn của gói tin ra stdout. / Print the canonical form of a package to stdout.
    Fmt {
        file: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Tóm tắt gói tin: loại, mã văn bản, nơi gửi, nơi nhận, trích yếu, đính kèm, vết chuyển. / Summarise a package.
    Show {
        file: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Tạo gói tin văn bản mới ra stdout. / Make a new document package on stdout.
    New {
        /// Mã định danh đơn vị gửi. / Sender unit code.
        #[arg(long)]
        from: String,
        /// Mã đơn vị nhận, phân cách bằng dấu phẩy. / Recipient unit codes, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        to: Vec<String>,
        /// Trích yếu. / Subject.
        #[arg(long)]
        subject: String,
        /// Tệp đính kèm (lặp lại được). / File to attach (repeatable).
        #[arg(long = "attach")]
        attach: Vec<PathBuf>,
        /// Số/ký hiệu, ví dụ 7816/VPCP-TTĐT. / Number/notation, e.g. 7816/VPCP-TTĐT.
        #[arg(long)]
        code: Option<String>,
        /// Ngày ban hành YYYY/MM/DD (mặc định: hôm nay, giờ Việt Nam). / Promulgation date (default: today, Vietnam time).
        #[arg(long)]
        date: Option<String>,
    },
    /// Tạo gói tin trạng thái trả lời một văn bản. / Make a status package answering a document.
    Status {
        /// Mã đơn vị báo trạng thái. / Code of the unit reporting the status.
        #[arg(long)]
        from: String,
        /// Tệp gói tin văn bản được trả lời. / The document package being answered.
        #[arg(long = "for")]
        for_file: PathBuf,
        /// Mã trạng thái: 01 02 03 04 05 06 13 15 16. / Status code.
        #[arg(long)]
        code: String,
        /// Mô tả (bắt buộc về nội dung với 02: lý do từ chối). / Description (for 02: the reason).
        #[arg(long)]
        description: Option<String>,
    },
}

/// Reader limits a user can set on the command line.
#[derive(Debug, clap::Args)]
pub struct LimitArgs {
    /// Kích thước tối đa của gói tin (byte). / Largest package accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_bytes)]
    max_bytes: usize,
    /// Độ sâu lồng nhau tối đa. / Deepest element nesting accepted.
    #[arg(long, default_value_t = Limits::default().max_depth)]
    max_depth: usize,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_bytes: self.max_bytes,
            max_depth: self.max_depth,
        }
    }
}

pub fn run(cmd: EdxmlCommand, lang: Lang) -> anyhow::Result<ExitCode> {
    match cmd {
        EdxmlCommand::Validate {
            files,
            json,
            limits,
        } => validate(&files, json, &limits.limits(), lang),
        EdxmlCommand::Fmt { file, limits } => fmt(&file, &limits.limits(), lang),
        EdxmlCommand::Show { file, limits } => show(&file, &limits.limits(), lang),
        EdxmlCommand::New {
            from,
            to,
            subject,
            attach,
            code,
            date,
        } => new_document(
            &from,
            &to,
            &subject,
            &attach,
            code.as_deref(),
            date.as_deref(),
            lang,
        ),
        EdxmlCommand::Status {
            from,
            for_file,
            code,
            description,
        } => new_status(&from, &for_file, &code, description, lang),
    }
}

fn read_file(path: &Path, lang: Lang) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| {
        format!(
            "{} {}",
            lang.pick("không đọc được tệp", "cannot read file"),
            path.display()
        )
    })
}

fn message(f: &Finding, lang: Lang) -> &str {
    lang.pick(&f.message.vi, &f.message.en)
}

fn severity_word(s: Severity) -> &'static str {
    // The level keyword stays English in every language, like the code: editors and scripts match on it.
    match s {
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

fn print_findings(
    path: &Path,
    findings: &[Finding],
    lang: Lang,
    out: &mut impl Write,
) -> std::io::Result<()> {
    for f in findings {
        writeln!(
            out,
            "{}:{}:{}: {}: {} [{}]",
            path.display(),
            f.line,
            f.column,
            severity_word(f.severity),
            message(f, lang),
            f.code
        )?;
    }
    Ok(())
}

fn kind_word(p: &Package) -> &'static str {
    match p {
        Package::Document(_) => "document",
        Package::Status(_) => "status",
    }
}

fn validate(
    files: &[PathBuf],
    json: bool,
    limits: &Limits,
    lang: Lang,
) -> anyhow::Result<ExitCode> {
    let mut all_usable = true;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in files {
        let bytes = read_file(path, lang)?;
        let (usable, kind, findings) = match edxml::read(&bytes, limits) {
            Ok(parsed) => (true, Some(kind_word(&parsed.package)), parsed.findings),
            Err(rejected) => (false, None, rejected.findings),
        };
        all_usable &= usable;
        if json {
            let findings: Vec<_> = findings
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "severity": severity_word(f.severity),
                        "code": f.code,
                        "line": f.line,
                        "column": f.column,
                        "path": f.path,
                        "message_vi": f.message.vi,
                        "message_en": f.message.en,
                    })
                })
                .collect();
            let obj = serde_json::json!({
                "file": path.display().to_string(),
                "usable": usable,
                "kind": kind,
                "findings": findings,
            });
            writeln!(out, "{obj}")?;
        } else {
            print_findings(path, &findings, lang, &mut out)?;
            if usable && findings.is_empty() {
                writeln!(out, "{}: {}", path.display(), lang.pick("hợp lệ", "ok"))?;
            }
        }
    }
    Ok(if all_usable {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Reads a package or prints why it is unusable (on stderr) and returns `None`.
fn read_usable(path: &Path, limits: &Limits, lang: Lang) -> anyhow::Result<Option<edxml::Parsed>> {
    let bytes = read_file(path, lang)?;
    match edxml::read(&bytes, limits) {
        Ok(parsed) => Ok(Some(parsed)),
        Err(rejected) => {
            print_findings(
                path,
                &rejected.findings,
                lang,
                &mut std::io::stderr().lock(),
            )?;
            Ok(None)
        }
    }
}

fn fmt(path: &Path, limits: &Limits, lang: Lang) -> anyhow::Result<ExitCode> {
    let Some(parsed) = read_usable(path, limits, lang)? else {
        return Ok(ExitCode::from(1));
    };
    print_findings(path, &parsed.findings, lang, &mut std::io::stderr().lock())?;
    let stdout = std::io::stdout();
    edxml::write(&parsed.package, std::io::BufWriter::new(stdout.lock()))?;
    Ok(ExitCode::SUCCESS)
}

fn org_line(o: &Organization) -> String {
    match &o.organ_name {
        Some(name) => format!("{} {}", o.organ_id, name),
        None => o.organ_id.clone(),
    }
}

fn human_size(n: usize) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if f < KIB {
        format!("{n} B")
    } else if f < KIB * KIB {
        format!("{:.1} KiB", f / KIB)
    } else {
        format!("{:.1} MiB", f / KIB / KIB)
    }
}

fn show(path: &Path, limits: &Limits, lang: Lang) -> anyhow::Result<ExitCode> {
    let Some(parsed) = read_usable(path, limits, lang)? else {
        return Ok(ExitCode::from(1));
    };
    let l = |vi: &'static str, en: &'static str| lang.pick(vi, en);
    let mut out = String::new();
    use std::fmt::Write as _;
    match &parsed.package {
        Package::Document(d) => {
            writeln!(out, "{}: {}", l("Loại", "Kind"), l("văn bản", "document"))?;
            writeln!(
                out,
                "DocumentId: {}",
                d.document_id.as_deref().unwrap_or("-")
            )?;
            if let Some(code) = &d.code {
                writeln!(
                    out,
                    "{}: {}/{}",
                    l("Số/ký hiệu", "Number/notation"),
                    code.code_number.as_deref().unwrap_or("?"),
                    code.code_notation.as_deref().unwrap_or("?")
                )?;
            }
            if let Some(date) = d
                .promulgation_info
                .as_ref()
                .and_then(|p| p.promulgation_date.as_ref())
            {
                writeln!(out, "{}: {date}", l("Ngày ban hành", "Promulgated"))?;
            }
            writeln!(out, "{}: {}", l("Nơi gửi", "From"), org_line(&d.from))?;
            writeln!(out, "{} ({}):", l("Nơi nhận", "To"), d.to.len())?;
            for to in &d.to {
                writeln!(out, "  {}", org_line(to))?;
            }
            writeln!(
                out,
                "{}: {}",
                l("Trích yếu", "Subject"),
                d.subject.as_deref().unwrap_or("-")
            )?;
            if let Some(b) = d.trace.business.as_ref().and_then(|b| b.doc_type.as_ref()) {
                writeln!(
                    out,
                    "{}: {} {}",
                    l("Nghiệp vụ", "Business"),
                    b.code(),
                    lang.pick(b.label_vi(), b.label_en())
                )?;
            }
            writeln!(
                out,
                "{} ({}):",
                l("Tệp đính kèm", "Attachments"),
                d.attachments.len()
            )?;
            for a in &d.attachments {
                writeln!(
                    out,
                    "  cid:{}  {}  {}  {} ({} {})",
                    a.content_id,
                    a.name.as_deref().unwrap_or("-"),
                    a.content_type.as_deref().unwrap_or("-"),
                    human_size(a.size()),
                    a.size(),
                    l("byte", "bytes")
                )?;
            }
        }
        Package::Status(s) => {
            writeln!(out, "{}: {}", l("Loại", "Kind"), l("trạng thái", "status"))?;
            writeln!(
                out,
                "{}: {} {}",
                l("Mã trạng thái", "Status code"),
                s.status_code.code(),
                lang.pick(s.status_code.label_vi(), s.status_code.label_en())
            )?;
            writeln!(out, "{}: {}", l("Đơn vị báo", "From"), org_line(&s.from))?;
            writeln!(
                out,
                "{}: {} ({} {})",
                l("Trả lời văn bản", "Answers document"),
                s.response_for.document_id.as_deref().unwrap_or("-"),
                l("của", "from"),
                s.response_for.organ_id.as_deref().unwrap_or("-")
            )?;
            if let Some(d) = &s.description {
                writeln!(out, "{}: {d}", l("Mô tả", "Description"))?;
            }
            if let Some(t) = &s.timestamp {
                writeln!(out, "{}: {t}", l("Thời điểm", "Time"))?;
            }
        }
    }
    let trace = parsed.package.trace();
    writeln!(
        out,
        "{} ({}):",
        l("Vết chuyển", "Trace"),
        trace.trace_headers.len()
    )?;
    for hop in &trace.trace_headers {
        let at = hop
            .timestamp
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_else(|| "-".into());
        writeln!(out, "  {at}  {}", hop.organ_id)?;
    }
    if !parsed.findings.is_empty() {
        writeln!(
            out,
            "{} ({}):",
            l("Cảnh báo", "Warnings"),
            parsed.findings.len()
        )?;
    }
    print!("{out}");
    print_findings(path, &parsed.findings, lang, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

/// Now in Vietnam's official time (UTC+7), which is what dates on official documents mean.
fn now_vietnam() -> Timestamp {
    let offset = time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC);
    let now = time::OffsetDateTime::now_utc().to_offset(offset);
    Timestamp {
        date: Date {
            year: now.year() as u16,
            month: u8::from(now.month()),
            day: now.day(),
        },
        hour: now.hour(),
        minute: now.minute(),
        second: now.second(),
    }
}

fn unit_code(code: &str, what: &str, lang: Lang) -> anyhow::Result<String> {
    match UnitCode::parse(code) {
        Ok(c) => Ok(c.as_str().to_owned()),
        Err(e) => bail!("{what} {code:?}: {}", lang.pick(&e.vi, &e.en)),
    }
}

fn parse_date(text: &str, lang: Lang) -> anyhow::Result<Date> {
    let parts: Vec<&str> = text.split('/').collect();
    let parsed = match parts.as_slice() {
        [y, m, d] if y.len() == 4 => match (y.parse(), m.parse(), d.parse()) {
            (Ok(y), Ok(m), Ok(d)) => Date::new(y, m, d),
            _ => None,
        },
        _ => None,
    };
    parsed.with_context(|| {
        format!(
            "{} {text:?}: {}",
            lang.pick("ngày không hợp lệ", "invalid date"),
            lang.pick(
                "hãy viết theo dạng YYYY/MM/DD, ví dụ 2026/11/20",
                "write it as YYYY/MM/DD, e.g. 2026/11/20"
            )
        )
    })
}

fn content_type_for(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        "txt" => "text/plain",
        "xml" | "edxml" => "application/xml",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

fn new_document(
    from: &str,
    to: &[String],
    subject: &str,
    attach: &[PathBuf],
    code: Option<&str>,
    date: Option<&str>,
    lang: Lang,
) -> anyhow::Result<ExitCode> {
    let from = unit_code(from, lang.pick("mã đơn vị gửi", "sender code"), lang)?;
    let mut recipients = Vec::new();
    for code in to {
        let code = unit_code(
            code.trim(),
            lang.pick("mã đơn vị nhận", "recipient code"),
            lang,
        )?;
        if !recipients.iter().any(|o: &Organization| o.organ_id == code) {
            recipients.push(Organization {
                organ_id: code,
                ..Organization::default()
            });
        }
    }
    if subject.trim().is_empty() {
        bail!(
            "{}",
            lang.pick(
                "trích yếu (--subject) không được để trống",
                "the subject (--subject) must not be empty"
            )
        );
    }
    let now = now_vietnam();
    let day = match date {
        Some(text) => parse_date(text, lang)?,
        None => now.date,
    };
    let (number_notation, code_block) = match code {
        Some(text) => {
            let Some((number, notation)) = text.split_once('/') else {
                bail!(
                    "{} {text:?}: {}",
                    lang.pick("số/ký hiệu không hợp lệ", "invalid number/notation"),
                    lang.pick(
                        "hãy viết SỐ/KÝ-HIỆU, ví dụ 7816/VPCP-TTĐT",
                        "write NUMBER/NOTATION, e.g. 7816/VPCP-TTĐT"
                    )
                );
            };
            let block = Code {
                code_number: Some(number.into()),
                code_notation: Some(notation.into()),
            };
            (text.to_owned(), Some(block))
        }
        None => (uuid::Uuid::new_v4().to_string(), None),
    };
    let mut references = Vec::new();
    let mut attachments = Vec::new();
    for (i, path) in attach.iter().enumerate() {
        let data = read_file(path, lang)?;
        let content_id = (i + 1).to_string();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let content_type = Some(content_type_for(path).to_owned());
        references.push(Reference {
            content_id: content_id.clone(),
            content_type: content_type.clone(),
            description: None,
            attachment_name: name.clone(),
        });
        attachments.push(Attachment {
            content_id,
            name,
            description: None,
            content_type,
            data,
        });
    }
    let document = Document {
        document_id: Some(format!("{from},{day},{number_notation}")),
        code: code_block,
        promulgation_info: Some(PromulgationInfo {
            place: None,
            promulgation_date: Some(Lenient::Known(day)),
        }),
        subject: Some(subject.to_owned()),
        to: recipients,
        trace: TraceHeaderList {
            trace_headers: vec![TraceHeader {
                organ_id: from.clone(),
                timestamp: Some(Lenient::Known(now)),
            }],
            business: Some(Business {
                doc_type: Some(BusinessDocType::New),
                doc_reason: Some(BusinessDocType::New.label_vi().to_owned()),
                ..Business::default()
            }),
        },
        from: Organization {
            organ_id: from,
            ..Organization::default()
        },
        references,
        attachments,
        ..Document::default()
    };
    let stdout = std::io::stdout();
    edxml::write(
        &Package::Document(document),
        std::io::BufWriter::new(stdout.lock()),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn new_status(
    from: &str,
    for_file: &Path,
    code: &str,
    description: Option<String>,
    lang: Lang,
) -> anyhow::Result<ExitCode> {
    let from = unit_code(
        from,
        lang.pick("mã đơn vị báo trạng thái", "reporting unit code"),
        lang,
    )?;
    let status_code = StatusCode::parse(code);
    if let StatusCode::Other(_) = status_code {
        let known: Vec<&str> = StatusCode::KNOWN.iter().map(|c| c.code()).collect();
        bail!(
            "{} {code:?}: {} {}",
            lang.pick(
                "mã trạng thái không có trong danh mục",
                "unknown status code"
            ),
            lang.pick("hãy dùng một trong", "use one of"),
            known.join(", ")
        );
    }
    let Some(parsed) = read_usable(for_file, &Limits::default(), lang)? else {
        return Ok(ExitCode::from(1));
    };
    let Package::Document(doc) = parsed.package else {
        bail!(
            "{}: {}",
            for_file.display(),
            lang.pick(
                "đây là gói tin trạng thái; --for cần gói tin văn bản được trả lời",
                "this is a status package; --for needs the document package being answered"
            )
        );
    };
    // Who may say what: the sender asks to withdraw (13); every other code comes from a recipient.
    if status_code == StatusCode::Withdraw {
        if doc.from.organ_id != from {
            bail!(
                "{} {from} {} {}",
                lang.pick(
                    "chỉ đơn vị gửi mới được đề nghị thu hồi (13); đơn vị",
                    "only the sender may ask to withdraw (13); unit"
                ),
                lang.pick("không phải đơn vị gửi", "is not the sender"),
                doc.from.organ_id
            );
        }
    } else if !doc.to.iter().any(|t| t.organ_id == from) {
        bail!(
            "{} {from} {}",
            lang.pick("đơn vị", "unit"),
            lang.pick(
                "không có trong danh sách nơi nhận của văn bản nên không thể báo trạng thái cho văn bản này",
                "is not among the document's recipients, so it cannot report a status for it"
            )
        );
    }
    let number_notation = doc.code.as_ref().map(|c| {
        format!(
            "{}/{}",
            c.code_number.as_deref().unwrap_or(""),
            c.code_notation.as_deref().unwrap_or("")
        )
    });
    let now = now_vietnam();
    let status = Status {
        from: Organization {
            organ_id: from.clone(),
            ..Organization::default()
        },
        response_for: ResponseFor {
            organ_id: Some(doc.from.organ_id.clone()),
            code: number_notation,
            promulgation_date: doc
                .promulgation_info
                .as_ref()
                .and_then(|p| p.promulgation_date.clone()),
            document_id: doc.document_id.clone(),
        },
        staff_info: None,
        status_code,
        description,
        timestamp: Some(Lenient::Known(now)),
        trace: TraceHeaderList {
            trace_headers: vec![TraceHeader {
                organ_id: from,
                timestamp: Some(Lenient::Known(now)),
            }],
            business: None,
        },
    };
    let stdout = std::io::stdout();
    edxml::write(
        &Package::Status(status),
        std::io::BufWriter::new(stdout.lock()),
    )?;
    Ok(ExitCode::SUCCESS)
}
