//! The FCM HTTP v1 sender: Google's OAuth2 service-account flow (an RS256 JWT assertion
//! exchanged at the service account's `token_uri` for an access token, cached until shortly
//! before it expires) and `POST {endpoint}/v1/projects/{project_id}/messages:send` with a
//! high-priority data message, each answer mapped to a [`SendOutcome`].
//!
//! `jsonwebtoken` (with its aws-lc-rs backend, the crypto the gateway's rustls already links)
//! signs the assertion; the exchange and the send go through the gateway's one `reqwest`
//! client. Google's own auth crates (`gcp_auth`, `yup-oauth2`) would bring a second HTTP client
//! and TLS stack for one form POST.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::{PushSender, PushSetupError, PushTarget, SendOutcome, WakeUp};
use crate::config::{FcmConfig, FCM_ENDPOINT};

/// The OAuth2 scope that allows sending FCM messages.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The JWT bearer grant type (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of the signed assertion, seconds (Google's maximum).
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// An access token is replaced this long before its `expires_in` runs out.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// FCM's collapse key: a newer wake-up replaces an undelivered older one on the device.
const COLLAPSE_KEY: &str = "opencharge";
/// Longest `Retry-After` honoured; a longer one is cut to this (the wake-up is too old by then).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);
/// Longest access token lifetime believed; a longer `expires_in` is cut to this.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// How much of a provider's error body goes into a reason.
const REASON_BODY_CHARS: usize = 300;
/// The config key every setup error names.
const ACCOUNT_FILE: &str = "push.fcm.service_account_file";

/// Sends wake-ups through FCM HTTP v1 with a service account.
pub struct FcmSender {
    http: reqwest::Client,
    send_url: String,
    max_age_secs: i64,
    account: ServiceAccount,
    /// The cached access token; the lock is held across a refresh, so concurrent sends wait
    /// for the one exchange instead of starting their own.
    token: Mutex<Option<AccessToken>>,
}

/// The parts of the service account JSON key file the flow uses.
struct ServiceAccount {
    client_email: String,
    private_key_id: String,
    token_uri: String,
    key: EncodingKey,
}

/// A cached OAuth2 access token.
#[derive(Clone)]
struct AccessToken {
    value: String,
    /// When to stop using it (`expires_in` minus [`REFRESH_MARGIN`]).
    refresh_at: Instant,
}

/// The service account file as Google writes it (other fields are ignored).
#[derive(Deserialize)]
struct AccountFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

/// The assertion's claims (RFC 7523 as Google documents it).
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
    token_type: String,
}

