//! The merchant's SQLite storage: signed orders and their payment state, every accepted proof
//! (deduplicated on issuer and txid), and the request nonces seen on authenticated endpoints.
//! The third-party payments table has its own file, [`crate::payment_store`].
//!
//! One [`Connection`] behind a mutex. Calls are short local statements and run on the
//! caller's thread (the library API is partly synchronous). Every multi-statement change runs
//! in one `BEGIN IMMEDIATE` transaction, so concurrent webhooks for the same txid or order
//! are decided by the database, never by a read-then-write race.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use opencharge_sqlite::{get_mapped, get_u64_opt, u64_to_i64, write_tx, Migration, Options};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use crate::error::MerchantError;

/// Schema migrations (`crates/merchant/migrations/`), in order: entry `i` brings the database
/// from version `i` to `i + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration::new(
        "0001_initial.sql",
        include_str!("../migrations/0001_initial.sql"),
    ),
    Migration::new(
        "0002_identity.sql",
        include_str!("../migrations/0002_identity.sql"),
    ),
    Migration::new(
        "0003_payments.sql",
        include_str!("../migrations/0003_payments.sql"),
    ),
];

/// How the database is opened: parent directories created, WAL, foreign keys, a 5 s busy
/// timeout, SQLite's default `synchronous`.
const OPTIONS: Options = Options {
    create_dirs: true,
    wal: true,
    synchronous: None,
    foreign_keys: true,
    busy_timeout: Some(Duration::from_secs(5)),
};

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
    /// This (issuer, txid) already settled the third-party payment with this txid: nothing
    /// changed.
    TxidUsedForPayment(String),
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

const ORDER_COLUMNS: &str = "id, order_json, signature, amount, currency, created_at, expires_at, \
     status, txid, issuer, paid_at, proof_json, gateway_ocid, status_url, checkout_url";

fn order_from_row(row: &Row<'_>) -> rusqlite::Result<StoredOrder> {
    let status = get_mapped(row, 7, "order status", StoredStatus::parse)?;
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
        issuer: get_u64_opt(row, 9)?,
        paid_at: row.get(10)?,
        proof_json: row.get(11)?,
        gateway_ocid: get_u64_opt(row, 12)?,
        status_url: row.get(13)?,
        checkout_url: row.get(14)?,
    })
}

impl Store {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Store, MerchantError> {
        let conn = opencharge_sqlite::open(path, &OPTIONS, MIGRATIONS)
            .map_err(|e| MerchantError::Store(e.to_string()))?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` with the connection (locked).
    pub(crate) fn with<T>(
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
        let gateway = u64_to_i64(gateway_ocid, "OCID")?;
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
        let gateway = u64_to_i64(gateway_ocid, "OCID")?;
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
        self.with(|conn| {
            let tx = write_tx(conn)?;
            let outcome = record_proof_in(&tx, p)?;
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

/// [`Store::record_proof`] inside the caller's write transaction (the third-party payment's
/// completion records its own proof against the order in the same transaction). A txid that
/// already settled a third-party payment is refused too: one transfer pays one thing.
pub(crate) fn record_proof_in(
    tx: &Transaction<'_>,
    p: &ProofInsert<'_>,
) -> Result<ProofOutcome, MerchantError> {
    let issuer = u64_to_i64(p.issuer, "issuer OCID")?;
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
    let settled: Option<String> = tx
        .query_row(
            "SELECT txid FROM payments WHERE provider_issuer = ?1 AND provider_txid = ?2",
            params![issuer, p.txid],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(payment) = settled {
        return Ok(ProofOutcome::TxidUsedForPayment(payment));
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
    Ok(if already_paid {
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
    })
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

    #[test]
    fn bad_stored_values_and_newer_schemas_are_errors() {
        let (dir, store) = store();
        store
            .with(|conn| {
                conn.execute("UPDATE orders SET issuer = -1 WHERE id = 'o1'", [])?;
                conn.execute("UPDATE orders SET gateway_ocid = 5 WHERE id = 'o2'", [])?;
                conn.execute("PRAGMA ignore_check_constraints = ON", [])?;
                conn.execute("UPDATE orders SET status = 'lost' WHERE id = 'o2'", [])?;
                Ok(())
            })
            .unwrap();
        let err = store.order("o1").unwrap_err().to_string();
        assert!(err.contains("column issuer holds -1"), "{err}");
        let err = store.order("o2").unwrap_err().to_string();
        assert!(err.contains("column status holds \"lost\""), "{err}");
        assert!(matches!(
            store.set_submission("o1", u64::MAX, "https://x.example/s"),
            Err(MerchantError::Store(_))
        ));
        store
            .with(|conn| {
                let newer = MIGRATIONS.len() as i64 + 1;
                Ok(conn.pragma_update(None, "user_version", newer)?)
            })
            .unwrap();
        drop(store);
        let err = Store::open(&dir.path().join("m.sqlite3")).err().unwrap();
        let newer = format!("version {} is newer", MIGRATIONS.len() + 1);
        assert!(err.to_string().contains(&newer), "{err}");
    }
}
