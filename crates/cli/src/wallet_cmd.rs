//! `opencharge wallet`: a terminal wallet on the real wallet core (`opencharge_wallet::Wallet`,
//! keys in the core's file key store under the data dir). Registers the device, shows a
//! payment QR and pays the order a merchant posts to it, scans merchant QRs and checkout
//! links, and lists history and balances. Money stays in exact decimal strings.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use opencharge_protocol::qr::{parse_payload_unchecked, OcidUri};
use opencharge_wallet::{
    ConnectionState, DirectoryEntry, HistoryQuery, InventorySelection, Money, Payee, PaymentPrompt,
    PaymentStatus, PaymentStatusUpdate, Receipt, ReceiveAddress, ScanResult, Wallet, WalletConfig,
    WalletError, WalletListener,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// File in the data dir that remembers the gateway settings between runs.
const SETTINGS_FILE: &str = "cli-wallet.toml";

/// How often `pay` also asks the gateway for prompts, besides the event stream.
const PROMPT_POLL: Duration = Duration::from_secs(5);

/// Pages of 100 receipts `history` pulls from the gateway before listing.
const HISTORY_PAGES: i32 = 5;

/// A terminal wallet on the real wallet core.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The gateway settings are saved in DIR/cli-wallet.toml; later runs may leave them \
    out, and a run that passes some of them (e.g. only --gateway) keeps the others.\n\n\
    Examples:\n  \
    opencharge wallet --data-dir ./alice --gateway http://127.0.0.1:8700/opencharge --insecure-loopback \\\n    \
    --merchant-directory 500=http://127.0.0.1:8710/opencharge/metadata.json register < alice.code\n  \
    opencharge wallet --data-dir ./alice pay\n  \
    opencharge wallet --data-dir ./alice scan '<merchant QR text or checkout link>' --yes\n  \
    opencharge wallet --data-dir ./alice history\n  \
    opencharge wallet --data-dir ./alice balance\n  \
    opencharge wallet --data-dir ./bob receive\n  \
    opencharge wallet --data-dir ./alice send '<receive QR text or opencharge: link>' --amount 5.00 --currency USD"
)]
pub struct WalletArgs {
    /// The wallet's directory: database, device key (keys/) and saved settings. Required.
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The gateway's API endpoint, e.g. https://api.wallet.example/opencharge. Required on the
    /// first run; saved for later runs.
    #[arg(long, value_name = "URL", global = true)]
    gateway: Option<String>,
    /// Pin the gateway's OCID: its metadata must name it.
    #[arg(long, value_name = "OCID", global = true,
          value_parser = clap::value_parser!(i64).range(0..))]
    gateway_ocid: Option<i64>,
    /// Where to find a merchant's metadata, to verify its orders locally. Repeatable.
    #[arg(
        long = "merchant-directory",
        value_name = "OCID=METADATA_URL",
        value_parser = parse_directory_entry,
        global = true
    )]
    merchant_directory: Vec<DirectoryEntry>,
    /// Allow plain http:// to loopback hosts (local development only).
    #[arg(long, global = true)]
    insecure_loopback: bool,
    /// When a payment or decline was sent but its answer was lost: how long to wait for the
    /// outcome before exiting with code 3 (the wallet keeps asking on later runs).
    #[arg(long, value_name = "SECS", default_value_t = 120, global = true)]
    outcome_wait: u64,
    #[command(subcommand)]
    command: WalletCommand,
}

