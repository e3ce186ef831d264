//! The archive: each accepted package stored once, by its SHA-256, in append-only segment files.
//!
//! Layout: `<store>/archive/seg-000001.dat`, `seg-000002.dat`, … Each segment is a run of records,
//! one per package, written back to back:
//!
//! ```text
//! offset  size  field
//!      0     8  magic  b"TRUCARC1"
//!      8     8  payload length n, unsigned big-endian
//!     16    32  SHA-256 of the payload (the package's digest)
//!     48     n  the package, byte for byte
//! ```
//!
//! A new segment is started when the next record would push the current one past
//! [`crate::StoreOptions::segment_bytes`] (a record larger than that gets a segment of its own).
//! Small packages are appended under one writer lock, taken only after the package is hashed and
//! held only while its bytes are copied into the page cache. A package of at least
//! [`crate::StoreOptions::large_package_bytes`] gets a new segment of its own instead, written and
//! fsynced by the putting thread without that lock, so a 100 MB package neither stalls the small
//! puts beside it nor hands the group commit a 100 MB writeback.
//! The index (digest → segment, record offset, payload length) lives in the sled tree
//! `__archive`, beside one "durable end" per segment. One file per package cost an inode, a folder
//! entry and an fsync each (a quarter of the relay's CPU in the kernel); appending to a few large
//! files costs one `fdatasync` per flush round for all of them.
//!
//! Durability: a put appends the record (no fsync) and parks its index entry in memory, where
//! `get` and `contains` already see it. The next flush round ([`crate::Store::flush`]) takes the
//! parked entries, `fdatasync`s the segments they point into (and the archive folder if a segment
//! was created), only then writes the entries and the new durable ends into the index, and then
//! flushes the database. So a durable index entry never points at bytes that are not on disk, and
//! a put is durable once a flush that started after it has returned.
//!
//! After a crash: past a segment's durable end lie records whose flush never finished. They are not
//! garbage: after a process crash (kill -9) their bytes are intact in the page cache, and other
//! writes made in the same moments (a tracking event in sled, which sled may persist without an
//! explicit flush) can refer to them. So opening the store walks every segment from its durable
//! end, checks each record's magic, length and SHA-256, fsyncs and indexes the intact ones, and
//! truncates only at the first torn or damaged record. (The relay's end-to-end kill -9 test,
//! `bus/cli/tests/durability.rs`, found the earlier "truncate to the durable end" rule losing
//! bodies of packages whose tracking record had survived.) Nothing acknowledged is lost, and
//! nothing intact is thrown away.
//! Every record carries its length and digest, so [`Archive::verify`] can walk the segments and
//! check each record without the index (and the index could be rebuilt from such a walk).
//!
//! Auditors: [`Archive::locate`] names the segment file, offset and length of a package, so
//! standard tools can cut it out and check it, e.g.
//! `dd if=seg-000001.dat iflag=skip_bytes,count_bytes skip=OFFSET count=LEN | sha256sum`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use sha2::{Digest as _, Sha256};

use crate::StoreError;
use crate::error::db_err;

/// A SHA-256 digest: the name of an archived package. Serialized as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

/// Error for a string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 digest (64 hex digits): {0:?}")]
pub struct BadDigest(pub String);

impl FromStr for Digest {
    type Err = BadDigest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| BadDigest(s.to_owned()))?;
        Ok(Digest(out))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Record header: magic, payload length, digest.
const MAGIC: [u8; 8] = *b"TRUCARC1";
const HEADER_LEN: u64 = 48;
/// The index tree in sled. Keys: `d` + 32-byte digest → [`Location`]; `s` + segment number
/// (u32 big-endian) → durable end (u64 big-endian).
pub(crate) const INDEX_TREE: &str = "__archive";
/// At most this many segment files are kept open for reads; past it, all but the one being
/// written are closed (and reopened on demand).
const MAX_OPEN_SEGMENTS: usize = 256;

/// Where a package's record lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Location {
    segment: u32,
    /// Offset of the record (its header) in the segment.
    offset: u64,
    /// Length of the payload (the package).
    len: u64,
}

impl Location {
    fn end(&self) -> u64 {
        self.offset + HEADER_LEN + self.len
    }

