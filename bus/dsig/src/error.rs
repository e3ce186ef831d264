//! One error shape for the whole crate: a stable machine code plus a
//! Vietnamese and an English sentence saying what is wrong, where, and what to do.

use std::fmt;

/// An error from signing, parsing, or the development PKI.
///
/// `code` is stable (scripts and the relay match on it); `vi` is the default
/// user text, `en` the English one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Stable machine code, e.g. `DSIG_XML_MALFORMED`.
    pub code: &'static str,
    /// Vietnamese message (default for users).
    pub vi: String,
    /// English message.
    pub en: String,
}

impl Error {
    pub(crate) fn new(code: &'static str, vi: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            code,
            vi: vi.into(),
            en: en.into(),
        }
    }

    /// The message in Vietnamese (`true`) or English (`false`).
    pub fn text(&self, vietnamese: bool) -> &str {
        if vietnamese { &self.vi } else { &self.en }
    }

    pub(crate) fn crypto(vi_what: &str, en_what: &str, e: &openssl::error::ErrorStack) -> Self {
        Self::new(
            "DSIG_CRYPTO",
            format!("Lỗi thư viện mật mã khi {vi_what}: {e}. Kiểm tra khóa và chứng thư."),
            format!(
                "Cryptographic library error while {en_what}: {e}. Check the key and certificate."
            ),
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.en)
    }
}

impl std::error::Error for Error {}
