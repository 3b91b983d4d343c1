//! The `opencharge-gateway` binary as an operator runs it: `--log-format json` writes one JSON
//! object per log line (with level and message) and text mode writes no colour codes when
//! stderr is not a terminal; dev settings on a reachable address are refused before anything
//! starts; `backup --to FILE` copies the database once and never overwrites; and the systemd
//! unit in `examples/` names this binary and flags it has.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_opencharge-gateway");

/// Starts the gateway on free loopback ports with its files in `dir`, stderr and stdout piped,
/// and waits until its banner's metrics line is printed (the rest of stdout is drained by a
/// thread, so the gateway never writes to a closed pipe).
fn start(dir: &Path, log_format: &str) -> Child {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .arg("--database")
        .arg(dir.join("gateway.sqlite3"))
        .arg("--key-file")
        .arg(dir.join("gateway.key"))
        .args(["--log-format", log_format])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    while let Some(Ok(line)) = lines.next() {
        banner.push_str(&line);
        banner.push('\n');
        if line.trim_start().starts_with("metrics:") {
            assert!(line.contains("/metrics"), "{banner}");
            std::thread::spawn(move || lines.for_each(drop));
            return child;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the gateway exited before its banner was complete:\n{banner}");
}

/// Stops the gateway with SIGTERM, checks it exits 0, and returns its stderr.
fn stop(mut child: Child) -> String {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit {exit:?}; stderr:\n{stderr}");
    stderr
}

#[test]
fn json_logs_are_one_object_per_line_with_level_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = stop(start(dir.path(), "json"));
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty(), "no log lines");
    let mut started = false;
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        let level = value["level"].as_str().unwrap_or_else(|| panic!("{line}"));
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "{line}"
        );
        let message = value["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message: {line}"));
        assert!(value["timestamp"].is_string(), "{line}");
        started |= message == "gateway started";
    }
    assert!(started, "the start is logged:\n{stderr}");
}

#[test]
fn text_logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = stop(start(dir.path(), "text"));
    assert!(stderr.contains("gateway started"), "{stderr}");
    assert!(
        !stderr.contains("\x1b["),
        "escape codes in a piped log:\n{stderr}"
    );
}

#[test]
fn dev_defaults_on_a_reachable_address_are_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["--listen", "0.0.0.0:0", "--metrics-listen", "off"])
        .arg("--database")
        .arg(dir.path().join("gateway.sqlite3"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("dev_mode") && stderr.contains("not a loopback address"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("gateway.sqlite3").exists(),
        "nothing was created"
    );
}

#[test]
fn backup_copies_the_database_once_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = start(dir.path(), "text");
    let db = dir.path().join("gateway.sqlite3");
    let to = dir.path().join("backups").join("first.sqlite3");
    std::fs::create_dir(dir.path().join("backups")).unwrap();
    let backup = |to: &Path| {
        Command::new(BIN)
            .arg("backup")
            .arg("--database")
            .arg(&db)
            .arg("--to")
            .arg(to)
            .output()
            .unwrap()
    };
    // While the gateway runs.
    let output = backup(&to);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("backed up") && stdout.contains("mode 0600"),
        "{stdout}"
    );
    let copy = std::fs::read(&to).unwrap();
    assert!(copy.starts_with(b"SQLite format 3\0"));

    let output = backup(&to);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("exists already"), "{stderr}");
    assert_eq!(
        std::fs::read(&to).unwrap(),
        copy,
        "the first copy is untouched"
    );

    // A source is required: --database or --config.
    let output = Command::new(BIN)
        .args(["backup", "--to"])
        .arg(dir.path().join("x.sqlite3"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    stop(gateway);
}

/// The words of the unit's `ExecStart=` line.
fn exec_start(unit: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.trim().strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart= line");
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn the_systemd_unit_runs_this_binary_with_flags_it_has() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let unit = std::fs::read_to_string(root.join("examples/opencharge-gateway.service")).unwrap();
    let words = exec_start(&unit);
    assert_eq!(
        Path::new(&words[0]).file_name().unwrap(),
        "opencharge-gateway",
        "ExecStart runs the opencharge-gateway binary: {words:?}"
    );
    let help = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let flags: Vec<&String> = words.iter().filter(|w| w.starts_with("--")).collect();
    assert!(!flags.is_empty(), "{words:?}");
    for flag in flags {
        let name = flag.split('=').next().unwrap();
        assert!(
            help.contains(name),
            "{name} is not a flag of the binary:\n{help}"
        );
    }
    // Each flag's value is one the binary accepts: parse the command line without serving.
    let config = words
        .iter()
        .position(|w| w == "--config")
        .map(|i| &words[i + 1])
        .expect("the unit passes --config");
    assert!(config.ends_with(".toml"), "{config}");
    for key in [
        "Restart=",
        "User=",
        "ReadWritePaths=",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.contains(key), "the unit sets {key}");
    }
    // The example config the unit points at (same file name in examples/) parses.
    let example = root
        .join("examples")
        .join(Path::new(config).file_name().unwrap());
    if example.exists() {
        opencharge_gateway::GatewayConfig::from_file(&example).unwrap();
    }
}
