//! SQLite payment sessions: rows in and out, the compare-and-set update, expiry marking,
//! prompt and history queries, and the one transaction that commits a settlement plan.

use opencharge_sqlite::{get_mapped, get_required, get_u64, get_u64_opt};
use rusqlite::types::{Null, ToSql, ToSqlOutput};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::events::{insert_event, insert_webhook};
use super::ledger::apply_transfers_in;
use super::nonces::use_nonce;
use super::{collect, fail, ocid_param, CachedSql, R};
use crate::domain::ledger::LedgerOutcome;
use crate::domain::session::EXPIRABLE;
use crate::store::{
    AttachedOrder, Flow, NewEvent, NewReceipt, PlanOutcome, Session, SessionStatus, SessionUpdate,
    SettleKey, SettlementPlan, UpdateOutcome,
};

/// Columns read by [`read_session`] and written by [`insert`], in this order.
const SESSION_COLS: &str = "id, flow, status, account_id, expires_at, created_at, status_token, \
     order_json, order_signature, order_hash, merchant_ocid, merchant_name, merchant_icon, \
     order_id, amount, amount_minor, currency, urls_json, submitted_by, txid, paid_at, \
     proof_json, decline_reason";

/// Reads a [`Session`] row selected with [`SESSION_COLS`]; unknown flow or status text, a
/// negative OCID or a missing order column is an error naming the column, never a panic.
fn read_session(row: &Row<'_>) -> rusqlite::Result<Session> {
    let flow = get_mapped(row, 1, "flow", Flow::parse)?;
    let status = get_mapped(row, 2, "status", SessionStatus::parse)?;
    let order_json: Option<String> = row.get(7)?;
    let order = match order_json {
        None => None,
        Some(order_json) => Some(AttachedOrder {
            order_json,
            order_signature: get_required(row, 8)?,
            order_hash: get_required(row, 9)?,
            merchant_ocid: get_u64(row, 10)?,
            merchant_name: row.get(11)?,
            merchant_icon: row.get(12)?,
            order_id: get_required(row, 13)?,
            amount: get_required(row, 14)?,
            amount_minor: get_required(row, 15)?,
            currency: get_required(row, 16)?,
            urls_json: row.get(17)?,
        }),
    };
    Ok(Session {
        id: row.get(0)?,
        flow,
        status,
        account_id: row.get(3)?,
        expires_at: row.get(4)?,
        created_at: row.get(5)?,
        status_token: row.get(6)?,
        order,
        submitted_by: get_u64_opt(row, 18)?,
        txid: row.get(19)?,
        paid_at: row.get(20)?,
        proof_json: row.get(21)?,
        decline_reason: row.get(22)?,
    })
}

/// Loads a session by id.
pub(super) fn load(conn: &Connection, id: &str) -> R<Option<Session>> {
    let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE id = ?1");
    Ok(conn.row_cached(&sql, [id], read_session).optional()?)
}

/// Loads a session that must exist (it was just written in the same transaction).
fn reload(conn: &Connection, id: &str) -> R<Session> {
    load(conn, id)?.ok_or_else(|| fail(format!("session {id} vanished")))
}

/// Loads a session by its status token.
pub(super) fn by_status_token(conn: &Connection, token: &str) -> R<Option<Session>> {
    let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE status_token = ?1");
    Ok(conn.row_cached(&sql, [token], read_session).optional()?)
}

/// The columns every write of a session sets after its status and account: `order_json`
/// through `decline_reason`, in [`SESSION_COLS`] order (16 values, borrowed from `s`).
fn order_and_outcome(s: &Session) -> R<[ToSqlOutput<'_>; 16]> {
    let o = s.order.as_ref();
    let merchant_ocid = match o {
        Some(o) => Some(ocid_param(o.merchant_ocid, "merchant OCID")?),
        None => None,
    };
    let submitted_by = match s.submitted_by {
        Some(v) => Some(ocid_param(v, "submitter OCID")?),
        None => None,
    };
    Ok([
        text(o.map(|o| o.order_json.as_str())),
        text(o.map(|o| o.order_signature.as_str())),
        text(o.map(|o| o.order_hash.as_str())),
        int(merchant_ocid),
        text(o.and_then(|o| o.merchant_name.as_deref())),
        text(o.and_then(|o| o.merchant_icon.as_deref())),
        text(o.map(|o| o.order_id.as_str())),
        text(o.map(|o| o.amount.as_str())),
        int(o.map(|o| o.amount_minor)),
        text(o.map(|o| o.currency.as_str())),
        text(o.and_then(|o| o.urls_json.as_deref())),
        int(submitted_by),
        text(s.txid.as_deref()),
        int(s.paid_at),
        text(s.proof_json.as_deref()),
        text(s.decline_reason.as_deref()),
    ])
}

