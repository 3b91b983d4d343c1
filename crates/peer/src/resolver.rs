//! Metadata resolution: turns an OCID into a verified [`Party`] (name, public key, endpoint,
//! capabilities, settlement terms). A [`Directory`] maps OCIDs to inline (already verified)
//! parties or metadata URLs, with an optional URL template for any other OCID; fetched
//! metadata is cached for five minutes by the peer's clock, and a document's config signature
//! is always verified before its key is trusted.
//!
//! Fetch rules: 5 s timeout, at most 64 KiB, HTTPS only (plain HTTP only to loopback hosts
//! when `allow_loopback_http`), redirects not followed (the `http` client given must be built
//! with `redirect::Policy::none()`, so a 3xx is reported as unavailable metadata), unsigned
//! flat layout refused. Failed lookups are not cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use opencharge_protocol::error_code::{ApiError, ErrorCode};
use opencharge_protocol::keys::PublicKey;
use opencharge_protocol::metadata::{document_url, verify_document, MAX_METADATA_BYTES};

use crate::client::{check_outbound_url, read_limited};
use crate::clock::Clock;

/// How long fetched metadata is trusted before it is fetched again, seconds.
pub const METADATA_CACHE_SECS: i64 = 300;
/// Timeout of one metadata fetch.
pub const METADATA_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A resolved, verified counterparty: what a peer may rely on about an OCID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The OCID.
    pub ocid: u64,
    /// Display name from the metadata.
    pub name: String,
    /// Icon URL from the metadata, if any.
    pub icon: Option<String>,
    /// The key that signs its requests, responses, orders and proofs (from the verified
    /// config).
    pub public_key: PublicKey,
    /// Base URL of its Opencharge API (`config.endpoint`, without a trailing `/`); `None` for
    /// end users.
    pub endpoint: Option<String>,
    /// Capability strings it advertises (unknown strings kept).
    pub capabilities: Vec<String>,
    /// ISO 4217 currencies it settles (`config.settlement.currencies`).
    pub currencies: Vec<String>,
    /// OCIDs whose proofs it accepts (`config.settlement.accepts`).
    pub accepts: Vec<u64>,
}

impl Party {
    /// Builds a party from a metadata document, verifying the config signature first. The old
    /// flat layout carries no signature and is refused.
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
            endpoint: metadata
                .config
                .endpoint
                .map(|e| e.trim_end_matches('/').to_string()),
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
    /// signature, bad key (`METADATA_UNAVAILABLE`, 502, with the reason). When a directory is
    /// built, also an invalid static entry.
    #[error("invalid metadata: {0}")]
    Invalid(String),
}

impl ResolveError {
    /// The Opencharge error for a request whose sender cannot be resolved: `Unknown` → 401
    /// `UNKNOWN_OCID`; `Unavailable` and `Invalid` → 502 `METADATA_UNAVAILABLE`.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            ResolveError::Unknown(_) => {
                ApiError::request_auth(ErrorCode::UnknownOcid, self.to_string())
            }
            ResolveError::Unavailable(_) | ResolveError::Invalid(_) => {
                ApiError::new(ErrorCode::MetadataUnavailable, self.to_string())
            }
        }
    }
}

impl From<ResolveError> for crate::error::HttpError {
    /// `Unknown` → 401 `UNKNOWN_OCID`; `Unavailable` and `Invalid` → 502 `METADATA_UNAVAILABLE`.
    fn from(e: ResolveError) -> Self {
        crate::error::HttpError(e.to_api_error())
    }
}

/// Resolves OCIDs to verified parties.
#[async_trait]
pub trait OcidResolver: Send + Sync {
    /// The verified party behind `ocid`.
    async fn resolve(&self, ocid: u64) -> Result<Party, ResolveError>;
}

/// Applies the resolver rule of protocol notes §7 row 17 (see
/// [`opencharge_protocol::metadata::document_url`]): a URL whose path ends in `.json` is a
/// metadata document; anything else is an API endpoint and gets `/metadata.json`.
pub fn metadata_document_url(url: &str) -> String {
    document_url(url)
}

/// Where a directory entry's metadata comes from.
#[derive(Debug, Clone)]
enum Source {
    /// A party whose metadata was verified when it was added.
    Inline(Box<Party>),
    /// A metadata document URL, fetched lazily and cached.
    Url(String),
}

/// An OCID directory: OCID → inline party or metadata URL, plus an optional metadata URL
/// template (`{ocid}` is replaced) for every other OCID, with a cache of fetched parties.
/// Entries can be added while it is in use.
pub struct Directory {
    entries: Mutex<HashMap<u64, Source>>,
    template: Option<String>,
    allow_loopback_http: bool,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<u64, (Party, i64)>>,
}

