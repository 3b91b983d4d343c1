//! `opencharge merchant`: serves a merchant (dev defaults on loopback when no configuration is
//! given), or drives a running one through its `/dev` control API: post an order to a
//! wallet's session QR (`scan`), create an order and show its QR (`order new`), read or cancel
//! an order (`order status`, `order cancel`). Money stays in exact decimal strings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use opencharge_merchant::{DirectoryEntry, Merchant, MerchantConfig};
use opencharge_protocol::money::{Amount, Currency};
use opencharge_protocol::qr::{parse_payload_unchecked, QrPayload};
use serde_json::{json, Value};

/// Where `scan` and `order` find the merchant unless told otherwise (`merchant serve`'s
/// default endpoint).
pub const DEFAULT_MERCHANT_URL: &str = "http://127.0.0.1:8710/opencharge";

/// How often `--wait` asks the merchant about the order.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Consecutive failed polls after which `--wait` gives up.
const MAX_POLL_FAILURES: u32 = 10;

/// Timeout of one request to the merchant's dev API.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve a merchant, or drive a running one through its dev API.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    opencharge merchant serve --gateway 200=http://127.0.0.1:8700/opencharge\n  \
    opencharge merchant scan '<wallet QR text>' --item coffee:Coffee:2:2.50 --wait\n  \
    opencharge merchant order new --item tea:Tea:1:4.50 --wait")]
pub struct MerchantArgs {
    #[command(subcommand)]
    command: MerchantCommand,
}

#[derive(Debug, clap::Subcommand)]
enum MerchantCommand {
    /// Serve a merchant until Ctrl-C. Without --config: dev defaults (OCID 500 on
    /// 127.0.0.1:8710/opencharge, dev API on, plain HTTP to loopback allowed, inventory tea
    /// 4.50 / cake 3.25 / coffee 2.50 USD).
    Serve(ServeArgs),
    /// The merchant "scans" a wallet's session QR: creates an order through the dev API and
    /// posts it to the wallet's session at its gateway.
    Scan(ScanArgs),
    /// Orders of a running merchant (through its dev API).
    Order(OrderArgs),
}

/// `merchant serve` options.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    # dev defaults, accepting payments from the gateway at port 8700\n  \
    opencharge merchant serve --gateway 200=http://127.0.0.1:8700/opencharge\n  \
    # from a TOML file (fields of MerchantConfig), data kept in ./merchant-data\n  \
    opencharge merchant serve --config merchant.toml --data-dir ./merchant-data")]
struct ServeArgs {
    /// TOML configuration (keys: ocid, name, listen, base_path, database, currencies,
    /// accepts, allow_loopback_http, dev_mode, [[directory]], [[inventory]], ...). Without
    /// it the dev defaults apply.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Keep the database (merchant.sqlite3) and the signing key (merchant.key) in this
    /// directory. Without it they live next to the configured database (by default in the
    /// working directory).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A payment gateway to accept: its OCID and metadata URL (or API endpoint, to which
    /// /metadata.json is appended). Repeatable.
    #[arg(long = "gateway", value_name = "OCID=METADATA_URL", value_parser = parse_directory_entry)]
    gateways: Vec<DirectoryEntry>,
    /// Log lines as human-readable text (colours only on a terminal) or one JSON object per
    /// line.
    #[arg(long, value_enum, default_value_t = crate::ui::LogFormat::Text)]
    log_format: crate::ui::LogFormat,
}

/// Which merchant to talk to, and the order's optional texts.
#[derive(Debug, clap::Args)]
struct OrderOptions {
    /// The merchant's API endpoint (its dev API must be on).
    #[arg(long, value_name = "URL", default_value = DEFAULT_MERCHANT_URL)]
    merchant: String,
    /// ISO 4217 currency of the prices (default: the merchant's first currency).
    #[arg(long, value_name = "CODE", value_parser = parse_currency)]
    currency: Option<String>,
    /// Merchant reference, e.g. an invoice number.
    #[arg(long, value_name = "TEXT")]
    reference: Option<String>,
    /// A note shown to the payer.
    #[arg(long, value_name = "TEXT")]
    memo: Option<String>,
    /// Wait (with a spinner) until the order is paid, expired or cancelled; exit 0 only when
    /// paid.
    #[arg(long)]
    wait: bool,
}

