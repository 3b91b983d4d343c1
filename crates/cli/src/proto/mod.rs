//! `opencharge proto`: protocol tools for integrators on stdin/stdout (keys, canonical JSON,
//! object signatures, `X-OC-*` request headers, QR images), with stable output and exit codes.
//!
//! This module holds the command line, the dispatch, the key and stdin/stdout helpers and the
//! error type; the work lives in `objects` (canonical, sign, verify), `request` (sign-request)
//! and `qr`.

mod objects;
mod qr;
mod request;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use opencharge_protocol::keys::PrivateKey;

/// Largest input read from stdin (16 MiB); more is refused rather than buffered without end.
const MAX_STDIN_BYTES: u64 = 16 * 1024 * 1024;

/// Largest key file read (a key is 64 hex; a `keygen` JSON object is under 300 bytes).
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Protocol tools for integrators debugging signatures. Every subcommand reads its input from
/// stdin and writes its result to stdout; errors are one line on stderr.
#[derive(Debug, clap::Args)]
#[command(after_help = PROTO_HELP)]
pub struct ProtoArgs {
    #[command(subcommand)]
    command: ProtoCommand,
}

/// Text after `opencharge proto --help`: exit codes and a whole session.
const PROTO_HELP: &str = "\
Exit codes (every subcommand):
  0  success (for `verify`: the signature is valid)
  1  `verify` only: well-formed input whose signature does not verify; `invalid: <reason>` on stderr
  2  usage or input error (bad hex, bad JSON, unreadable file, ...); `error: <reason>` on stderr,
     nothing on stdout

Example:
  opencharge proto keygen > key.json
  printf '%s' '{\"ocid\":500,\"id\":\"ord_1\",\"amount\":\"15.00\",\"currency\":\"USD\",\"createdAt\":1706313600}' > order.json
  opencharge proto sign --key-file key.json --kind order < order.json > order.sig
  opencharge proto verify --kind order --pubkey \"$(opencharge proto pubkey --key-file key.json)\" --sig \"$(cat order.sig)\" < order.json";

/// The `proto` subcommands.
#[derive(Debug, clap::Subcommand)]
enum ProtoCommand {
    /// Generate a fresh secp256k1 key pair and print it as one line of JSON.
    #[command(after_help = KEYGEN_HELP)]
    Keygen,
    /// Print the public key of a private key.
    #[command(after_help = PUBKEY_HELP)]
    Pubkey(PubkeyArgs),
    /// Print the canonical JSON form (the exact bytes Opencharge signatures cover) of JSON on stdin.
    #[command(after_help = CANONICAL_HELP)]
    Canonical(objects::CanonicalArgs),
    /// Sign an order, proof or metadata config read from stdin; print the 130-hex signature.
    #[command(after_help = SIGN_HELP)]
    Sign(objects::SignArgs),
    /// Verify the signature of an order, proof or metadata config read from stdin.
    #[command(after_help = VERIFY_HELP)]
    Verify(objects::VerifyArgs),
    /// Sign an HTTP request (body on stdin); print the four X-OC-* headers.
    #[command(name = "sign-request", after_help = SIGN_REQUEST_HELP)]
    SignRequest(request::SignRequestArgs),
    /// Render the payload text on stdin as a QR code (SVG file, PNG file or terminal text).
    #[command(after_help = QR_HELP)]
    Qr(qr::QrArgs),
}

/// Text after `proto keygen --help`.
const KEYGEN_HELP: &str = "\
Output (stdout), one line of JSON with exactly these keys:
  {\"privateKey\":\"<64 hex>\",\"publicKey\":\"<128 hex>\",\"publicKeyCompressed\":\"<66 hex>\"}
publicKey is the Opencharge encoding (X||Y without 04, what metadata config.publicKey holds);
publicKeyCompressed is the 02/03 form the registry UI shows. The output file can be passed to
--key-file of the other subcommands as it is. Keep it secret.

Example:
  opencharge proto keygen > key.json";

/// Text after `proto pubkey --help`.
const PUBKEY_HELP: &str = "\
Output (stdout): the public key and a newline; 128 lowercase hex (X||Y without the 04 prefix,
the Opencharge encoding) or, with --compressed, 66 hex starting 02 or 03.

