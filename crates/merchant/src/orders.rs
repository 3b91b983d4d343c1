//! Building the merchant's orders: validated line items, the exact items total in the
//! currency's minor digits (no floating point), `accepts`, creation and expiry times, and the
//! merchant's signature over the order's canonical JSON.

use opencharge_protocol::canonical::MAX_SAFE_INTEGER;
use opencharge_protocol::keys::PrivateKey;
use opencharge_protocol::money::{check_order_total, format_amount, items_total, Amount, Currency};
use opencharge_protocol::signing::sign_object;
use opencharge_protocol::types::{Order, OrderItem};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{is_display_text, MAX_TEXT_CHARS};
use crate::error::MerchantError;

/// Most line items in one order.
pub const MAX_ORDER_ITEMS: usize = 100;

/// One line of an order to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewItem {
    /// Item id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Quantity, at least 1.
    pub quantity: u64,
    /// Unit price, an exact decimal string valid for the order's currency.
    pub price: String,
}

/// An order to create: the merchant computes the total and signs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// The line items (1..=[`MAX_ORDER_ITEMS`]).
    pub items: Vec<NewItem>,
    /// ISO 4217 code; must be one of the merchant's currencies.
    pub currency: String,
    /// Merchant reference, e.g. an invoice number.
    pub reference: Option<String>,
    /// Free text shown to the payer.
    pub memo: Option<String>,
}

/// A fresh order id: `ord_` followed by 32 lowercase hex characters (128 random bits).
pub fn new_order_id() -> String {
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    format!("ord_{}", hex::encode(bytes))
}