/// `merchant scan` options.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    opencharge merchant scan '{\"ocid\":200,\"order\":\"http://127.0.0.1:8700/opencharge/orders/create/qs_…\",\"expiresAt\":1767225600}' \\\n    \
    --item coffee:Coffee:2:2.50 --wait\n  \
    # without --item: one of the merchant's first inventory item\n  \
    opencharge merchant scan \"$(cat wallet-qr.txt)\" --merchant http://127.0.0.1:8710/opencharge")]
struct ScanArgs {
    /// The wallet's session QR text (what `opencharge wallet pay` prints after `QR: `).
    #[arg(value_name = "PAYLOAD")]
    payload: String,
    /// An order line `id:name:quantity:price`, e.g. `coffee:Coffee:2:2.50`. Repeatable.
    /// Without any: one of the merchant's first inventory item at its price.
    #[arg(long = "item", value_name = "ID:NAME:QTY:PRICE", value_parser = parse_item)]
    items: Vec<ItemArg>,
    #[command(flatten)]
    order: OrderOptions,
}

/// `merchant order` subcommands.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    opencharge merchant order new --item tea:Tea:2:4.50 --wait\n  \
    opencharge merchant order status ord_0123456789abcdef0123456789abcdef\n  \
    opencharge merchant order cancel ord_0123456789abcdef0123456789abcdef")]
struct OrderArgs {
    #[command(subcommand)]
    command: OrderCommand,
}

#[derive(Debug, clap::Subcommand)]
enum OrderCommand {
    /// Create an order and show its merchant-order QR for a wallet to scan.
    New(OrderNewArgs),
    /// Show an order's payment state.
    Status(OrderIdArgs),
    /// Cancel a pending order.
    Cancel(OrderIdArgs),
}

/// `merchant order new` options.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    opencharge merchant order new --item tea:Tea:2:4.50 --item cake:Cake:1:3.25 --wait\n  \
    opencharge merchant order new --item coffee:Coffee:1:2.50 --reference POS-17 --no-qr")]
struct OrderNewArgs {
    /// An order line `id:name:quantity:price`, e.g. `tea:Tea:2:4.50`. Repeatable.
    #[arg(long = "item", value_name = "ID:NAME:QTY:PRICE", value_parser = parse_item, required = true)]
    items: Vec<ItemArg>,
    /// Print only the QR text, not the QR code drawn in the terminal.
    #[arg(long)]
    no_qr: bool,
    #[command(flatten)]
    order: OrderOptions,
}

/// `merchant order status|cancel` options.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    opencharge merchant order status ord_0123456789abcdef0123456789abcdef")]
struct OrderIdArgs {
    /// The order id (`ord_…`).
    #[arg(value_name = "ORDER_ID")]
    order_id: String,
    /// The merchant's API endpoint (its dev API must be on).
    #[arg(long, value_name = "URL", default_value = DEFAULT_MERCHANT_URL)]
    merchant: String,
}

/// One order line from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ItemArg {
    id: String,
    name: String,
    quantity: u64,
    price: String,
}

impl ItemArg {
    fn to_json(&self) -> Value {
        json!({"id": self.id, "name": self.name, "quantity": self.quantity, "price": self.price})
    }
}

/// Parses `id:name:quantity:price`; the name may itself contain `:`.
fn parse_item(text: &str) -> Result<ItemArg, String> {
    let shape = || format!("{text:?} is not ID:NAME:QTY:PRICE (e.g. coffee:Coffee:2:2.50)");
    let (id, rest) = text.split_once(':').ok_or_else(shape)?;
    let (rest, price) = rest.rsplit_once(':').ok_or_else(shape)?;
    let (name, quantity) = rest.rsplit_once(':').ok_or_else(shape)?;
    if id.trim().is_empty() || name.trim().is_empty() {
        return Err(format!("{text:?}: the id and the name must not be empty"));
    }
    let quantity = quantity
        .parse::<u64>()
        .ok()
        .filter(|q| *q >= 1)
        .ok_or_else(|| format!("{text:?}: quantity {quantity:?} must be a whole number >= 1"))?;
    let amount = Amount::parse(price)
        .map_err(|e| format!("{text:?}: price {price:?} is not an exact amount: {e}"))?;
    Ok(ItemArg {
        id: id.to_string(),
        name: name.to_string(),
        quantity,
        price: amount.as_str().to_string(),
    })
}

