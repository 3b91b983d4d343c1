//! Resolves OCIDs to verified metadata for local checks: the gateway (from its endpoint, for
//! proof signatures) and merchants (from the app's directory or an index, for order
//! signatures). Config signatures are verified before anything is trusted; results are cached
//! for five minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opencharge_protocol::keys::PublicKey;
use opencharge_protocol::metadata::{document_url, verify_document, MAX_METADATA_BYTES};

use crate::client::GatewayClient;
use crate::config::{check_url, WalletConfig};
use crate::error::{Result, WalletError};

/// How long a resolved party is trusted before it is fetched again.
const CACHE_TTL: Duration = Duration::from_secs(300);

/// A party whose metadata verified.
#[derive(Debug, Clone)]
pub(crate) struct Party {
    pub(crate) ocid: u64,
    pub(crate) name: String,
    pub(crate) icon: Option<String>,
    pub(crate) public_key: PublicKey,
}

/// The resolver of one wallet.
pub(crate) struct Resolver {
    gateway_metadata_url: String,
    pinned_gateway: Option<u64>,
    directory: HashMap<u64, String>,
    template: Option<String>,
    allow_loopback: bool,
    gateway: Mutex<Option<(Party, Instant)>>,
    cache: Mutex<HashMap<u64, (Party, Instant)>>,
}

impl Resolver {
    /// A resolver for the validated `config` whose gateway endpoint is `endpoint`.
    pub(crate) fn new(config: &WalletConfig, endpoint: &str) -> Resolver {
        Resolver {
            gateway_metadata_url: format!("{endpoint}/metadata.json"),
            // `WalletConfig::validate` refused negative OCIDs before.
            pinned_gateway: config.gateway_ocid.and_then(|o| u64::try_from(o).ok()),
            directory: config
                .directory
                .iter()
                .filter_map(|e| Some((u64::try_from(e.ocid).ok()?, e.metadata_url.clone())))
                .collect(),
            template: config.metadata_url_template.clone(),
            allow_loopback: config.allow_insecure_loopback,
            gateway: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The gateway itself, from `<endpoint>/metadata.json`; its endpoint must be the
    /// configured one.
    pub(crate) async fn gateway(&self, client: &GatewayClient) -> Result<Party> {
        if let Some((party, at)) = self.gateway.lock().ok().and_then(|g| g.clone()) {
            if at.elapsed() < CACHE_TTL {
                return Ok(party);
            }
        }
        let (party, endpoint) = fetch_party(
            client,
            &self.gateway_metadata_url,
            self.gateway_ocid(client).unwrap_or(0),
            "the gateway's metadata",
        )
        .await?;
        let endpoint = endpoint.unwrap_or_default();
        if endpoint.trim_end_matches('/') != client.endpoint() {
            return Err(WalletError::crypto(format!(
                "the gateway's metadata names endpoint {endpoint:?}, not the configured one"
            )));
        }
        if let Ok(mut slot) = self.gateway.lock() {
            *slot = Some((party.clone(), Instant::now()));
        }
        Ok(party)
    }

    /// The gateway's OCID: the pinned one, else the one its signed responses carry in
    /// `X-OC-ID` (metadata documents do not state their own OCID).
    pub(crate) fn gateway_ocid(&self, client: &GatewayClient) -> Option<u64> {
        self.pinned_gateway.or_else(|| client.seen_ocid())
    }

    /// The verified party behind `ocid`: the gateway when it is the gateway's OCID, else from
    /// the directory, else from the metadata URL template.
    pub(crate) async fn resolve(&self, client: &GatewayClient, ocid: u64) -> Result<Party> {
        if self.gateway_ocid(client) == Some(ocid) {
            return self.gateway(client).await;
        }
        if let Some((party, at)) = self.cache.lock().ok().and_then(|c| c.get(&ocid).cloned()) {
            if at.elapsed() < CACHE_TTL {
                return Ok(party);
            }
        }
        let url = match (self.directory.get(&ocid), &self.template) {
            (Some(url), _) => url.clone(),
            (None, Some(template)) => document_url(&template.replace("{ocid}", &ocid.to_string())),
            (None, None) => {
                return Err(WalletError::crypto(format!(
                "OCID {ocid} is not in the wallet's directory and no metadata index is configured"
            )))
            }
        };
        check_url(&url, self.allow_loopback, "metadata URL")?;
        let (party, _) =
            fetch_party(client, &url, ocid, &format!("metadata of OCID {ocid}")).await?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(ocid, (party.clone(), Instant::now()));
        }
        Ok(party)
    }
}

/// Fetches a metadata document, verifies its config signature and returns the party (with
/// `ocid`) and its published endpoint. `what` names the document in errors.
async fn fetch_party(
    client: &GatewayClient,
    url: &str,
    ocid: u64,
    what: &str,
) -> Result<(Party, Option<String>)> {
    let bytes = client.get_document(url, MAX_METADATA_BYTES).await?;
    let verified = verify_document(&bytes)
        .map_err(|e| WalletError::crypto(format!("{what} does not verify: {e}")))?;
    let party = Party {
        ocid,
        name: verified.metadata.name,
        icon: verified.metadata.icon,
        public_key: verified.public_key,
    };
    Ok((party, verified.metadata.config.endpoint))
}
