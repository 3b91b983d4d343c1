//! The APNs sender against the strict loopback APNs of the test kit: the request it sends
//! (HTTP/2 over TLS, headers, ES256 provider token, body), provider-token reuse and renewal,
//! how each APNs answer maps to an outcome, refusal of an untrusted certificate, and setup
//! errors for bad key and CA files.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opencharge_gateway::push::apns::ApnsSender;
use opencharge_gateway::push::{
    PushEnvironment, PushKind, PushSender, PushSetupError, PushTarget, SendOutcome, WakeUp,
};
use opencharge_testkit::push::{ApnsReply, FakeApns};
use opencharge_testkit::WAIT;

const TOPIC: &str = "org.opencharge.wallet";

fn target(token: &str) -> PushTarget {
    PushTarget {
        device_id: "dev_test".into(),
        token: token.into(),
        environment: PushEnvironment::Sandbox,
    }
}

fn token(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn wake(kind: PushKind, session_id: &str, event_id: i64) -> WakeUp {
    WakeUp {
        kind,
        session_id: session_id.into(),
        event_id,
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Waits (up to [`WAIT`]) for `condition` to hold.
async fn eventually(condition: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

async fn fake_and_sender() -> (FakeApns, ApnsSender) {
    let fake = FakeApns::start().await;
    let sender = ApnsSender::new(&fake.apns_config(TOPIC), 600).unwrap();
    (fake, sender)
}

#[tokio::test]
async fn a_wake_up_goes_over_http2_exactly_as_agreed() {
    let (fake, sender) = fake_and_sender().await;
    let device = token(0xa1);

    let before = unix_now();
    let outcome = sender
        .send(
            &target(&device),
            &wake(PushKind::PaymentRequest, "sess_4f2a", 42),
        )
        .await;
    let after = unix_now();
    assert_eq!(outcome, SendOutcome::Sent);
    let sent = fake.next_notification(WAIT).await.expect("accepted");
    assert_eq!(fake.rejections(), Vec::<String>::new());

    assert_eq!(sent.http_version, "HTTP/2.0");
    assert_eq!(sent.alpn.as_deref(), Some("h2"));
    assert_eq!(sent.token, device);
    assert_eq!(
        sent.payload_json(),
        r#"{"aps":{"alert":{"title":"Payment request","body":"Open to review this payment."},"mutable-content":1,"sound":"default"},"opencharge":{"type":"payment_request","sessionId":"sess_4f2a","eventId":"42"}}"#
    );
    assert_eq!(sent.header("apns-push-type"), Some("alert"));
    assert_eq!(sent.header("apns-topic"), Some(TOPIC));
    assert_eq!(sent.header("apns-collapse-id"), Some("sess_4f2a"));
    assert_eq!(sent.header("apns-priority"), Some("10"));
    let expiration: i64 = sent.header("apns-expiration").unwrap().parse().unwrap();
    assert!(
        (before + 600..=after + 600).contains(&expiration),
        "apns-expiration {expiration} is not now + max_age_secs"
    );
    assert!(sent.provider_token().is_some());

    // A final status gets its own fixed alert text.
    let outcome = sender
        .send(
            &target(&device),
            &wake(PushKind::PaymentStatus, "sess_4f2a", 43),
        )
        .await;
    assert_eq!(outcome, SendOutcome::Sent);
    let sent = fake.next_notification(WAIT).await.expect("accepted");
    assert_eq!(
        sent.payload_json(),
        r#"{"aps":{"alert":{"title":"Payment update","body":"Open to see this payment."},"mutable-content":1,"sound":"default"},"opencharge":{"type":"payment_status","sessionId":"sess_4f2a","eventId":"43"}}"#
    );
    assert_eq!(fake.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn the_provider_token_is_reused_and_renewed_when_apns_calls_it_expired() {
    let (fake, sender) = fake_and_sender().await;
    let device = token(0xb2);
    let to = target(&device);
    let w = wake(PushKind::PaymentRequest, "s1", 1);
    let send = || sender.send(&to, &w);

    assert_eq!(send().await, SendOutcome::Sent);
    let first = fake.next_notification(WAIT).await.unwrap();
    // Into another second, so that a token signed anew would differ at least in `iat`.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(send().await, SendOutcome::Sent);
    let second = fake.next_notification(WAIT).await.unwrap();
    assert_eq!(first.provider_token(), second.provider_token());

    fake.respond_to(&device, ApnsReply::ExpiredProviderToken);
    assert_eq!(
        send().await,
        SendOutcome::Retry {
            after: None,
            reason: "APNs 403 ExpiredProviderToken".into()
        }
    );
    assert_eq!(send().await, SendOutcome::Sent);
    let renewed = fake.next_notification(WAIT).await.unwrap();
    assert_ne!(renewed.provider_token(), first.provider_token());
    assert_eq!(send().await, SendOutcome::Sent);
    let after_renewal = fake.next_notification(WAIT).await.unwrap();
    assert_eq!(after_renewal.provider_token(), renewed.provider_token());
    assert_eq!(fake.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn dead_tokens_are_reported_as_dead() {
    let (fake, sender) = fake_and_sender().await;
    let gone = token(0xc3);
    let bad = token(0xc4);
    fake.respond_to(&gone, ApnsReply::Unregistered);
    fake.respond_to(&bad, ApnsReply::BadDeviceToken);
    let w = wake(PushKind::PaymentRequest, "s2", 7);

    assert_eq!(
        sender.send(&target(&gone), &w).await,
        SendOutcome::DeadToken {
            reason: "APNs 410 Unregistered".into()
        }
    );
    assert_eq!(
        sender.send(&target(&bad), &w).await,
        SendOutcome::DeadToken {
            reason: "APNs 400 BadDeviceToken".into()
        }
    );
    assert!(fake.notifications().is_empty());
    assert_eq!(fake.requests(), 2);

    // A stored token that is not hex never reaches APNs (it could not be a path segment).
    let outcome = sender.send(&target("../../x"), &w).await;
    assert!(
        matches!(outcome, SendOutcome::DeadToken { .. }),
        "{outcome:?}"
    );
    assert_eq!(fake.requests(), 2);
    assert_eq!(fake.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn throttling_and_outages_are_retried_honouring_retry_after() {
    let (fake, sender) = fake_and_sender().await;
    let device = token(0xd5);
    let w = wake(PushKind::PaymentRequest, "s3", 9);
    fake.respond_to(
        &device,
        ApnsReply::TooManyRequests {
            retry_after_secs: 7,
        },
    );
    fake.respond_to(&device, ApnsReply::ServiceUnavailable);

    assert_eq!(
        sender.send(&target(&device), &w).await,
        SendOutcome::Retry {
            after: Some(Duration::from_secs(7)),
            reason: "APNs 429 TooManyRequests".into()
        }
    );
    assert_eq!(
        sender.send(&target(&device), &w).await,
        SendOutcome::Retry {
            after: None,
            reason: "APNs 503 ServiceUnavailable".into()
        }
    );
    // The scripted refusals were one-shot: the next attempt goes through.
    assert_eq!(sender.send(&target(&device), &w).await, SendOutcome::Sent);
    assert_eq!(fake.notifications().len(), 1);
    assert_eq!(fake.rejections(), Vec::<String>::new());
}

#[tokio::test]
async fn without_the_test_ca_the_fakes_certificate_is_refused() {
    let fake = FakeApns::start().await;
    let mut config = fake.apns_config(TOPIC);
    config.ca_file = None;
    let sender = ApnsSender::new(&config, 600).unwrap();

    let outcome = sender
        .send(
            &target(&token(0xe6)),
            &wake(PushKind::PaymentRequest, "s4", 1),
        )
        .await;
    match &outcome {
        SendOutcome::Retry { reason, .. } | SendOutcome::Fail { reason } => assert!(
            reason.contains("certificate"),
            "the reason should name the certificate: {reason}"
        ),
        other => panic!("an untrusted certificate must not be sent through: {other:?}"),
    }
    assert_eq!(fake.requests(), 0);
    // The fake records the failed handshake on its side a moment later.
    assert!(eventually(|| !fake.tls_failures().is_empty()).await);
}

#[tokio::test]
async fn the_fake_refuses_what_apns_would_refuse() {
    // The fake is strict: a sender configured for another bundle id is refused with APNs's
    // reason, and the refusal is recorded.
    let fake = FakeApns::start().await;
    let mut config = fake.apns_config(TOPIC);
    config.topic = "org.example.other".into();
    let sender = ApnsSender::new(&config, 600).unwrap();
    let outcome = sender
        .send(
            &target(&token(0x17)),
            &wake(PushKind::PaymentRequest, "s5", 1),
        )
        .await;
    assert_eq!(
        outcome,
        SendOutcome::Fail {
            reason: "APNs 400 TopicDisallowed".into()
        }
    );
    let rejections = fake.rejections();
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert!(rejections[0].contains("apns-topic"), "{rejections:?}");

    // A client that offers only HTTP/1.1 gets no connection at all.
    let ca = std::fs::read(fake.ca_file()).unwrap();
    let http1 = reqwest::Client::builder()
        .http1_only()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let refused = http1
        .post(format!("{}/3/device/{}", fake.endpoint(), token(0x18)))
        .body("{}")
        .send()
        .await;
    assert!(refused.is_err(), "HTTP/1.1 was answered: {refused:?}");
    assert!(
        eventually(|| fake
            .rejections()
            .iter()
            .any(|r| r.contains("did not offer ALPN h2")))
        .await,
        "{:?} {:?}",
        fake.rejections(),
        fake.tls_failures()
    );
    assert!(fake.notifications().is_empty());
}

/// A P-384 key (made with `openssl genpkey` for this test): valid PKCS#8, wrong curve.
const P384_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDAnqP9OWQe7WO90zS2q
DHNNzR6QpP4QWbUJCmKBihaRg1Fge5Ti63E6/YXCKYPtzQWhZANiAARJQZqtHOOc
yOg8cjF4OYiG7D4+b9wQYzuCEdvYK6f8aRdbMLDFD+veDtRbSn7Gu2LVKVheXAd1
x1Q45chfyTy6BQaen500KCq3enMANZ4rCGoGcGmU0FIJDcS8DMyu40w=
-----END PRIVATE KEY-----
";

#[tokio::test]
async fn bad_key_and_ca_files_are_setup_errors() {
    let fake = FakeApns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = fake.apns_config(TOPIC);

    let cases = [
        ("not a key at all\n", "push.apns.key_file"),
        (P384_KEY, "push.apns.key_file"),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "push.apns.key_file",
        ),
    ];
    for (i, (content, what_expected)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.p8"));
        std::fs::write(&path, content).unwrap();
        let mut bad = config.clone();
        bad.key_file = path;
        match ApnsSender::new(&bad, 600) {
            Err(PushSetupError::Invalid { what, reason }) => {
                assert_eq!(what, what_expected, "{reason}");
            }
            other => panic!("case {i}: {other:?}"),
        }
    }

    let mut missing = config.clone();
    missing.key_file = dir.path().join("absent.p8");
    assert!(matches!(
        ApnsSender::new(&missing, 600),
        Err(PushSetupError::Read {
            what: "push.apns.key_file",
            ..
        })
    ));

    let garbage_ca = dir.path().join("ca.pem");
    std::fs::write(&garbage_ca, "no certificate here\n").unwrap();
    let mut bad_ca = config.clone();
    bad_ca.ca_file = Some(garbage_ca);
    assert!(matches!(
        ApnsSender::new(&bad_ca, 600),
        Err(PushSetupError::Invalid {
            what: "push.apns.ca_file",
            ..
        })
    ));

    // The fake's own files are accepted.
    assert!(ApnsSender::new(&config, 600).is_ok());
}

/// One hand-made request to the fake: what to change from a valid one.
#[derive(Default, Clone)]
struct Request {
    kid: Option<&'static str>,
    iss: Option<&'static str>,
    iat_offset: i64,
    foreign_signature: bool,
    path_token: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
}

const VALID_BODY: &str = r#"{"aps":{"alert":{"title":"Payment request","body":"Open to review this payment."},"mutable-content":1,"sound":"default"},"opencharge":{"type":"payment_request","sessionId":"s9","eventId":"5"}}"#;

/// Sends `change` of a valid request to `fake` over HTTP/2; returns the status and reason.
async fn hand_made(fake: &FakeApns, change: Request) -> (u16, String) {
    let key = std::fs::read(fake.key_file()).unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&key).unwrap();
    let sign = |iat: i64| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(change.kid.unwrap_or("KEY1234567").into());
        let claims = serde_json::json!({"iss": change.iss.unwrap_or("TEAM123456"), "iat": iat});
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let mut jwt = sign(unix_now() + change.iat_offset);
    if change.foreign_signature {
        // The signature of other claims: a valid signature, but not of this token.
        let other = sign(unix_now() - 5);
        let signature = other.rsplit('.').next().unwrap();
        let signed = jwt.rsplit_once('.').unwrap().0.to_string();
        jwt = format!("{signed}.{signature}");
    }
    let mut headers = vec![
        ("authorization", format!("bearer {jwt}")),
        ("apns-push-type", "alert".to_string()),
        ("apns-topic", TOPIC.to_string()),
        ("apns-collapse-id", "s9".to_string()),
        ("apns-priority", "10".to_string()),
        ("apns-expiration", (unix_now() + 600).to_string()),
    ];
    for (name, value) in change.headers {
        headers.retain(|(n, _)| *n != name);
        headers.push((name, value));
    }
    let ca = std::fs::read(fake.ca_file()).unwrap();
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let token = change.path_token.map(str::to_string).unwrap_or(token(0x99));
    let mut request = client
        .post(format!("{}/3/device/{token}", fake.endpoint()))
        .body(change.body.unwrap_or(VALID_BODY.to_string()));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let body: serde_json::Value = answer.json().await.unwrap_or_default();
    (status, body["reason"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn the_fake_checks_every_header_field_and_the_provider_token() {
    let fake = FakeApns::start().await;
    fake.apns_config(TOPIC);
    // The unchanged request passes: each refusal below is due to its one change.
    assert_eq!(
        hand_made(&fake, Request::default()).await,
        (200, String::new())
    );
    assert_eq!(fake.rejections(), Vec::<String>::new());

    let header = |name: &'static str, value: &str| Request {
        headers: vec![(name, value.to_string())],
        ..Request::default()
    };
    let body = |text: String| Request {
        body: Some(text),
        ..Request::default()
    };
    let cases: Vec<(Request, u16, &str, &str)> = vec![
        (
            Request {
                kid: Some("OTHERKEY00"),
                ..Request::default()
            },
            403,
            "InvalidProviderToken",
            "kid",
        ),
        (
            Request {
                iss: Some("OTHERTEAM0"),
                ..Request::default()
            },
            403,
            "InvalidProviderToken",
            "iss",
        ),
        (
            Request {
                iat_offset: -7200,
                ..Request::default()
            },
            403,
            "ExpiredProviderToken",
            "issued",
        ),
        (
            Request {
                foreign_signature: true,
                ..Request::default()
            },
            403,
            "InvalidProviderToken",
            "not verified",
        ),
        (
            header("authorization", "basic abc"),
            403,
            "InvalidProviderToken",
            "bearer",
        ),
        (
            Request {
                path_token: Some("zz11zz11zz11zz11"),
                ..Request::default()
            },
            400,
            "BadDeviceToken",
            "hex",
        ),
        (
            header("apns-push-type", "background"),
            400,
            "InvalidPushType",
            "apns-push-type",
        ),
        (
            header("apns-topic", "org.example.other"),
            400,
            "TopicDisallowed",
            "apns-topic",
        ),
        (
            header("apns-collapse-id", &"c".repeat(65)),
            400,
            "BadCollapseId",
            "65 bytes",
        ),
        (
            header("apns-priority", "5"),
            400,
            "BadPriority",
            "apns-priority",
        ),
        (
            header("apns-expiration", "1000"),
            400,
            "BadExpirationDate",
            "apns-expiration",
        ),
        (
            body(VALID_BODY.replace("Open to review this payment.", "Demo Coffee asks 8.75 USD")),
            400,
            "BadPayload",
            "no amount or merchant",
        ),
        (
            body(VALID_BODY.replace(r#""mutable-content":1"#, r#""mutable-content":0"#)),
            400,
            "BadPayload",
            "mutable-content",
        ),
        (
            body(VALID_BODY.replace(r#""eventId":"5""#, r#""eventId":5"#)),
            400,
            "BadPayload",
            "eventId",
        ),
        (
            body(VALID_BODY.replace(r#""eventId":"5""#, r#""eventId":"5","amount":"8.75""#)),
            400,
            "BadPayload",
            "opencharge keys",
        ),
        (
            body(VALID_BODY.replacen('{', r#"{"merchant":"Demo Coffee","#, 1)),
            400,
            "BadPayload",
            "top-level keys",
        ),
        (
            body(VALID_BODY.replacen(
                r#""sound":"default""#,
                &format!(r#""sound":"default","pad":"{}""#, "x".repeat(4096)),
                1,
            )),
            413,
            "PayloadTooLarge",
            "4096",
        ),
        (body(String::new()), 400, "PayloadEmpty", "empty"),
    ];
    for (i, (change, status, reason, why)) in cases.into_iter().enumerate() {
        let before = fake.rejections().len();
        assert_eq!(
            hand_made(&fake, change).await,
            (status, reason.to_string()),
            "case {i}"
        );
        let recorded = fake.rejections()[before..].to_vec();
        assert!(
            recorded.iter().any(|r| r.contains(why)),
            "case {i}: {recorded:?} does not say {why:?}"
        );
    }
    assert_eq!(fake.notifications().len(), 1);
}
