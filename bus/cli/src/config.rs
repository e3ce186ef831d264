//! The relay's configuration file (`truc serve --config FILE`, else `./truc.toml`, else the
//! defaults): one TOML file with `version = 1`, every section and key optional, unknown keys
//! refused. [`load`] reads it and [`Config::validate`] checks it; together they report **every**
//! problem at once (key path, what is wrong, what to do, in Vietnamese and English) rather than
//! stopping at the first, so an operator fixes a file in one pass.
//!
//! How every problem is found at once: serde stops at the first error, so the file is first read
//! as a plain TOML table and walked against the shape of [`Config`] itself (read from its
//! `Deserialize` impl by [`shape`], so the walk cannot drift from the struct): unknown keys and
//! values of the wrong kind are reported and left out, and what remains is deserialised (with
//! `deny_unknown_fields`, as a second guard) and validated.
//!
//! This module reads no files except the one it is given and touches nothing else; `serve_cmd`
//! decides what the paths mean at start-up. The annotated example of every key is
//! `ops/config/truc.example.toml` (a test holds the two together).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file `truc serve` reads when no `--config` is given, if it exists.
pub const DEFAULT_FILE: &str = "truc.toml";

/// The one configuration version this build reads.
pub const VERSION: u64 = 1;

/// The whole file. Paths in it are relative to the file's folder (see [`Config::resolve_paths`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version of this file; only `1` exists.
    pub version: u64,
    /// Store, archive, directory, embedded queues, and the development PKI (`certs/`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub relay: RelaySection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub seal: SealSection,
    #[serde(default)]
    pub broker: BrokerSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub portal: PortalSection,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: VERSION,
            data_dir: default_data_dir(),
            relay: RelaySection::default(),
            http: HttpSection::default(),
            seal: SealSection::default(),
            broker: BrokerSection::default(),
            log: LogSection::default(),
            portal: PortalSection::default(),
        }
    }
}

/// `[relay]`: what the pipeline needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaySection {
    /// The relay's own unit code, written in every `TraceHeader` it appends. The default
    /// `000.00.00.A00` is a development code; a real relay uses the code it was assigned.
    pub id: String,
    /// How long a fetched inbox item stays invisible before it is offered again.
    pub lease_seconds: u64,
    /// Largest package accepted, in MiB.
    pub max_package_mb: u64,
    /// Deepest XML nesting accepted.
    pub max_depth: u64,
    /// Shortest time between two group commits (fsync rounds) of the store, in ms; see
    /// `store::StoreOptions::commit_gap`.
    pub commit_gap_ms: u64,
}

/// A default duration as the whole milliseconds a config key holds (the constants are small).
fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The development relay code (documented in `ops/config/truc.example.toml`).
pub const DEV_RELAY_ID: &str = "000.00.00.A00";

impl Default for RelaySection {
    fn default() -> Self {
        RelaySection {
            id: DEV_RELAY_ID.to_owned(),
            lease_seconds: 300,
            max_package_mb: 100,
            max_depth: 64,
            commit_gap_ms: millis(store::DEFAULT_COMMIT_GAP),
        }
    }
}

/// `[http]`: the HTTPS edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// `IP:PORT` to listen on (port 0: any free port; the real one is printed).
    pub listen: String,
    /// The server's TLS certificate (PEM, may hold the chain).
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Trusted roots (PEM) for client certificates and for sender signatures.
    pub client_ca: Option<PathBuf>,
    /// Certificate revocation list(s) (PEM) for both.
    pub crl: Option<PathBuf>,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: "127.0.0.1:8443".to_owned(),
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            crl: None,
        }
    }
}

/// `[seal]`: the relay's sealing certificate (`OU=Relay`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SealSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// `[broker]`: where the mailboxes live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerSection {
    pub kind: BrokerKind,
    /// RabbitMQ URL (only for `kind = "amqp"`).
    pub url: String,
    pub embedded: EmbeddedSection,
    pub amqp: AmqpSection,
}

