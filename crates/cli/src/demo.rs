//! `opencharge demo`: whole payments end to end on loopback. Starts an embedded gateway and
//! merchant, creates and funds a demo account, opens a wallet on the real core, then runs the
//! payment flows (wallet QR, merchant QR, hosted checkout, a prompt that reaches a locked
//! phone by push through a loopback FCM, third-party settlement through a bank on its own
//! three parties, and a payment to a friend's wallet), verifying and timing every step, and
//! prints a summary. Exit code 0 only if every step was verified.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, ensure, Context};
use opencharge_merchant::RunningMerchant;
use opencharge_protocol::types::{OrderStatus, SignedOrder};
use opencharge_wallet::{
    ConnectionState, EventStream, HistoryQuery, Money, PaymentFlow, PaymentPrompt, PaymentStatus,
    PaymentStatusUpdate, PushEnvironment, PushEvent, PushProvider, Receipt, ScanResult, Wallet,
    WalletError, WalletListener,
};
use rust_decimal::Decimal;
use tokio::sync::mpsc;

use opencharge_testkit::push::FakeFcm;
use opencharge_testkit::{coffee_order, Network, GATEWAY_OCID, MERCHANT_OCID};

use crate::sandbox::{start_network, MERCHANT_NAME};
use crate::ui::{self, StepResult};

/// How long the demo waits for something that happens at once on loopback.
const WAIT: Duration = Duration::from_secs(30);
/// What the demo account starts with.
const STARTING_FUNDS: &str = "50.00";
/// The FCM registration token of the demo phone (the loopback FCM accepts any token).
const DEMO_FCM_TOKEN: &str = "demo-phone:APA91bDemoRegistrationToken";

/// Which payment flows to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlowChoice {
    /// All the flows, one after the other.
    All,
    /// Flow 1: the wallet shows a QR; the merchant scans it and posts a signed order.
    WalletQr,
    /// Flow 2: the merchant shows an order QR; the wallet scans it.
    MerchantQr,
    /// Flow 3: a hosted checkout link opened by the wallet.
    Checkout,
    /// Flow 4: the phone is locked (no event stream); the prompt arrives by push (a loopback
    /// FCM) and a notification extension handles it in low-memory mode.
    Push,
    /// Third-party settlement: a merchant whose gateway settles only through a bank where our
    /// gateway holds a reserve (`/payment/create`, the bank's `/transfer/create`,
    /// `/payment/settle`), on its own three parties.
    ThirdParty,
    /// Paying a person: a friend's wallet (on the same gateway) shows its receive QR; the
    /// shopper scans it and sends money with a memo; the friend's history and event stream
    /// show it.
    P2p,
}

/// Run whole payments end to end on loopback: an embedded gateway and merchant, a funded demo
/// account and a wallet on the real core. Every step is verified and timed; the exit code is 0
/// only if every step was verified.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    opencharge demo                       # all the flows, temporary data\n  \
    opencharge demo --flow third-party    # pay through a bank both gateways accept\n  \
    opencharge demo --flow p2p            # a friend is paid by scanning a receive QR\n  \
    opencharge demo --flow push           # a prompt reaches a locked phone by push\n  \
    opencharge demo --flow wallet-qr --interactive\n  \
    opencharge demo --data-dir ./demo-data   # keep the SQLite files and keys")]
pub struct DemoArgs {
    /// Which flows to run.
    #[arg(long, value_enum, default_value_t = FlowChoice::All)]
    pub flow: FlowChoice,
    /// Keep all data (SQLite files, keys) in this directory instead of a temporary one that is
    /// deleted at exit. A later run on the same directory reuses its wallet and account.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Ask before paying each prompt (y/n) instead of confirming automatically.
    #[arg(long)]
    pub interactive: bool,
    /// Do not draw QR codes in the terminal (their text is still printed).
    #[arg(long)]
    pub no_qr: bool,
}

/// One payment flow.
#[derive(Debug, Clone, Copy)]
enum Flow {
    WalletQr,
    MerchantQr,
    Checkout,
    Push,
    ThirdParty,
    P2p,
}

/// One flow's result for the summary.
struct FlowReport {
    name: &'static str,
    order_id: String,
    total: String,
    txid: String,
    elapsed: Duration,
}

/// Runs the demo and prints the summary.
pub async fn run(args: DemoArgs) -> ExitCode {
    ui::init_logs("warn");
    println!("Opencharge demo: whole payments on loopback, on the real wallet core");
    let started = Instant::now();
    let mut log = Vec::new();
    let outcome = demo(&args, &mut log).await;
    summary(&outcome, &log, started.elapsed())
}

async fn demo(args: &DemoArgs, log: &mut Vec<StepResult>) -> anyhow::Result<Vec<FlowReport>> {
    println!("\nSetting up");
    // The loopback FCM (and its service-account key) only when the push flow runs.
    let push = if matches!(args.flow, FlowChoice::All | FlowChoice::Push) {
        Some(
            ui::step(
                log,
                "start a loopback FCM (it checks every field of what the gateway sends)",
                FakeFcm::try_start(),
                |fcm| format!("FCM at {}, project {}", fcm.endpoint(), fcm.project_id()),
            )
            .await?,
        )
    } else {
        None
    };
    let network = ui::step(
        log,
        "start the gateway and the merchant on loopback",
        start_network(
            args.data_dir.clone(),
            push.as_ref().map(FakeFcm::fcm_config),
            None,
            1,
        ),
        |n| {
            format!(
                "gateway OCID {GATEWAY_OCID} at {}, merchant \"{MERCHANT_NAME}\" OCID {MERCHANT_OCID} at {}",
                n.endpoint(),
                n.merchant().endpoint()
            )
        },
    )
    .await?;
    println!("    data dir: {}", network.data_dir().display());
    let result = with_wallet(&network, push.as_ref(), args, log).await;
    network.stop().await;
    result
}

