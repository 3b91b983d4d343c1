//! The `opencharge demo` and `opencharge sandbox` commands, run as real processes: the demo
//! pays every flow (a friend's wallet too) and exits 0 (again on the same data dir), a declined payment makes it fail,
//! the sandbox describes a working network and stops when its stdin closes, runs two gateway
//! instances on one PostgreSQL database that each answer from it, and refuses several
//! instances on SQLite.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn opencharge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opencharge"));
    command.env_remove("RUST_LOG");
    command
}

#[test]
fn demo_pays_every_flow_and_verifies_every_step() {
    let output = opencharge()
        .args(["demo", "--flow", "all", "--no-qr"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for flow in [
        "wallet-qr",
        "merchant-qr",
        "checkout",
        "push",
        "third-party",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(flow))
            .unwrap_or_else(|| panic!("no summary line for {flow}:\n{stdout}"));
        assert!(line.contains("paid") && line.contains("8.25 USD"), "{line}");
    }
    assert!(stdout.contains("All 6 flow(s) paid"), "{stdout}");
    // Third party: the receipt proof is the merchant gateway's, and both it and the bank
    // answer /verify with completed.
    assert!(
        stdout.contains("proof by the merchant's gateway 500 verified"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the bank answers GET /verify/{txid} with completed"),
        "{stdout}"
    );
    let p2p = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("p2p "))
        .unwrap_or_else(|| panic!("no summary line for p2p:\n{stdout}"));
    assert!(
        p2p.contains("paid") && p2p.contains("3.50 USD") && p2p.contains("p2p_"),
        "{p2p}"
    );
    assert!(!stdout.contains('\u{2717}'), "a step failed:\n{stdout}");
    // Four debits of 8.25 from 50.00, then 3.50 to a friend, each checked exactly.
    assert!(stdout.contains("= 17.00 USD"), "{stdout}");
    assert!(
        stdout.contains("17.00 USD - 3.50 USD = 13.50 USD"),
        "{stdout}"
    );
    // The friend's wallet heard the payment and keeps it, from the demo shopper.
    assert!(
        stdout.contains("received 3.50 USD from Demo shopper"),
        "{stdout}"
    );
    // The push flow: the wake-up names only the event; the extension shows merchant and amount.
    let wake = stdout
        .lines()
        .find(|l| l.contains("FCM data {"))
        .unwrap_or_else(|| panic!("no FCM wake-up shown:\n{stdout}"));
    assert!(wake.contains("\"type\":\"payment_request\""), "{wake}");
    assert!(
        !wake.contains("8.25") && !wake.contains("Demo Coffee"),
        "{wake}"
    );
    let shown = stdout
        .lines()
        .find(|l| l.contains("notification \""))
        .unwrap_or_else(|| panic!("no notification shown:\n{stdout}"));
    assert!(
        shown.contains("Demo Coffee") && shown.contains("8.25"),
        "{shown}"
    );
}

#[test]
fn declining_in_interactive_mode_fails_the_demo_and_pays_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = opencharge()
        .args([
            "demo",
            "--flow",
            "wallet-qr",
            "--interactive",
            "--no-qr",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("you declined the payment"), "{stdout}");
    assert!(!stdout.contains("wallet confirms"), "{stdout}");
    // The data dir was kept, with the gateway, merchant and wallet files in it.
    for sub in ["gateway", "merchant", "wallets/demo"] {
        assert!(dir.path().join(sub).is_dir(), "{sub} missing");
    }
}

#[test]
fn demo_runs_again_on_the_same_data_dir_with_the_same_wallet_and_account() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let output = opencharge()
            .args(["demo", "--flow", "merchant-qr", "--no-qr", "--data-dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "demo failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("All 1 flow(s) paid"), "{stdout}");
        stdout
    };
    let first = run();
    let account = first
        .split("create and fund a demo account: account ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no new account in the first run:\n{first}"))
        .to_string();
    // The second run reuses the registered device and its account, topped up to 50.00 again
    // (8.25 USD paid by the first run), and pays again.
    let second = run();
    let reused = second
        .lines()
        .find(|l| l.contains("reuse the demo account and device of the earlier run"))
        .unwrap_or_else(|| panic!("the second run did not reuse the wallet:\n{second}"));
    assert!(
        reused.contains(&format!(
            "account {account} holds 50.00 USD (8.25 USD added)"
        )),
        "{reused}"
    );
    assert!(
        !second.contains("create and fund a demo account"),
        "{second}"
    );
    assert!(
        second.contains("50.00 USD - 8.25 USD = 41.75 USD"),
        "{second}"
    );
}

