//! Live events: the foreign `WalletListener`, and the task that follows the gateway's
//! server-sent-event stream with reconnects (exponential backoff with jitter) and
//! `Last-Event-ID` resume. Each event is verified and stored before the app is told
//! (at-least-once, deduplicated by event id); the `EventStream` handle stops it.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opencharge_protocol::app::{PaymentStatusEvent, Prompt};
use rand_core::{OsRng, RngCore};
use serde::Deserialize;
use tokio::sync::watch;

use crate::db::StoredEvent;
use crate::engine::Engine;
use crate::error::{Result, WalletError};
use crate::model::{
    time_from_unix, ConnectionState, PaymentPrompt, PaymentStatus, PaymentStatusUpdate,
};
use crate::prompt::RawPrompt;
use crate::sse::{SseEvent, SseParser};

/// First reconnect delay; doubled after each failure up to [`MAX_BACKOFF_MS`].
const MIN_BACKOFF_MS: u64 = 500;
/// Longest reconnect delay.
const MAX_BACKOFF_MS: u64 = 30_000;

/// Receives what happens while the event stream runs. Called on the core's threads, one call
/// at a time and in order; return quickly (hand work to the UI thread). An exception thrown
/// here is logged and does not stop the stream.
#[uniffi::export(with_foreign)]
pub trait WalletListener: Send + Sync {
    /// A new payment prompt arrived and verified. Show it; confirm or decline by its id.
    fn on_prompt(&self, prompt: PaymentPrompt) -> Result<()>;
    /// The gateway relayed a prompt that failed the core's checks (bad merchant signature,
    /// tampered amount, ...). It is not payable; the app may tell the user.
    fn on_prompt_rejected(&self, prompt_id: String, reason: String) -> Result<()>;
    /// A payment was paid or declined (on this or another device of the account). Each status
    /// of a payment is told once: also the outcome of a `confirm` or `decline` that threw
    /// `OutcomePending`, which the core resolves by itself and reports here.
    fn on_payment_status(&self, update: PaymentStatusUpdate) -> Result<()>;
    /// The connection changed state.
    fn on_connection_state(&self, state: ConnectionState) -> Result<()>;
}

/// A running event stream, returned by `Wallet.startEvents`. Keep it while the app is in the
/// foreground; `stop` ends it (closing the wallet ends it too).
#[derive(uniffi::Object)]
pub struct EventStream {
    stop: watch::Sender<bool>,
    done: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

// No `async_runtime`: `stopAndWait` only awaits the stream task's handle (see wallet.rs).
#[uniffi::export]
impl EventStream {
    /// Stops the stream; the listener then receives `ConnectionState.Stopped`. Idempotent.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Whether the stream task is still running.
    pub fn is_running(&self) -> bool {
        self.done
            .lock()
            .ok()
            .and_then(|d| d.as_ref().map(|h| !h.is_finished()))
            .unwrap_or(false)
    }

    /// Stops the stream and waits until its task has ended (no listener call after this).
    pub async fn stop_and_wait(&self) {
        self.stop();
        let handle = self.done.lock().ok().and_then(|mut d| d.take());
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }
}

/// Starts the stream task for `engine` on `runtime`.
pub(crate) fn start(
    engine: Arc<Engine>,
    listener: Arc<dyn WalletListener>,
    runtime: &tokio::runtime::Runtime,
) -> Arc<EventStream> {
    let (stop, stopped) = watch::channel(false);
    engine.set_listener(Arc::clone(&listener));
    let handle = runtime.spawn(async move {
        run(&engine, &listener, stopped).await;
        engine.clear_listener(&listener);
    });
    Arc::new(EventStream {
        stop,
        done: Mutex::new(Some(handle)),
    })
}

/// Serialises listener calls, so the stream task and the core's resolution of a lost answer
/// (`src/outcome.rs`) never call the app at the same time.
static CALLS: Mutex<()> = Mutex::new(());

/// Calls the listener, one call at a time, never letting its exception or panic reach the
/// caller.
pub(crate) fn tell(
    listener: &dyn WalletListener,
    what: &str,
    call: impl FnOnce(&dyn WalletListener) -> Result<()>,
) {
    let _one_at_a_time = CALLS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match std::panic::catch_unwind(AssertUnwindSafe(|| call(listener))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(callback = what, error = %e, "the app's listener failed"),
        Err(_) => tracing::error!(callback = what, "the app's listener panicked"),
    }
}

async fn run(
    engine: &Arc<Engine>,
    listener: &Arc<dyn WalletListener>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut backoff = MIN_BACKOFF_MS;
    let mut server_retry: Option<u64> = None;
    loop {
        if *stopped.borrow() {
            break;
        }
        tell(listener.as_ref(), "on_connection_state", |l| {
            l.on_connection_state(ConnectionState::Connecting)
        });
        let reason = tokio::select! {
            reason = connect_and_follow(engine, listener.as_ref(), &mut backoff, &mut server_retry) => reason,
            _ = stopped.wait_for(|s| *s) => break,
        };
        let base = backoff.max(server_retry.unwrap_or(0)).min(MAX_BACKOFF_MS);
        let delay = base / 2 + u64::from(OsRng.next_u32()) % (base / 2 + 1);
        tracing::info!(reason = %reason, retry_in_ms = delay, "event stream disconnected");
        tell(listener.as_ref(), "on_connection_state", |l| {
            l.on_connection_state(ConnectionState::Disconnected {
                retry_in: Duration::from_millis(delay),
                reason: reason.to_string(),
            })
        });
        backoff = (backoff * 2).min(MAX_BACKOFF_MS);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
            _ = stopped.wait_for(|s| *s) => break,
        }
    }
    tell(listener.as_ref(), "on_connection_state", |l| {
        l.on_connection_state(ConnectionState::Stopped)
    });
}

