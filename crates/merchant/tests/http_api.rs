//! The merchant's HTTP API and library calls over real HTTP: signed metadata, inventory,
//! `POST /orders/create` pricing and its errors, `GET /orders/{id}` (pending, expired,
//! cancelled), status, QR payloads, exact order totals, and the wallet-session checks that
//! need no real gateway.

mod common;

use std::time::Duration;

use common::*;
use opencharge_merchant::resolver::Party;
use opencharge_merchant::{MerchantError, NewOrder};
use opencharge_protocol::keys::{PublicKey, VerifyOptions};
use opencharge_protocol::qr::{parse_payload, QrPayload, WalletSessionQr};
use opencharge_protocol::signing::{verify_order, OrderVerifyMode};
use opencharge_protocol::types::OrderStatus;
use serde_json::{json, Value};

fn merchant_key(env: &Env) -> PublicKey {
    PublicKey::from_hex(&env.merchant.public_key_hex()).unwrap()
}

fn verify_signed(env: &Env, signed: &Value) {
    verify_order(
        &signed["order"],
        signed["signature"].as_str().unwrap(),
        MERCHANT,
        &merchant_key(env),
        OrderVerifyMode::Strict,
        VerifyOptions::STRICT,
    )
    .unwrap();
}

#[tokio::test]
async fn metadata_is_signed_config_nested_and_points_at_the_endpoint() {
    let env = Env::start().await;
    assert_eq!(
        env.merchant.metadata_url(),
        format!("{}/metadata.json", env.merchant.endpoint())
    );
    assert!(env.merchant.endpoint().ends_with("/opencharge"));
    let resp = env
        .http
        .get(env.merchant.metadata_url())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let bytes = resp.bytes().await.unwrap();
    let party = Party::from_metadata_bytes(MERCHANT, &bytes).unwrap();
    assert_eq!(party.name, "Test Coffee");
    assert_eq!(party.public_key, merchant_key(&env));
    assert_eq!(party.endpoint.as_deref(), Some(env.merchant.endpoint()));
    for cap in [
        "orders.create",
        "orders.status",
        "transfer.webhook",
        "inventory.get",
    ] {
        assert!(party.has_capability(cap), "{cap}");
    }
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["opencharge"], "0.1");
    assert_eq!(
        doc["config"]["settlement"],
        json!({"currencies": ["USD"], "accepts": [GATEWAY]})
    );
    assert_eq!(doc, env.merchant.metadata());
    assert_eq!(env.merchant.ocid(), MERCHANT);
}

#[tokio::test]
async fn inventory_lists_the_configured_items() {
    let env = Env::start().await;
    let (status, body) = env.get("/inventory").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"ocid": MERCHANT, "currency": "USD", "items": [
            {"id": "tea", "name": "Tea", "price": "4.50"},
            {"id": "cake", "name": "Cake", "price": "3.25"},
        ]})
    );
    let qr = parse_payload(&env.merchant.inventory_qr(), env.now()).unwrap();
    let QrPayload::Inventory(q) = qr else {
        panic!("not an inventory QR: {qr:?}")
    };
    assert_eq!(q.ocid(), MERCHANT);
    assert_eq!(q.inventory_url(), env.url("/inventory"));
}

#[tokio::test]
async fn orders_create_prices_items_from_the_inventory() {
    let env = Env::start().await;
    // Prices or amounts sent by the caller are ignored.
    let (status, signed) = env
        .post_signed(
            &env.gateway,
            "/orders/create",
            &json!({
                "ocid": MERCHANT,
                "currency": "USD",
                "amount": "0.01",
                "items": [{"id": "tea", "quantity": 2, "price": "0.01"}, {"id": "cake", "quantity": 3}],
            }),
        )
        .await;
    assert_eq!(status, 200, "{signed}");
    verify_signed(&env, &signed);
    let order = &signed["order"];
    assert_eq!(order["amount"], "18.75"); // 2 × 4.50 + 3 × 3.25
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["ocid"], json!(MERCHANT));
    assert_eq!(order["accepts"], json!([GATEWAY]));
    assert_eq!(
        order["items"],
        json!([
            {"id": "tea", "name": "Tea", "quantity": 2, "price": "4.50"},
            {"id": "cake", "name": "Cake", "quantity": 3, "price": "3.25"},
        ])
    );
    let created = order["createdAt"].as_i64().unwrap();
    assert_eq!(order["expiresAt"].as_i64().unwrap() - created, 300);
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        signed["urls"]["order"],
        json!([env.url(&format!("/orders/{id}"))])
    );
    let record = env.merchant.order(id).unwrap().unwrap();
    assert_eq!(record.status, OrderStatus::Pending);
    assert_eq!(record.amount, "18.75");
    assert_eq!(serde_json::to_value(&record.order).unwrap(), *order);
}