impl FcmSender {
    /// Reads and checks the service account file of `config` and builds a sender that uses
    /// `http` for the token exchange and the sends. Wake-ups live `max_age_secs` on FCM (the
    /// message's `android.ttl`).
    pub fn new(
        config: &FcmConfig,
        max_age_secs: i64,
        http: reqwest::Client,
    ) -> Result<FcmSender, PushSetupError> {
        let project_id = config.project_id.trim();
        if project_id.is_empty()
            || !project_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(PushSetupError::Invalid {
                what: "push.fcm.project_id",
                reason: format!(
                    "{:?} is not a Firebase project id (letters, digits and '-')",
                    config.project_id
                ),
            });
        }
        if max_age_secs <= 0 {
            return Err(PushSetupError::Invalid {
                what: "push.max_age_secs",
                reason: format!("must be positive, is {max_age_secs}"),
            });
        }
        let account = ServiceAccount::read(&config.service_account_file)?;
        let endpoint = config
            .endpoint
            .as_deref()
            .unwrap_or(FCM_ENDPOINT)
            .trim_end_matches('/');
        Ok(FcmSender {
            http,
            send_url: format!("{endpoint}/v1/projects/{project_id}/messages:send"),
            max_age_secs,
            account,
            token: Mutex::new(None),
        })
    }

    /// The exact HTTP v1 body of one wake-up.
    fn body(&self, target: &PushTarget, wake: &WakeUp) -> Value {
        let wire = wake.wire();
        json!({
            "message": {
                "token": target.token,
                "data": {
                    "type": wire.kind.as_str(),
                    "sessionId": wire.session_id,
                    "eventId": wire.event_id,
                },
                "android": {
                    "priority": "HIGH",
                    "ttl": format!("{}s", self.max_age_secs),
                    "collapse_key": COLLAPSE_KEY,
                },
            }
        })
    }

    /// A valid access token: the cached one, or a new one from the token endpoint. An `Err`
    /// is the outcome of the send that needed it.
    async fn access_token(&self) -> Result<String, SendOutcome> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            if Instant::now() < token.refresh_at {
                return Ok(token.value.clone());
            }
        }
        *cached = None;
        let fresh = self.exchange().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forgets `used` if it is still the cached token (FCM refused it).
    async fn drop_token(&self, used: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == used) {
            *cached = None;
        }
    }

    /// One JWT bearer grant at the service account's `token_uri`.
    async fn exchange(&self) -> Result<AccessToken, SendOutcome> {
        let assertion = self
            .account
            .assertion(unix_now())
            .map_err(|e| SendOutcome::Fail {
                reason: format!("cannot sign the OAuth2 assertion: {e}"),
            })?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER_GRANT)
            .append_pair("assertion", &assertion)
            .finish();
        let started = Instant::now();
        let response = self
            .http
            .post(&self.account.token_uri)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form)
            .send()
            .await
            .map_err(|e| SendOutcome::Retry {
                after: None,
                reason: format!("OAuth2 token endpoint unreachable: {e}"),
            })?;
        let status = response.status();
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let body = response.bytes().await.map_err(|e| SendOutcome::Retry {
            after: None,
            reason: format!("OAuth2 token endpoint answer cut off: {e}"),
        })?;
        let token = token_answer(status.as_u16(), retry_after, &body, started)?;
        tracing::debug!(
            token_uri = %self.account.token_uri,
            client_email = %self.account.client_email,
            "FCM access token obtained"
        );
        Ok(token)
    }
}

impl ServiceAccount {
    /// Reads the JSON key file and checks every field the flow needs.
    fn read(path: &Path) -> Result<ServiceAccount, PushSetupError> {
        let text = std::fs::read_to_string(path).map_err(|source| PushSetupError::Read {
            what: ACCOUNT_FILE,
            path: path.to_path_buf(),
            source,
        })?;
        ServiceAccount::parse(&text)
    }

    /// Parses and checks a service account JSON key.
    fn parse(text: &str) -> Result<ServiceAccount, PushSetupError> {
        let invalid = |reason: String| PushSetupError::Invalid {
            what: ACCOUNT_FILE,
            reason,
        };
        let file: AccountFile = serde_json::from_str(text)
            .map_err(|e| invalid(format!("not a service account JSON key: {e}")))?;
        let field = |name: &str, value: Option<String>| {
            value
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| invalid(format!("field `{name}` is missing or empty")))
        };
        let kind = field("type", file.kind)?;
        if kind != "service_account" {
            return Err(invalid(format!(
                "field `type` is {kind:?}, expected \"service_account\""
            )));
        }
        let client_email = field("client_email", file.client_email)?;
        let private_key_id = field("private_key_id", file.private_key_id)?;
        let token_uri = field("token_uri", file.token_uri)?;
        check_token_uri(&token_uri)
            .map_err(|reason| invalid(format!("field `token_uri` {reason}")))?;
        let pem = field("private_key", file.private_key)?;
        if !pem.trim_start().starts_with("-----BEGIN PRIVATE KEY-----") {
            return Err(invalid(
                "field `private_key` is not a PKCS#8 PEM key (-----BEGIN PRIVATE KEY-----)".into(),
            ));
        }
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
            invalid(format!(
                "field `private_key` is not an RSA private key: {e}"
            ))
        })?;
        let account = ServiceAccount {
            client_email,
            private_key_id,
            token_uri,
            key,
        };
        // The PEM parser only unwraps the key; signing once proves aws-lc-rs accepts it.
        account
            .assertion(unix_now())
            .map_err(|e| invalid(format!("field `private_key` cannot sign RS256: {e}")))?;
        Ok(account)
    }

    /// The signed RS256 assertion for a token request at `now` (unix seconds).
    fn assertion(&self, now: u64) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.private_key_id.clone());
        let claims = Claims {
            iss: &self.client_email,
            scope: FCM_SCOPE,
            aud: &self.token_uri,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
    }
}

