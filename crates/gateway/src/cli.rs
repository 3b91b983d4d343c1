//! The gateway's command line, shared by the `opencharge-gateway` binary and
//! `opencharge gateway`: serve from a TOML config file and flags, or with generated loopback
//! dev defaults when given nothing; maintenance subcommands (`rotate-key`, `backup`) live in
//! files of their own (`cli/rotate_key.rs`, `ops/backup.rs`).

pub mod rotate_key;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::ops::logging::LogFormat;
use crate::{Gateway, GatewayConfig};

/// The gateway's whole command line: serve (no subcommand, as always) or a maintenance
/// subcommand.
///
/// Examples: `opencharge gateway --config gateway.toml`,
/// `opencharge gateway rotate-key --config gateway.toml`
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatewayArgs {
    /// Serving options (used when no subcommand is given).
    #[command(flatten)]
    pub serve: ServeArgs,
    /// A maintenance subcommand instead of serving.
    #[command(subcommand)]
    pub command: Option<GatewayCommand>,
}

/// Maintenance subcommands of the gateway.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum GatewayCommand {
    /// Replace the gateway's signing key on purpose (keeps the old key file as
    /// <key>.<unix time>.old and records the rotation in the database).
    RotateKey(rotate_key::RotateKeyArgs),
    /// Copy the database of a running (or stopped) gateway to a new file with SQLite's online
    /// backup API.
    Backup(crate::ops::backup::BackupArgs),
}

/// Runs the command line: serves, or runs the subcommand. Sets up logging first (`info` unless
/// `RUST_LOG` says otherwise).
pub async fn run(args: GatewayArgs) -> ExitCode {
    crate::ops::logging::init(args.serve.log_format, "info");
    match args.command {
        None => serve(args.serve).await,
        Some(GatewayCommand::RotateKey(rotate)) => rotate_key::run(rotate).await,
        Some(GatewayCommand::Backup(backup)) => crate::ops::backup::run(&backup),
    }
}

/// Serve the reference Opencharge Payment Gateway. With no flags it starts on 127.0.0.1:8700
/// with dev defaults (database and its key file in the working directory, /dev endpoints on).
///
/// Example: `opencharge gateway --config gateway.toml`
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (every key optional; see `GatewayConfig`). In a file,
    /// `dev_mode` and `allow_loopback_http` are off unless set.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:8700 (overrides the file).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// SQLite database path, or a postgres:// URL for a database shared by many instances
    /// (overrides the file).
    #[arg(long, value_parser = crate::database::Database::parse)]
    pub database: Option<crate::database::Database>,
    /// Key file holding the 64-hex private key; created if missing (overrides the file).
    /// Default: `<database without extension>.key` beside a SQLite database; required with
    /// PostgreSQL.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// This gateway's OCID (overrides the file).
    #[arg(long)]
    pub ocid: Option<u64>,
    /// Address of the metrics listener (/metrics, /healthz, /readyz), or "off" (overrides the
    /// file; default 127.0.0.1:9700).
    #[arg(long, value_name = "ADDR|off", value_parser = crate::ops::metrics::listen_setting::parse_arg)]
    pub metrics_listen: Option<crate::ops::metrics::listen_setting::ListenArg>,
    /// Log lines as human-readable text (colours only on a terminal) or one JSON object per
    /// line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl ServeArgs {
    /// The configuration these arguments describe: the file (or the dev defaults) with the
    /// flags applied on top.
    pub fn config(&self) -> Result<GatewayConfig, crate::config::ConfigError> {
        let mut config = match &self.config {
            Some(path) => GatewayConfig::from_file(path)?,
            None => GatewayConfig::dev_defaults(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(db) = &self.database {
            config.database = db.clone();
        }
        if let Some(key) = &self.key_file {
            config.key_file = Some(key.clone());
        }
        if let Some(ocid) = self.ocid {
            config.ocid = ocid;
        }
        if let Some(metrics_listen) = self.metrics_listen {
            config.metrics_listen = metrics_listen.0;
        }
        config.validate()?;
        Ok(config)
    }
}

/// Starts the gateway, prints what it is, and serves until Ctrl-C or SIGTERM. Exit code 2 for
/// a bad configuration, 1 when the gateway cannot start.
pub async fn serve(args: ServeArgs) -> ExitCode {
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let gateway = match Gateway::start(config).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: cannot start gateway: {e}");
            return ExitCode::from(1);
        }
    };
    let stop = shutdown_signal();
    // The banner is best effort: a closed stdout (a supervisor that stopped reading, `| head`)
    // must not stop a running gateway, so write errors are ignored instead of panicking.
    let mut banner = format!(
        "Opencharge gateway listening\n  OCID:       {}\n  endpoint:   {}\n  public key: {}\n  database:   {}\n",
        gateway.ocid(),
        gateway.endpoint(),
        gateway.public_key_hex(),
        // Never the password: the banner may end up in a terminal log or a ticket.
        gateway.state.config.database.redacted()
    );
    banner.push_str(&match gateway.metrics_addr {
        Some(addr) => format!("  metrics:    http://{addr}/metrics (also /healthz, /readyz)\n"),
        None => "  metrics:    off\n".to_string(),
    });
    if gateway.state.config.dev_mode {
        banner.push_str("  dev mode:   ON (/dev endpoints open; never use in production)\n");
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    stop.await;
    gateway.stop().await;
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM. The SIGTERM handler is installed when this is
/// called (not when first awaited), so a SIGTERM right after a banner that follows the call is
/// never lost. Call it inside the Tokio runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
