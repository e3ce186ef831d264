//! `store` owns Trục's durable state on one machine: the **archive** (each accepted package once,
//! by its SHA-256, appended to large segment files with an index in sled; see [`Archive`]), the
//! append-only **event log** that tracking folds over, and **named key-value trees** for views,
//! indexes and (in embedded mode) the broker's mailboxes. Durability is explicit: writes become
//! durable at the next [`Store::flush`], which is a group commit (concurrent callers share one
//! round: the archive segments written since the last round are fsynced, then their index entries
//! and everything else in the database are flushed, so nothing durable points at bytes that are
//! not). Small writes never fsync on their own; a large package's segment is fsynced by its put
//! (see [`Archive`]).
//!
//! It is the only crate that knows sled (0.34, behind this narrow interface so it can be replaced
//! if the kill -9 tests ever fail on it). It knows nothing of edXML, signatures, units, HTTP or
//! brokers: it stores bytes and serde records. It reads no clock.
//!
//! Lifetime: a [`Store`] is a cheap clone of one shared handle; the database closes (after a
//! final fsync) when the last `Store`, [`KvTree`] and [`EventLog`] handle is dropped. Only one
//! process may open a store directory at a time (sled's lock file).

mod archive;
mod error;
mod events;
mod flush;
mod tree;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use archive::{Archive, ArchiveProblem, ArchiveReport, BadDigest, Digest, Located};
pub use error::StoreError;
pub use events::{EventLog, Seq};
pub use tree::{Batch, Entry, KvTree};

use error::db_err;
use flush::Flusher;

/// Tunables for [`Store::open_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled's page cache, in bytes. sled's own default (1 GiB) alone would break the relay's
    /// 1 GiB RSS budget; 64 MiB is the default here. sled keeps much more than this in memory
    /// (its node fragments and page table grow with the data), so the cache is kept small:
    /// measured with `truc bench`, 1,000,000 queued entries took the same RSS with 32 and
    /// 64 MiB, and the OS page cache holds the file anyway.
    pub cache_bytes: u64,
    /// Size past which the archive starts a new segment file (default 256 MiB). A package larger
    /// than this gets a segment of its own.
    pub segment_bytes: u64,
    /// A package at least this large (default 8 MiB) gets a segment file of its own, written and
    /// fsynced by the putting thread, so it does not hold up the small puts and flushes beside it.
    pub large_package_bytes: u64,
    /// Shortest time between the starts of two group-commit rounds under load (default 8 ms;
    /// see `flush.rs`). A flush then waits up to this long so that one round of fsyncs serves
    /// more callers; a lone caller, or the first after a quiet spell, waits for nothing. Zero: a
    /// round starts as soon as one is asked for and the last one is over.
    pub commit_gap: std::time::Duration,
}

/// The default [`StoreOptions::commit_gap`] (the relay's `[relay] commit_gap_ms` defaults to it).
pub const DEFAULT_COMMIT_GAP: std::time::Duration = std::time::Duration::from_millis(8);

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: 64 * 1024 * 1024,
            segment_bytes: 256 * 1024 * 1024,
            large_package_bytes: 8 * 1024 * 1024,
            commit_gap: DEFAULT_COMMIT_GAP,
        }
    }
}

/// The open store. Clone it freely: all clones share one database, archive and flusher.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The store directory given to `open`.
    dir: PathBuf,
    /// The segment files under `<dir>/archive`, indexed in the `__archive` tree.
    archive: Archive,
    /// sled's tree holding the event log (`__events`, keys = big-endian seq).
    events: sled::Tree,
    /// Next event seq, shared by every `EventLog` handle (see `events.rs`).
    next_seq: Arc<Mutex<Seq>>,
    /// Group-commit thread; dropped first (field order), which runs a final fsync and joins it.
    flusher: Flusher,
    /// The sled database under `<dir>/db`.
    db: sled::Db,
}

const EVENTS_TREE: &str = "__events";

