//! Relay errors. Each one says **whose fault** it is (sender, recipient, relay, broker), whether the
//! same request may succeed later, the HTTP status the edge answers with, and a stable machine
//! code with a Vietnamese (default) and English message that names the problem and what to do.

use broker::BrokerError;
use directory::DirectoryError;
use store::StoreError;

/// Who has to act for the request to succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The calling unit sent something wrong or asked for something it may not have.
    Sender,
    /// A recipient is unknown, suspended, or never received what a status is about.
    Recipient,
    /// The relay itself failed (store, configuration).
    Relay,
    /// The broker failed.
    Broker,
}

/// One problem found in a package (parse or signature check), as shown to the sender.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub code: String,
    pub severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub vi: String,
    pub en: String,
}

/// A refused or failed relay call.
#[derive(Debug, Clone)]
pub struct RelayError {
    /// Stable snake_case code (documented in `schemas/openapi.yaml`).
    pub code: &'static str,
    pub fault: Fault,
    /// HTTP status the edge answers with.
    pub status: u16,
    pub retryable: bool,
    pub vi: String,
    pub en: String,
    /// The findings behind a refused package (parse errors, failed signature checks).
    pub problems: Vec<Problem>,
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.en)
    }
}

impl std::error::Error for RelayError {}

impl RelayError {
    pub(crate) fn new(
        code: &'static str,
        fault: Fault,
        status: u16,
        vi: impl Into<String>,
        en: impl Into<String>,
    ) -> RelayError {
        RelayError {
            code,
            fault,
            status,
            retryable: matches!(fault, Fault::Relay | Fault::Broker),
            vi: vi.into(),
            en: en.into(),
            problems: Vec::new(),
        }
    }

    pub(crate) fn sender(
        code: &'static str,
        status: u16,
        vi: impl Into<String>,
        en: impl Into<String>,
    ) -> RelayError {
        RelayError::new(code, Fault::Sender, status, vi, en)
    }

    pub(crate) fn with_problems(mut self, problems: Vec<Problem>) -> RelayError {
        self.problems = problems;
        self
    }

    /// The message in the requested language.
    pub fn message(&self, english: bool) -> &str {
        if english { &self.en } else { &self.vi }
    }

    /// "Not found" that does not tell whether the thing exists for someone else.
    pub(crate) fn not_found(what_vi: &str, what_en: &str, id: &str) -> RelayError {
        RelayError::sender(
            "not_found",
            404,
            format!(
                "Không tìm thấy {what_vi} \"{id}\" trong phạm vi đơn vị của bạn. Hãy kiểm tra lại mã."
            ),
            format!("No {what_en} \"{id}\" is visible to your unit. Check the id."),
        )
    }
}

impl From<StoreError> for RelayError {
    fn from(e: StoreError) -> RelayError {
        let mut r = RelayError::new(
            "store_unavailable",
            Fault::Relay,
            503,
            format!(
                "Máy chủ trục tạm thời không ghi được dữ liệu ({}). Gói tin chưa được nhận; hãy gửi lại sau ít phút.",
                e.message_vi()
            ),
            format!(
                "The relay could not write its data ({}). The package was not accepted; send it again in a few minutes.",
                e.message_en()
            ),
        );
        r.retryable = e.retryable() || r.retryable;
        r
    }
}

impl From<BrokerError> for RelayError {
    fn from(e: BrokerError) -> RelayError {
        match e {
            BrokerError::UnknownDelivery { id, .. } => {
                RelayError::not_found("gói tin trong hộp thư", "delivery in your inbox", &id)
            }
            other => RelayError::new(
                "broker_unavailable",
                Fault::Broker,
                503,
                format!(
                    "Hàng đợi của trục tạm thời không hoạt động ({}). Hãy thử lại sau ít phút.",
                    other.message_vi()
                ),
                format!(
                    "The relay's queues are unavailable ({}). Try again in a few minutes.",
                    other.message_en()
                ),
            ),
        }
    }
}

impl From<DirectoryError> for RelayError {
    fn from(e: DirectoryError) -> RelayError {
        match &e {
            DirectoryError::Store(_) => RelayError::new(
                "store_unavailable",
                Fault::Relay,
                503,
                e.message_vi(),
                e.message_en(),
            ),
            _ => RelayError::new(
                e.code(),
                Fault::Recipient,
                422,
                e.message_vi(),
                e.message_en(),
            ),
        }
    }
}