#[tokio::test]
async fn orders_create_errors() {
    let env = Env::start().await;
    let cases = [
        (
            json!({"items": [{"id": "coffee", "quantity": 1}]}),
            400,
            "INVALID_ITEM",
        ),
        (
            json!({"items": [{"id": "tea", "quantity": 0}]}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"items": [{"id": "tea", "quantity": 2.5}]}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"items": [{"id": "tea", "quantity": "2"}]}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"items": [{"id": "tea", "quantity": 1_000_001}]}),
            400,
            "INVALID_REQUEST",
        ),
        (json!({"items": [{"quantity": 1}]}), 400, "INVALID_REQUEST"),
        (json!({"items": []}), 400, "INVALID_REQUEST"),
        (json!({}), 400, "INVALID_REQUEST"),
        (
            json!({"items": [{"id": "tea", "quantity": 1}, {"id": "tea", "quantity": 1}]}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"currency": "EUR", "items": [{"id": "tea", "quantity": 1}]}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"currency": "dollars", "items": [{"id": "tea", "quantity": 1}]}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"ocid": 501, "items": [{"id": "tea", "quantity": 1}]}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"memo": "", "items": [{"id": "tea", "quantity": 1}]}),
            400,
            "INVALID_REQUEST",
        ),
        (json!([1]), 400, "INVALID_REQUEST"),
    ];
    for (body, status_expected, code) in cases {
        let (status, resp) = env.post_signed(&env.gateway, "/orders/create", &body).await;
        assert_eq!(
            (status, err_code(&resp)),
            (status_expected, code),
            "{body}: {resp}"
        );
    }
    let (_, resp) = env
        .post_signed(
            &env.gateway,
            "/orders/create",
            &json!({"items": [{"id": "coffee", "quantity": 1}]}),
        )
        .await;
    assert_eq!(resp["error"]["details"]["item"], "coffee");

    // Unauthenticated callers are refused.
    let (status, resp) = read(
        env.http
            .post(env.url("/orders/create"))
            .json(&json!({"items": [{"id": "tea", "quantity": 1}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err_code(&resp)),
        (401, "INVALID_SIGNATURE"),
        "{resp}"
    );
}

#[tokio::test]
async fn create_order_totals_are_exact_and_inputs_validated() {
    let env = Env::start().await;
    let total = |items: Vec<opencharge_merchant::NewItem>| {
        env.merchant
            .create_order(NewOrder {
                items,
                currency: "USD".into(),
                reference: None,
                memo: None,
            })
            .map(|s| s.order.amount)
    };
    assert_eq!(
        total(vec![
            item("d", "Dime", 3, "0.10"),
            item("c", "Coin", 1, "0.20")
        ])
        .unwrap(),
        "0.50"
    );
    assert_eq!(total(vec![item("a", "A", 7, "0.07")]).unwrap(), "0.49");
    assert_eq!(
        total(vec![item("b", "B", 1, "19.9"), item("c", "C", 1, "0.1")]).unwrap(),
        "20.00"
    );
    assert_eq!(total(vec![item("r", "Round", 3, "1")]).unwrap(), "3.00");
    for bad in [
        vec![],
        vec![item("a", "A", 1, "1.005")],
        vec![item("a", "A", 0, "1.00")],
        vec![item("a", "A", 1, "0.00")],
        vec![item("", "A", 1, "1.00")],
        vec![item("a", "", 1, "1.00")],
    ] {
        assert!(matches!(total(bad), Err(MerchantError::InvalidOrder(_))));
    }
    let eur = env.merchant.create_order(NewOrder {
        items: vec![item("a", "A", 1, "1.00")],
        currency: "EUR".into(),
        reference: None,
        memo: None,
    });
    assert!(matches!(eur, Err(MerchantError::InvalidOrder(m)) if m.contains("EUR")));

    // The signed order carries exactly what was asked, and verifies.
    let signed = env.order();
    assert_eq!(signed.order.amount, "12.25");
    assert_eq!(signed.order.reference.as_deref(), Some("POS-1"));
    assert_eq!(signed.order.memo.as_deref(), Some("table 4"));
    assert_eq!(signed.order.accepts, Some(vec![GATEWAY]));
    assert!(signed.order.id.starts_with("ord_"));
    let value = json!({"order": signed.order, "signature": signed.signature});
    verify_signed(&env, &value);
}

#[tokio::test]
async fn get_order_serves_the_signed_order_until_it_expires() {
    let env = Env::start().await;
    let signed = env.order();
    let id = signed.order.id.clone();
    let (status, body) = env.get(&format!("/orders/{id}")).await;
    assert_eq!(status, 200, "{body}");
    verify_signed(&env, &body);
    assert_eq!(body["order"], serde_json::to_value(&signed.order).unwrap());
    assert_eq!(body["signature"], json!(signed.signature));
    assert_eq!(
        body["urls"]["order"],
        json!([env.url(&format!("/orders/{id}"))])
    );

    // The merchant-order QR points there and expires with the order.
    let qr = parse_payload(&env.merchant.order_qr(&id).unwrap(), env.now()).unwrap();
    let QrPayload::MerchantOrder(q) = qr else {
        panic!("not a merchant order QR: {qr:?}")
    };
    assert_eq!(q.ocid(), MERCHANT);
    assert_eq!(q.order_url(), env.url(&format!("/orders/{id}")));
    assert_eq!(q.expires_at(), signed.order.expires_at);

    let (status, body) = env.get(&format!("/orders/{id}/status")).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"orderId": id, "status": "pending"}));

    let (status, body) = env.get("/orders/ord_unknown").await;
    assert_eq!(
        (status, err_code(&body)),
        (404, "ORDER_NOT_FOUND"),
        "{body}"
    );
    let (status, body) = env.get("/orders/ord_unknown/status").await;
    assert_eq!(
        (status, err_code(&body)),
        (404, "ORDER_NOT_FOUND"),
        "{body}"
    );

    // Past expiresAt (exactly at it is still valid).
    env.clock.advance(300);
    let (status, _) = env.get(&format!("/orders/{id}")).await;
    assert_eq!(status, 200);
    env.clock.advance(1);
    let (status, body) = env.get(&format!("/orders/{id}")).await;
    assert_eq!((status, err_code(&body)), (410, "ORDER_EXPIRED"), "{body}");
    let (_, body) = env.get(&format!("/orders/{id}/status")).await;
    assert_eq!(body["status"], "expired");
    assert_eq!(
        env.merchant.order(&id).unwrap().unwrap().status,
        OrderStatus::Expired
    );
    assert!(matches!(
        env.merchant.order_qr(&id),
        Err(MerchantError::OrderNotPayable { .. })
    ));
}