impl Directory {
    /// An empty directory that fetches with `http` (which must not follow redirects) by
    /// `clock`'s time; plain HTTP only to loopback hosts and only with `allow_loopback_http`.
    pub fn new(http: reqwest::Client, allow_loopback_http: bool, clock: Arc<dyn Clock>) -> Self {
        Directory {
            entries: Mutex::new(HashMap::new()),
            template: None,
            allow_loopback_http,
            http,
            clock,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Resolves OCIDs without an entry through `template` (`{ocid}` is replaced, then the
    /// metadata URL rule applied); a 404 there means the OCID is unknown. Refused
    /// ([`ResolveError::Invalid`]) when the template lacks `{ocid}`.
    pub fn with_template(mut self, template: &str) -> Result<Self, ResolveError> {
        if !template.contains("{ocid}") {
            return Err(ResolveError::Invalid(
                "metadata_url_template must contain {ocid}".into(),
            ));
        }
        self.template = Some(template.to_string());
        Ok(self)
    }

    /// Adds or replaces the entry of `party.ocid` with an already verified party. Returns
    /// whether an entry was replaced.
    pub fn insert_party(&self, party: Party) -> bool {
        self.insert(party.ocid, Source::Inline(Box::new(party)))
    }

    /// Adds or replaces the entry of `ocid` with a metadata URL (the metadata URL rule is
    /// applied; URL rules are checked at lookup). A replaced entry's cached party is dropped.
    /// Returns whether an entry was replaced.
    pub fn insert_url(&self, ocid: u64, url: &str) -> bool {
        self.insert(ocid, Source::Url(metadata_document_url(url)))
    }

    fn insert(&self, ocid: u64, source: Source) -> bool {
        let replaced = match self.entries.lock() {
            Ok(mut entries) => entries.insert(ocid, source).is_some(),
            Err(_) => false,
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&ocid);
        }
        replaced
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

    /// Fetches and verifies the metadata at `url` (or serves it from the cache). With
    /// `not_found_is_unknown`, a 404 means the OCID does not exist (template lookups).
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
impl OcidResolver for Directory {
    async fn resolve(&self, ocid: u64) -> Result<Party, ResolveError> {
        let source = self
            .entries
            .lock()
            .map_err(|_| ResolveError::Unavailable("directory lock poisoned".into()))?
            .get(&ocid)
            .cloned();
        match source {
            Some(Source::Inline(party)) => Ok(*party),
            Some(Source::Url(url)) => self.fetch(ocid, &url, false).await,
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
        assert_eq!(party.currencies, vec!["USD".to_string()]);
        assert_eq!(party.accepts, vec![200]);

        let mut tampered = good.clone();
        tampered["config"]["endpoint"] = json!("https://evil.example/opencharge");
        let err = Party::from_metadata_bytes(200, tampered.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, ResolveError::Invalid(_)), "{err}");

        let flat = json!({"opencharge": "0.1", "name": "Flat",
                          "publicKey": key.public_key().to_hex(), "endpoint": "https://f.example"});
        let err = Party::from_metadata_bytes(200, flat.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, ResolveError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("flat"), "{err}");
    }

    #[test]
    fn resolve_errors_map_to_protocol_codes() {
        let unknown = ResolveError::Unknown(7).to_api_error();
        assert_eq!(
            (unknown.code, unknown.status),
            (ErrorCode::UnknownOcid, 401)
        );
        assert_eq!(unknown.message, "unknown OCID 7");
        for e in [
            ResolveError::Unavailable("down".into()),
            ResolveError::Invalid("bad".into()),
        ] {
            let api = e.to_api_error();
            assert_eq!(
                (api.code, api.status),
                (ErrorCode::MetadataUnavailable, 502)
            );
            assert_eq!(api.message, e.to_string());
        }
    }

    #[tokio::test]
    async fn directory_entries_template_and_replacement() {
        let key = PrivateKey::generate();
        let party = Party::from_metadata_bytes(200, doc(&key).to_string().as_bytes()).unwrap();
        let http = reqwest::Client::new();
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::OffsetClock::default());
        let directory = Directory::new(http.clone(), false, clock.clone());
        assert!(!directory.insert_party(party.clone()));
        assert_eq!(directory.resolve(200).await.unwrap(), party);
        assert_eq!(
            directory.resolve(201).await,
            Err(ResolveError::Unknown(201))
        );
        // A URL entry replaces the inline one; plain http is refused without a request.
        assert!(directory.insert_url(200, "http://127.0.0.1:9/opencharge"));
        assert!(matches!(
            directory.resolve(200).await,
            Err(ResolveError::Unavailable(_))
        ));
        assert!(matches!(
            Directory::new(http.clone(), false, clock.clone()).with_template("https://x.example/m"),
            Err(ResolveError::Invalid(_))
        ));
        let templated = Directory::new(http, false, clock)
            .with_template("http://127.0.0.1:9/m/{ocid}.json")
            .unwrap();
        assert!(matches!(
            templated.resolve(5).await,
            Err(ResolveError::Unavailable(_))
        ));
    }
}
