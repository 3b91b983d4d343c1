//! The [`Store`] contract, written once for every backend: each case is a generic `async fn`
//! over a [`Backend`], and [`store_contract!`] instantiates them all as `#[tokio::test]`s for
//! one backend (SQLite in `tests/sqlite_store.rs`, PostgreSQL in `tests/postgres_store.rs`). Session and payment
//! cases go through the domain service functions, so they check the rules and the backend's
//! compare-and-set and settlement writes together.

#![allow(dead_code)] // each test binary instantiates the suite for its own backends

use std::sync::Arc;
use std::time::Duration;

mod p2p;
pub use p2p::*;

use opencharge_gateway::domain::ledger::LedgerOutcome;
use opencharge_gateway::domain::{attach_checkout, claim_session, decline_session, settle_payment};
use opencharge_gateway::store::{
    AttachedOrder, ClaimOutcome, Flow, Identity, IdentityCheck, NewEvent, NonceUse, OpsCounts,
    PlanOutcome, PushAttempt, PushEnvironment, PushProvider, PushStatus, RegisterOutcome, Session,
    SessionStatus, SessionUpdate, SettleOutcome, Settlement, SettlementPlan, Store, Transfer,
    TransferOnce, TransferOutcome, UpdateOutcome,
};

/// A storage backend under test.
#[allow(async_fn_in_trait)] // test-only trait, used on one runtime
pub trait Backend {
    /// The store type.
    type Store: Store + Clone;
    /// Keeps the backing database alive (a temporary directory, a scratch schema).
    type Guard;
    /// A fresh, empty, migrated store.
    async fn open() -> (Self::Guard, Self::Store);
    /// A second, independent handle (its own connection) onto the database of `guard`, so
    /// races cross connections and not just one in-process lock.
    async fn open_again(guard: &Self::Guard) -> Self::Store;
    /// Runs a SQL query returning one integer (NULL as 0): a probe of what was written.
    async fn scalar(store: &Self::Store, sql: &'static str) -> i64;
    /// Runs SQL statements behind the store's back (to simulate operator actions).
    async fn execute(store: &Self::Store, sql: &'static str);
}

/// Instantiates every contract case as a `#[tokio::test]` for the backend type given.
#[macro_export]
macro_rules! store_contract {
    ($backend:ty) => {
        $crate::store_contract!(@plain $backend;
            accounts_are_created_and_ensured,
            transfers_move_money_and_write_the_ledger,
            insufficient_funds_change_nothing,
            bad_transfers_are_errors,
            register_device_outcomes,
            rotate_device_swaps_keys_atomically,
            nonce_replay_is_refused_until_expiry,
            sessions_round_trip,
            update_session_if_is_a_compare_and_set,
            update_session_if_records_its_nonce_in_the_same_transaction,
            claim_session_outcomes,
            attach_checkout_outcomes,
            decline_session_outcomes,
            expire_sessions_marks_only_unpaid_past_expiry,
            purge_deletes_only_old_never_paid_sessions_and_dead_nonces,
            open_wallet_sessions_counts_an_accounts_open_qr_sessions,
            prompts_and_history,
            settle_pays_once_per_key,
            settle_with_insufficient_funds_changes_nothing,
            settle_refuses_other_accounts_and_bad_states,
            apply_settlement_refuses_a_changed_session,
            event_ids_increase_and_are_never_reused,
            webhooks_dedupe_queue_and_record_attempts,
            incoming_proofs_are_recorded_once,
            transfer_once_applies_then_replays,
            identity_is_recorded_checked_and_rotated,
            ops_counts_follow_the_queues_and_the_write_probe_changes_nothing,
            a_webhook_lease_holds_across_stores_until_it_ends_or_the_attempt_is_recorded,
            a_push_lease_holds_across_stores_until_it_ends_or_the_attempt_is_recorded,
            user_ocids_are_given_once_per_account_until_the_block_is_used_up,
            a_receipt_is_written_with_its_settlement_or_not_at_all,
            a_receipt_is_written_with_its_transfer_once_and_never_on_a_replay,
        );
        $crate::store_contract!(@threaded $backend;
            concurrent_claims_have_exactly_one_winner,
            concurrent_settlements_debit_once,
            concurrent_webhook_claims_never_share_a_row,
            concurrent_first_user_ocid_calls_agree,
        );
    };
    (@plain $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::store_contract::$case::<$backend>().await;
            }
        )*
    };
    (@threaded $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $crate::store_contract::$case::<$backend>().await;
            }
        )*
    };
}

/// The fixed "now" of every case (Unix seconds).
pub const NOW: i64 = 1_700_000_000;

/// Order `o1` of merchant `ocid` for `amount_minor` USD cents (its amount text is always 12.34).
pub fn order(ocid: u64, amount_minor: i64) -> AttachedOrder {
    AttachedOrder {
        order_json: format!(r#"{{"ocid":{ocid},"id":"o1","amount":"12.34"}}"#),
        order_signature: "sig".into(),
        order_hash: "hash".into(),
        merchant_ocid: ocid,
        merchant_name: Some("Shop".into()),
        merchant_icon: None,
        order_id: "o1".into(),
        amount: "12.34".into(),
        amount_minor,
        currency: "USD".into(),
        urls_json: Some(r#"{"success":"https://shop/ok"}"#.into()),
    }
}

/// A session with no order, created at [`NOW`], expiring 300 s later, status token `tok_{id}`.
pub fn session(id: &str, flow: Flow, status: SessionStatus, account: Option<&str>) -> Session {
    let account = account.map(str::to_owned);
    Session {
        status,
        ..Session::pending(
            id.into(),
            flow,
            account,
            NOW,
            NOW + 300,
            format!("tok_{id}"),
        )
    }
}

/// A session with an order attached, ready to be paid by `account`.
pub fn payable(id: &str, account: &str, amount_minor: i64) -> Session {
    let mut s = session(
        id,
        Flow::MerchantQr,
        SessionStatus::OrderReceived,
        Some(account),
    );
    s.order = Some(order(7, amount_minor));
    s
}

/// A USD transfer of `minor` cents.
pub fn transfer(from: &str, to: &str, minor: i64) -> Transfer {
    Transfer {
        from_account: from.into(),
        to_account: to.into(),
        currency: "USD".into(),
        minor,
    }
}

/// A funding source, a user funded with `minor` USD and merchant `ocid:7`.
pub async fn setup<S: Store + ?Sized>(store: &S, minor: i64) -> (String, String) {
    store
        .ensure_account("funding", "funding", "Dev funding", NOW)
        .await
        .unwrap();
    let user = store.create_account("user", "Alice", NOW).await.unwrap();
    let merchant = store
        .ensure_account("ocid:7", "merchant", "Shop", NOW)
        .await
        .unwrap();
    if minor > 0 {
        assert_eq!(
            store
                .apply_transfers("fund", &[transfer("funding", &user.id, minor)], NOW)
                .await
                .unwrap(),
            LedgerOutcome::Applied
        );
    }
    (user.id, merchant.id)
}

/// The USD balance of `account` in cents (0 when it has none).
pub async fn usd<S: Store + ?Sized>(store: &S, account: &str) -> i64 {
    store
        .balances(account)
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.currency == "USD")
        .map_or(0, |b| b.minor)
}

fn settlement(session_id: &str, account: &str, key: &str, txid: &str, minor: i64) -> Settlement {
    Settlement {
        session_id: session_id.into(),
        account_id: account.into(),
        idempotency_key: key.into(),
        consent_json: "{}".into(),
        transfers: vec![transfer(account, "ocid:7", minor)],
        txid: txid.into(),
        proof_json: format!(r#"{{"proof":{{"txid":"{txid}"}},"signature":"s"}}"#),
        webhook: Some(("https://shop/transfer/webhook".into(), 7)),
        event_json: r#"{"status":"paid"}"#.into(),
        now: NOW + 10,
    }
}

/// Runs a one-integer SQL probe on the backend.
async fn count<B: Backend>(store: &B::Store, sql: &'static str) -> i64 {
    B::scalar(store, sql).await
}

pub async fn accounts_are_created_and_ensured<B: Backend>() {
    let (_guard, store) = B::open().await;
    let a = store.create_account("user", "Alice", NOW).await.unwrap();
    assert!(a.id.starts_with("acct_") && a.id.len() == 37, "{}", a.id);
    let b = store.create_account("user", "Bob", NOW).await.unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(store.account(&a.id).await.unwrap(), Some(a));
    assert_eq!(store.account("nobody").await.unwrap(), None);
    let m = store
        .ensure_account("ocid:7", "merchant", "Shop", NOW)
        .await
        .unwrap();
    let again = store
        .ensure_account("ocid:7", "merchant", "Renamed", NOW + 5)
        .await
        .unwrap();
    assert_eq!(m, again, "ensure_account keeps the existing row");
    assert!(store.balances(&m.id).await.unwrap().is_empty());
}

pub async fn transfers_move_money_and_write_the_ledger<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, merchant) = setup(&store, 1000).await;
    assert_eq!(
        store
            .apply_transfers("tx1", &[transfer(&user, &merchant, 400)], NOW)
            .await
            .unwrap(),
        LedgerOutcome::Applied
    );
    assert_eq!(usd(&store, &user).await, 600);
    assert_eq!(usd(&store, &merchant).await, 400);
    assert_eq!(usd(&store, "funding").await, -1000);
    let entries = count::<B>(&store, "SELECT count(*) FROM ledger_entries").await;
    assert_eq!(entries, 2);
    let total = count::<B>(&store, "SELECT sum(minor) FROM balances").await;
    assert_eq!(total, 0, "double entry: balances sum to zero");
    let tx1 = count::<B>(
        &store,
        "SELECT minor FROM ledger_entries WHERE reference = 'tx1'",
    )
    .await;
    assert_eq!(tx1, 400);
}

