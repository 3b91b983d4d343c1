//! PostgreSQL payment sessions: rows in and out, the compare-and-set update (a conditional
//! UPDATE: of racing instances exactly one changes the row), expiry marking, prompt and history
//! queries, and the one transaction that commits a settlement plan.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::events::insert_event;
use super::ledger::apply_transfers_in;
use super::nonces::use_nonce;
use super::{
    execute, fail, ocid_param, ocid_value, parse_name, query, query_opt, webhooks, Step, Tx, R,
};
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

/// A column that must be set when the session has an order.
fn required<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    row: &Row,
    index: usize,
    column: &str,
) -> R<T> {
    let value: Option<T> = row.try_get(index)?;
    value.ok_or_else(|| fail(format!("column {column}: NULL in a session with an order")))
}

/// Reads a [`Session`] row selected with [`SESSION_COLS`]; unknown flow or status text, a
/// negative OCID or a missing order column is an error naming the column, never a panic.
fn read_session(row: &Row) -> R<Session> {
    let flow: String = row.try_get(1)?;
    let status: String = row.try_get(2)?;
    let order_json: Option<String> = row.try_get(7)?;
    let order = match order_json {
        None => None,
        Some(order_json) => Some(AttachedOrder {
            order_json,
            order_signature: required(row, 8, "order_signature")?,
            order_hash: required(row, 9, "order_hash")?,
            merchant_ocid: ocid_value(required(row, 10, "merchant_ocid")?, "merchant_ocid")?,
            merchant_name: row.try_get(11)?,
            merchant_icon: row.try_get(12)?,
            order_id: required(row, 13, "order_id")?,
            amount: required(row, 14, "amount")?,
            amount_minor: required(row, 15, "amount_minor")?,
            currency: required(row, 16, "currency")?,
            urls_json: row.try_get(17)?,
        }),
    };
    let submitted_by: Option<i64> = row.try_get(18)?;
    Ok(Session {
        id: row.try_get(0)?,
        flow: parse_name(&flow, "flow", Flow::parse)?,
        status: parse_name(&status, "status", SessionStatus::parse)?,
        account_id: row.try_get(3)?,
        expires_at: row.try_get(4)?,
        created_at: row.try_get(5)?,
        status_token: row.try_get(6)?,
        order,
        submitted_by: submitted_by
            .map(|v| ocid_value(v, "submitted_by"))
            .transpose()?,
        txid: row.try_get(19)?,
        paid_at: row.try_get(20)?,
        proof_json: row.try_get(21)?,
        decline_reason: row.try_get(22)?,
    })
}

/// The values of `order_json` through `decline_reason`, in [`SESSION_COLS`] order (16).
struct Outcome<'a> {
    order_json: Option<&'a str>,
    order_signature: Option<&'a str>,
    order_hash: Option<&'a str>,
    merchant_ocid: Option<i64>,
    merchant_name: Option<&'a str>,
    merchant_icon: Option<&'a str>,
    order_id: Option<&'a str>,
    amount: Option<&'a str>,
    amount_minor: Option<i64>,
    currency: Option<&'a str>,
    urls_json: Option<&'a str>,
    submitted_by: Option<i64>,
    txid: Option<&'a str>,
    paid_at: Option<i64>,
    proof_json: Option<&'a str>,
    decline_reason: Option<&'a str>,
}

