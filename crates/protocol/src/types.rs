//! Opencharge wire types: orders, QR sessions, hosted checkout, order status, proofs,
//! transfers, webhooks, capabilities and push events, shaped exactly as they travel in JSON,
//! plus [`from_json`], which turns serde failures into errors that name the missing field.
//!
//! Conventions:
//! * Money (`amount`, `price`) is a `String` holding the exact decimal text; it is validated
//!   by the `money` module, never parsed as a float here.
//! * Optional fields stay absent on output when they were absent on input.
//! * Unknown fields are tolerated everywhere. On the signed objects ([`Order`], [`OrderItem`],
//!   [`Proof`], [`ProofParty`]) they are also kept in an `extra` map and written back, because
//!   the signature covers them. Signature checks should still run over the raw received JSON
//!   value: a typed round trip drops explicit `null`s and rewrites legacy forms.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ProtocolError, Result};

pub use crate::metadata::Settlement;

/// Parse `bytes` as JSON into `T`. Any failure becomes [`ProtocolError::Json`] carrying serde's
/// message, which names the field where it can, e.g. "missing field `amount` at line 1 column 42".
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| ProtocolError::Json(e.to_string()))
}

/// Capability strings advertised in `config.capabilities` (§2.4), and the default sets per role.
/// Unknown strings from peers must be tolerated, so capabilities stay plain `String`s on the wire.
pub mod capability {
    /// `POST /orders/checkout` (Merchant Gateway).
    pub const ORDERS_CHECKOUT: &str = "orders.checkout";
    /// `POST /transfer/create` (MG, PG, settlement providers).
    pub const TRANSFER_CREATE: &str = "transfer.create";
    /// `POST /transfer/webhook` (everyone who receives proofs).
    pub const TRANSFER_WEBHOOK: &str = "transfer.webhook";
    /// `POST /payment/create` (MG, receiver of third-party payments).
    pub const PAYMENT_CREATE: &str = "payment.create";
    /// `POST /payment/settle` (MG).
    pub const PAYMENT_SETTLE: &str = "payment.settle";
    /// `GET /verify/{txid}` (MG and settlement providers).
    pub const VERIFY_TXID: &str = "verify.txid";
    /// `POST /checkout/create` (Payment Gateway).
    pub const CHECKOUT_CREATE: &str = "checkout.create";
    /// `POST /orders/create/{sessionId}` (Payment Gateway).
    pub const ORDERS_CREATE_SESSION: &str = "orders.create.session";
    /// `POST /orders/create` (Merchant).
    pub const ORDERS_CREATE: &str = "orders.create";
    /// `GET /orders/{orderId}/status` (Merchant).
    pub const ORDERS_STATUS: &str = "orders.status";
    /// `GET /kyc/grant/{ocid}` (KYC provider).
    pub const KYC_GRANT: &str = "kyc.grant";
    /// `POST /kyc/validate` (KYC provider).
    pub const KYC_VALIDATE: &str = "kyc.validate";
    /// `POST /kyc/data` (KYC provider).
    pub const KYC_DATA: &str = "kyc.data";
    /// "Can be a recipient" (router-registry page); no endpoint.
    pub const PAYMENT_RECEIVE: &str = "payment.receive";
    /// `GET /inventory` (merchant OpenAPI enum).
    pub const INVENTORY_GET: &str = "inventory.get";
    /// Legacy string; no current endpoint.
    pub const PAYMENT_SEND: &str = "payment.send";
    /// Legacy string; no current endpoint.
    pub const SETTLEMENT_ACCEPT: &str = "settlement.accept";
    /// Legacy string; no current endpoint.
    pub const SETTLEMENT_PROVIDE: &str = "settlement.provide";
    /// Legacy string; no current endpoint.
    pub const TRANSFER_EXECUTE: &str = "transfer.execute";

    /// What a Payment Gateway advertises (§7 row 21): exactly these four.
    pub const PAYMENT_GATEWAY_CAPABILITIES: [&str; 4] = [
        CHECKOUT_CREATE,
        ORDERS_CREATE_SESSION,
        TRANSFER_CREATE,
        TRANSFER_WEBHOOK,
    ];
    /// Default Merchant set.
    pub const MERCHANT_CAPABILITIES: [&str; 3] = [ORDERS_CREATE, ORDERS_STATUS, TRANSFER_WEBHOOK];
    /// Default Merchant Gateway set.
    pub const MERCHANT_GATEWAY_CAPABILITIES: [&str; 6] = [
        ORDERS_CHECKOUT,
        TRANSFER_CREATE,
        TRANSFER_WEBHOOK,
        PAYMENT_CREATE,
        PAYMENT_SETTLE,
        VERIFY_TXID,
    ];
    /// Default KYC provider set.
    pub const KYC_PROVIDER_CAPABILITIES: [&str; 3] = [KYC_GRANT, KYC_VALIDATE, KYC_DATA];

