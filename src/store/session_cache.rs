//! A short-lived cache of live sessions, in front of the lookup every
//! authenticated request makes.
//!
//! Exact within this process: every revocation made through this [`Store`]
//! empties it at once (a generation counter), so a logout or a reuse
//! detection is seen by the very next request here. Bounded staleness across
//! processes: an entry is trusted for at most the TTL (default 500 ms), so a
//! revocation made by another instance (or the admin CLI) is seen within
//! that time — inside the one second the scale-out contract allows. A TTL of
//! zero turns the cache off: one database lookup per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::SessionUser;

/// Entries kept at most; past it the cache starts over (a flood of distinct
/// sessions must not grow memory without bound).
const MAX_ENTRIES: usize = 100_000;

pub(super) struct SessionCache {
    ttl: Duration,
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    user: SessionUser,
    session_expires_at: i64,
    fetched: Instant,
    generation: u64,
}

impl SessionCache {
    pub(super) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The cached user of live session `sid` at `now`, if fresh.
    pub(super) fn get(&self, sid: &str, now: i64) -> Option<SessionUser> {
        if !self.enabled() {
            return None;
        }
        let generation = self.generation.load(Ordering::Acquire);
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(sid)?;
        let fresh = entry.generation == generation
            && entry.fetched.elapsed() < self.ttl
            && entry.session_expires_at > now;
        fresh.then(|| entry.user.clone())
    }

    /// Remember a lookup made at `generation` (read before the lookup, so a
    /// revocation racing with it leaves the entry stale rather than wrong).
    pub(super) fn put(
        &self,
        sid: &str,
        user: &SessionUser,
        session_expires_at: i64,
        generation: u64,
    ) {
        if !self.enabled() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            let entry = Entry {
                user: user.clone(),
                session_expires_at,
                fetched: Instant::now(),
                generation,
            };
            entries.insert(sid.to_owned(), entry);
        }
    }

    /// The generation to tag a lookup with.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Forget everything: a session was revoked in this process.
    pub(super) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> SessionUser {
        SessionUser {
            user_id: 1,
            email: "a@example.com".into(),
            name: "a".into(),
            email_verified: false,
        }
    }

    #[test]
    fn a_fresh_entry_is_served_and_an_invalidation_drops_it() {
        let cache = SessionCache::new(Duration::from_secs(60));
        cache.put("s", &user(), 100, cache.generation());
        assert!(cache.get("s", 50).is_some());
        cache.invalidate();
        assert!(cache.get("s", 50).is_none());
    }

    #[test]
    fn a_lookup_that_raced_a_revocation_is_not_served() {
        let cache = SessionCache::new(Duration::from_secs(60));
        let before = cache.generation();
        cache.invalidate();
        cache.put("s", &user(), 100, before);
        assert!(cache.get("s", 50).is_none());
    }

    #[test]
    fn entries_expire_with_the_ttl_and_with_the_session() {
        let cache = SessionCache::new(Duration::from_millis(20));
        cache.put("s", &user(), 100, cache.generation());
        assert!(cache.get("s", 100).is_none(), "session expired at 100");
        std::thread::sleep(Duration::from_millis(30));
        assert!(cache.get("s", 50).is_none(), "older than the TTL");
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = SessionCache::new(Duration::ZERO);
        cache.put("s", &user(), 100, cache.generation());
        assert!(cache.get("s", 50).is_none());
    }
}
