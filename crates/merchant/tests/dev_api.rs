//! The merchant's `/dev/*` control API over real HTTP, against the REAL reference gateway
//! in-process and a funded, registered wallet device: an order created through the dev API is
//! posted to a real wallet session and paid; a hosted checkout is opened and paid; orders are
//! cancelled; the inventory QR is served; unknown orders, bad bodies and gateway refusals come
//! back as typed errors in the envelope; with `dev_mode` off every `/dev` path is 404.

mod common;

use common::{err_code, read, GATEWAY, MERCHANT};
use common::{World, WAIT};
use opencharge_merchant::{Merchant, MerchantConfig};
use opencharge_protocol::keys::{PublicKey, VerifyOptions};
use opencharge_protocol::qr::{parse_payload, QrPayload};
use opencharge_protocol::signing::{verify_order, OrderVerifyMode};
use opencharge_protocol::types::OrderStatus;
use serde_json::{json, Value};

/// A world whose merchant has the dev API on.
async fn dev_world() -> World {
    World::start_with(|config| config.dev_mode = true).await
}

async fn dev_post(world: &World, rel: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}/dev{rel}", world.merchant.endpoint());
    read(world.http.post(url).json(body).send().await.unwrap()).await
}

async fn dev_post_raw(world: &World, rel: &str, body: Vec<u8>) -> (u16, Value) {
    let url = format!("{}/dev{rel}", world.merchant.endpoint());
    let req = world
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    read(req.send().await.unwrap()).await
}

async fn dev_get(world: &World, rel: &str) -> (u16, Value) {
    let url = format!("{}/dev{rel}", world.merchant.endpoint());
    read(world.http.get(url).send().await.unwrap()).await
}

