//! Request and response authentication: the `X-OC-*` canonical strings, signing, and
//! verification with typed failures. Nonce *storage* (replay detection) belongs to the server;
//! this module checks nonce syntax, the ±300 s window and the signature.

use crate::error::ProtocolError;
use crate::keys::{sha256, sha256_hex, PrivateKey, PublicKey, Signature, VerifyOptions};
use std::fmt;

/// Header carrying the sender's OCID (decimal).
pub const HEADER_ID: &str = "X-OC-ID";
/// Header carrying the unix timestamp in seconds (decimal).
pub const HEADER_TIMESTAMP: &str = "X-OC-Timestamp";
/// Header carrying the request nonce.
pub const HEADER_NONCE: &str = "X-OC-Nonce";
/// Header carrying the 130-hex signature.
pub const HEADER_SIGNATURE: &str = "X-OC-Signature";

/// Allowed clock difference between signer and verifier, in seconds.
pub const TIMESTAMP_WINDOW_SECS: i64 = 300;
/// Longest nonce accepted.
pub const MAX_NONCE_LEN: usize = 128;

/// SHA-256 of the empty body, used when a request has no body.
pub const EMPTY_BODY_HASH: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Why a request or response failed authentication. Each maps to a protocol error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// A required header is absent.
    MissingHeader(&'static str),
    /// A header is present but malformed (not decimal, bad nonce syntax, not hex, ...).
    MalformedHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The timestamp is outside the ±300 s window.
    TimestampExpired {
        /// The signed timestamp.
        timestamp: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// The signature does not verify for the canonical string and the sender's key.
    InvalidSignature,
}

impl AuthFailure {
    /// The Opencharge error code for this failure (all are HTTP 401 on request auth).
    pub fn code(&self) -> &'static str {
        match self {
            AuthFailure::TimestampExpired { .. } => "TIMESTAMP_EXPIRED",
            _ => "INVALID_SIGNATURE",
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::MissingHeader(h) => write!(f, "missing header {h}"),
            AuthFailure::MalformedHeader { header, reason } => {
                write!(f, "malformed header {header}: {reason}")
            }
            AuthFailure::TimestampExpired { timestamp, now } => write!(
                f,
                "timestamp {timestamp} is more than {TIMESTAMP_WINDOW_SECS} s from server time {now}"
            ),
            AuthFailure::InvalidSignature => f.write_str("request signature does not verify"),
        }
    }
}

impl std::error::Error for AuthFailure {}

/// Builds the request canonical string `sender\ntimestamp\nnonce\nMETHOD\npath\nbody_hash`.
/// `sender` is the OCID for `X-OC-*` requests (or a device id for the wallet app API, which
/// reuses the layout); `path` is the exact request target on the wire (absolute path with any
/// base prefix and `?query`, no scheme or host, not normalised); `body` is the raw bytes sent.
pub fn canonical_request(
    sender: impl fmt::Display,
    timestamp: i64,
    nonce: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> String {
    format!(
        "{sender}\n{timestamp}\n{nonce}\n{}\n{path}\n{}",
        method.to_ascii_uppercase(),
        sha256_hex(body)
    )
}

/// Builds the response canonical string `ocid\ntimestamp\nstatus\nbody_hash`.
pub fn canonical_response(ocid: u64, timestamp: i64, status: u16, body: &[u8]) -> String {
    format!("{ocid}\n{timestamp}\n{status}\n{}", sha256_hex(body))
}

/// A fresh nonce: `req_` followed by 32 hex characters (128 random bits).
pub fn generate_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    format!("req_{}", hex::encode(bytes))
}

