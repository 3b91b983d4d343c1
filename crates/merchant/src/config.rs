//! The merchant's configuration: identity, listening address, storage, settlement terms, the
//! OCID directory used to find gateways, and the inventory, with validation before start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use opencharge_protocol::canonical::MAX_SAFE_INTEGER;
use opencharge_protocol::keys::PrivateKey;
use opencharge_protocol::money::{Amount, Currency};
use serde::{Deserialize, Serialize};

use crate::client::check_outbound_url;
use crate::error::MerchantError;

/// Longest order lifetime accepted in the configuration, seconds (24 h, the reference
/// gateway's default cap on `expiresAt - now`).
pub const MAX_ORDER_TTL_SECS: u64 = 86_400;

/// Default lifetime of a third-party payment, seconds (the Merchant Gateway docs' one hour).
pub const DEFAULT_PAYMENT_TTL_SECS: u64 = 3_600;

/// Longest item id, name, reference or memo accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 256;

/// How to find one counterparty (normally a payment gateway): its OCID and the URL of its
/// metadata document. The document is fetched over HTTP, its config signature verified, and
/// the result cached for five minutes. A URL whose path does not end in `.json` is an API
/// endpoint and gets `/metadata.json` appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryEntry {
    /// The counterparty's OCID.
    pub ocid: u64,
    /// Where its metadata document lives.
    pub metadata_url: String,
}

/// One item the merchant sells, as served by `GET /inventory` and priced by
/// `POST /orders/create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryItem {
    /// Item id (what wallets send back in `items[].id`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Unit price, an exact decimal string in the inventory currency (e.g. `"4.50"`).
    pub price: String,
}

/// Everything a merchant needs to run. Missing keys in a serialised config take the
/// [`Default`] values.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MerchantConfig {
    /// The merchant's OCID.
    pub ocid: u64,
    /// Display name published in the metadata.
    pub name: String,
    /// Icon URL published in the metadata.
    pub icon: Option<String>,
    /// The 64-hex private key. When `None` the key lives in the key file
    /// `<database without extension>.key` beside the database (created, 0600, on first
    /// start; see [`MerchantConfig::key_path`]). The database is bound to the key and OCID it
    /// was created under: a start with another one is refused.
    pub key_hex: Option<String>,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Public base URL (scheme, host, port, no path); defaults to `http://<bound address>`.
    pub public_url: Option<String>,
    /// Base path of the Opencharge API, e.g. `/opencharge` (empty or starting with `/`, not
    /// ending with `/`).
    pub base_path: String,
    /// SQLite database file (orders, accepted proofs, request nonces).
    pub database: PathBuf,
    /// ISO 4217 currencies orders may be priced in.
    pub currencies: Vec<String>,
    /// OCIDs of the payment gateways whose proofs are accepted (published as
    /// `settlement.accepts`, written into every order's `accepts`).
    pub accepts: Vec<u64>,
    /// Third-party settlement (the merchant as its own Merchant Gateway): the settlement
    /// providers whose proofs settle a payment made with `POST /payment/create`, in preference
    /// order (answered as `settlement.accepts`, published in the metadata's
    /// `settlement.accepts` after `accepts`). `None` (the default) means the same OCIDs as
    /// `accepts`; `Some(vec![])` turns third-party settlement off (`/payment/create` answers
    /// 400 `SETTLEMENT_NOT_SUPPORTED`). Each provider must be in the directory so its
    /// signatures can be checked.
    pub settlement_providers: Option<Vec<u64>>,
    /// Default lifetime of a third-party payment (`expiresAt - createdAt` when the creator
    /// gives no `expiresAt`), seconds; 3600 by default, at most [`MAX_ORDER_TTL_SECS`].
    pub payment_ttl_secs: u64,
    /// How to find gateways' metadata.
    pub directory: Vec<DirectoryEntry>,
    /// Allow plain `http://` to loopback hosts (tests and the demo). Never in production.
    pub allow_loopback_http: bool,
    /// Lifetime of an order (`expiresAt - createdAt`), seconds.
    pub order_ttl_secs: u64,
    /// Items served by `GET /inventory`.
    pub inventory: Vec<InventoryItem>,
    /// Currency of the inventory prices.
    pub inventory_currency: String,
    /// Serve the unauthenticated `/dev/*` control API (create, post, check out, cancel and
    /// read orders; the inventory QR) under the base path. Development only: anyone who can
    /// reach the listener can drive the merchant. Off by default and in every TOML file that
    /// does not say `dev_mode = true`.
    pub dev_mode: bool,
}

