//! SQLite third-party settlement jobs: the hold that starts a job, claims with leases, each
//! step's stored answer, the final paid and failed transactions, the operators' listing, and
//! the lookup of stored proofs by txid for `GET /verify/{txid}`.

use opencharge_sqlite::{get_mapped, get_u64, get_u64_opt};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::events::insert_event;
use super::ledger::apply_transfers_in;
use super::{collect, fail, ocid_param, CachedSql, R};
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
fn read_job(row: &Row<'_>) -> rusqlite::Result<ThirdPartyJob> {
    Ok(ThirdPartyJob {
        session_id: row.get(0)?,
        account_id: row.get(1)?,
        hold_account: row.get(2)?,
        merchant_gateway: get_u64(row, 3)?,
        provider: get_u64_opt(row, 4)?,
        state: get_mapped(row, 5, "state", JobState::parse)?,
        currency: row.get(6)?,
        minor: row.get(7)?,
        idempotency_key: row.get(8)?,
        consent_json: row.get(9)?,
        pending_txid: row.get(10)?,
        pending_expires_at: row.get(11)?,
        provider_proof: row.get(12)?,
        mg_proof: row.get(13)?,
        attempts: row.get(14)?,
        next_attempt_at: row.get(15)?,
        last_error: row.get(16)?,
        created_at: row.get(17)?,
        updated_at: row.get(18)?,
    })
}

/// The job of a session.
pub(super) fn job(conn: &Connection, session_id: &str) -> R<Option<ThirdPartyJob>> {
    let sql = format!("SELECT {JOB_COLS} FROM third_party_jobs WHERE session_id = ?1");
    Ok(conn.row_cached(&sql, [session_id], read_job).optional()?)
}

/// Hold + job row in one transaction (see [`crate::store::Store::start_third_party`]).
pub(super) fn start(conn: &mut Connection, j: &NewThirdPartyJob) -> R<StartOutcome> {
    let tx = conn.savepoint()?;
    if let Some(existing) = job(&tx, &j.session_id)? {
        return Ok(StartOutcome::Existing(existing));
    }
    let payable: Option<i64> = tx
        .row_cached(
            "SELECT 1 FROM sessions WHERE id = ?1 AND status = 'order_received' \
             AND account_id = ?2 AND expires_at > ?3",
            params![j.session_id, j.account_id, j.now],
            |r| r.get(0),
        )
        .optional()?;
    if payable.is_none() {
        return Ok(StartOutcome::Conflict);
    }
    let hold = Transfer {
        from_account: j.account_id.clone(),
        to_account: j.hold_account.clone(),
        currency: j.currency.clone(),
        minor: j.minor,
    };
    match apply_transfers_in(&tx, &format!("tp-hold:{}", j.session_id), &[hold], j.now)? {
        LedgerOutcome::Applied => {}
        LedgerOutcome::InsufficientFunds => {
            tx.finish()?; // not committed: rolled back
            return Ok(StartOutcome::InsufficientFunds);
        }
        LedgerOutcome::BalanceOutOfRange(account) => {
            return Err(fail(format!(
                "the hold account {account} would pass the ledger's range"
            )));
        }
    }
    tx.exec_cached(
        "INSERT INTO third_party_jobs (session_id, account_id, hold_account, merchant_gateway, \
         state, currency, minor, idempotency_key, consent_json, attempts, next_attempt_at, \
         lease_until, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, 'held', ?5, ?6, ?7, ?8, 0, ?9, ?10, ?9, ?9)",
        params![
            j.session_id,
            j.account_id,
            j.hold_account,
            ocid_param(j.merchant_gateway, "merchant gateway OCID")?,
            j.currency,
            j.minor,
            j.idempotency_key,
            j.consent_json,
            j.now,
            j.lease_until,
        ],
    )?;
    let started = job(&tx, &j.session_id)?.ok_or_else(|| fail("job vanished"))?;
    tx.commit()?;
    Ok(StartOutcome::Started(started))
}

