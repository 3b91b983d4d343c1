//! The library entry point: [`Merchant::start`] binds and serves the merchant's HTTP API and
//! returns a [`RunningMerchant`], whose methods create signed orders, post them to wallet
//! sessions (scanned wallet QR), present order and inventory QRs, open hosted checkouts at a
//! payment gateway, and report payments as proofs arrive on the webhook.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use opencharge_protocol::qr::InventoryQr;
use opencharge_protocol::types::{
    CheckoutCreateResponse, OrderSessionResponse, OrderStatusResponse, SignedOrder, SignedProof,
};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::client::check_outbound_url;
use crate::clock::{Clock, SystemClock};
use crate::config::{DirectoryEntry, MerchantConfig};
use crate::error::MerchantError;
use crate::operations::OrderRecord;
use crate::orders::NewOrder;
use crate::resolver::Resolver;
use crate::state::{build_metadata, AppState, Inner};
use crate::store::Store;

/// Timeout of one outbound request to a gateway.
pub const OUTBOUND_TIMEOUT: Duration = Duration::from_secs(10);

/// Entry point for starting merchants.
pub struct Merchant;

impl Merchant {
    /// Validates `config`, loads its key (`key_hex`, else the key file beside the database,
    /// created on first start), opens the database and checks that it belongs to that key and
    /// OCID ([`MerchantError::Identity`] otherwise), binds the listener and serves the API in
    /// the background, with the system clock.
    pub async fn start(config: MerchantConfig) -> Result<RunningMerchant, MerchantError> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Merchant::start`] with the given clock (tests pass an adjustable one).
    pub async fn start_with_clock(
        config: MerchantConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<RunningMerchant, MerchantError> {
        config.validate()?;
        let (key, key_source) = crate::identity::load_key(&config)?;
        let store = Store::open(&config.database)?;
        crate::identity::bind_at_start(&store, &config, &key, key_source, clock.now())?;
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let public_base = match &config.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{addr}"),
        };
        let endpoint = format!("{public_base}{}", config.base_path);
        // The endpoint goes into QR payloads: it must pass their URL rules.
        let inventory_qr = InventoryQr::new(config.ocid, &endpoint)
            .map_err(|e| MerchantError::Config(format!("endpoint {endpoint}: {e}")))?
            .to_json_string();
        let http = reqwest::Client::builder()
            .timeout(OUTBOUND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| MerchantError::Network(e.to_string()))?;
        let resolver = Resolver::new(
            &config.directory,
            http.clone(),
            config.allow_loopback_http,
            clock.clone(),
        );
        let metadata = build_metadata(&config, &key, &endpoint)?;
        let public_key_hex = key.public_key().to_hex();
        let state = AppState(Arc::new(Inner {
            config,
            key,
            public_key_hex,
            endpoint,
            metadata,
            store,
            resolver,
            http,
            clock,
            paid: Notify::new(),
            inventory_qr,
        }));
        let router = crate::router::build_router(state.clone());
        let (shutdown, mut rx) = watch::channel(false);
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "merchant server stopped with an error");
            }
        });
        tracing::info!(%addr, endpoint = %state.endpoint, ocid = state.config.ocid, "merchant started");
        Ok(RunningMerchant {
            addr,
            state,
            shutdown,
            server,
        })
    }
}

/// A merchant serving in the background. Dropping it does not stop the server; call
/// [`RunningMerchant::stop`].
pub struct RunningMerchant {
    addr: SocketAddr,
    state: AppState,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl RunningMerchant {
    /// The published `config.endpoint`: public base + base path, e.g.
    /// `http://127.0.0.1:4711/opencharge`.
    pub fn endpoint(&self) -> &str {
        &self.state.endpoint
    }

