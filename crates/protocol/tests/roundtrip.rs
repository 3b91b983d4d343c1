//! Sign → serialise → parse → verify round trips for every signed type, as two independent
//! parties would do them over the wire, and a tampered copy of each that must fail.

use opencharge_protocol::auth::RequestAuth;
use opencharge_protocol::keys::{PrivateKey, VerifyOptions};
use opencharge_protocol::metadata::{Metadata, MetadataConfig, Settlement};
use opencharge_protocol::signing::{
    sign_object, verify_config, verify_order, verify_proof, OrderVerifyMode, SignatureStrength,
};
use opencharge_protocol::types::{from_json, Order, OrderItem, Proof, ProofParty, SignedProof};
use opencharge_protocol::ProtocolError;
use serde_json::{json, Map, Value};

fn order() -> Order {
    let item = |id: &str, name: &str, quantity: u64, price: &str| OrderItem {
        id: id.into(),
        name: name.into(),
        quantity,
        price: price.into(),
        extra: Map::new(),
    };
    Order {
        id: "ord_1".into(),
        ocid: 500,
        reference: Some("POS-001".into()),
        amount: "25.00".into(),
        currency: "USD".into(),
        items: Some(vec![
            item("i1", "Coffee ☕", 2, "5.00"),
            item("i2", "Sandwich \"club\"", 1, "15.00"),
        ]),
        memo: Some("Order #42\nthanks".into()),
        created_at: 1_706_313_600,
        expires_at: Some(1_706_400_000),
        accepts: Some(vec![100, 200]),
        extra: Map::new(),
    }
}

#[test]
fn order_roundtrip_over_the_wire_and_nested_tamper() {
    let key = PrivateKey::generate();
    let signature = sign_object(&key, &order()).unwrap();
    let wire = serde_json::to_vec(&json!({"order": order(), "signature": signature})).unwrap();

    let received: Value = serde_json::from_slice(&wire).unwrap();
    let typed: Order = from_json(&serde_json::to_vec(&received["order"]).unwrap()).unwrap();
    assert_eq!(typed, order());
    let sig = received["signature"].as_str().unwrap();
    let pk = key.public_key();
    assert_eq!(
        verify_order(
            &received["order"],
            sig,
            500,
            &pk,
            OrderVerifyMode::Strict,
            VerifyOptions::STRICT
        ),
        Ok(SignatureStrength::Full)
    );

    let mut tampered = received["order"].clone();
    tampered["items"][1]["price"] = json!("1.00");
    assert_eq!(
        verify_order(
            &tampered,
            sig,
            500,
            &pk,
            OrderVerifyMode::Strict,
            VerifyOptions::STRICT
        ),
        Err(ProtocolError::BadSignature)
    );
}

#[test]
fn unknown_order_fields_stay_signed_through_a_typed_round_trip() {
    let key = PrivateKey::generate();
    let mut raw = serde_json::to_value(order()).unwrap();
    raw["x-loyalty"] = json!({"points": 12});
    let signature = sign_object(&key, &raw).unwrap();
    let typed: Order = from_json(&serde_json::to_vec(&raw).unwrap()).unwrap();
    let again = serde_json::to_value(&typed).unwrap();
    verify_order(
        &again,
        &signature,
        500,
        &key.public_key(),
        OrderVerifyMode::Strict,
        VerifyOptions::STRICT,
    )
    .unwrap();
}

#[test]
fn proof_roundtrip_and_tamper_of_nested_party() {
    let key = PrivateKey::generate();
    let proof = Proof {
        txid: "tx_1".into(),
        issuer: 200,
        from: ProofParty::new(200, Some("acct_9".into())),
        to: ProofParty::new(500, Some("ord_1".into())),
        amount: "25.00".into(),
        currency: "USD".into(),
        timestamp: 1_706_313_700,
        memo: None,
        extra: Map::new(),
    };
    let signed = SignedProof {
        signature: sign_object(&key, &proof).unwrap(),
        proof,
    };
    let wire = serde_json::to_string(&signed).unwrap();
    let received: Value = serde_json::from_str(&wire).unwrap();
    let typed: SignedProof = from_json(wire.as_bytes()).unwrap();
    assert_eq!(typed, signed);
    let pk = key.public_key();
    verify_proof(
        &received["proof"],
        &typed.signature,
        200,
        &pk,
        VerifyOptions::STRICT,
    )
    .unwrap();

    let mut tampered = received["proof"].clone();
    tampered["to"]["reference"] = json!("ord_2");
    assert_eq!(
        verify_proof(&tampered, &typed.signature, 200, &pk, VerifyOptions::STRICT),
        Err(ProtocolError::BadSignature)
    );
}

#[test]
fn metadata_roundtrip_and_tamper_of_nested_settlement() {
    let key = PrivateKey::generate();
    let config = MetadataConfig {
        public_key: key.public_key().to_hex(),
        endpoint: Some("https://pg.example/opencharge".into()),
        capabilities: vec!["checkout.create".into(), "orders.create.session".into()],
        settlement: Some(Settlement {
            currencies: vec!["USD".into()],
            accepts: vec![200, 100],
        }),
        extra: Map::new(),
    };
    let metadata = Metadata {
        opencharge: "0.1".into(),
        name: "PG".into(),
        profile: Some("A gateway".into()),
        icon: None,
        signature: sign_object(&key, &config).unwrap(),
        config,
        kyc: None,
        contact: None,
    };
    let wire = serde_json::to_vec(&metadata).unwrap();
    let parsed = Metadata::parse(&wire).unwrap();
    let (raw_config, signature) = parsed.signed_config().unwrap();
    assert_eq!(
        verify_config(raw_config, signature, VerifyOptions::STRICT).unwrap(),
        key.public_key()
    );

    let mut tampered = raw_config.clone();
    tampered["settlement"]["accepts"] = json!([666]);
    assert_eq!(
        verify_config(&tampered, signature, VerifyOptions::STRICT),
        Err(ProtocolError::BadSignature)
    );
}

#[test]
fn request_headers_roundtrip_through_a_header_map() {
    let key = PrivateKey::generate();
    let body = br#"{"order":{"id":"x"}}"#;
    let auth = RequestAuth::sign(
        &key,
        500,
        "POST",
        "/opencharge/orders/create/abc",
        body,
        1_000,
        "req_abc",
    )
    .unwrap();
    let headers: Vec<(String, String)> = auth
        .headers()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| *k == name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    };
    let parsed = RequestAuth::from_headers(get).unwrap();
    parsed
        .verify(
            &key.public_key(),
            "POST",
            "/opencharge/orders/create/abc",
            body,
            1_100,
            VerifyOptions::STRICT,
        )
        .unwrap();
    assert!(parsed
        .verify(
            &key.public_key(),
            "POST",
            "/opencharge/orders/create/abd",
            body,
            1_100,
            VerifyOptions::STRICT
        )
        .is_err());
}
