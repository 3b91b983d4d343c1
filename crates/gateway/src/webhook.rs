//! The background worker: expires stale sessions and drains the durable outbound webhook queue
//! (signed proofs POSTed to `/transfer/webhook`, protocol notes §5.5 and §7 row 16).
//!
//! Delivery is at least once, and a delivered row is never sent again; the receiver dedupes
//! by `txid`, which together gives exactly-once fulfilment. Outcomes of one attempt:
//!
//! | response | new status |
//! |---|---|
//! | 2xx with `{"status":"accepted"}` | `delivered` |
//! | 2xx with `{"status":"rejected"}` | `rejected` (final, never retried) |
//! | anything else: non-2xx, network error, body not JSON, unknown status, other `txid` | `pending`, next attempt at now + `webhook_retry_secs[attempts]`; `failed` after the last delay |
//! | URL not allowed (scheme or host) | `failed` at once: it can never succeed |
//!
//! The worker runs every `worker_interval_ms` (expiry, purge, retries, rows queued by another
//! process) and, in between, as soon as a settlement committed a webhook row
//! ([`crate::state::Inner::wake_webhooks`]): such a pass only delivers due webhooks.
//!
//! Rows live in the store, so retries survive restarts. Within this process one webhook is
//! never in flight twice, even when [`deliver_now`] runs beside the worker.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;

use crate::client::{signed_post_json, ClientError};
use crate::database::Database;
use crate::state::AppState;
use crate::store::Webhook;

/// Most webhooks taken from the queue in one pass.
pub const BATCH_SIZE: u32 = 32;
/// Shortest worker interval honoured, milliseconds (guards against a zero interval).
pub const MIN_INTERVAL_MS: u64 = 10;
/// Longest `last_error` text stored.
const MAX_ERROR_LEN: usize = 500;

/// Webhooks being delivered right now, keyed by (database, queue id): a row is claimed here
/// before it is sent and released after its outcome is recorded.
static IN_FLIGHT: LazyLock<Mutex<HashSet<(Database, i64)>>> =
    LazyLock::new(|| Mutex::new(HashSet::new()));

/// What one delivery attempt decided.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The receiver accepted the proof.
    Delivered,
    /// The receiver rejected the proof (final); its message, if any.
    Rejected(Option<String>),
    /// Temporary failure; try again later.
    Retry(String),
    /// Permanent failure; give up now.
    Fail(String),
}

/// Runs until `shutdown` completes: every `config.worker_interval_ms`, expires sessions and
/// delivers due webhooks (and, when due, runs a [`crate::purge`] batch); woken by
/// [`crate::state::Inner::wake_webhooks`], delivers due webhooks at once (several wake-ups
/// during a pass make one more pass). A pass in progress is abandoned at shutdown (a webhook
/// sent but not yet recorded is sent again later; receivers dedupe by txid).
pub async fn run_worker(state: AppState, shutdown: impl Future<Output = ()> + Send) {
    let interval_ms = state.config.worker_interval_ms.max(MIN_INTERVAL_MS);
    let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut purge = crate::purge::Schedule::default();
    let mut trimmer = crate::memory::Trimmer::default();
    let wake = state.hub.webhook_signal();
    loop {
        let full_pass = tokio::select! {
            biased;
            () = &mut shutdown => break,
            _ = ticker.tick() => true,
            // One stored permit at most: wake-ups during a pass fold into one more pass.
            () = wake.notified() => false,
        };
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = async {
                if full_pass {
                    run_pass(&state).await;
                    purge.tick(&state).await;
                    trimmer.tick(state.metrics.open_streams());
                } else {
                    deliver_due(&state).await;
                }
            } => {}
        }
    }
    tracing::debug!("background worker stopped");
}

/// Runs one pass now: expires sessions, then delivers every due webhook (tests and tools).
pub async fn deliver_now(state: &AppState) {
    run_pass(state).await;
}

async fn run_pass(state: &AppState) {
    match state.store.expire_sessions(state.now()).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(count = n, "sessions expired"),
        Err(e) => tracing::error!(error = %e, "expiring sessions failed"),
    }
    deliver_due(state).await;
}

/// Delivers every due webhook (up to [`BATCH_SIZE`]) not already in flight in this process.
async fn deliver_due(state: &AppState) {
    let now = state.now();
    let lease_until = now.saturating_add(state.config.queue_lease_secs());
    let due = match state
        .store
        .claim_webhooks(now, lease_until, BATCH_SIZE)
        .await
    {
        Ok(due) => due,
        Err(e) => {
            tracing::error!(error = %e, "reading the webhook queue failed");
            return;
        }
    };
    let claimed: Vec<(Webhook, Claim)> = due
        .into_iter()
        .filter_map(|webhook| Claim::take(state, webhook.id).map(|claim| (webhook, claim)))
        .collect();
    join_all(
        claimed
            .into_iter()
            .map(|(webhook, claim)| deliver_claimed(state, webhook, claim)),
    )
    .await;
}

/// Exclusive right to deliver one webhook in this process; released on drop.
struct Claim(Database, i64);

