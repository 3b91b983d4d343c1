//! Honest outcomes of `confirm` and `decline`: a loopback proxy (`DropProxy`) lets the gateway
//! act and then drops its answer, so the wallet gets `OutcomePending`, resolves it by itself,
//! tells the listener once, stores the receipt, and never pays twice; a gateway that cannot be
//! reached at all is `Network` ("not sent") and nothing is debited.

use std::sync::Arc;

use opencharge_testkit::{
    DropProxy, DropRule, Heard, Inbox, Network, Recorder, MERCHANT_OCID, WAIT,
};
use opencharge_wallet::{
    ConnectionState, EventStream, HistoryQuery, PaymentStatus, Receipt, Wallet, WalletError,
};

/// A loopback network whose gateway is published behind a drop proxy (its endpoint is the
/// proxy's, so every wallet and merchant call goes through it).
async fn network_behind_proxy() -> (Network, DropProxy) {
    let proxy = DropProxy::start().await.unwrap();
    let public_url = proxy.url();
    let env = Network::builder()
        .gateway_config(move |c| c.public_url = Some(public_url))
        .start()
        .await
        .unwrap();
    proxy.set_upstream(env.gateway_addr());
    (env, proxy)
}

/// A wallet funded with 30.00 USD with its event stream running into a recorder.
async fn wallet_with_stream(env: &Network, name: &str) -> (Arc<Wallet>, Inbox, Arc<EventStream>) {
    let (wallet, _) = env.wallet(name, Some("30.00")).await.unwrap();
    let (recorder, mut inbox) = Recorder::new();
    let stream = wallet.start_events(recorder).unwrap();
    inbox.connected().await;
    (wallet, inbox, stream)
}

/// The merchant's ledger balance at the gateway, in minor units.
async fn merchant_minor(env: &Network) -> i64 {
    env.gateway()
        .expect("the gateway runs")
        .state
        .store
        .balances(&format!("ocid:{MERCHANT_OCID}"))
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.currency == "USD")
        .map(|b| b.minor)
        .unwrap_or(0)
}

