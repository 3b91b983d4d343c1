//! The merchant never calls an order failed (or lets it be cancelled) when the gateway may
//! have accepted it. A real gateway on loopback is published behind a proxy that loses the
//! answer to the order post (the gateway has acted); or the gateway's key is swapped so its
//! answers no longer verify against the metadata the merchant cached. The merchant then asks
//! the order's status (`GET /orders/create/{sessionId}/status`) and reports accepted, failed,
//! or "outcome unknown, order kept pending" (`OUTCOME_UNKNOWN` on its dev API), and a paid
//! order is never cancelled.

mod common;

use common::{read, World, GATEWAY};
use opencharge_merchant::{MerchantConfig, MerchantError};
use opencharge_protocol::types::OrderStatus;
use opencharge_testkit::{DropProxy, DropRule, Network};
use serde_json::{json, Value};

/// A world (gateway, merchant with its dev API on, funded device) whose gateway is published
/// behind a drop proxy.
async fn world_behind_proxy() -> (World, DropProxy) {
    let proxy = DropProxy::start().await.unwrap();
    let public_url = proxy.url();
    let net = Network::builder()
        .gateway_config(move |c| c.public_url = Some(public_url.clone()))
        .merchant_config(|_, c: &mut MerchantConfig| c.dev_mode = true)
        .start()
        .await
        .unwrap();
    proxy.set_upstream(net.gateway_addr());
    let wallet = net.app_device("Alice", Some("50.00")).await.unwrap();
    let world = World {
        merchant: net.merchants()[0].clone(),
        http: reqwest::Client::new(),
        net,
        wallet,
    };
    (world, proxy)
}

/// The wallet shows a session QR: its text.
async fn session_qr(world: &World) -> String {
    let (status, session) = world.call("POST", "/app/sessions", None).await;
    assert_eq!(status, 200, "{session}");
    session["qrText"].as_str().unwrap().to_string()
}

/// The only prompt waiting for the wallet.
async fn prompt(world: &World) -> Value {
    let (status, prompts) = world.call("GET", "/app/prompts", None).await;
    assert_eq!(status, 200, "{prompts}");
    prompts["prompts"][0].clone()
}