impl Claim {
    fn take(state: &AppState, id: i64) -> Option<Claim> {
        let key = (state.config.database.clone(), id);
        let mut set = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        set.insert(key.clone()).then(|| Claim(key.0, key.1))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut set = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        set.remove(&(std::mem::take(&mut self.0), self.1));
    }
}

async fn deliver_claimed(state: &AppState, webhook: Webhook, claim: Claim) {
    // Re-read the row under the claim: another task may have finished it in between.
    match state.store.webhook_by_txid(&webhook.txid).await {
        Ok(Some(current))
            if current.id == webhook.id
                && current.status == "pending"
                && current.attempts == webhook.attempts => {}
        Ok(_) => return,
        Err(e) => {
            tracing::error!(error = %e, txid = %webhook.txid, "reading webhook failed");
            return;
        }
    }
    let result = signed_post_json(state, &webhook.url, webhook.body.as_bytes()).await;
    let outcome = classify(&webhook.txid, result);
    record(state, &webhook, &outcome).await;
    drop(claim);
}

/// Decides the outcome of one attempt from the HTTP result.
fn classify(txid: &str, result: Result<(u16, axum::body::Bytes), ClientError>) -> Outcome {
    let (status, body) = match result {
        Ok(ok) => ok,
        Err(ClientError::InvalidUrl(e)) => return Outcome::Fail(format!("URL not allowed: {e}")),
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    if !(200..300).contains(&status) {
        return Outcome::Retry(format!("HTTP {status}: {}", snippet(&body)));
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return Outcome::Retry(format!(
            "HTTP {status} with a body that is not JSON: {}",
            snippet(&body)
        ));
    };
    if let Some(other) = json.get("txid").and_then(Value::as_str) {
        if other != txid {
            return Outcome::Retry(format!(
                "receiver answered for txid {other:?}, not {txid:?}"
            ));
        }
    }
    let message = json
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string);
    match json.get("status").and_then(Value::as_str) {
        Some("accepted") => Outcome::Delivered,
        Some("rejected") => Outcome::Rejected(message),
        Some(other) => Outcome::Retry(format!("unknown webhook status {other:?}")),
        None => Outcome::Retry("response has no `status`".into()),
    }
}

async fn record(state: &AppState, webhook: &Webhook, outcome: &Outcome) {
    let now = state.now();
    let retry_at = usize::try_from(webhook.attempts)
        .ok()
        .and_then(|i| state.config.webhook_retry_secs.get(i))
        .map(|delay| now.saturating_add(*delay));
    let (status, next, error) = match outcome {
        Outcome::Delivered => ("delivered", now, None),
        Outcome::Rejected(message) => (
            "rejected",
            now,
            Some(format!(
                "rejected by receiver: {}",
                message.as_deref().unwrap_or("no reason given")
            )),
        ),
        Outcome::Retry(error) => match retry_at {
            Some(at) => ("pending", at, Some(error.clone())),
            None => ("failed", now, Some(format!("giving up: {error}"))),
        },
        Outcome::Fail(error) => ("failed", now, Some(error.clone())),
    };
    let error = error.map(|e| truncate(&e, MAX_ERROR_LEN));
    match status {
        "delivered" => {
            tracing::info!(txid = %webhook.txid, url = %webhook.url, "webhook delivered")
        }
        "pending" => {
            tracing::warn!(txid = %webhook.txid, url = %webhook.url, error = ?error, next_attempt_at = next, "webhook delivery failed; will retry")
        }
        _ => {
            tracing::warn!(txid = %webhook.txid, url = %webhook.url, status, error = ?error, "webhook delivery finished without acceptance")
        }
    }
    if let Err(e) = state
        .store
        .record_webhook_attempt(webhook.id, status, next, error.as_deref())
        .await
    {
        tracing::error!(error = %e, txid = %webhook.txid, "recording webhook attempt failed");
    }
}

fn snippet(body: &[u8]) -> String {
    truncate(&String::from_utf8_lossy(body), 200)
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    fn ok(status: u16, body: &str) -> Result<(u16, Bytes), ClientError> {
        Ok((status, Bytes::from(body.to_string())))
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify("t1", ok(200, r#"{"status":"accepted","txid":"t1"}"#)),
            Outcome::Delivered
        );
        assert_eq!(
            classify("t1", ok(202, r#"{"status":"accepted"}"#)),
            Outcome::Delivered
        );
        assert_eq!(
            classify(
                "t1",
                ok(200, r#"{"status":"rejected","txid":"t1","message":"no"}"#)
            ),
            Outcome::Rejected(Some("no".into()))
        );
        for (status, body) in [
            (200, r#"{"status":"accepted","txid":"t2"}"#),
            (200, r#"{"status":"maybe"}"#),
            (200, "ok"),
            (200, "{}"),
            (500, r#"{"status":"accepted"}"#),
            (400, r#"{"status":"rejected"}"#),
        ] {
            assert!(
                matches!(classify("t1", ok(status, body)), Outcome::Retry(_)),
                "{status} {body}"
            );
        }
        assert!(matches!(
            classify("t1", Err(ClientError::Network("x".into()))),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify("t1", Err(ClientError::TooLarge(1))),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify("t1", Err(ClientError::InvalidUrl("x".into()))),
            Outcome::Fail(_)
        ));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é…");
    }
}
