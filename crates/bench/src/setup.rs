//! The network a load run drives: the test kit's embedded gateway with M merchants on loopback
//! (on SQLite or PostgreSQL, as one or several instances on one database; or M embedded
//! merchants and the gateway as its own `opencharge gateway` process, or a running gateway and
//! its merchant's dev API at loopback URLs), dev accounts, and N device clients, each a real
//! wallet-core `Wallet` with its own data dir and event stream.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use opencharge_merchant::{
    DirectoryEntry as MerchantDirectoryEntry, Merchant, MerchantConfig, NewItem, NewOrder,
    RunningMerchant,
};
use opencharge_testkit::{
    loopback_wallet_config, Database, DevClient, GATEWAY_OCID, MERCHANT_OCID,
};
use opencharge_wallet::{
    ConnectionState, DirectoryEntry, EventStream, PaymentPrompt, PaymentStatusUpdate, Wallet,
    WalletError, WalletListener,
};
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tokio::sync::{oneshot, watch};

use crate::gateway_process::{GatewayProcess, GatewayProcessConfig};

/// What each device's account is funded with.
const FUNDS: &str = "1000000.00 USD";
/// Unit price of every line item, USD.
pub const ITEM_PRICE: &str = "2.50";

/// Where the gateway and merchants come from.
pub enum Target {
    /// Start a gateway and `merchants` merchants in this process.
    Embedded {
        /// How many merchants.
        merchants: usize,
        /// The gateway's background worker interval (webhook delivery), milliseconds.
        worker_interval_ms: u64,
        /// The gateway's database (default: a SQLite file in the data dir).
        database: Option<Database>,
        /// Gateway instances on that database (more than one: PostgreSQL only).
        instances: usize,
    },
    /// Start `merchants` merchants in this process and the gateway as its own process from
    /// the `opencharge` binary `binary` (so its CPU time can be read apart).
    Process {
        /// The `opencharge` binary.
        binary: PathBuf,
        /// How many merchants.
        merchants: usize,
        /// The gateway's background worker interval (webhook delivery), milliseconds.
        worker_interval_ms: u64,
        /// The gateway's database (default: a SQLite file in the data dir).
        database: Option<Database>,
    },
    /// A running gateway (dev mode) and one merchant's dev API, both on loopback.
    Remote {
        /// The gateway's Opencharge endpoint.
        gateway_url: String,
        /// The gateway's OCID, when the wallets should pin it.
        gateway_ocid: Option<u64>,
        /// The merchant's Opencharge endpoint (its `/dev` API lives under it).
        merchant_url: String,
        /// The merchant's OCID.
        merchant_ocid: u64,
    },
}

