//! A real world for end-to-end tests: the REAL reference gateway in-process
//! (`opencharge_gateway::Gateway`, dev mode) and a real merchant, both on loopback with SQLite
//! files, each finding the other through its directory, plus a funded dev account with a
//! registered device that signs its calls and consents for real.

use std::time::Duration;

use opencharge_gateway::auth::device_auth_headers;
use opencharge_gateway::config::DirectoryEntry as GatewayDirectoryEntry;
use opencharge_gateway::testkit;
use opencharge_gateway::{Gateway, RunningGateway};
use opencharge_merchant::{
    DirectoryEntry, Merchant, MerchantConfig, NewOrder, OrderRecord, RunningMerchant,
};
use opencharge_protocol::keys::PrivateKey;
use opencharge_protocol::signing::{object_hash, sign_object};
use opencharge_protocol::types::{OrderStatus, SignedOrder};
use serde_json::{json, Value};

use super::{item, read, GATEWAY, MERCHANT};

/// How long a test waits for a payment to reach the merchant.
pub const WAIT: Duration = Duration::from_secs(20);

/// A gateway and a merchant that know each other, and a funded wallet.
pub struct World {
    pub _dir: tempfile::TempDir,
    pub gw: RunningGateway,
    pub merchant: RunningMerchant,
    pub http: reqwest::Client,
    pub wallet: Wallet,
}

/// A registered device of a funded dev account.
pub struct Wallet {
    pub key: PrivateKey,
    pub device_id: String,
}

impl World {
    pub async fn start() -> World {
        World::start_with(|_| {}).await
    }

