//! The loopback network builder: an embedded gateway (dev mode, loopback port, adjustable
//! clock; on SQLite or PostgreSQL, one instance or several on one PostgreSQL database), N
//! merchants that know it, funded dev accounts and wallets on the real core, with every file
//! (SQLite databases, keys, wallet data) under one data dir.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use opencharge_gateway::clock::{Clock, OffsetClock};
use opencharge_gateway::config::DirectoryEntry as GatewayDirectoryEntry;
use opencharge_gateway::database::{open_store, Database};
use opencharge_gateway::store::Store;
use opencharge_gateway::{Gateway, GatewayConfig, RunningGateway};
use opencharge_merchant::{
    DirectoryEntry as MerchantDirectoryEntry, Merchant, MerchantConfig, RunningMerchant,
};
use opencharge_peer::key_file::load_or_create_key;
use opencharge_protocol::types::SignedOrder;
use opencharge_wallet::{
    DirectoryEntry as WalletDirectoryEntry, PaymentPrompt, ScanResult, Wallet, WalletConfig,
};
use tokio::runtime::Handle;

use crate::backend::{DirectStore, GatewayDatabase, TestBackend};
use crate::dev::{Account, DevClient, TestWallet};
use crate::device::{read, AppDevice};
use crate::drop_proxy::DropProxy;
use crate::orders::coffee_order;
use crate::parties::gateway_config;
use crate::tls::{BoundFront, ServerIdentity, TestCa, TlsFront};
use crate::{GATEWAY_OCID, MERCHANT_OCID};

/// Adjusts merchant `index`'s configuration before it starts.
type MerchantTweak = Box<dyn Fn(usize, &mut MerchantConfig) + Send + Sync>;
/// Adjusts the gateway's configuration before it starts.
type GatewayTweak = Box<dyn FnOnce(&mut GatewayConfig) + Send>;

/// How many wallets the builder opens at once.
const WALLETS_AT_ONCE: usize = 8;

/// Options of a [`Network`]; [`NetworkBuilder::start`] starts it.
pub struct NetworkBuilder {
    data_dir: Option<PathBuf>,
    merchants: usize,
    wallets: usize,
    funds: Option<String>,
    persistent_keys: bool,
    runtime: Option<Handle>,
    merchant_tweak: Option<MerchantTweak>,
    gateway_tweak: Option<GatewayTweak>,
    tls: bool,
    database: Option<DatabaseChoice>,
    instances: usize,
}

/// A database chosen on the builder instead of the one `OPENCHARGE_TEST_BACKEND` picks.
enum DatabaseChoice {
    /// The SQLite file under the data dir, whatever the environment says.
    DefaultSqlite,
    /// This database (the caller's: the kit creates none and drops none).
    Given(Database),
}

impl Default for NetworkBuilder {
    fn default() -> Self {
        NetworkBuilder {
            data_dir: None,
            merchants: 1,
            wallets: 0,
            funds: None,
            persistent_keys: false,
            runtime: None,
            merchant_tweak: None,
            gateway_tweak: None,
            tls: false,
            database: None,
            instances: 1,
        }
    }
}

impl NetworkBuilder {
    /// Keep every file in `dir` (created if missing) instead of a temporary directory that is
    /// deleted when the network is dropped.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// How many merchants (default 1): OCIDs [`MERCHANT_OCID`], +1, ...; each accepts the
    /// gateway's proofs. 0 starts the gateway alone (for tests that stand in for merchants
    /// themselves; [`Network::merchant`] then panics).
    pub fn merchants(mut self, count: usize) -> Self {
        self.merchants = count;
        self
    }

    /// How many wallets to open at start (default 0), each registered to its own dev account
    /// (funded with [`NetworkBuilder::fund`]) and kept in [`Network::wallets`] in order.
    /// Wallet `i` is named `w<i as 4 digits>`, its account `wallet-<i>`.
    pub fn wallets(mut self, count: usize) -> Self {
        self.wallets = count;
        self
    }

    /// What each started wallet's account is funded with: `"50.00 USD"` (a bare decimal means
    /// USD). Without it the accounts start empty.
    pub fn fund(mut self, amount: &str) -> Self {
        self.funds = Some(amount.to_string());
        self
    }

