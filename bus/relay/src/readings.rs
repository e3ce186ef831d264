//! Mailbox readings for the operator view and `/metrics`, taken off the request path.
//!
//! `Broker::stats` walks every mailbox: milliseconds on the embedded broker, but seconds over
//! RabbitMQ with tens of thousands of queues (3.3–5.5 s measured at 30,000). A page or a scrape
//! must neither wait that long nor call the broker down because counting is slow. So a reading
//! (stats plus every dead letter) runs in a task of its own, bounded by [`READING_TIMEOUT`];
//! callers wait for it at most a given time and otherwise get the last good reading with the
//! time it was taken. Connectivity is judged apart, by `Broker::ping` (one round trip).
//!
//! A caller whose wait could not cover a reading anyway (the last one took longer than the
//! caller's `wait`) does not wait at all: it gets the last reading at once and a new one starts,
//! so at scale a page answers immediately with figures at most about two readings old, while on
//! a small or embedded broker every page gets figures read after it asked.
//!
//! One reading at a time: callers arriving while one runs share it (a caller that needs figures
//! newer than its own arrival waits for the next one, started as soon as the running one ends),
//! so a burst of page loads or scrapes never stacks up walks of the broker.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use broker::{DeadLetter, MailboxStats};
use tokio::sync::watch;

use crate::ops::OpsMessage;

/// Longest one reading may take before it is abandoned and reported as failed.
pub const READING_TIMEOUT: Duration = Duration::from_secs(120);

/// Mailbox figures as the broker gave them at one moment.
#[derive(Debug)]
pub struct Reading {
    /// When the reading started (relay clock): its figures are at least this old.
    pub taken_at: SystemTime,
    /// How long it took.
    pub took: Duration,
    pub stats: Vec<MailboxStats>,
    pub dead: Vec<DeadLetter>,
}

/// How new the figures must be for a caller not to wait.
#[derive(Debug, Clone, Copy)]
pub enum Want {
    /// Read after the call began (a page just loaded, or reloaded after a re-drive).
    AfterNow,
    /// Read less than this long ago (a scrape every 15 s need not walk the broker each time).
    Within(Duration),
}

/// What a caller gets: the last good reading (maybe none yet), whether it satisfied the call,
/// and why the latest attempt failed when it did.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) reading: Option<Arc<Reading>>,
    /// The reading is as new as the caller wanted.
    pub(crate) fresh: bool,
    /// The most recent finished attempt failed (the reading shown, if any, is older).
    pub(crate) failed: Option<OpsMessage>,
    /// An attempt is still running (the caller stopped waiting for it).
    pub(crate) running: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Attempts started so far; the number of the running one while `running`.
    started: u64,
    running: bool,
    /// Number of the last finished attempt.
    finished: u64,
    good: Option<Arc<Reading>>,
    /// When `good` was finished (monotonic, for [`Want::Within`]).
    good_at: Option<Instant>,
    /// How long the last finished attempt took.
    last_took: Option<Duration>,
    /// Set when the last finished attempt failed; cleared by a success.
    failed: Option<OpsMessage>,
}

/// Shared by the relay and every task it spawns for a reading; lives as long as the relay.
#[derive(Debug)]
pub(crate) struct Readings {
    state: Mutex<State>,
    /// Number of the last finished attempt, for waiters.
    done: watch::Sender<u64>,
}

impl Default for Readings {
    fn default() -> Readings {
        Readings {
            state: Mutex::new(State::default()),
            done: watch::Sender::new(0),
        }
    }
}

