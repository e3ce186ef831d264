//! The adapter's config file: one TOML file per unit, `version = 1`, unknown keys refused, and
//! every problem reported at once with its key path (a clerk fixing the file sees the whole list,
//! not one error per restart). Relative paths are relative to the file's folder.
//!
//! ```toml
//! version = 1
//! data_dir = "state"                 # the durable local outbox and the record of received ids
//! [relay]
//! url = "https://relay.example:8443"
//! trust_root = "certs/ca.pem"        # CA(s) for the relay's TLS certificate and its seal
//! [unit]
//! code = "000.00.00.G22"
//! cert = "certs/unit.pem"
//! key = "certs/unit.key.pem"
//! [folder]                           # every key optional; defaults are folders beside the file
//! outbox = "outbox"
//! sent = "sent"
//! failed = "failed"
//! inbox = "inbox"
//! receipts = "receipts"
//! settle_ms = 1000                   # a file must be unchanged this long before it is taken
//! [send]
//! parallel = 4                       # submissions in flight
//! max_backoff_seconds = 60           # retry delay cap (doubles from 0.5 s)
//! give_up_hours = 168                # a package still refused by the network after this goes to failed/
//! [receive]
//! wait_seconds = 25                  # inbox long-poll
//! send_arrived = true                # send status 01 when a document lands in inbox/
//! [http]                             # local HTTP mode (schemas/adapter-openapi.yaml); off without it
//! listen = "127.0.0.1:8700"          # loopback only
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Value;

/// The validated configuration, paths already absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from (messages name it).
    pub origin: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub relay_url: String,
    pub trust_root: PathBuf,
    pub unit: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub folder: Folders,
    pub settle: Duration,
    pub parallel: usize,
    pub max_backoff: Duration,
    pub give_up: Duration,
    pub wait: Duration,
    pub send_arrived: bool,
    /// Local HTTP mode's address (loopback), when on.
    pub http_listen: Option<std::net::SocketAddr>,
}

/// Folder mode: where the DMS drops files and where it finds results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folders {
    pub outbox: PathBuf,
    pub sent: PathBuf,
    pub failed: PathBuf,
    pub inbox: PathBuf,
    pub receipts: PathBuf,
}

