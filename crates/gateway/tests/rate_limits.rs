//! Rate limits over real HTTP on loopback, with small budgets: a sender OCID (`X-OC-*`) and a
//! wallet device (app API) each get their burst, then 429 `RATE_LIMITED` with `Retry-After`,
//! enveloped and signed; the refused request changed nothing (the very same request, nonce
//! included, passes once the wait is over); another OCID or device is unaffected; unsigned
//! requests do not spend a sender's budget.

use std::time::Duration;

use opencharge_gateway::api::rate_limit::RateLimitConfig;
use opencharge_gateway::config::DirectoryEntry;
use opencharge_protocol::auth::{generate_nonce, RequestAuth, ResponseAuth};
use opencharge_protocol::keys::{PrivateKey, PublicKey, VerifyOptions};
use opencharge_protocol::signing::sign_object;
use opencharge_testkit::{merchant_metadata, AppDevice, Network};
use serde_json::{json, Value};

const BURST: u32 = 3;
/// Most requests sent while waiting for the first 429 (the bucket refills slowly, 1 per second).
const MAX_TRIES: usize = 20;

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

/// Sends `request`, checks the answer's response signature by the gateway, and reads it.
async fn send(network: &Network, request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let gateway = network.gateway().unwrap();
    let auth = ResponseAuth::from_headers(|n| headers.get(n).and_then(|v| v.to_str().ok()))
        .expect("every answer is signed");
    auth.verify(
        &PublicKey::from_hex(gateway.public_key_hex()).unwrap(),
        status,
        &bytes,
        network.now(),
        VerifyOptions::STRICT,
    )
    .expect("the answer's signature verifies");
    Answer {
        status,
        retry_after: headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// A request signed by `key` as `ocid` (fixed nonce and timestamp, so it can be sent again).
fn oc_request(
    network: &Network,
    key: &PrivateKey,
    ocid: u64,
    method: &str,
    url: &str,
    body: &[u8],
) -> reqwest::RequestBuilder {
    let target = reqwest::Url::parse(url).unwrap();
    let target = match target.query() {
        Some(q) => format!("{}?{q}", target.path()),
        None => target.path().to_string(),
    };
    let auth = RequestAuth::sign(
        key,
        ocid,
        method,
        &target,
        body,
        network.now(),
        &generate_nonce(),
    )
    .unwrap();
    let mut request = network
        .http
        .request(method.parse().unwrap(), url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in auth.headers() {
        request = request.header(name, value);
    }
    request
}

/// Asserts a 429 `RATE_LIMITED` envelope with a `Retry-After` of whole seconds.
fn assert_limited(answer: &Answer) -> u64 {
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert_eq!(
        answer.body["error"]["code"], "RATE_LIMITED",
        "{}",
        answer.body
    );
    let secs = answer.retry_after.expect("429 carries Retry-After");
    assert!(secs >= 1);
    assert_eq!(
        answer.body["error"]["details"]["retryAfterSeconds"],
        json!(secs)
    );
    secs
}

/// Sends fresh requests from `make` until one is refused: the first `BURST` must pass.
async fn exhaust(network: &Network, make: impl Fn() -> reqwest::RequestBuilder) {
    for i in 0..MAX_TRIES {
        let answer = send(network, make()).await;
        if answer.status == 429 {
            assert!(i >= BURST as usize, "refused after only {i} requests");
            assert_limited(&answer);
            return;
        }
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    panic!("no 429 after {MAX_TRIES} requests");
}

fn order_json(merchant: u64, id: &str, now: i64) -> Value {
    json!({
        "id": id,
        "ocid": merchant,
        "amount": "1.00",
        "currency": "USD",
        "items": [{"id": "item_1", "name": "Coffee", "quantity": 1, "price": "1.00"}],
        "createdAt": now,
        "expiresAt": now + 600,
        "accepts": [200],
    })
}

#[tokio::test]
async fn per_ocid_and_per_device_budgets() {
    let (merchant, other) = (PrivateKey::generate(), PrivateKey::generate());
    let directory: Vec<DirectoryEntry> = [(500, &merchant), (501, &other)]
        .into_iter()
        .map(|(ocid, key)| DirectoryEntry {
            ocid,
            metadata_url: None,
            metadata: Some(merchant_metadata(
                ocid,
                "Limited",
                key,
                "http://127.0.0.1:9",
                &[200],
            )),
        })
        .collect();
    let network = Network::builder()
        .merchants(0)
        .gateway_config(move |config| {
            config.directory = directory;
            config.rate_limits = RateLimitConfig {
                ocid_per_second: 1,
                ocid_burst: BURST,
                device_per_second: 1,
                device_burst: BURST,
            };
        })
        .start()
        .await
        .unwrap();
    let endpoint = network.endpoint().to_string();
    let capabilities = format!("{endpoint}/capabilities");

    // A wallet session for the merchant's order (one device request).
    let device = network.app_device("Payer", None).await.unwrap();
    let (status, session) = network
        .app_call(&device, "POST", "/app/sessions", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{session}");
    let order_url = session["qrPayload"]["order"].as_str().unwrap().to_string();

    // Unsigned and badly signed requests spend nothing of OCID 500's budget.
    for _ in 0..MAX_TRIES {
        let answer = send(&network, network.http.get(&capabilities)).await;
        assert_eq!(answer.status, 401, "{}", answer.body);
        let forged = send(
            &network,
            oc_request(
                &network,
                &PrivateKey::generate(),
                500,
                "GET",
                &capabilities,
                b"",
            ),
        )
        .await;
        assert_eq!(forged.status, 401, "{}", forged.body);
    }

    // OCID 500 spends its burst, then an order post is refused with 429.
    exhaust(&network, || {
        oc_request(&network, &merchant, 500, "GET", &capabilities, b"")
    })
    .await;
    let order = order_json(500, "ord_limited", network.now());
    let body = serde_json::to_vec(&json!({
        "order": order,
        "signature": sign_object(&merchant, &order).unwrap(),
        "urls": {"order": []},
    }))
    .unwrap();
    let post = oc_request(&network, &merchant, 500, "POST", &order_url, &body);
    let again = post.try_clone().unwrap();
    let wait = assert_limited(&send(&network, post).await);
    // Another OCID is unaffected.
    let answer = send(
        &network,
        oc_request(&network, &other, 501, "GET", &capabilities, b""),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // The refused post changed nothing: the session has no order yet.
    let (status, prompts) = network
        .app_call(&device, "GET", "/app/prompts", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{prompts}");
    assert_eq!(prompts["prompts"], json!([]), "{prompts}");

    // After the wait the very same request (same nonce) passes: its nonce was not recorded.
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
    let answer = send(&network, again).await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    // Devices: one spends its burst and gets 429; another device is unaffected; later it
    // passes again.
    let (busy, other_device) = (
        network.app_device("Busy", None).await.unwrap(),
        network.app_device("Other", None).await.unwrap(),
    );
    let balance = format!("{endpoint}/app/balance");
    let signed = |d: &AppDevice| {
        d.request(&network.http, "GET", &balance, Vec::new(), network.now())
            .unwrap()
    };
    exhaust(&network, || signed(&busy)).await;
    let answer = send(&network, signed(&other_device)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let wait = assert_limited(&send(&network, signed(&busy)).await);
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
    let answer = send(&network, signed(&busy)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    network.stop().await;
}
