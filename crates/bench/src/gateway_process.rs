//! The gateway as its own process for a load run: starts `opencharge gateway` (a given
//! binary) on loopback with a generated dev config whose directory lists the embedded
//! merchants, reads its endpoint from its banner, kills it when dropped, and reads its CPU
//! time (user + system, from `/proc/PID/stat`) so a run can report the gateway's CPU per
//! completed payment apart from the merchants, wallets and driver.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};
use opencharge_testkit::Database;

use crate::cpu::read_stat;

/// A gateway child process; killed when dropped.
pub struct GatewayProcess {
    child: Child,
    /// Its Opencharge endpoint, as its banner printed it.
    pub endpoint: String,
}

/// What the generated config holds besides the defaults.
pub struct GatewayProcessConfig<'a> {
    /// The `opencharge` binary.
    pub binary: &'a Path,
    /// Where the config, database and key go.
    pub dir: &'a Path,
    /// The gateway's OCID.
    pub ocid: u64,
    /// The background worker interval (webhook delivery), milliseconds.
    pub worker_interval_ms: u64,
    /// The database (default: `gateway.sqlite3` in `dir`).
    pub database: Option<&'a Database>,
    /// `(ocid, metadata URL)` of every merchant.
    pub directory: Vec<(u64, String)>,
}

/// The TOML config of [`GatewayProcessConfig`]: listen on a free loopback port, no metrics
/// listener (its fixed default port may be taken by another gateway), dev mode (the `/dev`
/// accounts the driver funds), plain HTTP to loopback allowed, everything else default.
pub fn config_toml(config: &GatewayProcessConfig<'_>) -> String {
    let mut text = format!(
        "ocid = {}\nname = \"Bench gateway\"\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"off\"\n\
         dev_mode = true\nallow_loopback_http = true\nworker_interval_ms = {}\ndatabase = {}\n\
         key_file = {}\n",
        config.ocid,
        config.worker_interval_ms,
        match config.database {
            Some(Database::Postgres(url)) => toml_string(Path::new(url)),
            Some(Database::Sqlite(path)) => toml_string(path),
            None => toml_string(&config.dir.join("gateway.sqlite3")),
        },
        toml_string(&config.dir.join("gateway.key")),
    );
    for (ocid, url) in &config.directory {
        text.push_str(&format!(
            "\n[[directory]]\nocid = {ocid}\nmetadata_url = {}\n",
            toml_string(Path::new(url))
        ));
    }
    text
}

/// A TOML literal string (single quotes, no escapes) of a path or URL; paths holding a quote
/// or a line break are refused by the gateway's parser with a clear error.
fn toml_string(value: &Path) -> String {
    format!("'{}'", value.display())
}

impl GatewayProcess {
    /// Writes the config into `config.dir`, starts the gateway and waits for its endpoint.
    pub fn start(config: &GatewayProcessConfig<'_>) -> anyhow::Result<GatewayProcess> {
        std::fs::create_dir_all(config.dir)
            .with_context(|| format!("cannot create {}", config.dir.display()))?;
        let path = config.dir.join("gateway.toml");
        std::fs::write(&path, config_toml(config))
            .with_context(|| format!("cannot write {}", path.display()))?;
        let mut child = Command::new(config.binary)
            .arg("gateway")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (pass the opencharge binary with --gateway-bin)",
                    config.binary.display()
                )
            })?;
        let stdout = child.stdout.take().context("the gateway has no stdout")?;
        let mut gateway = GatewayProcess {
            child,
            endpoint: String::new(),
        };
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.context("reading the gateway's banner")?;
            if let Some(endpoint) = line.trim().strip_prefix("endpoint:") {
                gateway.endpoint = endpoint.trim().trim_end_matches('/').to_string();
                // Keep draining its stdout, so it never writes to a full or closed pipe.
                std::thread::spawn(move || lines.for_each(drop));
                return Ok(gateway);
            }
        }
        bail!(
            "the gateway ({}) exited before printing its endpoint; its error is above",
            config.binary.display()
        )
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user + system) the gateway process has used so far; `None` without `/proc`
    /// or once it has exited.
    pub fn cpu_secs(&self) -> Option<f64> {
        read_stat(&format!("/proc/{}/stat", self.pid())).map(|(_, secs)| secs)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_lists_every_merchant_and_keeps_files_in_the_dir() {
        let dir = Path::new("runs/bench run");
        let text = config_toml(&GatewayProcessConfig {
            binary: Path::new("opencharge"),
            dir,
            ocid: 200,
            worker_interval_ms: 10,
            database: None,
            directory: vec![
                (500, "http://127.0.0.1:4001/opencharge/metadata.json".into()),
                (501, "http://127.0.0.1:4002/opencharge/metadata.json".into()),
            ],
        });
        assert!(text.starts_with("ocid = 200\n"), "{text}");
        assert!(text.contains("worker_interval_ms = 10\n"), "{text}");
        assert!(text.contains("metrics_listen = \"off\"\n"), "{text}");
        assert!(
            text.contains("database = 'runs/bench run/gateway.sqlite3'\n"),
            "{text}"
        );
        assert_eq!(text.matches("[[directory]]").count(), 2, "{text}");
        assert!(text.contains(
            "ocid = 501\nmetadata_url = 'http://127.0.0.1:4002/opencharge/metadata.json'"
        ));
    }

    #[test]
    fn a_postgres_database_goes_into_the_config_as_its_url() {
        let database = Database::Postgres("postgres://bench@127.0.0.1:5432/bench".into());
        let text = config_toml(&GatewayProcessConfig {
            binary: Path::new("opencharge"),
            dir: Path::new("runs/pg"),
            ocid: 200,
            worker_interval_ms: 10,
            database: Some(&database),
            directory: Vec::new(),
        });
        assert!(
            text.contains("database = 'postgres://bench@127.0.0.1:5432/bench'\n"),
            "{text}"
        );
        assert!(
            text.contains("key_file = 'runs/pg/gateway.key'\n"),
            "{text}"
        );
    }
}
