//! Contract cases of paying a person: user OCIDs allocated once per account (also under
//! concurrent first calls across connections) until the block is used up, and the
//! recipient's `received` receipt and event written in the transaction that credits the money,
//! never without it and never twice.

use std::sync::Arc;

use opencharge_gateway::store::{
    Flow, NewEvent, NewReceipt, PlanOutcome, Session, SessionStatus, SettlementPlan, Store,
    TransferOnce, TransferOutcome, UserOcidAllocation, UserOcidRange,
};

use super::{order, session, setup, transfer, usd, Backend, NOW};

const BLOCK: UserOcidRange = UserOcidRange {
    first: 200_001,
    last: 200_003,
};

pub async fn user_ocids_are_given_once_per_account_until_the_block_is_used_up<B: Backend>() {
    let (_guard, store) = B::open().await;
    let mut accounts = Vec::new();
    for name in ["Ann", "Bob", "Cid", "Dee"] {
        accounts.push(store.create_account("user", name, NOW).await.unwrap().id);
    }
    let ann = store
        .allocate_user_ocid(&accounts[0], BLOCK, NOW)
        .await
        .unwrap();
    assert_eq!(ann, UserOcidAllocation::Ocid(200_001));
    assert_eq!(
        store
            .allocate_user_ocid(&accounts[0], BLOCK, NOW)
            .await
            .unwrap(),
        ann
    );
    assert_eq!(
        store
            .allocate_user_ocid(&accounts[1], BLOCK, NOW)
            .await
            .unwrap(),
        UserOcidAllocation::Ocid(200_002)
    );
    assert_eq!(
        store
            .allocate_user_ocid(&accounts[2], BLOCK, NOW)
            .await
            .unwrap(),
        UserOcidAllocation::Ocid(200_003)
    );
    assert_eq!(
        store
            .allocate_user_ocid(&accounts[3], BLOCK, NOW)
            .await
            .unwrap(),
        UserOcidAllocation::Exhausted
    );
    assert_eq!(store.account_user_ocid(&accounts[3]).await.unwrap(), None);
    // An account that has one keeps it even when asked with a used-up block.
    assert_eq!(
        store
            .allocate_user_ocid(&accounts[1], BLOCK, NOW)
            .await
            .unwrap(),
        UserOcidAllocation::Ocid(200_002)
    );
    assert_eq!(
        store.user_ocid_account(200_002).await.unwrap().as_deref(),
        Some(accounts[1].as_str())
    );
    assert_eq!(
        store.account_user_ocid(&accounts[2]).await.unwrap(),
        Some(200_003)
    );
    assert_eq!(store.user_ocid_account(200_004).await.unwrap(), None);
    assert_eq!(store.user_ocid_account(u64::MAX).await.unwrap(), None);
    assert_eq!(
        B::scalar(&store, "SELECT count(*) FROM user_ocids").await,
        3
    );
    // A larger block continues above the OCIDs given so far.
    let larger = UserOcidRange {
        first: 200_001,
        last: 200_010,
    };
    assert_eq!(
        store
            .allocate_user_ocid(&accounts[3], larger, NOW)
            .await
            .unwrap(),
        UserOcidAllocation::Ocid(200_004)
    );
}

pub async fn concurrent_first_user_ocid_calls_agree<B: Backend>() {
    let (guard, a) = B::open().await;
    let a = Arc::new(a);
    let b = Arc::new(B::open_again(&guard).await);
    let range = UserOcidRange {
        first: 300_001,
        last: 300_999,
    };
    let one = a.create_account("user", "One", 0).await.unwrap().id;
    let mut others = Vec::new();
    for i in 0..8 {
        others.push(
            a.create_account("user", &format!("U{i}"), 0)
                .await
                .unwrap()
                .id,
        );
    }
    let mut tasks = Vec::new();
    for i in 0..16usize {
        let store = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        // Half ask for the same account, half each for their own.
        let account = if i < 8 {
            one.clone()
        } else {
            others[i - 8].clone()
        };
        tasks.push(tokio::spawn(async move {
            (
                i,
                store
                    .allocate_user_ocid(&account, range, NOW)
                    .await
                    .unwrap(),
            )
        }));
    }
    let mut same = std::collections::BTreeSet::new();
    let mut distinct = std::collections::BTreeSet::new();
    for t in tasks {
        let (i, UserOcidAllocation::Ocid(ocid)) = t.await.unwrap() else {
            panic!("the block is large enough")
        };
        assert!(range.contains(ocid), "{ocid}");
        if i < 8 {
            same.insert(ocid);
        } else {
            assert!(distinct.insert(ocid), "{ocid} given twice");
        }
    }
    assert_eq!(same.len(), 1, "one account got {same:?}");
    assert!(distinct.is_disjoint(&same));
    assert_eq!(B::scalar(&*a, "SELECT count(*) FROM user_ocids").await, 9);
}

