//! The merchant as its own Merchant Gateway (third-party settlement, protocol notes §4.2 and
//! §5.6 strategy 3) over real HTTP on loopback with real signatures: `POST /payment/create`,
//! `POST /payment/settle`, `GET /verify/{txid}` and a settlement provider's proof on
//! `POST /transfer/webhook`. The payer's gateway and the provider are stand-ins (an OCID and
//! a key published on the metadata host, in the merchant's directory). Every refusal has its
//! test and leaves the payment, the order and the proofs as they were.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use opencharge_merchant::clock::OffsetClock;
use opencharge_merchant::{DirectoryEntry, Merchant, MerchantConfig, RunningMerchant};
use opencharge_protocol::auth::ResponseAuth;
use opencharge_protocol::keys::{PrivateKey, PublicKey, VerifyOptions};
use opencharge_protocol::signing::verify_proof;
use opencharge_protocol::types::{OrderStatus, PaymentStatus, SignedOrder};
use serde_json::{json, Value};

/// The payer's gateway (the creator of payments).
const PAYER: u64 = 100;
/// The settlement provider (a bank) the merchant accepts for third-party payments.
const BANK: u64 = 400;
/// A settlement provider configured but not in the merchant's directory.
const GHOST: u64 = 401;

/// A merchant with a payer gateway, a bank and the common stand-ins around it.
struct PayEnv {
    dir: tempfile::TempDir,
    merchant: RunningMerchant,
    clock: Arc<OffsetClock>,
    host: MetadataHost,
    payer: Issuer,
    bank: Issuer,
    gateway: Issuer,
    other: Issuer,
    http: reqwest::Client,
}

impl PayEnv {
    /// Accepts GATEWAY and BANK proofs for orders; BANK (and GHOST) settle payments; USD and
    /// EUR.
    async fn start() -> PayEnv {
        PayEnv::start_with(|config| {
            config.accepts = vec![GATEWAY, BANK];
            config.settlement_providers = Some(vec![BANK, GHOST]);
        })
        .await
    }

    async fn start_with(tweak: impl FnOnce(&mut MerchantConfig)) -> PayEnv {
        let dir = tempfile::tempdir().unwrap();
        let host = MetadataHost::start().await;
        let issuer = |ocid| Issuer {
            ocid,
            key: PrivateKey::generate(),
        };
        let (payer, bank, gateway, other) =
            (issuer(PAYER), issuer(BANK), issuer(GATEWAY), issuer(OTHER));
        for party in [&payer, &bank, &gateway, &other] {
            host.publish(party.ocid, &party.key, &host.endpoint_of(party.ocid));
        }
        let mut config = Env::config(&dir, &host, vec![GATEWAY]);
        config.currencies = vec!["USD".into(), "EUR".into()];
        for ocid in [PAYER, BANK] {
            config.directory.push(DirectoryEntry {
                ocid,
                metadata_url: host.url(ocid),
            });
        }
        tweak(&mut config);
        let clock = Arc::new(OffsetClock::default());
        let merchant = Merchant::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        PayEnv {
            dir,
            merchant,
            clock,
            host,
            payer,
            bank,
            gateway,
            other,
            http: reqwest::Client::new(),
        }
    }

    fn now(&self) -> i64 {
        use opencharge_merchant::clock::Clock;
        self.clock.now()
    }

    fn url(&self, rel: &str) -> String {
        format!("{}{rel}", self.merchant.endpoint())
    }

    /// A 12.25 USD order.
    fn order(&self) -> SignedOrder {
        self.merchant
            .create_order(tea_order("POS-9", None))
            .unwrap()
    }

    /// A request signed as `sender` at the merchant's clock; status and body.
    async fn call(
        &self,
        sender: &Issuer,
        method: &str,
        rel: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let resp = opencharge_testkit::signed_request(
            &self.http,
            &sender.key,
            sender.ocid,
            method,
            &self.url(rel),
            body.map(|b| serde_json::to_vec(b).unwrap()),
            self.now(),
        )
        .await
        .unwrap();
        read(resp).await
    }

    /// `POST /payment/create` by the payer.
    async fn create(&self, body: &Value) -> (u16, Value) {
        self.call(&self.payer, "POST", "/payment/create", Some(body))
            .await
    }

    /// Creates a payment for `order` with `reference`; returns its txid.
    async fn create_for(&self, order: &SignedOrder, reference: &str) -> String {
        let (status, body) = self.create(&create_body(order, reference)).await;
        assert_eq!(status, 200, "{body}");
        body["txid"].as_str().unwrap().to_string()
    }

    /// `POST /payment/settle` by `sender` with the bank's envelope.
    async fn settle_as(&self, sender: &Issuer, txid: &str, envelope: &Value) -> (u16, Value) {
        let body =
            json!({"txid": txid, "proof": envelope["proof"], "signature": envelope["signature"]});
        self.call(sender, "POST", "/payment/settle", Some(&body))
            .await
    }

