//! Local re-verification of payment prompts: nothing the gateway relays becomes a
//! `PaymentPrompt` until the core has checked the signature over the canonical order (the
//! merchant's, with the key from its verified metadata; for a payment to a person, flow
//! `transfer`, the wallet's own gateway's, with the key from the gateway's verified metadata),
//! the `order.ocid` binding (the merchant, or the person paid), the expiry, the currency's
//! minor units and that the items add up to the amount.

use opencharge_protocol::app::Prompt;
use opencharge_protocol::keys::VerifyOptions;
use opencharge_protocol::money::{check_order_total, Amount, Currency};
use opencharge_protocol::signing::{object_hash, verify_order, OrderVerifyMode};
use opencharge_protocol::types::Order;
use serde_json::Value;

use crate::error::{Result, WalletError};
use crate::model::{
    ocid_out, time_from_unix, Money, Payee, PaymentFlow, PaymentPrompt, PromptItem,
};
use crate::resolver::Party;

/// Reads a prompt object as the app API's [`Prompt`]; a malformed one is
/// [`WalletError::InvalidInput`] naming the field ("prompt: missing field `flow`").
pub(crate) fn parse_prompt(value: &Value) -> Result<Prompt> {
    serde_json::from_value(value.clone()).map_err(|e| WalletError::invalid(format!("prompt: {e}")))
}

/// The fields of a prompt object (`docs/app-api.md` §3.1) before verification.
#[derive(Debug, Clone)]
pub(crate) struct RawPrompt {
    pub(crate) session_id: String,
    pub(crate) flow: PaymentFlow,
    pub(crate) merchant_ocid: u64,
    pub(crate) order: Value,
    pub(crate) signature: String,
    pub(crate) order_hash: String,
    pub(crate) expires_at: i64,
    /// Flow `transfer` only: the person paid, as the gateway names them (unsigned: the
    /// gateway's word, like the rest of its account data).
    pub(crate) recipient: Option<opencharge_protocol::app::Recipient>,
}

impl RawPrompt {
    /// Reads a prompt object; a malformed one is [`WalletError::InvalidInput`] naming the field.
    pub(crate) fn parse(value: &Value) -> Result<RawPrompt> {
        RawPrompt::from_prompt(parse_prompt(value)?)
    }

    /// Checks the typed prompt's id and keeps what verification needs.
    pub(crate) fn from_prompt(prompt: Prompt) -> Result<RawPrompt> {
        if !opencharge_protocol::auth::is_header_token(&prompt.session_id, 128) {
            return Err(WalletError::invalid("prompt: malformed `sessionId`"));
        }
        if !prompt.order.is_object() {
            return Err(WalletError::invalid("prompt: `order` is not an object"));
        }
        Ok(RawPrompt {
            session_id: prompt.session_id,
            flow: prompt.flow.into(),
            merchant_ocid: prompt.merchant_ocid,
            order: prompt.order,
            signature: prompt.signature,
            order_hash: prompt.order_hash,
            expires_at: prompt.expires_at,
            recipient: prompt.recipient,
        })
    }
}

