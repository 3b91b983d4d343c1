//! Gives heap freed after a burst of event streams back to the operating system: glibc keeps
//! freed memory in its per-thread arenas, so without a trim the gateway's RSS stays at its
//! peak after a thousand streams close. The background worker calls [`Trimmer::tick`]; it
//! trims (glibc's `malloc_trim`) once the number of open streams has fallen and stayed below
//! its last peak for a few seconds. Elsewhere (musl, macOS) it does nothing: those allocators
//! return memory on their own or have no such call.

use std::time::{Duration, Instant};

/// How long the open-stream count must stay below its peak before a trim.
const SETTLE: Duration = Duration::from_secs(5);

/// Remembers the open-stream peak since the last trim.
#[derive(Debug, Default)]
pub struct Trimmer {
    peak: i64,
    fell_at: Option<Instant>,
}

impl Trimmer {
    /// Called with the current number of open event streams; returns true when it trimmed.
    pub fn tick(&mut self, open_streams: i64) -> bool {
        if open_streams >= self.peak {
            self.peak = open_streams;
            self.fell_at = None;
            return false;
        }
        let fell_at = *self.fell_at.get_or_insert_with(Instant::now);
        if fell_at.elapsed() < SETTLE {
            return false;
        }
        self.peak = open_streams;
        self.fell_at = None;
        trim();
        true
    }
}

/// Returns free heap pages to the operating system.
fn trim() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let _ = unsafe { libc::malloc_trim(0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_after_the_count_fell_and_settled() {
        let mut t = Trimmer::default();
        assert!(!t.tick(1000));
        assert!(!t.tick(10), "fell, not settled yet");
        t.fell_at = Some(Instant::now() - SETTLE);
        assert!(t.tick(10), "settled below the peak");
        assert!(!t.tick(10), "no new peak since the trim");
        assert!(!t.tick(500));
        assert!(!t.tick(500), "at the peak");
    }
}