    fn encode(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out[0..4].copy_from_slice(&self.segment.to_be_bytes());
        out[4..12].copy_from_slice(&self.offset.to_be_bytes());
        out[12..20].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Location> {
        let segment = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?);
        let offset = u64::from_be_bytes(bytes.get(4..12)?.try_into().ok()?);
        let len = u64::from_be_bytes(bytes.get(12..20)?.try_into().ok()?);
        (bytes.len() == 20).then_some(Location {
            segment,
            offset,
            len,
        })
    }
}

fn digest_key(digest: &Digest) -> [u8; 33] {
    let mut key = [0u8; 33];
    key[0] = b'd';
    key[1..].copy_from_slice(digest.as_bytes());
    key
}

fn end_key(segment: u32) -> [u8; 5] {
    let mut key = [0u8; 5];
    key[0] = b's';
    key[1..].copy_from_slice(&segment.to_be_bytes());
    key
}

fn header(digest: &Digest, len: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..16].copy_from_slice(&len.to_be_bytes());
    h[16..48].copy_from_slice(digest.as_bytes());
    h
}

/// A header read back: `None` if the magic is wrong.
fn parse_header(h: &[u8; HEADER_LEN as usize]) -> Option<(u64, Digest)> {
    if h[0..8] != MAGIC {
        return None;
    }
    let len = u64::from_be_bytes(h[8..16].try_into().ok()?);
    let digest = Digest(h[16..48].try_into().ok()?);
    Some((len, digest))
}

/// Where an archived package's bytes are, for streaming it or for an auditor's tools. The bytes
/// are not checked by [`Archive::locate`]: hash them while reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The segment file.
    pub path: PathBuf,
    /// Offset of the package's first byte in the segment.
    pub offset: u64,
    /// Length of the package in bytes.
    pub len: u64,
}

/// What [`Archive::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Segment files walked.
    pub segments: u32,
    /// Records whose bytes match their digest and that the index points at.
    pub records: u64,
    /// Payload bytes in those records.
    pub bytes: u64,
    /// Everything wrong, in segment and offset order.
    pub problems: Vec<ArchiveProblem>,
}

/// One damaged or unindexed spot in a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveProblem {
    pub path: PathBuf,
    /// Offset of the record (or of the unreadable bytes) in the segment.
    pub offset: u64,
    /// What is wrong, in English (for logs and operators' tools).
    pub what: String,
}

/// State shared by the archive handle and the store's flusher thread.
#[derive(Debug)]
pub(crate) struct Shared {
    /// `<store>/archive`.
    root: PathBuf,
    /// The sled tree [`INDEX_TREE`]; written only by the flusher (`commit`), so every entry in it
    /// points at fsynced bytes once the database flush that follows has run.
    index: sled::Tree,
    /// Entries of records written since the last commit: visible to `get`/`contains`, not yet in
    /// the index. A commit copies them to the index and only then removes them from here, so a
    /// reader that looks here first and in the index second never misses a record.
    pending: Mutex<HashMap<Digest, Location>>,
    /// Open segment files, shared by readers (`pread`), the writer (`pwrite`) and the flusher
    /// (`fdatasync`). Bounded by [`MAX_OPEN_SEGMENTS`].
    files: RwLock<HashMap<u32, Arc<File>>>,
    /// The segment small puts append to (0 before the first one exists); never evicted from
    /// `files`.
    active: AtomicU32,
    /// A segment file was created and the folder has not been fsynced since.
    dir_dirty: AtomicBool,
}

/// Where small puts append, guarded by the archive's writer lock.
#[derive(Debug)]
struct Writer {
    /// The segment appended to; `None` in a new archive until the first small put.
    active: Option<Active>,
    /// The number the next new segment gets (a rollover or a large package's own), one past the
    /// highest that exists.
    next_segment: u32,
}

/// Large packages being written outside the writer lock, by digest, with their segment.
#[derive(Debug, Default)]
struct Large {
    writing: Mutex<HashMap<Digest, u32>>,
    /// Signalled when a large put finishes (stored or failed).
    done: std::sync::Condvar,
}

/// The segment small puts append to.
#[derive(Debug)]
struct Active {
    segment: u32,
    file: Arc<File>,
    /// Where the next record goes.
    len: u64,
}

