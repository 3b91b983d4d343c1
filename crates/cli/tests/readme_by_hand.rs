//! The README's by-hand section is tested: the ```sh block after the marker
//! `<!-- by-hand: tested by crates/cli/tests/readme_by_hand.rs -->` is taken from README.md
//! (never a copy of its commands) and run with bash in a temporary directory holding the
//! example configs, the built `opencharge` on PATH, on the loopback ports the README uses. It
//! must end with a paid coffee and the balance down by exactly its price. Everything the block
//! starts is killed at the end, whatever happened.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The marker line right before the tested block.
const MARKER: &str = "<!-- by-hand: tested by crates/cli/tests/readme_by_hand.rs -->";

/// The loopback ports of the example configs (gateway, merchant).
const PORTS: [u16; 2] = [8700, 8710];

/// Longest the whole block may take (it takes seconds; the bound only stops a hang).
const LIMIT: Duration = Duration::from_secs(240);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The body of the ```sh block that follows [`MARKER`] in `readme`.
fn by_hand_block(readme: &str) -> String {
    let at = readme
        .find(MARKER)
        .unwrap_or_else(|| panic!("README.md has no line {MARKER}"));
    let rest = readme[at + MARKER.len()..].trim_start_matches(['\r', '\n']);
    let body = rest
        .strip_prefix("```sh\n")
        .unwrap_or_else(|| panic!("the line after {MARKER} must open a ```sh block"));
    let end = body
        .find("\n```")
        .expect("the by-hand block in README.md is not closed");
    body[..end].to_string()
}

/// Sends `signal` to every process of the group `pgid` (the block's bash and its jobs).
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

#[test]
fn the_readme_by_hand_block_reaches_a_payment() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let block = by_hand_block(&readme);
    // The block is the real path: the example configs, a registration without the code on the
    // command line, and a payment.
    for needle in [
        "opencharge gateway --config examples/gateway.toml &",
        "opencharge merchant serve --config examples/merchant.toml &",
        "register < ",
        "--yes",
    ] {
        assert!(
            block.contains(needle),
            "{needle:?} not in the block:\n{block}"
        );
    }
    for port in PORTS {
        if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
            panic!(
                "loopback port {port} is taken ({e}): the README's by-hand block needs 8700 and \
                 8710; stop what uses them (e.g. a gateway or merchant from the README) and run \
                 the test again"
            );
        }
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    for file in ["gateway.toml", "merchant.toml"] {
        std::fs::copy(
            repo_root().join("examples").join(file),
            dir.path().join("examples").join(file),
        )
        .unwrap();
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_opencharge"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let stdout_path = dir.path().join("stdout.txt");
    let stderr_path = dir.path().join("stderr.txt");
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new("bash")
            .args(["-e", "-o", "pipefail", "-c", &block])
            .current_dir(dir.path())
            .env("PATH", path)
            .env_remove("RUST_LOG")
            .env_remove("OPENCHARGE_ENROLLMENT_CODE")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .process_group(0)
            .spawn()
            .expect("cannot start bash")
    };
    let pgid = child.id();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > LIMIT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The servers started with `&` (and anything else left): TERM, a moment, then KILL.
    signal_group(pgid, "-TERM");
    std::thread::sleep(Duration::from_millis(500));
    signal_group(pgid, "-KILL");
    let _ = child.wait();
    let read = |p: &Path| {
        let mut text = String::new();
        std::fs::File::open(p)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    let stdout = read(&stdout_path);
    let stderr = read(&stderr_path);
    let status = status.unwrap_or_else(|| {
        panic!(
            "the block did not finish within {} s\nstdout:\n{stdout}\nstderr:\n{stderr}",
            LIMIT.as_secs()
        )
    });
    assert!(
        status.success(),
        "the block failed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // Paid, with a proof the wallet verified, in the history, and exactly 5.00 USD less.
    let explain = || format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("registered\n"), "{}", explain());
    assert!(
        stdout.contains("paid: 5.00 USD to By-hand Coffee"),
        "{}",
        explain()
    );
    assert!(
        stdout.contains("proof: verified (signed by OCID 200)"),
        "{}",
        explain()
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(" paid ") && l.contains("5.00 USD") && l.contains("merchant_qr")),
        "no paid line in the history:\n{}",
        explain()
    );
    let usd: Vec<&str> = stdout.lines().filter(|l| l.starts_with("USD ")).collect();
    assert_eq!(
        usd,
        ["USD 45.00"],
        "the balance must be 50.00 - 5.00:\n{}",
        explain()
    );
    // The enrollment code went to a file and was never shown.
    let code = std::fs::read_to_string(dir.path().join("by-hand/alice.code")).unwrap();
    let code = code.trim();
    assert!(!code.is_empty());
    assert!(
        !stdout.contains(code) && !stderr.contains(code),
        "{}",
        explain()
    );
}
