//! The wallet app API document (`docs/app-api.md`) against `opencharge_protocol::app`: every
//! example JSON block must name its type in a `<!-- type: app::… -->` marker and round-trip
//! through it unchanged; dropping a required field must give an error naming it, and an
//! unknown extra field must be accepted. Also the §2.6 test vectors, checked with the types.

use opencharge_protocol::app::{self, KnownFields};
use opencharge_protocol::canonical::canonicalize;
use opencharge_protocol::keys::{PrivateKey, PublicKey, VerifyOptions};
use opencharge_protocol::signing::object_hash;
use opencharge_protocol::types::Order;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

const DOC: &str = include_str!("../../../docs/app-api.md");

/// One example block of the document.
struct Example {
    /// 1-based line of the opening fence.
    line: usize,
    /// The type named by the marker above it (`app::Prompt` → `Prompt`).
    type_name: Option<String>,
    /// The JSON text.
    json: String,
}

/// Every ```json block of the document with the marker on the line before its fence.
fn examples() -> Vec<Example> {
    let lines: Vec<&str> = DOC.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "```json" {
            let type_name = i
                .checked_sub(1)
                .map(|p| lines[p].trim())
                .and_then(|l| l.strip_prefix("<!-- type: app::"))
                .and_then(|l| l.strip_suffix(" -->"))
                .map(str::to_string);
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && lines[end].trim() != "```" {
                end += 1;
            }
            out.push(Example {
                line: i + 1,
                type_name,
                json: lines[start..end].join("\n"),
            });
            i = end;
        }
        i += 1;
    }
    out
}