/// Sets up the demo account and wallet, runs the flows, and closes the wallet.
async fn with_wallet(
    network: &Network,
    push: Option<&FakeFcm>,
    args: &DemoArgs,
    log: &mut Vec<StepResult>,
) -> anyhow::Result<Vec<FlowReport>> {
    let wallet = Wallet::open(network.wallet_config("demo"), None)
        .await
        .context("cannot open the demo wallet")?;
    match wallet.registration().await? {
        // A --data-dir of an earlier run: the same wallet, device and account pay again.
        Some(registration) => {
            ui::step(
                log,
                "reuse the demo account and device of the earlier run",
                top_up(network, &wallet, &registration.account_id),
                |topped| {
                    format!(
                        "device {}, account {} holds {STARTING_FUNDS} USD ({topped} USD added)",
                        registration.device_id, registration.account_id
                    )
                },
            )
            .await?;
        }
        None => register(network, &wallet, log).await?,
    }
    let (listener, mut prompts) = DemoListener::new();
    let events = wallet.start_events(listener)?;
    let mut ctx = Ctx {
        network,
        push,
        merchant: network.merchant(),
        wallet: &wallet,
        events: Some(events),
        prompts: &mut prompts,
        args,
    };
    let mut reports = Vec::new();
    let flows: &[Flow] = match args.flow {
        FlowChoice::All => &[
            Flow::WalletQr,
            Flow::MerchantQr,
            Flow::Checkout,
            Flow::Push,
            Flow::ThirdParty,
            Flow::P2p,
        ],
        FlowChoice::WalletQr => &[Flow::WalletQr],
        FlowChoice::MerchantQr => &[Flow::MerchantQr],
        FlowChoice::Checkout => &[Flow::Checkout],
        FlowChoice::Push => &[Flow::Push],
        FlowChoice::ThirdParty => &[Flow::ThirdParty],
        FlowChoice::P2p => &[Flow::P2p],
    };
    let mut failure = None;
    for flow in flows {
        let result = match flow {
            Flow::WalletQr => wallet_qr(&mut ctx, log).await,
            Flow::MerchantQr => merchant_qr(&mut ctx, log).await,
            Flow::Checkout => checkout(&mut ctx, log).await,
            Flow::Push => push_flow(&mut ctx, log).await,
            Flow::ThirdParty => third_party(log).await,
            Flow::P2p => p2p_flow(&mut ctx, log).await,
        };
        match result {
            Ok(report) => reports.push(report),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if let Some(events) = ctx.events.take() {
        events.stop_and_wait().await;
    }
    // The last reference: dropping it closes the wallet's database.
    drop(wallet);
    match failure {
        Some(e) => Err(e),
        None => Ok(reports),
    }
}

/// A fresh data dir: creates and funds the demo account and registers the wallet's device to it.
async fn register(
    network: &Network,
    wallet: &Wallet,
    log: &mut Vec<StepResult>,
) -> anyhow::Result<()> {
    let (account_id, code) = ui::step(
        log,
        "create and fund a demo account",
        async {
            let account = network.new_account("Demo shopper").await?;
            network
                .fund(&account.account_id, &format!("{STARTING_FUNDS} USD"))
                .await?;
            Ok((account.account_id, account.enrollment_code))
        },
        |(account, _)| format!("account {account} holds {STARTING_FUNDS} USD"),
    )
    .await?;
    ui::step(
        log,
        "register this device with the wallet core",
        async {
            let registration = wallet.register_device(code).await?;
            ensure!(
                registration.account_id == account_id,
                "the device was registered to {} instead of {account_id}",
                registration.account_id
            );
            Ok(())
        },
        |()| {
            format!(
                "device {} (key {})",
                wallet.device_id().unwrap_or_default(),
                short(&wallet.device_public_key().unwrap_or_default())
            )
        },
    )
    .await
}

/// Brings the demo account of an earlier run back to [`STARTING_FUNDS`] USD (never down);
/// returns what was added.
async fn top_up(network: &Network, wallet: &Wallet, account_id: &str) -> anyhow::Result<Decimal> {
    // The phone starts unlocked, as on a first run: no push token until the push flow.
    wallet.clear_push_token().await?;
    let balance = usd_balance(wallet).await.context(
        "the wallet of the earlier run cannot read its balance (was the gateway's database \
         deleted?); use a new --data-dir or delete this one",
    )?;
    let target = Decimal::from_str(STARTING_FUNDS).context("starting funds")?;
    let missing = (target - balance).max(Decimal::ZERO);
    if missing > Decimal::ZERO {
        network
            .fund(account_id, &format!("{} USD", missing.round_dp(2)))
            .await?;
    }
    Ok(missing)
}

/// What every flow works with.
struct Ctx<'a> {
    network: &'a Network,
    /// The loopback FCM, when the push flow runs.
    push: Option<&'a FakeFcm>,
    merchant: &'a RunningMerchant,
    wallet: &'a Arc<Wallet>,
    /// The app's event stream while the app is "in the foreground" (closed by the push flow).
    events: Option<Arc<EventStream>>,
    prompts: &'a mut mpsc::UnboundedReceiver<PaymentPrompt>,
    args: &'a DemoArgs,
}

/// Flow 1: the wallet shows a session QR; the merchant scans it and posts a signed order; the
/// prompt reaches the wallet over the event stream.
async fn wallet_qr(ctx: &mut Ctx<'_>, log: &mut Vec<StepResult>) -> anyhow::Result<FlowReport> {
    println!("\nFlow 1, wallet QR: the shopper shows a QR, the merchant scans it");
    let started = Instant::now();
    let before = usd_balance(ctx.wallet).await?;
    let session = ui::step(
        log,
        "wallet creates a payment session",
        async { Ok(ctx.wallet.create_payment_session().await?) },
        |s| {
            format!(
                "session {}, QR valid for {} s",
                s.session_id,
                s.expires_at
                    .duration_since(SystemTime::now())
                    .map(|left| left.as_secs())
                    .unwrap_or_default()
            )
        },
    )
    .await?;
    show_qr(ctx.args, &session.qr_payload);
    let order = create_order(ctx, log, "table-4").await?;
    let order_id = order.order.id.clone();
    ui::step(
        log,
        "merchant scans the wallet's QR and posts the signed order",
        async {
            Ok(ctx
                .merchant
                .post_to_wallet_session(&session.qr_payload, &order_id)
                .await?)
        },
        |r| format!("gateway accepted it; status URL {}", r.urls.status),
    )
    .await?;
    let session_id = session.session_id.clone();
    let prompt = ui::step(
        log,
        "prompt arrives on the wallet over the event stream",
        wait_prompt(ctx.prompts, &session_id),
        describe_prompt,
    )
    .await?;
    check_prompt(&prompt, &order)?;
    print_items(&prompt);
    settle(ctx, log, prompt, &order, before, true).await?;
    Ok(report("wallet-qr", &order, ctx, started).await)
}

/// Flow 2: the merchant shows an order QR; the wallet scans it, fetches the signed order from
/// the merchant and verifies it.
async fn merchant_qr(ctx: &mut Ctx<'_>, log: &mut Vec<StepResult>) -> anyhow::Result<FlowReport> {
    println!("\nFlow 2, merchant QR: the merchant shows a QR, the shopper scans it");
    let started = Instant::now();
    let before = usd_balance(ctx.wallet).await?;
    let order = create_order(ctx, log, "counter-1").await?;
    let qr = ctx.merchant.order_qr(&order.order.id)?;
    show_qr(ctx.args, &qr);
    let prompt = ui::step(
        log,
        "wallet scans the QR and verifies the merchant's signed order",
        async {
            match ctx.wallet.scan(qr.clone()).await? {
                ScanResult::Prompt { prompt } => Ok(prompt),
                other => bail!("expected a payable order, the scan gave {other:?}"),
            }
        },
        describe_prompt,
    )
    .await?;
    check_prompt(&prompt, &order)?;
    print_items(&prompt);
    settle(ctx, log, prompt, &order, before, false).await?;
    Ok(report("merchant-qr", &order, ctx, started).await)
}

/// Flow 3: the merchant, acting as its own Merchant Gateway, opens a hosted checkout at the
/// gateway; the wallet opens the checkout link.
async fn checkout(ctx: &mut Ctx<'_>, log: &mut Vec<StepResult>) -> anyhow::Result<FlowReport> {
    println!("\nFlow 3, hosted checkout: a web shop hands the shopper a checkout link");
    let started = Instant::now();
    let before = usd_balance(ctx.wallet).await?;
    let order = create_order(ctx, log, "web-1001").await?;
    let order_id = order.order.id.clone();
    let success = format!("https://demo-coffee.example/checkout/done?order={order_id}");
    let cancel = format!("https://demo-coffee.example/checkout/cancelled?order={order_id}");
    let created = ui::step(
        log,
        "merchant opens a hosted checkout at the gateway",
        async {
            Ok(ctx
                .merchant
                .create_checkout(GATEWAY_OCID, &order_id, &success, &cancel)
                .await?)
        },
        |c| format!("checkout URL {}", c.checkout_url),
    )
    .await?;
    show_qr(ctx.args, &created.checkout_url);
    let prompt = ui::step(
        log,
        "wallet opens the checkout link and verifies the order",
        async {
            Ok(ctx
                .wallet
                .open_checkout(created.checkout_url.clone())
                .await?)
        },
        describe_prompt,
    )
    .await?;
    check_prompt(&prompt, &order)?;
    print_items(&prompt);
    let receipt = settle(ctx, log, prompt, &order, before, false).await?;
    ensure!(
        receipt.redirect_url.as_deref() == Some(success.as_str()),
        "the receipt should send the shopper back to {success}, it says {:?}",
        receipt.redirect_url
    );
    println!("    shopper is sent back to {success}");
    Ok(report("checkout", &order, ctx, started).await)
}

/// Flow 4: the app is in the background, so its event stream is closed; the gateway wakes the
/// phone through FCM with a payload that names only the event, and a notification extension
/// opens the wallet in low-memory mode, fetches and verifies the prompt and shows the merchant
/// and amount. The shopper taps "Confirm" and the app pays.
async fn push_flow(ctx: &mut Ctx<'_>, log: &mut Vec<StepResult>) -> anyhow::Result<FlowReport> {
    println!("\nFlow 4, push: the shopper's phone is locked; the prompt arrives by push");
    let fcm = ctx
        .push
        .context("the demo started without its loopback FCM")?;
    let started = Instant::now();
    let before = usd_balance(ctx.wallet).await?;
    ui::step(
        log,
        "wallet registers its FCM token with the gateway",
        async {
            Ok(ctx
                .wallet
                .set_push_token(
                    PushProvider::Fcm,
                    DEMO_FCM_TOKEN.into(),
                    PushEnvironment::Production,
                )
                .await?)
        },
        |r| format!("token stored for {:?} ({:?})", r.provider, r.environment).to_lowercase(),
    )
    .await?;
    let session = ui::step(
        log,
        "wallet creates a payment session",
        async { Ok(ctx.wallet.create_payment_session().await?) },
        |s| format!("session {}", s.session_id),
    )
    .await?;
    show_qr(ctx.args, &session.qr_payload);
    ui::step(
        log,
        "the phone locks: the app's event stream is closed",
        async {
            if let Some(events) = ctx.events.take() {
                events.stop_and_wait().await;
            }
            Ok(())
        },
        |()| "no stream open; only a push can reach the wallet now".to_string(),
    )
    .await?;
    let order = create_order(ctx, log, "table-9").await?;
    let order_id = order.order.id.clone();
    ui::step(
        log,
        "merchant scans the wallet's QR and posts the signed order",
        async {
            Ok(ctx
                .merchant
                .post_to_wallet_session(&session.qr_payload, &order_id)
                .await?)
        },
        |_| "gateway accepted it and queued a wake-up".to_string(),
    )
    .await?;
    let message = ui::step(
        log,
        "gateway sends a wake-up through FCM: no amount, no merchant, no items in it",
        async {
            // Wake-ups for other sessions (queued by an earlier run on the same data dir,
            // whose phone had a token) are not this prompt's: skip them.
            let deadline = Instant::now() + WAIT;
            let message = loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let message = fcm
                    .next_message(left)
                    .await
                    .context("no FCM message for this session arrived")?;
                if message.data.get("sessionId") == Some(&session.session_id) {
                    break message;
                }
            };
            let refused = fcm.rejections();
            ensure!(refused.is_empty(), "the loopback FCM refused: {refused:?}");
            ensure!(
                message.token == DEMO_FCM_TOKEN,
                "sent to token {}",
                message.token
            );
            let mut keys: Vec<&str> = message.data.keys().map(String::as_str).collect();
            keys.sort_unstable();
            ensure!(
                keys == ["eventId", "sessionId", "type"],
                "the wake-up carries {keys:?}"
            );
            Ok(message)
        },
        |m| format!("FCM data {}", m.data_json()),
    )
    .await?;
    let (prompt, text) = ui::step(
        log,
        "notification extension opens the wallet (low memory), fetches and verifies the prompt",
        async {
            let mut config = ctx.network.wallet_config("demo");
            config.low_memory = true;
            let extension = Wallet::open(config, None).await?;
            let event = extension.handle_push(message.data_json()).await?;
            match event {
                PushEvent::PaymentRequest {
                    prompt,
                    notification,
                } => Ok((prompt, notification)),
                other => bail!("the push gave {other:?}, not the payment request"),
            }
        },
        |(_, text)| format!("notification \"{}: {}\"", text.title, text.body),
    )
    .await?;
    check_prompt(&prompt, &order)?;
    print_items(&prompt);
    println!(
        "    shopper taps \"Confirm\" on the notification: {}",
        text.title
    );
    settle(ctx, log, prompt, &order, before, true).await?;
    Ok(report("push", &order, ctx, started).await)
}