/// Verifies `raw` against the signer's verified metadata at time `now`: the merchant's
/// (`signer` resolved from `raw.merchant_ocid` by the caller), or for flow `transfer` this
/// wallet's own gateway's, whose order names the person paid in `order.ocid`. Every failure
/// is a typed error and nothing is stored by this function.
pub(crate) fn verify(raw: &RawPrompt, signer: &Party, now: i64) -> Result<PaymentPrompt> {
    let transfer = raw.flow == PaymentFlow::Transfer;
    if !transfer && signer.ocid != raw.merchant_ocid {
        return Err(WalletError::internal("resolved the wrong merchant"));
    }
    // `order.ocid` must be `merchantOcid` (the merchant, or the person paid); the key is the
    // merchant's, or for a transfer the gateway's.
    verify_order(
        &raw.order,
        &raw.signature,
        raw.merchant_ocid,
        &signer.public_key,
        OrderVerifyMode::Strict,
        VerifyOptions::STRICT,
    )
    .map_err(|e| {
        WalletError::crypto(format!(
            "the {} order signature does not verify: {e}",
            if transfer { "gateway's" } else { "merchant's" }
        ))
    })?;
    let recipient = match (&raw.recipient, transfer) {
        (Some(r), true) if r.ocid == raw.merchant_ocid => Some(r),
        (_, true) => {
            return Err(WalletError::invalid(
                "prompt: a transfer must name its recipient, the order's OCID",
            ))
        }
        (_, false) => None,
    };
    let order: Order = serde_json::from_value(raw.order.clone())
        .map_err(|e| WalletError::invalid(format!("prompt: malformed order: {e}")))?;
    let order_hash = object_hash(&raw.order)?;
    if raw.order_hash != order_hash {
        return Err(WalletError::crypto(
            "the prompt's orderHash is not the hash of its order",
        ));
    }
    let expires_at = match order.expires_at {
        Some(order_expiry) => order_expiry.min(raw.expires_at),
        None => raw.expires_at,
    };
    if expires_at <= now {
        return Err(WalletError::invalid(format!(
            "the order expired at {expires_at}"
        )));
    }
    let currency = Currency::parse(&order.currency)?;
    let amount = Amount::parse(&order.amount)?;
    let items = order.items.clone().unwrap_or_default();
    check_order_total(
        &amount,
        &currency,
        items.iter().map(|i| (i.price.as_str(), i.quantity)),
    )?;
    let items = items
        .into_iter()
        .map(|i| {
            Ok(PromptItem {
                unit_price: Money::new(&i.price, &order.currency)?,
                quantity: i64::try_from(i.quantity)
                    .map_err(|_| WalletError::invalid("prompt: an item quantity is too large"))?,
                id: i.id,
                name: i.name,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let total = Money::new(&order.amount, &order.currency)?;
    let merchant_ocid = ocid_out(raw.merchant_ocid)?;
    let recipient = recipient
        .map(|r| {
            Ok::<_, WalletError>(Payee {
                ocid: merchant_ocid,
                gateway_ocid: ocid_out(r.gateway)?,
                gateway_name: r.gateway_name.clone(),
                name: r.name.clone(),
                amount: Some(total.clone()),
                memo: order.memo.clone(),
            })
        })
        .transpose()?;
    Ok(PaymentPrompt {
        prompt_id: raw.session_id.clone(),
        flow: raw.flow,
        merchant_ocid,
        // A merchant's name and icon come from its verified metadata; a person has none, so
        // their name is the one their gateway gave.
        merchant_name: match &recipient {
            Some(r) => r.name.clone(),
            None => Some(signer.name.clone()).filter(|n| !n.is_empty()),
        },
        merchant_icon: if transfer { None } else { signer.icon.clone() },
        order_id: order.id,
        reference: order.reference,
        memo: order.memo,
        items,
        total,
        expires_at: time_from_unix(expires_at),
        order_hash,
        received_at: time_from_unix(now),
        recipient,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencharge_protocol::keys::PrivateKey;
    use opencharge_protocol::signing::sign_object;
    use serde_json::json;

    fn merchant(key: &PrivateKey) -> Party {
        Party {
            ocid: 500,
            name: "Test Coffee".into(),
            icon: None,
            public_key: key.public_key(),
        }
    }

    fn prompt_json(key: &PrivateKey, order: Value) -> Value {
        json!({
            "type": "payment_request", "sessionId": "13c8f6878f55327769736d2129b2d9cb",
            "flow": "wallet_qr", "merchantOcid": 500, "merchantName": "Evil Name",
            "order": order, "signature": sign_object(key, &order).unwrap(),
            "orderHash": object_hash(&order).unwrap(), "expiresAt": 2000
        })
    }

    fn order() -> Value {
        json!({"id": "ord_1", "ocid": 500, "amount": "25.00", "currency": "USD", "createdAt": 1000,
               "expiresAt": 1600, "accepts": [200],
               "items": [{"id": "a", "name": "Coffee", "quantity": 2, "price": "5.00"},
                         {"id": "b", "name": "Sandwich", "quantity": 1, "price": "15.00"}]})
    }

    #[test]
    fn a_valid_prompt_verifies_and_takes_the_name_from_metadata() {
        let key = PrivateKey::generate();
        let raw = RawPrompt::parse(&prompt_json(&key, order())).unwrap();
        let prompt = verify(&raw, &merchant(&key), 1100).unwrap();
        assert_eq!(prompt.merchant_name.as_deref(), Some("Test Coffee"));
        assert_eq!(
            prompt.expires_at,
            time_from_unix(1600),
            "the order's own expiry is earlier"
        );
        assert_eq!(prompt.total, Money::new("25.00", "USD").unwrap());
        assert_eq!(prompt.total.minor_units, 2500);
        assert_eq!(prompt.items.len(), 2);
        assert_eq!(prompt.items[0].unit_price.minor_units, 500);
        assert_eq!(prompt.items[0].quantity, 2);
        assert_eq!(prompt.received_at, time_from_unix(1100));
    }

    #[test]
    fn tampering_is_caught() {
        let key = PrivateKey::generate();
        let good = prompt_json(&key, order());
        let m = merchant(&key);
        // Amount changed after signing.
        let mut v = good.clone();
        v["order"]["amount"] = json!("2.50");
        assert!(matches!(
            verify(&RawPrompt::parse(&v).unwrap(), &m, 1100),
            Err(WalletError::Crypto { .. })
        ));
        // Item price changed after signing.
        let mut v = good.clone();
        v["order"]["items"][0]["price"] = json!("0.01");
        assert!(matches!(
            verify(&RawPrompt::parse(&v).unwrap(), &m, 1100),
            Err(WalletError::Crypto { .. })
        ));
        // Signed by another key.
        let other = PrivateKey::generate();
        let v = prompt_json(&other, order());
        assert!(matches!(
            verify(&RawPrompt::parse(&v).unwrap(), &m, 1100),
            Err(WalletError::Crypto { .. })
        ));
        // Order bound to another merchant.
        let mut o = order();
        o["ocid"] = json!(501);
        let v = prompt_json(&key, o);
        assert!(matches!(
            verify(&RawPrompt::parse(&v).unwrap(), &m, 1100),
            Err(WalletError::Crypto { .. })
        ));
        // Wrong orderHash claimed.
        let mut v = good.clone();
        v["orderHash"] = json!("00".repeat(32));
        assert!(matches!(
            verify(&RawPrompt::parse(&v).unwrap(), &m, 1100),
            Err(WalletError::Crypto { .. })
        ));
        // Expired.
        assert!(matches!(
            verify(&RawPrompt::parse(&good).unwrap(), &m, 1600),
            Err(WalletError::InvalidInput { .. })
        ));
    }

    #[test]
    fn signed_but_inconsistent_orders_are_refused() {
        let key = PrivateKey::generate();
        let m = merchant(&key);
        let mut o = order();
        o["amount"] = json!("26.00");
        let v = prompt_json(&key, o);
        assert!(matches!(
            verify(&RawPrompt::parse(&v).unwrap(), &m, 1100),
            Err(WalletError::InvalidInput { .. })
        ));
        let mut o = order();
        o["currency"] = json!("UGX");
        o["amount"] = json!("25.00");
        let v = prompt_json(&key, o);
        assert!(
            verify(&RawPrompt::parse(&v).unwrap(), &m, 1100).is_err(),
            "UGX has no minor units"
        );
    }

    /// The wallet's own gateway (OCID 200), which signs transfer orders.
    fn gateway(key: &PrivateKey) -> Party {
        Party {
            ocid: 200,
            name: "Wallet Co".into(),
            icon: Some("https://wallet.example/icon.png".into()),
            public_key: key.public_key(),
        }
    }

    fn transfer_json(key: &PrivateKey, order: Value, recipient: Value) -> Value {
        json!({
            "type": "payment_request", "sessionId": "23c8f6878f55327769736d2129b2d9cb",
            "flow": "transfer", "merchantOcid": 200001, "merchantName": "Bob",
            "order": order, "signature": sign_object(key, &order).unwrap(),
            "orderHash": object_hash(&order).unwrap(), "expiresAt": 1300,
            "recipient": recipient
        })
    }

    fn transfer_order() -> Value {
        json!({"id": "p2p_0123456789abcdef0123456789abcdef", "ocid": 200001, "amount": "5.00",
               "currency": "USD", "memo": "lunch", "createdAt": 1000, "expiresAt": 1300})
    }

    fn recipient() -> Value {
        json!({"ocid": 200001, "name": "Bob", "gateway": 300, "gatewayName": "Other Wallet"})
    }

    #[test]
    fn a_transfer_verifies_with_the_gateways_key_and_names_the_recipient() {
        let key = PrivateKey::generate();
        let raw = RawPrompt::parse(&transfer_json(&key, transfer_order(), recipient())).unwrap();
        let prompt = verify(&raw, &gateway(&key), 1100).unwrap();
        assert_eq!(prompt.flow, PaymentFlow::Transfer);
        assert_eq!(prompt.merchant_ocid, 200_001);
        assert_eq!(prompt.merchant_name.as_deref(), Some("Bob"));
        assert_eq!(
            prompt.merchant_icon, None,
            "a person has no icon, not the gateway's"
        );
        assert_eq!(prompt.memo.as_deref(), Some("lunch"));
        assert_eq!(
            prompt.recipient,
            Some(Payee {
                ocid: 200_001,
                gateway_ocid: 300,
                gateway_name: Some("Other Wallet".into()),
                name: Some("Bob".into()),
                amount: Some(Money::new("5.00", "USD").unwrap()),
                memo: Some("lunch".into()),
            })
        );
        // A recipient on a merchant prompt is ignored.
        let mut merchant = prompt_json(&key, order());
        merchant["recipient"] = recipient();
        let merchant = verify(
            &RawPrompt::parse(&merchant).unwrap(),
            &self::merchant(&key),
            1100,
        );
        assert_eq!(merchant.unwrap().recipient, None);
    }

    #[test]
    fn a_forged_or_mismatched_transfer_is_refused() {
        let key = PrivateKey::generate();
        let gw = gateway(&key);
        // Signed by another key than the gateway's (e.g. by the recipient themselves).
        let other = PrivateKey::generate();
        let v = transfer_json(&other, transfer_order(), recipient());
        assert!(matches!(
            verify(&RawPrompt::parse(&v).unwrap(), &gw, 1100),
            Err(WalletError::Crypto { .. })
        ));
        // The amount changed after signing.
        let mut v = transfer_json(&key, transfer_order(), recipient());
        v["order"]["amount"] = json!("500.00");
        assert!(matches!(
            verify(&RawPrompt::parse(&v).unwrap(), &gw, 1100),
            Err(WalletError::Crypto { .. })
        ));
        // The order pays someone else than the prompt's recipient OCID.
        let mut order = transfer_order();
        order["ocid"] = json!(200_002);
        let v = transfer_json(&key, order, recipient());
        assert!(matches!(
            verify(&RawPrompt::parse(&v).unwrap(), &gw, 1100),
            Err(WalletError::Crypto { .. })
        ));
        // The recipient block names another OCID, or is missing.
        let mut other_recipient = recipient();
        other_recipient["ocid"] = json!(200_002);
        for recipient in [other_recipient, Value::Null] {
            let v = transfer_json(&key, transfer_order(), recipient);
            assert!(matches!(
                verify(&RawPrompt::parse(&v).unwrap(), &gw, 1100),
                Err(WalletError::InvalidInput { .. })
            ));
        }
        // Expired.
        let v = transfer_json(&key, transfer_order(), recipient());
        assert!(matches!(
            verify(&RawPrompt::parse(&v).unwrap(), &gw, 1300),
            Err(WalletError::InvalidInput { .. })
        ));
    }

    #[test]
    fn a_missing_prompt_field_is_named() {
        let key = PrivateKey::generate();
        for field in ["sessionId", "flow", "orderHash", "expiresAt"] {
            let mut v = prompt_json(&key, order());
            v.as_object_mut().unwrap().remove(field);
            let err = RawPrompt::parse(&v).unwrap_err().to_string();
            assert!(err.contains(&format!("missing field `{field}`")), "{err}");
        }
        // Unknown fields are ignored.
        let mut v = prompt_json(&key, order());
        v["newField"] = json!({"x": 1});
        assert!(RawPrompt::parse(&v).is_ok());
    }

    #[test]
    fn malformed_prompts_are_invalid_input() {
        let key = PrivateKey::generate();
        for breaker in [
            "sessionId",
            "flow",
            "merchantOcid",
            "order",
            "signature",
            "expiresAt",
        ] {
            let mut v = prompt_json(&key, order());
            v.as_object_mut().unwrap().remove(breaker);
            assert!(
                matches!(RawPrompt::parse(&v), Err(WalletError::InvalidInput { .. })),
                "{breaker}"
            );
        }
        let mut v = prompt_json(&key, order());
        v["sessionId"] = json!("../../etc");
        assert!(RawPrompt::parse(&v).is_err());
    }
}
