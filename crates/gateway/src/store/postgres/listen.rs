//! The PostgreSQL store's LISTEN task: one dedicated connection per store that listens on the
//! channels the store's transactions `pg_notify` (`opencharge_events` with the account id,
//! `opencharge_webhooks`, `opencharge_pushes`) and turns each notification into a
//! [`StoreSignal`] on a broadcast channel. A lost connection is re-established with backoff;
//! after every reconnect it sends [`StoreSignal::Resync`], since notifications sent meanwhile
//! are lost. A receiver that lags by more than [`CAPACITY`] signals gets `Lagged`, which its
//! owner treats as `Resync`.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, Config, NoTls};

use crate::store::StoreSignal;

/// Signals the broadcast channel holds for a slow receiver.
pub const CAPACITY: usize = 1024;

/// The channel of event appends (payload: the account id).
pub const EVENTS_CHANNEL: &str = "opencharge_events";
/// The channel of webhook enqueues.
pub const WEBHOOKS_CHANNEL: &str = "opencharge_webhooks";
/// The channel of push-queue inserts.
pub const PUSHES_CHANNEL: &str = "opencharge_pushes";

/// The `application_name` of the LISTEN connection.
pub const APPLICATION_NAME: &str = "opencharge-gateway-listen";

/// The first pause before a reconnect; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts the task; it runs until aborted (the store's last handle aborts it).
pub(super) fn start(
    mut config: Config,
    redacted: String,
    signals: broadcast::Sender<StoreSignal>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> tokio::task::JoinHandle<()> {
    // Named apart from the pool's connections in `pg_stat_activity`.
    config.application_name(APPLICATION_NAME);
    // An idle LISTEN connection whose peer vanished (no RST) is noticed within about a minute
    // by TCP keepalives, not after the system's two hours.
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .keepalives_interval(Duration::from_secs(10))
        .keepalives_retries(3);
    tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        let mut connected_before = false;
        let mut ready = Some(ready);
        loop {
            match listen_once(&config, &signals, connected_before, &mut ready).await {
                Ok(()) => {
                    connected_before = true;
                    backoff = FIRST_BACKOFF;
                    tracing::warn!(database = %redacted, "LISTEN connection closed; reconnecting");
                }
                Err(e) => {
                    tracing::warn!(
                        database = %redacted,
                        error = %e,
                        retry_in_ms = backoff.as_millis() as u64,
                        "LISTEN connection failed; streams on other instances' events wait for it"
                    );
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}

/// One connection's life: connect, LISTEN, forward notifications until it ends. `Ok` when an
/// established connection ended, `Err` when connecting or LISTEN failed.
async fn listen_once(
    config: &Config,
    signals: &broadcast::Sender<StoreSignal>,
    resync: bool,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), String> {
    let (client, mut connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| super::describe(&e))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx
                        .send((n.channel().to_owned(), n.payload().to_owned()))
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %super::describe(&e), "LISTEN connection error");
                    break;
                }
            }
        }
    });
    let listened = client
        .batch_execute(&format!(
            "LISTEN {EVENTS_CHANNEL}; LISTEN {WEBHOOKS_CHANNEL}; LISTEN {PUSHES_CHANNEL};"
        ))
        .await;
    if let Err(e) = listened {
        driver.abort();
        return Err(super::describe(&e));
    }
    if let Some(ready) = ready.take() {
        let _ = ready.send(());
    }
    if resync {
        // Anything sent while no connection listened is lost: every stream looks again.
        let _ = signals.send(StoreSignal::Resync);
    }
    while let Some((channel, payload)) = rx.recv().await {
        let signal = match channel.as_str() {
            EVENTS_CHANNEL => StoreSignal::Event {
                account_id: payload,
            },
            WEBHOOKS_CHANNEL => StoreSignal::Webhook,
            PUSHES_CHANNEL => StoreSignal::Push,
            _ => continue,
        };
        // No receiver is not an error: nobody is waiting right now.
        let _ = signals.send(signal);
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}
