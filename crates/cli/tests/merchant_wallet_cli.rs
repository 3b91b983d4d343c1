//! `opencharge merchant` and `opencharge wallet` as real processes against a real reference
//! gateway (in-process, dev mode, loopback, SQLite in a temp dir): the merchant serves on a
//! loopback port, a dev account is created and funded, the terminal wallet registers, shows
//! its QR while `merchant scan` posts an order to it, pays it with `--yes`; the wallet scans a
//! merchant-order QR and pays it, declines another; balances and history agree. Two terminal
//! wallets pay each other: `wallet receive` prints the receive QR and a link with an amount,
//! `wallet send` shows who, which gateway, the amount and memo, then pays. Bad inputs are
//! usage errors (exit 2) with a clear message.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use opencharge_gateway::config::DirectoryEntry;
use opencharge_gateway::{Gateway, RunningGateway};
use serde_json::{json, Value};

/// Longest any single command may take here.
const LIMIT: Duration = Duration::from_secs(60);

fn opencharge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opencharge"));
    command.env_remove("RUST_LOG");
    command
}

/// A child process with its output collected by reader threads; killed when dropped.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
    /// The thread copying stderr; joined once the process exits so nothing is missed.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        Proc::spawn_with_stdin(args, None)
    }

    /// Spawns `opencharge args…`; `input`, when given, is written to its stdin (then closed).
    fn spawn_with_stdin(args: &[&str], input: Option<&str>) -> Proc {
        let mut child = opencharge()
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = input {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(text.as_bytes()).unwrap();
        }
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Proc {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The first stdout line (from now on) for which `want` holds.
    fn line(&mut self, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no expected line ({e}); stdout so far:\n{}\nstderr:\n{}",
                    self.stdout.join("\n"),
                    self.stderr()
                ),
            }
        }
    }

    /// Waits for the exit; returns the exit code and the whole stdout.
    fn finish(mut self) -> (i32, String, String) {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit; stdout:\n{}\nstderr:\n{}",
                self.stdout.join("\n"),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader threads end at EOF: collect the rest of both streams.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stdout.push(line);
        }
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().unwrap();
        }
        let stderr = self.stderr();
        (status.code().unwrap_or(-1), self.stdout.join("\n"), stderr)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `opencharge args…` to its end.
fn run(args: &[&str]) -> (i32, String, String) {
    Proc::spawn(args).finish()
}

/// Runs it and insists on exit 0; returns stdout.
fn ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 0, "{args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    stdout
}

/// Borrowed arguments.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The text after `prefix` on the first line that starts with it.
fn after<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{stdout}"))
}

/// The reference gateway on its own runtime, knowing a merchant (OCID 500) by metadata URL.
struct TestGateway {
    runtime: tokio::runtime::Runtime,
    gateway: Option<RunningGateway>,
    http: reqwest::Client,
}

impl TestGateway {
    fn start(dir: &std::path::Path, merchant_metadata_url: &str) -> TestGateway {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = opencharge_testkit::gateway_config(dir);
        config.directory = vec![DirectoryEntry {
            ocid: 500,
            metadata_url: Some(merchant_metadata_url.to_string()),
            metadata: None,
        }];
        let gateway = runtime.block_on(Gateway::start(config)).unwrap();
        assert_eq!(gateway.ocid(), 200);
        TestGateway {
            runtime,
            gateway: Some(gateway),
            http: reqwest::Client::new(),
        }
    }

    fn endpoint(&self) -> String {
        self.gateway.as_ref().unwrap().endpoint().to_string()
    }

    /// A JSON POST to a dev endpoint; the answer must be 200.
    fn dev(&self, rel: &str, body: Value) -> Value {
        let url = format!("{}{rel}", self.endpoint());
        self.runtime.block_on(async {
            let response = self.http.post(&url).json(&body).send().await.unwrap();
            let status = response.status();
            let answer: Value = response.json().await.unwrap();
            assert!(status.is_success(), "{url}: {status} {answer}");
            answer
        })
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            self.runtime.block_on(gateway.stop());
        }
    }
}

