//! Connection-level limits of a real gateway on loopback, driven with raw TCP: malformed
//! HTTP, a too-long URI and too-large headers answered with a signed JSON envelope; slow
//! header senders that neither block normal requests nor outlive the header-read timeout; the
//! connection cap; the request timeout; and the per-device cap on open event streams.

use std::time::Duration;

use opencharge_gateway::limits::LimitsConfig;
use opencharge_gateway::{Gateway, RunningGateway};
use opencharge_protocol::auth::ResponseAuth;
use opencharge_protocol::error_code::{ApiError, ErrorCode};
use opencharge_protocol::keys::{PublicKey, VerifyOptions};
use opencharge_testkit::{AppDevice, DevClient, GatewayHome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bound for anything a test waits for (never asserted as a time).
const PATIENCE: Duration = Duration::from_secs(60);

async fn start(home: &GatewayHome, limits: LimitsConfig) -> RunningGateway {
    let config = opencharge_gateway::GatewayConfig {
        limits,
        ..home.config()
    };
    Gateway::start(config).await.unwrap()
}

/// Raises this process's soft open-file limit to the hard limit (the slow-header test holds
/// both ends of 1,100 connections).
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

/// A complete response read from a raw connection until the server closes it.
struct RawAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the JSON envelope with `code` and a response signature by `gateway`.
    fn assert_signed_envelope(&self, gateway: &RunningGateway, code: ErrorCode) -> ApiError {
        let error = ApiError::from_json(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not an error envelope ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        });
        assert_eq!(error.code, code, "{error:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        let auth = ResponseAuth::from_headers(|name| self.header(name))
            .unwrap_or_else(|e| panic!("no response signature on {}: {e}", self.status));
        assert_eq!(auth.ocid, gateway.ocid());
        let key = PublicKey::from_hex(gateway.public_key_hex()).unwrap();
        auth.verify(
            &key,
            self.status,
            &self.body,
            gateway.state.now(),
            VerifyOptions::STRICT,
        )
        .expect("the response signature verifies with the gateway's key");
        error
    }
}

/// Reads until EOF and parses one HTTP/1.1 response.
async fn read_answer(stream: &mut TcpStream) -> RawAnswer {
    let mut bytes = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut bytes))
        .await
        .expect("the gateway answers and closes")
        .expect("readable answer");
    parse_answer(&bytes)
}

fn parse_answer(bytes: &[u8]) -> RawAnswer {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "not a complete HTTP response ({other:?}): {:?}",
            String::from_utf8_lossy(bytes)
        ),
    };
    RawAnswer {
        status: response.code.unwrap(),
        headers: response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: bytes[head_len..].to_vec(),
    }
}

/// Sends `request` on a fresh connection and reads the whole answer.
async fn raw(gateway: &RunningGateway, request: &[u8]) -> RawAnswer {
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_answer(&mut stream).await
}