/// One connection: redeliver what was stored but not delivered, connect, catch up (outbox,
/// pending prompts), then follow the stream until it ends. Returns why it ended.
async fn connect_and_follow(
    engine: &Arc<Engine>,
    listener: &dyn WalletListener,
    backoff: &mut u64,
    server_retry: &mut Option<u64>,
) -> WalletError {
    if let Err(e) = redeliver(engine, listener) {
        return e;
    }
    let key = match engine.registered_key() {
        Ok(key) => key,
        Err(e) => return e,
    };
    let last = match engine.db.last_event_id() {
        Ok(last) => last,
        Err(e) => return e,
    };
    let mut response = match engine.client.open_events(&key, last).await {
        Ok(response) => response,
        Err(e) => return e,
    };
    tracing::info!(after = last, "event stream connected");
    tell(listener, "on_connection_state", |l| {
        l.on_connection_state(ConnectionState::Connected)
    });
    *backoff = MIN_BACKOFF_MS;
    // Catch up before following: decisions left in the outbox, prompts missed while away.
    if let Err(e) = engine.drain_outbox().await {
        tracing::warn!(error = %e, "outbox drain failed");
    }
    match engine.fetch_prompts().await {
        Ok(prompts) => {
            for prompt in prompts {
                if engine.db.mark_announced(&prompt.prompt_id).unwrap_or(false) {
                    tell(listener, "on_prompt", |l| l.on_prompt(prompt));
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "prompt catch-up failed"),
    }
    let mut parser = SseParser::new();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return WalletError::network("the gateway closed the event stream"),
            Err(e) => {
                let url = engine.client.url("/app/events");
                return crate::client::transport_error(e, &url, crate::client::STREAM_SILENCE);
            }
        };
        let events = match parser.feed(&chunk) {
            Ok(events) => events,
            Err(e) => return WalletError::network(format!("malformed event stream: {e}")),
        };
        *server_retry = parser.retry_ms();
        for event in events {
            if let Err(e) = handle(engine, listener, event).await {
                return e;
            }
        }
    }
}

