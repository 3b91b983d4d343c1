//! Fixture orders: the coffee order every demo and test pays (2 × Coffee at 2.50 and
//! 1 × Cake at 3.25, 8.25 USD), written once, and a line-item helper.

use opencharge_merchant::{NewItem, NewOrder};

/// The coffee order's total.
pub const COFFEE_ORDER_TOTAL: &str = "8.25";

/// A line item.
pub fn item(id: &str, name: &str, quantity: u64, price: &str) -> NewItem {
    NewItem {
        id: id.into(),
        name: name.into(),
        quantity,
        price: price.into(),
    }
}

/// The coffee order: two coffees at 2.50 and one cake at 3.25, 8.25 USD, with this reference
/// and no memo.
pub fn coffee_order(reference: &str) -> NewOrder {
    NewOrder {
        items: vec![
            item("coffee", "Coffee", 2, "2.50"),
            item("cake", "Cake", 1, "3.25"),
        ],
        currency: "USD".into(),
        reference: Some(reference.into()),
        memo: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coffee_order_totals_8_25_usd() {
        let order = coffee_order("table-4");
        assert_eq!(
            opencharge_merchant::order_total(&order.items, &order.currency).unwrap(),
            COFFEE_ORDER_TOTAL
        );
        assert_eq!(order.reference.as_deref(), Some("table-4"));
    }
}
