//! Test harness for the wallet core: a real gateway and a real merchant on loopback (temp
//! dirs, real SQLite files), dev accounts funded through the gateway's dev endpoints, wallets
//! opened through the exported API, and a listener that records what the core tells the app.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use opencharge_gateway::clock::OffsetClock;
use opencharge_gateway::config::DirectoryEntry as GatewayDirectoryEntry;
use opencharge_gateway::{Gateway, GatewayConfig, RunningGateway};
use opencharge_merchant::{
    DirectoryEntry, Merchant, MerchantConfig, NewItem, NewOrder, RunningMerchant,
};
use opencharge_protocol::types::SignedOrder;
use opencharge_wallet::{
    ConnectionState, DirectoryEntry as WalletDirectoryEntry, PaymentPrompt, PaymentStatusUpdate,
    ScanResult, Wallet, WalletConfig, WalletError, WalletListener,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// The gateway's OCID in tests.
pub const GATEWAY: u64 = 200;
/// The merchant's OCID in tests.
pub const MERCHANT: u64 = 500;
/// How long tests wait for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(20);

/// A gateway, a merchant and the directories that connect them.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub gateway: Option<RunningGateway>,
    pub gateway_config: GatewayConfig,
    pub clock: Arc<OffsetClock>,
    pub merchant: RunningMerchant,
    pub http: reqwest::Client,
    endpoint: String,
}

impl Env {
    /// Starts a merchant, then a gateway that knows it, then tells the merchant about the
    /// gateway.
    pub async fn start() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let merchant_dir = dir.path().join("merchant");
        std::fs::create_dir_all(&merchant_dir).unwrap();
        let merchant = Merchant::start(MerchantConfig::for_tests(
            &merchant_dir,
            MERCHANT,
            vec![GATEWAY],
        ))
        .await
        .unwrap();
        let gateway_dir = dir.path().join("gateway");
        std::fs::create_dir_all(&gateway_dir).unwrap();
        let mut gateway_config = opencharge_gateway::testkit::test_config(&gateway_dir);
        gateway_config.directory = vec![GatewayDirectoryEntry {
            ocid: MERCHANT,
            metadata_url: Some(merchant.metadata_url()),
            metadata: None,
        }];
        let clock = Arc::new(OffsetClock::default());
        let gateway = Gateway::start_with_clock(gateway_config.clone(), clock.clone())
            .await
            .unwrap();
        // Restarts reuse the port, so the wallet's configured endpoint stays valid.
        gateway_config.listen = gateway.addr;
        let endpoint = gateway.endpoint().to_string();
        merchant.add_directory_entry(DirectoryEntry {
            ocid: GATEWAY,
            metadata_url: format!("{endpoint}/metadata.json"),
        });
        Env {
            dir,
            gateway: Some(gateway),
            gateway_config,
            clock,
            merchant,
            http: reqwest::Client::new(),
            endpoint,
        }
    }

    /// The gateway's endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The gateway's listening address.
    pub fn gateway_addr(&self) -> SocketAddr {
        self.gateway_config.listen
    }

    /// A wallet configuration with its own data dir under the env's temp dir.
    pub fn wallet_config(&self, name: &str) -> WalletConfig {
        let mut config = WalletConfig::new(
            self.endpoint.clone(),
            self.dir.path().join(name).display().to_string(),
        );
        config.allow_insecure_loopback = true;
        config.directory = vec![WalletDirectoryEntry {
            ocid: MERCHANT,
            metadata_url: self.merchant.metadata_url(),
        }];
        config
    }

    async fn dev(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.endpoint))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// A new dev account: its id and an enrollment code.
    pub async fn new_account(&self, name: &str) -> (String, String) {
        let account = self.dev("/dev/accounts", json!({"name": name})).await;
        (
            account["accountId"].as_str().unwrap().to_string(),
            account["enrollmentCode"].as_str().unwrap().to_string(),
        )
    }

    /// A fresh enrollment code for an existing account (a second device).
    pub async fn enrollment(&self, account_id: &str) -> String {
        let answer = self
            .dev(
                &format!("/dev/accounts/{account_id}/enrollments"),
                json!({}),
            )
            .await;
        answer["enrollmentCode"].as_str().unwrap().to_string()
    }

    /// Funds an account in USD.
    pub async fn fund(&self, account_id: &str, amount: &str) {
        self.dev(
            &format!("/dev/accounts/{account_id}/fund"),
            json!({"currency": "USD", "amount": amount}),
        )
        .await;
    }

    /// Opens a wallet named `name`, registers it to a new account and funds it.
    pub async fn wallet(&self, name: &str, funds: Option<&str>) -> (Arc<Wallet>, String) {
        let wallet = Wallet::open(self.wallet_config(name), None).unwrap();
        let (account_id, code) = self.new_account(name).await;
        let registration = wallet.register_device(code).await.unwrap();
        assert_eq!(registration.account_id, account_id);
        if let Some(funds) = funds {
            self.fund(&account_id, funds).await;
        }
        (wallet, account_id)
    }

    /// A signed order from the merchant: two coffees at 2.50 and one cake at 3.25 (8.25 USD).
    pub fn order(&self) -> SignedOrder {
        self.merchant
            .create_order(NewOrder {
                items: vec![
                    NewItem {
                        id: "coffee".into(),
                        name: "Coffee".into(),
                        quantity: 2,
                        price: "2.50".into(),
                    },
                    NewItem {
                        id: "cake".into(),
                        name: "Cake".into(),
                        quantity: 1,
                        price: "3.25".into(),
                    },
                ],
                currency: "USD".into(),
                reference: Some("table-4".into()),
                memo: None,
            })
            .unwrap()
    }

    /// A fresh merchant order, scanned by `wallet` from the merchant's order QR: the order and
    /// the verified prompt.
    pub async fn scan_order(&self, wallet: &Wallet) -> (SignedOrder, PaymentPrompt) {
        let order = self.order();
        match wallet
            .scan(self.merchant.order_qr(&order.order.id).unwrap())
            .await
            .unwrap()
        {
            ScanResult::Prompt { prompt } => (order, prompt),
            other => panic!("expected a prompt, got {other:?}"),
        }
    }

    /// Stops the gateway (its database stays).
    pub async fn stop_gateway(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.stop().await;
        }
    }

    /// Starts the gateway again on the same port with the same database and key.
    pub async fn restart_gateway(&mut self) {
        self.stop_gateway().await;
        let mut last = None;
        for _ in 0..50 {
            match Gateway::start_with_clock(self.gateway_config.clone(), self.clock.clone()).await {
                Ok(gateway) => {
                    self.gateway = Some(gateway);
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("gateway did not restart: {last:?}");
    }

    /// The gateway's SQLite file (tests that tamper with it).
    pub fn gateway_db(&self) -> std::path::PathBuf {
        self.gateway_config.database.clone()
    }

    /// The USD balance of a wallet.
    pub async fn usd(&self, wallet: &Wallet) -> String {
        wallet
            .balance()
            .await
            .unwrap()
            .into_iter()
            .find(|b| b.currency == "USD")
            .unwrap()
            .amount
    }
}

/// What the core told the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    Prompt(PaymentPrompt),
    Rejected(String, String),
    Status(PaymentStatusUpdate),
    Connection(ConnectionState),
}

/// A listener that forwards every call to a channel, optionally failing or panicking.
pub struct Recorder {
    tx: mpsc::UnboundedSender<Heard>,
    pub fail_prompts: bool,
    pub panic_prompts: bool,
}

impl Recorder {
    pub fn new() -> (Arc<Recorder>, Inbox) {
        Recorder::with(false, false)
    }

    pub fn with(fail_prompts: bool, panic_prompts: bool) -> (Arc<Recorder>, Inbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Recorder {
                tx,
                fail_prompts,
                panic_prompts,
            }),
            Inbox {
                rx,
                seen: Vec::new(),
            },
        )
    }
}

