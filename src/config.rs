//! `WalletConfig`: where the gateway is, where the wallet keeps its data, and how merchants'
//! metadata is found for local verification of prompts.

use url::Url;

use crate::error::{Result, WalletError};

/// How the wallet core is set up. Build it once at app start.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WalletConfig {
    /// The gateway's Opencharge endpoint (its published `config.endpoint`, base path included),
    /// e.g. `https://api.wallet.example/opencharge`. Must be `https` (see
    /// `allowInsecureLoopback`).
    pub gateway_url: String,
    /// The app's private data directory; the database `wallet.sqlite3` lives here (and, when
    /// no key store is passed to `Wallet.open`, the file key store under `keys/`).
    pub data_dir: String,
    /// The gateway's OCID, if the app pins it; the gateway's metadata must then name it.
    #[uniffi(default = None)]
    pub gateway_ocid: Option<i64>,
    /// Known parties (merchants, partner gateways) and their metadata URLs, checked before
    /// `metadataUrlTemplate`.
    #[uniffi(default = [])]
    pub directory: Vec<DirectoryEntry>,
    /// Where to fetch other parties' metadata, with `{ocid}` in place of the OCID (an
    /// Opencharge index, e.g. `https://index.example/ocid/{ocid}`). A URL not ending in `.json`
    /// gets `/metadata.json` appended.
    #[uniffi(default = None)]
    pub metadata_url_template: Option<String>,
    /// Allows `http://` URLs whose host is loopback (`127.0.0.1`, `::1`, `localhost`). For
    /// tests and the local demo only; never in a release app.
    #[uniffi(default = false)]
    pub allow_insecure_loopback: bool,
    /// Timeout of each gateway request, in milliseconds (the event stream is not bounded).
    /// 1000 to 300000.
    #[uniffi(default = 30000)]
    pub request_timeout_ms: i32,
    /// Extra certificate authorities to trust, as PEM text (one or more `BEGIN CERTIFICATE`
    /// blocks per entry), for private deployments whose gateway certificate is not issued by a
    /// public authority. They are trusted in addition to the platform's roots.
    #[uniffi(default = [])]
    pub trusted_certificates: Vec<String>,
    /// Optional public-key pins of the gateway: `sha256/` + base64 of the SHA-256 of a
    /// certificate's SubjectPublicKeyInfo (the format OkHttp's `CertificatePinner` uses).
    /// When not empty, a gateway connection succeeds only if some certificate of its chain
    /// has one of these keys (pin a backup key too). Metadata and other hosts are not pinned.
    #[uniffi(default = [])]
    pub pinned_gateway_keys: Vec<String>,
    /// For push extensions and receivers (`handlePush`): a small runtime (one worker, small
    /// stacks; only the first wallet opened in the process decides its shape), no idle
    /// connections kept, and no background task (the outbox drain on open, the resolution of
    /// a lost answer) left running after a call: the next call (e.g. `handlePush`, which
    /// drains the outbox first) does that work instead.
    #[uniffi(default = false)]
    pub low_memory: bool,
}

/// A party the app knows how to resolve: its OCID and the URL of its metadata document.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DirectoryEntry {
    /// The party's OCID.
    pub ocid: i64,
    /// URL of its metadata document (`.../metadata.json`).
    pub metadata_url: String,
}

impl WalletConfig {
    /// A configuration with defaults for everything but the gateway and the data directory.
    pub fn new(gateway_url: impl Into<String>, data_dir: impl Into<String>) -> WalletConfig {
        WalletConfig {
            gateway_url: gateway_url.into(),
            data_dir: data_dir.into(),
            gateway_ocid: None,
            directory: Vec::new(),
            metadata_url_template: None,
            allow_insecure_loopback: false,
            request_timeout_ms: 30_000,
            trusted_certificates: Vec::new(),
            pinned_gateway_keys: Vec::new(),
            low_memory: false,
        }
    }

