//! The acceptance checks for a proof of payment delivered to `POST /transfer/webhook`
//! (protocol notes §5.5), written once for every receiver (the gateway and the merchant).
//!
//! [`check_incoming_proof`] runs the checks that need no storage, in this order:
//!
//! | # | check | rejection | error |
//! |---|---|---|---|
//! | 1 | body is `{proof: {...}, signature: "..."}` with a well-formed proof | [`ProofRejection::Malformed`] | `INVALID_PROOF` |
//! | 2 | `proof.issuer` is accepted by the receiver | [`ProofRejection::IssuerNotAccepted`] | `ISSUER_NOT_ACCEPTED` |
//! | 3 | the authenticated sender (`X-OC-ID`) is the issuer | [`ProofRejection::SenderNotIssuer`] | `INVALID_PROOF` |
//! | 4 | the signature verifies over the raw proof with the issuer's key | [`ProofRejection::BadSignature`] | `PROOF_SIGNATURE_INVALID` |
//! | 5 | `proof.to.ocid` is the receiver | [`ProofRejection::WrongRecipient`] | `INVALID_PROOF` |
//! | 6 | `proof.timestamp` is at most [`PROOF_FUTURE_SKEW_SECS`] in the future | [`ProofRejection::FromTheFuture`] | `INVALID_PROOF` |
//!
//! The accepted [`IncomingProof`] then answers the receiver's own questions:
//! [`IncomingProof::reference`] (the order it names), [`IncomingProof::check_pays`] (an
//! order's signed `accepts`, its currency and amount) and [`IncomingProof::amount_minor`]
//! (the amount in minor units, for crediting an account). Every rejection maps to its
//! Opencharge error with [`ProofRejection::to_api_error`] (all 400).

use serde_json::{json, Value};

use crate::error_code::{ApiError, ErrorCode};
use crate::keys::{PublicKey, VerifyOptions};
use crate::money::{minor_units_of, Amount, Currency};
use crate::signing::verify_proof;
use crate::types::Proof;

/// How far in the future a received proof's `timestamp` may be (clock skew), seconds.
pub const PROOF_FUTURE_SKEW_SECS: i64 = 300;

/// Longest piece of untrusted text quoted back in a rejection message, characters.
const PREVIEW_CHARS: usize = 80;

/// The receiver's side of a proof delivery: who it is, whom it accepts, who sent the proof.
#[derive(Debug, Clone, Copy)]
pub struct ProofReceiver<'a> {
    /// The receiver's OCID: the proof must pay it.
    pub own_ocid: u64,
    /// How messages name the receiver, e.g. `this gateway`, `this merchant`.
    pub own_name: &'a str,
    /// The issuers whose proofs the receiver accepts as settlement.
    pub accepted_issuers: &'a [u64],
    /// The authenticated sender of the request (`X-OC-ID`).
    pub sender: u64,
    /// The sender's verified metadata key.
    pub sender_key: &'a PublicKey,
    /// The current unix time.
    pub now: i64,
}

/// A proof that passed [`check_incoming_proof`]: typed, and exactly as received.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingProof {
    /// The typed proof.
    pub proof: Proof,
    /// The proof object exactly as received (the signature covers this).
    pub raw_proof: Value,
    /// The issuer's signature over it.
    pub signature: String,
}

/// What an order expects a proof to pay.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedPayment<'a> {
    /// The order's signed `accepts`, if it has any; an empty list means no restriction.
    pub accepts: Option<&'a [u64]>,
    /// The order's currency.
    pub currency: &'a Currency,
    /// The order's amount.
    pub amount: &'a Amount,
}