    /// `POST /payment/settle` by the payer.
    async fn settle(&self, txid: &str, envelope: &Value) -> (u16, Value) {
        self.settle_as(&self.payer, txid, envelope).await
    }

    /// `GET /verify/{txid}` signed as `sender`.
    async fn verify_as(&self, sender: &Issuer, txid: &str) -> (u16, Value) {
        self.call(sender, "GET", &format!("/verify/{txid}"), None)
            .await
    }

    /// The bank's proof of a transfer to the merchant for payment `txid`, signed.
    fn bank_proof(&self, bank_txid: &str, txid: &str, amount: &str) -> Value {
        signed_envelope(
            &bank_proof_value(bank_txid, txid, amount, self.now()),
            &self.bank.key,
        )
    }

    fn merchant_key(&self) -> PublicKey {
        PublicKey::from_hex(&self.merchant.public_key_hex()).unwrap()
    }

    /// The payment is pending and the order unpaid with no proof recorded.
    async fn assert_untouched(&self, txid: &str, order_id: &str) {
        let (status, body) = self.verify_as(&self.payer, txid).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "pending", "{body}");
        let record = self.merchant.payment(txid).unwrap().unwrap();
        assert_eq!(record.status, PaymentStatus::PendingSettlement);
        assert_eq!(record.provider_proof, None);
        assert_eq!(record.proof, None);
        let order = self.merchant.order(order_id).unwrap().unwrap();
        assert_eq!(order.status, OrderStatus::Pending);
        assert_eq!(order.txid, None);
        assert!(self.merchant.proofs().is_empty());
    }
}

/// The body of a create for `order`.
fn create_body(order: &SignedOrder, reference: &str) -> Value {
    json!({
        "to": MERCHANT,
        "amount": order.order.amount,
        "currency": order.order.currency,
        "reference": reference,
        "order": {"id": order.order.id, "urls": [format!("https://shop.example/o/{}", order.order.id)]},
    })
}

/// The bank's proof (unsigned) of a transfer from the payer to the merchant for `txid`.
fn bank_proof_value(bank_txid: &str, txid: &str, amount: &str, now: i64) -> Value {
    json!({
        "txid": bank_txid,
        "issuer": BANK,
        "from": {"ocid": PAYER, "reference": "tp:sess_1"},
        "to": {"ocid": MERCHANT, "reference": txid},
        "amount": amount,
        "currency": "USD",
        "timestamp": now,
    })
}