    /// `(capability, HTTP method, path template relative to config.endpoint)` for every
    /// capability that has an endpoint.
    const ENDPOINTS: [(&str, &str, &str); 14] = [
        (ORDERS_CHECKOUT, "POST", "/orders/checkout"),
        (TRANSFER_CREATE, "POST", "/transfer/create"),
        (TRANSFER_WEBHOOK, "POST", "/transfer/webhook"),
        (PAYMENT_CREATE, "POST", "/payment/create"),
        (PAYMENT_SETTLE, "POST", "/payment/settle"),
        (VERIFY_TXID, "GET", "/verify/{txid}"),
        (CHECKOUT_CREATE, "POST", "/checkout/create"),
        (ORDERS_CREATE_SESSION, "POST", "/orders/create/{sessionId}"),
        (ORDERS_CREATE, "POST", "/orders/create"),
        (ORDERS_STATUS, "GET", "/orders/{orderId}/status"),
        (KYC_GRANT, "GET", "/kyc/grant/{ocid}"),
        (KYC_VALIDATE, "POST", "/kyc/validate"),
        (KYC_DATA, "POST", "/kyc/data"),
        (INVENTORY_GET, "GET", "/inventory"),
    ];

    /// The `(method, path template)` a capability is served at, relative to `config.endpoint`,
    /// or `None` for unknown or endpoint-less capabilities.
    pub fn endpoint(capability: &str) -> Option<(&'static str, &'static str)> {
        ENDPOINTS
            .iter()
            .find(|(c, _, _)| *c == capability)
            .map(|(_, method, path)| (*method, *path))
    }
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

/// A merchant order, signed by the merchant (`ocid`). Required: `id`, `ocid`, `amount`,
/// `currency`, `createdAt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Merchant-side order id.
    pub id: String,
    /// The merchant's OCID (the signer).
    pub ocid: u64,
    /// Merchant reference, e.g. an invoice number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Total, exact decimal string.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Line items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<OrderItem>>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// Unix seconds when the order was created.
    pub created_at: i64,
    /// Unix seconds after which the order must not be paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// OCIDs whose proofs the merchant accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts: Option<Vec<u64>>,
    /// Unknown fields, kept and written back because the merchant's signature covers the whole
    /// order object. Must not repeat a named field's key.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One order line. All four named fields are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    /// Item id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Quantity. The OpenAPI says `number`; we require a positive JSON integer (`2`, not `2.5`,
    /// `2.0`, `0` or `-1`), because signed objects must hold integers only and fractional
    /// quantities have no defined meaning. Anything else is a clear error naming `quantity`.
    #[serde(deserialize_with = "deserialize_quantity")]
    pub quantity: u64,
    /// Unit price, exact decimal string.
    pub price: String,
    /// Unknown fields, kept because the order signature covers them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn deserialize_quantity<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<u64, D::Error> {
    struct QuantityVisitor;

    impl Visitor<'_> for QuantityVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("`quantity` as a positive integer")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<u64, E> {
            if v == 0 {
                Err(E::custom("`quantity` must be a positive integer, got 0"))
            } else {
                Ok(v)
            }
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<u64, E> {
            match u64::try_from(v) {
                Ok(u) => self.visit_u64(u),
                Err(_) => Err(E::custom(format!(
                    "`quantity` must be a positive integer, got {v}"
                ))),
            }
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<u64, E> {
            Err(E::custom(format!(
                "`quantity` must be a positive integer, got the non-integer number {v}"
            )))
        }
    }

    deserializer.deserialize_any(QuantityVisitor)
}

/// The `urls` next to an order in a QR-session request and in a merchant's signed-order
/// response: `{order[], completed?, cancelled?}`. Not covered by any signature: treat as hints.
/// Reading also accepts the checkout names `success` / `cancel` (§7 row 12).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderUrls {
    /// URLs where the signed order can be fetched. Empty when absent, and then not emitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<String>,
    /// Browser redirect after payment.
    #[serde(default, alias = "success", skip_serializing_if = "Option::is_none")]
    pub completed: Option<String>,
    /// Browser redirect after cancellation.
    #[serde(default, alias = "cancel", skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<String>,
}

/// `urls` of [`OrderSessionRequest`].
pub type OrderSessionUrls = OrderUrls;
/// `urls` of [`SignedOrder`] (merchant `GET /orders/{id}`, `POST /orders/create`).
pub type MerchantOrderUrls = OrderUrls;

/// Body of `POST /orders/create/{sessionId}` (merchant → PG, after scanning the wallet QR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSessionRequest {
    /// The merchant-signed order.
    pub order: Order,
    /// The merchant's signature over the canonical order.
    pub signature: String,
    /// Unsigned URL hints.
    pub urls: OrderSessionUrls,
}

/// `{status}` URL object of [`OrderSessionResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusUrls {
    /// Where the merchant polls the payment status.
    pub status: String,
}

/// 200 response of `POST /orders/create/{sessionId}`: `{"urls": {"status": "…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSessionResponse {
    /// The status URL.
    pub urls: StatusUrls,
}

/// `urls` of [`CheckoutCreateRequest`]: `{success?, cancel?}`. Reading also accepts the
/// session names `completed` / `cancelled` (§7 row 12). Unsigned: treat as hints.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutUrls {
    /// Browser redirect after successful payment.
    #[serde(default, alias = "completed", skip_serializing_if = "Option::is_none")]
    pub success: Option<String>,
    /// Browser redirect when the user cancels or the session is invalid.
    #[serde(default, alias = "cancelled", skip_serializing_if = "Option::is_none")]
    pub cancel: Option<String>,
}