/// A token URI must be `https://`, or `http://` on a loopback host (a local fake).
fn check_token_uri(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("{uri:?} is not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "{uri:?} must be https:// (http:// only on a loopback host)"
        )),
    }
}

#[async_trait]
impl PushSender for FcmSender {
    async fn send(&self, target: &PushTarget, wake: &WakeUp) -> SendOutcome {
        let token = match self.access_token().await {
            Ok(token) => token,
            Err(outcome) => return outcome,
        };
        let response = match self
            .http
            .post(&self.send_url)
            .bearer_auth(&token)
            .json(&self.body(target, wake))
            .send()
            .await
        {
            Ok(response) => response,
            Err(e) => {
                return SendOutcome::Retry {
                    after: None,
                    reason: format!("FCM unreachable: {e}"),
                }
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => {
                return SendOutcome::Retry {
                    after: None,
                    reason: format!("FCM answer cut off: {e}"),
                }
            }
        };
        if status == 401 {
            self.drop_token(&token).await;
        }
        send_outcome(status, retry_after, &body)
    }
}

/// Maps the token endpoint's answer: a usable bearer token, or the send's outcome (429 and
/// 5xx and a garbled 200 are temporary; another refusal means the credentials are bad).
fn token_answer(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    requested: Instant,
) -> Result<AccessToken, SendOutcome> {
    if (200..300).contains(&status) {
        let answer: TokenAnswer = serde_json::from_slice(body).map_err(|e| SendOutcome::Retry {
            after: None,
            reason: format!(
                "OAuth2 token endpoint answered {status} without a token ({e}): {}",
                excerpt(body)
            ),
        })?;
        if !answer.token_type.eq_ignore_ascii_case("bearer")
            || answer.access_token.is_empty()
            || !answer.access_token.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(SendOutcome::Retry {
                after: None,
                reason: format!(
                    "OAuth2 token endpoint answered an unusable token (type {:?})",
                    answer.token_type
                ),
            });
        }
        let lifetime = Duration::from_secs(answer.expires_in).min(MAX_TOKEN_LIFETIME);
        return Ok(AccessToken {
            value: answer.access_token,
            refresh_at: requested + lifetime.saturating_sub(REFRESH_MARGIN),
        });
    }
    let reason = format!("OAuth2 token endpoint answered {status}: {}", excerpt(body));
    if status == 429 || status >= 500 {
        Err(SendOutcome::Retry {
            after: retry_after,
            reason,
        })
    } else {
        Err(SendOutcome::Fail { reason })
    }
}

/// Maps FCM's answer to a send (HTTP status, `Retry-After`, body in the FCM v1 error model).
fn send_outcome(status: u16, retry_after: Option<Duration>, body: &[u8]) -> SendOutcome {
    if (200..300).contains(&status) {
        return SendOutcome::Sent;
    }
    let error = FcmErrorBody::parse(body);
    let code = error.code();
    let reason = format!("FCM answered {status} {code}: {}", error.message(body));
    match code {
        "UNREGISTERED" | "SENDER_ID_MISMATCH" => return SendOutcome::DeadToken { reason },
        "QUOTA_EXCEEDED" | "UNAVAILABLE" | "INTERNAL" => {
            return SendOutcome::Retry {
                after: retry_after,
                reason,
            }
        }
        "INVALID_ARGUMENT" | "THIRD_PARTY_AUTH_ERROR" => return SendOutcome::Fail { reason },
        _ => {}
    }
    match status {
        // The access token expired or was revoked: the caller dropped it; a new one is
        // fetched on the next attempt.
        401 => SendOutcome::Retry {
            after: retry_after,
            reason,
        },
        429 | 500..=599 => SendOutcome::Retry {
            after: retry_after,
            reason,
        },
        _ => SendOutcome::Fail { reason },
    }
}

