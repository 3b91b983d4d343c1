//! Two loopback networks for paying a person across gateways: gateway A ([`GATEWAY_OCID`],
//! user OCIDs 200001–200999) and gateway B ([`GATEWAY_B_OCID`], user OCIDs 201001–201999),
//! each with its own wallets on the real core, each in the other's directory, each listing
//! the other in `partners` and holding a funded reserve there (`reserve:<other>`), so a
//! wallet on one pays a person on the other through `/transfer/create`:
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use opencharge_testkit::p2p::PeerNetworks;
//! let peers = PeerNetworks::builder().wallets(1).fund("50.00 USD").start().await?;
//! let (alice, bob) = (&peers.a.wallets[0], &peers.b.wallets[0]);
//! # let _ = (alice, bob);
//! peers.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! The gateways' ports are chosen before either starts, so each directory can name the
//! other's metadata URL; the networks have no merchants.

use anyhow::Context;
use opencharge_gateway::config::{DirectoryEntry, PartnerConfig, UserOcidRange};
use serde_json::json;

use crate::dev::split_amount;
use crate::network::{Network, NetworkBuilder};
use crate::GATEWAY_OCID;

/// Gateway B's OCID.
pub const GATEWAY_B_OCID: u64 = 201;

/// The reserve each gateway holds at the other by default.
pub const DEFAULT_RESERVE: &str = "1000.00 USD";

/// Options of [`PeerNetworks`]; [`PeerNetworksBuilder::start`] starts them.
pub struct PeerNetworksBuilder {
    wallets: usize,
    funds: Option<String>,
    reserve: String,
}

impl PeerNetworksBuilder {
    /// How many wallets each network opens at start (default 0), as
    /// [`NetworkBuilder::wallets`].
    pub fn wallets(mut self, count: usize) -> Self {
        self.wallets = count;
        self
    }

    /// What each started wallet's account is funded with (`"50.00 USD"`), as
    /// [`NetworkBuilder::fund`].
    pub fn fund(mut self, amount: &str) -> Self {
        self.funds = Some(amount.to_string());
        self
    }

    /// The reserve each gateway holds at the other (default [`DEFAULT_RESERVE`]).
    pub fn reserve(mut self, amount: &str) -> Self {
        self.reserve = amount.to_string();
        self
    }

    /// Starts B, then A (each names the other's address chosen up front), then funds the two
    /// reserves through the dev endpoints.
    pub async fn start(self) -> anyhow::Result<PeerNetworks> {
        let (port_a, port_b) = (free_port()?, free_port()?);
        let b = self
            .network(GATEWAY_B_OCID, port_b, GATEWAY_OCID, port_a)
            .start()
            .await
            .context("cannot start network B")?;
        let a = match self
            .network(GATEWAY_OCID, port_a, GATEWAY_B_OCID, port_b)
            .start()
            .await
        {
            Ok(a) => a,
            Err(e) => {
                b.stop().await;
                return Err(e.context("cannot start network A"));
            }
        };
        let peers = PeerNetworks { a, b };
        if let Err(e) = peers.fund_reserves(&self.reserve).await {
            peers.stop().await;
            return Err(e);
        }
        Ok(peers)
    }

    /// One side: gateway `ocid` on `port`, its peer `other` on `other_port`.
    fn network(&self, ocid: u64, port: u16, other: u64, other_port: u16) -> NetworkBuilder {
        let mut builder = Network::builder().merchants(0).wallets(self.wallets);
        if let Some(funds) = &self.funds {
            builder = builder.fund(funds);
        }
        builder.gateway_config(move |config| {
            config.ocid = ocid;
            config.name = format!("Gateway {ocid}");
            config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            config.user_ocids = UserOcidRange::dev_block(ocid);
            config.partners = vec![PartnerConfig { ocid: other }];
            config.directory.push(DirectoryEntry {
                ocid: other,
                metadata_url: Some(format!("http://127.0.0.1:{other_port}{}", config.base_path)),
                metadata: None,
            });
        })
    }
}

/// Two networks whose gateways settle transfers to people with each other (see the module).
pub struct PeerNetworks {
    /// Gateway A ([`GATEWAY_OCID`]) and its wallets.
    pub a: Network,
    /// Gateway B ([`GATEWAY_B_OCID`]) and its wallets.
    pub b: Network,
}

impl PeerNetworks {
    /// The options: no wallets, no funds, reserves of [`DEFAULT_RESERVE`].
    pub fn builder() -> PeerNetworksBuilder {
        PeerNetworksBuilder {
            wallets: 0,
            funds: None,
            reserve: DEFAULT_RESERVE.to_string(),
        }
    }

    /// Funds `reserve:<B>` at A and `reserve:<A>` at B with `amount` (`"1000.00 USD"`).
    async fn fund_reserves(&self, amount: &str) -> anyhow::Result<()> {
        let (value, currency) = split_amount(amount)?;
        for (network, holder) in [(&self.a, GATEWAY_B_OCID), (&self.b, GATEWAY_OCID)] {
            network
                .dev()
                .post(
                    &format!("/dev/reserves/{holder}/fund"),
                    json!({ "currency": currency, "amount": value }),
                )
                .await
                .with_context(|| format!("cannot fund reserve:{holder}"))?;
        }
        Ok(())
    }

    /// Stops both networks.
    pub async fn stop(self) {
        self.a.stop().await;
        self.b.stop().await;
    }
}

/// A loopback port free right now (bound, read and released).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot bind a loopback port")?
        .local_addr()?
        .port())
}
