//! Differential test of the `native-verify` feature: 2,000 deterministic pseudo-random
//! (key, digest, signature) cases, valid, high-S, tampered digest, tampered signature, another
//! key's signature and random r‖s, must get the same answer from libsecp256k1
//! (`PublicKey::verify_prehash` with the feature) and from k256 (`verify_prehash_k256`), after
//! the same parsing under the strict and the lenient options. Run with
//! `cargo test -p opencharge-protocol --features native-verify --test native_verify`.
#![cfg(feature = "native-verify")]

use opencharge_protocol::keys::{sha256, PrivateKey, PublicKey, Signature, VerifyOptions};
use opencharge_protocol::ProtocolError;

/// The group order n of secp256k1, big-endian.
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// n - s for 0 < s < n (big-endian): the high-S twin of a low-S `s`.
fn negate_mod_order(s: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = ORDER[i] as i16 - s[i] as i16 - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = d as u8;
    }
    out
}

/// Deterministic bytes for case `i` and purpose `tag`, so a failure names a reproducible case.
fn bytes(tag: &str, i: usize) -> [u8; 32] {
    sha256(format!("native-verify differential {tag} {i}").as_bytes())
}

fn key(i: usize) -> PrivateKey {
    PrivateKey::from_bytes(&bytes("key", i)).expect("a SHA-256 output is a valid key")
}

/// What one verifier says about one case: refused by the parser, or the verify result.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Unparsed,
    Verified,
    Refused,
}

fn answer(
    parsed: &Result<Signature, ProtocolError>,
    verify: impl Fn(&Signature) -> Result<(), ProtocolError>,
) -> Answer {
    match parsed {
        Err(ProtocolError::MalformedSignature(_)) => Answer::Unparsed,
        Err(other) => panic!("parser gave an unexpected error: {other:?}"),
        Ok(signature) => match verify(signature) {
            Ok(()) => Answer::Verified,
            Err(ProtocolError::BadSignature) => Answer::Refused,
            Err(other) => panic!("verifier gave an unexpected error: {other:?}"),
        },
    }
}

#[test]
fn libsecp256k1_and_k256_give_the_same_answer_on_2000_cases() {
    let lenient = VerifyOptions {
        allow_high_s: true,
        ..VerifyOptions::STRICT
    };
    let mut tally = std::collections::BTreeMap::<(&str, String), usize>::new();
    for i in 0..2000 {
        let signer = key(i);
        let public = signer.public_key();
        let digest = bytes("digest", i);
        let good = signer.sign_prehash(&digest).unwrap().to_hex();
        let (kind, verifier, digest, signature_hex) = match i % 6 {
            0 => ("valid", public, digest, good),
            1 => {
                let raw = hex::decode(&good[..128]).unwrap();
                let high = negate_mod_order(&raw[32..]);
                let text = format!("{}{}", &good[..64], hex::encode(high));
                ("high-S twin", public, digest, text)
            }
            2 => {
                let mut tampered = digest;
                tampered[i % 32] ^= 1 << (i % 8);
                ("tampered digest", public, tampered, good)
            }
            3 => {
                let mut raw = hex::decode(&good).unwrap();
                raw[(i / 6) % 64] ^= 1 << (i % 8);
                ("tampered signature", public, digest, hex::encode(raw))
            }
            4 => ("another key", key(i + 100_000).public_key(), digest, good),
            _ => {
                let r = bytes("random r", i);
                let s = bytes("random s", i);
                let text = format!("{}{}", hex::encode(r), hex::encode(s));
                ("random r and s", public, digest, text)
            }
        };
        for (options_name, options) in [("strict", VerifyOptions::STRICT), ("lenient", lenient)] {
            let parsed = Signature::parse(&signature_hex, options);
            let native = answer(&parsed, |s| verifier.verify_prehash(&digest, s));
            let k256 = answer(&parsed, |s| verifier.verify_prehash_k256(&digest, s));
            assert_eq!(
                native, k256,
                "case {i} ({kind}, {options_name}): libsecp256k1 said {native:?}, k256 {k256:?}"
            );
            *tally
                .entry((kind, format!("{options_name} {native:?}")))
                .or_default() += 1;
        }
    }
    // The cases cover what they claim: each kind got the answer it exists to provoke.
    let count = |kind: &'static str, outcome: &str| {
        tally
            .get(&(kind, outcome.to_string()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(count("valid", "strict Verified"), 334, "{tally:?}");
    assert_eq!(count("high-S twin", "strict Unparsed"), 334, "{tally:?}");
    assert_eq!(count("high-S twin", "lenient Verified"), 334, "{tally:?}");
    assert_eq!(count("tampered digest", "strict Refused"), 333, "{tally:?}");
    assert_eq!(count("another key", "strict Refused"), 333, "{tally:?}");
    assert!(
        count("tampered signature", "strict Refused") > 250,
        "{tally:?}"
    );
    assert!(
        count("random r and s", "lenient Refused") > 250,
        "{tally:?}"
    );
    assert!(
        count("random r and s", "strict Unparsed") > 100,
        "{tally:?}"
    );
}

/// Every accepted public-key encoding verifies through libsecp256k1 like through k256, and the
/// protocol's test-vector signature (TV2) verifies on both paths.
#[test]
fn every_key_encoding_and_the_test_vector_verify_on_both_paths() {
    let key =
        PrivateKey::from_hex("1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef")
            .unwrap();
    let msg = br#"{"amount":"10000.00","currency":"UGX","from":200,"issuer":100,"timestamp":1706500500,"to":300,"txid":"test_tx_001"}"#;
    let tv2 = "4a5f5853e2f3359e875d2a18efcc5affa2ae397b38549437d203a12596a8961e7955d0ad2cf86bdd88c8e44e9678215d678b237c458b34e20da03ff21865fd861b";
    let signature = Signature::parse(tv2, VerifyOptions::STRICT).unwrap();
    let digest = sha256(msg);
    let public = key.public_key();
    for form in [
        public.to_hex(),
        format!("04{}", public.to_hex()),
        public.to_compressed_hex(),
    ] {
        let parsed = PublicKey::from_hex(&form).unwrap();
        parsed.verify_prehash(&digest, &signature).unwrap();
        parsed.verify_prehash_k256(&digest, &signature).unwrap();
        parsed
            .verify_message(msg, tv2, VerifyOptions::STRICT)
            .unwrap();
        let mut other = digest;
        other[0] ^= 0x80;
        assert_eq!(
            parsed.verify_prehash(&other, &signature),
            Err(ProtocolError::BadSignature)
        );
    }
}