/// The exact total of `items` in `currency`, formatted with the currency's minor digits
/// (`2 × "4.50" + 1 × "3.25"` USD → `"12.25"`). Every price must be a valid amount for the
/// currency and every quantity at least 1; the sum is computed in integers and never rounded.
pub fn order_total(items: &[NewItem], currency: &str) -> Result<String, MerchantError> {
    let currency = Currency::parse(currency)
        .map_err(|e| MerchantError::InvalidOrder(format!("currency: {e}")))?;
    if items.is_empty() {
        return Err(MerchantError::InvalidOrder(
            "an order needs at least one item".into(),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        let price = Amount::parse(&item.price)
            .map_err(|e| MerchantError::InvalidOrder(format!("items[{i}].price: {e}")))?;
        price
            .check_currency(&currency)
            .map_err(|e| MerchantError::InvalidOrder(format!("items[{i}].price: {e}")))?;
        if item.quantity == 0 || item.quantity > MAX_SAFE_INTEGER as u64 {
            return Err(MerchantError::InvalidOrder(format!(
                "items[{i}].quantity must be 1..=2^53-1, got {}",
                item.quantity
            )));
        }
    }
    let lines = || items.iter().map(|i| (i.price.as_str(), i.quantity));
    let total = items_total(lines())
        .map_err(|e| MerchantError::InvalidOrder(format!("items total: {e}")))?;
    let text = format_amount(total, &currency);
    let amount = Amount::parse(&text)
        .map_err(|e| MerchantError::InvalidOrder(format!("order total {text}: {e}")))?;
    check_order_total(&amount, &currency, lines())
        .map_err(|e| MerchantError::InvalidOrder(e.to_string()))?;
    Ok(text)
}

/// What [`build_order`] needs from the merchant.
pub(crate) struct OrderTerms<'a> {
    pub ocid: u64,
    pub currencies: &'a [String],
    pub accepts: &'a [u64],
    pub ttl_secs: u64,
}

fn check_optional_text(field: &str, value: &Option<String>) -> Result<(), MerchantError> {
    match value {
        Some(text) if !is_display_text(text) => Err(MerchantError::InvalidOrder(format!(
            "{field} must be 1..={MAX_TEXT_CHARS} characters without control characters"
        ))),
        _ => Ok(()),
    }
}

/// Builds and signs order `id` at `now`: validated items, exact `amount`, `accepts` (omitted
/// when empty), `createdAt = now`, `expiresAt = now + ttl`. Returns the order as the JSON
/// value that was signed, and the 130-hex signature.
pub(crate) fn build_order(
    key: &PrivateKey,
    terms: &OrderTerms<'_>,
    new: &NewOrder,
    id: &str,
    now: i64,
) -> Result<(Value, String), MerchantError> {
    if !terms.currencies.contains(&new.currency) {
        return Err(MerchantError::InvalidOrder(format!(
            "currency {:?} is not one of the merchant's currencies {:?}",
            new.currency, terms.currencies
        )));
    }
    if new.items.len() > MAX_ORDER_ITEMS {
        return Err(MerchantError::InvalidOrder(format!(
            "at most {MAX_ORDER_ITEMS} items per order"
        )));
    }
    for (i, item) in new.items.iter().enumerate() {
        if !is_display_text(&item.id) || !is_display_text(&item.name) {
            return Err(MerchantError::InvalidOrder(format!(
                "items[{i}]: id and name must be 1..={MAX_TEXT_CHARS} characters without control characters"
            )));
        }
    }
    check_optional_text("reference", &new.reference)?;
    check_optional_text("memo", &new.memo)?;
    let amount = order_total(&new.items, &new.currency)?;
    let ttl = i64::try_from(terms.ttl_secs)
        .map_err(|_| MerchantError::InvalidOrder("order lifetime too large".into()))?;
    let order = Order {
        id: id.to_string(),
        ocid: terms.ocid,
        reference: new.reference.clone(),
        amount,
        currency: new.currency.clone(),
        items: Some(
            new.items
                .iter()
                .map(|i| OrderItem {
                    id: i.id.clone(),
                    name: i.name.clone(),
                    quantity: i.quantity,
                    price: i.price.clone(),
                    extra: Map::new(),
                })
                .collect(),
        ),
        memo: new.memo.clone(),
        created_at: now,
        expires_at: Some(now.saturating_add(ttl)),
        accepts: (!terms.accepts.is_empty()).then(|| terms.accepts.to_vec()),
        extra: Map::new(),
    };
    let value = serde_json::to_value(&order)
        .map_err(|e| MerchantError::InvalidOrder(format!("order serialisation: {e}")))?;
    let signature = sign_object(key, &value)?;
    Ok((value, signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencharge_protocol::keys::VerifyOptions;
    use opencharge_protocol::signing::{verify_order, OrderVerifyMode, SignatureStrength};

    fn item(id: &str, quantity: u64, price: &str) -> NewItem {
        NewItem {
            id: id.into(),
            name: format!("Item {id}"),
            quantity,
            price: price.into(),
        }
    }

    #[test]
    fn totals_are_exact() {
        // 0.1 + 0.2 style traps: ten dimes are exactly one dollar.
        assert_eq!(
            order_total(&[item("d", 10, "0.10")], "USD").unwrap(),
            "1.00"
        );
        assert_eq!(
            order_total(&[item("a", 1, "0.10"), item("b", 1, "0.20")], "USD").unwrap(),
            "0.30"
        );
        // Mixed scales are padded to the currency's digits.
        assert_eq!(
            order_total(&[item("t", 2, "4.5"), item("c", 1, "3.25")], "USD").unwrap(),
            "12.25"
        );
        assert_eq!(order_total(&[item("x", 3, "1")], "USD").unwrap(), "3.00");
        // Zero-digit and three-digit currencies.
        assert_eq!(order_total(&[item("y", 3, "1500")], "UGX").unwrap(), "4500");
        assert_eq!(
            order_total(&[item("j", 7, "0.125")], "BHD").unwrap(),
            "0.875"
        );
        // Large but exact.
        assert_eq!(
            order_total(&[item("big", 1_000_000, "99999.99")], "USD").unwrap(),
            "99999990000.00"
        );
    }

    #[test]
    fn bad_items_are_refused() {
        for (items, needle) in [
            (vec![], "at least one item"),
            (vec![item("a", 1, "1.005")], "items[0].price"),
            (vec![item("a", 0, "1.00")], "quantity"),
            (vec![item("a", 1, "0")], "items[0].price"),
            (vec![item("a", 1, "-1.00")], "items[0].price"),
            (vec![item("a", 1, "1e2")], "items[0].price"),
            (
                vec![item("a", 1, "1.00"), item("b", 1, "x")],
                "items[1].price",
            ),
        ] {
            let err = order_total(&items, "USD").unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
        // A currency without minor units (gold) cannot be priced.
        let err = order_total(&[item("a", 1, "5")], "XAU").unwrap_err();
        assert!(err.to_string().contains("currency"), "{err}");
    }

    #[test]
    fn built_orders_verify_and_carry_the_terms() {
        let key = PrivateKey::generate();
        let currencies = vec!["USD".to_string()];
        let terms = OrderTerms {
            ocid: 500,
            currencies: &currencies,
            accepts: &[200, 201],
            ttl_secs: 300,
        };
        let new = NewOrder {
            items: vec![item("tea", 2, "4.50"), item("cake", 1, "3.25")],
            currency: "USD".into(),
            reference: Some("POS-1".into()),
            memo: None,
        };
        let (value, signature) = build_order(&key, &terms, &new, "ord_1", 1000).unwrap();
        assert_eq!(value["amount"], "12.25");
        assert_eq!(value["createdAt"], 1000);
        assert_eq!(value["expiresAt"], 1300);
        assert_eq!(value["accepts"], serde_json::json!([200, 201]));
        assert_eq!(value["reference"], "POS-1");
        assert!(value.get("memo").is_none());
        assert_eq!(value["items"][0]["quantity"], 2);
        let strength = verify_order(
            &value,
            &signature,
            500,
            &key.public_key(),
            OrderVerifyMode::Strict,
            VerifyOptions::STRICT,
        )
        .unwrap();
        assert_eq!(strength, SignatureStrength::Full);

        let eur = NewOrder {
            currency: "EUR".into(),
            ..new.clone()
        };
        assert!(build_order(&key, &terms, &eur, "ord_2", 1000).is_err());
        let bad_memo = NewOrder {
            memo: Some("a\u{0}b".into()),
            ..new.clone()
        };
        assert!(build_order(&key, &terms, &bad_memo, "ord_3", 1000).is_err());
        let no_accepts = OrderTerms {
            accepts: &[],
            ..terms
        };
        let (value, _) = build_order(&key, &no_accepts, &new, "ord_4", 1000).unwrap();
        assert!(value.get("accepts").is_none());
    }

    #[test]
    fn order_ids_are_random_and_well_formed() {
        let a = new_order_id();
        assert_eq!(a.len(), 36);
        assert!(a.starts_with("ord_"));
        assert!(opencharge_protocol::auth::is_header_token(&a, 128));
        assert_ne!(a, new_order_id());
    }
}
