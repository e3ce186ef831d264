//! Tracking: the event log and the views folded from it.
//!
//! Every accepted package and every delivery is an [`Event`] in the store's append-only log. The
//! views (a header per package, a row per (package, recipient), "sent" and "received" indexes,
//! the document-id index used for deduplication and status routing) are a fold over that log:
//! [`Views::apply`] is idempotent (each row remembers the last event it folded), so
//! [`Views::catch_up`] after a crash and [`Views::rebuild`] from scratch give the same views.
//!
//! Tree layout (keys are bytes; `\0` separates parts; times are big-endian milliseconds):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `trk_pkg` | id | [`Header`] (JSON) |
//! | `trk_rcp` | id `\0` unit | [`RecipientTrack`] (JSON) |
//! | `trk_sent` | from `\0` !at `\0` id | — (newest first) |
//! | `trk_recv` | unit `\0` !at `\0` id | — (newest first) |
//! | `trk_doc` | from `\0` document key | id (dedup: a resubmission finds its first answer) |
//! | `trk_got` | unit `\0` sender `\0` DocumentId | id (which document a status may be about) |
//! | `trk_meta` | `applied` | last folded event seq |

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker::MessageKind;
use serde::{Deserialize, Serialize};
use store::{Digest, EventLog, KvTree, Seq, Store, StoreError};

use crate::{Accepted, RelayError, rfc3339};

/// One fact in the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
// Events are built one at a time and serialised at once; boxing would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// A package passed every check, was sealed, archived and queued for `recipients`.
    Accepted {
        id: String,
        at_ms: u64,
        kind: MessageKind,
        from: String,
        /// Dedup key part: the DocumentId for a document, `status:` + DocumentId + code for a
        /// status.
        doc_key: String,
        document_id: String,
        #[serde(default)]
        code: Option<String>,
        subject: String,
        /// The sealed package in the archive.
        digest: Digest,
        size: u64,
        /// Digest of the bytes as submitted (what a resubmission is compared with).
        submitted: Digest,
        recipients: Vec<String>,
        /// For a status package: the relay id of the document package it is about.
        #[serde(default)]
        about: Option<String>,
        #[serde(default)]
        status_code: Option<String>,
        #[serde(default)]
        description: Option<String>,
    },
    /// `unit` fetched and acknowledged package `id`.
    Delivered {
        id: String,
        unit: String,
        at_ms: u64,
    },
}

/// Per-package header (the view's `trk_pkg` row).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub id: String,
    pub kind: MessageKind,
    pub from: String,
    pub document_id: String,
    pub code: Option<String>,
    pub subject: String,
    pub digest: Digest,
    pub size: u64,
    pub submitted: Digest,
    pub at_ms: u64,
    pub recipients: Vec<String>,
    pub about: Option<String>,
    pub status_code: Option<String>,
    pub description: Option<String>,
}

impl Header {
    /// The header an `Accepted` event folds into (`None` for other events).
    pub(crate) fn of(event: &Event) -> Option<Header> {
        let Event::Accepted {
            id,
            at_ms,
            kind,
            from,
            doc_key: _,
            document_id,
            code,
            subject,
            digest,
            size,
            submitted,
            recipients,
            about,
            status_code,
            description,
        } = event
        else {
            return None;
        };
        Some(Header {
            id: id.clone(),
            kind: *kind,
            from: from.clone(),
            document_id: document_id.clone(),
            code: code.clone(),
            subject: subject.clone(),
            digest: *digest,
            size: *size,
            submitted: *submitted,
            at_ms: *at_ms,
            recipients: recipients.clone(),
            about: about.clone(),
            status_code: status_code.clone(),
            description: description.clone(),
        })
    }
}

/// One step of a recipient's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackEvent {
    /// RFC 3339 UTC.
    pub at: String,
    /// `queued`, `delivered`, or the state a status code stands for (see [`state_of_status`]).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
}

/// Where one recipient stands with one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientTrack {
    pub unit: String,
    pub state: String,
    pub events: Vec<TrackEvent>,
    /// Fetched and acknowledged (whatever statuses came since).
    pub delivered: bool,
}

/// A row as stored: the last event folded into it (for idempotent replay) and the row.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredRow {
    seq: Seq,
    row: RecipientTrack,
}