/// An optional TEXT parameter (`None` is NULL), borrowed.
fn text(value: Option<&str>) -> ToSqlOutput<'_> {
    value.map_or(ToSqlOutput::from(Null), ToSqlOutput::from)
}

/// An optional INTEGER parameter (`None` is NULL).
fn int(value: Option<i64>) -> ToSqlOutput<'static> {
    value.map_or(ToSqlOutput::from(Null), ToSqlOutput::from)
}

/// Inserts a session row.
pub(super) fn insert(conn: &Connection, s: &Session) -> R<()> {
    let sql = format!(
        "INSERT INTO sessions ({SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
         ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)"
    );
    conn.exec_cached(
        &sql,
        params_from_iter(
            [
                s.id.to_sql()?,
                s.flow.as_str().to_sql()?,
                s.status.as_str().to_sql()?,
                s.account_id.to_sql()?,
                s.expires_at.to_sql()?,
                s.created_at.to_sql()?,
                s.status_token.to_sql()?,
            ]
            .into_iter()
            .chain(order_and_outcome(s)?),
        ),
    )?;
    Ok(())
}

/// Writes the mutable fields of `s` if the stored row still has `expected_status` and
/// `expected_account` (the compare-and-set); returns whether it was written.
fn write_if(
    conn: &Connection,
    s: &Session,
    expected_status: SessionStatus,
    expected_account: Option<&str>,
) -> R<bool> {
    let changed = conn.exec_cached(
        "UPDATE sessions SET status = ?1, account_id = ?2, order_json = ?3, \
         order_signature = ?4, order_hash = ?5, merchant_ocid = ?6, merchant_name = ?7, \
         merchant_icon = ?8, order_id = ?9, amount = ?10, amount_minor = ?11, currency = ?12, \
         urls_json = ?13, submitted_by = ?14, txid = ?15, paid_at = ?16, proof_json = ?17, \
         decline_reason = ?18 \
         WHERE id = ?19 AND status = ?20 AND account_id IS ?21",
        params_from_iter(
            [s.status.as_str().to_sql()?, s.account_id.to_sql()?]
                .into_iter()
                .chain(order_and_outcome(s)?)
                .chain([
                    s.id.to_sql()?,
                    expected_status.as_str().to_sql()?,
                    expected_account.to_sql()?,
                ]),
        ),
    )?;
    Ok(changed == 1)
}

/// Appends an event given as a [`NewEvent`].
fn append(conn: &Connection, e: &NewEvent) -> R<()> {
    insert_event(conn, &e.account_id, &e.kind, &e.payload_json, e.now)?;
    Ok(())
}

/// The compare-and-set of one session plus its event and nonce, in one transaction.
pub(super) fn update_if(conn: &mut Connection, u: &SessionUpdate) -> R<UpdateOutcome> {
    let tx = conn.savepoint()?;
    if let Some(n) = &u.nonce {
        if !use_nonce(&tx, &n.scope, &n.nonce, n.expires_at, n.now, false)? {
            tx.finish()?; // not committed: rolled back
            return Ok(UpdateOutcome::NonceReused);
        }
    }
    if !write_if(
        &tx,
        &u.session,
        u.expected_status,
        u.expected_account.as_deref(),
    )? {
        tx.finish()?; // not committed: rolled back
        return Ok(UpdateOutcome::Refused);
    }
    if let Some(event) = &u.event {
        append(&tx, event)?;
    }
    tx.commit()?;
    Ok(UpdateOutcome::Applied)
}

