//! The embedded backend: durable mailboxes in one store tree, leases in memory.
//!
//! Keys of the `mailboxes` tree (`mb` = mailbox name, which never contains a NUL byte; `seq` =
//! 8 big-endian bytes from `Store::generate_id`, increasing in publish order):
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `m` mb `\0` seq | [`Stored`] (JSON) | queued: ready or in flight; a prefix scan is FIFO order |
//! | `i` mb `\0` id | seq | id index, for ack/release/dead-letter by id and for duplicate publishes |
//! | `d` mb `\0` seq | [`Dead`] (JSON) | dead-lettered |
//! | `a` mb `\0` id | acked-at (JSON) | tombstone: tells "already acked" from "never published" |
//!
//! Every call writes its keys one by one, in an order that leaves a usable state after any prefix
//! of them (sled recovers a prefix of its log after a crash; see `store::KvTree`), then a
//! group-commit flush before `Ok`. No batches: each sled batch waits for two log writes, which
//! cost the relay more than half its throughput. What a crash can leave, and how it is read:
//! - publish writes `i` then `m`: an `i` whose seq is neither under `m` nor `d` is a publish that
//!   never finished; a later publish of that id writes it again.
//! - ack writes `a`, then removes `m`, `d`, `i`: while `m` stays the message is offered again
//!   (the ack never answered), and the next ack finishes the job.
//! - dead-letter writes `d` then removes `m`; redrive writes `m` then removes `d`: a seq under
//!   both is dead-lettered, settled at open (dead letters are few, so that check is cheap).
//!
//! Memory:
//! per mailbox a few counters, a `Notify` and the leases of its in-flight messages; nothing per
//! queued message. Counters are rebuilt by one key scan at open (counting, not trusting, so they
//! can never drift from the data).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use store::{Batch, KvTree, Store, StoreError};
use tokio::sync::Notify;

use crate::{
    AckOutcome, Broker, BrokerError, Clock, DeadLetter, Delivery, MailboxStats, Message, Publish,
    SystemClock,
};

/// Settings of the embedded backend.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// How long a fetched message stays invisible before it is offered again (default 5 min).
    pub lease: Duration,
    /// Source of "now" (default: the system clock).
    pub clock: Arc<dyn Clock>,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            lease: Duration::from_secs(300),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Durable per-unit mailboxes on the local store. Clone freely (one shared state).
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The relay's store; flushed (group commit) before publish/ack/dead-letter/redrive return.
    store: Store,
    /// The `mailboxes` tree (layout above).
    tree: KvTree,
    lease: Duration,
    clock: Arc<dyn Clock>,
    /// Per-mailbox in-memory state. Held only in synchronous sections (never across an await);
    /// it also serialises writers so duplicate checks and counters stay exact.
    state: Mutex<HashMap<String, Mailbox>>,
}

#[derive(Debug, Default)]
struct Mailbox {
    /// Messages under `m` (ready + in flight).
    stored: u64,
    /// Messages under `d`.
    dead: u64,
    /// In-flight messages: seq → lease. Not durable by design.
    leases: HashMap<u64, Lease>,
    /// Published but not yet flushed: never offered, so no recipient gets a message (nor the
    /// package it names, recorded in the same store) that a crash could still take back.
    unflushed: HashSet<u64>,
    /// Woken on publish, release and redrive; fetchers wait on it.
    notify: Arc<Notify>,
    /// Cached `queued_at` of the oldest ready message: `None` = unknown (recomputed on demand),
    /// `Some(None)` = nothing ready.
    oldest_ready: Option<Option<SystemTime>>,
}

#[derive(Debug)]
struct Lease {
    until: SystemTime,
}

/// A queued message as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// Times fetched so far (written at each fetch, made durable by the next flush).
    deliveries: u32,
    message: Message,
}

/// A dead-lettered message as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Dead {
    deliveries: u32,
    message: Message,
    reason: String,
    at: SystemTime,
}

