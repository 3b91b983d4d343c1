//! The records and enums the wallet core exports: money, prompts, receipts, sessions, scan
//! results, events, push registration, and the conversions at their edge (unix seconds to `SystemTime`, protocol
//! OCIDs to `i64`, amount strings to `Money`). Money is never a float.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opencharge_protocol::money::{minor_units_of, Amount, Currency};

use crate::error::{Result, WalletError};

/// An exact amount of money in one currency (Kotlin `Money`, Swift `Money`). Format it with
/// the platform layer's helpers (`Money.format(locale)` in Kotlin, `formatted(locale:)` in
/// Swift); never through a float.
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Record)]
pub struct Money {
    /// The exact decimal text as signed or sent by the gateway, e.g. `"25.00"` (a balance may
    /// be `"0.00"` or negative, `"-1.50"`).
    pub amount: String,
    /// The same amount in the currency's minor units, e.g. `2500` for `"25.00"` USD.
    pub minor_units: i64,
    /// The ISO 4217 currency code, e.g. `"USD"`.
    pub currency: String,
    /// How many minor digits the currency has (ISO 4217): 2 for USD, 0 for JPY, 3 for BHD.
    pub exponent: i32,
}

impl Money {
    /// Money from a decimal `amount` and an ISO 4217 `currency`, by the protocol's currency
    /// rules: a known payable currency, a plain decimal (an optional leading `-`, no exponent,
    /// no spaces) with at most the currency's minor digits, and a value whose minor units fit
    /// in 64 bits. Anything else is `InvalidInput`.
    pub fn new(amount: &str, currency: &str) -> Result<Money> {
        let parsed = Currency::parse(currency)?;
        let (negative, digits) = match amount.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, amount),
        };
        let minor = if is_zero(digits) {
            let fraction = digits.split_once('.').map_or(0, |(_, f)| f.len());
            if fraction > parsed.minor_units() as usize {
                return Err(WalletError::invalid(format!(
                    "amount {amount:?} has more fraction digits than {currency} allows"
                )));
            }
            0
        } else {
            minor_units_of(&Amount::parse(digits)?, &parsed)?
        };
        let minor = i64::try_from(if negative { -minor } else { minor }).map_err(|_| {
            WalletError::invalid(format!("amount {amount:?} {currency} is too large"))
        })?;
        Ok(Money {
            amount: amount.to_string(),
            minor_units: minor,
            currency: parsed.code().to_string(),
            exponent: parsed.minor_units() as i32,
        })
    }
}

/// Whether `text` is a zero written as `0` or `0.` followed by zeros.
fn is_zero(text: &str) -> bool {
    match text.split_once('.') {
        None => text == "0",
        Some((int, fraction)) => {
            int == "0" && !fraction.is_empty() && fraction.bytes().all(|b| b == b'0')
        }
    }
}

/// Unix seconds as a `SystemTime` (before 1970 too).
pub(crate) fn time_from_unix(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// A `SystemTime` as whole unix seconds (rounded down), saturating far outside `i64`.
pub(crate) fn unix_from_time(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() > 0 {
                -secs.saturating_add(1)
            } else {
                -secs
            }
        }
    }
}

/// A protocol OCID as the `i64` apps see; one above `i64::MAX` is refused as invalid input.
pub(crate) fn ocid_out(ocid: u64) -> Result<i64> {
    i64::try_from(ocid).map_err(|_| WalletError::invalid(format!("OCID {ocid} is out of range")))
}

/// An OCID from the app as the protocol's `u64`; a negative one is invalid input.
pub(crate) fn ocid_in(ocid: i64) -> Result<u64> {
    u64::try_from(ocid).map_err(|_| WalletError::invalid(format!("OCID {ocid} is negative")))
}

/// How a payment started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PaymentFlow {
    /// A merchant scanned the wallet's QR and posted an order (flow 1).
    WalletQr,
    /// The wallet scanned a merchant's order or inventory QR (flow 2).
    MerchantQr,
    /// Hosted checkout: the wallet opened a checkout link (flow 3).
    Checkout,
    /// A payment to a person (`sendToPerson`): the order was written and signed by this
    /// wallet's own gateway for the recipient's OCID.
    Transfer,
    /// Money received from another person: a receipt only, never a prompt.
    Received,
}