impl Folders {
    pub fn all(&self) -> [(&'static str, &Path); 5] {
        [
            ("folder.outbox", &self.outbox),
            ("folder.sent", &self.sent),
            ("folder.failed", &self.failed),
            ("folder.inbox", &self.inbox),
            ("folder.receipts", &self.receipts),
        ]
    }
}

// The file's serde shape (checked by hand first, so this parse only sees valid input).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code)]
    version: i64,
    data_dir: Option<String>,
    relay: RelayFile,
    unit: UnitFile,
    #[serde(default)]
    folder: FolderFile,
    #[serde(default)]
    send: SendFile,
    #[serde(default)]
    receive: ReceiveFile,
    #[serde(default)]
    http: HttpFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    listen: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RelayFile {
    url: String,
    trust_root: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitFile {
    code: String,
    cert: String,
    key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FolderFile {
    outbox: Option<String>,
    sent: Option<String>,
    failed: Option<String>,
    inbox: Option<String>,
    receipts: Option<String>,
    settle_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendFile {
    parallel: Option<u64>,
    max_backoff_seconds: Option<u64>,
    give_up_hours: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiveFile {
    wait_seconds: Option<u64>,
    send_arrived: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Str,
    Bool,
}

/// Every key the file may hold: (section, key, kind, required). Section "" is the top level.
const KEYS: &[(&str, &str, Kind, bool)] = &[
    ("", "version", Kind::Int, true),
    ("", "data_dir", Kind::Str, false),
    ("relay", "url", Kind::Str, true),
    ("relay", "trust_root", Kind::Str, true),
    ("unit", "code", Kind::Str, true),
    ("unit", "cert", Kind::Str, true),
    ("unit", "key", Kind::Str, true),
    ("folder", "outbox", Kind::Str, false),
    ("folder", "sent", Kind::Str, false),
    ("folder", "failed", Kind::Str, false),
    ("folder", "inbox", Kind::Str, false),
    ("folder", "receipts", Kind::Str, false),
    ("folder", "settle_ms", Kind::Int, false),
    ("send", "parallel", Kind::Int, false),
    ("send", "max_backoff_seconds", Kind::Int, false),
    ("send", "give_up_hours", Kind::Int, false),
    ("receive", "wait_seconds", Kind::Int, false),
    ("receive", "send_arrived", Kind::Bool, false),
    ("http", "listen", Kind::Str, false),
];

const SECTIONS: &[&str] = &["relay", "unit", "folder", "send", "receive", "http"];

/// Integer ranges: (key path, min, max).
const RANGES: &[(&str, i64, i64)] = &[
    ("folder.settle_ms", 0, 600_000),
    ("send.parallel", 1, 64),
    ("send.max_backoff_seconds", 1, 3_600),
    ("send.give_up_hours", 1, 24 * 90),
    ("receive.wait_seconds", 1, 60),
];

/// One thing wrong with the file, at a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub vi: String,
    pub en: String,
}

impl Problem {
    fn new(key: impl Into<String>, vi: impl Into<String>, en: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            vi: vi.into(),
            en: en.into(),
        }
    }
}

/// Why the adapter cannot start with this config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config_unreadable: {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config_invalid: {} problem(s)", problems.len())]
    Invalid {
        origin: Option<PathBuf>,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Unreadable { .. } => "config_unreadable",
            ConfigError::Invalid { .. } => "config_invalid",
        }
    }

    pub fn message_vi(&self) -> String {
        match self {
            ConfigError::Unreadable { path, source } => format!(
                "Không đọc được tệp cấu hình {} ({source}). Hãy kiểm tra đường dẫn và quyền đọc.",
                path.display()
            ),
            ConfigError::Invalid { origin, problems } => {
                let mut s = format!(
                    "Tệp cấu hình {} có {} lỗi; hãy sửa tất cả rồi chạy lại:",
                    origin_text(origin),
                    problems.len()
                );
                for p in problems {
                    s.push_str(&format!("\n  {}: {}", p.key, p.vi));
                }
                s
            }
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            ConfigError::Unreadable { path, source } => format!(
                "Cannot read the config file {} ({source}). Check the path and read permission.",
                path.display()
            ),
            ConfigError::Invalid { origin, problems } => {
                let mut s = format!(
                    "The config file {} has {} problem(s); fix them all and run again:",
                    origin_text(origin),
                    problems.len()
                );
                for p in problems {
                    s.push_str(&format!("\n  {}: {}", p.key, p.en));
                }
                s
            }
        }
    }
}

fn origin_text(origin: &Option<PathBuf>) -> String {
    origin
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<text>".into())
}

impl Config {
    /// Reads, checks and resolves the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let mut config = Config::parse(&text, &base).map_err(|e| match e {
            ConfigError::Invalid { problems, .. } => ConfigError::Invalid {
                origin: Some(path.to_path_buf()),
                problems,
            },
            other => other,
        })?;
        config.origin = Some(path.to_path_buf());
        let problems = config.file_problems();
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                origin: Some(path.to_path_buf()),
                problems,
            });
        }
        Ok(config)
    }

    /// Checks `text` and resolves relative paths against `base`. Files are not opened here (see
    /// [`Config::file_problems`]).
    pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid {
            origin: None,
            problems,
        };
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                return Err(invalid(vec![Problem::new(
                    "(toml)",
                    format!("không phải TOML hợp lệ: {e}"),
                    format!("not valid TOML: {e}"),
                )]));
            }
        };
        let problems = check(&table);
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let file: File = match File::deserialize(Value::Table(table)) {
            Ok(f) => f,
            Err(e) => {
                return Err(invalid(vec![Problem::new(
                    "(toml)",
                    e.to_string(),
                    e.to_string(),
                )]));
            }
        };
        let at = |p: Option<String>, default: &str| -> PathBuf {
            let p = PathBuf::from(p.unwrap_or_else(|| default.to_owned()));
            if p.is_absolute() { p } else { base.join(p) }
        };
        let f = file.folder;
        Ok(Config {
            origin: None,
            data_dir: at(file.data_dir, "state"),
            relay_url: file.relay.url,
            trust_root: at(Some(file.relay.trust_root), ""),
            unit: file.unit.code,
            cert: at(Some(file.unit.cert), ""),
            key: at(Some(file.unit.key), ""),
            folder: Folders {
                outbox: at(f.outbox, "outbox"),
                sent: at(f.sent, "sent"),
                failed: at(f.failed, "failed"),
                inbox: at(f.inbox, "inbox"),
                receipts: at(f.receipts, "receipts"),
            },
            settle: Duration::from_millis(f.settle_ms.unwrap_or(1000)),
            parallel: file.send.parallel.unwrap_or(4) as usize,
            max_backoff: Duration::from_secs(file.send.max_backoff_seconds.unwrap_or(60)),
            give_up: Duration::from_secs(file.send.give_up_hours.unwrap_or(168) * 3600),
            wait: Duration::from_secs(file.receive.wait_seconds.unwrap_or(25)),
            send_arrived: file.receive.send_arrived.unwrap_or(true),
            http_listen: file.http.listen.and_then(|l| l.parse().ok()),
        })
    }

    /// Problems with the files the config names: certificate, key and trust root must be readable
    /// PEM; the five folders must be distinct.
    pub fn file_problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (key, path) in [
            ("relay.trust_root", &self.trust_root),
            ("unit.cert", &self.cert),
            ("unit.key", &self.key),
        ] {
            match std::fs::read(path) {
                Ok(bytes) if bytes.windows(11).any(|w| w == b"-----BEGIN ") => {}
                Ok(_) => out.push(Problem::new(
                    key,
                    format!("{} không phải tệp PEM.", path.display()),
                    format!("{} is not a PEM file.", path.display()),
                )),
                Err(e) => out.push(Problem::new(
                    key,
                    format!("không đọc được {} ({e}).", path.display()),
                    format!("cannot read {} ({e}).", path.display()),
                )),
            }
        }
        let folders = self.folder.all();
        for (i, (ka, a)) in folders.iter().enumerate() {
            for (kb, b) in &folders[i + 1..] {
                if a == b {
                    out.push(Problem::new(
                        *kb,
                        format!(
                            "trùng thư mục với {ka} ({}); mỗi thư mục phải riêng.",
                            a.display()
                        ),
                        format!(
                            "same folder as {ka} ({}); each folder must be its own.",
                            a.display()
                        ),
                    ));
                }
            }
        }
        out
    }
}

