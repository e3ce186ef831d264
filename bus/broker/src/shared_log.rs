//! The shared log: one RabbitMQ **stream queue** (`<prefix>events`, `x-queue-type = stream`) that
//! every relay node appends to with publisher confirms and reads whole, in one order, from any
//! offset. This is how several relay nodes on one RabbitMQ become one bus without home-made
//! clustering: the relay appends its tracking events (and the sealed bodies) here, and every node
//! folds every node's records into its own store, which becomes a rebuildable index.
//!
//! The log carries opaque bytes: what a record means is the relay's business. Guarantees:
//! - [`SharedLog::append`] returns `Ok` only once RabbitMQ confirmed the record (written to the
//!   stream). A record confirmed before another record is published has the lower offset.
//! - [`SharedLog::read_from`] hands the records from an offset on, in offset order, each once
//!   per subscription; after a lost connection it consumes again from the offset after the last
//!   record handed over, so a reader sees no gap and no repeat (a record may be read again only
//!   by a new subscription from an older offset).
//! - Nothing is ever removed by reading. Retention is RabbitMQ's (none by default: a node rebuilt
//!   from an empty data directory reads the whole log from its first record).
//!
//! Appends are grouped: one task per log (its clones share it) publishes what has come in while
//! the previous message waited for its confirm as **one** stream message (header `truc-batch` =
//! the number of records; each record framed as a 4-byte big-endian length and its bytes), and
//! answers every append in it when that message is confirmed. Each message costs RabbitMQ and
//! every node a publish, a confirm, a delivery and a credit ack whatever its size; under
//! `truc bench` this halved the stream's messages (about 1,000 a second to 500) and the relay on
//! amqp went from 528–568 to 564–662 packages/s. Two messages awaiting confirms at once made
//! smaller groups and was slower (598 / 582 against 650 / 688 packages/s), so it is one.
//!
//! Under load, messages start at most once per [`SharedLogConfig::append_gap`] (default 8 ms,
//! `[broker.amqp] shared_log_gap_ms`): a message due sooner waits out the rest of the gap, and
//! every record appended meanwhile goes with it. Without it the relay's appends, which come in
//! waves (one per group commit of the store), went out as two to three messages per wave: about
//! 0.7 stream messages per package. Each message is a chunk RabbitMQ's stream writer writes and
//! every node's reader reads back, and RabbitMQ spent most of its CPU there. "Under load" means
//! the last message carried several records or records came in while it was out, so a lone
//! appender (one record at a time, nothing else appending) never waits; and a waiting message
//! starts early once no record has come for 2 ms (the burst is in).
//!
//! A record's [`LogRecord::offset`] is its message's stream offset times [`RECORDS_PER_MESSAGE`]
//! plus its place in the message, so offsets stay strictly increasing and a reader can resume in
//! the middle of a message. A message without the header (as every message was before grouping)
//! is one record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_core::Stream;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::mpsc;

use crate::BrokerError;

/// Settings of the shared log.
#[derive(Debug, Clone)]
pub struct SharedLogConfig {
    /// Same URL as the mailboxes (`amqp://user:pass@host:5672/%2f`).
    pub url: String,
    /// Prefix of the stream's name (same as the mailboxes' prefix, `truc.` by default).
    pub prefix: String,
    /// How long an append keeps trying to reconnect before it fails with a retryable error.
    pub reconnect_for: Duration,
    /// Records read ahead of the reader (RabbitMQ's consumer prefetch; default 256).
    pub prefetch: u16,
    /// Under load, messages start at most once per this (see the module docs; default
    /// [`DEFAULT_APPEND_GAP`], `[broker.amqp] shared_log_gap_ms`).
    pub append_gap: Duration,
}

impl SharedLogConfig {
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> SharedLogConfig {
        SharedLogConfig {
            url: url.into(),
            prefix: prefix.into(),
            reconnect_for: Duration::from_secs(30),
            prefetch: 256,
            append_gap: DEFAULT_APPEND_GAP,
        }
    }

    /// The stream queue's name.
    pub fn stream(&self) -> String {
        format!("{}events", self.prefix)
    }
}

/// How often, at most, a message is started under load.
pub const DEFAULT_APPEND_GAP: Duration = Duration::from_millis(8);

