//! The merchant's shared state (configuration, key, storage, directory, HTTP client, clock,
//! payment notifier) and the operations both the HTTP handlers and the library API use:
//! creating orders, reading them back as signed envelopes, and their public status.

use std::ops::Deref;
use std::sync::Arc;

use opencharge_protocol::keys::PrivateKey;
use opencharge_protocol::metadata::{Metadata, MetadataConfig, Settlement};
use opencharge_protocol::signing::sign_object;
use opencharge_protocol::types::{capability, MerchantOrderUrls, Order, OrderStatus, SignedOrder};
use serde_json::Value;
use tokio::sync::Notify;

use crate::client::Signer;
use crate::clock::Clock;
use crate::config::MerchantConfig;
use crate::error::MerchantError;
use crate::orders::{build_order, new_order_id, NewOrder, OrderTerms};
use crate::resolver::Resolver;
use crate::store::{Store, StoredOrder, StoredStatus};

/// The protocol version published in the metadata.
pub const PROTOCOL_VERSION: &str = "0.1";

/// What the merchant advertises: the merchant set plus `inventory.get`, and, as its own
/// Merchant Gateway for third-party settlement, `payment.create`, `payment.settle` and
/// `verify.txid`.
pub const MERCHANT_CAPABILITIES: [&str; 7] = [
    capability::ORDERS_CREATE,
    capability::ORDERS_STATUS,
    capability::TRANSFER_WEBHOOK,
    capability::INVENTORY_GET,
    capability::PAYMENT_CREATE,
    capability::PAYMENT_SETTLE,
    capability::VERIFY_TXID,
];

/// Cheaply cloneable handle on [`Inner`].
#[derive(Clone)]
pub(crate) struct AppState(pub Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Everything a running merchant shares.
pub(crate) struct Inner {
    pub config: MerchantConfig,
    pub key: PrivateKey,
    pub public_key_hex: String,
    /// Public base + base path, without a trailing `/`.
    pub endpoint: String,
    /// The signed metadata document served at `/metadata.json`.
    pub metadata: Value,
    pub store: Store,
    pub resolver: Resolver,
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
    /// Woken whenever an order becomes paid.
    pub paid: Notify,
    /// The permanent inventory QR text.
    pub inventory_qr: String,
}

impl Inner {
    /// Current unix time.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// An outbound request signer for this merchant.
    pub fn signer(&self) -> Signer<'_> {
        Signer::new(
            &self.http,
            &self.key,
            self.config.ocid,
            self.config.allow_loopback_http,
        )
    }

    /// `<endpoint>/orders/<id>`: where the signed order is served.
    pub fn order_url(&self, id: &str) -> String {
        format!("{}/orders/{id}", self.endpoint)
    }

    /// Builds, signs and stores a new pending order.
    pub fn create_order(&self, new: &NewOrder) -> Result<SignedOrder, MerchantError> {
        let id = new_order_id();
        let now = self.now();
        let terms = OrderTerms {
            ocid: self.config.ocid,
            currencies: &self.config.currencies,
            accepts: &self.config.accepts,
            ttl_secs: self.config.order_ttl_secs,
        };
        let (value, signature) = build_order(&self.key, &terms, new, &id, now)?;
        let order: Order = serde_json::from_value(value.clone())
            .map_err(|e| MerchantError::InvalidOrder(format!("built order unreadable: {e}")))?;
        self.store.insert_order(
            &id,
            &value.to_string(),
            &signature,
            &order.amount,
            &order.currency,
            order.created_at,
            order.expires_at.unwrap_or(now),
        )?;
        tracing::info!(order = %id, amount = %order.amount, currency = %order.currency, "order created");
        Ok(SignedOrder {
            order,
            signature,
            urls: Some(self.order_urls(&id)),
        })
    }

    /// The unsigned URL hints sent with an order: where it can be fetched.
    pub fn order_urls(&self, id: &str) -> MerchantOrderUrls {
        MerchantOrderUrls {
            order: vec![self.order_url(id)],
            completed: None,
            cancelled: None,
        }
    }

    /// The stored order as `{order, signature, urls}`, with the order JSON exactly as signed.
    pub fn signed_envelope(&self, stored: &StoredOrder) -> Result<Value, MerchantError> {
        let order: Value = serde_json::from_str(&stored.order_json)
            .map_err(|e| MerchantError::Store(format!("stored order {}: {e}", stored.id)))?;
        let urls = serde_json::to_value(self.order_urls(&stored.id))
            .map_err(|e| MerchantError::Store(e.to_string()))?;
        Ok(serde_json::json!({
            "order": order,
            "signature": stored.signature,
            "urls": urls,
        }))
    }
}

