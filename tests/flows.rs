//! The three payment flows end to end through the exported `Wallet` API, against a real
//! gateway and a real merchant on loopback: wallet QR, merchant QR (order and inventory) and
//! hosted checkout, plus decline, insufficient funds and expiry.

use opencharge_protocol::types::OrderStatus;
use opencharge_testkit::{
    Heard, Network, Recorder, GATEWAY_OCID as GATEWAY, MERCHANT_OCID as MERCHANT, WAIT,
};
use std::time::Duration;

use opencharge_wallet::{
    GatewayErrorCode, HistoryQuery, InventorySelection, Money, PaymentFlow, PaymentStatus,
    ScanResult, WalletError,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_1_wallet_qr_end_to_end() {
    let env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("alice", Some("100.00")).await.unwrap();
    let (listener, mut inbox) = Recorder::new();
    let stream = wallet.start_events(listener).unwrap();
    inbox.connected().await;

    let session = wallet.create_payment_session().await.unwrap();
    assert!(session.qr_payload.contains(&session.session_id));
    let svg = opencharge_wallet::qr::render_qr_svg(session.qr_payload.clone(), 4).unwrap();
    assert!(svg.contains("<svg"));

    let order = env.order().unwrap();
    env.merchant()
        .post_to_wallet_session(&session.qr_payload, &order.order.id)
        .await
        .unwrap();
    let prompt = inbox.prompt(&session.session_id).await;
    assert_eq!(prompt.flow, PaymentFlow::WalletQr);
    assert_eq!(prompt.merchant_ocid, MERCHANT as i64);
    assert_eq!(prompt.merchant_name.as_deref(), Some("Test Coffee"));
    assert_eq!(
        prompt.total,
        Money {
            amount: "8.25".into(),
            minor_units: 825,
            currency: "USD".into(),
            exponent: 2
        }
    );
    assert_eq!(prompt.items.len(), 2);
    assert!(prompt.expires_at > prompt.received_at);
    let lines: i64 = prompt
        .items
        .iter()
        .map(|i| i.quantity * i.unit_price.minor_units)
        .sum();
    assert_eq!(
        lines, prompt.total.minor_units,
        "the items add up in minor units"
    );
    assert_eq!(
        wallet.pending_prompts().await.unwrap(),
        vec![prompt.clone()]
    );

    let receipt = wallet.confirm(prompt.prompt_id.clone()).await.unwrap();
    assert_eq!(receipt.status, PaymentStatus::Paid);
    assert!(
        receipt.proof_verified,
        "the proof verifies with the gateway's metadata key"
    );
    assert_eq!(receipt.proof_issuer, Some(GATEWAY as i64));
    assert_eq!(receipt.amount.as_ref(), Some(&prompt.total));
    assert!(receipt.paid_at.is_some());
    assert!(receipt.txid.is_some());
    assert!(wallet.pending_prompts().await.unwrap().is_empty());

    let paid = env
        .merchant()
        .wait_paid(&order.order.id, WAIT)
        .await
        .unwrap();
    assert_eq!(
        paid.txid, receipt.txid,
        "the merchant's webhook received the same proof"
    );
    assert_eq!(
        env.merchant()
            .gateway_status(&order.order.id)
            .await
            .unwrap()
            .status,
        OrderStatus::Paid
    );
    assert_eq!(env.usd(&wallet).await.unwrap(), "91.75");

    let update = inbox
        .wait_for("paid status", |h| match h {
            Heard::Status(u) if u.session_id == session.session_id => Some(u.clone()),
            _ => None,
        })
        .await;
    assert_eq!(update.status, PaymentStatus::Paid);
    assert_eq!(update.txid, receipt.txid);

    // Confirming again returns the same receipt and never pays twice.
    let again = wallet.confirm(prompt.prompt_id.clone()).await.unwrap();
    assert_eq!(again.txid, receipt.txid);
    assert_eq!(env.usd(&wallet).await.unwrap(), "91.75");
    assert_eq!(env.merchant().proofs().len(), 1);

    let page = wallet
        .history(HistoryQuery {
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(page.receipts, vec![receipt.clone()]);
    stream.stop_and_wait().await;
    assert!(!stream.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_2_merchant_qr_order_and_inventory() {
    let env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("bob", Some("50.00")).await.unwrap();

    let order = env.order().unwrap();
    let qr = env.merchant().order_qr(&order.order.id).unwrap();
    let ScanResult::Prompt { prompt } = wallet.scan(qr).await.unwrap() else {
        panic!("expected a prompt")
    };
    assert_eq!(prompt.flow, PaymentFlow::MerchantQr);
    assert_eq!(prompt.order_id, order.order.id);
    let receipt = wallet.confirm(prompt.prompt_id).await.unwrap();
    assert!(receipt.proof_verified);
    env.merchant()
        .wait_paid(&order.order.id, WAIT)
        .await
        .unwrap();

    let scanned = wallet.scan(env.merchant().inventory_qr()).await.unwrap();
    let ScanResult::Inventory { inventory } = scanned else {
        panic!("expected an inventory")
    };
    assert_eq!(inventory.merchant_ocid, MERCHANT as i64);
    let first = inventory.items.first().expect("inventory items").clone();
    let prompt = wallet
        .order_from_inventory(
            inventory,
            vec![InventorySelection {
                id: first.id.clone(),
                quantity: 2,
            }],
        )
        .await
        .unwrap();
    assert_eq!(prompt.items.len(), 1);
    assert_eq!(prompt.items[0].quantity, 2);
    let receipt = wallet.confirm(prompt.prompt_id.clone()).await.unwrap();
    assert_eq!(receipt.status, PaymentStatus::Paid);
    env.merchant()
        .wait_paid(&prompt.order_id, WAIT)
        .await
        .unwrap();
    assert_eq!(env.merchant().proofs().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_3_hosted_checkout_link() {
    let env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("carol", Some("20.00")).await.unwrap();
    let order = env.order().unwrap();
    let checkout = env
        .merchant()
        .create_checkout(
            GATEWAY,
            &order.order.id,
            "https://shop.example/ok",
            "https://shop.example/cancel",
        )
        .await
        .unwrap();
    let prompt = wallet
        .open_checkout(checkout.checkout_url.clone())
        .await
        .unwrap();
    assert_eq!(prompt.flow, PaymentFlow::Checkout);
    assert_eq!(prompt.total.amount, "8.25");
    // Opening the same link again is idempotent.
    assert_eq!(
        wallet
            .open_checkout(checkout.checkout_url.clone())
            .await
            .unwrap()
            .prompt_id,
        prompt.prompt_id
    );
    // The checkout page's "Open in wallet" deep link opens the same checkout, by scan or by
    // open_checkout.
    let deep_link = opencharge_wallet::protocol::qr::checkout_deep_link(&checkout.checkout_url);
    match wallet.scan(deep_link.clone()).await.unwrap() {
        ScanResult::Prompt { prompt: scanned } => assert_eq!(scanned.prompt_id, prompt.prompt_id),
        other => panic!("the deep link should scan as a prompt: {other:?}"),
    }
    assert_eq!(
        wallet.open_checkout(deep_link).await.unwrap().prompt_id,
        prompt.prompt_id
    );
    let receipt = wallet.confirm(prompt.prompt_id).await.unwrap();
    assert_eq!(
        receipt.redirect_url.as_deref(),
        Some("https://shop.example/ok")
    );
    assert!(receipt.proof_verified);
    let paid = env
        .merchant()
        .wait_paid(&order.order.id, WAIT)
        .await
        .unwrap();
    assert_eq!(paid.txid, receipt.txid);
    assert_eq!(env.usd(&wallet).await.unwrap(), "11.75");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decline_refuses_and_cannot_be_paid_afterwards() {
    let env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("dave", Some("20.00")).await.unwrap();
    let (_, prompt) = env.scan_order(&wallet).await.unwrap();
    let receipt = wallet
        .decline(prompt.prompt_id.clone(), Some("not my order".into()))
        .await
        .unwrap();
    assert_eq!(receipt.status, PaymentStatus::Declined);
    assert_eq!(receipt.decline_reason.as_deref(), Some("not my order"));
    assert!(wallet.pending_prompts().await.unwrap().is_empty());
    let err = wallet.confirm(prompt.prompt_id.clone()).await.unwrap_err();
    assert!(matches!(err, WalletError::InvalidInput { .. }), "{err:?}");
    // Declining again is idempotent; nothing was debited.
    assert_eq!(
        wallet.decline(prompt.prompt_id, None).await.unwrap().status,
        PaymentStatus::Declined
    );
    assert_eq!(env.usd(&wallet).await.unwrap(), "20.00");
    let bad = wallet
        .decline("x".repeat(20), Some("\u{7}".into()))
        .await
        .unwrap_err();
    assert!(matches!(bad, WalletError::InvalidInput { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_funds_leaves_the_prompt_payable_after_a_top_up() {
    let env = Network::start().await.unwrap();
    let (wallet, account) = env.wallet("erin", Some("1.00")).await.unwrap();
    let (_, prompt) = env.scan_order(&wallet).await.unwrap();
    let err = wallet.confirm(prompt.prompt_id.clone()).await.unwrap_err();
    match &err {
        WalletError::Gateway {
            code,
            raw_code,
            http_status,
            ..
        } => {
            assert_eq!(*code, GatewayErrorCode::InsufficientFunds);
            assert_eq!(
                (raw_code.as_str(), *http_status),
                ("INSUFFICIENT_FUNDS", 402)
            )
        }
        other => panic!("expected INSUFFICIENT_FUNDS, got {other:?}"),
    }
    assert_eq!(
        wallet.pending_prompts().await.unwrap().len(),
        1,
        "the prompt stays open"
    );
    assert_eq!(env.usd(&wallet).await.unwrap(), "1.00");
    env.fund(&account, "10.00").await.unwrap();
    let receipt = wallet.confirm(prompt.prompt_id).await.unwrap();
    assert_eq!(receipt.status, PaymentStatus::Paid);
    assert_eq!(env.usd(&wallet).await.unwrap(), "2.75");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_and_prompts_cannot_be_paid() {
    let env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("frank", Some("20.00")).await.unwrap();
    let (_, prompt) = env.scan_order(&wallet).await.unwrap();
    let session = wallet.create_payment_session().await.unwrap();
    // The gateway's clock moves past every expiry; the core learns it from the next answer.
    env.clock.advance(3600);
    let _ = wallet.balance().await.unwrap();
    let err = wallet.confirm(prompt.prompt_id.clone()).await.unwrap_err();
    assert!(
        matches!(err, WalletError::InvalidInput { ref reason } if reason.contains("expired")),
        "{err:?}"
    );
    assert!(wallet.pending_prompts().await.unwrap().is_empty());
    // A merchant can no longer post to the expired wallet session.
    let late = env.order().unwrap();
    assert!(env
        .merchant()
        .post_to_wallet_session(&session.qr_payload, &late.order.id)
        .await
        .is_err());
    // A refresh replaces the expired session with a live one.
    let fresh = wallet
        .refresh_payment_session(session.clone(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_ne!(fresh.session_id, session.session_id);
    assert_eq!(
        wallet
            .refresh_payment_session(fresh.clone(), Duration::from_secs(60))
            .await
            .unwrap(),
        fresh
    );
    assert_eq!(env.usd(&wallet).await.unwrap(), "20.00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanning_classifies_every_payload() {
    let env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("gina", None).await.unwrap();
    let session = wallet.create_payment_session().await.unwrap();
    let cases = [
        (session.qr_payload.clone(), "wallet_session"),
        (
            "opencharge:500?amount=5.00&currency=USD".to_string(),
            "ocid_uri",
        ),
        (
            "https://other.example/opencharge/checkout/cs_4eaba1ee9d51f4ab044e3c93386ceb68"
                .to_string(),
            "checkout",
        ),
    ];
    for (text, kind) in cases {
        match wallet.scan(text.clone()).await.unwrap() {
            ScanResult::Unsupported { kind: got, reason } => {
                assert_eq!(got, kind, "{text}");
                assert!(!reason.is_empty());
            }
            other => panic!("{text}: expected unsupported, got {other:?}"),
        }
    }
    // A person's receive code is asked of the gateway (tests/p2p_wallets.rs pays one): one
    // that names an OCID none of this gateway's users holds is its typed refusal.
    let err = wallet
        .scan(r#"{"type":"ocid_transfer","ocid":9001,"gateway":200}"#.to_string())
        .await
        .unwrap_err();
    assert_eq!(
        err.gateway_code(),
        Some(GatewayErrorCode::AccountNotFound),
        "{err:?}"
    );
    for garbage in ["", "hello", "{\"ocid\":1}", &"x".repeat(5000)] {
        let err = wallet.scan(garbage.to_string()).await.unwrap_err();
        assert!(
            matches!(err, WalletError::InvalidInput { .. }),
            "{garbage:?}: {err:?}"
        );
    }
    let err = wallet
        .open_checkout("https://evil.example/checkout/cs_00".into())
        .await
        .unwrap_err();
    assert!(matches!(err, WalletError::InvalidInput { .. }));
}
