//! The APNs sender: wake-ups to iOS devices through Apple's provider API over HTTP/2 with
//! token authentication (an ES256 JWT signed with the team's `.p8` key), and the mapping of
//! every APNs answer to a [`SendOutcome`].
//!
//! One request per wake-up: `POST {host}/3/device/{token}` with `authorization: bearer <JWT>`,
//! `apns-push-type: alert`, `apns-topic`, `apns-collapse-id: <sessionId>`, `apns-priority: 10`
//! and `apns-expiration`, and a body carrying a fixed alert (no amount, no merchant: the
//! notification service extension replaces it after fetching and verifying the prompt),
//! `mutable-content: 1` so that extension runs, and the [`WakeUp`] under `opencharge`.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Serialize};

use super::{
    PushEnvironment, PushKind, PushSender, PushSetupError, PushTarget, SendOutcome, WakeUp,
};
use crate::config::{ApnsConfig, APNS_PRODUCTION_ENDPOINT, APNS_SANDBOX_ENDPOINT};

/// A provider token is replaced after this many seconds. APNs refuses tokens older than an
/// hour (`ExpiredProviderToken`) and refreshes more often than every 20 minutes
/// (`TooManyProviderTokenUpdates`).
pub const PROVIDER_TOKEN_LIFETIME_SECS: i64 = 50 * 60;

/// Longest `apns-collapse-id` APNs accepts, bytes.
const MAX_COLLAPSE_ID_LEN: usize = 64;

/// Most of an error answer's body that is read (APNs sends a few dozen bytes of JSON).
const MAX_ANSWER_BODY: usize = 8 * 1024;

/// Sends wake-ups through APNs (see the module documentation). Cheap to share: one HTTP/2
/// connection pool and one cached provider token.
pub struct ApnsSender {
    client: reqwest::Client,
    topic: String,
    endpoint: Option<String>,
    max_age_secs: i64,
    tokens: ProviderTokens,
}

impl std::fmt::Debug for ApnsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsSender")
            .field("topic", &self.topic)
            .field("endpoint", &self.endpoint)
            .field("team_id", &self.tokens.team_id)
            .field("key_id", &self.tokens.key_id)
            .finish_non_exhaustive()
    }
}

impl ApnsSender {
    /// Reads the `.p8` key (PKCS#8 PEM, P-256), signs a first provider token with it (so a
    /// wrong key is reported at start, not at the first wake-up), and builds an HTTP/2-only
    /// client (TLS with ALPN `h2`) trusting the system roots plus `ca_file` when set.
    /// `max_age_secs` sets `apns-expiration`: APNs stops trying to deliver after that long.
    pub fn new(config: &ApnsConfig, max_age_secs: i64) -> Result<ApnsSender, PushSetupError> {
        let pem = std::fs::read(&config.key_file).map_err(|source| PushSetupError::Read {
            what: "push.apns.key_file",
            path: config.key_file.clone(),
            source,
        })?;
        let key = EncodingKey::from_ec_pem(&pem).map_err(|e| PushSetupError::Invalid {
            what: "push.apns.key_file",
            reason: format!(
                "{} is not a PKCS#8 PEM EC private key (the .p8 file from Apple): {e}",
                config.key_file.display()
            ),
        })?;
        let tokens = ProviderTokens {
            key,
            team_id: config.team_id.clone(),
            key_id: config.key_id.clone(),
            current: Mutex::new(None),
        };
        tokens
            .get(unix_now())
            .map_err(|e| PushSetupError::Invalid {
                what: "push.apns.key_file",
                reason: format!(
                    "{} cannot sign an ES256 token (APNs keys are P-256): {e}",
                    config.key_file.display()
                ),
            })?;
        if HeaderValue::from_str(&config.topic).is_err() {
            return Err(PushSetupError::Invalid {
                what: "push.apns.topic",
                reason: format!("{:?} is not a valid header value", config.topic),
            });
        }
        let client = http2_client(config)?;
        Ok(ApnsSender {
            client,
            topic: config.topic.clone(),
            endpoint: config
                .endpoint
                .as_ref()
                .map(|e| e.trim_end_matches('/').to_string()),
            max_age_secs,
            tokens,
        })
    }
}

