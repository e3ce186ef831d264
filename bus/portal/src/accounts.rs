//! Portal accounts: who may sign in, as what, with which password hash.
//!
//! **Where they live, and why.** The relay's store (sled) is locked by the running relay, but
//! `truc accounts add|list|disable` must work while it runs. So accounts are a small JSON file
//! (`[portal] accounts`, default `accounts.json` in the data directory), written atomically
//! (temporary file in the same folder, fsync, rename, fsync of the folder) with mode 0600, and
//! the portal re-reads it whenever its identity (inode, size, modification time) changes — on
//! every request, a `stat` — so a `disable` takes effect at the next click, for live sessions
//! too. Two `truc accounts` runs at the very same moment could lose one change (last rename
//! wins); an operator tool run by hand makes that unlikely, and the file says nothing a
//! second run cannot redo.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's default parameters, a random salt
//! per password), stored as PHC strings; the password itself is never written anywhere.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use serde::{Deserialize, Serialize};

/// The accounts file's format version.
pub const FILE_VERSION: u64 = 1;
/// Shortest password `truc accounts add` takes.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// What an account may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum AccountRole {
    /// A unit's clerk (văn thư): that unit's sent and received documents only.
    Clerk { unit: String },
    /// A relay operator: every unit's documents and the operator page.
    Operator,
}

/// One account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    #[serde(flatten)]
    pub role: AccountRole,
    /// Argon2id PHC string.
    pub hash: String,
    pub disabled: bool,
    /// RFC 3339.
    pub created: String,
}

