//! Sessions and prompts: the wallet QR session (`POST /app/sessions`, doc §3.4), the prompt
//! object (§3.1) and its list (§3.5), and the decisions on it: confirm with a signed consent
//! (§3.6, §2.5) and decline (§3.7).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    first_unknown, Flow, KnownFields, PaymentRequestEventType, ProofEnvelope, Recipient,
    SessionStatus,
};

/// `POST /app/sessions` body: none, or an empty object (any object is accepted).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateSessionRequest {}

/// The wallet-session QR payload `{ocid, order, expiresAt}` (protocol seed `003`), as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletSessionQrPayload {
    /// The payment gateway's OCID.
    pub ocid: u64,
    /// `<endpoint>/orders/create/<sessionId>`: where the merchant posts its order.
    pub order: String,
    /// Unix seconds when the session expires.
    pub expires_at: i64,
}

/// `POST /app/sessions` answer: a new wallet QR session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionResponse {
    /// The session id (32 lowercase hex); its prompt will carry this id.
    pub session_id: String,
    /// The QR payload as an object (informational).
    pub qr_payload: WalletSessionQrPayload,
    /// The exact text to encode in the QR code (render this, do not re-serialise).
    pub qr_text: String,
    /// Unix seconds when the session expires.
    pub expires_at: i64,
}

/// The prompt object (doc §3.1): an order waiting for the user's decision. It is the
/// `payment_request` event's data, an item of `GET /app/prompts`, and the answer of scan,
/// inventory-order and checkout calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prompt {
    /// Always `"payment_request"`.
    #[serde(rename = "type")]
    pub event_type: PaymentRequestEventType,
    /// The prompt id: confirm or decline with it.
    pub session_id: String,
    /// How the payment started.
    pub flow: Flow,
    /// The merchant (= `order.ocid`, verified by the gateway).
    pub merchant_ocid: u64,
    /// From the merchant's verified metadata, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    /// From the merchant's verified metadata, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_icon: Option<String>,
    /// The merchant-signed order exactly as received (all fields, including unknown ones);
    /// parse it with [`crate::types::Order`] after verifying `signature` over it.
    pub order: Value,
    /// The merchant's signature over the canonical `order`.
    pub signature: String,
    /// SHA-256 hex of the canonical `order` (what the consent binds).
    pub order_hash: String,
    /// After this (unix seconds) the prompt can no longer be confirmed.
    pub expires_at: i64,
    /// Who is paid, present exactly for flow `transfer` (then `merchantOcid` is the
    /// recipient's user OCID and the order is signed by the payer's own gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Recipient>,
}

/// `GET /app/prompts` answer: unexpired prompts of the account, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptsResponse {
    /// The prompts.
    pub prompts: Vec<Prompt>,
}

/// The consent a device signs to pay (doc §2.5): exactly these seven fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    /// The session id in the confirm URL.
    pub session_id: String,
    /// SHA-256 hex of the canonical order.
    pub order_hash: String,
    /// The order's `amount`, verbatim.
    pub amount: String,
    /// The order's `currency`.
    pub currency: String,
    /// The order's `ocid` (the merchant).
    pub merchant_ocid: u64,
    /// The device that signs the consent and the request.
    pub device_id: String,
    /// Unix seconds, within ±300 s of the gateway clock.
    pub timestamp: i64,
}

impl KnownFields for Consent {
    const FIELDS: &'static [&'static str] = &[
        "sessionId",
        "orderHash",
        "amount",
        "currency",
        "merchantOcid",
        "deviceId",
        "timestamp",
    ];
}

/// `POST /app/sessions/{id}/confirm` body. The gateway verifies `signature` over the consent
/// exactly as received, so it reads the raw `consent` object for that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmRequest {
    /// One key per user decision, reused on every retry of it (1–128 `[A-Za-z0-9_-]`).
    pub idempotency_key: String,
    /// What the user agreed to pay.
    pub consent: Consent,
    /// The device signature over the consent's canonical JSON.
    pub signature: String,
}

impl KnownFields for ConfirmRequest {
    const FIELDS: &'static [&'static str] = &["idempotencyKey", "consent", "signature"];

    fn unknown_field(body: &Value) -> Option<String> {
        first_unknown(body, Self::FIELDS, "").or_else(|| {
            body.get("consent")
                .and_then(|c| first_unknown(c, Consent::FIELDS, "consent."))
        })
    }
}

/// `POST /app/sessions/{id}/confirm` answer (200, the same on every retry): paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmResponse {
    /// `paid`.
    pub status: SessionStatus,
    /// The session id.
    pub session_id: String,
    /// The settling gateway's transaction id.
    pub txid: String,
    /// Unix seconds of the payment.
    pub paid_at: i64,
    /// The signed transfer proof also sent to the merchant's webhook.
    pub proof: ProofEnvelope,
    /// For checkout: the Merchant Gateway's success URL (an unsigned hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
}

/// `POST /app/sessions/{id}/decline` body: `{}`, or a reason (at most 500 characters).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeclineRequest {
    /// Why the user refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl KnownFields for DeclineRequest {
    const FIELDS: &'static [&'static str] = &["reason"];
}

/// `POST /app/sessions/{id}/decline` answer (200, idempotent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeclineResponse {
    /// `declined`.
    pub status: SessionStatus,
    /// The session id.
    pub session_id: String,
    /// For checkout: the Merchant Gateway's cancel URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
}
