//! Shared state of a running gateway: configuration, identity (OCID and key), storage,
//! the OCID directory, the clock, the outbound HTTP client, the event hub, and the push
//! senders with the push worker's counters, and the metrics.

use std::sync::Arc;

use opencharge_protocol::keys::PrivateKey;
use tokio::sync::{broadcast, watch};

use crate::clock::Clock;
use crate::config::GatewayConfig;
use crate::resolver::OcidResolver;
use crate::store::Store;

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
    /// Wakes SSE streams when an account has new events.
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
}

/// Fan-out of "account X has new events" to live SSE streams. Carries no data: streams read
/// the durable log, so a missed wake-up loses nothing.
#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<String>,
    /// Turns `true` when the gateway stops, so open SSE streams end and shutdown can finish.
    closed: Arc<watch::Sender<bool>>,
    /// Open streams by device (the per-device cap, `limits.max_streams_per_device`).
    pub streams: crate::limits::DeviceStreams,
}

impl Default for EventHub {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(1024);
        let (closed, _) = watch::channel(false);
        EventHub {
            tx,
            closed: Arc::new(closed),
            streams: crate::limits::DeviceStreams::default(),
        }
    }
}

impl EventHub {
    /// Wakes the streams of `account_id`.
    pub fn notify(&self, account_id: &str) {
        // No receivers is fine: nobody is listening right now.
        let _ = self.tx.send(account_id.to_string());
    }

    /// A receiver of wake-ups (filter by account id).
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
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
