//! The event hub: after a store call commits, it wakes whoever must act on the new rows. An
//! account's new events wake only that account's live event streams (a registry of one
//! `watch` channel per account with open streams, dropped with its last stream); new events
//! and new webhook rows wake the push worker and the webhook worker at once, so they send
//! without waiting for their polling interval. A wake-up carries no data: streams and workers
//! read the durable store, so a missed wake-up loses nothing (the polling catches it). With
//! many instances on one PostgreSQL database the store's signals (another instance's commits)
//! arrive here too ([`crate::server`] forwards them); [`EventHub::notify_all`] wakes everything
//! when some may have been missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{watch, Notify};

/// Accounts with at least one open stream → their wake-up channel (the value counts the
/// account's wake-ups; only its changes matter).
type Registry = Mutex<HashMap<String, watch::Sender<u64>>>;

/// Fan-out of "new rows were committed" to the streams and workers that act on them. Cheap to
/// clone (every part is shared).
#[derive(Clone)]
pub struct EventHub {
    accounts: Arc<Registry>,
    /// Stream wake-ups sent since start: each [`EventHub::notify`] adds the number of open
    /// streams of its account.
    stream_wakeups: Arc<AtomicU64>,
    /// Stream wake-ups sent on the database's signals ([`EventHub::notify_signalled`],
    /// [`EventHub::notify_all`]), counted apart: with PostgreSQL every commit is also echoed
    /// back to the instance that made it, so a local event wakes its streams once through
    /// [`EventHub::notify`] and once more here (the second read finds nothing new).
    signal_wakeups: Arc<AtomicU64>,
    /// Wakes the push worker ([`crate::push::worker`]).
    push: Arc<Notify>,
    /// Wakes the webhook worker ([`crate::webhook`]).
    webhooks: Arc<Notify>,
    /// Turns `true` when the gateway stops, so open SSE streams end and shutdown can finish.
    closed: Arc<watch::Sender<bool>>,
    /// Open streams by device (the per-device cap, `limits.max_streams_per_device`).
    pub streams: crate::limits::DeviceStreams,
}

impl Default for EventHub {
    fn default() -> Self {
        let (closed, _) = watch::channel(false);
        EventHub {
            accounts: Arc::default(),
            stream_wakeups: Arc::default(),
            signal_wakeups: Arc::default(),
            push: Arc::default(),
            webhooks: Arc::default(),
            closed: Arc::new(closed),
            streams: crate::limits::DeviceStreams::default(),
        }
    }
}

impl EventHub {
    /// Says that events of `account_id` were committed: wakes the open streams of that account
    /// (and no other), and the push worker, because the store queues an event's push wake-ups
    /// in the event's own transaction. Call it only after the store call that wrote the events
    /// returned `Ok` (the rows are then committed and visible to every reader).
    pub fn notify(&self, account_id: &str) {
        self.wake_account(account_id, &self.stream_wakeups);
        self.wake_push();
    }

    /// [`EventHub::notify`] for an event the database announced (committed by another
    /// instance, or this instance's own echoed back): counted in
    /// [`EventHub::signal_wakeups`] instead of [`EventHub::stream_wakeups`].
    pub fn notify_signalled(&self, account_id: &str) {
        self.wake_account(account_id, &self.signal_wakeups);
        self.wake_push();
    }

    /// Wakes the open streams of `account_id`, adding their number to `counter`.
    fn wake_account(&self, account_id: &str, counter: &AtomicU64) {
        let accounts = lock(&self.accounts);
        if let Some(channel) = accounts.get(account_id) {
            // Counted before the send, so a woken stream never runs ahead of the count.
            let woken = channel.receiver_count() as u64;
            counter.fetch_add(woken, Ordering::Relaxed);
            channel.send_modify(|count| *count = count.wrapping_add(1));
        }
    }

    /// Wakes every open stream of every account, the push worker and the webhook worker: the
    /// answer to "rows may have been committed that nobody was told about" (another instance's
    /// notifications were missed while the database's notification channel reconnected, or
    /// this process fell behind reading them). Each woken stream re-reads the store from its
    /// cursor, so it sends exactly what it missed and nothing twice.
    /// Counted in [`EventHub::signal_wakeups`].
    pub fn notify_all(&self) {
        {
            let accounts = lock(&self.accounts);
            for channel in accounts.values() {
                let woken = channel.receiver_count() as u64;
                self.signal_wakeups.fetch_add(woken, Ordering::Relaxed);
                channel.send_modify(|count| *count = count.wrapping_add(1));
            }
        }
        self.wake_push();
        self.wake_webhooks();
    }

