//! `opencharge wallet` as a real process when things go wrong: `pay` against a real gateway
//! (in-process, loopback) published behind a drop proxy that loses the answer to the confirm
//! says the payment was sent and is pending, waits for the core to resolve it, prints it paid
//! and exits 0, with the account debited once; when the outcome stays unknown past
//! `--outcome-wait` it exits 3 and a later run finds it paid, once; and a wallet database
//! that is not a database is named in the error with what to do.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use opencharge_testkit::{coffee_order, DropProxy, DropRule, Network};

/// Longest any single command may take here.
const LIMIT: Duration = Duration::from_secs(60);

fn opencharge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opencharge"));
    command.env_remove("RUST_LOG");
    command
}

/// Runs `opencharge args…` to the end on a blocking thread: exit code, stdout, stderr.
async fn run(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = opencharge().args(&args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A loopback network whose gateway is published behind a drop proxy, and a terminal wallet
/// in `dir` registered (through the proxy) to a dev account funded with 30.00 USD: the
/// network, the proxy, the wallet's data dir and its account id.
async fn wallet_behind_proxy(dir: &std::path::Path) -> (Network, DropProxy, String, String) {
    let proxy = DropProxy::start().await.unwrap();
    let public_url = proxy.url();
    let env = Network::builder()
        .gateway_config(move |c| c.public_url = Some(public_url))
        .start()
        .await
        .unwrap();
    proxy.set_upstream(env.gateway_addr());
    let account = env.new_account("cli-olga").await.unwrap();
    env.fund(&account.account_id, "30.00").await.unwrap();
    let data_dir = dir.join("olga").display().to_string();
    let directory = format!(
        "{}={}",
        env.merchant().ocid(),
        env.merchant().metadata_url()
    );
    // The code arrives in the environment, never on the command line.
    let mut register = opencharge();
    register
        .args([
            "wallet",
            "--data-dir",
            &data_dir,
            "--gateway",
            env.endpoint(),
            "--insecure-loopback",
            "--merchant-directory",
            &directory,
            "register",
        ])
        .env("OPENCHARGE_ENROLLMENT_CODE", &account.enrollment_code);
    let register = tokio::task::spawn_blocking(move || register.output().unwrap())
        .await
        .unwrap();
    assert!(
        register.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&register.stdout),
        String::from_utf8_lossy(&register.stderr)
    );
    (env, proxy, data_dir, account.account_id)
}

/// Runs `opencharge wallet --data-dir DIR pay --yes --no-qr EXTRA…` while the merchant posts
/// a coffee order to its QR: exit code, stdout, stderr.
async fn pay(env: &Network, data_dir: &str, extra: &[&str]) -> (i32, String, String) {
    let mut pay = opencharge()
        .args(["wallet", "--data-dir", data_dir, "pay", "--yes", "--no-qr"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stdout = pay.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = pay.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // The wallet shows its QR; the merchant posts an order to it.
    let (qr, lines) = tokio::task::spawn_blocking(move || loop {
        let line = lines.recv_timeout(LIMIT).expect("no QR line from `pay`");
        if let Some(qr) = line.strip_prefix("QR: ") {
            break (qr.to_string(), lines);
        }
    })
    .await
    .unwrap();
    let order = env.merchant().create_order(coffee_order("cli-1")).unwrap();
    env.merchant()
        .post_to_wallet_session(&qr, &order.order.id)
        .await
        .unwrap();
    let (code, stdout) = tokio::task::spawn_blocking(move || {
        let mut stdout = Vec::new();
        while let Ok(line) = lines.recv_timeout(LIMIT) {
            stdout.push(line);
        }
        (pay.wait().unwrap().code().unwrap_or(-1), stdout.join("\n"))
    })
    .await
    .unwrap();
    (code, stdout, stderr.join().unwrap())
}

/// The account's USD balance at the gateway, in minor units.
async fn usd_minor(env: &Network, account_id: &str) -> Option<i64> {
    env.gateway()
        .unwrap()
        .state
        .store
        .balances(account_id)
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.currency == "USD")
        .map(|b| b.minor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_says_pending_when_the_answer_is_lost_then_paid_once() {
    let dir = tempfile::tempdir().unwrap();
    let (env, proxy, data_dir, account_id) = wallet_behind_proxy(dir.path()).await;
    proxy.drop_answers(DropRule::new("POST", "/opencharge/app/sessions/*/confirm"));
    let (code, stdout, stderr) = pay(&env, &data_dir, &[]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let pending = stdout
        .find("sent; waiting for the gateway's answer")
        .unwrap_or_else(|| panic!("no pending line: {stdout}"));
    assert!(
        stdout.contains("the decision is saved, it will not be paid twice"),
        "{stdout}"
    );
    let paid = stdout
        .find("paid: 8.25 USD to")
        .unwrap_or_else(|| panic!("no paid line: {stdout}"));
    assert!(pending < paid, "pending is said before paid: {stdout}");
    assert!(!stderr.contains("error: "), "{stderr}");
    assert!(
        proxy.dropped() >= 1,
        "the proxy dropped the confirm's answer"
    );
    // Debited exactly once, and the merchant was paid once.
    assert_eq!(usd_minor(&env, &account_id).await, Some(2175));
    assert_eq!(env.merchant().proofs().len(), 1);

    // The help documents the exit code of a pending outcome.
    let (_, help, _) = run(strings(&["wallet", "pay", "--help"])).await;
    assert!(help.contains("3 sent but the outcome is"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_exits_3_while_the_outcome_is_unknown_and_a_later_run_finds_it_paid() {
    let dir = tempfile::tempdir().unwrap();
    let (env, proxy, data_dir, account_id) = wallet_behind_proxy(dir.path()).await;
    // The gateway pays, but neither the confirm's answer nor a status query gets back.
    proxy.drop_answers(DropRule::new("POST", "/opencharge/app/sessions/*/confirm"));
    proxy.drop_answers(DropRule::new("GET", "/opencharge/app/payments/*"));
    let (code, stdout, stderr) = pay(&env, &data_dir, &["--outcome-wait", "2"]).await;
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("sent; waiting for the gateway's answer"),
        "{stdout}"
    );
    assert!(stdout.contains("the outcome is still pending"), "{stdout}");
    assert!(
        stdout.contains(&format!("opencharge wallet --data-dir {data_dir} history")),
        "{stdout}"
    );
    assert!(!stdout.contains("paid: "), "{stdout}");
    assert!(!stderr.contains("error: "), "{stderr}");
    assert_eq!(usd_minor(&env, &account_id).await, Some(2175));

    // Answers get through again: a later run learns the outcome; nothing is paid twice.
    proxy.pass_all();
    let (code, history, err) = run(strings(&["wallet", "--data-dir", &data_dir, "history"])).await;
    assert_eq!(code, 0, "{history}\n{err}");
    assert!(
        history
            .lines()
            .any(|l| l.contains("paid") && l.contains("8.25 USD")),
        "{history}"
    );
    let (code, balance, err) = run(strings(&["wallet", "--data-dir", &data_dir, "balance"])).await;
    assert_eq!(code, 0, "{err}");
    assert!(balance.lines().any(|l| l == "USD 21.75"), "{balance}");
    assert_eq!(usd_minor(&env, &account_id).await, Some(2175));
    assert_eq!(env.merchant().proofs().len(), 1);
}

#[test]
fn a_wallet_file_that_is_not_a_database_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("w");
    std::fs::create_dir_all(&data_dir).unwrap();
    let file = data_dir.join("wallet.sqlite3");
    std::fs::write(&file, b"not a database at all\n".repeat(200)).unwrap();
    let out = opencharge()
        .args([
            "wallet",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--gateway",
            "http://127.0.0.1:9/opencharge",
            "--insecure-loopback",
            "balance",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("is not an Opencharge wallet database"),
        "{stderr}"
    );
    assert!(stderr.contains("move it away"), "{stderr}");
    assert!(!stderr.contains("file is not a database"), "{stderr}");
}
