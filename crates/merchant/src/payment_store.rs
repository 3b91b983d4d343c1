//! The `payments` table (migration `0003_payments.sql`): the pending payments of third-party
//! settlement (`POST /payment/create`) and how each was completed. Every change is one
//! `BEGIN IMMEDIATE` transaction; completing is a conditional update (`WHERE status =
//! 'pending_settlement'`), so `/payment/settle` and a provider's webhook racing for the same
//! payment complete it once, and the loser reads the winner's answer.

use opencharge_sqlite::{get_mapped, get_u64, get_u64_opt, u64_to_i64, write_tx};
use rusqlite::{params, OptionalExtension, Row, Transaction};

use crate::error::MerchantError;
use crate::store::{record_proof_in, ProofInsert, ProofOutcome, Store};

/// Stored state of a payment (`expired` is also derived from `expires_at` by readers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaymentState {
    /// Created, waiting for the provider's proof.
    PendingSettlement,
    /// Settled by a provider's proof; our own proof is stored.
    Completed,
    /// A settlement was refused because the payment had expired.
    Expired,
}

impl PaymentState {
    fn parse(s: &str) -> Option<PaymentState> {
        match s {
            "pending_settlement" => Some(PaymentState::PendingSettlement),
            "completed" => Some(PaymentState::Completed),
            "expired" => Some(PaymentState::Expired),
            _ => None,
        }
    }
}

/// One payment row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredPayment {
    pub txid: String,
    pub creator: u64,
    pub reference: Option<String>,
    pub merchant: u64,
    pub amount: String,
    pub currency: String,
    pub memo: Option<String>,
    pub order_id: Option<String>,
    pub accepts: Vec<u64>,
    pub state: PaymentState,
    pub created_at: i64,
    pub expires_at: i64,
    pub provider_issuer: Option<u64>,
    pub provider_txid: Option<String>,
    pub provider_proof_json: Option<String>,
    pub proof_json: Option<String>,
    pub completed_at: Option<i64>,
}

impl StoredPayment {
    /// The state a reader sees at `now`: a pending payment past its `expiresAt` is expired.
    pub fn state_at(&self, now: i64) -> PaymentState {
        match self.state {
            PaymentState::PendingSettlement if now > self.expires_at => PaymentState::Expired,
            state => state,
        }
    }
}

/// A payment to create.
#[derive(Debug, Clone)]
pub(crate) struct NewPayment<'a> {
    pub txid: &'a str,
    pub creator: u64,
    pub reference: Option<&'a str>,
    pub merchant: u64,
    pub amount: &'a str,
    pub currency: &'a str,
    pub memo: Option<&'a str>,
    pub order_id: Option<&'a str>,
    pub accepts: &'a [u64],
    pub created_at: i64,
    pub expires_at: i64,
}

/// What creating did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CreateOutcome {
    /// A new pending payment.
    Created(StoredPayment),
    /// The creator already made a payment with this reference: that one, unchanged.
    Existing(StoredPayment),
}

/// A verified provider proof completing a payment, with our own signed proof.
#[derive(Debug, Clone)]
pub(crate) struct Completion<'a> {
    /// The payment.
    pub txid: &'a str,
    /// The provider proof's issuer and txid.
    pub provider_issuer: u64,
    pub provider_txid: &'a str,
    /// `{proof, signature}` of the provider, as received.
    pub provider_envelope: &'a str,
    /// `{proof, signature}` of our own proof to the merchant.
    pub own_envelope: &'a str,
    /// Our OCID (the issuer of our own proof, recorded against the order).
    pub own_ocid: u64,
    pub now: i64,
}

/// Where a provider proof (issuer, txid) was already used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProofUse {
    /// It paid this order directly (webhook).
    Order(String),
    /// It settled this other payment.
    Payment(String),
}

/// What completing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CompleteOutcome {
    /// The payment is completed now; for a payment of an order, what recording our proof
    /// against the order did.
    Completed {
        /// The payment as stored now.
        payment: Box<StoredPayment>,
        /// `None` without an order.
        order: Option<ProofOutcome>,
    },
    /// The payment was already completed (by this proof when its provider issuer and txid
    /// are the same, else by another one): nothing changed.
    AlreadyCompleted(Box<StoredPayment>),
    /// The payment expired before it was settled (now marked `expired`): nothing else changed.
    Expired(Box<StoredPayment>),
    /// The provider proof already paid something else: nothing changed.
    ProofUsed(ProofUse),
    /// No such payment.
    NotFound,
}

