//! Paying a person: `GET /app/receive` (the account's own user OCID and its receive QR),
//! the person answer of `POST /app/scan`, `POST /app/transfers` (a prompt to pay a user OCID)
//! and the `recipient` block of a transfer prompt (`docs/app-api.md` §3.8, §3.16–§3.17).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{first_unknown, KnownFields, Prompt};

/// `GET /app/receive` answer: the account's user OCID (allocated on the first call, the same
/// ever after) and the QR that lets another wallet pay it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiveResponse {
    /// The account's user OCID.
    pub ocid: u64,
    /// The OCID of the payment gateway that holds the account.
    pub gateway: u64,
    /// The account holder's display name; `null` when the account has none.
    #[serde(default)]
    pub name: Option<String>,
    /// The exact QR text to render:
    /// `{"type":"ocid_transfer","ocid":<user OCID>,"gateway":<PG OCID>}`.
    pub qr: String,
}

/// The person answer of `POST /app/scan` (`{"kind":"person","person":{…}}`): who a scanned
/// end-user OCID QR or person URI pays. Not a prompt yet: the app asks for (or shows) the
/// amount, then calls `POST /app/transfers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonView {
    /// The recipient's user OCID.
    pub ocid: u64,
    /// The OCID of the recipient's payment gateway.
    pub gateway: u64,
    /// The recipient gateway's name from its verified metadata; `null` when it has none.
    #[serde(default)]
    pub gateway_name: Option<String>,
    /// The recipient's name, only when the recipient is a user of this gateway; else `null`.
    #[serde(default)]
    pub name: Option<String>,
    /// The amount the URI asks for, exact decimal (always with `currency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// The URI's ISO 4217 currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The URI's memo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// The recipient of a transfer: `{ocid, gateway}` of `POST /app/transfers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferTo {
    /// The recipient's user OCID.
    pub ocid: u64,
    /// The OCID of the recipient's payment gateway.
    pub gateway: u64,
}

/// `POST /app/transfers` body: pay `amount` `currency` to a person. The answer is a
/// [`TransferResponse`]; the prompt is then confirmed or declined like any other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferRequest {
    /// Who is paid.
    pub to: TransferTo,
    /// Exact decimal string, positive, valid for `currency`.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// A note for the recipient (1–256 bytes, no control or bidirectional-formatting
    /// characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

impl KnownFields for TransferRequest {
    const FIELDS: &'static [&'static str] = &["to", "amount", "currency", "memo"];

    fn unknown_field(body: &Value) -> Option<String> {
        first_unknown(body, Self::FIELDS, "")
            .or_else(|| first_unknown(body.get("to")?, &["ocid", "gateway"], "to."))
    }
}

/// `POST /app/transfers` answer: the prompt of the new `transfer` session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferResponse {
    /// The prompt to confirm or decline (flow `transfer`, with `recipient`).
    pub prompt: Prompt,
}

