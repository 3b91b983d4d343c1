//! The merchant's SQLite storage: signed orders and their payment state, every accepted proof
//! (deduplicated on issuer and txid), and the request nonces seen on authenticated endpoints.
//!
//! One [`Connection`] behind a mutex. Calls are short local statements and run on the
//! caller's thread (the library API is partly synchronous). Every multi-statement change runs
//! in one `BEGIN IMMEDIATE` transaction, so concurrent webhooks for the same txid or order
//! are decided by the database, never by a read-then-write race.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::error::MerchantError;

/// Schema migrations, in order: entry `i` brings the database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE orders (
    id             TEXT PRIMARY KEY,
    order_json     TEXT NOT NULL,
    signature      TEXT NOT NULL,
    amount         TEXT NOT NULL,
    currency       TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'cancelled')),
    txid           TEXT,
    issuer         INTEGER,
    paid_at        INTEGER,
    proof_json     TEXT,
    gateway_ocid   INTEGER,
    status_url     TEXT,
    checkout_url   TEXT
);

CREATE TABLE proofs (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    issuer         INTEGER NOT NULL,
    txid           TEXT NOT NULL,
    order_id       TEXT NOT NULL REFERENCES orders(id),
    envelope_json  TEXT NOT NULL,
    extra_payment  INTEGER NOT NULL DEFAULT 0,
    received_at    INTEGER NOT NULL,
    UNIQUE (issuer, txid)
);
CREATE INDEX proofs_order ON proofs(order_id);

CREATE TABLE nonces (
    scope       TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, nonce)
) WITHOUT ROWID;
CREATE INDEX nonces_expires ON nonces(expires_at);
"#];

/// Stored payment state of an order (`expired` is derived from `expires_at`, not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoredStatus {
    /// Not paid.
    Pending,
    /// A proof was accepted.
    Paid,
    /// Cancelled by the merchant before any proof arrived.
    Cancelled,
}

impl StoredStatus {
    fn parse(s: &str) -> Option<StoredStatus> {
        match s {
            "pending" => Some(StoredStatus::Pending),
            "paid" => Some(StoredStatus::Paid),
            "cancelled" => Some(StoredStatus::Cancelled),
            _ => None,
        }
    }
}

/// One order row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredOrder {
    pub id: String,
    pub order_json: String,
    pub signature: String,
    pub amount: String,
    pub currency: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub status: StoredStatus,
    pub txid: Option<String>,
    pub issuer: Option<u64>,
    pub paid_at: Option<i64>,
    pub proof_json: Option<String>,
    pub gateway_ocid: Option<u64>,
    pub status_url: Option<String>,
    pub checkout_url: Option<String>,
}

/// A verified proof to record against an order.
#[derive(Debug, Clone)]
pub(crate) struct ProofInsert<'a> {
    pub issuer: u64,
    pub txid: &'a str,
    pub order_id: &'a str,
    /// `{"proof": <raw proof>, "signature": "…"}` as received.
    pub envelope_json: &'a str,
    /// When the transfer completed (the proof's timestamp).
    pub paid_at: i64,
    pub now: i64,
}

/// What recording a proof did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProofOutcome {
    /// First proof for the order: the order is now paid.
    Paid,
    /// This (issuer, txid) was already recorded for the same order: nothing changed.
    Replay,
    /// This (issuer, txid) was already recorded for another order: nothing changed.
    TxidUsedForOrder(String),
    /// A new txid for an order that another proof already paid: recorded as an extra payment
    /// (money to refund); the order keeps its first txid.
    ExtraPayment {
        /// The txid that paid the order first.
        first_txid: String,
    },
    /// The order does not exist.
    OrderNotFound,
}

/// What cancelling did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelOutcome {
    /// The order is cancelled (now or already).
    Cancelled,
    /// The order is paid and cannot be cancelled.
    AlreadyPaid,
    /// No such order.
    NotFound,
}

/// The SQLite store.
pub(crate) struct Store {
    conn: Mutex<Connection>,
}

fn to_i64(v: u64, what: &str) -> Result<i64, MerchantError> {
    i64::try_from(v).map_err(|_| MerchantError::Store(format!("{what} {v} does not fit in SQLite")))
}

fn opt_u64(v: Option<i64>) -> Option<u64> {
    v.and_then(|x| u64::try_from(x).ok())
}

const ORDER_COLUMNS: &str = "id, order_json, signature, amount, currency, created_at, expires_at, \
     status, txid, issuer, paid_at, proof_json, gateway_ocid, status_url, checkout_url";

fn order_from_row(row: &Row<'_>) -> rusqlite::Result<StoredOrder> {
    let status: String = row.get(7)?;
    let status = StoredStatus::parse(&status).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            7,
            rusqlite::types::Type::Text,
            format!("unknown order status {status:?}").into(),
        )
    })?;
    Ok(StoredOrder {
        id: row.get(0)?,
        order_json: row.get(1)?,
        signature: row.get(2)?,
        amount: row.get(3)?,
        currency: row.get(4)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
        status,
        txid: row.get(8)?,
        issuer: opt_u64(row.get(9)?),
        paid_at: row.get(10)?,
        proof_json: row.get(11)?,
        gateway_ocid: opt_u64(row.get(12)?),
        status_url: row.get(13)?,
        checkout_url: row.get(14)?,
    })
}