/// Two coffees at 2.50 through `POST /dev/orders`; returns the answer.
async fn coffee_order(world: &World) -> Value {
    let (status, body) = dev_post(
        world,
        "/orders",
        &json!({"items": [{"id": "coffee", "name": "Coffee", "quantity": 2, "price": "2.50"}],
                "currency": "USD", "reference": "POS-9", "memo": "to go"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn dev_order_posted_to_a_real_wallet_session_reads_paid() {
    let world = dev_world().await;
    let created = coffee_order(&world).await;
    let order_id = created["orderId"].as_str().unwrap().to_string();
    assert!(order_id.starts_with("ord_"));
    assert_eq!(created["order"]["id"], json!(order_id));
    assert_eq!(created["order"]["amount"], "5.00");
    assert_eq!(created["order"]["accepts"], json!([GATEWAY]));
    assert_eq!(created["order"]["reference"], "POS-9");
    // The order verifies against the merchant's published key.
    let key = PublicKey::from_hex(&world.merchant.public_key_hex()).unwrap();
    verify_order(
        &created["order"],
        created["signature"].as_str().unwrap(),
        MERCHANT,
        &key,
        OrderVerifyMode::Strict,
        VerifyOptions::STRICT,
    )
    .unwrap();
    // The QR is the merchant-order QR of exactly this order.
    let QrPayload::MerchantOrder(qr) =
        parse_payload(created["qr"].as_str().unwrap(), world.now()).unwrap()
    else {
        panic!("not a merchant order QR: {}", created["qr"]);
    };
    assert_eq!(qr.ocid(), MERCHANT);
    assert_eq!(
        qr.order_url(),
        format!("{}/orders/{order_id}", world.merchant.endpoint())
    );

    let (status, pending) = dev_get(&world, &format!("/orders/{order_id}")).await;
    assert_eq!(status, 200, "{pending}");
    assert_eq!(
        pending,
        json!({"orderId": order_id, "status": "pending", "amount": "5.00", "currency": "USD",
               "txid": null, "issuer": null, "paidAt": null})
    );

    // The wallet shows its session QR; the merchant "scans" it through the dev API.
    let (status, session) = world.call("POST", "/app/sessions", None).await;
    assert_eq!(status, 200, "{session}");
    let session_qr = session["qrText"].as_str().unwrap().to_string();
    let (status, posted) = dev_post(
        &world,
        &format!("/orders/{order_id}/post"),
        &json!({"sessionQr": session_qr}),
    )
    .await;
    assert_eq!(status, 200, "{posted}");
    assert_eq!(posted["orderId"], json!(order_id));
    assert!(posted["statusUrl"]
        .as_str()
        .unwrap()
        .starts_with(world.gw_endpoint()));

    // The session is single-use: the gateway's refusal comes back with its code.
    let second = coffee_order(&world).await;
    let (status, body) = dev_post(
        &world,
        &format!("/orders/{}/post", second["orderId"].as_str().unwrap()),
        &json!({"sessionQr": session_qr}),
    )
    .await;
    assert_eq!(err_code(&body), "SESSION_USED", "{body}");
    assert!((400..500).contains(&status), "{status} {body}");

    // The user confirms on the wallet; the proof reaches the webhook; the view reads paid.
    let (status, prompts) = world.call("GET", "/app/prompts", None).await;
    assert_eq!(status, 200, "{prompts}");
    let prompt = &prompts["prompts"][0];
    assert_eq!(prompt["order"], created["order"]);
    let paid = world.confirm(prompt).await;
    world.merchant.wait_paid(&order_id, WAIT).await.unwrap();
    let (status, view) = dev_get(&world, &format!("/orders/{order_id}")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "paid");
    assert_eq!(view["txid"], paid["txid"]);
    assert_eq!(view["issuer"], GATEWAY);
    assert!(view["paidAt"].is_i64(), "{view}");
    assert_eq!(world.usd_balance().await, "45.00");

    // A paid order cannot be cancelled.
    let (status, body) = dev_post(&world, &format!("/orders/{order_id}/cancel"), &json!({})).await;
    assert_eq!((status, err_code(&body)), (409, "INVALID_STATE"), "{body}");
    world.stop().await;
}

#[tokio::test]
async fn dev_checkout_is_paid_and_cancelled_orders_stay_unpayable() {
    let world = dev_world().await;
    let created = coffee_order(&world).await;
    let order_id = created["orderId"].as_str().unwrap().to_string();
    // gatewayOcid defaults to the first accepted gateway.
    let (status, checkout) = dev_post(
        &world,
        &format!("/orders/{order_id}/checkout"),
        &json!({"successUrl": "https://shop.example/ok", "cancelUrl": "https://shop.example/no"}),
    )
    .await;
    assert_eq!(status, 200, "{checkout}");
    assert_eq!(checkout["orderId"], json!(order_id));
    let link = checkout["checkoutUrl"].as_str().unwrap();
    assert!(link.starts_with(world.gw_endpoint()), "{link}");
    assert!(checkout["expiresAt"].is_i64(), "{checkout}");

    // The payer opens the link in the wallet and confirms.
    let (status, scanned) = world
        .call("POST", "/app/scan", Some(json!({"text": link})))
        .await;
    assert_eq!(status, 200, "{scanned}");
    assert_eq!(scanned["prompt"]["flow"], "checkout");
    let paid = world.confirm(&scanned["prompt"]).await;
    assert_eq!(paid["redirectUrl"], "https://shop.example/ok");
    let record = world.merchant.wait_paid(&order_id, WAIT).await.unwrap();
    assert_eq!(record.status, OrderStatus::Paid);
    let (_, view) = dev_get(&world, &format!("/orders/{order_id}")).await;
    assert_eq!(view["status"], "paid");

    // Cancel (idempotent), then the order can be neither posted nor checked out.
    let other = coffee_order(&world).await;
    let other_id = other["orderId"].as_str().unwrap();
    for _ in 0..2 {
        let (status, view) =
            dev_post_raw(&world, &format!("/orders/{other_id}/cancel"), vec![]).await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["status"], "cancelled");
    }
    let (_, view) = dev_get(&world, &format!("/orders/{other_id}")).await;
    assert_eq!(view["status"], "cancelled");
    let (status, session) = world.call("POST", "/app/sessions", None).await;
    assert_eq!(status, 200, "{session}");
    let (status, body) = dev_post(
        &world,
        &format!("/orders/{other_id}/post"),
        &json!({"sessionQr": session["qrText"]}),
    )
    .await;
    assert_eq!((status, err_code(&body)), (409, "INVALID_STATE"), "{body}");
    let (status, body) = dev_post(
        &world,
        &format!("/orders/{other_id}/checkout"),
        &json!({"gatewayOcid": GATEWAY, "successUrl": "https://s.example/a", "cancelUrl": "https://s.example/b"}),
    )
    .await;
    assert_eq!((status, err_code(&body)), (409, "INVALID_STATE"), "{body}");
    world.stop().await;
}

#[tokio::test]
async fn dev_inventory_qr_and_typed_errors() {
    let world = dev_world().await;
    // The inventory QR, served signed, is the one a wallet scans into the merchant's items.
    let response = world
        .http
        .get(format!("{}/dev/inventory-qr", world.merchant.endpoint()))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-oc-signature"));
    let (status, body) = read(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["qr"], json!(world.merchant.inventory_qr()));
    let (status, scanned) = world
        .call("POST", "/app/scan", Some(json!({"text": body["qr"]})))
        .await;
    assert_eq!(status, 200, "{scanned}");
    assert_eq!(scanned["kind"], "inventory");

    // Unknown orders: 404 on every per-order route.
    let (status, body) = dev_get(&world, "/orders/ord_nope").await;
    assert_eq!(
        (status, err_code(&body)),
        (404, "ORDER_NOT_FOUND"),
        "{body}"
    );
    for (rel, payload) in [
        ("/orders/ord_nope/post", json!({"sessionQr": "x"})),
        (
            "/orders/ord_nope/checkout",
            json!({"successUrl": "https://s.example/a", "cancelUrl": "https://s.example/b"}),
        ),
        ("/orders/ord_nope/cancel", json!({})),
    ] {
        let (status, body) = dev_post(&world, rel, &payload).await;
        assert_eq!(
            (status, err_code(&body)),
            (404, "ORDER_NOT_FOUND"),
            "{rel}: {body}"
        );
    }

    // Bad bodies: 400 INVALID_REQUEST with the reason; too large: 413.
    let line = json!({"id": "coffee", "name": "Coffee", "quantity": 1, "price": "2.50"});
    for (payload, needle) in [
        (b"not json".to_vec(), "invalid request body"),
        (b"{}".to_vec(), "items"),
        (
            json!({"items": []}).to_string().into_bytes(),
            "at least one item",
        ),
        (
            json!({"items": [{"id": "c", "name": "C", "quantity": 1, "price": "2.505"}]})
                .to_string()
                .into_bytes(),
            "price",
        ),
        (
            json!({"items": [{"id": "c", "name": "C", "quantity": 1, "price": 2.5}]})
                .to_string()
                .into_bytes(),
            "invalid request body",
        ),
        (
            json!({"items": [line], "currency": "EUR"})
                .to_string()
                .into_bytes(),
            "currency",
        ),
        (
            json!({"items": [line], "colour": "red"})
                .to_string()
                .into_bytes(),
            "colour",
        ),
    ] {
        let (status, body) = dev_post_raw(&world, "/orders", payload).await;
        assert_eq!(
            (status, err_code(&body)),
            (400, "INVALID_REQUEST"),
            "{needle}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle}: {message}");
    }
    let (status, body) = dev_post_raw(&world, "/orders", vec![b' '; 300 * 1024]).await;
    assert_eq!(
        (status, err_code(&body)),
        (413, "INVALID_REQUEST"),
        "{body}"
    );

    // Bad QR texts and an unknown gateway, on a real order.
    let created = coffee_order(&world).await;
    let id = created["orderId"].as_str().unwrap();
    for qr in ["hello".to_string(), world.merchant.inventory_qr()] {
        let (status, body) = dev_post(
            &world,
            &format!("/orders/{id}/post"),
            &json!({"sessionQr": qr}),
        )
        .await;
        assert_eq!(
            (status, err_code(&body)),
            (400, "INVALID_REQUEST"),
            "{body}"
        );
    }
    let (status, body) = dev_post(&world, &format!("/orders/{id}/post"), &json!({})).await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "INVALID_REQUEST"),
        "{body}"
    );
    let (status, body) = dev_post(
        &world,
        &format!("/orders/{id}/checkout"),
        &json!({"gatewayOcid": 999, "successUrl": "https://s.example/a", "cancelUrl": "https://s.example/b"}),
    )
    .await;
    assert_eq!(
        (status, err_code(&body)),
        (502, "METADATA_UNAVAILABLE"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["ocid"], 999);
    // The failed calls left the order pending.
    let (_, view) = dev_get(&world, &format!("/orders/{id}")).await;
    assert_eq!(view["status"], "pending");
    world.stop().await;
}

#[tokio::test]
async fn dev_routes_are_404_when_dev_mode_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let merchant = Merchant::start(MerchantConfig::for_tests(
        dir.path(),
        MERCHANT,
        vec![GATEWAY],
    ))
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let url = |rel: &str| format!("{}{rel}", merchant.endpoint());
    let (status, body) = read(http.get(url("/dev/inventory-qr")).send().await.unwrap()).await;
    assert_eq!((status, err_code(&body)), (404, "NOT_FOUND"), "{body}");
    let (status, body) = read(
        http.post(url("/dev/orders"))
            .json(&json!({"items": [{"id": "t", "name": "T", "quantity": 1, "price": "1.00"}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, err_code(&body)), (404, "NOT_FOUND"), "{body}");
    assert!(merchant.order("ord_x").unwrap().is_none());
    // The regular API is unaffected.
    let (status, body) = read(http.get(url("/inventory")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    merchant.stop().await;
}
