//! The wallet's engine behind the exported `Wallet`: device registration and rotation, wallet
//! QR sessions, scanning, prompts, the confirm/decline outbox, receipts and balances. Every
//! method runs on the core's runtime; storage is written before the gateway is called
//! wherever a crash could otherwise lose a decision.

use std::sync::{Arc, RwLock};

use opencharge_protocol::canonical::canonicalize;
use opencharge_protocol::keys::VerifyOptions;
use opencharge_protocol::qr::{parse_payload, QrPayload};
use opencharge_protocol::signing::verify_proof;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::{random_id, GatewayClient, Retry};
use crate::config::WalletConfig;
use crate::db::{Db, Decision, DecisionKind, META_ACCOUNT_ID, META_DEVICE_ID};
use crate::error::{Result, WalletError};
use crate::keystore::{delete_key, load_key, save_key, DeviceKey, KeyStore, CURRENT_KEY, NEXT_KEY};
use crate::model::{
    Balance, DeviceRegistration, Inventory, InventoryItem, InventorySelection, PaymentFlow,
    PaymentPrompt, PaymentSession, PaymentStatus, Receipt, ScanResult,
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
    key_store: Arc<dyn KeyStore>,
    key: RwLock<Option<Arc<DeviceKey>>>,
    /// Serialises sending decisions, so an outbox drain and a user's confirm never race.
    decisions: tokio::sync::Mutex<()>,
}

impl Engine {
    /// Opens the database and loads (or creates and stores) the device key.
    pub(crate) fn open(config: &WalletConfig, key_store: Arc<dyn KeyStore>) -> Result<Engine> {
        let endpoint = config.validate()?;
        let dir = std::path::PathBuf::from(&config.data_dir);
        std::fs::create_dir_all(&dir).map_err(|e| WalletError::Storage {
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
        let client = GatewayClient::new(endpoint.clone(), config.request_timeout_ms)?;
        let resolver = Resolver::new(config, &endpoint);
        Ok(Engine {
            client,
            resolver,
            db,
            key_store,
            key: RwLock::new(Some(Arc::new(key))),
            decisions: tokio::sync::Mutex::new(()),
        })
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

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        retry: Retry,
    ) -> Result<Value> {
        let key = self.registered_key()?;
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.client.call(&key, method, path, bytes, retry).await
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
            let body = json!({
                "enrollmentCode": enrollment_code,
                "publicKey": key.public_key,
                "timestamp": timestamp,
                "signature": key.sign(message.as_bytes())?,
            });
            match self.client.post_unsigned("/app/devices", &body).await {
                Err(e) if e.gateway_code() == Some("TIMESTAMP_EXPIRED") && !clock_retried => {
                    clock_retried = true
                }
                other => break other?,
            }
        };
        let registration = parse_registration(&answer)?;
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
        let body = json!({"newPublicKey": next.public_key, "newKeySignature": next.sign(message.as_bytes())?});
        let bytes = body.to_string().into_bytes();
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
                let registration = parse_registration(&answer)?;
                if registration.device_id != next.device_id {
                    return Err(WalletError::crypto(
                        "the gateway returned another device id than the new key's",
                    ));
                }
                self.promote(next, &registration)?;
                Ok(registration)
            }
            // The answer may be lost after the rotation happened: ask with the new key.
            Err(e @ (WalletError::Network { .. } | WalletError::Gateway { status: 401, .. })) => {
                match self.finish_rotation_with(next).await? {
                    Some(registration) => Ok(registration),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// If a rotation was left half-done (new key stored aside), checks with the new key
    /// whether the gateway took it, and if so makes it current.
    pub(crate) async fn finish_pending_rotation(&self) -> Result<Option<DeviceRegistration>> {
        match load_key(self.key_store.as_ref(), NEXT_KEY)? {
            Some(next) => self.finish_rotation_with(Arc::new(next)).await,
            None => Ok(None),
        }
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
                let account_id = answer["accountId"].as_str().unwrap_or_default().to_string();
                let registration = DeviceRegistration {
                    device_id: next.device_id.clone(),
                    account_id,
                };
                self.promote(next, &registration)?;
                Ok(Some(registration))
            }
            Err(WalletError::Gateway { status: 401, .. }) => Ok(None),
            Err(e) => Err(e),
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
        let answer = self
            .call(Method::POST, "/app/sessions", None, Retry::Never)
            .await?;
        let session_id = string_field(&answer, "sessionId")?;
        let qr_payload = string_field(&answer, "qrText")?;
        let expires_at = answer["expiresAt"]
            .as_i64()
            .ok_or_else(|| WalletError::network("the gateway's session has no expiresAt"))?;
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
            expires_at,
        })
    }