/// Handle on the archive. Owned by the store; reached through [`crate::Store::archive`]. All
/// methods block on disk I/O: call them from `spawn_blocking` in async code.
#[derive(Debug)]
pub struct Archive {
    shared: Arc<Shared>,
    /// The append position. Held while a small record is copied into the segment (the hash is
    /// computed before taking it), so concurrent puts serialize only on the copy.
    writer: Mutex<Writer>,
    /// Large puts in progress, so a second put of the same large bytes waits instead of storing
    /// them twice.
    large: Large,
    /// Roll over to a new segment past this size.
    segment_bytes: u64,
    /// Packages of at least this size get a segment of their own.
    large_package_bytes: u64,
}

impl Shared {
    fn segment_path(&self, segment: u32) -> PathBuf {
        segment_path(&self.root, segment)
    }

    /// The record's location, parked or indexed.
    fn entry(&self, digest: &Digest) -> Result<Option<Location>, StoreError> {
        // Parked first, then the index: see `pending`.
        if let Some(loc) = lock(&self.pending).get(digest) {
            return Ok(Some(*loc));
        }
        match self
            .index
            .get(digest_key(digest))
            .map_err(db_err("archive.index_get"))?
        {
            None => Ok(None),
            Some(v) => Location::decode(&v)
                .map(Some)
                .ok_or_else(|| StoreError::Record {
                    what: format!("archive index entry {digest}"),
                    detail: format!("expected 20 bytes, found {}", v.len()),
                }),
        }
    }

    /// The open file of `segment`, opening it (read-only) if needed.
    fn file(&self, segment: u32) -> Result<Arc<File>, StoreError> {
        if let Some(f) = self
            .files
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&segment)
        {
            return Ok(Arc::clone(f));
        }
        let path = self.segment_path(segment);
        let file = Arc::new(File::open(&path).map_err(|source| StoreError::ArchiveIo {
            path: path.clone(),
            source,
        })?);
        let mut files = self.files.write().unwrap_or_else(PoisonError::into_inner);
        if files.len() >= MAX_OPEN_SEGMENTS {
            let active = self.active.load(Ordering::SeqCst);
            files.retain(|s, _| *s == active);
        }
        Ok(Arc::clone(files.entry(segment).or_insert(file)))
    }

    fn durable_end(&self, segment: u32) -> Result<u64, StoreError> {
        match self
            .index
            .get(end_key(segment))
            .map_err(db_err("archive.index_get"))?
        {
            None => Ok(0),
            Some(v) => <[u8; 8]>::try_from(&v[..])
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Record {
                    what: format!("archive durable end of segment {segment}"),
                    detail: format!("expected 8 bytes, found {}", v.len()),
                }),
        }
    }

    /// The archive's part of a flush round, run by the flusher before the database flush: make
    /// the parked records' bytes durable, then index them. See the module doc.
    pub(crate) fn commit(&self) -> Result<(), StoreError> {
        let parked: Vec<(Digest, Location)> =
            lock(&self.pending).iter().map(|(d, l)| (*d, *l)).collect();
        if parked.is_empty() && !self.dir_dirty.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut ends: BTreeMap<u32, u64> = BTreeMap::new();
        for (_, loc) in &parked {
            let end = ends.entry(loc.segment).or_default();
            *end = (*end).max(loc.end());
        }
        for segment in ends.keys() {
            let path = self.segment_path(*segment);
            self.file(*segment)?
                .sync_data()
                .map_err(|source| StoreError::ArchiveIo { path, source })?;
        }
        // A segment created since the last round must keep its name across a crash. Read after
        // taking `parked`: the creator set the flag before parking any record in that segment.
        if self.dir_dirty.swap(false, Ordering::SeqCst) {
            sync_dir(&self.root)?;
        }
        if parked.is_empty() {
            return Ok(());
        }
        // Single writes, entries before ends, not one batch: a sled batch holds sled's global
        // write lock while it waits for the disk twice, so every other read and write of the
        // store (every submission, fetch and ack) stood still once per flush round. A crash
        // part-way leaves some entries without their new end; the next open walks the segment
        // from the old end again and indexes the same records (`recover_tail`).
        for (digest, loc) in &parked {
            self.index
                .insert(&digest_key(digest)[..], &loc.encode()[..])
                .map_err(db_err("archive.index_commit"))?;
        }
        for (segment, end) in &ends {
            let end = (*end).max(self.durable_end(*segment)?);
            self.index
                .insert(&end_key(*segment)[..], &end.to_be_bytes()[..])
                .map_err(db_err("archive.index_commit"))?;
        }
        let mut pending = lock(&self.pending);
        for (digest, loc) in &parked {
            if pending.get(digest) == Some(loc) {
                pending.remove(digest);
            }
        }
        Ok(())
    }
}

