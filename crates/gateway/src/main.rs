//! The `opencharge-gateway` binary: serve a gateway from a TOML config file and flags, or with
//! generated loopback dev defaults when given nothing.

use std::path::PathBuf;

use clap::Parser;
use opencharge_gateway::{Gateway, GatewayConfig};

/// Reference Opencharge Payment Gateway.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// TOML configuration file (every key optional; see GatewayConfig).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:8700 (overrides the file).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// SQLite database path (overrides the file).
    #[arg(long)]
    database: Option<PathBuf>,
    /// Key file holding the 64-hex private key; created if missing (overrides the file).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// This gateway's OCID (overrides the file).
    #[arg(long)]
    ocid: Option<u64>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => match GatewayConfig::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        None => GatewayConfig::dev_defaults(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(db) = args.database {
        config.database = db;
    }
    if let Some(key) = args.key_file {
        config.key_file = Some(key);
    }
    if let Some(ocid) = args.ocid {
        config.ocid = ocid;
    }
    let gateway = match Gateway::start(config).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: cannot start gateway: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    println!("Opencharge gateway listening");
    println!("  OCID:       {}", gateway.ocid());
    println!("  endpoint:   {}", gateway.endpoint());
    println!("  public key: {}", gateway.public_key_hex());
    if gateway.state.config.dev_mode {
        println!("  dev mode:   ON (/dev endpoints open; never use in production)");
    }
    let _ = tokio::signal::ctrl_c().await;
    gateway.stop().await;
    std::process::ExitCode::SUCCESS
}