/// Third-party settlement on its own three parties (our gateway, the bank holding its
/// reserve, the merchant as its own Merchant Gateway settling only through the bank): the wallet
/// scans an order, confirms, and the payment goes `/payment/create` → the bank's
/// `/transfer/create` → `/payment/settle`; the receipt proof is the Merchant Gateway's and
/// both the Merchant Gateway and the bank answer `/verify` with `completed`.
async fn third_party(log: &mut Vec<StepResult>) -> anyhow::Result<FlowReport> {
    use opencharge_testkit::three_party::{ThreeParty, BANK_OCID};
    println!("\nThird-party settlement: the merchant's gateway settles only through a bank");
    let started = Instant::now();
    let parties = ui::step(
        log,
        "start our gateway, a bank holding its reserve, and a merchant accepting only the bank",
        ThreeParty::start(),
        |p| {
            format!(
                "gateway {GATEWAY_OCID}, bank {BANK_OCID} at {}, merchant {MERCHANT_OCID} at {}",
                p.bank().endpoint(),
                p.network.merchant().endpoint()
            )
        },
    )
    .await?;
    let result = third_party_steps(&parties, log, started).await;
    parties.stop().await;
    result
}

/// The verified steps of [`third_party`].
async fn third_party_steps(
    parties: &opencharge_testkit::three_party::ThreeParty,
    log: &mut Vec<StepResult>,
    started: Instant,
) -> anyhow::Result<FlowReport> {
    use opencharge_testkit::three_party::{ThreePartyOptions, BANK_OCID};
    let network = &parties.network;
    let merchant = network.merchant();
    let wallet = &network
        .wallets
        .first()
        .context("the three parties opened no wallet")?
        .wallet;
    let before = usd_balance(wallet).await?;
    let (order, prompt) = ui::step(
        log,
        "wallet scans the merchant's order QR (its order accepts neither our gateway nor a partner)",
        network.scan_order(wallet),
        |(_, p)| describe_prompt(p),
    )
    .await?;
    check_prompt(&prompt, &order)?;
    let receipt = ui::step(
        log,
        "wallet confirms; our gateway holds the money, creates the payment at the merchant's \
         gateway, has the bank transfer and settles",
        async {
            let receipt = wallet.confirm(prompt.prompt_id.clone()).await?;
            ensure!(
                receipt.status == PaymentStatus::Paid,
                "the payment is {}, not paid",
                receipt.status.as_str()
            );
            ensure!(
                receipt.proof_issuer == Some(MERCHANT_OCID as i64),
                "the receipt proof is issued by {:?}, not the merchant's gateway {MERCHANT_OCID}",
                receipt.proof_issuer
            );
            ensure!(
                receipt.proof_verified,
                "the merchant gateway's proof did not verify on the wallet"
            );
            Ok(receipt)
        },
        |r| {
            format!(
                "paid, txid {}, proof by the merchant's gateway {} verified",
                r.txid.as_deref().unwrap_or("?"),
                r.proof_issuer.unwrap_or_default()
            )
        },
    )
    .await?;
    let txid = receipt.txid.clone().unwrap_or_default();
    ui::step(
        log,
        "merchant's order is paid with its gateway's proof",
        async {
            let record = merchant.wait_paid(&order.order.id, WAIT).await?;
            ensure!(
                record.txid.as_deref() == Some(txid.as_str()),
                "the merchant recorded txid {:?}, the wallet {txid}",
                record.txid
            );
            Ok(record)
        },
        |r| {
            format!(
                "order {} paid by issuer {}",
                r.order_id,
                r.issuer.unwrap_or_default()
            )
        },
    )
    .await?;
    let gateway = network.gateway().context("our gateway is not running")?;
    let bank_txid = merchant
        .payment(&txid)?
        .and_then(|p| p.provider_proof)
        .map(|p| p.proof.txid)
        .context("the merchant's gateway kept no bank proof")?;
    for (who, endpoint, asked) in [
        (
            "the merchant's gateway",
            merchant.endpoint().to_string(),
            &txid,
        ),
        (
            "the bank",
            parties.bank().endpoint().to_string(),
            &bank_txid,
        ),
    ] {
        ui::step(
            log,
            &format!("{who} answers GET /verify/{{txid}} with completed"),
            async {
                let url = format!("{endpoint}/verify/{asked}");
                let response = opencharge_testkit::signed_request(
                    &network.http,
                    &gateway.state.key,
                    GATEWAY_OCID,
                    "GET",
                    &url,
                    None,
                    network.now(),
                )
                .await?;
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await?;
                ensure!(status == 200, "GET {url} answered {status}: {body}");
                ensure!(
                    body["status"] == "completed",
                    "GET {url} says {}",
                    body["status"]
                );
                Ok(body)
            },
            |b| format!("{} issued by {}", asked, b["proof"]["issuer"]),
        )
        .await?;
    }
    let amount = Decimal::from_str(&prompt.total.amount).context("prompt amount")?;
    ui::step(
        log,
        "balance went down by exactly the total, once; the bank debited our reserve once",
        async {
            let after = usd_balance(wallet).await?;
            ensure!(
                before - after == amount,
                "balance went from {before} to {after}, expected a debit of {amount}"
            );
            let reserve = parties.bank_usd(&parties.reserve_account()).await?;
            let start = ThreePartyOptions::default().reserve_minor;
            ensure!(
                Decimal::new(start - reserve, 2) == amount,
                "the bank debited our reserve from {start} to {reserve} cents"
            );
            let paid_to_gateway = parties.bank_usd(&format!("ocid:{MERCHANT_OCID}")).await?;
            ensure!(
                Decimal::new(paid_to_gateway, 2) == amount,
                "the bank credited the merchant's gateway {paid_to_gateway} cents"
            );
            Ok((after, reserve, BANK_OCID))
        },
        |(after, reserve, bank)| {
            format!(
                "{before} USD - {amount} USD = {after} USD; reserve at bank {bank}: {} USD",
                Decimal::new(*reserve, 2)
            )
        },
    )
    .await?;
    Ok(FlowReport {
        name: "third-party",
        order_id: order.order.id.clone(),
        total: format!("{} {}", order.order.amount, order.order.currency),
        txid,
        elapsed: started.elapsed(),
    })
}