/// Parses `value` as `T` and serialises it back.
fn through<T: Serialize + DeserializeOwned>(value: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// [`through`] for the type named `name`; `None` for a name this test does not know.
fn round_trip(name: &str, value: &Value) -> Option<Result<Value, String>> {
    Some(match name {
        "ErrorEnvelope" => through::<app::ErrorEnvelope>(value),
        "Prompt" => through::<app::Prompt>(value),
        "RegisterDeviceRequest" => through::<app::RegisterDeviceRequest>(value),
        "RotateDeviceRequest" => through::<app::RotateDeviceRequest>(value),
        "DeviceResponse" => through::<app::DeviceResponse>(value),
        "CreateSessionResponse" => through::<app::CreateSessionResponse>(value),
        "PromptsResponse" => through::<app::PromptsResponse>(value),
        "ConfirmRequest" => through::<app::ConfirmRequest>(value),
        "ConfirmResponse" => through::<app::ConfirmResponse>(value),
        "DeclineRequest" => through::<app::DeclineRequest>(value),
        "DeclineResponse" => through::<app::DeclineResponse>(value),
        "ScanRequest" => through::<app::ScanRequest>(value),
        "ScanResponse" => through::<app::ScanResponse>(value),
        "InventoryOrderRequest" => through::<app::InventoryOrderRequest>(value),
        "MerchantOrderCreateRequest" => through::<app::MerchantOrderCreateRequest>(value),
        "HistoryResponse" => through::<app::HistoryResponse>(value),
        "Receipt" => through::<app::Receipt>(value),
        "BalanceResponse" => through::<app::BalanceResponse>(value),
        "PaymentStatusEvent" => through::<app::PaymentStatusEvent>(value),
        "PushTokenRequest" => through::<app::PushTokenRequest>(value),
        "PushTokenResponse" => through::<app::PushTokenResponse>(value),
        "PushTokenCleared" => through::<app::PushTokenCleared>(value),
        "PushWakeUp" => through::<app::PushWakeUp>(value),
        "ReceiveResponse" => through::<app::ReceiveResponse>(value),
        "TransferRequest" => through::<app::TransferRequest>(value),
        "TransferResponse" => through::<app::TransferResponse>(value),
        _ => return None,
    })
}

#[test]
fn every_example_is_marked_and_round_trips_through_its_type() {
    let examples = examples();
    assert!(examples.len() >= 25, "found {} examples", examples.len());
    let mut names = std::collections::BTreeSet::new();
    for ex in &examples {
        let name = ex.type_name.as_deref().unwrap_or_else(|| {
            panic!(
                "docs/app-api.md line {}: a ```json block without a `<!-- type: app::… -->` marker on the line before",
                ex.line
            )
        });
        let value: Value = serde_json::from_str(&ex.json)
            .unwrap_or_else(|e| panic!("line {}: not JSON: {e}", ex.line));
        let back = round_trip(name, &value)
            .unwrap_or_else(|| panic!("line {}: unknown type app::{name}", ex.line))
            .unwrap_or_else(|e| panic!("line {}: app::{name} refuses the example: {e}", ex.line));
        assert_eq!(
            back, value,
            "line {}: app::{name} changes the example",
            ex.line
        );
        names.insert(name.to_string());
    }
    // Every app-API body type has at least one example.
    for name in [
        "ErrorEnvelope",
        "Prompt",
        "RegisterDeviceRequest",
        "RotateDeviceRequest",
        "DeviceResponse",
        "CreateSessionResponse",
        "PromptsResponse",
        "ConfirmRequest",
        "ConfirmResponse",
        "DeclineRequest",
        "DeclineResponse",
        "ScanRequest",
        "ScanResponse",
        "InventoryOrderRequest",
        "HistoryResponse",
        "Receipt",
        "BalanceResponse",
        "PaymentStatusEvent",
        "PushTokenRequest",
        "PushTokenResponse",
        "PushTokenCleared",
        "PushWakeUp",
        "ReceiveResponse",
        "TransferRequest",
        "TransferResponse",
    ] {
        assert!(names.contains(name), "no example of app::{name}");
    }
}

#[test]
fn a_missing_required_field_is_named_and_unknown_fields_are_accepted() {
    let mut required_seen = 0;
    for ex in examples() {
        let name = ex.type_name.expect("checked by the other test");
        let value: Value = serde_json::from_str(&ex.json).unwrap();
        let Value::Object(map) = &value else {
            continue;
        };
        // An unknown extra field, at the top and inside every nested object, is accepted.
        let mut extended = value.clone();
        add_unknown_everywhere(&mut extended);
        round_trip(&name, &extended).unwrap().unwrap_or_else(|e| {
            panic!("line {}: app::{name} refuses unknown fields: {e}", ex.line)
        });
        // Dropping each top-level field: either it was optional, or the error names it.
        for key in map.keys() {
            let mut without = value.clone();
            without.as_object_mut().unwrap().remove(key);
            if let Err(e) = round_trip(&name, &without).unwrap() {
                required_seen += 1;
                assert!(
                    e.contains(&format!("missing field `{key}`")),
                    "line {}: app::{name} without `{key}`: {e}",
                    ex.line
                );
            }
        }
    }
    assert!(
        required_seen > 40,
        "only {required_seen} required fields checked"
    );
}

/// Adds `"zzUnknown": true` to every object inside `value` except signed objects (`order`,
/// `proof`), whose extra fields would still be accepted but are not the point here.
fn add_unknown_everywhere(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if key != "order" && key != "proof" && key != "details" {
                    add_unknown_everywhere(inner);
                }
            }
            map.insert("zzUnknown".into(), Value::Bool(true));
        }
        Value::Array(items) => items.iter_mut().for_each(add_unknown_everywhere),
        _ => {}
    }
}

#[test]
fn missing_nested_fields_are_named() {
    let ex = examples();
    let confirm = ex
        .iter()
        .find(|e| e.type_name.as_deref() == Some("ConfirmRequest"))
        .unwrap();
    let mut v: Value = serde_json::from_str(&confirm.json).unwrap();
    v["consent"].as_object_mut().unwrap().remove("orderHash");
    let e = serde_json::from_value::<app::ConfirmRequest>(v)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing field `orderHash`"), "{e}");

    let e = serde_json::from_value::<app::InventoryOrderRequest>(json!({
        "merchantOcid": 500, "inventoryUrl": "https://m.example/inventory", "items": [{"id": "x"}]
    }))
    .unwrap_err()
    .to_string();
    assert!(e.contains("missing field `quantity`"), "{e}");

    let e = serde_json::from_value::<app::ScanResponse>(
        json!({"kind": "inventory", "merchantOcid": 500, "items": []}),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("missing field `inventoryUrl`"), "{e}");
}

