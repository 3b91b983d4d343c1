//! Tests `opencharge proto` through the real binary: stdin in, stdout/stderr/exit code out,
//! against the protocol crate and the published test vectors (protocol notes §3.7).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use opencharge_protocol::auth::RequestAuth;
use opencharge_protocol::keys::{PrivateKey, PublicKey, VerifyOptions};
use opencharge_protocol::signing::sign_object;
use serde_json::{json, Value};

/// The test-vector private key (TV1).
const TV_KEY: &str = "0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef";
/// Its public key, 128 hex.
const TV_PUB: &str = "bb50e2d89a4ed70663d080659fe0ad4b9bc3e06c17a227433966cb59ceee020decddbf6e00192011648d13b1c00af770c0c1bb609d4d3a5c98a43772e0e18ef4";
/// Its public key, compressed.
const TV_PUB_COMPRESSED: &str =
    "02bb50e2d89a4ed70663d080659fe0ad4b9bc3e06c17a227433966cb59ceee020d";

/// What one run of the binary gave.
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn out(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap()
    }

    /// Asserts exit 0 and returns stdout.
    fn ok(&self) -> String {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self.out()
    }

    /// Asserts a bad-input failure: exit 2, nothing on stdout, one `error:` line on stderr.
    fn assert_input_error(&self, contains: &str) {
        assert_eq!(
            self.code,
            2,
            "stdout: {} stderr: {}",
            self.out(),
            self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout: {}", self.out());
        assert!(self.stderr.starts_with("error: "), "{}", self.stderr);
        assert_eq!(self.stderr.trim_end().lines().count(), 1, "{}", self.stderr);
        assert!(
            self.stderr
                .to_lowercase()
                .contains(&contains.to_lowercase()),
            "expected {contains:?} in {}",
            self.stderr
        );
    }

    /// Asserts `verify` said invalid: exit 1, nothing on stdout, `invalid: …` with `reason`.
    fn assert_invalid(&self, reason: &str) {
        assert_eq!(
            self.code,
            1,
            "stdout: {} stderr: {}",
            self.out(),
            self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout: {}", self.out());
        assert!(self.stderr.starts_with("invalid: "), "{}", self.stderr);
        assert!(
            self.stderr.contains(reason),
            "expected {reason:?} in {}",
            self.stderr
        );
    }
}

/// Runs `opencharge proto ARGS` with `stdin` piped in.
fn proto(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_opencharge"))
        .arg("proto")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    // The child may exit before reading (usage errors): a broken pipe is fine then.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: output.stdout,
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn tv3_proof() -> Value {
    json!({"txid":"barclays_tx_456","issuer":100,
        "from":{"ocid":200,"reference":"paypal_tx_123"},"to":{"ocid":300,"reference":"momo_tx_789"},
        "amount":"10000.00","currency":"UGX","timestamp":1706500500,"memo":"Settlement for ORD-2024-001"})
}

fn tv4_order() -> Value {
    json!({"id":"ord_abc123","ocid":500,"amount":"15.00","currency":"USD",
        "items":[{"id":"item_001","name":"Large Coffee","quantity":2,"price":"5.00"},
                 {"id":"item_002","name":"Croissant","quantity":1,"price":"5.00"}],
        "createdAt":1706313600,"expiresAt":1706400000,"accepts":[100,101,102]})
}

fn config_for(public_hex: &str) -> Value {
    json!({"publicKey": public_hex, "endpoint": "https://pg.example/opencharge",
        "capabilities": ["checkout.create"], "settlement": {"currencies": ["USD"], "accepts": [100]}})
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap()
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn keygen_prints_documented_json_consistent_with_pubkey() {
    let first: Value = serde_json::from_str(proto(&["keygen"], b"").ok().trim_end()).unwrap();
    let object = first.as_object().unwrap();
    assert_eq!(object.len(), 3, "{first}");
    let private = first["privateKey"].as_str().unwrap();
    let public = first["publicKey"].as_str().unwrap();
    let compressed = first["publicKeyCompressed"].as_str().unwrap();
    assert!(is_lower_hex(private, 64), "{private}");
    assert!(is_lower_hex(public, 128), "{public}");
    assert!(is_lower_hex(compressed, 66), "{compressed}");
    assert!(compressed.starts_with("02") || compressed.starts_with("03"));

    assert_eq!(
        proto(&["pubkey", "--key", private], b"").ok(),
        format!("{public}\n")
    );
    assert_eq!(
        proto(&["pubkey", "--key", private, "--compressed"], b"").ok(),
        format!("{compressed}\n")
    );
    // The protocol crate agrees.
    let key = PrivateKey::from_hex(private).unwrap();
    assert_eq!(key.public_key().to_hex(), public);

    // keygen's output works as a --key-file as it is.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.json");
    std::fs::write(&key_file, serde_json::to_string(&first).unwrap()).unwrap();
    let key_path = key_file.to_str().unwrap();
    assert_eq!(
        proto(&["pubkey", "--key-file", key_path], b"").ok(),
        format!("{public}\n")
    );

    // Two keygens give two different keys.
    let second: Value = serde_json::from_str(proto(&["keygen"], b"").ok().trim_end()).unwrap();
    assert_ne!(second["privateKey"], first["privateKey"]);
}

#[test]
fn pubkey_reproduces_the_test_vector_key() {
    assert_eq!(
        proto(&["pubkey", "--key", TV_KEY], b"").ok(),
        format!("{TV_PUB}\n")
    );
    assert_eq!(
        proto(&["pubkey", "--key", TV_KEY, "--compressed"], b"").ok(),
        format!("{TV_PUB_COMPRESSED}\n")
    );
    // A plain-hex key file with surrounding whitespace.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.hex");
    std::fs::write(&path, format!("  {}\n", &TV_KEY[2..])).unwrap();
    assert_eq!(
        proto(&["pubkey", "--key-file", path.to_str().unwrap()], b"").ok(),
        format!("{TV_PUB}\n")
    );
}

#[test]
fn canonical_reproduces_published_vectors_without_trailing_newline() {
    // TV4: the merchant order, recursive form, and its legacy replacer form.
    let order = bytes(&tv4_order());
    assert_eq!(
        proto(&["canonical"], &order).ok(),
        r#"{"accepts":[100,101,102],"amount":"15.00","createdAt":1706313600,"currency":"USD","expiresAt":1706400000,"id":"ord_abc123","items":[{"id":"item_001","name":"Large Coffee","price":"5.00","quantity":2},{"id":"item_002","name":"Croissant","price":"5.00","quantity":1}],"ocid":500}"#
    );
    assert_eq!(
        proto(&["canonical", "--legacy-replacer"], &order).ok(),
        r#"{"accepts":[100,101,102],"amount":"15.00","createdAt":1706313600,"currency":"USD","expiresAt":1706400000,"id":"ord_abc123","items":[{"id":"item_001"},{"id":"item_002"}],"ocid":500}"#
    );
    // TV3: canonical form and its SHA-256, and the replacer form's SHA-256.
    let proof = bytes(&tv3_proof());
    assert_eq!(
        proto(&["canonical"], &proof).ok(),
        r#"{"amount":"10000.00","currency":"UGX","from":{"ocid":200,"reference":"paypal_tx_123"},"issuer":100,"memo":"Settlement for ORD-2024-001","timestamp":1706500500,"to":{"ocid":300,"reference":"momo_tx_789"},"txid":"barclays_tx_456"}"#
    );
    assert_eq!(
        proto(&["canonical", "--hash"], &proof).ok(),
        "3c2009aa9da528e991be37ff95cfb3299c2c4cc4330f721c968d423286d66751\n"
    );
    assert_eq!(
        proto(&["canonical", "--hash", "--legacy-replacer"], &proof).ok(),
        "e694b491851d37ed456907bed495aed27264c21af08234e821b0cb75d719fce7\n"
    );
}

#[test]
fn canonical_handles_tricky_json() {
    // Key order at every level, by UTF-16 code units: U+1F600 (surrogates D83D DE00) sorts
    // before U+FF5E although its code point is larger; "B" < "a" < "aa".
    let input = "{ \"\u{ff5e}\": 1, \"\u{1f600}\": 2, \"aa\": {\"z\": [3, {\"y\": 1, \"x\": 0}]},\n \"a\": null, \"B\": true }";
    assert_eq!(
        proto(&["canonical"], input.as_bytes()).ok(),
        "{\"B\":true,\"a\":null,\"aa\":{\"z\":[3,{\"x\":0,\"y\":1}]},\"\u{1f600}\":2,\"\u{ff5e}\":1}"
    );
    // Unicode escapes: \u00e9 and the surrogate pair become raw UTF-8, control characters stay
    // escaped (short forms where JSON.stringify has them), U+2028 is raw, "\/" becomes "/".
    let input = br#"{"s":"\u00e9\ud83d\ude00\u0001\u001f\b\t\n\f\r\"\\\/\u2028"}"#;
    assert_eq!(
        proto(&["canonical"], input).ok(),
        "{\"s\":\"\u{e9}\u{1f600}\\u0001\\u001f\\b\\t\\n\\f\\r\\\"\\\\/\u{2028}\"}"
    );
    // Numbers: integers up to 2^53-1 either sign.
    assert_eq!(
        proto(
            &["canonical"],
            br#"[9007199254740991, -9007199254740991, 0, 42]"#
        )
        .ok(),
        "[9007199254740991,-9007199254740991,0,42]"
    );
    // Fractions, exponents and unsafe integers are refused: money must be a string.
    for bad in [
        &br#"{"amount":15.5}"#[..],
        br#"{"a":1e3}"#,
        br#"{"a":1.0}"#,
        br#"{"a":9007199254740992}"#,
        // serde_json reads -0 as a float, so the protocol crate refuses it too.
        br#"{"a":-0}"#,
    ] {
        proto(&["canonical"], bad).assert_input_error("cannot canonicalise");
    }
    // The canonical form is a fixed point.
    let once = proto(&["canonical"], &bytes(&tv4_order())).ok();
    assert_eq!(proto(&["canonical"], once.as_bytes()).ok(), once);
}

#[test]
fn sign_reproduces_published_signature_vectors() {
    // TV3: the nested proof.
    assert_eq!(
        proto(&["sign", "--key", TV_KEY, "--kind", "proof"], &bytes(&tv3_proof())).ok(),
        "4b9a8b5ed80d4fddead8f308f74056df02aa7e216605176b1d1afaff830ac89c19da80cba91ee3fd4b6bdd3dfc07cf17de4ea42c1573e7bc5d3b8345912fc8621b\n"
    );
    // TV2: the old integer-form proof, in a {proof, signature} envelope (the envelope's other
    // fields are not signed).
    let tv2 = json!({"proof": {"amount":"10000.00","currency":"UGX","from":200,"issuer":100,
        "timestamp":1706500500,"to":300,"txid":"test_tx_001"}, "signature": "ignored"});
    assert_eq!(
        proto(&["sign", "--key", TV_KEY, "--kind", "proof"], &bytes(&tv2)).ok(),
        "4a5f5853e2f3359e875d2a18efcc5affa2ae397b38549437d203a12596a8961e7955d0ad2cf86bdd88c8e44e9678215d678b237c458b34e20da03ff21865fd861b\n"
    );
    // The `verify --help` example: TV2 with the compressed key and the published signature.
    let run = proto(
        &[
            "verify", "--kind", "proof", "--pubkey", TV_PUB_COMPRESSED, "--sig",
            "4a5f5853e2f3359e875d2a18efcc5affa2ae397b38549437d203a12596a8961e7955d0ad2cf86bdd88c8e44e9678215d678b237c458b34e20da03ff21865fd861b",
        ],
        br#"{"amount":"10000.00","currency":"UGX","from":200,"issuer":100,"timestamp":1706500500,"to":300,"txid":"test_tx_001"}"#,
    );
    assert_eq!(run.ok(), "valid\n");
}

#[test]
fn sign_matches_the_protocol_crate_and_verifies_for_every_kind() {
    let key = PrivateKey::generate();
    let private = key.to_hex().to_string();
    let public = key.public_key().to_hex();
    let compressed = key.public_key().to_compressed_hex();
    let cases = [
        ("order", tv4_order()),
        ("proof", tv3_proof()),
        ("config", config_for(&public)),
    ];
    for (kind, object) in cases {
        let run = proto(
            &["sign", "--key", &private, "--kind", kind],
            &bytes(&object),
        );
        let out = run.ok();
        assert!(run.stderr.is_empty(), "{kind}: {}", run.stderr);
        let sig = out.strip_suffix('\n').unwrap();
        assert!(is_lower_hex(sig, 130), "{sig}");
        assert_eq!(sig, sign_object(&key, &object).unwrap(), "{kind}");

        // Bare object with --sig, with either public-key encoding.
        for pk in [&public, &compressed] {
            let run = proto(
                &["verify", "--kind", kind, "--pubkey", pk, "--sig", sig],
                &bytes(&object),
            );
            assert_eq!(run.ok(), "valid\n", "{kind}");
        }
        // Envelope with its own signature field, no --sig.
        let mut envelope = serde_json::Map::new();
        envelope.insert(kind.to_string(), object.clone());
        envelope.insert("signature".into(), json!(sig));
        envelope.insert("urls".into(), json!({"status": "https://m.example/s"}));
        let envelope = Value::Object(envelope);
        let run = proto(
            &["verify", "--kind", kind, "--pubkey", &public],
            &bytes(&envelope),
        );
        assert_eq!(run.ok(), "valid\n", "{kind} envelope");
        // The 128-hex compact form (registry UI) verifies too.
        let run = proto(
            &[
                "verify",
                "--kind",
                kind,
                "--pubkey",
                &public,
                "--sig",
                &sig[..128],
            ],
            &bytes(&object),
        );
        assert_eq!(run.ok(), "valid\n", "{kind} compact");
    }
    // A config needs no --pubkey: it is verified with its own config.publicKey.
    let config = config_for(&public);
    let sig = sign_object(&key, &config).unwrap();
    let run = proto(
        &["verify", "--kind", "config", "--sig", &sig],
        &bytes(&config),
    );
    assert_eq!(run.ok(), "valid\n");
    // A whole metadata document is accepted by sign and verify.
    let document = json!({"opencharge": "0.1", "name": "PG", "config": config, "signature": sig});
    let run = proto(
        &["sign", "--key", &private, "--kind", "config"],
        &bytes(&document),
    );
    assert_eq!(run.ok(), format!("{sig}\n"));
    assert_eq!(
        proto(&["verify", "--kind", "config"], &bytes(&document)).ok(),
        "valid\n"
    );
}

#[test]
fn verify_reports_tampering_and_wrong_keys_as_invalid() {
    let key = PrivateKey::generate();
    let private = key.to_hex().to_string();
    let public = key.public_key().to_hex();
    let other = PrivateKey::generate().public_key().to_hex();
    let order = tv4_order();
    let sig = sign_object(&key, &order).unwrap();

    // A nested item price changed.
    let mut cheap = order.clone();
    cheap["items"][0]["price"] = json!("0.01");
    proto(
        &[
            "verify", "--kind", "order", "--pubkey", &public, "--sig", &sig,
        ],
        &bytes(&cheap),
    )
    .assert_invalid("signature does not verify");
    // The right object, the wrong key.
    proto(
        &[
            "verify", "--kind", "order", "--pubkey", &other, "--sig", &sig,
        ],
        &bytes(&order),
    )
    .assert_invalid("signature does not verify");
    // Binding: the order belongs to OCID 500, not 501.
    proto(
        &[
            "verify", "--kind", "order", "--pubkey", &public, "--sig", &sig, "--ocid", "501",
        ],
        &bytes(&order),
    )
    .assert_invalid("binding check failed");
    let run = proto(
        &[
            "verify", "--kind", "order", "--pubkey", &public, "--sig", &sig, "--ocid", "500",
        ],
        &bytes(&order),
    );
    assert_eq!(run.ok(), "valid\n");

    // Proof: tampered amount; issuer binding.
    let proof = tv3_proof();
    let proof_sig = sign_object(&key, &proof).unwrap();
    let mut more = proof.clone();
    more["amount"] = json!("10000.01");
    proto(
        &[
            "verify", "--kind", "proof", "--pubkey", &public, "--sig", &proof_sig,
        ],
        &bytes(&more),
    )
    .assert_invalid("signature does not verify");
    proto(
        &[
            "verify", "--kind", "proof", "--pubkey", &public, "--sig", &proof_sig, "--ocid", "101",
        ],
        &bytes(&proof),
    )
    .assert_invalid("binding check failed");

    // Config: changed settlement; another --pubkey than config.publicKey; signed by a key that
    // is not config.publicKey (sign warns about it).
    let config = config_for(&public);
    let config_sig = sign_object(&key, &config).unwrap();
    let mut changed = config.clone();
    changed["settlement"]["accepts"] = json!([666]);
    proto(
        &["verify", "--kind", "config", "--sig", &config_sig],
        &bytes(&changed),
    )
    .assert_invalid("signature does not verify");
    proto(
        &[
            "verify",
            "--kind",
            "config",
            "--pubkey",
            &other,
            "--sig",
            &config_sig,
        ],
        &bytes(&config),
    )
    .assert_invalid("not --pubkey");
    let foreign = config_for(&other);
    let run = proto(
        &["sign", "--key", &private, "--kind", "config"],
        &bytes(&foreign),
    );
    let foreign_sig = run.ok();
    assert!(
        run.stderr.starts_with("warning: config.publicKey"),
        "{}",
        run.stderr
    );
    proto(
        &[
            "verify",
            "--kind",
            "config",
            "--sig",
            foreign_sig.trim_end(),
        ],
        &bytes(&foreign),
    )
    .assert_invalid("signature does not verify");

    // A flipped signature byte.
    let mut flipped = sig.clone().into_bytes();
    flipped[70] = if flipped[70] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    let run = proto(
        &[
            "verify", "--kind", "order", "--pubkey", &public, "--sig", &flipped,
        ],
        &bytes(&order),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());

    // An order without an ocid cannot pass the binding check.
    let mut anonymous = order.clone();
    anonymous.as_object_mut().unwrap().remove("ocid");
    let anon_sig = sign_object(&key, &anonymous).unwrap();
    proto(
        &[
            "verify", "--kind", "order", "--pubkey", &public, "--sig", &anon_sig,
        ],
        &bytes(&anonymous),
    )
    .assert_invalid("order.ocid");
}

#[test]
fn verify_legacy_replacer_only_on_request_and_marked_weak() {
    let key = PrivateKey::generate();
    let public = key.public_key().to_hex();
    let order = tv4_order();
    let legacy = opencharge_protocol::canonical::replacer_form(&order).unwrap();
    let sig = key.sign_message(legacy.as_bytes()).unwrap().to_hex();
    let args = [
        "verify", "--kind", "order", "--pubkey", &public, "--sig", &sig,
    ];
    proto(&args, &bytes(&order)).assert_invalid("signature does not verify");
    let mut weak_args = args.to_vec();
    weak_args.push("--legacy-replacer");
    let run = proto(&weak_args, &bytes(&order));
    assert_eq!(run.ok(), "valid weak-legacy-replacer\n");
    assert!(run.stderr.contains("NOT signed"), "{}", run.stderr);
    // Only for orders.
    proto(
        &[
            "verify",
            "--kind",
            "proof",
            "--pubkey",
            &public,
            "--sig",
            &sig,
            "--legacy-replacer",
        ],
        &bytes(&tv3_proof()),
    )
    .assert_input_error("--legacy-replacer");
}

#[test]
fn bad_input_is_exit_2_with_nothing_on_stdout() {
    let key = PrivateKey::generate();
    let private = key.to_hex().to_string();
    let public = key.public_key().to_hex();
    let order = bytes(&tv4_order());
    let sig = sign_object(&key, &tv4_order()).unwrap();

    // Bad hex keys.
    proto(&["pubkey", "--key", "zz"], b"").assert_input_error("--key");
    proto(&["pubkey", "--key", &"g".repeat(64)], b"").assert_input_error("not hex");
    proto(
        &["sign", "--key", &"0".repeat(64), "--kind", "order"],
        &order,
    )
    .assert_input_error("zero");
    proto(
        &[
            "verify", "--kind", "order", "--pubkey", "04abc", "--sig", &sig,
        ],
        &order,
    )
    .assert_input_error("--pubkey");
    // Bad signatures (syntax): not hex, wrong length.
    for bad in ["xyz", &"q".repeat(130), &sig[..100]] {
        proto(
            &[
                "verify", "--kind", "order", "--pubkey", &public, "--sig", bad,
            ],
            &order,
        )
        .assert_input_error("--sig");
    }
    // Bad JSON on stdin, for every JSON subcommand.
    for input in [&b""[..], b"{", b"{\"a\":}", b"[1,]", b"\xff\xfe"] {
        proto(&["canonical"], input).assert_input_error("invalid JSON");
        proto(&["sign", "--key", &private, "--kind", "proof"], input)
            .assert_input_error("invalid JSON");
        proto(
            &[
                "verify", "--kind", "order", "--pubkey", &public, "--sig", &sig,
            ],
            input,
        )
        .assert_input_error("invalid JSON");
    }
    // Not an object; a float inside a signed object.
    proto(&["sign", "--key", &private, "--kind", "order"], b"[1,2]")
        .assert_input_error("must be a JSON object");
    proto(
        &["sign", "--key", &private, "--kind", "order"],
        br#"{"ocid":500,"amount":15.5}"#,
    )
    .assert_input_error("non-integer number");
    proto(
        &[
            "verify", "--kind", "order", "--pubkey", &public, "--sig", &sig,
        ],
        br#"{"ocid":500,"amount":15.5}"#,
    )
    .assert_input_error("non-integer number");
    // Missing pieces.
    proto(&["verify", "--kind", "order", "--sig", &sig], &order).assert_input_error("--pubkey");
    proto(&["verify", "--kind", "order", "--pubkey", &public], &order)
        .assert_input_error("no signature");
    proto(
        &["verify", "--kind", "config", "--sig", &sig, "--ocid", "5"],
        &order,
    )
    .assert_input_error("--ocid");
    // A missing key file.
    proto(&["pubkey", "--key-file", "/nonexistent-dir/key.json"], b"")
        .assert_input_error("--key-file");
    // Clap usage errors are exit 2 too.
    let run = proto(&["sign", "--kind", "order"], &order);
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty());
    let run = proto(&["sign", "--key", &private, "--kind", "invoice"], &order);
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty());
}

#[test]
fn sign_request_reproduces_tv1_and_tv5() {
    // TV1 (with the correct body hash).
    let run = proto(
        &[
            "sign-request",
            "--key",
            TV_KEY,
            "--ocid",
            "200",
            "--method",
            "POST",
            "--path",
            "/opencharge/payment/request",
            "--timestamp",
            "1706500000",
            "--nonce",
            "req_test123",
        ],
        br#"{"amount":"100.00","currency":"USD"}"#,
    );
    assert_eq!(
        run.ok(),
        "X-OC-ID: 200\nX-OC-Timestamp: 1706500000\nX-OC-Nonce: req_test123\nX-OC-Signature: 5751621089ba7b45a8ec53e58ff59d345133c812cd4b6703b8d85fe6fd473c9724e0e142b8bb1edad42330ce473fdbb80d4ccd4c30b24007f6aee656c75124371c\n"
    );
    // TV5: GET with an empty body, lower-case method (upper-cased in the signed string).
    let run = proto(
        &[
            "sign-request",
            "--key",
            TV_KEY,
            "--ocid",
            "200",
            "--method",
            "get",
            "--path",
            "/opencharge/orders/ord_abc123/status",
            "--timestamp",
            "1706500000",
            "--nonce",
            "req_test124",
            "--show-canonical",
        ],
        b"",
    );
    assert!(run
        .ok()
        .ends_with("X-OC-Signature: 3200d1914705d304f3942827e27f30c88c3cc7b55f3cb276b1101908f4f5b4c3492d46bd48e89c9d333ba8b36c48ee109593f34bc288c1bede1220c5becf8e6b1c\n"));
    assert!(run.stderr.contains(
        "200\n1706500000\nreq_test124\nGET\n/opencharge/orders/ord_abc123/status\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
    ), "{}", run.stderr);
}

/// Parses `Name: value` lines into the protocol crate's `RequestAuth`.
fn parse_headers(text: &str) -> RequestAuth {
    let pairs: Vec<(String, String)> = text
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap();
            (name.to_string(), value.to_string())
        })
        .collect();
    let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["X-OC-ID", "X-OC-Timestamp", "X-OC-Nonce", "X-OC-Signature"]
    );
    RequestAuth::from_headers(|name| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    })
    .unwrap()
}