/// A loopback port nobody listens on right now (for the merchant, whose URL the gateway's
/// directory must name before the merchant starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn terminal_wallet_pays_merchant_scans_and_merchant_qrs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let merchant_url = format!("http://127.0.0.1:{port}/opencharge");
    let merchant_meta = format!("{merchant_url}/metadata.json");
    let gateway = TestGateway::start(dir.path(), &merchant_meta);
    let gateway_url = gateway.endpoint();

    // The merchant, with dev defaults on the chosen port, accepting the gateway.
    let merchant_dir = dir.path().join("merchant");
    let listen = format!("127.0.0.1:{port}");
    let gateway_entry = format!("200={gateway_url}");
    let mut merchant = Proc::spawn(&[
        "merchant",
        "serve",
        "--listen",
        &listen,
        "--data-dir",
        merchant_dir.to_str().unwrap(),
        "--gateway",
        &gateway_entry,
    ]);
    merchant.line(|l| l.starts_with("Ctrl-C stops it"));
    let banner = merchant.stdout.join("\n");
    assert_eq!(after(&banner, "  endpoint:     "), merchant_url);
    assert_eq!(after(&banner, "  metadata URL: "), merchant_meta);
    assert_eq!(after(&banner, "  OCID:         "), "500");
    assert!(banner.contains("dev mode ON"), "{banner}");
    assert!(merchant_dir.join("merchant.key").is_file());

    // A funded dev account; the terminal wallet registers with its enrollment code.
    let account = gateway.dev("/dev/accounts", json!({"name": "alice"}));
    let account_id = account["accountId"].as_str().unwrap();
    gateway.dev(
        &format!("/dev/accounts/{account_id}/fund"),
        json!({"currency": "USD", "amount": "50.00"}),
    );
    let wallet_dir = dir.path().join("alice");
    let wallet_dir = wallet_dir.to_str().unwrap();
    let directory = format!("500={merchant_meta}");
    // The code arrives on stdin, as from `register < alice.code`.
    let register = [
        "wallet",
        "--data-dir",
        wallet_dir,
        "--gateway",
        &gateway_url,
        "--insecure-loopback",
        "--merchant-directory",
        &directory,
        "register",
    ];
    let code = format!("{}\n", account["enrollmentCode"].as_str().unwrap());
    let (status, registered, stderr) = Proc::spawn_with_stdin(&register, Some(&code)).finish();
    assert_eq!(status, 0, "{registered}\n{stderr}");
    assert_eq!(after(&registered, "  account: "), account_id);
    // Later runs use the saved settings.
    let wallet = |rest: &[&str]| -> Vec<String> {
        let mut args = vec!["wallet".to_string(), "--data-dir".into(), wallet_dir.into()];
        args.extend(rest.iter().map(|s| s.to_string()));
        args
    };
    let run_wallet = |rest: &[&str]| ok(&strs(&wallet(rest)));

    // Flow 1: the wallet shows its QR; the merchant scans it and posts an order; paid.
    let mut pay = Proc::spawn(&strs(&wallet(&["pay", "--yes", "--no-qr"])));
    let qr = pay.line(|l| l.starts_with("QR: "))["QR: ".len()..].to_string();
    let scanned = ok(&[
        "merchant",
        "scan",
        &qr,
        "--merchant",
        &merchant_url,
        "--item",
        "coffee:Coffee:2:2.50",
        "--reference",
        "POS-1",
        "--wait",
    ]);
    assert_eq!(after(&scanned, "total: "), "5.00 USD");
    assert!(after(&scanned, "status URL: ").starts_with(&gateway_url));
    assert!(
        after(&scanned, "paid: ").starts_with("5.00 USD (txid "),
        "{scanned}"
    );
    let (code, paid, stderr) = pay.finish();
    assert_eq!(code, 0, "{paid}\n{stderr}");
    assert!(
        paid.contains("Payment request from Opencharge Dev Merchant (OCID 500)"),
        "{paid}"
    );
    assert!(paid.contains("  2 x Coffee at 2.50 USD"), "{paid}");
    assert!(paid.contains("  reference: POS-1"), "{paid}");
    assert!(
        paid.contains("paid: 5.00 USD to Opencharge Dev Merchant"),
        "{paid}"
    );
    assert!(
        paid.contains("proof: verified (signed by OCID 200)"),
        "{paid}"
    );
    let balance = run_wallet(&["balance"]);
    assert!(balance.lines().any(|l| l == "USD 45.00"), "{balance}");

    // Flow 2: the merchant shows an order QR; the wallet scans it and pays.
    let created = ok(&[
        "merchant",
        "order",
        "new",
        "--merchant",
        &merchant_url,
        "--item",
        "tea:Tea:1:4.50",
    ]);
    let order_qr = after(&created, "QR: ").to_string();
    let order_id = after(&created, "order: ").to_string();
    assert_eq!(after(&created, "total: "), "4.50 USD");
    let scanned = run_wallet(&["scan", &order_qr, "--yes"]);
    assert!(scanned.contains("paid: 4.50 USD"), "{scanned}");
    let status = ok(&[
        "merchant",
        "order",
        "status",
        &order_id,
        "--merchant",
        &merchant_url,
    ]);
    assert_eq!(after(&status, "status: "), "paid");

    // Declining on the terminal pays nothing; the merchant then cancels the order.
    let created = ok(&[
        "merchant",
        "order",
        "new",
        "--merchant",
        &merchant_url,
        "--item",
        "cake:Cake:2:3.25",
        "--no-qr",
    ]);
    let declined_id = after(&created, "order: ").to_string();
    let scan_args = wallet(&["scan", after(&created, "QR: ")]);
    let (code, stdout, _) = Proc::spawn_with_stdin(&strs(&scan_args), Some("n\n")).finish();
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("Pay 6.50 USD to Opencharge Dev Merchant? [y/N]"),
        "{stdout}"
    );
    assert!(stdout.contains("declined: nothing was paid"), "{stdout}");
    let cancelled = ok(&[
        "merchant",
        "order",
        "cancel",
        &declined_id,
        "--merchant",
        &merchant_url,
    ]);
    assert_eq!(after(&cancelled, "status: "), "cancelled");

    // Balance and history agree: two payments, 50.00 - 5.00 - 4.50.
    let balance = run_wallet(&["balance"]);
    assert!(balance.lines().any(|l| l == "USD 40.50"), "{balance}");
    let history = run_wallet(&["history"]);
    let paid_lines: Vec<&str> = history.lines().filter(|l| l.contains(" paid ")).collect();
    assert_eq!(paid_lines.len(), 2, "{history}");
    assert!(
        paid_lines
            .iter()
            .any(|l| l.contains("5.00 USD") && l.contains("wallet_qr")),
        "{history}"
    );
    assert!(
        paid_lines
            .iter()
            .any(|l| l.contains("4.50 USD") && l.contains("merchant_qr")),
        "{history}"
    );
    drop(merchant);
}