/// Leases one session's active job if its lease is free.
pub(super) fn claim_one(
    conn: &mut Connection,
    session_id: &str,
    now: i64,
    lease_until: i64,
) -> R<Option<ThirdPartyJob>> {
    let tx = conn.savepoint()?;
    let changed = tx.exec_cached(
        &format!(
            "UPDATE third_party_jobs SET lease_until = ?3 WHERE session_id = ?1 \
             AND state IN {ACTIVE} AND (lease_until IS NULL OR lease_until <= ?2)"
        ),
        params![session_id, now, lease_until],
    )?;
    let claimed = if changed == 1 {
        job(&tx, session_id)?
    } else {
        None
    };
    tx.commit()?;
    Ok(claimed)
}

/// Whether any active job is due at `now` with a free lease (a read, so an idle worker's
/// poll never takes the write lock).
pub(super) fn any_due(conn: &Connection, now: i64) -> R<bool> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM third_party_jobs WHERE state IN {ACTIVE} \
         AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1))"
    );
    Ok(conn.row_cached(&sql, [now], |r| r.get(0))?)
}

/// Leases the due active jobs whose lease is free, oldest first.
pub(super) fn claim_due(
    conn: &mut Connection,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> R<Vec<ThirdPartyJob>> {
    let tx = conn.savepoint()?;
    let sql = format!(
        "SELECT {JOB_COLS} FROM third_party_jobs WHERE state IN {ACTIVE} \
         AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1) \
         ORDER BY created_at, session_id LIMIT ?2"
    );
    let due = collect(&tx, &sql, params![now, i64::from(limit)], read_job)?;
    for j in &due {
        tx.exec_cached(
            "UPDATE third_party_jobs SET lease_until = ?2 WHERE session_id = ?1",
            params![j.session_id, lease_until],
        )?;
    }
    tx.commit()?;
    Ok(due)
}

/// Stores a step's answer if the job is still in the expected state.
pub(super) fn record_step(conn: &Connection, s: &JobStep) -> R<bool> {
    let provider = match s.provider {
        Some(p) => Some(ocid_param(p, "provider OCID")?),
        None => None,
    };
    let changed = conn.exec_cached(
        "UPDATE third_party_jobs SET state = ?3, provider = COALESCE(?4, provider), \
         pending_txid = COALESCE(?5, pending_txid), \
         pending_expires_at = COALESCE(?6, pending_expires_at), \
         provider_proof = COALESCE(?7, provider_proof), updated_at = ?8 \
         WHERE session_id = ?1 AND state = ?2",
        params![
            s.session_id,
            s.expected.as_str(),
            s.state.as_str(),
            provider,
            s.pending_txid,
            s.pending_expires_at,
            s.provider_proof,
            s.now
        ],
    )?;
    Ok(changed == 1)
}

/// Records a failed attempt of an active job and clears its lease.
pub(super) fn record_retry(
    conn: &Connection,
    session_id: &str,
    next_attempt_at: i64,
    last_error: &str,
    now: i64,
) -> R<bool> {
    let changed = conn.exec_cached(
        &format!(
            "UPDATE third_party_jobs SET attempts = attempts + 1, next_attempt_at = ?2, \
             last_error = ?3, lease_until = NULL, updated_at = ?4 \
             WHERE session_id = ?1 AND state IN {ACTIVE}"
        ),
        params![session_id, next_attempt_at, last_error, now],
    )?;
    Ok(changed == 1)
}

/// Moves a job's hold in the caller's transaction; the hold always covers it.
fn move_hold(conn: &Connection, j: &ThirdPartyJob, to: &str, reference: &str, now: i64) -> R<()> {
    let t = Transfer {
        from_account: j.hold_account.clone(),
        to_account: to.to_owned(),
        currency: j.currency.clone(),
        minor: j.minor,
    };
    match apply_transfers_in(conn, reference, &[t], now)? {
        LedgerOutcome::Applied => Ok(()),
        other => Err(fail(format!(
            "moving the hold of job {} to {to}: {other:?}",
            j.session_id
        ))),
    }
}

/// The final transaction of a paid job.
pub(super) fn finish_paid(conn: &mut Connection, p: &JobPaid) -> R<JobFinish> {
    let tx = conn.savepoint()?;
    let Some(j) = job(&tx, &p.session_id)?.filter(|j| j.state == JobState::Transferred) else {
        return Ok(JobFinish::Conflict);
    };
    move_hold(&tx, &j, &p.clearing_account, &p.txid, p.now)?;
    let changed = tx.exec_cached(
        "UPDATE sessions SET status = 'paid', txid = ?2, paid_at = ?3, proof_json = ?4, \
         consent_json = ?5, decline_reason = NULL WHERE id = ?1 AND status != 'paid'",
        params![p.session_id, p.txid, p.now, p.mg_proof, j.consent_json],
    )?;
    if changed != 1 {
        return Err(fail(format!(
            "session {} of a transferred job is missing or already paid",
            p.session_id
        )));
    }
    insert_event(
        &tx,
        &p.event.account_id,
        &p.event.kind,
        &p.event.payload_json,
        p.event.now,
    )?;
    tx.exec_cached(
        "INSERT INTO idempotency (kind, key, account_id, session_id, created_at) \
         VALUES ('settle', ?1, ?2, ?3, ?4) ON CONFLICT(kind, key) DO NOTHING",
        params![j.idempotency_key, j.account_id, j.session_id, p.now],
    )?;
    tx.exec_cached(
        "UPDATE third_party_jobs SET state = 'paid', mg_proof = ?2, lease_until = NULL, \
         last_error = NULL, updated_at = ?3 WHERE session_id = ?1",
        params![p.session_id, p.mg_proof, p.now],
    )?;
    let session = super::sessions::load(&tx, &p.session_id)?
        .ok_or_else(|| fail(format!("session {} vanished", p.session_id)))?;
    tx.commit()?;
    Ok(JobFinish::Finished(session))
}

/// The final transaction of a failed job: refund, job state, session and event.
pub(super) fn finish_failed(conn: &mut Connection, f: &JobFailed) -> R<JobFinish> {
    if f.state.is_active() || f.state == JobState::Paid {
        return Err(fail(format!("{} is not a failed state", f.state.as_str())));
    }
    let tx = conn.savepoint()?;
    let Some(j) = job(&tx, &f.session_id)?.filter(|j| j.state.is_active()) else {
        return Ok(JobFinish::Conflict);
    };
    move_hold(
        &tx,
        &j,
        &j.account_id,
        &format!("tp-refund:{}", j.session_id),
        f.now,
    )?;
    let changed = tx.exec_cached(
        "UPDATE sessions SET status = ?2, decline_reason = ?3 \
         WHERE id = ?1 AND status IN ('order_received', 'expired')",
        params![f.session_id, f.session_status.as_str(), f.reason],
    )?;
    if changed == 1 {
        insert_event(
            &tx,
            &f.event.account_id,
            &f.event.kind,
            &f.event.payload_json,
            f.event.now,
        )?;
    }
    tx.exec_cached(
        "UPDATE third_party_jobs SET state = ?2, last_error = ?3, lease_until = NULL, \
         updated_at = ?4 WHERE session_id = ?1",
        params![f.session_id, f.state.as_str(), f.reason, f.now],
    )?;
    let session = super::sessions::load(&tx, &f.session_id)?
        .ok_or_else(|| fail(format!("session {} vanished", f.session_id)))?;
    tx.commit()?;
    Ok(JobFinish::Finished(session))
}

/// Jobs, newest first, optionally in one state.
pub(super) fn list(
    conn: &Connection,
    state: Option<JobState>,
    limit: u32,
) -> R<Vec<ThirdPartyJob>> {
    let sql = format!(
        "SELECT {JOB_COLS} FROM third_party_jobs WHERE (?1 IS NULL OR state = ?1) \
         ORDER BY created_at DESC, session_id DESC LIMIT ?2"
    );
    collect(
        conn,
        &sql,
        params![state.map(JobState::as_str), i64::from(limit)],
        read_job,
    )
}

/// The proof JSON stored under a txid: a session's receipt, else a `/transfer/create` result.
pub(super) fn stored_proof(conn: &Connection, txid: &str) -> R<Option<String>> {
    let receipt: Option<Option<String>> = conn
        .row_cached(
            "SELECT proof_json FROM sessions WHERE txid = ?1",
            [txid],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(Some(proof)) = receipt {
        return Ok(Some(proof));
    }
    Ok(conn
        .row_cached(
            "SELECT result_json FROM idempotency WHERE kind = 'transfer' AND txid = ?1",
            [txid],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()?
        .flatten())
}