/// How much the shopper sends the friend, and the note with it.
const P2P_AMOUNT: &str = "3.50";
const P2P_MEMO: &str = "lunch, thanks!";

/// Paying a person: a friend's wallet (a second account and device on the same gateway, so
/// the payment settles inside it) shows its receive QR; the shopper's wallet scans it, asks
/// its gateway for a transfer prompt, checks who, which gateway, amount and memo, and
/// confirms; the shopper is debited exactly, and the friend's wallet hears the payment on its
/// event stream and finds the receipt in its history.
async fn p2p_flow(ctx: &mut Ctx<'_>, log: &mut Vec<StepResult>) -> anyhow::Result<FlowReport> {
    println!("\nPaying a person: a friend shows a receive QR, the shopper sends money");
    let started = Instant::now();
    let before = usd_balance(ctx.wallet).await?;
    let friend = ui::step(
        log,
        "a friend's wallet opens on the same gateway",
        friend_wallet(ctx.network),
        |(_, account)| format!("account {account}"),
    )
    .await?;
    let (friend, _) = friend;
    let (listener, mut statuses) = StatusListener::new();
    let friend_events = friend.start_events(listener)?;
    let result = async {
        let address = ui::step(
            log,
            "friend's wallet shows its receive QR",
            async { Ok(friend.receive_address().await?) },
            |a| {
                format!(
                    "{} has OCID {} at gateway {}",
                    a.name.as_deref().unwrap_or("the friend"),
                    a.ocid,
                    a.gateway_ocid
                )
            },
        )
        .await?;
        show_qr(ctx.args, &address.qr_payload);
        let payee = ui::step(
            log,
            "shopper's wallet scans it: a person to pay",
            async {
                match ctx.wallet.scan(address.qr_payload.clone()).await? {
                    ScanResult::Person { payee } => {
                        ensure!(
                            payee.ocid == address.ocid && payee.gateway_ocid == address.gateway_ocid,
                            "the scan names OCID {} at {}, the QR {} at {}",
                            payee.ocid,
                            payee.gateway_ocid,
                            address.ocid,
                            address.gateway_ocid
                        );
                        Ok(payee)
                    }
                    other => bail!("expected a person, the scan gave {other:?}"),
                }
            },
            |p| {
                format!(
                    "{} at {}",
                    p.name.as_deref().unwrap_or("(no name)"),
                    p.gateway_name.as_deref().unwrap_or("(unnamed gateway)")
                )
            },
        )
        .await?;
        let amount = Money::new(P2P_AMOUNT, "USD")?;
        let prompt = ui::step(
            log,
            "gateway writes and signs the transfer; the wallet checks it",
            async {
                let prompt = ctx
                    .wallet
                    .send_to_person(payee.clone(), amount.clone(), Some(P2P_MEMO.into()))
                    .await?;
                let recipient = prompt.recipient.as_ref().context("no recipient")?;
                ensure!(
                    prompt.flow == PaymentFlow::Transfer
                        && prompt.merchant_ocid == address.ocid
                        && recipient.gateway_ocid == address.gateway_ocid
                        && prompt.total == amount
                        && prompt.memo.as_deref() == Some(P2P_MEMO),
                    "the prompt does not pay {P2P_AMOUNT} USD \"{P2P_MEMO}\" to OCID {}: {prompt:?}",
                    address.ocid
                );
                Ok(prompt)
            },
            |p| {
                format!(
                    "{} {} to {} \"{}\", order {}",
                    p.total.amount,
                    p.total.currency,
                    p.merchant_name.as_deref().unwrap_or("the friend"),
                    p.memo.as_deref().unwrap_or_default(),
                    p.order_id
                )
            },
        )
        .await?;
        if ctx.args.interactive && !ui::ask_to_pay(&prompt, 4).await? {
            ctx.wallet
                .decline(prompt.prompt_id.clone(), Some("declined in the demo".into()))
                .await?;
            bail!("you declined the transfer; nothing was paid");
        }
        let receipt = ui::step(
            log,
            "wallet confirms with a signature by its device key",
            async {
                let receipt = ctx.wallet.confirm(prompt.prompt_id.clone()).await?;
                ensure!(
                    receipt.status == PaymentStatus::Paid && receipt.proof_verified,
                    "the transfer is {} (proof verified: {})",
                    receipt.status.as_str(),
                    receipt.proof_verified
                );
                Ok(receipt)
            },
            |r| {
                format!(
                    "paid, txid {}, proof by OCID {} verified",
                    r.txid.as_deref().unwrap_or("?"),
                    r.proof_issuer.unwrap_or_default()
                )
            },
        )
        .await?;
        let sent = Decimal::from_str(P2P_AMOUNT).context("amount")?;
        ui::step(
            log,
            "shopper's balance went down by exactly the amount, once",
            async {
                let after = usd_balance(ctx.wallet).await?;
                ensure!(
                    before - after == sent,
                    "balance went from {before} to {after}, expected a debit of {sent}"
                );
                Ok(after)
            },
            |after| format!("{before} USD - {sent} USD = {after} USD"),
        )
        .await?;
        let received = ui::step(
            log,
            "friend's wallet hears the payment and keeps its receipt",
            async {
                let update = tokio::time::timeout(WAIT, async {
                    while let Some(update) = statuses.recv().await {
                        if update.status == PaymentStatus::Paid && update.txid == receipt.txid {
                            return Ok(update);
                        }
                    }
                    bail!("the friend's event stream ended")
                })
                .await
                .map_err(|_| anyhow::anyhow!("no payment status within {} s", WAIT.as_secs()))??;
                let history = friend.history(HistoryQuery { limit: 20, before: None }).await?;
                let kept = history
                    .receipts
                    .into_iter()
                    .find(|r| r.session_id == update.session_id)
                    .context("the received payment is not in the friend's history")?;
                ensure!(
                    kept.flow == PaymentFlow::Received
                        && kept.amount.as_ref() == Some(&amount)
                        && kept.status == PaymentStatus::Paid,
                    "the friend's receipt is {kept:?}"
                );
                Ok(kept)
            },
            |r| {
                format!(
                    "received {} USD from {}, receipt {}",
                    P2P_AMOUNT,
                    r.merchant_name.as_deref().unwrap_or("the shopper"),
                    r.session_id
                )
            },
        )
        .await?;
        Ok(FlowReport {
            name: "p2p",
            order_id: prompt.order_id.clone(),
            total: format!("{} {}", prompt.total.amount, prompt.total.currency),
            txid: received.txid.unwrap_or_default(),
            elapsed: started.elapsed(),
        })
    }
    .await;
    friend_events.stop_and_wait().await;
    // The last reference: dropping it closes the friend's database.
    drop(friend);
    result
}

