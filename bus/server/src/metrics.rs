//! `/metrics`: Prometheus text from prometheus-client. Labels are bounded: the HTTP histogram is
//! labelled by method, route *template* (from [`crate::ROUTES`], or `unmatched`) and status class;
//! the submit histogram by outcome (`accepted`, `duplicate`, `rejected`, `failed`); refusals by
//! their stable error code and whose fault; backlog gauges by a fixed set of age thresholds. Never
//! by an id or a unit code. Relay counters are read at scrape time. Mailbox totals come from the
//! relay's mailbox readings (`Relay::check_broker`): one younger than [`STATS_TTL`] is reused, a
//! scrape waits at most [`SCRAPE_WAIT`] for a new one and otherwise exports the last one, with
//! its age in `truc_mailbox_stats_age_seconds`; `truc_broker_up` is a ping, so a broker that
//! counts its queues slowly is not reported down.
//!
//! Two text formats from one registry: OpenMetrics when the scraper asks for it (`Accept:
//! application/openmetrics-text`, as Prometheus does) and the classic Prometheus text format
//! 0.0.4 otherwise (curl, `promtool check metrics`); [`classic`] turns the first into the second.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ROUTES;

/// How long a mailbox reading is reused before a scrape asks for a new one.
pub const STATS_TTL: Duration = Duration::from_secs(5);
/// Longest a scrape waits for a new mailbox reading (Prometheus' scrape timeout is 10 s).
pub const SCRAPE_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubmitLabels {
    outcome: &'static str,
}

/// Age thresholds of the backlog gauge `truc_mailboxes_waiting{older_than}`.
pub const BACKLOG_THRESHOLDS: [(&str, Duration); 4] = [
    ("5m", Duration::from_secs(300)),
    ("1h", Duration::from_secs(3600)),
    ("4h", Duration::from_secs(4 * 3600)),
    ("1d", Duration::from_secs(86_400)),
];

/// Mailbox totals as of the last successful `Broker::stats`.
#[derive(Debug, Clone, Default)]
struct MailboxTotals {
    mailboxes: u64,
    ready: u64,
    in_flight: u64,
    dead_lettered: u64,
    oldest_ready_age: Duration,
    /// Mailboxes whose oldest ready message is older than each of [`BACKLOG_THRESHOLDS`].
    waiting: [u64; BACKLOG_THRESHOLDS.len()],
    /// Age of these figures; `None` before the first reading.
    age: Option<Duration>,
    /// Whether the broker answered a ping at the last scrape.
    up: bool,
}

/// Owned by the router state for the life of the server; dropped with it.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    http: Family<HttpLabels, Histogram, fn() -> Histogram>,
    submit: Family<SubmitLabels, Histogram, fn() -> Histogram>,
    totals: Arc<Mutex<MailboxTotals>>,
}