    /// Keep the merchants' keys in files under the data dir (created once, reloaded on the
    /// next start), as the gateway always does; by default merchant keys live in memory only.
    pub fn persistent_keys(mut self) -> Self {
        self.persistent_keys = true;
        self
    }

    /// Start the gateway and the merchants on this runtime (so their work is counted apart
    /// from the caller's); by default they run on the caller's runtime.
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Adjust each merchant's configuration (`index` from 0) before it starts. The default is
    /// `MerchantConfig::for_tests` with a database under `<data dir>/merchant`.
    pub fn merchant_config(
        mut self,
        tweak: impl Fn(usize, &mut MerchantConfig) + Send + Sync + 'static,
    ) -> Self {
        self.merchant_tweak = Some(Box::new(tweak));
        self
    }

    /// Adjust the gateway's configuration before it starts (its directory of merchants is
    /// filled in before this runs). The default is [`gateway_config`] under
    /// `<data dir>/gateway`.
    pub fn gateway_config(
        mut self,
        tweak: impl FnOnce(&mut GatewayConfig) + Send + 'static,
    ) -> Self {
        self.gateway_tweak = Some(Box::new(tweak));
        self
    }

    /// Serve the gateway over real TLS: a test CA ([`NetworkTls::ca`]) issues a `localhost`
    /// certificate, a TLS front on a loopback port forwards to the gateway, and the gateway
    /// publishes `https://localhost:<front port>` as its endpoint. Wallet configurations
    /// ([`Network::wallet_config`]) then trust the CA, and [`Network::http`] too. Merchants
    /// fetch the gateway's metadata from its plain loopback address (their HTTP client does
    /// not trust the test CA), so merchant-to-gateway calls (flow 1, hosted checkout) are not
    /// available on such a network: pay by scanning merchant orders (flow 2).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Put the gateway on this PostgreSQL database (`postgres://...`), which the caller owns:
    /// the kit creates no database and drops none. Without it (and without
    /// [`NetworkBuilder::sqlite`]) `OPENCHARGE_TEST_BACKEND` decides: unset or `sqlite`, a
    /// SQLite file under the data dir; `postgres`, a fresh database ([`crate::pg::TestDatabase`])
    /// that lives as long as the network.
    pub fn postgres(self, url: impl Into<String>) -> Self {
        self.database(Database::Postgres(url.into()))
    }

    /// Put the gateway on this database, a SQLite file or a PostgreSQL URL, which the caller
    /// owns (the kit creates none and drops none; the gateway creates a missing SQLite file).
    pub fn database(mut self, database: Database) -> Self {
        self.database = Some(DatabaseChoice::Given(database));
        self
    }

    /// Put the gateway on its SQLite file under the data dir whatever
    /// `OPENCHARGE_TEST_BACKEND` says (`opencharge demo`, suites about SQLite files: locks,
    /// backups).
    pub fn sqlite(mut self) -> Self {
        self.database = Some(DatabaseChoice::DefaultSqlite);
        self
    }

    /// Start `count` gateway instances (default 1) on the one PostgreSQL database, each on its
    /// own loopback port ([`Network::gateway_endpoints`] reach each directly), with the same
    /// key file, OCID and configuration. With more than one, a front ([`Network::front`], a
    /// [`DropProxy`] on a loopback port) stands where a load balancer would: it sends each
    /// request to the next instance in turn, every instance publishes its URL as `public_url`
    /// (unless the configuration sets another), and [`Network::endpoint`], the wallets and the
    /// merchants use it (on a TLS network the TLS front forwards to it).
    /// [`NetworkBuilder::start`] refuses more than one instance on SQLite.
    pub fn gateway_instances(mut self, count: usize) -> Self {
        self.instances = count;
        self
    }