#[test]
fn sign_request_headers_verify_with_the_protocol_crate() {
    let key = PrivateKey::generate();
    let private = key.to_hex().to_string();
    let public = PublicKey::from_hex(&key.public_key().to_hex()).unwrap();
    let body = b"{\"order\":{\"id\":\"o1\"}}\n";
    let path = "/opencharge/orders/create/sess_1?x=1";
    let args = [
        "sign-request",
        "--key",
        &private,
        "--ocid",
        "4242",
        "--method",
        "POST",
        "--path",
        path,
        "--timestamp",
        "1800000000",
        "--nonce",
        "req_fixed-1",
    ];
    let first = proto(&args, body).ok();
    // Deterministic for fixed inputs.
    assert_eq!(proto(&args, body).ok(), first);
    let auth = parse_headers(&first);
    assert_eq!(auth.ocid, 4242);
    assert_eq!(auth.timestamp, 1_800_000_000);
    assert_eq!(auth.nonce, "req_fixed-1");
    auth.verify(
        &public,
        "POST",
        path,
        body,
        1_800_000_000,
        VerifyOptions::STRICT,
    )
    .unwrap();
    // The body's trailing newline is signed; another path or method does not verify.
    assert!(auth
        .verify(
            &public,
            "POST",
            path,
            &body[..body.len() - 1],
            1_800_000_000,
            VerifyOptions::STRICT
        )
        .is_err());
    assert!(auth
        .verify(
            &public,
            "POST",
            "/opencharge/orders/create/sess_1",
            body,
            1_800_000_000,
            VerifyOptions::STRICT
        )
        .is_err());
    assert!(auth
        .verify(
            &public,
            "PUT",
            path,
            body,
            1_800_000_000,
            VerifyOptions::STRICT
        )
        .is_err());

    // Defaults: a fresh nonce each time and the current time; both verify at their own time.
    let defaults = [
        "sign-request",
        "--key",
        &private,
        "--ocid",
        "7",
        "--method",
        "GET",
        "--path",
        "/opencharge/x",
    ];
    let a = parse_headers(&proto(&defaults, b"").ok());
    let b = parse_headers(&proto(&defaults, b"").ok());
    assert_ne!(a.nonce, b.nonce);
    for auth in [&a, &b] {
        assert!(
            auth.nonce.starts_with("req_") && auth.nonce.len() == 36,
            "{}",
            auth.nonce
        );
        auth.verify(
            &public,
            "GET",
            "/opencharge/x",
            b"",
            auth.timestamp,
            VerifyOptions::STRICT,
        )
        .unwrap();
    }
}

