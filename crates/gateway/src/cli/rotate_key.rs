//! `opencharge gateway rotate-key`: replaces the gateway's signing key on purpose (the old key
//! file kept as `<key>.<unix time>.old`), records the rotation in the database, and tells the
//! operator what it means for metadata, old proofs and partners.

use std::path::PathBuf;
use std::process::ExitCode;

use opencharge_peer::identity::key_prefix;

use super::ServeArgs;
use crate::identity::{rotate_key, RotateError};

/// Replace the gateway's signing key on purpose. Reads the same configuration as serving
/// (file or dev defaults, then the flags); the key file must hold the key the database
/// belongs to. Restart the gateway afterwards: it publishes the new key from its next start.
///
/// Example: `opencharge gateway rotate-key --config gateway.toml`
#[derive(Debug, Clone, clap::Args)]
pub struct RotateKeyArgs {
    /// TOML configuration file of the gateway (without it: the dev defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// SQLite database path or postgres:// URL (overrides the file).
    #[arg(long, value_parser = crate::database::Database::parse)]
    pub database: Option<crate::database::Database>,
    /// Key file (overrides the file; default: beside the database).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
}

/// Rotates the key and prints what it means. Exit code 2 for a bad configuration, 1 when the
/// rotation is refused or fails.
pub async fn run(args: RotateKeyArgs) -> ExitCode {
    let serve = ServeArgs {
        config: args.config,
        listen: None,
        database: args.database,
        key_file: args.key_file,
        ocid: None,
        metrics_listen: None,
        log_format: crate::ops::logging::LogFormat::Text,
    };
    let config = match serve.config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let rotation = match rotate_key(&config, now).await {
        Ok(rotation) => rotation,
        Err(e) => {
            eprintln!("error: cannot rotate the gateway key: {e}");
            if matches!(e, RotateError::Identity(_)) {
                eprintln!("nothing was changed");
            }
            return ExitCode::from(1);
        }
    };
    println!("Gateway key rotated (OCID {})", rotation.ocid);
    println!(
        "  old public key: {}  (kept in {})",
        key_prefix(&rotation.old_public_key),
        rotation.old_key_file.display()
    );
    println!(
        "  new public key: {}  (in {})",
        key_prefix(&rotation.new_public_key),
        rotation.key_file.display()
    );
    println!(
        "  database:       {} (rotation recorded)",
        rotation.database
    );
    println!();
    println!("What this means:");
    println!(
        "  - A running gateway keeps signing with the old key until it is restarted; restart it \
         now. From its next start its metadata publishes the new key."
    );
    println!(
        "  - Proofs and responses signed by the old key no longer verify against the new \
         metadata. Merchants checked each proof when it arrived, so past payments stay valid; \
         anyone re-verifying an old proof later needs the old public key above."
    );
    println!(
        "  - Partners and merchants that cached this gateway's metadata must fetch it again \
         (caches expire on their own; tell partners to refresh now)."
    );
    println!(
        "  - Back up the new key file now, and keep the .old file as long as you may need to \
         show what the old key signed."
    );
    ExitCode::SUCCESS
}
