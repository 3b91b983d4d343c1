//! `stream-burst`: measures the gateway's memory and threads around bursts of event streams.
//! Starts the real `opencharge gateway` (the binary beside this one) on loopback with a
//! temporary dev config, registers devices, opens `--bursts` bursts of `--streams`
//! concurrent `/app/events` streams (each burst closed before the next opens, the last one
//! held open for the "after the bursts" figure), and prints the gateway's VmRSS, VmHWM and
//! thread count (from `/proc/PID/status`) before, after the bursts, and after the streams
//! close. The figures are printed, never asserted. Linux only (it reads `/proc`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use opencharge_testkit::{AppDevice, DevClient};

/// Bursts of event streams against a real gateway process; prints its RSS and threads.
#[derive(Debug, Parser)]
#[command(name = "stream-burst")]
struct Args {
    /// Bursts to run.
    #[arg(long, default_value_t = 10)]
    bursts: usize,
    /// Concurrent streams per burst.
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    /// Streams per device (the gateway's default cap is 4; more would displace streams).
    #[arg(long, default_value_t = 4)]
    per_device: usize,
    /// Seconds to wait after the streams close before the last figure (tokio lets idle
    /// blocking threads go after 10 s).
    #[arg(long, default_value_t = 15)]
    settle_secs: u64,
    /// The `opencharge` binary; defaults to the one beside this binary.
    #[arg(long)]
    opencharge: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(measure(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft open-file limit to the hard one (this process holds every client end and
/// the gateway child inherits the limit).
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The gateway child; killed when dropped.
struct Gateway {
    child: Child,
    endpoint: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_gateway(binary: &PathBuf, dir: &std::path::Path) -> anyhow::Result<Gateway> {
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndev_mode = true\nallow_loopback_http = true\n\
             database = {:?}\nkey_file = {:?}\n",
            dir.join("gateway.sqlite3"),
            dir.join("gateway.key")
        ),
    )?;
    let mut child = Command::new(binary)
        .arg("gateway")
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut gateway = Gateway {
        child,
        endpoint: String::new(),
    };
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(endpoint) = line.trim().strip_prefix("endpoint:") {
            gateway.endpoint = endpoint.trim().to_string();
            // Keep reading the rest of the banner, so the gateway never writes to a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(gateway);
        }
    }
    bail!("the gateway exited before printing its endpoint")
}

/// VmRSS and VmHWM (KiB) and Threads of `pid`.
fn sample(pid: u32) -> anyhow::Result<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc/PID/status (Linux only)")?;
    let field = |name: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?, field("Threads:")?))
}

fn print(label: &str, pid: u32) -> anyhow::Result<()> {
    let (rss, hwm, threads) = sample(pid)?;
    println!(
        "{label:<32} VmRSS {:>7.1} MiB  VmHWM {:>7.1} MiB  threads {threads}",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    Ok(())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Opens `count` streams spread over `devices` (`per_device` each) and waits until each has
/// sent its first chunk; returns the open responses.
async fn open_streams(
    http: &reqwest::Client,
    endpoint: &str,
    devices: &Arc<Vec<AppDevice>>,
    count: usize,
    per_device: usize,
) -> anyhow::Result<Vec<reqwest::Response>> {
    let url = format!("{endpoint}/app/events");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (http, url, devices) = (http.clone(), url.clone(), devices.clone());
        tasks.spawn(async move {
            let device = &devices[i / per_device];
            let mut response = device
                .request(&http, "GET", &url, Vec::new(), now())?
                .send()
                .await?;
            if response.status().as_u16() != 200 {
                bail!("GET /app/events: {}", response.status());
            }
            response
                .chunk()
                .await?
                .context("the stream ended at once")?;
            Ok(response)
        });
    }
    let mut open = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        open.push(joined??);
    }
    Ok(open)
}

async fn measure(args: Args) -> anyhow::Result<()> {
    let binary = match args.opencharge {
        Some(path) => path,
        None => std::env::current_exe()?
            .with_file_name(format!("opencharge{}", std::env::consts::EXE_SUFFIX)),
    };
    if !binary.exists() {
        bail!(
            "{} is missing: build it first (cargo build --release -p opencharge-cli)",
            binary.display()
        );
    }
    let per_device = args.per_device.max(1);
    let dir = tempfile::tempdir()?;
    let gateway = start_gateway(&binary, dir.path())?;
    let pid = gateway.child.id();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let dev = DevClient::new(http.clone(), &gateway.endpoint);
    let device_count = args.streams.div_ceil(per_device);
    let mut devices = Vec::with_capacity(device_count);
    for i in 0..device_count {
        let account = dev.new_account(&format!("burst {i}")).await?;
        devices.push(
            AppDevice::register(&http, &gateway.endpoint, &account.enrollment_code, now()).await?,
        );
    }
    let devices = Arc::new(devices);
    println!(
        "gateway pid {pid}, {} bursts of {} streams over {device_count} devices",
        args.bursts, args.streams
    );
    print("before", pid)?;
    let mut last = Vec::new();
    for burst in 1..=args.bursts {
        drop(last);
        last = open_streams(&http, &gateway.endpoint, &devices, args.streams, per_device).await?;
        print(&format!("burst {burst} open"), pid)?;
    }
    print("after the bursts (last open)", pid)?;
    drop(last);
    tokio::time::sleep(Duration::from_secs(2)).await;
    print("streams closed (+2 s)", pid)?;
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    print(
        &format!("streams closed (+{} s)", 2 + args.settle_secs),
        pid,
    )?;
    Ok(())
}
