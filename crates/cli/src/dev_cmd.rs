//! `opencharge dev`: drives a dev-mode gateway's unauthenticated `/dev` endpoints from the
//! terminal, so the by-hand path needs no curl: create a user account, fund it, and hand its
//! one-time enrollment code to a file (never to the screen or a command line) for
//! `opencharge wallet register`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use opencharge_protocol::money::{Amount, Currency};
use opencharge_testkit::DevClient;

/// Where the commands find the gateway unless told otherwise (`opencharge gateway`'s default
/// endpoint and the one in `examples/gateway.toml`).
pub const DEFAULT_GATEWAY_URL: &str = "http://127.0.0.1:8700/opencharge";

/// Timeout of one request to the gateway's dev API.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `dev account` keeps trying a gateway that refuses connections (one that is still
/// starting, e.g. launched with `&` on the line before).
const STARTUP_WAIT: Duration = Duration::from_secs(15);

/// Drive a dev-mode gateway's /dev endpoints (loopback development only: they create money).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    opencharge dev account --name Alice --fund 50.00 --code-file alice.code\n  \
    opencharge wallet --data-dir alice --gateway http://127.0.0.1:8700/opencharge --insecure-loopback register < alice.code")]
pub struct DevArgs {
    #[command(subcommand)]
    command: DevCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DevCommand {
    /// Create a user account at the gateway, optionally fund it, and write its one-time
    /// enrollment code (valid 24 h) to a file for `opencharge wallet register`.
    Account(AccountArgs),
}

/// `dev account` options.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The enrollment code registers one device to the account. It is \
    written to --code-file (created with mode 0600 on Unix) so it never shows on the screen, in \
    the shell history or in `ps`; without --code-file it is printed. A gateway that refuses \
    connections (still starting) is tried again for 15 s.\n\n\
    Examples:\n  \
    opencharge dev account --name Alice --fund 50.00 --code-file alice.code\n  \
    opencharge dev account --name Bob --fund 20000 --currency UGX --gateway http://127.0.0.1:8700/opencharge"
)]
struct AccountArgs {
    /// The account holder's name (1 to 100 characters).
    #[arg(long, value_name = "NAME")]
    name: String,
    /// Credit the new account with this exact amount from the dev funding source.
    #[arg(long, value_name = "AMOUNT", value_parser = parse_amount)]
    fund: Option<String>,
    /// ISO 4217 currency of --fund.
    #[arg(long, value_name = "CODE", default_value = "USD", value_parser = parse_currency)]
    currency: String,
    /// Write the enrollment code to this file instead of printing it.
    #[arg(long, value_name = "FILE")]
    code_file: Option<PathBuf>,
    /// The gateway's API endpoint (its dev mode must be on).
    #[arg(long, value_name = "URL", default_value = DEFAULT_GATEWAY_URL)]
    gateway: String,
}

/// Parses an exact decimal amount.
fn parse_amount(text: &str) -> Result<String, String> {
    Amount::parse(text)
        .map(|a| a.as_str().to_string())
        .map_err(|e| format!("{text:?} is not an exact amount (e.g. 50.00): {e}"))
}

/// Parses an ISO 4217 code.
fn parse_currency(text: &str) -> Result<String, String> {
    Currency::parse(text)
        .map(|c| c.code().to_string())
        .map_err(|e| format!("{text:?} is not an ISO 4217 currency: {e}"))
}

/// Runs the subcommand: exit 0 on success, 1 when the gateway refused or cannot be reached.
pub async fn run(args: DevArgs) -> ExitCode {
    crate::ui::init_logs("warn");
    let result = match args.command {
        DevCommand::Account(account) => account_new(account).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn account_new(args: AccountArgs) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(&args.gateway)
        .map_err(|e| anyhow!("--gateway {:?} is not a URL: {e}", args.gateway))?;
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("cannot build the HTTP client")?;
    let dev = DevClient::new(http, url.as_str());
    let hint = || {
        format!(
            "is a gateway with dev_mode = true running at {}? (`opencharge gateway --config \
             examples/gateway.toml`)",
            args.gateway
        )
    };
    let started = tokio::time::Instant::now();
    let account = loop {
        match dev.new_account(&args.name).await {
            Ok(account) => break account,
            Err(e) if refused(&e) && started.elapsed() < STARTUP_WAIT => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.context(format!("creating the account ({})", hint()))),
        }
    };
    println!("account: {}", account.account_id);
    if let Some(amount) = &args.fund {
        dev.fund(&account.account_id, &format!("{amount} {}", args.currency))
            .await
            .with_context(|| format!("funding {} ({})", account.account_id, hint()))?;
        println!("  funded: {amount} {}", args.currency);
    }
    match &args.code_file {
        Some(path) => {
            write_secret(path, &account.enrollment_code)?;
            println!(
                "  enrollment code: in {} (one device, valid 24 h)",
                path.display()
            );
        }
        None => println!(
            "  enrollment code: {} (one device, valid 24 h)",
            account.enrollment_code
        ),
    }
    Ok(())
}

/// True when `e` is a refused or failed connection (nothing was sent, so trying again is safe).
fn refused(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|cause| cause.downcast_ref::<reqwest::Error>())
        .any(reqwest::Error::is_connect)
}

/// Writes `secret` and a newline to `path`, readable by its owner only on Unix.
fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write the enrollment code to {}", path.display()))?;
    writeln!(file, "{secret}")
        .with_context(|| format!("cannot write the enrollment code to {}", path.display()))
}
