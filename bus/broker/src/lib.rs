//! `broker` owns delivery to per-unit **mailboxes**: the [`Broker`] trait (durable publish,
//! long-poll fetch with a lease, ack, release, dead letters with redrive, cheap stats) and its
//! backends: [`EmbeddedBroker`], durable queues in the local store (sled, through `bus/store`),
//! and [`AmqpBroker`], per-unit queues on RabbitMQ through lapin (see `amqp.rs` for how the
//! contract maps onto AMQP), plus the [`SharedLog`] (a RabbitMQ stream every relay node appends
//! its tracking events to and reads whole: what lets several relay nodes on one RabbitMQ act as
//! one bus). This crate is the only one that knows lapin. Messages are small envelopes ([`Message`], the
//! claim-check): the package body stays in the store's archive. The broker knows nothing of
//! edXML, signatures or HTTP, and reads time only through an injected [`Clock`].
//!
//! Why the trait looks like this: its methods return `impl Future + Send` (return-position impl
//! trait in traits, stable Rust), so each backend writes plain `async fn`s, calls cost no boxing
//! and the futures can be spawned on tokio. Such a trait is not object-safe, so the backend is
//! chosen at run time with an enum, [`AnyBroker`], which forwards each call to its variant; the
//! contract suite ([`contract`]) is written once, generic over any `Broker`, and runs unchanged
//! against every backend.
//!
//! Delivery semantics: at-least-once. A fetched message is leased (invisible to other fetches)
//! until acked, released, dead-lettered, or until its lease runs out; leases are not durable, so
//! after a restart every unacked message is offered again. Ack is durable before it returns.

mod amqp;
mod clock;
mod connect;
pub mod contract;
mod embedded;
mod error;
pub mod outage;
mod shared_log;

use std::future::Future;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use amqp::{AmqpBroker, AmqpConfig, PEEK_CHANNELS, QueueType, StatsSource, Topology};
pub use clock::{Clock, ManualClock, SystemClock};
pub use connect::DEFAULT_HEARTBEAT_SECS;
pub use embedded::{EmbeddedBroker, EmbeddedConfig};
pub use error::{BrokerError, Fault};
pub use shared_log::{
    DEFAULT_APPEND_GAP, LogRecord, RECORDS_PER_MESSAGE, SharedLog, SharedLogConfig,
};
pub use store::Digest;

/// What a message announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A document package.
    Package,
    /// A status package (receipt / processing status).
    Status,
}

/// The envelope a recipient receives (claim-check: the body is in the archive under `digest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Delivery id, unique per (package, recipient) within a mailbox; what the recipient acks.
    pub id: String,
    pub kind: MessageKind,
    /// Sender unit code.
    pub from: String,
    /// edXML `DocumentId`.
    pub document_id: String,
    pub subject: String,
    /// Package size in bytes.
    pub size: u64,
    /// Where the package body is archived.
    pub digest: Digest,
    /// When the relay queued it (for "oldest undelivered" ages).
    pub queued_at: SystemTime,
}

/// One message for one mailbox (a unit code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub mailbox: String,
    pub message: Message,
}

/// A leased message handed to a fetcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub mailbox: String,
    pub message: Message,
    /// 1 on first delivery, 2 on the first redelivery, …
    pub delivery_count: u32,
    /// When the lease runs out and the message is offered again unless acked.
    pub lease_until: SystemTime,
}

/// What an ack did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// The message was removed by this call.
    Acked,
    /// An earlier ack had already removed it (acks are idempotent).
    AlreadyAcked,
}

/// A message an operator (or a policy) set aside, with why and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub mailbox: String,
    pub message: Message,
    pub reason: String,
    pub at: SystemTime,
    pub delivery_count: u32,
}

/// Queue depths of one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxStats {
    pub mailbox: String,
    /// Waiting to be fetched.
    pub ready: u64,
    /// Fetched, leased, not yet acked.
    pub in_flight: u64,
    pub dead_lettered: u64,
    /// Age of the oldest ready message (`None` when nothing is ready).
    pub oldest_ready_age: Option<Duration>,
}