    /// Verifies a prompt object from the gateway and stores it; returns it and whether it
    /// was new. A prompt that fails verification is recorded as rejected and returned as an
    /// error; a merchant whose metadata cannot be fetched right now is a network error (the
    /// prompt is not rejected).
    pub(crate) async fn accept_prompt(&self, value: &Value) -> Result<(PaymentPrompt, bool)> {
        let raw = RawPrompt::parse(value)?;
        if let Some((prompt, _)) = self.db.prompt(&raw.session_id)? {
            return Ok((prompt, false));
        }
        let prompt = self.check_prompt(&raw).await?;
        let new = self.db.insert_prompt(&prompt)?;
        Ok((prompt, new))
    }

    /// Accepts a prompt the app receives as a call's result (so no listener call repeats it).
    async fn accept_and_announce(&self, value: &Value) -> Result<PaymentPrompt> {
        let (prompt, _) = self.accept_prompt(value).await?;
        self.db.mark_announced(&prompt.prompt_id)?;
        Ok(prompt)
    }

    /// Verifies `raw`; records a rejection when it is the prompt itself that is bad.
    pub(crate) async fn check_prompt(&self, raw: &RawPrompt) -> Result<PaymentPrompt> {
        let merchant = self.resolver.resolve(&self.client, raw.merchant_ocid).await;
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
        let answer = self
            .call(Method::GET, "/app/prompts", None, Retry::Idempotent)
            .await?;
        let mut new = Vec::new();
        for value in answer["prompts"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            match self.accept_prompt(value).await {
                Ok((prompt, true)) => new.push(prompt),
                Ok((_, false)) => {}
                Err(e @ WalletError::Network { .. }) => return Err(e),
                Err(_) => {} // recorded as rejected
            }
        }
        Ok(new)
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
            QrPayload::OcidUri(_) => {
                return unsupported("ocid_uri", "this code names a payee but carries no signed order; ask the merchant for an order code")
            }
            QrPayload::EndUserOcid(_) => {
                return unsupported("end_user_ocid", "person-to-person transfers are not supported")
            }
            QrPayload::Checkout(link) if link.endpoint().trim_end_matches('/') != self.client.endpoint() => {
                return unsupported("checkout", "this checkout belongs to another payment gateway")
            }
            _ => {}
        }
        let answer = match self
            .call(
                Method::POST,
                "/app/scan",
                Some(json!({"text": text})),
                Retry::Never,
            )
            .await
        {
            Ok(answer) => answer,
            Err(e) if e.gateway_code() == Some("CAPABILITY_NOT_SUPPORTED") => {
                let kind = e
                    .gateway_detail("kind")
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
        match answer["kind"].as_str() {
            Some("prompt") => {
                let prompt = self.accept_and_announce(&answer["prompt"]).await?;
                Ok(ScanResult::Prompt { prompt })
            }
            Some("inventory") => Ok(ScanResult::Inventory {
                inventory: parse_inventory(&answer)?,
            }),
            _ => Err(WalletError::network(
                "the gateway's scan answer has an unknown kind",
            )),
        }
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
        let answer = self
            .call(
                Method::POST,
                &format!("/app/checkout/{id}"),
                None,
                Retry::Idempotent,
            )
            .await?;
        self.accept_and_announce(&answer).await
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
        if items
            .iter()
            .any(|i| i.quantity == 0 || i.quantity > 1_000_000)
        {
            return Err(WalletError::invalid("each quantity must be 1 to 1000000"));
        }
        let mut body = json!({
            "merchantOcid": inventory.merchant_ocid,
            "inventoryUrl": inventory.inventory_url,
            "items": items.iter().map(|i| json!({"id": i.id, "quantity": i.quantity})).collect::<Vec<_>>(),
        });
        if let Some(currency) = inventory.currency {
            body["currency"] = json!(currency);
        }
        let answer = self
            .call(
                Method::POST,
                "/app/inventory/order",
                Some(body),
                Retry::Never,
            )
            .await?;
        self.accept_and_announce(&answer).await
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
        };
        let decision = self.db.put_decision(&wanted)?;
        if decision.kind != kind {
            return Err(WalletError::invalid(format!(
                "a {} of this prompt is already on its way",
                if decision.kind == DecisionKind::Confirm {
                    "confirmation"
                } else {
                    "decline"
                }
            )));
        }
        if kind == DecisionKind::Confirm
            && decision.attempts == 0
            && prompt.expires_at <= self.client.now()
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
    /// transaction. A network failure keeps it in the outbox; a definite refusal removes it.
    async fn send(&self, decision: &Decision, prompt: &PaymentPrompt) -> Result<Receipt> {
        let key = self.registered_key()?;
        let id = &decision.session_id;
        let (path, body) = match decision.kind {
            DecisionKind::Confirm => {
                let consent = json!({
                    "sessionId": id,
                    "orderHash": prompt.order_hash,
                    "amount": prompt.amount,
                    "currency": prompt.currency,
                    "merchantOcid": prompt.merchant_ocid,
                    "deviceId": key.device_id,
                    "timestamp": self.client.now(),
                });
                let signature = key.sign(canonicalize(&consent)?.as_bytes())?;
                let body = json!({"idempotencyKey": decision.idempotency_key, "consent": consent, "signature": signature});
                (format!("/app/sessions/{id}/confirm"), body)
            }
            DecisionKind::Decline => {
                let body = match &decision.reason {
                    Some(reason) => json!({"reason": reason}),
                    None => json!({}),
                };
                (format!("/app/sessions/{id}/decline"), body)
            }
        };
        let bytes = body.to_string().into_bytes();
        match self
            .client
            .call(&key, Method::POST, &path, Some(bytes), Retry::Idempotent)
            .await
        {
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
                Ok(receipt)
            }
            Err(e) if is_transient(&e) => {
                self.db.note_attempt(id, &e.to_string())?;
                Err(e)
            }
            Err(e) => {
                self.db.remove_decision(id)?;
                if e.gateway_code() == Some("INVALID_STATE") {
                    let status = e
                        .gateway_detail("status")
                        .and_then(|s| PaymentStatus::parse(&s));
                    if let Some(status) = status.filter(|s| *s != PaymentStatus::Pending) {
                        self.db.set_prompt_status(id, status)?;
                    }
                }
                Err(e)
            }
        }
    }

