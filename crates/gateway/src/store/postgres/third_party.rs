//! PostgreSQL third-party settlement jobs: the same operations as the SQLite store's
//! `third_party.rs` (hold + job row, claims with leases, step answers, the final paid and
//! failed transactions, the listing, stored proofs by txid). A job's session row is locked
//! (`FOR UPDATE`) before the job is read in the transactions that create or finish it, so two
//! instances never hold twice or finish one job twice; claims skip rows another transaction
//! is claiming (`FOR UPDATE SKIP LOCKED`).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::events::insert_event;
use super::ledger::apply_transfers_in;
use super::{execute, fail, ocid_param, ocid_value, parse_name, query, query_opt, Step, Tx, R};
use crate::domain::ledger::LedgerOutcome;
use crate::store::{
    JobFailed, JobFinish, JobPaid, JobState, JobStep, NewThirdPartyJob, StartOutcome,
    ThirdPartyJob, Transfer,
};

/// Columns read by [`read_job`].
const JOB_COLS: &str = "session_id, account_id, hold_account, merchant_gateway, provider, \
     state, currency, minor, idempotency_key, consent_json, pending_txid, pending_expires_at, \
     provider_proof, mg_proof, attempts, next_attempt_at, last_error, created_at, updated_at";

/// The active states, as SQL.
const ACTIVE: &str = "('held', 'created', 'transferred')";

/// Reads a [`ThirdPartyJob`] row selected with [`JOB_COLS`].
fn read_job(row: &Row) -> R<ThirdPartyJob> {
    let state: String = row.try_get(5)?;
    Ok(ThirdPartyJob {
        session_id: row.try_get(0)?,
        account_id: row.try_get(1)?,
        hold_account: row.try_get(2)?,
        merchant_gateway: ocid_value(row.try_get(3)?, "merchant_gateway")?,
        provider: row
            .try_get::<_, Option<i64>>(4)?
            .map(|v| ocid_value(v, "provider"))
            .transpose()?,
        state: parse_name(&state, "state", JobState::parse)?,
        currency: row.try_get(6)?,
        minor: row.try_get(7)?,
        idempotency_key: row.try_get(8)?,
        consent_json: row.try_get(9)?,
        pending_txid: row.try_get(10)?,
        pending_expires_at: row.try_get(11)?,
        provider_proof: row.try_get(12)?,
        mg_proof: row.try_get(13)?,
        attempts: row.try_get(14)?,
        next_attempt_at: row.try_get(15)?,
        last_error: row.try_get(16)?,
        created_at: row.try_get(17)?,
        updated_at: row.try_get(18)?,
    })
}

/// The job of a session.
pub(super) async fn job<C: GenericClient + Sync>(
    c: &C,
    session_id: &str,
) -> R<Option<ThirdPartyJob>> {
    let sql = format!("SELECT {JOB_COLS} FROM third_party_jobs WHERE session_id = $1");
    query_opt(c, &sql, &[&session_id])
        .await?
        .map(|r| read_job(&r))
        .transpose()
}

/// Locks a session row for the rest of the transaction; `false` if it does not exist.
async fn lock_session(tx: &Tx<'_>, session_id: &str) -> R<bool> {
    Ok(query_opt(
        tx,
        "SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE",
        &[&session_id],
    )
    .await?
    .is_some())
}

/// Hold + job row in one transaction.
pub(super) async fn start(tx: &Tx<'_>, j: &NewThirdPartyJob) -> R<Step<StartOutcome>> {
    if !lock_session(tx, &j.session_id).await? {
        return Ok(Step::Rollback(StartOutcome::Conflict));
    }
    if let Some(existing) = job(tx, &j.session_id).await? {
        return Ok(Step::Rollback(StartOutcome::Existing(existing)));
    }
    let payable = query_opt(
        tx,
        "SELECT 1 FROM sessions WHERE id = $1 AND status = 'order_received' \
         AND account_id = $2 AND expires_at > $3",
        &[&j.session_id, &j.account_id, &j.now],
    )
    .await?;
    if payable.is_none() {
        return Ok(Step::Rollback(StartOutcome::Conflict));
    }
    let hold = Transfer {
        from_account: j.account_id.clone(),
        to_account: j.hold_account.clone(),
        currency: j.currency.clone(),
        minor: j.minor,
    };
    let reference = format!("tp-hold:{}", j.session_id);
    match apply_transfers_in(tx, &reference, &[hold], j.now).await? {
        LedgerOutcome::Applied => {}
        LedgerOutcome::InsufficientFunds => {
            return Ok(Step::Rollback(StartOutcome::InsufficientFunds));
        }
        LedgerOutcome::BalanceOutOfRange(account) => {
            return Err(fail(format!(
                "the hold account {account} would pass the ledger's range"
            )));
        }
    }
    let gateway = ocid_param(j.merchant_gateway, "merchant gateway OCID")?;
    execute(
        tx,
        "INSERT INTO third_party_jobs (session_id, account_id, hold_account, merchant_gateway, \
         state, currency, minor, idempotency_key, consent_json, attempts, next_attempt_at, \
         lease_until, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'held', $5, $6, $7, $8, 0, $9, $10, $9, $9)",
        &[
            &j.session_id,
            &j.account_id,
            &j.hold_account,
            &gateway,
            &j.currency,
            &j.minor,
            &j.idempotency_key,
            &j.consent_json,
            &j.now,
            &j.lease_until,
        ],
    )
    .await?;
    let started = job(tx, &j.session_id)
        .await?
        .ok_or_else(|| fail("job vanished"))?;
    Ok(Step::Commit(StartOutcome::Started(started)))
}

