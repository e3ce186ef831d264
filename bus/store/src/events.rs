//! The append-only event log: records numbered 1, 2, 3, … in append order, never rewritten.
//! Tracking views are folds over it and can be rebuilt from it.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;
use crate::error::db_err;

/// Position of a record in the event log: starts at 1, grows by 1 per record. A number is never
/// reused once its record has been flushed (an unflushed record lost in a crash frees its number).
pub type Seq = u64;

/// A typed view of the store's event log. Records are JSON (self-describing, so an event type
/// can gain optional fields over the years and old records still read). Every handle from the
/// same store shares one sequence counter, so appends are numbered in the order they land and a
/// reader that has seen `n` never later finds a record below `n`.
#[derive(Debug)]
pub struct EventLog<E> {
    tree: sled::Tree,
    /// The next sequence number; shared by all handles of one store. Held while inserting.
    next: Arc<Mutex<Seq>>,
    _record: PhantomData<fn() -> E>,
}

impl<E> Clone for EventLog<E> {
    fn clone(&self) -> Self {
        EventLog {
            tree: self.tree.clone(),
            next: Arc::clone(&self.next),
            _record: PhantomData,
        }
    }
}

pub(crate) fn next_seq(tree: &sled::Tree) -> Result<Seq, StoreError> {
    match tree.last().map_err(db_err("events.last"))? {
        Some((k, _)) => Ok(decode_seq(&k)? + 1),
        None => Ok(1),
    }
}

fn decode_seq(key: &[u8]) -> Result<Seq, StoreError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| StoreError::Record {
        what: "event key".into(),
        detail: format!("expected 8 bytes, found {}", key.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

impl<E: Serialize + DeserializeOwned> EventLog<E> {
    pub(crate) fn new(tree: sled::Tree, next: Arc<Mutex<Seq>>) -> Self {
        EventLog {
            tree,
            next,
            _record: PhantomData,
        }
    }

    /// Appends one record and returns its sequence number. Durable after the next `Store::flush`.
    pub fn append(&self, event: &E) -> Result<Seq, StoreError> {
        let bytes = encode(event)?;
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = *next;
        self.tree
            .insert(seq.to_be_bytes(), bytes)
            .map_err(db_err("events.append"))?;
        *next = seq + 1;
        Ok(seq)
    }

    /// Appends several records atomically, numbered consecutively; returns their numbers.
    pub fn append_all(&self, events: &[E]) -> Result<Vec<Seq>, StoreError> {
        let encoded = events.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let first = *next;
        let mut batch = sled::Batch::default();
        let mut seqs = Vec::with_capacity(encoded.len());
        for (i, bytes) in encoded.into_iter().enumerate() {
            let seq = first + i as u64;
            batch.insert(&seq.to_be_bytes(), bytes);
            seqs.push(seq);
        }
        self.tree
            .apply_batch(batch)
            .map_err(db_err("events.append_all"))?;
        *next = first + seqs.len() as u64;
        Ok(seqs)
    }

    /// Records with `seq >= from`, in order. `scan(1)` (or `scan(0)`) reads the whole log.
    pub fn scan(&self, from: Seq) -> impl Iterator<Item = Result<(Seq, E), StoreError>> + use<E> {
        self.tree.range(from.to_be_bytes()..).map(|r| {
            let (k, v) = r.map_err(db_err("events.scan"))?;
            let seq = decode_seq(&k)?;
            let event = serde_json::from_slice(&v).map_err(|e| StoreError::Record {
                what: format!("event {seq}"),
                detail: e.to_string(),
            })?;
            Ok((seq, event))
        })
    }

    /// The number of the last record appended, or `None` for an empty log.
    pub fn last_seq(&self) -> Option<Seq> {
        let next = *self.next.lock().unwrap_or_else(PoisonError::into_inner);
        (next > 1).then(|| next - 1)
    }
}

fn encode<E: Serialize>(event: &E) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(event).map_err(|e| StoreError::Record {
        what: "new event".into(),
        detail: e.to_string(),
    })
}