/// Records one stream message can carry (a record's offset is its message's stream offset times
/// this, plus its place in the message).
pub const RECORDS_PER_MESSAGE: u64 = 1 << 16;

/// Most records grouped into one message (below [`RECORDS_PER_MESSAGE`]).
const BATCH_RECORDS: usize = 4096;

/// A message stops taking more records past this size (a single larger record goes alone).
const BATCH_BYTES: usize = 4 << 20;

/// The header that marks a grouped message, with its record count.
const BATCH_HEADER: &str = "truc-batch";

/// One record of the log, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Position in the log, strictly increasing: the stream offset of the record's message (0 for
    /// the first message ever appended) times [`RECORDS_PER_MESSAGE`], plus the record's place in
    /// that message.
    pub offset: u64,
    pub data: Vec<u8>,
}

/// The shared log. Clone freely (one connection for appends; one per reader).
#[derive(Debug, Clone)]
pub struct SharedLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: SharedLogConfig,
    appender: Arc<Appender>,
    /// To the append task ([`append_loop`]); it ends when this is dropped with the last handle.
    queue: mpsc::UnboundedSender<Pending>,
}

/// What the append task has done, for tests and readings.
#[derive(Debug, Default)]
struct Counts {
    /// Stream messages published (a message published again after a failure counts again).
    messages: AtomicU64,
    /// Messages that waited out part of the gap before they started.
    gap_waits: AtomicU64,
}

/// What the append task works with (shared with the handle, for `delete` and `close`).
#[derive(Debug)]
struct Appender {
    config: SharedLogConfig,
    /// The append connection and its confirm-mode channel; `None` after a failure until the
    /// next publish reconnects.
    link: tokio::sync::Mutex<Option<(Connection, Channel)>>,
    counts: Counts,
}

/// An append waiting for the task: the record and where its outcome goes.
struct Pending {
    data: Vec<u8>,
    done: tokio::sync::oneshot::Sender<Result<(), BrokerError>>,
}

fn amqp(op: &'static str) -> impl Fn(lapin::Error) -> BrokerError {
    move |e| BrokerError::Amqp {
        op,
        detail: e.to_string(),
    }
}

fn stream_arguments() -> FieldTable {
    let mut t = FieldTable::default();
    t.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("stream")),
    );
    t
}

/// Connects and declares the stream; a reader (`passive`) only checks that it exists, so a stream
/// deleted by an operator or a test is not made again by a reader reconnecting.
async fn connect(
    config: &SharedLogConfig,
    passive: bool,
) -> Result<(Connection, Channel), BrokerError> {
    let connection = crate::connect::open(&config.url)
        .await
        .map_err(amqp("connect"))?;
    let channel = connection
        .create_channel()
        .await
        .map_err(amqp("channel.open"))?;
    channel
        .queue_declare(
            config.stream().into(),
            QueueDeclareOptions {
                passive,
                ..QueueDeclareOptions::durable()
            },
            stream_arguments(),
        )
        .await
        .map_err(amqp("queue.declare"))?;
    Ok((connection, channel))
}

impl SharedLog {
    /// Connects (retrying for [`SharedLogConfig::reconnect_for`]) and declares the stream.
    pub async fn open(config: SharedLogConfig) -> Result<SharedLog, BrokerError> {
        let appender = Arc::new(Appender {
            config: config.clone(),
            link: tokio::sync::Mutex::new(None),
            counts: Counts::default(),
        });
        let link = appender.connect().await?;
        *appender.link.lock().await = Some(link);
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(append_loop(Arc::clone(&appender), rx));
        Ok(SharedLog {
            inner: Arc::new(Inner {
                config,
                appender,
                queue,
            }),
        })
    }

    /// The stream queue's name.
    pub fn stream(&self) -> String {
        self.inner.config.stream()
    }