pub async fn insufficient_funds_change_nothing<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, merchant) = setup(&store, 100).await;
    // The first transfer alone would fit; the batch does not: all or nothing.
    let ok = store
        .apply_transfers(
            "tx1",
            &[
                transfer(&user, &merchant, 60),
                transfer(&user, &merchant, 60),
            ],
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(ok, LedgerOutcome::InsufficientFunds);
    assert_eq!(usd(&store, &user).await, 100);
    assert_eq!(usd(&store, &merchant).await, 0);
    assert_eq!(
        count::<B>(&store, "SELECT count(*) FROM ledger_entries").await,
        1
    );
    // Exactly the balance is fine.
    assert_eq!(
        store
            .apply_transfers("tx2", &[transfer(&user, &merchant, 100)], NOW)
            .await
            .unwrap(),
        LedgerOutcome::Applied
    );
    assert_eq!(usd(&store, &user).await, 0);
}

pub async fn bad_transfers_are_errors<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, merchant) = setup(&store, 100).await;
    for t in [
        transfer(&user, &merchant, 0),
        transfer(&user, &merchant, -5),
        transfer(&user, "ghost", 5),
        transfer("ghost", &user, 5),
    ] {
        assert!(store.apply_transfers("bad", &[t], NOW).await.is_err());
    }
    assert_eq!(usd(&store, &user).await, 100);
    // A credit past the ledger's range is refused as such, and rolls back.
    store
        .ensure_account("funding2", "funding", "More funding", NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .apply_transfers("big", &[transfer("funding2", &merchant, i64::MAX)], NOW)
            .await
            .unwrap(),
        LedgerOutcome::Applied
    );
    let outcome = store
        .apply_transfers("over", &[transfer(&user, &merchant, 1)], NOW)
        .await
        .unwrap();
    assert_eq!(outcome, LedgerOutcome::BalanceOutOfRange(merchant.clone()));
    assert_eq!(usd(&store, &user).await, 100);
    assert_eq!(usd(&store, &merchant).await, i64::MAX);
    // A payer who cannot pay hears that first, even when the credit would not fit either.
    let outcome = store
        .apply_transfers("short", &[transfer(&user, &merchant, 101)], NOW)
        .await
        .unwrap();
    assert_eq!(outcome, LedgerOutcome::InsufficientFunds);
    // A debit of the funding source past the range, too.
    let outcome = store
        .apply_transfers("under", &[transfer("funding2", &user, 2)], NOW)
        .await
        .unwrap();
    assert_eq!(outcome, LedgerOutcome::BalanceOutOfRange("funding2".into()));
    assert_eq!(usd(&store, &user).await, 100);
    // Other accounts still receive.
    let other = store
        .ensure_account("ocid:8", "merchant", "Other shop", NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .apply_transfers("fine", &[transfer(&user, &other.id, 40)], NOW)
            .await
            .unwrap(),
        LedgerOutcome::Applied
    );
    assert_eq!(usd(&store, &user).await, 60);
    let entries = count::<B>(
        &store,
        "SELECT count(*) FROM ledger_entries WHERE reference IN ('over', 'short', 'under')",
    )
    .await;
    assert_eq!(entries, 0, "refused transfers leave no ledger entry");
}

pub async fn register_device_outcomes<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, _) = setup(&store, 0).await;
    store
        .create_enrollment(&user, "code1", NOW + 600, NOW)
        .await
        .unwrap();
    let RegisterOutcome::Registered(d) = store
        .register_device("code1", "dev_a", "key_a", NOW)
        .await
        .unwrap()
    else {
        panic!("expected Registered");
    };
    assert_eq!(
        (d.account_id.as_str(), d.status.as_str()),
        (user.as_str(), "active")
    );
    assert_eq!(store.device("dev_a").await.unwrap(), Some(d.clone()));
    // Same device retries: idempotent.
    assert_eq!(
        store
            .register_device("code1", "dev_a", "key_a", NOW + 1)
            .await
            .unwrap(),
        RegisterOutcome::AlreadyRegistered(d.clone())
    );
    // Another device with a used code.
    assert_eq!(
        store
            .register_device("code1", "dev_b", "key_b", NOW + 1)
            .await
            .unwrap(),
        RegisterOutcome::InvalidEnrollment
    );
    // Unknown code.
    assert_eq!(
        store
            .register_device("nope", "dev_b", "key_b", NOW)
            .await
            .unwrap(),
        RegisterOutcome::InvalidEnrollment
    );
    // Expired code.
    store
        .create_enrollment(&user, "code2", NOW + 10, NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .register_device("code2", "dev_b", "key_b", NOW + 10)
            .await
            .unwrap(),
        RegisterOutcome::InvalidEnrollment
    );
    // A key already bound elsewhere cannot take a fresh code of another account.
    let other = store.create_account("user", "Bob", NOW).await.unwrap();
    store
        .create_enrollment(&other.id, "code3", NOW + 600, NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .register_device("code3", "dev_a", "key_a", NOW)
            .await
            .unwrap(),
        RegisterOutcome::InvalidEnrollment
    );
    // ... and the code is still usable by a new device.
    assert!(matches!(
        store
            .register_device("code3", "dev_c", "key_c", NOW)
            .await
            .unwrap(),
        RegisterOutcome::Registered(_)
    ));
}

pub async fn rotate_device_swaps_keys_atomically<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, _) = setup(&store, 0).await;
    store
        .create_enrollment(&user, "code1", NOW + 600, NOW)
        .await
        .unwrap();
    store
        .register_device("code1", "dev_a", "key_a", NOW)
        .await
        .unwrap();
    assert!(store
        .rotate_device("dev_a", "dev_b", "key_b", NOW + 1)
        .await
        .unwrap());
    let old = store.device("dev_a").await.unwrap().unwrap();
    let new = store.device("dev_b").await.unwrap().unwrap();
    assert_eq!(old.status, "rotated");
    assert_eq!(
        (new.status.as_str(), new.account_id.as_str()),
        ("active", user.as_str())
    );
    // A retry of the same rotation is a success; any other use of the old key is not.
    assert!(store
        .rotate_device("dev_a", "dev_b", "key_b", NOW + 2)
        .await
        .unwrap());
    assert!(!store
        .rotate_device("dev_a", "dev_c", "key_c", NOW + 2)
        .await
        .unwrap());
    assert!(!store
        .rotate_device("ghost", "dev_c", "key_c", NOW + 2)
        .await
        .unwrap());
    // Rotating onto a key that exists fails and changes nothing.
    assert!(!store
        .rotate_device("dev_b", "dev_a", "key_a", NOW + 3)
        .await
        .unwrap());
    assert_eq!(
        store.device("dev_b").await.unwrap().unwrap().status,
        "active"
    );
}