#[test]
fn sign_request_rejects_bad_arguments() {
    let base = |extra: &[&str]| {
        let mut args = vec![
            "sign-request",
            "--key",
            TV_KEY,
            "--ocid",
            "200",
            "--timestamp",
            "1706500000",
        ];
        args.extend_from_slice(extra);
        proto(&args, b"")
    };
    base(&["--method", "POST", "--path", "/x", "--nonce", "bad nonce"])
        .assert_input_error("--nonce");
    base(&[
        "--method",
        "POST",
        "--path",
        "/x",
        "--nonce",
        &"n".repeat(129),
    ])
    .assert_input_error("--nonce");
    base(&["--method", "PO ST", "--path", "/x"]).assert_input_error("--method");
    base(&["--method", "", "--path", "/x"]).assert_input_error("--method");
    base(&["--method", "POST", "--path", "https://host/x"]).assert_input_error("--path");
    base(&["--method", "POST", "--path", "/a b"]).assert_input_error("--path");
    base(&["--method", "POST", "--path", "/caf\u{e9}"]).assert_input_error("--path");
    let run = base(&["--method", "POST", "--path", "/x", "--ocid", "-1"]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty());
}

#[test]
fn qr_writes_the_wallet_core_renderings() {
    let dir = tempfile::tempdir().unwrap();
    let payload = "opencharge:500?amount=15000&currency=UGX&ref=order-123";
    let stdin = format!("{payload}\r\n");

    let svg_path = dir.path().join("pay.svg");
    let run = proto(
        &["qr", "--svg", svg_path.to_str().unwrap()],
        stdin.as_bytes(),
    );
    assert_eq!(run.ok(), "");
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    assert!(svg.ends_with("</svg>"));
    // Exactly the core's rendering of the payload without the trailing line break.
    assert_eq!(
        svg,
        opencharge_wallet::qr::render_qr_svg(payload.to_string(), 8).unwrap()
    );

    let png_path = dir.path().join("pay.png");
    let run = proto(
        &[
            "qr",
            "--png",
            png_path.to_str().unwrap(),
            "--module-px",
            "3",
        ],
        stdin.as_bytes(),
    );
    assert_eq!(run.ok(), "");
    let png = std::fs::read(&png_path).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let matrix = opencharge_wallet::qr::render_qr_matrix(payload.to_string()).unwrap();
    assert_eq!(i64::from(width), i64::from(matrix.size + 8) * 3);
    assert_eq!(
        png,
        opencharge_wallet::qr::render_qr_png(payload.to_string(), 3).unwrap()
    );

    let run = proto(&["qr", "--terminal"], payload.as_bytes());
    assert_eq!(
        run.ok(),
        opencharge_wallet::qr::render_qr_terminal(payload.to_string()).unwrap()
    );
}