#[tokio::test]
async fn metadata_advertises_the_merchant_gateway() {
    let env = PayEnv::start().await;
    let (status, doc) = read(
        env.http
            .get(env.merchant.metadata_url())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{doc}");
    let caps = doc["config"]["capabilities"].as_array().unwrap();
    for cap in [
        "payment.create",
        "payment.settle",
        "verify.txid",
        "transfer.webhook",
    ] {
        assert!(caps.contains(&json!(cap)), "{cap} missing: {doc}");
    }
    // Order proofs from GATEWAY and BANK, then the payment providers.
    assert_eq!(
        doc["config"]["settlement"]["accepts"],
        json!([GATEWAY, BANK, GHOST])
    );

    // The design's Merchant Gateway: it accepts only the bank, for orders and payments alike.
    let bank_only = PayEnv::start_with(|config| config.accepts = vec![BANK]).await;
    let doc = bank_only.merchant.metadata();
    assert_eq!(doc["config"]["settlement"]["accepts"], json!([BANK]));
    let order = bank_only.order();
    assert_eq!(order.order.accepts, Some(vec![BANK]));
    let (status, body) = bank_only.create(&create_body(&order, "s")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settlement"]["accepts"], json!([BANK]));
}

#[tokio::test]
async fn create_settle_verify_pays_the_order_and_wakes_the_merchant() {
    let env = PayEnv::start().await;
    let order = env.order();
    let order_id = order.order.id.clone();

    let (status, created) = env.create(&create_body(&order, "sess_1")).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["status"], "pending_settlement");
    let txid = created["txid"].as_str().unwrap().to_string();
    assert!(txid.starts_with("mgp_") && txid.len() == 36, "{txid}");
    assert!(txid[4..]
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(created["amount"], "12.25");
    assert_eq!(created["currency"], "USD");
    assert_eq!(created["settlement"]["accepts"], json!([BANK, GHOST]));
    // The default lifetime is one hour.
    let created_at = env.merchant.payment(&txid).unwrap().unwrap().created_at;
    assert_eq!(created["expiresAt"], json!(created_at + 3600));

    let (status, pending) = env.verify_as(&env.payer, &txid).await;
    assert_eq!(status, 200, "{pending}");
    assert_eq!(
        pending,
        json!({"status": "pending", "txid": txid, "amount": "12.25", "currency": "USD",
               "createdAt": created_at, "expiresAt": created_at + 3600})
    );

    // The merchant waits; the payer settles with the bank's proof.
    let bank = env.bank_proof("bank_tx_1", &txid, "12.25");
    let wait = env.merchant.wait_paid(&order_id, Duration::from_secs(10));
    let settle = async {
        tokio::task::yield_now().await;
        env.settle(&txid, &bank).await
    };
    let (paid, (status, settled)) = tokio::join!(wait, settle);
    assert_eq!(status, 200, "{settled}");
    let paid = paid.unwrap();
    assert_eq!(settled["status"], "completed");
    assert_eq!(settled["txid"], json!(txid));

    // Our own proof: our txid and OCID, the bank's payer, the merchant's order, verbatim money.
    let proof = &settled["proof"];
    assert_eq!(
        *proof,
        json!({"txid": txid, "issuer": MERCHANT, "from": {"ocid": PAYER, "reference": "tp:sess_1"},
               "to": {"ocid": MERCHANT, "reference": order_id}, "amount": "12.25",
               "currency": "USD", "timestamp": proof["timestamp"]})
    );
    verify_proof(
        proof,
        settled["signature"].as_str().unwrap(),
        MERCHANT,
        &env.merchant_key(),
        VerifyOptions::STRICT,
    )
    .unwrap();

    // The order is paid by our proof: txid and issuer are ours.
    assert_eq!(paid.status, OrderStatus::Paid);
    assert_eq!(paid.txid.as_deref(), Some(txid.as_str()));
    assert_eq!(paid.issuer, Some(MERCHANT));
    let receipt = paid.proof.unwrap();
    assert_eq!(serde_json::to_value(&receipt.proof).unwrap(), *proof);
    assert_eq!(receipt.signature, settled["signature"].as_str().unwrap());
    let (status, body) = read(
        env.http
            .get(env.url(&format!("/orders/{order_id}/status")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["status"], &body["txid"]),
        (200, &json!("paid"), &json!(txid))
    );
    assert_eq!(env.merchant.proofs().len(), 1);

    // /verify answers with the same proof; the library record keeps both proofs.
    let (status, verified) = env.verify_as(&env.payer, &txid).await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(
        verified,
        json!({"status": "completed", "txid": txid, "proof": proof, "signature": settled["signature"]})
    );
    let record = env.merchant.payment(&txid).unwrap().unwrap();
    assert_eq!(record.status, PaymentStatus::Completed);
    assert_eq!(record.creator, PAYER);
    assert_eq!(record.reference.as_deref(), Some("sess_1"));
    assert_eq!(record.order_id.as_deref(), Some(order_id.as_str()));
    assert_eq!(record.provider_proof.unwrap().proof.txid, "bank_tx_1");
    assert_eq!(record.completed_at, proof["timestamp"].as_i64());
    assert!(record.completed_at.unwrap() >= created_at);
}

#[tokio::test]
async fn answers_are_signed_by_the_merchant() {
    let env = PayEnv::start().await;
    let order = env.order();
    let body = serde_json::to_vec(&create_body(&order, "signed")).unwrap();
    let resp = opencharge_testkit::signed_request(
        &env.http,
        &env.payer.key,
        PAYER,
        "POST",
        &env.url("/payment/create"),
        Some(body),
        env.now(),
    )
    .await
    .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(status, 200);
    let auth =
        ResponseAuth::from_headers(|n| headers.get(n).and_then(|v| v.to_str().ok())).unwrap();
    assert_eq!(auth.ocid, MERCHANT);
    auth.verify(
        &env.merchant_key(),
        status,
        &bytes,
        env.now(),
        VerifyOptions::STRICT,
    )
    .unwrap();
    // Unsigned calls are refused before anything else.
    for (method, rel) in [
        ("POST", "/payment/create"),
        ("POST", "/payment/settle"),
        ("GET", "/verify/mgp_x"),
    ] {
        let req = env.http.request(method.parse().unwrap(), env.url(rel));
        let (status, body) = read(req.json(&json!({})).send().await.unwrap()).await;
        assert_eq!(
            (status, err_code(&body)),
            (401, "INVALID_SIGNATURE"),
            "{rel}: {body}"
        );
    }
}

#[tokio::test]
async fn create_is_idempotent_per_caller_and_reference() {
    let env = PayEnv::start().await;
    let order = env.order();
    let (status, first) = env.create(&create_body(&order, "sess_7")).await;
    assert_eq!(status, 200, "{first}");
    // The same reference again: the same payment, byte for byte (even after time moved).
    env.clock.advance(5);
    let (status, again) = env.create(&create_body(&order, "sess_7")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);
    // The URL hints are not part of the terms.
    let (status, _) = env
        .create(
            &json!({"to": MERCHANT, "amount": "12.25", "currency": "USD",
        "reference": "sess_7", "order": {"id": order.order.id}}),
        )
        .await;
    assert_eq!(status, 200);
    // Other terms under the same reference are refused and change nothing.
    let mut other = create_body(&order, "sess_7");
    other["amount"] = json!("3.00");
    other.as_object_mut().unwrap().remove("order");
    let (status, body) = env.create(&other).await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "INVALID_REQUEST"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["field"], "reference");
    assert_eq!(body["error"]["details"]["txid"], first["txid"]);
    // Another caller with the same reference gets its own payment.
    let (status, theirs) = env
        .call(
            &env.other,
            "POST",
            "/payment/create",
            Some(&create_body(&order, "sess_7")),
        )
        .await;
    assert_eq!(status, 200, "{theirs}");
    assert_ne!(theirs["txid"], first["txid"]);
    // Without a reference every create is a new payment.
    let bare = json!({"to": MERCHANT, "amount": "1.00", "currency": "USD"});
    let (_, a) = env.create(&bare).await;
    let (_, b) = env.create(&bare).await;
    assert_ne!(a["txid"], b["txid"]);
    // A replay after completion reports the completed payment under the same txid.
    let txid = first["txid"].as_str().unwrap();
    let (status, _) = env
        .settle(txid, &env.bank_proof("bank_tx_7", txid, "12.25"))
        .await;
    assert_eq!(status, 200);
    let (status, done) = env.create(&create_body(&order, "sess_7")).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["txid"], first["txid"]);
}

#[tokio::test]
async fn a_payment_without_an_order_names_the_reference() {
    let env = PayEnv::start().await;
    let (status, created) = env
        .create(&json!({"to": MERCHANT, "amount": "7.5", "currency": "USD", "reference": "inv-42", "memo": "invoice 42"}))
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["amount"], "7.5");
    let txid = created["txid"].as_str().unwrap();
    // The bank writes the amount its own way: numerically equal is enough.
    let (status, settled) = env
        .settle(txid, &env.bank_proof("bank_tx_42", txid, "7.50"))
        .await;
    assert_eq!(status, 200, "{settled}");
    assert_eq!(
        settled["proof"]["to"],
        json!({"ocid": MERCHANT, "reference": "inv-42"})
    );
    // Verbatim: the amount the payment was created with.
    assert_eq!(settled["proof"]["amount"], "7.5");
    // No order: nothing recorded against orders.
    assert!(env.merchant.proofs().is_empty());
}

