//! Gateway configuration: a TOML file and command-line flags, with generated dev defaults so
//! `opencharge-gateway` with no arguments starts on loopback and prints what it is.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// A static directory entry: an OCID with inline metadata JSON or a metadata URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryEntry {
    /// The OCID.
    pub ocid: u64,
    /// URL of its metadata document (fetched over HTTP with the resolver's rules).
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// The metadata document itself (config-nested JSON, config signature verified on load).
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

/// A partner gateway at which this gateway holds a reserve account: orders that accept the
/// partner (but not us) are settled through the partner's `/transfer/create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// The partner's OCID (resolved through the directory for its endpoint and key).
    pub ocid: u64,
}

/// The block of user OCIDs this gateway allocates to its accounts (one per account, on its
/// first `GET /app/receive`), inclusive: the operator holds these OCIDs in the registry for
/// the gateway's users. In TOML `user_ocids = { first = 200001, last = 200999 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserOcidRange {
    /// The first OCID of the block.
    pub first: u64,
    /// The last OCID of the block (inclusive).
    pub last: u64,
}

impl UserOcidRange {
    /// The development and test block of a gateway with OCID `gateway`:
    /// `gateway * 1000 + 1 ..= gateway * 1000 + 999` (gateway 200: 200001–200999), which no
    /// other party of the dev and test networks uses. `None` when that would overflow.
    pub fn dev_block(gateway: u64) -> Option<UserOcidRange> {
        let base = gateway.checked_mul(1000)?;
        Some(UserOcidRange {
            first: base.checked_add(1)?,
            last: base.checked_add(999)?,
        })
    }

    /// Whether `ocid` lies in the block.
    pub fn contains(&self, ocid: u64) -> bool {
        (self.first..=self.last).contains(&ocid)
    }
}

/// `[push]`: wake-ups through FCM and APNs (see `docs/push.md`). A provider without its
/// table sends nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// `[push.fcm]`: Firebase Cloud Messaging HTTP v1.
    pub fcm: Option<FcmConfig>,
    /// `[push.apns]`: Apple Push Notification service, token authentication.
    pub apns: Option<ApnsConfig>,
    /// Delays between attempts of a refused wake-up (429, 5xx, network), seconds; a
    /// `Retry-After` longer than the delay wins. After the last one the wake-up is `failed`.
    pub retry_secs: Vec<i64>,
    /// A wake-up not sent within this many seconds of its event is dropped (`failed`): the
    /// prompt behind it has expired or been seen by then.
    pub max_age_secs: i64,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            fcm: None,
            apns: None,
            retry_secs: vec![1, 5, 15, 60, 120],
            max_age_secs: 600,
        }
    }
}

/// The real FCM endpoint (`https://fcm.googleapis.com`).
pub const FCM_ENDPOINT: &str = "https://fcm.googleapis.com";
/// The real APNs production host.
pub const APNS_PRODUCTION_ENDPOINT: &str = "https://api.push.apple.com";
/// The real APNs sandbox (development) host.
pub const APNS_SANDBOX_ENDPOINT: &str = "https://api.sandbox.push.apple.com";

