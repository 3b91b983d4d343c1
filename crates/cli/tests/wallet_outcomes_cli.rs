//! `opencharge wallet` as a real process when things go wrong: `pay` against a real gateway
//! (in-process, loopback) published behind a drop proxy that loses the answer to the confirm
//! says the payment was sent and is pending, waits for the core to resolve it, prints it paid
//! and exits 0, with the account debited once; and a wallet database that is not a database
//! is named in the error with what to do.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_says_pending_when_the_answer_is_lost_then_paid_once() {
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
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("olga").display().to_string();
    let directory = format!(
        "{}={}",
        env.merchant().ocid(),
        env.merchant().metadata_url()
    );
    let (code, out, err) = run(strings(&[
        "wallet",
        "--data-dir",
        &data_dir,
        "--gateway",
        env.endpoint(),
        "--insecure-loopback",
        "--merchant-directory",
        &directory,
        "register",
        &account.enrollment_code,
    ]))
    .await;
    assert_eq!(code, 0, "{out}\n{err}");

    proxy.drop_answers(DropRule::new("POST", "/opencharge/app/sessions/*/confirm"));
    let mut pay = opencharge()
        .args(["wallet", "--data-dir", &data_dir, "pay", "--yes", "--no-qr"])
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
    let stderr = stderr.join().unwrap();
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
    let minor = env
        .gateway()
        .unwrap()
        .state
        .store
        .balances(&account.account_id)
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.currency == "USD")
        .map(|b| b.minor);
    assert_eq!(minor, Some(2175));
    assert_eq!(env.merchant().proofs().len(), 1);

    // The help documents the exit code of a pending outcome.
    let (_, help, _) = run(strings(&["wallet", "pay", "--help"])).await;
    assert!(help.contains("3 sent but the outcome is"), "{help}");
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
