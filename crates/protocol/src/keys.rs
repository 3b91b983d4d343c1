//! secp256k1 keys and signatures in the Opencharge encodings.
//!
//! Emitted: private keys as 64 hex, public keys as 128 hex (X‖Y, no `04`), signatures as
//! 130 lowercase hex r‖s‖v (RFC 6979 deterministic nonce, low-S, v = `1b`/`1c`).
//! Accepted: public keys as 128 hex, `04` + 128 hex or 66 hex compressed; signatures as 130 hex
//! (v ignored, as the reference verifier does) or 128 hex r‖s. DER signatures and high-S
//! signatures are rejected unless [`VerifyOptions`] opts in (see docs/protocol-decisions.md).

use crate::error::{ProtocolError, Result};
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{RecoveryId, Signature as K256Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha256(bytes))
}

fn strip_0x(s: &str) -> &str {
    s.strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s)
}

/// Checks the one wire form of hex in signatures and public keys (decision 39 in
/// `docs/protocol-decisions.md`): lower-case `0-9a-f` only, no `0x` prefix, no whitespace.
/// Signed bytes must have exactly one spelling, so a variant is refused with a message
/// saying which rule it breaks; `what` names the value ("signature", "public key").
pub fn check_wire_hex(text: &str, what: &str) -> std::result::Result<(), String> {
    if text.starts_with("0x") || text.starts_with("0X") {
        return Err(format!(
            "{what} has a 0x prefix: send bare lower-case hex without it"
        ));
    }
    if text.trim() != text {
        return Err(format!(
            "{what} has leading or trailing whitespace: send bare lower-case hex"
        ));
    }
    if text.bytes().any(|b| b.is_ascii_uppercase()) && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{what} has upper-case hex digits: send lower-case hex"
        ));
    }
    if let Some(bad) = text.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(format!("{what} is not hex (found {bad:?})"));
    }
    Ok(())
}

/// A secp256k1 private key. Zeroized on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct PrivateKey(SigningKey);

impl PrivateKey {
    /// Generates a fresh key from the operating system's random source.
    pub fn generate() -> Self {
        PrivateKey(SigningKey::random(&mut rand_core::OsRng))
    }

    /// Parses 64 hex characters (an optional `0x` prefix is accepted).
    pub fn from_hex(hex_str: &str) -> Result<Self> {
        let s = strip_0x(hex_str.trim());
        if s.len() != 64 {
            return Err(ProtocolError::InvalidKey(format!(
                "private key must be 64 hex characters, got {}",
                s.len()
            )));
        }
        let bytes = Zeroizing::new(
            hex::decode(s)
                .map_err(|_| ProtocolError::InvalidKey("private key is not hex".into()))?,
        );
        Self::from_bytes(&bytes)
    }