/// The status a party sees: a pending order past its `expiresAt` reads `expired`.
pub(crate) fn public_status(stored: &StoredOrder, now: i64) -> OrderStatus {
    match stored.status {
        StoredStatus::Paid => OrderStatus::Paid,
        StoredStatus::Cancelled => OrderStatus::Cancelled,
        StoredStatus::Pending if now > stored.expires_at => OrderStatus::Expired,
        StoredStatus::Pending => OrderStatus::Pending,
    }
}

/// The merchant's metadata document: config-nested, `config` = {publicKey, endpoint,
/// capabilities, settlement = {currencies, accepts}}, self-signed over the canonical config.
/// `accepts` is [`MerchantConfig::published_accepts`]: the gateways whose proofs pay orders,
/// then the settlement providers of third-party payments.
pub(crate) fn build_metadata(
    config: &MerchantConfig,
    key: &PrivateKey,
    endpoint: &str,
) -> Result<Value, MerchantError> {
    let metadata_config = MetadataConfig {
        public_key: key.public_key().to_hex(),
        endpoint: Some(endpoint.to_string()),
        capabilities: MERCHANT_CAPABILITIES
            .iter()
            .map(|c| (*c).to_string())
            .collect(),
        settlement: Some(Settlement {
            currencies: config.currencies.clone(),
            accepts: config.published_accepts(),
        }),
        extra: serde_json::Map::new(),
    };
    let signature = sign_object(key, &metadata_config)?;
    let metadata = Metadata {
        opencharge: PROTOCOL_VERSION.to_string(),
        name: config.name.clone(),
        profile: None,
        icon: config.icon.clone(),
        config: metadata_config,
        kyc: None,
        signature,
        contact: None,
    };
    serde_json::to_value(&metadata).map_err(|e| MerchantError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::Party;

    #[test]
    fn metadata_is_self_signed_and_resolves() {
        let config = MerchantConfig::for_tests(std::path::Path::new("."), 500, vec![200, 201]);
        let key = PrivateKey::generate();
        let doc = build_metadata(&config, &key, "http://127.0.0.1:1/opencharge").unwrap();
        let party = Party::from_metadata_bytes(500, doc.to_string().as_bytes()).unwrap();
        assert_eq!(party.public_key, key.public_key());
        assert_eq!(
            party.endpoint.as_deref(),
            Some("http://127.0.0.1:1/opencharge")
        );
        assert!(party.has_capability("orders.create"));
        assert!(party.has_capability("inventory.get"));
        for mg in ["payment.create", "payment.settle", "verify.txid"] {
            assert!(party.has_capability(mg), "{mg}");
        }
        assert_eq!(
            doc["config"]["settlement"]["accepts"],
            serde_json::json!([200, 201])
        );
        let mut with_bank = config.clone();
        with_bank.settlement_providers = Some(vec![300]);
        let doc = build_metadata(&with_bank, &key, "http://127.0.0.1:1/opencharge").unwrap();
        assert_eq!(
            doc["config"]["settlement"]["accepts"],
            serde_json::json!([200, 201, 300])
        );
        assert_eq!(doc["name"], "Test Coffee");
    }

    #[test]
    fn status_mapping() {
        let mut s = StoredOrder {
            id: "o".into(),
            order_json: "{}".into(),
            signature: String::new(),
            amount: "1.00".into(),
            currency: "USD".into(),
            created_at: 0,
            expires_at: 100,
            status: StoredStatus::Pending,
            txid: None,
            issuer: None,
            paid_at: None,
            proof_json: None,
            gateway_ocid: None,
            status_url: None,
            checkout_url: None,
        };
        assert_eq!(public_status(&s, 100), OrderStatus::Pending);
        assert_eq!(public_status(&s, 101), OrderStatus::Expired);
        s.status = StoredStatus::Cancelled;
        assert_eq!(public_status(&s, 50), OrderStatus::Cancelled);
        s.status = StoredStatus::Paid;
        assert_eq!(public_status(&s, 500), OrderStatus::Paid);
    }
}