/// The friend's wallet: registered to a new account on the first run, the same one on a later
/// run with the same --data-dir.
async fn friend_wallet(network: &Network) -> anyhow::Result<(Arc<Wallet>, String)> {
    let wallet = Wallet::open(network.wallet_config("demo-friend"), None)
        .await
        .context("cannot open the friend's wallet")?;
    if let Some(registration) = wallet.registration().await? {
        return Ok((wallet, registration.account_id));
    }
    let account = network.new_account("Demo friend").await?;
    wallet.register_device(account.enrollment_code).await?;
    Ok((wallet, account.account_id))
}

/// Forwards payment statuses to the p2p flow; the rest is ignored.
struct StatusListener {
    statuses: mpsc::UnboundedSender<PaymentStatusUpdate>,
}

impl StatusListener {
    fn new() -> (
        Arc<StatusListener>,
        mpsc::UnboundedReceiver<PaymentStatusUpdate>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Arc::new(StatusListener { statuses: tx }), rx)
    }
}

impl WalletListener for StatusListener {
    fn on_prompt(&self, _prompt: PaymentPrompt) -> Result<(), WalletError> {
        Ok(())
    }

    fn on_prompt_rejected(&self, _prompt_id: String, _reason: String) -> Result<(), WalletError> {
        Ok(())
    }