/// The HTTP/2 client. Over `https://`, reqwest's `http2_prior_knowledge` sets the TLS ALPN
/// offer to `h2` alone and makes hyper speak only HTTP/2 on the connection: a server that
/// does not speak HTTP/2 fails the request rather than getting HTTP/1.1 (the fake APNs
/// records the negotiated ALPN and version to prove it). Redirects are not followed.
fn http2_client(config: &ApnsConfig) -> Result<reqwest::Client, PushSetupError> {
    let mut builder = reqwest::Client::builder()
        .http2_prior_knowledge()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30));
    if let Some(ca_file) = &config.ca_file {
        let pem = std::fs::read(ca_file).map_err(|source| PushSetupError::Read {
            what: "push.apns.ca_file",
            path: ca_file.clone(),
            source,
        })?;
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| PushSetupError::Invalid {
                what: "push.apns.ca_file",
                reason: format!("{}: {e}", ca_file.display()),
            })?;
        if certificates.is_empty() {
            return Err(PushSetupError::Invalid {
                what: "push.apns.ca_file",
                reason: format!("{} holds no PEM certificate", ca_file.display()),
            });
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|e| PushSetupError::Invalid {
        what: "push.apns",
        reason: format!("cannot build the HTTP/2 client: {}", error_chain(&e)),
    })
}

#[async_trait]
impl PushSender for ApnsSender {
    async fn send(&self, target: &PushTarget, wake: &WakeUp) -> SendOutcome {
        if !is_device_token(&target.token) {
            // Registration only stores hex tokens; one that is not cannot be delivered.
            return SendOutcome::DeadToken {
                reason: "BadDeviceToken: the stored APNs token is not hex digits".into(),
            };
        }
        let now = unix_now();
        let jwt = match self.tokens.get(now) {
            Ok(jwt) => jwt,
            Err(e) => {
                return SendOutcome::Fail {
                    reason: format!("cannot sign the APNs provider token: {e}"),
                }
            }
        };
        let url = device_url(self.endpoint.as_deref(), target.environment, &target.token);
        let request = self
            .client
            .post(url)
            .header(AUTHORIZATION, format!("bearer {jwt}"))
            .header("apns-push-type", "alert")
            .header("apns-topic", &self.topic)
            .header("apns-collapse-id", collapse_id(&wake.session_id))
            .header("apns-priority", "10")
            .header(
                "apns-expiration",
                now.saturating_add(self.max_age_secs).to_string(),
            )
            .header(CONTENT_TYPE, "application/json")
            .body(payload(wake));
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_builder() => {
                return SendOutcome::Fail {
                    reason: format!("cannot build the APNs request: {}", error_chain(&e)),
                }
            }
            Err(e) => {
                return SendOutcome::Retry {
                    after: None,
                    reason: format!("APNs not reached: {}", error_chain(&e)),
                }
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let apns_id = response
            .headers()
            .get("apns-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut body = Vec::new();
        while body.len() < MAX_ANSWER_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                // The status decides; a cut-off body only loses the reason text.
                Ok(None) | Err(_) => break,
            }
        }
        let answer = map_answer(status, retry_after, &body);
        if answer.provider_token_expired {
            tracing::warn!(
                device_id = %target.device_id,
                "APNs refused the provider token as expired; signing a new one"
            );
            self.tokens.expire(&jwt);
        }
        if answer.outcome == SendOutcome::Sent {
            tracing::debug!(device_id = %target.device_id, apns_id = %apns_id, "APNs accepted the wake-up");
        }
        answer.outcome
    }
}

/// The provider token (ES256 JWT) cache: one token reused until it is
/// [`PROVIDER_TOKEN_LIFETIME_SECS`] old or APNs calls it expired.
struct ProviderTokens {
    key: EncodingKey,
    team_id: String,
    key_id: String,
    current: Mutex<Option<ProviderToken>>,
}

#[derive(Clone)]
struct ProviderToken {
    jwt: String,
    issued_at: i64,
}

/// The claims APNs reads: the team id and the issue time.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
}

