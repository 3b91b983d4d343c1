//! `opencharge dev account` as a real process against a loopback dev-mode gateway: it creates
//! and funds an account, writes the enrollment code to an owner-only file (or prints it
//! without `--code-file`), and that code registers a wallet holding the funds; a gateway that
//! cannot be reached is named with what to check, and bad values are usage errors.

use std::process::{Command, Stdio};

use opencharge_testkit::Network;

/// Runs `opencharge args…` off the async runtime, with `env` set: exit code, stdout, stderr.
async fn run(args: Vec<String>, env: Vec<(&'static str, String)>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_opencharge"))
            .args(&args)
            .env_remove("RUST_LOG")
            .env_remove("OPENCHARGE_ENROLLMENT_CODE")
            .envs(env)
            .stdin(Stdio::null())
            .output()
            .unwrap();
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
async fn dev_account_creates_funds_and_hands_over_a_code_that_registers() {
    let env = Network::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let code_file = dir.path().join("dana.code");
    let code_path = code_file.to_str().unwrap();
    let (code, out, err) = run(
        strings(&[
            "dev",
            "account",
            "--gateway",
            env.endpoint(),
            "--name",
            "Dana",
            "--fund",
            "7.50",
            "--code-file",
            code_path,
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("funded: 7.50 USD"), "{out}");
    let enrollment = std::fs::read_to_string(&code_file).unwrap();
    let enrollment = enrollment.trim().to_string();
    assert!(!enrollment.is_empty());
    assert!(!out.contains(&enrollment), "the code was shown:\n{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&code_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "code file mode {mode:o}");
    }

    // The code registers a wallet to that account, which holds the funds.
    let wallet_dir = dir.path().join("dana");
    let wallet_dir = wallet_dir.to_str().unwrap();
    let (code, out, err) = run(
        strings(&[
            "wallet",
            "--data-dir",
            wallet_dir,
            "--gateway",
            env.endpoint(),
            "--insecure-loopback",
            "register",
        ]),
        vec![("OPENCHARGE_ENROLLMENT_CODE", enrollment)],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = run(
        strings(&["wallet", "--data-dir", wallet_dir, "balance"]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == "USD 7.50"), "{out}");

    // Without --code-file the code is printed; EUR funding works.
    let (code, out, err) = run(
        strings(&[
            "dev",
            "account",
            "--gateway",
            env.endpoint(),
            "--name",
            "Eve",
            "--fund",
            "3",
            "--currency",
            "EUR",
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("funded: 3 EUR"), "{out}");
    assert!(out.contains("  enrollment code: "), "{out}");
    env.stop().await;

    // A gateway that is not there: what to check. Bad values: usage errors.
    let (code, _, err) = run(
        strings(&[
            "dev",
            "account",
            "--gateway",
            "http://127.0.0.1:9/opencharge",
            "--name",
            "X",
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("dev_mode = true"), "{err}");
    for (args, needle) in [
        (
            vec!["dev", "account", "--name", "X", "--fund", "1.0x"],
            "exact amount",
        ),
        (
            vec!["dev", "account", "--name", "X", "--currency", "dollars"],
            "ISO 4217",
        ),
        (vec!["dev", "account"], "--name"),
    ] {
        let (code, _, err) = run(strings(&args), vec![]).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    for args in [vec!["dev", "--help"], vec!["dev", "account", "--help"]] {
        let (code, out, _) = run(strings(&args), vec![]).await;
        assert_eq!(code, 0);
        assert!(out.contains("Example"), "{args:?}:\n{out}");
    }
}
