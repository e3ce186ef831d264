//! Group commit: one background thread turns many `flush().await` calls into few fsyncs. A round
//! fsyncs the archive segments written since the last round and indexes their records
//! (`archive::Shared::commit`), then flushes the database.
//!
//! Rule: a flush round that *starts* after a caller asked covers every write the caller issued
//! before asking. So a caller waits for round `started + 1` (the next round to start); while a
//! round is running, every new caller joins the one after it, and that one fsync serves them all.
//! After a failed fsync the kernel may have dropped dirty pages, so the failure is sticky: every
//! later flush fails until the process restarts and reopens the store.
//!
//! Under load, rounds start at most once per `gap` ([`crate::StoreOptions::commit_gap`]): a round
//! asked for sooner waits out the rest of the gap, and every caller arriving meanwhile joins it;
//! it starts early once no new caller has asked for 2 ms (the burst is in). That makes each round
//! serve more callers: fewer fsyncs, fewer sled log writes (each wakes all of sled's idle I/O
//! threads) and fewer thread wake-ups per package. "Under load" means the last round served
//! several callers or was asked for again while it ran. A lone caller flushing time after time
//! (nothing else writing) never waits for the gap, and neither does the first caller after a
//! quiet spell. The price: with a few callers at a time, each may wait some of the gap (in the
//! relay one sender's submissions and its recipient's acks are already two; see `commit_gap_ms`
//! in ops/config/truc.example.toml for what that costs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::StoreError;
use crate::archive::Shared as ArchiveShared;

#[derive(Debug, Default)]
struct Requests {
    /// Rounds started so far (the round being run, if any, is number `started`).
    started: u64,
    /// How many flush calls asked for the round that has not started yet (none: nothing to do).
    asking: u64,
    /// Set by `Drop`: run one last round, then stop.
    shutdown: bool,
}

#[derive(Debug, Clone, Default)]
struct Completed {
    /// The last round that finished.
    round: u64,
    /// The first fsync error seen; sticky.
    failed: Option<Arc<str>>,
}

#[derive(Debug)]
struct Shared {
    requests: Mutex<Requests>,
    wake: Condvar,
    fsyncs: AtomicU64,
    /// Rounds that waited out part of the gap.
    gap_waits: AtomicU64,
}

/// Owned by the store's `Inner`; created at open, dropped (after a final fsync) at close.
#[derive(Debug)]
pub(crate) struct Flusher {
    shared: Arc<Shared>,
    /// Waiters clone this to learn when their round has finished.
    completed: watch::Receiver<Completed>,
    /// The flusher thread; joined on drop so the database is closed when the store is.
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub(crate) fn start(
        db: sled::Db,
        archive: Arc<ArchiveShared>,
        gap: Duration,
    ) -> Result<Flusher, std::io::Error> {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Requests::default()),
            wake: Condvar::new(),
            fsyncs: AtomicU64::new(0),
            gap_waits: AtomicU64::new(0),
        });
        let (tx, rx) = watch::channel(Completed::default());
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("store-flusher".into())
            .spawn(move || run(db, archive, gap, thread_shared, tx))?;
        Ok(Flusher {
            shared,
            completed: rx,
            thread: Some(thread),
        })
    }

    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let target = {
            let mut r = self
                .shared
                .requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if r.shutdown {
                return Err(StoreError::Closed);
            }
            r.asking += 1;
            r.started + 1
        };
        self.shared.wake.notify_one();
        let mut rx = self.completed.clone();
        let done = rx
            .wait_for(|c| c.round >= target || c.failed.is_some())
            .await
            .map_err(|_| StoreError::Closed)?
            .clone();
        match done.failed {
            Some(detail) => Err(StoreError::FlushFailed {
                detail: detail.to_string(),
            }),
            None => Ok(()),
        }
    }

    pub(crate) fn fsyncs(&self) -> u64 {
        self.shared.fsyncs.load(Ordering::Relaxed)
    }

    pub(crate) fn gap_waits(&self) -> u64 {
        self.shared.gap_waits.load(Ordering::Relaxed)
    }
}

fn run(
    db: sled::Db,
    archive: Arc<ArchiveShared>,
    gap: Duration,
    shared: Arc<Shared>,
    tx: watch::Sender<Completed>,
) {
    let mut last_start: Option<Instant> = None;
    // The last round served several callers, or someone asked for another while it ran.
    let mut busy = false;
    loop {
        let shutdown = {
            let mut r = shared
                .requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            while r.asking == 0 && !r.shutdown {
                r = shared.wake.wait(r).unwrap_or_else(PoisonError::into_inner);
            }
            r.shutdown
        };
        // Not yet `started + 1`: whoever asks during this wait joins the round about to start.
        if busy
            && !shutdown
            && let Some(start) = last_start
        {
            linger(&shared, start + gap);
        }
        last_start = Some(Instant::now());
        let (round, served, last) = {
            let mut r = shared
                .requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            r.started += 1;
            (r.started, std::mem::take(&mut r.asking), r.shutdown)
        };
        // Archive first: an index entry (or an event naming a package) is never durable before
        // the package's bytes.
        let result = archive
            .commit()
            .map_err(|e| e.to_string())
            .and_then(|()| db.flush().map(drop).map_err(|e| e.to_string()));
        shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        // Read before the waiters are told, so that a lone caller asking again once told is not
        // taken for a second caller.
        let asked_meanwhile = shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .asking
            > 0;
        busy = served >= 2 || asked_meanwhile;
        tx.send_modify(|c| {
            c.round = round;
            if let Err(e) = &result
                && c.failed.is_none()
            {
                c.failed = Some(Arc::from(e.as_str()));
            }
        });
        if last {
            return;
        }
    }
}

/// How long no new caller may ask before a round waiting out the gap starts early: the burst of
/// callers is in, and waiting longer would only delay them. Under full load callers ask every
/// few hundred microseconds, so the round waits out the gap; a few senders at a time are all in
/// well within it.
const QUIET: Duration = Duration::from_millis(2);

/// Waits until `until`, or until no new caller has asked for `QUIET`, or shutdown. Sleeps in
/// steps rather than being woken by each caller, which would cost the wake-ups the gap saves.
fn linger(shared: &Shared, until: Instant) {
    let asking = || {
        let r = shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (r.asking, r.shutdown)
    };
    if until <= Instant::now() {
        return;
    }
    shared.gap_waits.fetch_add(1, Ordering::Relaxed);
    let (mut seen, _) = asking();
    while let Some(rest) = until.checked_duration_since(Instant::now())
        && !rest.is_zero()
    {
        std::thread::sleep(rest.min(QUIET));
        let (now, shutdown) = asking();
        if shutdown || now == seen {
            return;
        }
        seen = now;
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        {
            let mut r = self
                .shared
                .requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            r.shutdown = true;
        }
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