#[tokio::test]
async fn create_refusals_change_nothing() {
    let env = PayEnv::start().await;
    let order = env.order();
    let id = order.order.id.clone();
    let base = create_body(&order, "probe");
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let now = env.now();
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"to": MERCHANT, "currency": "USD", "reference": "probe"}),
            400,
            "INVALID_REQUEST",
        ),
        (json!([1, 2]), 400, "INVALID_REQUEST"),
        (with("to", json!(-5)), 400, "INVALID_REQUEST"),
        (with("amount", json!("1.001")), 400, "INVALID_REQUEST"),
        (with("amount", json!("-1.00")), 400, "INVALID_REQUEST"),
        (with("amount", json!("0")), 400, "INVALID_REQUEST"),
        (with("amount", json!(12.25)), 400, "INVALID_REQUEST"),
        (with("currency", json!("usd")), 400, "INVALID_REQUEST"),
        (with("memo", json!("a\u{7}b")), 400, "INVALID_REQUEST"),
        (with("reference", json!("")), 400, "INVALID_REQUEST"),
        (with("expiresAt", json!(now)), 400, "INVALID_REQUEST"),
        (with("expiresAt", json!(now - 10)), 400, "INVALID_REQUEST"),
        (
            with("expiresAt", json!(now + 86_500)),
            400,
            "INVALID_REQUEST",
        ),
        (with("to", json!(999)), 400, "MERCHANT_NOT_REGISTERED"),
        (with("currency", json!("GBP")), 400, "INVALID_REQUEST"),
        (
            with("order", json!({"id": "ord_nope"})),
            404,
            "ORDER_NOT_FOUND",
        ),
        (with("currency", json!("EUR")), 400, "CURRENCY_MISMATCH"),
        (with("amount", json!("12.24")), 400, "AMOUNT_MISMATCH"),
    ];
    for (body, want_status, want_code) in &cases {
        let (status, answer) = env.create(body).await;
        assert_eq!(
            (status, err_code(&answer)),
            (*want_status, *want_code),
            "{body}: {answer}"
        );
    }
    // Details that say what to fix.
    let (_, answer) = env.create(&with("currency", json!("GBP"))).await;
    assert_eq!(
        answer["error"]["details"]["supportedCurrencies"],
        json!(["USD", "EUR"])
    );
    let (_, answer) = env.create(&with("amount", json!("12.24"))).await;
    assert_eq!(
        answer["error"]["details"],
        json!({"expected": "12.25", "received": "12.24"})
    );

    // A paid or cancelled order cannot be paid again.
    let paid = env.order();
    let envelope = signed_envelope(
        &proof_for(GATEWAY, "gw_tx_1", &paid, env.now()),
        &env.gateway.key,
    );
    let (status, body) = env
        .call(&env.gateway, "POST", "/transfer/webhook", Some(&envelope))
        .await;
    assert_eq!(status, 200, "{body}");
    let cancelled = env.order();
    env.merchant.cancel_order(&cancelled.order.id).unwrap();
    for other in [&paid, &cancelled] {
        let (status, answer) = env
            .create(&with("order", json!({"id": other.order.id})))
            .await;
        assert_eq!(
            (status, err_code(&answer)),
            (400, "INVALID_STATE"),
            "{answer}"
        );
    }
    // An expired order.
    let expiring = env.order();
    env.clock.advance(301);
    let (status, answer) = env
        .create(&with("order", json!({"id": expiring.order.id})))
        .await;
    assert_eq!(
        (status, err_code(&answer)),
        (400, "ORDER_EXPIRED"),
        "{answer}"
    );

    // None of these stored a payment under "probe": a valid create with it is a new payment
    // (a stored one with other terms would be refused as a reused reference).
    let fresh = env.order();
    let (status, created) = env.create(&create_body(&fresh, "probe")).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["status"], "pending_settlement");
    let order = env.merchant.order(&id).unwrap().unwrap();
    assert_eq!((order.status, order.txid), (OrderStatus::Expired, None));
}

