//! The OCID directory: turns an OCID into a verified [`Party`] (name, public key, endpoint,
//! capabilities, settlement terms). Sources, in order: the gateway itself, the static directory
//! of the configuration (inline metadata or a metadata URL), then a metadata URL template for
//! any other OCID. Fetched metadata is cached for five minutes by the gateway's clock, and a
//! document's config signature is always verified before its key is trusted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::keys::{PrivateKey, PublicKey};
use opencharge_protocol::metadata::{
    document_url, verify_document, Metadata, MetadataConfig, Settlement, MAX_METADATA_BYTES,
};
use opencharge_protocol::signing::sign_object;
use opencharge_protocol::types::capability::PAYMENT_GATEWAY_CAPABILITIES;
use serde_json::Value;

use crate::client::{check_outbound_url, read_limited};
use crate::clock::Clock;
use crate::config::GatewayConfig;
use crate::error::GatewayError;

/// How long fetched metadata is trusted before it is fetched again, seconds.
pub const METADATA_CACHE_SECS: i64 = 300;
/// Timeout of one metadata fetch.
pub const METADATA_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The protocol version this gateway publishes in its metadata.
pub const PROTOCOL_VERSION: &str = "0.1";

/// A resolved, verified counterparty: what the gateway may rely on about an OCID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The OCID.
    pub ocid: u64,
    /// Display name from the metadata.
    pub name: String,
    /// Icon URL from the metadata, if any.
    pub icon: Option<String>,
    /// The key that signs its requests, orders and proofs (from the verified config).
    pub public_key: PublicKey,
    /// Base URL of its Opencharge API (`config.endpoint`); `None` for end users.
    pub endpoint: Option<String>,
    /// Capability strings it advertises (unknown strings kept).
    pub capabilities: Vec<String>,
    /// ISO 4217 currencies it settles (`config.settlement.currencies`).
    pub currencies: Vec<String>,
    /// OCIDs whose proofs it accepts (`config.settlement.accepts`).
    pub accepts: Vec<u64>,
}

impl Party {
    /// Builds a party from a parsed metadata document, verifying the config signature first.
    /// The old flat layout carries no signature and is rejected.
    pub fn from_metadata_bytes(ocid: u64, bytes: &[u8]) -> Result<Party, ResolveError> {
        let verified = verify_document(bytes)
            .map_err(|e| ResolveError::Invalid(format!("metadata of OCID {ocid}: {e}")))?;
        let metadata = verified.metadata;
        let (currencies, accepts) = match metadata.config.settlement {
            Some(s) => (s.currencies, s.accepts),
            None => (Vec::new(), Vec::new()),
        };
        Ok(Party {
            ocid,
            name: metadata.name,
            icon: metadata.icon,
            public_key: verified.public_key,
            endpoint: metadata.config.endpoint,
            capabilities: metadata.config.capabilities,
            currencies,
            accepts,
        })
    }

    /// Whether the party advertises `capability`.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

/// Why an OCID could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No source knows this OCID (`UNKNOWN_OCID`, 401).
    #[error("unknown OCID {0}")]
    Unknown(u64),
    /// The metadata could not be fetched: network error, timeout, non-2xx, redirect, too
    /// large, URL not allowed (`METADATA_UNAVAILABLE`, 502).
    #[error("metadata unavailable: {0}")]
    Unavailable(String),
    /// The metadata was fetched but is invalid: bad JSON or shape, flat layout, bad config
    /// signature, bad key (`METADATA_UNAVAILABLE`, 502, with the reason). At construction of a
    /// [`DirectoryResolver`], also an invalid static directory entry.
    #[error("invalid metadata: {0}")]
    Invalid(String),
}

impl From<ResolveError> for GatewayError {
    /// `Unknown` → 401 `UNKNOWN_OCID`; `Unavailable` and `Invalid` → 502 `METADATA_UNAVAILABLE`.
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Unknown(_) => GatewayError::auth(ErrorCode::UnknownOcid, e.to_string()),
            ResolveError::Unavailable(_) | ResolveError::Invalid(_) => {
                GatewayError::new(ErrorCode::MetadataUnavailable, e.to_string())
            }
        }
    }
}