fn request_histogram() -> Histogram {
    // 1 ms … 65 s (long-polls wait up to 60 s).
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

fn submit_histogram() -> Histogram {
    // 5 ms … 41 s: a submission is parse + verify + seal + one group-commit flush.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Metrics {
    pub(crate) fn new(relay: relay::Relay) -> Metrics {
        let mut registry = Registry::default();
        let http: Family<HttpLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(request_histogram);
        registry.register(
            "truc_http_request_duration_seconds",
            "Time to answer an API request, by route template and status class",
            http.clone(),
        );
        let submit: Family<SubmitLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(submit_histogram);
        registry.register(
            "truc_submit_duration_seconds",
            "Time to answer POST /v1/packages, by outcome (accepted, duplicate, rejected, failed)",
            submit.clone(),
        );
        let totals = Arc::new(Mutex::new(MailboxTotals::default()));
        registry.register_collector(Box::new(RelayCollector {
            relay,
            totals: totals.clone(),
        }));
        Metrics {
            registry,
            http,
            submit,
            totals,
        }
    }

    fn observe(
        &self,
        method: &'static str,
        route: &'static str,
        status: StatusCode,
        duplicate: bool,
        took: Duration,
    ) {
        if method == "POST" && route == "/v1/packages" {
            let outcome = match status.as_u16() {
                200..=299 if duplicate => "duplicate",
                200..=299 => "accepted",
                400..=499 => "rejected",
                _ => "failed",
            };
            self.submit
                .get_or_create(&SubmitLabels { outcome })
                .observe(took.as_secs_f64());
        }
        let status = match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http
            .get_or_create(&HttpLabels {
                method,
                route,
                status,
            })
            .observe(took.as_secs_f64());
    }

    /// Takes connectivity and the mailbox totals from the relay's readings (see the module doc).
    async fn refresh(&self, relay: &relay::Relay) {
        let check = relay
            .check_broker(relay::Want::Within(STATS_TTL), SCRAPE_WAIT)
            .await;
        if let Some(down) = &check.down {
            tracing::warn!(code = %down.code, "broker not answering: {}", down.en);
        }
        let totals = match &check.reading {
            Some(r) => {
                let stats = &r.stats;
                MailboxTotals {
                    mailboxes: stats.len() as u64,
                    ready: stats.iter().map(|s| s.ready).sum(),
                    in_flight: stats.iter().map(|s| s.in_flight).sum(),
                    dead_lettered: stats.iter().map(|s| s.dead_lettered).sum(),
                    oldest_ready_age: stats
                        .iter()
                        .filter_map(|s| s.oldest_ready_age)
                        .max()
                        .unwrap_or_default(),
                    waiting: BACKLOG_THRESHOLDS.map(|(_, limit)| {
                        stats
                            .iter()
                            .filter(|s| s.oldest_ready_age.is_some_and(|a| a > limit))
                            .count() as u64
                    }),
                    age: check.age,
                    up: check.up(),
                }
            }
            None => MailboxTotals {
                up: check.up(),
                ..MailboxTotals::default()
            },
        };
        *self.totals.lock().unwrap_or_else(PoisonError::into_inner) = totals;
    }

    /// The text exposition: OpenMetrics when `openmetrics`, else the classic text format.
    pub(crate) async fn render(
        &self,
        relay: &relay::Relay,
        openmetrics: bool,
    ) -> Result<String, std::fmt::Error> {
        self.refresh(relay).await;
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(if openmetrics { out } else { classic(&out) })
    }
}

/// Reads relay counters and cached mailbox totals on each scrape.
#[derive(Debug)]
struct RelayCollector {
    relay: relay::Relay,
    totals: Arc<Mutex<MailboxTotals>>,
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let m = ConstCounter::new(v);
    m.encode(enc.encode_descriptor(name, help, None, m.metric_type())?)
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> std::fmt::Result {
    let m = ConstGauge::new(v);
    m.encode(enc.encode_descriptor(name, help, None, m.metric_type())?)
}

impl Collector for RelayCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let c = self.relay.counters();
        let e = &mut enc;
        counter(
            e,
            "truc_packages_accepted",
            "Packages accepted (first submissions)",
            c.accepted,
        )?;
        counter(
            e,
            "truc_packages_duplicate",
            "Resubmissions answered with the stored answer",
            c.duplicates,
        )?;
        let refusals = self.relay.refusals();
        for (name, help, faults) in [
            (
                "truc_packages_rejected",
                "Submissions refused for the sender's or a recipient's fault, by error code",
                ["sender", "recipient"],
            ),
            (
                "truc_packages_failed",
                "Submissions that failed for the relay's or the broker's fault (to be retried), by error code",
                ["relay", "broker"],
            ),
        ] {
            let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            for r in refusals.iter().filter(|r| faults.contains(&r.fault)) {
                let labels = [("code", r.code), ("fault", r.fault)];
                ConstCounter::new(r.count).encode(family.encode_family(&labels)?)?;
            }
        }
        counter(
            e,
            "truc_signature_failures",
            "Submissions refused over a signature or certificate",
            c.signature_failures,
        )?;
        counter(
            e,
            "truc_deliveries",
            "Inbox items acknowledged by their recipient",
            c.delivered,
        )?;
        counter(e, "truc_statuses", "Status packages accepted", c.statuses)?;
        let t = self
            .totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        gauge(
            e,
            "truc_mailboxes",
            "Mailboxes holding anything",
            i(t.mailboxes),
        )?;
        gauge(
            e,
            "truc_mailbox_ready_messages",
            "Messages waiting to be fetched, all mailboxes",
            i(t.ready),
        )?;
        gauge(
            e,
            "truc_mailbox_in_flight_messages",
            "Messages fetched and not yet acknowledged, all mailboxes",
            i(t.in_flight),
        )?;
        gauge(
            e,
            "truc_mailbox_dead_lettered_messages",
            "Messages set aside, all mailboxes",
            i(t.dead_lettered),
        )?;
        let age = ConstGauge::new(t.oldest_ready_age.as_secs_f64());
        age.encode(e.encode_descriptor(
            "truc_mailbox_oldest_ready_age_seconds",
            "Age of the oldest message waiting in any mailbox",
            None,
            age.metric_type(),
        )?)?;
        let mut family = e.encode_descriptor(
            "truc_mailboxes_waiting",
            "Mailboxes whose oldest ready message has waited longer than older_than",
            None,
            MetricType::Gauge,
        )?;
        for ((label, _), n) in BACKLOG_THRESHOLDS.iter().zip(t.waiting) {
            ConstGauge::new(i(n)).encode(family.encode_family(&[("older_than", *label)])?)?;
        }
        gauge(
            e,
            "truc_broker_up",
            "1 when the broker answered a ping at this scrape",
            i64::from(t.up),
        )?;
        if let Some(age) = t.age {
            let age = ConstGauge::new(age.as_secs_f64());
            age.encode(e.encode_descriptor(
                "truc_mailbox_stats_age_seconds",
                "Age of the mailbox figures above (they are read in the background)",
                None,
                age.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// Middleware: times every request under its route template.
pub(crate) async fn observe(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| ROUTES.iter().find(|(_, r)| *r == p.as_str()))
        .map_or("unmatched", |(_, r)| *r);
    let method = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        _ => "other",
    };
    let start = Instant::now();
    let res = next.run(req).await;
    let duplicate = res.headers().contains_key("truc-duplicate");
    metrics.observe(method, route, res.status(), duplicate, start.elapsed());
    res
}

/// Whether the scraper asked for OpenMetrics (Prometheus does); otherwise the classic format.
pub(crate) fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// OpenMetrics text (as prometheus-client writes it) to the classic Prometheus text format
/// 0.0.4: a counter family `x` is named `x_total` in its `# HELP`/`# TYPE` lines (its samples
/// already are), `_created` samples, `# UNIT` and `# EOF` are dropped. Gauges and histograms are
/// the same in both.
pub fn classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        if let Some((prefix, rest)) = meta {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if counters.contains(name) && !name.ends_with("_total") {
                out.push_str(&format!("{prefix}{name}_total {tail}\n"));
                continue;
            }
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            if name
                .strip_suffix("_created")
                .is_some_and(|base| counters.contains(base))
            {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}