#[tokio::test]
async fn malformed_http_too_long_uri_and_too_large_headers_get_signed_envelopes() {
    let home = GatewayHome::create().await.unwrap();
    let gateway = start(&home, LimitsConfig::default()).await;

    // Bytes hyper cannot parse: its own bare 400 is replaced by a signed envelope.
    let garbage = raw(&gateway, b"\x01\x02 NOT HTTP AT ALL\r\n\r\n").await;
    assert_eq!(garbage.status, 400);
    let error = garbage.assert_signed_envelope(&gateway, ErrorCode::InvalidRequest);
    assert!(
        error.message.contains("not valid HTTP"),
        "{}",
        error.message
    );

    let bad_name = raw(
        &gateway,
        b"GET /opencharge/metadata.json HTTP/1.1\r\nhost: x\r\nbad header: 1\r\n\r\n",
    )
    .await;
    assert_eq!(bad_name.status, 400);
    bad_name.assert_signed_envelope(&gateway, ErrorCode::InvalidRequest);

    // A 10 KiB request target: 414 from the gateway's own limit (8 KiB).
    let uri = format!(
        "GET /opencharge/metadata.json?pad={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(10 * 1024)
    );
    let long = raw(&gateway, uri.as_bytes()).await;
    assert_eq!(long.status, 414);
    let error = long.assert_signed_envelope(&gateway, ErrorCode::InvalidRequest);
    assert!(error.message.contains("max_uri_bytes"), "{}", error.message);

    // 20 KiB of headers: 431 from the gateway's own limit (16 KiB).
    let mut request = String::from("GET /opencharge/metadata.json HTTP/1.1\r\nhost: x\r\n");
    for i in 0..20 {
        request.push_str(&format!("x-pad-{i}: {}\r\n", "b".repeat(1000)));
    }
    request.push_str("\r\n");
    let large = raw(&gateway, request.as_bytes()).await;
    assert_eq!(large.status, 431);
    let error = large.assert_signed_envelope(&gateway, ErrorCode::InvalidRequest);
    assert!(
        error.message.contains("max_header_bytes"),
        "{}",
        error.message
    );

    // More headers than hyper parses (100): hyper's bare 431, replaced by a signed envelope.
    let mut many = String::from("GET /opencharge/metadata.json HTTP/1.1\r\nhost: x\r\n");
    for i in 0..150 {
        many.push_str(&format!("x-{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    let many = raw(&gateway, many.as_bytes()).await;
    assert_eq!(many.status, 431);
    many.assert_signed_envelope(&gateway, ErrorCode::InvalidRequest);

    // A normal request on the same gateway still works and is signed as before.
    let ok = raw(
        &gateway,
        b"GET /opencharge/metadata.json HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(ok.status, 200);
    assert!(ok.header("x-oc-signature").is_some());
    gateway.stop().await;
}

/// Opens a connection that sends a request head one byte per second, forever; returns when
/// the gateway closes it.
async fn slow_header_sender(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    let head = b"GET /opencharge/metadata.json HTTP/1.1\r\nx-slow: ";
    let mut sent = 0usize;
    loop {
        let byte = head.get(sent).copied().unwrap_or(b'a');
        if stream.write_all(&[byte]).await.is_err() {
            return Ok(());
        }
        sent += 1;
        // Closed by the gateway: a read returns EOF or a reset.
        let mut probe = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(()),
            Ok(Ok(_)) | Err(_) => {}
        }
    }
}

async fn metadata_ok(http: &reqwest::Client, gateway: &RunningGateway) -> bool {
    let url = format!("{}/metadata.json", gateway.endpoint());
    matches!(http.get(&url).send().await, Ok(r) if r.status().as_u16() == 200)
}

#[tokio::test]
async fn slow_header_senders_do_not_block_requests_and_are_closed() {
    raise_fd_limit();
    let home = GatewayHome::create().await.unwrap();
    let gateway = start(
        &home,
        LimitsConfig {
            max_connections: 1_500,
            header_read_timeout_secs: 3,
            ..LimitsConfig::default()
        },
    )
    .await;
    let senders: Vec<_> = (0..1_100)
        .map(|_| tokio::spawn(slow_header_sender(gateway.addr)))
        .collect();
    // Let every slow sender connect and start dribbling.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut ok = 0;
    for _ in 0..5 {
        if metadata_ok(&http, &gateway).await {
            ok += 1;
        }
    }
    assert_eq!(
        ok, 5,
        "normal requests succeed next to 1,100 slow header senders"
    );
    // Every slow sender is closed by the header-read timeout.
    let closed = tokio::time::timeout(PATIENCE, futures_util::future::join_all(senders))
        .await
        .expect("every slow-header connection is closed by the gateway");
    assert_eq!(
        closed.iter().filter(|r| matches!(r, Ok(Ok(())))).count(),
        1_100
    );
    assert!(metadata_ok(&http, &gateway).await);
    gateway.stop().await;
}

#[tokio::test]
async fn the_connection_cap_holds_and_answers_a_signed_503() {
    let home = GatewayHome::create().await.unwrap();
    let gateway = start(
        &home,
        LimitsConfig {
            max_connections: 20,
            header_read_timeout_secs: 3,
            ..LimitsConfig::default()
        },
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
        stream.write_all(b"G").await.unwrap();
        idle.push(stream);
    }
    // The cap is full once the gateway accepted all 20: a further connection is answered 503
    // (retry until the accept loop has caught up with the 20).
    let refused = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
            let mut bytes = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut bytes)).await;
            if !bytes.is_empty() {
                return parse_answer(&bytes);
            }
        }
    })
    .await
    .expect("a connection over the cap is answered");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    let error = refused.assert_signed_envelope(&gateway, ErrorCode::RateLimited);
    assert!(
        error.message.contains("20 connections"),
        "{}",
        error.message
    );
    // The header-read timeout frees the slots: normal requests are served again.
    for stream in &mut idle {
        let mut rest = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest))
            .await
            .expect("idle connection closed by the header-read timeout")
            .ok();
    }
    let http = reqwest::Client::new();
    let served = tokio::time::timeout(PATIENCE, async {
        while !metadata_ok(&http, &gateway).await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        served.is_ok(),
        "requests are served once the slots are free"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_request_body_slower_than_the_request_timeout_gets_a_signed_503() {
    let home = GatewayHome::create().await.unwrap();
    let gateway = start(
        &home,
        LimitsConfig {
            request_timeout_secs: 1,
            ..LimitsConfig::default()
        },
    )
    .await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(
            b"POST /opencharge/dev/accounts HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"na",
        )
        .await
        .unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.header("retry-after"), Some("1"));
    let error = answer.assert_signed_envelope(&gateway, ErrorCode::InternalError);
    assert!(error.message.contains("within 1 s"), "{}", error.message);
    gateway.stop().await;
}

#[tokio::test]
async fn a_device_over_its_stream_cap_loses_its_oldest_stream() {
    let home = GatewayHome::create().await.unwrap();
    let gateway = start(
        &home,
        LimitsConfig {
            max_streams_per_device: 2,
            ..LimitsConfig::default()
        },
    )
    .await;
    let http = reqwest::Client::new();
    let dev = DevClient::new(http.clone(), gateway.endpoint());
    let account = dev.new_account("streams").await.unwrap();
    let device = AppDevice::register(
        &http,
        gateway.endpoint(),
        &account.enrollment_code,
        gateway.state.now(),
    )
    .await
    .unwrap();
    let url = format!("{}/app/events", gateway.endpoint());
    let open = || async {
        let response = device
            .request(&http, "GET", &url, Vec::new(), gateway.state.now())
            .unwrap()
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let mut response = response;
        // The first chunk (`: connected`) proves the stream is live.
        let first = response.chunk().await.unwrap();
        assert!(first.is_some());
        response
    };
    let mut oldest = open().await;
    let _second = open().await;
    assert_eq!(gateway.state.hub.streams.open_count(&device.device_id), 2);
    let _third = open().await;
    // The oldest stream ends (end of body), the two newer ones stay registered.
    let ended = tokio::time::timeout(PATIENCE, async {
        while let Ok(Some(_)) = oldest.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the oldest stream is closed");
    assert_eq!(gateway.state.hub.streams.open_count(&device.device_id), 2);
    gateway.stop().await;
}

#[tokio::test]
async fn open_sessions_are_capped_per_account_and_old_ones_are_purged() {
    let home = GatewayHome::create().await.unwrap();
    let clock = std::sync::Arc::new(opencharge_gateway::clock::OffsetClock::default());
    let config = opencharge_gateway::GatewayConfig {
        limits: LimitsConfig {
            max_open_sessions_per_account: 2,
            purge_sessions_after_secs: 3600,
            ..LimitsConfig::default()
        },
        ..home.config()
    };
    let gateway = Gateway::start_with_clock(config, clock.clone())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let dev = DevClient::new(http.clone(), gateway.endpoint());
    let account = dev.new_account("sessions").await.unwrap();
    let device = AppDevice::register(
        &http,
        gateway.endpoint(),
        &account.enrollment_code,
        gateway.state.now(),
    )
    .await
    .unwrap();
    let url = format!("{}/app/sessions", gateway.endpoint());
    let create = || async {
        let response = device
            .request(&http, "POST", &url, b"{}".to_vec(), gateway.state.now())
            .unwrap()
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap();
        (status, headers, body)
    };
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, _, body) = create().await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
        ids.push(answer["sessionId"].as_str().unwrap().to_string());
    }
    let (status, headers, body) = create().await;
    assert_eq!(status, 429);
    let retry: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    let ttl = gateway.state.config.session_ttl_secs;
    assert!(retry >= 1 && retry <= ttl, "Retry-After {retry}");
    let answer = RawAnswer {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect(),
        body: body.to_vec(),
    };
    let error = answer.assert_signed_envelope(&gateway, ErrorCode::RateLimited);
    assert_eq!(error.details.unwrap()["max"], 2);

    // Once they expire the account may create sessions again; an hour later the background
    // worker purges the expired ones.
    clock.advance(ttl + 1);
    let (status, _, _) = create().await;
    assert_eq!(status, 200);
    clock.advance(3600 + 60);
    let purged = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut gone = 0;
            for id in &ids {
                if gateway.state.store.session(id).await.unwrap().is_none() {
                    gone += 1;
                }
            }
            if gone == ids.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(purged.is_ok(), "the worker purges expired sessions");
    gateway.stop().await;
}
