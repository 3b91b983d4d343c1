//! SQLite accounts and ledger: accounts, balances, double-entry transfers (funds checked by the
//! rules of [`crate::domain::ledger`]), idempotent incoming transfers and incoming proofs.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::events::insert_webhook;
use super::{collect, fail, ocid_param, CachedSql, R};
use crate::domain::ledger::{self as rules, LedgerOutcome};
use crate::store::{Account, Balance, NewReceipt, Transfer, TransferOnce, TransferOutcome};

/// Columns read by [`read_account`].
const ACCOUNT_COLS: &str = "id, kind, name, created_at";

/// Reads an [`Account`] row selected with [`ACCOUNT_COLS`].
fn read_account(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: row.get(0)?,
        kind: row.get(1)?,
        name: row.get(2)?,
        created_at: row.get(3)?,
    })
}

/// Creates an account with a fresh random `acct_<32 hex>` id.
pub(super) fn create_account(
    conn: &Connection,
    kind: String,
    name: String,
    now: i64,
) -> R<Account> {
    let hex: String = conn.row_cached("SELECT lower(hex(randomblob(16)))", [], |r| r.get(0))?;
    let account = Account {
        id: format!("acct_{hex}"),
        kind,
        name,
        created_at: now,
    };
    conn.exec_cached(
        "INSERT INTO accounts (id, kind, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![account.id, account.kind, account.name, account.created_at],
    )?;
    Ok(account)
}

/// Creates the account with this id unless it exists; returns the stored row.
pub(super) fn ensure_account(
    conn: &mut Connection,
    id: &str,
    kind: &str,
    name: &str,
    now: i64,
) -> R<Account> {
    let tx = conn.savepoint()?;
    tx.exec_cached(
        "INSERT INTO accounts (id, kind, name, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(id) DO NOTHING",
        params![id, kind, name, now],
    )?;
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?1");
    let account = tx.row_cached(&sql, [id], read_account)?;
    tx.commit()?;
    Ok(account)
}

/// Looks an account up.
pub(super) fn account(conn: &Connection, id: &str) -> R<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?1");
    Ok(conn.row_cached(&sql, [id], read_account).optional()?)
}

/// All balances of an account, by currency.
pub(super) fn balances(conn: &Connection, account_id: &str) -> R<Vec<Balance>> {
    collect(
        conn,
        "SELECT currency, minor FROM balances WHERE account_id = ?1 ORDER BY currency",
        &[&account_id],
        |r| {
            Ok(Balance {
                currency: r.get(0)?,
                minor: r.get(1)?,
            })
        },
    )
}

/// Applies transfers in one transaction; anything but [`LedgerOutcome::Applied`] rolls back.
pub(super) fn apply_transfers(
    conn: &mut Connection,
    reference: &str,
    transfers: &[Transfer],
    now: i64,
) -> R<LedgerOutcome> {
    let tx = conn.savepoint()?;
    let outcome = apply_transfers_in(&tx, reference, transfers, now)?;
    if outcome == LedgerOutcome::Applied {
        tx.commit()?;
    } else {
        tx.finish()?; // not committed: rolled back
    }
    Ok(outcome)
}

