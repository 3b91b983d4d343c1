//! An embedded Opencharge network on loopback, shared by `opencharge demo` and
//! `opencharge sandbox`: a reference gateway and a merchant that know each other through their
//! directories, with their data (SQLite files, keys) in one directory, plus the dev-endpoint
//! calls that create and fund accounts.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use opencharge_gateway::config::DirectoryEntry as GatewayDirectoryEntry;
use opencharge_gateway::{Gateway, RunningGateway};
use opencharge_merchant::{
    DirectoryEntry as MerchantDirectoryEntry, InventoryItem, Merchant, MerchantConfig,
    RunningMerchant,
};
use opencharge_protocol::keys::PrivateKey;
use opencharge_wallet::{DirectoryEntry as WalletDirectoryEntry, WalletConfig};
use serde_json::{json, Value};

/// The embedded gateway's OCID.
pub const GATEWAY_OCID: u64 = 200;
/// The embedded merchant's OCID.
pub const MERCHANT_OCID: u64 = 500;
/// The embedded merchant's display name.
pub const MERCHANT_NAME: &str = "Demo Coffee";

/// A running gateway and merchant on loopback ports chosen by the system.
pub struct Network {
    /// The reference gateway (dev mode on).
    pub gateway: RunningGateway,
    /// The merchant (dev mode on).
    pub merchant: RunningMerchant,
    /// Where the gateway, merchant and wallets keep their files.
    pub data_dir: PathBuf,
    http: reqwest::Client,
    /// Held so a temporary data dir is deleted when the network is dropped.
    _temp: Option<tempfile::TempDir>,
}

impl Network {
    /// Starts the merchant, then a gateway whose directory knows the merchant, then tells the
    /// merchant about the gateway. `data_dir` keeps everything (and keys survive restarts);
    /// without it a temporary directory is used and deleted on drop.
    pub async fn start(data_dir: Option<PathBuf>) -> anyhow::Result<Network> {
        let (temp, dir) = match data_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("opencharge-")
                    .tempdir()
                    .context("cannot create a temporary data dir")?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        let merchant_dir = dir.join("merchant");
        let gateway_dir = dir.join("gateway");
        for d in [&merchant_dir, &gateway_dir] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }

        let mut merchant_config =
            MerchantConfig::for_tests(&merchant_dir, MERCHANT_OCID, vec![GATEWAY_OCID]);
        merchant_config.name = MERCHANT_NAME.into();
        merchant_config.dev_mode = true;
        merchant_config.key_hex = Some(load_or_create_key(&merchant_dir.join("merchant.key"))?);
        merchant_config.inventory.push(InventoryItem {
            id: "coffee".into(),
            name: "Coffee".into(),
            price: "2.50".into(),
        });
        let merchant = Merchant::start(merchant_config)
            .await
            .context("cannot start the merchant")?;

        let mut gateway_config = opencharge_gateway::testkit::test_config(&gateway_dir);
        gateway_config.ocid = GATEWAY_OCID;
        gateway_config.directory = vec![GatewayDirectoryEntry {
            ocid: MERCHANT_OCID,
            metadata_url: Some(merchant.metadata_url()),
            metadata: None,
        }];
        let gateway = match Gateway::start(gateway_config).await {
            Ok(gateway) => gateway,
            Err(e) => {
                merchant.stop().await;
                bail!("cannot start the gateway: {e}");
            }
        };
        merchant.add_directory_entry(MerchantDirectoryEntry {
            ocid: GATEWAY_OCID,
            metadata_url: format!("{}/metadata.json", gateway.endpoint()),
        });
        Ok(Network {
            gateway,
            merchant,
            data_dir: dir,
            http: reqwest::Client::new(),
            _temp: temp,
        })
    }

    /// The gateway's API endpoint (what a wallet's `gateway_url` is).
    pub fn gateway_url(&self) -> &str {
        self.gateway.endpoint()
    }

    /// A wallet configuration for this network with its data in `<data dir>/wallets/<name>`.
    pub fn wallet_config(&self, name: &str) -> WalletConfig {
        let dir = self.data_dir.join("wallets").join(name);
        let mut config = WalletConfig::new(self.gateway_url(), dir.display().to_string());
        config.gateway_ocid = Some(GATEWAY_OCID);
        config.allow_insecure_loopback = true;
        config.directory = vec![WalletDirectoryEntry {
            ocid: MERCHANT_OCID,
            metadata_url: self.merchant.metadata_url(),
        }];
        config
    }

    /// What `opencharge sandbox` prints: the URLs and OCIDs an app or a test needs.
    pub fn describe(&self) -> Value {
        json!({
            "gatewayUrl": self.gateway_url(),
            "gatewayOcid": GATEWAY_OCID,
            "gatewayMetadataUrl": format!("{}/metadata.json", self.gateway_url()),
            "merchantUrl": self.merchant.endpoint(),
            "merchantOcid": MERCHANT_OCID,
            "merchantMetadataUrl": self.merchant.metadata_url(),
            "dataDir": self.data_dir.display().to_string(),
        })
    }

    /// POSTs `body` to a gateway dev endpoint and returns its JSON answer.
    async fn dev_post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.gateway_url());
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .with_context(|| format!("POST {url}: unreadable answer"))?;
        if !status.is_success() {
            bail!("POST {url}: {status}: {answer}");
        }
        Ok(answer)
    }

    /// Creates a user account named `name` through the dev endpoints; returns its id and a
    /// one-time enrollment code for a device.
    pub async fn new_account(&self, name: &str) -> anyhow::Result<(String, String)> {
        let answer = self
            .dev_post("/dev/accounts", json!({ "name": name }))
            .await?;
        let field = |key: &str| {
            answer[key]
                .as_str()
                .map(str::to_string)
                .with_context(|| format!("/dev/accounts answer has no {key}: {answer}"))
        };
        Ok((field("accountId")?, field("enrollmentCode")?))
    }

    /// Credits `amount` `currency` to an account through the dev endpoints.
    pub async fn fund(&self, account_id: &str, currency: &str, amount: &str) -> anyhow::Result<()> {
        self.dev_post(
            &format!("/dev/accounts/{account_id}/fund"),
            json!({ "currency": currency, "amount": amount }),
        )
        .await
        .map(|_| ())
    }

    /// Stops the gateway, then the merchant.
    pub async fn stop(self) {
        self.gateway.stop().await;
        self.merchant.stop().await;
    }
}

/// Reads the 64-hex key in `path`, or generates one and writes it there (mode 0600 on Unix,
/// never overwriting a file that appeared meanwhile).
pub(crate) fn load_or_create_key(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let hex = text.trim().to_string();
            PrivateKey::from_hex(&hex).map_err(|e| {
                anyhow::anyhow!("{} does not hold a valid key: {e}", path.display())
            })?;
            Ok(hex)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write;
            let hex = PrivateKey::generate().to_hex().to_string();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            options
                .open(path)
                .and_then(|mut file| file.write_all(hex.as_bytes()))
                .with_context(|| format!("cannot write the key file {}", path.display()))?;
            Ok(hex)
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot read the key file {}: {e}",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = load_or_create_key(&path).unwrap();
        assert_eq!(load_or_create_key(&path).unwrap(), first);
        std::fs::write(&path, "not hex").unwrap();
        assert!(load_or_create_key(&path).is_err());
    }
}
