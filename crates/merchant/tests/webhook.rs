//! The merchant's `POST /transfer/webhook` over real HTTP with real signatures: an accepted
//! proof marks the order paid, every §5.5 rejection has its own test (and leaves the order
//! unpaid), replays never double-count, and request authentication is enforced.

mod common;

use std::time::Duration;

use common::*;
use opencharge_merchant::{Merchant, MerchantError};
use opencharge_protocol::auth::{RequestAuth, ResponseAuth};
use opencharge_protocol::keys::{PrivateKey, VerifyOptions};
use opencharge_protocol::types::OrderStatus;
use serde_json::{json, Value};

/// The order is still pending and no proof was counted.
fn assert_unpaid(env: &Env, order_id: &str) {
    let record = env.merchant.order(order_id).unwrap().unwrap();
    assert_eq!(record.status, OrderStatus::Pending);
    assert_eq!(record.txid, None);
    assert!(env.merchant.proofs().is_empty());
}

#[tokio::test]
async fn valid_proof_marks_the_order_paid_and_wakes_waiters() {
    let env = Env::start().await;
    let order = env.order();
    let id = order.order.id.clone();

    // A waiter started before the proof arrives is woken by it.
    let waiter = {
        let proof = proof_for(GATEWAY, "tx_1", &order, env.now());
        let envelope = signed_envelope(&proof, &env.gateway.key);
        let wait = env.merchant.wait_paid(&id, Duration::from_secs(10));
        let deliver = async {
            tokio::task::yield_now().await;
            env.deliver(&env.gateway, &envelope).await
        };
        let (paid, (status, body)) = tokio::join!(wait, deliver);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "accepted");
        assert_eq!(body["txid"], "tx_1");
        paid.unwrap()
    };
    assert_eq!(waiter.status, OrderStatus::Paid);
    assert_eq!(waiter.txid.as_deref(), Some("tx_1"));
    assert_eq!(waiter.issuer, Some(GATEWAY));
    let proof = waiter.proof.expect("the paying proof is kept");
    assert_eq!(proof.proof.to.reference.as_deref(), Some(id.as_str()));
    assert_eq!(env.merchant.proofs().len(), 1);

    let (status, body) = env.get(&format!("/orders/{id}/status")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["orderId"], json!(id));
    assert_eq!(body["status"], "paid");
    assert_eq!(body["txid"], "tx_1");
    assert!(body["paidAt"].is_i64());

    // A paid order is no longer offered for payment.
    let (status, body) = env.get(&format!("/orders/{id}")).await;
    assert_eq!((status, err_code(&body)), (409, "INVALID_STATE"), "{body}");
    assert!(matches!(
        env.merchant.order_qr(&id),
        Err(MerchantError::OrderNotPayable { .. })
    ));
}

#[tokio::test]
async fn webhook_answers_are_signed_by_the_merchant() {
    let env = Env::start().await;
    let order = env.order();
    let envelope = signed_envelope(
        &proof_for(GATEWAY, "tx_s", &order, env.now()),
        &env.gateway.key,
    );
    let resp = opencharge_testkit::signed_request(
        &env.http,
        &env.gateway.key,
        GATEWAY,
        "POST",
        &env.url("/transfer/webhook"),
        Some(serde_json::to_vec(&envelope).unwrap()),
        env.now(),
    )
    .await
    .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap();
    assert_eq!(status, 200);
    let auth =
        ResponseAuth::from_headers(|n| headers.get(n).and_then(|v| v.to_str().ok())).unwrap();
    assert_eq!(auth.ocid, MERCHANT);
    let key =
        opencharge_protocol::keys::PublicKey::from_hex(&env.merchant.public_key_hex()).unwrap();
    auth.verify(&key, status, &body, env.now(), VerifyOptions::STRICT)
        .unwrap();
}

#[tokio::test]
async fn rejects_an_issuer_it_does_not_accept() {
    let env = Env::start().await;
    let order = env.order();
    // OTHER is in the directory (its request auth passes) but not in `accepts`.
    let envelope = signed_envelope(&proof_for(OTHER, "tx_o", &order, env.now()), &env.other.key);
    let (status, body) = env.deliver(&env.other, &envelope).await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "ISSUER_NOT_ACCEPTED"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["providedIssuer"], json!(OTHER));
    assert_eq!(
        body["error"]["details"]["acceptedIssuers"],
        json!([GATEWAY])
    );
    assert_unpaid(&env, &order.order.id);
}

