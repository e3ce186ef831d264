//! The operator's view of the bus: [`Relay::overview`] and [`Relay::redrive`]. This is the
//! contract the operator page (`bus/portal`), `GET /portal/ops/queues` and `truc ops queues` are
//! built on; it works the same over both broker backends because it reads only the
//! [`Broker`] trait (`stats`, `dead_letters`, `redrive`).
//!
//! # Contract
//!
//! `relay.overview(top).await` returns an [`Overview`] (serde `Serialize`; the JSON below is
//! exactly its serialization, field names are stable):
//!
//! ```json
//! { "generated_at": "2026-11-24T01:02:03.000Z", "backend": "embedded", "live": true,
//!   "broker_up": true, "broker_error": null,
//!   "stats_at": "2026-11-24T01:02:03.000Z", "stats_age_s": 0, "stats_fresh": true,
//!   "stats_error": null,
//!   "mailboxes": [ { "unit": "000.00.00.H41", "name": "UBND tỉnh Hà Nam", "ready": 3,
//!                    "in_flight": 1, "dead_lettered": 0, "oldest_ready_age_s": 5400 } ],
//!   "mailboxes_shown": 1, "mailboxes_total": 1,
//!   "totals": { "mailboxes": 1, "ready": 3, "in_flight": 1, "dead_lettered": 0,
//!               "oldest_ready_age_s": 5400 },
//!   "dead_letters": [ { "unit": "000.00.00.H41", "id": "…", "from": "000.00.00.G22",
//!                       "document_id": "…", "subject": "…", "reason": "…",
//!                       "at": "2026-11-24T00:59:00.000Z", "delivery_count": 3 } ],
//!   "dead_letters_total": 1,
//!   "rates": { "minutes": [ { "at": "2026-11-24T00:03:00.000Z", "accepted": 0,
//!                             "delivered": 0, "rejected": 0 } /* 60 entries */ ],
//!              "accepted": 0, "delivered": 0, "rejected": 0 },
//!   "signature_failures": { "total": 0, "last_hour": 0 } }
//! ```
//!
//! - `backend`: `"embedded"` or `"amqp"`.
//! - `broker_up`: whether the broker answered a ping (`Broker::ping`, one round trip) within
//!   [`PING_TIMEOUT`]. When it did not, the overview is still `Ok`: `broker_up` is false and
//!   `broker_error` holds `{code, vi, en}` (a stable code such as `broker.amqp` or
//!   `broker.timeout` and a Vietnamese/English message that says what to check). A page shows
//!   this as a red banner, never as an error page. `overview` itself fails only if the relay
//!   cannot read its own directory.
//! - `stats_at`, `stats_age_s`, `stats_fresh`, `stats_error`: the mailbox figures (`mailboxes`,
//!   `totals`, `dead_letters`) come from a *reading* of the broker taken in a task of its own
//!   (see `readings.rs`): counting tens of thousands of RabbitMQ queues takes seconds, and that
//!   must neither hold a page nor make a slow count look like a broker outage. An overview
//!   starts a reading (or joins the next one) and waits for it at most [`STATS_WAIT`]; in time,
//!   `stats_fresh` is true. Otherwise it shows the last good reading, with `stats_at` (when it
//!   was read) and `stats_age_s`, and `stats_error` says why: `broker.stats_pending` (the first
//!   reading still runs: no figures yet, the lists are empty), `broker.stats_slow` (a new one
//!   still runs), or the failure of the latest attempt (e.g. `broker.amqp` while the broker is
//!   down, `broker.stats_timeout` after [`READING_TIMEOUT`]). With the broker down the last
//!   figures stay on show, with their time, so the operator sees the backlog as it was.
//! - `mailboxes`: every mailbox holding anything (ready, leased or dead-lettered), **worst first**:
//!   by oldest undelivered (ready) message age descending, then by depth (`ready + in_flight`)
//!   descending, then dead-lettered count descending, then unit code; cut to the first `top`
//!   rows (`top == 0`: all). `name` is the unit's name in the directory (`null` when the code is
//!   not in it); `oldest_ready_age_s` is `null` when nothing is ready. `mailboxes_total` is the
//!   count before the cut, `mailboxes_shown` after. `totals` cover every mailbox, not only the
//!   shown ones (`oldest_ready_age_s` is the largest of all).
//! - `dead_letters`: the dead-lettered messages of every mailbox, newest first, at most
//!   [`DEAD_LETTER_ROWS`]; `dead_letters_total` is how many there are in all. `reason` is what
//!   the relay or RabbitMQ said when it set the message aside; `at` is when.
//! - `rates`: the last 60 minutes, one entry per minute oldest first (the current, partial minute
//!   last), counting what this relay process did: packages `accepted` (first submissions,
//!   document and status packages), `delivered` (inbox items acknowledged by their recipient) and
//!   `rejected` (refused for the sender's or a recipient's fault); plus the sums over the hour.
//!   Kept in a ring of 60 per-minute buckets (bounded memory), in memory only: a restart starts
//!   from zero.
//! - `signature_failures`: submissions refused over a signature or certificate since the relay
//!   started (`total`) and in the last 60 minutes (`last_hour`).
//! - `live`: true from a running relay; false from [`overview_offline`] (the data dir read while
//!   the relay is stopped), where rates and signature failures are unknown and left at zero.
//!
//! `relay.redrive(mailbox).await` moves every dead letter of `mailbox` (a unit code) back to
//! its mailbox and returns how many; the recipient then fetches them again. A mailbox that is not a
//! usable unit code is `400 invalid_mailbox`; a broker that is down is `503 broker_unavailable`.
//! Both are ordinary [`RelayError`]s (code, vi, en). Callers must restrict both calls to operators.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use broker::{AnyBroker, Broker, BrokerError, DeadLetter, MailboxStats};
use directory::Directory;
use serde::Serialize;

