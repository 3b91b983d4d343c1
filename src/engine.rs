//! The wallet's engine behind the exported `Wallet`: device registration and rotation, wallet
//! QR sessions, scanning, prompts, the confirm/decline outbox, receipts and balances. Every
//! method runs on the core's runtime; storage is written before the gateway is called
//! wherever a crash could otherwise lose a decision.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock, Weak};

use opencharge_protocol::app;
use opencharge_protocol::canonical::canonicalize;
use opencharge_protocol::keys::VerifyOptions;
use opencharge_protocol::qr::{parse_payload, QrPayload};
use opencharge_protocol::signing::verify_proof;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{random_id, GatewayClient, Retry};
use crate::config::WalletConfig;
use crate::db::{Db, Decision, DecisionKind, META_ACCOUNT_ID, META_DEVICE_ID};
use crate::error::{GatewayErrorCode, Result, WalletError};
use crate::events::WalletListener;
use crate::keystore::{
    delete_key, load_key, save_key, DeviceKey, DeviceKeyStore, CURRENT_KEY, NEXT_KEY,
};
use crate::model::{
    ocid_in, ocid_out, time_from_unix, unix_from_time, DeviceRegistration, Inventory,
    InventoryItem, InventorySelection, Money, Payee, PaymentFlow, PaymentPrompt, PaymentSession,
    PaymentStatus, PaymentStatusUpdate, Receipt, ReceiveAddress, ScanResult,
};
use crate::prompt::{verify, RawPrompt};
use crate::resolver::Resolver;

/// Longest decline reason the gateway accepts.
const MAX_REASON_CHARS: usize = 500;

/// Everything one wallet holds.
pub(crate) struct Engine {
    pub(crate) client: GatewayClient,
    pub(crate) resolver: Resolver,
    pub(crate) db: Db,
    key_store: Arc<dyn DeviceKeyStore>,
    key: RwLock<Option<Arc<DeviceKey>>>,
    /// Serialises sending decisions, so an outbox drain, a user's confirm and the resolution
    /// of a lost answer never race.
    pub(crate) decisions: tokio::sync::Mutex<()>,
    /// This engine, for the background tasks it starts (`src/outcome.rs`).
    pub(crate) me: Weak<Engine>,
    /// The listener of the running event stream, told about outcomes the core resolves.
    pub(crate) listener: Mutex<Option<Arc<dyn WalletListener>>>,
    /// Sessions whose lost answer a background task is resolving.
    pub(crate) resolving: Mutex<HashSet<String>>,
    /// Wakes those tasks early (the event stream reported a payment status).
    pub(crate) resolve_now: Arc<tokio::sync::Notify>,
    /// `WalletConfig.lowMemory`: start no background task that outlives a call.
    pub(crate) low_memory: bool,
}

impl Engine {
    /// Opens the database and loads (or creates and stores) the device key.
    pub(crate) fn open(
        config: &WalletConfig,
        key_store: Arc<dyn DeviceKeyStore>,
    ) -> Result<Arc<Engine>> {
        let endpoint = config.validate()?;
        // Before anything is written: bad trusted certificates or pins change nothing.
        let client = GatewayClient::new(config, endpoint.clone())?;
        let dir = std::path::PathBuf::from(&config.data_dir);
        // Owner-only (0700 on Unix): the wallet's payment history and keys live here.
        opencharge_sqlite::create_private_dir(&dir).map_err(|e| WalletError::Storage {
            reason: format!("cannot create data_dir: {e}"),
        })?;
        let db = Db::open(&dir.join("wallet.sqlite3"))?;
        let key = match load_key(key_store.as_ref(), CURRENT_KEY)? {
            Some(key) => key,
            None => {
                let key = DeviceKey::generate();
                save_key(key_store.as_ref(), CURRENT_KEY, &key)?;
                tracing::info!(device_id = %key.device_id, "created a device key");
                key
            }
        };
        let resolver = Resolver::new(config, &endpoint);
        Ok(Arc::new_cyclic(|me| Engine {
            client,
            resolver,
            db,
            key_store,
            key: RwLock::new(Some(Arc::new(key))),
            decisions: tokio::sync::Mutex::new(()),
            me: me.clone(),
            listener: Mutex::new(None),
            resolving: Mutex::new(HashSet::new()),
            resolve_now: Arc::new(tokio::sync::Notify::new()),
            low_memory: config.low_memory,
        }))
    }

    /// The current device key.
    pub(crate) fn key(&self) -> Result<Arc<DeviceKey>> {
        self.key
            .read()
            .map_err(|_| WalletError::internal("key lock poisoned"))?
            .clone()
            .ok_or(WalletError::Cancelled)
    }

    fn set_key(&self, key: Option<Arc<DeviceKey>>) -> Result<()> {
        *self
            .key
            .write()
            .map_err(|_| WalletError::internal("key lock poisoned"))? = key;
        Ok(())
    }

    /// The key, if this device is registered with the gateway.
    pub(crate) fn registered_key(&self) -> Result<Arc<DeviceKey>> {
        let key = self.key()?;
        match self.db.meta(META_DEVICE_ID)? {
            Some(id) if id == key.device_id => Ok(key),
            _ => Err(WalletError::invalid(
                "this device is not registered; call register_device first",
            )),
        }
    }

    /// The registration, if any.
    pub(crate) fn registration(&self) -> Result<Option<DeviceRegistration>> {
        let key = self.key()?;
        let device = self.db.meta(META_DEVICE_ID)?;
        let account = self.db.meta(META_ACCOUNT_ID)?;
        Ok(match (device, account) {
            (Some(device_id), Some(account_id)) if device_id == key.device_id => {
                Some(DeviceRegistration {
                    device_id,
                    account_id,
                })
            }
            _ => None,
        })
    }

