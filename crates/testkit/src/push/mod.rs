//! Loopback fakes of the push services the gateway sends wake-ups through, strict enough to
//! catch every field the real services would refuse: FCM HTTP v1 with its OAuth2 token
//! endpoint ([`fcm`]) and APNs over HTTP/2 with token authentication ([`apns`]). This file
//! holds what the fakes share: the [`Journal`] of what they accepted and refused.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

pub mod apns;
pub mod fcm;

pub use apns::{ApnsNotification, ApnsReply, FakeApns};
pub use fcm::{FakeFcm, FcmMessage, FcmReply};

/// What a fake recorded: the requests it accepted, in arrival order, and every check that
/// failed (with why). A test asserts [`Journal::rejections`] is empty.
pub struct Journal<T> {
    state: Mutex<JournalState<T>>,
    arrived: Notify,
}

struct JournalState<T> {
    accepted: Vec<T>,
    /// How many accepted items [`Journal::next`] handed out.
    taken: usize,
    rejections: Vec<String>,
}

impl<T: Clone> Default for Journal<T> {
    fn default() -> Self {
        Journal {
            state: Mutex::new(JournalState {
                accepted: Vec::new(),
                taken: 0,
                rejections: Vec::new(),
            }),
            arrived: Notify::new(),
        }
    }
}

impl<T: Clone> Journal<T> {
    /// Records an accepted request and wakes [`Journal::next`].
    pub fn accept(&self, item: T) {
        if let Ok(mut state) = self.state.lock() {
            state.accepted.push(item);
        }
        self.arrived.notify_waiters();
    }

    /// Records a failed check.
    pub fn reject(&self, why: impl Into<String>) {
        if let Ok(mut state) = self.state.lock() {
            state.rejections.push(why.into());
        }
    }

    /// Everything accepted so far.
    pub fn accepted(&self) -> Vec<T> {
        self.state
            .lock()
            .map(|s| s.accepted.clone())
            .unwrap_or_default()
    }

    /// Every failed check so far.
    pub fn rejections(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.rejections.clone())
            .unwrap_or_default()
    }

    /// The next accepted request not yet returned by this method (in arrival order), waiting
    /// up to `timeout` for it; `None` if none arrived in time.
    pub async fn next(&self, timeout: Duration) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Created before the check: a request accepted in between still wakes it.
            let arrived = self.arrived.notified();
            {
                let mut state = self.state.lock().ok()?;
                if state.taken < state.accepted.len() {
                    let item = state.accepted[state.taken].clone();
                    state.taken += 1;
                    return Some(item);
                }
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return None;
            }
        }
    }
}