fn kind_name(k: Kind) -> (&'static str, &'static str) {
    match k {
        Kind::Int => ("số nguyên", "an integer"),
        Kind::Str => ("chuỗi", "a string"),
        Kind::Bool => ("true/false", "true/false"),
    }
}

fn value_kind(v: &Value) -> Option<Kind> {
    match v {
        Value::Integer(_) => Some(Kind::Int),
        Value::String(_) => Some(Kind::Str),
        Value::Boolean(_) => Some(Kind::Bool),
        _ => None,
    }
}

/// Every problem of the raw table at once: unknown keys (with a suggestion), wrong kinds, missing
/// keys, version, ranges, URL and unit-code shape.
fn check(table: &toml::Table) -> Vec<Problem> {
    let mut out = Vec::new();
    let check_keys = |section: &str, t: &toml::Table, out: &mut Vec<Problem>| {
        for (k, v) in t {
            if section.is_empty() && SECTIONS.contains(&k.as_str()) {
                if !v.is_table() {
                    out.push(Problem::new(
                        k.clone(),
                        format!("phải là một mục [{k}]."),
                        format!("must be a [{k}] section."),
                    ));
                }
                continue;
            }
            let path = if section.is_empty() {
                k.clone()
            } else {
                format!("{section}.{k}")
            };
            match KEYS.iter().find(|(s, key, _, _)| *s == section && key == k) {
                None => {
                    let known: Vec<String> = KEYS
                        .iter()
                        .filter(|(s, _, _, _)| *s == section)
                        .map(|(_, key, _, _)| (*key).to_owned())
                        .chain(if section.is_empty() {
                            SECTIONS.iter().map(|s| (*s).to_owned()).collect()
                        } else {
                            Vec::new()
                        })
                        .collect();
                    let hint = known
                        .iter()
                        .min_by_key(|c| edit_distance(c, k))
                        .filter(|c| edit_distance(c, k) <= 2);
                    let (vi_hint, en_hint) = match hint {
                        Some(h) => (
                            format!(" Có phải ý là `{h}`?"),
                            format!(" Did you mean `{h}`?"),
                        ),
                        None => (
                            format!(" Các khóa được phép: {}.", known.join(", ")),
                            format!(" Allowed keys: {}.", known.join(", ")),
                        ),
                    };
                    out.push(Problem::new(
                        path,
                        format!("khóa không được biết đến.{vi_hint}"),
                        format!("unknown key.{en_hint}"),
                    ));
                }
                Some((_, _, kind, _)) => {
                    if value_kind(v) != Some(*kind) {
                        let (vi, en) = kind_name(*kind);
                        out.push(Problem::new(
                            path,
                            format!("phải là {vi}."),
                            format!("must be {en}."),
                        ));
                    }
                }
            }
        }
    };
    check_keys("", table, &mut out);
    for s in SECTIONS {
        if let Some(Value::Table(t)) = table.get(*s) {
            check_keys(s, t, &mut out);
        }
    }
    let get = |section: &str, key: &str| -> Option<&Value> {
        if section.is_empty() {
            table.get(key)
        } else {
            table.get(section)?.as_table()?.get(key)
        }
    };
    for (section, key, _, required) in KEYS {
        if *required && get(section, key).is_none() {
            let path = if section.is_empty() {
                (*key).to_owned()
            } else {
                format!("{section}.{key}")
            };
            out.push(Problem::new(
                path,
                "thiếu khóa bắt buộc.",
                "required key is missing.",
            ));
        }
    }
    if let Some(Value::Integer(v)) = get("", "version")
        && *v != 1
    {
        out.push(Problem::new(
            "version",
            format!("phiên bản {v} không được hỗ trợ; hãy ghi version = 1."),
            format!("version {v} is not supported; write version = 1."),
        ));
    }
    for (path, min, max) in RANGES {
        let (section, key) = path.split_once('.').unwrap_or(("", path));
        if let Some(Value::Integer(v)) = get(section, key)
            && (*v < *min || *v > *max)
        {
            out.push(Problem::new(
                *path,
                format!("{v} nằm ngoài khoảng cho phép {min}..={max}."),
                format!("{v} is outside the allowed range {min}..={max}."),
            ));
        }
    }
    if let Some(Value::String(url)) = get("relay", "url")
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        out.push(Problem::new(
            "relay.url",
            format!("\"{url}\" không phải địa chỉ trục; hãy ghi dạng https://máy:cổng."),
            format!("\"{url}\" is not a relay address; write https://host:port."),
        ));
    }
    if let Some(Value::String(listen)) = get("http", "listen") {
        match listen.parse::<std::net::SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => {}
            Ok(_) => out.push(Problem::new(
                "http.listen",
                format!("\"{listen}\" không phải địa chỉ nội bộ; chế độ HTTP chỉ nghe trên 127.0.0.1 hoặc [::1]."),
                format!("\"{listen}\" is not a loopback address; HTTP mode listens only on 127.0.0.1 or [::1]."),
            )),
            Err(e) => out.push(Problem::new(
                "http.listen",
                format!("\"{listen}\" không phải địa chỉ IP:cổng ({e})."),
                format!("\"{listen}\" is not an IP:port address ({e})."),
            )),
        }
    }
    if let Some(Value::String(code)) = get("unit", "code")
        && let Err(e) = edxml::UnitCode::parse(code)
    {
        out.push(Problem::new(
            "unit.code",
            format!("\"{code}\" không phải mã định danh đơn vị ({e})."),
            format!("\"{code}\" is not a unit code ({e})."),
        ));
    }
    out
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

    use super::*;

    const GOOD: &str = r#"
