//! Unit tests of the domain rules: no database, only sessions in memory.

use super::ledger;
use super::session::{self, Decision};
use super::settlement::{self, SettleDecision};
use crate::store::{
    AttachedOrder, ClaimOutcome, Flow, Session, SessionStatus, SettleKey, SettleOutcome,
    Settlement, Transfer,
};

const NOW: i64 = 1_700_000_000;

const ALL: [SessionStatus; 5] = [
    SessionStatus::Pending,
    SessionStatus::OrderReceived,
    SessionStatus::Paid,
    SessionStatus::Declined,
    SessionStatus::Expired,
];

fn order(ocid: u64, amount_minor: i64) -> AttachedOrder {
    AttachedOrder {
        order_json: format!(r#"{{"ocid":{ocid}}}"#),
        order_signature: "sig".into(),
        order_hash: "hash".into(),
        merchant_ocid: ocid,
        merchant_name: None,
        merchant_icon: None,
        order_id: "o1".into(),
        amount: "1.00".into(),
        amount_minor,
        currency: "USD".into(),
        urls_json: None,
    }
}

fn session(flow: Flow, status: SessionStatus, account: Option<&str>) -> Session {
    let account = account.map(str::to_owned);
    Session {
        status,
        ..Session::pending("s1".into(), flow, account, NOW, NOW + 300, "tok".into())
    }
}

fn prompt(account: &str) -> Session {
    let mut s = session(
        Flow::MerchantQr,
        SessionStatus::OrderReceived,
        Some(account),
    );
    s.order = Some(order(7, 100));
    s
}

fn settlement_for(account: &str, key: &str) -> Settlement {
    Settlement {
        session_id: "s1".into(),
        account_id: account.into(),
        idempotency_key: key.into(),
        consent_json: "{\"consent\":1}".into(),
        transfers: vec![Transfer {
            from_account: account.into(),
            to_account: "ocid:7".into(),
            currency: "USD".into(),
            minor: 100,
        }],
        txid: "tx1".into(),
        proof_json: "{\"proof\":1}".into(),
        webhook: Some(("https://shop/transfer/webhook".into(), 7)),
        event_json: "{\"status\":\"paid\"}".into(),
        now: NOW + 10,
    }
}

// ---- state machine ----

#[test]
fn transitions_follow_the_state_machine() {
    use SessionStatus::*;
    let allowed = [
        (Pending, OrderReceived),
        (Pending, Expired),
        (OrderReceived, Paid),
        (OrderReceived, Declined),
        (OrderReceived, Expired),
    ];
    for from in ALL {
        for to in ALL {
            assert_eq!(
                session::can_transition(from, to),
                allowed.contains(&(from, to)),
                "{from:?} -> {to:?}"
            );
        }
    }
    for status in ALL {
        let leaves = ALL.iter().any(|to| session::can_transition(status, *to));
        assert_eq!(session::is_final(status), !leaves, "{status:?}");
    }
}

#[test]
fn expiry_is_exclusive_and_only_for_unresolved_sessions() {
    for status in ALL {
        let mut s = session(Flow::WalletQr, status, Some("a"));
        let unresolved = session::EXPIRABLE.contains(&status);
        assert_eq!(
            session::is_expired(&s, s.expires_at - 1),
            status == SessionStatus::Expired,
            "{status:?} before expiry"
        );
        assert_eq!(
            session::is_expired(&s, s.expires_at),
            unresolved || status == SessionStatus::Expired,
            "{status:?} at expiry"
        );
        s.expires_at = NOW - 1000;
        assert_eq!(
            session::is_expired(&s, NOW),
            unresolved || status == SessionStatus::Expired
        );
    }
}

// ---- claim ----

#[test]
fn claim_attaches_the_order_to_a_pending_wallet_qr_session() {
    let s = session(Flow::WalletQr, SessionStatus::Pending, Some("a"));
    let Decision::Write(claimed) = session::decide_claim(Some(&s), &order(7, 500), 9, NOW) else {
        panic!("expected a write");
    };
    assert_eq!(claimed.status, SessionStatus::OrderReceived);
    assert_eq!(claimed.order, Some(order(7, 500)));
    assert_eq!(claimed.submitted_by, Some(9));
    assert_eq!(claimed.account_id.as_deref(), Some("a"));
    assert!(session::can_transition(s.status, claimed.status));
}

#[test]
fn claim_refusals() {
    let o = order(7, 1);
    let answer = |s: Option<&Session>, now| match session::decide_claim(s, &o, 7, now) {
        Decision::Answer(a) => a,
        Decision::Write(_) => panic!("unexpected write"),
    };
    assert_eq!(answer(None, NOW), ClaimOutcome::NotFound);
    for flow in [Flow::Checkout, Flow::MerchantQr] {
        let s = session(flow, SessionStatus::Pending, Some("a"));
        assert_eq!(answer(Some(&s), NOW), ClaimOutcome::NotFound, "{flow:?}");
    }
    let pending = session(Flow::WalletQr, SessionStatus::Pending, Some("a"));
    assert_eq!(
        answer(Some(&pending), pending.expires_at),
        ClaimOutcome::Expired
    );
    let expired = session(Flow::WalletQr, SessionStatus::Expired, Some("a"));
    assert_eq!(answer(Some(&expired), NOW), ClaimOutcome::Expired);
    for status in [
        SessionStatus::OrderReceived,
        SessionStatus::Paid,
        SessionStatus::Declined,
    ] {
        let s = session(Flow::WalletQr, status, Some("a"));
        assert_eq!(answer(Some(&s), NOW), ClaimOutcome::Used, "{status:?}");
    }
}

// ---- checkout attach ----

#[test]
fn attach_binds_an_open_checkout_once() {
    let mut open = session(Flow::Checkout, SessionStatus::OrderReceived, None);
    open.order = Some(order(7, 100));
    let Decision::Write(bound) = session::decide_attach(Some(&open), "a", NOW) else {
        panic!("expected a write");
    };
    assert_eq!(bound.account_id.as_deref(), Some("a"));
    assert_eq!(bound.status, SessionStatus::OrderReceived);
    // The holder re-opens it (whatever the status): the session, no write.
    for status in [SessionStatus::OrderReceived, SessionStatus::Paid] {
        let mut held = bound.clone();
        held.status = status;
        assert_eq!(
            session::decide_attach(Some(&held), "a", NOW),
            Decision::Answer(ClaimOutcome::Claimed(held.clone()))
        );
        assert_eq!(
            session::decide_attach(Some(&held), "b", NOW),
            Decision::Answer(ClaimOutcome::Used)
        );
    }
}

#[test]
fn attach_refusals() {
    assert_eq!(
        session::decide_attach(None, "a", NOW),
        Decision::Answer(ClaimOutcome::NotFound)
    );
    let qr = session(Flow::WalletQr, SessionStatus::Pending, None);
    assert_eq!(
        session::decide_attach(Some(&qr), "a", NOW),
        Decision::Answer(ClaimOutcome::NotFound)
    );
    let open = session(Flow::Checkout, SessionStatus::OrderReceived, None);
    assert_eq!(
        session::decide_attach(Some(&open), "a", open.expires_at),
        Decision::Answer(ClaimOutcome::Expired)
    );
    // Expiry wins even for the holder.
    let held = session(Flow::Checkout, SessionStatus::OrderReceived, Some("a"));
    assert_eq!(
        session::decide_attach(Some(&held), "a", held.expires_at),
        Decision::Answer(ClaimOutcome::Expired)
    );
    let declined = session(Flow::Checkout, SessionStatus::Declined, None);
    assert_eq!(
        session::decide_attach(Some(&declined), "a", NOW),
        Decision::Answer(ClaimOutcome::Used)
    );
}

// ---- decline ----

#[test]
fn decline_marks_the_owners_prompt_declined() {
    let s = prompt("a");
    let Decision::Write(declined) = session::decide_decline(Some(&s), "a", "too pricey", NOW)
    else {
        panic!("expected a write");
    };
    assert_eq!(declined.status, SessionStatus::Declined);
    assert_eq!(declined.decline_reason.as_deref(), Some("too pricey"));
    assert!(session::can_transition(s.status, declined.status));
    // A retry answers with the stored session.
    assert_eq!(
        session::decide_decline(Some(&declined), "a", "again", NOW),
        Decision::Answer(SettleOutcome::Declined(declined.clone()))
    );
}

#[test]
fn decline_refusals() {
    let answer = |s: Option<&Session>, account: &str, now| match session::decide_decline(
        s, account, "no", now,
    ) {
        Decision::Answer(a) => a,
        Decision::Write(_) => panic!("unexpected write"),
    };
    assert_eq!(answer(None, "a", NOW), SettleOutcome::NotFound);
    let s = prompt("a");
    assert_eq!(answer(Some(&s), "b", NOW), SettleOutcome::Forbidden);
    assert_eq!(
        answer(Some(&s), "a", s.expires_at),
        SettleOutcome::InvalidState(SessionStatus::Expired)
    );
    let mut paid = s.clone();
    paid.status = SessionStatus::Paid;
    assert_eq!(
        answer(Some(&paid), "a", NOW),
        SettleOutcome::AlreadyPaid(paid.clone())
    );
    for status in [SessionStatus::Pending, SessionStatus::Expired] {
        let mut other = s.clone();
        other.status = status;
        assert_eq!(
            answer(Some(&other), "a", NOW),
            SettleOutcome::InvalidState(status)
        );
    }
}

// ---- settlement ----

#[test]
fn settlement_pays_an_unexpired_prompt_of_the_payer() {
    let s = prompt("a");
    assert_eq!(
        settlement::decide(None, Some(&s), "a", NOW),
        SettleDecision::Pay(s.clone())
    );
    let plan = settlement::plan(&s, &settlement_for("a", "k1"));
    assert_eq!(plan.paid.status, SessionStatus::Paid);
    assert_eq!(plan.paid.txid.as_deref(), Some("tx1"));
    assert_eq!(plan.paid.paid_at, Some(NOW + 10));
    assert_eq!(plan.paid.proof_json.as_deref(), Some("{\"proof\":1}"));
    assert_eq!((plan.payer.as_str(), plan.reference.as_str()), ("a", "tx1"));
    assert_eq!(plan.consent_json, "{\"consent\":1}");
    assert_eq!(plan.idempotency_key, "k1");
    let hook = plan.webhook.expect("webhook");
    assert_eq!(
        (hook.txid.as_str(), hook.target_ocid, hook.body.as_str()),
        ("tx1", 7, "{\"proof\":1}")
    );
    assert_eq!(
        (plan.event.account_id.as_str(), plan.event.kind.as_str()),
        ("a", "payment_status")
    );
    assert!(session::can_transition(s.status, plan.paid.status));
}

#[test]
fn settlement_debits_the_payer_the_order_amount() {
    let o = order(7, 825);
    let t = settlement::payment_transfer("acct_a", "ocid:7", &o);
    assert_eq!(
        t,
        Transfer {
            from_account: "acct_a".into(),
            to_account: "ocid:7".into(),
            currency: "USD".into(),
            minor: 825,
        }
    );
}

#[test]
fn settlement_refusals() {
    let s = prompt("a");
    assert_eq!(
        settlement::decide(None, None, "a", NOW),
        SettleDecision::Answer(SettleOutcome::NotFound)
    );
    assert_eq!(
        settlement::decide(None, Some(&s), "b", NOW),
        SettleDecision::Answer(SettleOutcome::Forbidden)
    );
    assert_eq!(
        settlement::decide(None, Some(&s), "a", s.expires_at),
        SettleDecision::Answer(SettleOutcome::InvalidState(SessionStatus::Expired))
    );
    for status in [
        SessionStatus::Pending,
        SessionStatus::Declined,
        SessionStatus::Expired,
    ] {
        let mut other = s.clone();
        other.status = status;
        assert_eq!(
            settlement::decide(None, Some(&other), "a", NOW),
            SettleDecision::Answer(SettleOutcome::InvalidState(status))
        );
    }
}

#[test]
fn settlement_is_idempotent_by_key_and_by_state() {
    let s = prompt("a");
    let mut paid = settlement::paid(&s, "tx1", "{}", NOW);
    let key = |account: &str, session: &str| SettleKey {
        account_id: Some(account.into()),
        session_id: Some(session.into()),
    };
    // Same key, same account and session: the stored session, even before it shows paid.
    assert_eq!(
        settlement::decide(Some(&key("a", "s1")), Some(&s), "a", NOW),
        SettleDecision::Answer(SettleOutcome::AlreadyPaid(s.clone()))
    );
    // ... and even past expiry.
    assert_eq!(
        settlement::decide(Some(&key("a", "s1")), Some(&paid), "a", paid.expires_at + 1),
        SettleDecision::Answer(SettleOutcome::AlreadyPaid(paid.clone()))
    );
    // A new key on a paid session: no second payment.
    assert_eq!(
        settlement::decide(None, Some(&paid), "a", NOW),
        SettleDecision::Answer(SettleOutcome::AlreadyPaid(paid.clone()))
    );
    // A key of another account or session is not trusted.
    assert_eq!(
        settlement::decide(Some(&key("a", "s1")), Some(&paid), "b", NOW),
        SettleDecision::Answer(SettleOutcome::Forbidden)
    );
    assert_eq!(
        settlement::decide(Some(&key("a", "s2")), Some(&s), "a", NOW),
        SettleDecision::Pay(s.clone())
    );
    let partial = SettleKey {
        account_id: None,
        session_id: Some("s1".into()),
    };
    assert!(!settlement::key_matches(Some(&partial), "a", "s1"));
    paid.account_id = Some("b".into());
    assert_eq!(
        settlement::decide(Some(&key("a", "s1")), Some(&paid), "a", NOW),
        SettleDecision::Answer(SettleOutcome::AlreadyPaid(paid.clone())),
        "the key binds the account; the stored session is returned"
    );
}

// ---- ledger ----

#[test]
fn ledger_rules() {
    assert!(ledger::may_go_negative("funding"));
    for kind in ["user", "merchant", "partner_reserve"] {
        assert!(!ledger::may_go_negative(kind));
        assert!(!ledger::balance_allowed(kind, -1));
        assert!(ledger::balance_allowed(kind, 0));
    }
    assert!(ledger::balance_allowed("funding", -1));
    let t = |minor| Transfer {
        from_account: "a".into(),
        to_account: "b".into(),
        currency: "USD".into(),
        minor,
    };
    assert!(ledger::check_transfer(&t(1)).is_ok());
    assert!(ledger::check_transfer(&t(0)).is_err());
    assert!(ledger::check_transfer(&t(-5)).is_err());
    assert_eq!(ledger::debit(10, 4, "a"), Ok(6));
    assert_eq!(ledger::credit(10, 4, "a"), Ok(14));
    assert!(ledger::credit(i64::MAX, 1, "a")
        .unwrap_err()
        .contains("overflow"));
    assert!(ledger::debit(i64::MIN, 1, "a")
        .unwrap_err()
        .contains("overflow"));
}
