//! `opencharge gateway`: serves the reference Opencharge Payment Gateway (the same command line
//! as the `opencharge-gateway` binary, from `opencharge_gateway::cli`).

use std::process::ExitCode;

pub use opencharge_gateway::cli::ServeArgs as GatewayArgs;

/// Serves the gateway until Ctrl-C or SIGTERM, with `info` logs on stderr unless `RUST_LOG`
/// says otherwise.
pub async fn run(args: GatewayArgs) -> ExitCode {
    crate::ui::init_logs("info");
    opencharge_gateway::cli::serve(args).await
}