version = 1
[relay]
url = "https://127.0.0.1:8443"
trust_root = "certs/ca.pem"
[unit]
code = "000.00.00.G22"
cert = "certs/unit.pem"
key = "certs/unit.key.pem"
"#;

    fn problems(text: &str) -> Vec<Problem> {
        match Config::parse(text, Path::new("/etc/truc")) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn the_annotated_example_is_valid_and_explains_every_key() {
        let text = include_str!("../adapter.example.toml");
        let c = Config::parse(text, Path::new("/etc/truc")).unwrap();
        assert_eq!(c.unit, "000.00.00.G22");
        assert_eq!(c.http_listen, Some("127.0.0.1:8700".parse().unwrap()));
        let table: toml::Table = text.parse().unwrap();
        for (section, key, _, _) in KEYS {
            let present = if section.is_empty() {
                table.contains_key(*key)
            } else {
                table
                    .get(*section)
                    .and_then(|t| t.as_table())
                    .is_some_and(|t| t.contains_key(*key))
            };
            assert!(present, "{section}.{key} is not in adapter.example.toml");
        }
    }

    #[test]
    fn a_minimal_file_gets_folders_beside_it_and_safe_defaults() {
        let c = Config::parse(GOOD, Path::new("/etc/truc")).unwrap();
        assert_eq!(c.unit, "000.00.00.G22");
        assert_eq!(c.cert, Path::new("/etc/truc/certs/unit.pem"));
        assert_eq!(c.folder.outbox, Path::new("/etc/truc/outbox"));
        assert_eq!(c.folder.receipts, Path::new("/etc/truc/receipts"));
        assert_eq!(c.data_dir, Path::new("/etc/truc/state"));
        assert_eq!(c.settle, Duration::from_secs(1));
        assert!(c.send_arrived);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_key() {
        let text = r#"
version = 2
colour = "blue"
[relay]
ulr = "https://x"
trust_root = 5
[unit]
code = "G22"
cert = "a"
key = "b"
[folder]
settle_ms = -1
[send]
parallel = 1000
[http]
listen = "0.0.0.0:8700"
"#;
        let p = problems(text);
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "version",
            "colour",
            "relay.ulr",
            "relay.trust_root",
            "relay.url",
            "unit.code",
            "folder.settle_ms",
            "send.parallel",
            "http.listen",
        ] {
            assert!(keys.contains(&k), "{k} not in {keys:?}");
        }
        let typo = p.iter().find(|p| p.key == "relay.ulr").unwrap();
        assert!(typo.en.contains("Did you mean `url`"), "{}", typo.en);
        assert!(typo.vi.contains("`url`"), "{}", typo.vi);
        let err = ConfigError::Invalid {
            origin: Some("/etc/truc/adapter.toml".into()),
            problems: p,
        };
        assert_eq!(err.code(), "config_invalid");
        assert!(err.message_vi().contains("/etc/truc/adapter.toml"));
        assert!(err.message_en().contains("relay.ulr: unknown key"));
    }

    #[test]
    fn files_that_cannot_be_read_and_shared_folders_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("certs")).unwrap();
        std::fs::write(dir.path().join("certs/ca.pem"), "not pem").unwrap();
        let path = dir.path().join("adapter.toml");
        std::fs::write(&path, format!("{GOOD}[folder]\ninbox = \"outbox\"\n")).unwrap();
        let Err(ConfigError::Invalid { problems, .. }) = Config::load(&path) else {
            panic!("expected problems");
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["relay.trust_root", "unit.cert", "unit.key", "folder.inbox"]
        );
        assert!(problems[0].en.contains("not a PEM file"));
    }
}
