//! End to end with the REAL reference gateway in-process (`opencharge_gateway::Gateway`) and
//! a real merchant, both on loopback with SQLite files, each finding the other through its
//! directory (metadata fetched over HTTP, config signatures verified). A dev account is
//! created and funded, a device is registered and confirms with device-signed requests, and
//! the merchant sees the gateway's proof arrive on its webhook and reports the order paid.
//! One test per flow: wallet QR session, merchant order QR, inventory QR, hosted checkout.

mod common;

use std::time::Duration;

use common::{err_code, item, read};
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

const GATEWAY: u64 = 200;
const MERCHANT: u64 = 500;
const WAIT: Duration = Duration::from_secs(20);

/// A gateway and a merchant that know each other, and a funded wallet.
struct World {
    _dir: tempfile::TempDir,
    gw: RunningGateway,
    merchant: RunningMerchant,
    http: reqwest::Client,
    wallet: Wallet,
}

/// A registered device of a funded dev account.
struct Wallet {
    key: PrivateKey,
    device_id: String,
}

impl World {
    async fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        // The merchant first (the gateway's directory needs its metadata URL) ...
        let merchant = Merchant::start(MerchantConfig::for_tests(
            dir.path(),
            MERCHANT,
            vec![GATEWAY],
        ))
        .await
        .unwrap();
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

    fn now(&self) -> i64 {
        self.gw.state.now()
    }

    fn gw_url(&self, rel: &str) -> String {
        format!("{}{rel}", self.gw.endpoint())
    }