impl PaymentFlow {
    /// The wire name (`wallet_qr`, `merchant_qr`, `checkout`).
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentFlow::WalletQr => "wallet_qr",
            PaymentFlow::MerchantQr => "merchant_qr",
            PaymentFlow::Checkout => "checkout",
            PaymentFlow::Transfer => "transfer",
            PaymentFlow::Received => "received",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<PaymentFlow> {
        match text {
            "wallet_qr" => Some(PaymentFlow::WalletQr),
            "merchant_qr" => Some(PaymentFlow::MerchantQr),
            "checkout" => Some(PaymentFlow::Checkout),
            "transfer" => Some(PaymentFlow::Transfer),
            "received" => Some(PaymentFlow::Received),
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
            Flow::Transfer => PaymentFlow::Transfer,
            Flow::Received => PaymentFlow::Received,
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
    /// Quantity (a whole number, at least 1).
    pub quantity: i64,
    /// Price of one unit, in the order's currency.
    pub unit_price: Money,
}

/// A payment request waiting for the user's decision. Everything in it was verified by the
/// core: the merchant's signature over the order (with the key from the merchant's verified
/// metadata), that the order names this merchant, its expiry, the currency's minor units and
/// that the items add up to the total.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PaymentPrompt {
    /// The prompt id (the gateway session id): pass it to `confirm` or `decline`.
    pub prompt_id: String,
    /// How the payment started.
    pub flow: PaymentFlow,
    /// The merchant's OCID.
    pub merchant_ocid: i64,
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
    /// The order lines (may be empty: an order need not list items).
    pub items: Vec<PromptItem>,
    /// The amount to pay, exactly as the merchant signed it.
    pub total: Money,
    /// When the prompt can no longer be confirmed.
    pub expires_at: SystemTime,
    /// SHA-256 (hex) of the canonical order: what the user's consent binds.
    pub order_hash: String,
    /// When the core received it (on the gateway's clock).
    pub received_at: SystemTime,
    /// For flow `Transfer` only: the person being paid (`merchantOcid` and `merchantName` are
    /// theirs too), with their gateway; `amount` and `memo` are the prompt's. Defaults to
    /// null/nil, so code that builds a prompt (fakes, previews) keeps compiling.
    #[uniffi(default = None)]
    pub recipient: Option<Payee>,
}

/// A person to pay (a scanned receive code or `opencharge:` link, `ScanResult.Person`), or
/// the recipient of a `Transfer` prompt. Pass it to `sendToPerson`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Payee {
    /// The person's OCID (an end-user OCID their wallet's gateway holds for them).
    pub ocid: i64,
    /// The OCID of the gateway that holds the person's account.
    pub gateway_ocid: i64,
    /// That gateway's name from its verified metadata, when known.
    pub gateway_name: Option<String>,
    /// The person's name, when their gateway is this wallet's own (it knows its users).
    pub name: Option<String>,
    /// The amount the code asks for, exact; absent when the payer chooses it.
    pub amount: Option<Money>,
    /// A note the code carries (or the prompt's memo), if any.
    pub memo: Option<String>,
}

/// This wallet's own receive address (`receiveAddress`): show `qrPayload` as a QR code (e.g.
/// with `renderQrPng`) so another wallet can pay this account.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReceiveAddress {
    /// The account's end-user OCID.
    pub ocid: i64,
    /// The OCID of this wallet's gateway.
    pub gateway_ocid: i64,
    /// The account holder's name as the gateway knows it, if any.
    pub name: Option<String>,
    /// The exact text to encode in the QR code:
    /// `{"type":"ocid_transfer","ocid":…,"gateway":…}`.
    pub qr_payload: String,
}