/// The receipt `id` of `account` for 3.00 USD paid under `txid`, from OCID 200_001.
fn receipt(id: &str, account: &str, txid: &str) -> NewReceipt {
    let mut s = session(id, Flow::Received, SessionStatus::Paid, Some(account));
    s.order = Some(order(200_001, 300));
    s.txid = Some(txid.into());
    s.paid_at = Some(NOW);
    s.proof_json = Some(format!(
        r#"{{"proof":{{"txid":"{txid}"}},"signature":"s"}}"#
    ));
    NewReceipt {
        session: s,
        event: NewEvent {
            account_id: account.into(),
            kind: "payment_status".into(),
            payload_json: format!(r#"{{"sessionId":"{id}"}}"#),
            now: NOW,
        },
    }
}

/// The settlement plan of transfer session `sender_session` paying `minor` to `to`.
fn plan(sender_session: &Session, payer: &str, to: &str, minor: i64, txid: &str) -> SettlementPlan {
    let mut paid = sender_session.clone();
    paid.status = SessionStatus::Paid;
    paid.txid = Some(txid.into());
    paid.paid_at = Some(NOW);
    paid.proof_json = Some("{}".into());
    SettlementPlan {
        paid,
        payer: payer.into(),
        consent_json: "{}".into(),
        reference: txid.into(),
        transfers: vec![transfer(payer, to, minor)],
        webhook: None,
        event: NewEvent {
            account_id: payer.into(),
            kind: "payment_status".into(),
            payload_json: "{}".into(),
            now: NOW,
        },
        idempotency_key: format!("key-{txid}"),
        now: NOW,
    }
}

pub async fn a_receipt_is_written_with_its_settlement_or_not_at_all<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (alice, _) = setup(&store, 1000).await;
    let bob = store.create_account("user", "Bob", NOW).await.unwrap().id;
    let mut s1 = session(
        "t1",
        Flow::Transfer,
        SessionStatus::OrderReceived,
        Some(&alice),
    );
    s1.order = Some(order(200_002, 300));
    store.create_session(&s1).await.unwrap();
    // The receipt carries the sender's txid: unique per side, not across them.
    let outcome = store
        .apply_settlement_with_receipt(
            &plan(&s1, &alice, &bob, 300, "tx1"),
            &receipt("rc1", &bob, "tx1"),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, PlanOutcome::Applied(_)), "{outcome:?}");
    assert_eq!(
        (usd(&store, &alice).await, usd(&store, &bob).await),
        (700, 300)
    );
    let stored = store.session("rc1").await.unwrap().unwrap();
    assert_eq!(
        (stored.flow, stored.status),
        (Flow::Received, SessionStatus::Paid)
    );
    assert_eq!(stored.txid.as_deref(), Some("tx1"));
    assert_eq!(stored.account_id.as_deref(), Some(bob.as_str()));
    let history = store.history(&bob, 10, None).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0], stored);
    let events = store.events_after(&bob, 0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload_json, r#"{"sessionId":"rc1"}"#);

    // Refused (too much): no receipt, no event, no money moved.
    let mut s2 = session(
        "t2",
        Flow::Transfer,
        SessionStatus::OrderReceived,
        Some(&alice),
    );
    s2.order = Some(order(200_002, 5000));
    store.create_session(&s2).await.unwrap();
    let outcome = store
        .apply_settlement_with_receipt(
            &plan(&s2, &alice, &bob, 5000, "tx2"),
            &receipt("rc2", &bob, "tx2"),
        )
        .await
        .unwrap();
    assert_eq!(outcome, PlanOutcome::InsufficientFunds);
    // Refused (already paid): the same.
    let outcome = store
        .apply_settlement_with_receipt(
            &plan(&s1, &alice, &bob, 300, "tx3"),
            &receipt("rc3", &bob, "tx3"),
        )
        .await
        .unwrap();
    assert_eq!(outcome, PlanOutcome::Conflict);
    assert_eq!(store.session("rc2").await.unwrap(), None);
    assert_eq!(store.session("rc3").await.unwrap(), None);
    assert_eq!(store.events_after(&bob, 0, 10).await.unwrap().len(), 1);
    assert_eq!(
        (usd(&store, &alice).await, usd(&store, &bob).await),
        (700, 300)
    );
}

pub async fn a_receipt_is_written_with_its_transfer_once_and_never_on_a_replay<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (reserve, _) = setup(&store, 1000).await;
    let bob = store.create_account("user", "Bob", NOW).await.unwrap().id;
    let once = TransferOnce {
        idempotency_key: "transfer:200:s1".into(),
        reference: "tx1".into(),
        transfers: vec![transfer(&reserve, &bob, 300)],
        result_json: r#"{"proof":1}"#.into(),
        webhook: None,
        now: NOW,
    };
    assert_eq!(
        store
            .apply_transfer_once_with_receipt(&once, &receipt("rc1", &bob, "tx1"))
            .await
            .unwrap(),
        TransferOutcome::Applied(once.result_json.clone())
    );
    let replay = TransferOnce {
        reference: "tx2".into(),
        result_json: r#"{"proof":2}"#.into(),
        ..once.clone()
    };
    assert_eq!(
        store
            .apply_transfer_once_with_receipt(&replay, &receipt("rc2", &bob, "tx2"))
            .await
            .unwrap(),
        TransferOutcome::Replayed(once.result_json.clone())
    );
    let short = TransferOnce {
        idempotency_key: "transfer:200:s2".into(),
        reference: "tx3".into(),
        transfers: vec![transfer(&reserve, &bob, 5000)],
        ..once.clone()
    };
    assert_eq!(
        store
            .apply_transfer_once_with_receipt(&short, &receipt("rc3", &bob, "tx3"))
            .await
            .unwrap(),
        TransferOutcome::InsufficientFunds
    );
    assert!(store.session("rc1").await.unwrap().is_some());
    assert_eq!(store.session("rc2").await.unwrap(), None);
    assert_eq!(store.session("rc3").await.unwrap(), None);
    assert_eq!(store.events_after(&bob, 0, 10).await.unwrap().len(), 1);
    assert_eq!(
        (usd(&store, &reserve).await, usd(&store, &bob).await),
        (700, 300)
    );
}