impl<'a> Outcome<'a> {
    /// The order and outcome columns of `s`.
    fn of(s: &'a Session) -> R<Outcome<'a>> {
        let o = s.order.as_ref();
        Ok(Outcome {
            order_json: o.map(|o| o.order_json.as_str()),
            order_signature: o.map(|o| o.order_signature.as_str()),
            order_hash: o.map(|o| o.order_hash.as_str()),
            merchant_ocid: o
                .map(|o| ocid_param(o.merchant_ocid, "merchant OCID"))
                .transpose()?,
            merchant_name: o.and_then(|o| o.merchant_name.as_deref()),
            merchant_icon: o.and_then(|o| o.merchant_icon.as_deref()),
            order_id: o.map(|o| o.order_id.as_str()),
            amount: o.map(|o| o.amount.as_str()),
            amount_minor: o.map(|o| o.amount_minor),
            currency: o.map(|o| o.currency.as_str()),
            urls_json: o.and_then(|o| o.urls_json.as_deref()),
            submitted_by: s
                .submitted_by
                .map(|v| ocid_param(v, "submitter OCID"))
                .transpose()?,
            txid: s.txid.as_deref(),
            paid_at: s.paid_at,
            proof_json: s.proof_json.as_deref(),
            decline_reason: s.decline_reason.as_deref(),
        })
    }

    /// As statement parameters, in column order.
    fn params(&self) -> [&(dyn ToSql + Sync); 16] {
        [
            &self.order_json,
            &self.order_signature,
            &self.order_hash,
            &self.merchant_ocid,
            &self.merchant_name,
            &self.merchant_icon,
            &self.order_id,
            &self.amount,
            &self.amount_minor,
            &self.currency,
            &self.urls_json,
            &self.submitted_by,
            &self.txid,
            &self.paid_at,
            &self.proof_json,
            &self.decline_reason,
        ]
    }
}

/// Loads a session by id.
pub(super) async fn load<C: GenericClient + Sync>(c: &C, id: &str) -> R<Option<Session>> {
    let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE id = $1");
    query_opt(c, &sql, &[&id])
        .await?
        .map(|r| read_session(&r))
        .transpose()
}

/// Loads a session by its status token.
pub(super) async fn by_status_token<C: GenericClient + Sync>(
    c: &C,
    token: &str,
) -> R<Option<Session>> {
    let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE status_token = $1");
    query_opt(c, &sql, &[&token])
        .await?
        .map(|r| read_session(&r))
        .transpose()
}

/// Inserts a session row.
pub(super) async fn insert(tx: &Tx<'_>, s: &Session) -> R<()> {
    let sql = format!(
        "INSERT INTO sessions ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
         $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
    );
    let outcome = Outcome::of(s)?;
    let (flow, status) = (s.flow.as_str(), s.status.as_str());
    let head: [&(dyn ToSql + Sync); 7] = [
        &s.id,
        &flow,
        &status,
        &s.account_id,
        &s.expires_at,
        &s.created_at,
        &s.status_token,
    ];
    let params: Vec<&(dyn ToSql + Sync)> = head.into_iter().chain(outcome.params()).collect();
    execute(tx, &sql, &params).await?;
    Ok(())
}

/// Writes the mutable fields of `s` if the stored row still has `expected_status` and
/// `expected_account` (the compare-and-set); returns whether it was written. Racing writers
/// queue on the row lock and re-check the condition after the winner's COMMIT.
async fn write_if(
    tx: &Tx<'_>,
    s: &Session,
    expected_status: SessionStatus,
    expected_account: Option<&str>,
) -> R<bool> {
    let outcome = Outcome::of(s)?;
    let status = s.status.as_str();
    let expected = expected_status.as_str();
    let head: [&(dyn ToSql + Sync); 2] = [&status, &s.account_id];
    let tail: [&(dyn ToSql + Sync); 3] = [&s.id, &expected, &expected_account];
    let params: Vec<&(dyn ToSql + Sync)> = head
        .into_iter()
        .chain(outcome.params())
        .chain(tail)
        .collect();
    let changed = execute(
        tx,
        "UPDATE sessions SET status = $1, account_id = $2, order_json = $3, \
         order_signature = $4, order_hash = $5, merchant_ocid = $6, merchant_name = $7, \
         merchant_icon = $8, order_id = $9, amount = $10, amount_minor = $11, currency = $12, \
         urls_json = $13, submitted_by = $14, txid = $15, paid_at = $16, proof_json = $17, \
         decline_reason = $18 \
         WHERE id = $19 AND status = $20 AND account_id IS NOT DISTINCT FROM $21",
        &params,
    )
    .await?;
    Ok(changed == 1)
}

/// Appends an event given as a [`NewEvent`].
async fn append(tx: &Tx<'_>, e: &NewEvent) -> R<()> {
    insert_event(tx, &e.account_id, &e.kind, &e.payload_json, e.now).await?;
    Ok(())
}

/// The compare-and-set of one session plus its event and nonce, in one transaction.
pub(super) async fn update_if(tx: &Tx<'_>, u: &SessionUpdate) -> R<Step<UpdateOutcome>> {
    if let Some(n) = &u.nonce {
        if !use_nonce(tx, &n.scope, &n.nonce, n.expires_at, n.now).await? {
            return Ok(Step::Rollback(UpdateOutcome::NonceReused));
        }
    }
    if !write_if(
        tx,
        &u.session,
        u.expected_status,
        u.expected_account.as_deref(),
    )
    .await?
    {
        return Ok(Step::Rollback(UpdateOutcome::Refused));
    }
    if let Some(event) = &u.event {
        append(tx, event).await?;
    }
    Ok(Step::Commit(UpdateOutcome::Applied))
}

/// Marks the unresolved sessions past expiry `expired`; returns how many.
pub(super) async fn expire(tx: &Tx<'_>, now: i64) -> R<Step<u64>> {
    let [a, b] = EXPIRABLE;
    let changed = execute(
        tx,
        "UPDATE sessions SET status = $1 WHERE status IN ($2, $3) AND expires_at <= $4",
        &[
            &SessionStatus::Expired.as_str(),
            &a.as_str(),
            &b.as_str(),
            &now,
        ],
    )
    .await?;
    Ok(Step::Commit(changed))
}

/// Prompts waiting for `account_id` (`order_received`, unexpired), oldest first.
pub(super) async fn pending_prompts<C: GenericClient + Sync>(
    c: &C,
    account_id: &str,
    now: i64,
) -> R<Vec<Session>> {
    let sql = format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE account_id = $1 \
         AND status = 'order_received' AND expires_at > $2 ORDER BY created_at, id"
    );
    query(c, &sql, &[&account_id, &now])
        .await?
        .iter()
        .map(read_session)
        .collect()
}