impl Store {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Store, MerchantError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let start = usize::try_from(version).unwrap_or(usize::MAX);
        if start > MIGRATIONS.len() {
            return Err(MerchantError::Store(format!(
                "database schema version {version} is newer than this program ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(start) {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(sql)?;
            let version = i64::try_from(i + 1)
                .map_err(|_| MerchantError::Store("too many migrations".into()))?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
        }
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, MerchantError>,
    ) -> Result<T, MerchantError> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| MerchantError::Store("connection lock poisoned".into()))?;
        f(&mut conn)
    }

    /// Inserts a new pending order.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_order(
        &self,
        id: &str,
        order_json: &str,
        signature: &str,
        amount: &str,
        currency: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), MerchantError> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO orders (id, order_json, signature, amount, currency, created_at, \
                 expires_at, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending')",
                params![id, order_json, signature, amount, currency, created_at, expires_at],
            )?;
            Ok(())
        })
    }

    /// The order `id`, if any.
    pub fn order(&self, id: &str) -> Result<Option<StoredOrder>, MerchantError> {
        self.with(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1"),
                    params![id],
                    order_from_row,
                )
                .optional()?)
        })
    }

    /// Records that the order was posted to gateway `gateway_ocid`, whose status URL is
    /// `status_url`.
    pub fn set_submission(
        &self,
        id: &str,
        gateway_ocid: u64,
        status_url: &str,
    ) -> Result<(), MerchantError> {
        let gateway = to_i64(gateway_ocid, "OCID")?;
        self.with(|conn| {
            conn.execute(
                "UPDATE orders SET gateway_ocid = ?2, status_url = ?3 WHERE id = ?1",
                params![id, gateway, status_url],
            )?;
            Ok(())
        })
    }

    /// Records a hosted checkout created for the order at gateway `gateway_ocid`.
    pub fn set_checkout(
        &self,
        id: &str,
        gateway_ocid: u64,
        checkout_url: &str,
    ) -> Result<(), MerchantError> {
        let gateway = to_i64(gateway_ocid, "OCID")?;
        self.with(|conn| {
            conn.execute(
                "UPDATE orders SET gateway_ocid = ?2, checkout_url = ?3 WHERE id = ?1",
                params![id, gateway, checkout_url],
            )?;
            Ok(())
        })
    }

    /// Cancels a pending order.
    pub fn cancel(&self, id: &str) -> Result<CancelOutcome, MerchantError> {
        self.with(|conn| {
            let changed = conn.execute(
                "UPDATE orders SET status = 'cancelled' WHERE id = ?1 AND status = 'pending'",
                params![id],
            )?;
            if changed == 1 {
                return Ok(CancelOutcome::Cancelled);
            }
            let status: Option<String> = conn
                .query_row(
                    "SELECT status FROM orders WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(match status.as_deref() {
                None => CancelOutcome::NotFound,
                Some("paid") => CancelOutcome::AlreadyPaid,
                Some(_) => CancelOutcome::Cancelled,
            })
        })
    }

    /// Records a verified proof against its order in one transaction: dedupe on
    /// (issuer, txid), then mark the order paid unless another proof already did.
    pub fn record_proof(&self, p: &ProofInsert<'_>) -> Result<ProofOutcome, MerchantError> {
        let issuer = to_i64(p.issuer, "issuer OCID")?;
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let seen: Option<String> = tx
                .query_row(
                    "SELECT order_id FROM proofs WHERE issuer = ?1 AND txid = ?2",
                    params![issuer, p.txid],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(order_id) = seen {
                return Ok(if order_id == p.order_id {
                    ProofOutcome::Replay
                } else {
                    ProofOutcome::TxidUsedForOrder(order_id)
                });
            }
            let order: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT status, txid FROM orders WHERE id = ?1",
                    params![p.order_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((status, first_txid)) = order else {
                return Ok(ProofOutcome::OrderNotFound);
            };
            let already_paid = status == "paid";
            tx.execute(
                "INSERT INTO proofs (issuer, txid, order_id, envelope_json, extra_payment, \
                 received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    issuer,
                    p.txid,
                    p.order_id,
                    p.envelope_json,
                    already_paid,
                    p.now
                ],
            )?;
            let outcome = if already_paid {
                ProofOutcome::ExtraPayment {
                    first_txid: first_txid.unwrap_or_default(),
                }
            } else {
                tx.execute(
                    "UPDATE orders SET status = 'paid', txid = ?2, issuer = ?3, paid_at = ?4, \
                     proof_json = ?5 WHERE id = ?1",
                    params![p.order_id, p.txid, issuer, p.paid_at, p.envelope_json],
                )?;
                ProofOutcome::Paid
            };
            tx.commit()?;
            Ok(outcome)
        })
    }

    /// Every accepted proof envelope, oldest first.
    pub fn proofs(&self) -> Result<Vec<String>, MerchantError> {
        self.with(|conn| {
            let mut stmt = conn.prepare("SELECT envelope_json FROM proofs ORDER BY seq")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Records a request nonce for `scope`; false when it was already used (and not yet
    /// expired). Expired nonces are purged first.
    pub fn use_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, MerchantError> {
        self.with(|conn| {
            conn.execute("DELETE FROM nonces WHERE expires_at < ?1", params![now])?;
            let inserted = conn.execute(
                "INSERT OR IGNORE INTO nonces (scope, nonce, expires_at) VALUES (?1, ?2, ?3)",
                params![scope, nonce, expires_at],
            )?;
            Ok(inserted == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.sqlite3")).unwrap();
        store
            .insert_order("o1", "{}", "sig", "1.00", "USD", 10, 310)
            .unwrap();
        store
            .insert_order("o2", "{}", "sig", "2.00", "USD", 10, 310)
            .unwrap();
        (dir, store)
    }

    fn proof<'a>(issuer: u64, txid: &'a str, order_id: &'a str) -> ProofInsert<'a> {
        ProofInsert {
            issuer,
            txid,
            order_id,
            envelope_json: "{\"proof\":{}}",
            paid_at: 20,
            now: 21,
        }
    }

    #[test]
    fn proof_outcomes() {
        let (_dir, store) = store();
        assert_eq!(
            store.record_proof(&proof(200, "tx1", "o1")).unwrap(),
            ProofOutcome::Paid
        );
        let o1 = store.order("o1").unwrap().unwrap();
        assert_eq!(o1.status, StoredStatus::Paid);
        assert_eq!(o1.txid.as_deref(), Some("tx1"));
        assert_eq!(o1.issuer, Some(200));
        assert_eq!(o1.paid_at, Some(20));
        // Replay of the same txid for the same order: nothing changes.
        assert_eq!(
            store.record_proof(&proof(200, "tx1", "o1")).unwrap(),
            ProofOutcome::Replay
        );
        // The same txid for another order is refused.
        assert_eq!(
            store.record_proof(&proof(200, "tx1", "o2")).unwrap(),
            ProofOutcome::TxidUsedForOrder("o1".into())
        );
        assert_eq!(
            store.order("o2").unwrap().unwrap().status,
            StoredStatus::Pending
        );
        // The same txid from another issuer is a different transaction.
        assert_eq!(
            store.record_proof(&proof(201, "tx1", "o2")).unwrap(),
            ProofOutcome::Paid
        );
        // A second payment of a paid order is recorded but keeps the first txid.
        assert_eq!(
            store.record_proof(&proof(200, "tx9", "o1")).unwrap(),
            ProofOutcome::ExtraPayment {
                first_txid: "tx1".into()
            }
        );
        assert_eq!(
            store.order("o1").unwrap().unwrap().txid.as_deref(),
            Some("tx1")
        );
        assert_eq!(
            store.record_proof(&proof(200, "tx5", "nope")).unwrap(),
            ProofOutcome::OrderNotFound
        );
        assert_eq!(store.proofs().unwrap().len(), 3);
    }

    #[test]
    fn cancel_outcomes() {
        let (_dir, store) = store();
        assert_eq!(store.cancel("o1").unwrap(), CancelOutcome::Cancelled);
        assert_eq!(store.cancel("o1").unwrap(), CancelOutcome::Cancelled);
        assert_eq!(
            store.order("o1").unwrap().unwrap().status,
            StoredStatus::Cancelled
        );
        store.record_proof(&proof(200, "tx1", "o2")).unwrap();
        assert_eq!(store.cancel("o2").unwrap(), CancelOutcome::AlreadyPaid);
        assert_eq!(store.cancel("zz").unwrap(), CancelOutcome::NotFound);
    }

    #[test]
    fn nonces_are_single_use_until_they_expire() {
        let (_dir, store) = store();
        assert!(store.use_nonce("ocid:200", "n1", 700, 100).unwrap());
        assert!(!store.use_nonce("ocid:200", "n1", 700, 200).unwrap());
        assert!(store.use_nonce("ocid:201", "n1", 700, 200).unwrap());
        // After expiry the row is purged and the nonce could be stored again; the timestamp
        // window (±300 s < 600 s) already refuses such an old request.
        assert!(store.use_nonce("ocid:200", "n1", 1400, 701).unwrap());
    }

    #[test]
    fn reopening_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("m.sqlite3");
        {
            let store = Store::open(&path).unwrap();
            store
                .insert_order("o1", "{}", "s", "1.00", "USD", 1, 2)
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert!(store.order("o1").unwrap().is_some());
        assert!(store.order("o2").unwrap().is_none());
    }
}
