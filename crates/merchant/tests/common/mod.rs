//! Shared harness for the merchant's integration tests: a real merchant on loopback with a
//! real SQLite file and an adjustable clock, a metadata host that publishes signed metadata
//! for stand-in gateways (issuers), and helpers that sign requests and proofs for real;
//! [`World`] adds the real gateway (the test kit's network) with a funded raw app-API device
//! for end-to-end tests.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use opencharge_merchant::clock::OffsetClock;
use opencharge_merchant::{
    DirectoryEntry, Merchant, MerchantConfig, NewOrder, OrderRecord, RunningMerchant,
};
use opencharge_protocol::keys::PrivateKey;
use opencharge_protocol::signing::{object_hash, sign_object};
use opencharge_protocol::types::{OrderStatus, SignedOrder};
pub use opencharge_testkit::{item, WAIT};
use opencharge_testkit::{AppDevice, Network};
use serde_json::{json, Value};

/// The merchant's OCID in these tests.
pub const MERCHANT: u64 = 500;
/// A payment gateway the merchant accepts proofs from.
pub const GATEWAY: u64 = 200;
/// A gateway the merchant knows (in its directory) but does not accept proofs from.
pub const OTHER: u64 = 300;

type Docs = Arc<Mutex<HashMap<String, Value>>>;

/// A loopback HTTP server publishing metadata documents at `/meta/<ocid>.json`.
pub struct MetadataHost {
    base: String,
    docs: Docs,
}

impl MetadataHost {
    /// Starts the host on a free loopback port.
    pub async fn start() -> MetadataHost {
        let docs: Docs = Arc::new(Mutex::new(HashMap::new()));
        let app = Router::new()
            .route(
                "/meta/{file}",
                get(
                    |State(d): State<Docs>, Path(file): Path<String>| async move {
                        match d.lock().unwrap().get(&file) {
                            Some(doc) => (StatusCode::OK, Json(doc.clone())),
                            None => (StatusCode::NOT_FOUND, Json(Value::Null)),
                        }
                    },
                ),
            )
            .with_state(docs.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MetadataHost { base, docs }
    }

    /// Publishes signed metadata for `ocid` with `endpoint`; returns its URL.
    pub fn publish(&self, ocid: u64, key: &PrivateKey, endpoint: &str) -> String {
        let doc = opencharge_testkit::merchant_metadata(
            ocid,
            &format!("Party {ocid}"),
            key,
            endpoint,
            &[],
        );
        self.docs
            .lock()
            .unwrap()
            .insert(format!("{ocid}.json"), doc);
        self.url(ocid)
    }

    /// The metadata URL of `ocid`.
    pub fn url(&self, ocid: u64) -> String {
        format!("{}/meta/{ocid}.json", self.base)
    }

    /// The endpoint published for a stand-in party.
    pub fn endpoint_of(&self, ocid: u64) -> String {
        format!("{}/p{ocid}/opencharge", self.base)
    }
}

/// A stand-in gateway: an OCID and its key, published on the metadata host.
pub struct Issuer {
    pub ocid: u64,
    pub key: PrivateKey,
}

/// A running merchant with its surroundings.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub merchant: RunningMerchant,
    pub clock: Arc<OffsetClock>,
    pub host: MetadataHost,
    pub gateway: Issuer,
    pub other: Issuer,
    pub http: reqwest::Client,
}

impl Env {
    /// A merchant accepting [`GATEWAY`], knowing [`GATEWAY`] and [`OTHER`].
    pub async fn start() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let host = MetadataHost::start().await;
        let gateway = Issuer {
            ocid: GATEWAY,
            key: PrivateKey::generate(),
        };
        let other = Issuer {
            ocid: OTHER,
            key: PrivateKey::generate(),
        };
        for issuer in [&gateway, &other] {
            host.publish(issuer.ocid, &issuer.key, &host.endpoint_of(issuer.ocid));
        }
        let config = Env::config(&dir, &host, vec![GATEWAY]);
        let clock = Arc::new(OffsetClock::default());
        let merchant = Merchant::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        Env {
            dir,
            merchant,
            clock,
            host,
            gateway,
            other,
            http: reqwest::Client::new(),
        }
    }

    /// The test configuration with both stand-in gateways in the directory.
    pub fn config(
        dir: &tempfile::TempDir,
        host: &MetadataHost,
        accepts: Vec<u64>,
    ) -> MerchantConfig {
        let mut config = MerchantConfig::for_tests(dir.path(), MERCHANT, accepts);
        config.directory = vec![
            DirectoryEntry {
                ocid: GATEWAY,
                metadata_url: host.url(GATEWAY),
            },
            DirectoryEntry {
                ocid: OTHER,
                metadata_url: host.url(OTHER),
            },
        ];
        config
    }

    pub fn now(&self) -> i64 {
        use opencharge_merchant::clock::Clock;
        self.clock.now()
    }

    pub fn url(&self, rel: &str) -> String {
        format!("{}{rel}", self.merchant.endpoint())
    }

    /// A tea-and-cake order: 2 × 4.50 + 1 × 3.25 = 12.25 USD.
    pub fn order(&self) -> SignedOrder {
        self.merchant
            .create_order(tea_order("POS-1", Some("table 4")))
            .unwrap()
    }

    /// A plain GET.
    pub async fn get(&self, rel: &str) -> (u16, Value) {
        read(self.http.get(self.url(rel)).send().await.unwrap()).await
    }

    /// A POST signed as `sender` (at the merchant's clock).
    pub async fn post_signed(&self, sender: &Issuer, rel: &str, body: &Value) -> (u16, Value) {
        let resp = opencharge_testkit::signed_request(
            &self.http,
            &sender.key,
            sender.ocid,
            "POST",
            &self.url(rel),
            Some(serde_json::to_vec(body).unwrap()),
            self.now(),
        )
        .await
        .unwrap();
        read(resp).await
    }

    /// Delivers `{proof, signature}` to the webhook, signed as `sender`.
    pub async fn deliver(&self, sender: &Issuer, envelope: &Value) -> (u16, Value) {
        self.post_signed(sender, "/transfer/webhook", envelope)
            .await
    }
}