/// Body of `POST /checkout/create` (Merchant Gateway → PG).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutCreateRequest {
    /// The merchant-signed order.
    pub order: Order,
    /// The merchant's signature over the canonical order.
    pub signature: String,
    /// The merchant's OCID, whose key verifies `signature`.
    pub merchant_ocid: u64,
    /// Unsigned redirect hints.
    pub urls: CheckoutUrls,
}

/// 200 response of `POST /checkout/create`. Snake_case on the wire, as the seed OpenAPI says.
/// `checkout_url` and `session_id` are required; `expires_at` is optional there, so it is an
/// `Option` (we always send it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutCreateResponse {
    /// Where the MG redirects the payer.
    pub checkout_url: String,
    /// The checkout session id.
    pub session_id: String,
    /// Unix seconds when the session expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// `{order, signature, urls?}`: a merchant's `GET /orders/{id}` and `POST /orders/create`
/// response (§4.3), i.e. what a merchant QR's `order` URL returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedOrder {
    /// The merchant-signed order.
    pub order: Order,
    /// The merchant's signature over the canonical order.
    pub signature: String,
    /// Unsigned URL hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<MerchantOrderUrls>,
}

/// Payment status of an order, lowercase on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Not paid yet.
    Pending,
    /// Paid; a proof exists.
    Paid,
    /// Past its expiry without payment.
    Expired,
    /// Declined or cancelled.
    Cancelled,
}

impl OrderStatus {
    /// The wire word: `pending`, `paid`, `expired` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Expired => "expired",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

/// Response of `GET /orders/{orderId}/status`: `{orderId, status, paidAt?, txid?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderStatusResponse {
    /// The order id.
    pub order_id: String,
    /// Current status.
    pub status: OrderStatus,
    /// Unix seconds when paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<i64>,
    /// Transaction id of the proof that paid it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txid: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Proofs
// ---------------------------------------------------------------------------------------------

/// One side of a proof: `{ocid, reference?}`.
///
/// Reading also accepts the OLD form, a bare integer OCID (`"from": 200`), as `{ocid: 200}`.
/// Such a proof re-serialises with an object, so it no longer matches its signature: proof
/// verification must always run over the raw received JSON value, never over a re-serialised
/// [`Proof`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofParty {
    /// The party's OCID.
    pub ocid: u64,
    /// Account or order reference at that party (order id, user ref, pending txid…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Unknown fields, kept because the proof signature covers them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ProofParty {
    /// A party with an OCID and an optional reference.
    pub fn new(ocid: u64, reference: Option<String>) -> ProofParty {
        ProofParty {
            ocid,
            reference,
            extra: Map::new(),
        }
    }
}

/// Object form of [`ProofParty`], used by its custom `Deserialize`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProofPartyObject {
    ocid: u64,
    #[serde(default)]
    reference: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl<'de> Deserialize<'de> for ProofParty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct PartyVisitor;

        impl<'de> Visitor<'de> for PartyVisitor {
            type Value = ProofParty;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a {\"ocid\", \"reference\"?} object or a legacy integer OCID")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<ProofParty, E> {
                Ok(ProofParty::new(v, None))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<ProofParty, E> {
                u64::try_from(v)
                    .map(|ocid| ProofParty::new(ocid, None))
                    .map_err(|_| E::custom(format!("OCID {v} is negative")))
            }

            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<ProofParty, A::Error> {
                let o = ProofPartyObject::deserialize(MapAccessDeserializer::new(map))?;
                Ok(ProofParty {
                    ocid: o.ocid,
                    reference: o.reference,
                    extra: o.extra,
                })
            }
        }

        deserializer.deserialize_any(PartyVisitor)
    }
}

/// A signed statement that a transfer completed (§3.4). The issuer signs the canonical proof
/// object (not the `{proof, signature}` envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proof {
    /// The issuer's transaction id.
    pub txid: String,
    /// The signing OCID.
    pub issuer: u64,
    /// Payer side.
    pub from: ProofParty,
    /// Payee side.
    pub to: ProofParty,
    /// Exact decimal string (echo the order's amount verbatim).
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Unix seconds when the transfer completed.
    pub timestamp: i64,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// Unknown fields, kept because the issuer's signature covers them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{proof, signature}`: the `/transfer/webhook` request body and the `/transfer/create`
/// response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedProof {
    /// The proof.
    pub proof: Proof,
    /// The issuer's signature over the canonical proof.
    pub signature: String,
}

// ---------------------------------------------------------------------------------------------
// Transfers and webhooks
// ---------------------------------------------------------------------------------------------

/// A side of a transfer request: `{ocid, reference?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferParty {
    /// The party's OCID.
    pub ocid: u64,
    /// Account reference at that party.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// The order a transfer pays: `{id, urls[]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferOrderRef {
    /// The order id.
    pub id: String,
    /// Order URLs. The MG/PG OpenAPIs use an array; the generic spec uses an object
    /// `{order[], completed, cancelled}`, which is also accepted (its `order` list is kept,
    /// the redirect URLs are dropped). Emitted as an array; not emitted when empty.
    #[serde(
        default,
        deserialize_with = "deserialize_order_ref_urls",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub urls: Vec<String>,
}

