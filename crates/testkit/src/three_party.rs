//! Test kit: three parties on loopback for third-party settlement (protocol notes §5.6
//! strategy 3). Our gateway A (a [`Network`]'s gateway, with its wallets on the real core),
//! a bank S (a second reference gateway playing the settlement provider: it holds A's funded
//! reserve `reserve:<A>`, and A lists it in `partners`), and the merchant acting as its own
//! Merchant Gateway G: its third-party payments settle only through S
//! (`settlement_providers = [S]`), and its orders accept only [`CARD_NETWORK_OCID`], a
//! network A has no relation with, so neither direct nor partner-reserve settlement applies
//! and A pays through `/payment/create` → S `/transfer/create` → `/payment/settle`.
//!
//! Ports are chosen up front so each party's directory can name the others before they start.
//! The merchant is published behind a [`DropProxy`] ([`ThreeParty::merchant_proxy`]): tests
//! lose G's answers on purpose (e.g. `POST /opencharge/payment/settle`) to stage a crash
//! between two steps.

use anyhow::Context;
use opencharge_gateway::config::{DirectoryEntry, PartnerConfig};
use opencharge_gateway::store::Transfer;
use opencharge_gateway::{Gateway, GatewayConfig, RunningGateway};
use opencharge_merchant::{DirectoryEntry as MerchantDirectoryEntry, MerchantConfig};

use crate::backend::GatewayHome;
use crate::drop_proxy::DropProxy;
use crate::network::{Network, NetworkBuilder};
use crate::{GATEWAY_OCID, MERCHANT_OCID};

/// The bank S's OCID.
pub const BANK_OCID: u64 = 900;
/// The network the merchant's orders accept (nobody here runs it).
pub const CARD_NETWORK_OCID: u64 = 950;

/// A free loopback port (bound and released: the party that takes it binds it again).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot pick a loopback port")?
        .local_addr()?
        .port())
}

/// Adjusts A's configuration.
pub type GatewayTweak = Box<dyn FnOnce(&mut GatewayConfig) + Send>;
/// Adjusts the merchant's configuration.
pub type MerchantTweak = Box<dyn Fn(&mut MerchantConfig) + Send + Sync>;

/// What a [`ThreeParty`] starts with.
pub struct ThreePartyOptions {
    /// Wallets opened on A at start ([`NetworkBuilder::wallets`]).
    pub wallets: usize,
    /// What each wallet is funded with (`"50.00 USD"`).
    pub funds: Option<String>,
    /// A's reserve at S, in USD cents.
    pub reserve_minor: i64,
    /// Adjusts A's configuration after the kit's settings.
    pub gateway_tweak: Option<GatewayTweak>,
    /// Adjusts the merchant's configuration after the kit's settings.
    pub merchant_tweak: Option<MerchantTweak>,
}

impl Default for ThreePartyOptions {
    fn default() -> Self {
        ThreePartyOptions {
            wallets: 1,
            funds: Some("50.00 USD".into()),
            reserve_minor: 100_000,
            gateway_tweak: None,
            merchant_tweak: None,
        }
    }
}

/// The three parties, running.
pub struct ThreeParty {
    /// A, its wallets and the merchant (G).
    pub network: Network,
    /// S, the bank; `None` while stopped.
    bank: Option<RunningGateway>,
    /// S's configuration (its port stays the same across restarts).
    bank_config: GatewayConfig,
    /// The proxy G is published behind.
    merchant_proxy: DropProxy,
    /// S's key file and database.
    _bank_home: GatewayHome,
}

impl ThreeParty {
    /// Starts S, then A and G (one wallet funded with 50.00 USD, A's reserve at S 1000.00
    /// USD).
    pub async fn start() -> anyhow::Result<ThreeParty> {
        Self::start_with(ThreePartyOptions::default()).await
    }

