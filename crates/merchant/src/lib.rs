//! `opencharge-merchant`: the Opencharge merchant peer, as a library that also serves the
//! merchant's HTTP API. It owns an OCID and a key, builds and signs orders with exact totals
//! and `accepts`, posts them to wallet sessions it scans (checking the URL against the
//! gateway's metadata endpoint), serves merchant-order and inventory QRs
//! (`GET /orders/{id}`, `GET /inventory`, `POST /orders/create`), opens hosted checkouts at a
//! payment gateway, and accepts proofs on `POST /transfer/webhook` only after the checks of
//! protocol notes §5.5 (see [`webhook`]), marking orders paid. It is also its own Merchant
//! Gateway for third-party settlement ([`payments`]): `POST /payment/create` gives a payer's
//! gateway a pending txid, `POST /payment/settle` (or the provider's webhook) completes it
//! with a settlement provider's proof and marks the order paid with the merchant's own signed
//! proof, `GET /verify/{txid}` reports it. With
//! [`MerchantConfig::dev_mode`] on it also serves an unauthenticated `/dev/*` control API
//! (create, post, check out, cancel and read orders; the inventory QR) for terminals, tests
//! and demos on loopback.
//!
//! ```no_run
//! # async fn demo() -> Result<(), opencharge_merchant::MerchantError> {
//! use opencharge_merchant::{Merchant, MerchantConfig, NewItem, NewOrder};
//! let dir = std::path::Path::new("merchant-data");
//! let merchant = Merchant::start(MerchantConfig::for_tests(dir, 500, vec![200])).await?;
//! let signed = merchant.create_order(NewOrder {
//!     items: vec![NewItem { id: "tea".into(), name: "Tea".into(), quantity: 2, price: "4.50".into() }],
//!     currency: "USD".into(),
//!     reference: None,
//!     memo: None,
//! })?;
//! println!("show this QR: {}", merchant.order_qr(&signed.order.id)?);
//! let paid = merchant
//!     .wait_paid(&signed.order.id, std::time::Duration::from_secs(300))
//!     .await?;
//! println!("paid by {:?}", paid.txid);
//! merchant.stop().await;
//! # Ok(()) }
//! ```

mod auth;
pub mod client;
pub mod clock;
pub mod config;
mod dev;
pub mod error;
mod identity;
mod merchant;
mod operations;
pub mod orders;
mod payment_store;
pub mod payments;
mod recheck;
pub mod resolver;
mod router;
mod server;
mod state;
mod store;
pub mod webhook;

pub use config::{DirectoryEntry, InventoryItem, MerchantConfig};
pub use error::MerchantError;
pub use merchant::{Merchant, RunningMerchant, OUTBOUND_TIMEOUT};
pub use operations::OrderRecord;
pub use orders::{order_total, NewItem, NewOrder};
pub use payments::PaymentRecord;
pub use state::{MERCHANT_CAPABILITIES, PROTOCOL_VERSION};
