//! The exported `Wallet` object: the one entry point apps use. Network methods are async on the
//! core's runtime (cancel-safe: a cancelled call finishes or rolls back in the background);
//! local reads are synchronous. Panics never cross the FFI.

use std::sync::{Arc, Mutex};

use crate::config::WalletConfig;
use crate::db::DecisionKind;
use crate::engine::Engine;
use crate::error::{Result, WalletError};
use crate::events::{self, EventStream, WalletListener};
use crate::keystore::{FileKeyStore, KeyStore};
use crate::model::{
    Balance, DeviceRegistration, HistoryPage, HistoryQuery, Inventory, InventorySelection,
    PaymentPrompt, PaymentSession, Receipt, ScanResult,
};
use crate::runtime::{guard, runtime, spawn};

/// The wallet core of one app installation: device key, gateway connection, local database.
/// Open it once at start (`Wallet.open`) and keep it; close it (or let it go) at exit.
#[derive(uniffi::Object)]
pub struct Wallet {
    engine: Mutex<Option<Arc<Engine>>>,
    stream: Mutex<Option<Arc<EventStream>>>,
}

impl Wallet {
    fn engine(&self) -> Result<Arc<Engine>> {
        self.engine
            .lock()
            .map_err(|_| WalletError::internal("wallet lock poisoned"))?
            .clone()
            .ok_or(WalletError::Cancelled)
    }

