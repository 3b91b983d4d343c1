//! `opencharge-gateway`: a reference Opencharge Payment Gateway. It serves the seed endpoints
//! (`POST /orders/create/{sessionId}`, `POST /checkout/create`) and the rest of the Payment
//! Gateway role, keeps a double-entry ledger in SQLite, settles directly or through a partner's
//! reserve, delivers signed proofs through a durable webhook queue, and exposes the wallet app
//! API (`/app/...`, documented in `docs/app-api.md`) with a server-sent-events stream.

pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod database;
pub mod domain;
pub mod error;
pub mod hub;
pub mod identity;
pub mod limits;
pub mod memory;
pub mod net;
pub mod ops;
pub mod p2p;
pub mod purge;
pub mod push;
pub mod resolver;
pub mod server;
pub mod settlement;
pub mod signals;
pub mod state;
pub mod store;
pub mod webhook;

pub use config::GatewayConfig;
pub use database::Database;
pub use server::{Gateway, RunningGateway};
