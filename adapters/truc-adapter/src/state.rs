//! The adapter's durable state, in one `store` tree (`adapter`) so that every change that must
//! happen together is one atomic batch:
//!
//! - `out/<seq>` → [`Outgoing`] (JSON) and `body/<seq>` → the signed bytes: the local outbox. A
//!   package is here, flushed, before its file leaves `outbox/`; it leaves only when its outcome
//!   (`sent/` or `failed/`) is on disk. Retries resend these exact bytes, so the relay's
//!   deduplication recognises them.
//! - `taken/<file name>` → digest of the file's bytes and its seq: a file seen again in `outbox/`
//!   after a crash between the flush and the move is recognised, not sent twice.
//! - `in/<relay id>` → [`Received`]: ids written into `inbox/`/`receipts/`, remembered before the
//!   ack, so a package offered again is acked, never written twice.
//! - `arrived/<relay id>` → the signed status 01 waiting for its document to land.

use serde::{Deserialize, Serialize};
use store::{Batch, KvTree, Store, StoreError};

pub const OUT: &[u8] = b"out/";

/// One package in the local outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    pub seq: u64,
    /// `file`: dropped by the DMS into `outbox/`; `arrived`: the automatic status 01.
    pub source: String,
    /// File name in `outbox/` (for `arrived`, a name for reports).
    pub name: String,
    pub document_id: String,
    /// Unix seconds when it entered the local outbox (retries stop after `give_up`).
    pub taken_at: u64,
}

/// Where a received package stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// `writing`: the temp file is durable, the rename may or may not have happened;
    /// `written`: the file is in place (and the 01, if any, is in the outbox).
    pub state: String,
    /// Final path of the file.
    pub file: String,
    /// The durable temp file it is renamed from.
    pub temp: String,
}

/// The adapter's tree and the store it lives in.
#[derive(Debug, Clone)]
pub struct State {
    pub store: Store,
    pub tree: KvTree,
}

pub fn out_key(seq: u64) -> Vec<u8> {
    let mut k = OUT.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn body_key(seq: u64) -> Vec<u8> {
    let mut k = b"body/".to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn outcome_key(seq: u64) -> Vec<u8> {
    format!("outcome/{seq}").into_bytes()
}

pub fn in_key(id: &str) -> Vec<u8> {
    format!("in/{id}").into_bytes()
}

pub fn arrived_key(id: &str) -> Vec<u8> {
    format!("arrived/{id}").into_bytes()
}

pub fn taken_key(name: &str) -> Vec<u8> {
    format!("taken/{name}").into_bytes()
}

fn record<T: Serialize>(what: &str, v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Record {
        what: what.to_owned(),
        detail: e.to_string(),
    })
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Record {
        what: what.to_owned(),
        detail: e.to_string(),
    })
}

impl State {
    pub fn open(store: Store) -> Result<State, StoreError> {
        let tree = store.tree("adapter")?;
        Ok(State { store, tree })
    }

    /// Adds a signed package to the local outbox under `seq` (from `store.generate_id`), with the extra operations of `batch` in the
    /// same atomic step. Durable after the next flush.
    pub fn enqueue(
        &self,
        mut batch: Batch,
        out: &Outgoing,
        signed: &[u8],
    ) -> Result<(), StoreError> {
        batch.insert(out_key(out.seq), record("outgoing", out)?);
        batch.insert(body_key(out.seq), signed);
        self.tree.apply(batch)
    }

    /// Every seq in the local outbox, oldest first.
    pub fn pending(&self) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        for e in self.tree.scan_prefix(OUT) {
            let (k, _) = e?;
            if let Some(b) = k.get(OUT.len()..).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
                out.push(u64::from_be_bytes(b));
            }
        }
        Ok(out)
    }

    pub fn outgoing(&self, seq: u64) -> Result<Option<(Outgoing, Vec<u8>)>, StoreError> {
        let Some(meta) = self.tree.get(out_key(seq))? else {
            return Ok(None);
        };
        let Some(body) = self.tree.get(body_key(seq))? else {
            return Ok(None);
        };
        Ok(Some((decode("outgoing", &meta)?, body)))
    }

    /// The package's outcome is on disk (or, for `outcome`, recorded here): it leaves the outbox
    /// (durable after the next flush).
    pub fn done(&self, out: &Outgoing, outcome: Option<&Outcome>) -> Result<(), StoreError> {
        let mut b = Batch::default();
        if let Some(o) = outcome {
            b.insert(outcome_key(out.seq), record("outcome", o)?);
        }
        b.remove(out_key(out.seq));
        b.remove(body_key(out.seq));
        if out.source == "file" {
            // Only if it still points at this seq (a newer file of the same name may be in flight).
            if let Some(v) = self.tree.get(taken_key(&out.name))?
                && decode::<Taken>("taken", &v)?.seq == out.seq
            {
                b.remove(taken_key(&out.name));
            }
        }
        self.tree.apply(b)
    }

    pub fn taken(&self, name: &str) -> Result<Option<Taken>, StoreError> {
        match self.tree.get(taken_key(name))? {
            Some(v) => Ok(Some(decode("taken", &v)?)),
            None => Ok(None),
        }
    }

    pub fn taken_value(t: &Taken) -> Result<Vec<u8>, StoreError> {
        record("taken", t)
    }

    pub fn received(&self, id: &str) -> Result<Option<Received>, StoreError> {
        match self.tree.get(in_key(id))? {
            Some(v) => Ok(Some(decode("received", &v)?)),
            None => Ok(None),
        }
    }

    pub fn received_value(r: &Received) -> Result<Vec<u8>, StoreError> {
        record("received", r)
    }
}

/// A file of `outbox/` already in the local outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    /// SHA-256 (hex) of the file's bytes as dropped.
    pub digest: String,
    pub seq: u64,
}

/// What became of a package handed over through the local HTTP API (kept for the DMS to ask).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// `sent` or `failed`.
    pub state: String,
    pub document_id: String,
    /// The relay's id, when accepted.
    pub id: Option<String>,
    /// (unit, state) per recipient, when accepted.
    pub recipients: Vec<(String, String)>,
    pub duplicate: bool,
    /// Why it failed: the relay's (or the adapter's) code and messages.
    pub code: Option<String>,
    pub message_vi: Option<String>,
    pub message_en: Option<String>,
    pub details: Vec<String>,
}

impl State {
    pub fn outcome(&self, seq: u64) -> Result<Option<Outcome>, StoreError> {
        match self.tree.get(outcome_key(seq))? {
            Some(v) => Ok(Some(decode("outcome", &v)?)),
            None => Ok(None),
        }
    }

    pub fn is_queued(&self, seq: u64) -> Result<bool, StoreError> {
        self.tree.contains_key(out_key(seq))
    }
}