/// FCM's error body: `{"error": {"code", "message", "status", "details": [{"@type",
/// "errorCode"}]}}`. Every part is optional: whatever arrives is read without failing.
struct FcmErrorBody {
    status: Option<String>,
    error_code: Option<String>,
    message: Option<String>,
}

/// The `@type` of FCM's own error detail.
const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";

impl FcmErrorBody {
    fn parse(body: &[u8]) -> FcmErrorBody {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let error = &value["error"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let error_code = error["details"].as_array().and_then(|details| {
            details
                .iter()
                .find(|d| d["@type"].as_str() == Some(FCM_ERROR_TYPE))
                .and_then(|d| text(&d["errorCode"]))
        });
        FcmErrorBody {
            status: text(&error["status"]),
            error_code,
            message: text(&error["message"]),
        }
    }

    /// FCM's `errorCode` when it gave one, else the Google API `status`, else empty.
    fn code(&self) -> &str {
        self.error_code
            .as_deref()
            .or(self.status.as_deref())
            .unwrap_or("")
    }

    /// The error's message, or the start of the raw body.
    fn message(&self, body: &[u8]) -> String {
        match &self.message {
            Some(message) => message.chars().take(REASON_BODY_CHARS).collect(),
            None => excerpt(body),
        }
    }
}

/// The start of a body, for reasons and logs.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    text.chars().take(REASON_BODY_CHARS).collect()
}

/// `Retry-After` in seconds or as an HTTP date (relative to `now`), at most a day.
fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let after = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(after.min(MAX_RETRY_AFTER))
}