/// Object form of [`TransferOrderRef::urls`] in the generic spec.
#[derive(Deserialize)]
struct OrderRefUrlsObject {
    #[serde(default)]
    order: Vec<String>,
}

fn deserialize_order_ref_urls<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Vec<String>, D::Error> {
    struct UrlsVisitor;

    impl<'de> Visitor<'de> for UrlsVisitor {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of URLs or an {\"order\": [...]} object")
        }

        fn visit_seq<A: SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<Vec<String>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(url) = seq.next_element::<String>()? {
                out.push(url);
            }
            Ok(out)
        }

        fn visit_map<A: MapAccess<'de>>(
            self,
            map: A,
        ) -> std::result::Result<Vec<String>, A::Error> {
            OrderRefUrlsObject::deserialize(MapAccessDeserializer::new(map)).map(|o| o.order)
        }
    }

    deserializer.deserialize_any(UrlsVisitor)
}

/// Body of `POST /transfer/create`. Required: `from`, `to`, `amount`, `currency`. The response
/// is a [`SignedProof`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferCreateRequest {
    /// Source account.
    pub from: TransferParty,
    /// Destination account.
    pub to: TransferParty,
    /// Exact decimal string.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// The order being paid, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<TransferOrderRef>,
}

/// Outcome of a webhook delivery, lowercase on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookStatus {
    /// The proof was taken (including "already paid, noted").
    Accepted,
    /// The proof was refused for good; the sender must not retry.
    Rejected,
}

/// Response of `POST /transfer/webhook`: `{status, txid, message?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookResponse {
    /// Accepted or rejected.
    pub status: WebhookStatus,
    /// The proof's txid.
    pub txid: String,
    /// Human-readable note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl WebhookResponse {
    /// `{"status":"accepted","txid":…}`.
    pub fn accepted(txid: impl Into<String>) -> WebhookResponse {
        WebhookResponse {
            status: WebhookStatus::Accepted,
            txid: txid.into(),
            message: None,
        }
    }

    /// `{"status":"rejected","txid":…,"message":…}`.
    pub fn rejected(txid: impl Into<String>, message: impl Into<String>) -> WebhookResponse {
        WebhookResponse {
            status: WebhookStatus::Rejected,
            txid: txid.into(),
            message: Some(message.into()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Two-step settlement at a Merchant Gateway (§4.2, §5.6 strategy 3) and verification by txid
// ---------------------------------------------------------------------------------------------

/// Body of the Merchant Gateway's `POST /payment/create` (step 1 of third-party settlement).
/// Required: `to`, `amount`, `currency`. The answer is a [`PaymentCreateResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCreateRequest {
    /// The merchant OCID to be paid (a merchant registered with the Merchant Gateway).
    pub to: u64,
    /// Exact decimal string.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The payer's reference for this payment: the idempotency key of the creation (the same
    /// caller and reference give the same pending payment back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// Unix seconds; the Merchant Gateway's default is one hour from now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The merchant order being paid, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<TransferOrderRef>,
}

/// `status` of a pending payment at a Merchant Gateway, lowercase on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Created, waiting for `/payment/settle` with the settlement provider's proof.
    PendingSettlement,
    /// Settled: the Merchant Gateway has issued its own proof.
    Completed,
    /// Expired before it was settled.
    Expired,
    /// Failed for good.
    Failed,
}

/// The settlement providers a pending payment can be settled through: `{accepts: [ocid]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentSettlementTerms {
    /// Settlement-provider OCIDs whose proofs the Merchant Gateway accepts, in preference order.
    pub accepts: Vec<u64>,
}

/// Answer of `POST /payment/create`:
/// `{"status":"pending_settlement","txid","amount","currency","expiresAt","settlement":{"accepts":[…]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCreateResponse {
    /// `pending_settlement` for a new (or replayed, still pending) payment.
    pub status: PaymentStatus,
    /// The pending payment's id at the Merchant Gateway: the settlement proof must carry it as
    /// `to.reference`.
    pub txid: String,
    /// The amount, verbatim from the request.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Unix seconds after which the payment can no longer be settled.
    pub expires_at: i64,
    /// Which settlement providers' proofs are accepted.
    pub settlement: PaymentSettlementTerms,
}

/// Body of `POST /payment/settle` (step 2): the settlement provider's signed proof, addressed
/// to the Merchant Gateway with `to.reference` = `txid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentSettleRequest {
    /// The pending payment's id (from [`PaymentCreateResponse::txid`]).
    pub txid: String,
    /// The settlement provider's proof, exactly as it signed it.
    pub proof: serde_json::Value,
    /// The provider's signature over the proof's canonical JSON.
    pub signature: String,
}

/// Answer of `POST /payment/settle`: `{status:"completed", txid, proof, signature}` where the
/// proof is the Merchant Gateway's own, to the merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentSettleResponse {
    /// `completed`.
    pub status: PaymentStatus,
    /// The payment's id.
    pub txid: String,
    /// The Merchant Gateway's proof (issuer = the MG, `to` = the merchant).
    pub proof: serde_json::Value,
    /// The MG's signature over that proof.
    pub signature: String,
}