const PAYMENT_COLUMNS: &str = "txid, creator, reference, merchant, amount, currency, memo, \
     order_id, accepts, status, created_at, expires_at, provider_issuer, provider_txid, \
     provider_proof_json, proof_json, completed_at";

fn payment_from_row(row: &Row<'_>) -> rusqlite::Result<StoredPayment> {
    let accepts = get_mapped(row, 8, "payment accepts", |text| {
        serde_json::from_str::<Vec<u64>>(text).ok()
    })?;
    Ok(StoredPayment {
        txid: row.get(0)?,
        creator: get_u64(row, 1)?,
        reference: row.get(2)?,
        merchant: get_u64(row, 3)?,
        amount: row.get(4)?,
        currency: row.get(5)?,
        memo: row.get(6)?,
        order_id: row.get(7)?,
        accepts,
        state: get_mapped(row, 9, "payment status", PaymentState::parse)?,
        created_at: row.get(10)?,
        expires_at: row.get(11)?,
        provider_issuer: get_u64_opt(row, 12)?,
        provider_txid: row.get(13)?,
        provider_proof_json: row.get(14)?,
        proof_json: row.get(15)?,
        completed_at: row.get(16)?,
    })
}

fn payment_in(tx: &Transaction<'_>, txid: &str) -> rusqlite::Result<Option<StoredPayment>> {
    tx.query_row(
        &format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE txid = ?1"),
        params![txid],
        payment_from_row,
    )
    .optional()
}