#[test]
fn tags_and_enums_are_checked() {
    for (bad, what) in [
        (json!({"kind": "coupon"}), "unknown variant `coupon`"),
        // Fields are read in order: a broken `prompt` before the missing `kind` would be
        // reported first, so this object has none.
        (json!({"merchantOcid": 500}), "missing field `kind`"),
    ] {
        let e = serde_json::from_value::<app::ScanResponse>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains(what), "{e}");
    }
    let e = serde_json::from_value::<app::PaymentStatusEvent>(
        json!({"type": "payment_request", "sessionId": "s", "status": "paid"}),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("payment_request"), "{e}");
    let e = serde_json::from_value::<app::PaymentStatusEvent>(
        json!({"type": "payment_status", "sessionId": "s", "status": "refunded"}),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown variant `refunded`"), "{e}");
}

#[test]
fn known_fields_flag_unknown_request_fields() {
    let ok = json!({"idempotencyKey": "k", "consent": {"sessionId": "s", "orderHash": "h", "amount": "1",
        "currency": "USD", "merchantOcid": 1, "deviceId": "d", "timestamp": 1}, "signature": "x"});
    assert_eq!(app::ConfirmRequest::unknown_field(&ok), None);
    let mut tip = ok.clone();
    tip["consent"]["tip"] = json!("1.00");
    assert_eq!(
        app::ConfirmRequest::unknown_field(&tip).as_deref(),
        Some("consent.tip")
    );
    let mut top = ok;
    top["extra"] = json!(1);
    assert_eq!(
        app::ConfirmRequest::unknown_field(&top).as_deref(),
        Some("extra")
    );
    let order = json!({"merchantOcid": 1, "inventoryUrl": "u", "items": [{"id": "a", "quantity": 1}, {"id": "b", "quantity": 1, "note": "x"}]});
    assert_eq!(
        app::InventoryOrderRequest::unknown_field(&order).as_deref(),
        Some("items[1].note")
    );
    assert_eq!(app::ScanRequest::unknown_field(&json!({"text": "t"})), None);
    assert_eq!(
        app::DeclineRequest::unknown_field(&json!({"why": "t"})).as_deref(),
        Some("why")
    );
    assert_eq!(
        app::RegisterDeviceRequest::unknown_field(&json!({"publicKey": "", "x": 1})).as_deref(),
        Some("x")
    );
    assert_eq!(
        app::RotateDeviceRequest::unknown_field(&json!({"newPublicKey": ""})),
        None
    );
    // The field lists match the serialised names of the types.
    let register: app::RegisterDeviceRequest = serde_json::from_value(json!({
        "enrollmentCode": "c", "publicKey": "k", "timestamp": 1, "signature": "s"}))
    .unwrap();
    assert_eq!(keys(&register), sorted(app::RegisterDeviceRequest::FIELDS));
    let rotate = app::RotateDeviceRequest {
        new_public_key: "k".into(),
        new_key_signature: "s".into(),
    };
    assert_eq!(keys(&rotate), sorted(app::RotateDeviceRequest::FIELDS));
    let inventory = app::InventoryOrderRequest {
        merchant_ocid: 1,
        inventory_url: "u".into(),
        items: vec![],
        currency: Some("USD".into()),
    };
    assert_eq!(keys(&inventory), sorted(app::InventoryOrderRequest::FIELDS));
    let decline = app::DeclineRequest {
        reason: Some("r".into()),
    };
    assert_eq!(keys(&decline), sorted(app::DeclineRequest::FIELDS));
    let scan = app::ScanRequest { text: "t".into() };
    assert_eq!(keys(&scan), sorted(app::ScanRequest::FIELDS));
}

