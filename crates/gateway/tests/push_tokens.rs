//! The push-token routes over real HTTP on a loopback gateway with a real database (a SQLite
//! file, or PostgreSQL with `OPENCHARGE_TEST_BACKEND=postgres`) and real device signatures: `PUT /app/devices/push-token` echoes what is stored and refuses bad
//! tokens with 400 (changing nothing), unsigned or foreign requests are 401, a token moves to
//! the device that registers it last, `DELETE` clears it, and a scanned order queues a
//! wake-up for exactly the active devices with a token (not a rotated or revoked one).

use opencharge_gateway::store::{PushEnvironment, PushKind, PushProvider, QueuedPush};
use opencharge_protocol::keys::PrivateKey;
use opencharge_testkit::{AppDevice, Network};
use serde_json::{json, Value};

const PATH: &str = "/app/devices/push-token";

fn apns_token() -> String {
    "0f".repeat(32)
}

/// `PUT` a push token body signed by `device`.
async fn put(net: &Network, device: &AppDevice, body: &Value) -> (u16, Value) {
    net.app_call(device, "PUT", PATH, Some(body)).await.unwrap()
}

/// The gateway's stored token of `device_id`, read from its running store.
async fn stored(net: &Network, device_id: &str) -> Option<(PushProvider, String, PushEnvironment)> {
    net.gateway()
        .unwrap()
        .state
        .store
        .push_token(device_id)
        .await
        .unwrap()
        .map(|t| (t.provider, t.token, t.environment))
}

/// The gateway's push queue, through a second handle on its database.
async fn queue(net: &Network) -> Vec<QueuedPush> {
    net.gateway_direct_store()
        .await
        .unwrap()
        .push_queue()
        .await
        .unwrap()
}

