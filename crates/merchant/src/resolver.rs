//! The merchant's OCID directory: turns a gateway's OCID into a verified [`Party`] by
//! fetching the metadata document named in the configuration (or added at runtime),
//! verifying its config signature, and caching the result for five minutes.
//!
//! Fetch rules: 5 s timeout, at most 64 KiB, HTTPS only (plain HTTP to loopback hosts when
//! `allow_loopback_http`), redirects not followed, unsigned flat-layout metadata refused.
//! Failed lookups are not cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opencharge_protocol::keys::{PublicKey, VerifyOptions};
use opencharge_protocol::metadata::{Metadata, MetadataLayout, MAX_METADATA_BYTES};
use opencharge_protocol::signing::verify_config;

use crate::client::{check_outbound_url, read_limited};
use crate::clock::Clock;
use crate::config::DirectoryEntry;
use crate::error::MerchantError;

/// How long fetched metadata is trusted before it is fetched again, seconds.
pub const METADATA_CACHE_SECS: i64 = 300;
/// Timeout of one metadata fetch.
pub const METADATA_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A resolved, verified counterparty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The OCID.
    pub ocid: u64,
    /// Display name from the metadata.
    pub name: String,
    /// The key that signs its requests, responses and proofs (from the verified config).
    pub public_key: PublicKey,
    /// Base URL of its Opencharge API (`config.endpoint`), if it publishes one.
    pub endpoint: Option<String>,
    /// Capability strings it advertises.
    pub capabilities: Vec<String>,
}

impl Party {
    /// Builds a party from a metadata document, verifying the config signature first. The old
    /// flat layout carries no signature and is refused.
    pub fn from_metadata_bytes(ocid: u64, bytes: &[u8]) -> Result<Party, ResolveError> {
        let parsed = Metadata::parse(bytes)
            .map_err(|e| ResolveError::Invalid(format!("metadata of OCID {ocid}: {e}")))?;
        if parsed.layout == MetadataLayout::Flat {
            return Err(ResolveError::Invalid(format!(
                "metadata of OCID {ocid} uses the unsigned flat layout; a signed `config` is required"
            )));
        }
        let Some((raw_config, signature)) = parsed.signed_config() else {
            return Err(ResolveError::Invalid(format!(
                "metadata of OCID {ocid} has no signed config"
            )));
        };
        let public_key =
            verify_config(raw_config, signature, VerifyOptions::STRICT).map_err(|e| {
                ResolveError::Invalid(format!("metadata of OCID {ocid}: config signature: {e}"))
            })?;
        let metadata = parsed.metadata;
        Ok(Party {
            ocid,
            name: metadata.name,
            public_key,
            endpoint: metadata
                .config
                .endpoint
                .map(|e| e.trim_end_matches('/').to_string()),
            capabilities: metadata.config.capabilities,
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
    /// The directory does not know this OCID.
    #[error("unknown OCID {0}")]
    Unknown(u64),
    /// The metadata could not be fetched (network, timeout, non-2xx, redirect, too large,
    /// URL not allowed).
    #[error("metadata unavailable: {0}")]
    Unavailable(String),
    /// The metadata was fetched but is invalid (shape, flat layout, config signature, key).
    #[error("invalid metadata: {0}")]
    Invalid(String),
}

impl ResolveError {
    /// The library error for OCID `ocid`.
    pub fn into_merchant_error(self, ocid: u64) -> MerchantError {
        MerchantError::Resolve {
            ocid,
            reason: self.to_string(),
        }
    }
}

/// Applies the metadata URL rule (protocol notes §7 row 17): a URL whose path ends in `.json`
/// is a metadata document; anything else is an API endpoint and gets `/metadata.json`.
pub fn metadata_document_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    if head.ends_with(".json") {
        return url.to_string();
    }
    let mut out = format!("{}/metadata.json", head.trim_end_matches('/'));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The directory: OCID → metadata URL, with a verified-party cache.
pub(crate) struct Resolver {
    entries: Mutex<HashMap<u64, String>>,
    cache: Mutex<HashMap<u64, (Party, i64)>>,
    http: reqwest::Client,
    allow_loopback_http: bool,
    clock: Arc<dyn Clock>,
}

impl Resolver {
    /// A resolver knowing `entries` (URLs are checked at lookup time).
    pub fn new(
        entries: &[DirectoryEntry],
        http: reqwest::Client,
        allow_loopback_http: bool,
        clock: Arc<dyn Clock>,
    ) -> Resolver {
        let resolver = Resolver {
            entries: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            http,
            allow_loopback_http,
            clock,
        };
        for entry in entries {
            resolver.add(entry.clone());
        }
        resolver
    }

    /// Adds or replaces an entry; a replaced entry's cached party is dropped.
    pub fn add(&self, entry: DirectoryEntry) {
        let url = metadata_document_url(&entry.metadata_url);
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(entry.ocid, url);
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&entry.ocid);
        }
    }

    fn cached(&self, ocid: u64, now: i64) -> Option<Party> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(&ocid)
            .filter(|(_, at)| now >= *at && now - at < METADATA_CACHE_SECS)
            .map(|(party, _)| party.clone())
    }

    fn remember(&self, party: &Party, now: i64) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (_, at)| now - *at < METADATA_CACHE_SECS);
            cache.insert(party.ocid, (party.clone(), now));
        }
    }

    /// The verified party behind `ocid`.
    pub async fn resolve(&self, ocid: u64) -> Result<Party, ResolveError> {
        let now = self.clock.now();
        if let Some(party) = self.cached(ocid, now) {
            return Ok(party);
        }
        let url = self
            .entries
            .lock()
            .map_err(|_| ResolveError::Unavailable("directory lock poisoned".into()))?
            .get(&ocid)
            .cloned()
            .ok_or(ResolveError::Unknown(ocid))?;
        let parsed = check_outbound_url(&url, self.allow_loopback_http)
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

#[cfg(test)]
mod tests {
    use super::*;
    use opencharge_protocol::keys::PrivateKey;
    use opencharge_protocol::signing::sign_object;
    use serde_json::json;

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

    fn doc(key: &PrivateKey) -> serde_json::Value {
        let config = json!({
            "publicKey": key.public_key().to_hex(),
            "endpoint": "https://pg.example/opencharge/",
            "capabilities": ["checkout.create"],
            "settlement": {"currencies": ["USD"], "accepts": [200]},
        });
        let signature = sign_object(key, &config).unwrap();
        json!({"opencharge": "0.1", "name": "PG", "config": config, "signature": signature})
    }

    #[test]
    fn signed_metadata_resolves_and_tampered_or_flat_does_not() {
        let key = PrivateKey::generate();
        let good = doc(&key);
        let party = Party::from_metadata_bytes(200, good.to_string().as_bytes()).unwrap();
        assert_eq!(party.public_key, key.public_key());
        assert_eq!(
            party.endpoint.as_deref(),
            Some("https://pg.example/opencharge")
        );
        assert!(party.has_capability("checkout.create"));

        let mut tampered = good.clone();
        tampered["config"]["endpoint"] = json!("https://evil.example/opencharge");
        let err = Party::from_metadata_bytes(200, tampered.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, ResolveError::Invalid(_)), "{err}");

        let flat = json!({"opencharge": "0.1", "name": "Flat",
                          "publicKey": key.public_key().to_hex(), "endpoint": "https://f.example"});
        let err = Party::from_metadata_bytes(200, flat.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("flat"), "{err}");
    }
}