impl WalletListener for Recorder {
    fn on_prompt(&self, prompt: PaymentPrompt) -> Result<(), WalletError> {
        let _ = self.tx.send(Heard::Prompt(prompt));
        if self.panic_prompts {
            panic!("listener panics on purpose");
        }
        if self.fail_prompts {
            return Err(WalletError::Internal {
                reason: "listener fails on purpose".into(),
            });
        }
        Ok(())
    }

    fn on_prompt_rejected(&self, prompt_id: String, reason: String) -> Result<(), WalletError> {
        let _ = self.tx.send(Heard::Rejected(prompt_id, reason));
        Ok(())
    }

    fn on_payment_status(&self, update: PaymentStatusUpdate) -> Result<(), WalletError> {
        let _ = self.tx.send(Heard::Status(update));
        Ok(())
    }

    fn on_connection_state(&self, state: ConnectionState) -> Result<(), WalletError> {
        let _ = self.tx.send(Heard::Connection(state));
        Ok(())
    }
}

/// The receiving end of a [`Recorder`], with waits.
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Heard>,
    pub seen: Vec<Heard>,
}

impl Inbox {
    /// Waits for the first call matching `pick`, keeping everything seen.
    pub async fn wait_for<T>(&mut self, what: &str, pick: impl Fn(&Heard) -> Option<T>) -> T {
        if let Some(found) = self.seen.iter().find_map(&pick) {
            return found;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let heard = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; heard {:?}", self.seen))
                .expect("listener channel closed");
            self.seen.push(heard.clone());
            if let Some(found) = pick(&heard) {
                return found;
            }
        }
    }

    /// Waits for the prompt with this id.
    pub async fn prompt(&mut self, id: &str) -> PaymentPrompt {
        self.wait_for("a prompt", |h| match h {
            Heard::Prompt(p) if p.prompt_id == id => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// Waits until the stream is connected.
    pub async fn connected(&mut self) {
        self.wait_for("connected", |h| {
            matches!(h, Heard::Connection(ConnectionState::Connected)).then_some(())
        })
        .await
    }

    /// Drains what arrived so far without waiting.
    pub fn drain(&mut self) -> &[Heard] {
        while let Ok(heard) = self.rx.try_recv() {
            self.seen.push(heard);
        }
        &self.seen
    }
}