#[tokio::test]
async fn cancelled_orders_are_not_offered() {
    let env = Env::start().await;
    let signed = env.order();
    let id = signed.order.id.clone();
    let record = env.merchant.cancel_order(&id).unwrap();
    assert_eq!(record.status, OrderStatus::Cancelled);
    let (status, body) = env.get(&format!("/orders/{id}")).await;
    assert_eq!((status, err_code(&body)), (409, "INVALID_STATE"), "{body}");
    let (_, body) = env.get(&format!("/orders/{id}/status")).await;
    assert_eq!(body["status"], "cancelled");
    assert!(matches!(
        env.merchant.cancel_order("ord_nope"),
        Err(MerchantError::OrderNotFound(_))
    ));
}

#[tokio::test]
async fn wait_paid_times_out_and_unknown_orders_are_errors() {
    let env = Env::start().await;
    let signed = env.order();
    let err = env
        .merchant
        .wait_paid(&signed.order.id, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, MerchantError::Timeout(_)), "{err}");
    let err = env
        .merchant
        .wait_paid("ord_nope", Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, MerchantError::OrderNotFound(_)), "{err}");
    assert!(env.merchant.order("ord_nope").unwrap().is_none());
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_error_envelope() {
    let env = Env::start().await;
    let (status, body) = env.get("/nothing/here").await;
    assert_eq!((status, err_code(&body)), (404, "NOT_FOUND"), "{body}");
    let resp = env
        .http
        .get(format!("http://{}/elsewhere", env.merchant.addr()))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!((status, err_code(&body)), (404, "NOT_FOUND"), "{body}");
    let resp = env.http.delete(env.url("/inventory")).send().await.unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(
        (status, err_code(&body)),
        (405, "INVALID_REQUEST"),
        "{body}"
    );
}