impl std::fmt::Debug for MerchantConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerchantConfig")
            .field("ocid", &self.ocid)
            .field("name", &self.name)
            .field("icon", &self.icon)
            .field("key_hex", &self.key_hex.as_ref().map(|_| "<redacted>"))
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("base_path", &self.base_path)
            .field("database", &self.database)
            .field("currencies", &self.currencies)
            .field("accepts", &self.accepts)
            .field("settlement_providers", &self.settlement_providers)
            .field("payment_ttl_secs", &self.payment_ttl_secs)
            .field("directory", &self.directory)
            .field("allow_loopback_http", &self.allow_loopback_http)
            .field("order_ttl_secs", &self.order_ttl_secs)
            .field("inventory", &self.inventory)
            .field("inventory_currency", &self.inventory_currency)
            .field("dev_mode", &self.dev_mode)
            .finish()
    }
}

impl Default for MerchantConfig {
    fn default() -> Self {
        MerchantConfig {
            ocid: 500,
            name: "Opencharge Merchant".into(),
            icon: None,
            key_hex: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8710)),
            public_url: None,
            base_path: "/opencharge".into(),
            database: PathBuf::from("opencharge-merchant.sqlite3"),
            currencies: vec!["USD".into()],
            accepts: Vec::new(),
            settlement_providers: None,
            payment_ttl_secs: DEFAULT_PAYMENT_TTL_SECS,
            directory: Vec::new(),
            allow_loopback_http: false,
            order_ttl_secs: 300,
            inventory: Vec::new(),
            inventory_currency: "USD".into(),
            dev_mode: false,
        }
    }
}

impl MerchantConfig {
    /// A configuration for tests and demos: loopback on a free port, the database in `dir`,
    /// loopback HTTP allowed, name "Test Coffee", USD, accepting proofs from `accepts`, and a
    /// small inventory (`tea` "Tea" 4.50, `cake` "Cake" 3.25).
    pub fn for_tests(dir: &Path, ocid: u64, accepts: Vec<u64>) -> MerchantConfig {
        MerchantConfig {
            ocid,
            name: "Test Coffee".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: dir.join(format!("merchant-{ocid}.sqlite3")),
            currencies: vec!["USD".into()],
            accepts,
            allow_loopback_http: true,
            inventory: vec![
                InventoryItem {
                    id: "tea".into(),
                    name: "Tea".into(),
                    price: "4.50".into(),
                },
                InventoryItem {
                    id: "cake".into(),
                    name: "Cake".into(),
                    price: "3.25".into(),
                },
            ],
            inventory_currency: "USD".into(),
            dev_mode: false,
            ..MerchantConfig::default()
        }
    }