    /// Wakes the push worker now (it also runs every `worker_interval_ms`). A wake-up that
    /// arrives while it works makes it run once more right after.
    pub fn wake_push(&self) {
        self.push.notify_one();
    }

    /// Wakes the webhook worker now, to send the webhook rows just committed (it also runs
    /// every `worker_interval_ms`, for retries). A wake-up that arrives while it works makes it
    /// run once more right after.
    pub fn wake_webhooks(&self) {
        self.webhooks.notify_one();
    }

    /// What the push worker waits on between passes.
    pub(crate) fn push_signal(&self) -> &Notify {
        &self.push
    }

    /// What the webhook worker waits on between passes.
    pub(crate) fn webhook_signal(&self) -> &Notify {
        &self.webhooks
    }

    /// Registers a stream of `account_id`: its wake-ups from now on. Subscribe before the
    /// stream's first read of the store, so an event committed in between is not missed.
    pub fn subscribe(&self, account_id: &str) -> AccountWakeups {
        let mut accounts = lock(&self.accounts);
        let channel = accounts
            .entry(account_id.to_string())
            .or_insert_with(|| watch::channel(0).0);
        AccountWakeups {
            rx: Some(channel.subscribe()),
            account_id: account_id.to_string(),
            accounts: self.accounts.clone(),
        }
    }

    /// Accounts with at least one open stream (the registry's size; tests and metrics).
    pub fn accounts_listening(&self) -> usize {
        lock(&self.accounts).len()
    }

    /// Stream wake-ups sent since start, summed over every [`EventHub::notify`] (each wakes
    /// the open streams of one account only; tests and metrics).
    pub fn stream_wakeups(&self) -> u64 {
        self.stream_wakeups.load(Ordering::Relaxed)
    }

    /// Stream wake-ups sent on the database's signals since start
    /// ([`EventHub::notify_signalled`] and [`EventHub::notify_all`]; tests and metrics).
    pub fn signal_wakeups(&self) -> u64 {
        self.signal_wakeups.load(Ordering::Relaxed)
    }

    /// Ends every live event stream: called when the gateway stops (graceful shutdown waits
    /// for open responses, and an SSE response never finishes on its own).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// A receiver that turns `true` once [`EventHub::close`] was called.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }
}

/// The registry, even if a thread panicked while holding it (its map stays consistent: every
/// change is one insert or remove).
fn lock(accounts: &Registry) -> MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
    accounts.lock().unwrap_or_else(|e| e.into_inner())
}

/// One stream's wake-ups for its account, from [`EventHub::subscribe`]. A wake-up sent while
/// the stream is busy (reading the store) is remembered: the next [`AccountWakeups::changed`]
/// returns at once. Dropping the last one of an account removes the account from the registry.
pub struct AccountWakeups {
    /// `None` only inside `drop`.
    rx: Option<watch::Receiver<u64>>,
    account_id: String,
    accounts: Arc<Registry>,
}

impl AccountWakeups {
    /// Waits until the account was notified after the last time this returned (or after the
    /// subscription). Several notifications in between make one wake-up.
    pub async fn changed(&mut self) {
        let woke = match self.rx.as_mut() {
            Some(rx) => rx.changed().await.is_ok(),
            None => false,
        };
        if !woke {
            // The channel lives while a receiver does, so this is unreachable; never spin.
            std::future::pending::<()>().await;
        }
    }

    /// Whether a wake-up is waiting (a notification since the last [`AccountWakeups::changed`]).
    pub fn has_changed(&self) -> bool {
        self.rx
            .as_ref()
            .is_some_and(|rx| rx.has_changed().unwrap_or(false))
    }
}