/// True when `text` is 1 to `max_len` characters of `[A-Za-z0-9_-]` (the syntax of nonces
/// and of identifiers carried in headers).
pub fn is_header_token(text: &str, max_len: usize) -> bool {
    !text.is_empty()
        && text.len() <= max_len
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks nonce syntax: 1 to 128 characters of `[A-Za-z0-9_-]`.
pub fn check_nonce_syntax(nonce: &str) -> Result<(), AuthFailure> {
    if is_header_token(nonce, MAX_NONCE_LEN) {
        Ok(())
    } else {
        Err(AuthFailure::MalformedHeader {
            header: HEADER_NONCE,
            reason: format!("nonce must be 1..={MAX_NONCE_LEN} characters of [A-Za-z0-9_-]"),
        })
    }
}

/// The four `X-OC-*` request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAuth {
    /// Sender OCID.
    pub ocid: u64,
    /// Unix seconds.
    pub timestamp: i64,
    /// Unique request id.
    pub nonce: String,
    /// 130-hex signature (or a tolerated variant when received).
    pub signature: String,
}

impl RequestAuth {
    /// Signs a request. `path` and `body` must be exactly what goes on the wire.
    pub fn sign(
        key: &PrivateKey,
        ocid: u64,
        method: &str,
        path: &str,
        body: &[u8],
        timestamp: i64,
        nonce: &str,
    ) -> Result<Self, ProtocolError> {
        let canonical = canonical_request(ocid, timestamp, nonce, method, path, body);
        let signature = key.sign_message(canonical.as_bytes())?.to_hex();
        Ok(RequestAuth {
            ocid,
            timestamp,
            nonce: nonce.to_string(),
            signature,
        })
    }

    /// The headers as `(name, value)` pairs, ready to attach to an HTTP request.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (HEADER_ID, self.ocid.to_string()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_NONCE, self.nonce.clone()),
            (HEADER_SIGNATURE, self.signature.clone()),
        ]
    }

    /// Reads the four headers through `get` (case-insensitive lookup is the caller's job) and
    /// checks their syntax. Does not verify anything cryptographic.
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, AuthFailure> {
        let ocid = parse_decimal::<u64>(&get, HEADER_ID)?;
        let timestamp = parse_decimal::<i64>(&get, HEADER_TIMESTAMP)?;
        let nonce = get(HEADER_NONCE).ok_or(AuthFailure::MissingHeader(HEADER_NONCE))?;
        check_nonce_syntax(nonce)?;
        let signature =
            get(HEADER_SIGNATURE).ok_or(AuthFailure::MissingHeader(HEADER_SIGNATURE))?;
        if signature.is_empty() || signature.len() > 200 {
            return Err(AuthFailure::MalformedHeader {
                header: HEADER_SIGNATURE,
                reason: "signature must be 130 or 128 hex characters".into(),
            });
        }
        Ok(RequestAuth {
            ocid,
            timestamp,
            nonce: nonce.to_string(),
            signature: signature.to_string(),
        })
    }

    /// Verifies the timestamp window (against `now`, unix seconds) and the signature over the
    /// request's canonical string with the sender's `key`. Check the timestamp first so stale
    /// requests are cheap to reject; check nonce replay afterwards, in the server.
    pub fn verify(
        &self,
        key: &PublicKey,
        method: &str,
        path: &str,
        body: &[u8],
        now: i64,
        options: VerifyOptions,
    ) -> Result<(), AuthFailure> {
        check_window(self.timestamp, now)?;
        let canonical =
            canonical_request(self.ocid, self.timestamp, &self.nonce, method, path, body);
        verify_signature(key, canonical.as_bytes(), &self.signature, options)
    }
}

/// The three `X-OC-*` response headers (no nonce).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseAuth {
    /// Responder OCID.
    pub ocid: u64,
    /// Unix seconds.
    pub timestamp: i64,
    /// 130-hex signature.
    pub signature: String,
}