    fn on_payment_status(&self, update: PaymentStatusUpdate) -> Result<(), WalletError> {
        let _ = self.statuses.send(update);
        Ok(())
    }

    fn on_connection_state(&self, _state: ConnectionState) -> Result<(), WalletError> {
        Ok(())
    }
}

/// The steps every flow ends with: confirm (or decline when the user says no), the merchant's
/// webhook gets the proof, the status URL says paid, and the balance went down by exactly the
/// order total.
async fn settle(
    ctx: &mut Ctx<'_>,
    log: &mut Vec<StepResult>,
    prompt: PaymentPrompt,
    order: &SignedOrder,
    before: Decimal,
    gateway_status: bool,
) -> anyhow::Result<Receipt> {
    let order_id = order.order.id.clone();
    if ctx.args.interactive && !ui::ask_to_pay(&prompt, 4).await? {
        let receipt = ctx
            .wallet
            .decline(
                prompt.prompt_id.clone(),
                Some("declined in the demo".into()),
            )
            .await?;
        bail!(
            "you declined the payment (status {}); nothing was paid",
            receipt.status.as_str()
        );
    }
    let receipt = ui::step(
        log,
        "wallet confirms with a signature by its device key",
        async {
            let receipt = ctx.wallet.confirm(prompt.prompt_id.clone()).await?;
            ensure!(
                receipt.status == PaymentStatus::Paid,
                "the payment is {}, not paid",
                receipt.status.as_str()
            );
            ensure!(
                receipt.proof_verified,
                "the gateway's proof did not verify on the wallet"
            );
            Ok(receipt)
        },
        |r| {
            format!(
                "paid, txid {}, proof by OCID {} verified",
                r.txid.as_deref().unwrap_or("?"),
                r.proof_issuer.unwrap_or_default()
            )
        },
    )
    .await?;
    ui::step(
        log,
        "merchant's webhook receives and checks the proof",
        async {
            let record = ctx.merchant.wait_paid(&order_id, WAIT).await?;
            ensure!(
                record.txid == receipt.txid,
                "the merchant recorded txid {:?}, the wallet {:?}",
                record.txid,
                receipt.txid
            );
            Ok(record)
        },
        |r| {
            format!(
                "order {} paid by issuer {}",
                r.order_id,
                r.issuer.unwrap_or_default()
            )
        },
    )
    .await?;
    if gateway_status {
        ui::step(
            log,
            "gateway status URL reports paid",
            async {
                let status = ctx.merchant.gateway_status(&order_id).await?;
                ensure!(
                    status.status == OrderStatus::Paid,
                    "the gateway reports {:?}",
                    status.status
                );
                Ok(status)
            },
            |s| format!("{:?} at {}", s.status, s.paid_at.unwrap_or_default()).to_lowercase(),
        )
        .await?;
    }
    ui::step(
        log,
        "merchant status URL reports paid",
        merchant_status(ctx.merchant, &order_id),
        |status| format!("GET /orders/{order_id}/status says {status}"),
    )
    .await?;
    let amount = Decimal::from_str(&prompt.total.amount).context("prompt amount")?;
    ui::step(
        log,
        "balance went down by exactly the total, once",
        async {
            let after = usd_balance(ctx.wallet).await?;
            ensure!(
                before - after == amount,
                "balance went from {before} to {after}, expected a debit of {amount}"
            );
            Ok(after)
        },
        |after| format!("{before} USD - {amount} USD = {after} USD"),
    )
    .await?;
    Ok(receipt)
}