impl Archive {
    pub(crate) fn open(
        root: PathBuf,
        index: sled::Tree,
        segment_bytes: u64,
        large_package_bytes: u64,
    ) -> Result<Archive, StoreError> {
        let open_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Open { path, source }
        };
        fs::create_dir_all(&root).map_err(open_err(&root))?;
        let mut segments = Vec::new();
        for entry in fs::read_dir(&root).map_err(open_err(&root))? {
            let entry = entry.map_err(open_err(&root))?;
            if let Some(n) = entry.file_name().to_str().and_then(parse_segment_name) {
                segments.push(n);
            }
        }
        segments.sort_unstable();
        let shared = Arc::new(Shared {
            root,
            index,
            pending: Mutex::default(),
            files: RwLock::default(),
            active: AtomicU32::new(0),
            dir_dirty: AtomicBool::new(false),
        });
        // Cut every segment back to its durable end: what lies past it was never acknowledged.
        let mut active = None;
        for segment in segments {
            let end = shared.durable_end(segment)?;
            let path = shared.segment_path(segment);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(open_err(&path))?;
            let len = file.metadata().map_err(open_err(&path))?.len();
            let end = if len > end {
                let kept = recover_tail(&shared, segment, &file, end, len)?;
                if len > kept {
                    file.set_len(kept).map_err(open_err(&path))?;
                }
                kept
            } else {
                end
            };
            active = Some(Active {
                segment,
                file: Arc::new(file),
                len: end,
            });
        }
        if let Some(a) = &active {
            shared.active.store(a.segment, Ordering::SeqCst);
            shared
                .files
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(a.segment, Arc::clone(&a.file));
        }
        let next_segment = active.as_ref().map_or(1, |a| a.segment + 1);
        Ok(Archive {
            shared,
            writer: Mutex::new(Writer {
                active,
                next_segment,
            }),
            large: Large::default(),
            segment_bytes: segment_bytes.max(1),
            large_package_bytes: large_package_bytes.max(1),
        })
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Stores `bytes` and returns their SHA-256. Durable after the next [`crate::Store::flush`]
    /// (call it before telling anyone the package is accepted); readable at once. Storing bytes
    /// that are already archived (or being archived by another thread) stores nothing and returns
    /// the same digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        // Hash outside any lock: a 100 MB package takes a good fraction of a second.
        let digest = Digest::of(bytes);
        if self.shared.entry(&digest)?.is_some() {
            return Ok(digest);
        }
        if bytes.len() as u64 >= self.large_package_bytes {
            return self.put_large(digest, bytes);
        }
        let mut writer = lock(&self.writer);
        // Checked again under the lock: two puts of the same bytes store them once.
        if self.shared.entry(&digest)?.is_some() {
            return Ok(digest);
        }
        let len = bytes.len() as u64;
        let record = HEADER_LEN + len;
        let writer = &mut *writer;
        let active = match &mut writer.active {
            Some(a) if a.len == 0 || a.len + record <= self.segment_bytes => a,
            // On failure the current segment stays the one written.
            _ => {
                let active = self.new_segment(writer.next_segment)?;
                writer.next_segment += 1;
                self.shared.active.store(active.segment, Ordering::SeqCst);
                writer.active.insert(active)
            }
        };
        let offset = active.len;
        write_record(&active.file, offset, &digest, bytes).map_err(|source| {
            // The append position stays: the next record overwrites the partial one.
            StoreError::ArchiveIo {
                path: self.shared.segment_path(active.segment),
                source,
            }
        })?;
        active.len = offset + record;
        let loc = Location {
            segment: active.segment,
            offset,
            len,
        };
        lock(&self.shared.pending).insert(digest, loc);
        Ok(digest)
    }

    /// A large package: a new segment of its own, written and fsynced without the writer lock.
    fn put_large(&self, digest: Digest, bytes: &[u8]) -> Result<Digest, StoreError> {
        let segment = {
            let mut writing = lock(&self.large.writing);
            loop {
                // Whoever stores these bytes parks the entry before leaving `writing`.
                if self.shared.entry(&digest)?.is_some() {
                    return Ok(digest);
                }
                if !writing.contains_key(&digest) {
                    break;
                }
                writing = self
                    .large
                    .done
                    .wait(writing)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let segment = {
                let mut writer = lock(&self.writer);
                writer.next_segment += 1;
                writer.next_segment - 1
            };
            writing.insert(digest, segment);
            segment
        };
        let result = self.write_large(segment, &digest, bytes);
        lock(&self.large.writing).remove(&digest);
        self.large.done.notify_all();
        result.map(|()| digest)
    }

    fn write_large(&self, segment: u32, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let Active { file, .. } = self.new_segment(segment)?;
        let path = self.shared.segment_path(segment);
        // Fsynced here, by the putting thread: the flush round that indexes it then finds the
        // segment clean instead of making every other flush caller wait for this writeback.
        let written = write_record(&file, 0, digest, bytes).and_then(|()| file.sync_data());
        if let Err(source) = written {
            // Never indexed, so nothing points here; a leftover would only be cut to 0 at open.
            self.shared
                .files
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&segment);
            let _ = fs::remove_file(&path);
            return Err(StoreError::ArchiveIo { path, source });
        }
        let loc = Location {
            segment,
            offset: 0,
            len: bytes.len() as u64,
        };
        lock(&self.shared.pending).insert(*digest, loc);
        Ok(())
    }

    /// Creates segment `segment` (under the writer lock for a rollover, outside it for a large
    /// package, whose number was taken under it).
    fn new_segment(&self, segment: u32) -> Result<Active, StoreError> {
        let path = self.shared.segment_path(segment);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| StoreError::ArchiveIo {
                path: path.clone(),
                source,
            })?;
        let file = Arc::new(file);
        // Before any record of this segment is parked: see `Shared::commit`.
        self.shared.dir_dirty.store(true, Ordering::SeqCst);
        self.shared
            .files
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(segment, Arc::clone(&file));
        Ok(Active {
            segment,
            file,
            len: 0,
        })
    }

    /// Whether a package with this digest is archived (or being archived: readable, durable after
    /// the next flush). An index that cannot be read counts as "no".
    pub fn contains(&self, digest: &Digest) -> bool {
        matches!(self.shared.entry(digest), Ok(Some(_)))
    }

    /// Where the package's bytes are: segment file, offset, length (unchecked; see [`Located`]).
    pub fn locate(&self, digest: &Digest) -> Result<Option<Located>, StoreError> {
        Ok(self.shared.entry(digest)?.map(|loc| Located {
            path: self.shared.segment_path(loc.segment),
            offset: loc.offset + HEADER_LEN,
            len: loc.len,
        }))
    }

    /// The archived bytes, checked against the digest; `None` if nothing is archived under it.
    /// Reads with `pread` on a shared handle: no lock is held while reading.
    pub fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(loc) = self.shared.entry(digest)? else {
            return Ok(None);
        };
        let file = self.shared.file(loc.segment)?;
        let path = self.shared.segment_path(loc.segment);
        let corrupt = |path: &Path| StoreError::ArchiveCorrupt {
            path: path.to_path_buf(),
            offset: loc.offset,
            digest: digest.to_hex(),
        };
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::ArchiveIo { path, source }
        };
        // A segment shorter than the record (cut or damaged) is corruption, and checking first
        // keeps a damaged index from asking for an absurd allocation.
        let file_len = file.metadata().map_err(io(&path))?.len();
        if file_len < loc.end() {
            return Err(corrupt(&path));
        }
        let mut h = [0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut h, loc.offset).map_err(io(&path))?;
        if parse_header(&h) != Some((loc.len, *digest)) {
            return Err(corrupt(&path));
        }
        let len = usize::try_from(loc.len).map_err(|_| corrupt(&path))?;
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, loc.offset + HEADER_LEN)
            .map_err(io(&path))?;
        if Digest::of(&bytes) != *digest {
            return Err(corrupt(&path));
        }
        Ok(Some(bytes))
    }

    /// Walks every segment record by record (without trusting the index), checks each record's
    /// bytes against its digest and that the index points at it, and reports what it found. The
    /// segment small puts append to is walked up to where the last one ended; a large package
    /// still being written is skipped. Reads everything: an
    /// operator's check, not something for the message path.
    pub fn verify(&self) -> Result<ArchiveReport, StoreError> {
        let (active, active_len) = match &lock(&self.writer).active {
            Some(a) => (a.segment, a.len),
            None => (0, 0),
        };
        // Large packages still being written are not walked (their record is not complete).
        let writing: Vec<u32> = lock(&self.large.writing).values().copied().collect();
        let mut report = ArchiveReport::default();
        let root = &self.shared.root;
        let mut segments = Vec::new();
        for entry in fs::read_dir(root).map_err(|source| StoreError::ArchiveIo {
            path: root.clone(),
            source,
        })? {
            let entry = entry.map_err(|source| StoreError::ArchiveIo {
                path: root.clone(),
                source,
            })?;
            if let Some(n) = entry.file_name().to_str().and_then(parse_segment_name) {
                segments.push(n);
            }
        }
        segments.sort_unstable();
        for segment in segments {
            if writing.contains(&segment) {
                continue;
            }
            report.segments += 1;
            let path = self.shared.segment_path(segment);
            let file = self.shared.file(segment)?;
            let file_len = file
                .metadata()
                .map_err(|source| StoreError::ArchiveIo {
                    path: path.clone(),
                    source,
                })?
                .len();
            let limit = if segment == active {
                active_len.min(file_len)
            } else {
                file_len
            };
            self.verify_segment(segment, &file, limit, &path, &mut report)?;
        }
        Ok(report)
    }

    fn verify_segment(
        &self,
        segment: u32,
        file: &File,
        limit: u64,
        path: &Path,
        report: &mut ArchiveReport,
    ) -> Result<(), StoreError> {
        let problem = |offset: u64, what: String| ArchiveProblem {
            path: path.to_path_buf(),
            offset,
            what,
        };
        let mut offset = 0;
        while offset < limit {
            let mut h = [0u8; HEADER_LEN as usize];
            let header = if offset + HEADER_LEN <= limit {
                file.read_exact_at(&mut h, offset)
                    .map_err(|source| StoreError::ArchiveIo {
                        path: path.to_path_buf(),
                        source,
                    })?;
                parse_header(&h)
            } else {
                None
            };
            let Some((len, digest)) = header.filter(|(len, _)| {
                offset
                    .checked_add(HEADER_LEN)
                    .and_then(|o| o.checked_add(*len))
                    .is_some_and(|end| end <= limit)
            }) else {
                // Without a sound header there is no way to find the next record.
                report.problems.push(problem(
                    offset,
                    format!(
                        "no readable record header here; the last {} bytes of the segment cannot be checked",
                        limit - offset
                    ),
                ));
                return Ok(());
            };
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut at = offset + HEADER_LEN;
            let end = at + len;
            while at < end {
                let n = usize::try_from((end - at).min(buf.len() as u64)).unwrap_or(buf.len());
                file.read_exact_at(&mut buf[..n], at)
                    .map_err(|source| StoreError::ArchiveIo {
                        path: path.to_path_buf(),
                        source,
                    })?;
                hasher.update(&buf[..n]);
                at += n as u64;
            }
            let actual = Digest(hasher.finalize().into());
            let here = Location {
                segment,
                offset,
                len,
            };
            if actual != digest {
                report.problems.push(problem(
                    offset,
                    format!(
                        "package {digest} does not match its digest (its bytes hash to {actual})"
                    ),
                ));
            } else if self.shared.entry(&digest)? != Some(here) {
                report.problems.push(problem(
                    offset,
                    format!("package {digest} is intact but the index does not point at it"),
                ));
            } else {
                report.records += 1;
                report.bytes += len;
            }
            offset = end;
        }
        Ok(())
    }
}

