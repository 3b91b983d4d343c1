//! `opencharge-testkit`: one loopback Opencharge network for the tests, `opencharge demo`,
//! `opencharge sandbox` and `opencharge-bench`. A builder starts an embedded gateway (dev
//! mode, loopback port) and N merchants that know each other, opens wallets on the real core
//! registered to funded dev accounts, and hands out a recording listener and fixture orders
//! (and, for tests of lost answers, a [`DropProxy`] that lets the gateway act and drops its
//! answer). The gateway runs on a SQLite file, or with `OPENCHARGE_TEST_BACKEND=postgres` on a
//! fresh PostgreSQL database ([`backend`]), as one instance or several on one database:
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use opencharge_testkit::Network;
//! let network = Network::builder().merchants(2).wallets(3).fund("50.00 USD").start().await?;
//! let (order, prompt) = network.scan_order(&network.wallets[0].wallet).await?;
//! # let _ = (order, prompt);
//! network.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! Only integration tests (`tests/*.rs`) of the gateway, the merchant and the wallet core may
//! use it: unit tests inside those crates would link a second copy of the crate under test.

use std::time::Duration;

pub mod backend;
pub mod dev;
pub mod device;
pub mod drop_proxy;
pub mod listener;
pub mod network;
pub mod orders;
pub mod p2p;
pub mod parties;
pub mod pg;
pub mod push;
pub mod sse;
pub mod tls;

pub use backend::{DirectStore, GatewayDatabase, GatewayHome, TestBackend, BACKEND_VARIABLE};
pub use dev::{Account, DevClient, TestWallet};
pub use device::{usd_amount, AppDevice};
pub use drop_proxy::{DropProxy, DropRule};
pub use listener::{Heard, Inbox, Recorder};
pub use network::{loopback_wallet_config, Network, NetworkBuilder, NetworkTls};
/// The gateway's `database` setting (a SQLite file or a PostgreSQL URL), for the kit's users
/// that do not depend on the gateway crate (the load generator).
pub use opencharge_gateway::database::Database;
pub use orders::{coffee_order, item, COFFEE_ORDER_TOTAL};
pub use parties::{gateway_config, merchant_metadata, signed_request, WebhookReceiver};
pub use pg::TestDatabase;
pub use tls::{pin_of, BoundFront, ServerIdentity, TestCa, TlsFront};

/// The embedded gateway's OCID.
pub const GATEWAY_OCID: u64 = 200;
/// The first embedded merchant's OCID; further merchants follow (501, 502, ...).
pub const MERCHANT_OCID: u64 = 500;
/// How long a test waits for something that should happen at once on loopback.
pub const WAIT: Duration = Duration::from_secs(20);
