//! `/metrics`: Prometheus text from prometheus-client. Labels are bounded: the HTTP histogram is
//! labelled by method, route *template* (from [`crate::ROUTES`], or `unmatched`) and status class,
//! never by an id or a unit code. Relay counters are read at scrape time; mailbox totals come
//! from `Broker::stats`, which walks every mailbox, so they are cached for [`STATS_TTL`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use broker::Broker;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ROUTES;

/// How long mailbox totals are reused before `Broker::stats` is asked again.
pub const STATS_TTL: Duration = Duration::from_secs(5);
/// Bound on one `Broker::stats` call from a scrape.
const STATS_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: &'static str,
    status: &'static str,
}

/// Mailbox totals as of the last successful `Broker::stats`.
#[derive(Debug, Clone, Default)]
struct MailboxTotals {
    mailboxes: u64,
    ready: u64,
    in_flight: u64,
    dead_lettered: u64,
    oldest_ready_age: Duration,
    /// Whether the last `stats` call answered.
    up: bool,
}

/// Owned by the router state for the life of the server; dropped with it.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    http: Family<HttpLabels, Histogram, fn() -> Histogram>,
    totals: Arc<Mutex<MailboxTotals>>,
    /// When totals were last refreshed; the async lock makes concurrent scrapes share one walk.
    refreshed: tokio::sync::Mutex<Option<Instant>>,
}

fn request_histogram() -> Histogram {
    // 1 ms … 65 s (long-polls wait up to 60 s).
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
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
        let totals = Arc::new(Mutex::new(MailboxTotals::default()));
        registry.register_collector(Box::new(RelayCollector {
            relay,
            totals: totals.clone(),
        }));
        Metrics {
            registry,
            http,
            totals,
            refreshed: tokio::sync::Mutex::new(None),
        }
    }

    fn observe(
        &self,
        method: &'static str,
        route: &'static str,
        status: StatusCode,
        took: Duration,
    ) {
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

    /// Asks the broker for mailbox totals unless the cached ones are fresh.
    async fn refresh(&self, relay: &relay::Relay) {
        let mut refreshed = self.refreshed.lock().await;
        if refreshed.is_some_and(|t| t.elapsed() < STATS_TTL) {
            return;
        }
        let stats = tokio::time::timeout(STATS_TIMEOUT, relay.broker().stats()).await;
        let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        match stats {
            Ok(Ok(stats)) => {
                *totals = MailboxTotals {
                    mailboxes: stats.len() as u64,
                    ready: stats.iter().map(|s| s.ready).sum(),
                    in_flight: stats.iter().map(|s| s.in_flight).sum(),
                    dead_lettered: stats.iter().map(|s| s.dead_lettered).sum(),
                    oldest_ready_age: stats
                        .iter()
                        .filter_map(|s| s.oldest_ready_age)
                        .max()
                        .unwrap_or_default(),
                    up: true,
                };
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "broker stats failed");
                totals.up = false;
            }
            Err(_) => {
                tracing::warn!("broker stats timed out");
                totals.up = false;
            }
        }
        *refreshed = Some(Instant::now());
    }

    /// The text exposition (OpenMetrics text, which Prometheus reads).
    pub(crate) async fn render(&self, relay: &relay::Relay) -> Result<String, std::fmt::Error> {
        self.refresh(relay).await;
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
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
        counter(
            e,
            "truc_packages_rejected",
            "Submissions refused for the sender's or a recipient's fault",
            c.rejected,
        )?;
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
        gauge(
            e,
            "truc_broker_stats_up",
            "1 when the last mailbox statistics call answered",
            i64::from(t.up),
        )?;
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
    metrics.observe(method, route, res.status(), start.elapsed());
    res
}