/// Walks the records of `segment` from its durable end `from` to the file's length `len`, keeps
/// every intact one (magic, length, SHA-256 all check out): fsyncs the segment, then indexes them
/// with the new durable end. Returns where the intact records end (the first torn or damaged
/// record, or `len`).
fn recover_tail(
    shared: &Shared,
    segment: u32,
    file: &File,
    from: u64,
    len: u64,
) -> Result<u64, StoreError> {
    let mut offset = from;
    let mut found = Vec::new();
    while offset + HEADER_LEN <= len {
        let mut h = [0u8; HEADER_LEN as usize];
        if file.read_exact_at(&mut h, offset).is_err() {
            break;
        }
        let Some((payload, digest)) = parse_header(&h) else {
            break;
        };
        let end = match (offset + HEADER_LEN).checked_add(payload) {
            Some(end) if end <= len => end,
            _ => break,
        };
        let mut bytes = vec![0u8; payload as usize];
        if file.read_exact_at(&mut bytes, offset + HEADER_LEN).is_err()
            || Digest::of(&bytes) != digest
        {
            break;
        }
        found.push((
            digest,
            Location {
                segment,
                offset,
                len: payload,
            },
        ));
        offset = end;
    }
    if found.is_empty() {
        return Ok(from);
    }
    let path = shared.segment_path(segment);
    file.sync_data()
        .map_err(|source| StoreError::ArchiveIo { path, source })?;
    let mut batch = sled::Batch::default();
    for (digest, loc) in &found {
        batch.insert(&digest_key(digest)[..], &loc.encode()[..]);
    }
    batch.insert(&end_key(segment)[..], &offset.to_be_bytes()[..]);
    shared
        .index
        .apply_batch(batch)
        .map_err(db_err("archive.recover"))?;
    Ok(offset)
}