/// A signed order for two coffees and a cake: 8.25 USD.
async fn create_order(
    ctx: &Ctx<'_>,
    log: &mut Vec<StepResult>,
    reference: &str,
) -> anyhow::Result<SignedOrder> {
    let new = coffee_order(reference);
    ui::step(
        log,
        "merchant signs an order",
        async { Ok(ctx.merchant.create_order(new)?) },
        |o| {
            format!(
                "order {} for {} {}",
                o.order.id, o.order.amount, o.order.currency
            )
        },
    )
    .await
}

/// The wallet's prompt must show the merchant's order as signed.
fn check_prompt(prompt: &PaymentPrompt, order: &SignedOrder) -> anyhow::Result<()> {
    ensure!(
        prompt.order_id == order.order.id,
        "prompt is for order {}",
        prompt.order_id
    );
    ensure!(
        u64::try_from(prompt.merchant_ocid) == Ok(MERCHANT_OCID),
        "prompt names merchant {}",
        prompt.merchant_ocid
    );
    let want = Decimal::from_str(&order.order.amount.to_string()).context("order amount")?;
    let got = Decimal::from_str(&prompt.total.amount).context("prompt amount")?;
    ensure!(
        want == got && prompt.total.currency == order.order.currency,
        "prompt asks {} {}, the order says {} {}",
        prompt.total.amount,
        prompt.total.currency,
        order.order.amount,
        order.order.currency
    );
    Ok(())
}

