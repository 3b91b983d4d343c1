//! Criterion benches of the wallet core as an app calls it: QR rendering (SVG, PNG, module
//! matrix), `Wallet.open` on a fresh and on an existing data dir, a history query over 1 000
//! stored receipts, prompt handling (verification alone, verification plus storage, and the
//! live event path), and the cheap local calls (`device_id`, `registration`,
//! `pending_prompts` of 100), with a real merchant on loopback serving the metadata the core
//! verifies against and real SQLite files in temporary directories.
//!
//! Run: `cargo bench -p opencharge-wallet --bench wallet` (figures in docs/performance.md).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use opencharge_merchant::{Merchant, MerchantConfig, NewItem, NewOrder, RunningMerchant};
use opencharge_protocol::keys::PrivateKey;
use opencharge_protocol::signing::{object_hash, sign_object};
use opencharge_wallet::bench_support::{seed_receipts, BenchEngine};
use opencharge_wallet::{
    render_qr_matrix, render_qr_png, render_qr_svg, DirectoryEntry, HistoryQuery, Money,
    PaymentFlow, PaymentStatus, Receipt, Wallet, WalletConfig,
};
use serde_json::{json, Value};

/// The merchant's OCID.
const MERCHANT: u64 = 500;
/// The gateway's OCID (only named in payloads; no gateway is contacted).
const GATEWAY: u64 = 200;
/// A gateway URL that is never contacted by these benches.
const UNUSED_GATEWAY: &str = "http://127.0.0.1:9/opencharge";
/// A wallet session QR as the gateway issues it (production-length URL).
const SESSION_QR: &str = "{\"ocid\":200,\"order\":\"https://api.wallet.example/opencharge/orders/create/13c8f6878f55327769736d2129b2d9cb\",\"expiresAt\":1760000300}";
/// Receipts seeded for the history benches.
const RECEIPTS: usize = 1_000;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Awaits one call of the async API from the bench thread, as an app's coroutine or task does
/// (the core runs the work on its own runtime).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static CALLER: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    CALLER
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        })
        .block_on(future)
}

fn config(dir: &std::path::Path) -> WalletConfig {
    let mut config = WalletConfig::new(UNUSED_GATEWAY, dir.display().to_string());
    config.allow_insecure_loopback = true;
    config
}

fn qr(c: &mut Criterion) {
    let mut group = c.benchmark_group("qr");
    group.bench_function("svg_8px", |b| {
        b.iter(|| render_qr_svg(black_box(SESSION_QR.to_string()), 8).unwrap())
    });
    group.bench_function("png_8px", |b| {
        b.iter(|| render_qr_png(black_box(SESSION_QR.to_string()), 8).unwrap())
    });
    group.bench_function("matrix", |b| {
        b.iter(|| render_qr_matrix(black_box(SESSION_QR.to_string())).unwrap())
    });
    group.finish();
}

