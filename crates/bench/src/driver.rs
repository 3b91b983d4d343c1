//! The payment loop: `concurrency` workers, each paying again and again with its device and
//! a merchant (wallet QR flow: session, signed order POSTed to it, prompt over SSE, confirm,
//! proof on the merchant's webhook), timing every leg, until the payment count or the time
//! budget is used up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::ProgressBar;
use opencharge_wallet::PaymentStatus;

use crate::setup::{new_order, Device, Network};

/// The legs of one payment, in order. Legs that start at the same instant overlap: the
/// prompt and the webhook legs are measured from the start of the request that causes them.
pub const LEGS: [(&str, &str); 7] = [
    (
        "session",
        "wallet creates a QR session (POST /app/sessions)",
    ),
    ("order_sign", "merchant builds, signs and stores the order"),
    (
        "order_post",
        "merchant POSTs the signed order to the session",
    ),
    (
        "post_to_prompt",
        "order POST sent -> prompt verified and stored on the device (SSE)",
    ),
    (
        "confirm",
        "device confirms; receipt with verified proof back",
    ),
    (
        "confirm_to_webhook",
        "confirm sent -> merchant accepted the proof on its webhook",
    ),
    ("total", "whole payment, session to webhook"),
];

/// Durations of one payment's legs, in [`LEGS`] order.
pub type Sample = [Duration; LEGS.len()];

/// What a phase produced.
#[derive(Default)]
pub struct Outcome {
    /// Leg durations of each completed payment.
    pub samples: Vec<Sample>,
    /// Failed payments: the leg that failed and why.
    pub failures: Vec<(String, String)>,
    /// From the first payment's start to the last one's end.
    pub elapsed: Duration,
}

/// Limits of one phase.
#[derive(Clone, Copy)]
pub struct Phase {
    /// Payments to make.
    pub payments: u64,
    /// Stop starting payments after this long.
    pub duration: Duration,
    /// Payments in flight at once.
    pub concurrency: usize,
    /// Line items per order.
    pub items: usize,
    /// Longest wait for any one leg.
    pub leg_timeout: Duration,
    /// Open-loop pacing: payment i starts at `i / rate` seconds into the phase (or later when
    /// every worker is busy). `None`: each worker starts its next payment at once.
    pub rate: Option<f64>,
}

/// Runs one phase and returns its samples and failures.
pub async fn run(
    net: &Arc<Network>,
    devices: &Arc<Vec<Device>>,
    phase: Phase,
    progress: &ProgressBar,
) -> Outcome {
    let claimed = Arc::new(AtomicU64::new(0));
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let start = Instant::now();
    let deadline = start + phase.duration;
    let mut workers = Vec::with_capacity(phase.concurrency);
    for worker in 0..phase.concurrency {
        let (net, devices, claimed, outcome) = (
            Arc::clone(net),
            Arc::clone(devices),
            Arc::clone(&claimed),
            Arc::clone(&outcome),
        );
        let progress = progress.clone();
        workers.push(tokio::spawn(async move {
            let device = &devices[worker % devices.len()];
            loop {
                let index = claimed.fetch_add(1, Ordering::Relaxed);
                if index >= phase.payments {
                    break;
                }
                if let Some(rate) = phase.rate {
                    let due = start + Duration::from_secs_f64(index as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                if Instant::now() >= deadline {
                    break;
                }
                let merchant = index as usize % net.merchants.len();
                let result = pay(&net, device, merchant, index, phase).await;
                if let Ok(mut out) = outcome.lock() {
                    match result {
                        Ok(sample) => out.samples.push(sample),
                        Err((leg, error)) => {
                            out.failures.push((leg.to_string(), format!("{error:#}")))
                        }
                    }
                }
                progress.inc(1);
            }
        }));
    }
    for worker in workers {
        if let Err(e) = worker.await {
            if let Ok(mut out) = outcome.lock() {
                out.failures.push(("worker".into(), e.to_string()));
            }
        }
    }
    let elapsed = start.elapsed();
    let mut out = match Arc::try_unwrap(outcome) {
        Ok(mutex) => mutex.into_inner().unwrap_or_default(),
        Err(shared) => shared
            .lock()
            .map(|mut o| std::mem::take(&mut *o))
            .unwrap_or_default(),
    };
    out.elapsed = elapsed;
    out
}

/// A failed payment: the leg and the error.
type Failure = (&'static str, anyhow::Error);

/// Runs `future` as leg `leg` within `timeout`.
async fn leg<T>(
    leg: &'static str,
    timeout: Duration,
    future: impl std::future::Future<Output = anyhow::Result<T>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err((leg, e)),
        Err(_) => Err((leg, anyhow::anyhow!("no answer within {timeout:?}"))),
    }
}

/// One whole payment through every leg.
async fn pay(
    net: &Network,
    device: &Device,
    merchant: usize,
    index: u64,
    phase: Phase,
) -> Result<Sample, Failure> {
    let merchant = &net.merchants[merchant];
    let t0 = Instant::now();
    let session = leg("session", phase.leg_timeout, async {
        device
            .wallet
            .create_payment_session()
            .await
            .context("create_payment_session")
    })
    .await?;
    let t1 = Instant::now();
    let prompt = device.listener.expect(&session.session_id);
    let result = async {
        let order_id = leg("order_sign", phase.leg_timeout, async {
            merchant
                .create_order(net, new_order(phase.items, format!("bench-{index}")))
                .await
        })
        .await?;
        let t2 = Instant::now();
        leg("order_post", phase.leg_timeout, async {
            merchant
                .post_order(net, &order_id, &session.qr_payload)
                .await
        })
        .await?;
        let t3 = Instant::now();
        let prompted = leg("post_to_prompt", phase.leg_timeout, async {
            match prompt.await {
                Ok(Ok(at)) => Ok(at),
                Ok(Err(rejected)) => bail!("{rejected}"),
                Err(_) => bail!("the listener dropped the prompt"),
            }
        })
        .await?;
        let t4 = Instant::now();
        let confirm = async {
            let receipt = device
                .wallet
                .confirm(session.session_id.clone())
                .await
                .context("confirm")?;
            if receipt.status != PaymentStatus::Paid || !receipt.proof_verified {
                bail!(
                    "receipt is {:?} with proof_verified = {}",
                    receipt.status,
                    receipt.proof_verified
                );
            }
            Ok(Instant::now())
        };
        let webhook = merchant.wait_paid(net, &order_id, phase.leg_timeout);
        let (confirmed, paid) = tokio::join!(
            leg("confirm", phase.leg_timeout, confirm),
            leg("confirm_to_webhook", phase.leg_timeout, webhook)
        );
        let (confirmed, paid) = (confirmed?, paid?);
        Ok([
            t1 - t0,
            t2 - t1,
            t3 - t2,
            prompted.saturating_duration_since(t2),
            confirmed - t4,
            paid.saturating_duration_since(t4),
            paid.max(confirmed) - t0,
        ])
    }
    .await;
    if result.is_err() {
        device.listener.forget(&session.session_id);
    }
    result
}
