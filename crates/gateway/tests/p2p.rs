//! Paying a person at the HTTP level: `GET /app/receive`, the person answers of `POST
//! /app/scan`, `POST /app/transfers` with its errors, confirming and declining transfer
//! prompts (internal: both people on one gateway; external: two gateways holding reserves at
//! each other, [`PeerNetworks`]), the recipient's `received` receipt and event, and
//! `/transfer/create` to our user OCIDs. Real gateways on loopback, real databases (SQLite, or
//! PostgreSQL with `OPENCHARGE_TEST_BACKEND=postgres`), real device keys and signatures.

use std::time::Duration;

use opencharge_gateway::config::UserOcidRange;
use opencharge_gateway::store::Store;
use opencharge_protocol::keys::{PublicKey, VerifyOptions};
use opencharge_protocol::signing::{object_hash, sign_object, verify_object, verify_proof};
use opencharge_testkit::p2p::{PeerNetworks, GATEWAY_B_OCID};
use opencharge_testkit::sse::SseReader;
use opencharge_testkit::{merchant_metadata, signed_request, AppDevice, Network, GATEWAY_OCID};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// A network with one gateway (OCID 200, user OCIDs 200001–200999) and no merchants.
async fn alone() -> Network {
    Network::builder().merchants(0).start().await.unwrap()
}

