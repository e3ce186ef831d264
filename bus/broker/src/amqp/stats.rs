//! `Broker::stats` on RabbitMQ, at the scale of every unit of the country (30,000 mailboxes).
//!
//! One `queue.declare` round trip per mailbox took 3.6 s for 3,000 mailboxes, and knew only the
//! mailboxes this process had declared since it started. So the counts come from RabbitMQ's
//! management HTTP API when it answers: one listing of every queue of the vhost
//! (`GET /api/queues/<vhost>?disable_stats=true&enable_queue_totals=true&columns=...`), of which
//! the mailbox queues under the prefix are kept, whoever declared them. Those totals are the
//! queues' own (not the 5 s sampled statistics), so a count is current. Not paged: RabbitMQ 3.10
//! computes the totals of every queue of the vhost for each page (with 30,000 queues: about 2 s
//! a page, and 60 pages), so one unpaged call (2.6 MB, about 2.8 s) is the cheapest. `in_flight`
//! is RabbitMQ's `messages_unacknowledged`: the leases of every relay node, not only this one's.
//!
//! When the API does not answer (plugin off, wrong `management_url`, no permission), the counts
//! come from one `queue.declare` per mailbox this process declared, as before, and one log line
//! says why (again only after the API has answered in between).
//!
//! Either way the dead letters per mailbox come from a scan of the dead-letter queue, and the age
//! of the oldest ready message from a peek (`basic.get` + `nack(requeue)`) at the head of each
//! non-empty mailbox only, [`PEEK_CHANNELS`] at a time. A peek reads the envelope's `queued_at`
//! (to the millisecond), which the AMQP `timestamp` property (whole seconds) and the API's
//! `head_message_timestamp` (sampled, so missing for a fresh queue) could not give as well.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use lapin::Channel;
use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::uri::{AMQPScheme, AMQPUri};
use serde::Deserialize;

use super::{AmqpBroker, AmqpConfig, Inner, Link, amqp};
use crate::{BrokerError, MailboxStats};

/// Channels the head peeks of one `stats` call are spread over (RabbitMQ runs each channel in a
/// process of its own; this bounds the peeks in flight).
pub const PEEK_CHANNELS: usize = 16;
/// Longest wait for the listing. Its cost grows with every queue of the vhost (other buses'
/// too) and with the broker's load; a slow answer is still the right one, so this only guards
/// against a hung API: the caller bounds `stats` itself (the operator view: 5 s).
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the counts of the last `stats` call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsSource {
    /// The management HTTP API: every mailbox queue under the prefix.
    Management,
    /// One `queue.declare` per mailbox this process declared (the API did not answer).
    PerQueue,
}

/// The management API client of one broker: made by [`AmqpBroker::open`], owned by its
/// `Inner`, dropped with it.
#[derive(Debug)]
pub(super) struct Management {
    /// The API's base URL (`http://host:15672/`), or why the setting cannot be used.
    base: Result<reqwest::Url, String>,
    /// The HTTP client (one connection pool), or why it could not be made.
    client: Result<reqwest::Client, String>,
    /// Credentials from the AMQP URL, used when `base` carries none.
    login: Option<(String, String)>,
    /// The virtual host of the AMQP URL (`/` by default).
    vhost: String,
    /// Why the API failed the last time it was asked (`None` while it answers): only a change
    /// is logged, so a relay without the plugin logs it once.
    down: Mutex<Option<String>>,
    /// Where the last `stats` took its counts from.
    last: Mutex<Option<StatsSource>>,
}

/// One queue of the listing, with its totals (missing when the queue process is down).
#[derive(Debug, Deserialize)]
struct QueueRow {
    name: String,
    #[serde(default)]
    messages_ready: u64,
    #[serde(default)]
    messages_unacknowledged: u64,
}

/// The counts of one mailbox before the dead-letter scan and the peek.
struct Counts {
    ready: u64,
    in_flight: u64,
}

