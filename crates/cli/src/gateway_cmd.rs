//! `opencharge gateway`: serves the reference Opencharge Payment Gateway, or runs one of its
//! maintenance subcommands (`rotate-key`): the same command line as the `opencharge-gateway`
//! binary, from `opencharge_gateway::cli`.

use std::process::ExitCode;

pub use opencharge_gateway::cli::GatewayArgs;

/// Serves the gateway until Ctrl-C or SIGTERM (or runs the subcommand), with `info` logs on
/// stderr unless `RUST_LOG` says otherwise.
pub async fn run(args: GatewayArgs) -> ExitCode {
    crate::ui::init_logs("info");
    opencharge_gateway::cli::run(args).await
}