    async fn receipt_from_decision(
        &self,
        answer: &Value,
        prompt: &PaymentPrompt,
        decision: &Decision,
    ) -> Receipt {
        let mut receipt = Receipt {
            session_id: prompt.prompt_id.clone(),
            flow: prompt.flow,
            status: answer["status"]
                .as_str()
                .and_then(PaymentStatus::parse)
                .unwrap_or(PaymentStatus::Pending),
            merchant_ocid: Some(prompt.merchant_ocid),
            merchant_name: prompt.merchant_name.clone(),
            order_id: Some(prompt.order_id.clone()),
            amount: Some(prompt.amount.clone()),
            currency: Some(prompt.currency.clone()),
            created_at: prompt.received_at,
            paid_at: answer["paidAt"].as_i64(),
            txid: answer["txid"].as_str().map(str::to_string),
            proof_json: None,
            proof_issuer: None,
            proof_verified: false,
            decline_reason: decision.reason.clone(),
            redirect_url: answer["redirectUrl"].as_str().map(str::to_string),
        };
        if let Some(proof) = answer.get("proof").filter(|p| p.is_object()) {
            self.attach_proof(&mut receipt, proof).await;
        }
        receipt
    }

    /// Puts the signed proof on the receipt and verifies it: the issuer's signature (key from
    /// the issuer's verified metadata) and that it pays this receipt's merchant, order, amount
    /// and currency. A proof that fails is kept with `proof_verified = false` and logged: the
    /// money has moved either way, and the app should show the receipt as unverified.
    async fn attach_proof(&self, receipt: &mut Receipt, signed: &Value) {
        receipt.proof_json = Some(signed.to_string());
        let proof = &signed["proof"];
        receipt.proof_issuer = proof["issuer"].as_u64();
        let result = async {
            let issuer = receipt
                .proof_issuer
                .ok_or_else(|| WalletError::crypto("proof without issuer"))?;
            let signature = signed["signature"].as_str().unwrap_or_default();
            let party = self.resolver.resolve(&self.client, issuer).await?;
            verify_proof(
                proof,
                signature,
                issuer,
                &party.public_key,
                VerifyOptions::STRICT,
            )?;
            let binds = proof["to"]["ocid"].as_u64() == receipt.merchant_ocid
                && proof["to"]["reference"].as_str() == receipt.order_id.as_deref()
                && proof["amount"].as_str() == receipt.amount.as_deref()
                && proof["currency"].as_str() == receipt.currency.as_deref()
                && (receipt.txid.is_none() || proof["txid"].as_str() == receipt.txid.as_deref());
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
            receipt.txid = proof["txid"].as_str().map(str::to_string);
        }
    }

