//! Contract cases of the third-party settlement jobs (every backend): the hold that starts a
//! job happens once, leases keep two runners (two stores on one database) off one job, each
//! step's answer is a compare-and-set, the paid and failed finishes are all-or-nothing and
//! final, and stored proofs are found by txid.

use opencharge_gateway::domain::decline_session;
use opencharge_gateway::store::{
    JobFailed, JobFinish, JobPaid, JobState, JobStep, NewEvent, NewThirdPartyJob, SessionStatus,
    SettleOutcome, StartOutcome, Store, TransferOnce, TransferOutcome,
};

use super::{payable, setup, usd, Backend, NOW};

const HOLD: &str = "hold:third-party";

/// A job for session `id` of `account` holding `minor` cents, leased until `NOW + 60`.
fn new_job(id: &str, account: &str, minor: i64, now: i64) -> NewThirdPartyJob {
    NewThirdPartyJob {
        session_id: id.into(),
        account_id: account.into(),
        hold_account: HOLD.into(),
        merchant_gateway: 7,
        currency: "USD".into(),
        minor,
        idempotency_key: format!("key-{id}"),
        consent_json: r#"{"consent":1}"#.into(),
        lease_until: NOW + 60,
        now,
    }
}

/// A funded user with a payable session `s1` of 1234 cents and the hold account.
async fn funded<S: Store + ?Sized>(store: &S, minor: i64) -> String {
    let (user, _) = setup(store, minor).await;
    store
        .ensure_account(HOLD, "partner_reserve", "Holds", NOW)
        .await
        .unwrap();
    store
        .create_session(&payable("s1", &user, 1234))
        .await
        .unwrap();
    user
}

/// Moves a started job to `transferred` with provider 9, pending txid `mg_tx`.
async fn to_transferred<S: Store + ?Sized>(store: &S) {
    let created = JobStep {
        session_id: "s1".into(),
        expected: JobState::Held,
        state: JobState::Created,
        provider: Some(9),
        pending_txid: Some("mg_tx".into()),
        pending_expires_at: Some(NOW + 3600),
        provider_proof: None,
        now: NOW + 1,
    };
    assert!(store.record_third_party_step(&created).await.unwrap());
    let transferred = JobStep {
        expected: JobState::Created,
        state: JobState::Transferred,
        provider: None,
        pending_txid: None,
        pending_expires_at: None,
        provider_proof: Some(r#"{"proof":{"txid":"s_tx"},"signature":"s"}"#.into()),
        ..created
    };
    assert!(store.record_third_party_step(&transferred).await.unwrap());
}

fn event(account: &str, status: &str) -> NewEvent {
    NewEvent {
        account_id: account.into(),
        kind: "payment_status".into(),
        payload_json: format!(
            r#"{{"type":"payment_status","sessionId":"s1","status":"{status}"}}"#
        ),
        now: NOW + 5,
    }
}

pub async fn third_party_start_holds_once_and_refuses_what_cannot_pay<B: Backend>() {
    let (_guard, store) = B::open().await;
    let user = funded(&store, 5000).await;
    // Too little money: nothing changes, no job.
    let poor = store.create_account("user", "Bob", NOW).await.unwrap();
    store
        .create_session(&payable("s2", &poor.id, 1234))
        .await
        .unwrap();
    assert_eq!(
        store
            .start_third_party(&new_job("s2", &poor.id, 1234, NOW))
            .await
            .unwrap(),
        StartOutcome::InsufficientFunds
    );
    assert_eq!(store.third_party_job("s2").await.unwrap(), None);
    // Another account's session, or an expired one: a conflict, nothing held.
    assert_eq!(
        store
            .start_third_party(&new_job("s1", &poor.id, 1234, NOW))
            .await
            .unwrap(),
        StartOutcome::Conflict
    );
    assert_eq!(
        store
            .start_third_party(&new_job("s1", &user, 1234, NOW + 300))
            .await
            .unwrap(),
        StartOutcome::Conflict
    );
    assert_eq!(usd(&store, &user).await, 5000);
    assert_eq!(usd(&store, HOLD).await, 0);

    let StartOutcome::Started(job) = store
        .start_third_party(&new_job("s1", &user, 1234, NOW))
        .await
        .unwrap()
    else {
        panic!("not started");
    };
    assert_eq!(job.state, JobState::Held);
    assert_eq!((job.attempts, job.next_attempt_at), (0, NOW));
    assert_eq!(job.idempotency_key, "key-s1");
    assert_eq!(usd(&store, &user).await, 5000 - 1234);
    assert_eq!(usd(&store, HOLD).await, 1234);
    // A second start (a retry, another key) finds the job and holds nothing more.
    let mut again = new_job("s1", &user, 1234, NOW + 1);
    again.idempotency_key = "other".into();
    assert_eq!(
        store.start_third_party(&again).await.unwrap(),
        StartOutcome::Existing(job.clone())
    );
    assert_eq!(usd(&store, &user).await, 5000 - 1234);
    assert_eq!(usd(&store, HOLD).await, 1234);
    // The session itself is untouched until the job ends, and cannot be declined meanwhile:
    // the user confirmed first.
    assert_eq!(
        decline_session(&store, "s1", &user, "changed my mind", "{}", NOW + 2)
            .await
            .unwrap(),
        SettleOutcome::InvalidState(SessionStatus::OrderReceived)
    );
    let s = store.session("s1").await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::OrderReceived);
    assert_eq!(s.decline_reason, None);
}

