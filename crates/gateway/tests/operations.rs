//! The gateway's operations surface over real HTTP on loopback: `/healthz` and `/readyz` on
//! both listeners (and `/readyz` turning 503 while another connection holds the database's
//! write lock), `/metrics` after a real payment (values checked, every line of the exposition
//! checked), the online backup taken during payments and a gateway started on the copy, the
//! documented restore, and the `metrics_listen` setting. The lock and backup tests run on a
//! SQLite file whatever `OPENCHARGE_TEST_BACKEND` says (they are about that file); the others
//! on the backend it picks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use opencharge_gateway::ops::backup::{backup_database, BackupError};
use opencharge_gateway::{Gateway, GatewayConfig};
use opencharge_testkit::{gateway_config, Network, Recorder, WAIT};
use serde_json::Value;

/// `GET url`: status, headers and body text.
async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// Asserts the answer carries the gateway's `X-OC-*` response signature headers.
fn assert_signed(headers: &reqwest::header::HeaderMap, what: &str) {
    for name in ["x-oc-id", "x-oc-timestamp", "x-oc-signature"] {
        assert!(headers.contains_key(name), "{what}: no {name} header");
    }
}

/// One sample of the exposition: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the OpenMetrics text strictly: every line is `# TYPE`, `# HELP`, `# UNIT`, a sample
/// `name{k="v",...} value` or the final `# EOF`; anything else fails the test.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"# EOF"),
        "the exposition ends with # EOF"
    );
    let is_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut samples = Vec::new();
    for line in &lines[..lines.len() - 1] {
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(
                matches!(kind, "TYPE" | "HELP" | "UNIT") && is_name(name),
                "bad line {line:?}"
            );
            if kind == "TYPE" {
                let t = parts.next().unwrap_or("");
                assert!(
                    ["counter", "gauge", "histogram", "info", "unknown"].contains(&t),
                    "bad type in {line:?}"
                );
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line:?}"));
                (name, parse_labels(body, line))
            }
        };
        assert!(is_name(name), "bad metric name in {line:?}");
        samples.push((name.to_string(), labels, value));
    }
    samples
}

/// `k="v",k2="v2"` (values without escapes, which our labels never need).
fn parse_labels(body: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{line:?}"));
        let (value, after) = after.split_once('"').unwrap_or_else(|| panic!("{line:?}"));
        assert!(!value.contains('\\'), "unexpected escape in {line:?}");
        labels.insert(key.to_string(), value.to_string());
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    labels
}

/// The value of the sample named `name` whose labels include `want`.
fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