/// Why a proof is refused; [`ProofRejection::to_api_error`] gives the Opencharge error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofRejection {
    /// The body or the proof is malformed.
    #[error("{0}")]
    Malformed(String),
    /// The issuer is not accepted (by the receiver, or by the order when `by_order`).
    #[error("Proof issuer OCID {issuer} is not in accepted settlement sources{}", if *.by_order { " of this order" } else { "" })]
    IssuerNotAccepted {
        /// The proof's issuer.
        issuer: u64,
        /// The accepted issuers.
        accepted: Vec<u64>,
        /// Whether the order's own `accepts` refused it.
        by_order: bool,
    },
    /// Someone else than the issuer delivered the proof.
    #[error("sender {sender} is not the proof issuer {issuer}")]
    SenderNotIssuer {
        /// The authenticated sender.
        sender: u64,
        /// The proof's issuer.
        issuer: u64,
    },
    /// The signature does not verify with the issuer's key.
    #[error("proof signature does not verify with the key of OCID {issuer}: {reason}")]
    BadSignature {
        /// The proof's issuer.
        issuer: u64,
        /// Why.
        reason: String,
    },
    /// The proof pays someone else.
    #[error("proof pays OCID {to}, not {own_name} ({own})")]
    WrongRecipient {
        /// `proof.to.ocid`.
        to: u64,
        /// The receiver's OCID.
        own: u64,
        /// The receiver's name in messages.
        own_name: String,
    },
    /// The proof's timestamp is too far in the future.
    #[error("proof timestamp {timestamp} is in the future (now {now})")]
    FromTheFuture {
        /// `proof.timestamp`.
        timestamp: i64,
        /// The receiver's time.
        now: i64,
    },
    /// The proof names no order (`proof.to.reference` absent).
    #[error("proof.to.reference must name the order paid")]
    MissingReference,
    /// The proof's currency is not a valid currency.
    #[error("proof currency: {0}")]
    InvalidCurrency(String),
    /// The proof's amount is not a valid amount (of its currency).
    #[error("proof amount: {0}")]
    InvalidAmount(String),
    /// The proof pays in another currency than the order's.
    #[error("proof currency {:?} is not the order's {expected}", preview(.received))]
    CurrencyMismatch {
        /// The order's currency.
        expected: String,
        /// The proof's currency.
        received: String,
    },
    /// The proof pays another amount than the order's.
    #[error("proof amount {received} {currency} is not the order's {expected} {currency}")]
    AmountMismatch {
        /// The order's amount.
        expected: String,
        /// The proof's amount, as sent.
        received: String,
        /// The currency of both.
        currency: String,
    },
}

impl ProofRejection {
    /// The Opencharge error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProofRejection::IssuerNotAccepted { .. } => ErrorCode::IssuerNotAccepted,
            ProofRejection::BadSignature { .. } => ErrorCode::ProofSignatureInvalid,
            ProofRejection::CurrencyMismatch { .. } => ErrorCode::CurrencyMismatch,
            ProofRejection::AmountMismatch { .. } => ErrorCode::AmountMismatch,
            ProofRejection::Malformed(_)
            | ProofRejection::SenderNotIssuer { .. }
            | ProofRejection::WrongRecipient { .. }
            | ProofRejection::FromTheFuture { .. }
            | ProofRejection::MissingReference
            | ProofRejection::InvalidCurrency(_)
            | ProofRejection::InvalidAmount(_) => ErrorCode::InvalidProof,
        }
    }

    /// The Opencharge error (always 400): the code, the message, and `details` where the
    /// protocol gives them (`providedIssuer`/`acceptedIssuers`, `field`, `expected`/`received`).
    pub fn to_api_error(&self) -> ApiError {
        let error = ApiError::new(self.code(), self.to_string()).with_status(400);
        match self {
            ProofRejection::IssuerNotAccepted {
                issuer, accepted, ..
            } => error.with_details(json!({"providedIssuer": issuer, "acceptedIssuers": accepted})),
            ProofRejection::WrongRecipient { .. } => {
                error.with_details(json!({"field": "proof.to.ocid"}))
            }
            ProofRejection::CurrencyMismatch { expected, received } => {
                error.with_details(json!({"expected": expected, "received": received}))
            }
            ProofRejection::AmountMismatch {
                expected, received, ..
            } => error.with_details(json!({"expected": expected, "received": received})),
            _ => error,
        }
    }
}

impl From<ProofRejection> for ApiError {
    fn from(rejection: ProofRejection) -> ApiError {
        rejection.to_api_error()
    }
}

