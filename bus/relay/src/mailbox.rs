//! What a unit asks of the relay about its own mailbox and its own packages: long-poll the inbox,
//! read a package, acknowledge it, track what it sent or received. A unit only ever sees its own
//! mailbox and the packages it sent or was sent; anything else is "not found".

use std::sync::atomic::Ordering;
use std::time::Duration;

use broker::{AckOutcome, Broker};

use crate::tracking::{
    Event, Header, PackageQuery, PackageSummary, Page, PageOptions, Tracking, ms,
};
use crate::{InboxItem, Relay, RelayError, rfc3339};

/// Bodies up to this size are read on the caller's thread (see [`Relay::fetch_body`]).
const INLINE_READ_BYTES: u64 = 256 * 1024;

impl Relay {
    /// Up to `limit` waiting packages of `unit`'s mailbox, waiting up to `wait` for the first.
    /// Each returned item is leased to the caller until it acks it or the lease runs out. What
    /// was fetched but is not returned (this call failed after the fetch, or its caller dropped
    /// it, as hyper does when the client goes away) is given back to the mailbox at once.
    pub async fn inbox(
        &self,
        unit: &str,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<InboxItem>, RelayError> {
        let wait = wait.min(Duration::from_secs(60));
        let deadline = tokio::time::Instant::now() + wait;
        let mut offer = Offer {
            broker: self.inner.broker.clone(),
            unit: unit.to_owned(),
            deliveries: self
                .inner
                .broker
                .fetch(unit, limit.clamp(1, 1000), wait)
                .await?,
        };
        if self.inner.cluster.is_some() || self.leases_die_with_the_process() {
            // Another node may have recorded some of these as delivered (the recipient acked
            // there while this copy was leased elsewhere or published twice), or this node did
            // before it restarted (the lease died with the old process, the ack was taken all
            // the same): ack them here without offering them, and wait on for others while
            // time is left.
            loop {
                self.drop_delivered(unit, &mut offer.deliveries).await?;
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if !offer.deliveries.is_empty() || left.is_zero() {
                    break;
                }
                offer.deliveries = self
                    .inner
                    .broker
                    .fetch(unit, limit.clamp(1, 1000), left)
                    .await?;
            }
        }
        Ok(offer
            .hand_over()
            .into_iter()
            .map(|d| InboxItem {
                id: d.message.id,
                kind: d.message.kind,
                from: d.message.from,
                document_id: d.message.document_id,
                subject: d.message.subject,
                size: d.message.size,
                queued_at: rfc3339(d.message.queued_at),
            })
            .collect())
    }

    /// With other relay nodes: syncs with the shared log, then keeps only the deliveries not yet
    /// recorded as delivered; the others are acked on the broker here, never offered.
    async fn drop_delivered(
        &self,
        unit: &str,
        deliveries: &mut Vec<broker::Delivery>,
    ) -> Result<(), RelayError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        self.sync().await?;
        let mut done = Vec::new();
        for d in deliveries.iter() {
            if self
                .inner
                .tracking
                .row(&d.message.id, unit)?
                .is_some_and(|r| r.delivered)
            {
                done.push(d.message.id.clone());
            }
        }
        // Out of the offer before the acks' awaits: if this call is dropped during them, these
        // are not given back (they are delivered; one that comes back is dropped again).
        deliveries.retain(|d| !done.contains(&d.message.id));
        for id in done {
            if let Err(e) = self.inner.broker.ack(unit, &id).await {
                tracing::warn!(unit, id = %id, error = %e, "ack of a delivery already acknowledged at another node failed; it comes back and is dropped again");
            }
        }
        Ok(())
    }

    /// Leases held by the broker client in this process only (RabbitMQ: a lease is a delivery
    /// tag on this process's connection), so a restart loses them while recipients keep what
    /// they fetched; the embedded broker keeps its leases in the store.
    fn leases_die_with_the_process(&self) -> bool {
        matches!(self.inner.broker, broker::AnyBroker::Amqp(_))
    }