#[tokio::test]
async fn rejects_a_proof_forwarded_by_someone_else_than_its_issuer() {
    let env = Env::start().await;
    let order = env.order();
    // A valid proof of GATEWAY, delivered by OTHER.
    let envelope = signed_envelope(
        &proof_for(GATEWAY, "tx_f", &order, env.now()),
        &env.gateway.key,
    );
    let (status, body) = env.deliver(&env.other, &envelope).await;
    assert_eq!((status, err_code(&body)), (400, "INVALID_PROOF"), "{body}");
    assert_unpaid(&env, &order.order.id);
}

#[tokio::test]
async fn rejects_a_bad_proof_signature() {
    let env = Env::start().await;
    let order = env.order();
    let proof = proof_for(GATEWAY, "tx_b", &order, env.now());

    // Signed by a key that is not the issuer's metadata key.
    let forged = signed_envelope(&proof, &PrivateKey::generate());
    let (status, body) = env.deliver(&env.gateway, &forged).await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "PROOF_SIGNATURE_INVALID"),
        "{body}"
    );

    // Signed correctly, then altered (a higher amount would also fail: here the payer).
    let mut tampered = signed_envelope(&proof, &env.gateway.key);
    tampered["proof"]["from"]["reference"] = json!("acct_mallory");
    let (status, body) = env.deliver(&env.gateway, &tampered).await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "PROOF_SIGNATURE_INVALID"),
        "{body}"
    );

    // Not even a signature.
    let mut garbage = signed_envelope(&proof, &env.gateway.key);
    garbage["signature"] = json!("zz");
    let (status, body) = env.deliver(&env.gateway, &garbage).await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "PROOF_SIGNATURE_INVALID"),
        "{body}"
    );
    assert_unpaid(&env, &order.order.id);
}

#[tokio::test]
async fn rejects_a_proof_paying_another_recipient() {
    let env = Env::start().await;
    let order = env.order();
    let mut proof = proof_for(GATEWAY, "tx_r", &order, env.now());
    proof["to"]["ocid"] = json!(MERCHANT + 1);
    let (status, body) = env
        .deliver(&env.gateway, &signed_envelope(&proof, &env.gateway.key))
        .await;
    assert_eq!((status, err_code(&body)), (400, "INVALID_PROOF"), "{body}");
    assert_eq!(body["error"]["details"]["field"], "proof.to.ocid");
    assert_unpaid(&env, &order.order.id);
}

#[tokio::test]
async fn rejects_an_amount_mismatch_and_compares_numerically() {
    let env = Env::start().await;
    let order = env.order();
    assert_eq!(order.order.amount, "12.25");
    for wrong in ["12.24", "12.26", "1225", "0.01"] {
        let mut proof = proof_for(GATEWAY, &format!("tx_{wrong}"), &order, env.now());
        proof["amount"] = json!(wrong);
        let (status, body) = env
            .deliver(&env.gateway, &signed_envelope(&proof, &env.gateway.key))
            .await;
        assert_eq!(
            (status, err_code(&body)),
            (400, "AMOUNT_MISMATCH"),
            "{wrong}: {body}"
        );
        assert_eq!(body["error"]["details"]["expected"], "12.25");
    }
    // Not an amount at all.
    let mut proof = proof_for(GATEWAY, "tx_nan", &order, env.now());
    proof["amount"] = json!("12,25");
    let (status, body) = env
        .deliver(&env.gateway, &signed_envelope(&proof, &env.gateway.key))
        .await;
    assert_eq!((status, err_code(&body)), (400, "INVALID_PROOF"), "{body}");
    assert_unpaid(&env, &order.order.id);

    // More fraction digits than USD has is not a USD amount, even if equal in value.
    let mut proof = proof_for(GATEWAY, "tx_3dp", &order, env.now());
    proof["amount"] = json!("12.250");
    let (status, body) = env
        .deliver(&env.gateway, &signed_envelope(&proof, &env.gateway.key))
        .await;
    assert_eq!((status, err_code(&body)), (400, "INVALID_PROOF"), "{body}");
    assert_unpaid(&env, &order.order.id);

    // Amounts compare by value: "9.0" pays an order of "9.00".
    let two_teas = env
        .merchant
        .create_order(opencharge_merchant::NewOrder {
            items: vec![item("tea", "Tea", 2, "4.50")],
            currency: "USD".into(),
            reference: None,
            memo: None,
        })
        .unwrap();
    assert_eq!(two_teas.order.amount, "9.00");
    let mut proof = proof_for(GATEWAY, "tx_num", &two_teas, env.now());
    proof["amount"] = json!("9.0");
    let (status, body) = env
        .deliver(&env.gateway, &signed_envelope(&proof, &env.gateway.key))
        .await;
    assert_eq!(status, 200, "{body}");
    let record = env.merchant.order(&two_teas.order.id).unwrap().unwrap();
    assert_eq!(record.status, OrderStatus::Paid);
}