    /// Appends one record; `Ok` once RabbitMQ confirmed it (in a message with the other records
    /// appended meanwhile, see the module docs). On a failure the connection is made again and the
    /// message published once more (so a record can be in the log twice: readers must fold
    /// idempotently). Dropping the future does not withdraw the record.
    pub async fn append(&self, data: &[u8]) -> Result<(), BrokerError> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let gone = || BrokerError::Amqp {
            op: "basic.publish",
            detail: "the shared log's append task has stopped".into(),
        };
        self.inner
            .queue
            .send(Pending {
                data: data.to_vec(),
                done,
            })
            .map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }

    /// Stream messages this log has published so far (its clones share the count).
    pub fn messages(&self) -> u64 {
        self.inner.appender.counts.messages.load(Ordering::Relaxed)
    }

    /// Messages that waited out part of the append gap before they started.
    pub fn gap_waits(&self) -> u64 {
        self.inner.appender.counts.gap_waits.load(Ordering::Relaxed)
    }

    /// Reads every record from `from` on (`None`: from the first record), in order, into the
    /// returned channel, until the receiver is dropped or the log is dropped. Reconnects by
    /// itself after a lost connection.
    pub fn read_from(&self, from: Option<u64>) -> mpsc::Receiver<LogRecord> {
        let (tx, rx) = mpsc::channel(usize::from(self.inner.config.prefetch.max(1)));
        tokio::spawn(read_loop(Arc::downgrade(&self.inner), from, tx));
        rx
    }

    /// Deletes the stream and everything in it (tests and tear-down tools; the relay never
    /// calls it).
    pub async fn delete(&self) -> Result<(), BrokerError> {
        let mut slot = self.inner.appender.link.lock().await;
        if slot.is_none() {
            *slot = Some(self.inner.appender.connect().await?);
        }
        if let Some((_, ch)) = slot.as_ref() {
            ch.queue_delete(self.stream().into(), QueueDeleteOptions::default())
                .await
                .map_err(amqp("queue.delete"))?;
        }
        Ok(())
    }

    /// Closes the append connection (readers stop when the log is dropped).
    pub async fn close(&self) {
        if let Some((connection, _)) = self.inner.appender.link.lock().await.take() {
            crate::connect::close(&connection, 200, "truc relay closing").await;
        }
    }
}