impl ResponseAuth {
    /// Signs a response's status and raw body bytes.
    pub fn sign(
        key: &PrivateKey,
        ocid: u64,
        status: u16,
        body: &[u8],
        timestamp: i64,
    ) -> Result<Self, ProtocolError> {
        let canonical = canonical_response(ocid, timestamp, status, body);
        Ok(ResponseAuth {
            ocid,
            timestamp,
            signature: key.sign_message(canonical.as_bytes())?.to_hex(),
        })
    }

    /// The headers as `(name, value)` pairs.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            (HEADER_ID, self.ocid.to_string()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_SIGNATURE, self.signature.clone()),
        ]
    }

    /// Reads the three response headers through `get`.
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, AuthFailure> {
        Ok(ResponseAuth {
            ocid: parse_decimal::<u64>(&get, HEADER_ID)?,
            timestamp: parse_decimal::<i64>(&get, HEADER_TIMESTAMP)?,
            signature: get(HEADER_SIGNATURE)
                .ok_or(AuthFailure::MissingHeader(HEADER_SIGNATURE))?
                .to_string(),
        })
    }

    /// Verifies the window and the signature. A signed response has no request binding, so a
    /// valid one proves origin and freshness only (see docs/protocol-decisions.md).
    pub fn verify(
        &self,
        key: &PublicKey,
        status: u16,
        body: &[u8],
        now: i64,
        options: VerifyOptions,
    ) -> Result<(), AuthFailure> {
        check_window(self.timestamp, now)?;
        let canonical = canonical_response(self.ocid, self.timestamp, status, body);
        verify_signature(key, canonical.as_bytes(), &self.signature, options)
    }
}

fn check_window(timestamp: i64, now: i64) -> Result<(), AuthFailure> {
    if timestamp.abs_diff(now) > TIMESTAMP_WINDOW_SECS.unsigned_abs() {
        return Err(AuthFailure::TimestampExpired { timestamp, now });
    }
    Ok(())
}

fn verify_signature(
    key: &PublicKey,
    message: &[u8],
    signature: &str,
    options: VerifyOptions,
) -> Result<(), AuthFailure> {
    let sig = Signature::parse(signature, options).map_err(|e| AuthFailure::MalformedHeader {
        header: HEADER_SIGNATURE,
        reason: e.to_string(),
    })?;
    key.verify_prehash(&sha256(message), &sig)
        .map_err(|_| AuthFailure::InvalidSignature)
}