pub async fn nonce_replay_is_refused_until_expiry<B: Backend>() {
    let (_guard, store) = B::open().await;
    assert!(store.use_nonce("dev_a", "n1", NOW + 60, NOW).await.unwrap());
    assert!(!store
        .use_nonce("dev_a", "n1", NOW + 60, NOW + 1)
        .await
        .unwrap());
    assert!(store.use_nonce("dev_b", "n1", NOW + 60, NOW).await.unwrap());
    assert!(!store
        .use_nonce("dev_a", "n1", NOW + 200, NOW + 59)
        .await
        .unwrap());
    // Expired: taken over, then live again.
    assert!(store
        .use_nonce("dev_a", "n1", NOW + 120, NOW + 60)
        .await
        .unwrap());
    assert!(!store
        .use_nonce("dev_a", "n1", NOW + 120, NOW + 61)
        .await
        .unwrap());
}

pub async fn sessions_round_trip<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, _) = setup(&store, 0).await;
    let mut s = payable("sc_1", &user, 1234);
    s.submitted_by = Some(u64::try_from(i64::MAX).unwrap());
    store.create_session(&s).await.unwrap();
    assert_eq!(store.session("sc_1").await.unwrap(), Some(s.clone()));
    assert_eq!(
        store.session_by_status_token("tok_sc_1").await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(store.session("nope").await.unwrap(), None);
    // Duplicate id or status token is an error.
    let mut dup = s.clone();
    dup.id = "sc_2".into();
    assert!(store.create_session(&dup).await.is_err());
    // OCIDs above i64::MAX cannot be stored: error, not wrap-around.
    let mut big = payable("sc_3", &user, 1);
    big.status_token = "tok_big".into();
    big.submitted_by = Some(u64::MAX);
    assert!(store.create_session(&big).await.is_err());
}

pub async fn claim_session_outcomes<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, _) = setup(&store, 0).await;
    let qr = session("q1", Flow::WalletQr, SessionStatus::Pending, Some(&user));
    store.create_session(&qr).await.unwrap();
    let ClaimOutcome::Claimed(s) =
        claim_session(&store, "q1", &order(7, 500), 7, r#"{"k":1}"#, None, NOW + 1)
            .await
            .unwrap()
    else {
        panic!("expected Claimed");
    };
    assert_eq!(s.status, SessionStatus::OrderReceived);
    assert_eq!(s.order, Some(order(7, 500)));
    assert_eq!(s.submitted_by, Some(7));
    let events = store.events_after(&user, 0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "payment_request");
    assert_eq!(events[0].payload_json, r#"{"k":1}"#);
    assert_eq!(
        claim_session(&store, "q1", &order(8, 1), 8, "{}", None, NOW + 2)
            .await
            .unwrap(),
        ClaimOutcome::Used
    );
    assert_eq!(
        claim_session(&store, "nope", &order(8, 1), 8, "{}", None, NOW)
            .await
            .unwrap(),
        ClaimOutcome::NotFound
    );
    // Expiry is exclusive: at expires_at it is expired.
    let mut q2 = session("q2", Flow::WalletQr, SessionStatus::Pending, Some(&user));
    q2.status_token = "tok2".into();
    store.create_session(&q2).await.unwrap();
    assert_eq!(
        claim_session(&store, "q2", &order(8, 1), 8, "{}", None, q2.expires_at)
            .await
            .unwrap(),
        ClaimOutcome::Expired
    );
    store.expire_sessions(q2.expires_at).await.unwrap();
    assert_eq!(
        claim_session(&store, "q2", &order(8, 1), 8, "{}", None, NOW)
            .await
            .unwrap(),
        ClaimOutcome::Expired
    );
    // Only wallet QR sessions can be claimed.
    store
        .create_session(&session(
            "cs_1",
            Flow::Checkout,
            SessionStatus::Pending,
            Some(&user),
        ))
        .await
        .unwrap();
    assert_eq!(
        claim_session(&store, "cs_1", &order(8, 1), 8, "{}", None, NOW)
            .await
            .unwrap(),
        ClaimOutcome::NotFound
    );
    assert_eq!(store.events_after(&user, 0, 10).await.unwrap().len(), 1);
}

pub async fn attach_checkout_outcomes<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, _) = setup(&store, 0).await;
    let other = store.create_account("user", "Bob", NOW).await.unwrap();
    let mut cs = session("cs_1", Flow::Checkout, SessionStatus::OrderReceived, None);
    cs.order = Some(order(7, 100));
    cs.submitted_by = Some(99);
    store.create_session(&cs).await.unwrap();
    let ClaimOutcome::Claimed(s) = attach_checkout(&store, "cs_1", &user, "{}", NOW)
        .await
        .unwrap()
    else {
        panic!("expected Claimed");
    };
    assert_eq!(s.account_id.as_deref(), Some(user.as_str()));
    // Re-open by the same account: same session, no second event.
    assert_eq!(
        attach_checkout(&store, "cs_1", &user, "{}", NOW + 1)
            .await
            .unwrap(),
        ClaimOutcome::Claimed(s)
    );
    assert_eq!(store.events_after(&user, 0, 10).await.unwrap().len(), 1);
    assert_eq!(
        attach_checkout(&store, "cs_1", &other.id, "{}", NOW)
            .await
            .unwrap(),
        ClaimOutcome::Used
    );
    assert!(store
        .events_after(&other.id, 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        attach_checkout(&store, "nope", &user, "{}", NOW)
            .await
            .unwrap(),
        ClaimOutcome::NotFound
    );
    let mut cs2 = cs.clone();
    cs2.id = "cs_2".into();
    cs2.status_token = "tok2".into();
    store.create_session(&cs2).await.unwrap();
    assert_eq!(
        attach_checkout(&store, "cs_2", &user, "{}", cs2.expires_at)
            .await
            .unwrap(),
        ClaimOutcome::Expired
    );
    // A wallet QR session is not a checkout.
    store
        .create_session(&session("q1", Flow::WalletQr, SessionStatus::Pending, None))
        .await
        .unwrap();
    assert_eq!(
        attach_checkout(&store, "q1", &user, "{}", NOW)
            .await
            .unwrap(),
        ClaimOutcome::NotFound
    );
}

pub async fn decline_session_outcomes<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, _) = setup(&store, 0).await;
    let other = store.create_account("user", "Bob", NOW).await.unwrap();
    store
        .create_session(&payable("s1", &user, 100))
        .await
        .unwrap();
    assert_eq!(
        decline_session(&store, "s1", &other.id, "no", "{}", NOW)
            .await
            .unwrap(),
        SettleOutcome::Forbidden
    );
    assert_eq!(
        decline_session(&store, "nope", &user, "no", "{}", NOW)
            .await
            .unwrap(),
        SettleOutcome::NotFound
    );
    let SettleOutcome::Declined(s) = decline_session(
        &store,
        "s1",
        &user,
        "too pricey",
        r#"{"status":"declined"}"#,
        NOW,
    )
    .await
    .unwrap() else {
        panic!("expected Declined");
    };
    assert_eq!(s.status, SessionStatus::Declined);
    assert_eq!(s.decline_reason.as_deref(), Some("too pricey"));
    // Retry: same answer, no second event.
    assert_eq!(
        decline_session(&store, "s1", &user, "again", "{}", NOW)
            .await
            .unwrap(),
        SettleOutcome::Declined(s)
    );
    let events = store.events_after(&user, 0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "payment_status");
    // A declined session cannot be paid.
    assert_eq!(
        settle_payment(&store, &settlement("s1", &user, "k", "tx", 1))
            .await
            .unwrap(),
        SettleOutcome::InvalidState(SessionStatus::Declined)
    );
    // Past expiry.
    let mut s2 = payable("s2", &user, 100);
    s2.status_token = "tok2".into();
    store.create_session(&s2).await.unwrap();
    assert_eq!(
        decline_session(&store, "s2", &user, "no", "{}", s2.expires_at)
            .await
            .unwrap(),
        SettleOutcome::InvalidState(SessionStatus::Expired)
    );
}