    /// Starts the merchants, then a gateway whose directory knows them (then its other
    /// instances), then tells each merchant where the gateway's metadata is, then opens the
    /// wallets.
    pub async fn start(self) -> anyhow::Result<Network> {
        let backend = match &self.database {
            Some(DatabaseChoice::DefaultSqlite) => TestBackend::Sqlite,
            Some(DatabaseChoice::Given(Database::Sqlite(_))) => TestBackend::Sqlite,
            Some(DatabaseChoice::Given(Database::Postgres(_))) => TestBackend::Postgres,
            None => TestBackend::from_env()?,
        };
        if self.instances == 0 {
            bail!("gateway_instances(0): a network needs at least one gateway instance");
        }
        if self.instances > 1 && backend == TestBackend::Sqlite {
            bail!(
                "{} gateway instances need PostgreSQL: instances share one database and a \
                 SQLite file belongs to one process; give a postgres:// database (or set \
                 OPENCHARGE_TEST_BACKEND=postgres in tests)",
                self.instances
            );
        }
        let (temp, data_dir) = match &self.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("opencharge-")
                    .tempdir()
                    .context("cannot create a temporary data dir")?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        let merchant_dir = data_dir.join("merchant");
        let gateway_dir = data_dir.join("gateway");
        for dir in [&merchant_dir, &gateway_dir] {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let database = match &self.database {
            Some(DatabaseChoice::Given(database)) => GatewayDatabase::existing(database.clone()),
            _ => GatewayDatabase::create(backend, &gateway_dir).await?,
        };

        let mut merchants = Vec::with_capacity(self.merchants);
        for index in 0..self.merchants {
            let ocid = MERCHANT_OCID + index as u64;
            let mut config = MerchantConfig::for_tests(&merchant_dir, ocid, vec![GATEWAY_OCID]);
            if self.persistent_keys {
                let file = match index {
                    0 => "merchant.key".to_string(),
                    _ => format!("merchant-{ocid}.key"),
                };
                config.key_hex = Some(
                    load_or_create_key(&merchant_dir.join(file))?
                        .to_hex()
                        .to_string(),
                );
            }
            if let Some(tweak) = &self.merchant_tweak {
                tweak(index, &mut config);
            }
            match on(&self.runtime, Merchant::start(config)).await? {
                Ok(merchant) => merchants.push(Arc::new(merchant)),
                Err(e) => {
                    stop_merchants(&self.runtime, merchants).await;
                    bail!("cannot start merchant {ocid}: {e}");
                }
            }
        }

        let tls = match self.tls {
            true => match NetworkTls::bind().await {
                Ok(tls) => Some(tls),
                Err(e) => {
                    stop_merchants(&self.runtime, merchants).await;
                    return Err(e);
                }
            },
            false => None,
        };
        let front = match self.instances {
            1 => None,
            _ => match on(&self.runtime, DropProxy::start()).await? {
                Ok(front) => Some(front),
                Err(e) => {
                    stop_merchants(&self.runtime, merchants).await;
                    return Err(e);
                }
            },
        };
        let mut config = gateway_config(&gateway_dir);
        config.ocid = GATEWAY_OCID;
        config.database = database.database().clone();
        if let Some(front) = &front {
            config.public_url = Some(front.url());
        }
        if let Some((bound, _, _)) = &tls {
            config.public_url = Some(format!("https://localhost:{}", bound.port()));
        }
        config.directory = merchants
            .iter()
            .map(|m| GatewayDirectoryEntry {
                ocid: m.ocid(),
                metadata_url: Some(m.metadata_url()),
                metadata: None,
            })
            .collect();
        if let Some(tweak) = self.gateway_tweak {
            tweak(&mut config);
        }
        let clock = Arc::new(OffsetClock::default());
        let mut gateways = Vec::with_capacity(self.instances);
        let mut configs = Vec::with_capacity(self.instances);
        for instance in 0..self.instances {
            let mut config = config.clone();
            match on(
                &self.runtime,
                Gateway::start_with_clock(config.clone(), clock.clone()),
            )
            .await?
            {
                Ok(gateway) => {
                    // Restarts reuse the port, so configured wallet endpoints stay valid.
                    config.listen = gateway.addr;
                    configs.push(config);
                    gateways.push(gateway);
                }
                Err(e) => {
                    stop_gateways(&self.runtime, gateways).await;
                    stop_merchants(&self.runtime, merchants).await;
                    bail!(
                        "cannot start the gateway (instance {} of {}): {e}",
                        instance + 1,
                        self.instances
                    );
                }
            }
        }
        let gateway = &gateways[0];
        // Where plain HTTP reaches the gateway: the front, or its one instance.
        let gateway_addr = match &front {
            Some(front) => {
                front.set_upstreams(&gateways.iter().map(|g| g.addr).collect::<Vec<_>>());
                front.addr()
            }
            None => gateway.addr,
        };
        let endpoint = gateway.endpoint().to_string();
        let metadata_url = match &tls {
            Some(_) => format!("http://{gateway_addr}{}/metadata.json", config.base_path),
            None => format!("{endpoint}/metadata.json"),
        };
        for merchant in &merchants {
            merchant.add_directory_entry(MerchantDirectoryEntry {
                ocid: gateway.ocid(),
                metadata_url: metadata_url.clone(),
            });
        }
        let tls = tls.map(|(bound, ca, identity)| NetworkTls {
            front: bound.forward_to(gateway_addr),
            ca,
            identity,
        });
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(tls) = &tls {
            http = http.add_root_certificate(
                reqwest::Certificate::from_pem(tls.ca.pem().as_bytes())
                    .context("the test CA is not PEM")?,
            );
        }
        let http = http.build().context("cannot build the HTTP client")?;
        let mut network = Network {
            dev: DevClient::new(http.clone(), &endpoint),
            http,
            data_dir,
            gateways,
            gateway_configs: configs,
            database,
            front,
            clock,
            merchants,
            wallets: Vec::new(),
            endpoint,
            runtime: self.runtime,
            tls,
            _temp: temp,
        };
        if let Err(e) = network
            .open_wallets(self.wallets, self.funds.as_deref())
            .await
        {
            network.stop().await;
            return Err(e);
        }
        Ok(network)
    }
}

/// The TLS of a network built with [`NetworkBuilder::tls`].
pub struct NetworkTls {
    /// The CA that issued the gateway's certificate.
    pub ca: TestCa,
    /// The gateway's certificate (`localhost`) and key.
    pub identity: ServerIdentity,
    /// The TLS front the gateway's published endpoint points to.
    pub front: TlsFront,
}

impl NetworkTls {
    /// A CA, its `localhost` certificate and a front bound for it (not forwarding yet).
    async fn bind() -> anyhow::Result<(BoundFront, TestCa, ServerIdentity)> {
        let ca = TestCa::new("Opencharge test CA")?;
        let identity = ca.issue(&["localhost"])?;
        let bound = BoundFront::bind(&identity).await?;
        Ok((bound, ca, identity))
    }
}

/// A running loopback network. Dropping it does not stop the servers; call
/// [`Network::stop`].
pub struct Network {
    /// The wallets the builder opened, in order.
    pub wallets: Vec<TestWallet>,
    /// The gateway's clock: tests move it to expire sessions and orders.
    pub clock: Arc<OffsetClock>,
    /// A plain HTTP client (30 s timeout).
    pub http: reqwest::Client,
    dev: DevClient,
    data_dir: PathBuf,
    /// The running instances in order (empty while stopped).
    gateways: Vec<RunningGateway>,
    /// Each instance's configuration (its port kept for restarts), never empty.
    gateway_configs: Vec<GatewayConfig>,
    /// Held so a fresh PostgreSQL database lives as long as the network.
    database: GatewayDatabase,
    /// The round-robin front of several instances.
    front: Option<DropProxy>,
    merchants: Vec<Arc<RunningMerchant>>,
    endpoint: String,
    runtime: Option<Handle>,
    tls: Option<NetworkTls>,
    /// Held so a temporary data dir is deleted when the network is dropped.
    _temp: Option<tempfile::TempDir>,
}

impl Network {
    /// The options, to start a network with [`NetworkBuilder::start`].
    pub fn builder() -> NetworkBuilder {
        NetworkBuilder::default()
    }