fn parse_decimal<'a, T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<&'a str>,
    header: &'static str,
) -> Result<T, AuthFailure> {
    let raw = get(header).ok_or(AuthFailure::MissingHeader(header))?;
    let well_formed = !raw.is_empty()
        && raw.len() <= 20
        && raw
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-' && raw.len() > 1));
    let parsed = if well_formed {
        raw.parse::<T>().ok()
    } else {
        None
    };
    parsed.ok_or_else(|| AuthFailure::MalformedHeader {
        header,
        reason: format!("expected a decimal integer, got {raw:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const TV_KEY: &str = "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef";

    fn key() -> PrivateKey {
        PrivateKey::from_hex(TV_KEY).unwrap()
    }

    #[test]
    fn tv1_request_signature_byte_for_byte() {
        let body = br#"{"amount":"100.00","currency":"USD"}"#;
        assert_eq!(
            sha256_hex(body),
            "6779770784a6b90aab2c50ad2c48f58eb4d1dc8017e65c5850cdb0869b7060ce"
        );
        let canonical = canonical_request(
            200,
            1706500000,
            "req_test123",
            "post",
            "/opencharge/payment/request",
            body,
        );
        assert_eq!(canonical, "200\n1706500000\nreq_test123\nPOST\n/opencharge/payment/request\n6779770784a6b90aab2c50ad2c48f58eb4d1dc8017e65c5850cdb0869b7060ce");
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "1a4252e58fcc67b954e203569e5eb31a3e8b603f3fe2428297850dae0a111a59"
        );
        let auth = RequestAuth::sign(
            &key(),
            200,
            "POST",
            "/opencharge/payment/request",
            body,
            1706500000,
            "req_test123",
        )
        .unwrap();
        assert_eq!(auth.signature, "5751621089ba7b45a8ec53e58ff59d345133c812cd4b6703b8d85fe6fd473c9724e0e142b8bb1edad42330ce473fdbb80d4ccd4c30b24007f6aee656c75124371c");
        auth.verify(
            &key().public_key(),
            "POST",
            "/opencharge/payment/request",
            body,
            1706500100,
            VerifyOptions::STRICT,
        )
        .unwrap();
        // The documented (wrong) body hash gives a different canonical hash.
        let wrong = "200\n1706500000\nreq_test123\nPOST\n/opencharge/payment/request\nd7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592";
        assert_eq!(
            sha256_hex(wrong.as_bytes()),
            "80b30fbca3a6bb7d906dd7d7cd857994f1f8e1eb27298f7fd161f926bb7d71d3"
        );
    }

    #[test]
    fn tv5_get_without_body_byte_for_byte() {
        let canonical = canonical_request(
            200,
            1706500000,
            "req_test124",
            "GET",
            "/opencharge/orders/ord_abc123/status",
            b"",
        );
        assert!(canonical.ends_with(EMPTY_BODY_HASH));
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "36a2f376f08b9d7d75a4209fd8f01e067cd1fe93967fb3efbc41b0247aaadcc7"
        );
        let auth = RequestAuth::sign(
            &key(),
            200,
            "GET",
            "/opencharge/orders/ord_abc123/status",
            b"",
            1706500000,
            "req_test124",
        )
        .unwrap();
        assert_eq!(auth.signature, "3200d1914705d304f3942827e27f30c88c3cc7b55f3cb276b1101908f4f5b4c3492d46bd48e89c9d333ba8b36c48ee109593f34bc288c1bede1220c5becf8e6b1c");
    }

    fn signed(now: i64) -> RequestAuth {
        RequestAuth::sign(
            &key(),
            500,
            "POST",
            "/opencharge/orders/create/abc?x=1",
            b"{\"a\":1}",
            now,
            "req_1",
        )
        .unwrap()
    }

    #[test]
    fn window_is_inclusive_300_seconds_both_ways() {
        let pk = key().public_key();
        let auth = signed(1_000_000);
        for now in [1_000_000 - 300, 1_000_000, 1_000_000 + 300] {
            auth.verify(
                &pk,
                "POST",
                "/opencharge/orders/create/abc?x=1",
                b"{\"a\":1}",
                now,
                VerifyOptions::STRICT,
            )
            .unwrap();
        }
        for now in [1_000_000 - 301, 1_000_000 + 301, i64::MIN, i64::MAX] {
            let err = auth
                .verify(
                    &pk,
                    "POST",
                    "/opencharge/orders/create/abc?x=1",
                    b"{\"a\":1}",
                    now,
                    VerifyOptions::STRICT,
                )
                .unwrap_err();
            assert_eq!(err.code(), "TIMESTAMP_EXPIRED");
        }
    }

    #[test]
    fn any_change_after_signing_breaks_the_signature() {
        let pk = key().public_key();
        let auth = signed(1_000_000);
        let cases: [(&str, &str, &[u8]); 5] = [
            ("GET", "/opencharge/orders/create/abc?x=1", b"{\"a\":1}"),
            ("POST", "/opencharge/orders/create/abc", b"{\"a\":1}"),
            ("POST", "/orders/create/abc?x=1", b"{\"a\":1}"),
            ("POST", "/opencharge/orders/create/abc?x=1", b"{\"a\": 1}"),
            ("POST", "/opencharge/orders/create/abd?x=1", b"{\"a\":1}"),
        ];
        for (method, path, body) in cases {
            assert_eq!(
                auth.verify(&pk, method, path, body, 1_000_000, VerifyOptions::STRICT),
                Err(AuthFailure::InvalidSignature),
                "{method} {path}"
            );
        }
        let mut other_ocid = auth.clone();
        other_ocid.ocid = 501;
        assert_eq!(
            other_ocid.verify(
                &pk,
                "POST",
                "/opencharge/orders/create/abc?x=1",
                b"{\"a\":1}",
                1_000_000,
                VerifyOptions::STRICT
            ),
            Err(AuthFailure::InvalidSignature)
        );
        let mut other_nonce = auth;
        other_nonce.nonce = "req_2".into();
        assert!(other_nonce
            .verify(
                &pk,
                "POST",
                "/opencharge/orders/create/abc?x=1",
                b"{\"a\":1}",
                1_000_000,
                VerifyOptions::STRICT
            )
            .is_err());
    }

    #[test]
    fn headers_roundtrip_and_malformed_headers_are_typed() {
        let auth = signed(1_000_000);
        let map: HashMap<&str, String> = auth.headers().into_iter().collect();
        let parsed = RequestAuth::from_headers(|h| map.get(h).map(|s| s.as_str())).unwrap();
        assert_eq!(parsed, auth);

        let cases: Vec<(&str, &str)> = vec![
            (HEADER_ID, ""),
            (HEADER_ID, "-5"),
            (HEADER_ID, "5.0"),
            (HEADER_ID, "١٢"),
            (HEADER_ID, "99999999999999999999999"),
            (HEADER_TIMESTAMP, "17e8"),
            (HEADER_TIMESTAMP, " 1"),
            (HEADER_NONCE, ""),
            (HEADER_NONCE, "req abc"),
            (HEADER_NONCE, "req\u{202e}x"),
            (HEADER_SIGNATURE, ""),
        ];
        let long_nonce = "a".repeat(129);
        let mut all = cases;
        all.push((HEADER_NONCE, &long_nonce));
        for (header, value) in all {
            let mut m = map.clone();
            m.insert(header, value.to_string());
            let err = RequestAuth::from_headers(|h| m.get(h).map(|s| s.as_str())).unwrap_err();
            assert!(
                matches!(err, AuthFailure::MalformedHeader { .. }),
                "{header}={value:?}: {err}"
            );
            assert_eq!(err.code(), "INVALID_SIGNATURE");
        }
        for header in [HEADER_ID, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE] {
            let mut m = map.clone();
            m.remove(header);
            assert_eq!(
                RequestAuth::from_headers(|h| m.get(h).map(|s| s.as_str())),
                Err(AuthFailure::MissingHeader(header))
            );
        }
    }

    #[test]
    fn response_signing_roundtrip_and_tamper() {
        let body = br#"{"urls":{"status":"x"}}"#;
        let resp = ResponseAuth::sign(&key(), 200, 200, body, 1_000_000).unwrap();
        let map: HashMap<&str, String> = resp.headers().into_iter().collect();
        let parsed = ResponseAuth::from_headers(|h| map.get(h).map(|s| s.as_str())).unwrap();
        let pk = key().public_key();
        parsed
            .verify(&pk, 200, body, 1_000_100, VerifyOptions::STRICT)
            .unwrap();
        assert_eq!(
            parsed.verify(&pk, 201, body, 1_000_100, VerifyOptions::STRICT),
            Err(AuthFailure::InvalidSignature)
        );
        assert_eq!(
            parsed.verify(&pk, 200, b"{}", 1_000_100, VerifyOptions::STRICT),
            Err(AuthFailure::InvalidSignature)
        );
        assert_eq!(
            parsed
                .verify(&pk, 200, body, 1_000_301, VerifyOptions::STRICT)
                .unwrap_err()
                .code(),
            "TIMESTAMP_EXPIRED"
        );
    }

    #[test]
    fn generated_nonces_are_valid_and_distinct() {
        let a = generate_nonce();
        let b = generate_nonce();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        check_nonce_syntax(&a).unwrap();
    }
}