/// Resolves OCIDs to verified parties. The gateway holds one as `Arc<dyn OcidResolver>`.
#[async_trait]
pub trait OcidResolver: Send + Sync {
    /// The verified party behind `ocid`.
    async fn resolve(&self, ocid: u64) -> Result<Party, ResolveError>;
}

/// Where a static directory entry's metadata comes from.
#[derive(Debug, Clone)]
enum Source {
    /// Inline metadata, verified at construction.
    Inline(Box<Party>),
    /// A metadata URL, fetched lazily and cached.
    Url(String),
}

/// The gateway's resolver: its own identity, the configured static directory, and an
/// optional metadata URL template (`{ocid}` is replaced) for every other OCID.
///
/// HTTP fetch rules: 5 s timeout, at most 64 KiB, HTTPS only (plain HTTP only to loopback
/// hosts when `allow_loopback_http`), redirects not followed, cached for
/// [`METADATA_CACHE_SECS`] by the clock, config signature verified before the key is used,
/// unsigned flat layout rejected. A URL whose path does not end in `.json` is treated as an
/// API endpoint and gets `/metadata.json` appended (protocol notes §7 row 17). Failed lookups
/// are not cached. The `http` client given to [`DirectoryResolver::new`] must not follow
/// redirects (the server builds it with `redirect::Policy::none()`); a 3xx answer is then
/// reported as unavailable metadata.
pub struct DirectoryResolver {
    own: Option<Party>,
    entries: HashMap<u64, Source>,
    template: Option<String>,
    allow_loopback_http: bool,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<u64, (Party, i64)>>,
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
        let mut entries = HashMap::new();
        for entry in &config.directory {
            let source = match (&entry.metadata, &entry.metadata_url) {
                (Some(metadata), None) => {
                    let bytes = serde_json::to_vec(metadata).map_err(|e| {
                        ResolveError::Invalid(format!("directory entry {}: {e}", entry.ocid))
                    })?;
                    Source::Inline(Box::new(Party::from_metadata_bytes(entry.ocid, &bytes)?))
                }
                (None, Some(url)) => {
                    let url = metadata_document_url(url);
                    check_outbound_url(&url, config.allow_loopback_http).map_err(|e| {
                        ResolveError::Invalid(format!("directory entry {}: {e}", entry.ocid))
                    })?;
                    Source::Url(url)
                }
                _ => {
                    return Err(ResolveError::Invalid(format!(
                        "directory entry {} needs exactly one of `metadata` or `metadata_url`",
                        entry.ocid
                    )))
                }
            };
            if entries.insert(entry.ocid, source).is_some() {
                return Err(ResolveError::Invalid(format!(
                    "OCID {} appears twice in the directory",
                    entry.ocid
                )));
            }
        }
        if let Some(template) = &config.metadata_url_template {
            if !template.contains("{ocid}") {
                return Err(ResolveError::Invalid(
                    "metadata_url_template must contain {ocid}".into(),
                ));
            }
        }
        Ok(DirectoryResolver {
            own: None,
            entries,
            template: config.metadata_url_template.clone(),
            allow_loopback_http: config.allow_loopback_http,
            http,
            clock,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Makes the gateway's own OCID resolve to itself (its key, `endpoint` and published
    /// terms), ahead of any directory entry.
    pub fn with_own(mut self, config: &GatewayConfig, key: &PrivateKey, endpoint: &str) -> Self {
        self.own = Some(own_party(config, key, endpoint));
        self
    }

    fn cached(&self, ocid: u64, now: i64) -> Option<Party> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(&ocid)
            .filter(|(_, fetched_at)| now - fetched_at < METADATA_CACHE_SECS && now >= *fetched_at)
            .map(|(party, _)| party.clone())
    }

    fn remember(&self, party: &Party, now: i64) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (_, at)| now - *at < METADATA_CACHE_SECS);
            cache.insert(party.ocid, (party.clone(), now));
        }
    }

    /// Fetches and verifies the metadata at `url`. With `not_found_is_unknown`, a 404 means
    /// the OCID does not exist (template lookups).
    async fn fetch(
        &self,
        ocid: u64,
        url: &str,
        not_found_is_unknown: bool,
    ) -> Result<Party, ResolveError> {
        let now = self.clock.now();
        if let Some(party) = self.cached(ocid, now) {
            return Ok(party);
        }
        let parsed = check_outbound_url(url, self.allow_loopback_http)
            .map_err(|e| ResolveError::Unavailable(format!("metadata URL of OCID {ocid}: {e}")))?;
        let response = self
            .http
            .get(parsed)
            .timeout(METADATA_FETCH_TIMEOUT)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                ResolveError::Unavailable(format!("fetching metadata of OCID {ocid}: {e}"))
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND && not_found_is_unknown {
            return Err(ResolveError::Unknown(ocid));
        }
        if !status.is_success() {
            return Err(ResolveError::Unavailable(format!(
                "metadata of OCID {ocid}: {url} answered HTTP {}",
                status.as_u16()
            )));
        }
        let body = read_limited(response, MAX_METADATA_BYTES)
            .await
            .map_err(|e| ResolveError::Unavailable(format!("metadata of OCID {ocid}: {e}")))?;
        let party = Party::from_metadata_bytes(ocid, &body)?;
        self.remember(&party, self.clock.now());
        Ok(party)
    }
}