    /// A gateway and one merchant in a temporary directory, no wallets:
    /// `Network::builder().start()`.
    pub async fn start() -> anyhow::Result<Network> {
        Network::builder().start().await
    }

    /// Where the gateway, the merchants and the wallets keep their files.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The gateway's Opencharge endpoint (what a wallet's `gateway_url` is).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The gateway's OCID.
    pub fn gateway_ocid(&self) -> u64 {
        self.gateway_configs[0].ocid
    }

    /// The gateway's listening address (it stays the same across restarts).
    pub fn gateway_addr(&self) -> std::net::SocketAddr {
        self.gateway_configs[0].listen
    }

    /// The running gateway (its first instance), or `None` while it is stopped.
    pub fn gateway(&self) -> Option<&RunningGateway> {
        self.gateways.first()
    }

    /// The running gateway instances in order (empty while stopped).
    pub fn gateways(&self) -> &[RunningGateway] {
        &self.gateways
    }

    /// Each gateway instance's own Opencharge endpoint on its loopback port
    /// (`http://127.0.0.1:<port><base path>`), in instance order; with one instance, the one
    /// gateway's. [`Network::endpoint`] is the published one.
    pub fn gateway_endpoints(&self) -> Vec<String> {
        self.gateway_configs
            .iter()
            .map(|c| format!("http://{}{}", c.listen, c.base_path))
            .collect()
    }

