//! The FCM HTTP v1 sender against the strict loopback FCM of the test kit: the OAuth2
//! service-account exchange (RS256 assertion verified with the account's public key), the
//! access token's caching and renewal, the exact wake-up message, every answer FCM gives
//! mapped to an outcome, and service account files that cannot work refused at setup.

use std::time::Duration;

use axum::routing::post;
use axum::Router;
use opencharge_gateway::config::FcmConfig;
use opencharge_gateway::push::fcm::FcmSender;
use opencharge_gateway::push::{
    PushEnvironment, PushKind, PushSender, PushSetupError, PushTarget, SendOutcome, WakeUp,
};
use opencharge_protocol::app::PushWakeUp;
use opencharge_testkit::push::{FakeFcm, FcmReply};
use serde_json::Value;

const MAX_AGE_SECS: i64 = 600;

fn target(token: &str) -> PushTarget {
    PushTarget {
        device_id: format!("dev_{token}"),
        token: token.to_string(),
        environment: PushEnvironment::Production,
    }
}

fn wake(kind: PushKind, session_id: &str, event_id: i64) -> WakeUp {
    WakeUp {
        kind,
        session_id: session_id.to_string(),
        event_id,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn fake_and_sender() -> (FakeFcm, FcmSender) {
    let fake = FakeFcm::start().await;
    let sender = FcmSender::new(&fake.fcm_config(), MAX_AGE_SECS, http()).unwrap();
    (fake, sender)
}

/// The outcome's reason, for messages.
fn reason(outcome: &SendOutcome) -> &str {
    match outcome {
        SendOutcome::Sent => "sent",
        SendOutcome::Retry { reason, .. }
        | SendOutcome::DeadToken { reason }
        | SendOutcome::Fail { reason } => reason,
    }
}

#[tokio::test]
async fn a_wake_up_is_accepted_and_carries_exactly_kind_session_and_event() {
    let (fake, sender) = fake_and_sender().await;
    let request = wake(PushKind::PaymentRequest, "ses_8f3a", 42);
    let outcome = sender.send(&target("fcm-token-1"), &request).await;
    assert_eq!(outcome, SendOutcome::Sent, "{}", reason(&outcome));
    let status = wake(PushKind::PaymentStatus, "ses_8f3a", 43);
    assert_eq!(
        sender.send(&target("fcm-token-1"), &status).await,
        SendOutcome::Sent
    );
    assert_eq!(fake.rejections(), Vec::<String>::new());

    let first = fake.next_message(Duration::from_secs(10)).await.unwrap();
    assert_eq!(first.token, "fcm-token-1");
    assert_eq!(first.ttl, "600s");
    assert_eq!(first.collapse_key, "opencharge");
    let data: Vec<(&str, &str)> = first
        .data
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        data,
        [
            ("eventId", "42"),
            ("sessionId", "ses_8f3a"),
            ("type", "payment_request")
        ]
    );
    // What the app hands `handlePush` is exactly the wake-up, nothing more.
    let parsed: PushWakeUp = serde_json::from_str(&first.data_json()).unwrap();
    assert_eq!(parsed, request.wire());
    let as_value: Value = serde_json::from_str(&first.data_json()).unwrap();
    assert_eq!(as_value.as_object().unwrap().len(), 3);

    let second = fake.next_message(Duration::from_secs(10)).await.unwrap();
    assert_eq!(second.data["type"], "payment_status");
    assert_eq!(second.data["eventId"], "43");
    assert_eq!(fake.messages().len(), 2);
    assert_eq!(fake.next_message(Duration::from_millis(50)).await, None);
}

#[tokio::test]
async fn concurrent_sends_share_one_token_exchange() {
    let (fake, sender) = fake_and_sender().await;
    let targets: Vec<PushTarget> = (0..12).map(|i| target(&format!("tok-{i}"))).collect();
    let request = wake(PushKind::PaymentRequest, "ses_1", 7);
    let outcomes =
        futures_util::future::join_all(targets.iter().map(|t| sender.send(t, &request))).await;
    assert!(
        outcomes.iter().all(|o| *o == SendOutcome::Sent),
        "{outcomes:?}"
    );
    for t in &targets[..4] {
        assert_eq!(sender.send(t, &request).await, SendOutcome::Sent);
    }
    assert_eq!(fake.token_exchanges(), 1);
    assert_eq!(fake.messages().len(), 16);
    assert_eq!(fake.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn an_access_token_near_its_expiry_is_replaced() {
    let (fake, sender) = fake_and_sender().await;
    // Used until 60 s before expiry: a 61 s token is good for one second.
    fake.set_token_lifetime(61);
    let request = wake(PushKind::PaymentRequest, "ses_2", 1);
    assert_eq!(sender.send(&target("t"), &request).await, SendOutcome::Sent);
    assert_eq!(fake.token_exchanges(), 1);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(sender.send(&target("t"), &request).await, SendOutcome::Sent);
    assert_eq!(fake.token_exchanges(), 2);
    assert_eq!(fake.messages().len(), 2);
    assert_eq!(fake.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn a_revoked_access_token_is_dropped_and_the_send_retried() {
    let (fake, sender) = fake_and_sender().await;
    let request = wake(PushKind::PaymentRequest, "ses_3", 5);
    assert_eq!(sender.send(&target("t"), &request).await, SendOutcome::Sent);
    fake.revoke_access_tokens();
    let outcome = sender.send(&target("t"), &request).await;
    assert!(
        matches!(&outcome, SendOutcome::Retry { after: None, reason } if reason.contains("401")),
        "{outcome:?}"
    );
    let rejections = fake.rejections();
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert!(rejections[0].contains("not a bearer token this fake issued"));
    // The next attempt exchanges the assertion again and goes through.
    assert_eq!(sender.send(&target("t"), &request).await, SendOutcome::Sent);
    assert_eq!(fake.token_exchanges(), 2);
    assert_eq!(fake.messages().len(), 2);
}

#[tokio::test]
async fn provider_refusals_map_to_dead_token_and_retries() {
    let (fake, sender) = fake_and_sender().await;
    let request = wake(PushKind::PaymentRequest, "ses_4", 9);

    fake.respond_to("gone", FcmReply::Unregistered);
    let outcome = sender.send(&target("gone"), &request).await;
    assert!(
        matches!(&outcome, SendOutcome::DeadToken { reason } if reason.contains("UNREGISTERED")),
        "{outcome:?}"
    );

    fake.respond_to(
        "busy",
        FcmReply::TooManyRequests {
            retry_after_secs: 7,
        },
    );
    let outcome = sender.send(&target("busy"), &request).await;
    assert!(
        matches!(&outcome, SendOutcome::Retry { after: Some(after), reason }
            if *after == Duration::from_secs(7) && reason.contains("QUOTA_EXCEEDED")),
        "{outcome:?}"
    );

    fake.respond_to("down", FcmReply::Unavailable);
    let outcome = sender.send(&target("down"), &request).await;
    assert!(
        matches!(&outcome, SendOutcome::Retry { after: None, reason } if reason.contains("503")),
        "{outcome:?}"
    );

    // Scripted replies are one-shot: the retry goes through.
    assert!(fake.messages().is_empty());
    assert_eq!(
        sender.send(&target("busy"), &request).await,
        SendOutcome::Sent
    );
    assert_eq!(fake.messages().len(), 1);
    assert_eq!(fake.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn a_wrong_project_fails_and_an_unreachable_fcm_is_retried() {
    let fake = FakeFcm::start().await;
    let request = wake(PushKind::PaymentStatus, "ses_5", 11);

    let wrong = FcmConfig {
        project_id: "someone-else".into(),
        ..fake.fcm_config()
    };
    let sender = FcmSender::new(&wrong, MAX_AGE_SECS, http()).unwrap();
    let outcome = sender.send(&target("t"), &request).await;
    assert!(
        matches!(&outcome, SendOutcome::Fail { reason } if reason.contains("404")),
        "{outcome:?}"
    );
    assert_eq!(fake.rejections().len(), 1);

    // A port nobody listens on (bound, then released).
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let unreachable = FcmConfig {
        endpoint: Some(format!("http://{closed}")),
        ..fake.fcm_config()
    };
    let sender = FcmSender::new(&unreachable, MAX_AGE_SECS, http()).unwrap();
    let outcome = sender.send(&target("t"), &request).await;
    assert!(
        matches!(&outcome, SendOutcome::Retry { after: None, reason } if reason.contains("unreachable")),
        "{outcome:?}"
    );
}

/// A copy of the fake's service account with `edit` applied, in `dir`.
fn edited_account(
    fake: &FakeFcm,
    dir: &tempfile::TempDir,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> FcmConfig {
    let text = std::fs::read_to_string(fake.service_account_file()).unwrap();
    let mut account: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    edit(&mut account);
    let path = dir.path().join(format!("account-{}.json", rand_suffix()));
    std::fs::write(&path, serde_json::to_vec(&account).unwrap()).unwrap();
    FcmConfig {
        service_account_file: path,
        ..fake.fcm_config()
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn setup_error(config: &FcmConfig) -> PushSetupError {
    match FcmSender::new(config, MAX_AGE_SECS, http()) {
        Ok(_) => panic!("{config:?} was accepted"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn unusable_service_accounts_are_refused_naming_the_field() {
    let fake = FakeFcm::start().await;
    let dir = tempfile::tempdir().unwrap();

    let missing = FcmConfig {
        service_account_file: dir.path().join("nowhere.json"),
        ..fake.fcm_config()
    };
    assert!(matches!(
        setup_error(&missing),
        PushSetupError::Read {
            what: "push.fcm.service_account_file",
            ..
        }
    ));

    let not_json = dir.path().join("not-json.json");
    std::fs::write(&not_json, "private_key = 'oops'").unwrap();
    let config = FcmConfig {
        service_account_file: not_json,
        ..fake.fcm_config()
    };
    let error = setup_error(&config).to_string();
    assert!(error.contains("push.fcm.service_account_file"), "{error}");
    assert!(error.contains("not a service account JSON key"), "{error}");

    for field in [
        "type",
        "client_email",
        "private_key",
        "private_key_id",
        "token_uri",
    ] {
        let config = edited_account(&fake, &dir, |a| {
            a.remove(field);
        });
        let error = setup_error(&config).to_string();
        assert!(
            error.contains(&format!("field `{field}`")),
            "{field}: {error}"
        );
    }

    let config = edited_account(&fake, &dir, |a| {
        a.insert("type".into(), "authorized_user".into());
    });
    assert!(setup_error(&config).to_string().contains("field `type`"));

    // A PKCS#8 P-256 key where the RSA key belongs.
    let ec_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    assert!(ec_key.starts_with("-----BEGIN PRIVATE KEY-----"));
    let config = edited_account(&fake, &dir, |a| {
        a.insert("private_key".into(), ec_key.into());
    });
    let error = setup_error(&config).to_string();
    assert!(
        error.contains("field `private_key`") && error.contains("RSA"),
        "{error}"
    );

    let bad_project = FcmConfig {
        project_id: "my project/../x".into(),
        ..fake.fcm_config()
    };
    assert!(setup_error(&bad_project)
        .to_string()
        .contains("push.fcm.project_id"));
}

#[tokio::test]
async fn a_garbled_token_endpoint_means_retry_not_a_panic() {
    let fake = FakeFcm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = Router::new()
        .route(
            "/html/token",
            post(|| async { "<html>Service Unavailable</html>" }),
        )
        .route(
            "/half/token",
            post(|| async { axum::Json(serde_json::json!({"access_token": "x"})) }),
        )
        .route(
            "/busy/token",
            post(|| async {
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    [("retry-after", "4")],
                    "\u{0}\u{1}",
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let request = wake(PushKind::PaymentRequest, "ses_6", 3);
    for (path, after) in [
        ("html", None),
        ("half", None),
        ("busy", Some(Duration::from_secs(4))),
    ] {
        let config = edited_account(&fake, &dir, |a| {
            a.insert("token_uri".into(), format!("{base}/{path}/token").into());
        });
        let sender = FcmSender::new(&config, MAX_AGE_SECS, http()).unwrap();
        let outcome = sender.send(&target("t"), &request).await;
        assert!(
            matches!(&outcome, SendOutcome::Retry { after: a, .. } if *a == after),
            "{path}: {outcome:?}"
        );
    }
    assert!(fake.messages().is_empty());
    server.abort();
}

// ---------------------------------------------------------------------------------------------
// The fake itself is strict: what real FCM would refuse is refused and recorded.

/// An assertion for the fake's service account, with `edit` applied to the claims.
fn assertion(
    account: &Value,
    kid: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = serde_json::Map::new();
    claims.insert("iss".into(), account["client_email"].clone());
    claims.insert(
        "scope".into(),
        "https://www.googleapis.com/auth/firebase.messaging".into(),
    );
    claims.insert("aud".into(), account["token_uri"].clone());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + 3600).into());
    edit(&mut claims);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_string());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(
        account["private_key"].as_str().unwrap().as_bytes(),
    )
    .unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

async fn exchange(token_uri: &str, grant_type: &str, assertion: &str) -> (u16, Value) {
    let form = format!(
        "grant_type={}&assertion={assertion}",
        grant_type.replace(':', "%3A")
    );
    let response = http()
        .post(token_uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[tokio::test]
async fn the_fake_token_endpoint_refuses_bad_assertions() {
    let fake = FakeFcm::start().await;
    let account: Value =
        serde_json::from_slice(&std::fs::read(fake.service_account_file()).unwrap()).unwrap();
    let token_uri = account["token_uri"].as_str().unwrap().to_string();
    let kid = account["private_key_id"].as_str().unwrap().to_string();

    let good = assertion(&account, &kid, |_| {});
    let (status, answer) = exchange(&token_uri, GRANT, &good).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 3600);
    assert!(answer["access_token"].as_str().unwrap().len() > 20);
    assert_eq!(fake.token_exchanges(), 1);
    assert_eq!(fake.rejections(), Vec::<String>::new());

    // Claims signed, then changed: the signature no longer verifies.
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let other = assertion(&account, &kid, |c| {
            c.insert("iss".into(), "intruder@example.com".into());
        });
        let other_claims = other.split('.').nth(1).unwrap().to_string();
        format!("{}.{other_claims}.{}", parts[0], parts[2])
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (tampered, GRANT, "signature does not verify"),
        (
            assertion(&account, &kid, |c| {
                c.insert(
                    "scope".into(),
                    "https://www.googleapis.com/auth/cloud-platform".into(),
                );
            }),
            GRANT,
            "claims.scope",
        ),
        (
            assertion(&account, &kid, |c| {
                c.insert("aud".into(), "https://oauth2.googleapis.com/token".into());
            }),
            GRANT,
            "claims.aud",
        ),
        (
            assertion(&account, &kid, |c| {
                let iat = c["iat"].as_u64().unwrap();
                c.insert("exp".into(), (iat + 7200).into());
            }),
            GRANT,
            "exp - iat",
        ),
        (
            assertion(&account, &kid, |c| {
                let iat = c["iat"].as_u64().unwrap() - 4000;
                c.insert("iat".into(), iat.into());
                c.insert("exp".into(), (iat + 3600).into());
            }),
            GRANT,
            "expired",
        ),
        (
            assertion(&account, &kid, |c| {
                c.insert("sub".into(), "someone@example.com".into());
            }),
            GRANT,
            "expected exactly",
        ),
        (assertion(&account, "other-key-id", |_| {}), GRANT, "kid"),
        (
            good.clone(),
            "urn:ietf:params:oauth:grant-type:saml2-bearer",
            "grant_type",
        ),
        ("not-a-jwt".to_string(), GRANT, "dot-separated parts"),
    ];
    for (jwt, grant, why) in cases {
        let before = fake.rejections().len();
        let (status, answer) = exchange(&token_uri, grant, &jwt).await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert_eq!(answer["error"], "invalid_grant", "{why}");
        let rejections = fake.rejections();
        assert!(rejections.len() > before, "{why}: nothing recorded");
        assert!(
            rejections[before..].iter().any(|r| r.contains(why)),
            "{why}: {rejections:?}"
        );
    }
    assert_eq!(fake.token_exchanges(), 1);
}

#[tokio::test]
async fn the_fake_send_endpoint_refuses_bad_messages() {
    let fake = FakeFcm::start().await;
    let account: Value =
        serde_json::from_slice(&std::fs::read(fake.service_account_file()).unwrap()).unwrap();
    let kid = account["private_key_id"].as_str().unwrap().to_string();
    let (_, answer) = exchange(
        account["token_uri"].as_str().unwrap(),
        GRANT,
        &assertion(&account, &kid, |_| {}),
    )
    .await;
    let access = answer["access_token"].as_str().unwrap().to_string();
    let url = format!(
        "{}/v1/projects/{}/messages:send",
        fake.endpoint(),
        fake.project_id()
    );
    let good = serde_json::json!({"message": {
        "token": "tok",
        "data": {"type": "payment_request", "sessionId": "ses_1", "eventId": "4"},
        "android": {"priority": "HIGH", "ttl": "600s", "collapse_key": "opencharge"},
    }});
    let send = |body: Value, bearer: Option<String>, content_type: &'static str| {
        let url = url.clone();
        async move {
            let mut request = http()
                .post(url)
                .header("content-type", content_type)
                .body(serde_json::to_vec(&body).unwrap());
            if let Some(bearer) = bearer {
                request = request.bearer_auth(bearer);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, answer) = send(good.clone(), Some(access.clone()), "application/json").await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["name"].as_str().unwrap().starts_with("projects/"));
    assert_eq!(fake.messages().len(), 1);
    assert_eq!(fake.rejections(), Vec::<String>::new());

    let (status, answer) = send(good.clone(), None, "application/json").await;
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["status"], "UNAUTHENTICATED");

    let edited = |edit: &dyn Fn(&mut Value)| {
        let mut body = good.clone();
        edit(&mut body);
        body
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            edited(&|b| b["message"]["data"]["amount"] = "8.75".into()),
            "application/json",
            "message.data has fields",
        ),
        (
            edited(&|b| b["message"]["data"]["eventId"] = 4.into()),
            "application/json",
            "message.data.eventId",
        ),
        (
            edited(&|b| b["message"]["data"]["type"] = "refund".into()),
            "application/json",
            "message.data.type",
        ),
        (
            edited(&|b| b["message"]["android"]["priority"] = "NORMAL".into()),
            "application/json",
            "message.android.priority",
        ),
        (
            edited(&|b| b["message"]["android"]["ttl"] = "10m".into()),
            "application/json",
            "message.android.ttl",
        ),
        (
            edited(&|b| {
                b["message"].as_object_mut().unwrap().remove("android");
            }),
            "application/json",
            "message.android",
        ),
        (
            edited(&|b| b["message"]["notification"] = serde_json::json!({"title": "x"})),
            "application/json",
            "message has fields",
        ),
        (good.clone(), "text/plain", "content-type"),
    ];
    for (body, content_type, why) in cases {
        let before = fake.rejections().len();
        let (status, answer) = send(body, Some(access.clone()), content_type).await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT", "{why}");
        assert_eq!(
            answer["error"]["details"][0]["errorCode"], "INVALID_ARGUMENT",
            "{why}"
        );
        let rejections = fake.rejections();
        assert!(
            rejections[before..].iter().any(|r| r.contains(why)),
            "{why}: {rejections:?}"
        );
    }
    assert_eq!(fake.messages().len(), 1);
}