impl Store {
    /// Creates a pending payment, or, when the creator already made one with the same
    /// reference, returns that one unchanged. One transaction.
    pub fn create_payment(&self, p: &NewPayment<'_>) -> Result<CreateOutcome, MerchantError> {
        let creator = u64_to_i64(p.creator, "creator OCID")?;
        let merchant = u64_to_i64(p.merchant, "merchant OCID")?;
        let accepts =
            serde_json::to_string(p.accepts).map_err(|e| MerchantError::Store(e.to_string()))?;
        self.with(|conn| {
            let tx = write_tx(conn)?;
            if let Some(reference) = p.reference {
                let existing: Option<String> = tx
                    .query_row(
                        "SELECT txid FROM payments WHERE creator = ?1 AND reference = ?2",
                        params![creator, reference],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(txid) = existing {
                    let payment = payment_in(&tx, &txid)?
                        .ok_or_else(|| MerchantError::Store(format!("payment {txid} vanished")))?;
                    return Ok(CreateOutcome::Existing(payment));
                }
            }
            tx.execute(
                "INSERT INTO payments (txid, creator, reference, merchant, amount, currency, \
                 memo, order_id, accepts, status, created_at, expires_at) VALUES (?1, ?2, ?3, \
                 ?4, ?5, ?6, ?7, ?8, ?9, 'pending_settlement', ?10, ?11)",
                params![
                    p.txid,
                    creator,
                    p.reference,
                    merchant,
                    p.amount,
                    p.currency,
                    p.memo,
                    p.order_id,
                    accepts,
                    p.created_at,
                    p.expires_at
                ],
            )?;
            let payment = payment_in(&tx, p.txid)?
                .ok_or_else(|| MerchantError::Store(format!("payment {} vanished", p.txid)))?;
            tx.commit()?;
            Ok(CreateOutcome::Created(payment))
        })
    }

    /// The payment `creator` made with `reference`, if any.
    pub fn payment_by_reference(
        &self,
        creator: u64,
        reference: &str,
    ) -> Result<Option<StoredPayment>, MerchantError> {
        let creator = u64_to_i64(creator, "creator OCID")?;
        self.with(|conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE creator = ?1 AND reference = ?2"
                    ),
                    params![creator, reference],
                    payment_from_row,
                )
                .optional()?)
        })
    }

    /// The payment `txid`, if any.
    pub fn payment(&self, txid: &str) -> Result<Option<StoredPayment>, MerchantError> {
        self.with(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE txid = ?1"),
                    params![txid],
                    payment_from_row,
                )
                .optional()?)
        })
    }

    /// Completes a pending payment with a verified provider proof, in one transaction:
    /// the provider's (issuer, txid) must not have paid an order or settled another payment;
    /// an already completed payment is returned as it is; a payment past its `expiresAt` is
    /// marked expired; otherwise the payment becomes `completed` (conditionally on still being
    /// pending) and, when it pays an order, our own proof is recorded against that order
    /// exactly as an accepted webhook proof is.
    pub fn complete_payment(&self, c: &Completion<'_>) -> Result<CompleteOutcome, MerchantError> {
        let issuer = u64_to_i64(c.provider_issuer, "issuer OCID")?;
        self.with(|conn| {
            let tx = write_tx(conn)?;
            let Some(payment) = payment_in(&tx, c.txid)? else {
                return Ok(CompleteOutcome::NotFound);
            };
            if payment.state == PaymentState::Completed {
                return Ok(CompleteOutcome::AlreadyCompleted(Box::new(payment)));
            }
            let order: Option<String> = tx
                .query_row(
                    "SELECT order_id FROM proofs WHERE issuer = ?1 AND txid = ?2",
                    params![issuer, c.provider_txid],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(order_id) = order {
                return Ok(CompleteOutcome::ProofUsed(ProofUse::Order(order_id)));
            }
            let other: Option<String> = tx
                .query_row(
                    "SELECT txid FROM payments WHERE provider_issuer = ?1 AND provider_txid = ?2",
                    params![issuer, c.provider_txid],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(other) = other {
                return Ok(CompleteOutcome::ProofUsed(ProofUse::Payment(other)));
            }
            if payment.state_at(c.now) == PaymentState::Expired {
                tx.execute(
                    "UPDATE payments SET status = 'expired' WHERE txid = ?1 \
                     AND status = 'pending_settlement'",
                    params![c.txid],
                )?;
                tx.commit()?;
                let mut payment = payment;
                payment.state = PaymentState::Expired;
                return Ok(CompleteOutcome::Expired(Box::new(payment)));
            }
            let changed = tx.execute(
                "UPDATE payments SET status = 'completed', provider_issuer = ?2, \
                 provider_txid = ?3, provider_proof_json = ?4, proof_json = ?5, \
                 completed_at = ?6 WHERE txid = ?1 AND status = 'pending_settlement'",
                params![
                    c.txid,
                    issuer,
                    c.provider_txid,
                    c.provider_envelope,
                    c.own_envelope,
                    c.now
                ],
            )?;
            if changed != 1 {
                return Err(MerchantError::Store(format!(
                    "payment {} left pending_settlement inside its transaction",
                    c.txid
                )));
            }
            let order = match &payment.order_id {
                Some(order_id) => Some(record_proof_in(
                    &tx,
                    &ProofInsert {
                        issuer: c.own_ocid,
                        txid: c.txid,
                        order_id,
                        envelope_json: c.own_envelope,
                        paid_at: c.now,
                        now: c.now,
                    },
                )?),
                None => None,
            };
            let payment = payment_in(&tx, c.txid)?
                .ok_or_else(|| MerchantError::Store(format!("payment {} vanished", c.txid)))?;
            tx.commit()?;
            Ok(CompleteOutcome::Completed {
                payment: Box::new(payment),
                order,
            })
        })
    }

    /// Marks a pending payment past its `expiresAt` as expired (a settlement was refused for
    /// it); a payment that is not pending, or not yet past its expiry, is left alone.
    pub fn expire_payment(&self, txid: &str, now: i64) -> Result<(), MerchantError> {
        self.with(|conn| {
            conn.execute(
                "UPDATE payments SET status = 'expired' WHERE txid = ?1 \
                 AND status = 'pending_settlement' AND expires_at < ?2",
                params![txid, now],
            )?;
            Ok(())
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
            .insert_order("o1", "{}", "sig", "1.00", "USD", 10, 5000)
            .unwrap();
        (dir, store)
    }

    fn new<'a>(
        txid: &'a str,
        reference: Option<&'a str>,
        order: Option<&'a str>,
    ) -> NewPayment<'a> {
        NewPayment {
            txid,
            creator: 100,
            reference,
            merchant: 500,
            amount: "1.0",
            currency: "USD",
            memo: None,
            order_id: order,
            accepts: &[300],
            created_at: 100,
            expires_at: 1000,
        }
    }

    fn completion<'a>(txid: &'a str, provider_txid: &'a str, now: i64) -> Completion<'a> {
        Completion {
            txid,
            provider_issuer: 300,
            provider_txid,
            provider_envelope: "{\"p\":1}",
            own_envelope: "{\"own\":1}",
            own_ocid: 500,
            now,
        }
    }

    #[test]
    fn create_is_idempotent_per_creator_and_reference() {
        let (_dir, store) = store();
        let CreateOutcome::Created(first) = store
            .create_payment(&new("mgp_1", Some("r1"), Some("o1")))
            .unwrap()
        else {
            panic!("not created")
        };
        assert_eq!(first.accepts, vec![300]);
        assert_eq!(first.state, PaymentState::PendingSettlement);
        assert_eq!(first.amount, "1.0");
        // The same reference again gives the first payment back, whatever the new txid.
        assert_eq!(
            store
                .create_payment(&new("mgp_2", Some("r1"), Some("o1")))
                .unwrap(),
            CreateOutcome::Existing(first.clone())
        );
        assert!(store.payment("mgp_2").unwrap().is_none());
        // Another creator, or no reference, is another payment.
        let other = NewPayment {
            creator: 101,
            ..new("mgp_3", Some("r1"), None)
        };
        assert!(matches!(
            store.create_payment(&other).unwrap(),
            CreateOutcome::Created(_)
        ));
        for txid in ["mgp_4", "mgp_5"] {
            assert!(matches!(
                store.create_payment(&new(txid, None, None)).unwrap(),
                CreateOutcome::Created(_)
            ));
        }
    }

    #[test]
    fn completion_happens_once_and_pays_the_order() {
        let (_dir, store) = store();
        store
            .create_payment(&new("mgp_1", Some("r1"), Some("o1")))
            .unwrap();
        let CompleteOutcome::Completed { payment, order } = store
            .complete_payment(&completion("mgp_1", "s1", 200))
            .unwrap()
        else {
            panic!("not completed")
        };
        assert_eq!(order, Some(ProofOutcome::Paid));
        assert_eq!(payment.state, PaymentState::Completed);
        assert_eq!(payment.provider_txid.as_deref(), Some("s1"));
        assert_eq!(payment.proof_json.as_deref(), Some("{\"own\":1}"));
        let o1 = store.order("o1").unwrap().unwrap();
        assert_eq!(o1.txid.as_deref(), Some("mgp_1"));
        assert_eq!(o1.issuer, Some(500));
        // Again (the same proof or another): nothing changes.
        for provider_txid in ["s1", "s2"] {
            assert!(matches!(
                store
                    .complete_payment(&completion("mgp_1", provider_txid, 201))
                    .unwrap(),
                CompleteOutcome::AlreadyCompleted(p) if p.completed_at == Some(200)
            ));
        }
        // The provider proof cannot settle a second payment, nor pay an order directly.
        store.create_payment(&new("mgp_2", None, None)).unwrap();
        assert_eq!(
            store
                .complete_payment(&completion("mgp_2", "s1", 202))
                .unwrap(),
            CompleteOutcome::ProofUsed(ProofUse::Payment("mgp_1".into()))
        );
        store
            .insert_order("o2", "{}", "sig", "1.00", "USD", 10, 5000)
            .unwrap();
        let direct = ProofInsert {
            issuer: 300,
            txid: "s1",
            order_id: "o2",
            envelope_json: "{}",
            paid_at: 1,
            now: 1,
        };
        assert_eq!(
            store.record_proof(&direct).unwrap(),
            ProofOutcome::TxidUsedForPayment("mgp_1".into())
        );
        // And a proof that paid an order directly cannot settle a payment.
        let direct = ProofInsert {
            txid: "s9",
            ..direct
        };
        assert_eq!(store.record_proof(&direct).unwrap(), ProofOutcome::Paid);
        assert_eq!(
            store
                .complete_payment(&completion("mgp_2", "s9", 203))
                .unwrap(),
            CompleteOutcome::ProofUsed(ProofUse::Order("o2".into()))
        );
        assert_eq!(
            store.payment("mgp_2").unwrap().unwrap().state,
            PaymentState::PendingSettlement
        );
        assert_eq!(
            store
                .complete_payment(&completion("mgp_9", "s3", 203))
                .unwrap(),
            CompleteOutcome::NotFound
        );
    }

    #[test]
    fn expired_payments_are_not_completed() {
        let (_dir, store) = store();
        store.create_payment(&new("mgp_1", None, None)).unwrap();
        let payment = store.payment("mgp_1").unwrap().unwrap();
        assert_eq!(payment.state_at(1000), PaymentState::PendingSettlement);
        assert_eq!(payment.state_at(1001), PaymentState::Expired);
        // Not yet expired: left alone.
        store.expire_payment("mgp_1", 1000).unwrap();
        assert_eq!(
            store.payment("mgp_1").unwrap().unwrap().state,
            PaymentState::PendingSettlement
        );
        assert!(matches!(
            store.complete_payment(&completion("mgp_1", "s1", 1001)).unwrap(),
            CompleteOutcome::Expired(p) if p.state == PaymentState::Expired
        ));
        let stored = store.payment("mgp_1").unwrap().unwrap();
        assert_eq!(stored.state, PaymentState::Expired);
        assert_eq!(stored.proof_json, None);
        assert_eq!(stored.provider_txid, None);
    }
}
