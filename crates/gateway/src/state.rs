//! Shared state of a running gateway: configuration, identity (OCID and key), storage,
//! the OCID directory, the clock, the outbound HTTP client, the event hub, and the push
//! senders with the push worker's counters, and the metrics.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::GatewayConfig;
use crate::resolver::OcidResolver;
use crate::store::Store;
use opencharge_protocol::keys::PrivateKey;

/// The hub lives in [`crate::hub`]; this path stays for existing users.
pub use crate::hub::EventHub;

/// Cheap to clone; every handler gets one.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Inner {
    /// Configuration as loaded.
    pub config: GatewayConfig,
    /// This gateway's signing key.
    pub key: PrivateKey,
    /// Its 128-hex public key.
    pub public_key_hex: String,
    /// Scheme + host + port, e.g. `http://127.0.0.1:8700`.
    pub public_base: String,
    /// `public_base` + base path: the `config.endpoint` published in metadata.
    pub endpoint: String,
    /// Durable storage.
    pub store: Arc<dyn Store>,
    /// OCID → verified metadata.
    pub resolver: Arc<dyn OcidResolver>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Wakes an account's SSE streams when it has new events, and the push and webhook
    /// workers when rows for them are committed.
    pub hub: EventHub,
    /// Outbound HTTP client (webhooks, partner transfers, merchant orders).
    pub http: reqwest::Client,
    /// Push senders (FCM, APNs) configured under `[push]`.
    pub push: crate::push::Pushers,
    /// What the push worker sent, retried, found dead and gave up (tests, metrics).
    pub push_counters: crate::push::worker::PushCounters,
    /// Held by each push worker pass, so passes (the worker's and `deliver_now`'s) never
    /// overlap and no wake-up is in flight twice.
    pub push_pass: tokio::sync::Mutex<()>,
    /// Request budgets per sender OCID and per device (`[rate_limits]`).
    pub rate_limits: crate::api::rate_limit::RateLimiters,
    /// Request, payment and event-stream metrics (served on the metrics listener).
    pub metrics: crate::ops::metrics::Metrics,
}

impl Inner {
    /// Current unix time from the configured clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Wakes the push worker at once: call it after a store call that queued push wake-ups
    /// returned `Ok` (committed). [`EventHub::notify`] already does this for new events.
    pub fn wake_push(&self) {
        self.hub.wake_push();
    }

    /// Wakes the webhook worker at once: call it after a store call that queued a webhook (a
    /// settlement) returned `Ok` (committed), so the proof is sent without waiting for the
    /// worker's interval.
    pub fn wake_webhooks(&self) {
        self.hub.wake_webhooks();
    }
}