fn open(c: &mut Criterion) {
    let mut group = c.benchmark_group("wallet_open");
    group.sample_size(30);
    // Fresh data dir: creates the directory, the database and its schema, a device key and
    // its key file.
    group.bench_function("cold", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let config = config(dir.path());
                (dir, config)
            },
            |(dir, config)| (block_on(Wallet::open(config, None)).unwrap(), dir),
            BatchSize::PerIteration,
        )
    });
    // Existing data dir: opens the database (schema current) and loads the key.
    let dir = tempfile::tempdir().unwrap();
    let existing = config(dir.path());
    drop(block_on(Wallet::open(existing.clone(), None)).unwrap());
    group.bench_function("warm", |b| {
        b.iter_batched(
            || existing.clone(),
            |config| block_on(Wallet::open(config, None)).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// `n` paid receipts with real signed proofs, one second apart, newest last.
fn receipts(n: usize) -> Vec<Receipt> {
    let gateway = PrivateKey::generate();
    let start = now() - n as i64 - 10;
    (0..n)
        .map(|i| {
            let created_at = start + i as i64;
            let txid = format!("tx_{i:032x}");
            let order_id = format!("ord_{i:032x}");
            let proof = json!({"txid": txid, "issuer": GATEWAY,
                "from": {"ocid": GATEWAY, "reference": "acct_2f1e0d9c8b7a6f5e"},
                "to": {"ocid": MERCHANT, "reference": order_id},
                "amount": "8.25", "currency": "USD", "timestamp": created_at + 1});
            let signature = sign_object(&gateway, &proof).unwrap();
            Receipt {
                session_id: format!("{i:032x}"),
                flow: PaymentFlow::WalletQr,
                status: PaymentStatus::Paid,
                merchant_ocid: Some(MERCHANT as i64),
                merchant_name: Some("Demo Coffee".into()),
                order_id: Some(order_id),
                amount: Some(Money::new("8.25", "USD").unwrap()),
                created_at: UNIX_EPOCH + Duration::from_secs(created_at as u64),
                paid_at: Some(UNIX_EPOCH + Duration::from_secs(created_at as u64 + 1)),
                txid: Some(txid),
                proof_json: Some(json!({"proof": proof, "signature": signature}).to_string()),
                proof_issuer: Some(GATEWAY as i64),
                proof_verified: true,
                decline_reason: None,
                redirect_url: None,
            }
        })
        .collect()
}

fn history(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    seed_receipts(&config.data_dir, &receipts(RECEIPTS)).unwrap();
    let wallet = block_on(Wallet::open(config, None)).unwrap();
    let mut group = c.benchmark_group("history_1000");
    group.bench_function("first_page_50", |b| {
        b.iter(|| {
            let page = block_on(wallet.history(HistoryQuery {
                limit: 50,
                before: None,
            }))
            .unwrap();
            assert_eq!(page.receipts.len(), 50);
            page
        })
    });
    group.bench_function("all_pages_of_200", |b| {
        b.iter(|| {
            let mut before = None;
            let mut seen = 0;
            loop {
                let page = block_on(wallet.history(HistoryQuery { limit: 200, before })).unwrap();
                seen += page.receipts.len();
                match page.next_cursor {
                    Some(cursor) => before = Some(cursor),
                    None => break,
                }
            }
            assert_eq!(seen, RECEIPTS);
            seen
        })
    });
    group.finish();
    drop(wallet);
}

/// A merchant on loopback (its metadata is what prompts are verified against) and a signed
/// order of two lines, valid for a day.
fn merchant(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
) -> (RunningMerchant, Value, String) {
    let mut config = MerchantConfig::for_tests(dir, MERCHANT, vec![GATEWAY]);
    config.order_ttl_secs = 86_400;
    let merchant = rt.block_on(Merchant::start(config)).unwrap();
    let signed = merchant
        .create_order(NewOrder {
            items: vec![
                NewItem {
                    id: "coffee".into(),
                    name: "Coffee".into(),
                    quantity: 2,
                    price: "2.50".into(),
                },
                NewItem {
                    id: "cake".into(),
                    name: "Cake".into(),
                    quantity: 1,
                    price: "3.25".into(),
                },
            ],
            currency: "USD".into(),
            reference: Some("table-4".into()),
            memo: None,
        })
        .unwrap();
    let order = serde_json::to_value(&signed.order).unwrap();
    (merchant, order, signed.signature)
}

/// The prompt object the gateway relays (`docs/app-api.md` §3.1) for session `n`.
fn prompt(n: u64, order: &Value, signature: &str) -> Value {
    json!({"type": "payment_request", "sessionId": format!("{n:032x}"), "flow": "wallet_qr",
           "merchantOcid": MERCHANT, "merchantName": "Test Coffee", "order": order,
           "signature": signature, "orderHash": object_hash(order).unwrap(),
           "expiresAt": now() + 3_600})
}

fn prompts(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (merchant, order, signature) = merchant(&rt, dir.path());
    let wallet_dir = dir.path().join("wallet");
    std::fs::create_dir_all(&wallet_dir).unwrap();
    let mut engine_config = config(&wallet_dir);
    engine_config.directory = config_directory(&merchant);
    let engine = BenchEngine::open(&engine_config).unwrap();
    // The first verification fetches and verifies the merchant's metadata; later ones hit
    // the resolver's cache, as in an app.
    engine
        .verify_prompt(&prompt(0, &order, &signature))
        .unwrap();
    let next = AtomicU64::new(1);
    let fresh = || prompt(next.fetch_add(1, Ordering::Relaxed), &order, &signature);

    let mut group = c.benchmark_group("prompt");
    group.bench_function("verify", |b| {
        b.iter_batched(
            fresh,
            |p| engine.verify_prompt(&p).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("verify_store", |b| {
        b.iter_batched(
            fresh,
            |p| assert!(engine.accept_prompt(&p).unwrap()),
            BatchSize::SmallInput,
        )
    });
    let event = AtomicU64::new(1);
    group.bench_function("event_verify_store_deliver", |b| {
        b.iter_batched(
            || (event.fetch_add(1, Ordering::Relaxed) as i64, fresh()),
            |(id, p)| engine.handle_prompt_event(id, &p).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
    engine.close();

    // What the app reads back: 100 verified prompts waiting (stored by the real accept path),
    // and the cheapest calls of the exported object, for comparison with the Kotlin FFI bench.
    let pending_dir = tempfile::tempdir().unwrap();
    let mut pending_config = config(pending_dir.path());
    pending_config.directory = config_directory(&merchant);
    let engine = BenchEngine::open(&pending_config).unwrap();
    for _ in 0..PENDING {
        assert!(engine.accept_prompt(&fresh()).unwrap());
    }
    engine.close();
    let wallet = block_on(Wallet::open(pending_config, None)).unwrap();
    let mut group = c.benchmark_group("calls");
    group.bench_function("device_id", |b| b.iter(|| wallet.device_id().unwrap()));
    group.bench_function("registration", |b| {
        b.iter(|| block_on(wallet.registration()).unwrap())
    });
    group.bench_function("pending_prompts_100", |b| {
        b.iter(|| {
            let pending = block_on(wallet.pending_prompts()).unwrap();
            assert_eq!(pending.len(), PENDING);
            pending
        })
    });
    group.finish();
    drop(wallet);
    rt.block_on(merchant.stop());
}

/// Prompts waiting for a decision in the `calls/pending_prompts_100` bench.
const PENDING: usize = 100;

/// A wallet directory that knows `merchant`.
fn config_directory(merchant: &RunningMerchant) -> Vec<DirectoryEntry> {
    vec![DirectoryEntry {
        ocid: MERCHANT as i64,
        metadata_url: merchant.metadata_url(),
    }]
}

criterion_group!(benches, qr, open, history, prompts);
criterion_main!(benches);
