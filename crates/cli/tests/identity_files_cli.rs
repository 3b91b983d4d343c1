//! Part A of issue 16 from the command line, as real processes: a terminal wallet's data
//! directory, key directory and database are owner-only (0700/0600) under the common umask
//! 022; and `opencharge merchant scan` never cancels an order whose post outcome is unknown
//! (a loopback proxy in front of a real gateway loses every answer about the order), it
//! prints "outcome unknown" and keeps the order pending.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use opencharge_merchant::MerchantConfig;
use opencharge_protocol::types::OrderStatus;
use opencharge_testkit::{DropProxy, DropRule, Network};

fn opencharge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opencharge"));
    command.env_remove("RUST_LOG");
    command
}

/// Runs `opencharge args…` to the end on a blocking thread: exit code, stdout, stderr.
async fn run(args: Vec<String>) -> (i32, String, String) {
    run_with_env(args, Vec::new()).await
}

/// [`run`] with extra environment variables.
async fn run_with_env(args: Vec<String>, env: Vec<(String, String)>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = opencharge().args(&args).envs(env).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_terminal_wallets_files_are_owner_only() {
    // SAFETY: umask only swaps the process's file mode mask; 022 is the common default, and
    // the wallet process inherits it.
    unsafe {
        libc::umask(0o022);
    }
    let env = Network::start().await.unwrap();
    let account = env.new_account("cli-modes").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("wallets").join("olga");
    let (code, out, err) = run_with_env(
        vec![
            "wallet".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--gateway".into(),
            env.endpoint().into(),
            "--insecure-loopback".into(),
            "register".into(),
        ],
        vec![(
            "OPENCHARGE_ENROLLMENT_CODE".into(),
            account.enrollment_code.clone(),
        )],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&data_dir.join("keys")), 0o700);
    let db = data_dir.join("wallet.sqlite3");
    assert_eq!(mode(&db), 0o600);
    for suffix in ["-wal", "-shm"] {
        let file = data_dir.join(format!("wallet.sqlite3{suffix}"));
        if file.exists() {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
    for key in std::fs::read_dir(data_dir.join("keys")).unwrap() {
        let key = key.unwrap().path();
        assert_eq!(mode(&key), 0o600, "{}", key.display());
    }
    env.stop().await;
}

#[tokio::test]
async fn merchant_scan_keeps_an_order_with_an_unknown_outcome_pending() {
    let proxy = DropProxy::start().await.unwrap();
    let public_url = proxy.url();
    let env = Network::builder()
        .gateway_config(move |c| c.public_url = Some(public_url.clone()))
        .merchant_config(|_, c: &mut MerchantConfig| c.dev_mode = true)
        .start()
        .await
        .unwrap();
    proxy.set_upstream(env.gateway_addr());
    let device = env.app_device("cli-scan", Some("20.00")).await.unwrap();
    let (status, session) = env
        .app_call(&device, "POST", "/app/sessions", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{session}");
    let qr = session["qrText"].as_str().unwrap().to_string();

    // Every answer about the order is lost: the post and the status requests.
    proxy.drop_answers(DropRule::new("POST", "/opencharge/orders/create/*"));
    proxy.drop_answers(DropRule::new("GET", "/opencharge/orders/create/*/status"));
    let (code, out, err) = run(vec![
        "merchant".into(),
        "scan".into(),
        qr,
        "--merchant".into(),
        env.merchant().endpoint().into(),
        "--item".into(),
        "coffee:Coffee:1:2.50".into(),
    ])
    .await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("outcome unknown"), "{out}");
    assert!(out.contains("kept pending"), "{out}");
    assert!(
        !out.contains("(order cancelled)") && !err.contains("(order cancelled)"),
        "{out}\n{err}"
    );
    let order_id = out
        .lines()
        .find_map(|l| l.strip_prefix("order: "))
        .expect("an order line")
        .trim()
        .to_string();
    let record = env.merchant().order(&order_id).unwrap().unwrap();
    assert_eq!(record.status, OrderStatus::Pending);
    // The gateway holds it, waiting for the wallet.
    let (status, prompts) = env
        .app_call(&device, "GET", "/app/prompts", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{prompts}");
    assert_eq!(prompts["prompts"][0]["order"]["id"], order_id.as_str());
    env.stop().await;
}