/// Refuses any URL whose host is not a loopback address: a load run must never reach a
/// network (it creates money through dev endpoints and floods what it talks to).
pub fn require_loopback(url: &str, what: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{what} {url:?}"))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        bail!("{what} {url:?} must be http(s)");
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if !loopback {
        bail!("{what} {url:?} is not on loopback: the load generator only drives 127.0.0.1, ::1 or localhost");
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Runs `future` on the server runtime (so the gateway's and merchants' work is counted
/// there) and waits for it from any runtime.
pub async fn on<T: Send + 'static>(
    rt: &Runtime,
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> anyhow::Result<T> {
    rt.spawn(future)
        .await
        .map_err(|e| anyhow::anyhow!("server task failed: {e}"))
}

/// One merchant the driver can use.
pub enum MerchantHandle {
    /// In this process: the library API, woken by its own webhook.
    Embedded(Arc<RunningMerchant>),
    /// Elsewhere: its `/dev` API; payment is seen by polling the order view.
    Remote {
        /// The merchant's Opencharge endpoint.
        url: String,
    },
}

/// The network of one run.
pub struct Network {
    /// The server runtime (gateway and merchants; remote mode: unused but alive).
    pub server: Arc<Runtime>,
    /// The gateway's Opencharge endpoint.
    pub gateway_url: String,
    gateway_ocid: Option<u64>,
    /// The test kit's embedded network (embedded mode).
    embedded: Option<opencharge_testkit::Network>,
    /// The merchants.
    pub merchants: Vec<MerchantHandle>,
    /// The wallets' merchant directory (remote mode; the kit fills it in embedded mode).
    directory: Vec<DirectoryEntry>,
    /// Plain HTTP client for the dev endpoints.
    pub http: reqwest::Client,
    dev: DevClient,
    /// Where SQLite files and keys live.
    pub data_dir: PathBuf,
    /// The gateway process (process mode).
    pub gateway_process: Option<GatewayProcess>,
}

impl Network {
    /// Starts (or connects to) the gateway and merchants, with data under `data_dir`.
    pub async fn start(
        target: &Target,
        server: Arc<Runtime>,
        data_dir: &Path,
    ) -> anyhow::Result<Network> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        match target {
            Target::Embedded {
                merchants,
                worker_interval_ms,
                database,
                instances,
            } => {
                let worker_interval_ms = *worker_interval_ms;
                let builder = match database {
                    Some(database) => {
                        opencharge_testkit::Network::builder().database(database.clone())
                    }
                    // A load run is never a test: OPENCHARGE_TEST_BACKEND does not apply.
                    None => opencharge_testkit::Network::builder().sqlite(),
                };
                let embedded = builder
                    .gateway_instances(*instances)
                    .data_dir(data_dir)
                    .runtime(server.handle().clone())
                    .merchants(*merchants)
                    .merchant_config(|_, config| {
                        config.name = format!("Bench Merchant {}", config.ocid);
                    })
                    .gateway_config(move |config| config.worker_interval_ms = worker_interval_ms)
                    .start()
                    .await?;
                let gateway_url = embedded.endpoint().to_string();
                Ok(Network {
                    server,
                    gateway_ocid: Some(embedded.gateway_ocid()),
                    dev: embedded.dev().clone(),
                    merchants: embedded
                        .merchants()
                        .iter()
                        .cloned()
                        .map(MerchantHandle::Embedded)
                        .collect(),
                    directory: Vec::new(),
                    embedded: Some(embedded),
                    gateway_url,
                    http,
                    data_dir: data_dir.to_path_buf(),
                    gateway_process: None,
                })
            }
            Target::Remote {
                gateway_url,
                gateway_ocid,
                merchant_url,
                merchant_ocid,
            } => {
                let gateway_url = require_loopback(gateway_url, "--gateway")?;
                let merchant_url = require_loopback(merchant_url, "--merchant")?;
                Ok(Network {
                    server,
                    dev: DevClient::new(http.clone(), &gateway_url),
                    gateway_url,
                    gateway_ocid: *gateway_ocid,
                    embedded: None,
                    directory: vec![DirectoryEntry {
                        ocid: i64::try_from(*merchant_ocid)
                            .context("--merchant-ocid is too large for the wallet core")?,
                        metadata_url: format!("{merchant_url}/metadata.json"),
                    }],
                    merchants: vec![MerchantHandle::Remote { url: merchant_url }],
                    http,
                    data_dir: data_dir.to_path_buf(),
                    gateway_process: None,
                })
            }
            Target::Process {
                binary,
                merchants,
                worker_interval_ms,
                database,
            } => {
                Self::start_process(
                    binary,
                    *merchants,
                    *worker_interval_ms,
                    database.as_ref(),
                    server,
                    data_dir,
                    http,
                )
                .await
            }
        }
    }

    /// Requests each embedded gateway instance got through the round-robin front so far, in
    /// instance order; `None` without a front (one instance, a process or a remote gateway).
    pub fn instance_requests(&self) -> Option<Vec<usize>> {
        let front = self.embedded.as_ref()?.front()?;
        Some(
            front
                .forwarded_per_upstream()
                .into_iter()
                .map(|(_, count)| count)
                .collect(),
        )
    }

    /// POSTs JSON to `url` and returns the 2xx JSON answer.
    pub async fn post(&self, url: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        read_json(response, "POST", url).await
    }

    /// Opens wallet `index` in its own data dir, registers it to a new account funded with
    /// [`FUNDS`] USD and starts its event stream; returns once the stream is connected.
    pub async fn device(&self, index: usize) -> anyhow::Result<Device> {
        let name = format!("w{index:04}");
        let config = match &self.embedded {
            Some(embedded) => embedded.wallet_config(&name),
            None => loopback_wallet_config(
                &self.gateway_url,
                &self.data_dir,
                &name,
                self.gateway_ocid,
                self.directory.clone(),
            ),
        };
        let wallet = self
            .dev
            .open_wallet(config, &format!("bench-{index}"), Some(FUNDS))
            .await?
            .wallet;
        let (connected_tx, mut connected) = watch::channel(false);
        let listener = Arc::new(Listener {
            waiting: Mutex::new(HashMap::new()),
            connected: connected_tx,
        });
        let stream = wallet
            .start_events(listener.clone())
            .context("start_events")?;
        tokio::time::timeout(Duration::from_secs(30), connected.wait_for(|c| *c))
            .await
            .context("the event stream did not connect within 30 s")?
            .context("the event stream stopped")?;
        Ok(Device {
            wallet,
            listener,
            stream,
        })
    }

    /// Starts `count` merchants on the server runtime, then the gateway process with them in
    /// its directory, then tells each merchant where the gateway's metadata is.
    async fn start_process(
        binary: &Path,
        count: usize,
        worker_interval_ms: u64,
        database: Option<&Database>,
        server: Arc<Runtime>,
        data_dir: &Path,
        http: reqwest::Client,
    ) -> anyhow::Result<Network> {
        let merchant_dir = data_dir.join("merchant");
        std::fs::create_dir_all(&merchant_dir)
            .with_context(|| format!("cannot create {}", merchant_dir.display()))?;
        let mut merchants = Vec::with_capacity(count);
        let network =
            |merchants: Vec<Arc<RunningMerchant>>, gateway: Option<GatewayProcess>| Network {
                server: Arc::clone(&server),
                gateway_url: gateway
                    .as_ref()
                    .map(|g| g.endpoint.clone())
                    .unwrap_or_default(),
                gateway_ocid: Some(GATEWAY_OCID),
                embedded: None,
                directory: merchants
                    .iter()
                    .map(|m| DirectoryEntry {
                        ocid: m.ocid() as i64,
                        metadata_url: m.metadata_url(),
                    })
                    .collect(),
                merchants: merchants
                    .into_iter()
                    .map(MerchantHandle::Embedded)
                    .collect(),
                dev: DevClient::new(
                    http.clone(),
                    &gateway
                        .as_ref()
                        .map(|g| g.endpoint.clone())
                        .unwrap_or_default(),
                ),
                http: http.clone(),
                data_dir: data_dir.to_path_buf(),
                gateway_process: gateway,
            };
        for index in 0..count {
            let ocid = MERCHANT_OCID + index as u64;
            let mut config = MerchantConfig::for_tests(&merchant_dir, ocid, vec![GATEWAY_OCID]);
            config.name = format!("Bench Merchant {ocid}");
            match on(&server, Merchant::start(config)).await? {
                Ok(merchant) => merchants.push(Arc::new(merchant)),
                Err(e) => {
                    network(merchants, None).stop().await;
                    bail!("cannot start merchant {ocid}: {e}");
                }
            }
        }
        let gateway = GatewayProcess::start(&GatewayProcessConfig {
            binary,
            dir: &data_dir.join("gateway"),
            ocid: GATEWAY_OCID,
            worker_interval_ms,
            database,
            directory: merchants
                .iter()
                .map(|m| (m.ocid(), m.metadata_url()))
                .collect(),
        });
        let gateway = match gateway {
            Ok(gateway) => gateway,
            Err(e) => {
                network(merchants, None).stop().await;
                return Err(e);
            }
        };
        for merchant in &merchants {
            merchant.add_directory_entry(MerchantDirectoryEntry {
                ocid: GATEWAY_OCID,
                metadata_url: format!("{}/metadata.json", gateway.endpoint),
            });
        }
        Ok(network(merchants, Some(gateway)))
    }

    /// Stops the embedded gateway and merchants (and the gateway process).
    pub async fn stop(mut self) {
        // The kit stops only merchants nobody else holds.
        let merchants = std::mem::take(&mut self.merchants);
        if let Some(embedded) = self.embedded.take() {
            drop(merchants);
            embedded.stop().await;
        } else {
            for handle in merchants {
                if let MerchantHandle::Embedded(merchant) = handle {
                    if let Ok(merchant) = Arc::try_unwrap(merchant) {
                        let _ = on(&self.server, merchant.stop()).await;
                    }
                }
            }
        }
        // Dropping it kills the gateway process.
        self.gateway_process.take();
    }
}

/// Reads a 2xx JSON answer, or fails with its status and body.
async fn read_json(response: reqwest::Response, method: &str, url: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("{method} {url}: unreadable answer"))?;
    if !status.is_success() {
        bail!("{method} {url}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{method} {url}: answer is not JSON"))
}

/// The order every payment uses: `items` lines of one item at [`ITEM_PRICE`].
pub fn new_order(items: usize, reference: String) -> NewOrder {
    NewOrder {
        items: (0..items)
            .map(|i| NewItem {
                id: format!("sku-{i}"),
                name: format!("Item {i}"),
                quantity: 1,
                price: ITEM_PRICE.into(),
            })
            .collect(),
        currency: "USD".into(),
        reference: Some(reference),
        memo: None,
    }
}

impl MerchantHandle {
    /// Creates and signs an order; returns its id.
    pub async fn create_order(&self, net: &Network, order: NewOrder) -> anyhow::Result<String> {
        match self {
            MerchantHandle::Embedded(merchant) => {
                let merchant = Arc::clone(merchant);
                let signed = on(&net.server, async move { merchant.create_order(order) }).await??;
                Ok(signed.order.id)
            }
            MerchantHandle::Remote { url } => {
                let body = serde_json::to_value(RemoteOrder::from(&order))?;
                let answer = net.post(&format!("{url}/dev/orders"), body).await?;
                answer["orderId"]
                    .as_str()
                    .map(str::to_string)
                    .with_context(|| format!("/dev/orders answer has no orderId: {answer}"))
            }
        }
    }

    /// The merchant "scans" the wallet's session QR and POSTs the signed order to it.
    pub async fn post_order(&self, net: &Network, order_id: &str, qr: &str) -> anyhow::Result<()> {
        match self {
            MerchantHandle::Embedded(merchant) => {
                let merchant = Arc::clone(merchant);
                let (order_id, qr) = (order_id.to_string(), qr.to_string());
                on(&net.server, async move {
                    merchant.post_to_wallet_session(&qr, &order_id).await
                })
                .await??;
                Ok(())
            }
            MerchantHandle::Remote { url } => {
                net.post(
                    &format!("{url}/dev/orders/{order_id}/post"),
                    json!({"sessionQr": qr}),
                )
                .await?;
                Ok(())
            }
        }
    }

    /// Waits until the merchant has accepted the proof for `order_id` on its webhook;
    /// returns when it saw it.
    pub async fn wait_paid(
        &self,
        net: &Network,
        order_id: &str,
        timeout: Duration,
    ) -> anyhow::Result<Instant> {
        match self {
            MerchantHandle::Embedded(merchant) => {
                let merchant = Arc::clone(merchant);
                let order_id = order_id.to_string();
                on(&net.server, async move {
                    merchant
                        .wait_paid(&order_id, timeout)
                        .await
                        .map(|_| Instant::now())
                })
                .await?
                .map_err(anyhow::Error::from)
            }
            MerchantHandle::Remote { url } => {
                let deadline = Instant::now() + timeout;
                let view = format!("{url}/dev/orders/{order_id}");
                loop {
                    let response = net
                        .http
                        .get(&view)
                        .send()
                        .await
                        .with_context(|| format!("GET {view}"))?;
                    let answer = read_json(response, "GET", &view).await?;
                    if answer["status"] == "paid" {
                        return Ok(Instant::now());
                    }
                    if Instant::now() > deadline {
                        bail!("order {order_id} not paid within {timeout:?}: {answer}");
                    }
                    tokio::time::sleep(REMOTE_POLL).await;
                }
            }
        }
    }
}

/// How often a remote merchant's order view is polled while waiting for its webhook.
pub const REMOTE_POLL: Duration = Duration::from_millis(5);

/// `POST /dev/orders` body.
#[derive(serde::Serialize)]
struct RemoteOrder {
    items: Vec<Value>,
    currency: String,
    reference: Option<String>,
}

impl From<&NewOrder> for RemoteOrder {
    fn from(order: &NewOrder) -> Self {
        RemoteOrder {
            items: order
                .items
                .iter()
                .map(|i| json!({"id": i.id, "name": i.name, "quantity": i.quantity, "price": i.price}))
                .collect(),
            currency: order.currency.clone(),
            reference: order.reference.clone(),
        }
    }
}

/// One device client: a wallet, its listener and its running event stream.
pub struct Device {
    /// The wallet core.
    pub wallet: Arc<Wallet>,
    /// Hands prompts to the payment waiting for them.
    pub listener: Arc<Listener>,
    stream: Arc<EventStream>,
}

impl Device {
    /// Stops the event stream and closes the wallet (this is its last reference).
    pub async fn close(self) {
        self.stream.stop_and_wait().await;
        drop(self.wallet);
    }
}

/// What a payment waiting for its prompt receives: when it arrived, or why it was rejected.
pub type PromptOutcome = Result<Instant, String>;

/// The app side of a device: prompts for sessions a payment is waiting on are handed over
/// with the instant they arrived.
pub struct Listener {
    waiting: Mutex<HashMap<String, oneshot::Sender<PromptOutcome>>>,
    connected: watch::Sender<bool>,
}

impl Listener {
    /// Registers interest in the prompt of `session_id` (before the order is posted).
    pub fn expect(&self, session_id: &str) -> oneshot::Receiver<PromptOutcome> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(session_id.to_string(), tx);
        }
        rx
    }

    /// Forgets a session nobody waits for any more (a failed payment).
    pub fn forget(&self, session_id: &str) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.remove(session_id);
        }
    }

    fn hand_over(&self, session_id: &str, outcome: PromptOutcome) {
        let waiter = self
            .waiting
            .lock()
            .ok()
            .and_then(|mut waiting| waiting.remove(session_id));
        if let Some(waiter) = waiter {
            let _ = waiter.send(outcome);
        }
    }
}