/// The kind of an account, if it exists.
fn account_kind(conn: &Connection, id: &str) -> R<Option<String>> {
    Ok(conn
        .row_cached("SELECT kind FROM accounts WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?)
}

/// One balance (0 when the row is missing).
fn balance_of(conn: &Connection, account_id: &str, currency: &str) -> R<i64> {
    Ok(conn
        .row_cached(
            "SELECT minor FROM balances WHERE account_id = ?1 AND currency = ?2",
            [account_id, currency],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Writes one balance.
fn set_balance(conn: &Connection, account_id: &str, currency: &str, minor: i64) -> R<()> {
    conn.exec_cached(
        "INSERT INTO balances (account_id, currency, minor) VALUES (?1, ?2, ?3) \
         ON CONFLICT(account_id, currency) DO UPDATE SET minor = excluded.minor",
        params![account_id, currency, minor],
    )?;
    Ok(())
}

/// Applies `transfers` inside the caller's transaction and records one ledger entry each.
/// Anything but [`LedgerOutcome::Applied`] means the caller must roll back: a debited
/// account ending with a balance its kind does not allow is `InsufficientFunds` (checked
/// first, so a payer who cannot pay hears that), a balance that would leave the `i64` range is
/// `BalanceOutOfRange`. Unknown accounts and non-positive amounts are errors.
pub(super) fn apply_transfers_in(
    conn: &Connection,
    reference: &str,
    transfers: &[Transfer],
    now: i64,
) -> R<LedgerOutcome> {
    let mut debited: Vec<(&str, &str, String)> = Vec::new();
    let mut out_of_range: Option<String> = None;
    for t in transfers {
        rules::check_transfer(t).map_err(fail)?;
        let from_kind = account_kind(conn, &t.from_account)?
            .ok_or_else(|| fail(format!("unknown account {}", t.from_account)))?;
        if account_kind(conn, &t.to_account)?.is_none() {
            return Err(fail(format!("unknown account {}", t.to_account)));
        }
        // A balance past the range is noted and its move skipped; the transaction is rolled
        // back either way, and the debits still count for the funds check below.
        match rules::debit(
            balance_of(conn, &t.from_account, &t.currency)?,
            t.minor,
            &t.from_account,
        ) {
            Ok(from_balance) => set_balance(conn, &t.from_account, &t.currency, from_balance)?,
            Err(_) => {
                out_of_range.get_or_insert_with(|| t.from_account.clone());
            }
        }
        match rules::credit(
            balance_of(conn, &t.to_account, &t.currency)?,
            t.minor,
            &t.to_account,
        ) {
            Ok(to_balance) => set_balance(conn, &t.to_account, &t.currency, to_balance)?,
            Err(_) => {
                out_of_range.get_or_insert_with(|| t.to_account.clone());
            }
        }
        conn.exec_cached(
            "INSERT INTO ledger_entries (reference, from_account, to_account, currency, minor, \
             created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                reference,
                t.from_account,
                t.to_account,
                t.currency,
                t.minor,
                now
            ],
        )?;
        debited.push((&t.from_account, &t.currency, from_kind));
    }
    for (account, currency, kind) in debited {
        if !rules::balance_allowed(&kind, balance_of(conn, account, currency)?) {
            return Ok(LedgerOutcome::InsufficientFunds);
        }
    }
    Ok(match out_of_range {
        Some(account) => LedgerOutcome::BalanceOutOfRange(account),
        None => LedgerOutcome::Applied,
    })
}

/// Records an incoming proof `(issuer, txid)`; `false` if it was recorded before.
pub(super) fn record_incoming_proof(
    conn: &Connection,
    issuer: u64,
    txid: &str,
    proof_json: &str,
    now: i64,
) -> R<bool> {
    let issuer = ocid_param(issuer, "issuer OCID")?;
    let changed = conn.exec_cached(
        "INSERT INTO incoming_proofs (issuer, txid, proof_json, received_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT(issuer, txid) DO NOTHING",
        params![issuer, txid, proof_json, now],
    )?;
    Ok(changed == 1)
}

/// One transaction for an incoming `/transfer/create`: replay by key, or transfers + webhook +
/// stored result (+ the recipient's receipt and event of a transfer to one of our users).
pub(super) fn apply_transfer_once(
    conn: &mut Connection,
    once: TransferOnce,
    receipt: Option<&NewReceipt>,
) -> R<TransferOutcome> {
    let tx = conn.savepoint()?;
    let seen: Option<Option<String>> = tx
        .row_cached(
            "SELECT result_json FROM idempotency WHERE kind = 'transfer' AND key = ?1",
            [&once.idempotency_key],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(result) = seen {
        let result = result.ok_or_else(|| {
            fail(format!(
                "transfer key {} has no result",
                once.idempotency_key
            ))
        })?;
        return Ok(TransferOutcome::Replayed(result));
    }
    match apply_transfers_in(&tx, &once.reference, &once.transfers, once.now)? {
        LedgerOutcome::Applied => {}
        LedgerOutcome::InsufficientFunds => {
            tx.finish()?; // not committed: rolled back
            return Ok(TransferOutcome::InsufficientFunds);
        }
        LedgerOutcome::BalanceOutOfRange(account) => {
            tx.finish()?; // not committed: rolled back
            return Ok(TransferOutcome::BalanceOutOfRange(account));
        }
    }
    if let Some((txid, ocid, url, body)) = &once.webhook {
        insert_webhook(&tx, txid, *ocid, url, body, once.now)?;
    }
    if let Some(receipt) = receipt {
        super::user_ocids::record_receipt(&tx, receipt)?;
    }
    tx.exec_cached(
        "INSERT INTO idempotency (kind, key, result_json, created_at) \
         VALUES ('transfer', ?1, ?2, ?3)",
        params![once.idempotency_key, once.result_json, once.now],
    )?;
    tx.commit()?;
    Ok(TransferOutcome::Applied(once.result_json))
}
