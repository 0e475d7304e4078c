//! The domain's one source of wall-clock time, so tests (and fault tests
//! of skewed instances) can move it instead of sleeping through it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch: the system clock plus an offset that only
/// tests change. Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// The system clock moved by `seconds` (negative: behind), as an
    /// instance with a skewed clock would read it.
    pub fn skewed(seconds: i64) -> Self {
        let clock = Self::default();
        clock.advance(seconds);
        clock
    }

    /// Move this clock (and every clone of it) by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        system_seconds().saturating_add(self.offset.load(Ordering::Relaxed))
    }

    /// Milliseconds since the Unix epoch, moved like [`now`](Self::now);
    /// never negative.
    pub fn now_millis(&self) -> u64 {
        let offset = self.offset.load(Ordering::Relaxed).saturating_mul(1_000);
        u64::try_from(system_millis().saturating_add(offset)).unwrap_or(0)
    }

    /// [`now`](Self::now), never negative.
    pub fn now_u64(&self) -> u64 {
        u64::try_from(self.now()).unwrap_or(0)
    }
}

/// A configured duration in seconds as the clock's `i64` seconds; a value
/// beyond `i64` (no real configuration) saturates well clear of overflow
/// when added to a time.
pub fn seconds(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX / 4)
}

fn system_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn system_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.now();
        clock.advance(3_600);
        assert!(other.now() >= before + 3_600);
    }

    #[test]
    fn milliseconds_move_with_the_seconds() {
        let clock = Clock::system();
        let before = clock.now_millis();
        clock.advance(60);
        let after = clock.now_millis();
        assert!(
            after >= before + 60_000 && after < before + 61_000,
            "{before} {after}"
        );
        assert!(after / 1_000 >= clock.now_u64() - 1 && after / 1_000 <= clock.now_u64());
    }

    #[test]
    fn a_skewed_clock_reads_behind_or_ahead_of_the_system() {
        let behind = Clock::skewed(-60).now();
        let system = Clock::system().now();
        assert!((system - behind - 60).abs() <= 1);
    }
}