#[tokio::test]
async fn rejects_a_currency_mismatch() {
    let env = Env::start().await;
    let order = env.order();
    for wrong in ["EUR", "usd"] {
        let mut proof = proof_for(GATEWAY, &format!("tx_{wrong}"), &order, env.now());
        proof["currency"] = json!(wrong);
        let (status, body) = env
            .deliver(&env.gateway, &signed_envelope(&proof, &env.gateway.key))
            .await;
        assert_eq!(
            (status, err_code(&body)),
            (400, "CURRENCY_MISMATCH"),
            "{wrong}: {body}"
        );
    }
    assert_unpaid(&env, &order.order.id);
}

#[tokio::test]
async fn rejects_an_unknown_or_missing_order_reference() {
    let env = Env::start().await;
    let order = env.order();
    let mut proof = proof_for(GATEWAY, "tx_u", &order, env.now());
    proof["to"]["reference"] = json!("ord_00000000000000000000000000000000");
    let (status, body) = env
        .deliver(&env.gateway, &signed_envelope(&proof, &env.gateway.key))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "ORDER_NOT_FOUND"),
        "{body}"
    );

    let mut proof = proof_for(GATEWAY, "tx_m", &order, env.now());
    proof["to"] = json!({"ocid": MERCHANT});
    let (status, body) = env
        .deliver(&env.gateway, &signed_envelope(&proof, &env.gateway.key))
        .await;
    assert_eq!((status, err_code(&body)), (400, "INVALID_PROOF"), "{body}");
    assert_unpaid(&env, &order.order.id);
}

#[tokio::test]
async fn replayed_txid_is_idempotent_for_its_order_and_rejected_for_another() {
    let env = Env::start().await;
    let first = env.order();
    let second = env.order();
    let envelope = signed_envelope(
        &proof_for(GATEWAY, "tx_r1", &first, env.now()),
        &env.gateway.key,
    );
    let (status, body) = env.deliver(&env.gateway, &envelope).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "order paid");

    // The same delivery again (a gateway retry): accepted, nothing counted twice.
    for _ in 0..2 {
        let (status, body) = env.deliver(&env.gateway, &envelope).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "accepted");
        assert_eq!(body["txid"], "tx_r1");
        assert_eq!(body["message"], "already processed");
    }
    assert_eq!(env.merchant.proofs().len(), 1);
    let record = env.merchant.order(&first.order.id).unwrap().unwrap();
    assert_eq!(record.txid.as_deref(), Some("tx_r1"));

    // The same txid presented as payment of another order (same amount): refused.
    let reused = signed_envelope(
        &proof_for(GATEWAY, "tx_r1", &second, env.now()),
        &env.gateway.key,
    );
    let (status, body) = env.deliver(&env.gateway, &reused).await;
    assert_eq!(
        (status, err_code(&body)),
        (409, "PROOF_ALREADY_PROCESSED"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["orderId"], json!(first.order.id));
    let other = env.merchant.order(&second.order.id).unwrap().unwrap();
    assert_eq!(other.status, OrderStatus::Pending);
    assert_eq!(env.merchant.proofs().len(), 1);
}

#[tokio::test]
async fn a_second_payment_of_a_paid_order_is_recorded_not_counted_as_the_order() {
    let env = Env::start().await;
    let order = env.order();
    for txid in ["tx_p1", "tx_p2"] {
        let envelope = signed_envelope(
            &proof_for(GATEWAY, txid, &order, env.now()),
            &env.gateway.key,
        );
        let (status, body) = env.deliver(&env.gateway, &envelope).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "accepted");
        if txid == "tx_p2" {
            assert!(
                body["message"].as_str().unwrap().contains("refund"),
                "{body}"
            );
        }
    }
    let record = env.merchant.order(&order.order.id).unwrap().unwrap();
    assert_eq!(record.txid.as_deref(), Some("tx_p1"));
    // Both transfers are real money received: both proofs are kept.
    let txids: Vec<String> = env
        .merchant
        .proofs()
        .into_iter()
        .map(|p| p.proof.txid)
        .collect();
    assert_eq!(txids, vec!["tx_p1", "tx_p2"]);
}

