//! The gateway's `[limits]` table ([`LimitsConfig`]: connection cap, header-read and request
//! timeouts, request head sizes, open event streams per device, open sessions per account,
//! purge age), [`DeviceStreams`], the registry that enforces the per-device cap on
//! `/app/events` by closing a device's oldest stream when it opens one too many, and
//! [`open_session_refusal`], the per-account cap on open wallet sessions.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// File descriptors kept free below the process's open-file limit when the connection cap is
/// derived from it: the database and its WAL, outbound HTTP (webhooks, partners, push,
/// metadata), the listener and the log.
pub const FD_HEADROOM: u64 = 256;
/// Smallest connection cap ever derived from the open-file limit.
pub const MIN_DERIVED_CONNECTIONS: u64 = 64;
/// Connection cap when the open-file limit is unknown or unlimited.
pub const FALLBACK_CONNECTIONS: u64 = 16_384;

/// Most threads of the blocking pool in the runtimes the binaries build (tokio's default is
/// 512): the SQLite store has its own threads (one writer, [`crate::store::sqlite::READERS`]
/// readers) and uses none of them; DNS lookups and file work do.
pub const MAX_BLOCKING_THREADS: usize = 64;

/// How long an idle blocking-pool thread lives (tokio's default is 10 s). Short, so a pool
/// grown by a burst of DNS lookups or file work shrinks back soon after.
pub const BLOCKING_THREAD_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

/// The tokio runtime every server binary (`opencharge`, `opencharge-gateway`) runs on:
/// multi-threaded, I/O and timers on, the blocking pool capped at [`MAX_BLOCKING_THREADS`] and
/// shrinking after a burst ([`BLOCKING_THREAD_KEEP_ALIVE`]).
pub fn server_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
        .enable_all()
        .build()
}

/// `[limits]`: what one client can hold of the gateway. Every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most client connections served at once (by this instance); a connection over the cap is answered `503
    /// RATE_LIMITED` (signed, `Retry-After: 1`) and closed. `0` (the default) derives it from
    /// the process's open-file limit at start: the soft `RLIMIT_NOFILE` minus
    /// [`FD_HEADROOM`], at least [`MIN_DERIVED_CONNECTIONS`].
    pub max_connections: u64,
    /// Seconds a client has to send a complete request head (request line and headers) once
    /// the gateway waits for one; the connection is then closed. The same timer bounds an idle
    /// keep-alive connection between two requests.
    pub header_read_timeout_secs: u64,
    /// Seconds from a complete request head to the response head (body upload included);
    /// past it the answer is `503 INTERNAL_ERROR` with `Retry-After`. An event stream's
    /// response head is immediate, so open streams are not cut.
    pub request_timeout_secs: u64,
    /// Longest request target (path and query) accepted, bytes; longer is `414
    /// INVALID_REQUEST`.
    pub max_uri_bytes: usize,
    /// Largest request header section accepted (names, values and separators), bytes; larger
    /// is `431 INVALID_REQUEST`.
    pub max_header_bytes: usize,
    /// Open `/app/events` streams per device; opening one more closes the device's oldest.
    /// Per instance: with many instances on one database a device may hold this many streams
    /// on each of them.
    pub max_streams_per_device: usize,
    /// Open wallet QR sessions (`POST /app/sessions`, not yet paid, declined or expired) per
    /// account; one more is `429 RATE_LIMITED` with `Retry-After` (the seconds until the
    /// oldest open one expires). Counted in the database, so it holds across instances
    /// (requests at the same instant on different instances may each pass the check).
    pub max_open_sessions_per_account: u64,
    /// Seconds after its expiry that a never-paid expired session is deleted by the
    /// background purge (it then leaves the history; paid and declined sessions stay).
    pub purge_sessions_after_secs: i64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 0,
            header_read_timeout_secs: 10,
            request_timeout_secs: 30,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_streams_per_device: 4,
            max_open_sessions_per_account: 20,
            purge_sessions_after_secs: 7 * 86_400,
        }
    }
}

impl LimitsConfig {
    /// Checks that every limit is positive (`max_connections` may be `0`: derived).
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            (
                "limits.header_read_timeout_secs",
                self.header_read_timeout_secs,
            ),
            ("limits.request_timeout_secs", self.request_timeout_secs),
            ("limits.max_uri_bytes", self.max_uri_bytes as u64),
            ("limits.max_header_bytes", self.max_header_bytes as u64),
            (
                "limits.max_streams_per_device",
                self.max_streams_per_device as u64,
            ),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.purge_sessions_after_secs < 0 {
            return Err("limits.purge_sessions_after_secs must not be negative".into());
        }
        Ok(())
    }

    /// The connection cap in force: `max_connections`, or derived from the open-file limit.
    pub fn connection_cap(&self) -> u64 {
        if self.max_connections > 0 {
            return self.max_connections;
        }
        match soft_fd_limit() {
            Some(soft) => soft
                .saturating_sub(FD_HEADROOM)
                .max(MIN_DERIVED_CONNECTIONS),
            None => FALLBACK_CONNECTIONS,
        }
    }
}

/// The soft `RLIMIT_NOFILE` of this process; `None` when unlimited or unknown.
#[cfg(unix)]
pub fn soft_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // `rlim_t` is not `u64` on every unix
    Some(limit.rlim_cur as u64)
}

