//! ECDSA verification by libsecp256k1 (the C library, through the `secp256k1` crate), compiled
//! in by the `native-verify` feature for the servers. `PublicKey::verify_prehash` calls it;
//! it accepts and refuses exactly what the k256 path does (`tests/native_verify.rs` checks it
//! case by case; docs/adr/0008-libsecp256k1-on-servers.md).

use crate::error::{ProtocolError, Result};
use k256::ecdsa::{Signature as K256Signature, VerifyingKey};

/// Verifies `signature` over a 32-byte digest with libsecp256k1.
///
/// The k256 key is handed over in its 65-byte uncompressed SEC1 form (parsing it is an
/// on-curve check, no square root) and the signature as its 64-byte r‖s. Both are valid by
/// construction (a parsed [`VerifyingKey`] is a point on the curve, a parsed signature has
/// r and s in 1..n-1), so a failed conversion is only reported as a bad signature, never a
/// panic. libsecp256k1 refuses a high-S signature, as k256 does; ours are low-S by the time
/// they get here ([`crate::keys::Signature::parse`] normalises or refuses them).
pub(crate) fn verify_prehash(
    key: &VerifyingKey,
    digest: &[u8; 32],
    signature: &K256Signature,
) -> Result<()> {
    let point = key.to_encoded_point(false);
    let uncompressed: [u8; 65] = point
        .as_bytes()
        .try_into()
        .map_err(|_| ProtocolError::BadSignature)?;
    let key = secp256k1::PublicKey::from_byte_array_uncompressed(uncompressed)
        .map_err(|_| ProtocolError::BadSignature)?;
    let signature = secp256k1::ecdsa::Signature::from_compact(&signature.to_bytes())
        .map_err(|_| ProtocolError::BadSignature)?;
    secp256k1::ecdsa::verify(&signature, secp256k1::Message::from_digest(*digest), &key)
        .map_err(|_| ProtocolError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{sha256, PrivateKey};
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    use k256::ecdsa::SigningKey;

    /// Below the parser: a high-S signature handed straight to the primitives is refused by
    /// libsecp256k1 exactly as by k256, and its low-S twin is accepted by both.
    #[test]
    fn high_s_is_refused_by_both_primitives() {
        for i in 0..50u32 {
            let signer = SigningKey::from_slice(&sha256(&i.to_be_bytes())).unwrap();
            let key = *signer.verifying_key();
            let digest = sha256(format!("primitive {i}").as_bytes());
            let (low, _) = signer.sign_prehash_recoverable(&digest).unwrap();
            let high =
                K256Signature::from_scalars(low.r().to_bytes(), (-*low.s()).to_bytes()).unwrap();
            assert!(high.normalize_s().is_some(), "case {i}: the twin is high-S");
            assert!(key.verify_prehash(&digest, &low).is_ok());
            assert!(verify_prehash(&key, &digest, &low).is_ok());
            assert!(key.verify_prehash(&digest, &high).is_err());
            assert_eq!(
                verify_prehash(&key, &digest, &high),
                Err(ProtocolError::BadSignature)
            );
        }
        // The protocol's own signer goes through the same path.
        let key = PrivateKey::generate();
        let sig = key.sign_message(b"native").unwrap();
        key.public_key()
            .verify_prehash(&sha256(b"native"), &sig)
            .unwrap();
    }
}