pub async fn expire_sessions_marks_only_unpaid_past_expiry<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, _) = setup(&store, 1000).await;
    let mut pending = session("q1", Flow::WalletQr, SessionStatus::Pending, Some(&user));
    pending.expires_at = NOW + 10;
    let mut prompt = payable("s1", &user, 100);
    prompt.expires_at = NOW + 10;
    let mut later = payable("s2", &user, 100);
    later.status_token = "tok_later".into();
    later.expires_at = NOW + 1000;
    let mut paid = payable("s3", &user, 100);
    paid.status_token = "tok_paid".into();
    paid.expires_at = NOW + 11;
    for s in [&pending, &prompt, &later, &paid] {
        store.create_session(s).await.unwrap();
    }
    assert!(matches!(
        settle_payment(&store, &settlement("s3", &user, "k", "tx3", 100))
            .await
            .unwrap(),
        SettleOutcome::Paid(_)
    ));
    assert_eq!(store.expire_sessions(NOW + 9).await.unwrap(), 0);
    assert_eq!(store.expire_sessions(NOW + 100).await.unwrap(), 2);
    assert_eq!(store.expire_sessions(NOW + 100).await.unwrap(), 0);
    let status = |id: &'static str| {
        let store = store.clone();
        async move { store.session(id).await.unwrap().unwrap().status }
    };
    assert_eq!(status("q1").await, SessionStatus::Expired);
    assert_eq!(status("s1").await, SessionStatus::Expired);
    assert_eq!(status("s2").await, SessionStatus::OrderReceived);
    assert_eq!(status("s3").await, SessionStatus::Paid);
}

pub async fn purge_deletes_only_old_never_paid_sessions_and_dead_nonces<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, merchant) = setup(&store, 1000).await;
    let mut unscanned = session("q1", Flow::WalletQr, SessionStatus::Pending, Some(&user));
    unscanned.expires_at = NOW + 10;
    let mut unpaid = payable("s1", &user, 100);
    unpaid.expires_at = NOW + 10;
    let mut paid = payable("s2", &user, 100);
    paid.status_token = "tok_paid".into();
    paid.expires_at = NOW + 11;
    let mut declined = payable("s3", &user, 100);
    declined.status_token = "tok_declined".into();
    declined.status = SessionStatus::Declined;
    declined.expires_at = NOW + 10;
    let mut live = payable("s4", &user, 100);
    live.status_token = "tok_live".into();
    live.expires_at = NOW + 100_000;
    for s in [&unscanned, &unpaid, &paid, &declined, &live] {
        store.create_session(s).await.unwrap();
    }
    let pay = settlement("s2", &user, "k2", "tx2", 100);
    assert!(matches!(
        settle_payment(&store, &pay).await.unwrap(),
        SettleOutcome::Paid(_)
    ));
    assert_eq!(store.expire_sessions(NOW + 100).await.unwrap(), 2);
    let ledger_rows = count::<B>(&store, "SELECT COUNT(*) FROM ledger_entries").await;
    let balances = (usd(&store, &user).await, usd(&store, &merchant).await);

    // Not old enough yet: nothing goes.
    let none = store.purge(NOW + 5, NOW + 100, 10).await.unwrap();
    assert_eq!(none.sessions, 0);
    // Bounded batches: one row per call with limit 1.
    assert_eq!(
        store.purge(NOW + 50, NOW + 100, 1).await.unwrap().sessions,
        1
    );
    assert_eq!(
        store.purge(NOW + 50, NOW + 100, 1).await.unwrap().sessions,
        1
    );
    assert_eq!(
        store.purge(NOW + 50, NOW + 100, 1).await.unwrap().sessions,
        0
    );
    assert!(store.session("q1").await.unwrap().is_none());
    assert!(store.session("s1").await.unwrap().is_none());
    for kept in ["s2", "s3", "s4"] {
        assert!(
            store.session(kept).await.unwrap().is_some(),
            "{kept} is kept"
        );
    }
    assert_eq!(
        count::<B>(&store, "SELECT COUNT(*) FROM ledger_entries").await,
        ledger_rows,
        "the ledger is never purged"
    );
    // Exactly once survives the purge: a late payment of a purged session finds nothing, a
    // replay of the paid one pays nothing more, and no money moves.
    let late = settlement("s1", &user, "k1", "tx1", 100);
    assert!(matches!(
        settle_payment(&store, &late).await.unwrap(),
        SettleOutcome::NotFound
    ));
    assert!(matches!(
        settle_payment(&store, &pay).await.unwrap(),
        SettleOutcome::AlreadyPaid(_)
    ));
    assert_eq!(
        (usd(&store, &user).await, usd(&store, &merchant).await),
        balances
    );

    // Nonces: only those past their lifetime go; a live one is still a replay.
    assert!(store.use_nonce("dev_a", "n1", NOW + 60, NOW).await.unwrap());
    assert!(store
        .use_nonce("dev_a", "n2", NOW + 200, NOW)
        .await
        .unwrap());
    let purged = store.purge(NOW, NOW + 100, 10).await.unwrap();
    assert_eq!(purged.nonces, 1);
    assert_eq!(count::<B>(&store, "SELECT COUNT(*) FROM nonces").await, 1);
    assert!(!store
        .use_nonce("dev_a", "n2", NOW + 300, NOW + 150)
        .await
        .unwrap());
}

pub async fn open_wallet_sessions_counts_an_accounts_open_qr_sessions<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, _) = setup(&store, 0).await;
    let other = store.create_account("user", "Bob", NOW).await.unwrap();
    let empty = store
        .open_wallet_sessions(&user, NOW - 300, NOW + 1)
        .await
        .unwrap();
    assert_eq!((empty.count, empty.earliest_expiry), (0, None));
    let mut a = session("q1", Flow::WalletQr, SessionStatus::Pending, Some(&user));
    a.expires_at = NOW + 200;
    let b = session("q2", Flow::WalletQr, SessionStatus::Pending, Some(&user));
    let mut gone = session("q3", Flow::WalletQr, SessionStatus::Pending, Some(&user));
    gone.expires_at = NOW + 1;
    let mut declined = session("q4", Flow::WalletQr, SessionStatus::Declined, Some(&user));
    declined.expires_at = NOW + 250;
    let theirs = session(
        "q5",
        Flow::WalletQr,
        SessionStatus::Pending,
        Some(&other.id),
    );
    let scanned = payable("m1", &user, 1);
    for s in [&a, &b, &gone, &declined, &theirs, &scanned] {
        store.create_session(s).await.unwrap();
    }
    let open = store
        .open_wallet_sessions(&user, NOW - 300, NOW + 1)
        .await
        .unwrap();
    assert_eq!((open.count, open.earliest_expiry), (2, Some(NOW + 200)));
    // Created before the window: not counted.
    let later = store
        .open_wallet_sessions(&user, NOW, NOW + 1)
        .await
        .unwrap();
    assert_eq!(later.count, 0);
}

pub async fn prompts_and_history<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, _) = setup(&store, 0).await;
    let other = store.create_account("user", "Bob", NOW).await.unwrap();
    // Three prompts created at NOW+2, NOW+1, NOW+3; one expired; one without order.
    for (id, created, expires) in [
        ("b", NOW + 2, NOW + 300),
        ("a", NOW + 1, NOW + 300),
        ("c", NOW + 3, NOW + 300),
        ("x", NOW, NOW + 5),
    ] {
        let mut s = payable(id, &user, 1);
        s.created_at = created;
        s.expires_at = expires;
        store.create_session(&s).await.unwrap();
    }
    store
        .create_session(&session(
            "q",
            Flow::WalletQr,
            SessionStatus::Pending,
            Some(&user),
        ))
        .await
        .unwrap();
    let mut theirs = payable("t", &other.id, 1);
    theirs.status_token = "tok_t".into();
    store.create_session(&theirs).await.unwrap();

    let ids = |v: Vec<Session>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.pending_prompts(&user, NOW + 10).await.unwrap()),
        ["a", "b", "c"]
    );
    assert_eq!(
        ids(store.history(&user, 10, None).await.unwrap()),
        ["c", "b", "a", "x"]
    );
    assert_eq!(
        ids(store.history(&user, 2, None).await.unwrap()),
        ["c", "b"]
    );
    assert_eq!(
        ids(store.history(&user, 10, Some(NOW + 2)).await.unwrap()),
        ["a", "x"]
    );
    assert!(store.history(&user, 0, None).await.unwrap().is_empty());
    assert_eq!(
        ids(store.history(&other.id, 10, None).await.unwrap()),
        ["t"]
    );
}