#[derive(Debug, clap::Subcommand)]
enum WalletCommand {
    /// Register this device's key with the gateway using a one-time enrollment code, read
    /// from OPENCHARGE_ENROLLMENT_CODE, else from stdin when it is not a terminal, else asked
    /// for. Never on the command line: other users see it in `ps`.
    #[command(
        after_help = "The enrollment code comes from the wallet operator (a dev gateway's \
        `opencharge dev account --code-file FILE` makes one).\n\n\
        Examples:\n  \
        opencharge wallet --data-dir ./alice --gateway http://127.0.0.1:8700/opencharge --insecure-loopback register < alice.code\n  \
        OPENCHARGE_ENROLLMENT_CODE=\"$(cat alice.code)\" opencharge wallet --data-dir ./alice register\n  \
        # asks for it\n  \
        opencharge wallet --data-dir ./alice register"
    )]
    Register {
        /// Refused: a code on the command line is visible to every user in `ps`.
        #[arg(value_name = "ENROLLMENT_CODE", hide = true)]
        on_command_line: Option<String>,
    },
    /// Show a payment QR (also printed as text after `QR: `) until it expires; when a
    /// merchant posts an order to it, show the order and ask to pay. Exit 0 when paid.
    #[command(
        after_help = "When the payment was sent but the gateway's answer was lost, it says \
        so and waits up to --outcome-wait seconds (2 minutes) for the outcome (the decision is saved \
        and never paid twice).\n\n\
        Exit codes: 0 paid; 1 failed, declined or not paid; 2 usage error; 3 sent but the outcome is \
        still pending (check it later with `history`).\n\n\
        Examples:\n  \
        opencharge wallet --data-dir ./alice pay\n  \
        # confirm without asking (scripts, tests)\n  \
        opencharge wallet --data-dir ./alice pay --yes"
    )]
    Pay {
        /// Pay without asking.
        #[arg(long)]
        yes: bool,
        /// Print only the QR text, not the QR code drawn in the terminal.
        #[arg(long)]
        no_qr: bool,
    },
    /// Scan a merchant's order or inventory QR, or open a checkout link; show the order and
    /// ask to pay. Exit 0 when paid (or when an inventory was only listed).
    #[command(
        after_help = "Exit codes as for `pay`: 0 paid; 1 failed or not paid; 2 usage \
        error; 3 sent but the outcome is still pending.\n\n\
        Examples:\n  \
        opencharge wallet --data-dir ./alice scan '{\"ocid\":500,\"order\":\"http://127.0.0.1:8710/opencharge/orders/ord_…\",\"expiresAt\":1767225600}'\n  \
        opencharge wallet --data-dir ./alice scan http://127.0.0.1:8700/opencharge/checkout/cs_… --yes\n  \
        # an inventory QR: pick items\n  \
        opencharge wallet --data-dir ./alice scan \"$(cat inventory-qr.txt)\" --pick tea:2 --pick cake:1"
    )]
    Scan {
        /// The scanned text: a merchant QR payload or a checkout link.
        #[arg(value_name = "TEXT")]
        text: String,
        /// Pay without asking.
        #[arg(long)]
        yes: bool,
        /// For an inventory QR: an item to order, `id:quantity`. Repeatable.
        #[arg(long = "pick", value_name = "ID:QTY", value_parser = parse_pick)]
        picks: Vec<InventorySelection>,
    },
    /// Pay a person: scan their receive code (`{"type":"ocid_transfer",…}`) or open their
    /// `opencharge:` link with `gateway=`, show who, at which gateway, the amount and the
    /// memo, then ask to pay. Exit 0 when paid.
    #[command(
        after_help = "The amount comes from the code when it carries one (a link with \
        amount= and currency=); otherwise give it with --amount and --currency. A --memo \
        replaces the code's memo (1 to 256 bytes). Your gateway writes and signs the order; \
        the wallet checks it names this person, amount and memo before paying.\n\n\
        Exit codes as for `pay`: 0 paid; 1 failed or not paid; 2 usage error; 3 sent but the \
        outcome is still pending.\n\n\
        Examples:\n  \
        opencharge wallet --data-dir ./alice send '{\"type\":\"ocid_transfer\",\"ocid\":200001,\"gateway\":200}' --amount 5.00 --currency USD --memo lunch\n  \
        opencharge wallet --data-dir ./alice send 'opencharge:200001?gateway=200&amount=5.00&currency=USD&memo=lunch' --yes"
    )]
    Send {
        /// The recipient's receive QR text or `opencharge:` link (from `wallet receive`).
        #[arg(value_name = "TEXT")]
        text: String,
        /// The amount to send, e.g. 5.00 (when the code carries none).
        #[arg(long, value_name = "AMOUNT", requires = "currency")]
        amount: Option<String>,
        /// The ISO 4217 currency of --amount, e.g. USD.
        #[arg(long, value_name = "CODE", requires = "amount")]
        currency: Option<String>,
        /// A note for the recipient (replaces the code's memo).
        #[arg(long, value_name = "TEXT")]
        memo: Option<String>,
        /// Pay without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Show this account's receive QR (drawn in the terminal, its text after `QR: `), for
    /// another wallet to scan and pay; with --amount and --currency (and --memo) also the
    /// `opencharge:` link that asks for that amount.
    #[command(
        after_help = "The QR names this account's OCID at its gateway; whoever scans it \
        chooses the amount. The link (`URI: `) carries the amount and memo too.\n\n\
        Examples:\n  \
        opencharge wallet --data-dir ./bob receive\n  \
        opencharge wallet --data-dir ./bob receive --amount 5.00 --currency USD --memo lunch --no-qr"
    )]
    Receive {
        /// Ask for this amount, e.g. 5.00 (in the link).
        #[arg(long, value_name = "AMOUNT", requires = "currency")]
        amount: Option<String>,
        /// The ISO 4217 currency of --amount, e.g. USD.
        #[arg(long, value_name = "CODE", requires = "amount")]
        currency: Option<String>,
        /// A note for the payer (in the link).
        #[arg(long, value_name = "TEXT", requires = "amount")]
        memo: Option<String>,
        /// Print only the QR text, not the QR code drawn in the terminal.
        #[arg(long)]
        no_qr: bool,
    },
    /// List payments, newest first (pulls new ones from the gateway first).
    #[command(after_help = "Example:\n  opencharge wallet --data-dir ./alice history --limit 10")]
    History {
        /// At most this many (1-200).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i32).range(1..=200))]
        limit: i32,
        /// Only the local database, no network.
        #[arg(long)]
        offline: bool,
    },
    /// Show the account's balances.
    #[command(after_help = "Example:\n  opencharge wallet --data-dir ./alice balance")]
    Balance,
}

/// The gateway settings remembered in the data dir.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    gateway_url: String,
    #[serde(default)]
    gateway_ocid: Option<i64>,
    #[serde(default)]
    insecure_loopback: bool,
    #[serde(default)]
    directory: Vec<SavedEntry>,
}

/// A saved directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedEntry {
    ocid: i64,
    metadata_url: String,
}

/// Parses `OCID=URL`.
fn parse_directory_entry(text: &str) -> Result<DirectoryEntry, String> {
    let (ocid, url) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not OCID=METADATA_URL"))?;
    let ocid = ocid
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|ocid| *ocid >= 0)
        .ok_or_else(|| format!("{text:?}: {ocid:?} is not an OCID (a whole number)"))?;
    Ok(DirectoryEntry {
        ocid,
        metadata_url: url.trim().to_string(),
    })
}

/// Parses `id:quantity`.
fn parse_pick(text: &str) -> Result<InventorySelection, String> {
    let (id, quantity) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not ID:QTY (e.g. tea:2)"))?;
    let quantity = quantity
        .parse::<i32>()
        .ok()
        .filter(|q| *q >= 1)
        .ok_or_else(|| format!("{text:?}: quantity must be a whole number >= 1"))?;
    if id.is_empty() {
        return Err(format!("{text:?}: the item id is empty"));
    }
    Ok(InventorySelection {
        id: id.to_string(),
        quantity,
    })
}

