//! Several relay nodes on one RabbitMQ, as one bus (amqp mode, `[broker.amqp] shared_log`).
//!
//! Every node serves submissions and inboxes for every unit. What makes them one bus is the
//! **shared log**, a RabbitMQ stream ([`broker::SharedLog`], `<prefix>events`): each node appends
//! its tracking events there with publisher confirms, the `Accepted` event together with the
//! sealed package, and folds every other node's events into its own store (archive, event log,
//! tracking views), which so becomes a rebuildable index of the stream. No home-made clustering:
//! the order, the durability and the replication are RabbitMQ's.
//!
//! Rules, in the order a package meets them:
//! - **submit**: the node first *syncs* (below), so a resubmission to another node after the first
//!   answer is recognised as a duplicate. Record locally → flush → append `Accepted` + body to the
//!   stream (confirmed) → publish to the mailboxes (confirmed) → 202. Since the stream has the
//!   package before any mailbox does, a node that meets the message can always sync and find the
//!   body. The package id is derived from (sender, DocumentId key, submitted digest), so the same
//!   package accepted at two nodes at the very same moment (before either could see the other)
//!   gets one id: recipients see it once. The duplicate path appends the `Accepted` event again
//!   (a crash may have come between the local record and the stream), and folding is idempotent.
//! - **ack**: record `Delivered` locally → flush → append it to the stream (confirmed) → ack on
//!   RabbitMQ if this node holds the lease → 204. A node without the lease answers 204 all the
//!   same: the lease holder acks the message on RabbitMQ when it folds the `Delivered` event, and
//!   if it died the message comes back and whichever node fetches it next acks it without
//!   offering it (it syncs before offering and drops every delivery tracking calls delivered).
//! - **read** (tracking of one package, a body, a status about a received document): a node that
//!   does not know the package yet syncs and looks again; tracking of one package always syncs,
//!   so it is the same at every node. Package lists are eventual (milliseconds behind).
//!
//! *Sync* = append a marker record (this node's id, its process run and a number) and wait until this node's
//! reader has folded it: every record confirmed before the marker was appended is then folded
//! here. Concurrent syncs share one marker. A node syncs once at start, before it serves, so it
//! has caught up with everything appended while it was down.
//!
//! Records are framed as a 4-byte big-endian length, the JSON [`Record`], then the body bytes.
//! (The shared log groups the records appended at about the same time into one stream message;
//! a record's offset says where in the stream and in its message it is.)
//! A node skips its own events (they are in its log already) and folds the others' with the
//! record's offset remembered in tree `cluster` (`offset`); the node id is kept there too
//! (`node`), so a node rebuilt from an empty data directory is a new node that reads the whole
//! stream. Folding an event twice changes nothing (a package header is written last and an
//! `Accepted` for a known package is skipped; `Delivered` is idempotent).

use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::Duration;

use broker::{AnyBroker, Broker, LogRecord, SharedLog};
use serde::{Deserialize, Serialize};
use store::{Digest, KvTree, Store};
use tokio::sync::Notify;

use crate::error::{Fault, RelayError};
use crate::tracking::{Event, Header};
use crate::{Inner, Relay};

/// How long a sync may wait for its marker before the request fails (503, retry).
const SYNC_TIMEOUT: Duration = Duration::from_secs(20);

/// One record of the shared log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
// Built one at a time and serialised at once, as `Event` itself; boxing would only add noise.
#[allow(clippy::large_enum_variant)]
enum Record {
    /// A tracking event of node `origin` (an `Accepted` one is followed by the sealed body).
    Event { origin: String, event: Event },
    /// Sync marker `n` of node `origin` in its process run `run` (a restarted node numbers its
    /// markers from 1 again; the markers of its earlier runs, still in the stream, must not count).
    Marker { origin: String, run: String, n: u64 },
}

fn frame(record: &Record, body: &[u8]) -> Result<Vec<u8>, RelayError> {
    let json = serde_json::to_vec(record).map_err(|e| {
        RelayError::new(
            "internal",
            Fault::Relay,
            500,
            format!("Trục không ghi được bản ghi nhật ký chung ({e}). Hãy gửi lại."),
            format!("The relay could not encode a shared log record ({e}). Send again."),
        )
    })?;
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + json.len() + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(body);
    Ok(out)
}

fn unframe(data: &[u8]) -> Option<(Record, &[u8])> {
    let len = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let json = data.get(4..4 + len)?;
    let record = serde_json::from_slice(json).ok()?;
    Some((record, data.get(4 + len..)?))
}