#[tokio::test]
async fn no_settlement_provider_means_no_third_party_payment() {
    let env = PayEnv::start_with(|config| config.settlement_providers = Some(Vec::new())).await;
    let order = env.order();
    let (status, body) = env.create(&create_body(&order, "s")).await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "SETTLEMENT_NOT_SUPPORTED"),
        "{body}"
    );
}

#[tokio::test]
async fn settle_refusals_change_nothing() {
    let env = PayEnv::start().await;
    let order = env.order();
    let txid = env.create_for(&order, "sess_r").await;
    let now = env.now();
    let created_at = env.merchant.payment(&txid).unwrap().unwrap().created_at;
    let good = bank_proof_value("bank_tx_r", &txid, "12.25", now);
    let signed = |proof: &Value| signed_envelope(proof, &env.bank.key);
    let altered = |key: &str, value: Value| {
        let mut proof = good.clone();
        proof[key] = value;
        signed(&proof)
    };

    // The body.
    for bad in [
        json!({"txid": txid, "proof": good}),
        json!({"txid": txid, "proof": "x", "signature": "ab"}),
        json!({"proof": good, "signature": "ab"}),
        json!({"txid": txid, "proof": {"txid": "t"}, "signature": "ab"}),
    ] {
        let (status, body) = env
            .call(&env.payer, "POST", "/payment/settle", Some(&bad))
            .await;
        assert_eq!(
            (status, err_code(&body)),
            (400, "INVALID_REQUEST"),
            "{bad}: {body}"
        );
    }
    // Unknown payment, and another caller's payment: the same 404.
    let (status, body) = env
        .settle("mgp_00000000000000000000000000000000", &signed(&good))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (404, "PAYMENT_NOT_FOUND"),
        "{body}"
    );
    let (status, body) = env.settle_as(&env.other, &txid, &signed(&good)).await;
    assert_eq!(
        (status, err_code(&body)),
        (404, "PAYMENT_NOT_FOUND"),
        "{body}"
    );

    // The issuer: not a provider of this payment (GATEWAY pays orders, not payments), or a
    // provider whose key cannot be found.
    let mut from_gateway = good.clone();
    from_gateway["issuer"] = json!(GATEWAY);
    let (status, body) = env
        .settle(&txid, &signed_envelope(&from_gateway, &env.gateway.key))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "ISSUER_NOT_ACCEPTED"),
        "{body}"
    );
    assert_eq!(
        body["error"]["details"]["acceptedIssuers"],
        json!([BANK, GHOST])
    );
    let mut from_ghost = good.clone();
    from_ghost["issuer"] = json!(GHOST);
    let (status, body) = env
        .settle(
            &txid,
            &signed_envelope(&from_ghost, &PrivateKey::generate()),
        )
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "PROOF_SIGNATURE_INVALID"),
        "{body}"
    );

    // The signature: another key, or a proof changed after signing.
    let (status, body) = env
        .settle(&txid, &signed_envelope(&good, &PrivateKey::generate()))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "PROOF_SIGNATURE_INVALID"),
        "{body}"
    );
    let mut tampered = signed(&good);
    tampered["proof"]["from"]["reference"] = json!("someone else");
    let (status, body) = env.settle(&txid, &tampered).await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "PROOF_SIGNATURE_INVALID"),
        "{body}"
    );
    // The payer signing the bank's proof itself is no better.
    let (status, body) = env
        .settle(&txid, &signed_envelope(&good, &env.payer.key))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "PROOF_SIGNATURE_INVALID"),
        "{body}"
    );

    // Addressing and time.
    let other_order = env.order();
    let cases: Vec<(Value, &str)> = vec![
        (
            altered("to", json!({"ocid": GATEWAY, "reference": txid})),
            "INVALID_PROOF",
        ),
        (
            altered(
                "to",
                json!({"ocid": MERCHANT, "reference": other_order.order.id}),
            ),
            "INVALID_PROOF",
        ),
        (altered("to", json!({"ocid": MERCHANT})), "INVALID_PROOF"),
        (
            altered("timestamp", json!(created_at - 301)),
            "INVALID_PROOF",
        ),
        (altered("timestamp", json!(now + 3_000)), "INVALID_PROOF"),
        (altered("currency", json!("EUR")), "CURRENCY_MISMATCH"),
        (altered("amount", json!("12.24")), "AMOUNT_MISMATCH"),
        (altered("amount", json!("12.250")), "INVALID_PROOF"),
    ];
    for (envelope, code) in &cases {
        let (status, body) = env.settle(&txid, envelope).await;
        assert_eq!(
            (status, err_code(&body)),
            (400, *code),
            "{envelope}: {body}"
        );
    }
    // Just inside the window is fine: the last refusal changed nothing, the good proof works.
    env.assert_untouched(&txid, &order.order.id).await;
    let early = altered("timestamp", json!(created_at - 300));
    let (status, body) = env.settle(&txid, &early).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn settling_again_gets_the_same_answer_and_another_proof_is_refused() {
    let env = PayEnv::start().await;
    let order = env.order();
    let txid = env.create_for(&order, "sess_a").await;
    let bank = env.bank_proof("bank_tx_a", &txid, "12.25");
    let (status, first) = env.settle(&txid, &bank).await;
    assert_eq!(status, 200, "{first}");
    env.clock.advance(30);
    let (status, again) = env.settle(&txid, &bank).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);
    // A second, different provider proof for a completed payment.
    let (status, body) = env
        .settle(&txid, &env.bank_proof("bank_tx_b", &txid, "12.25"))
        .await;
    assert_eq!((status, err_code(&body)), (400, "INVALID_STATE"), "{body}");
    let record = env.merchant.payment(&txid).unwrap().unwrap();
    assert_eq!(record.provider_proof.unwrap().proof.txid, "bank_tx_a");
    assert_eq!(env.merchant.proofs().len(), 1);
    let order = env.merchant.order(&order.order.id).unwrap().unwrap();
    assert_eq!(order.txid.as_deref(), Some(txid.as_str()));
    // Even after the payment's expiry, the completed answer stays available.
    env.clock.advance(3600);
    let (status, late) = env.settle(&txid, &bank).await;
    assert_eq!((status, &late), (200, &first));
}

