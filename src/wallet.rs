//! The exported `Wallet` object: the one entry point apps use. Every method that touches the
//! disk or the network is async on the core's runtime (cancel-safe: a cancelled call finishes
//! or rolls back in the background; blocking SQLite and key-store work runs on the runtime's
//! blocking threads); the few synchronous ones read memory only. Dropping the object closes
//! it. Panics never cross the FFI.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::WalletConfig;
use crate::db::DecisionKind;
use crate::engine::Engine;
use crate::error::{Result, WalletError};
use crate::events::{self, EventStream, WalletListener};
use crate::keystore::{DeviceKeyStore, FileKeyStore};
use crate::model::{
    unix_from_time, DeviceRegistration, HistoryPage, HistoryQuery, Inventory, InventorySelection,
    Money, Payee, PaymentPrompt, PaymentSession, PushEnvironment, PushEvent, PushProvider,
    PushRegistration, Receipt, ReceiveAddress, ScanResult,
};
use crate::runtime::{guard, runtime, spawn, spawn_blocking};

/// The wallet core of one app installation: device key, gateway connection, local database.
/// Open it once at start (`Wallet.open`) and keep it.
///
/// There is one way to close it: let it go. In Kotlin call `close()` (the class is
/// `AutoCloseable`, so `use {}` works; the generated `destroy()` is the same call); in Swift
/// release the last reference. Closing stops the event stream and closes the database;
/// `wipe` deletes everything and closes.
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

    /// Runs async work on the core's runtime.
    async fn run<T, F, Fut>(&self, body: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Engine>) -> Fut,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        let engine = self.engine()?;
        spawn(body(engine)).await
    }

    /// Runs blocking work (SQLite, the key store) on the core's blocking threads.
    async fn run_blocking<T, F>(&self, body: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Engine>) -> Result<T> + Send + 'static,
    {
        let engine = self.engine()?;
        spawn_blocking(move || body(engine)).await
    }

    fn stop_stream(&self) {
        if let Some(stream) = self.stream.lock().ok().and_then(|mut s| s.take()) {
            stream.stop();
        }
    }
}