impl Management {
    pub(super) fn new(config: &AmqpConfig) -> Management {
        let uri: Result<AMQPUri, String> = config.url.parse();
        let (login, vhost) = match &uri {
            Ok(u) => (
                Some((
                    u.authority.userinfo.username.clone(),
                    u.authority.userinfo.password.clone(),
                )),
                u.vhost.clone(),
            ),
            Err(_) => (None, "/".to_owned()),
        };
        let base = match (&config.management_url, &uri) {
            (Some(url), _) => reqwest::Url::parse(url)
                .map_err(|e| format!("management_url {url:?} is not a URL: {e}")),
            (None, Ok(u)) => {
                let (scheme, port) = match u.scheme {
                    AMQPScheme::AMQP => ("http", 15672),
                    AMQPScheme::AMQPS => ("https", 15671),
                };
                let host = &u.authority.host;
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                reqwest::Url::parse(&format!("{scheme}://{host}:{port}/"))
                    .map_err(|e| format!("no management URL derived from the AMQP URL: {e}"))
            }
            (None, Err(e)) => Err(format!("no management URL derived from the AMQP URL ({e})")),
        };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(LIST_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"));
        Management {
            base,
            client,
            login,
            vhost,
            down: Mutex::new(None),
            last: Mutex::new(None),
        }
    }

    /// Every queue whose name starts with `queue_prefix`, with its totals.
    async fn list(&self, queue_prefix: &str) -> Result<Vec<QueueRow>, String> {
        let base = self.base.as_ref().map_err(Clone::clone)?;
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let mut url = base.clone();
        url.path_segments_mut()
            .map_err(|()| format!("management URL {base} cannot take a path"))?
            .pop_if_empty()
            .extend(["api", "queues", self.vhost.as_str()]);
        url.query_pairs_mut()
            .append_pair("disable_stats", "true")
            .append_pair("enable_queue_totals", "true")
            .append_pair("columns", "name,messages_ready,messages_unacknowledged");
        let mut request = client.get(url);
        if base.username().is_empty()
            && let Some((user, pass)) = &self.login
        {
            request = request.basic_auth(user, Some(pass));
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("GET {base}api/queues: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {base}api/queues answered {status}"));
        }
        let mut rows: Vec<QueueRow> = response
            .json()
            .await
            .map_err(|e| format!("GET {base}api/queues: unexpected answer: {e}"))?;
        rows.retain(|r| r.name.starts_with(queue_prefix));
        Ok(rows)
    }

    /// Records that the API answered or why not; logs only a change.
    fn note(&self, outcome: Result<(), &str>) {
        let mut down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(()) => {
                if down.take().is_some() {
                    tracing::info!(
                        "RabbitMQ management API answers again; stats list every mailbox"
                    );
                }
                self.set_last(StatsSource::Management);
            }
            Err(why) => {
                if down.is_none() {
                    tracing::warn!(
                        error = why,
                        "RabbitMQ management API not usable; stats fall back to one queue.declare \
                         per mailbox declared by this process (slow past a few thousand mailboxes, \
                         blind to mailboxes declared elsewhere). Enable it: rabbitmq-plugins enable \
                         rabbitmq_management, or set [broker.amqp] management_url"
                    );
                }
                *down = Some(why.to_owned());
                self.set_last(StatsSource::PerQueue);
            }
        }
    }

    fn set_last(&self, source: StatsSource) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(source);
    }
}

