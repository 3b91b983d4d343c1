//! Criterion benches of the protocol primitives every payment pays for: ECDSA signing and
//! verification (with the public key parsed each time, and cached), canonical JSON of orders
//! of 1, 10 and 100 items, and `X-OC-*` request signing and verification.
//!
//! Run: `cargo bench -p opencharge-protocol --bench protocol` (figures in docs/performance.md);
//! add `--features native-verify -- ecdsa/verify` for libsecp256k1 against k256 (docs/adr/0008).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use opencharge_protocol::auth::{RequestAuth, HEADER_ID, HEADER_NONCE, HEADER_SIGNATURE};
use opencharge_protocol::auth::{HEADER_TIMESTAMP, TIMESTAMP_WINDOW_SECS};
use opencharge_protocol::canonical::canonicalize;
use opencharge_protocol::keys::{sha256, PrivateKey, PublicKey, Signature, VerifyOptions};
use opencharge_protocol::signing::{object_hash, sign_object, verify_order, OrderVerifyMode};
use serde_json::{json, Value};

/// Unix time the fixtures are signed at.
const NOW: i64 = 1_760_000_000;

/// A merchant order shaped as the merchant peer signs it, with `items` line items.
fn order(items: usize) -> Value {
    let lines: Vec<Value> = (0..items)
        .map(|i| {
            json!({"id": format!("sku-{i:04}"), "name": format!("Item number {i}"),
                   "quantity": 1 + (i % 3), "price": "2.50"})
        })
        .collect();
    let total: u64 = (0..items).map(|i| 250 * (1 + (i as u64 % 3))).sum();
    json!({
        "id": "ord_5f0c8e1d2b3a4c5d6e7f8091a2b3c4d5",
        "ocid": 500,
        "amount": format!("{}.{:02}", total / 100, total % 100),
        "currency": "USD",
        "createdAt": NOW,
        "expiresAt": NOW + 300,
        "accepts": [200],
        "reference": "table-4",
        "items": lines,
    })
}