// No `async_runtime`: every method hands its work to the core's own runtime (`spawn`,
// `spawn_blocking`) and only awaits the task's handle, which needs no runtime context; a
// per-method tokio compatibility wrapper would only add size to the mobile library.
#[uniffi::export]
impl Wallet {
    /// Opens the wallet: creates or opens the database in `config.dataDir`, and loads the
    /// device key from `keyStore` (or a file store under `dataDir/keys` when it is null/nil),
    /// generating and storing one on first open. Decisions left unsent by a crash are sent
    /// in the background (not with `lowMemory`: `handlePush` sends them itself). Kotlin: `Wallet.open(config)` is a `suspend fun`; Swift:
    /// `try await Wallet.open(config:keyStore:)`.
    #[uniffi::constructor(default(key_store = None))]
    pub async fn open(
        config: WalletConfig,
        key_store: Option<Arc<dyn DeviceKeyStore>>,
    ) -> Result<Arc<Wallet>> {
        let rt = guard(|| runtime(config.low_memory))?;
        let low_memory = config.low_memory;
        let (engine, registered) = spawn_blocking(move || {
            let key_store: Arc<dyn DeviceKeyStore> = match key_store {
                Some(store) => store,
                None => Arc::new(FileKeyStore::new(
                    std::path::Path::new(&config.data_dir).join("keys"),
                )?),
            };
            let engine = Engine::open(&config, key_store)?;
            let registered = engine.registration()?.is_some();
            Ok((engine, registered))
        })
        .await?;
        // In low-memory mode (a push extension) nothing may outlive the call: `handlePush`
        // finishes a rotation and drains the outbox itself.
        if registered && !low_memory {
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
    }

    /// The device's public key: 128 lowercase hex (X‖Y, no `04` prefix). Cheap: read from
    /// memory (no disk, no network), so it may be called on the UI thread.
    pub fn device_public_key(&self) -> Result<String> {
        guard(|| Ok(self.engine()?.key()?.public_key.clone()))
    }

    /// The device id (`dev_` + 32 hex) derived from the public key. Cheap: read from memory
    /// (no disk, no network), so it may be called on the UI thread.
    pub fn device_id(&self) -> Result<String> {
        guard(|| Ok(self.engine()?.key()?.device_id.clone()))
    }

    /// The registration of this device, or null/nil before `registerDevice`.
    pub async fn registration(&self) -> Result<Option<DeviceRegistration>> {
        self.run_blocking(|e| e.registration()).await
    }

    /// Exports the device's secret key as 64 hex characters, for a user-approved backup or
    /// migration. This is the only way the secret ever leaves the core; never log it.
    pub async fn export_device_key(&self) -> Result<String> {
        self.run_blocking(|e| e.export_key()).await
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

    /// Deletes the device keys and the local database and closes the wallet (later calls
    /// throw `Cancelled`). The gateway account is untouched; the device must be enrolled
    /// again.
    pub async fn wipe(&self) -> Result<()> {
        self.stop_stream();
        let engine = self.engine()?;
        if let Ok(mut slot) = self.engine.lock() {
            *slot = None;
        }
        spawn_blocking(move || engine.wipe()).await
    }

    /// Creates a wallet QR session (flow 1): show `qrPayload` as a QR code until `expiresAt`;
    /// the merchant's order then arrives as a prompt whose `promptId` is the `sessionId`.
    pub async fn create_payment_session(&self) -> Result<PaymentSession> {
        self.run(|e| async move { e.create_session().await }).await
    }

    /// Returns `session` while it has more than `minRemaining` left (on the gateway's clock),
    /// else a new one. Call it on a timer so the QR on screen never expires.
    pub async fn refresh_payment_session(
        &self,
        session: PaymentSession,
        min_remaining: Duration,
    ) -> Result<PaymentSession> {
        self.run(|e| async move {
            let remaining = unix_from_time(session.expires_at) - e.client.now();
            if remaining > i64::try_from(min_remaining.as_secs()).unwrap_or(i64::MAX) {
                Ok(session)
            } else {
                e.create_session().await
            }
        })
        .await
    }

    /// Classifies scanned text (a QR code or an opened link) and resolves it through the
    /// gateway: a verified prompt for a merchant order or checkout link, an inventory, a
    /// `Person` to pay (a receive code, or an `opencharge:` link with `gateway=`, whose amount
    /// and memo are read exactly from the scanned text), or `Unsupported` with the reason.
    /// Malformed or expired text is `InvalidInput`.
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

    /// Starts a payment to a person (a `ScanResult.Person`'s payee, or one the app built):
    /// the gateway writes and signs an order for `amount` (and `memo`, 1 to 256 bytes
    /// without control characters) to the payee's OCID; the core verifies it against the gateway's verified
    /// metadata key and checks it pays this person this amount. Returns the prompt (flow
    /// `Transfer`, `recipient` set); pay it with `confirm(promptId)` like any other. A
    /// malformed amount or memo is `InvalidInput` and nothing is sent; the gateway refuses
    /// paying oneself (`INVALID_REQUEST`), an unknown person (`ACCOUNT_NOT_FOUND`) or a
    /// gateway it cannot pay (`SETTLEMENT_NOT_SUPPORTED`, `UNKNOWN_OCID`).
    pub async fn send_to_person(
        &self,
        payee: Payee,
        amount: Money,
        memo: Option<String>,
    ) -> Result<PaymentPrompt> {
        self.run(|e| async move { e.send_to_person(payee, amount, memo).await })
            .await
    }

    /// This account's receive address: its end-user OCID at this gateway and the QR text
    /// another wallet scans to pay it (render it with `renderQrPng` or `renderQrSvg`).
    /// Money received shows in `history` as flow `Received` and is told through
    /// `onPaymentStatus`.
    pub async fn receive_address(&self) -> Result<ReceiveAddress> {
        self.run(|e| async move { e.receive_address().await }).await
    }

    /// Fetches the prompts waiting at the gateway, verifies and stores them; returns the
    /// ones new to this device. `pendingPrompts` then lists them all.
    pub async fn fetch_prompts(&self) -> Result<Vec<PaymentPrompt>> {
        self.run(|e| async move { e.fetch_prompts().await }).await
    }

    /// The verified prompts waiting for a decision, oldest first (local database, no
    /// network).
    pub async fn pending_prompts(&self) -> Result<Vec<PaymentPrompt>> {
        self.run_blocking(|e| e.pending_prompts()).await
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

    /// Handles an FCM or APNs wake-up in one call, for a Firebase messaging service or an
    /// iOS notification-service extension: sends unsent decisions, then fetches the one prompt
    /// or receipt the wake-up names, verifies it (merchant signature, gateway metadata) and
    /// stores it. Returns `PaymentRequest` (a prompt, once: the same push again, or a prompt
    /// the event stream already announced, is `NothingNew`), `PaymentStatus` (a final receipt)
    /// or `NothingNew` (nothing to show, including a session that is not this account's).
    ///
    /// `payload` is the FCM data map as a JSON object, or the whole APNs userInfo as JSON (an
    /// object with an `opencharge` key). It only names a session: nothing in it is trusted.
    /// A payload over 4096 bytes, not JSON, without `type`/`sessionId`/`eventId` or of an
    /// unknown type is `InvalidInput` and changes nothing. A prompt that fails verification
    /// is `Crypto` (and is not stored as pending). With `lowMemory` nothing keeps running in
    /// the background once this returns.
    pub async fn handle_push(&self, payload: String) -> Result<PushEvent> {
        let wake = guard(|| crate::push::parse_wake_up(&payload))?;
        self.run(|e| async move { crate::push::handle(&e, wake).await })
            .await
    }

    /// Registers the app's push token with the gateway, so prompts wake the app up while its
    /// event stream is closed (`handlePush` then fetches and verifies them). Call it with every
    /// token the platform hands out (FCM `onNewToken`, APNs
    /// `didRegisterForRemoteNotificationsWithDeviceToken` as lowercase hex); `environment` is
    /// `Sandbox` only for iOS development builds. The core remembers it and registers it again
    /// for the new device id after `rotateDeviceKey`. A malformed token (empty, longer than
    /// 4096 bytes, spaces, an APNs token that is not hex, FCM with `Sandbox`) is
    /// `InvalidInput` and nothing is sent.
    pub async fn set_push_token(
        &self,
        provider: PushProvider,
        token: String,
        environment: PushEnvironment,
    ) -> Result<PushRegistration> {
        self.run(|e| async move { e.set_push_token(provider, token, environment).await })
            .await
    }

    /// Removes this device's push token at the gateway (e.g. the user turned notifications
    /// off, or signs out): no more wake-ups. Returns whether the gateway had one.
    pub async fn clear_push_token(&self) -> Result<bool> {
        self.run(|e| async move { e.clear_push_token().await })
            .await
    }

    /// Sends decisions still waiting in the outbox now; returns how many reached the gateway.
    pub async fn sync_outbox(&self) -> Result<i32> {
        self.run(|e| async move { e.drain_outbox().await })
            .await
            .map(|sent| i32::try_from(sent).unwrap_or(i32::MAX))
    }

    /// Fetches one payment's receipt from the gateway, verifies its proof and stores it.
    pub async fn payment(&self, id: String) -> Result<Receipt> {
        self.run(|e| async move { e.payment(id).await }).await
    }

    /// Receipts from the local database, newest first (no network; `refreshHistory` pulls
    /// from the gateway).
    pub async fn history(&self, query: HistoryQuery) -> Result<HistoryPage> {
        if !(1..=200).contains(&query.limit) {
            return Err(WalletError::invalid("limit must be 1..=200"));
        }
        self.run_blocking(move |engine| {
            let limit = query.limit.unsigned_abs();
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
            let receipts = engine.db.history(limit, cursor)?;
            let next_cursor = (receipts.len() == limit as usize)
                .then(|| {
                    receipts
                        .last()
                        .map(|r| format!("{}.{}", unix_from_time(r.created_at), r.session_id))
                })
                .flatten();
            Ok(HistoryPage {
                receipts,
                next_cursor,
            })
        })
        .await
    }

    /// Pulls new and changed receipts from the gateway into the local history (up to
    /// `maxPages` pages of 100, at least 1); returns how many changed.
    pub async fn refresh_history(&self, max_pages: i32) -> Result<i32> {
        let pages = u32::try_from(max_pages)
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| WalletError::invalid("maxPages must be at least 1"))?;
        self.run(|e| async move { e.refresh_history(pages).await })
            .await
            .map(|changed| i32::try_from(changed).unwrap_or(i32::MAX))
    }

    /// The account's balances, one `Money` per currency.
    pub async fn balance(&self) -> Result<Vec<Money>> {
        self.run(|e| async move { e.balance().await }).await
    }

    /// Starts the live event stream; `listener` receives prompts, status changes and the
    /// connection state until `EventStream.stop` (or until the wallet is closed). Only one
    /// stream per wallet: starting another stops the previous one. Cheap: one small local
    /// read (is the device registered?) and the stream task is spawned; the connection is
    /// made in the background.
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
    /// Closing the wallet: stops the event stream and closes the database. Work already
    /// running in the background ends with `Cancelled`; decisions stay in the outbox.
    fn drop(&mut self) {
        self.stop_stream();
        if let Some(engine) = self.engine.get_mut().ok().and_then(Option::take) {
            engine.db.close();
        }
        tracing::info!("wallet closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WalletError;

    fn offline_config(dir: &std::path::Path) -> WalletConfig {
        let mut config = WalletConfig::new(
            "http://127.0.0.1:9/opencharge",
            dir.join("data").display().to_string(),
        );
        config.allow_insecure_loopback = true;
        config
    }

    #[tokio::test]
    async fn device_key_answers_come_from_memory_with_the_data_directory_gone() {
        let dir = tempfile::tempdir().unwrap();
        let config = offline_config(dir.path());
        let wallet = Wallet::open(config.clone(), None).await.unwrap();
        let public_key = wallet.device_public_key().unwrap();
        let device_id = wallet.device_id().unwrap();
        assert_eq!(public_key.len(), 128);
        // The database, the key files and the directory itself are gone.
        std::fs::remove_dir_all(&config.data_dir).unwrap();
        assert!(!std::path::Path::new(&config.data_dir).exists());
        assert_eq!(wallet.device_public_key().unwrap(), public_key);
        assert_eq!(wallet.device_id().unwrap(), device_id);
        assert_eq!(
            crate::keystore::device_id_of(&public_key),
            device_id,
            "the id is the public key's"
        );
    }

    #[tokio::test]
    async fn dropping_the_wallet_closes_it_and_wipe_closes_it_too() {
        let dir = tempfile::tempdir().unwrap();
        let config = offline_config(dir.path());
        let wallet = Wallet::open(config.clone(), None).await.unwrap();
        assert_eq!(wallet.registration().await.unwrap(), None);
        let first = wallet.device_id().unwrap();
        drop(wallet);
        // Reopening the same directory works (the database was closed) and keeps the key.
        let wallet = Wallet::open(config.clone(), None).await.unwrap();
        assert_eq!(wallet.device_id().unwrap(), first);
        assert!(wallet.pending_prompts().await.unwrap().is_empty());
        assert!(matches!(
            wallet
                .history(HistoryQuery {
                    limit: 0,
                    before: None
                })
                .await,
            Err(WalletError::InvalidInput { .. })
        ));
        assert!(matches!(
            wallet.refresh_history(0).await,
            Err(WalletError::InvalidInput { .. })
        ));
        wallet.wipe().await.unwrap();
        assert_eq!(wallet.device_id(), Err(WalletError::Cancelled));
        assert_eq!(wallet.registration().await, Err(WalletError::Cancelled));
        assert!(!std::path::Path::new(&config.data_dir)
            .join("wallet.sqlite3")
            .exists());
        let fresh = Wallet::open(config, None).await.unwrap();
        assert_ne!(fresh.device_id().unwrap(), first, "wipe deleted the key");
    }
}
