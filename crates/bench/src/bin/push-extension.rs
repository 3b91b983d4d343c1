//! `push-extension`: what an iOS notification-service extension or an Android push receiver
//! does, as a process of its own so that its memory can be measured: opens a wallet in
//! low-memory mode on an existing data dir, handles one push payload (`handlePush`) and prints
//! the outcome and the process's peak resident set size (`VmHWM` on Linux, `getrusage` elsewhere). Driven by
//! `push-extension-rss`, which prepares the data dir and the network.

use std::process::ExitCode;

use clap::Parser;
use opencharge_wallet::{DirectoryEntry, PushEvent, Wallet, WalletConfig};

/// Opens a wallet in low-memory mode on DATA_DIR and handles one push payload.
#[derive(Debug, Parser)]
#[command(name = "push-extension")]
struct Args {
    /// The gateway's Opencharge endpoint (loopback).
    #[arg(long)]
    gateway_url: String,
    /// The gateway's OCID (pinned).
    #[arg(long)]
    gateway_ocid: i64,
    /// The app's wallet data dir (database and file key store).
    #[arg(long)]
    data_dir: String,
    /// A merchant of the wallet's directory, as OCID=METADATA_URL (repeatable).
    #[arg(long = "merchant")]
    merchants: Vec<String>,
    /// The push payload: the FCM data map or the APNs userInfo, as JSON text.
    #[arg(long)]
    payload: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = WalletConfig::new(&args.gateway_url, args.data_dir.clone());
    config.gateway_ocid = Some(args.gateway_ocid);
    config.allow_insecure_loopback = true;
    config.low_memory = true;
    for entry in &args.merchants {
        let Some((ocid, url)) = entry.split_once('=') else {
            eprintln!("error: --merchant takes OCID=METADATA_URL, not {entry:?}");
            return ExitCode::from(2);
        };
        let Ok(ocid) = ocid.parse() else {
            eprintln!("error: {ocid:?} is not an OCID");
            return ExitCode::from(2);
        };
        config.directory.push(DirectoryEntry {
            ocid,
            metadata_url: url.to_string(),
        });
    }
    // The core runs on its own runtime; this thread only waits for its answers, like the
    // extension's thread waiting on a Swift task.
    let waiter = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = waiter.block_on(async {
        let wallet = Wallet::open(config, None).await?;
        let event = wallet.handle_push(args.payload).await;
        drop(wallet);
        event
    });
    match outcome {
        Ok(PushEvent::PaymentRequest {
            prompt,
            notification,
        }) => println!(
            "outcome: payment request {} ({}: {})",
            prompt.prompt_id, notification.title, notification.body
        ),
        Ok(PushEvent::PaymentStatus {
            receipt,
            notification,
        }) => println!(
            "outcome: payment status {} ({}: {})",
            receipt.session_id, notification.title, notification.body
        ),
        Ok(PushEvent::NothingNew) => println!("outcome: nothing new"),
        Err(e) => {
            eprintln!("error: handlePush failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    // Where the memory is now (Linux): heap and stacks (RssAnon) against mapped code and
    // data of the binary and libraries (RssFile).
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            if ["RssAnon:", "RssFile:", "Threads:"]
                .iter()
                .any(|key| line.starts_with(key))
            {
                println!("{}", line.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
    }
    match max_rss_kib() {
        Some(kib) => println!("max_rss_kib: {kib}"),
        None => {
            eprintln!("error: the peak RSS could not be read");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// The peak resident set size of this process image, KiB. On Linux that is `VmHWM` of
/// /proc/self/status: `getrusage(RUSAGE_SELF).ru_maxrss` also counts the memory of the image
/// that ran before `exec` (the kernel carries the old high-water mark over), which for a child
/// spawned by a large parent is the parent's size, not ours. Elsewhere (macOS) `getrusage`.
fn max_rss_kib() -> Option<i64> {
    if cfg!(target_os = "linux") {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        return line.split_whitespace().nth(1)?.parse().ok();
    }
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given; it is read only on
    // success.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    // `c_long`: i64 here, i32 on 32-bit targets; macOS reports bytes.
    Some(usage.ru_maxrss as i64 / 1024)
}
