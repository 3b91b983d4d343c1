//! The `opencharge` command: parses the command line and hands each subcommand to its module
//! (`demo`, `sandbox`, `gateway`, `merchant`, `wallet`, `dev`, `proto`).

mod demo;
mod dev_cmd;
mod gateway_cmd;
mod merchant_cmd;
mod proto;
mod sandbox;
mod ui;
mod wallet_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Opencharge wallet core tools: a whole payment on loopback in one command, the servers one by
/// one, a terminal wallet on the real core, and protocol tools for integrators.
#[derive(Debug, Parser)]
#[command(name = "opencharge", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run whole payments end to end on loopback: an embedded gateway and merchant, a demo
    /// account and a wallet on the real core.
    Demo(demo::DemoArgs),
    /// Run a gateway and a merchant wired together on loopback (dev endpoints on) for app
    /// development and binding tests; prints one JSON line describing them.
    Sandbox(sandbox::SandboxArgs),
    /// Serve the reference Opencharge Payment Gateway (or rotate its key: `rotate-key`).
    Gateway(gateway_cmd::GatewayArgs),
    /// Serve a merchant, or drive a running one (scan a wallet QR, create an order).
    Merchant(merchant_cmd::MerchantArgs),
    /// A terminal wallet on the real wallet core.
    Wallet(wallet_cmd::WalletArgs),
    /// Create and fund accounts at a dev-mode gateway (loopback development only).
    Dev(dev_cmd::DevArgs),
    /// Protocol tools on stdin/stdout: keys, canonical JSON, signatures, request headers, QR.
    Proto(proto::ProtoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Proto(args) = cli.command {
        return proto::run(args);
    }
    let runtime = match opencharge_gateway::limits::server_runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Sandbox(args) => sandbox::run(args).await,
            Command::Gateway(args) => gateway_cmd::run(args).await,
            Command::Merchant(args) => merchant_cmd::run(args).await,
            Command::Wallet(args) => wallet_cmd::run(args).await,
            Command::Dev(args) => dev_cmd::run(args).await,
            Command::Proto(_) => unreachable!("handled above"),
        }
    })
}
