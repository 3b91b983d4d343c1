//! The merchant's OCID directory: turns a gateway's OCID into a verified [`Party`] by
//! fetching the metadata document named in the configuration (or added at runtime),
//! verifying its config signature, and caching the result for five minutes.
//!
//! Fetch rules: 5 s timeout, at most 64 KiB, HTTPS only (plain HTTP to loopback hosts when
//! `allow_loopback_http`), redirects not followed, unsigned flat-layout metadata refused.
//! Failed lookups are not cached. The machinery is [`opencharge_peer::resolver`]
//! (re-exported here).

use std::sync::Arc;

use opencharge_peer::resolver::{Directory, OcidResolver};

pub use opencharge_peer::resolver::{
    metadata_document_url, Party, ResolveError, METADATA_CACHE_SECS, METADATA_FETCH_TIMEOUT,
};

use crate::clock::Clock;
use crate::config::DirectoryEntry;
use crate::error::MerchantError;

/// The library error for a failed lookup of OCID `ocid`.
pub fn resolve_error(ocid: u64, e: ResolveError) -> MerchantError {
    MerchantError::Resolve {
        ocid,
        reason: e.to_string(),
    }
}

/// The directory: OCID → metadata URL, with a verified-party cache.
pub(crate) struct Resolver(Directory);

impl Resolver {
    /// A resolver knowing `entries` (URLs are checked at lookup time).
    pub fn new(
        entries: &[DirectoryEntry],
        http: reqwest::Client,
        allow_loopback_http: bool,
        clock: Arc<dyn Clock>,
    ) -> Resolver {
        let resolver = Resolver(Directory::new(http, allow_loopback_http, clock));
        for entry in entries {
            resolver.add(entry.clone());
        }
        resolver
    }

    /// Adds or replaces an entry; a replaced entry's cached party is dropped.
    pub fn add(&self, entry: DirectoryEntry) {
        self.0.insert_url(entry.ocid, &entry.metadata_url);
    }

    /// The verified party behind `ocid`.
    pub async fn resolve(&self, ocid: u64) -> Result<Party, ResolveError> {
        self.0.resolve(ocid).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OffsetClock;

    #[tokio::test]
    async fn entries_resolve_through_the_directory() {
        let entry = |url: &str| DirectoryEntry {
            ocid: 200,
            metadata_url: url.into(),
        };
        let resolver = Resolver::new(
            &[entry("http://127.0.0.1:9/pg")],
            reqwest::Client::new(),
            false,
            Arc::new(OffsetClock::default()),
        );
        // Plain http without allow_loopback_http is refused at lookup, before any request.
        let err = resolver.resolve(200).await.unwrap_err();
        assert!(matches!(err, ResolveError::Unavailable(_)), "{err}");
        assert_eq!(resolver.resolve(201).await, Err(ResolveError::Unknown(201)));
        // A replaced entry is looked up again under its new URL.
        resolver.add(entry("ftp://127.0.0.1:9/pg"));
        let err = resolver.resolve(200).await.unwrap_err();
        assert!(err.to_string().contains("ftp://"), "{err}");

        let mapped = resolve_error(201, ResolveError::Unknown(201));
        assert!(
            matches!(&mapped, MerchantError::Resolve { ocid: 201, reason } if reason == "unknown OCID 201"),
            "{mapped}"
        );
    }
}