#[async_trait]
impl OcidResolver for DirectoryResolver {
    async fn resolve(&self, ocid: u64) -> Result<Party, ResolveError> {
        if let Some(own) = self.own.as_ref().filter(|p| p.ocid == ocid) {
            return Ok(own.clone());
        }
        match self.entries.get(&ocid) {
            Some(Source::Inline(party)) => Ok(party.as_ref().clone()),
            Some(Source::Url(url)) => self.fetch(ocid, url, false).await,
            None => match &self.template {
                Some(template) => {
                    let url = metadata_document_url(&template.replace("{ocid}", &ocid.to_string()));
                    self.fetch(ocid, &url, true).await
                }
                None => Err(ResolveError::Unknown(ocid)),
            },
        }
    }
}

/// A fixed map of OCID → party, for tests and embedders that verify metadata themselves.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    parties: HashMap<u64, Party>,
}

impl StaticResolver {
    /// A resolver that knows exactly `parties`.
    pub fn new(parties: impl IntoIterator<Item = Party>) -> Self {
        StaticResolver {
            parties: parties.into_iter().map(|p| (p.ocid, p)).collect(),
        }
    }
}

#[async_trait]
impl OcidResolver for StaticResolver {
    async fn resolve(&self, ocid: u64) -> Result<Party, ResolveError> {
        self.parties
            .get(&ocid)
            .cloned()
            .ok_or(ResolveError::Unknown(ocid))
    }
}

/// Applies the resolver rule of protocol notes §7 row 17 (see
/// [`opencharge_protocol::metadata::document_url`]).
pub fn metadata_document_url(url: &str) -> String {
    document_url(url)
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

fn own_party(config: &GatewayConfig, key: &PrivateKey, endpoint: &str) -> Party {
    let settlement = own_settlement(config);
    Party {
        ocid: config.ocid,
        name: config.name.clone(),
        icon: config.icon.clone(),
        public_key: key.public_key(),
        endpoint: Some(endpoint.to_string()),
        capabilities: PAYMENT_GATEWAY_CAPABILITIES
            .iter()
            .map(|c| (*c).to_string())
            .collect(),
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
        capabilities: PAYMENT_GATEWAY_CAPABILITIES
            .iter()
            .map(|c| (*c).to_string())
            .collect(),
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
    fn metadata_url_rule() {
        assert_eq!(
            metadata_document_url("https://a.example/opencharge"),
            "https://a.example/opencharge/metadata.json"
        );
        assert_eq!(
            metadata_document_url("https://a.example/opencharge/"),
            "https://a.example/opencharge/metadata.json"
        );
        assert_eq!(
            metadata_document_url("https://a.example/m/500.json"),
            "https://a.example/m/500.json"
        );
        assert_eq!(
            metadata_document_url("https://a.example/m?o=1"),
            "https://a.example/m/metadata.json?o=1"
        );
    }

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