/// Stores one event (verifying a prompt first) and tells the app. A network failure while
/// verifying ends the connection without storing, so the event is fetched again on resume.
/// A verified prompt is stored, marked announced and its event marked delivered in one
/// commit before the listener is called ([`crate::db::Db::store_prompt_event`]); other events
/// are stored, told, then marked delivered (redelivered after a crash in between).
async fn handle(engine: &Engine, listener: &dyn WalletListener, event: SseEvent) -> Result<()> {
    let Some(id) = event
        .id
        .as_deref()
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id > 0)
    else {
        tracing::warn!(kind = %event.event, "event without a valid id ignored");
        return Ok(());
    };
    let session_id = serde_json::from_str::<SessionRef>(&event.data)
        .ok()
        .and_then(|r| r.session_id);
    let stored = StoredEvent {
        id,
        kind: event.event.clone(),
        session_id: session_id.clone(),
        data: event.data,
    };
    let now = engine.client.now();
    let fresh = match event.event.as_str() {
        "payment_request" => {
            let raw = serde_json::from_str::<Prompt>(&stored.data)
                .map_err(|e| WalletError::invalid(format!("prompt: {e}")))
                .and_then(RawPrompt::from_prompt);
            let verified = match &raw {
                Ok(raw) => match engine.db.prompt(&raw.session_id)? {
                    Some((known, _)) => Ok(known),
                    None => match engine.check_prompt(raw).await {
                        Ok(prompt) => Ok(prompt),
                        Err(e @ WalletError::Network { .. }) => return Err(e),
                        Err(e) => Err(e),
                    },
                },
                Err(e) => Err(e.clone()),
            };
            match verified {
                // The live path: stored, announced and delivered in one commit, then told.
                Ok(prompt) => {
                    if engine.db.store_prompt_event(&stored, &prompt, now)? == Some(true) {
                        tell(listener, "on_prompt", |l| l.on_prompt(prompt));
                    }
                    return Ok(());
                }
                Err(e) => {
                    if let Some(session_id) = &session_id {
                        engine.db.reject_prompt(session_id, &e.to_string(), now)?;
                    }
                    engine.db.store_event(&stored, None, None, now)?
                }
            }
        }
        "payment_status" => {
            let status = serde_json::from_str::<PaymentStatusEvent>(&stored.data)
                .ok()
                .map(|e| PaymentStatus::from(e.status));
            if let Some(id) = &session_id {
                fetch_unknown_receipt(engine, id).await?;
            }
            let fresh = engine.db.store_event(&stored, None, status, now)?;
            // A decision whose answer was lost may be resolved now (`src/outcome.rs`).
            engine.resolve_now.notify_waiters();
            fresh
        }
        _ => engine.db.store_event(&stored, None, None, now)?,
    };
    if fresh {
        deliver(engine, listener, &stored)?;
    }
    Ok(())
}

/// A status of a payment this device has neither a prompt nor a receipt of (money received
/// from a person, a payment made on another device): its receipt is fetched
/// (`GET /app/payments/{id}`, proof verified) and stored before the app is told, so history
/// shows it. A network failure ends the connection without storing the event (it comes again
/// on resume); any other failure is logged and the status is still told.
async fn fetch_unknown_receipt(engine: &Engine, session_id: &str) -> Result<()> {
    if engine.db.receipt(session_id)?.is_some() || engine.db.prompt(session_id)?.is_some() {
        return Ok(());
    }
    match engine.payment(session_id.to_string()).await {
        Ok(_) => Ok(()),
        Err(e @ WalletError::Network { .. }) => Err(e),
        Err(e) => {
            tracing::warn!(session_id, error = %e, "receipt of a status event not fetched");
            Ok(())
        }
    }
}

/// The `sessionId` of any event's data, read leniently (also from a malformed payload, so a
/// bad prompt can be recorded as rejected under its id).
#[derive(Deserialize)]
struct SessionRef {
    #[serde(rename = "sessionId", default)]
    session_id: Option<String>,
}

/// Hands every stored-but-undelivered event to the app (after a crash or a failed delivery).
fn redeliver(engine: &Engine, listener: &dyn WalletListener) -> Result<()> {
    for stored in engine.db.undelivered_events()? {
        deliver(engine, listener, &stored)?;
    }
    Ok(())
}

/// Tells the app about a stored event, then marks it delivered.
fn deliver(engine: &Engine, listener: &dyn WalletListener, stored: &StoredEvent) -> Result<()> {
    let session_id = stored.session_id.clone().unwrap_or_default();
    match stored.kind.as_str() {
        "payment_request" => {
            if let Some((prompt, status)) = engine.db.prompt(&session_id)? {
                if status == PaymentStatus::Pending && engine.db.mark_announced(&session_id)? {
                    tell(listener, "on_prompt", |l| l.on_prompt(prompt));
                }
            } else if let Some(reason) = engine.db.rejection(&session_id)? {
                tell(listener, "on_prompt_rejected", |l| {
                    l.on_prompt_rejected(session_id.clone(), reason)
                });
            }
        }
        "payment_status" => {
            if let Ok(event) = serde_json::from_str::<PaymentStatusEvent>(&stored.data) {
                let update = PaymentStatusUpdate {
                    session_id,
                    status: event.status.into(),
                    txid: event.txid,
                    paid_at: event.paid_at.map(time_from_unix),
                    reason: event.reason,
                    redirect_url: event.redirect_url,
                };
                // Once per session and status, also when the core resolved it first.
                if engine.db.mark_told(&update.session_id, update.status)? {
                    tell(listener, "on_payment_status", |l| {
                        l.on_payment_status(update)
                    });
                }
            }
        }
        other => tracing::debug!(kind = other, "event kind not handled"),
    }
    engine.db.mark_delivered(stored.id)
}