/// The soft open-file limit (unknown on this platform).
#[cfg(not(unix))]
pub fn soft_fd_limit() -> Option<u64> {
    None
}

/// Open event streams by device. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct DeviceStreams {
    inner: Arc<StreamsInner>,
}

/// Device id → its open streams, oldest first: (stream id, "close now" signal).
type OpenStreams = HashMap<String, VecDeque<(u64, watch::Sender<bool>)>>;

#[derive(Default)]
struct StreamsInner {
    next_id: AtomicU64,
    open: Mutex<OpenStreams>,
}

/// One open stream's place in [`DeviceStreams`]; dropping it (the stream ended) frees it.
pub struct StreamSlot {
    streams: DeviceStreams,
    device_id: String,
    id: u64,
    /// Turns `true` when a newer stream of the same device displaced this one.
    pub displaced: watch::Receiver<bool>,
}

impl DeviceStreams {
    /// Registers a new stream of `device_id`; when the device then has more than `max` open,
    /// its oldest streams are told to close (their [`StreamSlot::displaced`] turns `true`).
    pub fn open(&self, device_id: &str, max: usize) -> StreamSlot {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(false);
        let mut open = self.lock();
        let list = open.entry(device_id.to_string()).or_default();
        list.push_back((id, tx));
        while list.len() > max.max(1) {
            if let Some((old, signal)) = list.pop_front() {
                tracing::info!(device = %device_id, stream = old, max, "event stream displaced by a newer stream of the same device");
                signal.send_replace(true);
            }
        }
        StreamSlot {
            streams: self.clone(),
            device_id: device_id.to_string(),
            id,
            displaced: rx,
        }
    }

    /// Streams of `device_id` currently registered (tests, metrics).
    pub fn open_count(&self, device_id: &str) -> usize {
        self.lock().get(device_id).map_or(0, VecDeque::len)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OpenStreams> {
        // A panic while holding this lock cannot leave the map inconsistent: keep serving.
        self.inner
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.lock();
        if let Some(list) = open.get_mut(&self.device_id) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                open.remove(&self.device_id);
            }
        }
    }
}

/// `429 RATE_LIMITED` with `Retry-After` when `account_id` already holds
/// `max_open_sessions_per_account` open wallet QR sessions; `None` when it may create one.
/// Refusing (rather than replacing the oldest) never invalidates a QR code a cashier may be
/// scanning right now; the oldest frees its place when it expires.
pub async fn open_session_refusal(
    state: &crate::state::AppState,
    account_id: &str,
    now: i64,
) -> crate::error::GatewayResult<Option<axum::response::Response>> {
    let max = state.config.limits.max_open_sessions_per_account;
    let created_after = now.saturating_sub(state.config.session_ttl_secs);
    let open = state
        .store
        .open_wallet_sessions(account_id, created_after, now)
        .await?;
    if open.count < max {
        return Ok(None);
    }
    let retry_after = open
        .earliest_expiry
        .map_or(1, |at| at.saturating_sub(now).max(1));
    let error = opencharge_protocol::error_code::ApiError::new(
        opencharge_protocol::error_code::ErrorCode::RateLimited,
        format!(
            "this account already has {} open payment sessions (at most {max}); use one of \
             them or retry in {retry_after} s, when the oldest expires",
            open.count
        ),
    )
    .with_status(429)
    .with_details(
        serde_json::json!({"openSessions": open.count, "max": max, "retryAfterSecs": retry_after}),
    );
    let mut response = opencharge_peer::error::error_response(&error);
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(retry_after),
    );
    Ok(Some(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_stream_is_displaced_and_slots_free_on_drop() {
        let streams = DeviceStreams::default();
        let first = streams.open("dev_a", 2);
        let second = streams.open("dev_a", 2);
        let other = streams.open("dev_b", 2);
        assert!(!*first.displaced.borrow());
        let third = streams.open("dev_a", 2);
        assert!(
            *first.displaced.borrow(),
            "the oldest stream must be told to close"
        );
        assert!(!*second.displaced.borrow() && !*third.displaced.borrow());
        assert!(!*other.displaced.borrow(), "another device is untouched");
        assert_eq!(streams.open_count("dev_a"), 2);
        drop(first);
        assert_eq!(streams.open_count("dev_a"), 2);
        drop(second);
        drop(third);
        assert_eq!(streams.open_count("dev_a"), 0);
        assert_eq!(streams.open_count("dev_b"), 1);
    }

    #[test]
    fn zero_limits_are_refused_and_the_cap_is_derived() {
        assert!(LimitsConfig::default().validate().is_ok());
        let bad = LimitsConfig {
            header_read_timeout_secs: 0,
            ..LimitsConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("header_read_timeout_secs"));
        let fixed = LimitsConfig {
            max_connections: 7,
            ..LimitsConfig::default()
        };
        assert_eq!(fixed.connection_cap(), 7);
        let derived = LimitsConfig::default().connection_cap();
        match soft_fd_limit() {
            Some(soft) => assert!(derived < soft.max(MIN_DERIVED_CONNECTIONS + 1)),
            None => assert_eq!(derived, FALLBACK_CONNECTIONS),
        }
    }
}