/// Scans a fresh order of the first merchant with `device`: a `payment_request` for its
/// account. Returns the session id.
async fn scan_order(net: &Network, device: &AppDevice) -> String {
    let order = net.order().unwrap();
    let qr = net.merchant().order_qr(&order.order.id).unwrap();
    let (status, body) = net
        .app_call(device, "POST", "/app/scan", Some(&json!({ "text": qr })))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body["prompt"]["sessionId"].as_str().unwrap().to_string()
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn put_echoes_what_is_stored_and_delete_clears_it() {
    let net = Network::start().await.unwrap();
    let device = net.app_device("Ada", None).await.unwrap();

    let before = net.now();
    let (status, body) = put(
        &net,
        &device,
        &json!({"provider": "fcm", "token": "fcm:abc_1-2"}),
    )
    .await;
    let after = net.now();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deviceId"], json!(device.device_id));
    assert_eq!(body["provider"], "fcm");
    assert_eq!(body["token"], "fcm:abc_1-2");
    assert_eq!(body["environment"], "production", "the default");
    let updated_at = body["updatedAt"].as_i64().unwrap();
    assert!((before..=after).contains(&updated_at), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 5, "{body}");
    assert_eq!(
        stored(&net, &device.device_id).await,
        Some((
            PushProvider::Fcm,
            "fcm:abc_1-2".into(),
            PushEnvironment::Production
        ))
    );

    // A new token replaces the device's old one.
    let (status, body) = put(
        &net,
        &device,
        &json!({"provider": "apns", "token": apns_token(), "environment": "sandbox"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["provider"].as_str(), body["environment"].as_str()),
        (Some("apns"), Some("sandbox"))
    );
    assert_eq!(
        stored(&net, &device.device_id).await,
        Some((PushProvider::Apns, apns_token(), PushEnvironment::Sandbox))
    );

    // DELETE takes no body.
    let (status, body) = net
        .app_call(
            &device,
            "DELETE",
            PATH,
            Some(&json!({"token": apns_token()})),
        )
        .await
        .unwrap();
    assert_eq!((status, code(&body)), (400, "INVALID_REQUEST"), "{body}");
    assert!(stored(&net, &device.device_id).await.is_some());

    let (status, body) = net.app_call(&device, "DELETE", PATH, None).await.unwrap();
    assert_eq!((status, body), (200, json!({"cleared": true})));
    assert_eq!(stored(&net, &device.device_id).await, None);
    let (status, body) = net
        .app_call(&device, "DELETE", PATH, Some(&json!({})))
        .await
        .unwrap();
    assert_eq!((status, body), (200, json!({"cleared": false})));
    net.stop().await;
}

#[tokio::test]
async fn bad_bodies_are_400_and_change_nothing() {
    let net = Network::start().await.unwrap();
    let device = net.app_device("Ada", None).await.unwrap();
    let (status, _) = put(&net, &device, &json!({"provider": "fcm", "token": "good"})).await;
    assert_eq!(status, 200);
    let long = "a".repeat(4097);
    for (body, why) in [
        (json!({"provider": "gcm", "token": "x"}), "unknown provider"),
        (json!({"provider": "fcm", "token": ""}), "empty token"),
        (json!({"provider": "fcm", "token": long}), "oversized token"),
        (json!({"provider": "fcm", "token": "has space"}), "space"),
        (
            json!({"provider": "fcm", "token": "t", "environment": "sandbox"}),
            "FCM sandbox",
        ),
        (
            json!({"provider": "fcm", "token": "t", "environment": "staging"}),
            "unknown environment",
        ),
        (
            json!({"provider": "apns", "token": "not-hex-not-hex-not-hex"}),
            "APNs not hex",
        ),
        (
            json!({"provider": "apns", "token": "0f0f0f0f0f0f0f0f0"}),
            "APNs odd length",
        ),
        (
            json!({"provider": "apns", "token": "0f0f"}),
            "APNs too short",
        ),
        (json!({"provider": "fcm"}), "no token"),
        (
            json!({"provider": "fcm", "token": "t", "deviceId": "dev_x"}),
            "unknown field",
        ),
        (json!(["fcm", "t"]), "not an object"),
        (json!({"provider": "fcm", "token": 7}), "token not a string"),
    ] {
        let (status, answer) = put(&net, &device, &body).await;
        assert_eq!(
            (status, code(&answer)),
            (400, "INVALID_REQUEST"),
            "{why}: {answer}"
        );
        assert!(
            !answer["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{why}: {answer}"
        );
    }
    let (_, answer) = put(
        &net,
        &device,
        &json!({"provider": "fcm", "token": "t", "deviceId": "x"}),
    )
    .await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deviceId"),
        "{answer}"
    );
    assert_eq!(
        stored(&net, &device.device_id).await,
        Some((
            PushProvider::Fcm,
            "good".into(),
            PushEnvironment::Production
        )),
        "nothing changed"
    );
    net.stop().await;
}

#[tokio::test]
async fn unsigned_and_foreign_requests_are_401() {
    let net = Network::start().await.unwrap();
    let device = net.app_device("Ada", None).await.unwrap();
    let url = format!("{}{PATH}", net.endpoint());
    let response = net
        .http
        .put(&url)
        .json(&json!({"provider": "fcm", "token": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = net.http.delete(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    // Another key claiming this device id.
    let forged = AppDevice {
        key: PrivateKey::generate(),
        device_id: device.device_id.clone(),
        account_id: device.account_id.clone(),
    };
    let (status, body) = put(&net, &forged, &json!({"provider": "fcm", "token": "t"})).await;
    assert_eq!((status, code(&body)), (401, "INVALID_SIGNATURE"), "{body}");
    assert_eq!(stored(&net, &device.device_id).await, None);
    net.stop().await;
}

#[tokio::test]
async fn a_token_moves_to_the_device_that_registers_it_last() {
    let net = Network::start().await.unwrap();
    let ada = net.app_device("Ada", Some("20.00")).await.unwrap();
    let bob = net.app_device("Bob", Some("20.00")).await.unwrap();
    let token = json!({"provider": "fcm", "token": "same-phone"});
    assert_eq!(put(&net, &ada, &token).await.0, 200);
    // The phone was reinstalled and enrolled to Bob's account: FCM hands out the same token.
    let (status, body) = put(&net, &bob, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deviceId"], json!(bob.device_id));
    assert_eq!(stored(&net, &ada.device_id).await, None);
    // Ada's prompts no longer wake that phone up; Bob's do.
    scan_order(&net, &ada).await;
    let bob_session = scan_order(&net, &bob).await;
    let rows = queue(&net).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].device_id.as_str(), rows[0].session_id.as_str()),
        (bob.device_id.as_str(), bob_session.as_str())
    );
    net.stop().await;
}

#[tokio::test]
async fn a_scanned_order_wakes_the_active_devices_with_a_token_only() {
    let net = Network::start().await.unwrap();
    let phone = net.app_device("Ada", Some("20.00")).await.unwrap();
    let code = net.enrollment(&phone.account_id).await.unwrap();
    let tablet = AppDevice::register(&net.http, net.endpoint(), &code, net.now())
        .await
        .unwrap();
    let code = net.enrollment(&phone.account_id).await.unwrap();
    let old_watch = AppDevice::register(&net.http, net.endpoint(), &code, net.now())
        .await
        .unwrap();
    let code = net.enrollment(&phone.account_id).await.unwrap();
    let revoked = AppDevice::register(&net.http, net.endpoint(), &code, net.now())
        .await
        .unwrap();
    assert_eq!(
        put(&net, &phone, &json!({"provider": "fcm", "token": "phone"}))
            .await
            .0,
        200
    );
    let watch_token = json!({"provider": "apns", "token": apns_token()});
    assert_eq!(put(&net, &old_watch, &watch_token).await.0, 200);
    assert_eq!(
        put(&net, &revoked, &json!({"provider": "fcm", "token": "gone"}))
            .await
            .0,
        200
    );
    // The tablet has no token; the watch rotates its key; one device is revoked by the operator.
    let new_key = PrivateKey::generate();
    let new_public = new_key.public_key().to_hex();
    let message = format!(
        "opencharge-device-rotation\n{}\n{new_public}",
        old_watch.device_id
    );
    let signature = new_key.sign_message(message.as_bytes()).unwrap().to_hex();
    let (status, body) = net
        .app_call(
            &old_watch,
            "POST",
            "/app/devices/rotate",
            Some(&json!({"newPublicKey": new_public, "newKeySignature": signature})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let new_watch = AppDevice {
        key: new_key,
        device_id: body["deviceId"].as_str().unwrap().to_string(),
        account_id: phone.account_id.clone(),
    };
    net.gateway_direct_store()
        .await
        .unwrap()
        .execute_sql(&format!(
            "UPDATE devices SET status = 'revoked' WHERE device_id = '{}'",
            revoked.device_id
        ))
        .await
        .unwrap();
    // The rotated key can no longer change the token.
    let (status, _) = put(&net, &old_watch, &watch_token).await;
    assert_eq!(status, 401);

    let session = scan_order(&net, &tablet).await;
    let mut woken: Vec<(String, PushKind, String)> = queue(&net)
        .await
        .into_iter()
        .map(|p| (p.device_id, p.kind, p.session_id))
        .collect();
    woken.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (
            phone.device_id.clone(),
            PushKind::PaymentRequest,
            session.clone(),
        ),
        (
            new_watch.device_id.clone(),
            PushKind::PaymentRequest,
            session,
        ),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        woken, expected,
        "not the tablet (no token), the old watch key or the revoked device"
    );
    assert_eq!(stored(&net, &old_watch.device_id).await, None);
    assert_eq!(
        stored(&net, &new_watch.device_id).await,
        Some((
            PushProvider::Apns,
            apns_token(),
            PushEnvironment::Production
        ))
    );
    net.stop().await;
}
