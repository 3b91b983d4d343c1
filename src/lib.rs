//! `opencharge-wallet`: the Opencharge wallet core that Android and iOS apps embed.
//!
//! The uniffi-exported `Wallet` arrives with the wallet-core issue; for now this crate
//! re-exports the protocol crate so every part of the workspace speaks one protocol.

pub use opencharge_protocol as protocol;