/// The `recipient` block of a prompt of flow `transfer`: who the user is paying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    /// The recipient's user OCID (= the prompt's `merchantOcid` and the order's `ocid`).
    pub ocid: u64,
    /// The recipient's name when their gateway is this one; else `null`.
    #[serde(default)]
    pub name: Option<String>,
    /// The OCID of the recipient's payment gateway.
    pub gateway: u64,
    /// The recipient gateway's name from its verified metadata; `null` when it has none.
    #[serde(default)]
    pub gateway_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Flow, PaymentRequestEventType, ScanResponse};
    use serde_json::json;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(value: Value) -> T {
        let typed: T = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), value);
        typed
    }

    #[test]
    fn receive_answer_round_trips_with_a_null_name() {
        let r: ReceiveResponse = round_trip(json!({
            "ocid": 200001, "gateway": 200, "name": null,
            "qr": "{\"type\":\"ocid_transfer\",\"ocid\":200001,\"gateway\":200}"
        }));
        assert_eq!((r.ocid, r.gateway, r.name), (200001, 200, None));
        let named: ReceiveResponse =
            round_trip(json!({"ocid": 1, "gateway": 2, "name": "Bob", "qr": "q"}));
        assert_eq!(named.name.as_deref(), Some("Bob"));
        let e = serde_json::from_value::<ReceiveResponse>(json!({"ocid": 1, "gateway": 2}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `qr`"), "{e}");
    }

    #[test]
    fn transfer_request_round_trips_and_names_unknown_fields() {
        let body = json!({"to": {"ocid": 200001, "gateway": 200}, "amount": "5.00",
            "currency": "USD", "memo": "lunch"});
        let r: TransferRequest = round_trip(body.clone());
        assert_eq!(
            r.to,
            TransferTo {
                ocid: 200001,
                gateway: 200
            }
        );
        assert_eq!(r.memo.as_deref(), Some("lunch"));
        let plain: TransferRequest =
            round_trip(json!({"to": {"ocid": 1, "gateway": 2}, "amount": "1", "currency": "UGX"}));
        assert_eq!(plain.memo, None);
        assert_eq!(TransferRequest::unknown_field(&body), None);
        let mut extra = body.clone();
        extra["tip"] = json!(1);
        assert_eq!(
            TransferRequest::unknown_field(&extra).as_deref(),
            Some("tip")
        );
        let mut nested = body;
        nested["to"]["name"] = json!("Bob");
        assert_eq!(
            TransferRequest::unknown_field(&nested).as_deref(),
            Some("to.name")
        );
        let e = serde_json::from_value::<TransferRequest>(
            json!({"to": {"ocid": 1}, "amount": "1", "currency": "USD"}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("missing field `gateway`"), "{e}");
    }

    #[test]
    fn a_person_scan_answer_round_trips() {
        let answer = json!({"kind": "person", "person": {"ocid": 200001, "gateway": 200,
            "gatewayName": "Wallet Co", "name": null, "amount": "5.00", "currency": "USD",
            "memo": "lunch"}});
        let ScanResponse::Person { person } = round_trip(answer) else {
            panic!("not a person")
        };
        assert_eq!(person.amount.as_deref(), Some("5.00"));
        assert_eq!(person.gateway_name.as_deref(), Some("Wallet Co"));
        let bare: ScanResponse = round_trip(json!({"kind": "person", "person": {"ocid": 7,
            "gateway": 200, "gatewayName": null, "name": "Ann"}}));
        let ScanResponse::Person { person } = bare else {
            panic!("not a person")
        };
        assert_eq!((person.name.as_deref(), person.amount), (Some("Ann"), None));
        let e = serde_json::from_value::<ScanResponse>(json!({"kind": "person"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `person`"), "{e}");
    }

    #[test]
    fn a_transfer_prompt_carries_its_recipient() {
        let prompt = json!({
            "type": "payment_request", "sessionId": "0123456789abcdef0123456789abcdef",
            "flow": "transfer", "merchantOcid": 200001, "merchantName": "Bob",
            "order": {"id": "p2p_0123456789abcdef0123456789abcdef", "ocid": 200001,
                "amount": "5.00", "currency": "USD", "memo": "lunch",
                "createdAt": 1706400000, "expiresAt": 1706400300},
            "signature": "sig", "orderHash": "hash", "expiresAt": 1706400300,
            "recipient": {"ocid": 200001, "name": "Bob", "gateway": 200, "gatewayName": null}
        });
        let answer: TransferResponse = round_trip(json!({ "prompt": prompt }));
        let p = answer.prompt;
        assert_eq!(p.flow, Flow::Transfer);
        assert_eq!(p.event_type, PaymentRequestEventType::PaymentRequest);
        let r = p.recipient.expect("recipient");
        assert_eq!(
            (r.ocid, r.gateway, r.name.as_deref()),
            (200001, 200, Some("Bob"))
        );
        assert_eq!(r.gateway_name, None);
        // A merchant prompt has no `recipient` key at all.
        let mut merchant = answer_without_recipient();
        let typed: Prompt = serde_json::from_value(merchant.take()).unwrap();
        assert_eq!(typed.recipient, None);
        assert!(serde_json::to_value(&typed)
            .unwrap()
            .get("recipient")
            .is_none());
    }

    fn answer_without_recipient() -> Value {
        json!({
            "type": "payment_request", "sessionId": "s", "flow": "merchant_qr",
            "merchantOcid": 500, "order": {}, "signature": "sig", "orderHash": "h",
            "expiresAt": 1
        })
    }

    #[test]
    fn the_new_flows_have_wire_names() {
        for (flow, name) in [(Flow::Transfer, "transfer"), (Flow::Received, "received")] {
            assert_eq!(flow.as_str(), name);
            assert_eq!(Flow::parse(name), Some(flow));
            assert_eq!(serde_json::to_value(flow).unwrap(), json!(name));
            assert_eq!(serde_json::from_value::<Flow>(json!(name)).unwrap(), flow);
        }
    }
}