    /// Builds a key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        SigningKey::from_slice(bytes).map(PrivateKey).map_err(|_| {
            ProtocolError::InvalidKey("private key is zero or not below the curve order".into())
        })
    }

    /// The 32 raw bytes, in a buffer that is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes().into())
    }

    /// The 64-hex encoding, in a buffer that is wiped when dropped. Export on purpose only.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(*self.to_bytes()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// Signs a 32-byte SHA-256 digest: RFC 6979, low-S, with the recovery id.
    pub fn sign_prehash(&self, digest: &[u8; 32]) -> Result<Signature> {
        let (sig, recid) = self
            .0
            .sign_prehash_recoverable(digest)
            .map_err(|e| ProtocolError::InvalidKey(format!("signing failed: {e}")))?;
        // k256 already emits low-S; normalise defensively and flip the recovery id if it did not.
        let (sig, recid) = match sig.normalize_s() {
            Some(low) => (
                low,
                RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced()),
            ),
            None => (sig, recid),
        };
        Ok(Signature {
            inner: sig,
            recovery_id: Some(recid.to_byte()),
        })
    }

    /// Signs `SHA-256(message)`.
    pub fn sign_message(&self, message: &[u8]) -> Result<Signature> {
        self.sign_prehash(&sha256(message))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A secp256k1 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses 128 hex (X‖Y), `04` + 128 hex, or 66 hex compressed (`02`/`03` + X), in the
    /// wire form of [`check_wire_hex`] (lower-case, no `0x`, no whitespace).
    pub fn from_hex(hex_str: &str) -> Result<Self> {
        check_wire_hex(hex_str, "public key").map_err(ProtocolError::InvalidKey)?;
        let s = hex_str;
        let sec1 = match s.len() {
            128 => format!("04{s}"),
            130 if s.starts_with("04") => s.to_string(),
            66 if s.starts_with("02") || s.starts_with("03") => s.to_string(),
            n => {
                return Err(ProtocolError::InvalidKey(format!(
                "public key must be 128 hex, 04+128 hex or 66 hex compressed, got {n} characters"
            )))
            }
        };
        let bytes = hex::decode(&sec1)
            .map_err(|_| ProtocolError::InvalidKey("public key is not hex".into()))?;
        VerifyingKey::from_sec1_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| ProtocolError::InvalidKey("public key is not a point on secp256k1".into()))
    }

    /// The Opencharge encoding: 128 lowercase hex, X‖Y without the `04` prefix.
    pub fn to_hex(&self) -> String {
        let point = self.0.to_encoded_point(false);
        hex::encode(&point.as_bytes()[1..])
    }

    /// The 66-hex compressed encoding (what the registry UI shows).
    pub fn to_compressed_hex(&self) -> String {
        hex::encode(self.0.to_encoded_point(true).as_bytes())
    }

    /// Verifies `signature` over a 32-byte digest: with libsecp256k1 when the `native-verify`
    /// feature is on (the servers), with k256 otherwise (the mobile library). Both accept and
    /// refuse the same keys and signatures (low-S only, r and s in 1..n-1).
    pub fn verify_prehash(&self, digest: &[u8; 32], signature: &Signature) -> Result<()> {
        #[cfg(feature = "native-verify")]
        return crate::native_verify::verify_prehash(&self.0, digest, &signature.inner);
        #[cfg(not(feature = "native-verify"))]
        return self.verify_prehash_k256(digest, signature);
    }

    /// Verifies `signature` over a 32-byte digest with k256 (pure Rust), whatever the
    /// features: what [`PublicKey::verify_prehash`] does without `native-verify`. The
    /// differential test and the bench compare the two paths through it.
    pub fn verify_prehash_k256(&self, digest: &[u8; 32], signature: &Signature) -> Result<()> {
        self.0
            .verify_prehash(digest, &signature.inner)
            .map_err(|_| ProtocolError::BadSignature)
    }

    /// Parses `signature_hex` with `options` and verifies it over `SHA-256(message)`.
    pub fn verify_message(
        &self,
        message: &[u8],
        signature_hex: &str,
        options: VerifyOptions,
    ) -> Result<()> {
        let signature = Signature::parse(signature_hex, options)?;
        self.verify_prehash(&sha256(message), &signature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Which tolerated signature variants a verifier accepts besides 130/128-hex low-S.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Accept DER-encoded signatures (noble v1 `signSync`). Off by default.
    pub allow_der: bool,
    /// Accept high-S signatures by normalising them. Off by default (libsecp256k1 rejects them).
    pub allow_high_s: bool,
}

impl VerifyOptions {
    /// The strict default: 130 or 128 hex, low-S only.
    pub const STRICT: VerifyOptions = VerifyOptions {
        allow_der: false,
        allow_high_s: false,
    };
}

/// An ECDSA signature, with the recovery id when it came from a 130-hex form or our signer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    inner: K256Signature,
    recovery_id: Option<u8>,
}

impl Signature {
    /// Parses a signature under `options`: 130 hex (r‖s‖v, v ignored), 128 hex (r‖s), and,
    /// when allowed, DER, always in the wire form of [`check_wire_hex`] (lower-case, no `0x`,
    /// no whitespace). A high-S signature is an error unless `allow_high_s` is set.
    pub fn parse(text: &str, options: VerifyOptions) -> Result<Self> {
        let s = text;
        if s.len() > 200 {
            return Err(ProtocolError::MalformedSignature(format!(
                "signature too long ({} characters)",
                s.len()
            )));
        }
        check_wire_hex(s, "signature").map_err(ProtocolError::MalformedSignature)?;
        let bytes = hex::decode(s)
            .map_err(|_| ProtocolError::MalformedSignature("signature is not hex".into()))?;
        let (inner, recovery_id) = match bytes.len() {
            65 => {
                let v = bytes[64];
                let rec = match v {
                    27 | 28 => Some(v - 27),
                    0 | 1 => Some(v),
                    _ => None,
                };
                (from_compact(&bytes[..64])?, rec)
            }
            64 => (from_compact(&bytes)?, None),
            _ if options.allow_der => (
                K256Signature::from_der(&bytes).map_err(|_| {
                    ProtocolError::MalformedSignature("not a valid DER signature".into())
                })?,
                None,
            ),
            n => {
                return Err(ProtocolError::MalformedSignature(format!(
                    "signature must be 130 or 128 hex characters, got {}",
                    n * 2
                )))
            }
        };
        let inner = match inner.normalize_s() {
            None => inner,
            Some(low) if options.allow_high_s => low,
            Some(_) => {
                return Err(ProtocolError::MalformedSignature(
                    "high-S signature rejected (use low-S, as libsecp256k1 does)".into(),
                ))
            }
        };
        Ok(Signature { inner, recovery_id })
    }