use crate::readings::{READING_TIMEOUT, Reading, Want};
use crate::{Accepted, Fault, Relay, RelayError, rfc3339};

/// Longest wait for `Broker::ping` before the broker is reported down.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest an overview waits for a new mailbox reading before it shows the last one.
pub const STATS_WAIT: Duration = Duration::from_secs(2);
/// Most dead-letter rows an overview carries (the newest ones).
pub const DEAD_LETTER_ROWS: usize = 200;
/// Minutes kept by the rate ring.
pub const RATE_MINUTES: usize = 60;

/// The whole bus at a glance, for operators. See the module documentation for the contract.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Overview {
    /// When it was taken (RFC 3339, UTC).
    pub generated_at: String,
    /// `embedded` or `amqp`.
    pub backend: String,
    /// True from a running relay; false when read offline (rates unknown).
    pub live: bool,
    pub broker_up: bool,
    pub broker_error: Option<OpsMessage>,
    /// When the mailbox figures below were read (RFC 3339); `None` before the first reading.
    #[serde(default)]
    pub stats_at: Option<String>,
    /// Their age in seconds at `generated_at`.
    #[serde(default)]
    pub stats_age_s: Option<u64>,
    /// True when they were read after this overview was asked for.
    #[serde(default)]
    pub stats_fresh: bool,
    /// Why they are not fresh: a reading still running or one that failed (`{code, vi, en}`).
    #[serde(default)]
    pub stats_error: Option<OpsMessage>,
    pub mailboxes: Vec<MailboxRow>,
    pub mailboxes_shown: usize,
    pub mailboxes_total: usize,
    pub totals: Totals,
    pub dead_letters: Vec<DeadLetterRow>,
    pub dead_letters_total: u64,
    pub rates: Rates,
    pub signature_failures: SignatureFailures,
}

/// Broker connectivity and the mailbox figures at hand: see [`Relay::check_broker`].
#[derive(Debug, Clone)]
pub struct BrokerCheck {
    /// Why the broker did not answer a ping within [`PING_TIMEOUT`]; `None` when it did.
    pub down: Option<OpsMessage>,
    /// The last good reading (`None` before the first one finished).
    pub reading: Option<Arc<Reading>>,
    /// Its age at the check (relay clock).
    pub age: Option<Duration>,
    /// The reading is as new as asked.
    pub fresh: bool,
    /// The latest reading attempt failed (so `reading` is older).
    pub failed: Option<OpsMessage>,
    /// A reading is still running.
    pub running: bool,
}

