//! Event payloads of `GET /app/events` (doc §4.3): the `payment_request` tag shared with the
//! prompt object, the protocol's minimal [`PaymentRequestEvent`] (§7 row 20 of the protocol
//! notes) and the `payment_status` event.

use serde::{Deserialize, Serialize};

use super::SessionStatus;
use crate::types::Order;

/// The fixed `type` tag of [`PaymentRequestEvent`] and [`super::Prompt`]; only
/// `"payment_request"` is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PaymentRequestEventType {
    /// `"payment_request"`.
    #[default]
    #[serde(rename = "payment_request")]
    PaymentRequest,
}

/// Push / websocket event to the wallet app when a merchant submits an order to the user's
/// QR session (§7 row 20): `{type:"payment_request", sessionId, merchantOcid, merchantName?, order}`.
/// The reference gateway sends the richer [`super::Prompt`], which parses as this type too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequestEvent {
    /// Always `"payment_request"`.
    #[serde(rename = "type")]
    pub event_type: PaymentRequestEventType,
    /// The QR session the order was posted to.
    pub session_id: String,
    /// The merchant (the order's signer, equal to `X-OC-ID`).
    pub merchant_ocid: u64,
    /// Merchant name from its verified metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    /// The verified order.
    pub order: Order,
}

impl PaymentRequestEvent {
    /// Build the event; `type` is set to `"payment_request"`.
    pub fn new(
        session_id: impl Into<String>,
        merchant_ocid: u64,
        merchant_name: Option<String>,
        order: Order,
    ) -> PaymentRequestEvent {
        PaymentRequestEvent {
            event_type: PaymentRequestEventType::PaymentRequest,
            session_id: session_id.into(),
            merchant_ocid,
            merchant_name,
            order,
        }
    }
}

/// The fixed `type` tag of [`PaymentStatusEvent`]; only `"payment_status"` is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PaymentStatusEventType {
    /// `"payment_status"`.
    #[default]
    #[serde(rename = "payment_status")]
    PaymentStatus,
}

/// The `payment_status` event: a session was paid (with `txid`, `paidAt`) or declined (with
/// `reason` when given and, for checkout, `redirectUrl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentStatusEvent {
    /// Always `"payment_status"`.
    #[serde(rename = "type")]
    pub event_type: PaymentStatusEventType,
    /// The session (prompt) id.
    pub session_id: String,
    /// `paid` or `declined`.
    pub status: SessionStatus,
    /// The transaction id, when paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txid: Option<String>,
    /// Unix seconds of the payment, when paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<i64>,
    /// The user's decline reason, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For checkout declines: the Merchant Gateway's cancel URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
}

impl PaymentStatusEvent {
    /// An event with `status` and no optional field set.
    pub fn new(session_id: impl Into<String>, status: SessionStatus) -> PaymentStatusEvent {
        PaymentStatusEvent {
            event_type: PaymentStatusEventType::PaymentStatus,
            session_id: session_id.into(),
            status,
            txid: None,
            paid_at: None,
            reason: None,
            redirect_url: None,
        }
    }
}