Example:
  opencharge proto pubkey --key 1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef --compressed
  02bb50e2d89a4ed70663d080659fe0ad4b9bc3e06c17a227433966cb59ceee020d";

/// Text after `proto canonical --help`.
const CANONICAL_HELP: &str = "\
Input (stdin): one JSON value. Canonical form: object keys sorted by UTF-16 code units at every
level, no whitespace, strings escaped as JavaScript JSON.stringify does (non-ASCII characters
are kept as UTF-8, not \\u-escaped), numbers only integers with |n| <= 2^53-1 (money is a
decimal string: a fractional or larger number is an error, exit 2).

Output (stdout): the canonical form WITHOUT a trailing newline, so the bytes are exactly what is
hashed and signed (`| sha256sum` gives the signed digest). With --hash: the lowercase hex
SHA-256 of those bytes followed by a newline.

Example:
  echo '{\"b\":1,\"a\":{\"d\":\"\\u00e9\",\"c\":[2,1]}}' | opencharge proto canonical
  {\"a\":{\"c\":[2,1],\"d\":\"é\"},\"b\":1}";

/// Text after `proto sign --help`.
const SIGN_HELP: &str = "\
Input (stdin): the object to sign as JSON, either bare or in its envelope:
  order   the order object, or {\"order\":{...},...}  (merchant key; urls are not signed)
  proof   the proof object, or {\"proof\":{...},...}  (issuer key)
  config  the metadata config object, or a whole metadata document {\"config\":{...},...}
          (the key of config.publicKey: configs are self-signed)
The envelope is recognised when the top level has a key named like the kind holding an object.
Every kind signs SHA-256 of the canonical form (see `proto canonical`) with RFC 6979, low-S.

Output (stdout): the 130-hex signature r||s||v (v = 1b or 1c) and a newline.

Example (test vector TV2 of the protocol notes):
  printf '%s' '{\"amount\":\"10000.00\",\"currency\":\"UGX\",\"from\":200,\"issuer\":100,\"timestamp\":1706500500,\"to\":300,\"txid\":\"test_tx_001\"}' \\
    | opencharge proto sign --key 1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef --kind proof
  4a5f5853e2f3359e875d2a18efcc5affa2ae397b38549437d203a12596a8961e7955d0ad2cf86bdd88c8e44e9678215d678b237c458b34e20da03ff21865fd861b";

/// Text after `proto verify --help`.
const VERIFY_HELP: &str = "\
Input (stdin): the signed object as JSON, bare or in its envelope (as for `sign`). Without
--sig, the envelope's \"signature\" field is used.

Checks, as the gateway and merchant do (strict: 130- or 128-hex low-S signatures, recursive
canonical form):
  order   signature by --pubkey; order.ocid must equal --ocid (default: order.ocid itself)
  proof   signature by --pubkey; proof.issuer must equal --ocid (default: proof.issuer itself)
  config  signature by config.publicKey (self-signed); with --pubkey, that key must also be
          config.publicKey

Output: `valid` on stdout and exit 0; with --legacy-replacer, an order that only verifies in
the legacy replacer form prints `valid weak-legacy-replacer` (nested fields such as item prices
are NOT signed) and exit 0. Otherwise `invalid: <reason>` on stderr and exit 1. Bad input
(bad hex, bad JSON, a non-integer number in the object, a malformed signature) is exit 2.

Example (test vector TV2 of the protocol notes):
  printf '%s' '{\"amount\":\"10000.00\",\"currency\":\"UGX\",\"from\":200,\"issuer\":100,\"timestamp\":1706500500,\"to\":300,\"txid\":\"test_tx_001\"}' \\
    | opencharge proto verify --kind proof --pubkey 02bb50e2d89a4ed70663d080659fe0ad4b9bc3e06c17a227433966cb59ceee020d \\
      --sig 4a5f5853e2f3359e875d2a18efcc5affa2ae397b38549437d203a12596a8961e7955d0ad2cf86bdd88c8e44e9678215d678b237c458b34e20da03ff21865fd861b
  valid";

/// Text after `proto sign-request --help`.
const SIGN_REQUEST_HELP: &str = "\
Input (stdin): the raw request body bytes, exactly as sent (may be empty: use </dev/null).
A trailing newline on stdin IS part of the body: use printf '%s' or a file, not echo.

Signs `ocid\\ntimestamp\\nnonce\\nMETHOD\\npath\\nsha256hex(body)`. --path is the request target
exactly as on the wire: the absolute path with any base prefix (/opencharge/...) and ?query, no
scheme or host.

Output (stdout): four lines `Name: value`, in this order:
  X-OC-ID, X-OC-Timestamp, X-OC-Nonce, X-OC-Signature
--timestamp defaults to now (unix seconds) and --nonce to req_ + 32 random hex characters; with
both fixed the output is deterministic.

Example:
  printf '%s' '{\"amount\":\"100.00\",\"currency\":\"USD\"}' | opencharge proto sign-request --key-file key.json --ocid 200 --method POST --path /opencharge/payment/request --timestamp 1706500000 --nonce req_test123";

/// Text after `proto qr --help`.
const QR_HELP: &str = "\
Input (stdin): the payload text, UTF-8, at most 4096 bytes; trailing line breaks (\\n, \\r\\n)
are removed, everything else is encoded as it is (no check that it is an Opencharge payload).
Level M error correction, smallest version, quiet zone of 4 modules.

Output: exactly one of --svg FILE, --png FILE (8-bit greyscale) or --terminal (Unicode half
blocks on stdout). Files are overwritten.

Example:
  printf '%s' 'opencharge:500?amount=15000&currency=UGX' | opencharge proto qr --png pay.png";

/// Arguments of `proto pubkey`.
#[derive(Debug, clap::Args)]
struct PubkeyArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// Print the 66-hex compressed form (02/03 + X) instead of the 128-hex X||Y form.
    #[arg(long)]
    compressed: bool,
}

/// Where the private key comes from: exactly one of `--key` and `--key-file`.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct KeyArgs {
    /// The private key as 64 hex characters (optional 0x prefix). Other users of this machine
    /// can see command lines: prefer --key-file for real keys.
    #[arg(long, value_name = "HEX")]
    key: Option<String>,
    /// A file holding the private key: 64 hex characters, or the JSON object `keygen` prints.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

impl KeyArgs {
    /// Loads the private key from `--key` or `--key-file`.
    fn load(&self) -> Result<PrivateKey, Failure> {
        match (&self.key, &self.key_file) {
            (Some(hex), _) => PrivateKey::from_hex(hex).map_err(|e| usage(format!("--key: {e}"))),
            (None, Some(path)) => load_key_file(path),
            (None, None) => Err(usage("give --key HEX or --key-file FILE")),
        }
    }
}

/// Reads a key file: 64 hex (surrounding whitespace ignored) or `{"privateKey":"<64 hex>",...}`.
/// Error messages never quote the file's content.
fn load_key_file(path: &Path) -> Result<PrivateKey, Failure> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| usage(format!("--key-file {shown}: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| usage(format!("--key-file {shown}: {e}")))?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(usage(format!(
            "--key-file {shown}: file is too large for a key"
        )));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| usage(format!("--key-file {shown}: not UTF-8 text")))?
        .trim();
    let parsed = if text.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| usage(format!("--key-file {shown}: invalid JSON: {e}")))?;
        match value.get("privateKey").and_then(serde_json::Value::as_str) {
            Some(hex) => PrivateKey::from_hex(hex),
            None => {
                return Err(usage(format!(
                    "--key-file {shown}: JSON without a string \"privateKey\""
                )))
            }
        }
    } else {
        PrivateKey::from_hex(text)
    };
    parsed.map_err(|e| usage(format!("--key-file {shown}: {e}")))
}