/// The package id: the same package (sender, DocumentId key, submitted bytes) gets the same id at
/// every node. Shaped as a UUID (version 4 bits set over hash bytes).
pub(crate) fn package_id(from: &str, doc_key: &str, submitted: &Digest) -> String {
    let mut material = Vec::with_capacity(from.len() + doc_key.len() + 34);
    material.extend_from_slice(from.as_bytes());
    material.push(0);
    material.extend_from_slice(doc_key.as_bytes());
    material.push(0);
    material.extend_from_slice(submitted.as_bytes());
    let hash = Digest::of(&material);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The `Accepted` event a header was folded from (the dedup key is not kept in the header; it is
/// rebuilt the way the pipeline makes it).
pub(crate) fn accepted_event(h: &Header) -> Event {
    let doc_key = match &h.status_code {
        Some(code) if h.kind == broker::MessageKind::Status => {
            format!("status:{}:{code}:{}", h.document_id, h.submitted.to_hex())
        }
        _ => h.document_id.clone(),
    };
    Event::Accepted {
        id: h.id.clone(),
        at_ms: h.at_ms,
        kind: h.kind,
        from: h.from.clone(),
        doc_key,
        document_id: h.document_id.clone(),
        code: h.code.clone(),
        subject: h.subject.clone(),
        digest: h.digest,
        size: h.size,
        submitted: h.submitted,
        recipients: h.recipients.clone(),
        about: h.about.clone(),
        status_code: h.status_code.clone(),
        description: h.description.clone(),
    }
}

/// This node's membership: its id, the shared log, and the sync state. Created by
/// [`Relay::open_clustered`], owned by the relay; dropping the relay stops the reader and the
/// marker tasks (they hold only a weak handle).
#[derive(Debug)]
pub(crate) struct Cluster {
    log: SharedLog,
    node: String,
    /// This process run (a fresh id at every open): only its own markers answer its syncs.
    run: String,
    /// Tree `cluster`: `node` (this node's id), `offset` (last folded stream offset, 8 bytes BE).
    meta: KvTree,
    /// (marker number whose append has begun, highest number asked for).
    marks: Mutex<(u64, u64)>,
    /// Wakes the marker task (shared with it, so it can wait without holding the relay).
    wake: Arc<Notify>,
    /// Highest own marker folded here; blocking waiters use the condvar, async ones `folded`.
    seen: Mutex<u64>,
    seen_cv: Condvar,
    folded: Notify,
}

const NODE: &[u8] = b"node";
const OFFSET: &[u8] = b"offset";

impl Cluster {
    fn open(store: &Store, log: SharedLog) -> Result<(Cluster, Option<u64>), RelayError> {
        let meta = store.tree("cluster")?;
        let node = match meta.get(NODE)? {
            Some(v) => String::from_utf8_lossy(&v).into_owned(),
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                meta.insert(NODE, id.as_bytes())?;
                id
            }
        };
        let offset = meta
            .get(OFFSET)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes);
        Ok((
            Cluster {
                log,
                node,
                run: uuid::Uuid::new_v4().to_string(),
                meta,
                marks: Mutex::new((0, 0)),
                wake: Arc::new(Notify::new()),
                seen: Mutex::new(0),
                seen_cv: Condvar::new(),
                folded: Notify::new(),
            },
            offset,
        ))
    }

    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Asks for a marker appended from now on; returns its number.
    fn request(&self) -> u64 {
        let mut m = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        let need = m.0 + 1;
        m.1 = m.1.max(need);
        drop(m);
        self.wake.notify_one();
        need
    }

    fn seen(&self) -> u64 {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn saw(&self, n: u64) {
        let mut s = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if n > *s {
            *s = n;
            self.seen_cv.notify_all();
            self.folded.notify_waiters();
        }
    }

    pub(crate) async fn append(&self, event: &Event, body: &[u8]) -> Result<(), RelayError> {
        let data = frame(
            &Record::Event {
                origin: self.node.clone(),
                event: event.clone(),
            },
            body,
        )?;
        self.log.append(&data).await?;
        Ok(())
    }
}

fn lagging() -> RelayError {
    RelayError::new(
        "cluster_lagging",
        Fault::Broker,
        503,
        format!(
            "Nút trục này chưa đọc kịp nhật ký chung trên RabbitMQ sau {} giây. Hãy thử lại sau ít giây; nếu kéo dài, hãy kiểm tra RabbitMQ (rabbitmqctl list_queues name type messages).",
            SYNC_TIMEOUT.as_secs()
        ),
        format!(
            "This relay node has not caught up with the shared log on RabbitMQ within {} s. Retry in a few seconds; if it persists, check RabbitMQ (rabbitmqctl list_queues name type messages).",
            SYNC_TIMEOUT.as_secs()
        ),
    )
}

impl Relay {
    /// Opens the relay as one node of several on one RabbitMQ (see the `cluster` module docs):
    /// starts folding the shared log from where this node stopped, and returns once it has
    /// caught up with everything appended before this call.
    pub async fn open_clustered(
        store: Store,
        broker: AnyBroker,
        directory: directory::Directory,
        config: crate::RelayConfig,
        log: SharedLog,
    ) -> Result<Relay, RelayError> {
        let (cluster, offset) = Cluster::open(&store, log.clone())?;
        let relay = Relay::open_with(store, broker, directory, config, Some(cluster))?;
        let weak = Arc::downgrade(&relay.inner);
        let records = log.read_from(offset.map(|o| o + 1));
        tokio::spawn(read_loop(weak.clone(), records));
        tokio::spawn(marker_loop(weak));
        relay.sync().await?;
        if let Some(c) = &relay.inner.cluster {
            tracing::info!(node = c.node(), "caught up with the shared log");
        }
        Ok(relay)
    }

    /// This node's id in the shared log (`None` for a relay on its own).
    pub fn cluster_node(&self) -> Option<&str> {
        self.inner.cluster.as_ref().map(Cluster::node)
    }

    /// Waits until every record appended to the shared log before this call is folded here
    /// (nothing to wait for without a shared log).
    pub async fn sync(&self) -> Result<(), RelayError> {
        let Some(c) = &self.inner.cluster else {
            return Ok(());
        };
        let need = c.request();
        let wait = async {
            loop {
                let folded = c.folded.notified();
                tokio::pin!(folded);
                folded.as_mut().enable();
                if c.seen() >= need {
                    return;
                }
                folded.await;
            }
        };
        tokio::time::timeout(SYNC_TIMEOUT, wait)
            .await
            .map_err(|_| lagging())
    }

    /// [`Relay::sync`] for the synchronous calls (run on blocking threads by the edge).
    pub(crate) fn sync_blocking(&self) -> Result<(), RelayError> {
        let Some(c) = &self.inner.cluster else {
            return Ok(());
        };
        let need = c.request();
        let guard = c.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, timeout) = c
            .seen_cv
            .wait_timeout_while(guard, SYNC_TIMEOUT, |seen| *seen < need)
            .unwrap_or_else(PoisonError::into_inner);
        drop(guard);
        if timeout.timed_out() {
            return Err(lagging());
        }
        Ok(())
    }

    /// Appends an accepted package's event and sealed body to the shared log (no-op alone).
    pub(crate) async fn share_accepted(&self, header: &Header) -> Result<(), RelayError> {
        let Some(c) = &self.inner.cluster else {
            return Ok(());
        };
        let body = self.inner.store.archive().get(&header.digest)?.ok_or_else(|| {
            RelayError::new(
                "archive_missing",
                Fault::Relay,
                500,
                format!(
                    "Kho lưu trữ của trục không còn nội dung gói tin {}. Hãy báo quản trị trục.",
                    header.id
                ),
                format!(
                    "The relay's archive has lost the body of package {}. Tell the relay operator.",
                    header.id
                ),
            )
        })?;
        c.append(&accepted_event(header), &body).await
    }

    /// Folds a batch of records of the shared log; returns the highest own marker met, the
    /// (mailbox, id) pairs other nodes recorded as delivered, and the records not folded because
    /// the store failed (to be tried again).
    fn fold_records(&self, records: Vec<LogRecord>) -> Folded {
        let mut marker = 0;
        let mut delivered = Vec::new();
        let Some(c) = &self.inner.cluster else {
            return (marker, delivered, Vec::new());
        };
        // The offset is remembered once per batch, after its last folded record: folding is
        // idempotent, so a crash in the middle only folds a few records again at the next start
        // (a write per record cost a store write for each of this node's own records too).
        let mut last = None;
        let remember = |last: Option<u64>| {
            if let Some(offset) = last
                && let Err(e) = c.meta.insert(OFFSET, offset.to_be_bytes())
            {
                tracing::error!(error = %e, "cannot remember the shared log offset");
            }
        };
        let mut records = records.into_iter();
        while let Some(r) = records.next() {
            match unframe(&r.data) {
                Some((Record::Marker { origin, run, n }, _)) => {
                    if origin == c.node && run == c.run {
                        marker = marker.max(n);
                    }
                }
                Some((Record::Event { origin, .. }, _)) if origin == c.node => {}
                Some((Record::Event { event, .. }, body)) => {
                    if let Err(e) = self.fold_remote(&event, body, &mut delivered) {
                        // Stop here and try again from this record (nothing after it is folded
                        // first, so the order holds).
                        tracing::error!(offset = r.offset, error = %e, "cannot fold a shared log record; retrying");
                        remember(last);
                        let mut rest = vec![r];
                        rest.extend(records);
                        return (marker, delivered, rest);
                    }
                }
                None => {
                    tracing::warn!(offset = r.offset, "unreadable shared log record skipped");
                }
            }
            last = Some(r.offset);
        }
        remember(last);
        (marker, delivered, Vec::new())
    }

    fn fold_remote(
        &self,
        event: &Event,
        body: &[u8],
        delivered: &mut Vec<(String, String)>,
    ) -> Result<(), RelayError> {
        let tracking = &self.inner.tracking;
        match event {
            Event::Accepted { id, digest, .. } => {
                if tracking.header(id)?.is_some() {
                    return Ok(()); // already known (the same package accepted here too, or a repeat)
                }
                if Digest::of(body) != *digest {
                    tracing::warn!(id, "shared log body does not match its digest; skipped");
                    return Ok(());
                }
                self.inner.store.archive().put(body)?;
                tracking.record(event)?;
            }
            Event::Delivered { id, unit, .. } => {
                tracking.record(event)?;
                delivered.push((unit.clone(), id.clone()));
            }
        }
        Ok(())
    }
}