/// Answer of `GET /verify/{txid}`, by status (§4.2): `completed` carries the signed proof;
/// `pending` the amount and times; `expired`/`failed` only
/// the txid. Read it with serde like the other answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// `completed`, `pending`, `expired` or `failed`.
    pub status: VerifyStatus,
    /// The transaction id asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txid: Option<String>,
    /// `completed`: the signed proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<serde_json::Value>,
    /// `completed`: the signature over `proof`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// `pending`: the amount, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// `pending`: ISO 4217 code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// `pending`: unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// `pending`: unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// `status` of a [`VerifyResponse`], lowercase on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyStatus {
    /// Settled; the proof is attached.
    Completed,
    /// Not settled yet.
    Pending,
    /// Expired before settlement.
    Expired,
    /// Failed for good.
    Failed,
}

// ---------------------------------------------------------------------------------------------
// Capabilities and push events
// ---------------------------------------------------------------------------------------------

/// Response of the authenticated `GET /capabilities` (§4.1): a per-partner view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilitiesResponse {
    /// The responder's OCID.
    pub ocid: u64,
    /// Display name.
    pub name: String,
    /// Capability strings offered to this partner (see [`capability`]).
    pub capabilities: Vec<String>,
    /// Currencies and accepted proof issuers for this partner.
    pub settlement: Settlement,
}