/// `[push.fcm]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmConfig {
    /// The Firebase project id (`POST {endpoint}/v1/projects/{project_id}/messages:send`).
    pub project_id: String,
    /// The service account JSON key file downloaded from the Firebase console (its
    /// `client_email`, `private_key` and `token_uri` are used).
    pub service_account_file: PathBuf,
    /// FCM base URL; defaults to [`FCM_ENDPOINT`]. A loopback `http://` URL only in dev mode.
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// `[push.apns]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {
    /// The Apple developer team id (the JWT's `iss`).
    pub team_id: String,
    /// The id of the APNs authentication key (the JWT's `kid`).
    pub key_id: String,
    /// The `.p8` key file (PKCS#8 PEM, P-256).
    pub key_file: PathBuf,
    /// The app's bundle id (`apns-topic`).
    pub topic: String,
    /// One base URL for both environments (tests, a loopback fake in dev mode); by default
    /// production tokens go to [`APNS_PRODUCTION_ENDPOINT`] and sandbox tokens to
    /// [`APNS_SANDBOX_ENDPOINT`].
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Extra CA certificate (PEM) trusted for `endpoint`: a loopback test server's CA. Only
    /// with `dev_mode = true`; the real APNs hosts are checked against the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Everything the gateway needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// This gateway's OCID.
    pub ocid: u64,
    /// Display name published in metadata.
    pub name: String,
    /// Profile text published in metadata.
    pub profile: Option<String>,
    /// Icon URL published in metadata.
    pub icon: Option<String>,
    /// Path of the file holding the 64-hex private key; a fresh key is written there
    /// (atomically, mode 0600) if it is missing. Unset: `<database without extension>.key`
    /// beside a SQLite database (see [`GatewayConfig::key_path`]); required with PostgreSQL. The database is bound to the
    /// key it was created under: start with another key is refused (rotate on purpose with
    /// `opencharge gateway rotate-key`; `docs/operating.md`, "Keys and identity").
    pub key_file: Option<PathBuf>,
    /// Address to listen on. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Public base URL (scheme and host, e.g. `https://api.wallet.example`); defaults to
    /// `http://<listen address>`.
    pub public_url: Option<String>,
    /// Base path of the Opencharge API, e.g. `/opencharge`.
    pub base_path: String,
    /// Where the data lives: a SQLite file path (one process; the default) or a
    /// `postgres://` / `postgresql://` URL (one database shared by any number of instances; then
    /// `key_file` must be set, the same file on every instance). In TOML one string.
    pub database: crate::database::Database,
    /// Most connections this instance opens to a PostgreSQL database (its pool; the LISTEN
    /// connection comes on top), default 16. Keep `database_pool_size + 1` times the number of
    /// instances (plus your other clients) below the server's `max_connections`. Unused with
    /// SQLite (one writer thread and three readers).
    pub database_pool_size: usize,
    /// ISO 4217 currencies we settle.
    pub currencies: Vec<String>,
    /// OCIDs whose proofs we accept (our own is always accepted).
    pub accepts: Vec<u64>,
    /// Static OCID directory.
    pub directory: Vec<DirectoryEntry>,
    /// Also resolve unknown OCIDs by fetching `metadata_url_template` (with `{ocid}`).
    pub metadata_url_template: Option<String>,
    /// Allow plain-HTTP metadata and webhook URLs on loopback hosts (tests, demo). Never in production.
    pub allow_loopback_http: bool,
    /// Partner gateways holding our reserve accounts.
    pub partners: Vec<PartnerConfig>,
    /// The block of user OCIDs given to this gateway's accounts (paying a person, receiving
    /// with `GET /app/receive`); `None` (the default): this gateway issues no user OCIDs.
    pub user_ocids: Option<UserOcidRange>,
    /// Enable the `/dev` endpoints that create and fund accounts. Never in production.
    pub dev_mode: bool,
    /// Lifetime of a wallet QR session, seconds.
    pub session_ttl_secs: i64,
    /// Lifetime of a hosted checkout session, seconds.
    pub checkout_ttl_secs: i64,
    /// Longest order lifetime accepted (`expiresAt - now`), seconds.
    pub max_order_ttl_secs: i64,
    /// Webhook retry delays in seconds; after the last one the delivery is marked failed.
    pub webhook_retry_secs: Vec<i64>,
    /// How often the background worker runs (webhooks, expiry), milliseconds.
    pub worker_interval_ms: u64,
    /// How long a claimed webhook delivery or push wake-up stays leased to the instance that
    /// claimed it, seconds (default 60). Other instances do not take the row before the lease
    /// ends; recording the attempt ends it. The rows claimed by an instance that was killed
    /// go to the others once their lease is over, so keep it above the longest delivery
    /// (HTTP timeouts included) and as short as you want such a delivery to wait.
    pub queue_lease_seconds: u64,
    /// SSE heartbeat interval, seconds.
    pub sse_heartbeat_secs: u64,
    /// Push wake-ups (`[push]`, `[push.fcm]`, `[push.apns]`).
    pub push: PushConfig,
    /// Connection, request and stream limits (`[limits]`, see [`crate::limits::LimitsConfig`]).
    /// Connections and streams are counted per instance; open sessions in the database.
    pub limits: crate::limits::LimitsConfig,
    /// `[rate_limits]`: request budgets per sender OCID and per device
    /// ([`crate::api::rate_limit::RateLimitConfig`]; 0 = off). The buckets live in each
    /// instance's memory: behind a load balancer with N instances a sender gets up to N times
    /// the budget (docs/operating.md, "Many instances").
    pub rate_limits: crate::api::rate_limit::RateLimitConfig,
    /// Address of the operations listener serving `/metrics`, `/healthz` and `/readyz`
    /// (Prometheus scrapes it; keep it off the public network). In TOML an address string,
    /// e.g. `metrics_listen = "127.0.0.1:9700"` (the default), or `metrics_listen = "off"`.
    #[serde(with = "crate::ops::metrics::listen_setting")]
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            ocid: 200,
            name: "Opencharge Reference Gateway (dev)".into(),
            profile: Some("Reference Opencharge Payment Gateway".into()),
            icon: None,
            key_file: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8700)),
            public_url: None,
            base_path: "/opencharge".into(),
            database: crate::database::Database::default(),
            database_pool_size: 16,
            currencies: vec!["USD".into(), "EUR".into(), "UGX".into()],
            accepts: vec![],
            directory: vec![],
            metadata_url_template: None,
            allow_loopback_http: false,
            partners: vec![],
            user_ocids: None,
            dev_mode: false,
            session_ttl_secs: 300,
            checkout_ttl_secs: 1800,
            max_order_ttl_secs: 86_400,
            webhook_retry_secs: vec![60, 300, 1800, 7200, 43_200, 86_400],
            worker_interval_ms: 250,
            queue_lease_seconds: 60,
            sse_heartbeat_secs: 15,
            push: PushConfig::default(),
            limits: crate::limits::LimitsConfig::default(),
            rate_limits: Default::default(),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9700))),
        }
    }
}