impl BrokerCheck {
    /// The broker answered a ping within [`PING_TIMEOUT`].
    pub fn up(&self) -> bool {
        self.down.is_none()
    }
}

/// A problem to show an operator: stable code, Vietnamese and English text.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct OpsMessage {
    pub code: String,
    pub vi: String,
    pub en: String,
}

/// One mailbox (one recipient unit).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct MailboxRow {
    pub unit: String,
    /// The unit's name in the directory, if it is there.
    pub name: Option<String>,
    pub ready: u64,
    pub in_flight: u64,
    pub dead_lettered: u64,
    /// Seconds the oldest ready message has waited; `None` when nothing is ready.
    pub oldest_ready_age_s: Option<u64>,
}

/// Sums over every mailbox.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Totals {
    pub mailboxes: u64,
    pub ready: u64,
    pub in_flight: u64,
    pub dead_lettered: u64,
    pub oldest_ready_age_s: Option<u64>,
}

/// One dead-lettered message.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct DeadLetterRow {
    /// The mailbox (recipient unit) it was set aside from.
    pub unit: String,
    /// Delivery id (the package id for a document).
    pub id: String,
    pub from: String,
    pub document_id: String,
    pub subject: String,
    pub reason: String,
    /// When it was set aside (RFC 3339, UTC).
    pub at: String,
    pub delivery_count: u32,
}

/// Per-minute activity of the last [`RATE_MINUTES`] minutes, oldest first, and its sums.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Rates {
    pub minutes: Vec<MinuteRate>,
    pub accepted: u64,
    pub delivered: u64,
    pub rejected: u64,
}

/// What happened in one minute.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct MinuteRate {
    /// Start of the minute (RFC 3339, UTC).
    pub at: String,
    pub accepted: u64,
    pub delivered: u64,
    pub rejected: u64,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SignatureFailures {
    /// Since the relay started.
    pub total: u64,
    /// In the last 60 minutes.
    pub last_hour: u64,
}

/// What the ring counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Activity {
    Accepted,
    Delivered,
    Rejected,
    SignatureFailure,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Unix minute this bucket holds; a bucket whose minute is not the asked one is empty.
    minute: u64,
    accepted: u64,
    delivered: u64,
    rejected: u64,
    signature_failures: u64,
}

/// A ring of per-minute buckets, indexed by unix minute modulo [`RATE_MINUTES`], and the count
/// of refused submissions per error code since start. Created with the relay, lives as long as
/// it; bounded: the ring never grows and error codes are a fixed set of `&'static str`.
#[derive(Debug)]
pub(crate) struct RateRing {
    buckets: Mutex<[Bucket; RATE_MINUTES]>,
    refused: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Default for RateRing {
    fn default() -> RateRing {
        RateRing {
            buckets: Mutex::new([Bucket::default(); RATE_MINUTES]),
            refused: Mutex::new(BTreeMap::new()),
        }
    }
}

/// Refused submissions since start for one error code (for `/metrics`: bounded labels).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusals {
    /// The stable error code (`signature_invalid`, `unknown_recipient`, `store_unavailable`, …).
    pub code: &'static str,
    /// `sender`, `recipient` (counted as rejected) or `relay`, `broker` (failed: retry later).
    pub fault: &'static str,
    pub count: u64,
}

fn unix_minute(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

impl RateRing {
    pub(crate) fn note(&self, now: SystemTime, what: Activity) {
        let minute = unix_minute(now);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let b = &mut buckets[(minute % RATE_MINUTES as u64) as usize];
        if b.minute != minute {
            *b = Bucket {
                minute,
                ..Bucket::default()
            };
        }
        match what {
            Activity::Accepted => b.accepted += 1,
            Activity::Delivered => b.delivered += 1,
            Activity::Rejected => b.rejected += 1,
            Activity::SignatureFailure => b.signature_failures += 1,
        }
    }

    /// The last [`RATE_MINUTES`] minutes up to `now`, and signature failures in them.
    fn snapshot(&self, now: SystemTime) -> (Rates, u64) {
        let current = unix_minute(now);
        let buckets = *self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rates = Rates::default();
        let mut signature_failures = 0;
        for minute in (current + 1).saturating_sub(RATE_MINUTES as u64)..=current {
            let b = buckets[(minute % RATE_MINUTES as u64) as usize];
            let b = if b.minute == minute {
                b
            } else {
                Bucket::default()
            };
            rates.accepted += b.accepted;
            rates.delivered += b.delivered;
            rates.rejected += b.rejected;
            signature_failures += b.signature_failures;
            rates.minutes.push(MinuteRate {
                at: rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(minute * 60)),
                accepted: b.accepted,
                delivered: b.delivered,
                rejected: b.rejected,
            });
        }
        (rates, signature_failures)
    }
}