    /// The no-configuration developer setup: OCID 500, name "Opencharge Dev Merchant",
    /// listening on `127.0.0.1:8710` under `/opencharge`, the `/dev` control API on, plain
    /// HTTP to loopback allowed, the database `opencharge-merchant.sqlite3` in the working
    /// directory, USD, and a small inventory (`tea` 4.50, `cake` 3.25, `coffee` 2.50). No
    /// gateway is known or accepted yet: add [`DirectoryEntry`]s and `accepts` before use.
    /// A TOML file never gets these by omission: `dev_mode` and `allow_loopback_http`
    /// default to off.
    pub fn dev_defaults() -> MerchantConfig {
        let item = |id: &str, name: &str, price: &str| InventoryItem {
            id: id.into(),
            name: name.into(),
            price: price.into(),
        };
        MerchantConfig {
            name: "Opencharge Dev Merchant".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8710)),
            database: PathBuf::from("opencharge-merchant.sqlite3"),
            allow_loopback_http: true,
            dev_mode: true,
            inventory: vec![
                item("tea", "Tea", "4.50"),
                item("cake", "Cake", "3.25"),
                item("coffee", "Coffee", "2.50"),
            ],
            inventory_currency: "USD".into(),
            ..MerchantConfig::default()
        }
    }

    /// Reads a TOML configuration file (keys as the field names, e.g. `ocid = 500`,
    /// `listen = "127.0.0.1:8710"`, `[[inventory]]` and `[[directory]]` tables), fills
    /// missing keys with the [`Default`] values and [validates](MerchantConfig::validate) it.
    /// Relative paths (`database`) stay relative to the working directory. Every failure is
    /// [`MerchantError::Config`] naming the file.
    pub fn from_file(path: &Path) -> Result<MerchantConfig, MerchantError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| MerchantError::Config(format!("cannot read {}: {e}", path.display())))?;
        MerchantConfig::from_toml(&text).map_err(|e| match e {
            MerchantError::Config(m) => MerchantError::Config(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// [`MerchantConfig::from_file`] for TOML text already in memory: parses, fills missing
    /// keys with the defaults and validates.
    pub fn from_toml(text: &str) -> Result<MerchantConfig, MerchantError> {
        let config: MerchantConfig = toml::from_str(text)
            .map_err(|e| MerchantError::Config(format!("invalid TOML: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value serde cannot: names and ids, the base path, currencies, prices in
    /// the inventory currency, integer ranges that must fit in signed JSON, the key, and the
    /// URLs (directory entries and `public_url`) against the outbound URL rules.
    pub fn validate(&self) -> Result<(), MerchantError> {
        let bad = |m: String| Err(MerchantError::Config(m));
        if self.ocid > MAX_SAFE_INTEGER as u64 {
            return bad(format!("ocid {} is larger than 2^53 - 1", self.ocid));
        }
        if !is_display_text(&self.name) {
            return bad(format!(
                "name must be 1..={MAX_TEXT_CHARS} characters without control characters"
            ));
        }
        if !self.base_path.is_empty()
            && (!self.base_path.starts_with('/') || self.base_path.ends_with('/'))
        {
            return bad(format!(
                "base_path must be empty or start with '/' and not end with '/': {:?}",
                self.base_path
            ));
        }
        if self.currencies.is_empty() {
            return bad("currencies must name at least one ISO 4217 code".into());
        }
        for code in &self.currencies {
            let currency = Currency::parse(code)
                .map_err(|e| MerchantError::Config(format!("currency {code:?}: {e}")))?;
            if currency.code() != code {
                return bad(format!(
                    "currency {code:?} must be written {}",
                    currency.code()
                ));
            }
        }
        opencharge_peer::exposure::check(&opencharge_peer::exposure::Exposure {
            listen: self.listen,
            public_url: self.public_url.as_deref(),
            dev_mode: self.dev_mode,
            allow_loopback_http: self.allow_loopback_http,
        })
        .map_err(MerchantError::Config)?;
        for ocid in &self.accepts {
            if *ocid > MAX_SAFE_INTEGER as u64 {
                return bad(format!("accepts: OCID {ocid} is larger than 2^53 - 1"));
            }
        }
        for ocid in self.settlement_providers.iter().flatten() {
            if *ocid > MAX_SAFE_INTEGER as u64 {
                return bad(format!(
                    "settlement_providers: OCID {ocid} is larger than 2^53 - 1"
                ));
            }
        }
        if self.payment_ttl_secs == 0 || self.payment_ttl_secs > MAX_ORDER_TTL_SECS {
            return bad(format!(
                "payment_ttl_secs must be 1..={MAX_ORDER_TTL_SECS}, got {}",
                self.payment_ttl_secs
            ));
        }
        if self.order_ttl_secs == 0 || self.order_ttl_secs > MAX_ORDER_TTL_SECS {
            return bad(format!(
                "order_ttl_secs must be 1..={MAX_ORDER_TTL_SECS}, got {}",
                self.order_ttl_secs
            ));
        }
        if let Some(key) = &self.key_hex {
            PrivateKey::from_hex(key)
                .map_err(|e| MerchantError::Config(format!("key_hex: {e}")))?;
        }
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url)
                .map_err(|e| MerchantError::Config(format!("public_url {url:?}: {e}")))?;
            if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
                return bad(format!(
                    "public_url {url:?} must be scheme, host and port only (the path is base_path)"
                ));
            }
        }
        for entry in &self.directory {
            check_outbound_url(&entry.metadata_url, self.allow_loopback_http).map_err(|e| {
                MerchantError::Config(format!("directory entry {}: {e}", entry.ocid))
            })?;
        }
        self.validate_inventory()
    }

    fn validate_inventory(&self) -> Result<(), MerchantError> {
        let currency = Currency::parse(&self.inventory_currency).map_err(|e| {
            MerchantError::Config(format!(
                "inventory_currency {:?}: {e}",
                self.inventory_currency
            ))
        })?;
        if !self.inventory.is_empty() && !self.currencies.iter().any(|c| c == currency.code()) {
            return Err(MerchantError::Config(format!(
                "inventory_currency {} is not one of the configured currencies",
                currency.code()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for item in &self.inventory {
            if !is_display_text(&item.id) || !is_display_text(&item.name) {
                return Err(MerchantError::Config(format!(
                    "inventory item {:?}: id and name must be 1..={MAX_TEXT_CHARS} characters without control characters",
                    item.id
                )));
            }
            if !seen.insert(item.id.as_str()) {
                return Err(MerchantError::Config(format!(
                    "inventory item id {:?} appears twice",
                    item.id
                )));
            }
            let price = Amount::parse(&item.price).map_err(|e| {
                MerchantError::Config(format!("inventory item {:?} price: {e}", item.id))
            })?;
            price.check_currency(&currency).map_err(|e| {
                MerchantError::Config(format!("inventory item {:?} price: {e}", item.id))
            })?;
        }
        Ok(())
    }
}

impl MerchantConfig {
    /// The settlement providers whose proofs settle third-party payments:
    /// `settlement_providers`, or `accepts` when it is not set.
    pub fn payment_providers(&self) -> &[u64] {
        self.settlement_providers
            .as_deref()
            .unwrap_or(&self.accepts)
    }

    /// What the metadata publishes as `settlement.accepts`: `accepts`, then the settlement
    /// providers not already in it.
    pub fn published_accepts(&self) -> Vec<u64> {
        let mut all = self.accepts.clone();
        for ocid in self.payment_providers() {
            if !all.contains(ocid) {
                all.push(*ocid);
            }
        }
        all
    }
}

/// True for 1..=[`MAX_TEXT_CHARS`] characters without control characters.
pub(crate) fn is_display_text(text: &str) -> bool {
    !text.is_empty()
        && text.chars().count() <= MAX_TEXT_CHARS
        && !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> MerchantConfig {
        MerchantConfig::for_tests(Path::new("."), 500, vec![200])
    }

    #[test]
    fn test_config_is_valid() {
        base().validate().unwrap();
        MerchantConfig::default().validate().unwrap();
    }

    type Tweak = Box<dyn Fn(&mut MerchantConfig)>;

    #[test]
    fn bad_values_are_rejected_with_a_reason() {
        let cases: Vec<(Tweak, &str)> = vec![
            (Box::new(|c| c.name = String::new()), "name"),
            (Box::new(|c| c.base_path = "opencharge".into()), "base_path"),
            (Box::new(|c| c.base_path = "/oc/".into()), "base_path"),
            (Box::new(|c| c.currencies = vec![]), "currencies"),
            (Box::new(|c| c.currencies = vec!["usd".into()]), "currency"),
            (Box::new(|c| c.currencies = vec!["XAU".into()]), "currency"),
            (Box::new(|c| c.order_ttl_secs = 0), "order_ttl_secs"),
            (Box::new(|c| c.order_ttl_secs = 86_401), "order_ttl_secs"),
            (Box::new(|c| c.key_hex = Some("abcd".into())), "key_hex"),
            (
                Box::new(|c| c.public_url = Some("https://m.example/oc".into())),
                "public_url",
            ),
            (
                Box::new(|c| {
                    c.directory = vec![DirectoryEntry {
                        ocid: 200,
                        metadata_url: "http://pg.example/metadata.json".into(),
                    }]
                }),
                "directory entry 200",
            ),
            (Box::new(|c| c.inventory[0].price = "4.505".into()), "price"),
            (Box::new(|c| c.inventory[1].id = "tea".into()), "twice"),
            (
                Box::new(|c| c.inventory_currency = "EUR".into()),
                "inventory_currency",
            ),
            (Box::new(|c| c.accepts = vec![1 << 60]), "accepts"),
            (
                Box::new(|c| c.settlement_providers = Some(vec![1 << 60])),
                "settlement_providers",
            ),
            (Box::new(|c| c.payment_ttl_secs = 0), "payment_ttl_secs"),
            (
                Box::new(|c| c.payment_ttl_secs = 86_401),
                "payment_ttl_secs",
            ),
        ];
        for (tweak, needle) in cases {
            let mut config = base();
            tweak(&mut config);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn settlement_providers_default_to_accepts() {
        let mut config = base();
        assert_eq!(config.payment_ttl_secs, 3_600);
        assert_eq!(config.payment_providers(), &[200]);
        assert_eq!(config.published_accepts(), vec![200]);
        config.settlement_providers = Some(vec![300, 200]);
        assert_eq!(config.payment_providers(), &[300, 200]);
        assert_eq!(config.published_accepts(), vec![200, 300]);
        config.settlement_providers = Some(Vec::new());
        assert!(config.payment_providers().is_empty());
        let parsed =
            MerchantConfig::from_toml("settlement_providers = [300]\npayment_ttl_secs = 600")
                .unwrap();
        assert_eq!(parsed.settlement_providers, Some(vec![300]));
        assert_eq!(parsed.payment_ttl_secs, 600);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let mut config = base();
        config.key_hex = Some("11".repeat(32));
        let text = format!("{config:?}");
        assert!(!text.contains(&"11".repeat(32)));
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn dev_defaults_are_valid_loopback_and_dev() {
        let config = MerchantConfig::dev_defaults();
        config.validate().unwrap();
        assert!(config.dev_mode && config.allow_loopback_http);
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.listen.port(), 8710);
        assert_eq!(config.inventory.len(), 3);
        assert!(!MerchantConfig::default().dev_mode);
        assert!(!base().dev_mode);
        assert!(format!("{config:?}").contains("dev_mode: true"));
    }

    #[test]
    fn dev_settings_beyond_loopback_are_refused() {
        let reachable = |f: &dyn Fn(&mut MerchantConfig)| {
            let mut config = base();
            config.listen = "0.0.0.0:8710".parse().unwrap();
            config.public_url = Some("https://shop.example.com".into());
            config.allow_loopback_http = false;
            config.dev_mode = false;
            f(&mut config);
            config.validate()
        };
        reachable(&|_| {}).unwrap();
        let e = reachable(&|c| c.dev_mode = true).unwrap_err().to_string();
        assert!(
            e.contains("dev_mode") && e.contains("not a loopback"),
            "{e}"
        );
        let e = reachable(&|c| c.allow_loopback_http = true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow_loopback_http"), "{e}");
        let e = reachable(&|c| c.public_url = Some("http://shop.example.com".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("public_url") && e.contains("https://"), "{e}");
        let e = reachable(&|c| c.public_url = None).unwrap_err().to_string();
        assert!(e.contains("public_url"), "{e}");
    }

    #[test]
    fn toml_files_are_read_defaulted_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("merchant.toml");
        std::fs::write(
            &path,
            r#"
ocid = 501
name = "Corner Shop"
listen = "127.0.0.1:0"
accepts = [200]
allow_loopback_http = true
dev_mode = true

[[directory]]
ocid = 200
metadata_url = "http://127.0.0.1:8700/opencharge/metadata.json"

[[inventory]]
id = "bun"
name = "Bun"
price = "1.20"
"#,
        )
        .unwrap();
        let config = MerchantConfig::from_file(&path).unwrap();
        assert_eq!(config.ocid, 501);
        assert_eq!(config.name, "Corner Shop");
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.accepts, vec![200]);
        assert!(config.dev_mode);
        assert_eq!(config.directory[0].ocid, 200);
        assert_eq!(config.inventory[0].price, "1.20");
        // Missing keys take the defaults.
        assert_eq!(config.base_path, "/opencharge");
        assert_eq!(config.order_ttl_secs, 300);
        // A file without dev_mode gets it off.
        assert!(!MerchantConfig::from_toml("ocid = 7").unwrap().dev_mode);

        // Unknown keys, bad TOML, bad values and missing files all name the problem.
        for (text, needle) in [
            ("ocid = 7\ncolour = \"red\"", "colour"),
            ("ocid = ", "invalid TOML"),
            ("base_path = \"oc/\"", "base_path"),
            (
                "[[inventory]]\nid = \"x\"\nname = \"X\"\nprice = \"1.001\"",
                "price",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = MerchantConfig::from_file(&path).unwrap_err().to_string();
            assert!(
                err.contains(needle) && err.contains("merchant.toml"),
                "{needle}: {err}"
            );
        }
        let err = MerchantConfig::from_file(&dir.path().join("missing.toml")).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }

    #[test]
    fn loopback_directory_needs_the_flag() {
        let mut config = base();
        config.directory = vec![DirectoryEntry {
            ocid: 200,
            metadata_url: "http://127.0.0.1:9/opencharge/metadata.json".into(),
        }];
        config.validate().unwrap();
        config.allow_loopback_http = false;
        assert!(config.validate().is_err());
    }
}