    // ----- receipts and balance -------------------------------------------------------------

    /// Fetches one receipt from the gateway, verifies its proof and stores it.
    pub(crate) async fn payment(&self, id: String) -> Result<Receipt> {
        if !opencharge_protocol::auth::is_header_token(&id, 128) {
            return Err(WalletError::invalid("malformed payment id"));
        }
        let answer = self
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
            let answer = self
                .call(Method::GET, &path, None, Retry::Idempotent)
                .await?;
            let mut page_changed = 0;
            for value in answer["receipts"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let receipt = self.receipt_from_gateway(value).await?;
                if self.db.receipt(&receipt.session_id)?.as_ref() != Some(&receipt) {
                    self.db.upsert_receipt(&receipt)?;
                    page_changed += 1;
                }
            }
            changed += page_changed;
            cursor = answer["nextCursor"].as_str().map(str::to_string);
            if cursor.is_none() || page_changed == 0 {
                break;
            }
        }
        Ok(changed)
    }

    async fn receipt_from_gateway(&self, value: &Value) -> Result<Receipt> {
        let session_id = string_field(value, "sessionId")?;
        let flow = value["flow"]
            .as_str()
            .and_then(PaymentFlow::parse)
            .ok_or_else(|| WalletError::network("receipt with an unknown flow"))?;
        let status = value["status"]
            .as_str()
            .and_then(PaymentStatus::parse)
            .ok_or_else(|| WalletError::network("receipt with an unknown status"))?;
        let known = self.db.receipt(&session_id)?;
        let mut receipt = Receipt {
            session_id,
            flow,
            status,
            merchant_ocid: value["merchantOcid"].as_u64(),
            merchant_name: value["merchantName"].as_str().map(str::to_string),
            order_id: value["orderId"].as_str().map(str::to_string),
            amount: value["amount"].as_str().map(str::to_string),
            currency: value["currency"].as_str().map(str::to_string),
            created_at: value["createdAt"].as_i64().unwrap_or_default(),
            paid_at: value["paidAt"].as_i64(),
            txid: value["txid"].as_str().map(str::to_string),
            proof_json: None,
            proof_issuer: None,
            proof_verified: false,
            decline_reason: value["declineReason"].as_str().map(str::to_string),
            redirect_url: known.and_then(|k| k.redirect_url),
        };
        if let Some(proof) = value.get("proof").filter(|p| p.is_object()) {
            self.attach_proof(&mut receipt, proof).await;
        }
        Ok(receipt)
    }

    /// Balances per currency.
    pub(crate) async fn balance(&self) -> Result<Vec<Balance>> {
        let answer = self
            .call(Method::GET, "/app/balance", None, Retry::Idempotent)
            .await?;
        let mut balances = Vec::new();
        for b in answer["balances"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            balances.push(Balance {
                currency: string_field(b, "currency")?,
                amount: string_field(b, "amount")?,
            });
        }
        Ok(balances)
    }
}

/// Whether a failed decision may still have reached the gateway or may succeed later.
fn is_transient(e: &WalletError) -> bool {
    match e {
        WalletError::Network { .. } | WalletError::Cancelled => true,
        WalletError::Gateway { status, .. } => *status >= 500 || *status == 401 || *status == 429,
        _ => false,
    }
}

fn string_field(value: &Value, name: &str) -> Result<String> {
    value[name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| WalletError::network(format!("the gateway's answer lacks `{name}`")))
}

fn parse_registration(answer: &Value) -> Result<DeviceRegistration> {
    Ok(DeviceRegistration {
        device_id: string_field(answer, "deviceId")?,
        account_id: string_field(answer, "accountId")?,
    })
}

fn parse_inventory(answer: &Value) -> Result<Inventory> {
    let merchant_ocid = answer["merchantOcid"]
        .as_u64()
        .ok_or_else(|| WalletError::network("inventory without merchantOcid"))?;
    let items = answer["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|i| {
            Some(InventoryItem {
                id: i["id"].as_str()?.to_string(),
                name: i["name"].as_str().unwrap_or_default().to_string(),
                price: i["price"].as_str().map(str::to_string),
            })
        })
        .collect();
    Ok(Inventory {
        merchant_ocid,
        merchant_name: answer["merchantName"].as_str().map(str::to_string),
        merchant_icon: answer["merchantIcon"].as_str().map(str::to_string),
        inventory_url: string_field(answer, "inventoryUrl")?,
        currency: answer["currency"].as_str().map(str::to_string),
        items,
    })
}

/// Percent-escapes a cursor for a query string (cursors are `<digits>.<digits>` today).
fn url_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