    /// A signed call whose answer is the app-API type `T`; `body` is sent as JSON.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        retry: Retry,
    ) -> Result<T> {
        let key = self.registered_key()?;
        let answer = self.client.call(&key, method, path, body, retry).await?;
        parse_answer(answer, path)
    }

    // ----- device ---------------------------------------------------------------------------

    /// Registers the device key with an enrollment code (`docs/app-api.md` §3.2).
    pub(crate) async fn register(&self, enrollment_code: String) -> Result<DeviceRegistration> {
        if !opencharge_protocol::auth::is_header_token(&enrollment_code, 128) {
            return Err(WalletError::invalid(
                "enrollment code must be 1-128 characters of [A-Za-z0-9_-]",
            ));
        }
        let key = self.key()?;
        let mut clock_retried = false;
        let answer = loop {
            let timestamp = self.client.now();
            let message = format!(
                "opencharge-device-registration\n{}\n{enrollment_code}\n{timestamp}",
                key.public_key
            );
            let body = to_bytes(&app::RegisterDeviceRequest {
                enrollment_code: enrollment_code.clone(),
                public_key: key.public_key.clone(),
                timestamp,
                signature: key.sign(message.as_bytes())?,
            })?;
            match self.client.post_unsigned("/app/devices", body).await {
                Err(e)
                    if e.gateway_code() == Some(GatewayErrorCode::TimestampExpired)
                        && !clock_retried =>
                {
                    clock_retried = true
                }
                other => break other?,
            }
        };
        let registration = parse_registration(answer, "/app/devices")?;
        if registration.device_id != key.device_id {
            return Err(WalletError::crypto(
                "the gateway returned another device id than this key's",
            ));
        }
        self.db.set_meta(META_DEVICE_ID, &registration.device_id)?;
        self.db
            .set_meta(META_ACCOUNT_ID, &registration.account_id)?;
        tracing::info!(device_id = %registration.device_id, "device registered");
        Ok(registration)
    }

    /// Replaces the device key (`docs/app-api.md` §3.3): the new key is stored aside first,
    /// registered with a request signed by the old key, then becomes the current key.
    pub(crate) async fn rotate(&self) -> Result<DeviceRegistration> {
        let old = self.registered_key()?;
        let next = match load_key(self.key_store.as_ref(), NEXT_KEY)? {
            Some(next) if next.device_id != old.device_id => next,
            _ => {
                let next = DeviceKey::generate();
                save_key(self.key_store.as_ref(), NEXT_KEY, &next)?;
                next
            }
        };
        let message = format!(
            "opencharge-device-rotation\n{}\n{}",
            old.device_id, next.public_key
        );
        let bytes = to_bytes(&app::RotateDeviceRequest {
            new_public_key: next.public_key.clone(),
            new_key_signature: next.sign(message.as_bytes())?,
        })?;
        let sent = self
            .client
            .call(
                &old,
                Method::POST,
                "/app/devices/rotate",
                Some(bytes),
                Retry::Never,
            )
            .await;
        let next = Arc::new(next);
        match sent {
            Ok(answer) => {
                let registration = parse_registration(answer, "/app/devices/rotate")?;
                if registration.device_id != next.device_id {
                    return Err(WalletError::crypto(
                        "the gateway returned another device id than the new key's",
                    ));
                }
                self.promote(next, &registration)?;
                self.push_token_follows_key().await;
                Ok(registration)
            }
            // The answer may be lost after the rotation happened: ask with the new key.
            Err(
                e @ (WalletError::Network { .. }
                | WalletError::Gateway {
                    http_status: 401, ..
                }),
            ) => match self.finish_rotation_with(next).await? {
                Some(registration) => Ok(registration),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// If a rotation was left half-done (new key stored aside), checks with the new key
    /// whether the gateway took it, and if so makes it current.
    /// Either way it then re-registers a push token still registered for an older key.
    pub(crate) async fn finish_pending_rotation(&self) -> Result<Option<DeviceRegistration>> {
        let finished = match load_key(self.key_store.as_ref(), NEXT_KEY)? {
            Some(next) => self.finish_rotation_with(Arc::new(next)).await?,
            None => None,
        };
        if self.registration()?.is_some() {
            self.push_token_follows_key().await;
        }
        Ok(finished)
    }

    async fn finish_rotation_with(
        &self,
        next: Arc<DeviceKey>,
    ) -> Result<Option<DeviceRegistration>> {
        match self
            .client
            .call(&next, Method::GET, "/app/balance", None, Retry::Idempotent)
            .await
        {
            Ok(answer) => {
                // Any 200 proves the new key works; the account id is a bonus.
                let account_id = parse_answer::<app::BalanceResponse>(answer, "/app/balance")
                    .map(|b| b.account_id)
                    .unwrap_or_default();
                let registration = DeviceRegistration {
                    device_id: next.device_id.clone(),
                    account_id,
                };
                self.promote(next, &registration)?;
                self.push_token_follows_key().await;
                Ok(Some(registration))
            }
            Err(WalletError::Gateway {
                http_status: 401, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Registers the remembered push token for the new device id after a rotation. A failure
    /// does not undo the rotation: it is logged and tried again on the next open.
    async fn push_token_follows_key(&self) {
        match self.follow_push_token().await {
            Ok(Some(_)) => tracing::info!("push token registered for the rotated key"),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "push token not yet registered for the rotated key")
            }
        }
    }

    fn promote(&self, next: Arc<DeviceKey>, registration: &DeviceRegistration) -> Result<()> {
        save_key(self.key_store.as_ref(), CURRENT_KEY, &next)?;
        self.db.set_meta(META_DEVICE_ID, &registration.device_id)?;
        if !registration.account_id.is_empty() {
            self.db
                .set_meta(META_ACCOUNT_ID, &registration.account_id)?;
        }
        self.set_key(Some(next))?;
        delete_key(self.key_store.as_ref(), NEXT_KEY)?;
        tracing::info!(device_id = %registration.device_id, "device key rotated");
        Ok(())
    }

    /// Exports the current secret key as 64 hex characters (backup or migration only).
    pub(crate) fn export_key(&self) -> Result<String> {
        Ok(self.key()?.key.to_hex().to_string())
    }

    /// Deletes the keys and the database. The engine is unusable afterwards.
    pub(crate) fn wipe(&self) -> Result<()> {
        self.set_key(None)?;
        delete_key(self.key_store.as_ref(), NEXT_KEY)?;
        delete_key(self.key_store.as_ref(), CURRENT_KEY)?;
        self.db.destroy()?;
        tracing::info!("wallet wiped");
        Ok(())
    }

    // ----- sessions, scans, prompts ---------------------------------------------------------

    /// A new wallet QR session (flow 1).
    pub(crate) async fn create_session(&self) -> Result<PaymentSession> {
        let answer: app::CreateSessionResponse = self
            .call(Method::POST, "/app/sessions", None, Retry::Never)
            .await?;
        let app::CreateSessionResponse {
            session_id,
            qr_text: qr_payload,
            expires_at,
            ..
        } = answer;
        match parse_payload(&qr_payload, self.client.now())? {
            QrPayload::WalletSession(qr) if qr.session_id() == session_id => {}
            _ => {
                return Err(WalletError::network(
                    "the gateway returned a QR text that is not this session's",
                ))
            }
        }
        Ok(PaymentSession {
            session_id,
            qr_payload,
            expires_at: time_from_unix(expires_at),
        })
    }

    /// Verifies a prompt object from the gateway and stores it; returns it and whether it
    /// was new. A prompt that fails verification is recorded as rejected and returned as an
    /// error; a merchant whose metadata cannot be fetched right now is a network error (the
    /// prompt is not rejected).
    pub(crate) async fn accept_prompt(&self, prompt: app::Prompt) -> Result<(PaymentPrompt, bool)> {
        let raw = RawPrompt::from_prompt(prompt)?;
        if let Some((prompt, _)) = self.db.prompt(&raw.session_id)? {
            return Ok((prompt, false));
        }
        let prompt = self.check_prompt(&raw).await?;
        let new = self.db.insert_prompt(&prompt)?;
        Ok((prompt, new))
    }

    /// Accepts a prompt the app is handed now (a call's result, a push notification): verified
    /// unless already stored, then stored and marked announced in one commit (so no listener
    /// call or push repeats it). Returns it and whether this call announced it: false when it
    /// was announced before, is no longer pending, or has expired by the gateway's clock.
    pub(crate) async fn accept_and_announce(
        &self,
        prompt: app::Prompt,
    ) -> Result<(PaymentPrompt, bool)> {
        let raw = RawPrompt::from_prompt(prompt)?;
        let prompt = match self.db.prompt(&raw.session_id)? {
            Some((known, _)) => known,
            None => self.check_prompt(&raw).await?,
        };
        let announced = self
            .db
            .store_and_announce(&prompt, Some(self.client.now()))?;
        Ok((prompt, announced))
    }

    /// Verifies `raw`; records a rejection when it is the prompt itself that is bad.
    pub(crate) async fn check_prompt(&self, raw: &RawPrompt) -> Result<PaymentPrompt> {
        // A payment to a person is an order the wallet's own gateway wrote and signed.
        let merchant = if raw.flow == PaymentFlow::Transfer {
            self.resolver.gateway(&self.client).await
        } else {
            self.resolver.resolve(&self.client, raw.merchant_ocid).await
        };
        let merchant = match merchant {
            Ok(m) => m,
            Err(e @ WalletError::Network { .. }) => return Err(e),
            Err(e) => {
                self.reject(&raw.session_id, &e);
                return Err(e);
            }
        };
        verify(raw, &merchant, self.client.now()).inspect_err(|e| self.reject(&raw.session_id, e))
    }

    fn reject(&self, session_id: &str, error: &WalletError) {
        tracing::warn!(session_id, error = %error, "prompt rejected");
        if let Err(e) = self
            .db
            .reject_prompt(session_id, &error.to_string(), self.client.now())
        {
            tracing::error!(error = %e, "cannot record a rejected prompt");
        }
    }

    /// Fetches `GET /app/prompts` (the source of truth for what is pending) and stores every
    /// prompt that verifies. Returns the prompts that were new to this device.
    pub(crate) async fn fetch_prompts(&self) -> Result<Vec<PaymentPrompt>> {
        let answer: PromptList = self
            .call(Method::GET, "/app/prompts", None, Retry::Idempotent)
            .await?;
        let mut new = Vec::new();
        for value in answer.prompts {
            // One malformed prompt must not hide the others.
            let prompt = match serde_json::from_str::<app::Prompt>(value.get()) {
                Ok(prompt) => prompt,
                Err(e) => {
                    tracing::warn!(error = %e, "malformed prompt in GET /app/prompts skipped");
                    continue;
                }
            };
            match self.accept_prompt(prompt).await {
                Ok((prompt, true)) => new.push(prompt),
                Ok((_, false)) => {}
                Err(e @ WalletError::Network { .. }) => return Err(e),
                Err(_) => {} // recorded as rejected
            }
        }
        Ok(new)
    }

    /// Fetches `GET /app/prompts/{id}`: the one prompt a push wake-up names, not yet
    /// verified (`accept_prompt` does that).
    pub(crate) async fn fetch_prompt(&self, session_id: &str) -> Result<app::Prompt> {
        self.call(
            Method::GET,
            &format!("/app/prompts/{session_id}"),
            None,
            Retry::Idempotent,
        )
        .await
    }

    /// Prompts waiting for the user.
    pub(crate) fn pending_prompts(&self) -> Result<Vec<PaymentPrompt>> {
        self.db.pending_prompts(self.client.now())
    }

    /// Classifies scanned text and asks the gateway for what it points to.
    pub(crate) async fn scan(&self, text: String) -> Result<ScanResult> {
        let payload = match parse_payload(&text, self.client.now()) {
            Ok(payload) => payload,
            Err(opencharge_protocol::error::ProtocolError::Expired(what)) => {
                return Err(WalletError::invalid(format!(
                    "the scanned code has expired: {what}"
                )))
            }
            Err(e) => {
                return Err(WalletError::invalid(format!(
                    "not an Opencharge payment code: {e}"
                )))
            }
        };
        let unsupported = |kind: &str, reason: &str| {
            Ok(ScanResult::Unsupported {
                kind: kind.to_string(),
                reason: reason.to_string(),
            })
        };
        match &payload {
            QrPayload::WalletSession(_) => {
                return unsupported("wallet_session", "this is another wallet's payment code; it is for merchants to scan")
            }
            QrPayload::OcidUri(uri) if uri.gateway().is_none() => {
                return unsupported("ocid_uri", "this code names a payee but carries no signed order; ask the merchant for an order code")
            }
            QrPayload::Checkout(link) if link.endpoint().trim_end_matches('/') != self.client.endpoint() => {
                return unsupported("checkout", "this checkout belongs to another payment gateway")
            }
            _ => {}
        }
        let body = to_bytes(&app::ScanRequest { text })?;
        let answer: app::ScanResponse = match self
            .call(Method::POST, "/app/scan", Some(body), Retry::Never)
            .await
        {
            Ok(answer) => answer,
            Err(e) if e.gateway_code() == Some(GatewayErrorCode::CapabilityNotSupported) => {
                let kind = e
                    .gateway_details()
                    .and_then(|d| d.kind.clone())
                    .unwrap_or_else(|| "unknown".to_string());
                let WalletError::Gateway {
                    reason: message, ..
                } = e
                else {
                    return Err(e);
                };
                return Ok(ScanResult::Unsupported {
                    kind,
                    reason: message,
                });
            }
            Err(e) => return Err(e),
        };
        match answer {
            app::ScanResponse::Prompt { prompt } => {
                let (prompt, _) = self.accept_and_announce(prompt).await?;
                Ok(ScanResult::Prompt { prompt })
            }
            app::ScanResponse::Inventory(view) => Ok(ScanResult::Inventory {
                inventory: inventory_of(view)?,
            }),
            app::ScanResponse::Person { person } => Ok(ScanResult::Person {
                payee: payee_of(&payload, person)?,
            }),
        }
    }

    // ----- paying a person ------------------------------------------------------------------

    /// This account's receive address (`GET /app/receive`, `app::ReceiveResponse`); its QR
    /// text must be exactly the end-user OCID code of the OCID and gateway the answer names.
    /// Read as a JSON value: a deserializer of its own would cost the mobile library kilobytes.
    pub(crate) async fn receive_address(&self) -> Result<ReceiveAddress> {
        let answer: Value = self
            .call(Method::GET, "/app/receive", None, Retry::Idempotent)
            .await?;
        let qr = answer["qr"].as_str().unwrap_or_default();
        let (ocid, gateway) = match parse_payload(qr, self.client.now()) {
            Ok(QrPayload::EndUserOcid(code))
                if Some(code.ocid()) == answer["ocid"].as_u64()
                    && Some(code.gateway()) == answer["gateway"].as_u64() =>
            {
                (code.ocid(), code.gateway())
            }
            _ => {
                return Err(WalletError::network(
                    "the gateway's answer to /app/receive is not this account's receive code",
                ))
            }
        };
        Ok(ReceiveAddress {
            ocid: ocid_out(ocid)?,
            gateway_ocid: ocid_out(gateway)?,
            name: answer["name"].as_str().map(str::to_string),
            qr_payload: qr.to_string(),
        })
    }

    /// Asks the gateway for a prompt paying `amount` (and `memo`) to `payee`
    /// (`POST /app/transfers`), verifies it (signed by this wallet's gateway, for the payee's
    /// OCID, this amount, currency and memo, naming the payee's gateway) and stores it.
    pub(crate) async fn send_to_person(
        &self,
        payee: Payee,
        amount: Money,
        memo: Option<String>,
    ) -> Result<PaymentPrompt> {
        // The record may have been built by the app: its text is what counts, checked again.
        let checked = Money::new(&amount.amount, &amount.currency)?;
        if checked != amount || checked.minor_units <= 0 {
            return Err(WalletError::invalid(format!(
                "amount {} {} must be a positive amount whose minorUnits and exponent match it",
                amount.amount, amount.currency
            )));
        }
        if let Some(memo) = &memo {
            opencharge_protocol::qr::check_memo(memo)
                .map_err(|e| WalletError::invalid(format!("memo: {e}")))?;
        }
        // `app::TransferRequest` and `app::TransferResponse`, written and read through JSON
        // values and the prompt's own parser: new serde code would cost the mobile library
        // kilobytes.
        let mut body = serde_json::json!({
            "to": {"ocid": ocid_in(payee.ocid)?, "gateway": ocid_in(payee.gateway_ocid)?},
            "amount": checked.amount,
            "currency": checked.currency,
        });
        if let Some(memo) = &memo {
            body["memo"] = Value::from(memo.as_str());
        }
        let answer: Value = self
            .call(
                Method::POST,
                "/app/transfers",
                Some(to_bytes(&body)?),
                Retry::Never,
            )
            .await?;
        let prompt: app::Prompt = parse_answer(to_bytes(&answer["prompt"])?, "/app/transfers")?;
        // What the gateway must have written: checked on the order as received, which
        // `accept_and_announce` then verifies (our gateway's signature, `order.ocid` = the
        // prompt's recipient) before anything is stored.
        if !transfer_pays(&prompt, &payee, &checked, memo.as_deref()) {
            let error = WalletError::crypto(
                "the gateway's transfer prompt does not pay this person this amount",
            );
            self.reject(&prompt.session_id, &error);
            return Err(error);
        }
        self.accept_and_announce(prompt)
            .await
            .map(|(prompt, _)| prompt)
    }

    /// Opens a hosted checkout by link or id (flow 3).
    pub(crate) async fn open_checkout(&self, url_or_id: String) -> Result<PaymentPrompt> {
        let id = if url_or_id.starts_with("cs_") {
            url_or_id
        } else {
            match parse_payload(&url_or_id, self.client.now()) {
                Ok(QrPayload::Checkout(link))
                    if link.endpoint().trim_end_matches('/') == self.client.endpoint() =>
                {
                    link.session_id().to_string()
                }
                Ok(QrPayload::Checkout(_)) => {
                    return Err(WalletError::invalid(
                        "this checkout belongs to another payment gateway",
                    ))
                }
                _ => return Err(WalletError::invalid("not a checkout link of this gateway")),
            }
        };
        if !opencharge_protocol::auth::is_header_token(&id, 64) {
            return Err(WalletError::invalid("malformed checkout id"));
        }
        let answer: app::Prompt = self
            .call(
                Method::POST,
                &format!("/app/checkout/{id}"),
                None,
                Retry::Idempotent,
            )
            .await?;
        self.accept_and_announce(answer)
            .await
            .map(|(prompt, _)| prompt)
    }

    /// Orders picked items from a scanned inventory (flow 2).
    pub(crate) async fn order_from_inventory(
        &self,
        inventory: Inventory,
        items: Vec<InventorySelection>,
    ) -> Result<PaymentPrompt> {
        if items.is_empty() || items.len() > 500 {
            return Err(WalletError::invalid("pick 1 to 500 items"));
        }
        if items.iter().any(|i| !(1..=1_000_000).contains(&i.quantity)) {
            return Err(WalletError::invalid("each quantity must be 1 to 1000000"));
        }
        let body = to_bytes(&app::InventoryOrderRequest {
            merchant_ocid: ocid_in(inventory.merchant_ocid)?,
            inventory_url: inventory.inventory_url,
            items: items
                .into_iter()
                .map(|i| app::InventoryLine {
                    id: i.id,
                    // 1..=1000000, checked above.
                    quantity: i.quantity.unsigned_abs().into(),
                })
                .collect(),
            currency: inventory.currency,
        })?;
        let answer: app::Prompt = self
            .call(
                Method::POST,
                "/app/inventory/order",
                Some(body),
                Retry::Never,
            )
            .await?;
        self.accept_and_announce(answer)
            .await
            .map(|(prompt, _)| prompt)
    }

    // ----- decisions ------------------------------------------------------------------------

    /// Records the user's decision in the outbox, then sends it.
    pub(crate) async fn decide(
        &self,
        prompt_id: String,
        kind: DecisionKind,
        reason: Option<String>,
    ) -> Result<Receipt> {
        if let Some(reason) = &reason {
            if reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
                return Err(WalletError::invalid(
                    "reason: at most 500 characters, no control characters",
                ));
            }
        }
        self.registered_key()?;
        // The prompt's status is read under the lock, so a second tap waits for the first
        // decision and then sees its outcome instead of sending a decision of its own.
        let _guard = self.decisions.lock().await;
        let Some((prompt, status)) = self.db.prompt(&prompt_id)? else {
            return Err(match self.db.rejection(&prompt_id)? {
                Some(reason) => {
                    WalletError::crypto(format!("this prompt was rejected by the core: {reason}"))
                }
                None => WalletError::invalid("unknown prompt; fetch prompts first"),
            });
        };
        // A decision already on its way (perhaps with a lost answer) is sent again with its
        // idempotency key: it is paid or declined once, and this call learns the outcome.
        if let Some(existing) = self.db.decision(&prompt_id)? {
            if existing.kind != kind {
                return Err(already_on_its_way(existing.kind));
            }
            return self.send(&existing, &prompt).await;
        }
        if status != PaymentStatus::Pending {
            if let Some(receipt) = self.db.receipt(&prompt_id)? {
                if (receipt.status == PaymentStatus::Paid && kind == DecisionKind::Confirm)
                    || (receipt.status == PaymentStatus::Declined && kind == DecisionKind::Decline)
                {
                    return Ok(receipt);
                }
            }
            return Err(WalletError::invalid(format!(
                "the prompt is already {}",
                status.as_str()
            )));
        }
        let wanted = Decision {
            session_id: prompt_id.clone(),
            kind,
            idempotency_key: random_id(if kind == DecisionKind::Confirm {
                "confirm-"
            } else {
                "decline-"
            }),
            reason,
            created_at: self.client.now(),
            attempts: 0,
            maybe_sent: false,
        };
        let decision = self.db.put_decision(&wanted)?;
        if decision.kind != kind {
            return Err(already_on_its_way(decision.kind));
        }
        if kind == DecisionKind::Confirm
            && decision.attempts == 0
            && unix_from_time(prompt.expires_at) <= self.client.now()
        {
            self.db.remove_decision(&prompt_id)?;
            self.db
                .set_prompt_status(&prompt_id, PaymentStatus::Expired)?;
            return Err(WalletError::invalid("the prompt has expired"));
        }
        self.send(&decision, &prompt).await
    }

    /// Sends every decision still in the outbox (on open, on reconnect, on push).
    pub(crate) async fn drain_outbox(&self) -> Result<u32> {
        let _guard = self.decisions.lock().await;
        let mut sent = 0;
        for decision in self.db.pending_decisions()? {
            let Some((prompt, _)) = self.db.prompt(&decision.session_id)? else {
                self.db.remove_decision(&decision.session_id)?;
                continue;
            };
            match self.send(&decision, &prompt).await {
                Ok(_) => sent += 1,
                Err(e) => {
                    tracing::warn!(session_id = %decision.session_id, error = %e, "outbox decision not sent")
                }
            }
        }
        Ok(sent)
    }

    /// Sends one decision; on success stores the receipt and clears the outbox entry in one
    /// transaction. A failure that may be temporary keeps it in the outbox: when an attempt
    /// may have reached the gateway the result is [`WalletError::OutcomePending`] and a
    /// background task resolves it (`src/outcome.rs`); when none did, the error says the
    /// decision is saved and sent again. A definite refusal removes it.
    pub(crate) async fn send(
        &self,
        decision: &Decision,
        prompt: &PaymentPrompt,
    ) -> Result<Receipt> {
        let key = self.registered_key()?;
        let id = &decision.session_id;
        let (path, bytes) = match decision.kind {
            DecisionKind::Confirm => {
                let consent = app::Consent {
                    session_id: id.clone(),
                    order_hash: prompt.order_hash.clone(),
                    amount: prompt.total.amount.clone(),
                    currency: prompt.total.currency.clone(),
                    merchant_ocid: ocid_in(prompt.merchant_ocid)?,
                    device_id: key.device_id.clone(),
                    timestamp: self.client.now(),
                };
                let signature = key.sign(canonicalize(&to_value(&consent)?)?.as_bytes())?;
                let body = to_bytes(&app::ConfirmRequest {
                    idempotency_key: decision.idempotency_key.clone(),
                    consent,
                    signature,
                })?;
                (format!("/app/sessions/{id}/confirm"), body)
            }
            DecisionKind::Decline => {
                let body = to_bytes(&app::DeclineRequest {
                    reason: decision.reason.clone(),
                })?;
                (format!("/app/sessions/{id}/decline"), body)
            }
        };
        let sent = self.transmit(&key, id, &path, &bytes).await;
        // An answer that cannot be read counts as a lost one: the decision stays in the outbox
        // (marked as maybe sent) and its idempotent retry asks again.
        let answer = sent.and_then(|answer| match decision.kind {
            DecisionKind::Confirm => parse_answer(answer, &path).map(DecisionAnswer::Paid),
            DecisionKind::Decline => parse_answer(answer, &path).map(DecisionAnswer::Declined),
        });
        match answer {
            Ok(answer) => {
                let mut receipt = self.receipt_from_decision(&answer, prompt, decision).await;
                if receipt.status == PaymentStatus::Pending {
                    receipt.status = match decision.kind {
                        DecisionKind::Confirm => PaymentStatus::Paid,
                        DecisionKind::Decline => PaymentStatus::Declined,
                    };
                }
                self.db.finish_decision(&receipt)?;
                tracing::info!(session_id = %id, status = receipt.status.as_str(), "decision acknowledged");
                if decision.maybe_sent {
                    // The app may have been told the outcome was pending: tell it once.
                    self.announce(status_update(&receipt))?;
                }
                Ok(receipt)
            }
            Err(e) if is_transient(&e) => {
                self.db.note_attempt(id, &e.to_string())?;
                self.pending_or_saved(decision, e)
            }
            Err(e) => {
                self.db.remove_decision(id)?;
                let mut status = PaymentStatus::Pending;
                if e.gateway_code() == Some(GatewayErrorCode::InvalidState) {
                    let told = e.gateway_details().and_then(|d| d.status);
                    if let Some(told) = told.filter(|s| *s != PaymentStatus::Pending) {
                        self.db.set_prompt_status(id, told)?;
                        status = told;
                    }
                }
                if decision.maybe_sent {
                    // A pending outcome ends here: the decision did not take effect.
                    self.announce(PaymentStatusUpdate {
                        session_id: id.clone(),
                        status,
                        txid: None,
                        paid_at: None,
                        reason: Some(e.to_string()),
                        redirect_url: None,
                    })?;
                }
                Err(e)
            }
        }
    }

    async fn receipt_from_decision(
        &self,
        answer: &DecisionAnswer,
        prompt: &PaymentPrompt,
        decision: &Decision,
    ) -> Receipt {
        let (status, paid_at, txid, redirect_url, proof) = match answer {
            DecisionAnswer::Paid(paid) => (
                paid.status,
                Some(time_from_unix(paid.paid_at)),
                Some(paid.txid.clone()),
                paid.redirect_url.clone(),
                Some(&paid.proof),
            ),
            DecisionAnswer::Declined(declined) => (
                declined.status,
                None,
                None,
                declined.redirect_url.clone(),
                None,
            ),
        };
        let mut receipt = Receipt {
            session_id: prompt.prompt_id.clone(),
            flow: prompt.flow,
            status: status.into(),
            merchant_ocid: Some(prompt.merchant_ocid),
            merchant_name: prompt.merchant_name.clone(),
            order_id: Some(prompt.order_id.clone()),
            amount: Some(prompt.total.clone()),
            created_at: prompt.received_at,
            paid_at,
            txid,
            proof_json: None,
            proof_issuer: None,
            proof_verified: false,
            decline_reason: decision.reason.clone(),
            redirect_url,
        };
        if let Some(proof) = proof {
            self.attach_proof(&mut receipt, proof).await;
        }
        receipt
    }

    /// Puts the signed proof on the receipt and verifies it: the issuer's signature (key from
    /// the issuer's verified metadata) and that it pays this receipt's merchant, order, amount
    /// and currency. A proof that fails is kept with `proof_verified = false` and logged: the
    /// money has moved either way, and the app should show the receipt as unverified.
    async fn attach_proof(&self, receipt: &mut Receipt, signed: &app::ProofEnvelope) {
        receipt.proof_json = serde_json::to_string(signed).ok();
        let proof = signed.parsed();
        receipt.proof_issuer = proof
            .as_ref()
            .ok()
            .and_then(|p| i64::try_from(p.issuer).ok());
        let result = async {
            let proof = proof
                .as_ref()
                .map_err(|e| WalletError::crypto(e.to_string()))?;
            let party = self.resolver.resolve(&self.client, proof.issuer).await?;
            // The signature covers the proof exactly as the issuer sent it.
            verify_proof(
                &signed.proof,
                &signed.signature,
                proof.issuer,
                &party.public_key,
                VerifyOptions::STRICT,
            )?;
            let amount = receipt.amount.as_ref();
            // Who the proof must pay: the merchant's order; a person (the reference is then
            // the receiving side's own); or, for money received, this wallet's account at its
            // own gateway, which must have issued the proof.
            let payee = match receipt.flow {
                PaymentFlow::Received => {
                    Some(proof.issuer) == self.resolver.gateway_ocid(&self.client)
                }
                PaymentFlow::Transfer => i64::try_from(proof.to.ocid).ok() == receipt.merchant_ocid,
                _ => {
                    i64::try_from(proof.to.ocid).ok() == receipt.merchant_ocid
                        && proof.to.reference.as_deref() == receipt.order_id.as_deref()
                }
            };
            let binds = payee
                && Some(proof.amount.as_str()) == amount.map(|m| m.amount.as_str())
                && Some(proof.currency.as_str()) == amount.map(|m| m.currency.as_str())
                && (receipt.txid.is_none() || Some(proof.txid.as_str()) == receipt.txid.as_deref());
            if !binds {
                return Err(WalletError::crypto("the proof does not pay this order"));
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => receipt.proof_verified = true,
            Err(e) => {
                tracing::error!(session_id = %receipt.session_id, error = %e, "proof did not verify")
            }
        }
        if receipt.txid.is_none() {
            receipt.txid = proof.ok().map(|p| p.txid);
        }
    }

    // ----- receipts and balance -------------------------------------------------------------

    /// Fetches one receipt from the gateway, verifies its proof and stores it.
    pub(crate) async fn payment(&self, id: String) -> Result<Receipt> {
        if !opencharge_protocol::auth::is_header_token(&id, 128) {
            return Err(WalletError::invalid("malformed payment id"));
        }
        let answer: app::Receipt = self
            .call(
                Method::GET,
                &format!("/app/payments/{id}"),
                None,
                Retry::Idempotent,
            )
            .await?;
        let receipt = self.receipt_from_gateway(&answer).await?;
        self.db.upsert_receipt(&receipt)?;
        Ok(receipt)
    }

    /// Pulls the gateway's history newest first, storing receipts, until a page holds only
    /// receipts already stored unchanged (or `max_pages` pages). Returns how many changed.
    pub(crate) async fn refresh_history(&self, max_pages: u32) -> Result<u32> {
        let mut changed = 0;
        let mut cursor: Option<String> = None;
        for _ in 0..max_pages.max(1) {
            let path = match &cursor {
                Some(c) => format!("/app/history?limit=100&cursor={}", url_escape(c)),
                None => "/app/history?limit=100".to_string(),
            };
            let answer: app::HistoryResponse = self
                .call(Method::GET, &path, None, Retry::Idempotent)
                .await?;
            let mut page_changed = 0;
            for value in &answer.receipts {
                let receipt = self.receipt_from_gateway(value).await?;
                if self.db.receipt(&receipt.session_id)?.as_ref() != Some(&receipt) {
                    self.db.upsert_receipt(&receipt)?;
                    page_changed += 1;
                }
            }
            changed += page_changed;
            cursor = answer.next_cursor;
            if cursor.is_none() || page_changed == 0 {
                break;
            }
        }
        Ok(changed)
    }

    pub(crate) async fn receipt_from_gateway(&self, value: &app::Receipt) -> Result<Receipt> {
        let known = self.db.receipt(&value.session_id)?;
        let malformed = |e: WalletError| {
            WalletError::network(format!(
                "the gateway's receipt {} is malformed: {e}",
                value.session_id
            ))
        };
        let amount = match (&value.amount, &value.currency) {
            (Some(amount), Some(currency)) => {
                Some(Money::new(amount, currency).map_err(malformed)?)
            }
            _ => None,
        };
        let mut receipt = Receipt {
            session_id: value.session_id.clone(),
            flow: value.flow.into(),
            status: value.status.into(),
            merchant_ocid: value
                .merchant_ocid
                .map(ocid_out)
                .transpose()
                .map_err(malformed)?,
            merchant_name: value.merchant_name.clone().flatten(),
            order_id: value.order_id.clone(),
            amount,
            created_at: time_from_unix(value.created_at),
            paid_at: value.paid_at.map(time_from_unix),
            txid: value.txid.clone(),
            proof_json: None,
            proof_issuer: None,
            proof_verified: false,
            decline_reason: value.decline_reason.clone(),
            redirect_url: known.and_then(|k| k.redirect_url),
        };
        if let Some(proof) = &value.proof {
            self.attach_proof(&mut receipt, proof).await;
        }
        Ok(receipt)
    }

    /// Balances per currency. A balance that breaks the currency rules is a malformed answer.
    pub(crate) async fn balance(&self) -> Result<Vec<Money>> {
        let answer: app::BalanceResponse = self
            .call(Method::GET, "/app/balance", None, Retry::Idempotent)
            .await?;
        answer
            .balances
            .into_iter()
            .map(|b| {
                Money::new(&b.amount, &b.currency).map_err(|e| {
                    WalletError::network(format!(
                        "the gateway's answer to /app/balance is malformed: {e}"
                    ))
                })
            })
            .collect()
    }
}

/// Whether a failed decision may still have reached the gateway or may succeed later.
pub(crate) fn is_transient(e: &WalletError) -> bool {
    match e {
        WalletError::Network { .. } | WalletError::Cancelled => true,
        WalletError::Gateway { http_status, .. } => {
            *http_status >= 500 || *http_status == 401 || *http_status == 429
        }
        _ => false,
    }
}

/// The error for a decision of the other kind than the one already in the outbox.
fn already_on_its_way(kind: DecisionKind) -> WalletError {
    WalletError::invalid(format!(
        "a {} of this prompt is already on its way",
        if kind == DecisionKind::Confirm {
            "confirmation"
        } else {
            "decline"
        }
    ))
}

/// The listener's view of a finished receipt.
pub(crate) fn status_update(receipt: &Receipt) -> PaymentStatusUpdate {
    PaymentStatusUpdate {
        session_id: receipt.session_id.clone(),
        status: receipt.status,
        txid: receipt.txid.clone(),
        paid_at: receipt.paid_at,
        reason: receipt.decline_reason.clone(),
        redirect_url: receipt.redirect_url.clone(),
    }
}

/// The decoded answer of a confirm or a decline.
enum DecisionAnswer {
    Paid(app::ConfirmResponse),
    Declined(app::DeclineResponse),
}

/// `GET /app/prompts` read item by item, so one malformed prompt does not hide the others
/// (each item's raw JSON is then parsed as an [`app::Prompt`]).
#[derive(Deserialize)]
struct PromptList {
    prompts: Vec<Box<serde_json::value::RawValue>>,
}

/// Reads a gateway answer as the app-API type `T`. A malformed answer is a
/// [`WalletError::Network`] naming the call and serde's complaint (e.g. "missing field `txid`").
pub(crate) fn parse_answer<T: DeserializeOwned>(answer: Vec<u8>, path: &str) -> Result<T> {
    let call = path.split('?').next().unwrap_or(path);
    // From `str`, like the event stream's payloads: one deserializer per type in the library.
    let text = std::str::from_utf8(&answer).map_err(|_| {
        WalletError::network(format!("the gateway's answer to {call} is not UTF-8"))
    })?;
    serde_json::from_str(text).map_err(|e| {
        WalletError::network(format!("the gateway's answer to {call} is malformed: {e}"))
    })
}

/// An app-API body as JSON bytes.
fn to_bytes<T: Serialize>(body: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|e| WalletError::internal(e.to_string()))
}

/// An app-API body as a JSON value.
fn to_value<T: Serialize>(body: &T) -> Result<Value> {
    serde_json::to_value(body).map_err(|e| WalletError::internal(e.to_string()))
}

fn parse_registration(answer: Vec<u8>, path: &str) -> Result<DeviceRegistration> {
    let answer: app::DeviceResponse = parse_answer(answer, path)?;
    Ok(DeviceRegistration {
        device_id: answer.device_id,
        account_id: answer.account_id,
    })
}

/// The app's view of a scanned inventory. An item price that breaks the currency rules is
/// left out (logged): the catalogue is unsigned, and the order built from it is verified.
fn inventory_of(view: app::InventoryView) -> Result<Inventory> {
    let currency = view.currency;
    let items = view
        .items
        .into_iter()
        .map(|i| {
            let price = match (&i.price, &currency) {
                (Some(price), Some(currency)) => Money::new(price, currency)
                    .inspect_err(
                        |e| tracing::warn!(item = %i.id, error = %e, "inventory price left out"),
                    )
                    .ok(),
                _ => None,
            };
            InventoryItem {
                id: i.id,
                name: i.name.unwrap_or_default(),
                price,
            }
        })
        .collect();
    Ok(Inventory {
        merchant_ocid: ocid_out(view.merchant_ocid)?,
        merchant_name: view.merchant_name,
        merchant_icon: view.merchant_icon,
        inventory_url: view.inventory_url,
        currency,
        items,
    })
}

/// Whether the gateway's `prompt` (before verification) is a transfer paying exactly `amount`
/// with `memo` to `payee` at the payee's gateway: the order's own `amount`, `currency` and
/// `memo`, which verification then proves our gateway signed for `order.ocid` = the recipient.
fn transfer_pays(prompt: &app::Prompt, payee: &Payee, amount: &Money, memo: Option<&str>) -> bool {
    let text = |key: &str| prompt.order.get(key).and_then(Value::as_str);
    prompt.flow == app::Flow::Transfer
        && ocid_in(payee.ocid).ok() == Some(prompt.merchant_ocid)
        && prompt.recipient.as_ref().map(|r| (r.ocid, r.gateway))
            == Some((
                prompt.merchant_ocid,
                ocid_in(payee.gateway_ocid).unwrap_or(u64::MAX),
            ))
        && text("amount") == Some(amount.amount.as_str())
        && text("currency") == Some(amount.currency.as_str())
        && text("memo") == memo
}

/// The app's view of a scanned person: who and which gateway as scanned, the amount and memo
/// exactly as the scanned text has them (never the gateway's copy), the names from the
/// gateway's answer, which must name the same person and gateway.
fn payee_of(scanned: &QrPayload, view: app::PersonView) -> Result<Payee> {
    let (ocid, gateway, amount, memo) = match scanned {
        QrPayload::EndUserOcid(qr) => (qr.ocid(), qr.gateway(), None, None),
        QrPayload::OcidUri(uri) => (
            uri.ocid(),
            uri.gateway().unwrap_or_default(),
            match (uri.amount(), uri.currency()) {
                (Some(amount), Some(currency)) => {
                    Some(Money::new(amount.as_str(), currency.code())?)
                }
                _ => None,
            },
            uri.memo().map(str::to_string),
        ),
        _ => (0, 0, None, None),
    };
    if (view.ocid, view.gateway) != (ocid, gateway) || ocid == 0 {
        return Err(WalletError::network(
            "the gateway's answer to /app/scan names another person than the scanned code",
        ));
    }
    Ok(Payee {
        ocid: ocid_out(ocid)?,
        gateway_ocid: ocid_out(gateway)?,
        gateway_name: view.gateway_name,
        name: view.name,
        amount,
        memo,
    })
}

/// Percent-escapes a cursor for a query string (cursors are `<digits>.<digits>` today).
fn url_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_malformed_answer_is_a_network_error_naming_the_field() {
        let err = parse_answer::<app::ConfirmResponse>(
            json!({"status": "paid", "sessionId": "s", "paidAt": 1,
                   "proof": {"proof": {}, "signature": "x"}})
            .to_string()
            .into_bytes(),
            "/app/sessions/s/confirm",
        )
        .unwrap_err();
        assert!(matches!(err, WalletError::Network { .. }), "{err}");
        assert!(err.to_string().contains("missing field `txid`"), "{err}");
        assert!(err.to_string().contains("/app/sessions/s/confirm"), "{err}");
        let err = parse_answer::<app::HistoryResponse>(
            json!({"nextCursor": null}).to_string().into_bytes(),
            "/app/history?limit=1",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("missing field `receipts`"), "{err}");
        assert!(!err.contains("limit=1"), "{err}");
        // Unknown fields are ignored.
        let balance: app::BalanceResponse = parse_answer(
            json!({"accountId": "a", "balances": [], "tier": "gold"})
                .to_string()
                .into_bytes(),
            "/app/balance",
        )
        .unwrap();
        assert_eq!(balance.account_id, "a");
    }

    #[test]
    fn a_transfer_prompt_must_pay_the_person_amount_and_memo_asked_for() {
        let prompt = |edit: &dyn Fn(&mut Value)| {
            let mut v = json!({
                "type": "payment_request", "sessionId": "s1", "flow": "transfer",
                "merchantOcid": 200001, "signature": "sig", "orderHash": "h", "expiresAt": 9,
                "order": {"id": "p2p_1", "ocid": 200001, "amount": "5.00", "currency": "USD",
                          "memo": "lunch", "createdAt": 1, "expiresAt": 9},
                "recipient": {"ocid": 200001, "name": "Bob", "gateway": 300, "gatewayName": null}
            });
            edit(&mut v);
            serde_json::from_value::<app::Prompt>(v).unwrap()
        };
        let payee = Payee {
            ocid: 200_001,
            gateway_ocid: 300,
            gateway_name: None,
            name: None,
            amount: None,
            memo: None,
        };
        let five = Money::new("5.00", "USD").unwrap();
        assert!(transfer_pays(
            &prompt(&|_| {}),
            &payee,
            &five,
            Some("lunch")
        ));
        // Each way a gateway could pay something else than what the user asked for.
        let edits: [&dyn Fn(&mut Value); 8] = [
            &|v| v["order"]["amount"] = json!("50.00"),
            &|v| v["order"]["currency"] = json!("EUR"),
            &|v| v["order"]["memo"] = json!("rent"),
            &|v| v["merchantOcid"] = json!(200002),
            &|v| v["recipient"]["gateway"] = json!(301),
            &|v| v["recipient"]["ocid"] = json!(200002),
            &|v| v["flow"] = json!("merchant_qr"),
            &|v| {
                v.as_object_mut().unwrap().remove("recipient");
            },
        ];
        for (i, edit) in edits.iter().enumerate() {
            assert!(
                !transfer_pays(&prompt(*edit), &payee, &five, Some("lunch")),
                "edit {i}"
            );
        }
        // A memo the user did not write, or none when they did.
        assert!(!transfer_pays(&prompt(&|_| {}), &payee, &five, None));
        let no_memo = prompt(&|v| {
            v["order"].as_object_mut().unwrap().remove("memo");
        });
        assert!(!transfer_pays(&no_memo, &payee, &five, Some("lunch")));
        assert!(transfer_pays(&no_memo, &payee, &five, None));
    }

    #[test]
    fn a_deeply_nested_answer_is_an_error_not_a_stack_overflow() {
        // serde_json's recursion limit (128) must stay on for answers from the network: a
        // hostile gateway must get an error, not a stack overflow that kills the app.
        // The merchant's order inside a prompt is kept as raw JSON, so any nesting reaches it.
        for open in ["[", "{\"a\":"] {
            let answer = format!(
                r#"{{"type":"payment_request","order":{}"#,
                open.repeat(200_000)
            );
            let err = parse_answer::<app::Prompt>(answer.into_bytes(), "/app/prompts").unwrap_err();
            assert!(matches!(err, WalletError::Network { .. }), "{err}");
            assert!(err.to_string().contains("recursion limit"), "{err}");
        }
        let err = parse_answer::<app::BalanceResponse>(vec![0xff, b'{'], "/app/balance")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not UTF-8"), "{err}");
    }
}