    /// Checks every field; returns the gateway endpoint without a trailing slash.
    pub(crate) fn validate(&self) -> Result<String> {
        let endpoint = self.gateway_url.trim_end_matches('/').to_string();
        let url = check_url(&endpoint, self.allow_insecure_loopback, "gateway_url")?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(WalletError::invalid(
                "gateway_url must not have a query or fragment",
            ));
        }
        if self.data_dir.trim().is_empty() {
            return Err(WalletError::invalid("data_dir is empty"));
        }
        if !(1_000..=300_000).contains(&self.request_timeout_ms) {
            return Err(WalletError::invalid(
                "requestTimeoutMs must be 1000..=300000",
            ));
        }
        if self.gateway_ocid.is_some_and(|ocid| ocid < 0) {
            return Err(WalletError::invalid("gatewayOcid must not be negative"));
        }
        for entry in &self.directory {
            if entry.ocid < 0 {
                return Err(WalletError::invalid("directory OCIDs must not be negative"));
            }
            check_url(
                &entry.metadata_url,
                self.allow_insecure_loopback,
                "directory.metadata_url",
            )?;
        }
        if let Some(template) = &self.metadata_url_template {
            if !template.contains("{ocid}") {
                return Err(WalletError::invalid(
                    "metadata_url_template must contain {ocid}",
                ));
            }
            check_url(
                &template.replace("{ocid}", "1"),
                self.allow_insecure_loopback,
                "metadata_url_template",
            )?;
        }
        Ok(endpoint)
    }
}

/// Parses `text` as an `https` URL, or an `http` loopback URL when `allow_loopback` is set,
/// by the shared rules of [`opencharge_protocol::url_rules::check_outbound_url`].
pub(crate) fn check_url(text: &str, allow_loopback: bool, what: &str) -> Result<Url> {
    opencharge_protocol::url_rules::check_outbound_url(text, allow_loopback)
        .map_err(|e| WalletError::invalid(format!("{what} {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_host_names_are_refused_and_punycode_works() {
        // A look-alike Unicode host (Cyrillic "а" in "pаy") must not stand for a gateway.
        for url in [
            "https://p\u{0430}y.example/opencharge",
            "https://b\u{fc}cher.example/opencharge",
        ] {
            let err = WalletConfig::new(url, "/d").validate().unwrap_err();
            assert!(
                matches!(&err, WalletError::InvalidInput { reason } if reason.starts_with("gateway_url")),
                "{url}: {err:?}"
            );
        }
        let punycode = WalletConfig::new("https://xn--bcher-kva.example/opencharge", "/d");
        assert_eq!(
            punycode.validate().unwrap(),
            "https://xn--bcher-kva.example/opencharge"
        );
    }

    #[test]
    fn validates_urls_and_limits() {
        let ok = WalletConfig::new("https://api.wallet.example/opencharge/", "/data");
        assert_eq!(
            ok.validate().unwrap(),
            "https://api.wallet.example/opencharge"
        );
        let http = WalletConfig::new("http://127.0.0.1:9000/opencharge", "/data");
        assert!(http.validate().is_err());
        let http = WalletConfig {
            allow_insecure_loopback: true,
            ..http
        };
        assert!(http.validate().is_ok());
        let remote = WalletConfig::new("http://10.0.0.1/x", "/d");
        assert!(WalletConfig {
            allow_insecure_loopback: true,
            ..remote
        }
        .validate()
        .is_err());
        assert!(WalletConfig::new("ftp://x/y", "/d").validate().is_err());
        assert!(WalletConfig::new("https://x/y?q=1", "/d")
            .validate()
            .is_err());
        assert!(WalletConfig::new("https://x/y", " ").validate().is_err());
        let mut t = WalletConfig::new("https://x/y", "/d");
        t.metadata_url_template = Some("https://index.example/ocid".into());
        assert!(t.validate().is_err());
        t.metadata_url_template = Some("https://index.example/ocid/{ocid}".into());
        assert!(t.validate().is_ok());
        t.request_timeout_ms = 10;
        assert!(t.validate().is_err());
        t.request_timeout_ms = 30_000;
        t.gateway_ocid = Some(-1);
        assert!(t.validate().is_err());
        t.gateway_ocid = Some(200);
        t.directory = vec![DirectoryEntry {
            ocid: -5,
            metadata_url: "https://m.example/metadata.json".into(),
        }];
        assert!(t.validate().is_err());
        t.directory[0].ocid = 5;
        assert!(t.validate().is_ok());
    }
}
