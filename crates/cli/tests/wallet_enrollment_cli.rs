//! `opencharge wallet register` as a real process against a loopback network: the enrollment
//! code is read from `OPENCHARGE_ENROLLMENT_CODE` or from stdin, a code on the command line is
//! refused before anything is sent or saved (and stays usable), an empty or malformed input is
//! a usage error; and the saved settings merge with the flags of a later run instead of being
//! replaced by them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use opencharge_testkit::Network;

fn opencharge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opencharge"));
    command
        .env_remove("RUST_LOG")
        .env_remove("OPENCHARGE_ENROLLMENT_CODE");
    command
}

/// Runs `command` with `stdin` written to it (then closed), off the async runtime: exit code,
/// stdout, stderr.
async fn run(mut command: Command, stdin: Option<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// `opencharge wallet --data-dir DIR --gateway URL --insecure-loopback register [extra…]`.
fn register(dir: &Path, env: &Network, extra: &[&str]) -> Command {
    let mut command = opencharge();
    command
        .args(["wallet", "--data-dir"])
        .arg(dir)
        .args([
            "--gateway",
            env.endpoint(),
            "--insecure-loopback",
            "register",
        ])
        .args(extra);
    command
}

/// The account id a successful `register` printed.
fn account_of(stdout: &str) -> &str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("  account: "))
        .unwrap_or_else(|| panic!("no account line in:\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enrollment_code_comes_from_the_environment_or_stdin_never_the_command_line() {
    let env = Network::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let alice = env.new_account("cli-alice").await.unwrap();

    // On the command line: refused with why and how; nothing sent, nothing saved.
    let wallet_dir = dir.path().join("alice");
    let (code, out, err) = run(register(&wallet_dir, &env, &[&alice.enrollment_code]), None).await;
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("must not be given on the command line")
            && err.contains("`ps`")
            && err.contains("OPENCHARGE_ENROLLMENT_CODE")
            && err.contains("stdin"),
        "{err}"
    );
    assert!(
        !wallet_dir.join("cli-wallet.toml").exists(),
        "settings were saved by a refused run"
    );

    // Empty or malformed input is a usage error naming its source.
    for (stdin, needle) in [
        (String::new(), "stdin holds no enrollment code"),
        ("one\ntwo\n".to_string(), "exactly one enrollment code"),
    ] {
        let (code, out, err) = run(register(&wallet_dir, &env, &[]), Some(stdin)).await;
        assert_eq!(code, 2, "{out}\n{err}");
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let mut empty_env = register(&wallet_dir, &env, &[]);
    empty_env.env("OPENCHARGE_ENROLLMENT_CODE", " ");
    let (code, _, err) = run(empty_env, None).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("OPENCHARGE_ENROLLMENT_CODE holds no enrollment code"),
        "{err}"
    );

    // The refused code was never sent: it still registers, from the environment (which wins
    // over stdin).
    let mut from_env = register(&wallet_dir, &env, &[]);
    from_env.env("OPENCHARGE_ENROLLMENT_CODE", &alice.enrollment_code);
    let (code, out, err) = run(from_env, Some("not-the-code\n".into())).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(account_of(&out), alice.account_id);
    assert!(!out.contains(&alice.enrollment_code), "{out}");

    // From stdin (a file or a pipe), surrounding blanks ignored.
    let bob = env.new_account("cli-bob").await.unwrap();
    let (code, out, err) = run(
        register(&dir.path().join("bob"), &env, &[]),
        Some(format!("  {}\n\n", bob.enrollment_code)),
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(account_of(&out), bob.account_id);

    // A used code is refused by the gateway with what to do.
    let (code, _, err) = run(
        register(&dir.path().join("carol"), &env, &[]),
        Some(bob.enrollment_code.clone()),
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("ENROLLMENT_INVALID") && err.contains("new enrollment code"),
        "{err}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_only_gateway_keeps_the_other_saved_settings() {
    let env = Network::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wallet_dir = dir.path().join("w");
    let account = env.new_account("cli-merge").await.unwrap();
    env.fund(&account.account_id, "12.00").await.unwrap();
    let directory = format!(
        "{}={}",
        env.merchant().ocid(),
        env.merchant().metadata_url()
    );
    let gateway_ocid = env.gateway_ocid().to_string();
    let mut first = register(
        &wallet_dir,
        &env,
        &[
            "--merchant-directory",
            &directory,
            "--gateway-ocid",
            &gateway_ocid,
        ],
    );
    first.env("OPENCHARGE_ENROLLMENT_CODE", &account.enrollment_code);
    let (code, out, err) = run(first, None).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let saved = |dir: &Path| -> toml::Table {
        toml::from_str(&std::fs::read_to_string(dir.join("cli-wallet.toml")).unwrap()).unwrap()
    };
    let before = saved(&wallet_dir);
    assert_eq!(
        before["gateway_ocid"].as_integer(),
        Some(env.gateway_ocid() as i64)
    );
    assert_eq!(before["directory"].as_array().unwrap().len(), 1);

    // Only --gateway this time.
    let mut again = opencharge();
    again.args(["wallet", "--data-dir"]).arg(&wallet_dir).args([
        "--gateway",
        env.endpoint(),
        "balance",
    ]);
    let (code, out, err) = run(again, None).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.lines().any(|l| l == "USD 12.00"), "{out}");
    let after = saved(&wallet_dir);
    for key in [
        "gateway_url",
        "gateway_ocid",
        "insecure_loopback",
        "directory",
    ] {
        assert_eq!(after[key], before[key], "{key} was dropped:\n{after}");
    }
    let entry = &after["directory"].as_array().unwrap()[0];
    assert_eq!(
        entry["metadata_url"].as_str(),
        Some(env.merchant().metadata_url().as_str())
    );
    env.stop().await;
}
