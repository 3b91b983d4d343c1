//! `opencharge sandbox`: a gateway and a merchant wired together on loopback, dev endpoints on,
//! for app development and the binding tests; the gateway on its SQLite file, or on a
//! PostgreSQL database as one or several instances. Prints one JSON line describing them and
//! runs until stdin closes or a signal arrives.

use std::path::PathBuf;
use std::process::ExitCode;

use opencharge_gateway::config::FcmConfig;
use opencharge_gateway::database::Database;
use opencharge_merchant::InventoryItem;
use opencharge_testkit::{Network, GATEWAY_OCID, MERCHANT_OCID};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

/// The embedded merchant's display name.
pub const MERCHANT_NAME: &str = "Demo Coffee";

/// Run a gateway (OCID 200) and a merchant "Demo Coffee" (OCID 500) wired together on loopback
/// ports the system picks, both with their /dev endpoints open. When ready, prints exactly one
/// JSON line on stdout:
/// {"gatewayUrl","gatewayOcid","gatewayMetadataUrl","gatewayUrls","merchantUrl","merchantOcid","merchantMetadataUrl","dataDir"}
/// (`gatewayUrls`: each gateway instance's own endpoint; `gatewayUrl` is the published one,
/// with several instances their round-robin front's).
/// Logs go to stderr. Never expose it beyond loopback: the dev endpoints create money.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    # from a test: spawn it, read the first line, close stdin to stop it\n  \
    opencharge sandbox\n  \
    # in a terminal or a script, stopped by Ctrl-C / SIGTERM only\n  \
    opencharge sandbox --data-dir ./sandbox-data --ignore-stdin\n  \
    # three gateway instances on one PostgreSQL database (keep the key with --data-dir)\n  \
    opencharge sandbox --database postgres://postgres@127.0.0.1:5432/sandbox --instances 3 --data-dir ./sandbox-pg")]
pub struct SandboxArgs {
    /// Keep all data (SQLite files, keys) in this directory instead of a temporary one that is
    /// deleted at exit.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep running when stdin reaches end of file (stop only on Ctrl-C or SIGTERM). By
    /// default closing stdin stops the sandbox, so a test that dies never leaves it behind.
    #[arg(long)]
    pub ignore_stdin: bool,
    /// Log lines as human-readable text (colours only on a terminal) or one JSON object per
    /// line.
    #[arg(long, value_enum, default_value_t = crate::ui::LogFormat::Text)]
    pub log_format: crate::ui::LogFormat,
    /// The gateway's database: a SQLite file, or a PostgreSQL URL (`postgres://` or
    /// `postgresql://`; the database must exist, it is migrated and kept). Default: the SQLite
    /// file `gateway/gateway.sqlite3` under the data dir. A database is bound to the gateway
    /// key that first used it, and the key lives in the data dir: to use a PostgreSQL database
    /// again, pass the same --data-dir.
    #[arg(long, value_name = "PATH|URL")]
    pub database: Option<String>,
    /// How many gateway instances to run on the one database (PostgreSQL only), each on its own
    /// loopback port with the same key (`gatewayUrls` lists each), behind a round-robin front
    /// on another port that sends each request to the next instance: `gatewayUrl`, the URL all
    /// of them publish.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=32))]
    pub instances: u16,
}

impl SandboxArgs {
    /// The database asked for, and whether the instance count fits it (more than one
    /// instance needs PostgreSQL).
    fn database(&self) -> Result<Option<Database>, String> {
        opencharge_testkit::network::database_for_instances(
            self.database.as_deref(),
            self.instances,
        )
    }
}

/// Starts the network, prints its description and serves until told to stop.
pub async fn run(args: SandboxArgs) -> ExitCode {
    opencharge_gateway::ops::logging::init(args.log_format, "warn");
    let database = match args.database() {
        Ok(database) => database,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let instances = usize::from(args.instances);
    let network = match start_network(args.data_dir, None, database, instances).await {
        Ok(network) => network,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    // One line, flushed: readers wait for it.
    println!("{}", describe(&network));
    eprintln!(
        "sandbox ready: gateway {} (OCID {}{}), merchant {} (OCID {}); {}",
        network.endpoint(),
        GATEWAY_OCID,
        match instances {
            1 => String::new(),
            n => format!(
                ", {n} instances on {}",
                network.gateway_database().redacted()
            ),
        },
        network.merchant().endpoint(),
        MERCHANT_OCID,
        if args.ignore_stdin {
            "Ctrl-C stops it"
        } else {
            "closing stdin or Ctrl-C stops it"
        }
    );
    if args.ignore_stdin {
        opencharge_gateway::cli::shutdown_signal().await;
    } else {
        tokio::select! {
            _ = opencharge_gateway::cli::shutdown_signal() => {}
            _ = stdin_closed() => {}
        }
    }
    network.stop().await;
    ExitCode::SUCCESS
}

/// The network of `opencharge sandbox` and `opencharge demo` (the test kit's): a gateway
/// (OCID 200) and the merchant "Demo Coffee" (OCID 500, dev API on, coffee at 2.50 in its
/// inventory), their keys kept under the data dir. `data_dir` keeps everything; without it a
/// temporary directory is used and deleted when the network is dropped. The gateway runs on
/// `database` (default: its SQLite file under the data dir, whatever the test kit's
/// `OPENCHARGE_TEST_BACKEND` says) as `instances` instances (more than one: PostgreSQL only).
pub async fn start_network(
    data_dir: Option<PathBuf>,
    fcm: Option<FcmConfig>,
    database: Option<Database>,
    instances: usize,
) -> anyhow::Result<Network> {
    let mut builder = Network::builder()
        .gateway_instances(instances)
        .gateway_config(move |config| config.push.fcm = fcm)
        .persistent_keys()
        .merchant_config(|_, config| {
            config.name = MERCHANT_NAME.into();
            config.dev_mode = true;
            config.inventory.push(InventoryItem {
                id: "coffee".into(),
                name: "Coffee".into(),
                price: "2.50".into(),
            });
        });
    builder = match database {
        Some(database) => builder.database(database),
        None => builder.sqlite(),
    };
    if let Some(dir) = data_dir {
        builder = builder.data_dir(dir);
    }
    builder.start().await
}

/// What `opencharge sandbox` prints: the URLs and OCIDs an app or a test needs.
fn describe(network: &Network) -> Value {
    json!({
        "gatewayUrl": network.endpoint(),
        "gatewayOcid": GATEWAY_OCID,
        "gatewayMetadataUrl": format!("{}/metadata.json", network.endpoint()),
        "gatewayUrls": network.gateway_endpoints(),
        "merchantUrl": network.merchant().endpoint(),
        "merchantOcid": MERCHANT_OCID,
        "merchantMetadataUrl": network.merchant().metadata_url(),
        "dataDir": network.data_dir().display().to_string(),
    })
}

/// Resolves when stdin reaches end of file or cannot be read.
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 256];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}
