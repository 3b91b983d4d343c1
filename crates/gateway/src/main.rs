//! The `opencharge-gateway` binary: serve a gateway from a TOML config file and flags, or with
//! generated loopback dev defaults when given nothing, or run a maintenance subcommand
//! (`rotate-key`; see [`opencharge_gateway::cli`]).

use clap::Parser;
use opencharge_gateway::cli::GatewayArgs;

/// Reference Opencharge Payment Gateway.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    gateway: GatewayArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    opencharge_gateway::cli::run(Args::parse().gateway).await
}
