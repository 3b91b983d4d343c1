//! Payments and receipts: the signed proof as the app API carries it, receipts
//! (`GET /app/history`, §3.11, and `GET /app/payments/{id}`, §3.12) and balances
//! (`GET /app/balance`, §3.13).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{nullable, Flow, SessionStatus};
use crate::error::{ProtocolError, Result};
use crate::types::Proof;

/// A signed transfer proof `{proof, signature}` as delivered in confirm answers and receipts.
/// `proof` stays the raw JSON because the issuer's signature covers it exactly as sent;
/// verify it with [`crate::signing::verify_proof`], then read it with [`ProofEnvelope::parsed`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofEnvelope {
    /// The proof object as signed by its issuer.
    pub proof: Value,
    /// The issuer's signature over the canonical proof.
    pub signature: String,
}

impl ProofEnvelope {
    /// The proof as the protocol's typed [`Proof`]; an error names the missing field.
    pub fn parsed(&self) -> Result<Proof> {
        serde_json::from_value(self.proof.clone())
            .map_err(|e| ProtocolError::Json(format!("proof: {e}")))
    }
}

/// A receipt: one session of the account as history and payment details show it. A wallet QR
/// session without an order has only `sessionId`, `flow`, `status`, `createdAt`, `expiresAt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The session (prompt) id.
    pub session_id: String,
    /// How the payment started.
    pub flow: Flow,
    /// `pending`, `order_received`, `paid`, `declined` or `expired`.
    pub status: SessionStatus,
    /// The merchant, once an order is attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_ocid: Option<u64>,
    /// Present (possibly `null`) once an order is attached: `Some(None)` is `null`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub merchant_name: Option<Option<String>>,
    /// The merchant's order id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The order amount, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// ISO 4217 code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The signed order as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Value>,
    /// Unix seconds when the session was created.
    pub created_at: i64,
    /// Unix seconds when the session expires (or expired).
    pub expires_at: i64,
    /// Unix seconds of the payment, when paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<i64>,
    /// The transaction id, when paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txid: Option<String>,
    /// The signed proof, when paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofEnvelope>,
    /// The user's reason, when declined with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<String>,
}

/// `GET /app/history` answer: a page of receipts, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryResponse {
    /// The receipts of this page.
    pub receipts: Vec<Receipt>,
    /// The cursor of the next page; `null` on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// One balance: `{currency, amount}` with the currency's minor digits (`"12.50"`, `"15000"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceEntry {
    /// ISO 4217 code.
    pub currency: String,
    /// Exact decimal string.
    pub amount: String,
}

/// `GET /app/balance` answer: every settled currency plus any other held, sorted by code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceResponse {
    /// The device's account.
    pub account_id: String,
    /// The balances.
    pub balances: Vec<BalanceEntry>,
}