/// The append task: takes every record that came in while the previous message was out, sends
/// them as one message, and answers each append with that message's outcome.
async fn append_loop(appender: Arc<Appender>, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let gap = appender.config.append_gap;
    // When the last message started, and whether the log is busy: that message carried several
    // records, or records came in while it was out.
    let mut last: Option<tokio::time::Instant> = None;
    let mut busy = false;
    while let Some(first) = queue.recv().await {
        if let Some(due) = last.map(|t| t + gap)
            && busy
            && due > tokio::time::Instant::now()
        {
            appender.counts.gap_waits.fetch_add(1, Ordering::Relaxed);
            linger(&queue, due).await;
        }
        last = Some(tokio::time::Instant::now());
        let mut bytes = first.data.len();
        let mut batch = vec![first];
        while batch.len() < BATCH_RECORDS && bytes < BATCH_BYTES {
            match queue.try_recv() {
                Ok(p) => {
                    bytes += p.data.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let outcome = appender.publish(&batch).await;
        busy = batch.len() > 1 || !queue.is_empty();
        for p in batch {
            let answer = match &outcome {
                Ok(()) => Ok(()),
                Err(BrokerError::PublishRefused { mailbox }) => Err(BrokerError::PublishRefused {
                    mailbox: mailbox.clone(),
                }),
                Err(BrokerError::Amqp { op, detail }) => Err(BrokerError::Amqp {
                    op,
                    detail: detail.clone(),
                }),
                Err(e) => Err(BrokerError::Amqp {
                    op: "basic.publish",
                    detail: e.to_string(),
                }),
            };
            // An append whose caller gave up has nobody to tell.
            let _ = p.done.send(answer);
        }
    }
}

/// How long no record may come before a message waiting out the gap starts early.
const QUIET: Duration = Duration::from_millis(2);

/// Waits until `due`, or until no record has come for [`QUIET`] (the burst is in). It looks at the
/// queue in steps rather than being woken by each record, which would spend what the gap saves.
async fn linger(queue: &mpsc::UnboundedReceiver<Pending>, due: tokio::time::Instant) {
    let mut queued = queue.len();
    loop {
        let left = due.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(QUIET.min(left)).await;
        let now = queue.len();
        if now == queued {
            return;
        }
        queued = now;
    }
}

/// `records` as one message body and its headers (none for a single record).
fn message_of(records: &[Pending]) -> (std::borrow::Cow<'_, [u8]>, BasicProperties) {
    let props = BasicProperties::default().with_delivery_mode(2);
    if let [one] = records {
        return (std::borrow::Cow::Borrowed(&one.data), props);
    }
    let body = group(records.iter().map(|r| r.data.as_slice()));
    let mut headers = FieldTable::default();
    headers.insert(
        BATCH_HEADER.into(),
        AMQPValue::LongUInt(u32::try_from(records.len()).unwrap_or(u32::MAX)),
    );
    (std::borrow::Cow::Owned(body), props.with_headers(headers))
}

/// The records of a grouped message; `None` when it does not hold what its header says.
fn records_of(d: &lapin::message::Delivery) -> Option<Vec<&[u8]>> {
    let count = d
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(BATCH_HEADER).cloned())?;
    let count = match count {
        AMQPValue::LongUInt(n) => usize::try_from(n).ok()?,
        AMQPValue::LongInt(n) => usize::try_from(n).ok()?,
        AMQPValue::LongLongInt(n) => usize::try_from(n).ok()?,
        _ => return None,
    };
    ungroup(&d.data, count)
}

/// Records framed into one message body: each as a 4-byte big-endian length and its bytes.
fn group<'a>(records: impl Iterator<Item = &'a [u8]> + Clone) -> Vec<u8> {
    let size = records.clone().map(|r| 4 + r.len()).sum();
    let mut body = Vec::with_capacity(size);
    for r in records {
        let len = u32::try_from(r.len()).unwrap_or(u32::MAX);
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(r);
    }
    body
}

/// The `count` records of a [`group`]ed body; `None` if it holds anything else.
fn ungroup(body: &[u8], count: usize) -> Option<Vec<&[u8]>> {
    if u64::try_from(count).ok()? > RECORDS_PER_MESSAGE {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    let mut rest = body;
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        out.push(rest.get(4..4usize.checked_add(len)?)?);
        rest = &rest[4 + len..];
    }
    (out.len() == count).then_some(out)
}

impl Appender {
    async fn connect(&self) -> Result<(Connection, Channel), BrokerError> {
        let deadline = tokio::time::Instant::now() + self.config.reconnect_for;
        let mut pause = Duration::from_millis(100);
        loop {
            let r = async {
                let (connection, channel) = connect(&self.config, false).await?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(amqp("confirm.select"))?;
                Ok::<_, BrokerError>((connection, channel))
            }
            .await;
            match r {
                Ok(link) => return Ok(link),
                Err(e) if tokio::time::Instant::now() + pause < deadline => {
                    tracing::warn!(error = %e, "RabbitMQ (shared log) not reachable; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Publishes `records` as one message; on a failure connects again and publishes once more.
    async fn publish(&self, records: &[Pending]) -> Result<(), BrokerError> {
        let (body, props) = message_of(records);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.publish_once(&body, props.clone()).await {
                Ok(()) => return Ok(()),
                Err(e @ BrokerError::PublishRefused { .. }) => return Err(e),
                Err(e) if attempt >= 2 => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "shared log append failed; reconnecting");
                    *self.link.lock().await = None;
                }
            }
        }
    }

    async fn publish_once(&self, data: &[u8], props: BasicProperties) -> Result<(), BrokerError> {
        self.counts.messages.fetch_add(1, Ordering::Relaxed);
        let confirm = {
            let mut slot = self.link.lock().await;
            let live = slot
                .as_ref()
                .is_some_and(|(c, ch)| c.status().connected() && ch.status().connected());
            if !live {
                *slot = Some(self.connect().await?);
            }
            let Some((_, channel)) = slot.as_ref() else {
                return Err(BrokerError::Amqp {
                    op: "connect",
                    detail: "no connection to the shared log".into(),
                });
            };
            // One message at a time (the append task waits for each confirm), so records from
            // this process enter the stream in the order their appends started.
            channel
                .basic_publish(
                    "".into(),
                    self.config.stream().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    data,
                    props,
                )
                .await
                .map_err(amqp("basic.publish"))?
        };
        // Bounded for the same reason as the reader's acks (see `ack`): a confirm on a connection
        // RabbitMQ dropped may never come, and `append` reconnects only after an error.
        let confirmation = tokio::time::timeout(ACK_TIMEOUT, confirm)
            .await
            .map_err(|_| BrokerError::Amqp {
                op: "publisher confirm",
                detail: format!(
                    "no confirm from RabbitMQ within {} s for a shared log record",
                    ACK_TIMEOUT.as_secs()
                ),
            })?;
        match confirmation.map_err(amqp("publisher confirm"))? {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_)) => Err(BrokerError::Amqp {
                op: "basic.publish",
                detail: format!("the shared log {} is missing", self.config.stream()),
            }),
            Confirmation::Nack(_) => Err(BrokerError::PublishRefused {
                mailbox: self.config.stream(),
            }),
        }
    }
}

/// Gives a stream record's credit back. Bounded: on a connection RabbitMQ dropped (`rabbitmqctl
/// stop_app`) the ack may never complete, and a reader waiting on it forever never reconnects,
/// leaving this node behind the log for good (every sync then fails with `cluster_lagging`; seen
/// once in `amqp_faults`' stop_app test). A timeout is an error: the reader reconnects and goes on
/// from the record after the last one handed over.
async fn ack(acker: &lapin::Acker) -> Result<(), BrokerError> {
    match tokio::time::timeout(ACK_TIMEOUT, acker.ack(BasicAckOptions::default())).await {
        Ok(r) => r.map(drop).map_err(amqp("basic.ack")),
        Err(_) => Err(BrokerError::Amqp {
            op: "basic.ack",
            detail: format!(
                "no answer from RabbitMQ within {} s to a shared log ack",
                ACK_TIMEOUT.as_secs()
            ),
        }),
    }
}

/// How long the reader waits for one stream ack, and an append for its confirm, before giving up
/// on the connection.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a reader goes without a delivery before it checks that RabbitMQ still answers.
const PROBE_AFTER: Duration = Duration::from_secs(5);

/// A passive declare of the stream on the reader's channel, answered within [`ACK_TIMEOUT`] or
/// an error (the reader then reconnects).
async fn probe(channel: &Channel, config: &SharedLogConfig) -> Result<(), BrokerError> {
    let declare = channel.queue_declare(
        config.stream().into(),
        QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::durable()
        },
        FieldTable::default(),
    );
    match tokio::time::timeout(ACK_TIMEOUT, declare).await {
        Ok(r) => r.map(drop).map_err(amqp("queue.declare")),
        Err(_) => Err(BrokerError::Amqp {
            op: "queue.declare",
            detail: format!(
                "no answer from RabbitMQ within {} s to the shared log reader's check",
                ACK_TIMEOUT.as_secs()
            ),
        }),
    }
}