/// Runs checks 1–6 of the module table on a `/transfer/webhook` request body.
pub fn check_incoming_proof(
    body: &[u8],
    receiver: &ProofReceiver<'_>,
) -> Result<IncomingProof, ProofRejection> {
    // 1. Shape.
    // The strict reader: a key repeated anywhere in the body is refused (decision 38).
    let raw: Value = crate::strict_json::to_value(body)
        .map_err(|e| ProofRejection::Malformed(format!("body is not valid JSON: {e}")))?;
    let (Some(raw_proof), Some(signature)) = (
        raw.get("proof").filter(|p| p.is_object()),
        raw.get("signature").and_then(Value::as_str),
    ) else {
        return Err(ProofRejection::Malformed(
            "body must be {\"proof\": {...}, \"signature\": \"...\"}".into(),
        ));
    };
    let proof: Proof = serde_json::from_value(raw_proof.clone())
        .map_err(|e| ProofRejection::Malformed(format!("malformed proof: {e}")))?;
    // 2. Issuer accepted.
    if !receiver.accepted_issuers.contains(&proof.issuer) {
        return Err(ProofRejection::IssuerNotAccepted {
            issuer: proof.issuer,
            accepted: receiver.accepted_issuers.to_vec(),
            by_order: false,
        });
    }
    // 3. The sender is the issuer.
    if receiver.sender != proof.issuer {
        return Err(ProofRejection::SenderNotIssuer {
            sender: receiver.sender,
            issuer: proof.issuer,
        });
    }
    // 4. Signature with the issuer's key, over the proof exactly as received.
    verify_proof(
        raw_proof,
        signature,
        proof.issuer,
        receiver.sender_key,
        VerifyOptions::STRICT,
    )
    .map_err(|e| ProofRejection::BadSignature {
        issuer: proof.issuer,
        reason: e.to_string(),
    })?;
    // 5. Addressed to the receiver.
    if proof.to.ocid != receiver.own_ocid {
        return Err(ProofRejection::WrongRecipient {
            to: proof.to.ocid,
            own: receiver.own_ocid,
            own_name: receiver.own_name.to_string(),
        });
    }
    // 6. Not from the future.
    if proof.timestamp > receiver.now.saturating_add(PROOF_FUTURE_SKEW_SECS) {
        return Err(ProofRejection::FromTheFuture {
            timestamp: proof.timestamp,
            now: receiver.now,
        });
    }
    Ok(IncomingProof {
        raw_proof: raw_proof.clone(),
        signature: signature.to_string(),
        proof,
    })
}

impl IncomingProof {
    /// `{"proof": <as received>, "signature": "..."}`, the envelope a receiver stores.
    pub fn envelope_json(&self) -> String {
        json!({"proof": self.raw_proof, "signature": self.signature}).to_string()
    }

    /// The order the proof pays (`proof.to.reference`), or
    /// [`ProofRejection::MissingReference`].
    pub fn reference(&self) -> Result<&str, ProofRejection> {
        self.proof
            .to
            .reference
            .as_deref()
            .ok_or(ProofRejection::MissingReference)
    }

    /// Checks the proof against the order it pays: the issuer is in the order's signed
    /// `accepts` (when it has a non-empty one), the currency is the order's, the amount is a
    /// valid amount of that currency and numerically equal to the order's (`"15.0" == "15.00"`).
    pub fn check_pays(&self, expected: &ExpectedPayment<'_>) -> Result<(), ProofRejection> {
        let proof = &self.proof;
        if let Some(accepts) = expected.accepts.filter(|a| !a.is_empty()) {
            if !accepts.contains(&proof.issuer) {
                return Err(ProofRejection::IssuerNotAccepted {
                    issuer: proof.issuer,
                    accepted: accepts.to_vec(),
                    by_order: true,
                });
            }
        }
        if proof.currency != expected.currency.code() {
            return Err(ProofRejection::CurrencyMismatch {
                expected: expected.currency.code().to_string(),
                received: proof.currency.clone(),
            });
        }
        let paid = Amount::parse(&proof.amount)
            .map_err(|e| ProofRejection::InvalidAmount(e.to_string()))?;
        paid.check_currency(expected.currency)
            .map_err(|e| ProofRejection::InvalidAmount(e.to_string()))?;
        if &paid != expected.amount {
            return Err(ProofRejection::AmountMismatch {
                expected: expected.amount.as_str().to_string(),
                received: proof.amount.clone(),
                currency: proof.currency.clone(),
            });
        }
        Ok(())
    }