pub async fn third_party_leases_steps_and_retries<B: Backend>() {
    let (guard, store) = B::open().await;
    let other = B::open_again(&guard).await;
    let user = funded(&store, 5000).await;
    assert!(matches!(
        store
            .start_third_party(&new_job("s1", &user, 1234, NOW))
            .await
            .unwrap(),
        StartOutcome::Started(_)
    ));
    // Leased to the starting request until NOW + 60: nobody else claims it.
    assert!(other
        .claim_third_party_jobs(NOW + 59, NOW + 120, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        other
            .claim_third_party_job("s1", NOW + 59, NOW + 120)
            .await
            .unwrap(),
        None
    );
    // A step's answer is a compare-and-set on the state.
    to_transferred(&store).await;
    let stale = JobStep {
        session_id: "s1".into(),
        expected: JobState::Held,
        state: JobState::Created,
        provider: Some(10),
        pending_txid: Some("other".into()),
        pending_expires_at: None,
        provider_proof: None,
        now: NOW + 2,
    };
    assert!(!store.record_third_party_step(&stale).await.unwrap());
    let job = store.third_party_job("s1").await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Transferred);
    assert_eq!(job.provider, Some(9));
    assert_eq!(job.pending_txid.as_deref(), Some("mg_tx"));
    assert_eq!(job.pending_expires_at, Some(NOW + 3600));
    assert!(job.provider_proof.unwrap().contains("s_tx"));
    // A failed attempt: counted, lease cleared, due later.
    assert!(store
        .record_third_party_retry("s1", NOW + 100, "503 from the MG", NOW + 3)
        .await
        .unwrap());
    let job = store.third_party_job("s1").await.unwrap().unwrap();
    assert_eq!(job.attempts, 1);
    assert_eq!(job.next_attempt_at, NOW + 100);
    assert_eq!(job.last_error.as_deref(), Some("503 from the MG"));
    assert!(other
        .claim_third_party_jobs(NOW + 99, NOW + 200, 10)
        .await
        .unwrap()
        .is_empty());
    let due = other
        .claim_third_party_jobs(NOW + 100, NOW + 200, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].session_id, "s1");
    // Claimed by `other` until NOW + 200: neither store gets it again before.
    assert!(store
        .claim_third_party_jobs(NOW + 150, NOW + 300, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .claim_third_party_job("s1", NOW + 150, NOW + 300)
            .await
            .unwrap(),
        None
    );
    // Once the lease ends, a user's retry claims it whatever its next attempt time.
    assert!(store
        .record_third_party_retry("s1", NOW + 10_000, "again", NOW + 160)
        .await
        .unwrap());
    assert!(store
        .claim_third_party_job("s1", NOW + 161, NOW + 200)
        .await
        .unwrap()
        .is_some());
}