/// Waits until the local history holds the receipt of `id` with a final status.
async fn resolved_receipt(wallet: &Wallet, id: &str) -> Receipt {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = wallet
            .history(HistoryQuery {
                limit: 50,
                before: None,
            })
            .await
            .unwrap();
        if let Some(receipt) = page.receipts.into_iter().find(|r| r.session_id == id) {
            if receipt.status != PaymentStatus::Pending {
                return receipt;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lost answer of {id} was not resolved"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// How many times the listener was told `status` for `id`, once a later decision's status
/// (`marker`) arrived: events come in order, so the stream has handled `id`'s by then.
async fn told(inbox: &mut Inbox, id: &str, status: PaymentStatus, marker: &str) -> usize {
    inbox
        .wait_for("the marker's status", |h| match h {
            Heard::Status(u) if u.session_id == marker => Some(()),
            _ => None,
        })
        .await;
    inbox
        .seen
        .iter()
        .filter(|h| matches!(h, Heard::Status(u) if u.session_id == id && u.status == status))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_confirm_answer_is_pending_then_paid_once() {
    let (env, proxy) = network_behind_proxy().await;
    let (wallet, mut inbox, _stream) = wallet_with_stream(&env, "olga").await;
    let wallet = &wallet;
    let merchant_before = merchant_minor(&env).await;
    let (order, prompt) = env.scan_order(wallet).await.unwrap();
    let id = prompt.prompt_id.clone();

    proxy.drop_answers(DropRule::new("POST", "/opencharge/app/sessions/*/confirm"));
    let err = wallet.confirm(id.clone()).await.unwrap_err();
    match &err {
        WalletError::OutcomePending { prompt_id, reason } => {
            assert_eq!(prompt_id, &id);
            assert!(reason.contains("will not be sent twice"), "{reason}");
        }
        other => panic!("expected OutcomePending, got {other:?}"),
    }
    assert!(proxy.dropped() >= 1, "the proxy dropped the answer");
    // The gateway did debit, once, although the wallet never heard.
    let paid = env
        .merchant()
        .wait_paid(&order.order.id, WAIT)
        .await
        .unwrap();

    // The core resolves it by itself: the listener hears "paid"…
    let update = inbox
        .wait_for("paid", |h| match h {
            Heard::Status(u) if u.session_id == id && u.status == PaymentStatus::Paid => {
                Some(u.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(update.txid, paid.txid);
    // …and the receipt, with its verified proof, is stored.
    let receipt = resolved_receipt(wallet, &id).await;
    assert_eq!(receipt.status, PaymentStatus::Paid);
    assert_eq!(receipt.txid, paid.txid);
    assert!(receipt.proof_verified, "{receipt:?}");
    let fetched = wallet.payment(id.clone()).await.unwrap();
    assert_eq!(fetched.status, PaymentStatus::Paid);
    assert_eq!(fetched.txid, paid.txid);

    // Confirming again returns the same receipt; nothing is sent, nothing is paid again.
    let again = wallet.confirm(id.clone()).await.unwrap();
    assert_eq!(again.txid, paid.txid);
    assert_eq!(
        env.usd(wallet).await.unwrap(),
        "21.75",
        "debited exactly once"
    );
    assert_eq!(merchant_minor(&env).await - merchant_before, 825);
    assert_eq!(env.merchant().proofs().len(), 1);

    // The listener was told "paid" exactly once (the stream's event and the core's own
    // resolution are one): checked after a later payment's status has arrived.
    proxy.pass_all();
    let (_, marker) = env.scan_order(wallet).await.unwrap();
    wallet
        .decline(marker.prompt_id.clone(), None)
        .await
        .unwrap();
    assert_eq!(
        told(&mut inbox, &id, PaymentStatus::Paid, &marker.prompt_id).await,
        1,
        "{:?}",
        inbox.seen
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_decline_answer_is_pending_then_declined_once() {
    let (env, proxy) = network_behind_proxy().await;
    let (wallet, mut inbox, _stream) = wallet_with_stream(&env, "pete").await;
    let wallet = &wallet;
    let (_, prompt) = env.scan_order(wallet).await.unwrap();
    let id = prompt.prompt_id.clone();

    proxy.drop_answers(DropRule::new("POST", "/opencharge/app/sessions/*/decline"));
    let err = wallet
        .decline(id.clone(), Some("not my order".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, WalletError::OutcomePending { prompt_id, .. } if prompt_id == &id),
        "{err:?}"
    );
    assert!(proxy.dropped() >= 1);

    inbox
        .wait_for("declined", |h| match h {
            Heard::Status(u) if u.session_id == id && u.status == PaymentStatus::Declined => {
                Some(())
            }
            _ => None,
        })
        .await;
    let receipt = resolved_receipt(wallet, &id).await;
    assert_eq!(receipt.status, PaymentStatus::Declined);
    assert_eq!(receipt.decline_reason.as_deref(), Some("not my order"));
    let again = wallet.decline(id.clone(), None).await.unwrap();
    assert_eq!(again.status, PaymentStatus::Declined);
    // A declined prompt can never be paid.
    assert!(wallet.confirm(id.clone()).await.is_err());
    assert_eq!(env.usd(wallet).await.unwrap(), "30.00", "nothing debited");
    assert!(env.merchant().proofs().is_empty());

    proxy.pass_all();
    let (_, marker) = env.scan_order(wallet).await.unwrap();
    wallet
        .decline(marker.prompt_id.clone(), None)
        .await
        .unwrap();
    assert_eq!(
        told(&mut inbox, &id, PaymentStatus::Declined, &marker.prompt_id).await,
        1,
        "{:?}",
        inbox.seen
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_that_cannot_reach_the_gateway_is_not_sent_and_debits_nothing() {
    let mut env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("quin", Some("30.00")).await.unwrap();
    let (_, prompt) = env.scan_order(&wallet).await.unwrap();
    env.stop_gateway().await;
    for _ in 0..2 {
        match wallet.confirm(prompt.prompt_id.clone()).await {
            Err(WalletError::Network { reason }) => {
                assert!(reason.contains("was not sent"), "{reason}");
                assert!(reason.contains("saved"), "{reason}");
            }
            other => panic!("expected Network (not sent), got {other:?}"),
        }
    }
    env.restart_gateway().await.unwrap();
    // Nothing reached the gateway: nothing was debited and the merchant was not paid.
    assert_eq!(env.usd(&wallet).await.unwrap(), "30.00");
    assert!(env.merchant().proofs().is_empty());
    assert_eq!(merchant_minor(&env).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drop_proxy_forwards_and_drops_only_matching_answers() {
    let env = Network::start().await.unwrap();
    let proxy = DropProxy::to(env.gateway_addr()).await.unwrap();
    let http = reqwest::Client::new();
    let path = "/opencharge/metadata.json";
    let direct = http
        .get(format!("http://{}{path}", env.gateway_addr()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let url = format!("{}{path}", proxy.url());
    let through = http.get(&url).send().await.unwrap();
    assert_eq!(through.status(), 200);
    assert_eq!(through.bytes().await.unwrap(), direct);

    proxy.drop_answers(DropRule::new("GET", "/*/metadata.json").times(1));
    proxy.drop_answers(DropRule::new("POST", "/*/metadata.json"));
    let lost = http.get(&url).send().await;
    assert!(lost.is_err(), "the answer was dropped: {lost:?}");
    assert_eq!(proxy.dropped(), 1);
    // The GET rule was for one answer only; the POST rule never matches a GET.
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(proxy.dropped(), 1);
    assert_eq!(proxy.forwarded(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_the_core_told_first_is_not_told_again_by_the_stream() {
    let (env, proxy) = network_behind_proxy().await;
    let (wallet, _) = env.wallet("rita", Some("30.00")).await.unwrap();
    let (_, prompt) = env.scan_order(&wallet).await.unwrap();
    let id = prompt.prompt_id.clone();
    // The stream connects to nothing (its answer never comes), so the core's own resolution
    // is the first to tell the listener.
    proxy.drop_answers(DropRule::new("GET", "/opencharge/app/events"));
    proxy.drop_answers(DropRule::new("POST", "/opencharge/app/sessions/*/confirm"));
    let (recorder, mut inbox) = Recorder::new();
    let stream = wallet.start_events(recorder.clone()).unwrap();
    assert!(matches!(
        wallet.confirm(id.clone()).await,
        Err(WalletError::OutcomePending { .. })
    ));
    inbox
        .wait_for("paid, from the core", |h| match h {
            Heard::Status(u) if u.session_id == id && u.status == PaymentStatus::Paid => Some(()),
            _ => None,
        })
        .await;
    assert!(
        !inbox
            .seen
            .iter()
            .any(|h| matches!(h, Heard::Connection(ConnectionState::Connected))),
        "the stream never connected: {:?}",
        inbox.seen
    );
    assert_eq!(
        resolved_receipt(&wallet, &id).await.status,
        PaymentStatus::Paid
    );

    // A new stream replays the account's events, the gateway's "paid" among them: not told
    // again.
    stream.stop_and_wait().await;
    proxy.pass_all();
    let _stream = wallet.start_events(recorder).unwrap();
    inbox.connected().await;
    let (_, marker) = env.scan_order(&wallet).await.unwrap();
    wallet
        .decline(marker.prompt_id.clone(), None)
        .await
        .unwrap();
    assert_eq!(
        told(&mut inbox, &id, PaymentStatus::Paid, &marker.prompt_id).await,
        1,
        "{:?}",
        inbox.seen
    );
    assert_eq!(env.usd(&wallet).await.unwrap(), "21.75");
}