impl Readings {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Figures as new as `want`, waiting at most `wait` for a reading made by `read` (spawned on
    /// the current tokio runtime, so it goes on when the caller stops waiting). `now` is the
    /// relay clock's time, stamped on a reading when it starts.
    pub(crate) async fn view<R, F>(
        self: &Arc<Self>,
        want: Want,
        wait: Duration,
        now: impl Fn() -> SystemTime,
        read: R,
    ) -> View
    where
        R: Fn() -> F,
        F: Future<Output = Result<(Vec<MailboxStats>, Vec<DeadLetter>), OpsMessage>>
            + Send
            + 'static,
    {
        let mut done = self.done.subscribe();
        let mut deadline = tokio::time::Instant::now() + wait;
        let target = {
            let mut s = self.lock();
            if s.good.is_some() && s.last_took.is_some_and(|took| took > wait) {
                // Waiting could not help: answer now (a new reading still starts below).
                deadline = tokio::time::Instant::now();
            }
            if let Want::Within(ttl) = want
                && s.good_at.is_some_and(|t| t.elapsed() < ttl)
            {
                return Self::seen(&s, true);
            }
            match (want, s.running) {
                // A reading started before this call may predate what the caller just did.
                (Want::AfterNow, true) => s.started + 1,
                (Want::Within(_), true) => s.started,
                (_, false) => self.start(&mut s, now(), read()),
            }
        };
        loop {
            {
                let mut s = self.lock();
                if s.finished >= target {
                    let fresh = s.failed.is_none();
                    return Self::seen(&s, fresh);
                }
                if !s.running {
                    self.start(&mut s, now(), read());
                }
            }
            match tokio::time::timeout_at(deadline, done.changed()).await {
                Ok(Ok(())) => {}
                // Timed out (or the sender is gone, which cannot happen while `self` lives).
                _ => return Self::seen(&self.lock(), false),
            }
        }
    }

    fn seen(s: &State, fresh: bool) -> View {
        View {
            reading: s.good.clone(),
            fresh,
            failed: s.failed.clone(),
            running: s.running,
        }
    }

    /// Starts attempt `started + 1` in a task of its own; returns its number.
    fn start<F>(self: &Arc<Self>, s: &mut State, taken_at: SystemTime, read: F) -> u64
    where
        F: Future<Output = Result<(Vec<MailboxStats>, Vec<DeadLetter>), OpsMessage>>
            + Send
            + 'static,
    {
        s.started += 1;
        s.running = true;
        let number = s.started;
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let began = Instant::now();
            let outcome = tokio::time::timeout(READING_TIMEOUT, read).await;
            let took = began.elapsed();
            let mut s = this.lock();
            s.last_took = Some(took);
            match outcome {
                Ok(Ok((stats, dead))) => {
                    s.good = Some(Arc::new(Reading {
                        taken_at,
                        took,
                        stats,
                        dead,
                    }));
                    s.good_at = Some(Instant::now());
                    s.failed = None;
                }
                Ok(Err(problem)) => s.failed = Some(problem),
                Err(_) => s.failed = Some(too_slow()),
            }
            if took > Duration::from_secs(2) {
                tracing::info!(
                    took_ms = took.as_millis() as u64,
                    "mailbox reading was slow"
                );
            }
            s.running = false;
            s.finished = number;
            drop(s);
            this.done.send_replace(number);
        });
        number
    }
}