#[tokio::test]
async fn wallet_session_qr_checks_before_anything_is_sent() {
    let env = Env::start().await;
    let signed = env.order();
    let id = signed.order.id.clone();
    let now = env.now();

    // Not a wallet session QR.
    let err = env
        .merchant
        .post_to_wallet_session(&env.merchant.inventory_qr(), &id)
        .await
        .unwrap_err();
    assert!(matches!(err, MerchantError::InvalidQr(_)), "{err}");
    let err = env
        .merchant
        .post_to_wallet_session("hello", &id)
        .await
        .unwrap_err();
    assert!(matches!(err, MerchantError::InvalidQr(_)), "{err}");

    // Expired.
    let qr = WalletSessionQr::new(GATEWAY, &env.host.endpoint_of(GATEWAY), "s1", now - 10)
        .unwrap()
        .to_json_string();
    let err = env
        .merchant
        .post_to_wallet_session(&qr, &id)
        .await
        .unwrap_err();
    assert!(matches!(err, MerchantError::Expired(_)), "{err}");

    // A gateway the directory does not know.
    let qr = WalletSessionQr::new(999, &env.host.endpoint_of(GATEWAY), "s1", now + 300)
        .unwrap()
        .to_json_string();
    let err = env
        .merchant
        .post_to_wallet_session(&qr, &id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MerchantError::Resolve { ocid: 999, .. }),
        "{err}"
    );

    // A URL that is not under the gateway's published endpoint (someone else's server).
    let qr = WalletSessionQr::new(GATEWAY, &env.host.endpoint_of(OTHER), "s1", now + 300)
        .unwrap()
        .to_json_string();
    let err = env
        .merchant
        .post_to_wallet_session(&qr, &id)
        .await
        .unwrap_err();
    assert!(matches!(err, MerchantError::UrlNotAllowed(_)), "{err}");

    // An unknown order.
    let qr = WalletSessionQr::new(GATEWAY, &env.host.endpoint_of(GATEWAY), "s1", now + 300)
        .unwrap()
        .to_json_string();
    let err = env
        .merchant
        .post_to_wallet_session(&qr, "ord_nope")
        .await
        .unwrap_err();
    assert!(matches!(err, MerchantError::OrderNotFound(_)), "{err}");

    // The gateway's endpoint does not answer the route: its error comes back as a peer error
    // (the metadata host answers 404 without an Opencharge body).
    let err = env
        .merchant
        .post_to_wallet_session(&qr, &id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MerchantError::Peer(ref e) if e.status == 404),
        "{err}"
    );
    // Nothing was recorded as a submission.
    assert_eq!(env.merchant.order(&id).unwrap().unwrap().status_url, None);
}

/// One strict JSON reader (decision 38): both signed POST routes refuse a body that repeats a
/// key, naming it, and nothing is created or paid.
#[tokio::test]
async fn signed_routes_refuse_a_repeated_key() {
    let env = Env::start().await;
    let order = env.order();
    let envelope = signed_envelope(
        &proof_for(env.gateway.ocid, "tx_dup", &order, env.now()),
        &env.gateway.key,
    );
    // The webhook body repeats `signature` (first a bogus one, then the real one).
    let text = serde_json::to_string(&envelope).unwrap();
    let webhook = format!("{{\"signature\":\"00\",{}", &text[1..]);
    let orders = r#"{"items":[{"id":"tea","quantity":1}],"items":[{"id":"cake","quantity":9}]}"#;
    for (rel, body, key, code) in [
        (
            "/orders/create",
            orders.to_string(),
            "items",
            "INVALID_REQUEST",
        ),
        ("/transfer/webhook", webhook, "signature", "INVALID_PROOF"),
    ] {
        let resp = opencharge_testkit::signed_request(
            &env.http,
            &env.gateway.key,
            env.gateway.ocid,
            "POST",
            &env.url(rel),
            Some(body.into_bytes()),
            env.now(),
        )
        .await
        .unwrap();
        let (status, answer) = read(resp).await;
        assert_eq!((status, err_code(&answer)), (400, code), "{rel}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("duplicate key \"{key}\"")),
            "{rel}: {answer}"
        );
    }
    // The order is still unpaid; the same proof without the repeated key is accepted.
    let (status, answer) = env.get(&format!("/orders/{}/status", order.order.id)).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("pending")),
        "{answer}"
    );
    let (status, answer) = env.deliver(&env.gateway, &envelope).await;
    assert_eq!(status, 200, "{answer}");
}