    /// The round-robin front of a network with several gateway instances (`None` with one):
    /// what [`Network::endpoint`] points to; it counts the requests each instance got and can
    /// drop answers like any [`DropProxy`].
    pub fn front(&self) -> Option<&DropProxy> {
        self.front.as_ref()
    }

    /// The gateway's database, whichever the backend: the SQLite file or the PostgreSQL URL.
    pub fn gateway_database(&self) -> &Database {
        self.database.database()
    }

    /// A second handle on the gateway's database (its own connections), whichever the
    /// backend: for tests that look at or change what the gateway stored.
    pub async fn gateway_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        let database = self.database.database();
        open_store(database, 2)
            .await
            .with_context(|| format!("cannot open the gateway's database {}", database.redacted()))
    }

    /// A second handle on the gateway's database with SQL and the push queue besides the
    /// contract ([`DirectStore`]), whichever the backend.
    pub async fn gateway_direct_store(&self) -> anyhow::Result<DirectStore> {
        DirectStore::open(self.database.database()).await
    }

    /// The gateway's SQLite file (tests that tamper with it). Panics on a PostgreSQL network:
    /// such tests belong to SQLite-only suites ([`NetworkBuilder::sqlite`]); others use
    /// [`Network::gateway_store`].
    pub fn gateway_db(&self) -> PathBuf {
        match self.database.database().sqlite_path() {
            Some(path) => path.to_path_buf(),
            None => panic!(
                "gateway_db() is the SQLite file, but this network's gateway runs on PostgreSQL \
                 ({}): build the network with NetworkBuilder::sqlite() or use gateway_store()",
                self.database.database().redacted()
            ),
        }
    }

    /// The first merchant (OCID [`MERCHANT_OCID`]). Panics on a network built with
    /// `merchants(0)`.
    pub fn merchant(&self) -> &RunningMerchant {
        &self.merchants[0]
    }

    /// Every merchant, in OCID order.
    pub fn merchants(&self) -> &[Arc<RunningMerchant>] {
        &self.merchants
    }

    /// The gateway's dev endpoints.
    pub fn dev(&self) -> &DevClient {
        &self.dev
    }

    /// A wallet configuration for this network with its data in `<data dir>/wallets/<name>`:
    /// the gateway pinned by OCID, loopback HTTP allowed, every merchant in its directory, and
    /// on a TLS network the test CA in `trusted_certificates`.
    pub fn wallet_config(&self, name: &str) -> WalletConfig {
        let directory = self
            .merchants
            .iter()
            .map(|m| WalletDirectoryEntry {
                ocid: wallet_ocid(m.ocid()),
                metadata_url: m.metadata_url(),
            })
            .collect();
        let mut config = loopback_wallet_config(
            &self.endpoint,
            &self.data_dir,
            name,
            Some(self.gateway_ocid()),
            directory,
        );
        if let Some(tls) = &self.tls {
            config.trusted_certificates = vec![tls.ca.pem()];
        }
        config
    }

    /// The gateway's TLS on a network built with [`NetworkBuilder::tls`].
    pub fn tls(&self) -> Option<&NetworkTls> {
        self.tls.as_ref()
    }

    /// A new dev account named `name`.
    pub async fn new_account(&self, name: &str) -> anyhow::Result<Account> {
        self.dev.new_account(name).await
    }

    /// A fresh enrollment code for an existing account (a second device).
    pub async fn enrollment(&self, account_id: &str) -> anyhow::Result<String> {
        self.dev.enrollment(account_id).await
    }

