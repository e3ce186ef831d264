//! `relay` owns what happens to a package between the HTTP edge and the mailboxes: the pipeline
//! (parse → verify the sender's signature and that the signer is `From` → deduplicate → seal with
//! the relay's `TraceHeader` and signature → archive → expand groups and aliases → enqueue → record
//! events), the routing of status packages back to the sender (and of a withdrawal to the
//! recipients), the inbox calls a unit makes (long-poll fetch, read, ack), and tracking: a fold of
//! the append-only event log into per-(package, recipient) timelines, rebuildable from the log.
//!
//! It knows edXML, signatures, the unit directory, the store and the `Broker` trait. It must not
//! know HTTP, TLS, HTML or lapin: `bus/server` turns its calls and [`RelayError`]s into responses,
//! and the broker backend is whatever [`broker::AnyBroker`] was opened with.
//!
//! Durability: [`Relay::submit`] returns only after the sealed package, its events, its tracking
//! rows and its messages are durable. The records are durable *before* any recipient can fetch
//! the messages, so no recipient can fetch (and answer) a package a crash could make the relay
//! forget: with RabbitMQ the store is flushed before publishing; the embedded broker writes the
//! messages into the same store and offers them only once its one flush (covering the records
//! too) is done. A crash between record and publish is repaired by the sender's retry (the
//! dedup path republishes to every recipient not yet delivered). An ack is durable before it
//! returns. After a crash the views are brought up to the log on open.
//!
//! Several relay nodes on one RabbitMQ ([`Relay::open_clustered`]) share their events and the
//! sealed bodies through a RabbitMQ stream, so any node serves any unit; see the `cluster` module
//! (`src/cluster.rs`) for the rules and what is eventual.

mod cluster;
mod error;
mod mailbox;
mod ops;
mod pipeline;
mod readings;
mod tracking;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use broker::{AnyBroker, Clock, MessageKind};
use directory::{Directory, Unit, UnitState};
use dsig::{SigningKey, TrustStore};
use serde::Serialize;
use store::Store;

pub use error::{Fault, Problem, RelayError};
pub use ops::{
    BrokerCheck, DEAD_LETTER_ROWS, DeadLetterRow, MailboxRow, MinuteRate, OpsMessage, Overview,
    PING_TIMEOUT, RATE_MINUTES, Rates, Refusals, STATS_WAIT, SignatureFailures, Totals,
    overview_offline,
};
pub use readings::{READING_TIMEOUT, Reading, Want};
pub use tracking::{
    Event, PackageQuery, PackageSummary, Page, PageOptions, RecipientTrack, Role, TrackEvent,
    Tracking,
};

/// What the relay needs besides its store, broker and directory.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// `OrganId` written in the relay's `TraceHeader` (the relay's own code).
    pub relay_id: String,
    /// The relay's sealing key (a relay certificate, `OU=Relay`).
    pub seal: Arc<SigningKey>,
    /// Roots and CRLs sender signatures must chain to.
    pub trust: Arc<TrustStore>,
    /// Size and depth limits for incoming packages.
    pub limits: edxml::Limits,
    /// Where time comes from (a manual clock in tests).
    pub clock: Arc<dyn Clock>,
}

/// The answer to an accepted submission (also the answer replayed to a resubmission).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Accepted {
    /// Relay id of the package (tracking and inbox id).
    pub id: String,
    pub document_id: String,
    pub recipients: Vec<RecipientState>,
    /// True when this answer is the stored answer to an earlier identical submission.
    #[serde(skip)]
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RecipientState {
    pub unit: String,
    pub state: String,
}

/// One waiting item of a unit's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboxItem {
    pub id: String,
    /// `package` or `status`.
    pub kind: MessageKind,
    pub from: String,
    pub document_id: String,
    pub subject: String,
    pub size: u64,
    /// RFC 3339, UTC.
    pub queued_at: String,
}

/// Counters since start (for `/metrics`; bounded: no labels with ids).
#[derive(Debug, Default)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub signature_failures: AtomicU64,
    pub delivered: AtomicU64,
    pub statuses: AtomicU64,
}

/// A snapshot of [`Counters`] plus what `code` each rejection had (bounded set of codes).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CounterSnapshot {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub signature_failures: u64,
    pub delivered: u64,
    pub statuses: u64,
}

/// The relay: cheap to clone; every clone shares one store, broker, directory and config.
#[derive(Debug, Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Opened by the caller; the relay keeps a handle for its whole life.
    store: Store,
    broker: AnyBroker,
    directory: Directory,
    config: RelayConfig,
    tracking: tracking::Views,
    counters: Counters,
    /// Per-minute activity of the last hour for the operator view; in memory, bounded.
    rates: ops::RateRing,
    /// Mailbox readings for the operator view and /metrics, taken off the request path.
    readings: Arc<readings::Readings>,
    /// Membership of a group of relay nodes sharing one RabbitMQ (`None`: this relay alone).
    cluster: Option<cluster::Cluster>,
    /// One permit per core: how many submissions run their checks, seal and records at once.
    /// More would only take turns on the cores (64 in flight made as many threads preempt each
    /// other mid-signature), while waiting here costs nothing.
    checks: tokio::sync::Semaphore,
}