/// The `payment_request` push event moved to the app-API module; re-exported here for the
/// protocol-level users of its old path.
pub use crate::app::{PaymentRequestEvent, PaymentRequestEventType};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The `POST /orders/create/{sessionId}` example from the seed OpenAPI.
    const SESSION_REQUEST: &str = r##"{
        "order": {"id":"ord_abc123","ocid":500,"reference":"POS-001","amount":"25.00","currency":"USD",
                  "items":[{"id":"item_001","name":"Coffee","quantity":2,"price":"5.00"},
                           {"id":"item_002","name":"Sandwich","quantity":1,"price":"15.00"}],
                  "memo":"Order #42","createdAt":1706313600,"expiresAt":1706400000,"accepts":[100,101,102]},
        "signature": "a1b2c3d4e5f6...merchant_sig",
        "urls": {"order":["https://merchant.example/orders/ord_abc123"],
                 "completed":"https://merchant.example/checkout/success",
                 "cancelled":"https://merchant.example/checkout/cancelled"}}"##;

    /// The `POST /checkout/create` example from the seed OpenAPI.
    const CHECKOUT_REQUEST: &str = r#"{
        "order": {"id":"ord_abc123","ocid":500,"reference":"INV-001","amount":"99.99","currency":"USD",
                  "items":[{"id":"item_001","name":"Product A","quantity":1,"price":"99.99"}],
                  "memo":"Order from Merchant Store","createdAt":1706313600,"expiresAt":1706400000,
                  "accepts":[100,101,102]},
        "signature": "a1b2c3d4e5f6...merchant_sig",
        "merchantOcid": 500,
        "urls": {"success":"https://merchant.example/checkout/success",
                 "cancel":"https://merchant.example/checkout/cancel"}}"#;

    /// TV3 canonical proof (§3.7).
    const TV3: &str = r#"{"amount":"10000.00","currency":"UGX","from":{"ocid":200,"reference":"paypal_tx_123"},"issuer":100,"memo":"Settlement for ORD-2024-001","timestamp":1706500500,"to":{"ocid":300,"reference":"momo_tx_789"},"txid":"barclays_tx_456"}"#;

    /// TV2 legacy proof with integer `from` / `to` (§3.7).
    const TV2: &str = r#"{"amount":"10000.00","currency":"UGX","from":200,"issuer":100,"timestamp":1706500500,"to":300,"txid":"test_tx_001"}"#;

    fn value(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    fn json_err_message<T: DeserializeOwned + fmt::Debug>(s: &str) -> String {
        match from_json::<T>(s.as_bytes()) {
            Err(ProtocolError::Json(m)) => m,
            other => panic!("expected a Json error, got {other:?}"),
        }
    }

    #[test]
    fn seed_order_session_request_parses_and_round_trips() {
        let req: OrderSessionRequest = from_json(SESSION_REQUEST.as_bytes()).unwrap();
        assert_eq!(req.order.id, "ord_abc123");
        assert_eq!(req.order.ocid, 500);
        assert_eq!(req.order.amount, "25.00");
        assert_eq!(req.order.created_at, 1706313600);
        assert_eq!(req.order.expires_at, Some(1706400000));
        assert_eq!(req.order.accepts, Some(vec![100, 101, 102]));
        let items = req.order.items.as_ref().unwrap();
        assert_eq!(items[0].quantity, 2);
        assert_eq!(items[1].price, "15.00");
        assert!(req.order.extra.is_empty());
        assert_eq!(
            req.urls.order,
            vec!["https://merchant.example/orders/ord_abc123"]
        );
        assert_eq!(
            req.urls.completed.as_deref(),
            Some("https://merchant.example/checkout/success")
        );
        assert_eq!(serde_json::to_value(&req).unwrap(), value(SESSION_REQUEST));
    }

    #[test]
    fn seed_checkout_request_and_response() {
        let req: CheckoutCreateRequest = from_json(CHECKOUT_REQUEST.as_bytes()).unwrap();
        assert_eq!(req.merchant_ocid, 500);
        assert_eq!(
            req.urls.cancel.as_deref(),
            Some("https://merchant.example/checkout/cancel")
        );
        assert_eq!(serde_json::to_value(&req).unwrap(), value(CHECKOUT_REQUEST));

        let resp = CheckoutCreateResponse {
            checkout_url: "https://checkout.wallet.example/pay/sess_xyz789".into(),
            session_id: "sess_xyz789".into(),
            expires_at: Some(1706400000),
        };
        assert_eq!(
            serde_json::to_string(&resp).unwrap(),
            r#"{"checkout_url":"https://checkout.wallet.example/pay/sess_xyz789","session_id":"sess_xyz789","expires_at":1706400000}"#
        );
        let back: CheckoutCreateResponse =
            from_json(br#"{"checkout_url":"u","session_id":"s"}"#).unwrap();
        assert_eq!(back.expires_at, None);
        let m = json_err_message::<CheckoutCreateResponse>(r#"{"checkout_url":"u"}"#);
        assert!(m.contains("missing field `session_id`"), "{m}");
    }

    #[test]
    fn order_session_response_shape() {
        let resp = OrderSessionResponse {
            urls: StatusUrls {
                status: "https://api.wallet.example/orders/ord_abc123/status".into(),
            },
        };
        assert_eq!(
            serde_json::to_string(&resp).unwrap(),
            r#"{"urls":{"status":"https://api.wallet.example/orders/ord_abc123/status"}}"#
        );
    }

    #[test]
    fn url_name_aliases_are_accepted_when_reading() {
        let u: OrderSessionUrls =
            from_json(br#"{"success":"https://s.example","cancel":"https://c.example"}"#).unwrap();
        assert_eq!(u.completed.as_deref(), Some("https://s.example"));
        assert_eq!(u.cancelled.as_deref(), Some("https://c.example"));
        assert!(u.order.is_empty());
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            r#"{"completed":"https://s.example","cancelled":"https://c.example"}"#
        );
        let c: CheckoutUrls =
            from_json(br#"{"completed":"https://s.example","cancelled":"https://c.example"}"#)
                .unwrap();
        assert_eq!(c.success.as_deref(), Some("https://s.example"));
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"success":"https://s.example","cancel":"https://c.example"}"#
        );
        let empty: CheckoutUrls = from_json(b"{}").unwrap();
        assert_eq!(empty, CheckoutUrls::default());
    }

    #[test]
    fn missing_required_fields_are_named() {
        let m = json_err_message::<Order>(r#"{"id":"o","ocid":1,"currency":"USD","createdAt":1}"#);
        assert!(m.contains("missing field `amount`"), "{m}");
        let m = json_err_message::<Order>(r#"{"id":"o","ocid":1,"amount":"1","currency":"USD"}"#);
        assert!(m.contains("missing field `createdAt`"), "{m}");
        let m = json_err_message::<OrderItem>(r#"{"id":"i","name":"n","quantity":1}"#);
        assert!(m.contains("missing field `price`"), "{m}");
        let m = json_err_message::<CheckoutCreateRequest>(
            r#"{"order":{"id":"o","ocid":1,"amount":"1","currency":"USD","createdAt":1},"signature":"s","urls":{}}"#,
        );
        assert!(m.contains("missing field `merchantOcid`"), "{m}");
        let m = json_err_message::<Proof>(
            r#"{"txid":"t","issuer":1,"from":1,"to":2,"amount":"1","currency":"USD"}"#,
        );
        assert!(m.contains("missing field `timestamp`"), "{m}");
        let m = json_err_message::<ProofParty>(r#"{"reference":"r"}"#);
        assert!(m.contains("missing field `ocid`"), "{m}");
        let m = json_err_message::<Order>("[1,2]");
        assert!(!m.is_empty());
    }

    #[test]
    fn unknown_order_fields_are_preserved() {
        let raw = r#"{"id":"o1","ocid":500,"amount":"10.00","currency":"USD","createdAt":1,
                      "tip":"1.00","meta":{"table":7},
                      "items":[{"id":"i","name":"n","quantity":3,"price":"3.00","sku":"X-1"}]}"#;
        let order: Order = from_json(raw.as_bytes()).unwrap();
        assert_eq!(order.extra["tip"], "1.00");
        assert_eq!(order.extra["meta"], json!({"table": 7}));
        assert_eq!(order.items.as_ref().unwrap()[0].extra["sku"], "X-1");
        assert_eq!(serde_json::to_value(&order).unwrap(), value(raw));
    }

    #[test]
    fn absent_optionals_stay_absent() {
        let raw =
            r#"{"id":"o1","ocid":500,"amount":"10.00","currency":"USD","createdAt":1706313600}"#;
        let order: Order = from_json(raw.as_bytes()).unwrap();
        assert_eq!(order.items, None);
        assert_eq!(order.accepts, None);
        assert_eq!(serde_json::to_string(&order).unwrap(), raw);
    }

    #[test]
    fn quantity_must_be_a_positive_integer() {
        for (q, needle) in [
            ("2.5", "non-integer number 2.5"),
            ("2.0", "non-integer number"),
            ("0", "got 0"),
            ("-1", "got -1"),
            ("\"2\"", "positive integer"),
        ] {
            let raw = format!(r#"{{"id":"i","name":"n","quantity":{q},"price":"1.00"}}"#);
            let m = json_err_message::<OrderItem>(&raw);
            assert!(m.contains("quantity") && m.contains(needle), "{q}: {m}");
        }
        // Also inside a full order (through the flatten buffering of Order).
        let raw = r#"{"id":"o","ocid":1,"amount":"1","currency":"USD","createdAt":1,
                      "items":[{"id":"i","name":"n","quantity":1.5,"price":"1"}]}"#;
        let m = json_err_message::<Order>(raw);
        assert!(m.contains("`quantity` must be a positive integer"), "{m}");
        let item: OrderItem =
            from_json(br#"{"id":"i","name":"n","quantity":18446744073709551615,"price":"1"}"#)
                .unwrap();
        assert_eq!(item.quantity, u64::MAX);
    }

    #[test]
    fn nested_proof_tv3_round_trips_to_its_canonical_form() {
        let proof: Proof = from_json(TV3.as_bytes()).unwrap();
        assert_eq!(proof.issuer, 100);
        assert_eq!(
            proof.from,
            ProofParty::new(200, Some("paypal_tx_123".into()))
        );
        assert_eq!(proof.to.ocid, 300);
        assert_eq!(proof.memo.as_deref(), Some("Settlement for ORD-2024-001"));
        // serde_json's Value sorts keys, so this is the canonical form for this data.
        assert_eq!(serde_json::to_value(&proof).unwrap().to_string(), TV3);
    }

    #[test]
    fn legacy_integer_parties_are_read_but_reserialise_differently() {
        let proof: Proof = from_json(TV2.as_bytes()).unwrap();
        assert_eq!(proof.from, ProofParty::new(200, None));
        assert_eq!(proof.to, ProofParty::new(300, None));
        let out = serde_json::to_value(&proof).unwrap();
        assert_eq!(out["from"], json!({"ocid": 200}));
        // Documented consequence: the re-serialised proof is not what was signed.
        assert_ne!(out, value(TV2));
        let m = json_err_message::<ProofParty>("-4");
        assert!(m.contains("negative"), "{m}");
        let m = json_err_message::<ProofParty>("\"200\"");
        assert!(m.contains("legacy integer OCID"), "{m}");
    }

    #[test]
    fn unknown_proof_fields_are_preserved() {
        let raw = r#"{"txid":"t","issuer":1,"from":{"ocid":2,"reference":"r","bank":"B"},
                      "to":{"ocid":3},"amount":"1.00","currency":"USD","timestamp":5,
                      "fee":"0.01","route":[1,2]}"#;
        let signed_raw = format!(r#"{{"proof":{raw},"signature":"sig"}}"#);
        let sp: SignedProof = from_json(signed_raw.as_bytes()).unwrap();
        assert_eq!(sp.proof.extra["fee"], "0.01");
        assert_eq!(sp.proof.from.extra["bank"], "B");
        assert_eq!(sp.signature, "sig");
        assert_eq!(serde_json::to_value(&sp).unwrap(), value(&signed_raw));
    }

    #[test]
    fn signed_order_with_and_without_urls() {
        let raw = r#"{"order":{"id":"o","ocid":1,"amount":"1.00","currency":"USD","createdAt":1},
                      "signature":"s",
                      "urls":{"order":["https://m.example/orders/o"],"completed":"https://m.example/ok","cancelled":"https://m.example/no"}}"#;
        let so: SignedOrder = from_json(raw.as_bytes()).unwrap();
        assert_eq!(so.urls.as_ref().unwrap().order.len(), 1);
        assert_eq!(serde_json::to_value(&so).unwrap(), value(raw));
        let so: SignedOrder = from_json(
            br#"{"order":{"id":"o","ocid":1,"amount":"1.00","currency":"USD","createdAt":1},"signature":"s"}"#,
        )
        .unwrap();
        assert_eq!(so.urls, None);
        assert!(!serde_json::to_string(&so).unwrap().contains("urls"));
    }

    #[test]
    fn order_status_response() {
        let r = OrderStatusResponse {
            order_id: "ord_1".into(),
            status: OrderStatus::Paid,
            paid_at: Some(1706500500),
            txid: Some("tx_1".into()),
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"orderId":"ord_1","status":"paid","paidAt":1706500500,"txid":"tx_1"}"#
        );
        assert_eq!(from_json::<OrderStatusResponse>(s.as_bytes()).unwrap(), r);
        for (st, wire) in [
            (OrderStatus::Pending, "\"pending\""),
            (OrderStatus::Paid, "\"paid\""),
            (OrderStatus::Expired, "\"expired\""),
            (OrderStatus::Cancelled, "\"cancelled\""),
        ] {
            assert_eq!(serde_json::to_string(&st).unwrap(), wire);
        }
        assert!(from_json::<OrderStatus>(b"\"PAID\"").is_err());
        let min: OrderStatusResponse = from_json(br#"{"orderId":"o","status":"pending"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&min).unwrap(),
            r#"{"orderId":"o","status":"pending"}"#
        );
    }

    #[test]
    fn transfer_create_request_accepts_both_order_url_forms() {
        let raw = r#"{"from":{"ocid":100,"reference":"user_1"},"to":{"ocid":500},
                      "amount":"5.00","currency":"USD","memo":"m",
                      "order":{"id":"ord_1","urls":["https://m.example/orders/ord_1"]}}"#;
        let req: TransferCreateRequest = from_json(raw.as_bytes()).unwrap();
        assert_eq!(req.order.as_ref().unwrap().urls.len(), 1);
        assert_eq!(serde_json::to_value(&req).unwrap(), value(raw));

        let generic = r#"{"from":{"ocid":100},"to":{"ocid":500},"amount":"5.00","currency":"USD",
                          "order":{"id":"ord_1","urls":{"order":["https://m.example/o"],"completed":"https://m.example/ok"}}}"#;
        let req: TransferCreateRequest = from_json(generic.as_bytes()).unwrap();
        assert_eq!(
            req.order.as_ref().unwrap().urls,
            vec!["https://m.example/o".to_owned()]
        );
        let no_urls: TransferOrderRef = from_json(br#"{"id":"o"}"#).unwrap();
        assert!(no_urls.urls.is_empty());
        assert_eq!(serde_json::to_string(&no_urls).unwrap(), r#"{"id":"o"}"#);
        let m = json_err_message::<TransferCreateRequest>(
            r#"{"from":{"ocid":1},"to":{"ocid":2},"amount":"1"}"#,
        );
        assert!(m.contains("missing field `currency`"), "{m}");
    }

    #[test]
    fn webhook_response_shapes() {
        assert_eq!(
            serde_json::to_string(&WebhookResponse::accepted("tx_1")).unwrap(),
            r#"{"status":"accepted","txid":"tx_1"}"#
        );
        let r = WebhookResponse::rejected("tx_2", "already paid");
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"status":"rejected","txid":"tx_2","message":"already paid"}"#
        );
        assert_eq!(from_json::<WebhookResponse>(s.as_bytes()).unwrap(), r);
    }

    #[test]
    fn capabilities_response_and_constants() {
        let raw = r#"{"ocid":100,"name":"QuickPay","capabilities":["checkout.create","x.future"],
                      "settlement":{"currencies":["USD"],"accepts":[{"ocid":101,"name":"B"},102]},
                      "supported_grants":["name"]}"#;
        let r: CapabilitiesResponse = from_json(raw.as_bytes()).unwrap();
        assert_eq!(r.settlement.accepts, vec![101, 102]);
        assert_eq!(r.capabilities[1], "x.future");
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"ocid":100,"name":"QuickPay","capabilities":["checkout.create","x.future"],"settlement":{"currencies":["USD"],"accepts":[101,102]}}"#
        );
        assert_eq!(
            capability::PAYMENT_GATEWAY_CAPABILITIES,
            [
                "checkout.create",
                "orders.create.session",
                "transfer.create",
                "transfer.webhook"
            ]
        );
        assert_eq!(
            capability::endpoint(capability::ORDERS_CREATE_SESSION),
            Some(("POST", "/orders/create/{sessionId}"))
        );
        assert_eq!(
            capability::endpoint(capability::ORDERS_STATUS),
            Some(("GET", "/orders/{orderId}/status"))
        );
        assert_eq!(capability::endpoint(capability::PAYMENT_SEND), None);
        assert_eq!(capability::endpoint("nope"), None);
        for cap in capability::PAYMENT_GATEWAY_CAPABILITIES
            .iter()
            .chain(&capability::MERCHANT_CAPABILITIES)
            .chain(&capability::MERCHANT_GATEWAY_CAPABILITIES)
            .chain(&capability::KYC_PROVIDER_CAPABILITIES)
        {
            assert!(capability::endpoint(cap).is_some(), "{cap}");
        }
    }

    #[test]
    fn payment_request_event_shape() {
        let order: Order =
            from_json(br#"{"id":"o","ocid":500,"amount":"1.00","currency":"USD","createdAt":1}"#)
                .unwrap();
        let ev = PaymentRequestEvent::new("sess_1", 500, Some("Cafe".into()), order);
        let s = serde_json::to_string(&ev).unwrap();
        assert_eq!(
            s,
            r#"{"type":"payment_request","sessionId":"sess_1","merchantOcid":500,"merchantName":"Cafe","order":{"id":"o","ocid":500,"amount":"1.00","currency":"USD","createdAt":1}}"#
        );
        assert_eq!(from_json::<PaymentRequestEvent>(s.as_bytes()).unwrap(), ev);
        let wrong = s.replace("payment_request", "something_else");
        assert!(from_json::<PaymentRequestEvent>(wrong.as_bytes()).is_err());
        let m = json_err_message::<PaymentRequestEvent>(
            r#"{"sessionId":"s","merchantOcid":1,"order":{"id":"o","ocid":1,"amount":"1","currency":"USD","createdAt":1}}"#,
        );
        assert!(m.contains("missing field `type`"), "{m}");
    }

    #[test]
    fn unknown_fields_are_tolerated_on_envelopes() {
        let raw = CHECKOUT_REQUEST.replacen('{', r#"{"clientVersion":"9","#, 1);
        let req: CheckoutCreateRequest = from_json(raw.as_bytes()).unwrap();
        assert_eq!(req.merchant_ocid, 500);
    }
}