/// A wallet QR session (flow 1): show `qrPayload` as a QR code until `expiresAt`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PaymentSession {
    /// The session id; the prompt that arrives for it has this id.
    pub session_id: String,
    /// The exact text to encode in the QR code (e.g. with `renderQrPng`).
    pub qr_payload: String,
    /// When the session expires (on the gateway's clock).
    pub expires_at: SystemTime,
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
    pub merchant_ocid: Option<i64>,
    /// The merchant's name, when known.
    pub merchant_name: Option<String>,
    /// The merchant's order id.
    pub order_id: Option<String>,
    /// The amount, exactly as signed by the merchant (absent before an order arrived).
    pub amount: Option<Money>,
    /// When the session was created.
    pub created_at: SystemTime,
    /// When it was paid.
    pub paid_at: Option<SystemTime>,
    /// The transfer id of the payment.
    pub txid: Option<String>,
    /// The signed proof `{proof, signature}` as compact JSON.
    pub proof_json: Option<String>,
    /// The OCID that issued (signed) the proof.
    pub proof_issuer: Option<i64>,
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
    /// Pass as `HistoryQuery.before` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Which receipts `history` returns.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HistoryQuery {
    /// At most this many (1–200).
    #[uniffi(default = 50)]
    pub limit: i32,
    /// The `nextCursor` of the previous page; absent for the newest page.
    #[uniffi(default = None)]
    pub before: Option<String>,
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
    /// Unit price as the merchant lists it: present when the item has a valid price and the
    /// inventory a currency.
    pub price: Option<Money>,
}

/// A merchant's inventory, from a scanned inventory QR: let the user pick, then call
/// `orderFromInventory`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Inventory {
    /// The merchant's OCID.
    pub merchant_ocid: i64,
    /// The merchant's name, when known.
    pub merchant_name: Option<String>,
    /// The merchant's icon URL, when known.
    pub merchant_icon: Option<String>,
    /// Where the inventory came from (passed back by `orderFromInventory`).
    pub inventory_url: String,
    /// The catalogue's ISO 4217 currency, when given.
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
    pub quantity: i32,
}

/// What a scanned text turned out to be.
// Boxing the prompt would change nothing for the apps (uniffi serialises the enum across the
// FFI) and is not supported in an exported enum; the value lives only for one call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ScanResult {
    /// A payable order (merchant order QR or checkout link): show it, then `confirm` or
    /// `decline`.
    Prompt {
        /// The verified prompt.
        prompt: PaymentPrompt,
    },
    /// A merchant's inventory: let the user pick items, then call `orderFromInventory`.
    Inventory {
        /// The inventory.
        inventory: Inventory,
    },
    /// A person's receive code or `opencharge:` link: ask for the amount (unless `payee`
    /// carries one), then call `sendToPerson`.
    Person {
        /// Who is paid, at which gateway.
        payee: Payee,
    },
    /// An Opencharge payload this wallet cannot pay.
    Unsupported {
        /// Which kind (`wallet_session`, `ocid_uri`, `checkout`, or what the gateway names).
        kind: String,
        /// Why, in words for the user.
        reason: String,
    },
}

/// A change of a payment's status, pushed by the gateway or found by the core when it
/// resolved a pending outcome.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PaymentStatusUpdate {
    /// The session (prompt) id.
    pub session_id: String,
    /// The new status.
    pub status: PaymentStatus,
    /// The transfer id, when paid.
    pub txid: Option<String>,
    /// When it was paid.
    pub paid_at: Option<SystemTime>,
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
    /// The stream failed; the core tries again after `retryIn`.
    Disconnected {
        /// How long until the next attempt.
        retry_in: Duration,
        /// Why the stream ended.
        reason: String,
    },
    /// Stopped by the app (`EventStream.stop`) or because the wallet was closed.
    Stopped,
}

/// The push service of a token (`setPushToken`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PushProvider {
    /// Firebase Cloud Messaging (Android).
    Fcm,
    /// Apple Push Notification service (iOS).
    Apns,
}

impl From<PushProvider> for opencharge_protocol::app::PushProvider {
    fn from(provider: PushProvider) -> Self {
        match provider {
            PushProvider::Fcm => Self::Fcm,
            PushProvider::Apns => Self::Apns,
        }
    }
}

impl From<opencharge_protocol::app::PushProvider> for PushProvider {
    fn from(provider: opencharge_protocol::app::PushProvider) -> Self {
        use opencharge_protocol::app::PushProvider as Wire;
        match provider {
            Wire::Fcm => PushProvider::Fcm,
            Wire::Apns => PushProvider::Apns,
        }
    }
}

/// Which APNs host a token was issued for. FCM tokens are always `Production`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PushEnvironment {
    /// App Store and TestFlight builds, and every FCM token.
    Production,
    /// iOS development builds (development provisioning profile, `aps-environment`
    /// `development`).
    Sandbox,
}

impl From<PushEnvironment> for opencharge_protocol::app::PushEnvironment {
    fn from(environment: PushEnvironment) -> Self {
        match environment {
            PushEnvironment::Production => Self::Production,
            PushEnvironment::Sandbox => Self::Sandbox,
        }
    }
}