#[test]
fn terminal_wallets_pay_a_person_by_receive_qr_and_by_link() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::start(dir.path(), "http://127.0.0.1:9/opencharge/metadata.json");
    let gateway_url = gateway.endpoint();
    // Two funded dev accounts; each terminal wallet registers with its code on stdin.
    let mut dirs = Vec::new();
    for (name, funds) in [("alice", "50.00"), ("bob", "1.00")] {
        let account = gateway.dev("/dev/accounts", json!({"name": name}));
        let account_id = account["accountId"].as_str().unwrap();
        gateway.dev(
            &format!("/dev/accounts/{account_id}/fund"),
            json!({"currency": "USD", "amount": funds}),
        );
        let wallet_dir = dir.path().join(name).to_str().unwrap().to_string();
        let code = format!("{}\n", account["enrollmentCode"].as_str().unwrap());
        let register = [
            "wallet",
            "--data-dir",
            &wallet_dir,
            "--gateway",
            &gateway_url,
            "--insecure-loopback",
            "register",
        ];
        let (status, out, err) = Proc::spawn_with_stdin(&register, Some(&code)).finish();
        assert_eq!(status, 0, "{out}\n{err}");
        dirs.push(wallet_dir);
    }
    let (alice, bob) = (dirs[0].as_str(), dirs[1].as_str());

    // Bob shows his receive QR, and a link asking for 2.00 USD for lunch.
    let shown = ok(&["wallet", "--data-dir", bob, "receive"]);
    let qr = after(&shown, "QR: ").to_string();
    let ocid = after(&shown, "  OCID:    ").to_string();
    assert_eq!(
        qr,
        format!(r#"{{"type":"ocid_transfer","ocid":{ocid},"gateway":200}}"#)
    );
    assert_eq!(after(&shown, "Receive to "), "bob");
    assert!(shown.contains('\u{2588}'), "the QR is drawn:\n{shown}");
    let linked = ok(&[
        "wallet",
        "--data-dir",
        bob,
        "receive",
        "--amount",
        "2.00",
        "--currency",
        "usd",
        "--memo",
        "lunch",
        "--no-qr",
    ]);
    let link = after(&linked, "URI: ").to_string();
    assert_eq!(
        link,
        format!("opencharge:{ocid}?gateway=200&amount=2.00&currency=USD&memo=lunch")
    );
    assert!(!linked.contains('\u{2588}'), "{linked}");

    // Alice scans the QR and chooses the amount: who, which gateway, amount, memo, then paid.
    let sent = ok(&[
        "wallet",
        "--data-dir",
        alice,
        "send",
        &qr,
        "--amount",
        "3.00",
        "--currency",
        "USD",
        "--memo",
        "for the tea",
        "--yes",
    ]);
    assert!(
        sent.contains(&format!("Send 3.00 USD to bob (OCID {ocid}) at ")),
        "{sent}"
    );
    assert!(sent.contains("(OCID 200)"), "the gateway is named:\n{sent}");
    assert!(sent.contains("  memo: for the tea"), "{sent}");
    assert!(sent.contains("paid: 3.00 USD to bob"), "{sent}");
    assert!(
        sent.contains("proof: verified (signed by OCID 200)"),
        "{sent}"
    );

    // The link carries amount and memo; a different --amount is refused before anything moves.
    let (code, _, stderr) = run(&[
        "wallet",
        "--data-dir",
        alice,
        "send",
        &link,
        "--amount",
        "9.00",
        "--currency",
        "USD",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the code asks for 2.00 USD"), "{stderr}");
    let (code, _, stderr) = run(&["wallet", "--data-dir", alice, "send", &qr]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("carries no amount: give --amount and --currency"),
        "{stderr}"
    );
    // Answering no pays nothing.
    let args = ["wallet", "--data-dir", alice, "send", &link];
    let (code, stdout, _) = Proc::spawn_with_stdin(&args, Some("n\n")).finish();
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("Pay 2.00 USD to bob? [y/N]"), "{stdout}");
    assert!(stdout.contains("declined: nothing was paid"), "{stdout}");
    let paid = ok(&["wallet", "--data-dir", alice, "send", &link, "--yes"]);
    assert!(paid.contains("  memo: lunch"), "{paid}");
    assert!(paid.contains("paid: 2.00 USD to bob"), "{paid}");

    // Paying oneself is the gateway's refusal, said plainly.
    let (code, _, stderr) = run(&[
        "wallet",
        "--data-dir",
        bob,
        "send",
        &qr,
        "--amount",
        "1.00",
        "--currency",
        "USD",
        "--yes",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cannot pay yourself"), "{stderr}");

    // Balances and histories agree: 50.00 - 3.00 - 2.00, and 1.00 + 3.00 + 2.00.
    let balance = ok(&["wallet", "--data-dir", alice, "balance"]);
    assert!(balance.lines().any(|l| l == "USD 45.00"), "{balance}");
    let balance = ok(&["wallet", "--data-dir", bob, "balance"]);
    assert!(balance.lines().any(|l| l == "USD 6.00"), "{balance}");
    let history = ok(&["wallet", "--data-dir", bob, "history"]);
    let received: Vec<&str> = history.lines().filter(|l| l.contains("received")).collect();
    assert_eq!(received.len(), 2, "{history}");
    assert!(
        received
            .iter()
            .all(|l| l.contains(" paid ") && l.contains("alice")),
        "{history}"
    );
    let history = ok(&["wallet", "--data-dir", alice, "history"]);
    assert_eq!(
        history.lines().filter(|l| l.contains("transfer")).count(),
        3,
        "two paid and one declined transfer:\n{history}"
    );
}

#[test]
fn bad_inputs_are_usage_errors_and_help_has_examples() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("w");
    let d = d.to_str().unwrap();
    let missing = dir.path().join("missing.toml");
    let gw = "http://127.0.0.1:9/opencharge";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["merchant", "scan", "not-a-qr"],
            "not a wallet session QR",
        ),
        (
            vec![
                "merchant",
                "scan",
                r#"{"ocid":500,"inventory":"https://m.example/oc/inventory","expiresAt":null}"#,
            ],
            "not a wallet's session QR",
        ),
        (
            vec!["merchant", "order", "new", "--item", "coffee"],
            "ID:NAME:QTY:PRICE",
        ),
        (
            vec!["merchant", "order", "new", "--item", "c:C:1:2.505x"],
            "price",
        ),
        (vec!["merchant", "order", "new"], "--item"),
        (
            vec![
                "merchant",
                "order",
                "new",
                "--item",
                "c:C:1:1.00",
                "--merchant",
                "ftp://x",
            ],
            "--merchant",
        ),
        (
            vec![
                "merchant",
                "order",
                "new",
                "--item",
                "c:C:1:1.00",
                "--currency",
                "dollars",
            ],
            "ISO 4217",
        ),
        (
            vec!["merchant", "serve", "--config", missing.to_str().unwrap()],
            "cannot read",
        ),
        (vec!["wallet", "balance"], "--data-dir"),
        (vec!["wallet", "--data-dir", d, "balance"], "--gateway"),
        (
            vec![
                "wallet",
                "--data-dir",
                d,
                "--gateway",
                "http://wallet.example/oc",
                "balance",
            ],
            "https",
        ),
        (
            vec![
                "wallet",
                "--data-dir",
                d,
                "--gateway",
                gw,
                "--merchant-directory",
                "nope",
                "balance",
            ],
            "OCID=METADATA_URL",
        ),
        (
            vec![
                "wallet",
                "--data-dir",
                d,
                "--gateway",
                gw,
                "--insecure-loopback",
                "scan",
                "hello",
            ],
            "not an Opencharge QR",
        ),
        (
            vec!["wallet", "--data-dir", d, "scan", "x", "--pick", "tea"],
            "ID:QTY",
        ),
        (
            vec!["wallet", "--data-dir", d, "send", "hello"],
            "not a person's receive code",
        ),
        (
            vec![
                "wallet",
                "--data-dir",
                d,
                "send",
                "opencharge:200001?gateway=200",
                "--amount",
                "5.00",
            ],
            "--currency",
        ),
        (
            vec![
                "wallet",
                "--data-dir",
                d,
                "send",
                "opencharge:200001?gateway=200",
                "--amount",
                "5.001",
                "--currency",
                "USD",
            ],
            "--amount/--currency",
        ),
        (
            vec![
                "wallet",
                "--data-dir",
                d,
                "receive",
                "--amount",
                "1",
                "--currency",
                "dollars",
            ],
            "--amount/--currency",
        ),
    ];
    for (args, needle) in cases {
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in:\n{stderr}"
        );
    }
    // A refused gateway URL was not saved; the loopback one (with the flag) was.
    let saved = std::fs::read_to_string(dir.path().join("w/cli-wallet.toml")).unwrap();
    assert!(
        saved.contains(gw) && !saved.contains("wallet.example"),
        "{saved}"
    );

    // Operations that fail (rather than being misused) exit 1 with `error: `.
    let (code, _, stderr) = run(&["wallet", "--data-dir", d, "balance"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("not registered"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&[
        "merchant",
        "order",
        "status",
        "ord_x",
        "--merchant",
        "http://127.0.0.1:9/opencharge",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cannot reach the merchant"), "{stderr}");

    // Every subcommand documents itself with an example.
    for args in [
        vec!["merchant", "--help"],
        vec!["merchant", "serve", "--help"],
        vec!["merchant", "scan", "--help"],
        vec!["merchant", "order", "new", "--help"],
        vec!["merchant", "order", "status", "--help"],
        vec!["wallet", "--help"],
        vec!["wallet", "register", "--help"],
        vec!["wallet", "pay", "--help"],
        vec!["wallet", "scan", "--help"],
        vec!["wallet", "history", "--help"],
        vec!["wallet", "balance", "--help"],
        vec!["wallet", "send", "--help"],
        vec!["wallet", "receive", "--help"],
    ] {
        let help = ok(&args);
        assert!(help.contains("Example"), "{args:?}:\n{help}");
    }
}
