//! Scanning and checkout: `POST /app/scan` (doc §3.8) with its two answers (a prompt or an
//! inventory), `POST /app/inventory/order` (§3.9) and the body the gateway sends on to the
//! merchant's `/orders/create` for it. `POST /app/checkout/{id}` (§3.10) has no body and
//! answers a [`super::Prompt`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{first_unknown, KnownFields, Prompt};

/// `POST /app/scan` body: the scanned QR text or opened link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRequest {
    /// The text exactly as scanned.
    pub text: String,
}

impl KnownFields for ScanRequest {
    const FIELDS: &'static [&'static str] = &["text"];
}

/// `POST /app/scan` answer, by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// A scan answer is short-lived; boxing the prompt would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum ScanResponse {
    /// `{"kind": "prompt", "prompt": {…}}`: a merchant order or a checkout link.
    Prompt {
        /// The prompt to confirm or decline.
        prompt: Prompt,
    },
    /// `{"kind": "inventory", …}`: a merchant inventory to pick items from.
    Inventory(InventoryView),
}

/// The inventory answer of a scan: the merchant's unsigned catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryView {
    /// The merchant.
    pub merchant_ocid: u64,
    /// From the merchant's verified metadata; `null` when it has none.
    #[serde(default)]
    pub merchant_name: Option<String>,
    /// From the merchant's verified metadata; `null` when it has none.
    #[serde(default)]
    pub merchant_icon: Option<String>,
    /// Where the inventory was fetched (send it back in the inventory order).
    pub inventory_url: String,
    /// The inventory's currency; `null` when it names none.
    #[serde(default)]
    pub currency: Option<String>,
    /// The items, as the merchant sent them.
    pub items: Vec<InventoryItem>,
}

/// One inventory item. Unsigned: show it, but pay only the signed order that comes back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryItem {
    /// The merchant's item id (what to order).
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unit price, exact decimal string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// Other fields of the merchant's item, passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One line of an inventory order: `{id, quantity}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryLine {
    /// The inventory item id (1–128 characters).
    pub id: String,
    /// How many (1–1000000).
    pub quantity: u64,
}

/// `POST /app/inventory/order` body. The answer is a [`super::Prompt`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryOrderRequest {
    /// The merchant of the scanned inventory.
    pub merchant_ocid: u64,
    /// The scan answer's `inventoryUrl`.
    pub inventory_url: String,
    /// 1–500 lines.
    pub items: Vec<InventoryLine>,
    /// Passed on to the merchant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

impl KnownFields for InventoryOrderRequest {
    const FIELDS: &'static [&'static str] = &["merchantOcid", "inventoryUrl", "items", "currency"];

    fn unknown_field(body: &Value) -> Option<String> {
        first_unknown(body, Self::FIELDS, "").or_else(|| {
            body.get("items")?
                .as_array()?
                .iter()
                .enumerate()
                .find_map(|(i, line)| {
                    first_unknown(line, &["id", "quantity"], &format!("items[{i}]."))
                })
        })
    }
}

/// What the gateway POSTs (signed) to the merchant's `<endpoint>/orders/create` for an
/// inventory order: `{ocid, items, currency?}`. The merchant answers `{order, signature, urls}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantOrderCreateRequest {
    /// The merchant's OCID.
    pub ocid: u64,
    /// The lines to price.
    pub items: Vec<InventoryLine>,
    /// The wanted currency, when the app gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}