impl Store {
    /// Opens (creating if needed) the store in `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_with(dir, StoreOptions::default())
    }

    /// Opens (creating if needed) the store in `dir`.
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Store, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Open {
            path: dir.clone(),
            source,
        })?;
        let db_path = dir.join("db");
        let db = open_db(&db_path, options.cache_bytes)?;
        let index = db
            .open_tree(archive::INDEX_TREE)
            .map_err(db_err("open_tree"))?;
        let archive = Archive::open(
            dir.join("archive"),
            index,
            options.segment_bytes,
            options.large_package_bytes,
        )?;
        let events = db.open_tree(EVENTS_TREE).map_err(db_err("open_tree"))?;
        let next_seq = Arc::new(Mutex::new(events::next_seq(&events)?));
        let flusher =
            Flusher::start(db.clone(), archive.shared(), options.commit_gap).map_err(|source| {
                StoreError::Open {
                    path: dir.clone(),
                    source,
                }
            })?;
        Ok(Store {
            inner: Arc::new(Inner {
                dir,
                archive,
                events,
                next_seq,
                flusher,
                db,
            }),
        })
    }

    /// The directory this store was opened in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The package archive (blocking file I/O: use from `spawn_blocking`; a put is readable at
    /// once and durable after the next [`Store::flush`]).
    pub fn archive(&self) -> &Archive {
        &self.inner.archive
    }

    /// A typed handle on the event log. Every handle shares the log and its numbering; use one
    /// record type per store (an enum of all events).
    pub fn events<E: serde::Serialize + serde::de::DeserializeOwned>(&self) -> EventLog<E> {
        EventLog::new(self.inner.events.clone(), Arc::clone(&self.inner.next_seq))
    }

    /// The named tree, created if absent. Names starting with `__` are reserved for the store.
    pub fn tree(&self, name: &str) -> Result<KvTree, StoreError> {
        if name.starts_with("__") {
            return Err(StoreError::Db {
                op: "tree",
                detail: format!("tree name {name:?} is reserved (starts with `__`)"),
            });
        }
        let tree = self.inner.db.open_tree(name).map_err(db_err("open_tree"))?;
        Ok(KvTree::new(tree))
    }

    /// Makes every write issued before this call durable (archive puts, event log, trees).
    /// Concurrent callers share one round of fsyncs.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flusher.flush().await
    }

    /// Whether `other` is a handle on this same open store (so one flush covers both).
    pub fn is(&self, other: &Store) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// How many fsync rounds the group commit has run since open (for benchmarks and metrics).
    pub fn fsync_count(&self) -> u64 {
        self.inner.flusher.fsyncs()
    }

    /// How many group-commit rounds waited out part of the commit gap (for tests).
    pub fn commit_gap_waits(&self) -> u64 {
        self.inner.flusher.gap_waits()
    }

    /// A number never returned before in this store, across restarts, increasing over time
    /// (gaps are possible after a crash). For keys that must sort in creation order.
    pub fn generate_id(&self) -> Result<u64, StoreError> {
        self.inner.db.generate_id().map_err(db_err("generate_id"))
    }

    /// Bytes the database occupies on disk (for metrics and space-amplification checks).
    pub fn db_size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner.db.size_on_disk().map_err(db_err("size_on_disk"))
    }
}

/// How long `open` waits for another holder of the database lock to let go. sled releases its file
/// lock from background I/O threads that can outlive the handle by a moment, so a store dropped and
/// reopened at once (a quick restart, a test) may briefly find the lock still held. A store that is
/// really open elsewhere is still refused, after this wait.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

fn open_db(db_path: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        let result = sled::Config::new()
            .path(db_path)
            .cache_capacity(cache_bytes)
            // No background flusher of sled's own: durability comes from our group commit
            // (`Store::flush`), and that thread would hold the file lock for up to one interval
            // after the store is dropped.
            .flush_every_ms(None)
            .open();
        match result {
            // sled reports a held lock only as text (ErrorKind::Other, "could not acquire lock").
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => {
                return Err(StoreError::DbOpen {
                    path: db_path.to_path_buf(),
                    detail: e.to_string(),
                });
            }
            Ok(db) => return Ok(db),
        }
    }
}