fn offset_of(d: &lapin::message::Delivery) -> Option<u64> {
    let headers = d.properties.headers().as_ref()?;
    match headers.inner().get("x-stream-offset")? {
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongUInt(v) => Some(u64::from(*v)),
        AMQPValue::Timestamp(v) => Some(*v),
        _ => None,
    }
}

/// Consumes the stream from `next` on; after any failure, connects again and goes on from the
/// record after the last one handed over.
async fn read_loop(inner: Weak<Inner>, mut next: Option<u64>, tx: mpsc::Sender<LogRecord>) {
    let mut pause = Duration::from_millis(100);
    loop {
        let Some(config) = inner.upgrade().map(|i| i.config.clone()) else {
            return;
        };
        match read_once(&config, &mut next, &tx, &inner).await {
            Ok(()) => return, // receiver or log dropped
            Err(e) => {
                tracing::warn!(error = %e, "shared log reader lost RabbitMQ; reconnecting");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

async fn read_once(
    config: &SharedLogConfig,
    next: &mut Option<u64>,
    tx: &mpsc::Sender<LogRecord>,
    owner: &Weak<Inner>,
) -> Result<(), BrokerError> {
    let (connection, channel) = connect(config, true).await?;
    let result = async {
        channel
            .basic_qos(config.prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(amqp("basic.qos"))?;
        let mut args = FieldTable::default();
        args.insert(
            "x-stream-offset".into(),
            match *next {
                Some(n) => AMQPValue::LongLongInt(
                    i64::try_from(n / RECORDS_PER_MESSAGE).unwrap_or(i64::MAX),
                ),
                None => AMQPValue::LongString(LongString::from("first")),
            },
        );
        let mut consumer = channel
            .basic_consume(
                config.stream().into(),
                "".into(),
                BasicConsumeOptions::default(),
                args,
            )
            .await
            .map_err(amqp("basic.consume"))?;
        let mut heard = tokio::time::Instant::now();
        loop {
            let got = tokio::select! {
                got = std::future::poll_fn(|cx| std::pin::Pin::new(&mut consumer).poll_next(cx)) => got,
                // Notice a dropped log, and a dead connection, even while the stream is idle:
                // when the broker goes away (`rabbitmqctl stop_app`) the consumer may never
                // yield an error, and a reader waiting on it forever would leave this node
                // behind the log for good.
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    if owner.strong_count() == 0 || tx.is_closed() {
                        return Ok(());
                    }
                    if !connection.status().connected() || !channel.status().connected() {
                        return Err(BrokerError::Amqp {
                            op: "basic.consume",
                            detail: "the connection to the shared log was lost".into(),
                        });
                    }
                    // Quiet for a while: ask RabbitMQ something, bounded, so a connection gone
                    // silent is left after about ten seconds rather than when the heartbeat
                    // gives up on it (twenty).
                    if heard.elapsed() >= PROBE_AFTER {
                        probe(&channel, config).await?;
                        heard = tokio::time::Instant::now();
                    }
                    continue;
                }
            };
            let d = match got {
                Some(Ok(d)) => {
                    heard = tokio::time::Instant::now();
                    d
                }
                None => {
                    return Err(BrokerError::Amqp {
                        op: "basic.consume",
                        detail: "the shared log consumer was cancelled".into(),
                    });
                }
                Some(Err(e)) => return Err(amqp("basic.consume")(e)),
            };
            let Some(stream_offset) = offset_of(&d) else {
                return Err(BrokerError::Amqp {
                    op: "basic.consume",
                    detail: "a shared log record came without x-stream-offset".into(),
                });
            };
            let base = stream_offset.saturating_mul(RECORDS_PER_MESSAGE);
            let acker = d.acker.clone();
            // (A stream consumer may start at the chunk before the asked offset, and a reader
            // resuming in the middle of a message has handed over its first records already:
            // whatever lies before `next` is skipped.)
            let records: Vec<(u64, Vec<u8>)> = if d.properties.headers().as_ref().is_some_and(|h| h.inner().contains_key(BATCH_HEADER)) {
                match records_of(&d) {
                    Some(records) => records
                        .into_iter()
                        .zip(base..)
                        .map(|(data, offset)| (offset, data.to_vec()))
                        .collect(),
                    None => {
                        tracing::warn!(stream_offset, "a grouped shared log message does not hold what its header says; skipped");
                        Vec::new()
                    }
                }
            } else {
                vec![(base, d.data)]
            };
            for (offset, data) in records {
                if next.is_some_and(|n| offset < n) {
                    continue;
                }
                if tx.send(LogRecord { offset, data }).await.is_err() {
                    return Ok(());
                }
                *next = Some(offset + 1);
            }
            // Stream acks only give credit back; nothing is removed.
            ack(&acker).await?;
        }
    }
    .await;
    // Bounded: after `rabbitmqctl stop_app` (CI, `amqp_faults`) a reader once waited here
    // forever on its dead connection, never reconnected, and its node fell behind the log for
    // good (every sync `cluster_lagging`).
    crate::connect::close(&connection, 200, "shared log reader done").await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_records_come_back_as_they_went_in_and_anything_else_is_refused() {
        let records: Vec<&[u8]> = vec![b"first", b"", b"third record", &[0u8; 300]];
        let body = group(records.iter().copied());
        assert_eq!(ungroup(&body, 4), Some(records.clone()));
        // The header's count must match what the body holds.
        assert_eq!(ungroup(&body, 3), None);
        assert_eq!(ungroup(&body, 5), None);
        // A body cut anywhere inside a record, or inside a length, is refused.
        for cut in [1, 3, 6, body.len() - 1] {
            assert_eq!(ungroup(&body[..cut], 4), None, "cut at {cut}");
        }
        // A length that points past the end (or overflows) is refused, not trusted.
        let mut lying = 7u32.to_be_bytes().to_vec();
        lying.extend_from_slice(b"abc");
        assert_eq!(ungroup(&lying, 1), None);
        assert_eq!(ungroup(&u32::MAX.to_be_bytes(), 1), None);
        assert_eq!(ungroup(b"", 0), Some(Vec::new()));
        assert_eq!(ungroup(b"", usize::MAX), None);
    }
}