impl Account {
    /// Whether `password` is this account's password (constant-time compare inside argon2).
    pub fn verify(&self, password: &str) -> bool {
        PasswordHash::new(&self.hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    }

    pub fn unit(&self) -> Option<&str> {
        match &self.role {
            AccountRole::Clerk { unit } => Some(unit),
            AccountRole::Operator => None,
        }
    }

    pub fn is_operator(&self) -> bool {
        self.role == AccountRole::Operator
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    pub version: u64,
    pub accounts: Vec<Account>,
}

impl Accounts {
    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

/// Why an accounts operation failed. Each says what is wrong, where, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("accounts.io: {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("accounts.corrupt: {path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("accounts.exists: {0}")]
    Exists(String),
    #[error("accounts.unknown: {0}")]
    Unknown(String),
    #[error("accounts.bad_name: {0}")]
    BadName(String),
    #[error("accounts.bad_unit: {0}")]
    BadUnit(String),
    #[error("accounts.weak_password")]
    WeakPassword,
    #[error("accounts.hash: {0}")]
    Hash(String),
}

impl AccountError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::Io { .. } => "accounts.io",
            AccountError::Corrupt { .. } => "accounts.corrupt",
            AccountError::Exists(_) => "accounts.exists",
            AccountError::Unknown(_) => "accounts.unknown",
            AccountError::BadName(_) => "accounts.bad_name",
            AccountError::BadUnit(_) => "accounts.bad_unit",
            AccountError::WeakPassword => "accounts.weak_password",
            AccountError::Hash(_) => "accounts.hash",
        }
    }

    pub fn message_vi(&self) -> String {
        match self {
            AccountError::Io { path, source } => format!(
                "Không đọc/ghi được tệp tài khoản {} ({source}). Hãy kiểm tra đường dẫn ([portal] accounts) và quyền trên thư mục.",
                path.display()
            ),
            AccountError::Corrupt { path, detail } => format!(
                "Tệp tài khoản {} không đúng định dạng ({detail}). Hãy khôi phục bản sao lưu hoặc sửa tệp JSON này.",
                path.display()
            ),
            AccountError::Exists(n) => format!(
                "Tài khoản \"{n}\" đã có. Hãy chọn tên khác, hoặc dùng truc accounts list để xem các tài khoản."
            ),
            AccountError::Unknown(n) => {
                format!("Không có tài khoản \"{n}\". Hãy xem tên đúng bằng truc accounts list.")
            }
            AccountError::BadName(n) => format!(
                "Tên tài khoản \"{n}\" không hợp lệ: dùng 1–64 ký tự chữ không dấu, số, '.', '_' hoặc '-'."
            ),
            AccountError::BadUnit(u) => format!(
                "Mã đơn vị \"{u}\" không hợp lệ: cần mã định danh như 000.00.00.H41 (không khoảng trắng)."
            ),
            AccountError::WeakPassword => {
                format!("Mật khẩu quá ngắn: cần ít nhất {MIN_PASSWORD_CHARS} ký tự.")
            }
            AccountError::Hash(d) => {
                format!("Không băm được mật khẩu ({d}). Hãy thử lại; nếu lặp lại, báo lỗi này.")
            }
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            AccountError::Io { path, source } => format!(
                "Cannot read/write the accounts file {} ({source}). Check the path ([portal] accounts) and the folder's permissions.",
                path.display()
            ),
            AccountError::Corrupt { path, detail } => format!(
                "The accounts file {} is not in the expected format ({detail}). Restore a backup or fix the JSON.",
                path.display()
            ),
            AccountError::Exists(n) => format!(
                "Account \"{n}\" already exists. Pick another name, or see the accounts with truc accounts list."
            ),
            AccountError::Unknown(n) => {
                format!("There is no account \"{n}\". See the names with truc accounts list.")
            }
            AccountError::BadName(n) => format!(
                "Account name \"{n}\" is not valid: use 1–64 ASCII letters, digits, '.', '_' or '-'."
            ),
            AccountError::BadUnit(u) => format!(
                "Unit code \"{u}\" is not valid: use an identifier such as 000.00.00.H41 (no spaces)."
            ),
            AccountError::WeakPassword => {
                format!("The password is too short: at least {MIN_PASSWORD_CHARS} characters.")
            }
            AccountError::Hash(d) => {
                format!("Cannot hash the password ({d}). Try again; if it repeats, report it.")
            }
        }
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> AccountError + '_ {
    move |source| AccountError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Hashes `password` with Argon2id, default parameters, a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn valid_unit(unit: &str) -> bool {
    !unit.is_empty()
        && unit.len() <= 64
        && unit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The accounts file at `path`: read, change, write atomically. Used by `truc accounts` (and
/// by tests); the portal reads through [`AccountBook`].
#[derive(Debug, Clone)]
pub struct AccountFile {
    path: PathBuf,
}

impl AccountFile {
    pub fn new(path: impl Into<PathBuf>) -> AccountFile {
        AccountFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The accounts; an absent file is no accounts.
    pub fn load(&self) -> Result<Accounts, AccountError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Accounts {
                    version: FILE_VERSION,
                    accounts: Vec::new(),
                });
            }
            Err(e) => return Err(io(&self.path)(e)),
        };
        let accounts: Accounts =
            serde_json::from_slice(&bytes).map_err(|e| AccountError::Corrupt {
                path: self.path.clone(),
                detail: e.to_string(),
            })?;
        if accounts.version != FILE_VERSION {
            return Err(AccountError::Corrupt {
                path: self.path.clone(),
                detail: format!(
                    "version {} (this build reads {FILE_VERSION})",
                    accounts.version
                ),
            });
        }
        Ok(accounts)
    }

    /// Writes `accounts` atomically: a reader sees the old file or the new one, never a mix.
    pub fn save(&self, accounts: &Accounts) -> Result<(), AccountError> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "accounts.json".into());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let bytes = serde_json::to_vec_pretty(accounts).map_err(|e| AccountError::Corrupt {
            path: self.path.clone(),
            detail: e.to_string(),
        })?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            std::fs::File::open(&dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(&self.path)(e)
        })
    }

    /// Adds an account; refuses a taken name, a bad name or unit, a short password.
    pub fn add(
        &self,
        name: &str,
        role: AccountRole,
        password: &str,
        now: &str,
    ) -> Result<Account, AccountError> {
        if !valid_name(name) {
            return Err(AccountError::BadName(name.to_owned()));
        }
        if let AccountRole::Clerk { unit } = &role
            && !valid_unit(unit)
        {
            return Err(AccountError::BadUnit(unit.clone()));
        }
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AccountError::WeakPassword);
        }
        let mut all = self.load()?;
        if all.get(name).is_some() {
            return Err(AccountError::Exists(name.to_owned()));
        }
        let account = Account {
            name: name.to_owned(),
            role,
            hash: hash_password(password)?,
            disabled: false,
            created: now.to_owned(),
        };
        all.version = FILE_VERSION;
        all.accounts.push(account.clone());
        self.save(&all)?;
        Ok(account)
    }

    /// Disables an account (it can no longer sign in; its live sessions end at their next
    /// request). Disabling twice is fine.
    pub fn disable(&self, name: &str) -> Result<(), AccountError> {
        let mut all = self.load()?;
        let Some(a) = all.accounts.iter_mut().find(|a| a.name == name) else {
            return Err(AccountError::Unknown(name.to_owned()));
        };
        a.disabled = true;
        self.save(&all)
    }
}

