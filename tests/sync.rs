//! Catching up without a live stream: push wake-ups, prompt fetches, history refresh and single
//! receipts from the gateway, and a cancelled call that still completes consistently.

use std::time::Duration;

use opencharge_testkit::{Network, WAIT};
use opencharge_wallet::{GatewayErrorCode, HistoryQuery, PaymentStatus, PushEvent, WalletError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_push_fetches_the_named_prompt_once() {
    let env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("push", Some("20.00")).await.unwrap();
    let session = wallet.create_payment_session().await.unwrap();
    let order = env.order().unwrap();
    env.merchant()
        .post_to_wallet_session(&session.qr_payload, &order.order.id)
        .await
        .unwrap();

    let payload = format!(
        r#"{{"type":"payment_request","sessionId":"{}","eventId":"1"}}"#,
        session.session_id
    );
    match wallet.handle_push(payload.clone()).await.unwrap() {
        PushEvent::PaymentRequest { prompt, .. } => {
            assert_eq!(prompt.prompt_id, session.session_id)
        }
        other => panic!("expected the prompt, got {other:?}"),
    }
    assert_eq!(
        wallet.handle_push(payload).await.unwrap(),
        PushEvent::NothingNew,
        "each prompt is returned once"
    );
    assert_eq!(wallet.pending_prompts().await.unwrap().len(), 1);
    let err = wallet.handle_push("x".repeat(5000)).await.unwrap_err();
    assert!(matches!(err, WalletError::InvalidInput { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_refreshes_from_the_gateway_and_pages_locally() {
    let env = Network::start().await.unwrap();
    let (payer, account) = env.wallet("payer", Some("100.00")).await.unwrap();
    let mut paid = Vec::new();
    for _ in 0..3 {
        let (_, prompt) = env.scan_order(&payer).await.unwrap();
        paid.push(payer.confirm(prompt.prompt_id).await.unwrap());
    }
    // A second device of the same account starts with an empty history and pulls it.
    let second = opencharge_wallet::Wallet::open(env.wallet_config("second"), None)
        .await
        .unwrap();
    let code = env.enrollment(&account).await.unwrap();
    second.register_device(code).await.unwrap();
    assert!(second
        .history(HistoryQuery {
            limit: 10,
            before: None
        })
        .await
        .unwrap()
        .receipts
        .is_empty());
    assert_eq!(second.refresh_history(5).await.unwrap(), 3);
    assert_eq!(
        second.refresh_history(5).await.unwrap(),
        0,
        "nothing changed"
    );
    let first_page = second
        .history(HistoryQuery {
            limit: 2,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(first_page.receipts.len(), 2);
    let rest = second
        .history(HistoryQuery {
            limit: 2,
            before: first_page.next_cursor.clone(),
        })
        .await
        .unwrap();
    assert_eq!(rest.receipts.len(), 1);
    assert_eq!(rest.next_cursor, None);
    let mut all: Vec<_> = first_page
        .receipts
        .into_iter()
        .chain(rest.receipts)
        .collect();
    assert!(all
        .iter()
        .all(|r| r.status == PaymentStatus::Paid && r.proof_verified));
    all.sort_by(|a, b| a.txid.cmp(&b.txid));
    let mut expected: Vec<_> = paid.iter().map(|r| r.txid.clone()).collect();
    expected.sort();
    assert_eq!(
        all.iter().map(|r| r.txid.clone()).collect::<Vec<_>>(),
        expected
    );

    let one = second.payment(paid[0].session_id.clone()).await.unwrap();
    assert_eq!(one.txid, paid[0].txid);
    assert!(one.proof_verified);
    assert_eq!(
        second
            .payment("nope".into())
            .await
            .unwrap_err()
            .gateway_code(),
        Some(GatewayErrorCode::SessionNotFound)
    );
    assert!(matches!(
        second
            .history(HistoryQuery {
                limit: 0,
                before: None
            })
            .await,
        Err(WalletError::InvalidInput { .. })
    ));
    assert!(matches!(
        second
            .history(HistoryQuery {
                limit: 5,
                before: Some("garbage".into())
            })
            .await,
        Err(WalletError::InvalidInput { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_confirm_still_completes_once_and_the_wallet_keeps_working() {
    let env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("cancel", Some("20.00")).await.unwrap();
    let (order, prompt) = env.scan_order(&wallet).await.unwrap();
    // The caller gives up almost at once (a cancelled coroutine or Swift task).
    let _ = tokio::time::timeout(
        Duration::from_millis(1),
        wallet.confirm(prompt.prompt_id.clone()),
    )
    .await;
    let paid = env
        .merchant()
        .wait_paid(&order.order.id, WAIT)
        .await
        .unwrap();
    let receipt = wallet.confirm(prompt.prompt_id).await.unwrap();
    assert_eq!(receipt.txid, paid.txid);
    assert_eq!(env.usd(&wallet).await.unwrap(), "11.75");
}