    /// Starts the three parties with `options`.
    pub async fn start_with(options: ThreePartyOptions) -> anyhow::Result<ThreeParty> {
        let (port_a, port_m) = (free_port()?, free_port()?);
        let base_path = GatewayConfig::default().base_path;
        let merchant_proxy = DropProxy::start().await?;
        merchant_proxy.set_upstream(([127, 0, 0, 1], port_m).into());
        let merchant_url = format!("{}{base_path}/metadata.json", merchant_proxy.url());
        let gateway_url = format!("http://127.0.0.1:{port_a}{base_path}/metadata.json");

        // S: resolves A (who calls it) and G (whom it pays and webhooks).
        let bank_home = GatewayHome::create().await?;
        let mut bank_config = bank_home.config();
        bank_config.ocid = BANK_OCID;
        bank_config.name = "Test Bank".into();
        bank_config.directory = vec![
            DirectoryEntry {
                ocid: GATEWAY_OCID,
                metadata_url: Some(gateway_url),
                metadata: None,
            },
            DirectoryEntry {
                ocid: MERCHANT_OCID,
                metadata_url: Some(merchant_url),
                metadata: None,
            },
        ];
        let bank = Gateway::start(bank_config.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the bank: {e}"))?;
        bank_config.listen = bank.addr;
        let reserve = format!("reserve:{GATEWAY_OCID}");
        let store = &bank.state.store;
        let now = bank.state.now();
        store
            .ensure_account(&reserve, "partner_reserve", "Reserve of gateway 200", now)
            .await?;
        store
            .ensure_account("funding:test", "funding", "Test funding", now)
            .await?;
        store
            .apply_transfers(
                "fund:reserve",
                &[Transfer {
                    from_account: "funding:test".into(),
                    to_account: reserve,
                    currency: "USD".into(),
                    minor: options.reserve_minor,
                }],
                now,
            )
            .await?;

        let bank_metadata = format!("{}/metadata.json", bank.endpoint());
        let merchant_bank = bank_metadata.clone();
        let merchant_tweak = options.merchant_tweak;
        let public_url = merchant_proxy.url();
        let gateway_tweak = options.gateway_tweak;
        let mut builder = NetworkBuilder::default()
            .wallets(options.wallets)
            .merchant_config(move |_, config| {
                config.listen = ([127, 0, 0, 1], port_m).into();
                config.public_url = Some(public_url.clone());
                config.accepts = vec![CARD_NETWORK_OCID];
                config.settlement_providers = Some(vec![BANK_OCID]);
                config.directory.push(MerchantDirectoryEntry {
                    ocid: BANK_OCID,
                    metadata_url: merchant_bank.clone(),
                });
                if let Some(tweak) = &merchant_tweak {
                    tweak(config);
                }
            })
            .gateway_config(move |config| {
                config.listen = ([127, 0, 0, 1], port_a).into();
                config.partners = vec![PartnerConfig { ocid: BANK_OCID }];
                config.directory.push(DirectoryEntry {
                    ocid: BANK_OCID,
                    metadata_url: Some(bank_metadata),
                    metadata: None,
                });
                if let Some(tweak) = gateway_tweak {
                    tweak(config);
                }
            });
        if let Some(funds) = &options.funds {
            builder = builder.fund(funds);
        }
        let network = match builder.start().await {
            Ok(network) => network,
            Err(e) => {
                bank.stop().await;
                return Err(e);
            }
        };
        Ok(ThreeParty {
            network,
            bank: Some(bank),
            bank_config,
            merchant_proxy,
            _bank_home: bank_home,
        })
    }

    /// S, the bank. Panics while it is stopped ([`ThreeParty::stop_bank`]).
    pub fn bank(&self) -> &RunningGateway {
        self.bank.as_ref().expect("the bank is stopped")
    }

    /// The proxy in front of the merchant (G): lose its answers with
    /// [`DropProxy::drop_answers`].
    pub fn merchant_proxy(&self) -> &DropProxy {
        &self.merchant_proxy
    }

    /// A's reserve account at S.
    pub fn reserve_account(&self) -> String {
        format!("reserve:{GATEWAY_OCID}")
    }

    /// The USD balance of `account` at S, in cents (0 when it has none).
    pub async fn bank_usd(&self, account: &str) -> anyhow::Result<i64> {
        Ok(self
            .bank()
            .state
            .store
            .balances(account)
            .await?
            .into_iter()
            .find(|b| b.currency == "USD")
            .map_or(0, |b| b.minor))
    }

    /// Stops S (its database and key stay).
    pub async fn stop_bank(&mut self) {
        if let Some(bank) = self.bank.take() {
            bank.stop().await;
        }
    }

    /// Starts S again on its port, database and key.
    pub async fn restart_bank(&mut self) -> anyhow::Result<()> {
        self.stop_bank().await;
        let bank = Gateway::start(self.bank_config.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot restart the bank: {e}"))?;
        self.bank = Some(bank);
        Ok(())
    }

    /// Stops every party.
    pub async fn stop(mut self) {
        self.stop_bank().await;
        self.network.stop().await;
    }
}