/// How a subcommand failed: a usage error (exit 2) or a failed operation (exit 1).
enum Failure {
    Usage(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Failed(e)
    }
}

/// Exit code of `pay` and `scan` when a payment was sent but its outcome is still unknown
/// after `--outcome-wait` (distinct from 1, failed, and 2, usage error).
const EXIT_PENDING: u8 = 3;

/// What this run talks to (for error messages that name it) and how long it waits for a
/// lost answer's outcome.
struct RunContext {
    gateway_url: String,
    data_dir: PathBuf,
    outcome_wait: Duration,
}

static CONTEXT: OnceLock<RunContext> = OnceLock::new();

/// A failed core call, with what was being done, for people ([`describe`]).
fn core(what: &str) -> impl FnOnce(WalletError) -> Failure + '_ {
    move |e| Failure::Failed(anyhow!("{what}: {}", describe(&e)))
}

/// A core error for people: what failed, the URL, file or address involved, and what to do.
fn describe(e: &WalletError) -> String {
    let (gateway, dir) = match CONTEXT.get() {
        Some(c) => (c.gateway_url.clone(), c.data_dir.display().to_string()),
        None => ("the gateway".to_string(), "DIR".to_string()),
    };
    match e {
        WalletError::Network { reason } => format!(
            "cannot reach the gateway at {gateway}: {reason}. Check the address (--gateway) and \
             the network connection, then try again"
        ),
        WalletError::Tls {
            failure,
            host,
            reason,
        } => format!(
            "the TLS certificate of {host} was refused ({failure:?}): {reason}. Retrying does \
             not help: the gateway's operator must fix its certificate"
        ),
        WalletError::OutcomePending { prompt_id, reason } => format!(
            "the outcome of {prompt_id} is not known yet: {reason}. Check it later with \
             `opencharge wallet --data-dir {dir} history`"
        ),
        WalletError::Gateway {
            code,
            raw_code,
            reason,
            http_status: status,
            ..
        } => {
            use opencharge_wallet::GatewayErrorCode as Code;
            let hint = match code {
                Code::InsufficientFunds => ". Top up the account, then pay again",
                Code::SessionExpired | Code::OrderExpired => ". Ask the merchant for a new order",
                Code::InvalidSignature | Code::TimestampExpired | Code::NonceReused
                    if *status == 401 =>
                {
                    ". Check this computer's clock; if it is right, register the device again"
                }
                Code::Unknown if raw_code == "ENROLLMENT_INVALID" => {
                    ". Ask the wallet operator for a new enrollment code"
                }
                Code::RateLimited => ". Wait a little, then try again",
                _ if *status >= 500 => ". The gateway failed; try again later",
                _ => "",
            };
            format!("the gateway at {gateway} refused: {reason} ({raw_code}, HTTP {status}){hint}")
        }
        WalletError::InvalidInput { reason } => reason.clone(),
        WalletError::Storage { reason } if reason.contains(&dir) => reason.clone(),
        WalletError::Storage { reason } => {
            format!("the wallet's storage in {dir} failed: {reason}")
        }
        WalletError::Crypto { reason } => format!("a signature check failed: {reason}"),
        WalletError::KeyStorage { reason } => format!(
            "the device key in {dir}/keys cannot be used: {reason}. Check the files there and \
             their permissions, or use another --data-dir"
        ),
        WalletError::Cancelled => "cancelled".to_string(),
        WalletError::Internal { reason } => {
            format!("internal error in the wallet core: {reason} (please report it)")
        }
    }
}

