//! `push-latency`: how long a wake-up takes from a merchant's order POST until the push
//! provider has it, on loopback. Starts a gateway whose `[push.fcm]` points at the test kit's
//! strict loopback FCM (OAuth token exchange, every field checked), opens wallets on the real
//! core that register FCM tokens, and posts orders to their payment sessions one after another;
//! prints p50/p90/p99/max of "POST sent -> FCM accepted the wake-up" and the load average.
//! Figures are printed, never asserted.
//!
//!   push-latency --orders 500 --wallets 20

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Parser;
use opencharge_testkit::push::FakeFcm;
use opencharge_testkit::{coffee_order, Network};
use opencharge_wallet::{PushEnvironment, PushProvider};

/// Measures order POST -> push sent latency on loopback.
#[derive(Debug, Parser)]
#[command(name = "push-latency", verbatim_doc_comment)]
struct Args {
    /// Orders to post (one at a time), each waking one phone.
    #[arg(long, default_value_t = 200)]
    orders: usize,
    /// Wallets (phones) with a registered FCM token; orders go to them in turn.
    #[arg(long, default_value_t = 10)]
    wallets: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.orders > 0 && args.wallets > 0,
        "--orders and --wallets must be at least 1"
    );
    let fcm = FakeFcm::start().await;
    let config = fcm.fcm_config();
    // A measurement, not a test: the embedded SQLite default whatever OPENCHARGE_TEST_BACKEND
    // says.
    let env = Network::builder()
        .sqlite()
        .gateway_config(move |c| c.push.fcm = Some(config))
        .start()
        .await
        .context("starting the loopback network")?;
    let mut phones = Vec::new();
    for i in 0..args.wallets {
        let (wallet, _) = env.wallet(&format!("phone-{i}"), None).await?;
        wallet
            .set_push_token(
                PushProvider::Fcm,
                format!("phone-{i}:APA91bLatency"),
                PushEnvironment::Production,
            )
            .await?;
        phones.push(wallet);
    }
    let merchant = env.merchant();
    let mut samples = Vec::with_capacity(args.orders);
    for k in 0..args.orders {
        let wallet = &phones[k % phones.len()];
        let session = wallet.create_payment_session().await?;
        let order = merchant.create_order(coffee_order(&format!("latency-{k}")))?;
        let started = Instant::now();
        merchant
            .post_to_wallet_session(&session.qr_payload, &order.order.id)
            .await?;
        loop {
            let Some(message) = fcm.next_message(Duration::from_secs(30)).await else {
                bail!("no wake-up within 30 s for order {k}");
            };
            if message.data.get("sessionId") == Some(&session.session_id) {
                samples.push(started.elapsed());
                break;
            }
        }
    }
    let refused = fcm.rejections();
    ensure!(refused.is_empty(), "the loopback FCM refused: {refused:?}");
    env.stop().await;

    samples.sort_unstable();
    let at = |p: f64| {
        let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples[rank.clamp(1, samples.len()) - 1].as_secs_f64() * 1000.0
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "push latency (order POST -> FCM accepted), {} orders to {} phones, {} token exchange(s):",
        samples.len(),
        args.wallets,
        fcm.token_exchanges()
    );
    println!(
        "  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        at(50.0),
        at(90.0),
        at(99.0),
        at(100.0)
    );
    println!(
        "  load average: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}
