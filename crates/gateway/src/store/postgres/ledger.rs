//! PostgreSQL accounts and ledger: accounts, balances, double-entry transfers (funds checked by
//! the rules of [`crate::domain::ledger`], balance rows locked in one fixed order), idempotent
//! incoming transfers and incoming proofs.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{execute, fail, ocid_param, query, query_one, query_opt, webhooks, Step, Tx, R};
use crate::domain::ledger::{self as rules, LedgerOutcome};
use crate::store::{Account, Balance, NewReceipt, Transfer, TransferOnce, TransferOutcome};

/// Columns read by [`read_account`].
const ACCOUNT_COLS: &str = "id, kind, name, created_at";

/// Reads an [`Account`] row selected with [`ACCOUNT_COLS`].
fn read_account(row: &Row) -> R<Account> {
    Ok(Account {
        id: row.try_get(0)?,
        kind: row.try_get(1)?,
        name: row.try_get(2)?,
        created_at: row.try_get(3)?,
    })
}

/// Creates an account with a fresh random `acct_<32 hex>` id.
pub(super) async fn create_account(
    tx: &Tx<'_>,
    kind: &str,
    name: &str,
    now: i64,
) -> R<Step<Account>> {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let account = Account {
        id: format!("acct_{}", hex::encode(bytes)),
        kind: kind.to_owned(),
        name: name.to_owned(),
        created_at: now,
    };
    execute(
        tx,
        "INSERT INTO accounts (id, kind, name, created_at) VALUES ($1, $2, $3, $4)",
        &[
            &account.id,
            &account.kind,
            &account.name,
            &account.created_at,
        ],
    )
    .await?;
    Ok(Step::Commit(account))
}

/// Creates the account with this id unless it exists; returns the stored row.
pub(super) async fn ensure_account(
    tx: &Tx<'_>,
    id: &str,
    kind: &str,
    name: &str,
    now: i64,
) -> R<Step<Account>> {
    execute(
        tx,
        "INSERT INTO accounts (id, kind, name, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO NOTHING",
        &[&id, &kind, &name, &now],
    )
    .await?;
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1");
    let row = query_one(tx, &sql, &[&id]).await?;
    Ok(Step::Commit(read_account(&row)?))
}

/// Looks an account up.
pub(super) async fn account<C: GenericClient + Sync>(c: &C, id: &str) -> R<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1");
    query_opt(c, &sql, &[&id])
        .await?
        .map(|r| read_account(&r))
        .transpose()
}

/// All balances of an account, by currency.
pub(super) async fn balances<C: GenericClient + Sync>(c: &C, account_id: &str) -> R<Vec<Balance>> {
    query(
        c,
        "SELECT currency, minor FROM balances WHERE account_id = $1 ORDER BY currency",
        &[&account_id],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Balance {
            currency: r.try_get(0)?,
            minor: r.try_get(1)?,
        })
    })
    .collect()
}

/// Applies transfers in one transaction; anything but [`LedgerOutcome::Applied`] rolls back.
pub(super) async fn apply_transfers(
    tx: &Tx<'_>,
    reference: &str,
    transfers: &[Transfer],
    now: i64,
) -> R<Step<LedgerOutcome>> {
    let outcome = apply_transfers_in(tx, reference, transfers, now).await?;
    Ok(if outcome == LedgerOutcome::Applied {
        Step::Commit(outcome)
    } else {
        Step::Rollback(outcome)
    })
}

/// The kind of an account, if it exists.
async fn account_kind(tx: &Tx<'_>, id: &str) -> R<Option<String>> {
    query_opt(tx, "SELECT kind FROM accounts WHERE id = $1", &[&id])
        .await?
        .map(|r| Ok(r.try_get(0)?))
        .transpose()
}