/// What [`Relay::fold_records`] returns.
type Folded = (u64, Vec<(String, String)>, Vec<LogRecord>);

/// Reads the shared log into this node's store until the relay is dropped.
async fn read_loop(relay: Weak<Inner>, mut records: tokio::sync::mpsc::Receiver<LogRecord>) {
    let mut retry: Vec<LogRecord> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut retry);
        if batch.is_empty() {
            match records.recv().await {
                Some(first) => batch.push(first),
                None => return,
            }
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        while batch.len() < 512 {
            match records.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let Some(inner) = relay.upgrade() else { return };
        let this = Relay { inner };
        let folder = this.clone();
        let folded = tokio::task::spawn_blocking(move || folder.fold_records(batch)).await;
        let Ok((marker, delivered, rest)) = folded else {
            // The fold thread panicked; the records it held are read again after a restart.
            tracing::error!("shared log fold task failed");
            continue;
        };
        retry = rest;
        // The lease holder acks on RabbitMQ what a recipient acknowledged at another node.
        if !delivered.is_empty() {
            let broker = this.inner.broker.clone();
            tokio::spawn(async move {
                for (mailbox, id) in delivered {
                    match broker.ack(&mailbox, &id).await {
                        Ok(_) | Err(broker::BrokerError::UnknownDelivery { .. }) => {}
                        Err(e) => {
                            tracing::warn!(mailbox, id, error = %e, "ack of a delivery acknowledged at another node failed; it is acked when met again")
                        }
                    }
                }
            });
        }
        if let Some(c) = &this.inner.cluster
            && marker > 0
        {
            c.saw(marker);
        }
    }
}

/// Appends the sync markers asked for, one at a time (asks that come while one is being appended
/// share the next one).
async fn marker_loop(relay: Weak<Inner>) {
    loop {
        let Some(inner) = relay.upgrade() else { return };
        let Some(c) = &inner.cluster else { return };
        let n = {
            let mut m = c.marks.lock().unwrap_or_else(PoisonError::into_inner);
            if m.1 > m.0 {
                m.0 += 1;
                Some(m.0)
            } else {
                None
            }
        };
        let Some(n) = n else {
            let wake = Arc::clone(&c.wake);
            drop(inner);
            // Re-check now and then so a dropped relay ends this task.
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            continue;
        };
        loop {
            let data = match frame(
                &Record::Marker {
                    origin: c.node.clone(),
                    run: c.run.clone(),
                    n,
                },
                b"",
            ) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode a sync marker");
                    return;
                }
            };
            match c.log.append(&data).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "sync marker not appended; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}
