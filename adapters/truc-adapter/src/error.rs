//! Why the adapter cannot run. Failures of one package are not errors of the adapter: they end in
//! `failed/` with a report (see `folder.rs`); these are the ones that stop the process or a loop.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("{}", .0.message_en())]
    Config(#[from] crate::config::ConfigError),
    /// The local state (sled) cannot be opened, read or made durable.
    #[error("store: {}", .0.message_en())]
    Store(#[from] store::StoreError),
    /// A folder or file of the adapter cannot be used.
    #[error("io: {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The unit's certificate and key, or the trust root, are unusable for signing/verifying.
    #[error("identity: {0}")]
    Identity(String),
    /// The relay client cannot be built (URL, certificate, CA).
    #[error("client: {}", .0.message_en())]
    Client(#[from] truc_client::ClientError),
}

impl AdapterError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> AdapterError {
        let path = path.into();
        move |source| AdapterError::Io { what, path, source }
    }

    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            AdapterError::Config(e) => e.code(),
            AdapterError::Store(_) => "adapter_store",
            AdapterError::Io { .. } => "adapter_io",
            AdapterError::Identity(_) => "adapter_identity",
            AdapterError::Client(_) => "adapter_client",
        }
    }

    pub fn message_vi(&self) -> String {
        match self {
            AdapterError::Config(e) => e.message_vi(),
            AdapterError::Store(e) => format!(
                "Không dùng được dữ liệu cục bộ của bộ chuyển đổi: {}. Hãy kiểm tra data_dir (dung lượng, quyền ghi, không có tiến trình khác đang mở).",
                e.message_vi()
            ),
            AdapterError::Io { what, path, source } => format!(
                "Không dùng được {what} {} ({source}). Hãy kiểm tra thư mục có tồn tại và quyền ghi.",
                path.display()
            ),
            AdapterError::Identity(d) => format!(
                "Chứng thư/khóa của đơn vị hoặc CA không dùng được để ký/kiểm tra chữ ký ({d}). Hãy kiểm tra unit.cert, unit.key, relay.trust_root."
            ),
            AdapterError::Client(e) => e.message_vi(),
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            AdapterError::Config(e) => e.message_en(),
            AdapterError::Store(e) => format!(
                "The adapter's local state is unusable: {}. Check data_dir (space, write permission, no other process holding it).",
                e.message_en()
            ),
            AdapterError::Io { what, path, source } => format!(
                "Cannot use {what} {} ({source}). Check that the folder exists and is writable.",
                path.display()
            ),
            AdapterError::Identity(d) => format!(
                "The unit certificate/key or the CA cannot be used to sign/verify ({d}). Check unit.cert, unit.key, relay.trust_root."
            ),
            AdapterError::Client(e) => e.message_en(),
        }
    }
}
