//! `proto canonical`, `proto sign` and `proto verify`: canonical JSON and the signatures of
//! orders, proofs and metadata configs, through the protocol crate's signing functions exactly
//! as the gateway and the merchant call them.

use opencharge_protocol::canonical::{canonicalize, replacer_form};
use opencharge_protocol::keys::{sha256_hex, PublicKey, Signature, VerifyOptions};
use opencharge_protocol::signing::{
    sign_object, verify_config, verify_order, verify_proof, OrderVerifyMode, SignatureStrength,
};
use opencharge_protocol::ProtocolError;
use serde_json::Value;

use super::{read_stdin_json, usage, write_stdout, Failure, KeyArgs};

/// Which signed object a `sign` or `verify` call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Kind {
    /// A merchant's order (signed by the merchant's key; `order.ocid` is the merchant).
    Order,
    /// A transaction proof (signed by the issuer's key; `proof.issuer` is the issuer).
    Proof,
    /// A metadata `config` object (self-signed by `config.publicKey`).
    Config,
}

impl Kind {
    /// The envelope key that holds this kind of object (`order`, `proof`, `config`).
    fn field(self) -> &'static str {
        match self {
            Kind::Order => "order",
            Kind::Proof => "proof",
            Kind::Config => "config",
        }
    }
}

/// Arguments of `proto canonical`.
#[derive(Debug, clap::Args)]
pub(super) struct CanonicalArgs {
    /// Print the lowercase hex SHA-256 of the canonical bytes (and a newline) instead of them.
    #[arg(long)]
    hash: bool,
    /// Use the legacy replacer form (`JSON.stringify(obj, Object.keys(obj).sort())` of the public
    /// samples: top-level keys act as an allow-list at every level) instead of the recursive
    /// form. For comparing with legacy peers only; the input must be an object.
    #[arg(long)]
    legacy_replacer: bool,
}

/// Arguments of `proto sign`.
#[derive(Debug, clap::Args)]
pub(super) struct SignArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// What is signed: order, proof or config.
    #[arg(long, value_enum)]
    kind: Kind,
}

/// Arguments of `proto verify`.
#[derive(Debug, clap::Args)]
pub(super) struct VerifyArgs {
    /// What is verified: order, proof or config.
    #[arg(long, value_enum)]
    kind: Kind,
    /// The signer's public key: 128 hex, 04 + 128 hex or 66 hex compressed. Required for order
    /// and proof; optional for config (which is verified with its own config.publicKey).
    #[arg(long, value_name = "HEX")]
    pubkey: Option<String>,
    /// The signature: 130 hex (r||s||v, v ignored) or 128 hex (r||s). Default: the envelope's
    /// "signature" field.
    #[arg(long, value_name = "HEX")]
    sig: Option<String>,
    /// The signer's OCID for the binding check (order.ocid for an order, proof.issuer for a
    /// proof must equal it). Default: the object's own field, which makes the check a no-op.
    #[arg(long, value_name = "N")]
    ocid: Option<u64>,
    /// Order only: if the recursive form fails, also try the legacy replacer form; a match is
    /// reported as `valid weak-legacy-replacer`.
    #[arg(long)]
    legacy_replacer: bool,
    /// Also accept DER-encoded signatures (off in the gateway and the core).
    #[arg(long)]
    allow_der: bool,
    /// Also accept high-S signatures by normalising them (off in the gateway and the core).
    #[arg(long)]
    allow_high_s: bool,
}

/// `proto canonical`.
pub(super) fn canonical(args: &CanonicalArgs) -> Result<(), Failure> {
    let value = read_stdin_json()?;
    let text = if args.legacy_replacer {
        replacer_form(&value)
    } else {
        canonicalize(&value)
    }
    .map_err(|e| usage(e.to_string()))?;
    if args.hash {
        write_stdout(format!("{}\n", sha256_hex(text.as_bytes())).as_bytes())
    } else {
        write_stdout(text.as_bytes())
    }
}

/// Splits stdin's JSON into the object to sign or verify and, when it came in an envelope
/// (`{"order": {...}, "signature": "..."}`, a metadata document, ...), the envelope's signature.
fn signed_part(value: &Value, kind: Kind) -> Result<(&Value, Option<&str>), Failure> {
    let (object, signature) = match value.get(kind.field()) {
        Some(inner) if inner.is_object() => (inner, value.get("signature").and_then(Value::as_str)),
        _ => (value, None),
    };
    if !object.is_object() {
        return Err(usage(format!(
            "the {} must be a JSON object (or an envelope with an \"{}\" object)",
            kind.field(),
            kind.field()
        )));
    }
    Ok((object, signature))
}

/// `proto sign`.
pub(super) fn sign(args: &SignArgs) -> Result<(), Failure> {
    let key = args.key.load()?;
    let value = read_stdin_json()?;
    let (object, _) = signed_part(&value, args.kind)?;
    if args.kind == Kind::Config {
        warn_foreign_config_key(object, &key.public_key());
    }
    let signature = sign_object(&key, object).map_err(|e| usage(e.to_string()))?;
    write_stdout(format!("{signature}\n").as_bytes())
}