fn too_slow() -> OpsMessage {
    OpsMessage {
        code: "broker.stats_timeout".to_owned(),
        vi: format!(
            "Đọc số liệu hộp thư mất quá {} giây nên đã bỏ. Hàng đợi vẫn kết nối; số liệu đang hiện là lần đọc trước. Cần làm: với RabbitMQ kiểm tra plugin quản lý (rabbitmq-plugins list) và tải của máy chủ.",
            READING_TIMEOUT.as_secs()
        ),
        en: format!(
            "Reading the mailbox figures took over {} seconds and was abandoned. The broker is still connected; the figures shown are from the previous reading. What to do: for RabbitMQ check the management plugin (rabbitmq-plugins list) and the server's load.",
            READING_TIMEOUT.as_secs()
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    type Read = std::pin::Pin<
        Box<dyn Future<Output = Result<(Vec<MailboxStats>, Vec<DeadLetter>), OpsMessage>> + Send>,
    >;

    fn stats(ready: u64) -> Vec<MailboxStats> {
        vec![MailboxStats {
            mailbox: "000.00.00.H41".into(),
            ready,
            in_flight: 0,
            dead_lettered: 0,
            oldest_ready_age: None,
        }]
    }

    /// A reader that takes `delay` and returns the number of readings begun so far as `ready`.
    fn reader(calls: &Arc<AtomicU64>, delay: Duration) -> impl Fn() -> Read + use<> {
        let calls = calls.clone();
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok((stats(n), Vec::new()))
            })
        }
    }

    /// What a page load does: figures newer than the call, waiting at most `wait_s` seconds.
    async fn page<R, F>(r: &Arc<Readings>, wait_s: u64, read: R) -> View
    where
        R: Fn() -> F,
        F: Future<Output = Result<(Vec<MailboxStats>, Vec<DeadLetter>), OpsMessage>>
            + Send
            + 'static,
    {
        r.view(
            Want::AfterNow,
            Duration::from_secs(wait_s),
            SystemTime::now,
            read,
        )
        .await
    }

    fn ready(v: &View) -> Option<u64> {
        v.reading.as_ref().map(|r| r.stats[0].ready)
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_reading_is_waited_for_and_each_page_load_gets_a_new_one() {
        let r = Arc::new(Readings::default());
        let calls = Arc::new(AtomicU64::new(0));
        let read = reader(&calls, Duration::from_millis(100));
        let v = page(&r, 5, &read).await;
        assert!(v.fresh && !v.running && v.failed.is_none());
        assert_eq!(ready(&v), Some(1));
        let v = page(&r, 5, &read).await;
        assert_eq!(
            ready(&v),
            Some(2),
            "AfterNow never reuses an earlier reading"
        );
        // A scrape within the TTL reuses the last one without calling the broker.
        let v = r
            .view(
                Want::Within(Duration::from_secs(5)),
                Duration::from_secs(5),
                SystemTime::now,
                &read,
            )
            .await;
        assert!(v.fresh);
        assert_eq!((ready(&v), calls.load(Ordering::SeqCst)), (Some(2), 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reading_is_not_waited_for_and_the_last_one_is_served_with_its_time() {
        let r = Arc::new(Readings::default());
        let calls = Arc::new(AtomicU64::new(0));
        let slow = reader(&calls, Duration::from_secs(8));
        // Nothing read yet and the first reading takes 8 s: the caller gets nothing after 5 s,
        // told a reading is running; the reading goes on without it.
        let t0 = tokio::time::Instant::now();
        let v = page(&r, 5, &slow).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(5));
        assert!(!v.fresh && v.running && v.reading.is_none() && v.failed.is_none());
        tokio::time::sleep(Duration::from_secs(4)).await;
        // It finished meanwhile: the next caller wants newer figures and starts reading 2, but
        // readings take longer than it would wait: it gets reading 1 at once (stale, but with
        // its time) and not an error.
        let t1 = tokio::time::Instant::now();
        let v = page(&r, 5, &slow).await;
        assert_eq!(t1.elapsed(), Duration::ZERO, "no wait that could not help");
        assert!(!v.fresh && v.running);
        assert_eq!(ready(&v), Some(1));
        // Three callers during reading 2 share one follow-up reading: no pile of walks.
        let (a, b, c) = tokio::join!(
            page(&r, 30, &slow),
            page(&r, 30, &slow),
            page(&r, 30, &slow)
        );
        for v in [a, b, c] {
            assert!(v.fresh);
            assert_eq!(ready(&v), Some(3));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_reading_keeps_the_last_good_figures_and_says_why() {
        let r = Arc::new(Readings::default());
        let calls = Arc::new(AtomicU64::new(0));
        let good = reader(&calls, Duration::from_millis(10));
        page(&r, 5, &good).await;
        let failing = || {
            Box::pin(async {
                Err(OpsMessage {
                    code: "broker.amqp".into(),
                    vi: "hỏng".into(),
                    en: "broken".into(),
                })
            }) as Read
        };
        let v = page(&r, 5, failing).await;
        assert!(!v.fresh);
        assert_eq!(
            v.failed.as_ref().map(|p| p.code.as_str()),
            Some("broker.amqp")
        );
        assert_eq!(ready(&v), Some(1), "the last good figures stay");
        // A hung reader is abandoned after READING_TIMEOUT and reported as too slow.
        let hung = || Box::pin(std::future::pending()) as Read;
        let v = r
            .view(Want::AfterNow, READING_TIMEOUT * 2, SystemTime::now, hung)
            .await;
        assert_eq!(
            v.failed.as_ref().map(|p| p.code.as_str()),
            Some("broker.stats_timeout")
        );
        assert!(!v.running && !v.fresh);
        // After a 120 s attempt the next page does not wait (it could not help): it gets the
        // last good figures and the failure at once, and starts a new reading.
        let v = page(&r, 5, &good).await;
        assert!(!v.fresh && v.running);
        assert_eq!(ready(&v), Some(1));
        // That reading was quick, so the page after waits again, and a good reading clears
        // the failure.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let v = page(&r, 5, &good).await;
        assert!(v.fresh && v.failed.is_none());
        assert_eq!(ready(&v), Some(3));
    }
}