    /// [`World::start`] with the merchant's test configuration adjusted by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut MerchantConfig)) -> World {
        let dir = tempfile::tempdir().unwrap();
        // The merchant first (the gateway's directory needs its metadata URL) ...
        let mut merchant_config = MerchantConfig::for_tests(dir.path(), MERCHANT, vec![GATEWAY]);
        tweak(&mut merchant_config);
        let merchant = Merchant::start(merchant_config).await.unwrap();
        // ... then the gateway, which finds the merchant by its metadata URL ...
        let mut config = testkit::test_config(dir.path());
        config.directory = vec![GatewayDirectoryEntry {
            ocid: MERCHANT,
            metadata_url: Some(merchant.metadata_url()),
            metadata: None,
        }];
        let gw = Gateway::start(config).await.unwrap();
        assert_eq!(gw.ocid(), GATEWAY);
        // ... and the merchant learns where the gateway's metadata is.
        merchant.add_directory_entry(DirectoryEntry {
            ocid: GATEWAY,
            metadata_url: format!("{}/metadata.json", gw.endpoint()),
        });
        let http = reqwest::Client::new();
        let mut world = World {
            _dir: dir,
            gw,
            merchant,
            http,
            wallet: Wallet {
                key: PrivateKey::generate(),
                device_id: String::new(),
            },
        };
        world.wallet = world.funded_wallet("Alice", "50.00").await;
        world
    }

    pub fn now(&self) -> i64 {
        self.gw.state.now()
    }

    pub fn gw_url(&self, rel: &str) -> String {
        format!("{}{rel}", self.gw.endpoint())
    }

    /// An unauthenticated JSON POST to the gateway (dev endpoints, registration).
    pub async fn plain(&self, rel: &str, body: Value) -> (u16, Value) {
        read(
            self.http
                .post(self.gw_url(rel))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A device-signed call to the gateway's app API.
    pub async fn call(&self, method: &str, rel: &str, body: Option<Value>) -> (u16, Value) {
        let url = reqwest::Url::parse(&self.gw_url(rel)).unwrap();
        let path = url.path().to_string();
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let mut req = self.http.request(method.parse().unwrap(), url);
        for (name, value) in device_auth_headers(
            &self.wallet.key,
            &self.wallet.device_id,
            method,
            &path,
            &bytes,
            self.now(),
        ) {
            req = req.header(name, value);
        }
        if !bytes.is_empty() {
            req = req.header("content-type", "application/json").body(bytes);
        }
        read(req.send().await.unwrap()).await
    }

    /// Creates a dev account, funds it with `usd`, registers a fresh device key.
    pub async fn funded_wallet(&self, name: &str, usd: &str) -> Wallet {
        let (status, acct) = self.plain("/dev/accounts", json!({"name": name})).await;
        assert_eq!(status, 200, "{acct}");
        let account_id = acct["accountId"].as_str().unwrap().to_string();
        let code = acct["enrollmentCode"].as_str().unwrap().to_string();
        let (status, body) = self
            .plain(
                &format!("/dev/accounts/{account_id}/fund"),
                json!({"currency": "USD", "amount": usd}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let key = PrivateKey::generate();
        let public_key = key.public_key().to_hex();
        let ts = self.now();
        let message = format!("opencharge-device-registration\n{public_key}\n{code}\n{ts}");
        let signature = key.sign_message(message.as_bytes()).unwrap().to_hex();
        let (status, body) = self
            .plain(
                "/app/devices",
                json!({"enrollmentCode": code, "publicKey": public_key, "timestamp": ts, "signature": signature}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["accountId"], json!(account_id));
        Wallet {
            key,
            device_id: body["deviceId"].as_str().unwrap().to_string(),
        }
    }

    pub async fn usd_balance(&self) -> String {
        let (status, body) = self.call("GET", "/app/balance", None).await;
        assert_eq!(status, 200, "{body}");
        body["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["currency"] == "USD")
            .map(|b| b["amount"].as_str().unwrap().to_string())
            .unwrap()
    }

    /// The user confirms a prompt with a device-signed consent; returns the paid answer.
    pub async fn confirm(&self, prompt: &Value) -> Value {
        let session_id = prompt["sessionId"].as_str().unwrap();
        let order = &prompt["order"];
        assert_eq!(prompt["orderHash"], json!(object_hash(order).unwrap()));
        let consent = json!({
            "sessionId": session_id,
            "orderHash": object_hash(order).unwrap(),
            "amount": order["amount"],
            "currency": order["currency"],
            "merchantOcid": order["ocid"],
            "deviceId": self.wallet.device_id,
            "timestamp": self.now(),
        });
        let signature = sign_object(&self.wallet.key, &consent).unwrap();
        let (status, body) = self
            .call(
                "POST",
                &format!("/app/sessions/{session_id}/confirm"),
                Some(json!({"idempotencyKey": format!("confirm-{session_id}"), "consent": consent, "signature": signature})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "paid");
        body
    }

    /// A tea-and-cake order (12.25 USD).
    pub fn order(&self) -> SignedOrder {
        self.merchant
            .create_order(NewOrder {
                items: vec![
                    item("tea", "Tea", 2, "4.50"),
                    item("cake", "Cake", 1, "3.25"),
                ],
                currency: "USD".into(),
                reference: Some("POS-7".into()),
                memo: None,
            })
            .unwrap()
    }

    /// The merchant's view after the gateway's proof arrived, checked against the gateway's.
    pub async fn assert_paid_by_gateway(&self, order_id: &str, paid: &Value) -> OrderRecord {
        let record = self.merchant.wait_paid(order_id, WAIT).await.unwrap();
        assert_eq!(record.status, OrderStatus::Paid);
        assert_eq!(record.txid.as_deref(), paid["txid"].as_str());
        assert_eq!(record.issuer, Some(GATEWAY));
        let proof = record.proof.as_ref().unwrap();
        assert_eq!(proof.proof.issuer, GATEWAY);
        assert_eq!(proof.proof.to.ocid, MERCHANT);
        assert_eq!(proof.proof.to.reference.as_deref(), Some(order_id));
        assert_eq!(proof.proof.amount, record.amount);
        // The merchant's public status URL agrees.
        let (status, body) = read(
            self.http
                .get(format!(
                    "{}/orders/{order_id}/status",
                    self.merchant.endpoint()
                ))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "paid");
        assert_eq!(body["txid"], paid["txid"]);
        record
    }

    pub async fn stop(self) {
        self.merchant.stop().await;
        self.gw.stop().await;
    }
}
