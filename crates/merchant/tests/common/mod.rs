//! Shared harness for the merchant's integration tests: a real merchant on loopback with a
//! real SQLite file and an adjustable clock, a metadata host that publishes signed metadata
//! for stand-in gateways (issuers), and helpers that sign requests and proofs for real;
//! [`world`] adds the real gateway with a funded wallet device for end-to-end tests.

#![allow(dead_code)]

pub mod world;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use opencharge_gateway::testkit;
use opencharge_merchant::clock::OffsetClock;
use opencharge_merchant::{
    DirectoryEntry, Merchant, MerchantConfig, NewItem, NewOrder, RunningMerchant,
};
use opencharge_protocol::keys::PrivateKey;
use opencharge_protocol::signing::sign_object;
use opencharge_protocol::types::SignedOrder;
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
        let doc = testkit::merchant_metadata(ocid, &format!("Party {ocid}"), key, endpoint, &[]);
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
            .create_order(NewOrder {
                items: vec![
                    item("tea", "Tea", 2, "4.50"),
                    item("cake", "Cake", 1, "3.25"),
                ],
                currency: "USD".into(),
                reference: Some("POS-1".into()),
                memo: Some("table 4".into()),
            })
            .unwrap()
    }

    /// A plain GET.
    pub async fn get(&self, rel: &str) -> (u16, Value) {
        read(self.http.get(self.url(rel)).send().await.unwrap()).await
    }

    /// A POST signed as `sender` (at the merchant's clock).
    pub async fn post_signed(&self, sender: &Issuer, rel: &str, body: &Value) -> (u16, Value) {
        let resp = testkit::signed_request(
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

/// A line item.
pub fn item(id: &str, name: &str, quantity: u64, price: &str) -> NewItem {
    NewItem {
        id: id.into(),
        name: name.into(),
        quantity,
        price: price.into(),
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
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    };
    (status, body)
}

/// The `error.code` of an error envelope.
pub fn err_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}