pub async fn settle_pays_once_per_key<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, merchant) = setup(&store, 1000).await;
    store
        .create_session(&payable("s1", &user, 300))
        .await
        .unwrap();
    let first = settlement("s1", &user, "key1", "tx1", 300);
    let SettleOutcome::Paid(paid) = settle_payment(&store, &first).await.unwrap() else {
        panic!("expected Paid");
    };
    assert_eq!(paid.status, SessionStatus::Paid);
    assert_eq!(paid.txid.as_deref(), Some("tx1"));
    assert_eq!(paid.paid_at, Some(NOW + 10));
    assert_eq!(paid.proof_json.as_deref(), Some(first.proof_json.as_str()));
    // Same key again (even with a freshly minted txid): the first result.
    let retry = settlement("s1", &user, "key1", "tx1-retry", 300);
    assert_eq!(
        settle_payment(&store, &retry).await.unwrap(),
        SettleOutcome::AlreadyPaid(paid.clone())
    );
    // A new key on a paid session: still no second debit.
    let other_key = settlement("s1", &user, "key2", "tx2", 300);
    assert_eq!(
        settle_payment(&store, &other_key).await.unwrap(),
        SettleOutcome::AlreadyPaid(paid.clone())
    );
    assert_eq!(usd(&store, &user).await, 700);
    assert_eq!(usd(&store, &merchant).await, 300);
    let wh = store.webhook_by_txid("tx1").await.unwrap().unwrap();
    assert_eq!(wh.body, first.proof_json);
    assert_eq!((wh.target_ocid, wh.status.as_str()), (7, "pending"));
    assert_eq!(store.webhook_by_txid("tx1-retry").await.unwrap(), None);
    let events = store.events_after(&user, 0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind.as_str(), events[0].payload_json.as_str()),
        ("payment_status", r#"{"status":"paid"}"#)
    );
    let consents = count::<B>(
        &store,
        "SELECT count(*) FROM sessions WHERE id = 's1' AND consent_json = '{}'",
    )
    .await;
    assert_eq!(consents, 1, "the consent is kept as evidence");
}

pub async fn settle_with_insufficient_funds_changes_nothing<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, merchant) = setup(&store, 100).await;
    store
        .create_session(&payable("s1", &user, 300))
        .await
        .unwrap();
    let s = settlement("s1", &user, "key1", "tx1", 300);
    assert_eq!(
        settle_payment(&store, &s).await.unwrap(),
        SettleOutcome::InsufficientFunds
    );
    assert_eq!(usd(&store, &user).await, 100);
    assert_eq!(usd(&store, &merchant).await, 0);
    let session = store.session("s1").await.unwrap().unwrap();
    assert_eq!(session, payable("s1", &user, 300));
    assert_eq!(store.webhook_by_txid("tx1").await.unwrap(), None);
    assert!(store.events_after(&user, 0, 10).await.unwrap().is_empty());
    assert_eq!(
        count::<B>(&store, "SELECT count(*) FROM idempotency").await,
        0
    );
    assert_eq!(
        count::<B>(
            &store,
            "SELECT count(*) FROM ledger_entries WHERE reference = 'tx1'"
        )
        .await,
        0
    );
    // After funding, the same key succeeds (it was not burnt by the failure).
    store
        .apply_transfers("top-up", &[transfer("funding", &user, 500)], NOW)
        .await
        .unwrap();
    assert!(matches!(
        settle_payment(&store, &s).await.unwrap(),
        SettleOutcome::Paid(_)
    ));
}

pub async fn settle_refuses_other_accounts_and_bad_states<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, _) = setup(&store, 1000).await;
    let mallory = store.create_account("user", "Mallory", NOW).await.unwrap();
    store
        .apply_transfers("fund", &[transfer("funding", &mallory.id, 1000)], NOW)
        .await
        .unwrap();
    store
        .create_session(&payable("s1", &user, 100))
        .await
        .unwrap();
    assert_eq!(
        settle_payment(&store, &settlement("s1", &mallory.id, "k", "tx1", 100))
            .await
            .unwrap(),
        SettleOutcome::Forbidden
    );
    assert_eq!(
        settle_payment(&store, &settlement("nope", &user, "k", "tx1", 100))
            .await
            .unwrap(),
        SettleOutcome::NotFound
    );
    // Mallory cannot replay the owner's idempotency key to read the owner's session.
    assert!(matches!(
        settle_payment(&store, &settlement("s1", &user, "shared", "tx1", 100))
            .await
            .unwrap(),
        SettleOutcome::Paid(_)
    ));
    assert_eq!(
        settle_payment(&store, &settlement("s1", &mallory.id, "shared", "tx9", 100))
            .await
            .unwrap(),
        SettleOutcome::Forbidden
    );
    // Expired by time (still order_received in storage).
    let mut s2 = payable("s2", &user, 100);
    s2.status_token = "tok2".into();
    store.create_session(&s2).await.unwrap();
    let mut late = settlement("s2", &user, "k2", "tx2", 100);
    late.now = s2.expires_at;
    assert_eq!(
        settle_payment(&store, &late).await.unwrap(),
        SettleOutcome::InvalidState(SessionStatus::Expired)
    );
    assert_eq!(
        store.session("s2").await.unwrap().unwrap().status,
        SessionStatus::OrderReceived,
        "settle does not mark expiry; expire_sessions does"
    );
    // Pending wallet QR without an order.
    store
        .create_session(&session(
            "q1",
            Flow::WalletQr,
            SessionStatus::Pending,
            Some(&user),
        ))
        .await
        .unwrap();
    assert_eq!(
        settle_payment(&store, &settlement("q1", &user, "k3", "tx3", 100))
            .await
            .unwrap(),
        SettleOutcome::InvalidState(SessionStatus::Pending)
    );
    assert_eq!(usd(&store, &user).await, 900);
    assert_eq!(usd(&store, &mallory.id).await, 1000);
}

pub async fn event_ids_increase_and_are_never_reused<B: Backend>() {
    let (_guard, store) = B::open().await;
    let e1 = store
        .append_event("a", "payment_request", "1", NOW)
        .await
        .unwrap();
    let e2 = store
        .append_event("b", "payment_request", "2", NOW)
        .await
        .unwrap();
    let e3 = store
        .append_event("a", "payment_status", "3", NOW)
        .await
        .unwrap();
    assert!(e1.id < e2.id && e2.id < e3.id);
    assert_eq!(
        store.events_after("a", 0, 10).await.unwrap(),
        vec![e1.clone(), e3.clone()]
    );
    assert_eq!(
        store.events_after("a", e1.id, 10).await.unwrap(),
        vec![e3.clone()]
    );
    assert_eq!(store.events_after("a", 0, 1).await.unwrap(), vec![e1]);
    assert!(store.events_after("a", e3.id, 10).await.unwrap().is_empty());
    B::execute(&store, "DELETE FROM events").await;
    let e4 = store
        .append_event("a", "payment_status", "4", NOW)
        .await
        .unwrap();
    assert!(e4.id > e3.id, "AUTOINCREMENT never reuses an id");
}

pub async fn webhooks_dedupe_queue_and_record_attempts<B: Backend>() {
    let (_guard, store) = B::open().await;
    let w1 = store
        .enqueue_webhook("tx1", 7, "https://a/hook", "body1", NOW)
        .await
        .unwrap();
    assert_eq!(
        (w1.status.as_str(), w1.attempts, w1.next_attempt_at),
        ("pending", 0, NOW)
    );
    let dup = store
        .enqueue_webhook("tx1", 8, "https://b/hook", "other", NOW + 5)
        .await
        .unwrap();
    assert_eq!(dup, w1, "same txid: the existing row");
    let w2 = store
        .enqueue_webhook("tx2", 7, "https://a/hook", "body2", NOW + 1)
        .await
        .unwrap();
    // A claim leases what it returns: a second claim does not return it again.
    assert_eq!(
        store.claim_webhooks(NOW, NOW + 30, 10).await.unwrap(),
        vec![w1.clone()]
    );
    assert_eq!(
        store.claim_webhooks(NOW + 1, NOW + 30, 10).await.unwrap(),
        vec![w2.clone()]
    );
    assert!(store
        .claim_webhooks(NOW + 29, NOW + 60, 10)
        .await
        .unwrap()
        .is_empty());
    // The leases end at NOW + 30: oldest first, at most `limit`.
    assert_eq!(
        store.claim_webhooks(NOW + 30, NOW + 40, 1).await.unwrap(),
        vec![w1.clone()]
    );
    store
        .record_webhook_attempt(w1.id, "pending", NOW + 60, Some("timeout"))
        .await
        .unwrap();
    let w1b = store.webhook_by_txid("tx1").await.unwrap().unwrap();
    assert_eq!(
        (w1b.attempts, w1b.next_attempt_at, w1b.last_error.as_deref()),
        (1, NOW + 60, Some("timeout"))
    );
    assert_eq!(
        store.claim_webhooks(NOW + 31, NOW + 90, 10).await.unwrap(),
        vec![w2.clone()]
    );
    store
        .record_webhook_attempt(w2.id, "delivered", NOW + 31, None)
        .await
        .unwrap();
    // Recording the attempt ended w1's lease: due again at its next attempt time.
    assert_eq!(
        store
            .claim_webhooks(NOW + 100, NOW + 130, 10)
            .await
            .unwrap(),
        vec![w1b]
    );
    assert!(store
        .record_webhook_attempt(w2.id, "bogus", NOW, None)
        .await
        .is_err());
    assert!(store
        .record_webhook_attempt(9999, "failed", NOW, None)
        .await
        .is_err());
    assert_eq!(store.webhook_by_txid("nope").await.unwrap(), None);
}