/// Leases one session's active job if its lease is free.
pub(super) async fn claim_one(
    tx: &Tx<'_>,
    session_id: &str,
    now: i64,
    lease_until: i64,
) -> R<Step<Option<ThirdPartyJob>>> {
    let sql = format!(
        "UPDATE third_party_jobs SET lease_until = $3 WHERE session_id = $1 \
         AND state IN {ACTIVE} AND (lease_until IS NULL OR lease_until <= $2) \
         RETURNING {JOB_COLS}"
    );
    let claimed = query_opt(tx, &sql, &[&session_id, &now, &lease_until])
        .await?
        .map(|r| read_job(&r))
        .transpose()?;
    Ok(Step::Commit(claimed))
}

/// Whether any active job is due at `now` with a free lease (a plain read, so an idle
/// worker's poll writes nothing).
pub(super) async fn any_due<C: GenericClient + Sync>(c: &C, now: i64) -> R<bool> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM third_party_jobs WHERE state IN {ACTIVE} \
         AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1))"
    );
    Ok(query_opt(c, &sql, &[&now])
        .await?
        .map(|r| r.try_get::<_, bool>(0))
        .transpose()?
        .unwrap_or(false))
}

/// Leases the due active jobs whose lease is free, oldest first; rows another transaction is
/// claiming are skipped.
pub(super) async fn claim_due(
    tx: &Tx<'_>,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> R<Step<Vec<ThirdPartyJob>>> {
    let sql = format!(
        "UPDATE third_party_jobs SET lease_until = $2 WHERE session_id IN (\
             SELECT session_id FROM third_party_jobs WHERE state IN {ACTIVE} \
             AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) \
             ORDER BY created_at, session_id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING {JOB_COLS}"
    );
    let mut claimed = query(tx, &sql, &[&now, &lease_until, &i64::from(limit)])
        .await?
        .iter()
        .map(read_job)
        .collect::<R<Vec<_>>>()?;
    claimed.sort_by(|a, b| (a.created_at, &a.session_id).cmp(&(b.created_at, &b.session_id)));
    Ok(Step::Commit(claimed))
}

/// Stores a step's answer if the job is still in the expected state.
pub(super) async fn record_step(tx: &Tx<'_>, s: &JobStep) -> R<Step<bool>> {
    let provider = s
        .provider
        .map(|p| ocid_param(p, "provider OCID"))
        .transpose()?;
    let changed = execute(
        tx,
        "UPDATE third_party_jobs SET state = $3, provider = COALESCE($4, provider), \
         pending_txid = COALESCE($5, pending_txid), \
         pending_expires_at = COALESCE($6, pending_expires_at), \
         provider_proof = COALESCE($7, provider_proof), updated_at = $8 \
         WHERE session_id = $1 AND state = $2",
        &[
            &s.session_id,
            &s.expected.as_str(),
            &s.state.as_str(),
            &provider,
            &s.pending_txid,
            &s.pending_expires_at,
            &s.provider_proof,
            &s.now,
        ],
    )
    .await?;
    Ok(Step::Commit(changed == 1))
}

/// Records a failed attempt of an active job and clears its lease.
pub(super) async fn record_retry(
    tx: &Tx<'_>,
    session_id: &str,
    next_attempt_at: i64,
    last_error: &str,
    now: i64,
) -> R<Step<bool>> {
    let sql = format!(
        "UPDATE third_party_jobs SET attempts = attempts + 1, next_attempt_at = $2, \
         last_error = $3, lease_until = NULL, updated_at = $4 \
         WHERE session_id = $1 AND state IN {ACTIVE}"
    );
    let changed = execute(
        tx,
        &sql,
        &[&session_id, &next_attempt_at, &last_error, &now],
    )
    .await?;
    Ok(Step::Commit(changed == 1))
}

/// Moves a job's hold in the caller's transaction; the hold always covers it.
async fn move_hold(tx: &Tx<'_>, j: &ThirdPartyJob, to: &str, reference: &str, now: i64) -> R<()> {
    let t = Transfer {
        from_account: j.hold_account.clone(),
        to_account: to.to_owned(),
        currency: j.currency.clone(),
        minor: j.minor,
    };
    match apply_transfers_in(tx, reference, &[t], now).await? {
        LedgerOutcome::Applied => Ok(()),
        other => Err(fail(format!(
            "moving the hold of job {} to {to}: {other:?}",
            j.session_id
        ))),
    }
}