/// Warns on stderr when a config is signed with a key other than its own `publicKey`: verifiers
/// check a config against `config.publicKey`, so such a signature can never verify.
fn warn_foreign_config_key(config: &Value, key: &PublicKey) {
    let own = config
        .get("publicKey")
        .and_then(Value::as_str)
        .map(PublicKey::from_hex);
    match own {
        Some(Ok(own)) if own == *key => {}
        Some(Ok(_)) => eprintln!(
            "warning: config.publicKey is not this key's public key; verifiers check the \
             signature against config.publicKey and will reject it"
        ),
        Some(Err(e)) => eprintln!("warning: config.publicKey: {e}; verifiers will reject it"),
        None => eprintln!(
            "warning: the config has no string publicKey; verifiers check the signature \
             against config.publicKey and will reject it"
        ),
    }
}

/// `proto verify`.
pub(super) fn verify(args: &VerifyArgs) -> Result<(), Failure> {
    if args.kind == Kind::Config && args.ocid.is_some() {
        return Err(usage("--ocid applies to --kind order and proof only"));
    }
    if args.kind != Kind::Order && args.legacy_replacer {
        return Err(usage("--legacy-replacer applies to --kind order only"));
    }
    let pubkey = match &args.pubkey {
        Some(hex) => Some(PublicKey::from_hex(hex).map_err(|e| usage(format!("--pubkey: {e}")))?),
        None if args.kind == Kind::Config => None,
        None => {
            return Err(usage(format!(
                "--pubkey is required for --kind {}",
                args.kind.field()
            )))
        }
    };
    let value = read_stdin_json()?;
    let (object, envelope_signature) = signed_part(&value, args.kind)?;
    let (signature, source) =
        match (&args.sig, envelope_signature) {
            (Some(sig), _) => (sig.as_str(), "--sig"),
            (None, Some(sig)) => (sig, "the envelope's signature"),
            (None, None) => return Err(usage(
                "no signature: pass --sig HEX or give the envelope with its \"signature\" field",
            )),
        };
    // Input errors (exit 2) are told apart from signatures that do not verify (exit 1): a
    // signature that is not even a well-formed encoding, or an object that has no canonical
    // form, is bad input. A well-formed high-S signature is merely invalid under strict rules.
    let syntax = VerifyOptions {
        allow_der: args.allow_der,
        allow_high_s: true,
    };
    Signature::parse(signature, syntax).map_err(|e| usage(format!("{source}: {e}")))?;
    canonicalize(object).map_err(|e| usage(e.to_string()))?;

    let options = VerifyOptions {
        allow_der: args.allow_der,
        allow_high_s: args.allow_high_s,
    };
    let strength = match args.kind {
        Kind::Order => {
            let signer = bound_ocid(object, "ocid", "order.ocid", args.ocid)?;
            let mode = if args.legacy_replacer {
                OrderVerifyMode::AllowLegacyReplacer
            } else {
                OrderVerifyMode::Strict
            };
            let key = pubkey
                .as_ref()
                .ok_or_else(|| usage("--pubkey is required"))?;
            verify_order(object, signature, signer, key, mode, options).map_err(invalid)?
        }
        Kind::Proof => {
            let issuer = bound_ocid(object, "issuer", "proof.issuer", args.ocid)?;
            let key = pubkey
                .as_ref()
                .ok_or_else(|| usage("--pubkey is required"))?;
            verify_proof(object, signature, issuer, key, options).map_err(invalid)?;
            SignatureStrength::Full
        }
        Kind::Config => {
            let own = verify_config(object, signature, options).map_err(invalid)?;
            if let Some(given) = pubkey {
                if given != own {
                    return Err(Failure::Invalid(format!(
                        "the signature is config.publicKey's ({}), which is not --pubkey",
                        own.to_hex()
                    )));
                }
            }
            SignatureStrength::Full
        }
    };
    match strength {
        SignatureStrength::Full => write_stdout(b"valid\n"),
        SignatureStrength::WeakLegacyReplacer => {
            eprintln!(
                "warning: only the legacy replacer form verifies: nested fields (item names, \
                 prices, quantities) are NOT signed"
            );
            write_stdout(b"valid weak-legacy-replacer\n")
        }
    }
}

/// The OCID the binding check compares `object[field]` with: `--ocid` when given, else the
/// object's own value. A missing or non-integer field is an invalid object (exit 1), as it is
/// for the gateway.
fn bound_ocid(
    object: &Value,
    field: &str,
    shown: &str,
    given: Option<u64>,
) -> Result<u64, Failure> {
    if let Some(ocid) = given {
        return Ok(ocid);
    }
    object.get(field).and_then(Value::as_u64).ok_or_else(|| {
        Failure::Invalid(format!(
            "invalid field `{shown}`: missing or not a non-negative integer"
        ))
    })
}

/// Maps a verification error to an exit code: JSON and canonical-form problems are bad input
/// (already ruled out above, kept for safety); everything else means "does not verify".
fn invalid(e: ProtocolError) -> Failure {
    match e {
        ProtocolError::Json(_) | ProtocolError::Canonical(_) => usage(e.to_string()),
        other => Failure::Invalid(other.to_string()),
    }
}
