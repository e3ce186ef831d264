//! Sessions and sign-in throttling, in memory.
//!
//! A session is a random 244-bit token (two UUIDv4, from the OS generator) in an `HttpOnly;
//! Secure; SameSite=Strict` cookie scoped to `/portal`, mapped here to the account name, an
//! absolute expiry (`[portal] session_minutes` after sign-in) and its own CSRF token, which
//! every form posts back. The account is looked up again on every request, so a disabled or
//! deleted account loses its live sessions at once. Sessions die with the process (a restart
//! signs everyone out), which is the safe failure.
//!
//! Throttling: after [`MAX_FAILURES`] wrong passwords for one account name within
//! [`FAILURE_WINDOW`], sign-in for that name is refused (429) until the window has passed since
//! the first of them, even with the right password; an unknown name is counted the same way so
//! the answer does not tell which names exist.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Wrong passwords allowed per account name within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// The window failures are counted in (and how long a locked name waits).
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Most sessions kept at once (oldest dropped first past it): bounded memory.
const MAX_SESSIONS: usize = 100_000;

/// A fresh unguessable token (hex).
pub fn token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Compares two tokens without stopping at the first difference.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[derive(Debug, Clone)]
pub struct Session {
    pub account: String,
    pub csrf: String,
    pub expires: Instant,
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    first: Option<Instant>,
}

/// Live sessions and recent sign-in failures. Owned by the portal's state.
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    live: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Failures>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            live: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session for `account`; returns its token.
    pub fn start(&self, account: &str) -> (String, Session) {
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            live.remove(&oldest);
        }
        let session = Session {
            account: account.to_owned(),
            csrf: token(),
            expires: now + self.ttl,
        };
        let t = token();
        live.insert(t.clone(), session.clone());
        (t, session)
    }

    /// The live session of `token`, if any and not expired.
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        match live.get(token) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                live.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, token: &str) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }

    /// Whether `name` is locked out now.
    pub fn locked(&self, name: &str) -> bool {
        let mut f = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        match f.get(name) {
            Some(x) if x.first.is_some_and(|t| t.elapsed() >= FAILURE_WINDOW) => {
                f.remove(name);
                false
            }
            Some(x) => x.count >= MAX_FAILURES,
            None => false,
        }
    }

    /// Counts a wrong password for `name`.
    pub fn failed(&self, name: &str) {
        let mut f = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if f.len() > MAX_SESSIONS {
            f.retain(|_, x| x.first.is_some_and(|t| t.elapsed() < FAILURE_WINDOW));
        }
        let entry = f.entry(name.to_owned()).or_default();
        if entry.first.is_none_or(|t| t.elapsed() >= FAILURE_WINDOW) {
            *entry = Failures {
                count: 0,
                first: Some(Instant::now()),
            };
        }
        entry.count += 1;
    }

    /// A good sign-in clears the count.
    pub fn succeeded(&self, name: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_differ_and_compare() {
        let a = token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, token());
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &token()));
        assert!(!same(&a, "x"));
    }

    #[test]
    fn sessions_expire_and_end() {
        let s = Sessions::new(Duration::from_millis(0));
        let (t, _) = s.start("a");
        assert!(s.get(&t).is_none(), "a zero-length session is already over");
        let s = Sessions::new(Duration::from_secs(60));
        let (t, sess) = s.start("a");
        assert_eq!(s.get(&t).unwrap().csrf, sess.csrf);
        s.end(&t);
        assert!(s.get(&t).is_none());
    }

    #[test]
    fn five_failures_lock_the_name_only() {
        let s = Sessions::new(Duration::from_secs(60));
        for _ in 0..MAX_FAILURES {
            assert!(!s.locked("a"));
            s.failed("a");
        }
        assert!(s.locked("a"));
        assert!(!s.locked("b"));
    }
}