    /// Credits an account: `"20.00 USD"`, or a bare decimal meaning USD.
    pub async fn fund(&self, account_id: &str, amount: &str) -> anyhow::Result<()> {
        self.dev.fund(account_id, amount).await
    }

    /// Opens a wallet named `name` ([`Network::wallet_config`]), registers it to a new account
    /// and, with `funds`, funds it; returns the wallet and its account id.
    pub async fn wallet(
        &self,
        name: &str,
        funds: Option<&str>,
    ) -> anyhow::Result<(Arc<Wallet>, String)> {
        let opened = self
            .dev
            .open_wallet(self.wallet_config(name), name, funds)
            .await?;
        Ok((opened.wallet, opened.account_id))
    }

    /// The gateway's "now" (its clock, as tests moved it), Unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A raw app-API device ([`AppDevice`]) registered to a new account named `name`, funded
    /// with `funds` when given.
    pub async fn app_device(&self, name: &str, funds: Option<&str>) -> anyhow::Result<AppDevice> {
        let account = self.new_account(name).await?;
        if let Some(funds) = funds {
            self.fund(&account.account_id, funds).await?;
        }
        let device = AppDevice::register(
            &self.http,
            &self.endpoint,
            &account.enrollment_code,
            self.now(),
        )
        .await?;
        if device.account_id != account.account_id {
            bail!(
                "the device was registered to {} instead of {}",
                device.account_id,
                account.account_id
            );
        }
        Ok(device)
    }

    /// A call to the gateway's `rel` (e.g. `/app/balance`) signed by `device` at the gateway's
    /// now, with `body` as JSON: the status and the JSON answer.
    pub async fn app_call(
        &self,
        device: &AppDevice,
        method: &str,
        rel: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let bytes = match body {
            Some(body) => serde_json::to_vec(body)?,
            None => Vec::new(),
        };
        let url = format!("{}{rel}", self.endpoint);
        let response = device
            .request(&self.http, method, &url, bytes, self.now())?
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        read(response).await
    }

    /// Opens `count` wallets, a few at a time, appending them to [`Network::wallets`].
    async fn open_wallets(&mut self, count: usize, funds: Option<&str>) -> anyhow::Result<()> {
        let mut next = 0;
        while next < count {
            let mut batch = tokio::task::JoinSet::new();
            for index in next..count.min(next + WALLETS_AT_ONCE) {
                let (dev, config) = (
                    self.dev.clone(),
                    self.wallet_config(&format!("w{index:04}")),
                );
                let funds = funds.map(str::to_string);
                batch.spawn(async move {
                    let name = format!("wallet-{index}");
                    let opened = dev.open_wallet(config, &name, funds.as_deref()).await;
                    (
                        index,
                        opened.with_context(|| format!("cannot set up wallet {index}")),
                    )
                });
            }
            let mut opened = Vec::new();
            while let Some(done) = batch.join_next().await {
                let (index, wallet) = done.context("wallet setup task failed")?;
                opened.push((index, wallet?));
            }
            opened.sort_by_key(|(index, _)| *index);
            self.wallets.extend(opened.into_iter().map(|(_, w)| w));
            next += WALLETS_AT_ONCE;
        }
        Ok(())
    }

    /// A fresh coffee order ([`coffee_order`], reference `table-4`) signed by the first
    /// merchant.
    pub fn order(&self) -> anyhow::Result<SignedOrder> {
        Ok(self.merchant().create_order(coffee_order("table-4"))?)
    }

    /// A fresh coffee order, scanned by `wallet` from the first merchant's order QR: the
    /// order and the verified prompt.
    pub async fn scan_order(
        &self,
        wallet: &Wallet,
    ) -> anyhow::Result<(SignedOrder, PaymentPrompt)> {
        let order = self.order()?;
        match wallet
            .scan(self.merchant().order_qr(&order.order.id)?)
            .await?
        {
            ScanResult::Prompt { prompt } => Ok((order, prompt)),
            other => bail!("expected a prompt, the scan gave {other:?}"),
        }
    }

    /// The USD balance of a wallet, as the gateway reports it (the exact decimal text).
    pub async fn usd(&self, wallet: &Wallet) -> anyhow::Result<String> {
        wallet
            .balance()
            .await?
            .into_iter()
            .find(|m| m.currency == "USD")
            .map(|m| m.amount)
            .context("the wallet has no USD balance")
    }