    async fn run<T, F, Fut>(&self, body: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Engine>) -> Fut,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        let engine = self.engine()?;
        spawn(body(engine)).await
    }

    fn stop_stream(&self) {
        if let Some(stream) = self.stream.lock().ok().and_then(|mut s| s.take()) {
            stream.stop();
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Wallet {
    /// Opens the wallet: creates or opens the database in `config.data_dir`, and loads the
    /// device key from `key_store` (or a file store under `data_dir/keys` when absent),
    /// generating and storing one on first open. Decisions left unsent by a crash are sent
    /// in the background.
    #[uniffi::constructor]
    pub fn open(config: WalletConfig, key_store: Option<Arc<dyn KeyStore>>) -> Result<Arc<Wallet>> {
        guard(|| {
            let rt = runtime(config.low_memory)?;
            let key_store: Arc<dyn KeyStore> = match key_store {
                Some(store) => store,
                None => Arc::new(FileKeyStore::new(
                    std::path::Path::new(&config.data_dir).join("keys"),
                )?),
            };
            let engine = Engine::open(&config, key_store)?;
            if engine.registration()?.is_some() {
                let background = Arc::clone(&engine);
                rt.spawn(async move {
                    if let Err(e) = background.finish_pending_rotation().await {
                        tracing::warn!(error = %e, "pending key rotation not finished");
                    }
                    if let Err(e) = background.drain_outbox().await {
                        tracing::warn!(error = %e, "outbox drain on open failed");
                    }
                });
            }
            tracing::info!("wallet opened");
            Ok(Arc::new(Wallet {
                engine: Mutex::new(Some(engine)),
                stream: Mutex::new(None),
            }))
        })
    }

    /// The device's public key: 128 lowercase hex (X‖Y, no `04` prefix).
    pub fn device_public_key(&self) -> Result<String> {
        guard(|| Ok(self.engine()?.key()?.public_key.clone()))
    }

    /// The device id (`dev_` + 32 hex) derived from the public key.
    pub fn device_id(&self) -> Result<String> {
        guard(|| Ok(self.engine()?.key()?.device_id.clone()))
    }

    /// The registration of this device, or `null`/`nil` before `register_device`.
    pub fn registration(&self) -> Result<Option<DeviceRegistration>> {
        guard(|| self.engine()?.registration())
    }

    /// Exports the device's secret key as 64 hex characters, for a user-approved backup or
    /// migration. This is the only way the secret ever leaves the core; never log it.
    pub fn export_device_key(&self) -> Result<String> {
        guard(|| self.engine()?.export_key())
    }

    /// Registers the device key with the gateway using a one-time enrollment code from the
    /// wallet operator. Idempotent for the same code.
    pub async fn register_device(&self, enrollment_code: String) -> Result<DeviceRegistration> {
        self.run(|e| async move { e.register(enrollment_code).await })
            .await
    }

    /// Replaces the device key: a new key is generated, registered with a request signed by
    /// the old one, and becomes current. Safe to retry after a network error.
    pub async fn rotate_device_key(&self) -> Result<DeviceRegistration> {
        self.run(|e| async move { e.rotate().await }).await
    }

    /// Deletes the device keys and the local database and closes the wallet. The gateway
    /// account is untouched; the device must be enrolled again.
    pub fn wipe(&self) -> Result<()> {
        guard(|| {
            self.stop_stream();
            let engine = self.engine()?;
            if let Ok(mut slot) = self.engine.lock() {
                *slot = None;
            }
            engine.wipe()
        })
    }

    /// Stops the event stream and closes the database. Later calls fail with `Cancelled`.
    pub fn shutdown(&self) {
        self.stop_stream();
        if let Some(engine) = self.engine.lock().ok().and_then(|mut e| e.take()) {
            engine.db.close();
        }
    }

    /// Creates a wallet QR session (flow 1): show `qr_payload` as a QR code until
    /// `expires_at`; the merchant's order then arrives as a prompt with id `session_id`.
    pub async fn create_payment_session(&self) -> Result<PaymentSession> {
        self.run(|e| async move { e.create_session().await }).await
    }

    /// Returns `session` while it has more than `min_remaining_secs` left, else a new one.
    /// Call it on a timer so the QR on screen never expires.
    pub async fn refresh_payment_session(
        &self,
        session: PaymentSession,
        min_remaining_secs: u64,
    ) -> Result<PaymentSession> {
        self.run(|e| async move {
            let remaining = session.expires_at - e.client.now();
            if remaining > i64::try_from(min_remaining_secs).unwrap_or(i64::MAX) {
                Ok(session)
            } else {
                e.create_session().await
            }
        })
        .await
    }

    /// Classifies scanned text (a QR code or an opened link) and resolves it through the
    /// gateway: a verified prompt for a merchant order or checkout link, an inventory, or
    /// `Unsupported` with the reason. Malformed or expired text is `InvalidInput`.
    pub async fn scan(&self, text: String) -> Result<ScanResult> {
        self.run(|e| async move { e.scan(text).await }).await
    }

    /// Opens a hosted checkout (flow 3) from its link (`<gateway>/checkout/cs_…`, also the
    /// app's deep link) or its id; returns the verified prompt.
    pub async fn open_checkout(&self, url_or_id: String) -> Result<PaymentPrompt> {
        self.run(|e| async move { e.open_checkout(url_or_id).await })
            .await
    }

    /// Orders the picked items of a scanned inventory; returns the verified prompt.
    pub async fn order_from_inventory(
        &self,
        inventory: Inventory,
        items: Vec<InventorySelection>,
    ) -> Result<PaymentPrompt> {
        self.run(|e| async move { e.order_from_inventory(inventory, items).await })
            .await
    }

    /// Fetches the prompts waiting at the gateway, verifies and stores them; returns the
    /// ones new to this device. `pending_prompts` then lists them all.
    pub async fn fetch_prompts(&self) -> Result<Vec<PaymentPrompt>> {
        self.run(|e| async move { e.fetch_prompts().await }).await
    }

    /// The verified prompts waiting for a decision, oldest first (local, no network).
    pub fn pending_prompts(&self) -> Result<Vec<PaymentPrompt>> {
        guard(|| self.engine()?.pending_prompts())
    }

    /// Pays a prompt. The decision is written to the database before the request, so a crash
    /// or a lost answer is retried safely with the same idempotency key; the result is the
    /// receipt with the gateway's verified proof. Confirming twice returns the same receipt
    /// and never pays twice.
    ///
    /// Failures: `Network` means the payment was not sent (no connection); it is saved and
    /// sent automatically when the gateway can be reached (`syncOutbox`, next open, reconnect,
    /// push). `OutcomePending` means it was sent but the answer was lost: show "pending", never
    /// "failed"; the core asks the gateway by itself, stores the receipt (`payment`,
    /// `history`) and tells the `WalletListener` through `onPaymentStatus` once, and a later
    /// `confirm` returns the receipt once known.
    pub async fn confirm(&self, prompt_id: String) -> Result<Receipt> {
        self.run(|e| async move { e.decide(prompt_id, DecisionKind::Confirm, None).await })
            .await
    }

    /// Refuses a prompt, with an optional reason (at most 500 characters) for the merchant.
    /// Fails like `confirm`: `Network` (not sent, saved, sent later) or `OutcomePending`
    /// (sent, answer lost, resolved by the core and told through `onPaymentStatus`).
    pub async fn decline(&self, prompt_id: String, reason: Option<String>) -> Result<Receipt> {
        self.run(|e| async move { e.decide(prompt_id, DecisionKind::Decline, reason).await })
            .await
    }

    /// For an FCM or APNs wake-up: sends unsent decisions and fetches pending prompts; returns
    /// the prompts not yet shown to the app (each is returned once), e.g. for a notification.
    /// `payload` is the push's data as JSON text; its content is not trusted (everything is
    /// fetched and verified).
    pub async fn handle_push(&self, payload: String) -> Result<Vec<PaymentPrompt>> {
        if payload.len() > 4096 {
            return Err(WalletError::invalid("push payload larger than 4096 bytes"));
        }
        self.run(|e| async move {
            if let Err(err) = e.drain_outbox().await {
                tracing::warn!(error = %err, "outbox drain on push failed");
            }
            e.fetch_prompts().await?;
            let mut fresh = Vec::new();
            for prompt in e.pending_prompts()? {
                if e.db.mark_announced(&prompt.prompt_id)? {
                    fresh.push(prompt);
                }
            }
            Ok(fresh)
        })
        .await
    }

    /// Sends decisions still waiting in the outbox now; returns how many reached the gateway.
    pub async fn sync_outbox(&self) -> Result<u32> {
        self.run(|e| async move { e.drain_outbox().await }).await
    }

    /// Fetches one payment's receipt from the gateway, verifies its proof and stores it.
    pub async fn payment(&self, id: String) -> Result<Receipt> {
        self.run(|e| async move { e.payment(id).await }).await
    }

    /// Receipts from the local database, newest first (no network; see `refresh_history`).
    pub fn history(&self, query: HistoryQuery) -> Result<HistoryPage> {
        guard(|| {
            if !(1..=200).contains(&query.limit) {
                return Err(WalletError::invalid("limit must be 1..=200"));
            }
            let cursor = match &query.before {
                None => None,
                Some(c) => {
                    let (at, id) = c
                        .split_once('.')
                        .ok_or_else(|| WalletError::invalid("malformed cursor"))?;
                    Some((
                        at.parse::<i64>()
                            .map_err(|_| WalletError::invalid("malformed cursor"))?,
                        id.to_string(),
                    ))
                }
            };
            let receipts = self.engine()?.db.history(query.limit, cursor)?;
            let next_cursor = (receipts.len() == query.limit as usize)
                .then(|| {
                    receipts
                        .last()
                        .map(|r| format!("{}.{}", r.created_at, r.session_id))
                })
                .flatten();
            Ok(HistoryPage {
                receipts,
                next_cursor,
            })
        })
    }

    /// Pulls new and changed receipts from the gateway into the local history (up to
    /// `max_pages` pages of 100); returns how many changed.
    pub async fn refresh_history(&self, max_pages: u32) -> Result<u32> {
        self.run(|e| async move { e.refresh_history(max_pages).await })
            .await
    }

    /// The account's balances per currency (exact decimal strings).
    pub async fn balance(&self) -> Result<Vec<Balance>> {
        self.run(|e| async move { e.balance().await }).await
    }

    /// Starts the live event stream; `listener` receives prompts, status changes and the
    /// connection state until `EventStream.stop` (or `close`). Only one stream per wallet:
    /// starting another stops the previous one.
    pub fn start_events(&self, listener: Arc<dyn WalletListener>) -> Result<Arc<EventStream>> {
        guard(|| {
            let engine = self.engine()?;
            engine.registered_key()?;
            self.stop_stream();
            let stream = events::start(engine, listener, runtime(false)?);
            if let Ok(mut slot) = self.stream.lock() {
                *slot = Some(Arc::clone(&stream));
            }
            Ok(stream)
        })
    }
}

impl Drop for Wallet {
    fn drop(&mut self) {
        self.stop_stream();
    }
}
