//! The gateway's OCID directory: turns an OCID into a verified [`Party`] (name, public key,
//! endpoint, capabilities, settlement terms). Sources, in order: the gateway itself, the static
//! directory of the configuration (inline metadata or a metadata URL), then a metadata URL
//! template for any other OCID. Fetching, caching and verification are
//! [`opencharge_peer::resolver`] (re-exported here); this module builds the directory from the
//! [`GatewayConfig`] and publishes the gateway's own metadata.

use std::sync::Arc;

use async_trait::async_trait;
use opencharge_protocol::keys::PrivateKey;
use opencharge_protocol::metadata::{Metadata, MetadataConfig, Settlement};
use opencharge_protocol::signing::sign_object;
use opencharge_protocol::types::capability::{PAYMENT_GATEWAY_CAPABILITIES, VERIFY_TXID};
use serde_json::Value;

pub use opencharge_peer::resolver::{
    metadata_document_url, Directory, OcidResolver, Party, ResolveError, StaticResolver,
    METADATA_CACHE_SECS, METADATA_FETCH_TIMEOUT,
};

use crate::clock::Clock;
use crate::config::GatewayConfig;
use opencharge_peer::client::check_outbound_url;

/// The protocol version this gateway publishes in its metadata.
pub const PROTOCOL_VERSION: &str = "0.1";

/// The gateway's resolver: its own identity, the configured static directory, and an
/// optional metadata URL template (`{ocid}` is replaced) for every other OCID.
///
/// HTTP fetch rules ([`Directory`]): 5 s timeout, at most 64 KiB, HTTPS only (plain HTTP only
/// to loopback hosts when `allow_loopback_http`), redirects not followed, cached for
/// [`METADATA_CACHE_SECS`] by the clock, config signature verified before the key is used,
/// unsigned flat layout rejected. A URL whose path does not end in `.json` is treated as an
/// API endpoint and gets `/metadata.json` appended (protocol notes §7 row 17). Failed lookups
/// are not cached. The `http` client given to [`DirectoryResolver::new`] must not follow
/// redirects (the server builds it with `redirect::Policy::none()`); a 3xx answer is then
/// reported as unavailable metadata.
pub struct DirectoryResolver {
    own: Option<Party>,
    directory: Directory,
}