fn keys<T: Serialize>(value: &T) -> Vec<String> {
    let mut keys: Vec<String> = serde_json::to_value(value)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn sorted(fields: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

#[test]
fn error_details_examples_parse_as_their_detail_types() {
    let mismatch = json!({"field": "amount", "expected": "500.00", "got": "2.50"});
    let d: app::ConsentMismatchDetails = serde_json::from_value(mismatch.clone()).unwrap();
    assert_eq!(serde_json::to_value(&d).unwrap(), mismatch);
    let d: app::KindDetails = serde_json::from_value(json!({"kind": "ocid_uri"})).unwrap();
    assert_eq!(d.kind, "ocid_uri");
    let s: app::StateDetails =
        serde_json::from_value(json!({"status": "declined", "redirectUrl": "https://x/c"}))
            .unwrap();
    assert_eq!(s.status, app::SessionStatus::Declined);
    assert_eq!(
        serde_json::to_value(app::ConsentTimestampDetails {
            field: "timestamp".into(),
            server_time: 5
        })
        .unwrap(),
        json!({"field": "timestamp", "serverTime": 5})
    );
    assert_eq!(
        serde_json::to_value(app::MerchantStatusDetails {
            merchant_status: 404
        })
        .unwrap(),
        json!({"merchantStatus": 404})
    );
    assert_eq!(
        serde_json::to_value(app::RedirectDetails::default()).unwrap(),
        json!({})
    );
    let e = serde_json::from_value::<app::ConsentMismatchDetails>(json!({"field": "amount"}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing field `expected`"), "{e}");
}

/// The worked examples of §2.6, read through the typed bodies of the document's examples.
#[test]
fn section_2_6_vectors_hold_for_the_typed_examples() {
    let ex = examples();
    let of = |name: &str| -> Value {
        serde_json::from_str(
            &ex.iter()
                .find(|e| e.type_name.as_deref() == Some(name))
                .unwrap()
                .json,
        )
        .unwrap()
    };
    let device = PrivateKey::from_hex(&"11".repeat(32)).unwrap();
    let public_hex = device.public_key().to_hex();

    // Registration.
    let register: app::RegisterDeviceRequest =
        serde_json::from_value(of("RegisterDeviceRequest")).unwrap();
    assert_eq!(register.public_key, public_hex);
    let message = format!(
        "opencharge-device-registration\n{}\n{}\n{}",
        register.public_key, register.enrollment_code, register.timestamp
    );
    PublicKey::from_hex(&register.public_key)
        .unwrap()
        .verify_message(
            message.as_bytes(),
            &register.signature,
            VerifyOptions::STRICT,
        )
        .unwrap();
    let registered: app::DeviceResponse = serde_json::from_value(of("DeviceResponse")).unwrap();
    assert_eq!(registered.device_id, "dev_762b3e7f5a4fb0169de41c7c9fddc314");

    // The prompt's order hash, and the consent bound to it.
    let prompt: app::Prompt = serde_json::from_value(of("Prompt")).unwrap();
    assert_eq!(object_hash(&prompt.order).unwrap(), prompt.order_hash);
    let order: Order = serde_json::from_value(prompt.order.clone()).unwrap();
    let confirm: app::ConfirmRequest = serde_json::from_value(of("ConfirmRequest")).unwrap();
    let consent = &confirm.consent;
    assert_eq!(consent.order_hash, prompt.order_hash);
    assert_eq!(consent.session_id, prompt.session_id);
    assert_eq!(consent.amount, order.amount);
    assert_eq!(consent.currency, order.currency);
    assert_eq!(consent.merchant_ocid, order.ocid);
    assert_eq!(consent.device_id, registered.device_id);
    let canonical = canonicalize(&serde_json::to_value(consent).unwrap()).unwrap();
    assert_eq!(
        canonical,
        r#"{"amount":"25.00","currency":"USD","deviceId":"dev_762b3e7f5a4fb0169de41c7c9fddc314","merchantOcid":500,"orderHash":"b0d9623ba8cb2ee5b1936791491c3ce11c858c7e4dd850c94b1117d6d750a495","sessionId":"13c8f6878f55327769736d2129b2d9cb","timestamp":1706500030}"#
    );
    device
        .public_key()
        .verify_message(
            canonical.as_bytes(),
            &confirm.signature,
            VerifyOptions::STRICT,
        )
        .unwrap();

    // Rotation.
    let rotate: app::RotateDeviceRequest =
        serde_json::from_value(of("RotateDeviceRequest")).unwrap();
    let next = PrivateKey::from_hex(&"22".repeat(32)).unwrap();
    assert_eq!(rotate.new_public_key, next.public_key().to_hex());
    let message = format!(
        "opencharge-device-rotation\n{}\n{}",
        registered.device_id, rotate.new_public_key
    );
    next.public_key()
        .verify_message(
            message.as_bytes(),
            &rotate.new_key_signature,
            VerifyOptions::STRICT,
        )
        .unwrap();

    // The confirm answer's proof reads as the protocol's proof and pays that order.
    let paid: app::ConfirmResponse = serde_json::from_value(of("ConfirmResponse")).unwrap();
    let proof = paid.proof.parsed().unwrap();
    assert_eq!(proof.txid, paid.txid);
    assert_eq!(proof.to.ocid, order.ocid);
    assert_eq!(proof.to.reference.as_deref(), Some(order.id.as_str()));
    assert_eq!(proof.amount, order.amount);
}