pub async fn third_party_paid_moves_the_hold_and_pays_once<B: Backend>() {
    let (_guard, store) = B::open().await;
    let user = funded(&store, 5000).await;
    store
        .ensure_account("reserve-clearing:9", "partner_reserve", "Clearing", NOW)
        .await
        .unwrap();
    assert!(matches!(
        store
            .start_third_party(&new_job("s1", &user, 1234, NOW))
            .await
            .unwrap(),
        StartOutcome::Started(_)
    ));
    let paid = JobPaid {
        session_id: "s1".into(),
        txid: "mg_tx".into(),
        mg_proof: r#"{"proof":{"txid":"mg_tx","issuer":7},"signature":"g"}"#.into(),
        clearing_account: "reserve-clearing:9".into(),
        event: event(&user, "paid"),
        now: NOW + 5,
    };
    // Not transferred yet: refused, nothing written.
    assert_eq!(
        store.finish_third_party_paid(&paid).await.unwrap(),
        JobFinish::Conflict
    );
    to_transferred(&store).await;
    let events_before = store.events_after(&user, 0, 100).await.unwrap().len();
    let JobFinish::Finished(session) = store.finish_third_party_paid(&paid).await.unwrap() else {
        panic!("not finished");
    };
    assert_eq!(session.status, SessionStatus::Paid);
    assert_eq!(session.txid.as_deref(), Some("mg_tx"));
    assert_eq!(session.paid_at, Some(NOW + 5));
    assert_eq!(session.proof_json.as_deref(), Some(paid.mg_proof.as_str()));
    assert_eq!(usd(&store, &user).await, 5000 - 1234);
    assert_eq!(usd(&store, HOLD).await, 0);
    assert_eq!(usd(&store, "reserve-clearing:9").await, 1234);
    let events = store.events_after(&user, 0, 100).await.unwrap();
    assert_eq!(events.len(), events_before + 1);
    assert!(events.last().unwrap().payload_json.contains("\"paid\""));
    let key = store.settle_key("key-s1").await.unwrap().unwrap();
    assert_eq!(key.session_id.as_deref(), Some("s1"));
    assert_eq!(key.account_id.as_deref(), Some(user.as_str()));
    let job = store.third_party_job("s1").await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Paid);
    assert_eq!(job.mg_proof.as_deref(), Some(paid.mg_proof.as_str()));
    assert_eq!(
        store.stored_proof("mg_tx").await.unwrap(),
        Some(paid.mg_proof.clone())
    );
    // Final: neither finish writes again, no claim returns it.
    assert_eq!(
        store.finish_third_party_paid(&paid).await.unwrap(),
        JobFinish::Conflict
    );
    let failed = JobFailed {
        session_id: "s1".into(),
        state: JobState::Failed,
        session_status: SessionStatus::Declined,
        reason: "late".into(),
        event: event(&user, "declined"),
        now: NOW + 6,
    };
    assert_eq!(
        store.finish_third_party_failed(&failed).await.unwrap(),
        JobFinish::Conflict
    );
    assert!(store
        .claim_third_party_jobs(NOW + 1000, NOW + 2000, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(usd(&store, &user).await, 5000 - 1234);
    assert_eq!(usd(&store, "reserve-clearing:9").await, 1234);
    assert_eq!(
        store.events_after(&user, 0, 100).await.unwrap().len(),
        events.len()
    );
}

pub async fn third_party_failure_refunds_and_keeps_the_record<B: Backend>() {
    let (_guard, store) = B::open().await;
    let user = funded(&store, 5000).await;
    assert!(matches!(
        store
            .start_third_party(&new_job("s1", &user, 1234, NOW))
            .await
            .unwrap(),
        StartOutcome::Started(_)
    ));
    to_transferred(&store).await;
    let failed = JobFailed {
        session_id: "s1".into(),
        state: JobState::FailedReconcile,
        session_status: SessionStatus::Declined,
        reason: "AMOUNT_MISMATCH: refused".into(),
        event: event(&user, "declined"),
        now: NOW + 6,
    };
    let JobFinish::Finished(session) = store.finish_third_party_failed(&failed).await.unwrap()
    else {
        panic!("not finished");
    };
    assert_eq!(session.status, SessionStatus::Declined);
    assert_eq!(
        session.decline_reason.as_deref(),
        Some("AMOUNT_MISMATCH: refused")
    );
    assert_eq!(session.txid, None);
    assert_eq!(usd(&store, &user).await, 5000);
    assert_eq!(usd(&store, HOLD).await, 0);
    let job = store.third_party_job("s1").await.unwrap().unwrap();
    assert_eq!(job.state, JobState::FailedReconcile);
    assert_eq!(job.last_error.as_deref(), Some("AMOUNT_MISMATCH: refused"));
    // The reconciliation record is listed by state; a refund happens once.
    let records = store
        .third_party_jobs(Some(JobState::FailedReconcile), 10)
        .await
        .unwrap();
    assert_eq!(records, vec![job.clone()]);
    assert!(store
        .third_party_jobs(Some(JobState::Failed), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.third_party_jobs(None, 10).await.unwrap().len(), 1);
    assert_eq!(
        store.finish_third_party_failed(&failed).await.unwrap(),
        JobFinish::Conflict
    );
    assert_eq!(usd(&store, &user).await, 5000);
    // A failed state is required.
    let mut wrong = failed.clone();
    wrong.state = JobState::Created;
    assert!(store.finish_third_party_failed(&wrong).await.is_err());
}

pub async fn stored_proofs_are_found_by_txid<B: Backend>() {
    let (_guard, store) = B::open().await;
    let (user, merchant) = setup(&store, 1000).await;
    let once = TransferOnce {
        idempotency_key: "transfer:9:tp:s1".into(),
        reference: "tx_issued".into(),
        transfers: vec![super::transfer(&user, &merchant, 400)],
        result_json: r#"{"proof":{"txid":"tx_issued"},"signature":"s"}"#.into(),
        webhook: None,
        now: NOW,
    };
    assert!(matches!(
        store.apply_transfer_once(&once).await.unwrap(),
        TransferOutcome::Applied(_)
    ));
    assert_eq!(
        store.stored_proof("tx_issued").await.unwrap(),
        Some(once.result_json.clone())
    );
    assert_eq!(store.stored_proof("tx_unknown").await.unwrap(), None);
}
