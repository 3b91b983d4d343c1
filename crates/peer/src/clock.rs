//! Time as a dependency: a peer asks a [`Clock`] for "now" (unix seconds) so tests can move
//! time (session and order expiry, request timestamp windows, metadata cache) without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of unix time in seconds.
pub trait Clock: Send + Sync + 'static {
    /// Current unix time, seconds.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// The system clock shifted by an adjustable offset (tests move time forward with it).
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: AtomicI64,
}

impl OffsetClock {
    /// Moves this clock `secs` seconds forward (negative: backward).
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> i64 {
        SystemClock
            .now()
            .saturating_add(self.offset.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_moves_time() {
        let clock = OffsetClock::default();
        let before = clock.now();
        clock.advance(1000);
        assert!(clock.now() >= before + 1000);
        clock.advance(-1000);
        assert!(clock.now() < before + 1000);
    }
}
