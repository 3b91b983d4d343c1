//! Signing and verifying signed JSON objects: orders, proofs and metadata configs.
//!
//! Signatures cover the recursive canonical form (see [`crate::canonical`]) of the object as
//! received: verification always works on the raw `serde_json::Value`, never on a re-serialised
//! typed copy, so unknown or legacy-shaped fields stay covered. Orders may opt in to the legacy
//! replacer form, and the result then says the signature is weak.

use crate::canonical::{canonicalize, canonicalize_serialize, replacer_form};
use crate::error::{ProtocolError, Result};
use crate::keys::{sha256_hex, PrivateKey, PublicKey, Signature, VerifyOptions};
use serde::Serialize;
use serde_json::Value;

/// How much of an object a verified signature authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureStrength {
    /// The recursive canonical form verified: every field, nested ones included, is signed.
    Full,
    /// Only the legacy replacer form verified: nested fields (item names, prices, quantities)
    /// are NOT authenticated. Callers must not trust them beyond the signed top-level amount.
    WeakLegacyReplacer,
}

/// Which canonical forms an order verifier tries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OrderVerifyMode {
    /// Recursive canonical form only (the default).
    #[default]
    Strict,
    /// Recursive form, then, if that fails, the legacy replacer form (weak).
    AllowLegacyReplacer,
}

/// Signs the recursive canonical form of `object`; returns the 130-hex signature.
pub fn sign_object<T: Serialize + ?Sized>(key: &PrivateKey, object: &T) -> Result<String> {
    let canonical = canonicalize_serialize(object)?;
    Ok(key.sign_message(canonical.as_bytes())?.to_hex())
}

/// Verifies `signature` over the recursive canonical form of the received `object`.
pub fn verify_object(
    key: &PublicKey,
    object: &Value,
    signature: &str,
    options: VerifyOptions,
) -> Result<()> {
    let canonical = canonicalize(object)?;
    key.verify_message(canonical.as_bytes(), signature, options)
}

/// Lowercase hex SHA-256 of the recursive canonical form: the identity of a signed object
/// (used, for example, as the order hash a user's consent binds).
pub fn object_hash<T: Serialize + ?Sized>(object: &T) -> Result<String> {
    Ok(sha256_hex(canonicalize_serialize(object)?.as_bytes()))
}

/// Verifies a merchant's order signature and the binding check: `order.ocid` must equal
/// `signer_ocid` (the OCID whose `key` is used, e.g. `X-OC-ID` or `merchantOcid`).
pub fn verify_order(
    order: &Value,
    signature: &str,
    signer_ocid: u64,
    key: &PublicKey,
    mode: OrderVerifyMode,
    options: VerifyOptions,
) -> Result<SignatureStrength> {
    let order_ocid =
        order
            .get("ocid")
            .and_then(Value::as_u64)
            .ok_or_else(|| ProtocolError::InvalidField {
                field: "order.ocid".into(),
                reason: "missing or not a non-negative integer".into(),
            })?;
    if order_ocid != signer_ocid {
        return Err(ProtocolError::Binding(format!(
            "order.ocid {order_ocid} is not the signer's OCID {signer_ocid}"
        )));
    }
    // Parse once so a malformed signature is reported as such, not as a mismatch.
    let sig = Signature::parse(signature, options)?;
    let strict = canonicalize(order)?;
    let digest = crate::keys::sha256(strict.as_bytes());
    match key.verify_prehash(&digest, &sig) {
        Ok(()) => Ok(SignatureStrength::Full),
        Err(e) if mode == OrderVerifyMode::Strict => Err(e),
        Err(e) => {
            let legacy = replacer_form(order)?;
            if legacy == strict {
                return Err(e);
            }
            key.verify_prehash(&crate::keys::sha256(legacy.as_bytes()), &sig)
                .map(|()| SignatureStrength::WeakLegacyReplacer)
        }
    }
}

/// Verifies a proof's signature with the issuer's `key`, and that `proof.issuer` is
/// `issuer_ocid` (the OCID whose key was resolved).
pub fn verify_proof(
    proof: &Value,
    signature: &str,
    issuer_ocid: u64,
    key: &PublicKey,
    options: VerifyOptions,
) -> Result<()> {
    let issuer =
        proof
            .get("issuer")
            .and_then(Value::as_u64)
            .ok_or_else(|| ProtocolError::InvalidField {
                field: "proof.issuer".into(),
                reason: "missing or not a non-negative integer".into(),
            })?;
    if issuer != issuer_ocid {
        return Err(ProtocolError::Binding(format!(
            "proof.issuer {issuer} is not the OCID {issuer_ocid} whose key was used"
        )));
    }
    verify_object(key, proof, signature, options)
}

