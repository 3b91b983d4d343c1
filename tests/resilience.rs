//! What must survive failures: the event stream dropping mid-flow, the gateway restarting
//! during a confirm, a crash with a decision in the outbox, concurrent confirms, listeners
//! that throw or panic, and reopening the wallet.

use opencharge_testkit::{Heard, Network, Recorder, WAIT};
use opencharge_wallet::{ConnectionState, PaymentStatus, Wallet, WalletError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_prompt_is_lost_when_the_stream_drops_mid_flow() {
    let mut env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("alice", Some("50.00")).await.unwrap();
    let (listener, mut inbox) = Recorder::new();
    let _stream = wallet.start_events(listener).unwrap();
    inbox.connected().await;
    let session = wallet.create_payment_session().await.unwrap();

    // The gateway goes away: the core notices and schedules a reconnect.
    env.stop_gateway().await;
    inbox
        .wait_for("disconnected", |h| {
            matches!(h, Heard::Connection(ConnectionState::Disconnected { .. })).then_some(())
        })
        .await;
    // It comes back; the merchant posts while the wallet is still reconnecting or just after.
    env.restart_gateway().await.unwrap();
    let order = env.order().unwrap();
    env.merchant()
        .post_to_wallet_session(&session.qr_payload, &order.order.id)
        .await
        .unwrap();
    let prompt = inbox.prompt(&session.session_id).await;
    assert_eq!(prompt.order_id, order.order.id);
    let announced = inbox
        .drain()
        .iter()
        .filter(|h| matches!(h, Heard::Prompt(_)))
        .count();
    assert_eq!(announced, 1, "each prompt is announced once");
    let receipt = wallet.confirm(prompt.prompt_id).await.unwrap();
    assert_eq!(receipt.status, PaymentStatus::Paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_missed_while_stopped_are_delivered_on_resume() {
    let env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("bea", Some("50.00")).await.unwrap();
    let (listener, mut inbox) = Recorder::new();
    let stream = wallet.start_events(listener).unwrap();
    inbox.connected().await;
    let first = wallet.create_payment_session().await.unwrap();
    let order = env.order().unwrap();
    env.merchant()
        .post_to_wallet_session(&first.qr_payload, &order.order.id)
        .await
        .unwrap();
    inbox.prompt(&first.session_id).await;
    stream.stop_and_wait().await;

    // While no stream runs: a second order arrives and the first is paid from elsewhere.
    let second = wallet.create_payment_session().await.unwrap();
    let order2 = env.order().unwrap();
    env.merchant()
        .post_to_wallet_session(&second.qr_payload, &order2.order.id)
        .await
        .unwrap();
    wallet.confirm(first.session_id.clone()).await.unwrap();

    let (listener, mut inbox) = Recorder::new();
    let _stream = wallet.start_events(listener).unwrap();
    inbox.prompt(&second.session_id).await;
    let status = inbox
        .wait_for("paid status", |h| match h {
            Heard::Status(u) if u.session_id == first.session_id => Some(u.status),
            _ => None,
        })
        .await;
    assert_eq!(status, PaymentStatus::Paid);
    let prompts: Vec<_> = inbox
        .drain()
        .iter()
        .filter(|h| matches!(h, Heard::Prompt(_)))
        .cloned()
        .collect();
    assert_eq!(
        prompts.len(),
        1,
        "the first prompt is not announced again: {prompts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_during_a_gateway_restart_completes_exactly_once() {
    let mut env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("carl", Some("30.00")).await.unwrap();
    let (order, prompt) = env.scan_order(&wallet).await.unwrap();
    env.stop_gateway().await;
    let err = wallet.confirm(prompt.prompt_id.clone()).await.unwrap_err();
    assert!(matches!(err, WalletError::Network { .. }), "{err:?}");
    assert!(
        wallet.pending_prompts().await.unwrap().is_empty(),
        "the decision is on its way, not pending"
    );
    // A second tap while offline reuses the same decision.
    assert!(matches!(
        wallet.confirm(prompt.prompt_id.clone()).await,
        Err(WalletError::Network { .. })
    ));

    env.restart_gateway().await.unwrap();
    assert_eq!(wallet.sync_outbox().await.unwrap(), 1);
    assert_eq!(
        wallet.sync_outbox().await.unwrap(),
        0,
        "the outbox is empty once acknowledged"
    );
    let paid = env
        .merchant()
        .wait_paid(&order.order.id, WAIT)
        .await
        .unwrap();
    assert_eq!(
        env.usd(&wallet).await.unwrap(),
        "21.75",
        "debited exactly once"
    );
    let receipt = wallet.confirm(prompt.prompt_id.clone()).await.unwrap();
    assert_eq!(receipt.txid, paid.txid);
    assert_eq!(env.merchant().proofs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_left_by_a_crash_is_sent_when_the_wallet_reopens() {
    let mut env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("dina", Some("30.00")).await.unwrap();
    let (order, prompt) = env.scan_order(&wallet).await.unwrap();
    env.stop_gateway().await;
    assert!(wallet.confirm(prompt.prompt_id.clone()).await.is_err());
    // The app is killed with the decision in the outbox: its last reference goes, which
    // closes the wallet (stream stopped, database closed).
    assert_eq!(std::sync::Arc::strong_count(&wallet), 1);
    drop(wallet);

    env.restart_gateway().await.unwrap();
    let reopened = Wallet::open(env.wallet_config("dina"), None).await.unwrap();
    // Opening drains the outbox in the background.
    let paid = env
        .merchant()
        .wait_paid(&order.order.id, WAIT)
        .await
        .unwrap();
    assert!(paid.txid.is_some());
    assert_eq!(env.usd(&reopened).await.unwrap(), "21.75");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_confirms_pay_once() {
    let env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("eve", Some("30.00")).await.unwrap();
    let (order, prompt) = env.scan_order(&wallet).await.unwrap();
    let (a, b) = tokio::join!(
        wallet.confirm(prompt.prompt_id.clone()),
        wallet.confirm(prompt.prompt_id.clone())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.txid, b.txid);
    assert_eq!(env.usd(&wallet).await.unwrap(), "21.75");
    env.merchant()
        .wait_paid(&order.order.id, WAIT)
        .await
        .unwrap();
    assert_eq!(env.merchant().proofs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_throws_or_panics_does_not_stop_the_stream() {
    let env = Network::start().await.unwrap();
    for (fail, panic) in [(true, false), (false, true)] {
        let name = if fail { "fails" } else { "panics" };
        let (wallet, _) = env.wallet(name, Some("10.00")).await.unwrap();
        let (listener, mut inbox) = Recorder::with(fail, panic);
        let stream = wallet.start_events(listener).unwrap();
        inbox.connected().await;
        for _ in 0..2 {
            let session = wallet.create_payment_session().await.unwrap();
            let order = env.order().unwrap();
            env.merchant()
                .post_to_wallet_session(&session.qr_payload, &order.order.id)
                .await
                .unwrap();
            inbox.prompt(&session.session_id).await;
        }
        assert!(stream.is_running());
        assert_eq!(wallet.pending_prompts().await.unwrap().len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_wallets_in_one_process_are_independent() {
    let env = Network::start().await.unwrap();
    let (one, _) = env.wallet("one", Some("10.00")).await.unwrap();
    let (two, _) = env.wallet("two", Some("20.00")).await.unwrap();
    assert_ne!(one.device_id().unwrap(), two.device_id().unwrap());
    let (_, prompt) = env.scan_order(&one).await.unwrap();
    // The other account cannot pay (or even see) it.
    assert!(two.confirm(prompt.prompt_id.clone()).await.is_err());
    one.confirm(prompt.prompt_id).await.unwrap();
    assert_eq!(env.usd(&one).await.unwrap(), "1.75");
    assert_eq!(env.usd(&two).await.unwrap(), "20.00");
}
