//! `opencharge gateway`: serves the reference Opencharge Payment Gateway, or runs one of its
//! maintenance subcommands (`rotate-key`, `backup`): the same command line as the `opencharge-gateway`
//! binary, from `opencharge_gateway::cli`.

use std::process::ExitCode;

pub use opencharge_gateway::cli::GatewayArgs;

/// Runs the gateway command line (logs on stderr in the chosen `--log-format`, `info` unless
/// `RUST_LOG` says otherwise).
pub async fn run(args: GatewayArgs) -> ExitCode {
    opencharge_gateway::cli::run(args).await
}