#[tokio::test]
async fn webhook_first_then_settle_completes_once() {
    let env = PayEnv::start().await;
    let order = env.order();
    let txid = env.create_for(&order, "sess_w").await;
    let bank = env.bank_proof("bank_tx_w", &txid, "12.25");
    // The bank notifies the merchant (as the provider of the transfer).
    let (status, body) = env
        .call(&env.bank, "POST", "/transfer/webhook", Some(&bank))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["status"], &body["txid"]),
        (&json!("accepted"), &json!("bank_tx_w"))
    );
    let paid = env.merchant.wait_paid(&order.order.id, WAIT).await.unwrap();
    assert_eq!(paid.txid.as_deref(), Some(txid.as_str()));
    assert_eq!(paid.issuer, Some(MERCHANT));
    // Then the payer settles with the same proof: the stored answer, nothing counted twice.
    env.clock.advance(10);
    let (status, settled) = env.settle(&txid, &bank).await;
    assert_eq!(status, 200, "{settled}");
    let (_, verified) = env.verify_as(&env.payer, &txid).await;
    assert_eq!(settled["proof"], verified["proof"]);
    assert_eq!(
        settled["proof"],
        serde_json::to_value(&paid.proof.unwrap().proof).unwrap()
    );
    // The webhook again is a replay.
    let (status, body) = env
        .call(&env.bank, "POST", "/transfer/webhook", Some(&bank))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "already processed");
    assert_eq!(env.merchant.proofs().len(), 1);
}

#[tokio::test]
async fn settle_first_then_webhook_completes_once() {
    let env = PayEnv::start().await;
    let order = env.order();
    let txid = env.create_for(&order, "sess_s").await;
    let bank = env.bank_proof("bank_tx_s", &txid, "12.25");
    let (status, settled) = env.settle(&txid, &bank).await;
    assert_eq!(status, 200, "{settled}");
    let (status, body) = env
        .call(&env.bank, "POST", "/transfer/webhook", Some(&bank))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["status"], &body["message"]),
        (&json!("accepted"), &json!("already processed"))
    );
    // The webhook rules still hold for payments: only the issuer may deliver its proof, and
    // only a provider of the payment may settle it.
    let (status, body) = env
        .call(&env.payer, "POST", "/transfer/webhook", Some(&bank))
        .await;
    assert_eq!((status, err_code(&body)), (400, "INVALID_PROOF"), "{body}");
    let record = env.merchant.payment(&txid).unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&record.proof.unwrap().proof).unwrap(),
        settled["proof"]
    );
    assert_eq!(env.merchant.proofs().len(), 1);
}