/// A configuration problem, reported before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The TOML is invalid.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// File path.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// A value breaks a rule.
    #[error("invalid config value: {0}")]
    Invalid(String),
}

impl GatewayConfig {
    /// [`GatewayConfig::queue_lease_seconds`] as the `i64` the store's clock uses (at least 1).
    pub fn queue_lease_secs(&self) -> i64 {
        i64::try_from(self.queue_lease_seconds.max(1)).unwrap_or(i64::MAX)
    }

    /// Reads a TOML file; missing keys take their defaults.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: GatewayConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The no-configuration developer setup: loopback only, `/dev` endpoints on, loopback
    /// HTTP allowed, database `opencharge-gateway.sqlite3` in the working directory with its
    /// key `opencharge-gateway.key` beside it, user OCIDs 200001–200999
    /// ([`UserOcidRange::dev_block`]). A TOML file never gets these by omission: `dev_mode`
    /// and `allow_loopback_http` default to off, `user_ocids` to none.
    pub fn dev_defaults() -> Self {
        let defaults = GatewayConfig::default();
        GatewayConfig {
            dev_mode: true,
            allow_loopback_http: true,
            user_ocids: UserOcidRange::dev_block(defaults.ocid),
            ..defaults
        }
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.database_pool_size == 0 {
            return Err(ConfigError::Invalid(
                "database_pool_size must be at least 1 (default 16)".into(),
            ));
        }
        if self.database.postgres_url().is_some() && self.key_file.is_none() {
            return Err(ConfigError::Invalid(format!(
                "database {} is PostgreSQL, so key_file must be set: there is no file to keep \
                 the key beside, and every instance on this database must sign with the same \
                 key. Set key_file = \"/path/to/gateway.key\" (the same file, copied securely, \
                 on every instance; docs/operating.md, \"Many instances\")",
                self.database.redacted()
            )));
        }
        if !self.base_path.is_empty()
            && (!self.base_path.starts_with('/') || self.base_path.ends_with('/'))
        {
            return Err(ConfigError::Invalid(format!(
                "base_path must be empty or start with '/' and not end with '/': {:?}",
                self.base_path
            )));
        }
        for currency in &self.currencies {
            opencharge_protocol::money::Currency::parse(currency)
                .map_err(|e| ConfigError::Invalid(format!("currency {currency}: {e}")))?;
        }
        if self.session_ttl_secs <= 0 || self.checkout_ttl_secs <= 0 || self.max_order_ttl_secs <= 0
        {
            return Err(ConfigError::Invalid("lifetimes must be positive".into()));
        }
        if self.webhook_retry_secs.iter().any(|s| *s <= 0) {
            return Err(ConfigError::Invalid(
                "webhook_retry_secs must be positive".into(),
            ));
        }
        if let Some(range) = &self.user_ocids {
            if range.first > range.last {
                return Err(ConfigError::Invalid(format!(
                    "user_ocids: first {} is after last {}; give an inclusive block, e.g. \
                     user_ocids = {{ first = 200001, last = 200999 }}",
                    range.first, range.last
                )));
            }
            if range.contains(self.ocid) {
                return Err(ConfigError::Invalid(format!(
                    "user_ocids {}..={} contains the gateway's own OCID {}; choose a block of \
                     OCIDs held for users only",
                    range.first, range.last, self.ocid
                )));
            }
            if range.last > opencharge_protocol::qr::MAX_QR_INTEGER
                || i64::try_from(range.last).is_err()
            {
                return Err(ConfigError::Invalid(format!(
                    "user_ocids: last {} is larger than 2^53 - 1, the largest OCID a QR code carries",
                    range.last
                )));
            }
        }
        self.limits.validate().map_err(ConfigError::Invalid)?;
        opencharge_peer::exposure::check(&opencharge_peer::exposure::Exposure {
            listen: self.listen,
            public_url: self.public_url.as_deref(),
            dev_mode: self.dev_mode,
            allow_loopback_http: self.allow_loopback_http,
        })
        .map_err(ConfigError::Invalid)?;
        self.validate_push()
    }