/// Verifies a metadata `config` against its own `config.publicKey` (self-signed: this proves
/// the publisher holds the key, not that it owns the OCID) and returns that key.
pub fn verify_config(config: &Value, signature: &str, options: VerifyOptions) -> Result<PublicKey> {
    let key_hex = config
        .get("publicKey")
        .and_then(Value::as_str)
        .ok_or_else(|| ProtocolError::InvalidField {
            field: "config.publicKey".into(),
            reason: "missing or not a string".into(),
        })?;
    let key = PublicKey::from_hex(key_hex)?;
    verify_object(&key, config, signature, options)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TV_KEY: &str = "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef";

    fn tv_order() -> Value {
        json!({"id":"ord_abc123","ocid":500,"amount":"15.00","currency":"USD",
            "items":[{"id":"item_001","name":"Large Coffee","quantity":2,"price":"5.00"},
                     {"id":"item_002","name":"Croissant","quantity":1,"price":"5.00"}],
            "createdAt":1706313600,"expiresAt":1706400000,"accepts":[100,101,102]})
    }

    #[test]
    fn tv3_nested_proof_signature_byte_for_byte() {
        let key = PrivateKey::from_hex(TV_KEY).unwrap();
        let proof = json!({"txid":"barclays_tx_456","issuer":100,
            "from":{"ocid":200,"reference":"paypal_tx_123"},"to":{"ocid":300,"reference":"momo_tx_789"},
            "amount":"10000.00","currency":"UGX","timestamp":1706500500,"memo":"Settlement for ORD-2024-001"});
        assert_eq!(
            object_hash(&proof).unwrap(),
            "3c2009aa9da528e991be37ff95cfb3299c2c4cc4330f721c968d423286d66751"
        );
        let sig = sign_object(&key, &proof).unwrap();
        assert_eq!(sig, "4b9a8b5ed80d4fddead8f308f74056df02aa7e216605176b1d1afaff830ac89c19da80cba91ee3fd4b6bdd3dfc07cf17de4ea42c1573e7bc5d3b8345912fc8621b");
        verify_proof(&proof, &sig, 100, &key.public_key(), VerifyOptions::STRICT).unwrap();
        assert!(matches!(
            verify_proof(&proof, &sig, 101, &key.public_key(), VerifyOptions::STRICT),
            Err(ProtocolError::Binding(_))
        ));
        let replacer = crate::canonical::replacer_form(&proof).unwrap();
        assert_eq!(
            sha256_hex(replacer.as_bytes()),
            "e694b491851d37ed456907bed495aed27264c21af08234e821b0cb75d719fce7"
        );
    }

    #[test]
    fn order_tamper_anywhere_fails_including_nested_item_fields() {
        let key = PrivateKey::generate();
        let order = tv_order();
        let sig = sign_object(&key, &order).unwrap();
        let pk = key.public_key();
        assert_eq!(
            verify_order(
                &order,
                &sig,
                500,
                &pk,
                OrderVerifyMode::Strict,
                VerifyOptions::STRICT
            ),
            Ok(SignatureStrength::Full)
        );
        type Tamper = Box<dyn Fn(&mut Value)>;
        let tampers: Vec<Tamper> = vec![
            Box::new(|o| o["amount"] = json!("15.01")),
            Box::new(|o| o["currency"] = json!("EUR")),
            Box::new(|o| o["items"][0]["price"] = json!("0.01")),
            Box::new(|o| o["items"][1]["name"] = json!("Caviar")),
            Box::new(|o| o["items"][0]["quantity"] = json!(3)),
            Box::new(|o| o["accepts"] = json!([100, 999])),
            Box::new(|o| o["memo"] = json!("added")),
        ];
        for tamper in tampers {
            let mut copy = order.clone();
            tamper(&mut copy);
            assert_eq!(
                verify_order(
                    &copy,
                    &sig,
                    500,
                    &pk,
                    OrderVerifyMode::Strict,
                    VerifyOptions::STRICT
                ),
                Err(ProtocolError::BadSignature),
                "{copy}"
            );
        }
    }

    #[test]
    fn order_binding_check_rejects_other_signer() {
        let key = PrivateKey::generate();
        let order = tv_order();
        let sig = sign_object(&key, &order).unwrap();
        assert!(matches!(
            verify_order(
                &order,
                &sig,
                501,
                &key.public_key(),
                OrderVerifyMode::Strict,
                VerifyOptions::STRICT
            ),
            Err(ProtocolError::Binding(_))
        ));
        let mut no_ocid = order.clone();
        no_ocid.as_object_mut().unwrap().remove("ocid");
        assert!(matches!(
            verify_order(
                &no_ocid,
                &sig,
                500,
                &key.public_key(),
                OrderVerifyMode::Strict,
                VerifyOptions::STRICT
            ),
            Err(ProtocolError::InvalidField { .. })
        ));
    }

    #[test]
    fn legacy_replacer_signature_only_with_opt_in_and_marked_weak() {
        let key = PrivateKey::generate();
        let order = tv_order();
        let legacy = crate::canonical::replacer_form(&order).unwrap();
        let sig = key.sign_message(legacy.as_bytes()).unwrap().to_hex();
        let pk = key.public_key();
        assert_eq!(
            verify_order(
                &order,
                &sig,
                500,
                &pk,
                OrderVerifyMode::Strict,
                VerifyOptions::STRICT
            ),
            Err(ProtocolError::BadSignature)
        );
        assert_eq!(
            verify_order(
                &order,
                &sig,
                500,
                &pk,
                OrderVerifyMode::AllowLegacyReplacer,
                VerifyOptions::STRICT
            ),
            Ok(SignatureStrength::WeakLegacyReplacer)
        );
        // The weakness is real: a nested price change still verifies in replacer form...
        let mut cheap = order.clone();
        cheap["items"][0]["price"] = json!("0.01");
        assert_eq!(
            verify_order(
                &cheap,
                &sig,
                500,
                &pk,
                OrderVerifyMode::AllowLegacyReplacer,
                VerifyOptions::STRICT
            ),
            Ok(SignatureStrength::WeakLegacyReplacer)
        );
        // ...but the top-level amount stays covered.
        let mut dearer = order;
        dearer["amount"] = json!("16.00");
        assert_eq!(
            verify_order(
                &dearer,
                &sig,
                500,
                &pk,
                OrderVerifyMode::AllowLegacyReplacer,
                VerifyOptions::STRICT
            ),
            Err(ProtocolError::BadSignature)
        );
    }

    #[test]
    fn config_is_self_signed_and_tamper_evident() {
        let key = PrivateKey::generate();
        let config = json!({"publicKey": key.public_key().to_hex(), "endpoint":"https://pg.example/opencharge",
            "capabilities":["checkout.create"], "settlement":{"currencies":["USD"],"accepts":[100]}});
        let sig = sign_object(&key, &config).unwrap();
        assert_eq!(
            verify_config(&config, &sig, VerifyOptions::STRICT).unwrap(),
            key.public_key()
        );
        let mut changed = config.clone();
        changed["settlement"]["accepts"] = json!([666]);
        assert_eq!(
            verify_config(&changed, &sig, VerifyOptions::STRICT),
            Err(ProtocolError::BadSignature)
        );
        let mut swapped = config;
        swapped["publicKey"] = json!(PrivateKey::generate().public_key().to_hex());
        assert_eq!(
            verify_config(&swapped, &sig, VerifyOptions::STRICT),
            Err(ProtocolError::BadSignature)
        );
    }

    #[test]
    fn signed_objects_with_floats_cannot_be_signed_or_verified() {
        let key = PrivateKey::generate();
        let bad = json!({"ocid": 500, "amount": 15.5});
        assert!(matches!(
            sign_object(&key, &bad),
            Err(ProtocolError::Canonical(_))
        ));
        let sig = key.sign_message(b"x").unwrap().to_hex();
        assert!(matches!(
            verify_order(
                &bad,
                &sig,
                500,
                &key.public_key(),
                OrderVerifyMode::Strict,
                VerifyOptions::STRICT
            ),
            Err(ProtocolError::Canonical(_))
        ));
    }
}