#[tokio::test]
async fn settle_and_webhook_racing_complete_once() {
    let env = PayEnv::start().await;
    for round in 0..5 {
        let order = env.order();
        let txid = env.create_for(&order, &format!("race_{round}")).await;
        let bank = env.bank_proof(&format!("bank_race_{round}"), &txid, "12.25");
        let (settled, hooked) = tokio::join!(
            env.settle(&txid, &bank),
            env.call(&env.bank, "POST", "/transfer/webhook", Some(&bank))
        );
        assert_eq!(settled.0, 200, "{}", settled.1);
        assert_eq!(hooked.0, 200, "{}", hooked.1);
        let (_, verified) = env.verify_as(&env.payer, &txid).await;
        assert_eq!(settled.1["proof"], verified["proof"]);
        assert_eq!(settled.1["signature"], verified["signature"]);
    }
    assert_eq!(env.merchant.proofs().len(), 5);
}

#[tokio::test]
async fn a_provider_proof_pays_one_thing_only() {
    let env = PayEnv::start().await;
    let first = env.order();
    let second = env.order();
    let p1 = env.create_for(&first, "one").await;
    let p2 = env.create_for(&second, "two").await;
    let (status, _) = env
        .settle(&p1, &env.bank_proof("bank_tx_1", &p1, "12.25"))
        .await;
    assert_eq!(status, 200);
    // The bank's transfer bank_tx_1 re-addressed to the second payment.
    let (status, body) = env
        .settle(&p2, &env.bank_proof("bank_tx_1", &p2, "12.25"))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (409, "PROOF_ALREADY_PROCESSED"),
        "{body}"
    );
    assert_eq!(
        body["error"]["details"]["usedFor"],
        json!({"paymentTxid": p1})
    );
    env.assert_untouched_payment(&p2, &second.order.id).await;
    // ... or delivered to an order directly.
    let third = env.order();
    let direct = signed_envelope(
        &proof_for(BANK, "bank_tx_1", &third, env.now()),
        &env.bank.key,
    );
    let (status, body) = env
        .call(&env.bank, "POST", "/transfer/webhook", Some(&direct))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (409, "PROOF_ALREADY_PROCESSED"),
        "{body}"
    );
    // A transfer that paid an order directly cannot settle a payment either.
    let direct = signed_envelope(
        &proof_for(BANK, "bank_tx_9", &third, env.now()),
        &env.bank.key,
    );
    let (status, body) = env
        .call(&env.bank, "POST", "/transfer/webhook", Some(&direct))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = env
        .settle(&p2, &env.bank_proof("bank_tx_9", &p2, "12.25"))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (409, "PROOF_ALREADY_PROCESSED"),
        "{body}"
    );
    env.assert_untouched_payment(&p2, &second.order.id).await;
    // A gateway that pays orders cannot complete a payment through the webhook.
    let envelope = signed_envelope(
        &json!({"txid": "gw_tx", "issuer": GATEWAY, "from": {"ocid": GATEWAY}, "to": {"ocid": MERCHANT, "reference": p2},
                "amount": "12.25", "currency": "USD", "timestamp": env.now()}),
        &env.gateway.key,
    );
    let (status, body) = env
        .call(&env.gateway, "POST", "/transfer/webhook", Some(&envelope))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "ISSUER_NOT_ACCEPTED"),
        "{body}"
    );
    env.assert_untouched_payment(&p2, &second.order.id).await;
}

impl PayEnv {
    /// The payment is pending and its order unpaid (other orders may have been paid).
    async fn assert_untouched_payment(&self, txid: &str, order_id: &str) {
        let (status, body) = self.verify_as(&self.payer, txid).await;
        assert_eq!(
            (status, &body["status"]),
            (200, &json!("pending")),
            "{body}"
        );
        let order = self.merchant.order(order_id).unwrap().unwrap();
        assert_eq!((order.status, order.txid), (OrderStatus::Pending, None));
    }
}