/// Why a subcommand failed: decides the exit code and the stderr prefix.
#[derive(Debug)]
enum Failure {
    /// Usage or input error: `error: …`, exit 2.
    Usage(String),
    /// `verify` only: the signature does not verify: `invalid: …`, exit 1.
    Invalid(String),
}

/// Shorthand for [`Failure::Usage`].
fn usage(message: impl Into<String>) -> Failure {
    Failure::Usage(message.into())
}

/// Runs `opencharge proto …`: 0 on success, 1 when `verify` finds the signature invalid, 2 on
/// usage or input errors. Never panics on input.
pub fn run(args: ProtoArgs) -> ExitCode {
    let result = match args.command {
        ProtoCommand::Keygen => keygen(),
        ProtoCommand::Pubkey(args) => pubkey(&args),
        ProtoCommand::Canonical(args) => objects::canonical(&args),
        ProtoCommand::Sign(args) => objects::sign(&args),
        ProtoCommand::Verify(args) => objects::verify(&args),
        ProtoCommand::SignRequest(args) => request::sign_request(&args),
        ProtoCommand::Qr(args) => qr::qr(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid(reason)) => {
            eprintln!("invalid: {}", one_line(&reason));
            ExitCode::from(1)
        }
        Err(Failure::Usage(reason)) => {
            eprintln!("error: {}", one_line(&reason));
            ExitCode::from(2)
        }
    }
}