pub async fn incoming_proofs_are_recorded_once<B: Backend>() {
    let (_guard, store) = B::open().await;
    assert!(store
        .record_incoming_proof(5, "tx1", "{}", NOW)
        .await
        .unwrap());
    assert!(!store
        .record_incoming_proof(5, "tx1", "{}", NOW)
        .await
        .unwrap());
    assert!(store
        .record_incoming_proof(6, "tx1", "{}", NOW)
        .await
        .unwrap());
}

pub async fn transfer_once_applies_then_replays<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, merchant) = setup(&store, 1000).await;
    let once = TransferOnce {
        idempotency_key: "transfer:9:ref1".into(),
        reference: "tx1".into(),
        transfers: vec![transfer(&user, &merchant, 400)],
        result_json: r#"{"proof":1}"#.into(),
        webhook: Some(("tx1".into(), 7, "https://m/hook".into(), "body".into())),
        now: NOW,
    };
    assert_eq!(
        store.apply_transfer_once(&once).await.unwrap(),
        TransferOutcome::Applied(once.result_json.clone())
    );
    let mut again = once.clone();
    again.result_json = r#"{"proof":2}"#.into();
    again.reference = "tx2".into();
    assert_eq!(
        store.apply_transfer_once(&again).await.unwrap(),
        TransferOutcome::Replayed(once.result_json.clone())
    );
    assert_eq!(usd(&store, &user).await, 600);
    assert_eq!(
        store.webhook_by_txid("tx1").await.unwrap().unwrap().body,
        "body"
    );
    // Too much: nothing changed, key not stored.
    let big = TransferOnce {
        idempotency_key: "transfer:9:ref2".into(),
        reference: "tx3".into(),
        transfers: vec![transfer(&user, &merchant, 601)],
        result_json: "{}".into(),
        webhook: Some(("tx3".into(), 7, "https://m/hook".into(), "b".into())),
        now: NOW,
    };
    assert_eq!(
        store.apply_transfer_once(&big).await.unwrap(),
        TransferOutcome::InsufficientFunds
    );
    assert_eq!(usd(&store, &user).await, 600);
    assert_eq!(store.webhook_by_txid("tx3").await.unwrap(), None);
    let mut fits = big.clone();
    fits.transfers = vec![transfer(&user, &merchant, 600)];
    assert!(matches!(
        store.apply_transfer_once(&fits).await.unwrap(),
        TransferOutcome::Applied(_)
    ));
    assert_eq!(usd(&store, &user).await, 0);
    assert_eq!(usd(&store, &merchant).await, 1000);
}