/// The merchant tests' order, from the test inventory: 2 × Tea at 4.50 + 1 × Cake at 3.25 =
/// 12.25 USD.
pub fn tea_order(reference: &str, memo: Option<&str>) -> NewOrder {
    NewOrder {
        items: vec![
            item("tea", "Tea", 2, "4.50"),
            item("cake", "Cake", 1, "3.25"),
        ],
        currency: "USD".into(),
        reference: Some(reference.into()),
        memo: memo.map(str::to_string),
    }
}

/// A proof from `issuer` paying `order` to the merchant, before signing.
pub fn proof_for(issuer: u64, txid: &str, order: &SignedOrder, now: i64) -> Value {
    json!({
        "txid": txid,
        "issuer": issuer,
        "from": {"ocid": issuer, "reference": "acct_alice"},
        "to": {"ocid": MERCHANT, "reference": order.order.id},
        "amount": order.order.amount,
        "currency": order.order.currency,
        "timestamp": now,
    })
}

/// `{proof, signature}` with the proof signed by `key`.
pub fn signed_envelope(proof: &Value, key: &PrivateKey) -> Value {
    let signature = sign_object(key, proof).unwrap();
    json!({"proof": proof, "signature": signature})
}

/// Status and JSON body of a response.
pub async fn read(resp: reqwest::Response) -> (u16, Value) {
    opencharge_testkit::device::read(resp).await.unwrap()
}

/// The `error.code` of an error envelope.
pub fn err_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// A gateway and a merchant that know each other (the test kit's network), and a raw
/// app-API device of a dev account funded with 50.00 USD.
pub struct World {
    /// The gateway and the merchant.
    pub net: Network,
    /// The merchant (shared with `net`).
    pub merchant: Arc<RunningMerchant>,
    /// A plain HTTP client.
    pub http: reqwest::Client,
    /// Alice's registered device.
    pub wallet: AppDevice,
}

impl World {
    /// A world with the merchant's test configuration.
    pub async fn start() -> World {
        World::start_with(|_| {}).await
    }

    /// [`World::start`] with the merchant's test configuration adjusted by `tweak`.
    pub async fn start_with(tweak: impl Fn(&mut MerchantConfig) + Send + Sync + 'static) -> World {
        let net = Network::builder()
            .merchant_config(move |_, config| tweak(config))
            .start()
            .await
            .unwrap();
        assert_eq!(net.gateway_ocid(), GATEWAY);
        assert_eq!(net.merchant().ocid(), MERCHANT);
        let wallet = net.app_device("Alice", Some("50.00")).await.unwrap();
        World {
            merchant: net.merchants()[0].clone(),
            http: reqwest::Client::new(),
            net,
            wallet,
        }
    }

    /// The gateway's now.
    pub fn now(&self) -> i64 {
        self.net.now()
    }

    /// The gateway's Opencharge endpoint.
    pub fn gw_endpoint(&self) -> &str {
        self.net.endpoint()
    }

    /// A device-signed call to the gateway's app API.
    pub async fn call(&self, method: &str, rel: &str, body: Option<Value>) -> (u16, Value) {
        self.net
            .app_call(&self.wallet, method, rel, body.as_ref())
            .await
            .unwrap()
    }

    /// Alice's USD balance as the gateway reports it.
    pub async fn usd_balance(&self) -> String {
        let (status, body) = self.call("GET", "/app/balance", None).await;
        assert_eq!(status, 200, "{body}");
        opencharge_testkit::usd_amount(&body)
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
            .create_order(tea_order("POS-7", None))
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

    /// Stops the gateway and the merchant.
    pub async fn stop(self) {
        let World { net, merchant, .. } = self;
        drop(merchant);
        net.stop().await;
    }
}
