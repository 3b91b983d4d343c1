//! A raw app-API device for tests that check the gateway's wire format itself: a fresh device
//! key registered to a dev account through `POST /app/devices`, and device-signed calls to
//! `/app/...`. (Apps go through the wallet core instead: [`crate::Network::wallet`].)

use anyhow::{bail, Context};
use opencharge_gateway::auth::device_auth_headers;
use opencharge_peer::client::request_target;
use opencharge_protocol::keys::PrivateKey;
use serde_json::{json, Value};

/// A device key registered to a dev account.
pub struct AppDevice {
    /// The device's private key (it signs requests and consents).
    pub key: PrivateKey,
    /// The gateway's id for the device.
    pub device_id: String,
    /// The account the device belongs to.
    pub account_id: String,
}

impl AppDevice {
    /// Registers a fresh key at `<gateway_url>/app/devices` with `enrollment_code`, proving
    /// possession with a signature over the registration message at time `now`.
    pub async fn register(
        http: &reqwest::Client,
        gateway_url: &str,
        enrollment_code: &str,
        now: i64,
    ) -> anyhow::Result<AppDevice> {
        let key = PrivateKey::generate();
        let public_key = key.public_key().to_hex();
        let message =
            format!("opencharge-device-registration\n{public_key}\n{enrollment_code}\n{now}");
        let signature = key
            .sign_message(message.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot sign the registration: {e}"))?
            .to_hex();
        let url = format!("{gateway_url}/app/devices");
        let body = json!({
            "enrollmentCode": enrollment_code,
            "publicKey": public_key,
            "timestamp": now,
            "signature": signature,
        });
        let response = http
            .post(&url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let (status, answer) = read(response).await?;
        if status != 200 {
            bail!("POST {url}: {status}: {answer}");
        }
        let field = |name: &str| {
            answer[name]
                .as_str()
                .map(str::to_string)
                .with_context(|| format!("/app/devices answer has no {name}: {answer}"))
        };
        Ok(AppDevice {
            device_id: field("deviceId")?,
            account_id: field("accountId")?,
            key,
        })
    }

    /// A request to `url` signed by this device at time `now` over `method`, the URL's path
    /// and query as sent, and exactly `body` (sent as JSON when not empty).
    pub fn request(
        &self,
        http: &reqwest::Client,
        method: &str,
        url: &str,
        body: Vec<u8>,
        now: i64,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("URL {url:?}"))?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .with_context(|| format!("method {method:?}"))?;
        let path = request_target(&parsed);
        let mut request = http.request(method.clone(), parsed);
        for (name, value) in device_auth_headers(
            &self.key,
            &self.device_id,
            method.as_str(),
            &path,
            &body,
            now,
        ) {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        Ok(request)
    }
}

/// Status and JSON body of a response (`null` for an empty body, a JSON string for a body
/// that is not JSON).
pub async fn read(response: reqwest::Response) -> anyhow::Result<(u16, Value)> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.context("unreadable answer")?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    };
    Ok((status, body))
}

/// The USD amount of a raw `GET /app/balance` answer, read as the typed
/// [`opencharge_protocol::app::BalanceResponse`]; panics (a test failure) when the answer is
/// malformed or holds no USD.
pub fn usd_amount(balance_answer: &Value) -> String {
    let balance: opencharge_protocol::app::BalanceResponse =
        serde_json::from_value(balance_answer.clone())
            .unwrap_or_else(|e| panic!("malformed balance answer {balance_answer}: {e}"));
    balance
        .balances
        .into_iter()
        .find(|b| b.currency == "USD")
        .unwrap_or_else(|| panic!("no USD in {balance_answer}"))
        .amount
}