pub async fn concurrent_claims_have_exactly_one_winner<B: Backend>() {
    // Two stores on one file: the race crosses connections (SQLite locking), not just
    // the in-process mutex.
    let (guard, a) = B::open().await;
    let a = Arc::new(a);
    let b = Arc::new(B::open_again(&guard).await);
    let (user, _) = setup(&*a, 0).await;
    let qr = session("q1", Flow::WalletQr, SessionStatus::Pending, Some(&user));
    a.create_session(&qr).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16u64 {
        let store = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        tasks.push(tokio::spawn(async move {
            claim_session(&*store, "q1", &order(100 + i, 1), 100 + i, "{}", None, NOW)
                .await
                .unwrap()
        }));
    }
    let mut claimed = 0;
    let mut used = 0;
    let mut winner = None;
    for t in tasks {
        match t.await.unwrap() {
            ClaimOutcome::Claimed(s) => {
                claimed += 1;
                winner = s.submitted_by;
            }
            ClaimOutcome::Used => used += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((claimed, used), (1, 15));
    let stored = a.session("q1").await.unwrap().unwrap();
    assert_eq!(stored.submitted_by, winner);
    assert_eq!(stored.order.unwrap().merchant_ocid, winner.unwrap());
    assert_eq!(a.events_after(&user, 0, 100).await.unwrap().len(), 1);
}

pub async fn concurrent_settlements_debit_once<B: Backend>() {
    let (guard, a) = B::open().await;
    let a = Arc::new(a);
    let b = Arc::new(B::open_again(&guard).await);
    let (user, merchant) = setup(&*a, 1000).await;
    a.create_session(&payable("s1", &user, 250)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        let s = settlement("s1", &user, &format!("key{i}"), &format!("tx{i}"), 250);
        tasks.push(tokio::spawn(async move {
            settle_payment(&*store, &s).await.unwrap()
        }));
    }
    let mut paid = 0;
    let mut already = 0;
    for t in tasks {
        match t.await.unwrap() {
            SettleOutcome::Paid(_) => paid += 1,
            SettleOutcome::AlreadyPaid(s) => {
                assert_eq!(s.status, SessionStatus::Paid);
                already += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((paid, already), (1, 7));
    assert_eq!(usd(&*a, &user).await, 750);
    assert_eq!(usd(&*b, &merchant).await, 250);
    assert_eq!(count::<B>(&*a, "SELECT count(*) FROM webhooks").await, 1);
    assert_eq!(a.events_after(&user, 0, 100).await.unwrap().len(), 1);
}

/// The compare-and-set under every session transition: written only from the expected status
/// and account, with its event in the same transaction, nothing at all otherwise.
pub async fn update_session_if_records_its_nonce_in_the_same_transaction<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, _) = setup(&store, 0).await;
    let qr = session("q1", Flow::WalletQr, SessionStatus::Pending, Some(&user));
    store.create_session(&qr).await.unwrap();
    let mut claimed = qr.clone();
    claimed.status = SessionStatus::OrderReceived;
    claimed.order = Some(order(7, 500));
    claimed.submitted_by = Some(7);
    let update = |status, nonce: &str| SessionUpdate {
        session: claimed.clone(),
        expected_status: status,
        expected_account: Some(user.clone()),
        event: Some(NewEvent {
            account_id: user.clone(),
            kind: "payment_request".into(),
            payload_json: "{}".into(),
            now: NOW,
        }),
        nonce: Some(NonceUse::new("ocid:7".into(), nonce.into(), NOW)),
    };
    // A nonce used before refuses the whole update: no session change, no event.
    assert!(store
        .use_nonce("ocid:7", "seen", NOW + 600, NOW)
        .await
        .unwrap());
    assert_eq!(
        store
            .update_session_if(&update(SessionStatus::Pending, "seen"))
            .await
            .unwrap(),
        UpdateOutcome::NonceReused
    );
    assert_eq!(store.session("q1").await.unwrap(), Some(qr.clone()));
    assert!(store.events_after(&user, 0, 10).await.unwrap().is_empty());
    // A refused update leaves its nonce unrecorded.
    assert_eq!(
        store
            .update_session_if(&update(SessionStatus::OrderReceived, "first"))
            .await
            .unwrap(),
        UpdateOutcome::Refused
    );
    // The applied update records its nonce with it.
    assert_eq!(
        store
            .update_session_if(&update(SessionStatus::Pending, "second"))
            .await
            .unwrap(),
        UpdateOutcome::Applied
    );
    assert_eq!(store.session("q1").await.unwrap(), Some(claimed.clone()));
    assert!(!store
        .use_nonce("ocid:7", "second", NOW + 600, NOW)
        .await
        .unwrap());
    assert!(store
        .use_nonce("ocid:7", "first", NOW + 600, NOW)
        .await
        .unwrap());
}

pub async fn update_session_if_is_a_compare_and_set<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, _) = setup(&store, 0).await;
    let qr = session("q1", Flow::WalletQr, SessionStatus::Pending, Some(&user));
    store.create_session(&qr).await.unwrap();
    let mut claimed = qr.clone();
    claimed.status = SessionStatus::OrderReceived;
    claimed.order = Some(order(7, 500));
    claimed.submitted_by = Some(7);
    let event = NewEvent {
        account_id: user.clone(),
        kind: "payment_request".into(),
        payload_json: r#"{"k":1}"#.into(),
        now: NOW,
    };
    let update = |status, account: Option<&str>, id: &str| {
        let mut session = claimed.clone();
        session.id = id.into();
        SessionUpdate {
            session,
            expected_status: status,
            expected_account: account.map(str::to_owned),
            event: Some(event.clone()),
            nonce: None,
        }
    };
    // Wrong expected status, wrong or missing account, unknown id: nothing written.
    for refused in [
        update(SessionStatus::OrderReceived, Some(&user), "q1"),
        update(SessionStatus::Pending, Some("someone"), "q1"),
        update(SessionStatus::Pending, None, "q1"),
        update(SessionStatus::Pending, Some(&user), "nope"),
    ] {
        assert_eq!(
            store.update_session_if(&refused).await.unwrap(),
            UpdateOutcome::Refused
        );
    }
    assert_eq!(store.session("q1").await.unwrap(), Some(qr.clone()));
    assert!(store.events_after(&user, 0, 10).await.unwrap().is_empty());
    // The expected state: the whole new session and the event.
    assert_eq!(
        store
            .update_session_if(&update(SessionStatus::Pending, Some(&user), "q1"))
            .await
            .unwrap(),
        UpdateOutcome::Applied
    );
    assert_eq!(store.session("q1").await.unwrap(), Some(claimed.clone()));
    let events = store.events_after(&user, 0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind.as_str(), events[0].payload_json.as_str()),
        ("payment_request", r#"{"k":1}"#)
    );
    // The same update again no longer matches: the row moved on.
    assert_eq!(
        store
            .update_session_if(&update(SessionStatus::Pending, Some(&user), "q1"))
            .await
            .unwrap(),
        UpdateOutcome::Refused
    );
    assert_eq!(store.events_after(&user, 0, 10).await.unwrap().len(), 1);
    // An unbound checkout matches `expected_account: None`; no event is fine.
    let mut cs = session("cs_1", Flow::Checkout, SessionStatus::OrderReceived, None);
    cs.order = Some(order(7, 100));
    cs.status_token = "tok_cs".into();
    store.create_session(&cs).await.unwrap();
    let mut bound = cs.clone();
    bound.account_id = Some(user.clone());
    let attach = SessionUpdate {
        session: bound.clone(),
        expected_status: SessionStatus::OrderReceived,
        expected_account: None,
        event: None,
        nonce: None,
    };
    assert_eq!(
        store.update_session_if(&attach).await.unwrap(),
        UpdateOutcome::Applied
    );
    assert_eq!(
        store.update_session_if(&attach).await.unwrap(),
        UpdateOutcome::Refused
    );
    assert_eq!(store.session("cs_1").await.unwrap(), Some(bound));
    assert_eq!(store.events_after(&user, 0, 10).await.unwrap().len(), 1);
}

/// The settlement write is conditional on the session still being the payer's prompt, and
/// tells the settle key back once written.
pub async fn apply_settlement_refuses_a_changed_session<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, merchant) = setup(&store, 1000).await;
    let mallory = store.create_account("user", "Mallory", NOW).await.unwrap();
    let s1 = payable("s1", &user, 300);
    store.create_session(&s1).await.unwrap();
    let plan = |payer: &str| {
        let mut paid = s1.clone();
        paid.status = SessionStatus::Paid;
        paid.txid = Some("tx1".into());
        paid.paid_at = Some(NOW + 10);
        paid.proof_json = Some("{}".into());
        SettlementPlan {
            paid,
            payer: payer.into(),
            consent_json: "{}".into(),
            reference: "tx1".into(),
            transfers: vec![transfer(&user, &merchant, 300)],
            webhook: None,
            event: NewEvent {
                account_id: payer.into(),
                kind: "payment_status".into(),
                payload_json: "{}".into(),
                now: NOW + 10,
            },
            idempotency_key: "k1".into(),
            now: NOW + 10,
        }
    };
    assert_eq!(store.settle_key("k1").await.unwrap(), None);
    // Not the payer's session: nothing written.
    assert_eq!(
        store.apply_settlement(&plan(&mallory.id)).await.unwrap(),
        PlanOutcome::Conflict
    );
    // Declined in between: nothing written.
    let mut declined = s1.clone();
    declined.status = SessionStatus::Declined;
    let decline = SessionUpdate {
        session: declined,
        expected_status: SessionStatus::OrderReceived,
        expected_account: Some(user.clone()),
        event: None,
        nonce: None,
    };
    let mut s2 = payable("s2", &user, 300);
    s2.status_token = "tok_s2".into();
    store.create_session(&s2).await.unwrap();
    let mut plan2 = plan(&user);
    plan2.paid.id = "s2".into();
    plan2.paid.status_token = "tok_s2".into();
    let mut decline2 = decline.clone();
    decline2.session.id = "s2".into();
    assert_eq!(
        store.update_session_if(&decline2).await.unwrap(),
        UpdateOutcome::Applied
    );
    assert_eq!(
        store.apply_settlement(&plan2).await.unwrap(),
        PlanOutcome::Conflict
    );
    assert_eq!(usd(&store, &user).await, 1000);
    assert!(store.events_after(&user, 0, 10).await.unwrap().is_empty());
    assert!(store
        .events_after(&mallory.id, 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        count::<B>(&store, "SELECT count(*) FROM idempotency").await,
        0
    );
    // The payer's prompt: written, and the key remembers the payer and the session.
    let PlanOutcome::Applied(paid) = store.apply_settlement(&plan(&user)).await.unwrap() else {
        panic!("expected Applied");
    };
    assert_eq!(paid, plan(&user).paid);
    assert_eq!(usd(&store, &user).await, 700);
    let key = store.settle_key("k1").await.unwrap().unwrap();
    assert_eq!(
        (key.account_id.as_deref(), key.session_id.as_deref()),
        (Some(user.as_str()), Some("s1"))
    );
    // The same plan again: the session is paid now.
    assert_eq!(
        store.apply_settlement(&plan(&user)).await.unwrap(),
        PlanOutcome::Conflict
    );
    assert_eq!(usd(&store, &user).await, 700);
}

/// The database records the first identity it is bound to, then only matches it (or its
/// newest on-purpose rotation); another key or another OCID is a mismatch that writes
/// nothing, and a rotation from a key that is not current is refused.
pub async fn identity_is_recorded_checked_and_rotated<B: Backend>() {
    let (_guard, store) = B::open().await;
    let id = |ocid: u64, key: char| Identity {
        ocid,
        public_key: key.to_string().repeat(128),
    };
    let rows = "SELECT count(*) FROM identity_keys";
    assert_eq!(
        store.bind_identity(&id(200, 'a'), NOW).await.unwrap(),
        IdentityCheck::Recorded
    );
    assert_eq!(
        store.bind_identity(&id(200, 'a'), NOW + 1).await.unwrap(),
        IdentityCheck::Matches
    );
    for other in [id(200, 'b'), id(201, 'a')] {
        assert_eq!(
            store.bind_identity(&other, NOW + 2).await.unwrap(),
            IdentityCheck::Mismatch(id(200, 'a'))
        );
    }
    assert_eq!(B::scalar(&store, rows).await, 1);

    // Rotation from a key that is not current: refused, nothing written.
    assert_eq!(
        store
            .rotate_identity(&id(200, 'b'), &"c".repeat(128), NOW + 3)
            .await
            .unwrap(),
        IdentityCheck::Mismatch(id(200, 'a'))
    );
    assert_eq!(B::scalar(&store, rows).await, 1);
    // From the current key: the new one is current, the old one refused from now on.
    assert_eq!(
        store
            .rotate_identity(&id(200, 'a'), &"b".repeat(128), NOW + 4)
            .await
            .unwrap(),
        IdentityCheck::Matches
    );
    assert_eq!(
        store.bind_identity(&id(200, 'b'), NOW + 5).await.unwrap(),
        IdentityCheck::Matches
    );
    assert_eq!(
        store.bind_identity(&id(200, 'a'), NOW + 5).await.unwrap(),
        IdentityCheck::Mismatch(id(200, 'b'))
    );
    // Another handle on the same database sees the same identity.
    let again = B::open_again(&_guard).await;
    assert_eq!(
        again.bind_identity(&id(200, 'b'), NOW + 6).await.unwrap(),
        IdentityCheck::Matches
    );
    assert_eq!(B::scalar(&store, rows).await, 2);

    // A database with no identity yet records the old key first, then the rotation.
    let (_guard2, fresh) = B::open().await;
    assert_eq!(
        fresh
            .rotate_identity(&id(300, 'x'), &"y".repeat(128), NOW)
            .await
            .unwrap(),
        IdentityCheck::Recorded
    );
    assert_eq!(
        fresh.bind_identity(&id(300, 'y'), NOW).await.unwrap(),
        IdentityCheck::Matches
    );
    assert_eq!(B::scalar(&fresh, rows).await, 2);
}

