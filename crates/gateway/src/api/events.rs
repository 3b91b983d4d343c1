//! `GET /app/events`: the account's durable event log as a server-sent-events stream. On
//! connect it replays every event after `Last-Event-ID` (or `?after=`), then follows the log:
//! each wake-up of its account from the event hub (events of other accounts never wake it) and
//! a periodic safety poll re-read the store, so no event is ever lost. Heartbeat comments keep
//! idle connections open. A device keeps at most `limits.max_streams_per_device` streams: a
//! newer one ends its oldest.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::Value;
use tokio::sync::watch;

use crate::api::app::query_params;
use crate::auth::DeviceRequest;
use crate::error::{GatewayError, GatewayResult};
use crate::state::AppState;
use crate::store::Event;

/// Events read from the store per query.
const BATCH: u32 = 100;

/// Suggested reconnect delay sent to clients (`retry:` field), milliseconds.
pub const RETRY_MS: u64 = 3000;

/// The event stream route (relative to the base path).
pub fn routes() -> Router<AppState> {
    Router::new().route("/app/events", get(events))
}

/// Parses an event id cursor (`Last-Event-ID` or `?after=`): a non-negative decimal integer.
fn parse_cursor(text: &str, what: &str) -> GatewayResult<i64> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    text.parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| {
            GatewayError::invalid(format!(
                "{what} must be a non-negative event id, got {text:?}"
            ))
        })
}

/// `GET /app/events` (device-signed, empty body): the SSE stream of the device's account.
async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    req: DeviceRequest,
) -> GatewayResult<Response> {
    let last_id = match headers.get("last-event-id") {
        Some(value) => parse_cursor(
            value
                .to_str()
                .map_err(|_| GatewayError::invalid("Last-Event-ID must be ASCII"))?,
            "Last-Event-ID",
        )?,
        None => {
            let query = query_params(raw.as_deref(), &["after"])?;
            parse_cursor(query.get("after").map_or("", String::as_str), "after")?
        }
    };
    // Subscribe before the first read, so a wake-up between the read and the wait is kept.
    let wakeups = state.hub.subscribe(&req.device.account_id);
    // Per-device cap: a device over `limits.max_streams_per_device` loses its oldest stream
    // (a phone that reconnects after a network switch is never locked out by its own
    // half-dead stream).
    let slot = state.hub.streams.open(
        &req.device.device_id,
        state.config.limits.max_streams_per_device,
    );
    let heartbeat = Duration::from_secs(state.config.sse_heartbeat_secs.max(1));
    let follow = Follow {
        state: state.clone(),
        account_id: req.device.account_id.clone(),
        last_id,
        wakeups,
        closed: state.hub.closed(),
        buffer: VecDeque::new(),
        poll: heartbeat.saturating_mul(2),
        slot,
        _open: state.metrics.stream_opened(),
    };
    let hello = SseEvent::default()
        .retry(Duration::from_millis(RETRY_MS))
        .comment("connected");
    let stream =
        stream::once(async move { Ok::<SseEvent, Infallible>(hello) }).chain(follow_stream(follow));
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"));
    let mut response = sse.into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The cursor of one live stream.
struct Follow {
    state: AppState,
    account_id: String,
    last_id: i64,
    /// Wake-ups of this account only; one sent while the stream reads is remembered.
    wakeups: crate::hub::AccountWakeups,
    /// Turns `true` when the gateway stops: the stream then ends.
    closed: watch::Receiver<bool>,
    buffer: VecDeque<Event>,
    /// Safety re-read interval when no wake-up arrives.
    poll: Duration,
    /// This stream's place in the per-device cap; turns displaced when a newer stream of the
    /// device pushes it out (the stream then ends).
    slot: crate::limits::StreamSlot,
    /// Counts the stream in `opencharge_event_streams_open` while it lives.
    _open: crate::ops::metrics::OpenStream,
}

/// Why [`Follow::wait`] returned.
enum Wake {
    /// Re-read the store.
    Read,
    /// The gateway is stopping: end the stream.
    Closed,
}

impl Follow {
    /// Waits for a wake-up of this account (or one that arrived since the last wait) or the
    /// safety poll interval.
    async fn wait(&mut self) -> Wake {
        tokio::select! {
            () = tokio::time::sleep(self.poll) => Wake::Read,
            _ = self.closed.wait_for(|closed| *closed) => Wake::Closed,
            _ = self.slot.displaced.wait_for(|displaced| *displaced) => Wake::Closed,
            () = self.wakeups.changed() => Wake::Read,
        }
    }
}

/// The durable events of the account after the cursor, forever (until the client leaves, the
/// gateway stops, or the store fails; the client then reconnects with `Last-Event-ID`).
fn follow_stream(follow: Follow) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(follow, |mut f| async move {
        loop {
            if *f.closed.borrow() || *f.slot.displaced.borrow() {
                return None;
            }
            if let Some(event) = f.buffer.pop_front() {
                f.last_id = event.id;
                return Some((Ok(to_sse(&event)), f));
            }
            match f
                .state
                .store
                .events_after(&f.account_id, f.last_id, BATCH)
                .await
            {
                Ok(events) if !events.is_empty() => {
                    f.buffer.extend(events);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, account = %f.account_id, "event stream ends: store failed");
                    return None;
                }
            }
            if let Wake::Closed = f.wait().await {
                return None;
            }
        }
    })
}

/// One stored event as SSE: `id:` = event id, `event:` = kind, `data:` = compact JSON payload.
fn to_sse(event: &Event) -> SseEvent {
    let kind = if !event.kind.is_empty()
        && event
            .kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        event.kind.as_str()
    } else {
        "message"
    };
    // Re-serialise compactly: the data line then never holds a raw line break.
    let data = serde_json::from_str::<Value>(&event.payload_json)
        .unwrap_or_else(|_| Value::String(event.payload_json.clone()))
        .to_string();
    SseEvent::default()
        .id(event.id.to_string())
        .event(kind)
        .data(data)
}