#[tokio::test]
async fn rejects_proofs_from_the_future_and_malformed_bodies() {
    let env = Env::start().await;
    let order = env.order();
    let proof = proof_for(GATEWAY, "tx_fut", &order, env.now() + 3600);
    let (status, body) = env
        .deliver(&env.gateway, &signed_envelope(&proof, &env.gateway.key))
        .await;
    assert_eq!((status, err_code(&body)), (400, "INVALID_PROOF"), "{body}");

    for bad in [
        json!({"proof": "x", "signature": "y"}),
        json!({"signature": "y"}),
        json!({"proof": {"txid": "t"}, "signature": "y"}),
        json!([1, 2]),
    ] {
        let (status, body) = env.deliver(&env.gateway, &bad).await;
        assert_eq!(
            (status, err_code(&body)),
            (400, "INVALID_PROOF"),
            "{bad}: {body}"
        );
    }
    assert_unpaid(&env, &order.order.id);
}

#[tokio::test]
async fn the_orders_own_accepts_bind_even_when_the_merchant_later_accepts_more() {
    // An order signed while accepting only GATEWAY; the merchant restarts (same database and
    // key) accepting OTHER too. OTHER's proof for the old order is still refused.
    let dir = tempfile::tempdir().unwrap();
    let host = MetadataHost::start().await;
    let gateway_key = PrivateKey::generate();
    let other_key = PrivateKey::generate();
    host.publish(GATEWAY, &gateway_key, &host.endpoint_of(GATEWAY));
    host.publish(OTHER, &other_key, &host.endpoint_of(OTHER));
    let key_hex = "7f".repeat(32);
    let mut config = Env::config(&dir, &host, vec![GATEWAY]);
    config.key_hex = Some(key_hex.clone());
    let merchant = Merchant::start(config.clone()).await.unwrap();
    let order = merchant
        .create_order(opencharge_merchant::NewOrder {
            items: vec![item("tea", "Tea", 1, "4.50")],
            currency: "USD".into(),
            reference: None,
            memo: None,
        })
        .unwrap();
    merchant.stop().await;

    config.accepts = vec![GATEWAY, OTHER];
    let merchant = Merchant::start(config).await.unwrap();
    let http = reqwest::Client::new();
    let now = opencharge_merchant::clock::Clock::now(&opencharge_merchant::clock::SystemClock);
    let envelope = signed_envelope(&proof_for(OTHER, "tx_late", &order, now), &other_key);
    let resp = opencharge_testkit::signed_request(
        &http,
        &other_key,
        OTHER,
        "POST",
        &format!("{}/transfer/webhook", merchant.endpoint()),
        Some(serde_json::to_vec(&envelope).unwrap()),
        now,
    )
    .await
    .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "ISSUER_NOT_ACCEPTED"),
        "{body}"
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("of this order"));
    // The order survived the restart and is still unpaid.
    let record = merchant.order(&order.order.id).unwrap().unwrap();
    assert_eq!(record.status, OrderStatus::Pending);
    merchant.stop().await;
}

#[tokio::test]
async fn a_valid_proof_for_an_expired_order_still_records_the_money() {
    let env = Env::start().await;
    let order = env.order();
    env.clock.advance(301);
    let (status, body) = env.get(&format!("/orders/{}/status", order.order.id)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("expired")));
    let envelope = signed_envelope(
        &proof_for(GATEWAY, "tx_late", &order, env.now()),
        &env.gateway.key,
    );
    let (status, body) = env.deliver(&env.gateway, &envelope).await;
    assert_eq!(status, 200, "{body}");
    let record = env.merchant.order(&order.order.id).unwrap().unwrap();
    assert_eq!(record.status, OrderStatus::Paid);
}

// ---------------------------------------------------------------------------------------------
// Request authentication on the webhook