impl From<opencharge_protocol::app::PushEnvironment> for PushEnvironment {
    fn from(environment: opencharge_protocol::app::PushEnvironment) -> Self {
        use opencharge_protocol::app::PushEnvironment as Wire;
        match environment {
            Wire::Production => PushEnvironment::Production,
            Wire::Sandbox => PushEnvironment::Sandbox,
        }
    }
}

/// The push token the gateway holds for this device (`setPushToken`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PushRegistration {
    /// FCM or APNs.
    pub provider: PushProvider,
    /// The token as registered.
    pub token: String,
    /// The APNs host it is for (`Production` for FCM).
    pub environment: PushEnvironment,
    /// When the gateway stored it (gateway clock).
    pub updated_at: SystemTime,
}

// ----- push wake-ups (`Wallet.handlePush`, src/push.rs) ---------------------------------------

/// What to show for a push wake-up: the lines of a local notification. The core writes them
/// from the verified prompt or receipt (never from the push payload, which carries no amount
/// or merchant); the app may localise or replace them.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NotificationText {
    /// The merchant's name from its verified metadata (or `Merchant <ocid>` when it has none).
    pub title: String,
    /// The amount, e.g. `8.75 USD`; for a status, the status first: `Paid 8.75 USD`.
    pub body: String,
}

/// What a push wake-up (`Wallet.handlePush`) brought.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PushEvent {
    /// A new payment prompt, fetched from the gateway, verified and stored; the app shows a
    /// notification and later `confirm`s or `decline`s `prompt.promptId`.
    PaymentRequest {
        /// The verified prompt (the same record `pendingPrompts` returns).
        prompt: PaymentPrompt,
        /// The notification's title and body.
        notification: NotificationText,
    },
    /// A payment reached its final status (paid or declined, perhaps on another device).
    PaymentStatus {
        /// The receipt, fetched from the gateway, proof verified, stored.
        receipt: Receipt,
        /// The notification's title and body.
        notification: NotificationText,
    },
    /// Nothing to show: the prompt was already announced (by an earlier push or the event
    /// stream), is no longer pending (paid or declined elsewhere, expired), or is not this
    /// account's; or the payment is still pending.
    NothingNew,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_follows_the_currency_rules() {
        let usd = Money::new("25.00", "USD").unwrap();
        assert_eq!(
            usd,
            Money {
                amount: "25.00".into(),
                minor_units: 2500,
                currency: "USD".into(),
                exponent: 2
            }
        );
        assert_eq!(Money::new("25.5", "USD").unwrap().minor_units, 2550);
        assert_eq!(Money::new("15000", "UGX").unwrap().exponent, 0);
        assert_eq!(Money::new("1.234", "BHD").unwrap().minor_units, 1234);
        assert_eq!(Money::new("0.00", "USD").unwrap().minor_units, 0);
        assert_eq!(Money::new("0", "JPY").unwrap().minor_units, 0);
        assert_eq!(Money::new("-1.50", "USD").unwrap().minor_units, -150);
        for (amount, currency) in [
            ("1.001", "USD"),
            ("0.000", "USD"),
            ("1.5", "JPY"),
            ("1e3", "USD"),
            (" 1", "USD"),
            ("--1", "USD"),
            ("", "USD"),
            ("1.00", "usd"),
            ("1.00", "XAU"),
            ("99999999999999999999", "USD"),
        ] {
            assert!(
                matches!(
                    Money::new(amount, currency),
                    Err(WalletError::InvalidInput { .. })
                ),
                "{amount} {currency}"
            );
        }
    }

    #[test]
    fn unix_seconds_round_trip_through_system_time() {
        for secs in [0, 1, 1_700_000_000, -1, -86_400] {
            assert_eq!(unix_from_time(time_from_unix(secs)), secs);
        }
        assert_eq!(
            unix_from_time(UNIX_EPOCH - Duration::from_millis(1500)),
            -2,
            "rounded down"
        );
        assert_eq!(
            ocid_out(u64::MAX).unwrap_err().to_string(),
            "invalid input: OCID 18446744073709551615 is out of range"
        );
        assert_eq!(ocid_out(500).unwrap(), 500);
        assert!(ocid_in(-1).is_err());
        assert_eq!(ocid_in(500).unwrap(), 500);
    }
}