/// Unix seconds now.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    fn fcm_error(http: u16, status: &str, error_code: Option<&str>) -> Vec<u8> {
        let details = match error_code {
            Some(code) => json!([{"@type": FCM_ERROR_TYPE, "errorCode": code}]),
            None => json!([]),
        };
        serde_json::to_vec(&json!({"error": {
            "code": http, "message": "told by FCM", "status": status, "details": details
        }}))
        .unwrap()
    }

    #[test]
    fn answers_map_to_outcomes() {
        assert_eq!(
            send_outcome(200, None, br#"{"name":"projects/p/messages/1"}"#),
            SendOutcome::Sent
        );
        for (http, status, code) in [
            (404, "NOT_FOUND", "UNREGISTERED"),
            (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
        ] {
            let outcome = send_outcome(http, None, &fcm_error(http, status, Some(code)));
            assert!(
                matches!(&outcome, SendOutcome::DeadToken { reason } if reason.contains(code)),
                "{code}: {outcome:?}"
            );
        }
        let seven = Some(Duration::from_secs(7));
        for (http, status, code) in [
            (429, "RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED")),
            (500, "INTERNAL", Some("INTERNAL")),
            (503, "UNAVAILABLE", Some("UNAVAILABLE")),
            (503, "UNAVAILABLE", None),
            (502, "", None),
        ] {
            assert_eq!(
                send_outcome(http, seven, &fcm_error(http, status, code)),
                SendOutcome::Retry {
                    after: seven,
                    reason: format!(
                        "FCM answered {http} {}: told by FCM",
                        code.unwrap_or(status)
                    ),
                }
            );
        }
        let outcome = send_outcome(
            400,
            None,
            &fcm_error(400, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT")),
        );
        assert_eq!(
            outcome,
            SendOutcome::Fail {
                reason: "FCM answered 400 INVALID_ARGUMENT: told by FCM".into()
            }
        );
        // A 404 or 403 without FCM's token error is the sender's problem (wrong project, no
        // permission), not a dead token.
        assert!(matches!(
            send_outcome(404, None, &fcm_error(404, "NOT_FOUND", None)),
            SendOutcome::Fail { .. }
        ));
        assert!(matches!(
            send_outcome(403, None, &fcm_error(403, "PERMISSION_DENIED", None)),
            SendOutcome::Fail { .. }
        ));
        assert!(matches!(
            send_outcome(401, None, &fcm_error(401, "UNAUTHENTICATED", None)),
            SendOutcome::Retry { after: None, .. }
        ));
    }

    #[test]
    fn any_body_maps_without_panicking() {
        let bodies: [&[u8]; 7] = [
            b"",
            b"<html>bad gateway</html>",
            b"\xff\xfe\x00garbage",
            br#"{"error": "flat string"}"#,
            br#"{"error": {"details": "not a list", "status": 7}}"#,
            br#"{"error": {"details": [{"@type": 3, "errorCode": {}}]}}"#,
            br#"[1, 2, 3]"#,
        ];
        for body in bodies {
            assert!(matches!(
                send_outcome(503, None, body),
                SendOutcome::Retry { .. }
            ));
            assert!(matches!(
                send_outcome(400, None, body),
                SendOutcome::Fail { .. }
            ));
            match send_outcome(418, None, body) {
                SendOutcome::Fail { reason } => assert!(reason.starts_with("FCM answered 418")),
                other => panic!("418 gave {other:?}"),
            }
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let header = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert_eq!(retry_after(&header("7"), now), Some(Duration::from_secs(7)));
        let in_two_minutes = httpdate::fmt_http_date(now + Duration::from_secs(120));
        assert_eq!(
            retry_after(&header(&in_two_minutes), now),
            Some(Duration::from_secs(120))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(120));
        assert_eq!(retry_after(&header(&past), now), Some(Duration::ZERO));
        assert_eq!(
            retry_after(&header("999999999"), now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after(&header("soon"), now), None);
        assert_eq!(retry_after(&header("-5"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn token_answers_are_checked() {
        let now = Instant::now();
        let ok = br#"{"access_token":"ya29.abc","expires_in":3599,"token_type":"Bearer"}"#;
        let token = token_answer(200, None, ok, now)
            .map_err(|o| format!("{o:?}"))
            .unwrap();
        assert_eq!(token.value, "ya29.abc");
        assert_eq!(token.refresh_at, now + Duration::from_secs(3599 - 60));
        for garbage in [
            &b"not json"[..],
            br#"{"access_token":"x"}"#,
            br#"{"access_token":"","expires_in":5,"token_type":"Bearer"}"#,
            br#"{"access_token":"a b","expires_in":5,"token_type":"Bearer"}"#,
            br#"{"access_token":"x","expires_in":5,"token_type":"MAC"}"#,
            br#"{"access_token":"x","expires_in":-1,"token_type":"Bearer"}"#,
        ] {
            assert!(
                matches!(
                    token_answer(200, None, garbage, now),
                    Err(SendOutcome::Retry { .. })
                ),
                "{}",
                String::from_utf8_lossy(garbage)
            );
        }
        assert!(matches!(
            token_answer(503, Some(Duration::from_secs(3)), b"", now),
            Err(SendOutcome::Retry { after: Some(d), .. }) if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            token_answer(400, None, br#"{"error":"invalid_grant"}"#, now),
            Err(SendOutcome::Fail { reason }) if reason.contains("invalid_grant")
        ));
    }

    #[test]
    fn service_account_fields_are_named() {
        let cases = [
            ("not json", "not a service account JSON key"),
            (r#"{"type":"authorized_user"}"#, "field `type`"),
            (r#"{"type":"service_account"}"#, "field `client_email`"),
            (
                r#"{"type":"service_account","client_email":"a@b","private_key_id":"k","token_uri":"ftp://x/token"}"#,
                "field `token_uri`",
            ),
            (
                r#"{"type":"service_account","client_email":"a@b","private_key_id":"k","token_uri":"http://oauth.example/token"}"#,
                "field `token_uri`",
            ),
            (
                r#"{"type":"service_account","client_email":"a@b","private_key_id":"k","token_uri":"https://oauth2.googleapis.com/token","private_key":"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"}"#,
                "field `private_key`",
            ),
            (
                r#"{"type":"service_account","client_email":"a@b","private_key_id":"k","token_uri":"https://oauth2.googleapis.com/token","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#,
                "field `private_key`",
            ),
        ];
        for (text, named) in cases {
            match ServiceAccount::parse(text) {
                Err(PushSetupError::Invalid { what, reason }) => {
                    assert_eq!(what, ACCOUNT_FILE);
                    assert!(reason.contains(named), "{text}: {reason}");
                }
                Err(other) => panic!("{text}: {other}"),
                Ok(_) => panic!("{text} was accepted"),
            }
        }
    }
}