impl AmqpBroker {
    /// Where the last [`crate::Broker::stats`] took its counts from (`None` before the first).
    pub fn stats_source(&self) -> Option<StatsSource> {
        *self
            .inner
            .management
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    pub(super) async fn stats(&self) -> Result<Vec<MailboxStats>, BrokerError> {
        let leased: Vec<String> = self.state().leases.keys().cloned().collect();
        for mb in &leased {
            self.expire(mb).await?;
        }
        let counts = self.counts().await?;
        let mut dead: HashMap<String, u64> = HashMap::new();
        self.scan_dead(|d| {
            *dead.entry(d.routing_key.as_str().to_owned()).or_default() += 1;
            false
        })
        .await?;
        let now = self.config.clock.now();
        let nonempty: Vec<String> = counts
            .iter()
            .filter(|(_, c)| c.ready > 0)
            .map(|(mb, _)| mb.clone())
            .collect();
        let oldest = self.peek_heads(&nonempty).await?;
        let mut rows: BTreeMap<String, MailboxStats> = BTreeMap::new();
        for (mb, c) in counts {
            let queued_at = oldest.get(&mb).copied();
            rows.insert(
                mb.clone(),
                MailboxStats {
                    mailbox: mb,
                    ready: c.ready,
                    in_flight: c.in_flight,
                    dead_lettered: 0,
                    oldest_ready_age: queued_at.map(|t| now.duration_since(t).unwrap_or_default()),
                },
            );
        }
        for (mb, n) in dead {
            rows.entry(mb.clone())
                .or_insert_with(|| MailboxStats {
                    mailbox: mb,
                    ready: 0,
                    in_flight: 0,
                    dead_lettered: 0,
                    oldest_ready_age: None,
                })
                .dead_lettered = n;
        }
        Ok(rows
            .into_values()
            .filter(|s| s.ready + s.in_flight + s.dead_lettered > 0)
            .collect())
    }

    /// Ready and in-flight counts per mailbox: from the management API, or per queue.
    async fn counts(&self) -> Result<BTreeMap<String, Counts>, BrokerError> {
        // Acks, nacks and publishes sent before this call have reached their queues once a
        // synchronous call on each channel has been answered; then the listing sees them.
        let link = self.link().await?;
        for ch in [&link.get, &link.publish] {
            barrier(ch, &self.names.exchange()).await?;
        }
        let queue_prefix = self.names.mailbox_queue("");
        match self.management.list(&queue_prefix).await {
            Ok(rows) => {
                self.management.note(Ok(()));
                Ok(rows
                    .into_iter()
                    .filter_map(|r| {
                        let mb = r.name.get(queue_prefix.len()..)?.to_owned();
                        Some((
                            mb,
                            Counts {
                                ready: r.messages_ready,
                                in_flight: r.messages_unacknowledged,
                            },
                        ))
                    })
                    .collect())
            }
            Err(why) => {
                self.management.note(Err(&why));
                self.counts_per_queue().await
            }
        }
    }

    /// One `queue.declare` per mailbox this process declared; in flight = the leases held here.
    async fn counts_per_queue(&self) -> Result<BTreeMap<String, Counts>, BrokerError> {
        let known: Vec<String> = self.state().known.iter().cloned().collect();
        let args = self.names.mailbox_table();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let link = self.link().await?;
            let mut out = BTreeMap::new();
            let r: Result<(), BrokerError> = async {
                for mb in &known {
                    let q = link
                        .admin
                        .queue_declare(
                            self.names.mailbox_queue(mb).into(),
                            QueueDeclareOptions::durable(),
                            args.clone(),
                        )
                        .await
                        .map_err(amqp("queue.declare"))?;
                    let in_flight = self.state().leases.get(mb).map_or(0, |l| l.len()) as u64;
                    out.insert(
                        mb.clone(),
                        Counts {
                            ready: u64::from(q.message_count()),
                            in_flight,
                        },
                    );
                }
                Ok(())
            }
            .await;
            match r {
                Ok(()) => return Ok(out),
                Err(e) => {
                    self.failed(&link, &e).await;
                    if attempt >= 2 {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// When the oldest ready message of each of `mailboxes` was queued (absent: nothing ready
    /// any more, or an unreadable head), peeking [`PEEK_CHANNELS`] mailboxes at a time.
    async fn peek_heads(
        &self,
        mailboxes: &[String],
    ) -> Result<HashMap<String, SystemTime>, BrokerError> {
        if mailboxes.is_empty() {
            return Ok(HashMap::new());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let link = self.link().await?;
            match self.peek_heads_on(&link, mailboxes).await {
                Ok(found) => return Ok(found),
                Err(e) => {
                    self.failed(&link, &e).await;
                    if attempt >= 2 {
                        return Err(e);
                    }
                }
            }
        }
    }

    async fn peek_heads_on(
        &self,
        link: &Link,
        mailboxes: &[String],
    ) -> Result<HashMap<String, SystemTime>, BrokerError> {
        let lanes = PEEK_CHANNELS.min(mailboxes.len());
        let mut channels = Vec::with_capacity(lanes);
        for _ in 0..lanes {
            channels.push(
                link.connection
                    .create_channel()
                    .await
                    .map_err(amqp("channel.open"))?,
            );
        }
        let peeks = channels.iter().enumerate().map(|(lane, ch)| async move {
            let mut found = Vec::new();
            for mb in mailboxes.iter().skip(lane).step_by(lanes) {
                if let Some(at) = self.peek_queued_at(ch, mb).await? {
                    found.push((mb.clone(), at));
                }
            }
            Ok::<_, BrokerError>(found)
        });
        let results = join_all(peeks.collect()).await;
        for ch in &channels {
            let _ = ch.close(200, "truc stats peek done".into()).await;
        }
        let mut out = HashMap::new();
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }
}

/// A synchronous call on `ch` (a passive declare of the exchange, which always exists): RabbitMQ
/// answers it after everything sent before it on the channel.
pub(super) async fn barrier(ch: &Channel, exchange: &str) -> Result<(), BrokerError> {
    ch.exchange_declare(
        exchange.into(),
        lapin::ExchangeKind::Direct,
        ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(amqp("exchange.declare"))
}

/// Runs the futures concurrently on this task and returns their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_management_url_is_derived_from_the_amqp_url_or_taken_as_set() {
        let m = Management::new(&AmqpConfig::new("amqp://u:p%40ss@mq.example:5672/%2f"));
        assert_eq!(
            m.base.as_ref().map(|u| u.as_str()),
            Ok("http://mq.example:15672/")
        );
        assert_eq!(m.login, Some(("u".to_owned(), "p@ss".to_owned())));
        assert_eq!(m.vhost, "/");
        let m = Management::new(&AmqpConfig::new("amqps://u:p@mq.example/truc"));
        assert_eq!(
            m.base.as_ref().map(|u| u.as_str()),
            Ok("https://mq.example:15671/")
        );
        assert_eq!(m.vhost, "truc");
        let m = Management::new(&AmqpConfig {
            management_url: Some("http://admin:x@10.0.0.9:8080/rabbitmq/".to_owned()),
            ..AmqpConfig::new("amqp://u:p@mq.example:5672/%2f")
        });
        assert_eq!(
            m.base.as_ref().map(|u| u.as_str()),
            Ok("http://admin:x@10.0.0.9:8080/rabbitmq/")
        );
        let m = Management::new(&AmqpConfig {
            management_url: Some("not a url".to_owned()),
            ..AmqpConfig::new("amqp://u:p@mq.example:5672/%2f")
        });
        assert!(m.base.is_err());
    }
}