#[tokio::test]
async fn an_expired_payment_cannot_be_settled() {
    let env = PayEnv::start().await;
    let order = env.order();
    let expires_at = env.now() + 60;
    let mut body = create_body(&order, "sess_x");
    body["expiresAt"] = json!(expires_at);
    let (status, created) = env.create(&body).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["expiresAt"], json!(expires_at));
    let txid = created["txid"].as_str().unwrap().to_string();
    let bank = env.bank_proof("bank_tx_x", &txid, "12.25");
    env.clock.advance(30);
    let (status, body) = env.verify_as(&env.payer, &txid).await;
    assert_eq!((status, &body["status"]), (200, &json!("pending")));
    env.clock.advance(31);
    let (status, body) = env.verify_as(&env.payer, &txid).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "expired", "txid": txid}));
    // Neither the payer nor the bank can complete it now.
    let (status, body) = env.settle(&txid, &bank).await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "PAYMENT_EXPIRED"),
        "{body}"
    );
    let (status, body) = env
        .call(&env.bank, "POST", "/transfer/webhook", Some(&bank))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "PAYMENT_EXPIRED"),
        "{body}"
    );
    let record = env.merchant.payment(&txid).unwrap().unwrap();
    assert_eq!(
        (record.status, record.proof),
        (PaymentStatus::Expired, None)
    );
    assert!(env.merchant.proofs().is_empty());
    // Creating again with the same reference reports the expired payment.
    let (status, again) = env.create(&create_body(&order, "sess_x")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (&again["status"], &again["txid"]),
        (&json!("expired"), &json!(txid))
    );
}

#[tokio::test]
async fn verify_shows_a_payment_to_its_creator_only() {
    let env = PayEnv::start().await;
    let order = env.order();
    let txid = env.create_for(&order, "sess_v").await;
    let (status, body) = env.verify_as(&env.payer, "mgp_unknown").await;
    assert_eq!((status, err_code(&body)), (404, "TXID_NOT_FOUND"), "{body}");
    // Another gateway, even the bank, learns nothing about it.
    for stranger in [&env.other, &env.bank] {
        let (status, body) = env.verify_as(stranger, &txid).await;
        assert_eq!((status, err_code(&body)), (404, "TXID_NOT_FOUND"), "{body}");
    }
    // An order id is not a transaction of this endpoint.
    let (status, body) = env.verify_as(&env.payer, &order.order.id).await;
    assert_eq!((status, err_code(&body)), (404, "TXID_NOT_FOUND"), "{body}");
}

#[tokio::test]
async fn payments_survive_a_restart() {
    let env = PayEnv::start().await;
    let order = env.order();
    let txid = env.create_for(&order, "sess_p").await;
    let PayEnv {
        dir,
        merchant,
        clock,
        host,
        payer,
        bank,
        ..
    } = env;
    merchant.stop().await;
    // The same database (and key file beside it); the providers changed since.
    let mut config = Env::config(&dir, &host, vec![GATEWAY, BANK]);
    config.settlement_providers = Some(vec![GHOST]);
    for ocid in [PAYER, BANK] {
        config.directory.push(DirectoryEntry {
            ocid,
            metadata_url: host.url(ocid),
        });
    }
    let merchant = Merchant::start_with_clock(config, clock.clone())
        .await
        .unwrap();
    let env = PayEnv {
        dir,
        merchant,
        clock,
        host,
        payer,
        bank,
        gateway: Issuer {
            ocid: GATEWAY,
            key: PrivateKey::generate(),
        },
        other: Issuer {
            ocid: OTHER,
            key: PrivateKey::generate(),
        },
        http: reqwest::Client::new(),
    };
    // The pending payment was kept, with the providers it was created with (the bank is no
    // longer offered for new payments, but this payment promised it).
    let (status, body) = env
        .settle(&txid, &env.bank_proof("bank_tx_p", &txid, "12.25"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        env.merchant.order(&order.order.id).unwrap().unwrap().status,
        OrderStatus::Paid
    );
}

#[tokio::test]
async fn a_provider_only_for_payments_cannot_pay_an_order_directly() {
    let env = PayEnv::start_with(|config| {
        config.accepts = vec![GATEWAY];
        config.settlement_providers = Some(vec![BANK]);
    })
    .await;
    assert_eq!(
        env.merchant.metadata()["config"]["settlement"]["accepts"],
        json!([GATEWAY, BANK])
    );
    let order = env.order();
    let direct = signed_envelope(
        &proof_for(BANK, "bank_tx_d", &order, env.now()),
        &env.bank.key,
    );
    let (status, body) = env
        .call(&env.bank, "POST", "/transfer/webhook", Some(&direct))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "ISSUER_NOT_ACCEPTED"),
        "{body}"
    );
    assert_eq!(
        body["error"]["details"]["acceptedIssuers"],
        json!([GATEWAY])
    );
    let record = env.merchant.order(&order.order.id).unwrap().unwrap();
    assert_eq!((record.status, record.txid), (OrderStatus::Pending, None));
    // Through a payment the same bank settles it.
    let txid = env.create_for(&order, "via_bank").await;
    let (status, body) = env
        .settle(&txid, &env.bank_proof("bank_tx_d", &txid, "12.25"))
        .await;
    assert_eq!(status, 200, "{body}");
    let record = env.merchant.order(&order.order.id).unwrap().unwrap();
    assert_eq!(record.status, OrderStatus::Paid);
}
