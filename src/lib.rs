//! `opencharge-wallet`: the Opencharge wallet core that Android and iOS apps embed through
//! uniffi. One [`Wallet`] object does everything but the UI: device keys, wallet QR sessions,
//! scanning, live payment prompts, signed confirmations, receipts and balances.

uniffi::setup_scaffolding!();

#[doc(hidden)]
pub mod bench_support;
mod client;
pub mod config;
mod db;
mod engine;
pub mod error;
pub mod events;
pub mod gateway_error;
pub mod keystore;
pub mod logging;
pub mod model;
mod outcome;
mod prompt;
mod push;
mod push_token;
pub mod qr;
mod resolver;
mod runtime;
pub mod sse;
mod tls;
pub mod wallet;

pub use config::{DirectoryEntry, WalletConfig};
pub use error::{GatewayErrorCode, GatewayErrorDetails, TlsFailure, WalletError};
pub use events::{EventStream, WalletListener};
pub use keystore::{file_key_store, DeviceKeyStore, FileKeyStore};
pub use logging::{clear_log_sink, set_log_sink, LogLevel, LogSink};
pub use model::*;
pub use qr::{render_qr_matrix, render_qr_png, render_qr_svg, render_qr_terminal, QrMatrix};
#[doc(hidden)]
pub use runtime::alive_tasks;
pub use wallet::Wallet;

/// The protocol crate, re-exported so integrators speak the same protocol as the core.
pub use opencharge_protocol as protocol;
