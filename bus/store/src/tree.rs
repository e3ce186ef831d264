//! Named key-value trees: the only way the relay and the broker touch the database.

use crate::StoreError;
use crate::error::db_err;

/// One named tree of byte keys and byte values, ordered by key (so big-endian integers in keys
/// sort numerically). Cloning is cheap; all clones see the same data. Writes are visible at once
/// and durable after the next [`crate::Store::flush`].
///
/// Single writes come back from a crash in order: sled replays its log in sequence and stops at
/// the first torn record, so what survives is a prefix of the writes (of all trees together).
/// Code on the message path therefore orders its single writes so that every prefix can be read
/// correctly, rather than using [`KvTree::apply`]: sled seals and writes its log buffer twice
/// around every batch, waiting for the disk each time, and with several batches per package that
/// halved the relay's throughput (`truc bench`, 593 → 1,333 packages/s).
#[derive(Clone, Debug)]
pub struct KvTree {
    tree: sled::Tree,
}

/// A set of inserts and removes applied atomically by [`KvTree::apply`]: after a crash either
/// all of them are there or none. Costly (see [`KvTree`]): for rare, bulk changes.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    inner: sled::Batch,
    len: usize,
}

impl Batch {
    pub fn insert(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.inner.insert(key.as_ref(), value.as_ref());
        self.len += 1;
    }

    pub fn remove(&mut self, key: impl AsRef<[u8]>) {
        self.inner.remove(key.as_ref());
        self.len += 1;
    }

    /// Number of operations recorded.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A key and its value, as read from a tree.
pub type Entry = (Vec<u8>, Vec<u8>);

impl KvTree {
    pub(crate) fn new(tree: sled::Tree) -> KvTree {
        KvTree { tree }
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree
            .get(key)
            .map_err(db_err("get"))?
            .map(|v| v.to_vec()))
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        self.tree.contains_key(key).map_err(db_err("contains_key"))
    }

    /// Sets `key` to `value`; returns the previous value.
    pub fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree
            .insert(key.as_ref(), value.as_ref())
            .map_err(db_err("insert"))?
            .map(|v| v.to_vec()))
    }

    /// Sets `key` to `value` only if `key` is absent, atomically (a deduplication primitive).
    /// Returns `None` when inserted, or the value already there (left unchanged).
    pub fn insert_if_absent(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self
            .tree
            .compare_and_swap(key.as_ref(), None::<&[u8]>, Some(value.as_ref()))
            .map_err(db_err("insert_if_absent"))?
        {
            Ok(()) => Ok(None),
            Err(cas) => Ok(cas.current.map(|v| v.to_vec())),
        }
    }

    /// Removes `key`; returns the value it had.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree
            .remove(key)
            .map_err(db_err("remove"))?
            .map(|v| v.to_vec()))
    }

    /// Applies every operation of `batch` atomically.
    pub fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.tree.apply_batch(batch.inner).map_err(db_err("apply"))
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub fn scan_prefix(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<Entry, StoreError>> + use<> {
        self.tree.scan_prefix(prefix).map(entry)
    }

    /// Entries with `start <= key`, in key order (to resume a scan after the last key seen).
    pub fn scan_from(
        &self,
        start: &[u8],
    ) -> impl Iterator<Item = Result<Entry, StoreError>> + use<> {
        self.tree.range(start.to_vec()..).map(entry)
    }

    /// Removes every entry (to rebuild a view from the event log). Durable after the next flush.
    pub fn clear(&self) -> Result<(), StoreError> {
        self.tree.clear().map_err(db_err("clear"))
    }

    /// Number of entries; walks the whole tree, so for tests and tools, not the message path.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

fn entry(r: sled::Result<(sled::IVec, sled::IVec)>) -> Result<Entry, StoreError> {
    r.map(|(k, v)| (k.to_vec(), v.to_vec()))
        .map_err(db_err("scan"))
}