/// Runs the subcommand.
pub async fn run(args: WalletArgs) -> ExitCode {
    crate::ui::init_logs("warn");
    match run_inner(args).await {
        Ok(code) => code,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_inner(args: WalletArgs) -> Result<ExitCode, Failure> {
    let Some(data_dir) = args.data_dir.clone() else {
        return Err(Failure::Usage(
            "--data-dir DIR is required (the wallet's database and keys live there)".into(),
        ));
    };
    let code = match &args.command {
        WalletCommand::Register { on_command_line } => {
            Some(read_enrollment_code(on_command_line.is_some())?)
        }
        _ => None,
    };
    let (settings, changed) = settings(&args, &data_dir)?;
    let _ = CONTEXT.set(RunContext {
        gateway_url: settings.gateway_url.clone(),
        data_dir: data_dir.clone(),
        outcome_wait: Duration::from_secs(args.outcome_wait),
    });
    let wallet = open(&settings, &data_dir).await?;
    // Saved only once the core accepted them.
    if changed {
        save_settings(&settings, &data_dir)?;
    }
    let outcome = match args.command {
        WalletCommand::Register { .. } => match code {
            Some(code) => register(&wallet, code).await,
            None => Err(Failure::Usage("no enrollment code was read".into())),
        },
        WalletCommand::Pay { yes, no_qr } => pay(&wallet, yes, no_qr).await,
        WalletCommand::Scan { text, yes, picks } => scan(&wallet, text, yes, picks).await,
        WalletCommand::Send {
            text,
            amount,
            currency,
            memo,
            yes,
        } => send(&wallet, text, amount.zip(currency), memo, yes).await,
        WalletCommand::Receive {
            amount,
            currency,
            memo,
            no_qr,
        } => receive(&wallet, amount.zip(currency), memo, no_qr).await,
        WalletCommand::History { limit, offline } => history(&wallet, limit, offline).await,
        WalletCommand::Balance => balance(&wallet).await,
    };
    // The last reference: dropping it closes the wallet's database.
    drop(wallet);
    outcome
}

/// The settings of this run: the saved ones (if any) with the flags of this run on top, so a
/// run that passes only `--gateway` keeps the saved directory, OCID pin and loopback
/// permission; and whether the flags changed them (then they are saved).
fn settings(args: &WalletArgs, data_dir: &Path) -> Result<(Settings, bool), Failure> {
    let path = data_dir.join(SETTINGS_FILE);
    let saved: Option<Settings> = match std::fs::read_to_string(&path) {
        Ok(text) => Some(toml::from_str(&text).map_err(|e| {
            Failure::Usage(format!(
                "{} is not valid: {e}. Fix it, or delete it and pass --gateway again",
                path.display()
            ))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Failure::Failed(anyhow!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let mut settings = match (&args.gateway, &saved) {
        (Some(url), Some(saved)) => Settings {
            gateway_url: url.clone(),
            ..saved.clone()
        },
        (Some(url), None) => Settings {
            gateway_url: url.clone(),
            ..Settings::default()
        },
        (None, Some(saved)) => saved.clone(),
        (None, None) => {
            return Err(Failure::Usage(format!(
                "--gateway URL is required (no settings saved in {} yet)",
                data_dir.display()
            )))
        }
    };
    if args.gateway_ocid.is_some() {
        settings.gateway_ocid = args.gateway_ocid;
    }
    settings.insecure_loopback |= args.insecure_loopback;
    for entry in &args.merchant_directory {
        settings.directory.retain(|e| e.ocid != entry.ocid);
        settings.directory.push(SavedEntry {
            ocid: entry.ocid,
            metadata_url: entry.metadata_url.clone(),
        });
    }
    let changed = saved.as_ref() != Some(&settings);
    Ok((settings, changed))
}

/// Remembers `settings` in the data dir for later runs.
fn save_settings(settings: &Settings, data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join(SETTINGS_FILE);
    let text = toml::to_string(settings).context("cannot encode the settings")?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Opens the wallet core; a configuration it refuses is a usage error.
async fn open(settings: &Settings, data_dir: &Path) -> Result<Arc<Wallet>, Failure> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let mut config =
        WalletConfig::new(settings.gateway_url.clone(), data_dir.display().to_string());
    config.gateway_ocid = settings.gateway_ocid;
    config.allow_insecure_loopback = settings.insecure_loopback;
    config.directory = settings
        .directory
        .iter()
        .map(|e| DirectoryEntry {
            ocid: e.ocid,
            metadata_url: e.metadata_url.clone(),
        })
        .collect();
    Wallet::open(config, None).await.map_err(|e| match e {
        WalletError::InvalidInput { reason } => Failure::Usage(reason),
        other => Failure::Failed(anyhow!("cannot open the wallet: {}", describe(&other))),
    })
}

/// The registration, or an error telling how to register.
async fn require_registration(wallet: &Wallet) -> Result<(), Failure> {
    match wallet.registration().await.map_err(core("reading the registration"))? {
        Some(_) => Ok(()),
        None => Err(Failure::Failed(anyhow!(
            "this device is not registered yet: run `opencharge wallet --data-dir DIR register < CODE_FILE` first (or set OPENCHARGE_ENROLLMENT_CODE)"
        ))),
    }
}

/// The environment variable `register` reads the enrollment code from first.
const ENROLLMENT_CODE_ENV: &str = "OPENCHARGE_ENROLLMENT_CODE";

/// Longest enrollment code accepted from stdin or a prompt, bytes.
const MAX_CODE_BYTES: u64 = 1024;

/// The enrollment code for `register`: from [`ENROLLMENT_CODE_ENV`], else stdin when it is not
/// a terminal (a file or a pipe), else a prompt on the terminal. A code given on the command
/// line (`on_command_line`) is refused: every local user can read it in `ps`.
fn read_enrollment_code(on_command_line: bool) -> Result<String, Failure> {
    use std::io::{BufRead, IsTerminal, Read, Write};
    if on_command_line {
        return Err(Failure::Usage(format!(
            "the enrollment code must not be given on the command line: every user of this \
             computer can read it in `ps`, and it stays in the shell history. Pass it in \
             {ENROLLMENT_CODE_ENV}, on stdin (`register < alice.code`), or type it when \
             `register` asks for it"
        )));
    }
    let one_line = |text: &str, from: &str| -> Result<String, Failure> {
        let code = text.trim();
        if code.is_empty() {
            return Err(Failure::Usage(format!(
                "{from} holds no enrollment code; ask the wallet operator for one (a dev \
                 gateway: `opencharge dev account --code-file FILE`)"
            )));
        }
        if code.lines().count() > 1 || code.chars().any(char::is_whitespace) {
            return Err(Failure::Usage(format!(
                "{from} must hold exactly one enrollment code (one word on one line)"
            )));
        }
        Ok(code.to_string())
    };
    if let Some(value) = std::env::var_os(ENROLLMENT_CODE_ENV) {
        let value = value
            .into_string()
            .map_err(|_| Failure::Usage(format!("{ENROLLMENT_CODE_ENV} is not valid UTF-8")))?;
        return one_line(&value, ENROLLMENT_CODE_ENV);
    }
    let stdin = std::io::stdin();
    let mut text = String::new();
    if stdin.is_terminal() {
        eprint!("Enrollment code: ");
        let _ = std::io::stderr().flush();
        stdin
            .lock()
            .take(MAX_CODE_BYTES)
            .read_line(&mut text)
            .map_err(|e| Failure::Failed(anyhow!("cannot read the enrollment code: {e}")))?;
        one_line(&text, "the answer")
    } else {
        stdin
            .lock()
            .take(MAX_CODE_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| {
                Failure::Usage(format!(
                    "cannot read the enrollment code from stdin: {e} (it must be text)"
                ))
            })?;
        one_line(&text, "stdin")
    }
}

async fn register(wallet: &Wallet, code: String) -> Result<ExitCode, Failure> {
    let registration = wallet
        .register_device(code)
        .await
        .map_err(core("registering the device"))?;
    println!("registered");
    println!("  device:  {}", registration.device_id);
    println!("  account: {}", registration.account_id);
    println!(
        "  key:     {}",
        wallet
            .device_public_key()
            .map_err(core("reading the key"))?
    );
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// pay

/// What the event stream reports, forwarded to the command's loop.
enum Event {
    Prompt(Box<PaymentPrompt>),
    Rejected { prompt_id: String, reason: String },
    Status(PaymentStatusUpdate),
    Connection(ConnectionState),
}

/// A [`WalletListener`] that forwards every call into a channel.
struct ChannelListener(mpsc::UnboundedSender<Event>);

impl WalletListener for ChannelListener {
    fn on_prompt(&self, prompt: PaymentPrompt) -> Result<(), WalletError> {
        let _ = self.0.send(Event::Prompt(Box::new(prompt)));
        Ok(())
    }

    fn on_prompt_rejected(&self, prompt_id: String, reason: String) -> Result<(), WalletError> {
        let _ = self.0.send(Event::Rejected { prompt_id, reason });
        Ok(())
    }

    fn on_payment_status(&self, update: PaymentStatusUpdate) -> Result<(), WalletError> {
        let _ = self.0.send(Event::Status(update));
        Ok(())
    }

    fn on_connection_state(&self, state: ConnectionState) -> Result<(), WalletError> {
        let _ = self.0.send(Event::Connection(state));
        Ok(())
    }
}

/// Unix seconds now.
fn now_unix() -> i64 {
    unix(SystemTime::now())
}

/// Unix seconds of `time` (0 before 1970).
fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `4:05`.
fn countdown(secs: i64) -> String {
    let secs = secs.max(0);
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// How `pay` ended while waiting for the merchant.
enum Waited {
    Prompt(Box<PaymentPrompt>),
    Done(Result<ExitCode, Failure>),
}

async fn pay(wallet: &Wallet, yes: bool, no_qr: bool) -> Result<ExitCode, Failure> {
    require_registration(wallet).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stream = wallet
        .start_events(Arc::new(ChannelListener(tx)))
        .map_err(core("starting the event stream"))?;
    let outcome = async {
        let session = wallet
            .create_payment_session()
            .await
            .map_err(core("creating the payment session"))?;
        if !no_qr {
            match opencharge_wallet::render_qr_terminal(session.qr_payload.clone()) {
                Ok(art) => println!("{}", crate::ui::indent(&art, 2)),
                Err(e) => eprintln!("warning: cannot draw the QR code: {e}"),
            }
        }
        println!("QR: {}", session.qr_payload);
        println!(
            "Show this QR to the merchant (it expires in {}).",
            countdown(unix(session.expires_at) - now_unix())
        );
        let expires_at = unix(session.expires_at);
        match wait_for_prompt(wallet, &session.session_id, expires_at, &mut rx).await {
            Waited::Prompt(prompt) => decide(wallet, &prompt, yes).await,
            Waited::Done(result) => result,
        }
    }
    .await;
    stream.stop_and_wait().await;
    outcome
}

/// Waits under a countdown spinner for the prompt of session `session_id`, or for the session
/// to end (expired, paid or declined elsewhere, or the prompt failed verification).
async fn wait_for_prompt(
    wallet: &Wallet,
    session_id: &str,
    expires_at: i64,
    rx: &mut mpsc::UnboundedReceiver<Event>,
) -> Waited {
    let bar = crate::ui::spinner("waiting for the merchant");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut poll = tokio::time::interval(PROMPT_POLL);
    let mut link = String::from("connecting");
    let waited = loop {
        tokio::select! {
            event = rx.recv() => match event {
                Some(Event::Prompt(prompt)) if prompt.prompt_id == session_id => {
                    break Waited::Prompt(prompt)
                }
                Some(Event::Rejected { prompt_id, reason }) if prompt_id == session_id => {
                    break Waited::Done(Err(Failure::Failed(anyhow!(
                        "the order posted to this QR failed the wallet's checks and cannot be paid: {reason}"
                    ))))
                }
                Some(Event::Status(update)) if update.session_id == session_id => {
                    match update.status {
                        PaymentStatus::Paid => {
                            println!(
                                "paid on another device (txid {})",
                                update.txid.as_deref().unwrap_or("?")
                            );
                            break Waited::Done(Ok(ExitCode::SUCCESS));
                        }
                        PaymentStatus::Declined | PaymentStatus::Expired => {
                            break Waited::Done(Err(Failure::Failed(anyhow!(
                                "the payment is {}",
                                update.status.as_str()
                            ))))
                        }
                        PaymentStatus::Pending => {}
                    }
                }
                Some(Event::Connection(state)) => {
                    link = match state {
                        ConnectionState::Connecting => "connecting".into(),
                        ConnectionState::Connected => "live".into(),
                        ConnectionState::Disconnected { retry_in, reason } => {
                            format!("reconnecting in {} ms: {reason}", retry_in.as_millis())
                        }
                        ConnectionState::Stopped => "stopped".into(),
                    };
                }
                Some(_) => {}
                None => {
                    break Waited::Done(Err(Failure::Failed(anyhow!("the event stream ended"))))
                }
            },
            _ = tick.tick() => {
                let left = expires_at - now_unix();
                if left < 0 {
                    break Waited::Done(Err(Failure::Failed(anyhow!(
                        "the QR expired before a merchant posted an order; run `pay` again"
                    ))));
                }
                bar.set_message(format!(
                    "waiting for the merchant (QR expires in {}, stream {link})",
                    countdown(left)
                ));
            }
            _ = poll.tick() => {
                // A fallback beside the stream: prompts stored by any path count.
                let _ = wallet.fetch_prompts().await;
                if let Ok(pending) = wallet.pending_prompts().await {
                    if let Some(prompt) = pending.into_iter().find(|p| p.prompt_id == session_id) {
                        break Waited::Prompt(Box::new(prompt));
                    }
                }
            }
        }
    };
    bar.finish_and_clear();
    waited
}

/// Shows a verified prompt.
fn show_prompt(prompt: &PaymentPrompt) {
    if let Some(recipient) = &prompt.recipient {
        println!(
            "Send {} {} to {}",
            prompt.total.amount,
            prompt.total.currency,
            describe_payee(recipient)
        );
        if let Some(memo) = &prompt.memo {
            println!("  memo: {memo}");
        }
        println!(
            "  (order {} signed by your gateway, checked by the wallet; expires in {})",
            prompt.order_id,
            countdown(unix(prompt.expires_at) - now_unix())
        );
        return;
    }
    let merchant = prompt
        .merchant_name
        .as_deref()
        .unwrap_or("(unnamed merchant)");
    println!(
        "Payment request from {merchant} (OCID {}), order {}",
        prompt.merchant_ocid, prompt.order_id
    );
    for item in &prompt.items {
        println!(
            "  {} x {} at {} {}",
            item.quantity, item.name, item.unit_price.amount, item.unit_price.currency
        );
    }
    if let Some(reference) = &prompt.reference {
        println!("  reference: {reference}");
    }
    if let Some(memo) = &prompt.memo {
        println!("  memo: {memo}");
    }
    println!("  total: {} {}", prompt.total.amount, prompt.total.currency);
    println!(
        "  (verified against the merchant's signed metadata; expires in {})",
        countdown(unix(prompt.expires_at) - now_unix())
    );
}

/// Shows the prompt, asks (unless `yes`), then confirms or declines it.
async fn decide(wallet: &Wallet, prompt: &PaymentPrompt, yes: bool) -> Result<ExitCode, Failure> {
    show_prompt(prompt);
    if !yes && !crate::ui::ask_to_pay(prompt, 0).await? {
        let declined = wallet
            .decline(
                prompt.prompt_id.clone(),
                Some("declined in the terminal".into()),
            )
            .await;
        match declined {
            Ok(_) => {}
            Err(WalletError::OutcomePending { .. }) => {
                match wait_for_outcome(wallet, &prompt.prompt_id).await? {
                    Some(receipt) if receipt.status == PaymentStatus::Paid => {
                        print_receipt(&receipt);
                        return Err(Failure::Failed(anyhow!(
                            "the decline came too late: the payment was already made"
                        )));
                    }
                    Some(_) => {}
                    None => return Ok(ExitCode::from(EXIT_PENDING)),
                }
            }
            Err(e) => return Err(core("declining")(e)),
        }
        println!("declined: nothing was paid");
        return Ok(ExitCode::FAILURE);
    }
    let receipt = match wallet.confirm(prompt.prompt_id.clone()).await {
        Ok(receipt) => receipt,
        Err(WalletError::OutcomePending { .. }) => {
            match wait_for_outcome(wallet, &prompt.prompt_id).await? {
                Some(receipt) => receipt,
                None => return Ok(ExitCode::from(EXIT_PENDING)),
            }
        }
        Err(e) => return Err(core("paying")(e)),
    };
    print_receipt(&receipt);
    match receipt.status {
        PaymentStatus::Paid => Ok(ExitCode::SUCCESS),
        other => Err(Failure::Failed(anyhow!(
            "the payment is {}, not paid",
            other.as_str()
        ))),
    }
}

/// After `OutcomePending`: says so honestly, then waits (at most `--outcome-wait`) for the
/// core to resolve the decision in the background and store its receipt. `None` when it is
/// still unknown (then it says how to check later).
async fn wait_for_outcome(wallet: &Wallet, prompt_id: &str) -> Result<Option<Receipt>, Failure> {
    println!(
        "sent; waiting for the gateway's answer (it was lost on the way)... the decision is \
         saved, it will not be paid twice"
    );
    let bar = crate::ui::spinner("waiting for the gateway's answer");
    let wait = CONTEXT
        .get()
        .map_or(Duration::from_secs(120), |c| c.outcome_wait);
    let deadline = tokio::time::Instant::now() + wait;
    let found = loop {
        let page = wallet
            .history(HistoryQuery {
                limit: 200,
                before: None,
            })
            .await
            .map_err(core("reading the history"))?;
        let receipt = page
            .receipts
            .into_iter()
            .find(|r| r.session_id == prompt_id && r.status != PaymentStatus::Pending);
        if receipt.is_some() || tokio::time::Instant::now() >= deadline {
            break receipt;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish_and_clear();
    if found.is_none() {
        let dir = CONTEXT
            .get()
            .map_or("DIR".to_string(), |c| c.data_dir.display().to_string());
        println!(
            "the outcome is still pending: the gateway has not answered within {} s. The \
             decision is saved and will not be paid twice; the wallet asks again each time it \
             runs. Check it with `opencharge wallet --data-dir {dir} history`.",
            wait.as_secs()
        );
    }
    Ok(found)
}

fn print_receipt(receipt: &Receipt) {
    println!(
        "{}: {} {} to {}",
        receipt.status.as_str(),
        receipt.amount.as_ref().map_or("?", |m| m.amount.as_str()),
        receipt.amount.as_ref().map_or("", |m| m.currency.as_str()),
        receipt.merchant_name.as_deref().unwrap_or("the merchant")
    );
    if let Some(txid) = &receipt.txid {
        println!("  txid: {txid}");
    }
    if receipt.status == PaymentStatus::Paid {
        if receipt.proof_verified {
            println!(
                "  proof: verified (signed by OCID {})",
                receipt.proof_issuer.map_or("?".into(), |o| o.to_string())
            );
        } else {
            println!("  proof: NOT verified (the money moved; check the gateway's metadata)");
        }
    }
    if let Some(url) = &receipt.redirect_url {
        println!("  next: {url}");
    }
}

// ---------------------------------------------------------------------------------------------
// scan, history, balance

async fn scan(
    wallet: &Wallet,
    text: String,
    yes: bool,
    picks: Vec<InventorySelection>,
) -> Result<ExitCode, Failure> {
    if let Err(e) = parse_payload_unchecked(&text) {
        return Err(Failure::Usage(format!(
            "TEXT is not an Opencharge QR payload or checkout link: {e}"
        )));
    }
    require_registration(wallet).await?;
    let scanned = wallet.scan(text).await.map_err(|e| match e {
        WalletError::InvalidInput { reason } => Failure::Usage(reason),
        other => Failure::Failed(anyhow!("scanning: {}", describe(&other))),
    })?;
    match scanned {
        ScanResult::Prompt { prompt } => decide(wallet, &prompt, yes).await,
        ScanResult::Inventory { inventory } => {
            let merchant = inventory
                .merchant_name
                .as_deref()
                .unwrap_or("(unnamed merchant)");
            let currency = inventory.currency.as_deref().unwrap_or("");
            if picks.is_empty() {
                println!(
                    "Inventory of {merchant} (OCID {}):",
                    inventory.merchant_ocid
                );
                for item in &inventory.items {
                    println!(
                        "  {}  {}  {} {currency}",
                        item.id,
                        item.name,
                        item.price.as_ref().map_or("?", |p| p.amount.as_str())
                    );
                }
                println!("Pick items with --pick ID:QTY to order and pay.");
                return Ok(ExitCode::SUCCESS);
            }
            let prompt = wallet
                .order_from_inventory(inventory, picks)
                .await
                .map_err(core("ordering from the inventory"))?;
            decide(wallet, &prompt, yes).await
        }
        ScanResult::Person { payee } => Err(Failure::Usage(format!(
            "this is the receive code of {}: pay it with `wallet send` (and --amount/--currency \
             when it carries no amount)",
            describe_payee(&payee)
        ))),
        ScanResult::Unsupported { kind, reason } => Err(Failure::Failed(anyhow!(
            "this wallet cannot pay a {kind} payload: {reason}"
        ))),
    }
}

/// `Bob (OCID 200001) at Opencharge Gateway (OCID 200)`.
fn describe_payee(payee: &Payee) -> String {
    let who = match &payee.name {
        Some(name) => format!("{name} (OCID {})", payee.ocid),
        None => format!("OCID {}", payee.ocid),
    };
    let gateway = match &payee.gateway_name {
        Some(name) => format!("{name} (OCID {})", payee.gateway_ocid),
        None => format!("gateway OCID {}", payee.gateway_ocid),
    };
    format!("{who} at {gateway}")
}

/// `send`: scans a person's code, works out the amount and memo, asks the gateway for the
/// transfer prompt and pays it like any prompt.
async fn send(
    wallet: &Wallet,
    text: String,
    amount: Option<(String, String)>,
    memo: Option<String>,
    yes: bool,
) -> Result<ExitCode, Failure> {
    if let Err(e) = parse_payload_unchecked(&text) {
        return Err(Failure::Usage(format!(
            "TEXT is not a person's receive code or opencharge: link: {e}"
        )));
    }
    let asked = amount
        .map(|(amount, currency)| {
            Money::new(&amount, &currency.to_ascii_uppercase())
                .map_err(|e| Failure::Usage(format!("--amount/--currency: {}", describe(&e))))
        })
        .transpose()?;
    require_registration(wallet).await?;
    let scanned = wallet.scan(text).await.map_err(|e| match e {
        WalletError::InvalidInput { reason } => Failure::Usage(reason),
        other => Failure::Failed(anyhow!("scanning: {}", describe(&other))),
    })?;
    let payee = match scanned {
        ScanResult::Person { payee } => payee,
        ScanResult::Unsupported { kind, reason } => {
            return Err(Failure::Failed(anyhow!(
                "this wallet cannot pay a {kind} payload: {reason}"
            )))
        }
        _ => {
            return Err(Failure::Usage(
                "TEXT is a merchant's code, not a person's: pay it with `wallet scan`".into(),
            ))
        }
    };
    let amount = match (&payee.amount, asked) {
        (Some(coded), Some(asked)) if *coded != asked => {
            return Err(Failure::Usage(format!(
                "the code asks for {} {}; leave out --amount/--currency or use the same amount",
                coded.amount, coded.currency
            )))
        }
        (Some(coded), _) => coded.clone(),
        (None, Some(asked)) => asked,
        (None, None) => {
            return Err(Failure::Usage(format!(
                "the code of {} carries no amount: give --amount and --currency (e.g. --amount \
                 5.00 --currency USD)",
                describe_payee(&payee)
            )))
        }
    };
    let memo = memo.or_else(|| payee.memo.clone());
    println!("Paying {}", describe_payee(&payee));
    let prompt = wallet
        .send_to_person(payee, amount, memo)
        .await
        .map_err(|e| match e {
            WalletError::InvalidInput { reason } => Failure::Usage(reason),
            other => Failure::Failed(anyhow!("preparing the transfer: {}", describe(&other))),
        })?;
    decide(wallet, &prompt, yes).await
}

/// `receive`: prints this account's receive QR (and the `opencharge:` link with an amount).
async fn receive(
    wallet: &Wallet,
    amount: Option<(String, String)>,
    memo: Option<String>,
    no_qr: bool,
) -> Result<ExitCode, Failure> {
    // The link is checked before anything is asked of the gateway.
    let amount = amount
        .map(|(amount, currency)| {
            let currency = currency.to_ascii_uppercase();
            Money::new(&amount, &currency)
                .map_err(|e| Failure::Usage(format!("--amount/--currency: {}", describe(&e))))?;
            Ok::<_, Failure>((amount, currency))
        })
        .transpose()?;
    require_registration(wallet).await?;
    let address = wallet
        .receive_address()
        .await
        .map_err(core("reading the receive address"))?;
    let link = match amount {
        Some((amount, currency)) => Some(person_uri(&address, &amount, &currency, memo)?),
        None => None,
    };
    let shown = link.as_deref().unwrap_or(&address.qr_payload);
    if !no_qr {
        match opencharge_wallet::render_qr_terminal(shown.to_string()) {
            Ok(art) => println!("{}", crate::ui::indent(&art, 2)),
            Err(e) => eprintln!("warning: cannot draw the QR code: {e}"),
        }
    }
    println!(
        "Receive to {}",
        address.name.as_deref().unwrap_or("this account")
    );
    println!("  OCID:    {}", address.ocid);
    println!("  gateway: {}", address.gateway_ocid);
    println!("QR: {}", address.qr_payload);
    if let Some(link) = &link {
        println!("URI: {link}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `opencharge:<ocid>?gateway=…&amount=…&currency=…&memo=…` for the receive address.
fn person_uri(
    address: &ReceiveAddress,
    amount: &str,
    currency: &str,
    memo: Option<String>,
) -> Result<String, Failure> {
    use opencharge_protocol::money::{Amount, Currency};
    let usage = |e: opencharge_protocol::error::ProtocolError| Failure::Usage(e.to_string());
    let ocid = |o: i64| u64::try_from(o).map_err(|_| Failure::Failed(anyhow!("negative OCID {o}")));
    let uri = OcidUri::person(
        ocid(address.ocid)?,
        ocid(address.gateway_ocid)?,
        Some(Amount::parse(amount).map_err(usage)?),
        Some(Currency::parse(currency).map_err(usage)?),
        memo.as_deref(),
    )
    .map_err(usage)?;
    Ok(uri.to_uri_string())
}

/// `2025-11-21 07:40:12 UTC` for unix seconds (proleptic Gregorian calendar).
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

async fn history(wallet: &Wallet, limit: i32, offline: bool) -> Result<ExitCode, Failure> {
    require_registration(wallet).await?;
    if !offline {
        if let Err(e) = wallet.refresh_history(HISTORY_PAGES).await {
            eprintln!("warning: showing the local history only: {}", describe(&e));
        }
    }
    let page = wallet
        .history(HistoryQuery {
            limit,
            before: None,
        })
        .await
        .map_err(core("reading the history"))?;
    if page.receipts.is_empty() {
        println!("no payments yet");
        return Ok(ExitCode::SUCCESS);
    }
    for receipt in &page.receipts {
        let merchant = match (&receipt.merchant_name, receipt.merchant_ocid) {
            (Some(name), Some(ocid)) => format!("{name} ({ocid})"),
            (None, Some(ocid)) => format!("OCID {ocid}"),
            (Some(name), None) => name.clone(),
            (None, None) => "-".into(),
        };
        let amount = match &receipt.amount {
            Some(money) => format!("{} {}", money.amount, money.currency),
            None => "-".into(),
        };
        println!(
            "{}  {:<8}  {:>14}  {}  {}  {}",
            utc(unix(receipt.paid_at.unwrap_or(receipt.created_at))),
            receipt.status.as_str(),
            amount,
            merchant,
            receipt.flow.as_str(),
            receipt.txid.as_deref().unwrap_or("-")
        );
    }
    if page.next_cursor.is_some() {
        println!("(more: raise --limit)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn balance(wallet: &Wallet) -> Result<ExitCode, Failure> {
    require_registration(wallet).await?;
    let balances = wallet
        .balance()
        .await
        .map_err(core("reading the balance"))?;
    if balances.is_empty() {
        println!("no balance");
    }
    for balance in balances {
        println!("{} {}", balance.currency, balance.amount);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_763_710_812), "2025-11-21 07:40:12 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn picks_and_entries_parse() {
        let pick = parse_pick("tea:2").unwrap();
        assert_eq!((pick.id.as_str(), pick.quantity), ("tea", 2));
        for bad in ["tea", "tea:0", ":2", "tea:x"] {
            assert!(parse_pick(bad).is_err(), "{bad}");
        }
        let entry = parse_directory_entry("500=http://127.0.0.1:1/m.json").unwrap();
        assert_eq!(entry.ocid, 500);
        assert!(parse_directory_entry("x=http://a").is_err());
        assert_eq!(countdown(245), "4:05");
        assert_eq!(countdown(-3), "0:00");
    }
}
