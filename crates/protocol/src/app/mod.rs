//! The wallet app API (`/app/...` of the reference Payment Gateway, `docs/app-api.md`) as
//! typed bodies: one `Serialize`/`Deserialize` type per request body, response body, event
//! payload and error detail, with exactly the field names of the document. The gateway
//! builds its answers from these types and the wallet core parses them back, so a renamed
//! field breaks the build (or the doc round-trip test), not a payment at run time.
//!
//! Conventions (as in [`crate::types`]):
//! * Money is an exact decimal `String`, never a number.
//! * Unknown fields are tolerated when parsing (clients must ignore unknown response fields).
//!   The gateway still refuses unknown REQUEST fields (doc §1); it checks them with
//!   [`KnownFields`] before parsing.
//! * A missing required field is a serde error naming it ("missing field `sessionId`").
//! * Objects signed by a third party (the merchant's `order`, a transfer `proof`) stay raw
//!   [`serde_json::Value`]s: their signatures cover the JSON exactly as received, which a typed
//!   round trip could change. [`ProofEnvelope::parsed`] gives the typed [`crate::types::Proof`].

mod devices;
mod errors;
mod events;
mod payments;
mod push;
mod scan;
mod sessions;
mod transfers;

pub use devices::{DeviceResponse, RegisterDeviceRequest, RotateDeviceRequest};
pub use errors::{
    ConsentMismatchDetails, ConsentTimestampDetails, KindDetails, MerchantStatusDetails,
    RedirectDetails, StateDetails,
};
pub use events::{
    PaymentRequestEvent, PaymentRequestEventType, PaymentStatusEvent, PaymentStatusEventType,
};
pub use payments::{BalanceEntry, BalanceResponse, HistoryResponse, ProofEnvelope, Receipt};
pub use push::{
    PushEnvironment, PushKind, PushProvider, PushTokenCleared, PushTokenRequest, PushTokenResponse,
    PushWakeUp, MAX_PUSH_TOKEN_LEN, PUSH_PAYLOAD_KEY,
};
pub use scan::{
    InventoryItem, InventoryLine, InventoryOrderRequest, InventoryView, MerchantOrderCreateRequest,
    ScanRequest, ScanResponse,
};
pub use sessions::{
    ConfirmRequest, ConfirmResponse, Consent, CreateSessionRequest, CreateSessionResponse,
    DeclineRequest, DeclineResponse, Prompt, PromptsResponse, WalletSessionQrPayload,
};
pub use transfers::{
    PersonView, ReceiveResponse, Recipient, TransferRequest, TransferResponse, TransferTo,
};

pub use crate::error_code::{ApiError, ErrorEnvelope};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a payment started (`flow` of prompts, receipts and events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// `wallet_qr`: a merchant scanned the wallet's QR and posted an order (flow 1).
    WalletQr,
    /// `merchant_qr`: the wallet scanned a merchant order or inventory QR (flow 2).
    MerchantQr,
    /// `checkout`: the wallet opened a hosted checkout (flow 3).
    Checkout,
    /// `transfer`: the user pays a person (`POST /app/transfers`).
    Transfer,
    /// `received`: a person paid this account (a receipt only, never a prompt).
    Received,
}

impl Flow {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::WalletQr => "wallet_qr",
            Flow::MerchantQr => "merchant_qr",
            Flow::Checkout => "checkout",
            Flow::Transfer => "transfer",
            Flow::Received => "received",
        }
    }

    /// The flow named `name` (the wire name, also what stores keep); `None` for unknown text.
    pub fn parse(name: &str) -> Option<Flow> {
        match name {
            "wallet_qr" => Some(Flow::WalletQr),
            "merchant_qr" => Some(Flow::MerchantQr),
            "checkout" => Some(Flow::Checkout),
            "transfer" => Some(Flow::Transfer),
            "received" => Some(Flow::Received),
            _ => None,
        }
    }
}

/// Where a payment session stands (`status` of receipts, decision answers and events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// `pending`: a wallet QR session without an order yet.
    Pending,
    /// `order_received`: an order waits for the user's decision.
    OrderReceived,
    /// `paid`.
    Paid,
    /// `declined`.
    Declined,
    /// `expired`: not decided before `expiresAt`.
    Expired,
}

impl SessionStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Pending => "pending",
            SessionStatus::OrderReceived => "order_received",
            SessionStatus::Paid => "paid",
            SessionStatus::Declined => "declined",
            SessionStatus::Expired => "expired",
        }
    }

    /// The status named `name` (the wire name, also what stores keep); `None` for unknown text.
    pub fn parse(name: &str) -> Option<SessionStatus> {
        match name {
            "pending" => Some(SessionStatus::Pending),
            "order_received" => Some(SessionStatus::OrderReceived),
            "paid" => Some(SessionStatus::Paid),
            "declined" => Some(SessionStatus::Declined),
            "expired" => Some(SessionStatus::Expired),
            _ => None,
        }
    }
}

/// A request body whose receiver refuses unknown fields (`docs/app-api.md` §1: 400
/// `INVALID_REQUEST`). The types themselves tolerate unknown fields; the gateway calls
/// [`KnownFields::unknown_field`] on the received JSON before parsing it.
pub trait KnownFields {
    /// The JSON keys the body may carry at its top level.
    const FIELDS: &'static [&'static str];

    /// The path of the first key of `body` that is not allowed (`"tip"`, `"consent.tip"`),
    /// or `None`. Non-objects give `None`: parsing reports them.
    fn unknown_field(body: &Value) -> Option<String> {
        first_unknown(body, Self::FIELDS, "")
    }
}

/// The first key of the object `value` that is not in `allowed`, prefixed with `prefix`.
pub(crate) fn first_unknown(value: &Value, allowed: &[&str], prefix: &str) -> Option<String> {
    value
        .as_object()?
        .keys()
        .find(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("{prefix}{k}"))
}

/// Deserialises a field that may be present as `null`: absent → `None`, `null` →
/// `Some(None)`, a value → `Some(Some(v))`. Used with `#[serde(default)]`.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