/// Parses an ISO 4217 code.
fn parse_currency(text: &str) -> Result<String, String> {
    Currency::parse(text)
        .map(|c| c.code().to_string())
        .map_err(|e| format!("{text:?} is not an ISO 4217 currency: {e}"))
}

/// Parses `OCID=URL`.
fn parse_directory_entry(text: &str) -> Result<DirectoryEntry, String> {
    let (ocid, url) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not OCID=METADATA_URL"))?;
    let ocid = ocid
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("{text:?}: {ocid:?} is not an OCID (a whole number)"))?;
    let url = url.trim();
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{text:?}: {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{text:?}: {url:?} is not an http(s) URL"));
    }
    Ok(DirectoryEntry {
        ocid,
        metadata_url: url.to_string(),
    })
}

/// How a subcommand failed: a usage error (exit 2) or a failed operation (exit 1).
enum Failure {
    Usage(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Failed(e)
    }
}

/// Runs the subcommand.
pub async fn run(args: MerchantArgs) -> ExitCode {
    let result = match args.command {
        MerchantCommand::Serve(serve_args) => {
            opencharge_gateway::ops::logging::init(serve_args.log_format, "info");
            serve(serve_args).await
        }
        MerchantCommand::Scan(scan_args) => {
            crate::ui::init_logs("warn");
            scan(scan_args).await
        }
        MerchantCommand::Order(order_args) => {
            crate::ui::init_logs("warn");
            match order_args.command {
                OrderCommand::New(new_args) => order_new(new_args).await,
                OrderCommand::Status(id_args) => order_status(id_args).await,
                OrderCommand::Cancel(id_args) => order_cancel(id_args).await,
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// serve

/// The configuration `serve` runs: the file or the dev defaults, then the flags on top.
fn serve_config(args: &ServeArgs) -> Result<MerchantConfig, Failure> {
    let mut config = match &args.config {
        Some(path) => MerchantConfig::from_file(path).map_err(|e| Failure::Usage(e.to_string()))?,
        None => MerchantConfig::dev_defaults(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = &args.data_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        config.database = dir.join("merchant.sqlite3");
    }
    for entry in &args.gateways {
        config.directory.retain(|e| e.ocid != entry.ocid);
        config.directory.push(entry.clone());
        if !config.accepts.contains(&entry.ocid) {
            config.accepts.push(entry.ocid);
        }
    }
    // Without key_hex the merchant keeps its key beside the database (merchant.key in
    // --data-dir), created on first start; the database is bound to it.
    config
        .validate()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(config)
}

async fn serve(args: ServeArgs) -> Result<ExitCode, Failure> {
    // Validated: dev mode on a non-loopback address was refused (exit 2) before this point.
    let config = serve_config(&args)?;
    let dev_mode = config.dev_mode;
    let name = config.name.clone();
    let accepts = config.accepts.clone();
    let database = config.database.clone();
    let merchant = Merchant::start(config)
        .await
        .map_err(|e| anyhow!("cannot start the merchant: {e}"))?;
    // Installed before the banner: a SIGTERM sent once the banner is read stops it gracefully.
    let stop = opencharge_gateway::cli::shutdown_signal();
    println!("merchant {name} is serving");
    println!("  OCID:         {}", merchant.ocid());
    println!("  endpoint:     {}", merchant.endpoint());
    println!("  metadata URL: {}", merchant.metadata_url());
    println!("  public key:   {}", merchant.public_key_hex());
    println!("  database:     {}", database.display());
    if accepts.is_empty() {
        println!("  accepts:      no gateway yet (add --gateway OCID=METADATA_URL)");
    } else {
        let list: Vec<String> = accepts.iter().map(u64::to_string).collect();
        println!("  accepts:      gateway OCID {}", list.join(", "));
    }
    if dev_mode {
        println!(
            "  dev mode ON:  {}/dev/... is open (orders without authentication; loopback development only)",
            merchant.endpoint()
        );
    } else {
        println!("  dev mode off");
    }
    println!("Ctrl-C stops it.");
    stop.await;
    merchant.stop().await;
    println!("merchant stopped");
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// the dev API client

/// An error answer of the merchant's dev API (an `{"error": {...}}` envelope): the merchant
/// answered, so its code is the outcome.
#[derive(Debug)]
struct MerchantAnswer {
    status: u16,
    code: String,
    text: String,
}

impl std::fmt::Display for MerchantAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the merchant answered {} {}: {}",
            self.status, self.code, self.text
        )
    }
}

impl std::error::Error for MerchantAnswer {}

/// A running merchant's `/dev` API.
struct DevApi {
    endpoint: String,
    http: reqwest::Client,
}

impl DevApi {
    fn new(merchant: &str) -> Result<DevApi, Failure> {
        let endpoint = merchant.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&endpoint)
            .map_err(|e| Failure::Usage(format!("--merchant {merchant:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Failure::Usage(format!(
                "--merchant {merchant:?} must be an http(s) URL"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(DevApi { endpoint, http })
    }

    async fn get(&self, rel: &str) -> anyhow::Result<Value> {
        let url = format!("{}{rel}", self.endpoint);
        self.answer(&url, self.http.get(&url)).await
    }

    async fn post(&self, rel: &str, body: &Value) -> anyhow::Result<Value> {
        let url = format!("{}{rel}", self.endpoint);
        self.answer(&url, self.http.post(&url).json(body)).await
    }

    /// Sends the request; a 2xx JSON body is the answer, an error envelope becomes an error
    /// naming its code.
    async fn answer(&self, url: &str, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.send().await.map_err(|e| {
            anyhow!(
                "cannot reach the merchant at {}: {e} (is `opencharge merchant serve` running?)",
                self.endpoint
            )
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("reading the answer of {url}"))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let code = body["error"]["code"].as_str().unwrap_or("UNKNOWN");
        let message = body["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        let hint = if code == "NOT_FOUND" && url.contains("/dev/") {
            " (is the merchant's dev mode on?)"
        } else {
            ""
        };
        Err(anyhow::Error::new(MerchantAnswer {
            status: status.as_u16(),
            code: code.to_string(),
            text: format!("{message}{hint}"),
        }))
    }

    /// Creates an order; returns the `POST /dev/orders` answer.
    async fn create_order(
        &self,
        items: &[ItemArg],
        options: &OrderOptions,
    ) -> anyhow::Result<Value> {
        let mut body = json!({"items": items.iter().map(ItemArg::to_json).collect::<Vec<_>>()});
        for (field, value) in [
            ("currency", &options.currency),
            ("reference", &options.reference),
            ("memo", &options.memo),
        ] {
            if let Some(value) = value {
                body[field] = json!(value);
            }
        }
        self.post("/dev/orders", &body).await
    }

    /// One of the merchant's first inventory item at its price, and the inventory currency.
    async fn first_inventory_item(&self) -> anyhow::Result<(ItemArg, Option<String>)> {
        let inventory = self.get("/inventory").await?;
        let first = &inventory["items"][0];
        let text = |field: &str| first[field].as_str().map(str::to_string);
        match (text("id"), text("name"), text("price")) {
            (Some(id), Some(name), Some(price)) => Ok((
                ItemArg {
                    id,
                    name,
                    quantity: 1,
                    price,
                },
                inventory["currency"].as_str().map(str::to_string),
            )),
            _ => Err(anyhow!(
                "the merchant has no inventory to pick a default item from: pass --item ID:NAME:QTY:PRICE"
            )),
        }
    }
}

/// A string field of an answer, or an error naming it.
fn field<'a>(answer: &'a Value, name: &str) -> anyhow::Result<&'a str> {
    answer[name]
        .as_str()
        .ok_or_else(|| anyhow!("the merchant's answer has no {name}: {answer}"))
}

/// `order: …` and `total: …` lines of a created order; returns the order id.
fn print_created(created: &Value) -> anyhow::Result<String> {
    let order_id = field(created, "orderId")?.to_string();
    let order = &created["order"];
    println!("order: {order_id}");
    let currency = field(order, "currency")?;
    for item in order["items"].as_array().into_iter().flatten() {
        println!(
            "  {} x {} at {} {currency}",
            item["quantity"],
            item["name"].as_str().unwrap_or("?"),
            item["price"].as_str().unwrap_or("?")
        );
    }
    println!("total: {} {currency}", field(order, "amount")?);
    Ok(order_id)
}

/// Polls `GET /dev/orders/{id}` under a spinner until the order leaves `pending`. Exit 0 when
/// paid, 1 when it expired or was cancelled.
async fn wait_for_payment(api: &DevApi, order_id: &str) -> Result<ExitCode, Failure> {
    let bar = crate::ui::spinner(format!("waiting for the payment of {order_id}"));
    let mut failures = 0;
    let view = loop {
        match api.get(&format!("/dev/orders/{order_id}")).await {
            Ok(view) if view["status"] == "pending" => failures = 0,
            Ok(view) => break view,
            Err(e) => {
                failures += 1;
                if failures >= MAX_POLL_FAILURES {
                    bar.finish_and_clear();
                    return Err(Failure::Failed(e.context("waiting for the payment")));
                }
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    bar.finish_and_clear();
    let status = view["status"].as_str().unwrap_or("unknown");
    if status == "paid" {
        println!(
            "paid: {} {} (txid {}, proof issued by OCID {})",
            view["amount"].as_str().unwrap_or("?"),
            view["currency"].as_str().unwrap_or("?"),
            view["txid"].as_str().unwrap_or("?"),
            view["issuer"]
        );
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure::Failed(anyhow!(
            "order {order_id} is {status}, not paid"
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// scan and order

async fn scan(args: ScanArgs) -> Result<ExitCode, Failure> {
    match parse_payload_unchecked(&args.payload) {
        Ok(QrPayload::WalletSession(_)) => {}
        Ok(_) => {
            return Err(Failure::Usage(
                "PAYLOAD is an Opencharge QR but not a wallet's session QR ({\"ocid\",\"order\":\"…/orders/create/…\",\"expiresAt\"}); `opencharge wallet pay` shows one".into(),
            ))
        }
        Err(e) => {
            return Err(Failure::Usage(format!(
                "PAYLOAD is not a wallet session QR: {e}"
            )))
        }
    }
    let api = DevApi::new(&args.order.merchant)?;
    let mut options = args.order;
    let items = if args.items.is_empty() {
        let (item, currency) = api.first_inventory_item().await?;
        if options.currency.is_none() {
            options.currency = currency;
        }
        vec![item]
    } else {
        args.items
    };
    let created = api.create_order(&items, &options).await?;
    let order_id = print_created(&created)?;
    let posted = api
        .post(
            &format!("/dev/orders/{order_id}/post"),
            &json!({"sessionQr": args.payload}),
        )
        .await;
    let posted = match posted {
        Ok(posted) => posted,
        Err(e) if is_definite_failure(&e) => {
            // The merchant knows the order reached no wallet: withdraw it so it is not left
            // payable.
            let _ = api
                .post(&format!("/dev/orders/{order_id}/cancel"), &json!({}))
                .await;
            return Err(Failure::Failed(e.context(format!(
                "posting order {order_id} to the wallet's session (order cancelled)"
            ))));
        }
        Err(e) => {
            // The gateway may have taken the order (and a wallet may pay it): never cancel.
            println!("outcome unknown, order {order_id} kept pending (not cancelled): {e:#}");
            if options.wait {
                return wait_for_payment(&api, &order_id).await;
            }
            return Err(Failure::Failed(anyhow!(
                "outcome unknown, order {order_id} kept pending: check it later with \
                 `opencharge merchant order status {order_id}` (the proof arrives on the \
                 merchant's webhook if the wallet pays)"
            )));
        }
    };
    println!("posted to the wallet's session");
    println!("status URL: {}", field(&posted, "statusUrl")?);
    if options.wait {
        wait_for_payment(&api, &order_id).await
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// True when the merchant answered that posting failed for sure: any error answer but
/// `OUTCOME_UNKNOWN`. No answer at all (the merchant unreachable or too slow) is not sure.
fn is_definite_failure(e: &anyhow::Error) -> bool {
    e.downcast_ref::<MerchantAnswer>()
        .is_some_and(|answer| answer.code != opencharge_merchant::error::OUTCOME_UNKNOWN)
}

async fn order_new(args: OrderNewArgs) -> Result<ExitCode, Failure> {
    let api = DevApi::new(&args.order.merchant)?;
    let created = api.create_order(&args.items, &args.order).await?;
    let qr = field(&created, "qr")?.to_string();
    if !args.no_qr {
        match opencharge_wallet::render_qr_terminal(qr.clone()) {
            Ok(art) => println!("{}", crate::ui::indent(&art, 2)),
            Err(e) => eprintln!("warning: cannot draw the QR code: {e}"),
        }
    }
    println!("QR: {qr}");
    print_created(&created)?;
    if args.order.wait {
        wait_for_payment(&api, field(&created, "orderId")?).await
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// Prints an order view `{orderId, status, amount, currency, txid, issuer, paidAt}`.
fn print_view(view: &Value) {
    println!("order: {}", view["orderId"].as_str().unwrap_or("?"));
    println!("status: {}", view["status"].as_str().unwrap_or("?"));
    println!(
        "total: {} {}",
        view["amount"].as_str().unwrap_or("?"),
        view["currency"].as_str().unwrap_or("?")
    );
    if let Some(txid) = view["txid"].as_str() {
        println!("txid: {txid} (proof issued by OCID {})", view["issuer"]);
    }
}

async fn order_status(args: OrderIdArgs) -> Result<ExitCode, Failure> {
    let api = DevApi::new(&args.merchant)?;
    let view = api.get(&format!("/dev/orders/{}", args.order_id)).await?;
    print_view(&view);
    Ok(ExitCode::SUCCESS)
}

async fn order_cancel(args: OrderIdArgs) -> Result<ExitCode, Failure> {
    let api = DevApi::new(&args.merchant)?;
    let view = api
        .post(&format!("/dev/orders/{}/cancel", args.order_id), &json!({}))
        .await?;
    print_view(&view);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_parse_exactly() {
        let item = parse_item("coffee:Flat white: large:2:2.50").unwrap();
        assert_eq!(item.id, "coffee");
        assert_eq!(item.name, "Flat white: large");
        assert_eq!(item.quantity, 2);
        assert_eq!(item.price, "2.50");
        for bad in [
            "coffee",
            "coffee:Coffee:2",
            ":Coffee:2:2.50",
            "c:C:0:2.50",
            "c:C:x:2.50",
            "c:C:1:2,50",
            "c:C:1:-1",
        ] {
            assert!(parse_item(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_merchant_answer_other_than_outcome_unknown_is_a_definite_failure() {
        let answer = |code: &str| {
            anyhow::Error::new(MerchantAnswer {
                status: 502,
                code: code.into(),
                text: "x".into(),
            })
        };
        assert!(is_definite_failure(&answer("GATEWAY_UNAVAILABLE")));
        assert!(is_definite_failure(
            &answer("SESSION_USED").context("posting")
        ));
        assert!(!is_definite_failure(&answer("OUTCOME_UNKNOWN")));
        assert!(!is_definite_failure(&anyhow!("cannot reach the merchant")));
    }

    #[test]
    fn gateways_and_currencies_parse() {
        let entry = parse_directory_entry("200=http://127.0.0.1:8700/opencharge").unwrap();
        assert_eq!(entry.ocid, 200);
        assert_eq!(entry.metadata_url, "http://127.0.0.1:8700/opencharge");
        assert!(parse_directory_entry("http://x").is_err());
        assert!(parse_directory_entry("two=http://x").is_err());
        assert!(parse_directory_entry("2=ftp://x").is_err());
        assert_eq!(parse_currency("USD").unwrap(), "USD");
        assert!(parse_currency("DOLLARS").is_err());
    }
}
