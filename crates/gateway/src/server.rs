//! Assembles and runs a gateway: loads or generates the key, opens storage and checks that
//! it belongs to that key ([`crate::identity`]), builds the
//! resolver, mounts the routes of [`crate::api::build_router`], starts the background workers
//! (expiry and webhooks, push wake-ups) and, on PostgreSQL, the task that forwards other
//! instances' commits into the hub ([`crate::signals`]), and serves through [`crate::net`] (the accept loop
//! with the `[limits]`).

use std::net::SocketAddr;
use std::sync::Arc;

use opencharge_protocol::keys::PrivateKey;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::config::GatewayConfig;
use crate::resolver::{DirectoryResolver, OcidResolver};
use crate::state::{AppState, EventHub, Inner};
use crate::store::Store;

pub use crate::api::{build_router, MAX_BODY_BYTES};

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The key file cannot be read, holds no key, or cannot be created.
    #[error(transparent)]
    Key(#[from] opencharge_peer::key_file::KeyFileError),
    /// Storage problem.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The database was created under another key or OCID (see [`crate::identity`]).
    #[error(transparent)]
    Identity(Box<opencharge_peer::identity::IdentityMismatch>),
    /// Directory problem.
    #[error("directory: {0}")]
    Directory(String),
    /// A `[push.*]` sender cannot be set up (unreadable service account or `.p8` key, ...).
    #[error("push: {0}")]
    Push(#[from] crate::push::PushSetupError),
    /// Could not bind or serve.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
}

impl From<opencharge_peer::identity::IdentityMismatch> for StartError {
    fn from(e: opencharge_peer::identity::IdentityMismatch) -> Self {
        StartError::Identity(Box::new(e))
    }
}

/// Entry point for starting gateways.
pub struct Gateway;

/// A gateway serving in the background. Dropping it does not stop it; call [`RunningGateway::stop`].
pub struct RunningGateway {
    /// The bound address.
    pub addr: SocketAddr,
    /// The bound address of the metrics listener (`None`: `metrics_listen = "off"`).
    pub metrics_addr: Option<SocketAddr>,
    /// Shared state (tests use it to reach the store and the clock).
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    worker: JoinHandle<()>,
    push_worker: JoinHandle<()>,
    third_party_worker: JoinHandle<()>,
    metrics_server: Option<JoinHandle<()>>,
    /// Forwards the store's signals (other instances' commits) into the hub; `None` on SQLite.
    signals: Option<JoinHandle<()>>,
}

impl RunningGateway {
    /// The published `config.endpoint` (public base + base path).
    pub fn endpoint(&self) -> &str {
        &self.state.endpoint
    }

    /// The gateway's OCID.
    pub fn ocid(&self) -> u64 {
        self.state.config.ocid
    }

    /// The gateway's 128-hex public key.
    pub fn public_key_hex(&self) -> &str {
        &self.state.public_key_hex
    }

    /// Stops serving and the workers, and waits for them.
    pub async fn stop(self) {
        // End open event streams first: graceful shutdown waits for every open response.
        self.state.hub.close();
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        let _ = self.worker.await;
        let _ = self.push_worker.await;
        let _ = self.third_party_worker.await;
        if let Some(metrics) = self.metrics_server {
            let _ = metrics.await;
        }
        if let Some(signals) = self.signals {
            let _ = signals.await;
        }
    }
}

/// Loads the key from [`GatewayConfig::key_path`] (`key_file`, else the database's own key
/// file beside it), creating it atomically with a fresh key if missing. The database only
/// opens in files, so a gateway never runs on an ephemeral key.
pub fn load_or_create_key(config: &GatewayConfig) -> Result<PrivateKey, StartError> {
    Ok(opencharge_peer::key_file::load_or_create_key(
        &config.key_path(),
    )?)
}

impl Gateway {
    /// Starts a gateway with the system clock.
    pub async fn start(config: GatewayConfig) -> Result<RunningGateway, StartError> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Starts a gateway with the given clock (tests pass an adjustable one).
    pub async fn start_with_clock(
        config: GatewayConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<RunningGateway, StartError> {
        config.validate()?;
        let key = load_or_create_key(&config)?;
        let store: Arc<dyn Store> =
            crate::database::open_store(&config.database, config.database_pool_size).await?;
        crate::identity::bind_at_start(store.as_ref(), &config, &key, clock.now()).await?;
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let metrics_listener =
            crate::ops::metrics::MetricsListener::bind(config.metrics_listen).await?;
        let metrics_addr = metrics_listener.local_addr()?;
        let public_base = config.public_base(addr);
        let endpoint = format!("{public_base}{}", config.base_path);
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StartError::Directory(e.to_string()))?;
        let push = crate::push::Pushers::from_config(&config.push, &http)?;
        let resolver: Arc<dyn OcidResolver> = Arc::new(
            DirectoryResolver::new(&config, http.clone(), clock.clone())
                .map_err(|e| StartError::Directory(e.to_string()))?
                .with_own(&config, &key, &endpoint),
        );
        let public_key_hex = key.public_key().to_hex();
        let rate_limits = crate::api::rate_limit::RateLimiters::new(&config.rate_limits);
        let state = AppState(Arc::new(Inner {
            config,
            key,
            public_key_hex,
            public_base,
            endpoint,
            store,
            resolver,
            clock,
            hub: EventHub::default(),
            http,
            push,
            push_counters: crate::push::worker::PushCounters::default(),
            push_pass: tokio::sync::Mutex::new(()),
            rate_limits,
            metrics: crate::ops::metrics::Metrics::default(),
        }));

        let router = build_router(state.clone());
        let (shutdown, mut rx) = watch::channel(false);
        let mut server_rx = shutdown.subscribe();
        let server_state = state.clone();
        let server = tokio::spawn(crate::net::serve(
            listener,
            router,
            server_state,
            async move {
                let _ = server_rx.wait_for(|stop| *stop).await;
            },
        ));
        let metrics_server = metrics_listener.spawn(state.clone(), shutdown.subscribe());
        let worker_state = state.clone();
        let worker = tokio::spawn(async move {
            crate::webhook::run_worker(worker_state, async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await;
        });
        let (push_state, mut push_rx) = (state.clone(), shutdown.subscribe());
        let push_worker = tokio::spawn(async move {
            crate::push::worker::run_worker(push_state, async move {
                let _ = push_rx.wait_for(|stop| *stop).await;
            })
            .await;
        });
        // Third-party settlement jobs left to retry, or by a stopped instance.
        let (job_state, mut job_rx) = (state.clone(), shutdown.subscribe());
        let third_party_worker = tokio::spawn(async move {
            crate::third_party::run_worker(job_state, async move {
                let _ = job_rx.wait_for(|stop| *stop).await;
            })
            .await;
        });
        // Another instance's commits wake this instance's streams and workers (PostgreSQL).
        let signals = state.store.signals().map(|receiver| {
            let mut stop = shutdown.subscribe();
            tokio::spawn(crate::signals::forward(
                receiver,
                state.hub.clone(),
                async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                },
            ))
        });
        tracing::info!(
            %addr,
            endpoint = %state.endpoint,
            ocid = state.config.ocid,
            database = %state.config.database.redacted(),
            metrics = ?metrics_addr,
            "gateway started"
        );
        Ok(RunningGateway {
            addr,
            metrics_addr,
            state,
            shutdown,
            server,
            worker,
            push_worker,
            third_party_worker,
            metrics_server,
            signals,
        })
    }
}
