//! The records and enums the wallet core exports: prompts, receipts, sessions, scan results,
//! balances, events. Money is always an exact decimal string.

/// How a payment started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PaymentFlow {
    /// A merchant scanned the wallet's QR and posted an order (flow 1).
    WalletQr,
    /// The wallet scanned a merchant's order or inventory QR (flow 2).
    MerchantQr,
    /// Hosted checkout: the wallet opened a checkout link (flow 3).
    Checkout,
}

impl PaymentFlow {
    /// The wire name (`wallet_qr`, `merchant_qr`, `checkout`).
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentFlow::WalletQr => "wallet_qr",
            PaymentFlow::MerchantQr => "merchant_qr",
            PaymentFlow::Checkout => "checkout",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<PaymentFlow> {
        match text {
            "wallet_qr" => Some(PaymentFlow::WalletQr),
            "merchant_qr" => Some(PaymentFlow::MerchantQr),
            "checkout" => Some(PaymentFlow::Checkout),
            _ => None,
        }
    }
}

impl From<opencharge_protocol::app::Flow> for PaymentFlow {
    fn from(flow: opencharge_protocol::app::Flow) -> PaymentFlow {
        use opencharge_protocol::app::Flow;
        match flow {
            Flow::WalletQr => PaymentFlow::WalletQr,
            Flow::MerchantQr => PaymentFlow::MerchantQr,
            Flow::Checkout => PaymentFlow::Checkout,
        }
    }
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PaymentStatus {
    /// Waiting: a wallet QR session without an order yet, or a prompt awaiting the user.
    Pending,
    /// Paid; the receipt carries the proof.
    Paid,
    /// Declined by the user.
    Declined,
    /// Expired before a decision.
    Expired,
}

impl PaymentStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Declined => "declined",
            PaymentStatus::Expired => "expired",
        }
    }

    /// Parses a stored or wire name (`order_received` counts as pending).
    pub fn parse(text: &str) -> Option<PaymentStatus> {
        match text {
            "pending" | "order_received" => Some(PaymentStatus::Pending),
            "paid" => Some(PaymentStatus::Paid),
            "declined" => Some(PaymentStatus::Declined),
            "expired" => Some(PaymentStatus::Expired),
            _ => None,
        }
    }
}

impl From<opencharge_protocol::app::SessionStatus> for PaymentStatus {
    /// The app API's status (`order_received` counts as pending).
    fn from(status: opencharge_protocol::app::SessionStatus) -> PaymentStatus {
        use opencharge_protocol::app::SessionStatus;
        match status {
            SessionStatus::Pending | SessionStatus::OrderReceived => PaymentStatus::Pending,
            SessionStatus::Paid => PaymentStatus::Paid,
            SessionStatus::Declined => PaymentStatus::Declined,
            SessionStatus::Expired => PaymentStatus::Expired,
        }
    }
}

/// One line of an order, as the merchant signed it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PromptItem {
    /// The merchant's item id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Quantity (a whole number).
    pub quantity: u64,
    /// Unit price, exact decimal string.
    pub price: String,
}

/// A payment request waiting for the user's decision. Everything in it was verified by the
/// core: the merchant's signature over the order (with the key from the merchant's verified
/// metadata), that the order names this merchant, its expiry, the currency's minor units and
/// that the items add up to the amount.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PaymentPrompt {
    /// The prompt id (the gateway session id): pass it to `confirm` or `decline`.
    pub prompt_id: String,
    /// How the payment started.
    pub flow: PaymentFlow,
    /// The merchant's OCID.
    pub merchant_ocid: u64,
    /// The merchant's name from its verified metadata.
    pub merchant_name: Option<String>,
    /// The merchant's icon URL from its verified metadata.
    pub merchant_icon: Option<String>,
    /// The merchant's order id.
    pub order_id: String,
    /// The merchant's reference, if any.
    pub reference: Option<String>,
    /// A note from the merchant, if any.
    pub memo: Option<String>,
    /// The order lines.
    pub items: Vec<PromptItem>,
    /// The amount to pay, exactly as the merchant signed it (e.g. `"25.00"`).
    pub amount: String,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Unix seconds after which the prompt can no longer be confirmed.
    pub expires_at: i64,
    /// SHA-256 (hex) of the canonical order: what the user's consent binds.
    pub order_hash: String,
    /// Unix seconds when the core received it.
    pub received_at: i64,
}

/// A wallet QR session (flow 1): render `qr_payload` until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PaymentSession {
    /// The session id; the prompt that arrives for it has this id.
    pub session_id: String,
    /// The exact text to encode in the QR code.
    pub qr_payload: String,
    /// Unix seconds when the session expires.
    pub expires_at: i64,
}