impl Relay {
    /// Opens the relay over an opened store, broker and directory, and brings the tracking views
    /// up to the event log (they may lag it after a crash).
    pub fn open(
        store: Store,
        broker: AnyBroker,
        directory: Directory,
        config: RelayConfig,
    ) -> Result<Relay, RelayError> {
        Relay::open_with(store, broker, directory, config, None)
    }

    fn open_with(
        store: Store,
        broker: AnyBroker,
        directory: Directory,
        config: RelayConfig,
        cluster: Option<cluster::Cluster>,
    ) -> Result<Relay, RelayError> {
        let tracking = tracking::Views::open(&store)?;
        tracking.catch_up()?;
        Ok(Relay {
            inner: Arc::new(Inner {
                store,
                broker,
                directory,
                config,
                tracking,
                counters: Counters::default(),
                rates: ops::RateRing::default(),
                readings: Arc::default(),
                cluster,
                checks: tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, |n| n.get()),
                ),
            }),
        })
    }

    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    pub fn broker(&self) -> &AnyBroker {
        &self.inner.broker
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &RelayConfig {
        &self.inner.config
    }

    pub fn counters(&self) -> CounterSnapshot {
        let c = &self.inner.counters;
        CounterSnapshot {
            accepted: c.accepted.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            signature_failures: c.signature_failures.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            statuses: c.statuses.load(Ordering::Relaxed),
        }
    }

    fn now(&self) -> SystemTime {
        self.inner.config.clock.now()
    }

    /// Who is calling: the subject CN of the client certificate (already chain-checked by TLS)
    /// and the certificate's DER. The unit must be in the directory and active; when the
    /// directory lists certificate fingerprints for it, the certificate must be one of them.
    pub fn authenticate(&self, cn: &str, cert_der: &[u8]) -> Result<Unit, RelayError> {
        let unit = self.inner.directory.resolve(cn)?;
        let Some(unit) = unit.filter(|u| u.code == cn) else {
            return Err(RelayError::sender(
                "unknown_unit",
                403,
                format!(
                    "Chứng thư số của bạn mang mã đơn vị \"{cn}\", nhưng mã này không có trong danh bạ của trục. Hãy đề nghị quản trị trục thêm đơn vị (truc units import)."
                ),
                format!(
                    "Your certificate names unit \"{cn}\", which is not in the relay's directory. Ask the relay operator to add it (truc units import)."
                ),
            ));
        };
        if unit.state == UnitState::Suspended {
            return Err(RelayError::sender(
                "unit_suspended",
                403,
                format!(
                    "Đơn vị {cn} đang bị tạm dừng trên trục nên không gửi, nhận được. Hãy liên hệ quản trị trục."
                ),
                format!(
                    "Unit {cn} is suspended on the relay and can neither send nor receive. Contact the relay operator."
                ),
            ));
        }
        if !unit.fingerprints.is_empty() {
            let fp = directory::fingerprint(cert_der);
            if !unit
                .fingerprints
                .iter()
                .any(|f| f.eq_ignore_ascii_case(&fp))
            {
                return Err(RelayError::sender(
                    "certificate_not_registered",
                    403,
                    format!(
                        "Chứng thư số (SHA-256 {fp}) không nằm trong danh sách chứng thư đã đăng ký của đơn vị {cn}. Hãy đăng ký chứng thư này với quản trị trục."
                    ),
                    format!(
                        "This certificate (SHA-256 {fp}) is not among the certificates registered for unit {cn}. Register it with the relay operator."
                    ),
                ));
            }
        }
        Ok(unit)
    }

    /// Rebuilds every tracking view from the event log; returns how many events were folded.
    pub fn rebuild_tracking(&self) -> Result<u64, RelayError> {
        self.inner.tracking.rebuild()
    }

    /// Waits until every write so far is durable.
    pub async fn flush(&self) -> Result<(), RelayError> {
        self.inner.store.flush().await?;
        Ok(())
    }
}

/// Tracking alone, for tools that read or rebuild it while the relay is stopped (`truc track`):
/// no broker, no keys, no network. Opening it brings the views up to the event log, as
/// [`Relay::open`] does.
#[derive(Debug)]
pub struct TrackingBook {
    store: Store,
    directory: Directory,
    views: tracking::Views,
}

impl TrackingBook {
    pub fn open(store: Store, directory: Directory) -> Result<TrackingBook, RelayError> {
        let views = tracking::Views::open(&store)?;
        views.catch_up()?;
        Ok(TrackingBook {
            store,
            directory,
            views,
        })
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Every recipient's timeline of package `id` (no unit check: for operators' tools).
    pub fn tracking(&self, id: &str) -> Result<Tracking, RelayError> {
        let header = self
            .views
            .header(id)?
            .ok_or_else(|| RelayError::not_found("gói tin", "package", id))?;
        Ok(self.views.tracking(&header, None)?)
    }

    /// Rebuilds every view from the event log; returns how many events were folded.
    pub fn rebuild(&self) -> Result<u64, RelayError> {
        self.views.rebuild()
    }

    /// Waits until every write so far is durable.
    pub async fn flush(&self) -> Result<(), RelayError> {
        self.store.flush().await?;
        Ok(())
    }
}

/// RFC 3339 (UTC, milliseconds) for API answers.
pub fn rfc3339(t: SystemTime) -> String {
    let ns = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let odt = time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    odt.format(&fmt).unwrap_or_default()
}