/// The final transaction of a paid job.
pub(super) async fn finish_paid(tx: &Tx<'_>, p: &JobPaid) -> R<Step<JobFinish>> {
    if !lock_session(tx, &p.session_id).await? {
        return Ok(Step::Rollback(JobFinish::Conflict));
    }
    let Some(j) = job(tx, &p.session_id)
        .await?
        .filter(|j| j.state == JobState::Transferred)
    else {
        return Ok(Step::Rollback(JobFinish::Conflict));
    };
    move_hold(tx, &j, &p.clearing_account, &p.txid, p.now).await?;
    let changed = execute(
        tx,
        "UPDATE sessions SET status = 'paid', txid = $2, paid_at = $3, proof_json = $4, \
         consent_json = $5, decline_reason = NULL WHERE id = $1 AND status <> 'paid'",
        &[&p.session_id, &p.txid, &p.now, &p.mg_proof, &j.consent_json],
    )
    .await?;
    if changed != 1 {
        return Err(fail(format!(
            "session {} of a transferred job is missing or already paid",
            p.session_id
        )));
    }
    insert_event(
        tx,
        &p.event.account_id,
        &p.event.kind,
        &p.event.payload_json,
        p.event.now,
    )
    .await?;
    execute(
        tx,
        "INSERT INTO idempotency (kind, key, account_id, session_id, created_at) \
         VALUES ('settle', $1, $2, $3, $4) ON CONFLICT (kind, key) DO NOTHING",
        &[&j.idempotency_key, &j.account_id, &j.session_id, &p.now],
    )
    .await?;
    execute(
        tx,
        "UPDATE third_party_jobs SET state = 'paid', mg_proof = $2, lease_until = NULL, \
         last_error = NULL, updated_at = $3 WHERE session_id = $1",
        &[&p.session_id, &p.mg_proof, &p.now],
    )
    .await?;
    let session = super::sessions::load(tx, &p.session_id)
        .await?
        .ok_or_else(|| fail(format!("session {} vanished", p.session_id)))?;
    Ok(Step::Commit(JobFinish::Finished(session)))
}

/// The final transaction of a failed job: refund, job state, session and event.
pub(super) async fn finish_failed(tx: &Tx<'_>, f: &JobFailed) -> R<Step<JobFinish>> {
    if f.state.is_active() || f.state == JobState::Paid {
        return Err(fail(format!("{} is not a failed state", f.state.as_str())));
    }
    if !lock_session(tx, &f.session_id).await? {
        return Ok(Step::Rollback(JobFinish::Conflict));
    }
    let Some(j) = job(tx, &f.session_id)
        .await?
        .filter(|j| j.state.is_active())
    else {
        return Ok(Step::Rollback(JobFinish::Conflict));
    };
    let reference = format!("tp-refund:{}", j.session_id);
    move_hold(tx, &j, &j.account_id, &reference, f.now).await?;
    let changed = execute(
        tx,
        "UPDATE sessions SET status = $2, decline_reason = $3 \
         WHERE id = $1 AND status IN ('order_received', 'expired')",
        &[&f.session_id, &f.session_status.as_str(), &f.reason],
    )
    .await?;
    if changed == 1 {
        insert_event(
            tx,
            &f.event.account_id,
            &f.event.kind,
            &f.event.payload_json,
            f.event.now,
        )
        .await?;
    }
    execute(
        tx,
        "UPDATE third_party_jobs SET state = $2, last_error = $3, lease_until = NULL, \
         updated_at = $4 WHERE session_id = $1",
        &[&f.session_id, &f.state.as_str(), &f.reason, &f.now],
    )
    .await?;
    let session = super::sessions::load(tx, &f.session_id)
        .await?
        .ok_or_else(|| fail(format!("session {} vanished", f.session_id)))?;
    Ok(Step::Commit(JobFinish::Finished(session)))
}

/// Jobs, newest first, optionally in one state.
pub(super) async fn list<C: GenericClient + Sync>(
    c: &C,
    state: Option<JobState>,
    limit: u32,
) -> R<Vec<ThirdPartyJob>> {
    let sql = format!(
        "SELECT {JOB_COLS} FROM third_party_jobs WHERE ($1::TEXT IS NULL OR state = $1) \
         ORDER BY created_at DESC, session_id DESC LIMIT $2"
    );
    query(c, &sql, &[&state.map(JobState::as_str), &i64::from(limit)])
        .await?
        .iter()
        .map(read_job)
        .collect()
}

/// The proof JSON stored under a txid: a session's receipt, else a `/transfer/create` result.
pub(super) async fn stored_proof<C: GenericClient + Sync>(c: &C, txid: &str) -> R<Option<String>> {
    let receipt = query_opt(
        c,
        "SELECT proof_json FROM sessions WHERE txid = $1",
        &[&txid],
    )
    .await?
    .map(|r| r.try_get::<_, Option<String>>(0))
    .transpose()?
    .flatten();
    if receipt.is_some() {
        return Ok(receipt);
    }
    Ok(query_opt(
        c,
        "SELECT result_json FROM idempotency WHERE kind = 'transfer' AND txid = $1",
        &[&txid],
    )
    .await?
    .map(|r| r.try_get::<_, Option<String>>(0))
    .transpose()?
    .flatten())
}