impl Default for BrokerSection {
    fn default() -> Self {
        BrokerSection {
            kind: BrokerKind::Embedded,
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            embedded: EmbeddedSection::default(),
            amqp: AmqpSection::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerKind {
    /// Durable queues in the local store: one process, no services.
    Embedded,
    /// RabbitMQ at `[broker] url`: several relay nodes can share it.
    Amqp,
}

/// `[broker.amqp]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpSection {
    /// Type of the per-unit mailbox queues.
    pub queue_type: AmqpQueueType,
    /// Prefix of every exchange and queue name (relay nodes of one bus use the same one).
    pub prefix: String,
    /// Share events and sealed bodies with the other relay nodes on this RabbitMQ through the
    /// stream `<prefix>events`, so every node serves every unit.
    pub shared_log: bool,
    /// Shortest time between two stream messages of the shared log under load, in ms
    /// (`broker::SharedLogConfig::append_gap`).
    pub shared_log_gap_ms: u64,
    /// RabbitMQ's management HTTP API, where the operator view lists every mailbox at once;
    /// empty: the `[broker] url` host on port 15672 (15671 for amqps) with its credentials.
    pub management_url: String,
}

impl Default for AmqpSection {
    fn default() -> Self {
        AmqpSection {
            queue_type: AmqpQueueType::default(),
            prefix: "truc.".to_owned(),
            shared_log: true,
            shared_log_gap_ms: millis(broker::DEFAULT_APPEND_GAP),
            management_url: String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmqpQueueType {
    /// One node, cheap: tens of thousands of mailboxes are fine.
    #[default]
    Classic,
    /// Replicated (Raft): keep to the low thousands of mailboxes per cluster.
    Quorum,
}

/// `[broker.embedded]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedSection {
    /// The store's page cache in MiB (the store also holds the embedded queues).
    pub cache_mb: u64,
}

impl Default for EmbeddedSection {
    fn default() -> Self {
        EmbeddedSection { cache_mb: 64 }
    }
}

/// `[portal]`: the clerk portal and operator pages under `/portal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalSection {
    /// The accounts file `truc accounts` writes and the portal re-reads when it changes; a
    /// relative path is relative to `data_dir`.
    pub accounts: PathBuf,
    /// How long a sign-in lasts, in minutes.
    pub session_minutes: u64,
}

impl Default for PortalSection {
    fn default() -> Self {
        PortalSection {
            accounts: PathBuf::from("accounts.json"),
            session_minutes: 480,
        }
    }
}

impl Config {
    /// The portal accounts file: `[portal] accounts`, under `data_dir` when relative.
    pub fn accounts_file(&self) -> PathBuf {
        if self.portal.accounts.is_absolute() {
            self.portal.accounts.clone()
        } else {
            self.data_dir.join(&self.portal.accounts)
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// A `tracing` filter: `info`, `debug`, or per crate, e.g. `info,relay=debug`.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// One thing wrong with a configuration: where (a dotted key path such as `http.listen`, or the
/// file itself), a stable code, and what is wrong and what to do in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub key: String,
    pub code: &'static str,
    pub vi: String,
    pub en: String,
}

impl Problem {
    fn new(key: &str, code: &'static str, vi: String, en: String) -> Problem {
        Problem {
            key: key.to_owned(),
            code,
            vi,
            en,
        }
    }

    /// `key: message [code]` in the chosen language.
    pub fn line(&self, english: bool) -> String {
        let msg = if english { &self.en } else { &self.vi };
        if self.key.is_empty() {
            format!("{msg} [{}]", self.code)
        } else {
            format!("{}: {msg} [{}]", self.key, self.code)
        }
    }
}

/// A configuration that cannot be used (or read).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `--config` cannot be read.
    #[error("config.read: cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// One or more problems; every one found is listed.
    #[error("config.invalid: the configuration {} has {} problem(s)", origin_en(.origin.as_deref()), .problems.len())]
    Invalid {
        origin: Option<PathBuf>,
        problems: Vec<Problem>,
    },
}

fn origin_en(origin: Option<&Path>) -> String {
    origin.map_or_else(
        || "(built-in defaults and command-line options)".to_owned(),
        |p| p.display().to_string(),
    )
}

fn origin_vi(origin: Option<&Path>) -> String {
    origin.map_or_else(
        || "(mặc định và tham số dòng lệnh)".to_owned(),
        |p| p.display().to_string(),
    )
}

impl ConfigError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config.read",
            ConfigError::Invalid { .. } => "config.invalid",
        }
    }

    pub fn message_vi(&self) -> String {
        match self {
            ConfigError::Read { path, source } => format!(
                "Không đọc được tệp cấu hình {} ({source}). Hãy kiểm tra đường dẫn và quyền đọc, hoặc bỏ --config để dùng cấu hình mặc định.",
                path.display()
            ),
            ConfigError::Invalid { origin, problems } => {
                let mut s = format!(
                    "Cấu hình {} có {} vấn đề; hãy sửa tất cả rồi chạy lại (chú thích từng khóa: ops/config/truc.example.toml):",
                    origin_vi(origin.as_deref()),
                    problems.len()
                );
                for p in problems {
                    s.push_str("\n  - ");
                    s.push_str(&p.line(false));
                }
                s
            }
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            ConfigError::Read { path, source } => format!(
                "Cannot read the configuration file {} ({source}). Check the path and read permission, or drop --config to use the defaults.",
                path.display()
            ),
            ConfigError::Invalid { origin, problems } => {
                let mut s = format!(
                    "The configuration {} has {} problem(s); fix them all and run again (every key is explained in ops/config/truc.example.toml):",
                    origin_en(origin.as_deref()),
                    problems.len()
                );
                for p in problems {
                    s.push_str("\n  - ");
                    s.push_str(&p.line(true));
                }
                s
            }
        }
    }
}

/// Reads configuration text: syntax, unknown keys and value kinds. Returns the configuration
/// built from every usable key (defaults elsewhere) and the problems found; call
/// [`Config::validate`] next for the rules between values.
pub fn load(text: &str) -> (Config, Vec<Problem>) {
    let table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            let detail = e.to_string().trim().replace('\n', " ");
            return (
                Config::default(),
                vec![Problem::new(
                    "",
                    "syntax",
                    format!(
                        "Tệp không đúng cú pháp TOML: {detail}. Hãy sửa dòng được chỉ ra (chuỗi phải nằm trong dấu nháy kép, mỗi khóa một dòng)."
                    ),
                    format!(
                        "The file is not valid TOML: {detail}. Fix the line shown (strings need double quotes, one key per line)."
                    ),
                )],
            );
        }
    };
    let mut problems = Vec::new();
    let schema = shape::of::<Config>();
    let mut clean = walk(&table, &schema, "", &mut problems);
    if !table.contains_key("version") {
        problems.push(Problem::new(
            "version",
            "missing_key",
            format!(
                "Thiếu khóa version. Hãy thêm dòng `version = {VERSION}` ở đầu tệp (phiên bản định dạng cấu hình)."
            ),
            format!(
                "The key version is missing. Add the line `version = {VERSION}` at the top of the file (the configuration format version)."
            ),
        ));
    }
    // Stand-in so the rest still deserialises; the problem above (or the walk's) is reported.
    if !clean.contains_key("version") {
        clean.insert("version".to_owned(), toml::Value::Integer(VERSION as i64));
    }
    match toml::Value::Table(clean).try_into::<Config>() {
        Ok(config) => (config, problems),
        Err(e) => {
            // The walk checks kinds, so this means a value the walk does not know how to judge.
            let detail = e.to_string().trim().replace('\n', " ");
            problems.push(Problem::new(
                "",
                "unreadable_value",
                format!(
                    "Có giá trị không đọc được: {detail}. Hãy so với ops/config/truc.example.toml."
                ),
                format!(
                    "A value cannot be read: {detail}. Compare with ops/config/truc.example.toml."
                ),
            ));
            (Config::default(), problems)
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Walks a TOML table against the expected shape; reports unknown keys and values of the wrong
/// kind, and returns the table without them.
fn walk(
    table: &toml::Table,
    fields: &BTreeMap<&'static str, shape::Shape>,
    prefix: &str,
    problems: &mut Vec<Problem>,
) -> toml::Table {
    use shape::Shape;
    let mut clean = toml::Table::new();
    for (key, value) in table {
        let path = join(prefix, key);
        let Some(expected) = fields.get(key.as_str()) else {
            problems.push(unknown_key(&path, key, fields));
            continue;
        };
        let ok = match (expected, value) {
            (Shape::Table(inner), toml::Value::Table(t)) => {
                clean.insert(
                    key.clone(),
                    toml::Value::Table(walk(t, inner, &path, problems)),
                );
                continue;
            }
            (Shape::Unsigned, toml::Value::Integer(i)) => *i >= 0,
            (Shape::Signed, toml::Value::Integer(_)) => true,
            (Shape::Float, toml::Value::Float(_) | toml::Value::Integer(_)) => true,
            (Shape::Bool, toml::Value::Boolean(_)) => true,
            (Shape::Text, toml::Value::String(_)) => true,
            (Shape::Choice(allowed), toml::Value::String(s)) => {
                if !allowed.contains(&s.as_str()) {
                    problems.push(not_allowed(&path, s, allowed));
                    continue;
                }
                true
            }
            (Shape::Other, _) => true,
            _ => false,
        };
        if ok {
            clean.insert(key.clone(), value.clone());
        } else {
            problems.push(wrong_kind(&path, expected, value));
        }
    }
    clean
}

fn unknown_key(path: &str, key: &str, fields: &BTreeMap<&'static str, shape::Shape>) -> Problem {
    let known: Vec<&str> = fields.keys().copied().collect();
    let known = known.join(", ");
    let close = fields
        .keys()
        .copied()
        .filter(|k| edit_distance(k, key) <= 2)
        .min_by_key(|k| edit_distance(k, key));
    let (hint_vi, hint_en) = match close {
        Some(k) => (
            format!(" Có phải ý bạn là `{k}`?"),
            format!(" Did you mean `{k}`?"),
        ),
        None => (String::new(), String::new()),
    };
    Problem::new(
        path,
        "unknown_key",
        format!(
            "Khóa không được hỗ trợ (khóa lạ sẽ không được bỏ qua âm thầm).{hint_vi} Các khóa hợp lệ ở đây: {known}. Hãy sửa tên hoặc xóa dòng này."
        ),
        format!(
            "Unknown key (unknown keys are refused, never silently ignored).{hint_en} Keys allowed here: {known}. Fix the name or delete the line."
        ),
    )
}

fn not_allowed(path: &str, value: &str, allowed: &[&str]) -> Problem {
    let list = allowed
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Problem::new(
        path,
        "not_allowed_value",
        format!("Giá trị \"{value}\" không được hỗ trợ. Hãy dùng một trong: {list}."),
        format!("The value \"{value}\" is not supported. Use one of: {list}."),
    )
}

fn wrong_kind(path: &str, expected: &shape::Shape, value: &toml::Value) -> Problem {
    use shape::Shape;
    let (want_vi, want_en) = match expected {
        Shape::Table(_) => ("một bảng [mục]", "a table ([section])"),
        Shape::Unsigned => ("một số nguyên không âm", "a non-negative integer"),
        Shape::Signed => ("một số nguyên", "an integer"),
        Shape::Float => ("một số", "a number"),
        Shape::Bool => ("true hoặc false", "true or false"),
        Shape::Text | Shape::Choice(_) => {
            ("một chuỗi trong dấu nháy kép", "a string in double quotes")
        }
        Shape::Other => ("giá trị khác", "another value"),
    };
    let (got_vi, got_en) = match value {
        toml::Value::String(_) => ("một chuỗi", "a string"),
        toml::Value::Integer(i) if *i < 0 => ("một số âm", "a negative number"),
        toml::Value::Integer(_) => ("một số nguyên", "an integer"),
        toml::Value::Float(_) => ("một số thực", "a decimal number"),
        toml::Value::Boolean(_) => ("true/false", "true/false"),
        toml::Value::Datetime(_) => ("một ngày giờ", "a date-time"),
        toml::Value::Array(_) => ("một mảng", "an array"),
        toml::Value::Table(_) => ("một bảng", "a table"),
    };
    Problem::new(
        path,
        "wrong_type",
        format!(
            "Cần {want_vi} nhưng tệp ghi {got_vi}. Hãy sửa giá trị (xem ví dụ trong ops/config/truc.example.toml)."
        ),
        format!(
            "Expected {want_en} but the file has {got_en}. Fix the value (see ops/config/truc.example.toml)."
        ),
    )
}

/// Levenshtein distance, for "did you mean" on short key names.
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

/// Inclusive bounds of the numeric keys: (key path, min, max, unit vi, unit en).
const BOUNDS: [(&str, u64, u64, &str, &str); 8] = [
    ("portal.session_minutes", 5, 10_080, "phút", "minutes"),
    ("relay.lease_seconds", 10, 86_400, "giây", "seconds"),
    ("relay.max_package_mb", 1, 1024, "MiB", "MiB"),
    ("relay.max_depth", 16, 1024, "cấp", "levels"),
    ("relay.commit_gap_ms", 0, 100, "ms", "ms"),
    ("broker.embedded.cache_mb", 16, 65_536, "MiB", "MiB"),
    ("broker.amqp.shared_log_gap_ms", 0, 100, "ms", "ms"),
    ("version", VERSION, VERSION, "", ""),
];

impl Config {
    /// Every rule between values, all problems at once. Pure: looks at no file.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let numbers = [
            self.portal.session_minutes,
            self.relay.lease_seconds,
            self.relay.max_package_mb,
            self.relay.max_depth,
            self.relay.commit_gap_ms,
            self.broker.embedded.cache_mb,
            self.broker.amqp.shared_log_gap_ms,
            self.version,
        ];
        for ((key, min, max, unit_vi, unit_en), value) in BOUNDS.iter().zip(numbers) {
            if (*min..=*max).contains(&value) {
                continue;
            }
            if *key == "version" {
                problems.push(Problem::new(
                    key,
                    "unsupported_version",
                    format!(
                        "Phiên bản cấu hình {value} không được bản truc này hỗ trợ (chỉ có version = {VERSION}). Hãy viết lại tệp theo ops/config/truc.example.toml."
                    ),
                    format!(
                        "Configuration version {value} is not supported by this truc (only version = {VERSION}). Rewrite the file after ops/config/truc.example.toml."
                    ),
                ));
                continue;
            }
            problems.push(Problem::new(
                key,
                "out_of_range",
                format!(
                    "Giá trị {value} nằm ngoài khoảng cho phép {min}–{max} {unit_vi}. Hãy chọn một giá trị trong khoảng đó."
                ),
                format!(
                    "The value {value} is outside the allowed range {min}–{max} {unit_en}. Pick a value in that range."
                ),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push(Problem::new(
                "data_dir",
                "empty_path",
                "Thư mục dữ liệu để trống. Hãy ghi một đường dẫn, ví dụ \"./data\".".to_owned(),
                "The data directory is empty. Give a path, e.g. \"./data\".".to_owned(),
            ));
        }
        if let Err(e) = edxml::UnitCode::parse(&self.relay.id) {
            problems.push(Problem::new(
                "relay.id",
                "bad_unit_code",
                format!(
                    "{} Đây là mã định danh của chính trục, ghi vào TraceHeader; mặc định phát triển là {DEV_RELAY_ID}.",
                    e.vi
                ),
                format!(
                    "{} This is the relay's own unit code, written in TraceHeader; the development default is {DEV_RELAY_ID}.",
                    e.en
                ),
            ));
        }
        if self.http.listen.parse::<SocketAddr>().is_err() {
            let l = &self.http.listen;
            problems.push(Problem::new(
                "http.listen",
                "bad_address",
                format!(
                    "\"{l}\" không phải địa chỉ IP:cổng. Hãy ghi ví dụ \"127.0.0.1:8443\" (chỉ máy này), \"0.0.0.0:8443\" (mọi giao diện) hoặc \"[::]:8443\"."
                ),
                format!(
                    "\"{l}\" is not an IP:port address. Write e.g. \"127.0.0.1:8443\" (this machine only), \"0.0.0.0:8443\" (all interfaces) or \"[::]:8443\"."
                ),
            ));
        }
        problems.extend(self.certificate_problems());
        let url = &self.broker.url;
        if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
            problems.push(Problem::new(
                "broker.url",
                "bad_url",
                format!(
                    "\"{url}\" không phải URL AMQP. Hãy ghi dạng \"amqp://user:pass@host:5672/%2f\" (hoặc amqps:// khi dùng TLS)."
                ),
                format!(
                    "\"{url}\" is not an AMQP URL. Write it as \"amqp://user:pass@host:5672/%2f\" (or amqps:// for TLS)."
                ),
            ));
        }
        let prefix = &self.broker.amqp.prefix;
        if prefix.is_empty()
            || prefix.len() > 64
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            problems.push(Problem::new(
                "broker.amqp.prefix",
                "bad_prefix",
                format!(
                    "Tiền tố \"{prefix}\" không dùng được cho tên hàng đợi RabbitMQ. Hãy ghi 1–64 ký tự chữ, số, '.', '_' hoặc '-', ví dụ \"truc.\" (mọi nút trục của một trục dùng cùng tiền tố)."
                ),
                format!(
                    "Prefix \"{prefix}\" cannot be used for RabbitMQ queue names. Write 1–64 letters, digits, '.', '_' or '-', e.g. \"truc.\" (every relay node of one bus uses the same prefix)."
                ),
            ));
        }
        let api = &self.broker.amqp.management_url;
        if !(api.is_empty() || api.starts_with("http://") || api.starts_with("https://")) {
            problems.push(Problem::new(
                "broker.amqp.management_url",
                "bad_management_url",
                format!(
                    "\"{api}\" không phải URL HTTP của API quản trị RabbitMQ. Hãy ghi dạng \"http://user:pass@host:15672/\", hoặc để trống (\"\") để dùng máy của [broker] url, cổng 15672."
                ),
                format!(
                    "\"{api}\" is not an HTTP URL of RabbitMQ's management API. Write it as \"http://user:pass@host:15672/\", or leave it empty (\"\") for the [broker] url host, port 15672."
                ),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            let l = &self.log.level;
            problems.push(Problem::new(
                "log.level",
                "bad_log_level",
                format!(
                    "\"{l}\" không phải mức ghi nhật ký hợp lệ ({e}). Hãy dùng error, warn, info, debug, trace, hoặc theo từng crate như \"info,relay=debug\"."
                ),
                format!(
                    "\"{l}\" is not a valid log level ({e}). Use error, warn, info, debug, trace, or per crate like \"info,relay=debug\"."
                ),
            ));
        }
        problems
    }

    /// The certificate keys are all set (real certificates) or all unset (the development PKI
    /// under `data_dir/certs`); half of each would mix two trust worlds.
    fn certificate_problems(&self) -> Vec<Problem> {
        let keys = self.certificate_keys();
        let set: Vec<&str> = keys
            .iter()
            .filter(|(_, p)| p.is_some())
            .map(|(k, _)| *k)
            .collect();
        let mut problems = Vec::new();
        for (key, path) in &keys {
            if path.is_some_and(|p| p.as_os_str().is_empty()) {
                problems.push(Problem::new(
                    key,
                    "empty_path",
                    "Đường dẫn để trống. Hãy ghi đường dẫn tệp PEM, hoặc xóa dòng này.".to_owned(),
                    "The path is empty. Give the PEM file's path, or delete the line.".to_owned(),
                ));
            }
        }
        if !set.is_empty() && set.len() < keys.len() {
            let missing: Vec<&str> = keys
                .iter()
                .filter(|(_, p)| p.is_none())
                .map(|(k, _)| *k)
                .collect();
            let missing = missing.join(", ");
            let given = set.join(", ");
            for key in keys.iter().filter(|(_, p)| p.is_none()).map(|(k, _)| *k) {
                problems.push(Problem::new(
                    key,
                    "incomplete_certificates",
                    format!(
                        "Tệp đã khai báo {given} nhưng thiếu {missing}. Hãy khai báo đủ cả năm khóa chứng thư (http.tls_cert, http.tls_key, http.client_ca, seal.cert, seal.key), hoặc bỏ cả năm để trục dùng PKI phát triển trong data_dir/certs."
                    ),
                    format!(
                        "The file sets {given} but not {missing}. Set all five certificate keys (http.tls_cert, http.tls_key, http.client_ca, seal.cert, seal.key), or none to use the development PKI in data_dir/certs."
                    ),
                ));
            }
        }
        if self.http.crl.is_some() && set.is_empty() {
            problems.push(Problem::new(
                "http.crl",
                "incomplete_certificates",
                "http.crl chỉ dùng cùng các chứng thư đã khai báo; với PKI phát triển trục dùng data_dir/certs/ca.crl.pem. Hãy xóa dòng này hoặc khai báo đủ chứng thư.".to_owned(),
                "http.crl only goes with configured certificates; with the development PKI the relay uses data_dir/certs/ca.crl.pem. Delete the line or configure the certificates.".to_owned(),
            ));
        }
        problems
    }

    /// The five keys that must be set together, with their values.
    pub fn certificate_keys(&self) -> [(&'static str, Option<&Path>); 5] {
        [
            ("http.tls_cert", self.http.tls_cert.as_deref()),
            ("http.tls_key", self.http.tls_key.as_deref()),
            ("http.client_ca", self.http.client_ca.as_deref()),
            ("seal.cert", self.seal.cert.as_deref()),
            ("seal.key", self.seal.key.as_deref()),
        ]
    }

    /// True when the certificate keys are set (else the development PKI is used).
    pub fn has_certificates(&self) -> bool {
        self.certificate_keys().iter().all(|(_, p)| p.is_some())
    }

    /// Makes relative paths relative to `base` (the configuration file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        for p in [
            &mut self.http.tls_cert,
            &mut self.http.tls_key,
            &mut self.http.client_ca,
            &mut self.http.crl,
            &mut self.seal.cert,
            &mut self.seal.key,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
    }

    /// Problems with the files the configuration names (they must exist and be readable).
    pub fn file_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut files: Vec<(&str, &Path)> = self
            .certificate_keys()
            .into_iter()
            .filter_map(|(k, p)| p.map(|p| (k, p)))
            .collect();
        if let Some(crl) = &self.http.crl {
            files.push(("http.crl", crl));
        }
        for (key, path) in files {
            if path.as_os_str().is_empty() {
                continue;
            }
            if let Err(e) = std::fs::File::open(path) {
                problems.push(Problem::new(
                    key,
                    "file_unreadable",
                    format!(
                        "Không mở được tệp {} ({e}). Hãy kiểm tra đường dẫn (đường dẫn tương đối tính từ thư mục chứa tệp cấu hình) và quyền đọc.",
                        path.display()
                    ),
                    format!(
                        "Cannot open {} ({e}). Check the path (relative paths are relative to the configuration file's folder) and read permission.",
                        path.display()
                    ),
                ));
            }
        }
        problems
    }
}

/// The shape of a `Deserialize` type, read from its derived impl: which keys a struct has and
/// what kind of value each takes. A probe deserializer follows one key path at a time; at a
/// struct it records the field names serde passes to `deserialize_struct`, at a leaf it records
/// which `deserialize_*` the type asked for, then stops the (throw-away) deserialisation.
pub mod shape {
    use std::collections::BTreeMap;

    use serde::de::value::Error;
    use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

    /// What a key holds.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Shape {
        /// A struct: its fields.
        Table(BTreeMap<&'static str, Shape>),
        Unsigned,
        Signed,
        Float,
        Bool,
        Text,
        /// A unit-variant enum: the allowed strings.
        Choice(&'static [&'static str]),
        /// Anything else (not judged by the walk; serde judges it).
        Other,
    }

    /// What the probe saw at the end of its path.
    enum Seen {
        Fields(&'static [&'static str]),
        Leaf(Shape),
    }

    /// The shape of `T` (a struct).
    pub fn of<T: DeserializeOwned>() -> BTreeMap<&'static str, Shape> {
        table::<T>(&mut Vec::new())
    }

    fn table<T: DeserializeOwned>(path: &mut Vec<&'static str>) -> BTreeMap<&'static str, Shape> {
        let mut out = BTreeMap::new();
        let Some(Seen::Fields(fields)) = probe::<T>(path) else {
            return out;
        };
        for field in fields {
            path.push(field);
            let shape = match probe::<T>(path) {
                Some(Seen::Fields(_)) => Shape::Table(table::<T>(path)),
                Some(Seen::Leaf(s)) => s,
                None => Shape::Other,
            };
            path.pop();
            out.insert(*field, shape);
        }
        out
    }

    fn probe<T: DeserializeOwned>(path: &[&'static str]) -> Option<Seen> {
        let mut seen = None;
        // Always an error (the probe stops there); what matters is what it saw.
        let _ = T::deserialize(Probe {
            follow: path,
            seen: &mut seen,
        });
        seen
    }

    struct Probe<'a> {
        follow: &'a [&'static str],
        seen: &'a mut Option<Seen>,
    }

    impl Probe<'_> {
        fn leaf<V>(self, shape: Shape) -> Result<V, Error> {
            if self.follow.is_empty() {
                *self.seen = Some(Seen::Leaf(shape));
            }
            Err(de::Error::custom("probe"))
        }
    }

    /// A map with one key (the next step of the path) whose value is probed further.
    struct OneKey<'a> {
        key: Option<&'static str>,
        rest: &'a [&'static str],
        seen: &'a mut Option<Seen>,
    }

    impl<'de> de::MapAccess<'de> for OneKey<'_> {
        type Error = Error;
        fn next_key_seed<K: de::DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, Error> {
            match self.key.take() {
                Some(k) => seed.deserialize(k.into_deserializer()).map(Some),
                None => Ok(None),
            }
        }
        fn next_value_seed<V: de::DeserializeSeed<'de>>(
            &mut self,
            seed: V,
        ) -> Result<V::Value, Error> {
            seed.deserialize(Probe {
                follow: self.rest,
                seen: self.seen,
            })
        }
    }

    macro_rules! leaf {
        ($($method:ident => $shape:expr),* $(,)?) => {
            $(fn $method<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
                self.leaf($shape)
            })*
        };
    }

    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = Error;

        leaf! {
            deserialize_any => Shape::Other,
            deserialize_bool => Shape::Bool,
            deserialize_i8 => Shape::Signed,
            deserialize_i16 => Shape::Signed,
            deserialize_i32 => Shape::Signed,
            deserialize_i64 => Shape::Signed,
            deserialize_i128 => Shape::Signed,
            deserialize_u8 => Shape::Unsigned,
            deserialize_u16 => Shape::Unsigned,
            deserialize_u32 => Shape::Unsigned,
            deserialize_u64 => Shape::Unsigned,
            deserialize_u128 => Shape::Unsigned,
            deserialize_f32 => Shape::Float,
            deserialize_f64 => Shape::Float,
            deserialize_char => Shape::Text,
            deserialize_str => Shape::Text,
            deserialize_string => Shape::Text,
            deserialize_bytes => Shape::Other,
            deserialize_byte_buf => Shape::Other,
            deserialize_unit => Shape::Other,
            deserialize_seq => Shape::Other,
            deserialize_map => Shape::Other,
            deserialize_identifier => Shape::Other,
            deserialize_ignored_any => Shape::Other,
        }

        fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            v.visit_some(self)
        }
        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _v: V,
        ) -> Result<V::Value, Error> {
            self.leaf(Shape::Other)
        }
        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            v: V,
        ) -> Result<V::Value, Error> {
            v.visit_newtype_struct(self)
        }
        fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, _v: V) -> Result<V::Value, Error> {
            self.leaf(Shape::Other)
        }
        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _len: usize,
            _v: V,
        ) -> Result<V::Value, Error> {
            self.leaf(Shape::Other)
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            _v: V,
        ) -> Result<V::Value, Error> {
            self.leaf(Shape::Choice(variants))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, Error> {
            match self.follow.split_first() {
                None => {
                    *self.seen = Some(Seen::Fields(fields));
                    Err(de::Error::custom("probe"))
                }
                Some((first, rest)) => v.visit_map(OneKey {
                    key: Some(first),
                    rest,
                    seen: self.seen,
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/config/truc.example.toml")
    }

    fn example_text() -> String {
        std::fs::read_to_string(example_path()).unwrap()
    }

    /// Every key path (dotted) of a TOML table, tables included.
    fn toml_keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in table {
            let path = join(prefix, k);
            if let toml::Value::Table(t) = v {
                toml_keys(t, &path, out);
            }
            out.push(path);
        }
    }

    fn shape_keys(
        fields: &BTreeMap<&'static str, shape::Shape>,
        prefix: &str,
        out: &mut Vec<String>,
    ) {
        for (k, s) in fields {
            let path = join(prefix, k);
            if let shape::Shape::Table(t) = s {
                shape_keys(t, &path, out);
            }
            out.push(path);
        }
    }

    #[test]
    fn example_file_parses_and_validates_with_the_real_type() {
        let (config, problems) = load(&example_text());
        assert_eq!(problems, vec![], "load problems");
        assert_eq!(config.validate(), vec![], "validate problems");
        // The example spells out the defaults, except the certificate paths it shows.
        let expected = Config {
            http: config.http.clone(),
            seal: config.seal.clone(),
            ..Config::default()
        };
        assert_eq!(
            config, expected,
            "the example's values differ from the defaults"
        );
        assert_eq!(config.http.listen, HttpSection::default().listen);
        assert!(config.has_certificates());
    }

    #[test]
    fn every_field_of_the_config_struct_appears_in_the_example_and_nothing_else() {
        let table: toml::Table = toml::from_str(&example_text()).unwrap();
        let mut in_example = Vec::new();
        toml_keys(&table, "", &mut in_example);
        let mut in_struct = Vec::new();
        shape_keys(&shape::of::<Config>(), "", &mut in_struct);
        in_example.sort();
        in_struct.sort();
        assert_eq!(in_example, in_struct);
        // The probe really sees the struct (a wrong probe would give an empty set and pass above
        // only if the example were empty too).
        assert!(in_struct.contains(&"broker.embedded.cache_mb".to_owned()));
        assert!(in_struct.contains(&"http.crl".to_owned()));
    }

    #[test]
    fn defaults_serialised_are_a_subset_of_the_struct_keys() {
        // Serialising the default must produce keys the shape knows (Options are left out).
        let table = toml::Table::try_from(Config::default()).unwrap();
        let mut keys = Vec::new();
        toml_keys(&table, "", &mut keys);
        let mut shape = Vec::new();
        shape_keys(&shape::of::<Config>(), "", &mut shape);
        for k in keys {
            assert!(shape.contains(&k), "{k}");
        }
    }

    #[test]
    fn the_shape_knows_kinds_and_choices() {
        let s = shape::of::<Config>();
        let shape::Shape::Table(broker) = &s["broker"] else {
            panic!("broker is a table")
        };
        assert_eq!(broker["kind"], shape::Shape::Choice(&["embedded", "amqp"]));
        assert_eq!(s["version"], shape::Shape::Unsigned);
        let shape::Shape::Table(http) = &s["http"] else {
            panic!("http is a table")
        };
        assert_eq!(http["tls_cert"], shape::Shape::Text);
    }

    #[test]
    fn five_mistakes_are_all_reported_with_their_key_paths() {
        let text = "version = 1\n[relay]\nlease_seconds = 2\nsecret = 1\ncommit_gap_ms = 101\n[http]\nlisten = \"localhost\"\n[broker.amqp]\nshared_log_gap_ms = 250\n";
        let (config, mut problems) = load(text);
        problems.extend(config.validate());
        let keys: Vec<(&str, &str)> = problems.iter().map(|p| (p.key.as_str(), p.code)).collect();
        assert_eq!(
            keys,
            vec![
                ("relay.secret", "unknown_key"),
                ("relay.lease_seconds", "out_of_range"),
                ("relay.commit_gap_ms", "out_of_range"),
                ("broker.amqp.shared_log_gap_ms", "out_of_range"),
                ("http.listen", "bad_address"),
            ]
        );
    }

    #[test]
    fn wrong_kinds_unknown_sections_and_bad_choices_do_not_hide_each_other() {
        let text = "version = 1\ndata_dir = 5\n[relay]\nlease_seconds = \"300\"\nmax_depth = -1\n[broker]\nkind = \"kafka\"\n[broker.embeded]\ncache_mb = 1\n[log]\nformat = \"xml\"\nlevel = \"info,relay=loud\"\n[extra]\n";
        let (config, mut problems) = load(text);
        problems.extend(config.validate());
        let keys: Vec<(&str, &str)> = problems.iter().map(|p| (p.key.as_str(), p.code)).collect();
        assert!(keys.contains(&("data_dir", "wrong_type")), "{keys:?}");
        assert!(
            keys.contains(&("relay.lease_seconds", "wrong_type")),
            "{keys:?}"
        );
        assert!(
            keys.contains(&("relay.max_depth", "wrong_type")),
            "{keys:?}"
        );
        assert!(
            keys.contains(&("broker.kind", "not_allowed_value")),
            "{keys:?}"
        );
        assert!(
            keys.contains(&("broker.embeded", "unknown_key")),
            "{keys:?}"
        );
        assert!(
            keys.contains(&("log.format", "not_allowed_value")),
            "{keys:?}"
        );
        assert!(keys.contains(&("log.level", "bad_log_level")), "{keys:?}");
        assert!(keys.contains(&("extra", "unknown_key")), "{keys:?}");
        let typo = problems.iter().find(|p| p.key == "broker.embeded").unwrap();
        assert!(typo.en.contains("Did you mean `embedded`?"), "{}", typo.en);
        assert!(typo.vi.contains("`embedded`"), "{}", typo.vi);
    }

    #[test]
    fn amqp_is_accepted_with_its_url_and_queue_type() {
        let (config, problems) = load(
            "version = 1\n[broker]\nkind = \"amqp\"\nurl = \"amqp://u:p@mq:5672/%2f\"\n[broker.amqp]\nqueue_type = \"quorum\"\n",
        );
        assert_eq!(problems, vec![]);
        assert_eq!(config.validate(), vec![]);
        assert_eq!(config.broker.kind, BrokerKind::Amqp);
        assert_eq!(config.broker.amqp.queue_type, AmqpQueueType::Quorum);
        let (_, problems) = load("version = 1\n[broker.amqp]\nqueue_type = \"stream\"\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "broker.amqp.queue_type");
    }

    #[test]
    fn amqp_prefix_and_shared_log_default_to_one_bus_and_a_bad_prefix_is_named() {
        let (config, _) = load("version = 1\n[broker]\nkind = \"amqp\"\n");
        assert_eq!(config.broker.amqp.prefix, "truc.");
        assert!(
            config.broker.amqp.shared_log,
            "nodes share the log unless told not to"
        );
        let (config, problems) =
            load("version = 1\n[broker.amqp]\nprefix = \"test.a-1_\"\nshared_log = false\n");
        assert_eq!(problems, vec![]);
        assert_eq!(config.validate(), vec![]);
        assert!(!config.broker.amqp.shared_log);
        for bad in ["", "truc mailbox.", "trục."] {
            let (config, problems) =
                load(&format!("version = 1\n[broker.amqp]\nprefix = {bad:?}\n"));
            assert_eq!(problems, vec![]);
            let found = config.validate();
            assert_eq!(found.len(), 1, "{bad:?}: {found:?}");
            assert_eq!(
                (found[0].key.as_str(), found[0].code),
                ("broker.amqp.prefix", "bad_prefix")
            );
        }
    }

    #[test]
    fn amqp_management_url_defaults_to_derived_and_a_non_http_one_is_named() {
        let (config, _) = load("version = 1\n[broker]\nkind = \"amqp\"\n");
        assert_eq!(config.broker.amqp.management_url, "");
        let (config, problems) = load(
            "version = 1\n[broker.amqp]\nmanagement_url = \"https://ops:x@mq.example:15671/\"\n",
        );
        assert_eq!(problems, vec![]);
        assert_eq!(config.validate(), vec![]);
        assert_eq!(
            config.broker.amqp.management_url,
            "https://ops:x@mq.example:15671/"
        );
        let (config, _) = load("version = 1\n[broker.amqp]\nmanagement_url = \"mq:15672\"\n");
        let found = config.validate();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].key.as_str(), found[0].code),
            ("broker.amqp.management_url", "bad_management_url")
        );
    }

    #[test]
    fn missing_version_syntax_errors_and_future_versions_are_explained() {
        let (_, problems) = load("data_dir = \"x\"\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(
            (problems[0].key.as_str(), problems[0].code),
            ("version", "missing_key")
        );

        let (_, problems) = load("version = 1\n[http\nlisten = 1\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, "syntax");
        assert!(problems[0].en.contains("line 2"), "{}", problems[0].en);

        let (config, problems) = load("version = 2\n");
        assert_eq!(problems, vec![]);
        let problems = config.validate();
        assert_eq!(problems[0].code, "unsupported_version");
    }

    #[test]
    fn certificate_keys_go_all_or_nothing() {
        let (config, _) = load("version = 1\n[http]\ntls_cert = \"a.pem\"\ntls_key = \"a.key\"\n");
        let problems = config.validate();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["http.client_ca", "seal.cert", "seal.key"]);
        assert!(problems.iter().all(|p| p.code == "incomplete_certificates"));
    }

    #[test]
    fn relative_paths_follow_the_config_file_and_missing_files_are_named() {
        let (mut config, _) = load(
            "version = 1\ndata_dir = \"d\"\n[http]\ntls_cert = \"c.pem\"\ntls_key = \"/abs/k.pem\"\nclient_ca = \"ca.pem\"\n[seal]\ncert = \"s.pem\"\nkey = \"s.key\"\n",
        );
        config.resolve_paths(Path::new("/etc/truc"));
        assert_eq!(config.data_dir, PathBuf::from("/etc/truc/d"));
        assert_eq!(config.http.tls_cert, Some(PathBuf::from("/etc/truc/c.pem")));
        assert_eq!(config.http.tls_key, Some(PathBuf::from("/abs/k.pem")));
        let missing: Vec<String> = config.file_problems().into_iter().map(|p| p.key).collect();
        assert_eq!(
            missing,
            vec![
                "http.tls_cert",
                "http.tls_key",
                "http.client_ca",
                "seal.cert",
                "seal.key"
            ]
        );
    }

    /// The shared log carries every accepted package's sealed body, grouped with others into
    /// RabbitMQ messages of up to 4 MiB plus one package, so the RabbitMQ configuration we ship
    /// must let through a message larger than the biggest package the example relay accepts
    /// (it once said 16 MiB, written when only small envelopes went to RabbitMQ: every package
    /// over about 16 MiB would have failed on a relay with the shared log).
    #[test]
    fn the_shipped_rabbitmq_conf_lets_the_largest_package_through_the_shared_log() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/rabbitmq/rabbitmq.conf");
        let text = std::fs::read_to_string(path).unwrap();
        let max: u64 = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("max_message_size"))
            .filter_map(|rest| rest.trim().strip_prefix('='))
            .map(|v| v.trim().parse().unwrap())
            .next()
            .expect("rabbitmq.conf sets max_message_size");
        let (example, _) = load(&example_text());
        let mib = 1024 * 1024;
        let largest_message = (example.relay.max_package_mb + 5) * mib;
        assert!(
            max >= largest_message,
            "max_message_size {max} is below a {} MiB package plus a 4 MiB batch and framing",
            example.relay.max_package_mb
        );
        assert!(max <= 512 * mib, "RabbitMQ refuses to start above 512 MiB");
    }

    #[test]
    fn an_empty_file_with_a_version_is_the_defaults() {
        let (config, problems) = load("version = 1\n");
        assert_eq!(problems, vec![]);
        assert_eq!(config, Config::default());
        assert_eq!(config.validate(), vec![]);
    }
}
