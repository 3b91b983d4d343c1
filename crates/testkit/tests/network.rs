//! The kit's own checks: a network with two merchants and three funded wallets pays the coffee
//! order end to end, the recorder hears the prompt, and the gateway restarts in place; two
//! gateway instances on one PostgreSQL database pay through their round-robin front (both
//! instances serving) and restart; several instances on SQLite are refused.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_database_pay_through_the_front_and_restart() {
    let database = opencharge_testkit::pg::TestDatabase::create()
        .await
        .unwrap();
    let mut network = Network::builder()
        .postgres(database.url())
        .gateway_instances(2)
        .wallets(2)
        .fund("20.00 USD")
        .start()
        .await
        .unwrap();
    assert_eq!(network.gateways().len(), 2);
    let endpoints = network.gateway_endpoints();
    assert_eq!(endpoints.len(), 2);
    assert_ne!(endpoints[0], endpoints[1]);
    let front = network
        .front()
        .expect("several instances stand behind a front");
    assert_eq!(network.endpoint(), format!("{}/opencharge", front.url()));
    for gateway in network.gateways() {
        assert_eq!(
            gateway.endpoint(),
            network.endpoint(),
            "one published endpoint"
        );
        assert_eq!(
            gateway.public_key_hex(),
            network.gateway().unwrap().public_key_hex(),
            "one shared key"
        );
    }

    // Both wallets pay through the front: their requests (and the merchant's) reach both
    // instances, the prompts cross between them.
    for test_wallet in &network.wallets {
        let wallet = test_wallet.wallet.clone();
        let (recorder, mut inbox) = Recorder::new();
        let stream = wallet.start_events(recorder).unwrap();
        inbox.connected().await;
        let (order, prompt) = network.scan_order(&wallet).await.unwrap();
        let receipt = wallet.confirm(prompt.prompt_id.clone()).await.unwrap();
        assert_eq!(receipt.status, PaymentStatus::Paid);
        assert!(receipt.proof_verified);
        let paid = network
            .merchant()
            .wait_paid(&order.order.id, WAIT)
            .await
            .unwrap();
        assert_eq!(paid.txid, receipt.txid);
        assert_eq!(network.usd(&wallet).await.unwrap(), "11.75");
        stream.stop_and_wait().await;
    }
    let counts = front.forwarded_per_upstream();
    assert_eq!(counts.len(), 2);
    assert!(
        counts.iter().all(|(_, n)| *n > 0),
        "every instance got requests: {counts:?}"
    );

    // The database the instances share, seen through a second handle.
    let store = network.gateway_store().await.unwrap();
    let account = &network.wallets[0].account_id;
    assert!(store.account(account).await.unwrap().is_some());

    // A restart brings every instance back on its port, on the same database.
    network.restart_gateway().await.unwrap();
    assert_eq!(network.gateway_endpoints(), endpoints);
    assert_eq!(
        network.usd(&network.wallets[1].wallet).await.unwrap(),
        "11.75"
    );
    network.stop().await;
}

#[tokio::test]
async fn several_instances_on_sqlite_are_refused_with_what_to_do() {
    let error = match Network::builder()
        .sqlite()
        .gateway_instances(2)
        .start()
        .await
    {
        Ok(_) => panic!("two instances started on one SQLite file"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("2 gateway instances need PostgreSQL"),
        "{error}"
    );
    assert!(error.contains("postgres://"), "{error}");
    let error = match Network::builder().gateway_instances(0).start().await {
        Ok(_) => panic!("a network without a gateway started"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("at least one"), "{error}");
}