    /// An unauthenticated JSON POST to the gateway (dev endpoints, registration).
    async fn plain(&self, rel: &str, body: Value) -> (u16, Value) {
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
    async fn call(&self, method: &str, rel: &str, body: Option<Value>) -> (u16, Value) {
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
    async fn funded_wallet(&self, name: &str, usd: &str) -> Wallet {
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

    async fn usd_balance(&self) -> String {
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
    async fn confirm(&self, prompt: &Value) -> Value {
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
    fn order(&self) -> SignedOrder {
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
    async fn assert_paid_by_gateway(&self, order_id: &str, paid: &Value) -> OrderRecord {
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

    async fn stop(self) {
        self.merchant.stop().await;
        self.gw.stop().await;
    }
}

#[tokio::test]
async fn wallet_session_flow_merchant_posts_order_and_receives_the_proof() {
    let world = World::start().await;
    // The wallet shows its session QR.
    let (status, session) = world.call("POST", "/app/sessions", None).await;
    assert_eq!(status, 200, "{session}");
    let qr_text = session["qrText"].as_str().unwrap();

    // The merchant scans it and posts a signed order.
    let signed = world.order();
    let order_id = signed.order.id.clone();
    let answer = world
        .merchant
        .post_to_wallet_session(qr_text, &order_id)
        .await
        .unwrap();
    assert!(answer.urls.status.starts_with(world.gw.endpoint()));
    let record = world.merchant.order(&order_id).unwrap().unwrap();
    assert_eq!(record.status, OrderStatus::Pending);
    assert_eq!(record.gateway_ocid, Some(GATEWAY));
    assert_eq!(
        record.status_url.as_deref(),
        Some(answer.urls.status.as_str())
    );

    // The session is single-use: posting again is refused by the gateway.
    let again = world.order();
    let err = world
        .merchant
        .post_to_wallet_session(qr_text, &again.order.id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, opencharge_merchant::MerchantError::Peer(ref e) if e.code.as_str() == "SESSION_USED"),
        "{err}"
    );

    // The wallet sees the prompt with the merchant's verified order and confirms.
    let (status, prompts) = world.call("GET", "/app/prompts", None).await;
    assert_eq!(status, 200, "{prompts}");
    let prompt = &prompts["prompts"][0];
    assert_eq!(prompt["merchantName"], "Test Coffee");
    assert_eq!(
        prompt["order"],
        serde_json::to_value(&signed.order).unwrap()
    );
    assert_eq!(prompt["order"]["amount"], "12.25");
    let paid = world.confirm(prompt).await;

    // The proof reaches the merchant's webhook; the order reads paid everywhere.
    world.assert_paid_by_gateway(&order_id, &paid).await;
    let polled = world.merchant.gateway_status(&order_id).await.unwrap();
    assert_eq!(polled.status, OrderStatus::Paid);
    assert_eq!(polled.order_id, order_id);
    assert_eq!(world.usd_balance().await, "37.75");
    assert_eq!(world.merchant.proofs().len(), 1);
    world.stop().await;
}

#[tokio::test]
async fn merchant_order_qr_flow_pays_the_order() {
    let world = World::start().await;
    let signed = world.order();
    let order_id = signed.order.id.clone();
    let qr = world.merchant.order_qr(&order_id).unwrap();
    let (status, scanned) = world
        .call("POST", "/app/scan", Some(json!({"text": qr})))
        .await;
    assert_eq!(status, 200, "{scanned}");
    assert_eq!(scanned["kind"], "prompt");
    let prompt = &scanned["prompt"];
    assert_eq!(prompt["flow"], "merchant_qr");
    assert_eq!(prompt["order"]["id"], json!(order_id));
    let paid = world.confirm(prompt).await;
    world.assert_paid_by_gateway(&order_id, &paid).await;
    assert_eq!(world.usd_balance().await, "37.75");

    // Scanning the same, now paid, order again: the merchant's refusal passes through.
    let (status, body) = world
        .call("POST", "/app/scan", Some(json!({"text": qr})))
        .await;
    assert_eq!((status, err_code(&body)), (409, "INVALID_STATE"), "{body}");
    world.stop().await;
}

#[tokio::test]
async fn inventory_qr_flow_prices_at_the_merchant_and_pays() {
    let world = World::start().await;
    let (status, inventory) = world
        .call(
            "POST",
            "/app/scan",
            Some(json!({"text": world.merchant.inventory_qr()})),
        )
        .await;
    assert_eq!(status, 200, "{inventory}");
    assert_eq!(inventory["kind"], "inventory");
    assert_eq!(inventory["merchantName"], "Test Coffee");
    assert_eq!(inventory["items"].as_array().unwrap().len(), 2);

    // An unknown item: the merchant's INVALID_ITEM comes back through the gateway.
    let (status, body) = world
        .call(
            "POST",
            "/app/inventory/order",
            Some(
                json!({"merchantOcid": MERCHANT, "inventoryUrl": inventory["inventoryUrl"],
                        "items": [{"id": "caviar", "quantity": 1}]}),
            ),
        )
        .await;
    assert_eq!((status, err_code(&body)), (400, "INVALID_ITEM"), "{body}");

    // The gateway asks the merchant (signed POST /orders/create) to price the choice.
    let (status, prompt) = world
        .call(
            "POST",
            "/app/inventory/order",
            Some(
                json!({"merchantOcid": MERCHANT, "inventoryUrl": inventory["inventoryUrl"],
                        "items": [{"id": "cake", "quantity": 2}, {"id": "tea", "quantity": 1}]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{prompt}");
    assert_eq!(prompt["order"]["amount"], "11.00"); // 2 × 3.25 + 4.50
    let order_id = prompt["order"]["id"].as_str().unwrap().to_string();
    let stored = world.merchant.order(&order_id).unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&stored.order).unwrap(),
        prompt["order"]
    );

    let paid = world.confirm(&prompt).await;
    world.assert_paid_by_gateway(&order_id, &paid).await;
    assert_eq!(world.usd_balance().await, "39.00");
    world.stop().await;
}

#[tokio::test]
async fn hosted_checkout_flow_merchant_as_its_own_merchant_gateway() {
    let world = World::start().await;
    let signed = world.order();
    let order_id = signed.order.id.clone();
    let checkout = world
        .merchant
        .create_checkout(
            GATEWAY,
            &order_id,
            "https://shop.example/success",
            "https://shop.example/cancel",
        )
        .await
        .unwrap();
    assert!(checkout.checkout_url.starts_with(world.gw.endpoint()));
    assert!(checkout.session_id.starts_with("cs_"));
    assert!(checkout.expires_at.is_some());
    let record = world.merchant.order(&order_id).unwrap().unwrap();
    assert_eq!(
        record.checkout_url.as_deref(),
        Some(checkout.checkout_url.as_str())
    );

    // The payer opens the link in the wallet and confirms.
    let (status, prompt) = world
        .call(
            "POST",
            &format!("/app/checkout/{}", checkout.session_id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{prompt}");
    assert_eq!(prompt["flow"], "checkout");
    let paid = world.confirm(&prompt).await;
    assert_eq!(paid["redirectUrl"], "https://shop.example/success");
    world.assert_paid_by_gateway(&order_id, &paid).await;
    assert_eq!(world.usd_balance().await, "37.75");

    // A gateway that is not in the merchant's directory cannot be used.
    let other = world.order();
    let err = world
        .merchant
        .create_checkout(
            999,
            &other.order.id,
            "https://s.example/ok",
            "https://s.example/no",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            opencharge_merchant::MerchantError::Resolve { ocid: 999, .. }
        ),
        "{err}"
    );
    world.stop().await;
}
