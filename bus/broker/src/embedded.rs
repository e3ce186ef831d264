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
//! Every change of one call is one atomic batch, then a group-commit flush before `Ok`. Memory:
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
        for (space, field) in [(b'm', 0), (b'd', 1)] {
            for entry in tree.scan_prefix(&[space]) {
                let (k, _) = entry?;
                let (mailbox, _) = split_key(&k).ok_or_else(|| corrupt("key", "no mailbox"))?;
                let mb = state.entry(mailbox.to_owned()).or_default();
                if field == 0 {
                    mb.stored += 1;
                } else {
                    mb.dead += 1;
                }
            }
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

    /// Writes the batch's new messages (skipping ids already queued or acked); returns the
    /// mailboxes to wake once durable.
    fn publish_sync(&self, batch: &[Publish]) -> Result<Vec<Arc<Notify>>, BrokerError> {
        let tree = &self.inner.tree;
        let mut state = self.state();
        let mut writes = Batch::default();
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        let mut added: HashMap<&str, (u64, SystemTime)> = HashMap::new();
        for p in batch {
            let (mb, id) = (p.mailbox.as_str(), p.message.id.as_str());
            if !seen.insert((mb, id)) {
                continue;
            }
            let id_key = key(b'i', mb, id.as_bytes());
            if tree.contains_key(&id_key)? || tree.contains_key(key(b'a', mb, id.as_bytes()))? {
                continue;
            }
            let seq = self.inner.store.generate_id()?.to_be_bytes();
            let stored = Stored {
                deliveries: 0,
                message: p.message.clone(),
            };
            writes.insert(key(b'm', mb, &seq), encode(&stored)?);
            writes.insert(id_key, seq);
            let e = added.entry(mb).or_insert((0, p.message.queued_at));
            e.0 += 1;
            e.1 = e.1.min(p.message.queued_at);
        }
        tree.apply(writes)?;
        let mut wake = Vec::with_capacity(added.len());
        for (mb, (n, first_at)) in added {
            let m = state.entry(mb.to_owned()).or_default();
            m.oldest_ready = match m.oldest_ready {
                // Nothing was queued: the new messages are the only ready ones.
                _ if m.stored == 0 => Some(Some(first_at)),
                Some(None) => Some(Some(first_at)),
                Some(Some(t)) => Some(Some(t.min(first_at))),
                None => None,
            };
            m.stored += n;
            wake.push(Arc::clone(&m.notify));
        }
        Ok(wake)
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
        if max > 0 && (mb.stored as usize) > mb.leases.len() {
            for entry in self.inner.tree.scan_prefix(&prefix(b'm', mailbox)) {
                let (k, v) = entry?;
                let (_, seq_bytes) = split_key(&k).ok_or_else(|| corrupt("key", "no mailbox"))?;
                let seq = seq_of(seq_bytes)?;
                if mb.leases.contains_key(&seq) {
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
        let mut writes = Batch::default();
        writes.remove(&m_key);
        writes.remove(&d_key);
        writes.remove(key(b'i', mailbox, id.as_bytes()));
        writes.insert(
            key(b'a', mailbox, id.as_bytes()),
            encode(&self.inner.clock.now())?,
        );
        tree.apply(writes)?;
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
        let mut writes = Batch::default();
        writes.remove(&m_key);
        writes.insert(key(b'd', mailbox, &seq_bytes), encode(&dead)?);
        tree.apply(writes)?;
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
        let mut writes = Batch::default();
        let mut n = 0;
        for entry in tree.scan_prefix(&prefix(b'd', mailbox)) {
            let (k, v) = entry?;
            let dead: Dead = decode(&v)?;
            let (_, seq_bytes) = split_key(&k).ok_or_else(|| corrupt("key", "no mailbox"))?;
            let stored = Stored {
                deliveries: dead.deliveries,
                message: dead.message,
            };
            writes.remove(&k);
            // Back in its original place in the FIFO.
            writes.insert(key(b'm', mailbox, seq_bytes), encode(&stored)?);
            n += 1;
        }
        tree.apply(writes)?;
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
        let wake = self.publish_sync(&batch)?;
        self.inner.store.flush().await?;
        for n in wake {
            n.notify_waiters();
        }
        Ok(())
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