const MAX_MAILBOX_LEN: usize = 128;

fn validate(mailbox: &str) -> Result<(), BrokerError> {
    let why = if mailbox.is_empty() {
        "empty"
    } else if mailbox.len() > MAX_MAILBOX_LEN {
        "longer than 128 bytes"
    } else if mailbox.chars().any(char::is_control) {
        "contains control characters"
    } else {
        return Ok(());
    };
    Err(BrokerError::InvalidMailbox {
        mailbox: mailbox.chars().take(MAX_MAILBOX_LEN).collect(),
        why,
    })
}

fn key(space: u8, mailbox: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + mailbox.len() + rest.len());
    k.push(space);
    k.extend_from_slice(mailbox.as_bytes());
    k.push(0);
    k.extend_from_slice(rest);
    k
}

fn prefix(space: u8, mailbox: &str) -> Vec<u8> {
    key(space, mailbox, &[])
}

/// Splits `space mailbox \0 rest` into (mailbox, rest).
fn split_key(k: &[u8]) -> Option<(&str, &[u8])> {
    let body = k.get(1..)?;
    let nul = body.iter().position(|b| *b == 0)?;
    let mailbox = std::str::from_utf8(&body[..nul]).ok()?;
    Some((mailbox, &body[nul + 1..]))
}

fn seq_of(bytes: &[u8]) -> Result<u64, BrokerError> {
    let b: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt("seq", "not 8 bytes"))?;
    Ok(u64::from_be_bytes(b))
}