/// Sends raw bytes with explicit `X-OC-*` headers.
async fn send_raw(env: &Env, headers: &[(&'static str, String)], body: &[u8]) -> (u16, Value) {
    let mut req = env
        .http
        .post(env.url("/transfer/webhook"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    read(req.send().await.unwrap()).await
}

fn sign_headers(
    key: &PrivateKey,
    ocid: u64,
    path: &str,
    body: &[u8],
    timestamp: i64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    RequestAuth::sign(key, ocid, "POST", path, body, timestamp, nonce)
        .unwrap()
        .headers()
        .to_vec()
}

#[tokio::test]
async fn webhook_requires_request_authentication() {
    let env = Env::start().await;
    let order = env.order();
    let envelope = signed_envelope(
        &proof_for(GATEWAY, "tx_a", &order, env.now()),
        &env.gateway.key,
    );
    let body = serde_json::to_vec(&envelope).unwrap();
    let path = url::Url::parse(&env.url("/transfer/webhook"))
        .unwrap()
        .path()
        .to_string();
    let now = env.now();

    // No headers.
    let (status, resp) = send_raw(&env, &[], &body).await;
    assert_eq!(
        (status, err_code(&resp)),
        (401, "INVALID_SIGNATURE"),
        "{resp}"
    );

    // Signed with a key that is not the sender's metadata key.
    let headers = sign_headers(
        &PrivateKey::generate(),
        GATEWAY,
        &path,
        &body,
        now,
        "req_a1",
    );
    let (status, resp) = send_raw(&env, &headers, &body).await;
    assert_eq!(
        (status, err_code(&resp)),
        (401, "INVALID_SIGNATURE"),
        "{resp}"
    );

    // Signed over other bytes than those sent.
    let headers = sign_headers(&env.gateway.key, GATEWAY, &path, b"{}", now, "req_a2");
    let (status, resp) = send_raw(&env, &headers, &body).await;
    assert_eq!(
        (status, err_code(&resp)),
        (401, "INVALID_SIGNATURE"),
        "{resp}"
    );

    // Signed for another path (without the base path).
    let headers = sign_headers(
        &env.gateway.key,
        GATEWAY,
        "/transfer/webhook",
        &body,
        now,
        "req_a3",
    );
    let (status, resp) = send_raw(&env, &headers, &body).await;
    assert_eq!(
        (status, err_code(&resp)),
        (401, "INVALID_SIGNATURE"),
        "{resp}"
    );

    // An OCID the merchant's directory does not know.
    let stranger = PrivateKey::generate();
    let headers = sign_headers(&stranger, 999, &path, &body, now, "req_a4");
    let (status, resp) = send_raw(&env, &headers, &body).await;
    assert_eq!((status, err_code(&resp)), (401, "UNKNOWN_OCID"), "{resp}");

    // A stale timestamp.
    let headers = sign_headers(&env.gateway.key, GATEWAY, &path, &body, now - 301, "req_a5");
    let (status, resp) = send_raw(&env, &headers, &body).await;
    assert_eq!(
        (status, err_code(&resp)),
        (401, "TIMESTAMP_EXPIRED"),
        "{resp}"
    );

    // Malformed nonce.
    let headers = sign_headers(&env.gateway.key, GATEWAY, &path, &body, now, "bad nonce!");
    let (status, resp) = send_raw(&env, &headers, &body).await;
    assert_eq!(
        (status, err_code(&resp)),
        (401, "INVALID_SIGNATURE"),
        "{resp}"
    );

    // None of the failures above burned the nonce or paid the order.
    assert_unpaid(&env, &order.order.id);

    // A correct request is accepted once; the identical request again is a nonce replay.
    let headers = sign_headers(&env.gateway.key, GATEWAY, &path, &body, now, "req_a1");
    let (status, resp) = send_raw(&env, &headers, &body).await;
    assert_eq!(status, 200, "{resp}");
    let (status, resp) = send_raw(&env, &headers, &body).await;
    assert_eq!((status, err_code(&resp)), (401, "NONCE_REUSED"), "{resp}");
    assert_eq!(env.merchant.proofs().len(), 1);
}

#[tokio::test]
async fn unreachable_sender_metadata_is_502() {
    let env = Env::start().await;
    env.merchant
        .add_directory_entry(opencharge_merchant::DirectoryEntry {
            ocid: 777,
            metadata_url: env.host.url(777), // nothing published there: 404
        });
    let key = PrivateKey::generate();
    let sender = Issuer { ocid: 777, key };
    let (status, body) = env.deliver(&sender, &json!({})).await;
    assert_eq!(
        (status, err_code(&body)),
        (502, "METADATA_UNAVAILABLE"),
        "{body}"
    );
}