/// Marks the unresolved sessions past expiry `expired`; returns how many.
pub(super) fn expire(conn: &Connection, now: i64) -> R<u64> {
    let [a, b] = EXPIRABLE;
    let changed = conn.exec_cached(
        "UPDATE sessions SET status = ?1 WHERE status IN (?2, ?3) AND expires_at <= ?4",
        params![SessionStatus::Expired.as_str(), a.as_str(), b.as_str(), now],
    )?;
    u64::try_from(changed).map_err(|_| fail("row count out of range"))
}

/// Prompts waiting for `account_id` (`order_received`, unexpired), oldest first.
pub(super) fn pending_prompts(conn: &Connection, account_id: &str, now: i64) -> R<Vec<Session>> {
    let sql = format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE account_id = ?1 \
         AND status = 'order_received' AND expires_at > ?2 ORDER BY created_at, id"
    );
    collect(conn, &sql, params![account_id, now], read_session)
}

/// The account's sessions with an order, newest first, paged by `before`.
pub(super) fn history(
    conn: &Connection,
    account_id: &str,
    limit: u32,
    before: Option<i64>,
) -> R<Vec<Session>> {
    let sql = format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE account_id = ?1 \
         AND order_json IS NOT NULL AND (?2 IS NULL OR created_at < ?2) \
         ORDER BY created_at DESC, id DESC LIMIT ?3"
    );
    collect(
        conn,
        &sql,
        params![account_id, before, i64::from(limit)],
        read_session,
    )
}

/// What a `settle` idempotency key was first used for.
pub(super) fn settle_key(conn: &Connection, key: &str) -> R<Option<SettleKey>> {
    Ok(conn
        .row_cached(
            "SELECT account_id, session_id FROM idempotency WHERE kind = 'settle' AND key = ?1",
            [key],
            |r| {
                Ok(SettleKey {
                    account_id: r.get(0)?,
                    session_id: r.get(1)?,
                })
            },
        )
        .optional()?)
}

/// Commits a settlement plan in one transaction: session → paid (only if still
/// `order_received` and the payer's), transfers (funds checked), webhook, event, key.
/// With `receipt`, the recipient's receipt and event of a transfer to a person are written in
/// the same transaction.
pub(super) fn apply_settlement(
    conn: &mut Connection,
    p: &SettlementPlan,
    receipt: Option<&NewReceipt>,
) -> R<PlanOutcome> {
    let tx = conn.savepoint()?;
    if !write_if(
        &tx,
        &p.paid,
        SessionStatus::OrderReceived,
        Some(p.payer.as_str()),
    )? {
        tx.finish()?; // not committed: rolled back
        return Ok(PlanOutcome::Conflict);
    }
    tx.exec_cached(
        "UPDATE sessions SET consent_json = ?1 WHERE id = ?2",
        params![p.consent_json, p.paid.id],
    )?;
    match apply_transfers_in(&tx, &p.reference, &p.transfers, p.now)? {
        LedgerOutcome::Applied => {}
        LedgerOutcome::InsufficientFunds => {
            tx.finish()?; // not committed: rolled back
            return Ok(PlanOutcome::InsufficientFunds);
        }
        LedgerOutcome::BalanceOutOfRange(account) => {
            tx.finish()?; // not committed: rolled back
            return Ok(PlanOutcome::BalanceOutOfRange(account));
        }
    }
    if let Some(w) = &p.webhook {
        insert_webhook(&tx, &w.txid, w.target_ocid, &w.url, &w.body, p.now)?;
    }
    append(&tx, &p.event)?;
    if let Some(receipt) = receipt {
        super::user_ocids::record_receipt(&tx, receipt)?;
    }
    tx.exec_cached(
        "INSERT INTO idempotency (kind, key, account_id, session_id, created_at) \
         VALUES ('settle', ?1, ?2, ?3, ?4) ON CONFLICT(kind, key) DO NOTHING",
        params![p.idempotency_key, p.payer, p.paid.id, p.now],
    )?;
    let session = reload(&tx, &p.paid.id)?;
    tx.commit()?;
    Ok(PlanOutcome::Applied(session))
}
