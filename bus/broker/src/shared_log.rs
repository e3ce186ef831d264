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
}

impl SharedLogConfig {
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> SharedLogConfig {
        SharedLogConfig {
            url: url.into(),
            prefix: prefix.into(),
            reconnect_for: Duration::from_secs(30),
            prefetch: 256,
        }
    }

    /// The stream queue's name.
    pub fn stream(&self) -> String {
        format!("{}events", self.prefix)
    }
}

/// One record of the log, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Offset in the stream (0 for the first record ever appended), strictly increasing.
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
    /// The append connection and its confirm-mode channel; `None` after a failure until the
    /// next append reconnects.
    link: tokio::sync::Mutex<Option<(Connection, Channel)>>,
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
        let log = SharedLog {
            inner: Arc::new(Inner {
                config,
                link: tokio::sync::Mutex::new(None),
            }),
        };
        let mut slot = log.inner.link.lock().await;
        *slot = Some(log.inner.connect_appender().await?);
        drop(slot);
        Ok(log)
    }

    /// The stream queue's name.
    pub fn stream(&self) -> String {
        self.inner.config.stream()
    }

    /// Appends one record; `Ok` once RabbitMQ confirmed it. On a failure the connection is made
    /// again and the record published once more (so a record can be in the log twice: readers
    /// must fold idempotently).
    pub async fn append(&self, data: &[u8]) -> Result<(), BrokerError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.inner.append_once(data).await {
                Ok(()) => return Ok(()),
                Err(e @ BrokerError::PublishRefused { .. }) => return Err(e),
                Err(e) if attempt >= 2 => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "shared log append failed; reconnecting");
                    *self.inner.link.lock().await = None;
                }
            }
        }
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
        let mut slot = self.inner.link.lock().await;
        if slot.is_none() {
            *slot = Some(self.inner.connect_appender().await?);
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
        if let Some((connection, _)) = self.inner.link.lock().await.take() {
            let _ = connection.close(200, "truc relay closing".into()).await;
        }
    }
}

impl Inner {
    async fn connect_appender(&self) -> Result<(Connection, Channel), BrokerError> {
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

    async fn append_once(&self, data: &[u8]) -> Result<(), BrokerError> {
        let confirm = {
            let mut slot = self.link.lock().await;
            let live = slot
                .as_ref()
                .is_some_and(|(c, ch)| c.status().connected() && ch.status().connected());
            if !live {
                *slot = Some(self.connect_appender().await?);
            }
            let Some((_, channel)) = slot.as_ref() else {
                return Err(BrokerError::Amqp {
                    op: "connect",
                    detail: "no connection to the shared log".into(),
                });
            };
            // Published under the lock, so records from this process enter the stream in the
            // order their appends started; the confirm is awaited outside it.
            channel
                .basic_publish(
                    "".into(),
                    self.config.stream().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    data,
                    BasicProperties::default().with_delivery_mode(2),
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
                Some(n) => AMQPValue::LongLongInt(i64::try_from(n).unwrap_or(i64::MAX)),
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
                    continue;
                }
            };
            let d = match got {
                Some(Ok(d)) => d,
                None => {
                    return Err(BrokerError::Amqp {
                        op: "basic.consume",
                        detail: "the shared log consumer was cancelled".into(),
                    });
                }
                Some(Err(e)) => return Err(amqp("basic.consume")(e)),
            };
            let Some(offset) = offset_of(&d) else {
                return Err(BrokerError::Amqp {
                    op: "basic.consume",
                    detail: "a shared log record came without x-stream-offset".into(),
                });
            };
            // A stream consumer may start at the chunk before the asked offset.
            if next.is_some_and(|n| offset < n) {
                ack(&d.acker).await?;
                continue;
            }
            let tag_acker = d.acker.clone();
            if tx
                .send(LogRecord {
                    offset,
                    data: d.data,
                })
                .await
                .is_err()
            {
                return Ok(());
            }
            *next = Some(offset + 1);
            // Stream acks only give credit back; nothing is removed.
            ack(&tag_acker).await?;
        }
    }
    .await;
    let _ = connection.close(200, "shared log reader done".into()).await;
    result
}
