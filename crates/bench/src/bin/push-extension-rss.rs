//! `push-extension-rss`: measures the memory of the core in a push extension. Starts a
//! loopback network (gateway and merchant), registers an app's wallet and gives it 1,000
//! receipts, has the merchant post an order to it, builds the wake-up exactly as the gateway's
//! FCM data map, and runs `push-extension` (the binary beside this one) on the app's data dir.
//! Prints the child's outcome and its peak RSS; the figure is reported, never asserted (the
//! target is at most 15 MB).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use opencharge_testkit::Network;
use opencharge_wallet::bench_support::seed_receipts;
use opencharge_wallet::protocol::keys::PrivateKey;
use opencharge_wallet::protocol::signing::sign_object;
use opencharge_wallet::{Money, PaymentFlow, PaymentStatus, Receipt, Wallet};
use serde_json::json;

/// Receipts in the app's database before the push (a wallet used for a while).
const RECEIPTS: usize = 1000;
/// The target the figure is read against (not asserted).
const TARGET_MIB: f64 = 15.0;

fn main() -> ExitCode {
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
    match runtime.block_on(measure()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn measure() -> anyhow::Result<()> {
    let child = std::env::current_exe()?
        .with_file_name(format!("push-extension{}", std::env::consts::EXE_SUFFIX));
    if !child.exists() {
        bail!(
            "{} is missing: build both binaries (cargo build -p opencharge-bench --bins)",
            child.display()
        );
    }
    // SQLite whatever OPENCHARGE_TEST_BACKEND says: the event id is read from its file.
    let env = Network::builder().sqlite().start().await?;
    let config = env.wallet_config("phone");
    let data_dir = config.data_dir.clone();

    // The app: registered, funded, then closed while 1,000 receipts are stored.
    let opened = env
        .dev()
        .open_wallet(config.clone(), "phone", Some("100.00"))
        .await?;
    drop(opened);
    seed_receipts(
        &data_dir,
        &receipts(RECEIPTS, env.gateway_ocid(), env.merchant().ocid())?,
    )?;

    // The app shows its QR; the merchant posts an order to it; the app goes to the background.
    let app = Wallet::open(config.clone(), None).await?;
    let session = app.create_payment_session().await?;
    drop(app);
    let order = env.order()?;
    env.merchant()
        .post_to_wallet_session(&session.qr_payload, &order.order.id)
        .await?;

    // The wake-up exactly as the gateway's FCM data map.
    let event_id = newest_event(&env.gateway_db(), &session.session_id)?;
    let payload = json!({"type": "payment_request", "sessionId": session.session_id,
                         "eventId": event_id.to_string()})
    .to_string();

    let mut command = std::process::Command::new(&child);
    command
        .arg("--gateway-url")
        .arg(&config.gateway_url)
        .arg("--gateway-ocid")
        .arg(env.gateway_ocid().to_string())
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--payload")
        .arg(&payload);
    for entry in &config.directory {
        command
            .arg("--merchant")
            .arg(format!("{}={}", entry.ocid, entry.metadata_url));
    }
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("push-extension failed ({})", output.status);
    }
    let kib: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("max_rss_kib: "))
        .context("push-extension printed no max_rss_kib")?
        .trim()
        .parse()?;
    let mib = kib as f64 / 1024.0;
    println!(
        "push-extension: max RSS {mib:.1} MiB ({kib} KiB) with {RECEIPTS} receipts, one payment_request push (target <= {TARGET_MIB} MiB{})",
        if cfg!(debug_assertions) { "; a debug build: measure with --profile bench" } else { "" }
    );
    env.stop().await;
    Ok(())
}

/// The id of the gateway's newest event about `session_id`.
fn newest_event(gateway_db: &Path, session_id: &str) -> anyhow::Result<i64> {
    let db = rusqlite::Connection::open(gateway_db)?;
    Ok(db.query_row(
        "SELECT max(id) FROM events WHERE kind = 'payment_request' AND payload_json LIKE ?1",
        [format!("%{session_id}%")],
        |row| row.get(0),
    )?)
}

/// `n` paid receipts with gateway-signed proofs, as the core stores them after payments.
fn receipts(n: usize, gateway: u64, merchant: u64) -> anyhow::Result<Vec<Receipt>> {
    let key = PrivateKey::generate();
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let start = now - n as u64 - 10;
    (0..n)
        .map(|i| {
            let created_at = start + i as u64;
            let txid = format!("tx_{i:032x}");
            let order_id = format!("ord_{i:032x}");
            let proof = json!({"txid": txid, "issuer": gateway,
                "from": {"ocid": gateway, "reference": "acct_2f1e0d9c8b7a6f5e"},
                "to": {"ocid": merchant, "reference": order_id},
                "amount": "8.25", "currency": "USD", "timestamp": created_at + 1});
            let signature = sign_object(&key, &proof)?;
            Ok(Receipt {
                session_id: format!("{i:032x}"),
                flow: PaymentFlow::WalletQr,
                status: PaymentStatus::Paid,
                merchant_ocid: Some(i64::try_from(merchant)?),
                merchant_name: Some("Test Coffee".into()),
                order_id: Some(order_id),
                amount: Some(Money::new("8.25", "USD")?),
                created_at: UNIX_EPOCH + Duration::from_secs(created_at),
                paid_at: Some(UNIX_EPOCH + Duration::from_secs(created_at + 1)),
                txid: Some(txid),
                proof_json: Some(json!({"proof": proof, "signature": signature}).to_string()),
                proof_issuer: Some(i64::try_from(gateway)?),
                proof_verified: true,
                decline_reason: None,
                redirect_url: None,
            })
        })
        .collect()
}