impl ProviderTokens {
    /// The token to use at `now` (unix seconds): the cached one while it is younger than
    /// the lifetime (and not from the future: a clock set back), else a new one.
    fn get(&self, now: i64) -> Result<String, jsonwebtoken::errors::Error> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(token) = current.as_ref() {
            let age = now - token.issued_at;
            if (0..PROVIDER_TOKEN_LIFETIME_SECS).contains(&age) {
                return Ok(token.jwt.clone());
            }
        }
        let jwt = self.sign(now)?;
        *current = Some(ProviderToken {
            jwt: jwt.clone(),
            issued_at: now,
        });
        Ok(jwt)
    }

    /// Signs a token issued at `now`: header `{"alg":"ES256","kid":key_id}`, claims
    /// `{"iss":team_id,"iat":now}`.
    fn sign(&self, now: i64) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = None;
        header.kid = Some(self.key_id.clone());
        let claims = Claims {
            iss: &self.team_id,
            iat: now,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
    }

    /// Forgets `jwt` if it is still the cached token (APNs said it expired), so the next send
    /// signs a new one. Concurrent sends refused with the same token replace it once.
    fn expire(&self, jwt: &str) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|t| t.jwt == jwt) {
            *current = None;
        }
    }
}

/// The request URL: `{endpoint}/3/device/{token}`, the endpoint being the configured one when
/// set, else the production or sandbox host for the token's environment.
fn device_url(endpoint: Option<&str>, environment: PushEnvironment, token: &str) -> String {
    let base = match (endpoint, environment) {
        (Some(endpoint), _) => endpoint,
        (None, PushEnvironment::Production) => APNS_PRODUCTION_ENDPOINT,
        (None, PushEnvironment::Sandbox) => APNS_SANDBOX_ENDPOINT,
    };
    format!("{}/3/device/{token}", base.trim_end_matches('/'))
}

