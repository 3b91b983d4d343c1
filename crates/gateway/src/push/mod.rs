//! Push wake-ups to wallets whose event stream is closed (phone locked, app in the
//! background): the shared types of the FCM and APNs senders and the queue worker.
//!
//! When an account gets a `payment_request` event or a final `payment_status` event, the store
//! queues one wake-up per active device of the account with a push token, in the same
//! transaction as the event (per-device collapse: a device has at most one pending wake-up;
//! a newer event replaces the one waiting). The worker ([`worker`]) sends due wake-ups through
//! the device's provider ([`PushSender`]) and records each outcome. A wake-up carries no
//! amount, merchant name or item ([`WakeUp`]): the app fetches and verifies the prompt.

pub mod fcm;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use opencharge_protocol::app::{PushEnvironment, PushKind, PushProvider};

pub mod apns;

/// One wake-up to send: what it is about, and to which token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WakeUp {
    /// `payment_request` or `payment_status`.
    pub kind: PushKind,
    /// The session (prompt) id.
    pub session_id: String,
    /// The event id in the account's event log.
    pub event_id: i64,
}

impl WakeUp {
    /// The wire form carried in FCM `data` and the APNs `opencharge` object.
    pub fn wire(&self) -> opencharge_protocol::app::PushWakeUp {
        opencharge_protocol::app::PushWakeUp {
            kind: self.kind,
            session_id: self.session_id.clone(),
            event_id: self.event_id.to_string(),
        }
    }
}

/// Where a wake-up goes: a device's registered token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// The device the token belongs to (for logs).
    pub device_id: String,
    /// The provider's token.
    pub token: String,
    /// APNs host to use (FCM: always `Production`).
    pub environment: PushEnvironment,
}

/// What one send attempt decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The provider accepted the message.
    Sent,
    /// Temporary refusal (429, 5xx, network error, expired access token): try again, no
    /// sooner than `after` when the provider said so (`Retry-After`).
    Retry {
        /// The provider's `Retry-After`, when given.
        after: Option<Duration>,
        /// What happened, for the queue's `last_error` and the logs.
        reason: String,
    },
    /// The token is dead (APNs 410 or `BadDeviceToken`, FCM `UNREGISTERED`): delete it.
    DeadToken {
        /// The provider's reason.
        reason: String,
    },
    /// Permanent failure for this message (bad request, bad credentials): give up on it.
    Fail {
        /// What happened.
        reason: String,
    },
}

/// A provider's sender (FCM HTTP v1 or APNs). Implementations never panic on a provider's
/// answer; every answer maps to a [`SendOutcome`].
#[async_trait]
pub trait PushSender: Send + Sync + 'static {
    /// Sends one wake-up to one token.
    async fn send(&self, target: &PushTarget, wake: &WakeUp) -> SendOutcome;
}

/// The configured senders. A provider without configuration has none: wake-ups for its
/// tokens are still queued (an operator may configure it later) and the worker marks them
/// `failed` with "not configured".
#[derive(Clone, Default)]
pub struct Pushers {
    /// FCM sender, when `[push.fcm]` is configured.
    pub fcm: Option<Arc<dyn PushSender>>,
    /// APNs sender, when `[push.apns]` is configured.
    pub apns: Option<Arc<dyn PushSender>>,
}

impl Pushers {
    /// Builds a sender for each configured provider: FCM on `http` (the gateway's outbound
    /// client), APNs on its own HTTP/2 client. A file that cannot be read or used stops the
    /// start with an error naming it.
    pub fn from_config(
        push: &crate::config::PushConfig,
        http: &reqwest::Client,
    ) -> Result<Pushers, PushSetupError> {
        let fcm = match &push.fcm {
            Some(config) => Some(Arc::new(fcm::FcmSender::new(
                config,
                push.max_age_secs,
                http.clone(),
            )?) as Arc<dyn PushSender>),
            None => None,
        };
        let apns =
            match &push.apns {
                Some(config) => Some(Arc::new(apns::ApnsSender::new(config, push.max_age_secs)?)
                    as Arc<dyn PushSender>),
                None => None,
            };
        Ok(Pushers { fcm, apns })
    }

    /// The sender for `provider`, if configured.
    pub fn sender(&self, provider: PushProvider) -> Option<&Arc<dyn PushSender>> {
        match provider {
            PushProvider::Fcm => self.fcm.as_ref(),
            PushProvider::Apns => self.apns.as_ref(),
        }
    }
}

/// Why a sender could not be built from its `[push.*]` table (reported at start).
#[derive(Debug, thiserror::Error)]
pub enum PushSetupError {
    /// A configured file (service account, `.p8` key, CA) cannot be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// Which file (`push.fcm.service_account_file`, ...).
        what: &'static str,
        /// Its path.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file was read but its content is unusable (not JSON, wrong key type, ...).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which file or value.
        what: &'static str,
        /// What is wrong, in words an operator can act on.
        reason: String,
    },
}
