//! The background purge: old never-paid expired sessions and nonces past their lifetime are
//! deleted in bounded batches, from the background worker ([`crate::webhook::run_worker`]),
//! about once a minute and back-to-back while a batch comes back full.

use crate::state::AppState;
use crate::store::PurgeCounts;

/// Rows of each kind one batch deletes at most (one short write transaction).
pub const BATCH: u32 = 500;
/// Seconds between purge runs when the last batch was not full.
pub const INTERVAL_SECS: i64 = 60;

/// When the worker purges next.
#[derive(Debug, Default)]
pub struct Schedule {
    next_at: i64,
}

impl Schedule {
    /// Runs one batch when due (by the gateway's clock); a full batch makes the next one due
    /// at once, a partial one in [`INTERVAL_SECS`].
    pub async fn tick(&mut self, state: &AppState) {
        let now = state.now();
        if now < self.next_at {
            return;
        }
        self.next_at = match purge_batch(state, now).await {
            Some(counts)
                if counts.sessions >= u64::from(BATCH) || counts.nonces >= u64::from(BATCH) =>
            {
                now
            }
            _ => now.saturating_add(INTERVAL_SECS),
        };
    }
}

/// One batch at `now`; `None` when the store failed (logged).
pub async fn purge_batch(state: &AppState, now: i64) -> Option<PurgeCounts> {
    let expired_before = now.saturating_sub(state.config.limits.purge_sessions_after_secs);
    match state.store.purge(expired_before, now, BATCH).await {
        Ok(counts) => {
            if counts != PurgeCounts::default() {
                tracing::debug!(sessions = counts.sessions, nonces = counts.nonces, "purged");
            }
            Some(counts)
        }
        Err(e) => {
            tracing::error!(error = %e, "purging old sessions and nonces failed; will retry");
            None
        }
    }
}

/// Purges everything due at the current time, batch after batch (tests and tools).
pub async fn purge_now(state: &AppState) -> PurgeCounts {
    let mut total = PurgeCounts::default();
    while let Some(counts) = purge_batch(state, state.now()).await {
        total.sessions += counts.sessions;
        total.nonces += counts.nonces;
        if counts.sessions < u64::from(BATCH) && counts.nonces < u64::from(BATCH) {
            break;
        }
    }
    total
}
