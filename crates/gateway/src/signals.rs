//! Forwards the store's signals into this instance's [`EventHub`]. With many instances on one
//! PostgreSQL database, an event, webhook row or push wake-up committed by another instance is
//! announced through LISTEN/NOTIFY ([`Store::signals`](crate::store::Store::signals)); this task
//! wakes the streams of that account or the worker that sends the row, exactly as a commit in
//! this process does. When signals may have been lost (the LISTEN connection reconnected, or
//! this task fell behind the channel) it wakes every stream and both workers: each re-reads the
//! store from its own cursor, so nothing is missed and nothing is sent twice. SQLite has no
//! signals (one process; handlers wake the hub themselves) and no task is started.

use std::future::Future;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use crate::hub::EventHub;
use crate::store::StoreSignal;

/// Applies one signal to the hub: `Event` wakes that account's streams (and the push worker;
/// counted in [`EventHub::signal_wakeups`]: an event this instance committed itself comes back
/// too, after [`EventHub::notify`] woke its streams, and the second read finds nothing new),
/// `Webhook` the webhook worker, `Push` the push worker, `Resync` everything.
pub fn apply(hub: &EventHub, signal: StoreSignal) {
    match signal {
        StoreSignal::Event { account_id } => hub.notify_signalled(&account_id),
        StoreSignal::Webhook => hub.wake_webhooks(),
        StoreSignal::Push => hub.wake_push(),
        StoreSignal::Resync => hub.notify_all(),
    }
}

/// Reads `signals` until `stop` resolves (or the store closes the channel) and applies each
/// one to `hub`. A lagged receiver (signals dropped because this task fell behind) wakes
/// everything, like `Resync`.
pub async fn forward(
    mut signals: Receiver<StoreSignal>,
    hub: EventHub,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let received = tokio::select! {
            biased;
            () = &mut stop => return,
            received = signals.recv() => received,
        };
        match received {
            Ok(signal) => apply(&hub, signal),
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "fell behind the database's notifications: waking every event stream and \
                     worker to re-read the store"
                );
                hub.notify_all();
            }
            Err(RecvError::Closed) => {
                tracing::error!(
                    "the database's notification channel closed: other instances' events now \
                     reach this instance's streams only through their periodic re-read (every \
                     two heartbeats) and the workers through polling; restart this instance"
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::broadcast;

    const WAIT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn each_signal_wakes_what_it_names() {
        let hub = EventHub::default();
        let (tx, rx) = broadcast::channel(16);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(forward(rx, hub.clone(), async move {
            let _ = stop_rx.await;
        }));
        let mut a = hub.subscribe("acct_a");
        let b = hub.subscribe("acct_b");

        tx.send(StoreSignal::Event {
            account_id: "acct_a".into(),
        })
        .unwrap();
        tokio::time::timeout(WAIT, a.changed())
            .await
            .expect("an Event signal wakes its account's stream");
        assert!(!b.has_changed(), "another account's stream stays asleep");
        assert_eq!((hub.signal_wakeups(), hub.stream_wakeups()), (1, 0));
        tokio::time::timeout(WAIT, hub.push_signal().notified())
            .await
            .expect("an event wakes the push worker");

        tx.send(StoreSignal::Webhook).unwrap();
        tokio::time::timeout(WAIT, hub.webhook_signal().notified())
            .await
            .expect("a Webhook signal wakes the webhook worker");
        tx.send(StoreSignal::Push).unwrap();
        tokio::time::timeout(WAIT, hub.push_signal().notified())
            .await
            .expect("a Push signal wakes the push worker");
        assert!(!b.has_changed());

        tx.send(StoreSignal::Resync).unwrap();
        tokio::time::timeout(WAIT, a.changed())
            .await
            .expect("Resync wakes every stream");
        assert!(b.has_changed(), "Resync wakes every stream");

        stop_tx.send(()).unwrap();
        tokio::time::timeout(WAIT, task)
            .await
            .expect("the task ends when told to stop")
            .unwrap();
    }

    #[tokio::test]
    async fn a_lagged_receiver_wakes_everything_and_a_closed_channel_ends_the_task() {
        let hub = EventHub::default();
        let (tx, rx) = broadcast::channel(2);
        let a = hub.subscribe("acct_a");
        let mut b = hub.subscribe("acct_b");
        // Four signals into a channel of two: the receiver lags before it reads anything.
        for _ in 0..4 {
            tx.send(StoreSignal::Push).unwrap();
        }
        let task = tokio::spawn(forward(rx, hub.clone(), std::future::pending()));
        tokio::time::timeout(WAIT, b.changed())
            .await
            .expect("a lagged receiver wakes every stream");
        assert!(a.has_changed());
        tokio::time::timeout(WAIT, hub.webhook_signal().notified())
            .await
            .expect("a lagged receiver wakes the webhook worker");
        drop(tx);
        tokio::time::timeout(WAIT, task)
            .await
            .expect("the task ends when the store closes its channel")
            .unwrap();
    }
}