/// Header, then payload, at `offset` (positional writes: no shared file position).
fn write_record(file: &File, offset: u64, digest: &Digest, bytes: &[u8]) -> std::io::Result<()> {
    file.write_all_at(&header(digest, bytes.len() as u64), offset)?;
    file.write_all_at(bytes, offset + HEADER_LEN)
}

fn segment_path(root: &Path, segment: u32) -> PathBuf {
    root.join(format!("seg-{segment:06}.dat"))
}

/// `seg-000042.dat` → 42.
fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".dat")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::ArchiveIo {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod commit_cut {
    use super::*;

    /// `commit` writes the index entries one by one and the segment's new end last; a crash in
    /// between leaves entries past the durable end. Reopening must keep those records and append
    /// after them, not over them.
    #[tokio::test]
    async fn a_commit_cut_between_its_entries_and_the_end_is_completed_at_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let second;
        let second_end;
        {
            let store = crate::Store::open(tmp.path()).unwrap();
            let archive = store.archive();
            archive.put(b"first package").unwrap();
            store.flush().await.unwrap();
            let first_end = archive.shared.durable_end(1).unwrap();
            second = archive.put(b"second package").unwrap();
            store.flush().await.unwrap();
            second_end = archive.shared.durable_end(1).unwrap();
            assert!(second_end > first_end);
            // The cut: the second record's entry is in the index, the end is still the first's.
            archive
                .shared
                .index
                .insert(&end_key(1)[..], &first_end.to_be_bytes()[..])
                .unwrap();
            store.flush().await.unwrap();
        }
        let store = crate::Store::open(tmp.path()).unwrap();
        let archive = store.archive();
        assert_eq!(archive.shared.durable_end(1).unwrap(), second_end);
        assert_eq!(
            archive.get(&second).unwrap(),
            Some(b"second package".to_vec())
        );
        let third = archive.put(b"third package").unwrap();
        assert_eq!(
            archive.locate(&third).unwrap().unwrap().offset,
            second_end + HEADER_LEN,
            "the next put goes after the second record"
        );
        store.flush().await.unwrap();
        let report = archive.verify().unwrap();
        assert_eq!(
            (report.records, report.problems.len()),
            (3, 0),
            "{report:?}"
        );
    }
}