/// The outcome of a payment, with the gateway's signed proof when paid.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Receipt {
    /// The session (prompt) id.
    pub session_id: String,
    /// How the payment started.
    pub flow: PaymentFlow,
    /// Where it stands.
    pub status: PaymentStatus,
    /// The merchant's OCID (absent for a wallet QR session without an order).
    pub merchant_ocid: Option<u64>,
    /// The merchant's name, when known.
    pub merchant_name: Option<String>,
    /// The merchant's order id.
    pub order_id: Option<String>,
    /// The amount, exact decimal string as signed by the merchant.
    pub amount: Option<String>,
    /// ISO 4217 currency code.
    pub currency: Option<String>,
    /// Unix seconds when the session was created.
    pub created_at: i64,
    /// Unix seconds when it was paid.
    pub paid_at: Option<i64>,
    /// The transfer id of the payment.
    pub txid: Option<String>,
    /// The signed proof `{proof, signature}` as compact JSON.
    pub proof_json: Option<String>,
    /// The OCID that issued (signed) the proof.
    pub proof_issuer: Option<u64>,
    /// Whether the core verified the proof's signature with the issuer's metadata key.
    pub proof_verified: bool,
    /// The user's reason, when declined with one.
    pub decline_reason: Option<String>,
    /// For hosted checkout: where to send the user next (the merchant's success or cancel
    /// URL). An unsigned hint: show its host before opening it.
    pub redirect_url: Option<String>,
}

/// A page of receipts, newest first.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HistoryPage {
    /// The receipts of this page.
    pub receipts: Vec<Receipt>,
    /// Pass as `before` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Which receipts `history` returns.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HistoryQuery {
    /// At most this many (1–200).
    #[uniffi(default = 50)]
    pub limit: u32,
    /// The `next_cursor` of the previous page.
    #[uniffi(default = None)]
    pub before: Option<String>,
}

/// A balance in one currency.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Balance {
    /// ISO 4217 currency code.
    pub currency: String,
    /// Exact decimal string with the currency's minor digits.
    pub amount: String,
}

/// The account of a registered device.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeviceRegistration {
    /// The device id (`dev_` + 32 hex), derived from the device key.
    pub device_id: String,
    /// The account the device belongs to.
    pub account_id: String,
}

/// An item of a merchant's inventory (unsigned catalogue; the order built from it is signed).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InventoryItem {
    /// The merchant's item id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Unit price as the merchant lists it, when given.
    pub price: Option<String>,
}

/// A merchant's inventory, from a scanned inventory QR: let the user pick, then call
/// `order_from_inventory`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Inventory {
    /// The merchant's OCID.
    pub merchant_ocid: u64,
    /// The merchant's name, when known.
    pub merchant_name: Option<String>,
    /// The merchant's icon URL, when known.
    pub merchant_icon: Option<String>,
    /// Where the inventory came from (pass back to `order_from_inventory`).
    pub inventory_url: String,
    /// The catalogue currency, when given.
    pub currency: Option<String>,
    /// The items.
    pub items: Vec<InventoryItem>,
}

/// One picked inventory line.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InventorySelection {
    /// The item id.
    pub id: String,
    /// How many (1–1000000).
    pub quantity: u64,
}

/// What a scanned text turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ScanResult {
    /// A payable order (merchant order QR or checkout link): show it, then confirm or decline.
    Prompt {
        /// The verified prompt.
        prompt: PaymentPrompt,
    },
    /// A merchant's inventory: let the user pick items.
    Inventory {
        /// The inventory.
        inventory: Inventory,
    },
    /// An Opencharge payload this wallet cannot pay.
    Unsupported {
        /// Which kind (`wallet_session`, `ocid_uri`, `end_user_ocid`, `checkout`).
        kind: String,
        /// Why, in words for the user.
        reason: String,
    },
}

/// A change of a payment's status, pushed by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PaymentStatusUpdate {
    /// The session (prompt) id.
    pub session_id: String,
    /// The new status.
    pub status: PaymentStatus,
    /// The transfer id, when paid.
    pub txid: Option<String>,
    /// Unix seconds when paid.
    pub paid_at: Option<i64>,
    /// The decline reason, when given.
    pub reason: Option<String>,
    /// For hosted checkout: where to send the user next.
    pub redirect_url: Option<String>,
}

/// The state of the live event connection.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ConnectionState {
    /// Opening the stream.
    Connecting,
    /// Live: prompts arrive as they are created.
    Connected,
    /// The stream failed; the core retries after `retry_in_ms`.
    Disconnected {
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
        /// Why the stream ended.
        reason: String,
    },
    /// Stopped by the app (`EventStream.stop`) or because the wallet was closed.
    Stopped,
}