    /// [`Relay::package_body`] for async callers (the edge). Alone, the lookups are a few store
    /// reads and a small body one read of page-cached archive bytes: shorter than the hop to a
    /// blocking thread and back, which cost measurably once per fetch under load (a
    /// store write, such as the ack's record, is another matter: see [`Relay::ack`]). A large body,
    /// or a wait on other relay nodes (the shared log), goes to a blocking thread.
    pub async fn fetch_body(&self, unit: &str, id: &str) -> Result<Vec<u8>, RelayError> {
        if self.inner.cluster.is_none() {
            let header = self.visible_header(unit, id)?;
            if header.size <= INLINE_READ_BYTES {
                return self.archived(&header);
            }
        }
        let this = self.clone();
        let (unit, id) = (unit.to_owned(), id.to_owned());
        tokio::task::spawn_blocking(move || this.package_body(&unit, &id))
            .await
            .map_err(|e| {
                RelayError::new(
                    "internal",
                    crate::Fault::Relay,
                    500,
                    format!("Lỗi nội bộ ({e}); hãy lấy lại gói tin."),
                    format!("Internal error ({e}); fetch the package again."),
                )
            })?
    }

    /// The sealed package `id`, if `unit` is one of its recipients.
    pub fn package_body(&self, unit: &str, id: &str) -> Result<Vec<u8>, RelayError> {
        if self.inner.cluster.is_some() && self.inner.tracking.row(id, unit)?.is_none() {
            // Accepted at another node a moment ago: fold what it appended, then look again.
            self.sync_blocking()?;
        }
        let header = self.visible_header(unit, id)?;
        self.archived(&header)
    }

    /// The header of package `id` if `unit` is one of its recipients, else "not found".
    fn visible_header(&self, unit: &str, id: &str) -> Result<Header, RelayError> {
        let tracking = &self.inner.tracking;
        let visible = tracking.row(id, unit)?.is_some();
        tracking.header(id)?.filter(|_| visible).ok_or_else(|| {
            RelayError::not_found("gói tin trong hộp thư", "package in your inbox", id)
        })
    }

    /// The archived body of a package.
    fn archived(&self, header: &Header) -> Result<Vec<u8>, RelayError> {
        match self.inner.store.archive().get(&header.digest)? {
            Some(bytes) => Ok(bytes),
            None => Err(RelayError::new(
                "archive_missing",
                crate::Fault::Relay,
                500,
                format!(
                    "Kho lưu trữ của trục không còn nội dung gói tin {}. Hãy báo quản trị trục.",
                    header.id
                ),
                format!(
                    "The relay's archive has lost the body of package {}. Tell the relay operator.",
                    header.id
                ),
            )),
        }
    }