/// [`Store::ops_counts`] reports the pending webhooks, the pending wake-ups and the stored
/// nonces as they change; [`Store::check_writable`] succeeds on a healthy store and leaves no
/// trace (no probe nonce, no other row).
pub async fn ops_counts_follow_the_queues_and_the_write_probe_changes_nothing<B: Backend>() {
    let (_guard, store) = B::open().await;
    assert_eq!(store.ops_counts().await.unwrap(), OpsCounts::default());

    assert!(store
        .use_nonce("ocid:7", "n1", NOW + 300, NOW)
        .await
        .unwrap());
    assert!(store
        .use_nonce("ocid:7", "n2", NOW + 300, NOW)
        .await
        .unwrap());
    let hook = store
        .enqueue_webhook("tx_1", 7, "https://shop/transfer/webhook", "{}", NOW)
        .await
        .unwrap();
    let account = store.create_account("user", "Ada", NOW).await.unwrap().id;
    store
        .create_enrollment(&account, "code", NOW + 600, NOW)
        .await
        .unwrap();
    let device = "dev_0123456789abcdef0123456789abcdef";
    store
        .register_device("code", device, &"ab".repeat(64), NOW)
        .await
        .unwrap();
    store
        .set_push_token(
            device,
            PushProvider::Fcm,
            "tok",
            PushEnvironment::Production,
            NOW,
        )
        .await
        .unwrap();
    store
        .append_event(&account, "payment_request", r#"{"sessionId":"s1"}"#, NOW)
        .await
        .unwrap();
    let counts = store.ops_counts().await.unwrap();
    assert_eq!(
        counts,
        OpsCounts {
            pending_webhooks: 1,
            pending_pushes: 1,
            nonces: 2
        }
    );

    store.check_writable(Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        store.ops_counts().await.unwrap(),
        counts,
        "the probe changed nothing"
    );
    assert_eq!(
        B::scalar(&store, "SELECT count(*) FROM nonces WHERE scope = 'readyz'").await,
        0
    );

    store
        .record_webhook_attempt(hook.id, "delivered", NOW, None)
        .await
        .unwrap();
    assert_eq!(store.ops_counts().await.unwrap().pending_webhooks, 0);
}

/// A webhook claimed through one store is not claimed through another (its own connections)
/// before the lease ends; recording the attempt ends the lease at once.
pub async fn a_webhook_lease_holds_across_stores_until_it_ends_or_the_attempt_is_recorded<
    B: Backend,
>() {
    let (guard, a) = B::open().await;
    let b = B::open_again(&guard).await;
    let w = a
        .enqueue_webhook("tx1", 7, "https://a/hook", "body", NOW)
        .await
        .unwrap();
    assert_eq!(
        a.claim_webhooks(NOW, NOW + 60, 10).await.unwrap(),
        vec![w.clone()]
    );
    assert!(b
        .claim_webhooks(NOW, NOW + 60, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(b
        .claim_webhooks(NOW + 59, NOW + 120, 10)
        .await
        .unwrap()
        .is_empty());
    // The claimer died: at the lease's end the other store takes the row over.
    assert_eq!(
        b.claim_webhooks(NOW + 60, NOW + 120, 10).await.unwrap(),
        vec![w.clone()]
    );
    assert!(a
        .claim_webhooks(NOW + 61, NOW + 121, 10)
        .await
        .unwrap()
        .is_empty());
    // A retry recorded by the new holder ends its lease: due again at the retry time.
    b.record_webhook_attempt(w.id, "pending", NOW + 70, Some("timeout"))
        .await
        .unwrap();
    let retried = a.claim_webhooks(NOW + 70, NOW + 130, 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].id, retried[0].attempts), (w.id, 1));
    a.record_webhook_attempt(w.id, "delivered", NOW + 70, None)
        .await
        .unwrap();
    assert!(b
        .claim_webhooks(NOW + 1000, NOW + 1060, 10)
        .await
        .unwrap()
        .is_empty());
}

/// A device with an FCM token and one pending wake-up (`payment_request` of session `s1`).
async fn one_pending_wake_up<S: Store + ?Sized>(store: &S) -> i64 {
    let account = store.create_account("user", "Ada", NOW).await.unwrap().id;
    store
        .create_enrollment(&account, "code", NOW + 600, NOW)
        .await
        .unwrap();
    let device = "dev_0123456789abcdef0123456789abcdef";
    store
        .register_device("code", device, &"ab".repeat(64), NOW)
        .await
        .unwrap();
    store
        .set_push_token(
            device,
            PushProvider::Fcm,
            "tok",
            PushEnvironment::Production,
            NOW,
        )
        .await
        .unwrap();
    store
        .append_event(&account, "payment_request", r#"{"sessionId":"s1"}"#, NOW)
        .await
        .unwrap()
        .id
}

/// The push queue's leases, as the webhooks': one holder at a time across stores, taken over
/// at the lease's end, ended by the recorded attempt.
pub async fn a_push_lease_holds_across_stores_until_it_ends_or_the_attempt_is_recorded<
    B: Backend,
>() {
    let (guard, a) = B::open().await;
    let b = B::open_again(&guard).await;
    let event_id = one_pending_wake_up(&a).await;
    let claimed = a.claim_pushes(NOW, NOW + 60, 32).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].event_id, claimed[0].session_id.as_str()),
        (event_id, "s1")
    );
    assert!(b.claim_pushes(NOW, NOW + 60, 32).await.unwrap().is_empty());
    assert!(b
        .claim_pushes(NOW + 59, NOW + 119, 32)
        .await
        .unwrap()
        .is_empty());
    let taken_over = b.claim_pushes(NOW + 60, NOW + 120, 32).await.unwrap();
    assert_eq!(taken_over.len(), 1);
    assert_eq!(taken_over[0].id, claimed[0].id);
    // The provider asked for a retry at NOW + 65: the lease ends with the record.
    assert!(b
        .record_push_attempt(&PushAttempt {
            id: claimed[0].id,
            event_id,
            status: PushStatus::Pending,
            next_attempt_at: NOW + 65,
            last_error: Some("busy".into()),
            now: NOW + 60,
        })
        .await
        .unwrap());
    let again = a.claim_pushes(NOW + 65, NOW + 125, 32).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert!(a
        .record_push_attempt(&PushAttempt {
            id: claimed[0].id,
            event_id,
            status: PushStatus::Sent,
            next_attempt_at: NOW + 65,
            last_error: None,
            now: NOW + 65,
        })
        .await
        .unwrap());
    assert!(b
        .claim_pushes(NOW + 1000, NOW + 1060, 32)
        .await
        .unwrap()
        .is_empty());
}

/// 8 claimers on two stores race over 20 due webhooks: no row is handed to two claimers, and
/// every row is claimed by someone.
pub async fn concurrent_webhook_claims_never_share_a_row<B: Backend>() {
    let (guard, a) = B::open().await;
    let a = Arc::new(a);
    let b = Arc::new(B::open_again(&guard).await);
    for i in 0..20 {
        a.enqueue_webhook(&format!("tx{i}"), 7, "https://a/hook", "body", NOW)
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        tasks.push(tokio::spawn(async move {
            store.claim_webhooks(NOW, NOW + 60, 5).await.unwrap()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap().into_iter().map(|w| w.id));
    }
    // Whatever a claimer skipped is still free: one more claim takes the rest.
    ids.extend(
        a.claim_webhooks(NOW, NOW + 60, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.id),
    );
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "a row was claimed twice");
    assert_eq!(total, 20);
}
