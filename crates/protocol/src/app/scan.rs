//! Scanning and checkout: `POST /app/scan` (doc §3.8) with its three answers (a prompt, an
//! inventory or a person), `POST /app/inventory/order` (§3.9) and the body the gateway sends on to the
//! merchant's `/orders/create` for it. `POST /app/checkout/{id}` (§3.10) has no body and
//! answers a [`super::Prompt`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{first_unknown, KnownFields, PersonView, Prompt};

/// `POST /app/scan` body: the scanned QR text or opened link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRequest {
    /// The text exactly as scanned.
    pub text: String,
}

impl KnownFields for ScanRequest {
    const FIELDS: &'static [&'static str] = &["text"];
}

/// `POST /app/scan` answer, by `kind`. Read through [`ScanWire`] (see there why).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "ScanWire")]
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
    /// `{"kind": "person", "person": {…}}`: an end-user OCID QR or person URI; pay it with
    /// `POST /app/transfers`.
    Person {
        /// Who the scanned payload pays.
        person: PersonView,
    },
}

/// A scan answer as read off the wire: `kind` plus the fields of either answer, checked by
/// [`ScanResponse`]'s `TryFrom`. serde's internally tagged enums buffer the whole object in
/// its private `Content` type first, and that deserializer alone costs the mobile library tens
/// of kilobytes; this flat struct reads straight from the text.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScanWire {
    kind: ScanKind,
    #[serde(default)]
    prompt: Option<Prompt>,
    #[serde(default)]
    merchant_ocid: Option<u64>,
    #[serde(default)]
    merchant_name: Option<String>,
    #[serde(default)]
    merchant_icon: Option<String>,
    #[serde(default)]
    inventory_url: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    items: Option<Vec<InventoryItem>>,
    #[serde(default)]
    person: Option<PersonView>,
}

/// The `kind` of a scan answer.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScanKind {
    Prompt,
    Inventory,
    Person,
}

/// serde's wording for a required field that is absent, so errors read the same as elsewhere.
fn missing(field: &str) -> String {
    format!("missing field `{field}`")
}

impl TryFrom<ScanWire> for ScanResponse {
    type Error = String;

    fn try_from(wire: ScanWire) -> Result<Self, String> {
        Ok(match wire.kind {
            ScanKind::Prompt => ScanResponse::Prompt {
                prompt: wire.prompt.ok_or_else(|| missing("prompt"))?,
            },
            ScanKind::Inventory => ScanResponse::Inventory(InventoryView {
                merchant_ocid: wire.merchant_ocid.ok_or_else(|| missing("merchantOcid"))?,
                merchant_name: wire.merchant_name,
                merchant_icon: wire.merchant_icon,
                inventory_url: wire.inventory_url.ok_or_else(|| missing("inventoryUrl"))?,
                currency: wire.currency,
                items: wire.items.ok_or_else(|| missing("items"))?,
            }),
            ScanKind::Person => ScanResponse::Person {
                person: wire.person.ok_or_else(|| missing("person"))?,
            },
        })
    }
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
/// Read from a JSON object through `TryFrom` rather than `#[serde(flatten)]`, which would
/// buffer every item in serde's private `Content` type (see [`ScanWire`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
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

impl TryFrom<Map<String, Value>> for InventoryItem {
    type Error = String;

    fn try_from(mut extra: Map<String, Value>) -> Result<Self, String> {
        let id = match extra.remove("id") {
            Some(Value::String(id)) => id,
            Some(_) => return Err("invalid type: `id` must be a string".into()),
            None => return Err(missing("id")),
        };
        let name = optional_text(&mut extra, "name")?;
        let price = optional_text(&mut extra, "price")?;
        Ok(InventoryItem {
            id,
            name,
            price,
            extra,
        })
    }
}

/// Takes the optional string `field` out of `object` (absent or `null` → `None`).
fn optional_text(object: &mut Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(format!("invalid type: `{field}` must be a string")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inventory_items_keep_unknown_fields_and_check_types() {
        let item: InventoryItem = serde_json::from_value(
            json!({"id": "tea", "name": null, "price": "2.50", "unit": "cup"}),
        )
        .unwrap();
        assert_eq!(item.id, "tea");
        assert_eq!(item.name, None);
        assert_eq!(item.price.as_deref(), Some("2.50"));
        assert_eq!(item.extra.get("unit"), Some(&json!("cup")));
        assert!(!item.extra.contains_key("id") && !item.extra.contains_key("price"));
        let back = serde_json::to_value(&item).unwrap();
        assert_eq!(back, json!({"id": "tea", "price": "2.50", "unit": "cup"}));
        for (bad, what) in [
            (json!({"name": "Tea"}), "missing field `id`"),
            (json!({"id": 7}), "`id` must be a string"),
            (json!({"id": "tea", "name": 3}), "`name` must be a string"),
            (
                json!({"id": "tea", "price": 2.5}),
                "`price` must be a string",
            ),
            (json!(["tea"]), "invalid type"),
        ] {
            let e = serde_json::from_value::<InventoryItem>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(what), "{e}");
        }
    }

    #[test]
    fn a_scan_answer_needs_the_fields_of_its_kind() {
        for (bad, what) in [
            (json!({"kind": "prompt"}), "missing field `prompt`"),
            (
                json!({"kind": "inventory", "inventoryUrl": "u", "items": []}),
                "missing field `merchantOcid`",
            ),
            (
                json!({"kind": "inventory", "merchantOcid": 5, "inventoryUrl": "u"}),
                "missing field `items`",
            ),
        ] {
            let e = serde_json::from_str::<ScanResponse>(&bad.to_string())
                .unwrap_err()
                .to_string();
            assert!(e.contains(what), "{e}");
        }
        let answer: ScanResponse = serde_json::from_str(
            r#"{"kind":"inventory","merchantOcid":5,"merchantName":null,"inventoryUrl":"u","items":[{"id":"x"}],"extra":1}"#,
        )
        .unwrap();
        let ScanResponse::Inventory(view) = answer else {
            panic!("not an inventory")
        };
        assert_eq!((view.merchant_ocid, view.items.len()), (5, 1));
        assert_eq!(
            serde_json::to_value(ScanResponse::Inventory(view)).unwrap()["kind"],
            "inventory"
        );
    }
}