/// Keeps a message on one line (serde and I/O messages rarely hold line breaks, but be sure).
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// `proto keygen`. The line is written in pieces so the private key is not copied into
/// another buffer than the one `to_hex` wipes on drop.
fn keygen() -> Result<(), Failure> {
    let key = PrivateKey::generate();
    let public = key.public_key();
    let private = key.to_hex();
    let public_hex = public.to_hex();
    let compressed = public.to_compressed_hex();
    let parts: [&[u8]; 7] = [
        b"{\"privateKey\":\"",
        private.as_bytes(),
        b"\",\"publicKey\":\"",
        public_hex.as_bytes(),
        b"\",\"publicKeyCompressed\":\"",
        compressed.as_bytes(),
        b"\"}\n",
    ];
    write_stdout_parts(&parts)
}

/// `proto pubkey`.
fn pubkey(args: &PubkeyArgs) -> Result<(), Failure> {
    let public = args.key.load()?.public_key();
    let hex = if args.compressed {
        public.to_compressed_hex()
    } else {
        public.to_hex()
    };
    write_stdout(format!("{hex}\n").as_bytes())
}

/// Reads all of stdin (at most [`MAX_STDIN_BYTES`]).
fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| usage(format!("cannot read stdin: {e}")))?;
    if bytes.len() as u64 > MAX_STDIN_BYTES {
        return Err(usage(format!(
            "stdin is larger than {} MiB",
            MAX_STDIN_BYTES / (1024 * 1024)
        )));
    }
    Ok(bytes)
}

/// Reads stdin and parses it as one JSON value.
fn read_stdin_json() -> Result<serde_json::Value, Failure> {
    let bytes = read_stdin()?;
    serde_json::from_slice(&bytes).map_err(|e| usage(format!("invalid JSON on stdin: {e}")))
}

/// Writes `bytes` to stdout and flushes (a closed pipe is an error, not a panic).
fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    write_stdout_parts(&[bytes])
}

/// Writes `parts` to stdout one after the other and flushes.
fn write_stdout_parts(parts: &[&[u8]]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    for part in parts {
        out.write_all(part)
            .map_err(|e| usage(format!("cannot write stdout: {e}")))?;
    }
    out.flush()
        .map_err(|e| usage(format!("cannot write stdout: {e}")))
}