/// Applies `transfers` inside the caller's transaction and records one ledger entry each,
/// with the same outcomes as the SQLite store (see `Store::apply_transfers`). Every balance
/// row the transfers touch is locked first, in one fixed order (account, then currency), so
/// concurrent payments between the same accounts never deadlock; a missing row is created at
/// 0 under the same lock (and rolled back with everything else unless the outcome is
/// `Applied`). Unknown accounts and non-positive amounts are errors.
pub(super) async fn apply_transfers_in(
    tx: &Tx<'_>,
    reference: &str,
    transfers: &[Transfer],
    now: i64,
) -> R<LedgerOutcome> {
    let mut kinds: BTreeMap<&str, String> = BTreeMap::new();
    for t in transfers {
        rules::check_transfer(t).map_err(fail)?;
        for account in [&t.from_account, &t.to_account] {
            if !kinds.contains_key(account.as_str()) {
                let kind = account_kind(tx, account)
                    .await?
                    .ok_or_else(|| fail(format!("unknown account {account}")))?;
                kinds.insert(account, kind);
            }
        }
    }
    // Lock (creating when missing) every touched balance row, in sorted order.
    let mut balances: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for t in transfers {
        balances.insert((&t.from_account, &t.currency), 0);
        balances.insert((&t.to_account, &t.currency), 0);
    }
    for ((account, currency), minor) in balances.iter_mut() {
        let row = query_one(
            tx,
            "INSERT INTO balances (account_id, currency, minor) VALUES ($1, $2, 0) \
             ON CONFLICT (account_id, currency) DO UPDATE SET minor = balances.minor \
             RETURNING minor",
            &[account, currency],
        )
        .await?;
        *minor = row.try_get(0)?;
    }
    let original = balances.clone();
    let mut debited: Vec<(&str, &str)> = Vec::new();
    let mut out_of_range: Option<String> = None;
    for t in transfers {
        let from = (t.from_account.as_str(), t.currency.as_str());
        let to = (t.to_account.as_str(), t.currency.as_str());
        // A balance past the range is noted and its move skipped; the transaction is rolled
        // back either way, and the debits still count for the funds check below.
        match rules::debit(balances[&from], t.minor, &t.from_account) {
            Ok(v) => {
                balances.insert(from, v);
            }
            Err(_) => {
                out_of_range.get_or_insert_with(|| t.from_account.clone());
            }
        }
        match rules::credit(balances[&to], t.minor, &t.to_account) {
            Ok(v) => {
                balances.insert(to, v);
            }
            Err(_) => {
                out_of_range.get_or_insert_with(|| t.to_account.clone());
            }
        }
        debited.push(from);
    }
    for (account, currency) in &debited {
        if !rules::balance_allowed(&kinds[account], balances[&(*account, *currency)]) {
            return Ok(LedgerOutcome::InsufficientFunds);
        }
    }
    if let Some(account) = out_of_range {
        return Ok(LedgerOutcome::BalanceOutOfRange(account));
    }
    for ((account, currency), minor) in &balances {
        if original[&(*account, *currency)] != *minor {
            execute(
                tx,
                "UPDATE balances SET minor = $3 WHERE account_id = $1 AND currency = $2",
                &[account, currency, minor],
            )
            .await?;
        }
    }
    for t in transfers {
        execute(
            tx,
            "INSERT INTO ledger_entries (reference, from_account, to_account, currency, minor, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &reference,
                &t.from_account,
                &t.to_account,
                &t.currency,
                &t.minor,
                &now,
            ],
        )
        .await?;
    }
    Ok(LedgerOutcome::Applied)
}

/// Records an incoming proof `(issuer, txid)`; `false` if it was recorded before.
pub(super) async fn record_incoming_proof(
    tx: &Tx<'_>,
    issuer: u64,
    txid: &str,
    proof_json: &str,
    now: i64,
) -> R<Step<bool>> {
    let issuer = ocid_param(issuer, "issuer OCID")?;
    let changed = execute(
        tx,
        "INSERT INTO incoming_proofs (issuer, txid, proof_json, received_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (issuer, txid) DO NOTHING",
        &[&issuer, &txid, &proof_json, &now],
    )
    .await?;
    Ok(Step::Commit(changed == 1))
}

/// One transaction for an incoming `/transfer/create`: replay by key, or transfers + webhook +
/// stored result. The key is inserted first: a concurrent request with the same key waits on
/// it and then replays the stored result.
/// With `receipt`, the recipient's receipt and event of a transfer to one of our users are
/// written in the same transaction (never on a replay).
pub(super) async fn apply_transfer_once(
    tx: &Tx<'_>,
    once: &TransferOnce,
    receipt: Option<&NewReceipt>,
) -> R<Step<TransferOutcome>> {
    let inserted = execute(
        tx,
        "INSERT INTO idempotency (kind, key, result_json, created_at) \
         VALUES ('transfer', $1, $2, $3) ON CONFLICT (kind, key) DO NOTHING",
        &[&once.idempotency_key, &once.result_json, &once.now],
    )
    .await?;
    if inserted == 0 {
        let row = query_one(
            tx,
            "SELECT result_json FROM idempotency WHERE kind = 'transfer' AND key = $1",
            &[&once.idempotency_key],
        )
        .await?;
        let result: Option<String> = row.try_get(0)?;
        let result = result.ok_or_else(|| {
            fail(format!(
                "transfer key {} has no result",
                once.idempotency_key
            ))
        })?;
        return Ok(Step::Rollback(TransferOutcome::Replayed(result)));
    }
    match apply_transfers_in(tx, &once.reference, &once.transfers, once.now).await? {
        LedgerOutcome::Applied => {}
        LedgerOutcome::InsufficientFunds => {
            return Ok(Step::Rollback(TransferOutcome::InsufficientFunds));
        }
        LedgerOutcome::BalanceOutOfRange(account) => {
            return Ok(Step::Rollback(TransferOutcome::BalanceOutOfRange(account)));
        }
    }
    if let Some((txid, ocid, url, body)) = &once.webhook {
        webhooks::insert(tx, txid, *ocid, url, body, once.now).await?;
    }
    if let Some(receipt) = receipt {
        super::user_ocids::record_receipt(tx, receipt).await?;
    }
    Ok(Step::Commit(TransferOutcome::Applied(
        once.result_json.clone(),
    )))
}
