//! The `opencharge-gateway` binary: serve a gateway from a TOML config file and flags, or with
//! generated loopback dev defaults when given nothing, or run a maintenance subcommand
//! (`rotate-key`, `backup`; see [`opencharge_gateway::cli`]).

use clap::Parser;
use opencharge_gateway::cli::GatewayArgs;

/// Reference Opencharge Payment Gateway.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    gateway: GatewayArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match opencharge_gateway::limits::server_runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(opencharge_gateway::cli::run(args.gateway))
}