fn corrupt(what: &str, detail: impl ToString) -> BrokerError {
    BrokerError::Store(StoreError::Record {
        what: format!("mailbox {what}"),
        detail: detail.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, BrokerError> {
    serde_json::to_vec(value).map_err(|e| corrupt("record", e))
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, BrokerError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt("record", e))
}

impl EmbeddedBroker {
    /// Opens the mailboxes kept in `store`. After a restart every message that was in flight is
    /// ready again (leases are not durable).
    pub fn open(store: Store, config: EmbeddedConfig) -> Result<EmbeddedBroker, BrokerError> {
        let tree = store.tree("mailboxes")?;
        let mut state: HashMap<String, Mailbox> = HashMap::new();
        // Dead letters first: a dead-letter or redrive cut short leaves a seq under both `m` and
        // `d`, and it stays dead, so its `m` goes before the messages are counted.
        for entry in tree.scan_prefix(b"d") {
            let (k, _) = entry?;
            let (mailbox, seq) = split_key(&k).ok_or_else(|| corrupt("key", "no mailbox"))?;
            let m_key = key(b'm', mailbox, seq);
            if tree.contains_key(&m_key)? {
                tree.remove(&m_key)?;
            }
            state.entry(mailbox.to_owned()).or_default().dead += 1;
        }
        for entry in tree.scan_prefix(b"m") {
            let (k, _) = entry?;
            let (mailbox, _) = split_key(&k).ok_or_else(|| corrupt("key", "no mailbox"))?;
            state.entry(mailbox.to_owned()).or_default().stored += 1;
        }
        Ok(EmbeddedBroker {
            inner: Arc::new(Inner {
                store,
                tree,
                lease: config.lease,
                clock: config.clock,
                state: Mutex::new(state),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, HashMap<String, Mailbox>> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the ack tombstones older than `cutoff` (durably); returns how many. Until then an
    /// ack of an acked id says [`AckOutcome::AlreadyAcked`] and a republish of it is ignored;
    /// after, both treat the id as never seen. Run it with a cutoff beyond the relay's
    /// deduplication window (≥ 7 days), so no retry can still arrive for a forgotten id.
    pub async fn forget_acked_before(&self, cutoff: SystemTime) -> Result<u64, BrokerError> {
        let n = {
            let _writers = self.state();
            let mut writes = Batch::default();
            for entry in self.inner.tree.scan_prefix(b"a") {
                let (k, v) = entry?;
                let acked_at: SystemTime = decode(&v)?;
                if acked_at < cutoff {
                    writes.remove(&k);
                }
            }
            let n = writes.len() as u64;
            self.inner.tree.apply(writes)?;
            n
        };
        self.inner.store.flush().await?;
        Ok(n)
    }

    /// Whether a publish here also makes durable every write made before it to `store` (it
    /// flushes that store before it returns, and offers nothing before that flush): the relay
    /// then needs no flush of its own between recording a package and queueing it.
    pub fn flushes(&self, store: &Store) -> bool {
        self.inner.store.is(store)
    }

    /// Writes the batch's new messages (skipping ids already queued or acked), hidden from
    /// fetches until [`EmbeddedBroker::reveal`]; returns them by mailbox.
    fn publish_sync(&self, batch: &[Publish]) -> Result<Vec<(String, Vec<u64>)>, BrokerError> {
        let tree = &self.inner.tree;
        let mut state = self.state();
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        let mut added: HashMap<&str, (Vec<u64>, SystemTime)> = HashMap::new();
        for p in batch {
            let (mb, id) = (p.mailbox.as_str(), p.message.id.as_str());
            if !seen.insert((mb, id)) {
                continue;
            }
            let id_key = key(b'i', mb, id.as_bytes());
            if self.holds(mb, &id_key)? || tree.contains_key(key(b'a', mb, id.as_bytes()))? {
                continue;
            }
            let n = self.inner.store.generate_id()?;
            let seq = n.to_be_bytes();
            let stored = Stored {
                deliveries: 0,
                message: p.message.clone(),
            };
            // Index first: a crash between the two leaves an index to nothing, which `holds`
            // reads as "not queued", never a message that cannot be acked.
            tree.insert(id_key, seq)?;
            tree.insert(key(b'm', mb, &seq), encode(&stored)?)?;
            let e = added
                .entry(mb)
                .or_insert_with(|| (Vec::new(), p.message.queued_at));
            e.0.push(n);
            e.1 = e.1.min(p.message.queued_at);
        }
        let mut hidden = Vec::with_capacity(added.len());
        for (mb, (seqs, first_at)) in added {
            let m = state.entry(mb.to_owned()).or_default();
            m.oldest_ready = match m.oldest_ready {
                // Nothing was queued: the new messages are the only ready ones.
                _ if m.stored == 0 => Some(Some(first_at)),
                Some(None) => Some(Some(first_at)),
                Some(Some(t)) => Some(Some(t.min(first_at))),
                None => None,
            };
            m.stored += seqs.len() as u64;
            m.unflushed.extend(seqs.iter().copied());
            hidden.push((mb.to_owned(), seqs));
        }
        Ok(hidden)
    }

    /// Offers the messages `publish_sync` hid, once their flush is done, and wakes the fetchers
    /// waiting on their mailboxes.
    fn reveal(&self, hidden: Vec<(String, Vec<u64>)>) {
        let mut wake = Vec::with_capacity(hidden.len());
        {
            let mut state = self.state();
            for (mailbox, seqs) in hidden {
                let m = state.entry(mailbox).or_default();
                for seq in seqs {
                    m.unflushed.remove(&seq);
                }
                wake.push(Arc::clone(&m.notify));
            }
        }
        for n in wake {
            n.notify_waiters();
        }
    }

    /// Leases up to `max` ready messages; also returns the earliest lease end (when something
    /// may become ready without a publish). The new delivery counts are written but not flushed:
    /// they become durable with the next flush (or sled's own periodic one).
    fn take_ready(
        &self,
        mailbox: &str,
        max: usize,
    ) -> Result<(Vec<Delivery>, Option<SystemTime>), BrokerError> {
        let now = self.inner.clock.now();
        let mut state = self.state();
        let mb = state.entry(mailbox.to_owned()).or_default();
        expire(mb, now);
        let mut out = Vec::new();
        if max > 0 && (mb.stored as usize) > mb.leases.len() + mb.unflushed.len() {
            for entry in self.inner.tree.scan_prefix(&prefix(b'm', mailbox)) {
                let (k, v) = entry?;
                let (_, seq_bytes) = split_key(&k).ok_or_else(|| corrupt("key", "no mailbox"))?;
                let seq = seq_of(seq_bytes)?;
                if mb.leases.contains_key(&seq) || mb.unflushed.contains(&seq) {
                    continue;
                }
                let mut stored: Stored = decode(&v)?;
                stored.deliveries = stored.deliveries.saturating_add(1);
                self.inner.tree.insert(&k, encode(&stored)?)?;
                let until = now + self.inner.lease;
                mb.leases.insert(seq, Lease { until });
                out.push(Delivery {
                    mailbox: mailbox.to_owned(),
                    message: stored.message,
                    delivery_count: stored.deliveries,
                    lease_until: until,
                });
                if out.len() >= max {
                    break;
                }
            }
            if !out.is_empty() {
                mb.oldest_ready = None;
            }
        }
        let next_expiry = mb.leases.values().map(|l| l.until).min();
        Ok((out, next_expiry))
    }

    /// Whether the id whose index key is `id_key` is queued or dead-lettered in `mailbox` (an
    /// index to neither is a publish a crash cut short).
    fn holds(&self, mailbox: &str, id_key: &[u8]) -> Result<bool, BrokerError> {
        let tree = &self.inner.tree;
        let Some(seq) = tree.get(id_key)? else {
            return Ok(false);
        };
        Ok(tree.contains_key(key(b'm', mailbox, &seq))?
            || tree.contains_key(key(b'd', mailbox, &seq))?)
    }

    /// The seq of `id` in `mailbox`, or whether it was acked, or the unknown-delivery error.
    fn locate(&self, mailbox: &str, id: &str) -> Result<Option<u64>, BrokerError> {
        match self.inner.tree.get(key(b'i', mailbox, id.as_bytes()))? {
            Some(seq) => Ok(Some(seq_of(&seq)?)),
            None if self
                .inner
                .tree
                .contains_key(key(b'a', mailbox, id.as_bytes()))? =>
            {
                Ok(None)
            }
            None => Err(BrokerError::UnknownDelivery {
                mailbox: mailbox.to_owned(),
                id: id.to_owned(),
            }),
        }
    }

    fn ack_sync(&self, mailbox: &str, id: &str) -> Result<AckOutcome, BrokerError> {
        validate(mailbox)?;
        let tree = &self.inner.tree;
        let mut state = self.state();
        let Some(seq) = self.locate(mailbox, id)? else {
            return Ok(AckOutcome::AlreadyAcked);
        };
        let seq_bytes = seq.to_be_bytes();
        let (m_key, d_key) = (
            key(b'm', mailbox, &seq_bytes),
            key(b'd', mailbox, &seq_bytes),
        );
        let was_queued = tree.contains_key(&m_key)?;
        let was_dead = tree.contains_key(&d_key)?;
        // Tombstone first: until the message is gone it may be offered again, and acked again.
        tree.insert(
            key(b'a', mailbox, id.as_bytes()),
            encode(&self.inner.clock.now())?,
        )?;
        tree.remove(&m_key)?;
        tree.remove(&d_key)?;
        tree.remove(key(b'i', mailbox, id.as_bytes()))?;
        let mb = state.entry(mailbox.to_owned()).or_default();
        if was_queued {
            mb.stored = mb.stored.saturating_sub(1);
        }
        if was_dead {
            mb.dead = mb.dead.saturating_sub(1);
        }
        if mb.leases.remove(&seq).is_none() {
            mb.oldest_ready = None;
        }
        Ok(AckOutcome::Acked)
    }

    fn release_sync(&self, mailbox: &str, id: &str) -> Result<Option<Arc<Notify>>, BrokerError> {
        validate(mailbox)?;
        let mut state = self.state();
        let Some(seq) = self.locate(mailbox, id)? else {
            return Ok(None);
        };
        let mb = state.entry(mailbox.to_owned()).or_default();
        if mb.leases.remove(&seq).is_some() {
            mb.oldest_ready = None;
            return Ok(Some(Arc::clone(&mb.notify)));
        }
        Ok(None)
    }

    fn dead_letter_sync(&self, mailbox: &str, id: &str, reason: &str) -> Result<(), BrokerError> {
        validate(mailbox)?;
        let tree = &self.inner.tree;
        let mut state = self.state();
        let unknown = || BrokerError::UnknownDelivery {
            mailbox: mailbox.to_owned(),
            id: id.to_owned(),
        };
        let seq = self.locate(mailbox, id)?.ok_or_else(unknown)?;
        let seq_bytes = seq.to_be_bytes();
        let m_key = key(b'm', mailbox, &seq_bytes);
        let Some(v) = tree.get(&m_key)? else {
            // Already dead-lettered: nothing to do.
            return Ok(());
        };
        let stored: Stored = decode(&v)?;
        let dead = Dead {
            deliveries: stored.deliveries,
            message: stored.message,
            reason: reason.to_owned(),
            at: self.inner.clock.now(),
        };
        // Dead first: a seq under both is settled as dead at open.
        tree.insert(key(b'd', mailbox, &seq_bytes), encode(&dead)?)?;
        tree.remove(&m_key)?;
        let mb = state.entry(mailbox.to_owned()).or_default();
        mb.stored = mb.stored.saturating_sub(1);
        mb.dead += 1;
        if mb.leases.remove(&seq).is_none() {
            mb.oldest_ready = None;
        }
        Ok(())
    }

    fn redrive_sync(&self, mailbox: &str) -> Result<(u64, Arc<Notify>), BrokerError> {
        validate(mailbox)?;
        let tree = &self.inner.tree;
        let mut state = self.state();
        let mut n = 0;
        for entry in tree.scan_prefix(&prefix(b'd', mailbox)) {
            let (k, v) = entry?;
            let dead: Dead = decode(&v)?;
            let (_, seq_bytes) = split_key(&k).ok_or_else(|| corrupt("key", "no mailbox"))?;
            let stored = Stored {
                deliveries: dead.deliveries,
                message: dead.message,
            };
            // Back in its original place in the FIFO; a crash before the remove leaves it dead
            // (settled at open), and the operator redrives again.
            tree.insert(key(b'm', mailbox, seq_bytes), encode(&stored)?)?;
            tree.remove(&k)?;
            n += 1;
        }
        let mb = state.entry(mailbox.to_owned()).or_default();
        mb.dead = mb.dead.saturating_sub(n);
        mb.stored += n;
        mb.oldest_ready = None;
        Ok((n, Arc::clone(&mb.notify)))
    }

    fn stats_sync(&self) -> Result<Vec<MailboxStats>, BrokerError> {
        let now = self.inner.clock.now();
        let mut state = self.state();
        let mut out = Vec::new();
        for (name, mb) in state.iter_mut() {
            expire(mb, now);
            if mb.stored == 0 && mb.dead == 0 {
                continue;
            }
            let in_flight = mb.leases.len() as u64;
            let ready = mb.stored.saturating_sub(in_flight);
            let oldest = match mb.oldest_ready {
                Some(cached) if cached.is_some() == (ready > 0) => cached,
                _ => {
                    let found = self.oldest_ready(name, mb, ready)?;
                    mb.oldest_ready = Some(found);
                    found
                }
            };
            out.push(MailboxStats {
                mailbox: name.clone(),
                ready,
                in_flight,
                dead_lettered: mb.dead,
                oldest_ready_age: oldest.map(|t| now.duration_since(t).unwrap_or_default()),
            });
        }
        out.sort_by(|a, b| a.mailbox.cmp(&b.mailbox));
        Ok(out)
    }

    /// `queued_at` of the first ready message (one prefix seek past the in-flight ones).
    fn oldest_ready(
        &self,
        mailbox: &str,
        mb: &Mailbox,
        ready: u64,
    ) -> Result<Option<SystemTime>, BrokerError> {
        if ready == 0 {
            return Ok(None);
        }
        for entry in self.inner.tree.scan_prefix(&prefix(b'm', mailbox)) {
            let (k, v) = entry?;
            let (_, seq_bytes) = split_key(&k).ok_or_else(|| corrupt("key", "no mailbox"))?;
            if mb.leases.contains_key(&seq_of(seq_bytes)?) {
                continue;
            }
            let stored: Stored = decode(&v)?;
            return Ok(Some(stored.message.queued_at));
        }
        Ok(None)
    }
}

/// Ends the leases that ran out: those messages are ready again.
fn expire(mb: &mut Mailbox, now: SystemTime) {
    let before = mb.leases.len();
    mb.leases.retain(|_, l| l.until > now);
    if mb.leases.len() != before {
        mb.oldest_ready = None;
    }
}

impl Broker for EmbeddedBroker {
    async fn publish(&self, batch: Vec<Publish>) -> Result<(), BrokerError> {
        for p in &batch {
            validate(&p.mailbox)?;
        }
        let hidden = self.publish_sync(&batch)?;
        // Flush and reveal in a task of their own: a caller that gives up half-way (the HTTP
        // client of a submission hung up) must not leave its messages hidden for good. After a
        // failed flush they stay hidden: the store refuses every later flush until the relay
        // restarts, and then reads what it finds on disk.
        let this = self.clone();
        tokio::spawn(async move {
            this.inner.store.flush().await?;
            this.reveal(hidden);
            Ok(())
        })
        .await
        .map_err(|e| {
            BrokerError::Store(StoreError::FlushFailed {
                detail: format!("flush task: {e}"),
            })
        })?
    }

    async fn fetch(
        &self,
        mailbox: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, BrokerError> {
        validate(mailbox)?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notify = {
                let mut state = self.state();
                Arc::clone(&state.entry(mailbox.to_owned()).or_default().notify)
            };
            // Register interest before looking, so a publish between the look and the wait
            // still wakes us.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (got, next_expiry) = self.take_ready(mailbox, max)?;
            if !got.is_empty() || max == 0 {
                return Ok(got);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(got);
            }
            let mut sleep = deadline - now;
            if let Some(until) = next_expiry {
                let to_expiry = until
                    .duration_since(self.inner.clock.now())
                    .unwrap_or_default();
                sleep = sleep.min(to_expiry + Duration::from_millis(1));
            }
            let _ = tokio::time::timeout(sleep, notified).await;
        }
    }

    async fn ack(&self, mailbox: &str, id: &str) -> Result<AckOutcome, BrokerError> {
        let outcome = self.ack_sync(mailbox, id)?;
        // Also for AlreadyAcked: the first ack may still be waiting for its flush.
        self.inner.store.flush().await?;
        Ok(outcome)
    }

    async fn release(&self, mailbox: &str, id: &str) -> Result<(), BrokerError> {
        if let Some(n) = self.release_sync(mailbox, id)? {
            n.notify_waiters();
        }
        Ok(())
    }

    async fn dead_letter(&self, mailbox: &str, id: &str, reason: &str) -> Result<(), BrokerError> {
        self.dead_letter_sync(mailbox, id, reason)?;
        self.inner.store.flush().await?;
        Ok(())
    }

    async fn dead_letters(&self, mailbox: &str) -> Result<Vec<DeadLetter>, BrokerError> {
        validate(mailbox)?;
        let mut out = Vec::new();
        for entry in self.inner.tree.scan_prefix(&prefix(b'd', mailbox)) {
            let (_, v) = entry?;
            let dead: Dead = decode(&v)?;
            out.push(DeadLetter {
                mailbox: mailbox.to_owned(),
                message: dead.message,
                reason: dead.reason,
                at: dead.at,
                delivery_count: dead.deliveries,
            });
        }
        Ok(out)
    }

    async fn redrive(&self, mailbox: &str) -> Result<u64, BrokerError> {
        let (n, notify) = self.redrive_sync(mailbox)?;
        self.inner.store.flush().await?;
        notify.notify_waiters();
        Ok(n)
    }

    async fn stats(&self) -> Result<Vec<MailboxStats>, BrokerError> {
        self.stats_sync()
    }

    /// In the relay's own process and store: reachable whenever the relay is.
    async fn ping(&self) -> Result<(), BrokerError> {
        Ok(())
    }
}

/// When a published message is first offered, and what a crash can leave between the single
/// writes of one call: each crash test writes exactly the first writes of a call (a prefix, as
/// sled recovers them), reopens, and checks that the mailbox reads correctly and that the call
/// can be made again.
#[cfg(test)]
mod durability {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::contract::message;

    const MB: &str = "000.00.00.H41";

    fn open(dir: &std::path::Path) -> EmbeddedBroker {
        EmbeddedBroker::open(Store::open(dir).unwrap(), EmbeddedConfig::default()).unwrap()
    }

    fn publish(id: &str) -> Vec<Publish> {
        vec![Publish {
            mailbox: MB.into(),
            message: message(id, SystemTime::now()),
        }]
    }

    /// Ack's first write alone.
    fn tombstone(b: &EmbeddedBroker, id: &str) {
        b.inner
            .tree
            .insert(
                key(b'a', MB, id.as_bytes()),
                encode(&SystemTime::now()).unwrap(),
            )
            .unwrap();
    }

    fn counts(b: &EmbeddedBroker) -> (u64, u64) {
        let stats = b.stats_sync().unwrap();
        stats
            .iter()
            .find(|s| s.mailbox == MB)
            .map_or((0, 0), |s| (s.ready + s.in_flight, s.dead_lettered))
    }

    #[tokio::test]
    async fn a_message_is_offered_only_once_the_flush_that_covers_it_is_done() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        // What `publish` does before its flush: written, counted, not offered.
        let hidden = b.publish_sync(&publish("p1")).unwrap();
        assert_eq!(counts(&b), (1, 0));
        let (got, _) = b.take_ready(MB, 10).unwrap();
        assert!(got.is_empty(), "offered before its flush");
        b.inner.store.flush().await.unwrap();
        b.reveal(hidden);
        let (got, _) = b.take_ready(MB, 10).unwrap();
        assert_eq!(got.len(), 1);
        assert!(b.flushes(&b.inner.store));
        assert!(!b.flushes(&Store::open(tmp.path().join("other")).unwrap()));
    }

    #[tokio::test]
    async fn a_publish_whose_caller_gives_up_during_the_flush_is_offered_all_the_same() {
        let tmp = tempfile::tempdir().unwrap();
        let b = open(tmp.path());
        // Polled exactly once (written and hidden, flush asked for), then dropped, as when the
        // submitting client disconnects while the relay waits for the flush.
        let mut publishing = Box::pin(b.publish(publish("p1")));
        let first =
            std::future::poll_fn(|cx| std::task::Poll::Ready(publishing.as_mut().poll(cx))).await;
        assert!(
            first.is_pending(),
            "the publish should still have been waiting"
        );
        drop(publishing);
        let got = b.fetch(MB, 10, Duration::from_secs(10)).await.unwrap();
        assert_eq!(got.len(), 1, "hidden for good after its caller went away");
    }

    #[tokio::test]
    async fn a_publish_cut_after_its_index_is_not_queued_and_publishes_again() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let b = open(tmp.path());
            // The first write of publish only: the index, pointing at no message.
            b.inner
                .tree
                .insert(key(b'i', MB, b"p1"), 7u64.to_be_bytes())
                .unwrap();
            b.inner.store.flush().await.unwrap();
        }
        let b = open(tmp.path());
        assert_eq!(counts(&b), (0, 0));
        assert!(b.fetch(MB, 10, Duration::ZERO).await.unwrap().is_empty());
        // The relay publishes it again (resubmission, or the duplicate path): it is queued now.
        b.publish(publish("p1")).await.unwrap();
        let got = b.fetch(MB, 10, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].message.id, "p1");
        assert_eq!(b.ack(MB, "p1").await.unwrap(), AckOutcome::Acked);
        assert_eq!(counts(&b), (0, 0));
    }

    #[tokio::test]
    async fn an_ack_cut_after_its_tombstone_offers_the_message_again_and_the_next_ack_ends_it() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let b = open(tmp.path());
            b.publish(publish("p1")).await.unwrap();
            // The first write of ack only: the tombstone; the message and its index stay.
            tombstone(&b, "p1");
            b.inner.store.flush().await.unwrap();
        }
        let b = open(tmp.path());
        assert_eq!(counts(&b), (1, 0));
        // The ack never answered, so the recipient may not have it: offered again.
        let got = b.fetch(MB, 10, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(b.ack(MB, "p1").await.unwrap(), AckOutcome::Acked);
        assert_eq!(counts(&b), (0, 0));
        assert_eq!(b.ack(MB, "p1").await.unwrap(), AckOutcome::AlreadyAcked);
        b.publish(publish("p1")).await.unwrap();
        assert!(b.fetch(MB, 10, Duration::ZERO).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_ack_cut_after_the_message_went_finishes_on_the_next_ack() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let b = open(tmp.path());
            b.publish(publish("p1")).await.unwrap();
            let seq = b.inner.tree.get(key(b'i', MB, b"p1")).unwrap().unwrap();
            // Tombstone written and the message removed; the index is still there.
            tombstone(&b, "p1");
            b.inner.tree.remove(key(b'm', MB, &seq)).unwrap();
            b.inner.store.flush().await.unwrap();
        }
        let b = open(tmp.path());
        assert_eq!(counts(&b), (0, 0));
        assert!(b.fetch(MB, 10, Duration::ZERO).await.unwrap().is_empty());
        assert_eq!(b.ack(MB, "p1").await.unwrap(), AckOutcome::Acked);
        assert!(b.inner.tree.get(key(b'i', MB, b"p1")).unwrap().is_none());
        b.publish(publish("p1")).await.unwrap();
        assert!(b.fetch(MB, 10, Duration::ZERO).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_dead_letter_or_redrive_cut_between_its_writes_leaves_the_message_dead_once() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let b = open(tmp.path());
            b.publish(publish("p1")).await.unwrap();
            let seq = b.inner.tree.get(key(b'i', MB, b"p1")).unwrap().unwrap();
            // Dead-letter's first write (or redrive's: the message back under `m` while the
            // dead letter is still there): the same seq under both.
            let dead = Dead {
                deliveries: 3,
                message: message("p1", SystemTime::now()),
                reason: "poison".into(),
                at: SystemTime::now(),
            };
            b.inner
                .tree
                .insert(key(b'd', MB, &seq), encode(&dead).unwrap())
                .unwrap();
            b.inner.store.flush().await.unwrap();
        }
        let b = open(tmp.path());
        assert_eq!(counts(&b), (0, 1), "dead once, not also queued");
        assert!(b.fetch(MB, 10, Duration::ZERO).await.unwrap().is_empty());
        let dead = b.dead_letters(MB).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].reason, "poison");
        assert_eq!(b.redrive(MB).await.unwrap(), 1);
        assert_eq!(counts(&b), (1, 0));
        assert_eq!(b.fetch(MB, 10, Duration::ZERO).await.unwrap().len(), 1);
        assert_eq!(b.ack(MB, "p1").await.unwrap(), AckOutcome::Acked);
        assert_eq!(counts(&b), (0, 0));
    }
}