/// The account's sessions with an order, newest first, paged by `before`.
pub(super) async fn history<C: GenericClient + Sync>(
    c: &C,
    account_id: &str,
    limit: u32,
    before: Option<i64>,
) -> R<Vec<Session>> {
    let sql = format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE account_id = $1 \
         AND order_json IS NOT NULL AND ($2::BIGINT IS NULL OR created_at < $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    );
    query(c, &sql, &[&account_id, &before, &i64::from(limit)])
        .await?
        .iter()
        .map(read_session)
        .collect()
}

/// What a `settle` idempotency key was first used for.
pub(super) async fn settle_key<C: GenericClient + Sync>(c: &C, key: &str) -> R<Option<SettleKey>> {
    query_opt(
        c,
        "SELECT account_id, session_id FROM idempotency WHERE kind = 'settle' AND key = $1",
        &[&key],
    )
    .await?
    .map(|r| {
        Ok(SettleKey {
            account_id: r.try_get(0)?,
            session_id: r.try_get(1)?,
        })
    })
    .transpose()
}

/// Commits a settlement plan in one transaction: session → paid (only if still
/// `order_received` and the payer's), transfers (funds checked, balance rows locked in
/// order), webhook, event, key. Of racing settlements of one session exactly one passes the
/// conditional update; the others find the row changed ([`PlanOutcome::Conflict`]).
/// With `receipt`, the recipient's receipt and event of a transfer to a person are written in
/// the same transaction.
pub(super) async fn apply_settlement(
    tx: &Tx<'_>,
    p: &SettlementPlan,
    receipt: Option<&NewReceipt>,
) -> R<Step<PlanOutcome>> {
    if !write_if(
        tx,
        &p.paid,
        SessionStatus::OrderReceived,
        Some(p.payer.as_str()),
    )
    .await?
    {
        return Ok(Step::Rollback(PlanOutcome::Conflict));
    }
    execute(
        tx,
        "UPDATE sessions SET consent_json = $1 WHERE id = $2",
        &[&p.consent_json, &p.paid.id],
    )
    .await?;
    match apply_transfers_in(tx, &p.reference, &p.transfers, p.now).await? {
        LedgerOutcome::Applied => {}
        LedgerOutcome::InsufficientFunds => {
            return Ok(Step::Rollback(PlanOutcome::InsufficientFunds));
        }
        LedgerOutcome::BalanceOutOfRange(account) => {
            return Ok(Step::Rollback(PlanOutcome::BalanceOutOfRange(account)));
        }
    }
    if let Some(w) = &p.webhook {
        webhooks::insert(tx, &w.txid, w.target_ocid, &w.url, &w.body, p.now).await?;
    }
    append(tx, &p.event).await?;
    if let Some(receipt) = receipt {
        super::user_ocids::record_receipt(tx, receipt).await?;
    }
    execute(
        tx,
        "INSERT INTO idempotency (kind, key, account_id, session_id, created_at) \
         VALUES ('settle', $1, $2, $3, $4) ON CONFLICT (kind, key) DO NOTHING",
        &[&p.idempotency_key, &p.payer, &p.paid.id, &p.now],
    )
    .await?;
    let session = load(tx, &p.paid.id)
        .await?
        .ok_or_else(|| fail(format!("session {} vanished", p.paid.id)))?;
    Ok(Step::Commit(PlanOutcome::Applied(session)))
}