/// `GET /app/receive` of `device`: (user OCID, whole answer).
async fn receive(net: &Network, device: &AppDevice) -> (u64, Value) {
    let (status, body) = net
        .app_call(device, "GET", "/app/receive", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    (body["ocid"].as_u64().unwrap(), body)
}

/// The USD balance of `device`'s account, as the app API shows it.
async fn usd(net: &Network, device: &AppDevice) -> String {
    let (status, body) = net
        .app_call(device, "GET", "/app/balance", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    opencharge_testkit::usd_amount(&body)
}

/// `POST /app/transfers`.
async fn transfer(net: &Network, device: &AppDevice, body: Value) -> (u16, Value) {
    net.app_call(device, "POST", "/app/transfers", Some(&body))
        .await
        .unwrap()
}

/// Confirms `prompt` with a consent signed by `device`, under idempotency key `key`.
async fn confirm(net: &Network, device: &AppDevice, prompt: &Value, key: &str) -> (u16, Value) {
    let order = &prompt["order"];
    let consent = json!({
        "sessionId": prompt["sessionId"],
        "orderHash": object_hash(order).unwrap(),
        "amount": order["amount"],
        "currency": order["currency"],
        "merchantOcid": order["ocid"],
        "deviceId": device.device_id,
        "timestamp": net.now(),
    });
    let signature = sign_object(&device.key, &consent).unwrap();
    let id = prompt["sessionId"].as_str().unwrap();
    net.app_call(
        device,
        "POST",
        &format!("/app/sessions/{id}/confirm"),
        Some(&json!({"idempotencyKey": key, "consent": consent, "signature": signature})),
    )
    .await
    .unwrap()
}

/// The device's receipts, newest first.
async fn history(net: &Network, device: &AppDevice) -> Vec<Value> {
    let (status, body) = net
        .app_call(device, "GET", "/app/history", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body["receipts"].as_array().unwrap().clone()
}

/// Opens `device`'s event stream.
async fn events(net: &Network, device: &AppDevice) -> SseReader {
    let url = format!("{}/app/events", net.endpoint());
    let response = device
        .request(&net.http, "GET", &url, Vec::new(), net.now())
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    SseReader::new(response)
}

/// The gateway's public key from its own metadata.
async fn gateway_key(net: &Network) -> PublicKey {
    let metadata: Value = net
        .http
        .get(format!("{}/metadata.json", net.endpoint()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    PublicKey::from_hex(metadata["config"]["publicKey"].as_str().unwrap()).unwrap()
}

/// The balance of any account (reserves, clearing) straight from the gateway's store.
async fn stored_balance(store: &dyn Store, account: &str, currency: &str) -> i64 {
    store
        .balances(account)
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.currency == currency)
        .map_or(0, |b| b.minor)
}

#[tokio::test]
async fn receive_allocates_one_ocid_per_account_even_to_concurrent_first_calls() {
    let net = alone().await;
    let bob = net.app_device("Bob", None).await.unwrap();
    let calls = (0..8).map(|_| net.app_call(&bob, "GET", "/app/receive", None));
    let answers = futures_util::future::join_all(calls).await;
    let mut ocids = std::collections::BTreeSet::new();
    for answer in answers {
        let (status, body) = answer.unwrap();
        assert_eq!(status, 200, "{body}");
        ocids.insert(body["ocid"].as_u64().unwrap());
    }
    assert_eq!(ocids.len(), 1, "concurrent first calls gave {ocids:?}");
    let (ocid, body) = receive(&net, &bob).await;
    assert!(ocids.contains(&ocid));
    assert!((200_001..=200_999).contains(&ocid), "{ocid}");
    assert_eq!(
        body,
        json!({
            "ocid": ocid, "gateway": GATEWAY_OCID, "name": "Bob",
            "qr": format!("{{\"type\":\"ocid_transfer\",\"ocid\":{ocid},\"gateway\":200}}"),
        })
    );
    // Another account gets another OCID, and a store confirms who holds which.
    let ann = net.app_device("Ann", None).await.unwrap();
    let (other, _) = receive(&net, &ann).await;
    assert_ne!(other, ocid);
    let store = net.gateway_store().await.unwrap();
    assert_eq!(
        store.user_ocid_account(ocid).await.unwrap().as_deref(),
        Some(bob.account_id.as_str())
    );
    assert_eq!(
        store.account_user_ocid(&ann.account_id).await.unwrap(),
        Some(other)
    );
    net.stop().await;

    // A gateway configured without a block answers 409 and allocates nothing.
    let net = Network::builder()
        .merchants(0)
        .gateway_config(|c| c.user_ocids = None)
        .start()
        .await
        .unwrap();
    let bob = net.app_device("Bob", None).await.unwrap();
    let (status, body) = net
        .app_call(&bob, "GET", "/app/receive", None)
        .await
        .unwrap();
    assert_eq!((status, code(&body)), (409, "CAPABILITY_NOT_SUPPORTED"));
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("set user_ocids"));
    net.stop().await;

    // A block of one: the second account finds it used up.
    let net = Network::builder()
        .merchants(0)
        .gateway_config(|c| {
            c.user_ocids = Some(UserOcidRange {
                first: 200_500,
                last: 200_500,
            })
        })
        .start()
        .await
        .unwrap();
    let first = net.app_device("First", None).await.unwrap();
    assert_eq!(receive(&net, &first).await.0, 200_500);
    let second = net.app_device("Second", None).await.unwrap();
    let (status, body) = net
        .app_call(&second, "GET", "/app/receive", None)
        .await
        .unwrap();
    assert_eq!((status, code(&body)), (409, "CAPABILITY_NOT_SUPPORTED"));
    assert_eq!(receive(&net, &first).await.0, 200_500);
    net.stop().await;
}

#[tokio::test]
async fn scanning_a_receive_qr_or_a_person_uri_shows_the_person() {
    let net = alone().await;
    let bob = net.app_device("Bob", None).await.unwrap();
    let alice = net.app_device("Alice", None).await.unwrap();
    let (ocid, answer) = receive(&net, &bob).await;
    let scan = |text: String| {
        let body = json!({ "text": text });
        let net = &net;
        let alice = &alice;
        async move {
            net.app_call(alice, "POST", "/app/scan", Some(&body))
                .await
                .unwrap()
        }
    };
    let (status, body) = scan(answer["qr"].as_str().unwrap().to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"kind": "person", "person": {"ocid": ocid, "gateway": 200,
            "gatewayName": "Opencharge Reference Gateway (dev)", "name": "Bob"}})
    );
    let uri = format!("opencharge:{ocid}?gateway=200&amount=5.00&currency=USD&memo=lunch%20money");
    let (status, body) = scan(uri).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["person"]["amount"], "5.00");
    assert_eq!(body["person"]["currency"], "USD");
    assert_eq!(body["person"]["memo"], "lunch money");
    assert_eq!(body["person"]["name"], "Bob");

    // A merchant URI (no gateway) is still not payable; unknown gateways and OCIDs are named.
    let (status, body) = scan(format!("opencharge:{ocid}?amount=5.00&currency=USD")).await;
    assert_eq!((status, code(&body)), (422, "CAPABILITY_NOT_SUPPORTED"));
    assert_eq!(body["error"]["details"]["kind"], "ocid_uri");
    let (status, body) =
        scan(r#"{"type":"ocid_transfer","ocid":777001,"gateway":777}"#.to_string()).await;
    assert_eq!((status, code(&body)), (400, "UNKNOWN_OCID"), "{body}");
    let (status, body) =
        scan(r#"{"type":"ocid_transfer","ocid":200998,"gateway":200}"#.into()).await;
    assert_eq!((status, code(&body)), (404, "ACCOUNT_NOT_FOUND"), "{body}");
    net.stop().await;
}

#[tokio::test]
async fn transfer_requests_with_errors_are_refused_and_change_nothing() {
    // A known gateway (300) that is no partner of ours: we cannot settle with it.
    let other = opencharge_protocol::keys::PrivateKey::generate();
    let net = Network::builder()
        .merchants(0)
        .gateway_config(move |c| {
            c.directory
                .push(opencharge_gateway::config::DirectoryEntry {
                    ocid: 300,
                    metadata_url: None,
                    metadata: Some(merchant_metadata(
                        300,
                        "Other Gateway",
                        &other,
                        "http://127.0.0.1:9/opencharge",
                        &[300],
                    )),
                })
        })
        .start()
        .await
        .unwrap();
    let alice = net.app_device("Alice", Some("50.00 USD")).await.unwrap();
    let bob = net.app_device("Bob", None).await.unwrap();
    let (alice_ocid, _) = receive(&net, &alice).await;
    let (bob_ocid, _) = receive(&net, &bob).await;
    let to_bob = json!({"ocid": bob_ocid, "gateway": 200});
    let cases = [
        (
            json!({"to": to_bob, "amount": "5.001", "currency": "USD"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"to": to_bob, "amount": "0", "currency": "USD"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"to": to_bob, "amount": "-1.00", "currency": "USD"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"to": to_bob, "amount": "five", "currency": "USD"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"to": to_bob, "amount": 5, "currency": "USD"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"to": to_bob, "amount": "5.00", "currency": "usd"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"to": to_bob, "amount": "5.00", "currency": "GBP"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"to": to_bob, "amount": "5.00", "currency": "USD", "memo": "a\u{0}b"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"to": to_bob, "amount": "5.00", "currency": "USD", "memo": "\u{202E}evil"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"to": to_bob, "amount": "5.00", "currency": "USD", "memo": ""}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"to": to_bob, "amount": "5.00", "currency": "USD", "tip": "1"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"to": {"ocid": bob_ocid, "gateway": 200, "name": "x"}, "amount": "5.00", "currency": "USD"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"to": {"ocid": alice_ocid, "gateway": 200}, "amount": "5.00", "currency": "USD"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"to": {"ocid": 200_777, "gateway": 200}, "amount": "5.00", "currency": "USD"}),
            404,
            "ACCOUNT_NOT_FOUND",
        ),
        (
            json!({"to": {"ocid": 300_001, "gateway": 300}, "amount": "5.00", "currency": "USD"}),
            400,
            "SETTLEMENT_NOT_SUPPORTED",
        ),
        (
            json!({"to": {"ocid": 777_001, "gateway": 777}, "amount": "5.00", "currency": "USD"}),
            400,
            "UNKNOWN_OCID",
        ),
    ];
    for (body, status, expected) in cases {
        let (got, answer) = transfer(&net, &alice, body.clone()).await;
        assert_eq!((got, code(&answer)), (status, expected), "{body}: {answer}");
        assert!(
            !answer["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{answer}"
        );
    }
    assert!(transfer(
        &net,
        &alice,
        json!({"to": to_bob, "amount": "0", "currency": "USD"})
    )
    .await
    .1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("amount"));
    let (_, answer) = transfer(
        &net,
        &alice,
        json!({"to": {"ocid": alice_ocid, "gateway": 200}, "amount": "5.00", "currency": "USD"}),
    )
    .await;
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("yourself"));
    // Nothing changed: no prompt, no receipt, no money moved.
    let (_, prompts) = net
        .app_call(&alice, "GET", "/app/prompts", None)
        .await
        .unwrap();
    assert_eq!(prompts["prompts"], json!([]));
    assert!(history(&net, &alice).await.is_empty());
    assert!(history(&net, &bob).await.is_empty());
    assert_eq!(usd(&net, &alice).await, "50.00");
    assert_eq!(usd(&net, &bob).await, "0.00");
    net.stop().await;
}

#[tokio::test]
async fn an_internal_transfer_pays_once_and_gives_the_recipient_a_receipt_and_an_event() {
    let net = alone().await;
    let alice = net.app_device("Alice", Some("50.00 USD")).await.unwrap();
    let bob = net.app_device("Bob", None).await.unwrap();
    let (alice_ocid, _) = receive(&net, &alice).await;
    let (bob_ocid, _) = receive(&net, &bob).await;
    let mut bob_events = events(&net, &bob).await;
    let mut alice_events = events(&net, &alice).await;

    let (status, answer) = transfer(
        &net,
        &alice,
        json!({"to": {"ocid": bob_ocid, "gateway": 200}, "amount": "5.00", "currency": "USD", "memo": "lunch"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let prompt = &answer["prompt"];
    assert_eq!(prompt["flow"], "transfer");
    assert_eq!(prompt["merchantOcid"], bob_ocid);
    assert_eq!(prompt["merchantName"], "Bob");
    assert_eq!(
        prompt["recipient"],
        json!({"ocid": bob_ocid, "name": "Bob", "gateway": 200,
            "gatewayName": "Opencharge Reference Gateway (dev)"})
    );
    let order = &prompt["order"];
    assert!(order["id"].as_str().unwrap().starts_with("p2p_"));
    assert_eq!(order["ocid"], bob_ocid);
    assert_eq!(order["memo"], "lunch");
    assert_eq!(
        order["expiresAt"].as_i64().unwrap() - order["createdAt"].as_i64().unwrap(),
        300
    );
    // The order is signed by our gateway's key, and the prompt binds its hash.
    let key = gateway_key(&net).await;
    verify_object(
        &key,
        order,
        prompt["signature"].as_str().unwrap(),
        VerifyOptions::STRICT,
    )
    .unwrap();
    assert_eq!(prompt["orderHash"], object_hash(order).unwrap());
    // The usual payment_request event went to the sender.
    let pushed = alice_events.expect(WAIT).await;
    assert_eq!(pushed.kind, "payment_request");
    assert_eq!(pushed.data, *prompt);
    // And the prompt is listed like any other.
    let (_, prompts) = net
        .app_call(&alice, "GET", "/app/prompts", None)
        .await
        .unwrap();
    assert_eq!(prompts["prompts"][0], *prompt);

    let (status, paid) = confirm(&net, &alice, prompt, "k1").await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["status"], "paid");
    let txid = paid["txid"].as_str().unwrap().to_string();
    let (status, again) = confirm(&net, &alice, prompt, "k1").await;
    assert_eq!((status, &again["txid"]), (200, &paid["txid"]), "{again}");
    let (status, other_key) = confirm(&net, &alice, prompt, "k2").await;
    assert_eq!((status, &other_key["txid"]), (200, &paid["txid"]));
    assert_eq!(usd(&net, &alice).await, "45.00");
    assert_eq!(usd(&net, &bob).await, "5.00");

    // Our proof, from the sender's account to the recipient's receipt.
    let proof = &paid["proof"]["proof"];
    verify_proof(
        proof,
        paid["proof"]["signature"].as_str().unwrap(),
        GATEWAY_OCID,
        &key,
        VerifyOptions::STRICT,
    )
    .unwrap();
    assert_eq!(
        proof["from"],
        json!({"ocid": 200, "reference": alice.account_id})
    );
    assert_eq!(proof["to"]["ocid"], bob_ocid);
    assert_eq!(
        (&proof["amount"], &proof["memo"]),
        (&json!("5.00"), &json!("lunch"))
    );

    // Bob's receipt: flow received, paid, from Alice's OCID, in history and by id.
    let receipts = history(&net, &bob).await;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    let receipt = &receipts[0];
    let receipt_id = receipt["sessionId"].as_str().unwrap();
    assert!(receipt_id.starts_with("rc_"));
    assert_eq!(proof["to"]["reference"], receipt_id);
    assert_eq!(receipt["flow"], "received");
    assert_eq!(receipt["status"], "paid");
    assert_eq!(receipt["merchantOcid"], alice_ocid);
    assert_eq!(receipt["merchantName"], "Alice");
    assert_eq!(
        (&receipt["amount"], &receipt["currency"]),
        (&json!("5.00"), &json!("USD"))
    );
    assert_eq!(receipt["order"]["memo"], "lunch");
    assert_eq!(receipt["txid"], txid.as_str());
    assert_eq!(receipt["proof"], paid["proof"]);
    let (status, one) = net
        .app_call(&bob, "GET", &format!("/app/payments/{receipt_id}"), None)
        .await
        .unwrap();
    assert_eq!((status, &one), (200, receipt));
    let (status, body) = net
        .app_call(&alice, "GET", &format!("/app/payments/{receipt_id}"), None)
        .await
        .unwrap();
    assert_eq!((status, code(&body)), (403, "FORBIDDEN"));
    // Alice's side is the transfer, paid.
    let sent = history(&net, &alice).await;
    assert_eq!((sent.len(), &sent[0]["flow"]), (1, &json!("transfer")));

    // Bob's stream got the payment_status of his receipt.
    let event = bob_events.expect(WAIT).await;
    assert_eq!(event.kind, "payment_status");
    assert_eq!(
        event.data,
        json!({"type": "payment_status", "sessionId": receipt_id, "status": "paid",
            "txid": txid, "paidAt": receipt["paidAt"]})
    );
    net.stop().await;
}

#[tokio::test]
async fn a_declined_or_unaffordable_transfer_moves_nothing() {
    let net = alone().await;
    let alice = net.app_device("Alice", Some("3.00 USD")).await.unwrap();
    let bob = net.app_device("Bob", None).await.unwrap();
    let (bob_ocid, _) = receive(&net, &bob).await;
    let to_bob = json!({"ocid": bob_ocid, "gateway": 200});

    let (_, answer) = transfer(
        &net,
        &alice,
        json!({"to": to_bob, "amount": "2.00", "currency": "USD"}),
    )
    .await;
    let prompt = answer["prompt"].clone();
    let id = prompt["sessionId"].as_str().unwrap();
    let (status, declined) = net
        .app_call(
            &alice,
            "POST",
            &format!("/app/sessions/{id}/decline"),
            Some(&json!({"reason": "wrong person"})),
        )
        .await
        .unwrap();
    assert_eq!((status, &declined["status"]), (200, &json!("declined")));
    let (status, body) = confirm(&net, &alice, &prompt, "after-decline").await;
    assert_eq!((status, code(&body)), (409, "INVALID_STATE"));

    let (_, answer) = transfer(
        &net,
        &alice,
        json!({"to": to_bob, "amount": "4.00", "currency": "USD"}),
    )
    .await;
    let (status, body) = confirm(&net, &alice, &answer["prompt"], "too-much").await;
    assert_eq!((status, code(&body)), (402, "INSUFFICIENT_FUNDS"), "{body}");

    assert_eq!(usd(&net, &alice).await, "3.00");
    assert_eq!(usd(&net, &bob).await, "0.00");
    assert!(history(&net, &bob).await.is_empty());
    net.stop().await;
}

#[tokio::test]
async fn an_external_transfer_between_two_gateways_pays_once() {
    let peers = PeerNetworks::builder().start().await.unwrap();
    let (a, b) = (&peers.a, &peers.b);
    let alice = a.app_device("Alice", Some("50.00 USD")).await.unwrap();
    let bob = b.app_device("Bob", None).await.unwrap();
    let (bob_ocid, bob_receive) = receive(b, &bob).await;
    assert!((201_001..=201_999).contains(&bob_ocid), "{bob_ocid}");
    let mut bob_events = events(b, &bob).await;

    // Alice scans Bob's code at A: B's name comes from its verified metadata, Bob's not at all.
    let (status, scanned) = a
        .app_call(
            &alice,
            "POST",
            "/app/scan",
            Some(&json!({"text": bob_receive["qr"]})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{scanned}");
    assert_eq!(
        scanned["person"],
        json!({"ocid": bob_ocid, "gateway": GATEWAY_B_OCID, "gatewayName": "Gateway 201", "name": null})
    );

    let (status, answer) = transfer(
        a,
        &alice,
        json!({"to": {"ocid": bob_ocid, "gateway": GATEWAY_B_OCID}, "amount": "5.00", "currency": "USD", "memo": "rent"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let prompt = &answer["prompt"];
    assert_eq!(
        prompt["recipient"],
        json!({"ocid": bob_ocid, "name": null, "gateway": GATEWAY_B_OCID, "gatewayName": "Gateway 201"})
    );
    assert!(prompt.get("merchantName").is_none(), "{prompt}");
    let (status, paid) = confirm(a, &alice, prompt, "k1").await;
    assert_eq!(status, 200, "{paid}");
    let (status, again) = confirm(a, &alice, prompt, "k1").await;
    assert_eq!((status, &again["txid"]), (200, &paid["txid"]));

    // B's proof: issued by B from A's reserve (reference = the session id) to Bob.
    let proof = &paid["proof"]["proof"];
    assert_eq!(proof["issuer"], GATEWAY_B_OCID);
    assert_eq!(
        proof["from"],
        json!({"ocid": GATEWAY_OCID, "reference": prompt["sessionId"]})
    );
    assert_eq!(proof["to"]["ocid"], bob_ocid);
    assert_eq!(proof["memo"], "rent");
    verify_proof(
        proof,
        paid["proof"]["signature"].as_str().unwrap(),
        GATEWAY_B_OCID,
        &gateway_key(b).await,
        VerifyOptions::STRICT,
    )
    .unwrap();

    // Money: Alice −5 at A (into the clearing of B), Bob +5 at B out of A's reserve, once.
    let (store_a, store_b) = (
        a.gateway_store().await.unwrap(),
        b.gateway_store().await.unwrap(),
    );
    assert_eq!(usd(a, &alice).await, "45.00");
    assert_eq!(usd(b, &bob).await, "5.00");
    assert_eq!(
        stored_balance(store_a.as_ref(), "reserve-clearing:201", "USD").await,
        500
    );
    assert_eq!(
        stored_balance(store_b.as_ref(), "reserve:200", "USD").await,
        99_500
    );

    // A retried remote call (as after a crash before A's commit) gets the first proof back
    // and moves nothing: `from.reference` = the session id is B's idempotency key.
    let key_a = a.gateway().unwrap().state.key.clone();
    let body = json!({
        "from": {"ocid": GATEWAY_OCID, "reference": prompt["sessionId"]},
        "to": {"ocid": bob_ocid},
        "amount": "5.00", "currency": "USD", "memo": "rent",
    });
    let response = signed_request(
        &reqwest::Client::new(),
        &key_a,
        GATEWAY_OCID,
        "POST",
        &format!("{}/transfer/create", b.endpoint()),
        Some(serde_json::to_vec(&body).unwrap()),
        b.now(),
    )
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let replay: Value = response.json().await.unwrap();
    assert_eq!(replay, paid["proof"]);
    assert_eq!(
        stored_balance(store_b.as_ref(), "reserve:200", "USD").await,
        99_500
    );
    assert_eq!(usd(b, &bob).await, "5.00");

    // Bob's receipt at B: from gateway A (named from its metadata), with the memo.
    let receipts = history(b, &bob).await;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    let receipt = &receipts[0];
    assert_eq!(receipt["flow"], "received");
    assert_eq!(receipt["status"], "paid");
    assert_eq!(receipt["merchantOcid"], GATEWAY_OCID);
    assert_eq!(receipt["merchantName"], "Gateway 200");
    assert_eq!(receipt["order"]["memo"], "rent");
    assert_eq!(receipt["txid"], paid["txid"]);
    assert_eq!(receipt["proof"], paid["proof"]);
    assert_eq!(proof["to"]["reference"], receipt["sessionId"]);
    let event = bob_events.expect(WAIT).await;
    assert_eq!(event.kind, "payment_status");
    assert_eq!(event.data["sessionId"], receipt["sessionId"]);
    assert_eq!(event.data["txid"], paid["txid"]);

    // `/transfer/create` to an OCID of B's block that nobody holds: 400, nothing moves.
    let body = json!({
        "from": {"ocid": GATEWAY_OCID, "reference": "nobody-1"},
        "to": {"ocid": 201_999}, "amount": "1.00", "currency": "USD",
    });
    let response = signed_request(
        &reqwest::Client::new(),
        &key_a,
        GATEWAY_OCID,
        "POST",
        &format!("{}/transfer/create", b.endpoint()),
        Some(serde_json::to_vec(&body).unwrap()),
        b.now(),
    )
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let refused: Value = response.json().await.unwrap();
    assert_eq!(code(&refused), "ACCOUNT_NOT_FOUND");
    assert_eq!(
        stored_balance(store_b.as_ref(), "reserve:200", "USD").await,
        99_500
    );
    peers.stop().await;
}