    /// The 130-hex r‖s‖v encoding (v = `1b`/`1c`; `1b` when the recovery id is unknown).
    pub fn to_hex(&self) -> String {
        let mut out = hex::encode(self.inner.to_bytes());
        let v = 27 + self.recovery_id.unwrap_or(0).min(1);
        out.push_str(&format!("{v:02x}"));
        out
    }

    /// The recovery id (0 or 1) when known.
    pub fn recovery_id(&self) -> Option<u8> {
        self.recovery_id
    }
}

fn from_compact(bytes: &[u8]) -> Result<K256Signature> {
    K256Signature::from_slice(bytes).map_err(|_| {
        ProtocolError::MalformedSignature("r or s is zero or not below the curve order".into())
    })
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const TV_KEY: &str =
        "0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef";
    const TV_PUB: &str = "bb50e2d89a4ed70663d080659fe0ad4b9bc3e06c17a227433966cb59ceee020decddbf6e00192011648d13b1c00af770c0c1bb609d4d3a5c98a43772e0e18ef4";

    #[test]
    fn tv_public_key_in_every_encoding() {
        let key = PrivateKey::from_hex(TV_KEY).unwrap();
        let public = key.public_key();
        assert_eq!(public.to_hex(), TV_PUB);
        assert_eq!(
            public.to_compressed_hex(),
            "02bb50e2d89a4ed70663d080659fe0ad4b9bc3e06c17a227433966cb59ceee020d"
        );
        for form in [
            TV_PUB.to_string(),
            format!("04{TV_PUB}"),
            public.to_compressed_hex(),
        ] {
            assert_eq!(PublicKey::from_hex(&form).unwrap(), public, "{form}");
        }
    }

    #[test]
    fn tv2_old_proof_signature_byte_for_byte() {
        let key = PrivateKey::from_hex(TV_KEY).unwrap();
        let msg = br#"{"amount":"10000.00","currency":"UGX","from":200,"issuer":100,"timestamp":1706500500,"to":300,"txid":"test_tx_001"}"#;
        assert_eq!(
            sha256_hex(msg),
            "5ae388c93a899f11dfaf268c2f2515ed7aafe174357d13c47959465f61f3fef7"
        );
        let sig = key.sign_message(msg).unwrap();
        assert_eq!(sig.to_hex(), "4a5f5853e2f3359e875d2a18efcc5affa2ae397b38549437d203a12596a8961e7955d0ad2cf86bdd88c8e44e9678215d678b237c458b34e20da03ff21865fd861b");
        assert_eq!(sig.recovery_id(), Some(0));
        let public = key.public_key();
        public
            .verify_message(msg, &sig.to_hex(), VerifyOptions::STRICT)
            .unwrap();
        // 128-hex compact form (registry UI) verifies too.
        public
            .verify_message(msg, &sig.to_hex()[..128], VerifyOptions::STRICT)
            .unwrap();
    }

    #[test]
    fn tampered_message_or_signature_fails() {
        let key = PrivateKey::generate();
        let sig = key.sign_message(b"pay 10.00 USD").unwrap().to_hex();
        let public = key.public_key();
        assert_eq!(
            public.verify_message(b"pay 10.01 USD", &sig, VerifyOptions::STRICT),
            Err(ProtocolError::BadSignature)
        );
        let mut flipped = sig.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(public
            .verify_message(b"pay 10.00 USD", &flipped, VerifyOptions::STRICT)
            .is_err());
        let other = PrivateKey::generate().public_key();
        assert_eq!(
            other.verify_message(b"pay 10.00 USD", &sig, VerifyOptions::STRICT),
            Err(ProtocolError::BadSignature)
        );
    }

    #[test]
    fn high_s_rejected_unless_allowed() {
        let key = PrivateKey::generate();
        let msg = b"hello";
        let sig = key.sign_message(msg).unwrap();
        // s' = n - s gives the high-S twin of the same signature.
        let low = sig.inner;
        let high = K256Signature::from_scalars(low.r().to_bytes(), (-*low.s()).to_bytes()).unwrap();
        let high_hex = hex::encode(high.to_bytes());
        let public = key.public_key();
        assert!(matches!(
            public.verify_message(msg, &high_hex, VerifyOptions::STRICT),
            Err(ProtocolError::MalformedSignature(_))
        ));
        let lenient = VerifyOptions {
            allow_high_s: true,
            ..VerifyOptions::STRICT
        };
        public.verify_message(msg, &high_hex, lenient).unwrap();
    }

    #[test]
    fn der_only_when_allowed() {
        let key = PrivateKey::generate();
        let msg = b"der";
        let sig = key.sign_message(msg).unwrap();
        let der = hex::encode(sig.inner.to_der().as_bytes());
        let public = key.public_key();
        assert!(public
            .verify_message(msg, &der, VerifyOptions::STRICT)
            .is_err());
        let with_der = VerifyOptions {
            allow_der: true,
            ..VerifyOptions::STRICT
        };
        public.verify_message(msg, &der, with_der).unwrap();
    }

    #[test]
    fn malformed_keys_and_signatures_are_errors() {
        for bad in [
            "",
            "zz",
            &"0".repeat(64),
            &"f".repeat(64),
            &"1".repeat(63),
            "0x",
        ] {
            assert!(PrivateKey::from_hex(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "",
            &"0".repeat(128),
            &format!("05{}", "1".repeat(128)),
            &format!("04{}", "g".repeat(128)),
            &"1".repeat(66),
            "😀😀",
        ] {
            assert!(PublicKey::from_hex(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "",
            "00",
            &"0".repeat(130),
            &"a".repeat(129),
            &"x".repeat(130),
            &"f".repeat(128),
            &"ab".repeat(500),
            "é".repeat(65).as_str(),
        ] {
            assert!(
                Signature::parse(bad, VerifyOptions::STRICT).is_err(),
                "{bad:?}"
            );
        }
    }

    /// Decision 39: one wire form of hex for signatures and public keys.
    #[test]
    fn wire_hex_is_lower_case_without_prefix_or_whitespace() {
        let key = PrivateKey::from_hex(TV_KEY).unwrap();
        let public = key.public_key();
        let msg = b"decision 39";
        let sig = key.sign_message(msg).unwrap().to_hex();
        let compact = &sig[..128];
        // Accepted: 130 and 128 lower-case hex, and every lower-case key encoding.
        for good in [sig.as_str(), compact] {
            public
                .verify_message(msg, good, VerifyOptions::STRICT)
                .unwrap();
        }
        // Refused, each with the rule it breaks: upper case, mixed case, 0x/0X, whitespace.
        let refused = |text: &str| match Signature::parse(text, VerifyOptions::STRICT) {
            Err(ProtocolError::MalformedSignature(m)) => m,
            other => panic!("{text:?}: {other:?}"),
        };
        let mut mixed = sig.clone();
        if let Some(i) = mixed.find(|c: char| c.is_ascii_lowercase()) {
            mixed.replace_range(i..=i, &mixed[i..=i].to_uppercase());
        }
        assert!(refused(&sig.to_uppercase()).contains("upper-case"));
        assert!(refused(&mixed).contains("upper-case"));
        assert!(refused(&format!("0x{sig}")).contains("0x prefix"));
        assert!(refused(&format!("0X{compact}")).contains("0x prefix"));
        assert!(refused(&format!(" {sig}")).contains("whitespace"));
        assert!(refused(&format!("{sig}\n")).contains("whitespace"));
        assert!(public
            .verify_message(msg, &sig.to_uppercase(), VerifyOptions::STRICT)
            .is_err());
        let key_refused = |text: &str| match PublicKey::from_hex(text) {
            Err(ProtocolError::InvalidKey(m)) => m,
            other => panic!("{text:?}: {other:?}"),
        };
        assert!(key_refused(&TV_PUB.to_uppercase()).contains("upper-case"));
        assert!(key_refused(&format!("0x{TV_PUB}")).contains("0x prefix"));
        assert!(key_refused(&format!("{TV_PUB} ")).contains("whitespace"));
        assert!(key_refused(&public.to_compressed_hex().to_uppercase()).contains("upper-case"));
        // Private keys are not on the wire: key files keep accepting 0x and upper case.
        let upper = TV_KEY[2..].to_uppercase();
        assert_eq!(PrivateKey::from_hex(&upper).unwrap().public_key(), public);
    }

    #[test]
    fn debug_output_never_shows_the_private_key() {
        let key = PrivateKey::from_hex(TV_KEY).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("1234567890abcdef"));
        assert_eq!(key.to_hex().as_str(), &TV_KEY[2..]);
    }

    proptest::proptest! {
        #[test]
        fn sign_then_verify_roundtrips(msg in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let key = PrivateKey::generate();
            let sig = key.sign_message(&msg).unwrap().to_hex();
            proptest::prop_assert_eq!(sig.len(), 130);
            proptest::prop_assert!(key.public_key().verify_message(&msg, &sig, VerifyOptions::STRICT).is_ok());
        }

        #[test]
        fn signature_parser_never_panics(text in "\\PC{0,300}") {
            let _ = Signature::parse(&text, VerifyOptions { allow_der: true, allow_high_s: true });
            let _ = PublicKey::from_hex(&text);
            let _ = PrivateKey::from_hex(&text);
        }
    }
}