/// Waits for the prompt `id` on the event stream; other prompts are skipped.
async fn wait_prompt(
    prompts: &mut mpsc::UnboundedReceiver<PaymentPrompt>,
    id: &str,
) -> anyhow::Result<PaymentPrompt> {
    tokio::time::timeout(WAIT, async {
        while let Some(prompt) = prompts.recv().await {
            if prompt.prompt_id == id {
                return Ok(prompt);
            }
        }
        bail!("the event stream ended")
    })
    .await
    .map_err(|_| anyhow::anyhow!("no prompt within {} s", WAIT.as_secs()))?
}

/// `GET <merchant>/orders/{id}/status` over HTTP; succeeds only when it says paid.
async fn merchant_status(merchant: &RunningMerchant, order_id: &str) -> anyhow::Result<String> {
    let url = format!("{}/orders/{order_id}/status", merchant.endpoint());
    let answer: serde_json::Value = reqwest::get(&url)
        .await
        .with_context(|| format!("GET {url}"))?
        .json()
        .await
        .with_context(|| format!("GET {url}: unreadable answer"))?;
    let status = answer["status"].as_str().unwrap_or_default().to_string();
    ensure!(status == "paid", "GET {url} says {answer}");
    Ok(status)
}

/// The wallet's USD balance from the gateway, exact.
async fn usd_balance(wallet: &Wallet) -> anyhow::Result<Decimal> {
    let balances = wallet.balance().await?;
    let usd = balances
        .iter()
        .find(|b| b.currency == "USD")
        .context("the wallet has no USD balance")?;
    Decimal::from_str(&usd.amount).with_context(|| format!("balance {:?}", usd.amount))
}

async fn report(
    name: &'static str,
    order: &SignedOrder,
    ctx: &Ctx<'_>,
    started: Instant,
) -> FlowReport {
    let txid = ctx
        .merchant
        .order(&order.order.id)
        .ok()
        .flatten()
        .and_then(|r| r.txid)
        .unwrap_or_default();
    FlowReport {
        name,
        order_id: order.order.id.clone(),
        total: format!("{} {}", order.order.amount, order.order.currency),
        txid,
        elapsed: started.elapsed(),
    }
}

fn describe_prompt(p: &PaymentPrompt) -> String {
    format!(
        "{} asks {} {} for order {}",
        p.merchant_name.as_deref().unwrap_or("(unnamed merchant)"),
        p.total.amount,
        p.total.currency,
        p.order_id
    )
}

fn print_items(prompt: &PaymentPrompt) {
    for item in &prompt.items {
        println!(
            "      {} x {} at {} {}",
            item.quantity, item.name, item.unit_price.amount, item.unit_price.currency
        );
    }
    println!(
        "      total {} {}",
        prompt.total.amount, prompt.total.currency
    );
}

fn show_qr(args: &DemoArgs, payload: &str) {
    if !args.no_qr {
        if let Ok(art) = opencharge_wallet::render_qr_terminal(payload.to_string()) {
            println!("{}", ui::indent(&art, 4));
        }
    }
    println!("    QR: {payload}");
}

fn summary(
    outcome: &anyhow::Result<Vec<FlowReport>>,
    log: &[StepResult],
    elapsed: Duration,
) -> ExitCode {
    let verified = log.iter().filter(|s| s.ok).count();
    println!("\nSummary");
    match outcome {
        Ok(reports) => {
            println!(
                "  {:<12} {:<40} {:>10}  {:<7} {:>10}  txid",
                "flow", "order", "total", "result", "time"
            );
            for r in reports {
                println!(
                    "  {:<12} {:<40} {:>10}  {:<7} {:>10}  {}",
                    r.name,
                    r.order_id,
                    r.total,
                    "paid",
                    ui::duration(r.elapsed),
                    r.txid
                );
            }
            if let Some(slowest) = log.iter().max_by_key(|s| s.elapsed) {
                println!(
                    "\n  slowest step: {} ({})",
                    slowest.label,
                    ui::duration(slowest.elapsed)
                );
            }
            println!(
                "\nAll {} flow(s) paid; {verified} of {} steps verified in {}.",
                reports.len(),
                log.len(),
                ui::duration(elapsed)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let failed = log
                .iter()
                .find(|s| !s.ok)
                .map(|s| format!(" at \"{}\"", s.label))
                .unwrap_or_default();
            println!(
                "  FAILED{failed} after {verified} verified step(s) in {}: {e:#}",
                ui::duration(elapsed)
            );
            ExitCode::FAILURE
        }
    }
}

fn short(hex: &str) -> String {
    hex.chars().take(16).collect::<String>() + "…"
}

/// Forwards prompts to the demo; the rest of what the core says is ignored.
struct DemoListener {
    prompts: mpsc::UnboundedSender<PaymentPrompt>,
}

impl DemoListener {
    fn new() -> (Arc<DemoListener>, mpsc::UnboundedReceiver<PaymentPrompt>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Arc::new(DemoListener { prompts: tx }), rx)
    }
}

impl WalletListener for DemoListener {
    fn on_prompt(&self, prompt: PaymentPrompt) -> Result<(), WalletError> {
        let _ = self.prompts.send(prompt);
        Ok(())
    }

    fn on_prompt_rejected(&self, prompt_id: String, reason: String) -> Result<(), WalletError> {
        println!("    ! the wallet rejected prompt {prompt_id}: {reason}");
        Ok(())
    }

    fn on_payment_status(&self, _update: PaymentStatusUpdate) -> Result<(), WalletError> {
        Ok(())
    }

    fn on_connection_state(&self, _state: ConnectionState) -> Result<(), WalletError> {
        Ok(())
    }
}
