//! Store errors: a stable machine code, a Vietnamese message (default) and an English one, each
//! naming what failed, where, and what to do.

use std::path::PathBuf;

/// Everything that can go wrong in the store. The store is the relay's own state, so every error
/// here is the relay's fault (never the sender's); [`StoreError::retryable`] says whether trying
/// the same operation again can help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store directory (or a folder inside it) cannot be created or opened.
    #[error("store.open: cannot open the store at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// sled refused to open its database (lock held by another process, corrupt files, …).
    #[error("store.db_open: cannot open the database at {path}: {detail}")]
    DbOpen { path: PathBuf, detail: String },
    /// A read or write of the database failed.
    #[error("store.db: database operation `{op}` failed: {detail}")]
    Db { op: &'static str, detail: String },
    /// Reading or writing an archive segment (or the archive folder) failed.
    #[error("store.archive_io: archive file {path}: {source}")]
    ArchiveIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An archived package no longer has the digest it was stored under (its record in the
    /// segment `path` at `offset` is damaged or cut short).
    #[error(
        "store.archive_corrupt: the package {digest} stored at offset {offset} of archive segment {path} does not match its digest"
    )]
    ArchiveCorrupt {
        path: PathBuf,
        offset: u64,
        digest: String,
    },
    /// A record in the event log or a tree cannot be encoded or decoded.
    #[error("store.record: record {what} cannot be encoded/decoded: {detail}")]
    Record { what: String, detail: String },
    /// An earlier fsync failed; after a failed fsync the kernel may have dropped dirty pages, so
    /// nothing written since can be called durable until the process restarts and reopens.
    #[error("store.flush_failed: making writes durable failed ({detail}); restart the relay")]
    FlushFailed { detail: String },
    /// The store is shutting down and no longer accepts flush requests.
    #[error("store.closed: the store is closed")]
    Closed,
}

impl StoreError {
    /// Stable machine code (matches the prefix of the English `Display`).
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Open { .. } => "store.open",
            StoreError::DbOpen { .. } => "store.db_open",
            StoreError::Db { .. } => "store.db",
            StoreError::ArchiveIo { .. } => "store.archive_io",
            StoreError::ArchiveCorrupt { .. } => "store.archive_corrupt",
            StoreError::Record { .. } => "store.record",
            StoreError::FlushFailed { .. } => "store.flush_failed",
            StoreError::Closed => "store.closed",
        }
    }

    /// Whether the same call may succeed later (disk full, transient I/O) or never will
    /// without an operator (corruption, failed fsync, closed store).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Db { .. } | StoreError::ArchiveIo { .. } | StoreError::Open { .. }
        )
    }

    /// English message: what is wrong, where, and what to do.
    pub fn message_en(&self) -> String {
        let what_to_do = match self {
            StoreError::Open { .. } => {
                "check that the path exists or can be created and that the relay user may write to it"
            }
            StoreError::DbOpen { .. } => {
                "check that no other relay process uses this store directory; if the files are damaged, restore from backup"
            }
            StoreError::Db { .. } | StoreError::ArchiveIo { .. } => {
                "check free disk space and the disk's health, then retry"
            }
            StoreError::ArchiveCorrupt { .. } => {
                "the disk has altered an archived package: restore that segment file from a backup taken after the package was stored (segments are append-only, so a later copy holds the same bytes at the same offset) and check the disk"
            }
            StoreError::Record { .. } => {
                "the stored data was written by an incompatible version: report this to the relay maintainers"
            }
            StoreError::FlushFailed { .. } => "restart the relay after checking the disk",
            StoreError::Closed => "the relay is shutting down; retry against the restarted relay",
        };
        format!("{self}. What to do: {what_to_do}.")
    }

    /// Vietnamese message (the default for users): what is wrong, where, and what to do.
    pub fn message_vi(&self) -> String {
        match self {
            StoreError::Open { path, source } => format!(
                "Không mở được kho dữ liệu tại {}: {source}. Cần làm: kiểm tra đường dẫn tồn tại hoặc tạo được và tài khoản chạy trục có quyền ghi.",
                path.display()
            ),
            StoreError::DbOpen { path, detail } => format!(
                "Không mở được cơ sở dữ liệu tại {}: {detail}. Cần làm: kiểm tra không có tiến trình trục khác đang dùng thư mục này; nếu tệp hỏng, khôi phục từ bản sao lưu.",
                path.display()
            ),
            StoreError::Db { op, detail } => format!(
                "Thao tác cơ sở dữ liệu `{op}` thất bại: {detail}. Cần làm: kiểm tra dung lượng và tình trạng ổ đĩa rồi thử lại."
            ),
            StoreError::ArchiveIo { path, source } => format!(
                "Lỗi đọc/ghi tệp lưu trữ {}: {source}. Cần làm: kiểm tra dung lượng và tình trạng ổ đĩa rồi thử lại.",
                path.display()
            ),
            StoreError::ArchiveCorrupt {
                path,
                offset,
                digest,
            } => format!(
                "Gói tin {digest} lưu ở vị trí {offset} của tệp phân đoạn lưu trữ {} không còn khớp mã băm. Cần làm: khôi phục tệp phân đoạn này từ một bản sao lưu được tạo sau khi gói tin được lưu (phân đoạn chỉ được ghi thêm nên bản sao sau vẫn giữ nguyên các byte đó ở cùng vị trí) và kiểm tra ổ đĩa.",
                path.display()
            ),
            StoreError::Record { what, detail } => format!(
                "Bản ghi {what} không mã hóa/giải mã được: {detail}. Cần làm: dữ liệu do phiên bản không tương thích ghi ra, báo cho nhóm phát triển trục."
            ),
            StoreError::FlushFailed { detail } => format!(
                "Không ghi bền vững được dữ liệu xuống đĩa ({detail}). Cần làm: kiểm tra ổ đĩa rồi khởi động lại trục."
            ),
            StoreError::Closed => {
                "Kho dữ liệu đã đóng. Cần làm: trục đang dừng; thử lại khi trục đã chạy lại."
                    .to_owned()
            }
        }
    }
}

pub(crate) fn db_err(op: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
    move |e| StoreError::Db {
        op,
        detail: e.to_string(),
    }
}