/// Whether a refused submission counts as a signature failure (same rule as the counter).
pub(crate) fn is_signature_failure(e: &RelayError) -> bool {
    e.code.starts_with("signature") || e.code.starts_with("certificate")
}

impl Relay {
    /// Feeds the rate ring with the outcome of one submission.
    pub(crate) fn note_submit(&self, result: &Result<Accepted, RelayError>) {
        let now = self.now();
        let ring = &self.inner.rates;
        match result {
            Ok(a) if a.duplicate => {}
            Ok(_) => ring.note(now, Activity::Accepted),
            Err(e) => {
                let fault = match e.fault {
                    Fault::Sender => "sender",
                    Fault::Recipient => "recipient",
                    Fault::Relay => "relay",
                    Fault::Broker => "broker",
                };
                *ring
                    .refused
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry((e.code, fault))
                    .or_default() += 1;
                if is_signature_failure(e) {
                    ring.note(now, Activity::SignatureFailure);
                }
                if matches!(e.fault, Fault::Sender | Fault::Recipient) {
                    ring.note(now, Activity::Rejected);
                }
            }
        }
    }

    /// Refused submissions since start, per error code and whose fault, sorted by code.
    pub fn refusals(&self) -> Vec<Refusals> {
        self.inner
            .rates
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(&(code, fault), &count)| Refusals { code, fault, count })
            .collect()
    }

    /// Feeds the rate ring with one acknowledged delivery.
    pub(crate) fn note_delivered(&self) {
        self.inner.rates.note(self.now(), Activity::Delivered);
    }

    /// The operator's overview: mailboxes worst first (at most `top`, 0 = all), dead letters,
    /// rates and broker connectivity. See the [module documentation](self) for the contract.
    pub async fn overview(&self, top: usize) -> Result<Overview, RelayError> {
        let check = self.check_broker(Want::AfterNow, STATS_WAIT).await;
        let now = self.now();
        let mut overview = assemble(self.broker(), self.directory(), now, top, &check)?;
        let (rates, last_hour) = self.inner.rates.snapshot(now);
        overview.live = true;
        overview.rates = rates;
        overview.signature_failures = SignatureFailures {
            total: self.counters().signature_failures,
            last_hour,
        };
        Ok(overview)
    }

    /// Broker connectivity (a ping bounded by [`PING_TIMEOUT`]) and the mailbox figures: a
    /// reading as new as `want` if one comes within `wait`, else the last good one. What the
    /// overview and `/metrics` are built on; neither ever waits for a whole walk of a big broker.
    pub async fn check_broker(&self, want: Want, wait: Duration) -> BrokerCheck {
        let broker = self.broker().clone();
        let clock = self.clone();
        let (ping, view) = tokio::join!(
            tokio::time::timeout(PING_TIMEOUT, self.broker().ping()),
            self.inner.readings.view(
                want,
                wait,
                || clock.now(),
                || {
                    let broker = broker.clone();
                    async move { read_broker(&broker).await }
                },
            ),
        );
        let down = match ping {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(problem(&e)),
            Err(_) => Some(ping_timeout()),
        };
        let age = view
            .reading
            .as_ref()
            .map(|r| self.now().duration_since(r.taken_at).unwrap_or_default());
        BrokerCheck {
            down,
            age,
            reading: view.reading,
            fresh: view.fresh,
            failed: view.failed,
            running: view.running,
        }
    }

    /// Moves every dead letter of `mailbox` back to ready; returns how many. For operators only.
    pub async fn redrive(&self, mailbox: &str) -> Result<u64, RelayError> {
        match self.broker().redrive(mailbox).await {
            Ok(n) => {
                tracing::info!(unit = mailbox, count = n, "dead letters re-driven");
                Ok(n)
            }
            Err(e @ BrokerError::InvalidMailbox { .. }) => Err(RelayError::sender(
                "invalid_mailbox",
                400,
                e.message_vi(),
                e.message_en(),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// The overview read from a broker and directory alone, without a running relay (what
/// `truc ops queues` does on a stopped relay's data dir): `live` is false, rates and signature
/// failures are zero, and the caller waits for the whole reading (up to [`READING_TIMEOUT`]).
/// [`Relay::overview`] is the same assembly plus the live figures.
pub async fn overview_offline(
    broker: &AnyBroker,
    directory: &Directory,
    now: SystemTime,
    top: usize,
) -> Result<Overview, RelayError> {
    let began = std::time::Instant::now();
    let read = match tokio::time::timeout(READING_TIMEOUT, read_broker(broker)).await {
        Ok(r) => r,
        Err(_) => Err(ping_timeout()),
    };
    let check = match read {
        Ok((stats, dead)) => BrokerCheck {
            down: None,
            age: Some(Duration::ZERO),
            reading: Some(Arc::new(Reading {
                taken_at: now,
                took: began.elapsed(),
                stats,
                dead,
            })),
            fresh: true,
            failed: None,
            running: false,
        },
        Err(problem) => BrokerCheck {
            down: Some(problem.clone()),
            reading: None,
            age: None,
            fresh: false,
            failed: Some(problem),
            running: false,
        },
    };
    assemble(broker, directory, now, top, &check)
}

/// The overview's broker part from a check; rates and signature failures left empty.
fn assemble(
    broker: &AnyBroker,
    directory: &Directory,
    now: SystemTime,
    top: usize,
    check: &BrokerCheck,
) -> Result<Overview, RelayError> {
    let backend = match broker {
        AnyBroker::Embedded(_) => "embedded",
        AnyBroker::Amqp(_) => "amqp",
    };
    let (rates, _) = RateRing::default().snapshot(now);
    let mut overview = Overview {
        generated_at: rfc3339(now),
        backend: backend.to_owned(),
        live: false,
        broker_up: check.up(),
        broker_error: check.down.clone(),
        stats_at: None,
        stats_age_s: None,
        stats_fresh: false,
        stats_error: None,
        mailboxes: Vec::new(),
        mailboxes_shown: 0,
        mailboxes_total: 0,
        totals: Totals::default(),
        dead_letters: Vec::new(),
        dead_letters_total: 0,
        rates,
        signature_failures: SignatureFailures::default(),
    };
    overview.stats_error = match (&check.failed, &check.reading) {
        (Some(p), _) => Some(p.clone()),
        (None, None) if check.running => Some(reading_pending()),
        (None, Some(_)) if !check.fresh && check.running => Some(reading_slow()),
        _ => None,
    };
    let Some(reading) = &check.reading else {
        return Ok(overview);
    };
    overview.stats_at = Some(rfc3339(reading.taken_at));
    overview.stats_age_s = Some(
        now.duration_since(reading.taken_at)
            .unwrap_or_default()
            .as_secs(),
    );
    overview.stats_fresh = check.fresh;
    let stats = &reading.stats;
    overview.totals = Totals {
        mailboxes: stats.len() as u64,
        ready: stats.iter().map(|s| s.ready).sum(),
        in_flight: stats.iter().map(|s| s.in_flight).sum(),
        dead_lettered: stats.iter().map(|s| s.dead_lettered).sum(),
        oldest_ready_age_s: stats
            .iter()
            .filter_map(|s| s.oldest_ready_age.map(|a| a.as_secs()))
            .max(),
    };
    let mut rows: Vec<MailboxRow> = stats
        .iter()
        .map(|s| MailboxRow {
            unit: s.mailbox.clone(),
            name: None,
            ready: s.ready,
            in_flight: s.in_flight,
            dead_lettered: s.dead_lettered,
            oldest_ready_age_s: s.oldest_ready_age.map(|a| a.as_secs()),
        })
        .collect();
    sort_worst_first(&mut rows);
    overview.mailboxes_total = rows.len();
    if top > 0 {
        rows.truncate(top);
    }
    // Names only for the rows shown (a directory read each).
    for row in &mut rows {
        row.name = directory.resolve(&row.unit)?.map(|u| u.name);
    }
    overview.mailboxes_shown = rows.len();
    overview.mailboxes = rows;
    overview.dead_letters_total = reading.dead.len() as u64;
    let mut dead: Vec<&DeadLetter> = reading.dead.iter().collect();
    dead.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.mailbox.cmp(&b.mailbox)));
    dead.truncate(DEAD_LETTER_ROWS);
    overview.dead_letters = dead
        .into_iter()
        .map(|d| DeadLetterRow {
            unit: d.mailbox.clone(),
            id: d.message.id.clone(),
            from: d.message.from.clone(),
            document_id: d.message.document_id.clone(),
            subject: d.message.subject.clone(),
            reason: d.reason.clone(),
            at: rfc3339(d.at),
            delivery_count: d.delivery_count,
        })
        .collect();
    Ok(overview)
}

/// Worst first: oldest ready age, then depth, then dead letters, then code.
fn sort_worst_first(rows: &mut [MailboxRow]) {
    rows.sort_by(|a, b| {
        b.oldest_ready_age_s
            .unwrap_or(0)
            .cmp(&a.oldest_ready_age_s.unwrap_or(0))
            .then_with(|| (b.ready + b.in_flight).cmp(&(a.ready + a.in_flight)))
            .then_with(|| b.dead_lettered.cmp(&a.dead_lettered))
            .then_with(|| a.unit.cmp(&b.unit))
    });
}

/// Stats and every dead letter, or why the broker could not be read (unbounded: callers bound
/// it).
async fn read_broker(
    broker: &AnyBroker,
) -> Result<(Vec<MailboxStats>, Vec<DeadLetter>), OpsMessage> {
    let read = async {
        let stats = broker.stats().await?;
        let mut dead = Vec::new();
        for s in stats.iter().filter(|s| s.dead_lettered > 0) {
            dead.extend(broker.dead_letters(&s.mailbox).await?);
        }
        Ok::<_, BrokerError>((stats, dead))
    };
    read.await.map_err(|e| problem(&e))
}

fn problem(e: &BrokerError) -> OpsMessage {
    OpsMessage {
        code: e.code().to_owned(),
        vi: e.message_vi(),
        en: e.message_en(),
    }
}

fn ping_timeout() -> OpsMessage {
    OpsMessage {
        code: "broker.timeout".to_owned(),
        vi: format!(
            "Hàng đợi không trả lời trong {} giây. Cần làm: kiểm tra máy chủ hàng đợi (RabbitMQ: rabbitmqctl status; nhúng: đĩa của thư mục dữ liệu) rồi tải lại trang.",
            PING_TIMEOUT.as_secs()
        ),
        en: format!(
            "The broker did not answer within {} seconds. What to do: check the broker (RabbitMQ: rabbitmqctl status; embedded: the data dir's disk), then reload.",
            PING_TIMEOUT.as_secs()
        ),
    }
}

fn reading_pending() -> OpsMessage {
    OpsMessage {
        code: "broker.stats_pending".to_owned(),
        vi: "Đang đọc số liệu hộp thư lần đầu (với hàng chục nghìn hộp thư có thể mất vài giây). Hàng đợi vẫn kết nối. Cần làm: tải lại trang sau ít giây.".to_owned(),
        en: "The mailbox figures are being read for the first time (a few seconds with tens of thousands of mailboxes). The broker is connected. What to do: reload in a few seconds.".to_owned(),
    }
}

fn reading_slow() -> OpsMessage {
    OpsMessage {
        code: "broker.stats_slow".to_owned(),
        vi: "Số liệu mới đang được đọc (chậm khi có hàng chục nghìn hộp thư); bảng dưới là lần đọc trước, xem thời điểm đọc. Cần làm: tải lại trang sau ít giây.".to_owned(),
        en: "Newer figures are being read (slow with tens of thousands of mailboxes); the table below is the previous reading, see when it was taken. What to do: reload in a few seconds.".to_owned(),
    }
}
