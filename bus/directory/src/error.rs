//! Directory errors: a stable machine code, a Vietnamese message (the default for users) and an
//! English one, each saying what is wrong, where, and what to do.

use edxml::UnitCodeError;
use store::StoreError;

/// One problem found in an import file (or in a unit given to [`crate::Directory::upsert`]).
/// An import reports every problem at once and writes nothing when there is any.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportProblem {
    /// Where: the 1-based line for CSV (the header is line 1), the 1-based position in the
    /// `units` array for JSON; 0 for the file as a whole or the JSON `groups` map.
    pub record: u64,
    /// Which field (column or key), e.g. `code`, `aliases`, `groups.tinh`; empty for the record
    /// or file as a whole.
    pub field: String,
    /// What is wrong and what to do, in Vietnamese.
    pub vi: String,
    /// The same in English.
    pub en: String,
}

impl ImportProblem {
    pub(crate) fn new(
        record: u64,
        field: impl Into<String>,
        vi: impl Into<String>,
        en: impl Into<String>,
    ) -> ImportProblem {
        ImportProblem {
            record,
            field: field.into(),
            vi: vi.into(),
            en: en.into(),
        }
    }
}

/// Everything the directory can answer with instead of a result.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// A text given where a unit code is expected does not have the national shape.
    #[error("bad_unit_code: {}", .reason.en)]
    BadUnitCode { code: String, reason: UnitCodeError },
    /// A well-formed unit code (or old code) that the directory does not hold.
    #[error("unknown_unit: unit {code} is not in the directory")]
    UnknownUnit { code: String },
    /// A recipient address (`To/OrganId`: a code, an old code, `group:NAME` or `children:CODE`)
    /// that names nothing in the directory. `malformed` says why, when the text is not even shaped
    /// like a unit code.
    #[error("unknown_recipient: recipient address {address:?} is not in the directory")]
    UnknownAddress {
        address: String,
        malformed: Option<UnitCodeError>,
    },
    /// An import file with problems; nothing was written.
    #[error("bad_import: {} problem(s) in the import; nothing was written", .problems.len())]
    Import { problems: Vec<ImportProblem> },
    /// A unit given to `upsert` that cannot be stored as it is; nothing was written.
    #[error("invalid_unit: unit {code} cannot be stored ({} problem(s))", .problems.len())]
    InvalidUnit {
        code: String,
        problems: Vec<ImportProblem>,
    },
    /// The store failed underneath (the relay's fault; see [`StoreError::retryable`]).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DirectoryError {
    /// Stable machine code (snake_case). Every store failure is `store_unavailable` (the relay's
    /// fault, worth retrying later); the store's own code is in the wrapped [`StoreError`].
    pub fn code(&self) -> &'static str {
        match self {
            DirectoryError::BadUnitCode { .. } => "bad_unit_code",
            DirectoryError::UnknownUnit { .. } => "unknown_unit",
            DirectoryError::UnknownAddress { .. } => "unknown_recipient",
            DirectoryError::Import { .. } => "bad_import",
            DirectoryError::InvalidUnit { .. } => "invalid_unit",
            DirectoryError::Store(_) => "store_unavailable",
        }
    }

    /// The problems of an import or upsert (empty for other errors).
    pub fn problems(&self) -> &[ImportProblem] {
        match self {
            DirectoryError::Import { problems } | DirectoryError::InvalidUnit { problems, .. } => {
                problems
            }
            _ => &[],
        }
    }

    /// Vietnamese message: what is wrong, where, and what to do.
    pub fn message_vi(&self) -> String {
        match self {
            DirectoryError::BadUnitCode { reason, .. } => {
                format!("{} Cần làm: sửa lại mã theo dạng NNN.NN.NN.XNN.", reason.vi)
            }
            DirectoryError::UnknownUnit { code } => format!(
                "Đơn vị {code} không có trong danh bạ. Cần làm: kiểm tra lại mã (`truc units list` để xem danh sách) hoặc nhập đơn vị bằng `truc units import`."
            ),
            DirectoryError::UnknownAddress { address, malformed } => match malformed {
                Some(reason) => format!(
                    "Địa chỉ nhận \"{address}\" không có trong danh bạ và không phải mã định danh hợp lệ: {} Cần làm: dùng mã định danh, mã cũ, \"group:TÊN\" hoặc \"children:MÃ\".",
                    reason.vi
                ),
                None => format!(
                    "Địa chỉ nhận \"{address}\" không có trong danh bạ đơn vị. Cần làm: kiểm tra lại mã đơn vị nhận hoặc đề nghị quản trị trục bổ sung đơn vị vào danh bạ."
                ),
            },
            DirectoryError::Import { problems } => format!(
                "Tệp nhập có {} lỗi, chưa ghi gì vào danh bạ. Cần làm: sửa các lỗi được liệt kê rồi nhập lại.{}",
                problems.len(),
                list(problems, |p| &p.vi)
            ),
            DirectoryError::InvalidUnit { code, problems } => format!(
                "Không lưu được đơn vị {code}, chưa ghi gì vào danh bạ. Cần làm: sửa các lỗi sau rồi gửi lại.{}",
                list(problems, |p| &p.vi)
            ),
            DirectoryError::Store(e) => e.message_vi(),
        }
    }

    /// English message: what is wrong, where, and what to do.
    pub fn message_en(&self) -> String {
        match self {
            DirectoryError::BadUnitCode { reason, .. } => {
                format!(
                    "{} What to do: correct the code to the shape NNN.NN.NN.XNN.",
                    reason.en
                )
            }
            DirectoryError::UnknownUnit { code } => format!(
                "Unit {code} is not in the directory. What to do: check the code (`truc units list` shows the units) or import the unit with `truc units import`."
            ),
            DirectoryError::UnknownAddress { address, malformed } => match malformed {
                Some(reason) => format!(
                    "Recipient address \"{address}\" is not in the directory and is not a valid unit code: {} What to do: use a unit code, an old code, \"group:NAME\" or \"children:CODE\".",
                    reason.en
                ),
                None => format!(
                    "Recipient address \"{address}\" is not in the unit directory. What to do: check the recipient's unit code, or ask the bus operator to add the unit to the directory."
                ),
            },
            DirectoryError::Import { problems } => format!(
                "The import file has {} problem(s); nothing was written to the directory. What to do: fix the problems listed and import again.{}",
                problems.len(),
                list(problems, |p| &p.en)
            ),
            DirectoryError::InvalidUnit { code, problems } => format!(
                "Unit {code} cannot be stored; nothing was written. What to do: fix these problems and send it again.{}",
                list(problems, |p| &p.en)
            ),
            DirectoryError::Store(e) => e.message_en(),
        }
    }
}

fn list(problems: &[ImportProblem], text: impl Fn(&ImportProblem) -> &String) -> String {
    let mut out = String::new();
    for p in problems {
        out.push_str(&format!("\n  {}: {}: {}", p.record, p.field, text(p)));
    }
    out
}