/// An APNs device token as registration stores it: hex digits only (so it is safe in a path).
fn is_device_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `apns-collapse-id`: the session id, cut to the 64 bytes APNs accepts (gateway session ids
/// are far shorter).
fn collapse_id(session_id: &str) -> &str {
    if session_id.len() <= MAX_COLLAPSE_ID_LEN {
        return session_id;
    }
    let mut end = MAX_COLLAPSE_ID_LEN;
    while !session_id.is_char_boundary(end) {
        end -= 1;
    }
    &session_id[..end]
}

/// The APNs body: a fixed alert per kind, `mutable-content` and the wake-up.
#[derive(Serialize)]
struct Payload {
    aps: Aps,
    opencharge: opencharge_protocol::app::PushWakeUp,
}

#[derive(Serialize)]
struct Aps {
    alert: Alert,
    #[serde(rename = "mutable-content")]
    mutable_content: u8,
    sound: &'static str,
}

#[derive(Serialize)]
struct Alert {
    title: &'static str,
    body: &'static str,
}

/// The body of one wake-up, e.g. `{"aps":{"alert":{"title":"Payment request","body":"Open
/// to review this payment."},"mutable-content":1,"sound":"default"},"opencharge":{…}}`.
fn payload(wake: &WakeUp) -> Vec<u8> {
    let (title, body) = match wake.kind {
        PushKind::PaymentRequest => ("Payment request", "Open to review this payment."),
        PushKind::PaymentStatus => ("Payment update", "Open to see this payment."),
    };
    let payload = Payload {
        aps: Aps {
            alert: Alert { title, body },
            mutable_content: 1,
            sound: "default",
        },
        opencharge: wake.wire(),
    };
    // Strings and integers only: serialization cannot fail.
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// An APNs error body: `{"reason":"BadDeviceToken"}` (410s add a `timestamp`).
#[derive(Deserialize)]
struct ErrorBody {
    reason: Option<String>,
}

/// What one APNs answer means.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    outcome: SendOutcome,
    /// APNs refused the provider token as expired: sign a new one.
    provider_token_expired: bool,
}

/// Maps an APNs answer (status, `Retry-After`, body) to an outcome: 200 sent; 410, and 400
/// `BadDeviceToken` or `DeviceTokenNotForTopic`, a dead token; 429 and 5xx retried (after
/// `Retry-After` when given); 403 `ExpiredProviderToken` retried with a new provider token;
/// anything else a failure with APNs's reason.
fn map_answer(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Answer {
    let reason = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.reason)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                "no reason given".into()
            } else {
                text.chars().take(200).collect()
            }
        });
    let described = format!("APNs {status} {reason}");
    let mut provider_token_expired = false;
    let outcome = match (status, reason.as_str()) {
        (200, _) => SendOutcome::Sent,
        (410, _) | (400, "BadDeviceToken" | "DeviceTokenNotForTopic") => {
            SendOutcome::DeadToken { reason: described }
        }
        (403, "ExpiredProviderToken") => {
            provider_token_expired = true;
            SendOutcome::Retry {
                after: retry_after,
                reason: described,
            }
        }
        (429, _) | (500..=599, _) => SendOutcome::Retry {
            after: retry_after,
            reason: described,
        },
        _ => SendOutcome::Fail { reason: described },
    };
    Answer {
        outcome,
        provider_token_expired,
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (a date in the past means now).
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An error and its causes, `outer: inner: …` (reqwest hides the TLS reason in a source).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Unix seconds now.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wake(kind: PushKind) -> WakeUp {
        WakeUp {
            kind,
            session_id: "ses_1".into(),
            event_id: 42,
        }
    }

    #[test]
    fn payload_is_exactly_the_agreed_body() {
        assert_eq!(
            String::from_utf8(payload(&wake(PushKind::PaymentRequest))).unwrap(),
            r#"{"aps":{"alert":{"title":"Payment request","body":"Open to review this payment."},"mutable-content":1,"sound":"default"},"opencharge":{"type":"payment_request","sessionId":"ses_1","eventId":"42"}}"#
        );
        assert_eq!(
            String::from_utf8(payload(&wake(PushKind::PaymentStatus))).unwrap(),
            r#"{"aps":{"alert":{"title":"Payment update","body":"Open to see this payment."},"mutable-content":1,"sound":"default"},"opencharge":{"type":"payment_status","sessionId":"ses_1","eventId":"42"}}"#
        );
    }

    #[test]
    fn host_follows_the_environment_unless_an_endpoint_is_set() {
        assert_eq!(
            device_url(None, PushEnvironment::Production, "00ff"),
            "https://api.push.apple.com/3/device/00ff"
        );
        assert_eq!(
            device_url(None, PushEnvironment::Sandbox, "00ff"),
            "https://api.sandbox.push.apple.com/3/device/00ff"
        );
        for environment in [PushEnvironment::Production, PushEnvironment::Sandbox] {
            assert_eq!(
                device_url(Some("https://localhost:8443/"), environment, "ab"),
                "https://localhost:8443/3/device/ab"
            );
        }
    }

    fn outcome(status: u16, body: &str) -> SendOutcome {
        map_answer(status, None, body.as_bytes()).outcome
    }

    #[test]
    fn answers_map_to_outcomes() {
        assert_eq!(outcome(200, ""), SendOutcome::Sent);
        assert_eq!(
            outcome(
                410,
                r#"{"reason":"Unregistered","timestamp":1700000000000}"#
            ),
            SendOutcome::DeadToken {
                reason: "APNs 410 Unregistered".into()
            }
        );
        assert_eq!(
            outcome(410, r#"{"reason":"ExpiredToken"}"#),
            SendOutcome::DeadToken {
                reason: "APNs 410 ExpiredToken".into()
            }
        );
        for reason in ["BadDeviceToken", "DeviceTokenNotForTopic"] {
            assert_eq!(
                outcome(400, &format!(r#"{{"reason":"{reason}"}}"#)),
                SendOutcome::DeadToken {
                    reason: format!("APNs 400 {reason}")
                }
            );
        }
        let after = Some(Duration::from_secs(7));
        for (status, reason) in [
            (429, "TooManyRequests"),
            (500, "InternalServerError"),
            (503, "ServiceUnavailable"),
            (502, "no reason given"),
        ] {
            let body = if status == 502 {
                String::new()
            } else {
                format!(r#"{{"reason":"{reason}"}}"#)
            };
            assert_eq!(
                map_answer(status, after, body.as_bytes()),
                Answer {
                    outcome: SendOutcome::Retry {
                        after,
                        reason: format!("APNs {status} {reason}")
                    },
                    provider_token_expired: false
                }
            );
        }
        assert_eq!(
            map_answer(403, None, br#"{"reason":"ExpiredProviderToken"}"#),
            Answer {
                outcome: SendOutcome::Retry {
                    after: None,
                    reason: "APNs 403 ExpiredProviderToken".into()
                },
                provider_token_expired: true
            }
        );
        for (status, body, reason) in [
            (
                403,
                r#"{"reason":"InvalidProviderToken"}"#,
                "APNs 403 InvalidProviderToken",
            ),
            (
                400,
                r#"{"reason":"BadCollapseId"}"#,
                "APNs 400 BadCollapseId",
            ),
            (
                413,
                r#"{"reason":"PayloadTooLarge"}"#,
                "APNs 413 PayloadTooLarge",
            ),
            (400, "<html>proxy</html>", "APNs 400 <html>proxy</html>"),
            (301, "", "APNs 301 no reason given"),
            (204, "", "APNs 204 no reason given"),
        ] {
            assert_eq!(
                outcome(status, body),
                SendOutcome::Fail {
                    reason: reason.into()
                },
                "{status} {body}"
            );
        }
        // Garbage never panics and never counts as sent.
        let noise: Vec<u8> = (0..=255u8).cycle().take(20_000).collect();
        assert!(matches!(
            map_answer(400, None, &noise).outcome,
            SendOutcome::Fail { .. }
        ));
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn collapse_id_fits_apns_limit() {
        assert_eq!(collapse_id("ses_1"), "ses_1");
        let long = "é".repeat(40);
        let cut = collapse_id(&long);
        assert!(cut.len() <= MAX_COLLAPSE_ID_LEN && long.starts_with(cut));
        assert_eq!(cut.len(), 64);
    }

    /// A P-256 key made with `openssl genpkey` for these tests only, and its public half.
    const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiois/5RtKZjM1mYP
fDSgMexd1hDQA0W3piODNus40/uhRANCAATSHMQOtq2U6sZ5XVZo6iqlbB21Y6F7
mdBE/yawA2tgAhmqgGqp+OAaHQ8vPrrWs2CZQrXIOanD640k8iTVPbIV
-----END PRIVATE KEY-----
";
    const TEST_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE0hzEDratlOrGeV1WaOoqpWwdtWOh
e5nQRP8msANrYAIZqoBqqfjgGh0PLz661rNgmUK1yDmpw+uNJPIk1T2yFQ==
-----END PUBLIC KEY-----
";

    fn tokens() -> ProviderTokens {
        ProviderTokens {
            key: EncodingKey::from_ec_pem(TEST_KEY.as_bytes()).unwrap(),
            team_id: "TEAM123456".into(),
            key_id: "KEY1234567".into(),
            current: Mutex::new(None),
        }
    }

    /// The header and the claims of `jwt`, after checking its ES256 signature with the
    /// public key.
    fn verified(jwt: &str) -> (jsonwebtoken::Header, serde_json::Value) {
        let key = jsonwebtoken::DecodingKey::from_ec_pem(TEST_PUBLIC_KEY.as_bytes()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &validation).unwrap();
        (data.header, data.claims)
    }

    #[test]
    fn provider_token_is_es256_with_kid_iss_iat_and_reused_for_50_minutes() {
        let tokens = tokens();
        let first = tokens.get(1_000_000).unwrap();
        let (header, claims) = verified(&first);
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("KEY1234567"));
        assert_eq!(header.typ, None);
        assert_eq!(
            claims,
            serde_json::json!({"iss": "TEAM123456", "iat": 1_000_000})
        );
        // Reused while younger than 50 minutes.
        assert_eq!(tokens.get(1_000_000 + 49 * 60).unwrap(), first);
        assert_eq!(
            tokens
                .get(1_000_000 + PROVIDER_TOKEN_LIFETIME_SECS - 1)
                .unwrap(),
            first
        );
        // Replaced at 50 minutes, and the new one is then reused.
        let second = tokens
            .get(1_000_000 + PROVIDER_TOKEN_LIFETIME_SECS)
            .unwrap();
        assert_ne!(second, first);
        assert_eq!(
            verified(&second).1["iat"],
            1_000_000 + PROVIDER_TOKEN_LIFETIME_SECS
        );
        assert_eq!(
            tokens
                .get(1_000_000 + PROVIDER_TOKEN_LIFETIME_SECS + 5)
                .unwrap(),
            second
        );
        // A clock set back gets a fresh token rather than one "from the future".
        let back = tokens.get(999_000).unwrap();
        assert_eq!(verified(&back).1["iat"], 999_000);
    }

    #[test]
    fn an_expired_provider_token_is_replaced_once() {
        let tokens = tokens();
        let first = tokens.get(2_000_000).unwrap();
        tokens.expire("some.other.token");
        assert_eq!(tokens.get(2_000_001).unwrap(), first);
        tokens.expire(&first);
        let second = tokens.get(2_000_001).unwrap();
        assert_ne!(second, first);
        // A late refusal of the old token does not throw the new one away.
        tokens.expire(&first);
        assert_eq!(tokens.get(2_000_002).unwrap(), second);
    }

    #[test]
    fn device_tokens_are_hex_only() {
        assert!(is_device_token("00ffAB"));
        assert!(!is_device_token(""));
        assert!(!is_device_token("00ff/../x"));
    }
}