/// `GET /v1/packages/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tracking {
    pub id: String,
    pub kind: MessageKind,
    pub document_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub from: String,
    pub subject: String,
    pub accepted_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    pub recipients: Vec<RecipientTrack>,
}

/// Which of a unit's packages to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[default]
    Sent,
    Received,
}

/// `GET /v1/packages?role=&state=&q=&since=`.
#[derive(Debug, Clone, Default)]
pub struct PackageQuery {
    pub role: Role,
    /// `queued` (not yet delivered to some recipient), `delivered`, `not_registered` (no 03 or
    /// later yet), `rejected` (02), or any state name.
    pub state: Option<String>,
    /// Case-insensitive text in the subject, DocumentId, number/notation or unit codes.
    pub q: Option<String>,
    pub since: Option<SystemTime>,
    /// At most this many (newest first).
    pub limit: usize,
    /// Continue after this package id (from the previous page's last item).
    pub after: Option<String>,
}

/// One row of a package list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageSummary {
    pub id: String,
    pub kind: MessageKind,
    pub document_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub from: String,
    pub subject: String,
    pub accepted_at: String,
    pub recipients: u64,
    pub delivered: u64,
    pub registered: u64,
    /// For `role=received`: the caller's own state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// What the portal's list narrows by besides a [`PackageQuery`], and how much it may look at.
#[derive(Debug, Clone, Default)]
pub struct PageOptions {
    /// Only packages accepted strictly before this time (the end of a date range).
    pub until: Option<SystemTime>,
    /// Only packages sent to a unit whose code contains this text.
    pub recipient: Option<String>,
    /// Look at no more than this many packages for one page (a search or filter that matches
    /// rarely stops there and says where to go on, so no page costs more than this many reads).
    pub budget: Option<usize>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    pub items: Vec<PackageSummary>,
    /// Continue with `after = next`: the last package looked at (returned or not). `None` when
    /// the list is exhausted.
    pub next: Option<String>,
    /// How many packages were looked at.
    pub examined: usize,
}

/// The state a status code puts a recipient in.
pub fn state_of_status(code: &str) -> String {
    match code {
        "01" => "arrived".into(),
        "02" => "rejected".into(),
        "03" => "registered".into(),
        "04" => "assigned".into(),
        "05" => "processing".into(),
        "06" => "completed".into(),
        "13" => "withdrawal_requested".into(),
        "15" => "withdrawn".into(),
        "16" => "withdrawal_refused".into(),
        other => format!("status_{other}"),
    }
}

/// Status codes that mean "registered or further along".
fn is_registered_or_later(code: &str) -> bool {
    matches!(code, "03" | "04" | "05" | "06")
}

pub(crate) fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn at(ms: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_millis(ms))
}

fn key2(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + b.len() + 1);
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}

fn key3(a: &str, b: &str, c: &str) -> Vec<u8> {
    let mut k = key2(a, b);
    k.push(0);
    k.extend_from_slice(c.as_bytes());
    k
}

fn time_key(unit: &str, at_ms: u64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(unit.len() + id.len() + 10);
    k.extend_from_slice(unit.as_bytes());
    k.push(0);
    k.extend_from_slice(&(u64::MAX - at_ms).to_be_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Record {
        what: "tracking view".into(),
        detail: e.to_string(),
    })
}

fn parse<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Record {
        what: what.into(),
        detail: e.to_string(),
    })
}

/// The tracking views and the log they fold. Owned by the relay for its whole life.
#[derive(Debug)]
pub(crate) struct Views {
    log: EventLog<Event>,
    pkg: KvTree,
    rcp: KvTree,
    sent: KvTree,
    recv: KvTree,
    doc: KvTree,
    got: KvTree,
    meta: KvTree,
    /// Serialises append + fold so rows see events in log order.
    fold: Mutex<()>,
}

const APPLIED: &[u8] = b"applied";

/// Whether the package of an `Accepted` event may have been folded before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A replay, or a package another relay node may have shared first.
    Maybe,
    /// A package id made just now by this relay alone.
    Never,
}

/// The live path writes the `applied` mark once per this many events, not after each: folding is
/// idempotent, so a mark that lags only makes the next open fold those few events again, and
/// the write it saved was two of the ~19 store writes a package costs.
const APPLIED_EVERY: Seq = 64;