    /// Checks `[push]`: positive delays and age, non-empty names, and endpoints that are
    /// `https://` (or a loopback `http://` URL in dev mode).
    fn validate_push(&self) -> Result<(), ConfigError> {
        let push = &self.push;
        if push.retry_secs.iter().any(|s| *s <= 0) || push.max_age_secs <= 0 {
            return Err(ConfigError::Invalid(
                "push.retry_secs and push.max_age_secs must be positive".into(),
            ));
        }
        let mut endpoints = Vec::new();
        if let Some(fcm) = &push.fcm {
            if fcm.project_id.trim().is_empty() {
                return Err(ConfigError::Invalid("push.fcm.project_id is empty".into()));
            }
            endpoints.push(("push.fcm.endpoint", fcm.endpoint.as_deref()));
        }
        if let Some(apns) = &push.apns {
            for (name, value) in [
                ("push.apns.team_id", &apns.team_id),
                ("push.apns.key_id", &apns.key_id),
                ("push.apns.topic", &apns.topic),
            ] {
                if value.trim().is_empty() {
                    return Err(ConfigError::Invalid(format!("{name} is empty")));
                }
            }
            if apns.ca_file.is_some() && !self.dev_mode {
                return Err(ConfigError::Invalid(
                    "push.apns.ca_file is for loopback test servers and needs dev_mode = true"
                        .into(),
                ));
            }
            endpoints.push(("push.apns.endpoint", apns.endpoint.as_deref()));
        }
        for (name, endpoint) in endpoints {
            let Some(endpoint) = endpoint else { continue };
            let url = url::Url::parse(endpoint)
                .map_err(|e| ConfigError::Invalid(format!("{name} {endpoint:?}: {e}")))?;
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            let allowed = match url.scheme() {
                "https" => !loopback || self.dev_mode,
                "http" => loopback && self.dev_mode,
                _ => false,
            };
            if !allowed {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be an https:// URL of the push service (a loopback URL only \
                     with dev_mode = true): {endpoint:?}"
                )));
            }
        }
        Ok(())
    }

    /// The public base URL without the base path (scheme, host, port).
    pub fn public_base(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{bound}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_database_needs_a_key_file() {
        let url = "postgres://opencharge:hunter2@127.0.0.1:5432/gw";
        let config: GatewayConfig = toml::from_str(&format!("database = {url:?}")).unwrap();
        assert_eq!(config.database.postgres_url(), Some(url));
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("key_file must be set"), "{err}");
        assert!(
            err.contains("postgres://opencharge:***@127.0.0.1:5432/gw"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");

        let config: GatewayConfig = toml::from_str(&format!(
            "database = {url:?}\nkey_file = \"/etc/opencharge/gateway.key\""
        ))
        .unwrap();
        config.validate().unwrap();
        assert_eq!(
            config.key_path(),
            PathBuf::from("/etc/opencharge/gateway.key")
        );
    }

    #[test]
    fn user_ocid_blocks_are_checked() {
        let mut config = GatewayConfig::default();
        config.validate().unwrap();
        config.user_ocids = Some(UserOcidRange {
            first: 200001,
            last: 200999,
        });
        config.validate().unwrap();
        for (first, last, needle) in [
            (300, 299, "after last"),
            (100, 300, "own OCID 200"),
            (201, 1 << 53, "2^53"),
        ] {
            config.user_ocids = Some(UserOcidRange { first, last });
            let e = config.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        let toml_text = "user_ocids = { first = 500001, last = 500002 }";
        let parsed: GatewayConfig = toml::from_str(toml_text).unwrap();
        assert_eq!(
            parsed.user_ocids,
            Some(UserOcidRange {
                first: 500001,
                last: 500002
            })
        );
        assert_eq!(GatewayConfig::default().user_ocids, None);
        let dev = GatewayConfig::dev_defaults();
        assert_eq!(dev.user_ocids, UserOcidRange::dev_block(200));
        assert_eq!(
            UserOcidRange::dev_block(200),
            Some(UserOcidRange {
                first: 200001,
                last: 200999
            })
        );
        assert_eq!(UserOcidRange::dev_block(u64::MAX), None);
        dev.validate().unwrap();
    }

    #[test]
    fn a_sqlite_database_keeps_its_key_beside_it() {
        let config: GatewayConfig = toml::from_str("database = \"data/gw.sqlite3\"").unwrap();
        config.validate().unwrap();
        assert_eq!(config.key_path(), PathBuf::from("data/gw.key"));
        assert_eq!(
            GatewayConfig::default().database.sqlite_path(),
            Some(std::path::Path::new("opencharge-gateway.sqlite3"))
        );
    }
}