impl Drop for AccountWakeups {
    fn drop(&mut self) {
        // Receivers are created and dropped only under the lock, so the count read here is
        // exact: the last stream of an account removes its entry, and a stream subscribing at
        // the same moment either finds the entry (before) or creates a new one (after).
        let mut accounts = lock(&self.accounts);
        drop(self.rx.take());
        if accounts
            .get(&self.account_id)
            .is_some_and(|channel| channel.receiver_count() == 0)
        {
            accounts.remove(&self.account_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_event_wakes_only_the_streams_of_its_account() {
        let hub = EventHub::default();
        let mut a = hub.subscribe("acct_a");
        let mut b1 = hub.subscribe("acct_b");
        let b2 = hub.subscribe("acct_b");
        assert_eq!(hub.accounts_listening(), 2);
        hub.notify("acct_b");
        assert!(
            !a.has_changed(),
            "account A's stream was woken by B's event"
        );
        assert!(b1.has_changed() && b2.has_changed());
        assert_eq!(hub.stream_wakeups(), 2);
        b1.changed().await;
        assert!(!b1.has_changed());
        hub.notify("acct_a");
        a.changed().await;
        assert_eq!(hub.stream_wakeups(), 3);
        // No stream of account C: nothing is woken, nothing is registered.
        hub.notify("acct_c");
        assert_eq!(hub.stream_wakeups(), 3);
        assert_eq!(hub.accounts_listening(), 2);
    }

    #[tokio::test]
    async fn a_wake_up_sent_while_the_stream_is_busy_is_not_lost() {
        let hub = EventHub::default();
        let mut stream = hub.subscribe("acct");
        // The stream reads the store; the event is committed and notified meanwhile.
        hub.notify("acct");
        hub.notify("acct");
        tokio::time::timeout(std::time::Duration::from_secs(10), stream.changed())
            .await
            .expect("the pending wake-up is delivered");
        // Both notifications folded into one wake-up.
        assert!(!stream.has_changed());
    }

    #[tokio::test]
    async fn the_registry_is_empty_after_a_thousand_streams_come_and_go() {
        let hub = EventHub::default();
        let mut open = Vec::new();
        for i in 0..1_000 {
            open.push(hub.subscribe(&format!("acct_{}", i % 37)));
        }
        assert_eq!(hub.accounts_listening(), 37);
        // Close them in an order unlike the opening one, notifying as they go.
        while !open.is_empty() {
            let stream = open.swap_remove(open.len() / 2);
            hub.notify(&stream.account_id);
            drop(stream);
        }
        assert_eq!(hub.accounts_listening(), 0);
        // A later subscription starts a fresh entry.
        let again = hub.subscribe("acct_1");
        assert_eq!(hub.accounts_listening(), 1);
        drop(again);
        assert_eq!(hub.accounts_listening(), 0);
    }

    #[tokio::test]
    async fn streams_opening_and_closing_on_many_threads_leave_no_entry() {
        let hub = EventHub::default();
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let hub = hub.clone();
                tokio::task::spawn_blocking(move || {
                    for i in 0..500 {
                        let account = format!("acct_{}", (t + i) % 5);
                        let stream = hub.subscribe(&account);
                        hub.notify(&account);
                        assert!(stream.has_changed());
                        drop(stream);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(hub.accounts_listening(), 0);
    }

    #[tokio::test]
    async fn notify_all_wakes_every_stream_and_both_workers() {
        let hub = EventHub::default();
        let mut streams: Vec<_> = ["acct_a", "acct_b", "acct_b", "acct_c"]
            .iter()
            .map(|account| hub.subscribe(account))
            .collect();
        hub.notify_all();
        assert!(streams.iter().all(AccountWakeups::has_changed));
        assert_eq!(hub.signal_wakeups(), 4);
        assert_eq!(hub.stream_wakeups(), 0, "counted apart from local commits");
        for stream in &mut streams {
            stream.changed().await;
            assert!(!stream.has_changed());
        }
        let wait = std::time::Duration::from_secs(10);
        tokio::time::timeout(wait, hub.webhook_signal().notified())
            .await
            .expect("notify_all wakes the webhook worker");
        tokio::time::timeout(wait, hub.push_signal().notified())
            .await
            .expect("notify_all wakes the push worker");
        // With no stream open it still wakes the workers and registers nothing.
        drop(streams);
        hub.notify_all();
        assert_eq!(hub.accounts_listening(), 0);
        assert_eq!(hub.signal_wakeups(), 4);
    }

    #[tokio::test]
    async fn a_worker_wake_up_before_the_wait_is_kept() {
        let hub = EventHub::default();
        hub.wake_webhooks();
        hub.notify("acct");
        let wait = std::time::Duration::from_secs(10);
        tokio::time::timeout(wait, hub.webhook_signal().notified())
            .await
            .expect("the webhook worker's wake-up is kept until it waits");
        tokio::time::timeout(wait, hub.push_signal().notified())
            .await
            .expect("an event wakes the push worker");
    }
}
