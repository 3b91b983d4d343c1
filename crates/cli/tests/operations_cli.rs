//! The operations surface through the `opencharge` command, run as real processes:
//! `opencharge merchant serve --log-format json` logs one JSON object per line, dev mode on a
//! reachable address is refused with exit code 2, and `opencharge gateway backup` copies a
//! gateway database once.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

fn opencharge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opencharge"));
    command.env_remove("RUST_LOG");
    command
}

#[test]
fn merchant_serve_logs_json_lines_and_refuses_dev_mode_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = opencharge()
        .args([
            "merchant",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    while let Some(Ok(line)) = lines.next() {
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("Ctrl-C stops it") {
            break;
        }
    }
    assert!(seen.contains("is serving"), "{seen}");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    lines.for_each(drop);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{stderr}");
    assert!(!stderr.trim().is_empty(), "debug logs were written");
    for line in stderr.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(value["level"].is_string(), "{line}");
        assert!(value["message"].is_string(), "{line}");
    }

    let refused = opencharge()
        .args(["merchant", "serve", "--listen", "0.0.0.0:0"])
        .arg("--data-dir")
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("dev_mode") && stderr.contains("not a loopback"),
        "{stderr}"
    );
}

#[test]
fn gateway_backup_copies_a_database_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gateway.sqlite3");
    opencharge_gateway::store::sqlite::SqliteStore::open(&db).unwrap();
    let to = dir.path().join("copy.sqlite3");
    let run = || {
        opencharge()
            .args(["gateway", "backup", "--database"])
            .arg(&db)
            .arg("--to")
            .arg(&to)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("backed up"));
    let second = run();
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("exists already"));
}