async fn scrape(addr: SocketAddr) -> (Vec<Sample>, String) {
    let (status, headers, text) = get(&format!("http://{addr}/metrics")).await;
    assert_eq!(status, 200, "{text}");
    assert_signed(&headers, "/metrics");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    (parse_exposition(&text), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_real_payment_count_the_route_the_payment_and_the_stream() {
    let net = Network::start().await.unwrap();
    let metrics = net
        .gateway()
        .unwrap()
        .metrics_addr
        .expect("metrics listener on");
    let (wallet, _) = net.wallet("ada", Some("50.00")).await.unwrap();
    let (listener, mut inbox) = Recorder::new();
    let stream = wallet.start_events(listener).unwrap();
    inbox.connected().await;

    let session = wallet.create_payment_session().await.unwrap();
    let order = net.order().unwrap();
    net.merchant()
        .post_to_wallet_session(&session.qr_payload, &order.order.id)
        .await
        .unwrap();
    let prompt = inbox.prompt(&session.session_id).await;
    wallet.confirm(prompt.prompt_id).await.unwrap();

    let (samples, text) = scrape(metrics).await;
    let orders = value(
        &samples,
        "opencharge_http_requests_total",
        &[
            ("method", "POST"),
            ("route", "/opencharge/orders/create/{session_id}"),
            ("status", "200"),
        ],
    );
    assert_eq!(orders, Some(1.0), "{text}");
    assert!(
        !text.contains(&session.session_id),
        "no session id in any label"
    );
    let paid = value(
        &samples,
        "opencharge_payments_total",
        &[("flow", "wallet_qr")],
    );
    assert!(paid >= Some(1.0), "{text}");
    assert_eq!(
        value(&samples, "opencharge_event_streams_open", &[]),
        Some(1.0),
        "{text}"
    );
    let latency = value(
        &samples,
        "opencharge_http_request_duration_seconds_count",
        &[
            ("method", "POST"),
            ("route", "/opencharge/orders/create/{session_id}"),
        ],
    );
    assert_eq!(latency, Some(1.0), "{text}");
    for gauge in [
        "opencharge_webhook_queue_pending",
        "opencharge_push_queue_pending",
    ] {
        assert!(value(&samples, gauge, &[]).is_some(), "{gauge}: {text}");
    }
    assert!(
        value(&samples, "opencharge_nonces_stored", &[]) >= Some(2.0),
        "the merchant's request and the device's confirmation left nonces: {text}"
    );
    for outcome in ["sent", "retried", "dead", "failed"] {
        assert_eq!(
            value(
                &samples,
                "opencharge_push_wakeups_total",
                &[("outcome", outcome)]
            ),
            Some(0.0),
            "{text}"
        );
    }

    // A request that matched no route is counted under `unmatched`, not under its path.
    let (status, _, _) = get(&format!("{}/no/such/route/secret123", net.endpoint())).await;
    assert_eq!(status, 404);
    let (samples, text) = scrape(metrics).await;
    assert!(
        value(
            &samples,
            "opencharge_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ) >= Some(1.0),
        "{text}"
    );
    assert!(!text.contains("secret123"));
    // Invented methods do not become labels either.
    let odd = reqwest::Method::from_bytes(b"BREW").unwrap();
    let status = reqwest::Client::new()
        .request(odd, format!("{}/no/such/route", net.endpoint()))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_client_error());
    let (samples, text) = scrape(metrics).await;
    assert!(!text.contains("BREW"), "{text}");
    assert!(
        value(
            &samples,
            "opencharge_http_requests_total",
            &[("method", "other"), ("route", "unmatched")]
        ) >= Some(1.0),
        "{text}"
    );

    // The stream's guard leaves with the stream.
    stream.stop_and_wait().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (samples, _) = scrape(metrics).await;
        if value(&samples, "opencharge_event_streams_open", &[]) == Some(0.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream gauge stays up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_on_both_listeners_and_readyz_fails_while_the_database_is_locked() {
    // SQLite whatever OPENCHARGE_TEST_BACKEND says: the lock is taken on the file.
    let net = Network::builder().sqlite().start().await.unwrap();
    let gateway = net.gateway().unwrap();
    let main = format!("http://{}", gateway.addr);
    let ops = format!("http://{}", gateway.metrics_addr.unwrap());
    for base in [&main, &ops] {
        let (status, headers, body) = get(&format!("{base}/healthz")).await;
        assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
        assert_signed(&headers, "/healthz");
        let (status, headers, body) = get(&format!("{base}/readyz")).await;
        assert_eq!(status, 200, "{body}");
        assert_signed(&headers, "/readyz");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["checks"]["database"], "ok");
        assert_eq!(body["checks"]["key"], "ok");
    }
    // Not under the base path, and no metrics on the main listener.
    assert_eq!(get(&format!("{}/healthz", net.endpoint())).await.0, 404);
    assert_eq!(get(&format!("{main}/metrics")).await.0, 404);
    let (status, headers, body) = get(&format!("{ops}/nothing-here")).await;
    assert_eq!(status, 404);
    assert_signed(&headers, "metrics listener 404");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND");

    // Another connection holds the write lock: not ready, enveloped, naming the database.
    let mut other = rusqlite::Connection::open(net.gateway_db()).unwrap();
    let lock = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    for base in [&main, &ops] {
        let (status, headers, body) = get(&format!("{base}/readyz")).await;
        assert_eq!(status, 503, "{body}");
        assert_signed(&headers, "/readyz 503");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "NOT_READY", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("database"),
            "{body}"
        );
        assert!(body["error"]["details"]["database"].is_string(), "{body}");
        assert!(body["error"]["details"].get("key").is_none(), "{body}");
        // Liveness does not depend on the database.
        assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    }
    lock.rollback().unwrap();
    assert_eq!(get(&format!("{main}/readyz")).await.0, 200);
    net.stop().await;
}

/// The USD balance of `account` in `store`, in cents.
async fn usd_cents(store: &dyn opencharge_gateway::store::Store, account: &str) -> i64 {
    store
        .balances(account)
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.currency == "USD")
        .map_or(0, |b| b.minor)
}

/// Paid sessions of `account` in `store`.
async fn paid(store: &dyn opencharge_gateway::store::Store, account: &str) -> Vec<String> {
    store
        .history(account, 1000, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.status == opencharge_gateway::store::SessionStatus::Paid)
        .map(|s| s.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_during_payments_starts_a_gateway_and_restores_one() {
    // SQLite whatever OPENCHARGE_TEST_BACKEND says: `backup` copies a SQLite file.
    let mut net = Network::builder().sqlite().start().await.unwrap();
    let (wallet, account) = net.wallet("ada", Some("100.00")).await.unwrap();
    let (_, prompt) = net.scan_order(&wallet).await.unwrap();
    wallet.confirm(prompt.prompt_id).await.unwrap();

    // Payments go on while the backup runs.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.sqlite3");
    let payer = wallet.clone();
    let mut payments = Vec::new();
    for _ in 0..4 {
        payments.push(net.scan_order(&payer).await.unwrap().1.prompt_id);
    }
    let paying = tokio::spawn(async move {
        for id in payments {
            payer.confirm(id).await.unwrap();
        }
    });
    let (db, to) = (net.gateway_db(), copy.clone());
    let report = tokio::task::spawn_blocking(move || backup_database(&db, &to))
        .await
        .unwrap()
        .unwrap();
    paying.await.unwrap();
    assert!(report.pages > 0 && report.bytes > 0);
    assert_eq!(
        report.schema_version,
        opencharge_gateway::store::sqlite::SCHEMA_VERSION
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup is private to its owner");
    }

    // Never overwrites: the second attempt fails and leaves the first copy as it was.
    let before = std::fs::read(&copy).unwrap();
    let err = backup_database(&net.gateway_db(), &copy).unwrap_err();
    assert!(matches!(err, BackupError::Exists(_)), "{err}");
    assert!(err.to_string().contains("exists already"), "{err}");
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    // A missing or foreign source is refused and leaves nothing behind.
    let nowhere = dir.path().join("none.sqlite3");
    let err = backup_database(&dir.path().join("missing.db"), &nowhere).unwrap_err();
    assert!(err.to_string().contains("no such database"), "{err}");
    assert!(!nowhere.exists());

    // A gateway started on the copy, with the same key, holds a consistent state: every
    // payment in it is debited exactly once.
    let live_balance = usd_cents(net.gateway().unwrap().state.store.as_ref(), &account).await;
    assert_eq!(live_balance, 10_000 - 5 * 825);
    let restored_dir = tempfile::tempdir().unwrap();
    let config = GatewayConfig {
        database: copy.clone().into(),
        key_file: Some(net.data_dir().join("gateway").join("gateway.key")),
        ..gateway_config(restored_dir.path())
    };
    let second = Gateway::start(config).await.unwrap();
    assert_eq!(
        second.public_key_hex(),
        net.gateway().unwrap().public_key_hex()
    );
    let store = second.state.store.as_ref();
    let paid_in_copy = paid(store, &account).await;
    assert!(
        !paid_in_copy.is_empty(),
        "the payment made before the backup is in it"
    );
    assert_eq!(
        usd_cents(store, &account).await,
        10_000 - 825 * paid_in_copy.len() as i64,
        "balance and payments of the copy agree"
    );
    let (status, _, body) = get(&format!("http://{}/readyz", second.addr)).await;
    assert_eq!(status, 200, "{body}");
    second.stop().await;

    // Restore: stop, put the copy in place of the database without the old -wal/-shm, start.
    net.stop_gateway().await;
    let db = net.gateway_db();
    // A stopped gateway has closed its database (the last connection checkpoints and removes
    // the -wal file): in one test process, wait for that as an operator waits for the
    // process to exit.
    let wal = std::path::PathBuf::from(format!("{}-wal", db.display()));
    let deadline = std::time::Instant::now() + WAIT;
    while wal.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the stopped gateway keeps its database open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for suffix in ["-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(side));
    }
    std::fs::copy(&copy, &db).unwrap();
    net.restart_gateway().await.unwrap();
    let store = net.gateway().unwrap().state.store.as_ref();
    assert_eq!(paid(store, &account).await, paid_in_copy);
    assert_eq!(
        usd_cents(store, &account).await,
        10_000 - 825 * paid_in_copy.len() as i64
    );
    // The restored gateway takes payments again.
    let (_, prompt) = net.scan_order(&wallet).await.unwrap();
    wallet.confirm(prompt.prompt_id).await.unwrap();
    net.stop().await;
}

#[test]
fn metrics_listen_is_an_address_or_off_in_toml() {
    let parse = |text: &str| toml::from_str::<GatewayConfig>(text);
    assert_eq!(
        GatewayConfig::default().metrics_listen,
        Some(SocketAddr::from(([127, 0, 0, 1], 9700)))
    );
    assert_eq!(
        GatewayConfig::dev_defaults().metrics_listen,
        Some(SocketAddr::from(([127, 0, 0, 1], 9700)))
    );
    assert_eq!(
        parse("").unwrap().metrics_listen,
        GatewayConfig::default().metrics_listen
    );
    assert_eq!(
        parse(r#"metrics_listen = "off""#).unwrap().metrics_listen,
        None
    );
    assert_eq!(
        parse(r#"metrics_listen = "10.0.0.5:9100""#)
            .unwrap()
            .metrics_listen,
        Some("10.0.0.5:9100".parse().unwrap())
    );
    let err = parse(r#"metrics_listen = "nowhere""#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"off\""), "{err}");
    // It round-trips, "off" included.
    let off = GatewayConfig {
        metrics_listen: None,
        ..GatewayConfig::default()
    };
    let text = toml::to_string(&off).unwrap();
    assert!(text.contains(r#"metrics_listen = "off""#), "{text}");
    assert_eq!(parse(&text).unwrap(), off);
}

#[tokio::test]
async fn metrics_off_means_no_listener_and_a_taken_port_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = GatewayConfig {
        metrics_listen: None,
        ..gateway_config(dir.path())
    };
    let gateway = Gateway::start(config).await.unwrap();
    assert_eq!(gateway.metrics_addr, None);
    gateway.stop().await;

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = GatewayConfig {
        metrics_listen: Some(taken.local_addr().unwrap()),
        ..gateway_config(dir.path())
    };
    let err = Gateway::start(config).await.err().expect("port taken");
    let message = err.to_string();
    assert!(
        message.contains("metrics") && message.contains("\"off\""),
        "{message}"
    );
}

#[test]
fn dev_settings_beyond_loopback_are_refused_by_the_gateway_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let cases = [
        ("listen = \"0.0.0.0:8700\"\ndev_mode = true\npublic_url = \"https://pay.example.com\"", "dev_mode"),
        ("listen = \"0.0.0.0:8700\"\nallow_loopback_http = true\npublic_url = \"https://pay.example.com\"", "allow_loopback_http"),
        ("listen = \"0.0.0.0:8700\"", "public_url"),
        ("public_url = \"http://pay.example.com\"", "public_url"),
    ];
    for (text, named) in cases {
        std::fs::write(&path, text).unwrap();
        let err = GatewayConfig::from_file(&path).unwrap_err().to_string();
        assert!(err.contains(named), "{text}: {err}");
    }
    std::fs::write(
        &path,
        "listen = \"0.0.0.0:8700\"\npublic_url = \"https://pay.example.com\"",
    )
    .unwrap();
    GatewayConfig::from_file(&path).unwrap();
    GatewayConfig::dev_defaults().validate().unwrap();
}

#[test]
fn the_operating_guide_documents_every_config_key_with_its_default() {
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operating.md"),
    )
    .unwrap();
    let defaults = toml::Value::try_from(GatewayConfig::default()).unwrap();
    let mut keys = Vec::new();
    for (key, value) in defaults.as_table().unwrap() {
        if key == "push" {
            for (inner, _) in value.as_table().unwrap() {
                keys.push(format!("push.{inner}"));
            }
            for sub in ["fcm", "apns"] {
                keys.push(format!("push.{sub}.endpoint"));
            }
        } else if key == "limits" || key == "rate_limits" {
            for (inner, _) in value.as_table().unwrap() {
                keys.push(format!("{key}.{inner}"));
            }
        } else {
            keys.push(key.clone());
        }
    }
    for key in ["icon", "key_file", "public_url", "metadata_url_template"] {
        keys.push(key.into()); // None by default, so absent from the serialised defaults
    }
    for key in keys {
        assert!(
            guide.contains(&format!("| `{key}` |")),
            "docs/operating.md has no row for `{key}`"
        );
    }
    assert!(guide.contains("| `metrics_listen` | `\"127.0.0.1:9700\"` |"));
    for link in [
        "examples/opencharge-gateway.service",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(guide.contains(link), "{link}");
    }
}
