//! `opencharge-bench`: the load generator. It starts a reference gateway and M merchants on
//! loopback (or uses a running gateway and merchant at loopback URLs), opens N device clients
//! on the real wallet core, and pays again and again in the wallet QR flow, timing every leg:
//! order POST, POST -> prompt over SSE, confirm, confirm -> proof on the merchant's webhook.
//! It prints per-leg p50/p90/p99/max and payments per second as a table or as JSON; with
//! `--gateway-bin` the gateway runs as its own process and its CPU per payment is reported.
//! The gateway runs on a SQLite file (default) or, with `--database postgres://...`, on
//! PostgreSQL, as `--instances N` embedded instances on that one database.

mod cpu;
mod driver;
mod gateway_process;
mod report;
mod setup;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::cpu::{load_context, CpuSnapshot};
use crate::driver::Phase;
use crate::report::{cpu_stats, failure_stats, leg_stats, GatewayCpu, Report};
use crate::setup::{Device, Network, Target};
use opencharge_testkit::Database;

/// Load generator for an Opencharge gateway: concurrent wallets paying concurrent merchants
/// on loopback, with per-leg latency percentiles and payments per second.
///
/// Examples:
///   opencharge-bench --smoke
///   opencharge-bench --wallets 200 --merchants 20 --payments 5000 --duration 60
///   opencharge-bench --wallets 200 --merchants 20 --rate 50 --payments 1500 --json
///   opencharge-bench --gateway-bin target/release/opencharge --wallets 1000 --rate 300 --payments 6000
///   opencharge-bench --json --gateway http://127.0.0.1:8700/opencharge --merchant http://127.0.0.1:8710/opencharge
///   opencharge-bench --database postgres://postgres@127.0.0.1:5432/bench --instances 3 --wallets 200 --merchants 20
#[derive(Debug, Parser)]
#[command(name = "opencharge-bench", version, verbatim_doc_comment)]
struct Args {
    /// Device clients: wallet-core `Wallet`s, each with its own data dir, account and event
    /// stream.
    #[arg(long, default_value_t = 20)]
    wallets: usize,
    /// Merchants (embedded mode). Each waits for its proofs through its webhook.
    #[arg(long, default_value_t = 4)]
    merchants: usize,
    /// Payments in flight at once (default: one per wallet). Worker k pays with wallet
    /// k mod wallets.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Measured payments to make (the run stops at this count or at --duration).
    #[arg(long, default_value_t = 2000)]
    payments: u64,
    /// Stop starting payments after this many seconds.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Payments made before measuring (default: one per wallet), so first-use costs (merchant
    /// metadata fetches, connections) stay out of the figures.
    #[arg(long)]
    warmup: Option<u64>,
    /// Start payments at this many per second (open loop, up to --concurrency in flight)
    /// instead of as fast as the workers finish them: latency at a given load rather than at
    /// saturation.
    #[arg(long)]
    rate: Option<f64>,
    /// Line items per order.
    #[arg(long, default_value_t = 1)]
    items: usize,
    /// The embedded gateway's worker interval in milliseconds: how often it delivers queued
    /// webhooks (its minimum is 10).
    #[arg(long, default_value_t = 10)]
    worker_interval_ms: u64,
    /// Longest wait for any one leg, seconds.
    #[arg(long, default_value_t = 30)]
    leg_timeout: u64,
    /// Keep the SQLite files and keys in a new `run-<millis>` directory under this one (e.g. on
    /// tmpfs, to see what fsync costs) instead of a temporary directory that is deleted.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Run the gateway as its own process from this `opencharge` binary (`opencharge gateway`
    /// with a generated dev config, data under the run's data dir; the merchants stay in this
    /// process) and report its CPU time per completed payment, read from `/proc/PID/stat`.
    #[arg(long, conflicts_with = "gateway")]
    gateway_bin: Option<PathBuf>,
    /// Use this running gateway (dev mode, loopback only) instead of an embedded one; needs
    /// --merchant.
    #[arg(long, requires = "merchant")]
    gateway: Option<String>,
    /// The running gateway's OCID, pinned in the wallets.
    #[arg(long, requires = "gateway")]
    gateway_ocid: Option<u64>,
    /// A running merchant's Opencharge endpoint (dev mode, loopback only), known to --gateway.
    #[arg(long, requires = "gateway")]
    merchant: Option<String>,
    /// The running merchant's OCID.
    #[arg(long, default_value_t = 500)]
    merchant_ocid: u64,
    /// The gateway's database: a SQLite file, or a PostgreSQL URL (`postgres://` or
    /// `postgresql://`; the database must exist and should be empty: each run adds its
    /// accounts, and the database is bound to the run's gateway key). Default: a SQLite file in
    /// the run's data dir. Not with --gateway (a running gateway has its own).
    #[arg(long, value_name = "PATH|URL", conflicts_with = "gateway")]
    database: Option<String>,
    /// Embedded gateway instances on the one --database (PostgreSQL only), each on its own
    /// loopback port with the same key, behind a round-robin front that sends each request of
    /// the wallets and merchants to the next instance (as a load balancer would); the report
    /// counts each instance's requests.
    #[arg(long, default_value_t = 1, value_name = "N",
          conflicts_with_all = ["gateway", "gateway_bin"],
          value_parser = clap::value_parser!(u16).range(1..=32))]
    instances: u16,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The CI preset: 2 wallets, 1 merchant, 2 in flight, 10 payments, no warm-up, no rate; exits
    /// nonzero unless every leg of every payment completed. Overrides those options.
    #[arg(long)]
    smoke: bool,
}