/// The merchant's dev API: posts `order_id` to the session QR; status and answer.
async fn dev_post(world: &World, order_id: &str, qr: &str) -> (u16, Value) {
    let url = format!("{}/dev/orders/{order_id}/post", world.merchant.endpoint());
    read(
        world
            .http
            .post(url)
            .json(&json!({"sessionQr": qr}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_lost_answer_is_checked_and_the_accepted_order_is_paid_not_cancelled() {
    let (world, proxy) = world_behind_proxy().await;
    proxy.drop_answers(DropRule::new("POST", "/opencharge/orders/create/*").times(1));
    let qr = session_qr(&world).await;
    let order = world.order();
    let order_id = order.order.id.clone();

    // The answer is lost, the status says pending: the post counts as accepted.
    let answer = world
        .merchant
        .post_to_wallet_session(&qr, &order_id)
        .await
        .unwrap();
    assert_eq!(proxy.dropped(), 1);
    assert!(
        answer.urls.status.ends_with("/status") && answer.urls.status.contains("/orders/create/"),
        "{}",
        answer.urls.status
    );
    let record = world.merchant.order(&order_id).unwrap().unwrap();
    assert_eq!(record.status, OrderStatus::Pending);
    assert_eq!(record.gateway_ocid, Some(GATEWAY));
    assert_eq!(
        record.status_url.as_deref(),
        Some(answer.urls.status.as_str())
    );
    let polled = world.merchant.gateway_status(&order_id).await.unwrap();
    assert_eq!(
        (polled.order_id.as_str(), polled.status),
        (order_id.as_str(), OrderStatus::Pending)
    );

    // The wallet pays it; the merchant sees it paid.
    let paid = world.confirm(&prompt(&world).await).await;
    world.assert_paid_by_gateway(&order_id, &paid).await;
    let polled = world.merchant.gateway_status(&order_id).await.unwrap();
    assert_eq!(polled.status, OrderStatus::Paid);
    world.stop().await;
}

#[tokio::test]
async fn a_lost_answer_to_a_refused_post_is_reported_as_failed() {
    let (world, proxy) = world_behind_proxy().await;
    let qr = session_qr(&world).await;
    let first = world.order();
    world
        .merchant
        .post_to_wallet_session(&qr, &first.order.id)
        .await
        .unwrap();
    // A second order to the same (used) session: the gateway refuses it, the answer is lost.
    proxy.drop_answers(DropRule::new("POST", "/opencharge/orders/create/*").times(1));
    let second = world.order();
    let err = world
        .merchant
        .post_to_wallet_session(&qr, &second.order.id)
        .await
        .unwrap_err();
    assert!(matches!(err, MerchantError::Network(_)), "{err}");
    let record = world.merchant.order(&second.order.id).unwrap().unwrap();
    assert_eq!(
        record.status_url, None,
        "a refused order records no status URL"
    );
    world.stop().await;
}

#[tokio::test]
async fn no_trustworthy_answer_at_all_keeps_the_order_pending() {
    let (world, proxy) = world_behind_proxy().await;
    proxy.drop_answers(DropRule::new("POST", "/opencharge/orders/create/*"));
    proxy.drop_answers(DropRule::new("GET", "/opencharge/orders/create/*/status"));
    let qr = session_qr(&world).await;
    let order = world.order();
    let order_id = order.order.id.clone();

    // Through the dev API (what `opencharge merchant scan` calls): OUTCOME_UNKNOWN, not a
    // gateway failure, and the order is still pending.
    let (status, body) = dev_post(&world, &order_id, &qr).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "OUTCOME_UNKNOWN", "{body}");
    assert_eq!(body["error"]["details"]["orderId"], order_id.as_str());
    assert_eq!(body["error"]["details"]["orderStatus"], "pending");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("kept pending"), "{message}");
    assert!(proxy.dropped() >= 4, "one post and three status requests");
    let record = world.merchant.order(&order_id).unwrap().unwrap();
    assert_eq!(record.status, OrderStatus::Pending);
    assert_eq!(record.gateway_ocid, Some(GATEWAY));

    // The gateway did take it: the wallet pays, and the merchant records the payment.
    proxy.pass_all();
    let paid = world.confirm(&prompt(&world).await).await;
    world.assert_paid_by_gateway(&order_id, &paid).await;
    world.stop().await;
}

#[tokio::test]
async fn answers_signed_by_a_swapped_gateway_key_do_not_cancel_the_order() {
    let (mut world, _proxy) = world_behind_proxy().await;
    // The merchant resolves (and caches) the gateway's metadata with its first order.
    let qr = session_qr(&world).await;
    let first = world.order();
    world
        .merchant
        .post_to_wallet_session(&qr, &first.order.id)
        .await
        .unwrap();

    // The operator rotates the gateway's key and restarts it: its answers no longer verify
    // against the key the merchant cached.
    let config = world.net.gateway().unwrap().state.config.clone();
    world.net.stop_gateway().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    opencharge_gateway::identity::rotate_key(&config, now)
        .await
        .unwrap();
    world.net.restart_gateway().await.unwrap();

    let qr = session_qr(&world).await;
    let order = world.order();
    let order_id = order.order.id.clone();
    let (status, body) = dev_post(&world, &order_id, &qr).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "OUTCOME_UNKNOWN", "{body}");
    assert_eq!(
        world.merchant.order(&order_id).unwrap().unwrap().status,
        OrderStatus::Pending
    );

    // The gateway accepted it and the wallet pays it; the merchant's order is not cancelled.
    let paid = world.confirm(&prompt(&world).await).await;
    assert_eq!(paid["status"], "paid");
    let record = world.merchant.order(&order_id).unwrap().unwrap();
    assert_ne!(record.status, OrderStatus::Cancelled);
    world.stop().await;
}