    /// The proof's currency and its amount in minor units of that currency (what an account
    /// is credited with).
    pub fn amount_minor(&self) -> Result<(Currency, i64), ProofRejection> {
        let currency = Currency::parse(&self.proof.currency)
            .map_err(|e| ProofRejection::InvalidCurrency(e.to_string()))?;
        let amount = Amount::parse(&self.proof.amount)
            .map_err(|e| ProofRejection::InvalidAmount(e.to_string()))?;
        let minor = minor_units_of(&amount, &currency)
            .ok()
            .and_then(|m| i64::try_from(m).ok())
            .ok_or_else(|| {
                ProofRejection::InvalidAmount(format!(
                    "{} is not valid in {}",
                    amount.as_str(),
                    currency.code()
                ))
            })?;
        Ok((currency, minor))
    }
}

/// The first characters of untrusted text, for messages.
fn preview(s: &str) -> String {
    s.chars().take(PREVIEW_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;
    use crate::signing::sign_object;

    const ISSUER: u64 = 200;
    const OWN: u64 = 500;
    const NOW: i64 = 1_700_000_000;

    fn proof(issuer: u64, to: u64, amount: &str, currency: &str) -> Value {
        json!({
            "txid": "tx_1",
            "issuer": issuer,
            "from": {"ocid": issuer, "reference": "acct_1"},
            "to": {"ocid": to, "reference": "ord_1"},
            "amount": amount,
            "currency": currency,
            "timestamp": NOW,
        })
    }

    fn body(proof: &Value, key: &PrivateKey) -> Vec<u8> {
        let signature = sign_object(key, proof).unwrap();
        serde_json::to_vec(&json!({"proof": proof, "signature": signature})).unwrap()
    }

    fn check(body: &[u8], key: &PrivateKey) -> Result<IncomingProof, ProofRejection> {
        check_as(body, key, ISSUER)
    }

    fn check_as(
        body: &[u8],
        key: &PrivateKey,
        sender: u64,
    ) -> Result<IncomingProof, ProofRejection> {
        let public = key.public_key();
        check_incoming_proof(
            body,
            &ProofReceiver {
                own_ocid: OWN,
                own_name: "this merchant",
                accepted_issuers: &[ISSUER, 201],
                sender,
                sender_key: &public,
                now: NOW,
            },
        )
    }

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn expect<'a>(currency: &'a Currency, amount: &'a Amount) -> ExpectedPayment<'a> {
        ExpectedPayment {
            accepts: None,
            currency,
            amount,
        }
    }

    #[test]
    fn a_good_proof_is_accepted_as_received() {
        let key = PrivateKey::generate();
        let raw = proof(ISSUER, OWN, "8.25", "USD");
        let incoming = check(&body(&raw, &key), &key).unwrap();
        assert_eq!(incoming.raw_proof, raw);
        assert_eq!(incoming.proof.txid, "tx_1");
        assert_eq!(incoming.reference().unwrap(), "ord_1");
        let envelope: Value = serde_json::from_str(&incoming.envelope_json()).unwrap();
        assert_eq!(envelope["proof"], raw);
        assert_eq!(envelope["signature"], incoming.signature.as_str());
        let (currency, minor) = incoming.amount_minor().unwrap();
        assert_eq!((currency.code(), minor), ("USD", 825));
        let due = Amount::parse("8.250").unwrap();
        assert_eq!(incoming.check_pays(&expect(&usd(), &due)), Ok(()));
        // Up to the allowed skew in the future is fine.
        let mut later = raw.clone();
        later["timestamp"] = json!(NOW + PROOF_FUTURE_SKEW_SECS);
        assert!(check(&body(&later, &key), &key).is_ok());
    }

    #[test]
    fn malformed_bodies() {
        let key = PrivateKey::generate();
        let no_txid = {
            let mut p = proof(ISSUER, OWN, "1.00", "USD");
            p.as_object_mut().unwrap().remove("txid");
            body(&p, &key)
        };
        for bad in [
            b"not json".to_vec(),
            br#"{"proof": 1, "signature": "ab"}"#.to_vec(),
            br#"{"proof": {}}"#.to_vec(),
            br#"[]"#.to_vec(),
            no_txid,
        ] {
            let rejection = check(&bad, &key).unwrap_err();
            assert!(
                matches!(rejection, ProofRejection::Malformed(_)),
                "{rejection}"
            );
            let error = rejection.to_api_error();
            assert_eq!((error.code, error.status), (ErrorCode::InvalidProof, 400));
        }
    }

    #[test]
    fn issuer_not_accepted() {
        let key = PrivateKey::generate();
        let raw = proof(999, OWN, "1.00", "USD");
        let rejection = check_as(&body(&raw, &key), &key, 999).unwrap_err();
        assert_eq!(
            rejection,
            ProofRejection::IssuerNotAccepted {
                issuer: 999,
                accepted: vec![ISSUER, 201],
                by_order: false
            }
        );
        let error = rejection.to_api_error();
        assert_eq!(error.code, ErrorCode::IssuerNotAccepted);
        assert_eq!(error.status, 400);
        assert_eq!(
            error.message,
            "Proof issuer OCID 999 is not in accepted settlement sources"
        );
        let details = error.details.unwrap();
        assert_eq!(details["providedIssuer"], 999);
        assert_eq!(details["acceptedIssuers"], json!([ISSUER, 201]));
    }

    #[test]
    fn sender_must_be_the_issuer() {
        let key = PrivateKey::generate();
        let raw = proof(ISSUER, OWN, "1.00", "USD");
        let rejection = check_as(&body(&raw, &key), &key, 201).unwrap_err();
        assert_eq!(
            rejection,
            ProofRejection::SenderNotIssuer {
                sender: 201,
                issuer: ISSUER
            }
        );
        assert_eq!(rejection.code(), ErrorCode::InvalidProof);
    }

    #[test]
    fn bad_signatures() {
        let key = PrivateKey::generate();
        let other = PrivateKey::generate();
        let raw = proof(ISSUER, OWN, "1.00", "USD");
        // Signed by another key than the sender's verified one.
        let rejection = check(&body(&raw, &other), &key).unwrap_err();
        assert!(matches!(
            rejection,
            ProofRejection::BadSignature { issuer: ISSUER, .. }
        ));
        let error = rejection.to_api_error();
        assert_eq!(
            (error.code, error.status),
            (ErrorCode::ProofSignatureInvalid, 400)
        );
        // Changed after signing.
        let mut tampered: Value = serde_json::from_slice(&body(&raw, &key)).unwrap();
        tampered["proof"]["amount"] = json!("100.00");
        let rejection = check(&serde_json::to_vec(&tampered).unwrap(), &key).unwrap_err();
        assert!(matches!(rejection, ProofRejection::BadSignature { .. }));
    }

    #[test]
    fn wrong_recipient() {
        let key = PrivateKey::generate();
        let raw = proof(ISSUER, 777, "1.00", "USD");
        let rejection = check(&body(&raw, &key), &key).unwrap_err();
        assert_eq!(
            rejection.to_string(),
            "proof pays OCID 777, not this merchant (500)"
        );
        let error = rejection.to_api_error();
        assert_eq!(error.code, ErrorCode::InvalidProof);
        assert_eq!(error.details.unwrap()["field"], "proof.to.ocid");
    }

    #[test]
    fn from_the_future() {
        let key = PrivateKey::generate();
        let mut raw = proof(ISSUER, OWN, "1.00", "USD");
        raw["timestamp"] = json!(NOW + PROOF_FUTURE_SKEW_SECS + 1);
        let rejection = check(&body(&raw, &key), &key).unwrap_err();
        assert_eq!(
            rejection,
            ProofRejection::FromTheFuture {
                timestamp: NOW + PROOF_FUTURE_SKEW_SECS + 1,
                now: NOW
            }
        );
        assert_eq!(rejection.code(), ErrorCode::InvalidProof);
    }

    #[test]
    fn missing_reference() {
        let key = PrivateKey::generate();
        let mut raw = proof(ISSUER, OWN, "1.00", "USD");
        raw["to"].as_object_mut().unwrap().remove("reference");
        let incoming = check(&body(&raw, &key), &key).unwrap();
        let rejection = incoming.reference().unwrap_err();
        assert_eq!(rejection, ProofRejection::MissingReference);
        assert_eq!(rejection.code(), ErrorCode::InvalidProof);
    }

    #[test]
    fn order_accepts() {
        let key = PrivateKey::generate();
        let incoming = check(&body(&proof(ISSUER, OWN, "1.00", "USD"), &key), &key).unwrap();
        let due = Amount::parse("1").unwrap();
        let usd = usd();
        let only_201 = [201];
        let rejection = incoming
            .check_pays(&ExpectedPayment {
                accepts: Some(&only_201),
                ..expect(&usd, &due)
            })
            .unwrap_err();
        let error = rejection.to_api_error();
        assert_eq!(error.code, ErrorCode::IssuerNotAccepted);
        assert!(
            error.message.ends_with("of this order"),
            "{}",
            error.message
        );
        assert_eq!(error.details.unwrap()["acceptedIssuers"], json!([201]));
        // An empty or matching list does not restrict.
        for accepts in [&[][..], &[ISSUER][..]] {
            assert_eq!(
                incoming.check_pays(&ExpectedPayment {
                    accepts: Some(accepts),
                    ..expect(&usd, &due)
                }),
                Ok(())
            );
        }
    }

    #[test]
    fn currency_and_amount() {
        let key = PrivateKey::generate();
        let usd = usd();
        let due = Amount::parse("15.00").unwrap();
        let pays = |amount: &str, currency: &str| {
            check(&body(&proof(ISSUER, OWN, amount, currency), &key), &key)
                .unwrap()
                .check_pays(&expect(&usd, &due))
        };
        assert_eq!(pays("15.0", "USD"), Ok(()));

        let mismatch = pays("15.00", "EUR").unwrap_err();
        assert_eq!(
            mismatch,
            ProofRejection::CurrencyMismatch {
                expected: "USD".into(),
                received: "EUR".into()
            }
        );
        let error = mismatch.to_api_error();
        assert_eq!(
            (error.code, error.status),
            (ErrorCode::CurrencyMismatch, 400)
        );
        assert_eq!(
            error.details.unwrap(),
            json!({"expected": "USD", "received": "EUR"})
        );

        for bad in ["15.001", "1e1", "-15", "abc"] {
            let rejection = pays(bad, "USD").unwrap_err();
            assert!(
                matches!(rejection, ProofRejection::InvalidAmount(_)),
                "{bad}: {rejection}"
            );
            assert_eq!(rejection.code(), ErrorCode::InvalidProof);
        }

        let short = pays("14.99", "USD").unwrap_err();
        assert_eq!(
            short.to_string(),
            "proof amount 14.99 USD is not the order's 15.00 USD"
        );
        let error = short.to_api_error();
        assert_eq!((error.code, error.status), (ErrorCode::AmountMismatch, 400));
        assert_eq!(
            error.details.unwrap(),
            json!({"expected": "15.00", "received": "14.99"})
        );
    }

    #[test]
    fn amount_in_minor_units() {
        let key = PrivateKey::generate();
        let minor = |amount: &str, currency: &str| {
            check(&body(&proof(ISSUER, OWN, amount, currency), &key), &key)
                .unwrap()
                .amount_minor()
        };
        assert_eq!(minor("15000", "UGX").unwrap().1, 15000);
        assert_eq!(minor("0.5", "USD").unwrap().1, 50);
        assert!(matches!(
            minor("1", "XYZ"),
            Err(ProofRejection::InvalidCurrency(_))
        ));
        assert!(matches!(
            minor("1", "usd"),
            Err(ProofRejection::InvalidCurrency(_))
        ));
        assert!(matches!(
            minor("x", "USD"),
            Err(ProofRejection::InvalidAmount(_))
        ));
        assert!(matches!(
            minor("1.234", "USD"),
            Err(ProofRejection::InvalidAmount(_))
        ));
        let huge = minor("99999999999999999999", "USD").unwrap_err();
        assert!(huge.to_string().contains("is not valid in USD"), "{huge}");
        assert_eq!(huge.to_api_error().code, ErrorCode::InvalidProof);
    }
}