/// Per-unit durable mailboxes. See the crate documentation for the semantics.
///
/// Callers may drop any call before it completes (hyper drops an HTTP handler, and the call it
/// awaits, when the client goes away). A dropped call leaves no message taken and offered to
/// nobody; what a dropped `fetch` took is ready again at once (`contract::an_abandoned_fetch_strands_nothing`).
pub trait Broker: Send + Sync {
    /// Stores every message of the batch; all are durable when this returns `Ok`. Publishing an
    /// id already queued in (or already acked from) that mailbox is allowed and may be ignored by
    /// backends that can detect it.
    fn publish(&self, batch: Vec<Publish>) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Up to `max` ready messages of `mailbox`, oldest first, each leased. Waits up to `wait` for
    /// the first one; returns as soon as any is ready; an empty `Vec` if none came in time.
    fn fetch(
        &self,
        mailbox: &str,
        max: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery>, BrokerError>> + Send;

    /// Removes message `id` from `mailbox` for good, durably. Idempotent; an id never published
    /// to this mailbox is [`BrokerError::UnknownDelivery`].
    fn ack(
        &self,
        mailbox: &str,
        id: &str,
    ) -> impl Future<Output = Result<AckOutcome, BrokerError>> + Send;

    /// Ends the lease of `id` now: it is ready again (redelivered with a higher count).
    fn release(
        &self,
        mailbox: &str,
        id: &str,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Moves `id` to the mailbox's dead-letter list with `reason` and the time, durably.
    fn dead_letter(
        &self,
        mailbox: &str,
        id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// The dead-letter list of `mailbox`, oldest first (for operators).
    fn dead_letters(
        &self,
        mailbox: &str,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, BrokerError>> + Send;

    /// Moves every dead letter of `mailbox` back to ready; returns how many.
    fn redrive(&self, mailbox: &str) -> impl Future<Output = Result<u64, BrokerError>> + Send;

    /// Depths of every mailbox that holds anything, sorted by mailbox.
    fn stats(&self) -> impl Future<Output = Result<Vec<MailboxStats>, BrokerError>> + Send;

    /// One cheap round trip proving the broker is reachable and serving, whatever the number of
    /// mailboxes: how the operator view judges connectivity (`stats` can take seconds at scale).
    fn ping(&self) -> impl Future<Output = Result<(), BrokerError>> + Send;
}

/// The backend chosen at run time (from configuration).
#[derive(Debug, Clone)]
pub enum AnyBroker {
    Embedded(EmbeddedBroker),
    Amqp(AmqpBroker),
}

impl AnyBroker {
    /// Whether a successful [`Broker::ack`] also makes durable every write made before it to
    /// `store`: both backends keep their ack state (the embedded queues, the RabbitMQ ack ledger)
    /// in the store they were opened with and flush it before an ack returns, so when that is
    /// the caller's store, the caller needs no flush of its own after the ack.
    pub fn ack_flushes(&self, store: &store::Store) -> bool {
        match self {
            AnyBroker::Embedded(b) => b.flushes(store),
            AnyBroker::Amqp(b) => b.flushes(store),
        }
    }
}

impl Broker for AnyBroker {
    async fn publish(&self, batch: Vec<Publish>) -> Result<(), BrokerError> {
        match self {
            AnyBroker::Embedded(b) => b.publish(batch).await,
            AnyBroker::Amqp(b) => b.publish(batch).await,
        }
    }
    async fn fetch(
        &self,
        mailbox: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, BrokerError> {
        match self {
            AnyBroker::Embedded(b) => b.fetch(mailbox, max, wait).await,
            AnyBroker::Amqp(b) => b.fetch(mailbox, max, wait).await,
        }
    }
    async fn ack(&self, mailbox: &str, id: &str) -> Result<AckOutcome, BrokerError> {
        match self {
            AnyBroker::Embedded(b) => b.ack(mailbox, id).await,
            AnyBroker::Amqp(b) => b.ack(mailbox, id).await,
        }
    }
    async fn release(&self, mailbox: &str, id: &str) -> Result<(), BrokerError> {
        match self {
            AnyBroker::Embedded(b) => b.release(mailbox, id).await,
            AnyBroker::Amqp(b) => b.release(mailbox, id).await,
        }
    }
    async fn dead_letter(&self, mailbox: &str, id: &str, reason: &str) -> Result<(), BrokerError> {
        match self {
            AnyBroker::Embedded(b) => b.dead_letter(mailbox, id, reason).await,
            AnyBroker::Amqp(b) => b.dead_letter(mailbox, id, reason).await,
        }
    }
    async fn dead_letters(&self, mailbox: &str) -> Result<Vec<DeadLetter>, BrokerError> {
        match self {
            AnyBroker::Embedded(b) => b.dead_letters(mailbox).await,
            AnyBroker::Amqp(b) => b.dead_letters(mailbox).await,
        }
    }
    async fn redrive(&self, mailbox: &str) -> Result<u64, BrokerError> {
        match self {
            AnyBroker::Embedded(b) => b.redrive(mailbox).await,
            AnyBroker::Amqp(b) => b.redrive(mailbox).await,
        }
    }
    async fn stats(&self) -> Result<Vec<MailboxStats>, BrokerError> {
        match self {
            AnyBroker::Embedded(b) => b.stats().await,
            AnyBroker::Amqp(b) => b.stats().await,
        }
    }
    async fn ping(&self) -> Result<(), BrokerError> {
        match self {
            AnyBroker::Embedded(b) => b.ping().await,
            AnyBroker::Amqp(b) => b.ping().await,
        }
    }
}