    /// `unit` has the package `id` safely; it leaves the mailbox and tracking says delivered.
    /// Idempotent.
    pub async fn ack(&self, unit: &str, id: &str) -> Result<(), RelayError> {
        let mut row = self.inner.tracking.row(id, unit)?;
        if self.inner.cluster.is_some() && row.is_none() {
            self.sync().await?;
            row = self.inner.tracking.row(id, unit)?;
        }
        let Some(row) = row else {
            return Err(RelayError::not_found(
                "gói tin trong hộp thư",
                "package in your inbox",
                id,
            ));
        };
        // The event first: if the relay dies between the two, the package is offered again and
        // the second ack finds the row already delivered, so tracking never misses a delivery.
        let event = Event::Delivered {
            id: id.to_owned(),
            unit: unit.to_owned(),
            at_ms: ms(self.now()),
        };
        let shared = event.clone();
        let already = row.delivered;
        if !already {
            // On a blocking thread, although the write itself is short: it takes the fold lock,
            // which submissions hold while they record, and an async thread waiting on it stalls
            // every task behind it (done on this thread, truc bench's deliveries fell 13 s
            // behind their submissions).
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.inner.tracking.record(&event))
                .await
                .map_err(|e| {
                    RelayError::new(
                        "internal",
                        crate::Fault::Relay,
                        500,
                        format!("Lỗi nội bộ ({e}); hãy xác nhận lại."),
                        format!("Internal error ({e}); acknowledge again."),
                    )
                })??;
        }
        // Both brokers flush this store before a successful ack returns, and that flush covers
        // the Delivered event too; a flush of its own here cost every ack one or two more
        // rounds of the group commit.
        let broker_flushes = self.inner.broker.ack_flushes(&self.inner.store);
        let outcome = match &self.inner.cluster {
            None if self.leases_die_with_the_process() => {
                // The lease may have died with an earlier process (SIGKILL, crash) while the
                // recipient kept the package: the Delivered event above is the ack, and the
                // copy RabbitMQ offers again is dropped by `inbox` (amqp_faults.rs). The broker
                // writes nothing then, so the event is made durable here.
                if !broker_flushes {
                    // Durable before RabbitMQ forgets the message.
                    self.inner.store.flush().await?;
                }
                match self.inner.broker.ack(unit, id).await {
                    Ok(outcome) => outcome,
                    Err(broker::BrokerError::UnknownDelivery { .. }) => {
                        self.inner.store.flush().await?;
                        if already {
                            AckOutcome::AlreadyAcked
                        } else {
                            AckOutcome::Acked
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            None => self.inner.broker.ack(unit, id).await?,
            Some(cluster) => {
                // Durable here, then in the shared log (every node, and the lease holder, learn
                // it), then on RabbitMQ if the lease is ours. Without the lease: 204 all the same
                // (see cluster.rs). Appended again on a repeated ack: folding is idempotent.
                self.inner.store.flush().await?;
                cluster.append(&shared, b"").await?;
                match self.inner.broker.ack(unit, id).await {
                    Ok(outcome) => outcome,
                    Err(broker::BrokerError::UnknownDelivery { .. }) if already => {
                        AckOutcome::AlreadyAcked
                    }
                    Err(broker::BrokerError::UnknownDelivery { .. }) => AckOutcome::Acked,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if !broker_flushes {
            self.inner.store.flush().await?;
        }
        if outcome == AckOutcome::Acked {
            self.inner
                .counters
                .delivered
                .fetch_add(1, Ordering::Relaxed);
            self.note_delivered();
        }
        Ok(())
    }

    /// Tracking of package `id`: the sender sees every recipient; a recipient sees its own row.
    pub fn tracking(&self, unit: &str, id: &str) -> Result<Tracking, RelayError> {
        // With other relay nodes: the same answer at every node (what any node recorded before
        // this call is folded here first).
        self.sync_blocking()?;
        let tracking = &self.inner.tracking;
        let not_found = || RelayError::not_found("gói tin", "package", id);
        let header = tracking.header(id)?.ok_or_else(not_found)?;
        if header.from == unit {
            return Ok(tracking.tracking(&header, None)?);
        }
        if tracking.row(id, unit)?.is_some() {
            return Ok(tracking.tracking(&header, Some(unit))?);
        }
        Err(not_found())
    }

    /// A page of the packages `unit` sent or received.
    pub fn packages(
        &self,
        unit: &str,
        query: &PackageQuery,
    ) -> Result<Vec<PackageSummary>, RelayError> {
        Ok(self.inner.tracking.list(unit, query)?)
    }

    /// A page of the packages `unit` sent or received, narrowed further by `options` (the
    /// portal's list: date range end, recipient, and a bound on how much one page reads).
    pub fn packages_page(
        &self,
        unit: &str,
        query: &PackageQuery,
        options: &PageOptions,
    ) -> Result<Page, RelayError> {
        Ok(self.inner.tracking.page(unit, query, options)?)
    }

    /// The sealed package `id` as archived, for whoever may see it (no unit check: the caller,
    /// the portal, has already checked with [`Relay::tracking`] that its user may).
    pub fn archived_body(&self, id: &str) -> Result<Vec<u8>, RelayError> {
        let header = self
            .inner
            .tracking
            .header(id)?
            .ok_or_else(|| RelayError::not_found("gói tin", "package", id))?;
        self.archived(&header)
    }

    /// Tracking of any package (operators and the `truc track` command; no unit check).
    pub fn tracking_any(&self, id: &str) -> Result<Tracking, RelayError> {
        let tracking = &self.inner.tracking;
        let header = tracking
            .header(id)?
            .ok_or_else(|| RelayError::not_found("gói tin", "package", id))?;
        Ok(tracking.tracking(&header, None)?)
    }
}

/// Deliveries fetched for one inbox call and not yet handed to the caller. Dropped before
/// [`Offer::hand_over`] (the call failed after its fetch, or was dropped), it gives each back to
/// the mailbox at once rather than leaving it leased to nobody until the lease runs out (5 min by
/// default).
struct Offer {
    broker: broker::AnyBroker,
    unit: String,
    deliveries: Vec<broker::Delivery>,
}

impl Offer {
    fn hand_over(mut self) -> Vec<broker::Delivery> {
        std::mem::take(&mut self.deliveries)
    }
}

impl Drop for Offer {
    fn drop(&mut self) {
        if self.deliveries.is_empty() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (broker, unit) = (self.broker.clone(), std::mem::take(&mut self.unit));
        let ids: Vec<String> = self.deliveries.drain(..).map(|d| d.message.id).collect();
        rt.spawn(async move {
            for id in ids {
                if let Err(e) = broker.release(&unit, &id).await {
                    tracing::debug!(unit, id, error = %e, "giving back an unanswered delivery failed; its lease runs out instead");
                }
            }
        });
    }
}