impl Views {
    pub(crate) fn open(store: &Store) -> Result<Views, StoreError> {
        Ok(Views {
            log: store.events(),
            pkg: store.tree("trk_pkg")?,
            rcp: store.tree("trk_rcp")?,
            sent: store.tree("trk_sent")?,
            recv: store.tree("trk_recv")?,
            doc: store.tree("trk_doc")?,
            got: store.tree("trk_got")?,
            meta: store.tree("trk_meta")?,
            fold: Mutex::new(()),
        })
    }

    fn applied(&self) -> Result<Seq, StoreError> {
        Ok(match self.meta.get(APPLIED)? {
            Some(v) if v.len() == 8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&v);
                u64::from_be_bytes(b)
            }
            _ => 0,
        })
    }

    /// Folds the log records the views have not seen yet (after a crash between append and fold,
    /// or those past a lagging `applied` mark).
    pub(crate) fn catch_up(&self) -> Result<u64, RelayError> {
        let _guard = self.fold.lock().unwrap_or_else(PoisonError::into_inner);
        self.fold_log(self.applied()? + 1)
    }

    /// Drops every view and folds the whole log again.
    pub(crate) fn rebuild(&self) -> Result<u64, RelayError> {
        let _guard = self.fold.lock().unwrap_or_else(PoisonError::into_inner);
        for t in [
            &self.pkg, &self.rcp, &self.sent, &self.recv, &self.doc, &self.got, &self.meta,
        ] {
            t.clear()?;
        }
        self.fold_log(1)
    }

    /// Folds the log from `from` on and sets the `applied` mark to its last record; returns how
    /// many were folded. The caller holds `fold`.
    fn fold_log(&self, from: Seq) -> Result<u64, RelayError> {
        let mut n = 0;
        let mut last = None;
        for record in self.log.scan(from) {
            let (seq, event) = record?;
            self.apply(seq, &event, Seen::Maybe)?;
            last = Some(seq);
            n += 1;
        }
        if let Some(seq) = last {
            self.meta.insert(APPLIED, seq.to_be_bytes())?;
        }
        Ok(n)
    }

    /// Appends `event` to the log and folds it into the views (durable at the next flush).
    pub(crate) fn record(&self, event: &Event) -> Result<Seq, RelayError> {
        self.record_as(event, Seen::Maybe)
    }

    /// Like [`Views::record`], for the acceptance of a package whose id was made just now and
    /// never given out (a relay alone: a new UUID): the fold skips looking for the rows a second
    /// fold of the same package would find, two store reads of the ~20 a package costs.
    pub(crate) fn record_new(&self, event: &Event) -> Result<Seq, RelayError> {
        self.record_as(event, Seen::Never)
    }

    fn record_as(&self, event: &Event, seen: Seen) -> Result<Seq, RelayError> {
        let _guard = self.fold.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = self.log.append(event)?;
        self.apply(seq, event, seen)?;
        if seq % APPLIED_EVERY == 0 {
            self.meta.insert(APPLIED, seq.to_be_bytes())?;
        }
        Ok(seq)
    }

    /// Folds one event. Idempotent: a row that already folded `seq` is left alone (unless `seen`
    /// says the package cannot have been folded before). The caller moves the `applied` mark.
    fn apply(&self, seq: Seq, event: &Event, seen: Seen) -> Result<(), StoreError> {
        let maybe_seen = seen == Seen::Maybe;
        match event {
            Event::Accepted {
                id,
                at_ms,
                kind,
                from,
                doc_key,
                document_id,
                recipients,
                about,
                status_code,
                description,
                ..
            } => {
                // A package folded before (the same package accepted at two relay nodes, or an
                // event read twice from the shared log) is left alone. The header is written
                // last, so a fold cut short by a crash is completed by the replay.
                if maybe_seen && self.pkg.contains_key(id.as_bytes())? {
                    return Ok(());
                }
                self.doc.insert(key2(from, doc_key), id.as_bytes())?;
                self.sent.insert(time_key(from, *at_ms, id), b"")?;
                let queued = TrackEvent {
                    at: at(*at_ms),
                    state: "queued".into(),
                    status_code: None,
                    description: None,
                };
                // One write at a time (see `store::KvTree` on batches), each recipient's row
                // last: a replay after a crash skips the rows already there and rewrites their
                // index entries, which are the same again.
                for unit in recipients {
                    self.recv.insert(time_key(unit, *at_ms, id), b"")?;
                    if *kind == MessageKind::Package {
                        self.got
                            .insert(key3(unit, from, document_id), id.as_bytes())?;
                    }
                    let key = key2(id, unit);
                    if maybe_seen && self.rcp.contains_key(&key)? {
                        continue;
                    }
                    let row = StoredRow {
                        seq,
                        row: RecipientTrack {
                            unit: unit.clone(),
                            state: "queued".into(),
                            events: vec![queued.clone()],
                            delivered: false,
                        },
                    };
                    self.rcp.insert(key, json(&row)?)?;
                }
                // A status package also moves the rows of the package it is about.
                if let (Some(about), Some(code)) = (about, status_code) {
                    let step = TrackEvent {
                        at: at(*at_ms),
                        state: state_of_status(code),
                        status_code: Some(code.clone()),
                        description: description.clone(),
                    };
                    // 13 comes from the sender and concerns every recipient; any other code comes
                    // from one recipient about its own row.
                    let units: Vec<String> = if code == "13" {
                        match self.pkg.get(about.as_bytes())? {
                            Some(v) => parse::<Header>("package header", &v)?.recipients,
                            None => Vec::new(),
                        }
                    } else {
                        vec![from.clone()]
                    };
                    for unit in units {
                        self.update_row(about, &unit, seq, |row| {
                            row.state = step.state.clone();
                            row.events.push(step.clone());
                        })?;
                    }
                }
                if let Some(header) = Header::of(event) {
                    self.pkg.insert(id.as_bytes(), json(&header)?)?;
                }
            }
            Event::Delivered { id, unit, at_ms } => {
                let at_ms = *at_ms;
                self.update_row(id, unit, seq, |row| {
                    if row.delivered {
                        return;
                    }
                    row.delivered = true;
                    // A status may have come in before the ack was recorded; it stays the state.
                    if row.state == "queued" {
                        row.state = "delivered".into();
                    }
                    row.events.push(TrackEvent {
                        at: at(at_ms),
                        state: "delivered".into(),
                        status_code: None,
                        description: None,
                    });
                })?;
            }
        }
        Ok(())
    }

    fn update_row(
        &self,
        id: &str,
        unit: &str,
        seq: Seq,
        change: impl FnOnce(&mut RecipientTrack),
    ) -> Result<(), StoreError> {
        let key = key2(id, unit);
        let Some(bytes) = self.rcp.get(&key)? else {
            return Ok(());
        };
        let mut stored: StoredRow = parse("recipient row", &bytes)?;
        if stored.seq >= seq {
            return Ok(());
        }
        change(&mut stored.row);
        stored.seq = seq;
        self.rcp.insert(key, json(&stored)?)?;
        Ok(())
    }

    pub(crate) fn header(&self, id: &str) -> Result<Option<Header>, StoreError> {
        match self.pkg.get(id.as_bytes())? {
            Some(v) => Ok(Some(parse("package header", &v)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn row(&self, id: &str, unit: &str) -> Result<Option<RecipientTrack>, StoreError> {
        match self.rcp.get(key2(id, unit))? {
            Some(v) => Ok(Some(parse::<StoredRow>("recipient row", &v)?.row)),
            None => Ok(None),
        }
    }

    pub(crate) fn rows(&self, id: &str) -> Result<Vec<RecipientTrack>, StoreError> {
        let mut prefix = id.as_bytes().to_vec();
        prefix.push(0);
        self.rcp
            .scan_prefix(&prefix)
            .map(|r| r.and_then(|(_, v)| parse::<StoredRow>("recipient row", &v).map(|s| s.row)))
            .collect()
    }

    /// The package a sender already submitted under `doc_key`, if any.
    pub(crate) fn by_doc_key(
        &self,
        from: &str,
        doc_key: &str,
    ) -> Result<Option<Header>, StoreError> {
        match self.doc.get(key2(from, doc_key))? {
            Some(id) => self.header(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// The document package `unit` received from `sender` under `document_id`, if any.
    pub(crate) fn received(
        &self,
        unit: &str,
        sender: &str,
        document_id: &str,
    ) -> Result<Option<Header>, StoreError> {
        match self.got.get(key3(unit, sender, document_id))? {
            Some(id) => self.header(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// The stored first answer for an accepted package (what a resubmission gets back).
    pub(crate) fn answer(&self, header: &Header) -> Accepted {
        Accepted {
            id: header.id.clone(),
            document_id: header.document_id.clone(),
            recipients: header
                .recipients
                .iter()
                .map(|u| crate::RecipientState {
                    unit: u.clone(),
                    state: "queued".into(),
                })
                .collect(),
            duplicate: true,
        }
    }

    pub(crate) fn tracking(
        &self,
        header: &Header,
        only: Option<&str>,
    ) -> Result<Tracking, StoreError> {
        let recipients = match only {
            Some(unit) => self.row(&header.id, unit)?.into_iter().collect(),
            None => self.rows(&header.id)?,
        };
        Ok(Tracking {
            id: header.id.clone(),
            kind: header.kind,
            document_id: header.document_id.clone(),
            code: header.code.clone(),
            from: header.from.clone(),
            subject: header.subject.clone(),
            accepted_at: at(header.at_ms),
            status_code: header.status_code.clone(),
            about: header.about.clone(),
            recipients,
        })
    }

    /// A page of `unit`'s packages, newest first.
    pub(crate) fn list(
        &self,
        unit: &str,
        query: &PackageQuery,
    ) -> Result<Vec<PackageSummary>, StoreError> {
        Ok(self.page(unit, query, &PageOptions::default())?.items)
    }

    /// A page of `unit`'s packages, newest first, narrowed further by `options` and looking at
    /// no more than `options.budget` packages (see [`Page::next`]).
    pub(crate) fn page(
        &self,
        unit: &str,
        query: &PackageQuery,
        options: &PageOptions,
    ) -> Result<Page, StoreError> {
        let index = match query.role {
            Role::Sent => &self.sent,
            Role::Received => &self.recv,
        };
        let mut prefix = unit.as_bytes().to_vec();
        prefix.push(0);
        let start = match query
            .after
            .as_deref()
            .map(|id| self.header(id))
            .transpose()?
            .flatten()
        {
            Some(h) => {
                let mut k = time_key(unit, h.at_ms, &h.id);
                k.push(0); // strictly after the last item seen
                k
            }
            None => match options.until.map(ms) {
                // Strictly older than `until`: past every key of that millisecond.
                Some(until) => {
                    let mut k = prefix.clone();
                    k.extend_from_slice(&(u64::MAX - until).to_be_bytes());
                    k.push(0xff);
                    k
                }
                None => prefix.clone(),
            },
        };
        let since = query.since.map(ms);
        let recipient = options.recipient.as_deref().filter(|r| !r.is_empty());
        let budget = options.budget.unwrap_or(usize::MAX).max(1);
        let mut examined = 0usize;
        let mut last: Option<String> = None;
        let mut exhausted = true;
        let needle = query
            .q
            .as_deref()
            .map(str::to_lowercase)
            .filter(|q| !q.is_empty());
        let limit = query.limit.clamp(1, 1000);
        let mut out = Vec::new();
        for entry in index.scan_from(&start) {
            let (key, _) = entry?;
            if !key.starts_with(&prefix) {
                break;
            }
            if examined >= budget {
                exhausted = false;
                break;
            }
            examined += 1;
            let id = String::from_utf8_lossy(&key[prefix.len() + 9..]).into_owned();
            last = Some(id.clone());
            let Some(h) = self.header(&id)? else { continue };
            if since.is_some_and(|s| h.at_ms < s) {
                break;
            }
            if let Some(r) = recipient
                && !h.recipients.iter().any(|u| u.contains(r))
            {
                continue;
            }
            if let Some(q) = &needle {
                let hay = format!(
                    "{} {} {} {} {}",
                    h.subject,
                    h.document_id,
                    h.code.as_deref().unwrap_or(""),
                    h.from,
                    h.recipients.join(" ")
                )
                .to_lowercase();
                if !hay.contains(q.as_str()) {
                    continue;
                }
            }
            let rows = match query.role {
                Role::Sent => self.rows(&id)?,
                Role::Received => self.row(&id, unit)?.into_iter().collect(),
            };
            if let Some(state) = &query.state
                && !rows.iter().any(|r| row_matches(r, state))
            {
                continue;
            }
            let delivered = rows.iter().filter(|r| r.delivered).count() as u64;
            let registered = rows
                .iter()
                .filter(|r| {
                    r.events
                        .iter()
                        .any(|e| e.status_code.as_deref().is_some_and(is_registered_or_later))
                })
                .count() as u64;
            out.push(PackageSummary {
                id: h.id.clone(),
                kind: h.kind,
                document_id: h.document_id.clone(),
                code: h.code.clone(),
                from: h.from.clone(),
                subject: h.subject.clone(),
                accepted_at: at(h.at_ms),
                recipients: h.recipients.len() as u64,
                delivered,
                registered,
                state: match query.role {
                    Role::Received => rows.first().map(|r| r.state.clone()),
                    Role::Sent => None,
                },
            });
            if out.len() >= limit {
                exhausted = false;
                break;
            }
        }
        Ok(Page {
            next: if exhausted { None } else { last },
            examined,
            items: out,
        })
    }
}

fn row_matches(row: &RecipientTrack, state: &str) -> bool {
    match state {
        "queued" | "not_delivered" => !row.delivered,
        "delivered" => row.delivered,
        "not_registered" => !row
            .events
            .iter()
            .any(|e| e.status_code.as_deref().is_some_and(is_registered_or_later)),
        "rejected" => row
            .events
            .iter()
            .any(|e| e.status_code.as_deref() == Some("02")),
        other => row.state == other,
    }
}

impl crate::Relay {
    /// Appends `events` to the log and folds them, as the pipeline would one by one, without
    /// parsing, signing or queueing anything: for benchmarks that need a large tracking history
    /// quickly (`cargo bench -p portal --bench pages` loads a million packages this way). Not for
    /// production use: nothing checks that the events make sense.
    #[doc(hidden)]
    pub fn bulk_record(&self, events: &[Event]) -> Result<(), RelayError> {
        for event in events {
            self.inner.tracking.record(event)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod replay {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn accepted(id: &str, recipients: &[&str]) -> Event {
        Event::Accepted {
            id: id.into(),
            at_ms: 1_700_000_000_000,
            kind: MessageKind::Package,
            from: "000.00.00.G22".into(),
            doc_key: format!("doc-{id}"),
            document_id: format!("doc-{id}"),
            code: None,
            subject: "Công văn".into(),
            digest: Digest::of(id.as_bytes()),
            size: 10,
            submitted: Digest::of(id.as_bytes()),
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            about: None,
            status_code: None,
            description: None,
        }
    }

    fn received_ids(views: &Views, unit: &str) -> Vec<String> {
        let query = PackageQuery {
            role: Role::Received,
            limit: 10,
            ..PackageQuery::default()
        };
        views
            .list(unit, &query)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect()
    }

    /// Views over a store of their own (kept open as long as the directory guard lives).
    fn fresh_views() -> (tempfile::TempDir, Views) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        (tmp, Views::open(&store).unwrap())
    }

    /// A package recorded as new (the look-ups for an earlier fold skipped) ends in the same
    /// views as one recorded the careful way, and a replay of its events over them (a lagging
    /// mark after a restart) changes nothing.
    #[test]
    fn a_package_recorded_as_new_folds_like_any_other_and_replays_cleanly() {
        let (a, b) = ("000.00.00.H41", "000.00.00.H42");
        let delivered = Event::Delivered {
            id: "p1".into(),
            unit: a.into(),
            at_ms: 1_700_000_000_500,
        };
        let (_t1, careful) = fresh_views();
        careful.record(&accepted("p1", &[a, b])).unwrap();
        careful.record(&delivered).unwrap();
        let (_t2, quick) = fresh_views();
        quick.record_new(&accepted("p1", &[a, b])).unwrap();
        quick.record(&delivered).unwrap();
        let state = |v: &Views| {
            (
                v.rows("p1").unwrap(),
                v.header("p1").unwrap().map(|h| json(&h).unwrap()),
                received_ids(v, a),
                received_ids(v, b),
                v.by_doc_key("000.00.00.G22", "doc-p1")
                    .unwrap()
                    .map(|h| h.id),
            )
        };
        let before = state(&quick);
        assert_eq!(before, state(&careful));
        assert!(before.0.iter().any(|r| r.unit == a && r.delivered));
        assert_eq!(quick.applied().unwrap(), 0, "the mark has not moved yet");
        assert_eq!(quick.catch_up().unwrap(), 2);
        assert_eq!(state(&quick), before);
    }

    /// The fold writes one key at a time, so a crash can leave any part of it behind the logged
    /// event. Whatever part it is (here: every recipient's row, but neither index entry nor the
    /// header), `catch_up` completes the fold: both recipients list the package as received and
    /// find it by sender and DocumentId, and their rows are not reset.
    #[test]
    fn a_fold_cut_short_is_completed_by_the_replay_whatever_part_was_written() {
        let (_tmp, views) = fresh_views();
        let (a, b) = ("000.00.00.H41", "000.00.00.H42");
        let event = accepted("p1", &[a, b]);
        views.record(&event).unwrap();
        assert_eq!(received_ids(&views, a), ["p1"]);
        // Back to the state a crash could leave: the event logged, rows written, nothing else.
        views
            .record(&Event::Delivered {
                id: "p1".into(),
                unit: a.into(),
                at_ms: 1_700_000_000_500,
            })
            .unwrap();
        let row_a = views.row("p1", a).unwrap().unwrap();
        for unit in [a, b] {
            views
                .recv
                .remove(time_key(unit, 1_700_000_000_000, "p1"))
                .unwrap();
            views
                .got
                .remove(key3(unit, "000.00.00.G22", "doc-p1"))
                .unwrap();
        }
        views.pkg.remove(b"p1").unwrap();
        views.meta.insert(APPLIED, 0u64.to_be_bytes()).unwrap();
        assert!(received_ids(&views, a).is_empty());

        assert_eq!(views.catch_up().unwrap(), 2);
        for unit in [a, b] {
            assert_eq!(received_ids(&views, unit), ["p1"], "{unit} lists it again");
            let got = views.received(unit, "000.00.00.G22", "doc-p1").unwrap();
            assert_eq!(got.map(|h| h.id).as_deref(), Some("p1"));
        }
        assert_eq!(
            views.row("p1", a).unwrap().unwrap(),
            row_a,
            "delivered row kept"
        );
        assert!(views.header("p1").unwrap().is_some());
    }

    /// The live path moves the `applied` mark only every [`APPLIED_EVERY`] events, so after a
    /// crash (or a plain restart) the next open folds events whose effects are all there
    /// already. That changes nothing: no row gets a second "delivered" step, no list a second
    /// entry, and the mark then stands at the last event.
    #[test]
    fn folding_again_what_a_lagging_mark_left_behind_changes_nothing() {
        let (_tmp, views) = fresh_views();
        let (a, b) = ("000.00.00.H41", "000.00.00.H42");
        let mut last = 0;
        for i in 0..5 {
            let id = format!("p{i}");
            views.record(&accepted(&id, &[a, b])).unwrap();
            last = views
                .record(&Event::Delivered {
                    id: id.clone(),
                    unit: a.into(),
                    at_ms: 1_700_000_000_500,
                })
                .unwrap();
        }
        assert!(last < APPLIED_EVERY, "the mark has not moved yet");
        assert_eq!(views.applied().unwrap(), 0);
        let rows: Vec<_> = (0..5)
            .flat_map(|i| [a, b].map(|u| views.row(&format!("p{i}"), u).unwrap().unwrap()))
            .collect();
        let listed = (received_ids(&views, a), received_ids(&views, b));
        assert_eq!(listed.0.len(), 5);

        assert_eq!(views.catch_up().unwrap(), last);
        let again: Vec<_> = (0..5)
            .flat_map(|i| [a, b].map(|u| views.row(&format!("p{i}"), u).unwrap().unwrap()))
            .collect();
        assert_eq!(again, rows, "rows unchanged");
        assert!(rows[0].delivered && rows[0].events.len() == 2);
        assert_eq!((received_ids(&views, a), received_ids(&views, b)), listed);
        assert_eq!(views.applied().unwrap(), last);
        assert_eq!(views.catch_up().unwrap(), 0, "nothing left to fold");
    }
}
