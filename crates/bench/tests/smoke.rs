//! Runs the CI preset through the built binary (`opencharge-bench --smoke --json`): an
//! embedded gateway and merchant on loopback, two real wallets, ten payments; and the same
//! with the gateway as its own `opencharge gateway` process (`--gateway-bin`). Checks the exit
//! status, that the JSON report has every leg with a sample for every payment, and that the
//! gateway process's CPU is reported; and the preset with two embedded gateway instances on a
//! fresh PostgreSQL database (`--database`, `--instances`). Never asserts timings.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const LEGS: [&str; 7] = [
    "session",
    "order_sign",
    "order_post",
    "post_to_prompt",
    "confirm",
    "confirm_to_webhook",
    "total",
];

/// Runs the smoke preset with `extra` arguments; returns the JSON report after checking that
/// every leg of every payment completed.
fn smoke(extra: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_opencharge-bench"))
        .args(["--smoke", "--json"])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}; stderr: {stderr}",
        output.status
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();

    assert_eq!(report["config"]["smoke"], true);
    assert_eq!(report["config"]["wallets"], 2);
    assert_eq!(report["config"]["merchants"], 1);
    assert_eq!(report["config"]["payments"], 10);
    assert_eq!(report["completed"], 10, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["warmupFailed"], 0, "{report}");
    assert_eq!(report["failures"].as_array().unwrap().len(), 0, "{report}");

    let legs = report["legs"].as_array().unwrap();
    let names: Vec<&str> = legs.iter().map(|l| l["leg"].as_str().unwrap()).collect();
    assert_eq!(names, LEGS);
    for leg in legs {
        assert_eq!(leg["count"], 10, "{leg}");
        for field in ["p50Ms", "p90Ms", "p99Ms", "maxMs", "meanMs"] {
            let value = leg[field].as_f64().unwrap_or(-1.0);
            assert!(value >= 0.0, "{field} of {leg}");
        }
        assert!(leg["p50Ms"].as_f64() <= leg["p99Ms"].as_f64(), "{leg}");
        assert!(leg["p99Ms"].as_f64() <= leg["maxMs"].as_f64(), "{leg}");
    }
    assert!(report["paymentsPerSec"].as_f64().unwrap() > 0.0);
    report
}

#[test]
fn smoke_preset_completes_every_leg_of_every_payment() {
    let report = smoke(&[]);
    assert_eq!(report["config"]["gateway"], "embedded");
    assert_eq!(report["config"]["backend"], "sqlite");
    assert_eq!(report["config"]["instances"], 1);
    assert!(report["gatewayCpu"].is_null(), "{report}");
    assert!(report["instanceRequests"].is_null(), "{report}");
}

#[test]
fn smoke_preset_on_two_instances_of_one_postgres_database_completes_every_payment() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime
        .block_on(opencharge_testkit::pg::TestDatabase::create())
        .unwrap();
    let report = smoke(&["--database", database.url(), "--instances", "2"]);
    assert_eq!(report["config"]["gateway"], "embedded");
    assert_eq!(report["config"]["backend"], "postgres");
    assert_eq!(report["config"]["instances"], 2);
    // The report names the database without its password.
    assert!(report["config"]["database"]
        .as_str()
        .unwrap()
        .starts_with("postgres"));
    // The front spread the requests over both instances.
    let requests = report["instanceRequests"].as_array().unwrap();
    assert_eq!(requests.len(), 2, "{report}");
    assert!(
        requests.iter().all(|n| n.as_u64().unwrap() > 0),
        "every instance served: {report}"
    );
}

#[test]
fn more_than_one_instance_on_sqlite_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_opencharge-bench"))
        .args(["--smoke", "--instances", "2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--instances 2 needs --database postgres://"),
        "{stderr}"
    );
}

/// The `opencharge` binary of this build: cargo puts it beside this package's binaries when
/// the workspace's tests are built (`opencharge-cli` has integration tests).
fn opencharge_binary() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_opencharge-bench"));
    let binary = bench.with_file_name("opencharge");
    assert!(
        binary.is_file(),
        "{} is missing: build it first with `cargo build -p opencharge-cli` (the workspace's \
         `cargo test` builds it too)",
        binary.display()
    );
    binary
}

#[test]
fn smoke_preset_with_the_gateway_as_its_own_process_reports_its_cpu() {
    let binary = opencharge_binary();
    let report = smoke(&["--gateway-bin", binary.to_str().unwrap()]);
    assert!(
        report["config"]["gateway"]
            .as_str()
            .unwrap()
            .starts_with("process "),
        "{report}"
    );
    let gateway = &report["gatewayCpu"];
    let pid = gateway["pid"].as_u64().unwrap();
    assert!(pid > 0, "{report}");
    // /proc counts CPU in 10 ms ticks, which ten payments may not fill: only that the figures
    // are there is checked, never their size.
    assert!(gateway["cpuSecs"].as_f64().unwrap() >= 0.0, "{report}");
    assert!(gateway["msPerPayment"].as_f64().unwrap() >= 0.0, "{report}");
    // The run stopped its gateway (Linux: a reaped process leaves /proc).
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the gateway process {pid} outlived the run"
    );
}

#[test]
fn non_loopback_gateways_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_opencharge-bench"))
        .args([
            "--gateway",
            "http://192.0.2.1:8700/opencharge",
            "--merchant",
            "http://127.0.0.1:8710/opencharge",
            "--payments",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not on loopback"), "{stderr}");
}