impl WalletListener for Listener {
    fn on_prompt(&self, prompt: PaymentPrompt) -> Result<(), WalletError> {
        self.hand_over(&prompt.prompt_id, Ok(Instant::now()));
        Ok(())
    }

    fn on_prompt_rejected(&self, prompt_id: String, reason: String) -> Result<(), WalletError> {
        self.hand_over(
            &prompt_id,
            Err(format!("prompt rejected by the core: {reason}")),
        );
        Ok(())
    }

    fn on_payment_status(&self, _update: PaymentStatusUpdate) -> Result<(), WalletError> {
        Ok(())
    }

    fn on_connection_state(&self, state: ConnectionState) -> Result<(), WalletError> {
        self.connected
            .send_replace(matches!(state, ConnectionState::Connected));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_driven() {
        for ok in [
            "http://127.0.0.1:8700/opencharge",
            "http://127.0.0.2:1/",
            "http://[::1]:8700/opencharge",
            "http://localhost:8700/opencharge/",
        ] {
            assert!(require_loopback(ok, "--gateway").is_ok(), "{ok}");
        }
        assert_eq!(
            require_loopback("http://127.0.0.1:8700/opencharge/", "--gateway").unwrap(),
            "http://127.0.0.1:8700/opencharge"
        );
        for bad in [
            "http://192.0.2.1:8700/opencharge",
            "https://api.wallet.example/opencharge",
            "http://[2001:db8::1]/",
            "ftp://127.0.0.1/",
            "not a url",
        ] {
            assert!(require_loopback(bad, "--gateway").is_err(), "{bad}");
        }
    }
}