#[test]
fn demo_rejects_an_unknown_flow_with_a_usage_error() {
    let output = opencharge()
        .args(["demo", "--flow", "teleport"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("teleport"));
}

#[test]
fn sandbox_describes_a_working_network_and_stops_when_stdin_closes() {
    let mut child = opencharge()
        .arg("sandbox")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let description: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(description["gatewayOcid"], 200);
    assert_eq!(description["merchantOcid"], 500);
    let data_dir = std::path::PathBuf::from(description["dataDir"].as_str().unwrap());
    assert!(data_dir.join("gateway").is_dir());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for (metadata, endpoint) in [
            ("gatewayMetadataUrl", "gatewayUrl"),
            ("merchantMetadataUrl", "merchantUrl"),
        ] {
            let url = description[metadata].as_str().unwrap();
            let document = reqwest::get(url).await.unwrap().bytes().await.unwrap();
            let verified = opencharge_protocol::metadata::verify_document(&document).unwrap();
            assert_eq!(
                verified.metadata.config.endpoint.as_deref(),
                description[endpoint].as_str(),
                "{metadata}"
            );
        }
        // The dev endpoints are open: an account can be created.
        let account: serde_json::Value = reqwest::Client::new()
            .post(format!(
                "{}/dev/accounts",
                description["gatewayUrl"].as_str().unwrap()
            ))
            .json(&serde_json::json!({"name": "sandbox test"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(account["enrollmentCode"].is_string(), "{account}");
    });

    drop(child.stdin.take());
    let mut waited = Duration::ZERO;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            waited < Duration::from_secs(30),
            "sandbox did not stop after stdin closed"
        );
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    };
    assert!(status.success());
    assert!(
        !data_dir.exists(),
        "the temporary data dir should be deleted"
    );
}

/// Reads the sandbox's one JSON line.
fn description_of(child: &mut std::process::Child) -> serde_json::Value {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a description: {line:?}: {e}"))
}

/// Closes the sandbox's stdin and waits (boundedly) for it to exit; returns its status.
fn stop(mut child: std::process::Child) -> std::process::ExitStatus {
    drop(child.stdin.take());
    let mut waited = Duration::ZERO;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if waited >= Duration::from_secs(30) {
            let _ = child.kill();
            panic!("sandbox did not stop after stdin closed");
        }
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    }
}

#[test]
fn sandbox_runs_two_instances_on_one_postgres_database_and_each_answers() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime
        .block_on(opencharge_testkit::pg::TestDatabase::create())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = opencharge()
        .args(["sandbox", "--instances", "2", "--database", database.url()])
        .arg("--data-dir")
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let description = description_of(&mut child);
    let published = description["gatewayUrl"].as_str().unwrap().to_string();
    let urls: Vec<String> = description["gatewayUrls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    assert_eq!(urls.len(), 2, "{description}");
    assert_ne!(urls[0], urls[1], "each instance has its own port");
    assert!(
        !urls.contains(&published),
        "the published URL is the round-robin front's: {description}"
    );

    runtime.block_on(async {
        let http = reqwest::Client::new();
        // Each instance, and the front, serve the same signed metadata: one key, one
        // published endpoint.
        let mut keys = Vec::new();
        for url in urls.iter().chain([&published]) {
            let document = http
                .get(format!("{url}/metadata.json"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let verified = opencharge_protocol::metadata::verify_document(&document).unwrap();
            assert_eq!(
                verified.metadata.config.endpoint.as_deref(),
                Some(published.as_str()),
                "{url}"
            );
            keys.push(verified.metadata.config.public_key.clone());
        }
        assert!(
            keys.iter().all(|k| *k == keys[0]),
            "one shared key: {keys:?}"
        );
        // One database behind both: an account created on the first instance is funded on
        // the second, its device registered on the second, and its balance read on the first.
        let first = opencharge_testkit::DevClient::new(http.clone(), &urls[0]);
        let second = opencharge_testkit::DevClient::new(http.clone(), &urls[1]);
        let account = first.new_account("two instances").await.unwrap();
        second.fund(&account.account_id, "7.50").await.unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let device =
            opencharge_testkit::AppDevice::register(&http, &urls[1], &account.enrollment_code, now)
                .await
                .unwrap();
        assert_eq!(device.account_id, account.account_id);
        let response = device
            .request(
                &http,
                "GET",
                &format!("{}/app/balance", urls[0]),
                Vec::new(),
                now,
            )
            .unwrap()
            .send()
            .await
            .unwrap();
        let (status, balance) = opencharge_testkit::device::read(response).await.unwrap();
        assert_eq!(status, 200, "{balance}");
        assert_eq!(opencharge_testkit::usd_amount(&balance), "7.50");
        // Through the front, request after request, the same balance whichever instance
        // answers.
        for _ in 0..4 {
            let response = device
                .request(
                    &http,
                    "GET",
                    &format!("{published}/app/balance"),
                    Vec::new(),
                    now,
                )
                .unwrap()
                .send()
                .await
                .unwrap();
            let (status, balance) = opencharge_testkit::device::read(response).await.unwrap();
            assert_eq!(status, 200, "{balance}");
            assert_eq!(opencharge_testkit::usd_amount(&balance), "7.50");
        }
    });
    assert!(stop(child).success());
}

#[test]
fn sandbox_refuses_more_than_one_instance_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    for database in [None, Some(dir.path().join("gateway.sqlite3"))] {
        let mut command = opencharge();
        command.args(["sandbox", "--instances", "2"]);
        if let Some(path) = &database {
            command.arg("--database").arg(path);
        }
        let output = command.stdin(Stdio::null()).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{database:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--instances 2 needs --database postgres://"),
            "{stderr}"
        );
        assert!(output.stdout.is_empty(), "nothing started: {database:?}");
    }
    assert!(
        !dir.path().join("gateway.sqlite3").exists(),
        "the refused start created no database"
    );
}