#[test]
fn qr_rejects_bad_input_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.png");
    let path = path.to_str().unwrap();
    proto(&["qr", "--png", path], b"\n").assert_input_error("empty");
    proto(&["qr", "--png", path], b"\xff\xfe").assert_input_error("UTF-8");
    proto(&["qr", "--png", path], "x".repeat(5000).as_bytes()).assert_input_error("payload");
    assert!(!Path::new(path).exists());
    proto(&["qr", "--png", "/nonexistent-dir/x.png"], b"hello").assert_input_error("cannot write");
    for args in [
        &["qr"][..],
        &["qr", "--png", path, "--terminal"],
        &["qr", "--svg", path, "--png", path],
        &["qr", "--terminal", "--module-px", "0"],
        &["qr", "--terminal", "--module-px", "65"],
    ] {
        let run = proto(args, b"hello");
        assert_eq!(run.code, 2, "{args:?}");
        assert!(run.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn every_subcommand_help_has_an_example() {
    for sub in [
        None,
        Some("keygen"),
        Some("pubkey"),
        Some("canonical"),
        Some("sign"),
        Some("verify"),
        Some("sign-request"),
        Some("qr"),
    ] {
        let mut args: Vec<&str> = sub.into_iter().collect();
        args.push("--help");
        let run = proto(&args, b"");
        let help = run.ok();
        assert!(help.contains("Example"), "{sub:?}: {help}");
        assert!(help.contains("opencharge proto"), "{sub:?}: {help}");
    }
    let run = proto(&["--help"], b"");
    let help = run.ok();
    assert!(help.contains("Exit codes"), "{help}");
}
