//! `opencharge-protocol`: the Opencharge protocol as pure code. Wire types, canonical JSON,
//! secp256k1 keys and signatures, request/response signing, orders, proofs, metadata, exact
//! money, QR payloads and the URL rules. No I/O, no async runtime, no clock: time is always passed in.
//!
//! Decisions where the public docs are ambiguous are written down in `docs/protocol-decisions.md`.

pub mod app;
pub mod auth;
pub mod canonical;
pub mod error;
pub mod error_code;
pub mod keys;
pub mod metadata;
pub mod money;
#[cfg(feature = "native-verify")]
mod native_verify;
pub mod proof;
pub mod qr;
pub mod signing;
pub mod strict_json;
pub mod types;
pub mod url_rules;

pub use error::{ProtocolError, Result};
