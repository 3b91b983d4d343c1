//! `proto sign-request`: the four `X-OC-*` headers of a signed request, through the protocol
//! crate's `RequestAuth::sign` exactly as the gateway's and merchant's HTTP clients use it.

use std::time::{SystemTime, UNIX_EPOCH};

use opencharge_protocol::auth::{
    canonical_request, check_nonce_syntax, generate_nonce, RequestAuth,
};

use super::{read_stdin, usage, write_stdout, Failure, KeyArgs};

/// Longest HTTP method accepted (real methods are at most 7 letters; extensions a bit more).
const MAX_METHOD_LEN: usize = 32;

/// Arguments of `proto sign-request`.
#[derive(Debug, clap::Args)]
pub(super) struct SignRequestArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// The sender's OCID (X-OC-ID).
    #[arg(long, value_name = "N")]
    ocid: u64,
    /// The HTTP method (letters only; upper-cased in the signed string), e.g. POST.
    #[arg(long, value_name = "M")]
    method: String,
    /// The request target exactly as on the wire: absolute path with base prefix and ?query,
    /// no scheme or host, e.g. /opencharge/orders/create/sess_1.
    #[arg(long, value_name = "P")]
    path: String,
    /// Unix seconds (X-OC-Timestamp). Default: now.
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    timestamp: Option<i64>,
    /// The nonce (X-OC-Nonce): 1 to 128 characters of [A-Za-z0-9_-]. Default: req_ + 32
    /// random hex characters.
    #[arg(long, value_name = "N")]
    nonce: Option<String>,
    /// Also print the canonical string that is signed on stderr, between marker lines.
    #[arg(long)]
    show_canonical: bool,
}

/// `proto sign-request`.
pub(super) fn sign_request(args: &SignRequestArgs) -> Result<(), Failure> {
    let key = args.key.load()?;
    check_method(&args.method)?;
    check_path(&args.path)?;
    let nonce = match &args.nonce {
        Some(nonce) => {
            check_nonce_syntax(nonce).map_err(|e| usage(format!("--nonce: {e}")))?;
            nonce.clone()
        }
        None => generate_nonce(),
    };
    let timestamp = match args.timestamp {
        Some(t) => t,
        None => now()?,
    };
    let body = read_stdin()?;
    let auth = RequestAuth::sign(
        &key,
        args.ocid,
        &args.method,
        &args.path,
        &body,
        timestamp,
        &nonce,
    )
    .map_err(|e| usage(e.to_string()))?;
    if args.show_canonical {
        let canonical = canonical_request(
            args.ocid,
            timestamp,
            &nonce,
            &args.method,
            &args.path,
            &body,
        );
        eprintln!("--- canonical string (no trailing newline) ---\n{canonical}\n--- end ---");
    }
    let mut out = String::new();
    for (name, value) in auth.headers() {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(&value);
        out.push('\n');
    }
    write_stdout(out.as_bytes())
}

/// The current unix time in seconds.
fn now() -> Result<i64, Failure> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| usage("the system clock is before 1970; pass --timestamp"))?;
    i64::try_from(since.as_secs()).map_err(|_| usage("the system clock is out of range"))
}

/// A method is 1 to [`MAX_METHOD_LEN`] ASCII letters.
fn check_method(method: &str) -> Result<(), Failure> {
    if !method.is_empty()
        && method.len() <= MAX_METHOD_LEN
        && method.bytes().all(|b| b.is_ascii_alphabetic())
    {
        Ok(())
    } else {
        Err(usage(format!(
            "--method must be 1 to {MAX_METHOD_LEN} ASCII letters, e.g. POST"
        )))
    }
}

/// A path is what goes on the wire: starts with `/`, printable ASCII without spaces
/// (anything else must be percent-encoded, as an HTTP client sends it).
fn check_path(path: &str) -> Result<(), Failure> {
    if !path.starts_with('/') {
        return Err(usage(
            "--path must be the request target starting with / (no scheme or host), \
             e.g. /opencharge/payment/create",
        ));
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(usage(
            "--path must be printable ASCII without spaces; percent-encode other characters \
             as they are sent on the wire",
        ));
    }
    Ok(())
}