    /// Stops the gateway, every instance (its database and key stay).
    pub async fn stop_gateway(&mut self) {
        stop_gateways(&self.runtime, std::mem::take(&mut self.gateways)).await;
    }

    /// Starts the gateway again, every instance on its same port with the same database, key
    /// and clock.
    pub async fn restart_gateway(&mut self) -> anyhow::Result<()> {
        self.stop_gateway().await;
        for (instance, config) in self.gateway_configs.iter().enumerate() {
            let mut last = String::new();
            let mut started = None;
            for _ in 0..50 {
                let start = Gateway::start_with_clock(config.clone(), self.clock.clone());
                match on(&self.runtime, start).await? {
                    Ok(gateway) => {
                        started = Some(gateway);
                        break;
                    }
                    Err(e) => last = e.to_string(),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            match started {
                Some(gateway) => self.gateways.push(gateway),
                None => {
                    self.stop_gateway().await;
                    bail!("gateway instance {} did not restart: {last}", instance + 1)
                }
            }
        }
        Ok(())
    }

    /// Stops the gateway, then the merchants (a merchant still shared elsewhere through
    /// [`Network::merchants`] is left running).
    pub async fn stop(mut self) {
        self.stop_gateway().await;
        stop_merchants(&self.runtime, std::mem::take(&mut self.merchants)).await;
    }
}

/// A wallet configuration for a gateway on loopback at `gateway_url`: data in
/// `<data_dir>/wallets/<name>`, plain HTTP to loopback allowed, the gateway pinned by OCID when
/// given, and `directory` as the wallet's merchant directory.
pub fn loopback_wallet_config(
    gateway_url: &str,
    data_dir: &Path,
    name: &str,
    gateway_ocid: Option<u64>,
    directory: Vec<WalletDirectoryEntry>,
) -> WalletConfig {
    let dir = data_dir.join("wallets").join(name);
    let mut config = WalletConfig::new(gateway_url, dir.display().to_string());
    config.gateway_ocid = gateway_ocid.map(wallet_ocid);
    config.allow_insecure_loopback = true;
    config.directory = directory;
    config
}

/// A protocol OCID as the wallet's `i64` (the network's OCIDs are small constants).
fn wallet_ocid(ocid: u64) -> i64 {
    i64::try_from(ocid).expect("the test network's OCIDs fit in i64")
}

/// Stops gateway instances, last first.
async fn stop_gateways(runtime: &Option<Handle>, gateways: Vec<RunningGateway>) {
    for gateway in gateways.into_iter().rev() {
        let _ = on(runtime, gateway.stop()).await;
    }
}

/// Stops every merchant nobody else holds.
async fn stop_merchants(runtime: &Option<Handle>, merchants: Vec<Arc<RunningMerchant>>) {
    for merchant in merchants {
        if let Ok(merchant) = Arc::try_unwrap(merchant) {
            let _ = on(runtime, merchant.stop()).await;
        }
    }
}

/// Runs `future` on `runtime` when given (and waits for it from any runtime), else here.
async fn on<T: Send + 'static>(
    runtime: &Option<Handle>,
    future: impl Future<Output = T> + Send + 'static,
) -> anyhow::Result<T> {
    match runtime {
        Some(handle) => handle
            .spawn(future)
            .await
            .map_err(|e| anyhow::anyhow!("server task failed: {e}")),
        None => Ok(future.await),
    }
}

/// Reads a `--database PATH|URL` flag and checks an `--instances` count against it, for the
/// command-line tools that start a network (`opencharge sandbox`, `opencharge-bench`): more
/// than one instance needs PostgreSQL (the instances share one database, and a SQLite file
/// belongs to one process). `None`: no flag, the network's default database.
pub fn database_for_instances(
    database: Option<&str>,
    instances: u16,
) -> Result<Option<Database>, String> {
    let database = database
        .map(Database::parse)
        .transpose()
        .map_err(|e| format!("--database: {e}"))?;
    let postgres = database
        .as_ref()
        .is_some_and(|d| d.postgres_url().is_some());
    if instances > 1 && !postgres {
        return Err(format!(
            "--instances {instances} needs --database postgres://...: the instances share one \
             database, and a SQLite file belongs to one process"
        ));
    }
    Ok(database)
}