/// The file's identity: when it changes, the file was rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

/// The portal's view of the accounts file: cached, re-read when the file changes. Owned by the
/// portal's state for the life of the router.
#[derive(Debug)]
pub struct AccountBook {
    file: AccountFile,
    cache: Mutex<(Option<Stamp>, Accounts)>,
}

impl AccountBook {
    pub fn new(path: impl Into<PathBuf>) -> AccountBook {
        AccountBook {
            file: AccountFile::new(path),
            cache: Mutex::new((None, Accounts::default())),
        }
    }

    /// The account `name` as the file says now (`None`: no such account). A file that cannot
    /// be read keeps the last good copy and logs why (a half-edited file must not sign everyone
    /// out, nor let anyone new in).
    pub fn get(&self, name: &str) -> Option<Account> {
        let stamp = std::fs::metadata(self.file.path()).ok().map(|m| Stamp {
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        });
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.0 != stamp || stamp.is_none() {
            match self.file.load() {
                Ok(accounts) => *cache = (stamp, accounts),
                Err(e) => {
                    tracing::warn!(error = %e, "portal accounts file unreadable; keeping the last good copy")
                }
            }
        }
        cache.1.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn add_verify_disable_and_the_book_sees_each_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.json");
        let file = AccountFile::new(&path);
        let book = AccountBook::new(&path);
        assert!(book.get("vanthu").is_none());
        let unit = AccountRole::Clerk {
            unit: "000.00.00.H41".into(),
        };
        file.add("vanthu", unit.clone(), "mat-khau-dai-1", "t")
            .unwrap();
        let a = book.get("vanthu").unwrap();
        assert!(a.verify("mat-khau-dai-1"));
        assert!(!a.verify("mat-khau-dai-2"));
        assert!(a.hash.starts_with("$argon2id$"), "{}", a.hash);
        assert!(!std::fs::read_to_string(&path).unwrap().contains("mat-khau"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().mode() & 0o777,
            0o600,
            "only the owner reads the hashes"
        );
        assert!(matches!(
            file.add("vanthu", unit.clone(), "mat-khau-dai-1", "t"),
            Err(AccountError::Exists(_))
        ));
        assert!(matches!(
            file.add("x y", unit.clone(), "mat-khau-dai-1", "t"),
            Err(AccountError::BadName(_))
        ));
        assert!(matches!(
            file.add("ok", unit, "ngan", "t"),
            Err(AccountError::WeakPassword)
        ));
        file.disable("vanthu").unwrap();
        assert!(book.get("vanthu").unwrap().disabled);
        assert!(matches!(file.disable("ai"), Err(AccountError::Unknown(_))));
    }

    #[test]
    fn a_broken_file_keeps_the_last_good_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.json");
        let file = AccountFile::new(&path);
        let book = AccountBook::new(&path);
        file.add("op", AccountRole::Operator, "mat-khau-dai-1", "t")
            .unwrap();
        assert!(book.get("op").is_some());
        std::fs::write(&path, b"{ not json").unwrap();
        assert!(book.get("op").is_some());
        assert!(matches!(file.load(), Err(AccountError::Corrupt { .. })));
    }
}