impl DirectoryResolver {
    /// Builds the resolver from the configuration. Inline metadata is parsed and its config
    /// signature verified now, and metadata URLs are checked against the URL rules: any
    /// invalid entry is a startup error ([`ResolveError::Invalid`]).
    pub fn new(
        config: &GatewayConfig,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ResolveError> {
        let directory = Directory::new(http, config.allow_loopback_http, clock);
        for entry in &config.directory {
            let replaced = match (&entry.metadata, &entry.metadata_url) {
                (Some(metadata), None) => {
                    let bytes = serde_json::to_vec(metadata).map_err(|e| {
                        ResolveError::Invalid(format!("directory entry {}: {e}", entry.ocid))
                    })?;
                    directory.insert_party(Party::from_metadata_bytes(entry.ocid, &bytes)?)
                }
                (None, Some(url)) => {
                    let url = metadata_document_url(url);
                    check_outbound_url(&url, config.allow_loopback_http).map_err(|e| {
                        ResolveError::Invalid(format!("directory entry {}: {e}", entry.ocid))
                    })?;
                    directory.insert_url(entry.ocid, &url)
                }
                _ => {
                    return Err(ResolveError::Invalid(format!(
                        "directory entry {} needs exactly one of `metadata` or `metadata_url`",
                        entry.ocid
                    )))
                }
            };
            if replaced {
                return Err(ResolveError::Invalid(format!(
                    "OCID {} appears twice in the directory",
                    entry.ocid
                )));
            }
        }
        let directory = match &config.metadata_url_template {
            Some(template) => directory.with_template(template)?,
            None => directory,
        };
        Ok(DirectoryResolver {
            own: None,
            directory,
        })
    }

    /// Makes the gateway's own OCID resolve to itself (its key, `endpoint` and published
    /// terms), ahead of any directory entry.
    pub fn with_own(mut self, config: &GatewayConfig, key: &PrivateKey, endpoint: &str) -> Self {
        self.own = Some(own_party(config, key, endpoint));
        self
    }
}

#[async_trait]
impl OcidResolver for DirectoryResolver {
    async fn resolve(&self, ocid: u64) -> Result<Party, ResolveError> {
        match self.own.as_ref().filter(|p| p.ocid == ocid) {
            Some(own) => Ok(own.clone()),
            None => self.directory.resolve(ocid).await,
        }
    }
}

/// The gateway's own settlement terms: configured currencies, and accepted proof issuers =
/// its own OCID followed by `config.accepts` (duplicates removed).
fn own_settlement(config: &GatewayConfig) -> Settlement {
    let mut accepts = vec![config.ocid];
    for ocid in &config.accepts {
        if !accepts.contains(ocid) {
            accepts.push(*ocid);
        }
    }
    Settlement {
        currencies: config.currencies.clone(),
        accepts,
    }
}

/// What this gateway advertises: the Payment Gateway set (§7 row 21) plus `verify.txid`
/// (`GET /verify/{txid}` for the proofs it issued, as payer's gateway and as settlement
/// provider).
pub fn own_capabilities() -> Vec<String> {
    PAYMENT_GATEWAY_CAPABILITIES
        .iter()
        .chain(&[VERIFY_TXID])
        .map(|c| (*c).to_string())
        .collect()
}

fn own_party(config: &GatewayConfig, key: &PrivateKey, endpoint: &str) -> Party {
    let settlement = own_settlement(config);
    Party {
        ocid: config.ocid,
        name: config.name.clone(),
        icon: config.icon.clone(),
        public_key: key.public_key(),
        endpoint: Some(endpoint.to_string()),
        capabilities: own_capabilities(),
        currencies: settlement.currencies,
        accepts: settlement.accepts,
    }
}

/// The gateway's own metadata document (what `GET /metadata.json` serves): config-nested
/// layout, `config` = {publicKey, endpoint, capabilities = the Payment Gateway set,
/// settlement = {configured currencies, accepts = own OCID + `config.accepts`}}, signed over
/// the canonical config with `key`.
pub fn build_own_metadata(config: &GatewayConfig, key: &PrivateKey, endpoint: &str) -> Value {
    let metadata_config = MetadataConfig {
        public_key: key.public_key().to_hex(),
        endpoint: Some(endpoint.to_string()),
        capabilities: own_capabilities(),
        settlement: Some(own_settlement(config)),
        extra: serde_json::Map::new(),
    };
    let signature = match sign_object(key, &metadata_config) {
        Ok(signature) => signature,
        Err(e) => {
            // Signing our own integer/string-only config cannot fail in practice; if it ever
            // did, publish an unsigned document that every verifier rejects rather than panic.
            tracing::error!(error = %e, "cannot sign own metadata config");
            String::new()
        }
    };
    let metadata = Metadata {
        opencharge: PROTOCOL_VERSION.to_string(),
        name: config.name.clone(),
        profile: config.profile.clone(),
        icon: config.icon.clone(),
        config: metadata_config,
        kyc: None,
        signature,
        contact: None,
    };
    serde_json::to_value(&metadata).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_metadata_is_signed_and_resolves_back() {
        let config = GatewayConfig {
            accepts: vec![100, 200, 101],
            ..GatewayConfig::default()
        };
        let key = PrivateKey::generate();
        let doc = build_own_metadata(&config, &key, "https://pg.example/opencharge");
        let bytes = serde_json::to_vec(&doc).unwrap();
        let party = Party::from_metadata_bytes(config.ocid, &bytes).unwrap();
        assert_eq!(
            party,
            own_party(&config, &key, "https://pg.example/opencharge")
        );
        assert_eq!(party.accepts, vec![200, 100, 101]);
        assert!(party.has_capability("orders.create.session"));
    }

    #[test]
    fn flat_and_tampered_metadata_are_invalid() {
        let key = PrivateKey::generate();
        let flat = serde_json::json!({
            "opencharge": "0.1", "name": "Flat", "publicKey": key.public_key().to_hex(),
            "endpoint": "https://flat.example", "capabilities": []
        });
        let err = Party::from_metadata_bytes(5, &serde_json::to_vec(&flat).unwrap()).unwrap_err();
        assert!(matches!(err, ResolveError::Invalid(_)), "{err}");

        let mut doc = build_own_metadata(
            &GatewayConfig::default(),
            &key,
            "https://pg.example/opencharge",
        );
        doc["config"]["endpoint"] = Value::from("https://evil.example/opencharge");
        let err = Party::from_metadata_bytes(200, &serde_json::to_vec(&doc).unwrap()).unwrap_err();
        assert!(matches!(err, ResolveError::Invalid(_)), "{err}");
    }
}
