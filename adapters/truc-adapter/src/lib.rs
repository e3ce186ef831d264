//! `truc-adapter` runs beside one unit's document-management system (DMS) and does everything
//! the DMS should not have to: it signs the unit's packages with the unit key, keeps them in a
//! durable local outbox until the relay has accepted them (retrying with backoff and the same
//! bytes, which the relay deduplicates), writes received packages into the DMS's folders
//! atomically and exactly once, and answers each arrived document with a signed status 01.
//!
//! Folder mode (`outbound.rs`, `inbound.rs`): the DMS drops `*.edxml` into `outbox/`; results go
//! to `sent/` (with `.result.json`) or `failed/` (with a clerk-readable `.error.txt`); received
//! documents appear in `inbox/`, status packages in `receipts/`. Local HTTP mode (`http.rs`,
//! loopback only) is a second door onto the same outbox and received packages.
//!
//! It owns its config file, its local state (a `store` tree, see `state.rs`) and the folders. It
//! talks to the relay only through `truc-client` and must not know the relay, server or broker
//! crates: the relay is a URL.

pub mod config;
mod disk;
pub mod error;
pub mod http;
mod inbound;
mod outbound;
pub mod receipt;
mod state;

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

pub use config::{Config, ConfigError, Folders};
pub use error::AdapterError;

/// One running adapter. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Adapter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("unit", &self.inner.config.unit)
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// Read once at start; never changes while running.
    config: Config,
    /// The durable outbox and the record of received ids (owned here; closed when the last
    /// clone of the adapter is dropped, after a final fsync).
    state: state::State,
    /// Relay client asking for Vietnamese messages (the default for clerks).
    client: truc_client::Client,
    /// The same, asking for English: used once per refused package for the report's second half.
    client_en: truc_client::Client,
    /// The unit's signing key (sender role).
    key: dsig::SigningKey,
    /// Roots for verifying what the relay delivers (sender's and relay's signatures).
    trust: dsig::TrustStore,
    /// Woken when a package enters the local outbox.
    wake: Notify,
    /// Outbox seqs a delivery task is working on (so the dispatcher starts each once).
    in_flight: Mutex<HashSet<u64>>,
}

/// Unix seconds now.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Adapter {
    /// Opens the local state, reads the identity and creates the folders. Nothing is sent yet.
    pub fn open(config: Config) -> Result<Adapter, AdapterError> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(AdapterError::io("the file", p.to_path_buf()))
        };
        let cert = read(&config.cert)?;
        let key_pem = read(&config.key)?;
        let trust_pem = read(&config.trust_root)?;
        let key = dsig::SigningKey::from_pem(&key_pem, &cert)
            .map_err(|e| AdapterError::Identity(e.to_string()))?;
        let trust = dsig::TrustStore::new(&trust_pem, b"")
            .map_err(|e| AdapterError::Identity(e.to_string()))?;
        let identity = truc_client::Identity {
            cert_pem: cert,
            key_pem,
        };
        let client = truc_client::Client::new(&config.relay_url, &identity, &trust_pem)?;
        let client_en = client.clone().english(true);
        for (_, dir) in config.folder.all() {
            std::fs::create_dir_all(dir).map_err(AdapterError::io("the folder", dir))?;
        }
        let pending = config.data_dir.join("pending");
        std::fs::create_dir_all(&pending).map_err(AdapterError::io("the folder", &pending))?;
        let store = store::Store::open(config.data_dir.join("store"))?;
        let state = state::State::open(store)?;
        Ok(Adapter {
            inner: Arc::new(Inner {
                config,
                state,
                client,
                client_en,
                key,
                trust,
                wake: Notify::new(),
                in_flight: Mutex::new(HashSet::new()),
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Runs folder mode until `shutdown` completes: watches `outbox/`, delivers the local outbox,
    /// long-polls the inbox. Work in progress is durable; stopping at any moment loses nothing.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), AdapterError> {
        tracing::info!(
            unit = %self.inner.config.unit,
            outbox = %self.inner.config.folder.outbox.display(),
            inbox = %self.inner.config.folder.inbox.display(),
            "adapter running"
        );
        let http = {
            let adapter = self.clone();
            let listen = self.inner.config.http_listen;
            async move {
                let Some(addr) = listen else {
                    return std::future::pending().await;
                };
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(AdapterError::io("the local HTTP address", addr.to_string()))?;
                tracing::info!(%addr, "local HTTP mode listening");
                http::serve(adapter, listener, std::future::pending()).await
            }
        };
        let scan = outbound::scan_loop(self.clone());
        let send = outbound::send_loop(self.clone());
        let recv = inbound::receive_loop(self.clone());
        let result = tokio::select! {
            r = scan => r,
            r = send => r,
            r = recv => r,
            r = http => r,
            () = shutdown => Ok(()),
        };
        // Whatever is in flight is in the local outbox; make the last writes durable.
        let flushed = self.inner.state.store.flush().await;
        result.and(flushed.map_err(AdapterError::from))
    }
}
