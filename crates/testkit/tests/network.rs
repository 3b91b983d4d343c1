//! The kit's own checks: a network with two merchants and three funded wallets pays the coffee
//! order end to end, the recorder hears the prompt, and the gateway restarts in place.

use opencharge_testkit::{
    coffee_order, Heard, Network, Recorder, COFFEE_ORDER_TOTAL, GATEWAY_OCID, MERCHANT_OCID, WAIT,
};
use opencharge_wallet::{PaymentStatus, ScanResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_merchants_three_wallets_pay_and_the_gateway_restarts() {
    let mut network = Network::builder()
        .merchants(2)
        .wallets(3)
        .fund("50.00 USD")
        .start()
        .await
        .unwrap();
    assert_eq!(network.wallets.len(), 3);
    assert_eq!(network.merchants().len(), 2);
    assert_eq!(network.merchants()[1].ocid(), MERCHANT_OCID + 1);
    assert_eq!(network.gateway().unwrap().ocid(), GATEWAY_OCID);
    for w in &network.wallets {
        assert_eq!(network.usd(&w.wallet).await.unwrap(), "50.00");
    }
    let accounts: std::collections::HashSet<_> =
        network.wallets.iter().map(|w| &w.account_id).collect();
    assert_eq!(accounts.len(), 3, "each wallet has its own account");

    // The second merchant's coffee order, scanned and paid by the third wallet.
    let wallet = network.wallets[2].wallet.clone();
    let (recorder, mut inbox) = Recorder::new();
    let stream = wallet.start_events(recorder).unwrap();
    inbox.connected().await;
    let second = &network.merchants()[1];
    let order = second.create_order(coffee_order("kit-1")).unwrap();
    assert_eq!(order.order.amount.to_string(), COFFEE_ORDER_TOTAL);
    let prompt = match wallet
        .scan(second.order_qr(&order.order.id).unwrap())
        .await
        .unwrap()
    {
        ScanResult::Prompt { prompt } => prompt,
        other => panic!("expected a prompt, got {other:?}"),
    };
    assert_eq!(prompt.merchant_ocid, (MERCHANT_OCID + 1) as i64);
    let receipt = wallet.confirm(prompt.prompt_id.clone()).await.unwrap();
    assert_eq!(receipt.status, PaymentStatus::Paid);
    assert!(receipt.proof_verified);
    let paid = second.wait_paid(&order.order.id, WAIT).await.unwrap();
    assert_eq!(paid.txid, receipt.txid);
    assert_eq!(network.usd(&wallet).await.unwrap(), "41.75");
    inbox
        .wait_for("paid status", |h| match h {
            Heard::Status(update) if update.status == PaymentStatus::Paid => Some(()),
            _ => None,
        })
        .await;
    stream.stop_and_wait().await;

    // A wallet opened later, a second device for its account, and a restart in place.
    let (late, account) = network.wallet("late", Some("5")).await.unwrap();
    assert_eq!(network.usd(&late).await.unwrap(), "5.00");
    assert_eq!(network.enrollment(&account).await.unwrap().len(), 32);
    let addr = network.gateway_addr();
    network.restart_gateway().await.unwrap();
    assert_eq!(network.gateway_addr(), addr);
    assert_eq!(network.usd(&wallet).await.unwrap(), "41.75");
    let (_, prompt) = network.scan_order(&late).await.unwrap();
    assert_eq!(prompt.total.amount, COFFEE_ORDER_TOTAL);
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_data_dir_keeps_the_keys_across_starts() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        Network::builder()
            .data_dir(dir.path())
            .persistent_keys()
            .merchant_config(|_, config| config.name = "Kit Coffee".into())
            .start()
    };
    let first = start().await.unwrap();
    let keys = (
        first.gateway().unwrap().public_key_hex().to_string(),
        first.merchant().public_key_hex(),
    );
    assert_eq!(first.merchant().metadata()["name"], "Kit Coffee");
    assert!(first.gateway_db().starts_with(dir.path()));
    first.stop().await;
    let second = start().await.unwrap();
    assert_eq!(
        (
            second.gateway().unwrap().public_key_hex().to_string(),
            second.merchant().public_key_hex()
        ),
        keys
    );
    second.stop().await;
    assert!(dir.path().join("merchant").join("merchant.key").exists());
}
