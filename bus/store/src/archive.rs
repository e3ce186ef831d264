//! The archive: each accepted package stored once, as a plain file named by its SHA-256.
//!
//! Layout: `<store>/archive/ab/cd/<64 hex>` where `ab`, `cd` are the first two bytes of the
//! digest (at most 65,536 folders, so no folder grows huge). Files, not sled values, because
//! packages reach tens of MB and an auditor must be able to check an archived package with
//! `xmlsec1` directly. A put writes a temp file under `<store>/archive/tmp/`, fsyncs it, renames
//! it into place, and leaves the folders it touched to the store's group commit: the next
//! [`crate::Store::flush`] fsyncs them (one flush round serves every put issued before it, and
//! the filesystem journal batches them). So a file that exists under its final name is always
//! complete, a package is durable once a flush that started after its put has returned, and a
//! crash leaves at most a stray temp file (removed at the next open) or an unacknowledged package.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest as _, Sha256};

use crate::StoreError;

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

/// Handle on the archive folder. Cheap to clone through [`crate::Store`]. All methods block on
/// disk I/O (a put ends with fsyncs): call them from `spawn_blocking` in async code.
#[derive(Debug)]
pub struct Archive {
    /// `<store>/archive`, created by `Store::open`.
    root: PathBuf,
    /// `<store>/archive/tmp`, emptied by `Store::open`.
    tmp: PathBuf,
    /// Makes temp names unique within the process (the store's lock file keeps other processes out).
    next_tmp: AtomicU64,
    /// Folders changed by puts (new entries) and not yet fsynced; shared with the flusher thread,
    /// which drains and fsyncs them at the start of each round.
    dirty_dirs: DirtyDirs,
}

/// Folders waiting for an fsync by the next flush round.
pub(crate) type DirtyDirs = Arc<Mutex<BTreeSet<PathBuf>>>;

/// Fsyncs every folder in `dirty` (drained). Called by the flusher before the database flush.
pub(crate) fn sync_dirty_dirs(dirty: &DirtyDirs) -> Result<(), StoreError> {
    let dirs = std::mem::take(&mut *dirty.lock().unwrap_or_else(PoisonError::into_inner));
    // Deepest first: a new leaf's entry in its parent is then synced after the leaf itself.
    for dir in dirs.iter().rev() {
        sync_dir(dir)?;
    }
    Ok(())
}

impl Archive {
    pub(crate) fn open(root: PathBuf) -> Result<Archive, StoreError> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(|source| StoreError::Open {
            path: tmp.clone(),
            source,
        })?;
        // Leftovers of puts interrupted by a crash: never renamed, so never acknowledged.
        let entries = fs::read_dir(&tmp).map_err(|source| StoreError::Open {
            path: tmp.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let _ = fs::remove_file(entry.path());
        }
        Ok(Archive {
            root,
            tmp,
            next_tmp: AtomicU64::new(0),
            dirty_dirs: DirtyDirs::default(),
        })
    }

    pub(crate) fn dirty_dirs(&self) -> DirtyDirs {
        Arc::clone(&self.dirty_dirs)
    }

    fn mark_dirty(&self, dir: &Path) {
        self.dirty_dirs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(dir.to_path_buf());
    }

    /// Where the package with this digest lives (whether or not it exists), for auditors and for
    /// streaming large packages without loading them.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    /// Whether a package with this digest is archived.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Stores `bytes` and returns their SHA-256. The file's content is fsynced before return; its
    /// name becomes durable with the next [`crate::Store::flush`] (call it before telling anyone
    /// the package is accepted). Storing the same bytes again stores nothing and returns the same
    /// digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        let path = self.path(&digest);
        if path.is_file() {
            return Ok(digest);
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::ArchiveIo { path, source }
        };
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .tmp
            .join(format!("{}.{}.{n}", digest.to_hex(), std::process::id()));
        {
            let mut file = File::create(&tmp).map_err(io(&tmp))?;
            file.write_all(bytes).map_err(io(&tmp))?;
            file.sync_all().map_err(io(&tmp))?;
        }
        let leaf = path.parent().unwrap_or(&self.root).to_path_buf();
        if !leaf.is_dir() {
            fs::create_dir_all(&leaf).map_err(io(&leaf))?;
            // The new folder entries must survive a crash too.
            if let Some(mid) = leaf.parent() {
                self.mark_dirty(mid);
            }
            self.mark_dirty(&self.root);
        }
        // Marked before the rename: whoever sees the file (and so skips its own put) can count
        // on a flush it starts afterwards to cover the rename.
        self.mark_dirty(&leaf);
        fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(digest)
    }

    /// The archived bytes, checked against the digest; `None` if nothing is archived under it.
    pub fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(digest);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::ArchiveIo { path, source }),
        };
        if Digest::of(&bytes) != *digest {
            return Err(StoreError::ArchiveCorrupt {
                path,
                digest: digest.to_hex(),
            });
        }
        Ok(Some(bytes))
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::ArchiveIo {
            path: dir.to_path_buf(),
            source,
        })
}