impl Args {
    /// The database asked for; more than one instance needs PostgreSQL.
    fn database(&self) -> Result<Option<Database>, String> {
        opencharge_testkit::network::database_for_instances(
            self.database.as_deref(),
            self.instances,
        )
    }

    fn apply_smoke(&mut self) {
        if self.smoke {
            self.wallets = 2;
            self.merchants = 1;
            self.concurrency = Some(2);
            self.payments = 10;
            self.warmup = Some(0);
            self.rate = None;
            self.duration = self.duration.max(120);
        }
    }
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    args.apply_smoke();
    if args.wallets == 0 || args.merchants == 0 || args.items == 0 {
        eprintln!("error: --wallets, --merchants and --items must be at least 1");
        return ExitCode::from(2);
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        eprintln!("error: --rate must be a positive number of payments per second");
        return ExitCode::from(2);
    }
    if args.concurrency == Some(0) {
        eprintln!("error: --concurrency must be at least 1");
        return ExitCode::from(2);
    }
    let database = match args.database() {
        Ok(database) => database,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Two runtimes, so the CPU report can tell the servers' threads from the driver's (the
    // wallet core runs on its own). Both are dropped here, outside any async context.
    let runtimes = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("oc-driver")
        .enable_all()
        .build()
        .and_then(|driver| {
            let server = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("oc-server")
                .enable_all()
                .build()?;
            Ok((driver, Arc::new(server)))
        });
    let result = match runtimes {
        Ok((driver, server)) => driver.block_on(run(&args, database, Arc::clone(&server))),
        Err(e) => Err(anyhow::anyhow!("cannot start the runtimes: {e}")),
    };
    match result {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => eprintln!("error: cannot write the report: {e}"),
                }
            } else {
                print!("{}", report.table());
            }
            let complete = report.failed == 0
                && report.warmup_failed == 0
                && (!args.smoke || report.completed as u64 == args.payments);
            if complete {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "error: {} of {} payments failed or did not run",
                    args.payments.saturating_sub(report.completed as u64),
                    args.payments
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {msg:<8} [{bar:30}] {pos}/{len} payments, {per_sec}, {elapsed}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

async fn run(
    args: &Args,
    database: Option<Database>,
    server: Arc<tokio::runtime::Runtime>,
) -> anyhow::Result<Report> {
    let temp;
    let data_dir = match &args.data_dir {
        Some(dir) => {
            // A fresh directory per run: wallets from an earlier run are registered already.
            let millis = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let run = dir.join(format!("run-{millis}"));
            std::fs::create_dir_all(&run)
                .with_context(|| format!("cannot create {}", run.display()))?;
            run
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("opencharge-bench-")
                .tempdir()
                .context("cannot create a temporary data dir")?;
            temp.path().to_path_buf()
        }
    };
    let target = match (&args.gateway, &args.merchant) {
        (Some(gateway_url), Some(merchant_url)) => Target::Remote {
            gateway_url: gateway_url.clone(),
            gateway_ocid: args.gateway_ocid,
            merchant_url: merchant_url.clone(),
            merchant_ocid: args.merchant_ocid,
        },
        _ => match &args.gateway_bin {
            Some(binary) => Target::Process {
                binary: binary.clone(),
                merchants: args.merchants,
                worker_interval_ms: args.worker_interval_ms,
                database: database.clone(),
            },
            None => Target::Embedded {
                merchants: args.merchants,
                worker_interval_ms: args.worker_interval_ms,
                database: database.clone(),
                instances: usize::from(args.instances),
            },
        },
    };
    let net = Arc::new(Network::start(&target, Arc::clone(&server), &data_dir).await?);
    let devices = Arc::new(open_devices(&net, args.wallets).await?);

    let concurrency = args.concurrency.unwrap_or(args.wallets);
    let warmup = args.warmup.unwrap_or(args.wallets as u64);
    let phase = |payments| Phase {
        payments,
        duration: Duration::from_secs(args.duration),
        concurrency,
        items: args.items,
        leg_timeout: Duration::from_secs(args.leg_timeout),
        rate: args.rate,
    };
    let bar = progress_bar(warmup + args.payments);
    bar.set_message("warm-up");
    let warm = driver::run(&net, &devices, phase(warmup), &bar).await;
    bar.set_message("measured");
    let (load_before, cpus) = load_context();
    let gateway_before = net.gateway_process.as_ref().and_then(|g| g.cpu_secs());
    let cpu_before = CpuSnapshot::take();
    let measured = driver::run(&net, &devices, phase(args.payments), &bar).await;
    let cpu_spent = CpuSnapshot::take().since(&cpu_before);
    let gateway_cpu = match (&net.gateway_process, gateway_before) {
        (Some(gateway), Some(before)) => gateway.cpu_secs().map(|after| {
            GatewayCpu::new(
                gateway.pid(),
                (after - before).max(0.0),
                measured.elapsed,
                measured.samples.len(),
            )
        }),
        _ => None,
    };
    let (load_after, _) = load_context();
    bar.finish_and_clear();

    if let Ok(devices) = Arc::try_unwrap(devices) {
        for device in devices {
            device.close().await;
        }
    }
    let instance_requests = net.instance_requests();
    if let Ok(net) = Arc::try_unwrap(net) {
        net.stop().await;
    }

    let elapsed = measured.elapsed.as_secs_f64();
    let gateway = match (&args.gateway, &args.gateway_bin) {
        (Some(url), _) => url.clone(),
        (None, Some(binary)) => format!("process {}", binary.display()),
        (None, None) => "embedded".to_string(),
    };
    let backend = match (&args.gateway, &database) {
        (Some(_), _) => None,
        (None, Some(Database::Postgres(_))) => Some("postgres"),
        (None, _) => Some("sqlite"),
    };
    Ok(Report {
        config: json!({
            "gateway": gateway,
            "backend": backend,
            "instances": if args.gateway.is_some() { None } else { Some(args.instances) },
            "database": database.as_ref().map(Database::redacted),
            "wallets": args.wallets,
            "merchants": if args.gateway.is_some() { 1 } else { args.merchants },
            "concurrency": concurrency,
            "payments": args.payments,
            "warmup": warmup,
            "items": args.items,
            "rate": args.rate,
            "durationSecs": args.duration,
            "workerIntervalMs": if args.gateway.is_some() { None } else { Some(args.worker_interval_ms) },
            "dataDir": args.data_dir.as_ref().map(|_| data_dir.display().to_string()),
            "smoke": args.smoke,
        }),
        completed: measured.samples.len(),
        failed: measured.failures.len(),
        warmup_completed: warm.samples.len(),
        warmup_failed: warm.failures.len(),
        elapsed_secs: (elapsed * 1000.0).round() / 1000.0,
        payments_per_sec: if elapsed > 0.0 {
            (measured.samples.len() as f64 / elapsed * 10.0).round() / 10.0
        } else {
            0.0
        },
        legs: leg_stats(&measured),
        failures: failure_stats(warm.failures.iter().chain(measured.failures.iter())),
        cpu: (cpu_spent.total > 0.0 || !cpu_spent.groups.is_empty())
            .then(|| cpu_stats(&cpu_spent, measured.elapsed, load_before, load_after, cpus)),
        gateway_cpu,
        instance_requests,
    })
}

/// Opens `count` devices, a few at a time.
async fn open_devices(net: &Arc<Network>, count: usize) -> anyhow::Result<Vec<Device>> {
    const AT_ONCE: usize = 8;
    let mut devices = Vec::with_capacity(count);
    let mut next = 0;
    while next < count {
        let batch: Vec<_> = (next..count.min(next + AT_ONCE))
            .map(|index| {
                let net = Arc::clone(net);
                tokio::spawn(async move { net.device(index).await })
            })
            .collect();
        for (offset, task) in batch.into_iter().enumerate() {
            let device = task
                .await
                .context("device setup task failed")?
                .with_context(|| format!("cannot set up wallet {}", next + offset))?;
            devices.push(device);
        }
        next += AT_ONCE;
    }
    Ok(devices)
}