/// CPU time this thread has used (`CLOCK_THREAD_CPUTIME_ID`), on Unix.
#[cfg(unix)]
fn thread_cpu_time() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the call only writes into it.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (status == 0).then(|| Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

/// No thread CPU clock off Unix: the CPU-time group is skipped.
#[cfg(not(unix))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

/// CPU time of `iters` calls of `verify`, each of which must succeed.
fn cpu_time<E: std::fmt::Debug>(iters: u64, verify: impl Fn() -> Result<(), E>) -> Duration {
    let start = thread_cpu_time().expect("checked before the group");
    for _ in 0..iters {
        verify().unwrap();
    }
    thread_cpu_time().expect("checked before the group") - start
}

fn signatures(c: &mut Criterion) {
    let key = PrivateKey::generate();
    let public = key.public_key();
    let public_hex = public.to_hex();
    let order = order(1);
    let signature = sign_object(&key, &order).unwrap();
    let digest = sha256(canonicalize(&order).unwrap().as_bytes());
    let parsed = Signature::parse(&signature, VerifyOptions::STRICT).unwrap();

    let mut group = c.benchmark_group("ecdsa");
    group.bench_function("sign_prehash", |b| {
        b.iter(|| key.sign_prehash(black_box(&digest)).unwrap())
    });
    // Without `native-verify` both are k256; with it `verify_prehash` is libsecp256k1 and
    // `verify_prehash_k256` the pure-Rust path it replaces (docs/adr/0008).
    group.bench_function("verify_prehash", |b| {
        b.iter(|| public.verify_prehash(black_box(&digest), &parsed).unwrap())
    });
    group.bench_function("verify_prehash_k256", |b| {
        b.iter(|| {
            public
                .verify_prehash_k256(black_box(&digest), &parsed)
                .unwrap()
        })
    });
    group.bench_function("parse_public_key", |b| {
        b.iter(|| PublicKey::from_hex(black_box(&public_hex)).unwrap())
    });
    group.finish();

    // The same verifications in CPU time of the benchmark thread (Linux only), which a machine
    // shared with parallel builds does not inflate the way it inflates wall time.
    if thread_cpu_time().is_some() {
        let mut group = c.benchmark_group("ecdsa_cpu_time");
        group.bench_function("verify_prehash", |b| {
            b.iter_custom(|iters| {
                cpu_time(iters, || public.verify_prehash(black_box(&digest), &parsed))
            })
        });
        group.bench_function("verify_prehash_k256", |b| {
            b.iter_custom(|iters| {
                cpu_time(iters, || {
                    public.verify_prehash_k256(black_box(&digest), &parsed)
                })
            })
        });
        // libsecp256k1 alone, its key and signature parsed once: the difference to
        // `verify_prehash` is what handing k256's key and signature over per call costs.
        #[cfg(feature = "native-verify")]
        {
            let uncompressed: [u8; 65] = hex::decode(format!("04{public_hex}"))
                .unwrap()
                .try_into()
                .unwrap();
            let key = secp256k1::PublicKey::from_byte_array_uncompressed(uncompressed).unwrap();
            let compact = hex::decode(&signature[..128]).unwrap();
            let signature = secp256k1::ecdsa::Signature::from_compact(&compact).unwrap();
            group.bench_function("verify_prehash_libsecp256k1_parsed_once", |b| {
                b.iter_custom(|iters| {
                    cpu_time(iters, || {
                        let message = secp256k1::Message::from_digest(*black_box(&digest));
                        secp256k1::ecdsa::verify(&signature, message, &key)
                    })
                })
            });
        }
        group.finish();
    }

    let mut group = c.benchmark_group("order");
    group.bench_function("sign", |b| {
        b.iter(|| sign_object(&key, black_box(&order)).unwrap())
    });
    group.bench_function("verify_cold_key", |b| {
        b.iter(|| {
            let key = PublicKey::from_hex(black_box(&public_hex)).unwrap();
            verify_order(
                black_box(&order),
                &signature,
                500,
                &key,
                OrderVerifyMode::Strict,
                VerifyOptions::STRICT,
            )
            .unwrap()
        })
    });
    group.bench_function("verify_cached_key", |b| {
        b.iter(|| {
            verify_order(
                black_box(&order),
                &signature,
                500,
                &public,
                OrderVerifyMode::Strict,
                VerifyOptions::STRICT,
            )
            .unwrap()
        })
    });
    group.bench_function("hash", |b| {
        b.iter(|| object_hash(black_box(&order)).unwrap())
    });
    group.finish();
}

fn canonical(c: &mut Criterion) {
    let mut group = c.benchmark_group("canonicalize");
    for items in [1usize, 10, 100] {
        let order = order(items);
        let bytes = canonicalize(&order).unwrap().len() as u64;
        group.throughput(Throughput::Bytes(bytes));
        group.bench_with_input(BenchmarkId::new("order_items", items), &order, |b, o| {
            b.iter(|| canonicalize(black_box(o)).unwrap())
        });
    }
    group.finish();
}

fn requests(c: &mut Criterion) {
    let key = PrivateKey::generate();
    let public = key.public_key();
    let public_hex = public.to_hex();
    // What a merchant POSTs to a wallet session: the signed order envelope.
    let body = json!({"order": order(1), "signature": "00".repeat(65),
                      "urls": {"order": ["http://127.0.0.1:8710/opencharge/orders/ord_1"]}})
    .to_string()
    .into_bytes();
    let path = "/opencharge/orders/create/13c8f6878f55327769736d2129b2d9cb";
    let nonce = "req_8c1f5e2a9b7d4c3e6f0a1b2c3d4e5f60";
    let auth = RequestAuth::sign(&key, 500, "POST", path, &body, NOW, nonce).unwrap();
    let headers = auth.headers();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    assert!(get(HEADER_ID).is_some() && get(HEADER_NONCE).is_some());
    assert!(get(HEADER_TIMESTAMP).is_some() && get(HEADER_SIGNATURE).is_some());
    let now = NOW + TIMESTAMP_WINDOW_SECS / 2;

    let mut group = c.benchmark_group("request_auth");
    group.bench_function("sign", |b| {
        b.iter(|| RequestAuth::sign(&key, 500, "POST", path, black_box(&body), NOW, nonce).unwrap())
    });
    group.bench_function("verify_cached_key", |b| {
        b.iter(|| {
            let received = RequestAuth::from_headers(get).unwrap();
            received
                .verify(
                    &public,
                    "POST",
                    path,
                    black_box(&body),
                    now,
                    VerifyOptions::STRICT,
                )
                .unwrap()
        })
    });
    group.bench_function("verify_cold_key", |b| {
        b.iter(|| {
            let received = RequestAuth::from_headers(get).unwrap();
            let key = PublicKey::from_hex(black_box(&public_hex)).unwrap();
            received
                .verify(
                    &key,
                    "POST",
                    path,
                    black_box(&body),
                    now,
                    VerifyOptions::STRICT,
                )
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, signatures, canonical, requests);
criterion_main!(benches);
