//! Router-level answers over real HTTP on loopback, on the gateway and on the merchant peer:
//! an unmatched path (inside and outside the base path) is 404 `NOT_FOUND`, a wrong method 405
//! with `Allow`, a body over the limit 413, and extractor rejections (a path parameter that
//! is not UTF-8) 400 `INVALID_REQUEST`. Each answer is the JSON
//! error envelope and carries a response signature that verifies with the server's key.

use opencharge_protocol::auth::ResponseAuth;
use opencharge_protocol::error_code::{ApiError, ErrorCode};
use opencharge_protocol::keys::{PublicKey, VerifyOptions};
use opencharge_testkit::Network;

/// One answer, checked: the status, the envelope's code, and the signature of `signer`.
async fn expect_signed_error(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Vec<u8>,
    signer: (u64, &str),
    now: i64,
    want: (u16, ErrorCode),
) -> reqwest::header::HeaderMap {
    let response = http
        .request(method.parse().unwrap(), url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let error = ApiError::from_json(&bytes).unwrap_or_else(|e| {
        panic!(
            "{method} {url}: not an envelope ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(
        (status, error.code.clone()),
        want,
        "{method} {url}: {}",
        error.message
    );
    assert!(!error.message.is_empty());
    assert_eq!(
        headers["content-type"], "application/json",
        "{method} {url}"
    );
    let auth = ResponseAuth::from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .unwrap_or_else(|e| panic!("{method} {url}: unsigned answer: {e}"));
    assert_eq!(auth.ocid, signer.0, "{method} {url}");
    let key = PublicKey::from_hex(signer.1).unwrap();
    auth.verify(&key, status, &bytes, now, VerifyOptions::STRICT)
        .unwrap_or_else(|e| panic!("{method} {url}: signature does not verify: {e}"));
    headers
}

/// `scheme://host:port` of an endpoint URL (outside the base path).
fn origin(endpoint: &str) -> String {
    let url = url::Url::parse(endpoint).unwrap();
    url.origin().ascii_serialization()
}

#[tokio::test]
async fn router_answers_are_enveloped_and_signed_on_both_servers() {
    let network = Network::builder().merchants(1).start().await.unwrap();
    let http = reqwest::Client::new();
    let now = network.now();
    let gateway = network.gateway().unwrap();
    let gw = (gateway.ocid(), gateway.public_key_hex());
    let merchant = network.merchant();
    let merchant_key = merchant.public_key_hex();
    let mc = (opencharge_testkit::MERCHANT_OCID, merchant_key.as_str());
    let big = vec![b' '; 3 * 1024 * 1024];

    for (base, signer) in [
        (network.endpoint().to_string(), gw),
        (merchant.endpoint().to_string(), mc),
    ] {
        let not_found = (404, ErrorCode::NotFound);
        let invalid = |status| (status, ErrorCode::InvalidRequest);
        // Unmatched paths, inside and outside the base path.
        for url in [
            format!("{base}/nothing"),
            format!("{}/nothing", origin(&base)),
            format!("{}/", origin(&base)),
        ] {
            expect_signed_error(
                &http,
                "GET",
                &url,
                Vec::new(),
                signer,
                now,
                not_found.clone(),
            )
            .await;
        }
        // Wrong method: 405 with Allow.
        let headers = expect_signed_error(
            &http,
            "DELETE",
            &format!("{base}/metadata.json"),
            Vec::new(),
            signer,
            now,
            invalid(405),
        )
        .await;
        assert!(
            headers["allow"].to_str().unwrap().contains("GET"),
            "{base}: {:?}",
            headers.get("allow")
        );
        // A body over the limit on a POST route.
        let post = if signer.0 == gw.0 {
            "/checkout/create"
        } else {
            "/orders/create"
        };
        expect_signed_error(
            &http,
            "POST",
            &format!("{base}{post}"),
            big.clone(),
            signer,
            now,
            invalid(413),
        )
        .await;
        // An extractor rejection: a path parameter that is not UTF-8.
        expect_signed_error(
            &http,
            "GET",
            &format!("{base}/orders/%FF/status"),
            Vec::new(),
            signer,
            now,
            invalid(400),
        )
        .await;
    }
    network.stop().await;
}
