//! End to end with the REAL reference gateway in-process (`opencharge_gateway::Gateway`) and
//! a real merchant, both on loopback with SQLite files, each finding the other through its
//! directory (metadata fetched over HTTP, config signatures verified). A dev account is
//! created and funded, a device is registered and confirms with device-signed requests, and
//! the merchant sees the gateway's proof arrive on its webhook and reports the order paid.
//! One test per flow: wallet QR session, merchant order QR, inventory QR, hosted checkout.

mod common;

use common::{err_code, World, GATEWAY, MERCHANT};
use opencharge_protocol::types::OrderStatus;
use serde_json::json;

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
    assert!(answer.urls.status.starts_with(world.gw_endpoint()));
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
    assert!(checkout.checkout_url.starts_with(world.gw_endpoint()));
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