    /// `<endpoint>/metadata.json`, the URL to put in a gateway's directory.
    pub fn metadata_url(&self) -> String {
        format!("{}/metadata.json", self.state.endpoint)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The merchant's OCID.
    pub fn ocid(&self) -> u64 {
        self.state.config.ocid
    }

    /// The merchant's 128-hex public key.
    pub fn public_key_hex(&self) -> String {
        self.state.public_key_hex.clone()
    }

    /// The metadata document served at [`RunningMerchant::metadata_url`].
    pub fn metadata(&self) -> Value {
        self.state.metadata.clone()
    }

    /// Adds (or replaces) a directory entry at runtime, e.g. for a gateway started after the
    /// merchant. An entry whose URL breaks the URL rules fails at lookup time.
    pub fn add_directory_entry(&self, entry: DirectoryEntry) {
        if let Err(e) =
            check_outbound_url(&entry.metadata_url, self.state.config.allow_loopback_http)
        {
            tracing::warn!(ocid = entry.ocid, error = %e, "directory entry URL is not allowed; lookups will fail");
        }
        self.state.resolver.add(entry);
    }

    /// Builds, signs and stores an order: amount = exact items total, `accepts` =
    /// `config.accepts`, `createdAt` = now, `expiresAt` = now + `order_ttl_secs`.
    pub fn create_order(&self, new: NewOrder) -> Result<SignedOrder, MerchantError> {
        self.state.create_order(&new)
    }

    /// Cancels a pending (or expired) order so it is no longer offered; an already paid order
    /// cannot be cancelled. A proof that still arrives for it marks it paid (the money moved).
    pub fn cancel_order(&self, order_id: &str) -> Result<OrderRecord, MerchantError> {
        self.state.cancel_order(order_id)
    }

    /// The order, with its payment state, if it exists.
    pub fn order(&self, order_id: &str) -> Result<Option<OrderRecord>, MerchantError> {
        self.state.order_record(order_id)
    }

    /// Waits until the order is paid and returns it; [`MerchantError::Timeout`] after
    /// `timeout`. Woken by the webhook as soon as a proof is accepted.
    pub async fn wait_paid(
        &self,
        order_id: &str,
        timeout: Duration,
    ) -> Result<OrderRecord, MerchantError> {
        self.state.wait_paid(order_id, timeout).await
    }

    /// The third-party payment `txid` ([`crate::payments`]), if it exists.
    pub fn payment(&self, txid: &str) -> Result<Option<crate::PaymentRecord>, MerchantError> {
        match self.state.store.payment(txid)? {
            Some(stored) => crate::PaymentRecord::of(&stored, self.state.now()).map(Some),
            None => Ok(None),
        }
    }

    /// Every accepted proof, oldest first (one per distinct issuer and txid; replays are not
    /// counted again). A third-party payment of an order is here as the merchant's own proof
    /// (issuer = the merchant, txid = the payment's); the provider's proof is in
    /// [`RunningMerchant::payment`].
    pub fn proofs(&self) -> Vec<SignedProof> {
        match self.state.store.proofs() {
            Ok(rows) => rows
                .iter()
                .filter_map(|row| match serde_json::from_str::<SignedProof>(row) {
                    Ok(proof) => Some(proof),
                    Err(e) => {
                        tracing::error!(error = %e, "stored proof unreadable");
                        None
                    }
                })
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "reading proofs failed");
                Vec::new()
            }
        }
    }

    /// The merchant-order QR text for a pending order:
    /// `{"ocid":…,"order":"<endpoint>/orders/<id>","expiresAt":…}` (the order's own expiry).
    pub fn order_qr(&self, order_id: &str) -> Result<String, MerchantError> {
        self.state.order_qr(order_id)
    }

    /// The permanent inventory QR text: `{"ocid":…,"inventory":"<endpoint>/inventory","expiresAt":null}`.
    pub fn inventory_qr(&self) -> String {
        self.state.inventory_qr.clone()
    }

    /// The merchant scanned a wallet's session QR: parses it (and its expiry), resolves the
    /// gateway OCID through the directory, checks that the QR's order URL is exactly under the
    /// gateway's published endpoint, POSTs `{order, signature, urls}` with `X-OC-*` auth,
    /// verifies the answer (response signature, status URL under the endpoint) and records
    /// the submission.
    pub async fn post_to_wallet_session(
        &self,
        qr_text: &str,
        order_id: &str,
    ) -> Result<OrderSessionResponse, MerchantError> {
        self.state.post_to_wallet_session(qr_text, order_id).await
    }

    /// Polls the gateway's status URL recorded by [`RunningMerchant::post_to_wallet_session`]
    /// (signed GET). The webhook remains the authoritative signal; this is a fallback.
    pub async fn gateway_status(
        &self,
        order_id: &str,
    ) -> Result<OrderStatusResponse, MerchantError> {
        self.state.gateway_status(order_id).await
    }

    /// The merchant acting as its own Merchant Gateway: a signed `POST /checkout/create`
    /// (seed 000) at payment gateway `payment_gateway_ocid` with `{order, signature,
    /// merchantOcid, urls: {success, cancel}}`. The gateway must advertise `checkout.create`;
    /// the returned checkout URL must lie under its endpoint. The proof later arrives on this
    /// merchant's webhook.
    pub async fn create_checkout(
        &self,
        payment_gateway_ocid: u64,
        order_id: &str,
        success_url: &str,
        cancel_url: &str,
    ) -> Result<CheckoutCreateResponse, MerchantError> {
        self.state
            .create_checkout(payment_gateway_ocid, order_id, success_url, cancel_url)
            .await
    }

    /// Stops serving and waits for the server task.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
    }
}
