//! What a unit asks of the relay about its own mailbox and its own packages: long-poll the inbox,
//! read a package, acknowledge it, track what it sent or received. A unit only ever sees its own
//! mailbox and the packages it sent or was sent; anything else is "not found".

use std::sync::atomic::Ordering;
use std::time::Duration;

use broker::{AckOutcome, Broker};

use crate::tracking::{Event, PackageQuery, PackageSummary, Page, PageOptions, Tracking, ms};
use crate::{InboxItem, Relay, RelayError, rfc3339};

impl Relay {
    /// Up to `limit` waiting packages of `unit`'s mailbox, waiting up to `wait` for the first.
    /// Each returned item is leased to the caller until it acks it or the lease runs out.
    pub async fn inbox(
        &self,
        unit: &str,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<InboxItem>, RelayError> {
        let deliveries = self
            .inner
            .broker
            .fetch(
                unit,
                limit.clamp(1, 1000),
                wait.min(Duration::from_secs(60)),
            )
            .await?;
        Ok(deliveries
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

    /// The sealed package `id`, if `unit` is one of its recipients.
    pub fn package_body(&self, unit: &str, id: &str) -> Result<Vec<u8>, RelayError> {
        let tracking = &self.inner.tracking;
        let visible = tracking.row(id, unit)?.is_some();
        let header = tracking.header(id)?.filter(|_| visible);
        let Some(header) = header else {
            return Err(RelayError::not_found(
                "gói tin trong hộp thư",
                "package in your inbox",
                id,
            ));
        };
        match self.inner.store.archive().get(&header.digest)? {
            Some(bytes) => Ok(bytes),
            None => Err(RelayError::new(
                "archive_missing",
                crate::Fault::Relay,
                500,
                format!(
                    "Kho lưu trữ của trục không còn nội dung gói tin {id}. Hãy báo quản trị trục."
                ),
                format!(
                    "The relay's archive has lost the body of package {id}. Tell the relay operator."
                ),
            )),
        }
    }

    /// `unit` has the package `id` safely; it leaves the mailbox and tracking says delivered.
    /// Idempotent.
    pub async fn ack(&self, unit: &str, id: &str) -> Result<(), RelayError> {
        if self.inner.tracking.row(id, unit)?.is_none() {
            return Err(RelayError::not_found(
                "gói tin trong hộp thư",
                "package in your inbox",
                id,
            ));
        }
        // The event first: if the relay dies between the two, the package is offered again and
        // the second ack finds the row already delivered, so tracking never misses a delivery.
        let event = Event::Delivered {
            id: id.to_owned(),
            unit: unit.to_owned(),
            at_ms: ms(self.now()),
        };
        let this = self.clone();
        let already = self
            .inner
            .tracking
            .row(id, unit)?
            .is_some_and(|r| r.delivered);
        if !already {
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
        let outcome = self.inner.broker.ack(unit, id).await?;
        self.inner.store.flush().await?;
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
        match self.inner.store.archive().get(&header.digest)? {
            Some(bytes) => Ok(bytes),
            None => Err(RelayError::new(
                "archive_missing",
                crate::Fault::Relay,
                500,
                format!(
                    "Kho lưu trữ của trục không còn nội dung gói tin {id}. Hãy báo quản trị trục."
                ),
                format!(
                    "The relay's archive has lost the body of package {id}. Tell the relay operator."
                ),
            )),
        }
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
