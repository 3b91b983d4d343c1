#!/usr/bin/env bash
# The project's one test command (README "Run all tests"): installs what it needs on a fresh
# Debian machine, then runs formatting, lints, every Rust test, the one-command demo, the
# Kotlin binding tests, the Swift static checks, the Android layer's JVM checks, the benchmark
# build with a load-generator smoke run and the push extension's peak RSS, and the mobile
# library's size budget. Each part prints `NAME: N passed, N failed`; the last line totals them
# and the exit status is nonzero if anything failed.
#
# PostgreSQL: unless OPENCHARGE_TEST_PG_URL already points at a server (local runs may use an
# existing one), a throwaway cluster is started first (scripts/pg-cluster.sh, which installs
# Debian's postgresql when missing) on a free loopback port and stopped at exit. The Rust tests
# that need PostgreSQL read the variable; a second pass runs the gateway's HTTP API suites with
# OPENCHARGE_TEST_BACKEND=postgres (POSTGRES_SUITES below) and prints the `postgres:` line. A
# cluster that cannot start is a failure (`postgres: 0 passed, 1 failed`), never a skip.
set -uo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
SUMMARY=()
FAILED=0
# record NAME PASSED FAILED: one summary line.
record() {
  SUMMARY+=("$1: $2 passed, $3 failed")
  if [ "$3" -ne 0 ]; then FAILED=1; fi
}
# record_from NAME LOG RC: takes the last `NAME: N passed, N failed` line a script printed;
# a script that failed without such a line counts as one failure.
record_from() {
  local line passed failed
  line=$(grep -E "^$1: [0-9]+ passed, [0-9]+ failed$" "$2" | tail -1)
  passed=$(sed -E 's/^.*: ([0-9]+) passed.*/\1/' <<<"$line")
  failed=$(sed -E 's/^.*, ([0-9]+) failed$/\1/' <<<"$line")
  if [ -z "$line" ]; then passed=0 failed=1; fi
  if [ "$3" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
  record "$1" "$passed" "$failed"
}
mkdir -p target

# The gateway's suites about its HTTP API, run a second time on PostgreSQL
# (OPENCHARGE_TEST_BACKEND=postgres makes the test kit put each gateway on a fresh database),
# plus the PostgreSQL store's own suite and the many-instance suite. Left out, with the reason:
# sqlite_store (the SQLite backend's files, pragmas and migrations), identity (the key beside a
# database file, file modes, `rotate-key --database FILE`), binary (the binary's `--database
# FILE` and `backup` of a SQLite file), push_queue (the SQLite store's push queue through
# `SqliteStore`; the same contract runs on PostgreSQL in postgres_store), and push_apns,
# push_fcm, push_docs (the push senders and docs/push.md: no gateway database at all). Inside
# the listed suites, three tests stay on a SQLite file in both passes: operations' readyz-lock
# and backup tests (they lock and copy that file) and notify's exact wake-up count (on
# PostgreSQL a commit also returns as the instance's own NOTIFY and wakes its streams twice).
POSTGRES_SUITES=(app_api opencharge_api auth_and_webhooks limits notify operations push_tokens
  rate_limits router_answers postgres_store multi_instance third_party p2p)

# PostgreSQL for the tests: OPENCHARGE_TEST_PG_URL as given, or a throwaway cluster.
PG_ERROR=""
if [ -z "${OPENCHARGE_TEST_PG_URL:-}" ]; then
  step "scripts/pg-cluster.sh start (a throwaway PostgreSQL cluster on loopback)"
  PG_DIR=$(mktemp -d)
  trap 'scripts/pg-cluster.sh stop "$PG_DIR"' EXIT
  for _ in 1 2 3 4 5 6; do
    port=$((20000 + RANDOM % 30000))
    # A port something already listens on is not tried.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    if url=$(scripts/pg-cluster.sh start "$PG_DIR" "$port"); then
      export OPENCHARGE_TEST_PG_URL="$url"
      break
    fi
    # Another port helps only when the cluster exists and could not listen.
    if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then break; fi
  done
  if [ -z "${OPENCHARGE_TEST_PG_URL:-}" ]; then
    PG_ERROR="no throwaway PostgreSQL cluster could start (see scripts/pg-cluster.sh's messages above)"
    echo "$PG_ERROR" >&2
  else
    echo "PostgreSQL for the tests: $OPENCHARGE_TEST_PG_URL"
  fi
else
  echo "PostgreSQL for the tests: OPENCHARGE_TEST_PG_URL as set"
fi

# Toolchain components (present on the standard machine; installed when missing).
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  step "installing rustfmt and clippy"
  rustup component add rustfmt clippy
fi
# Headless Chromium and ChromeDriver for the checkout page test (Debian packages).
step "scripts/ensure-chromium.sh"
scripts/ensure-chromium.sh || FAILED=1

step "cargo fmt --check"
if cargo fmt --all -- --check; then record fmt 1 0; else record fmt 0 1; fi

step "cargo clippy (all targets, warnings are errors)"
if cargo clippy --workspace --exclude uniffi-bindgen --all-targets --locked -- -D warnings; then
  record clippy 1 0
else
  record clippy 0 1
fi

step "cargo test"
cargo test --workspace --exclude uniffi-bindgen --locked --no-fail-fast 2>&1 | tee target/test-output.txt
rc=${PIPESTATUS[0]}
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "rust: %d passed, %d failed\n", p, f }' target/test-output.txt | tee target/rust-line.txt
record_from rust target/rust-line.txt "$rc"

step "cargo test on PostgreSQL (the gateway's API suites with OPENCHARGE_TEST_BACKEND=postgres)"
if [ -n "$PG_ERROR" ]; then
  record postgres 0 1
else
  args=()
  for suite in "${POSTGRES_SUITES[@]}"; do args+=(--test "$suite"); done
  OPENCHARGE_TEST_BACKEND=postgres cargo test -p opencharge-gateway --locked --no-fail-fast "${args[@]}" 2>&1 |
    tee target/postgres-output.txt
  rc=${PIPESTATUS[0]}
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
       END { printf "postgres: %d passed, %d failed\n", p, f }' target/postgres-output.txt | tee target/postgres-line.txt
  record_from postgres target/postgres-line.txt "$rc"
fi

step "opencharge demo --flow all"
cargo build -p opencharge-cli --locked && target/debug/opencharge demo --flow all --no-qr | tee target/demo-output.txt
rc=${PIPESTATUS[0]}
paid=$(grep -cE '^  (wallet-qr|merchant-qr|checkout|third-party|p2p) .* paid ' target/demo-output.txt || true)
if [ "$rc" -eq 0 ] && [ "$paid" -eq 5 ]; then record demo 5 0; else record demo "$paid" $((5 - paid > 0 ? 5 - paid : 1)); fi

step "scripts/test-kotlin.sh (bindings staleness check + JUnit on the host library)"
scripts/test-kotlin.sh 2>&1 | tee target/kotlin-output.txt
record_from kotlin target/kotlin-output.txt "${PIPESTATUS[0]}"

step "scripts/check-swift.sh (static checks of the generated and hand-written Swift)"
scripts/check-swift.sh 2>&1 | tee target/swift-output.txt
record_from swift target/swift-output.txt "${PIPESTATUS[0]}"

step "android/verify-jvm.sh (the Android layer's JVM-compilable parts)"
android/verify-jvm.sh 2>&1 | tee target/android-output.txt
record_from android-jvm target/android-output.txt "${PIPESTATUS[0]}"

step "benchmarks build (cargo build --benches), the load generator's smoke run, the push extension's RSS and the push latency"
# The criterion benches are only compiled here, never timed. `cargo build --benches` compiles
# exactly the targets `cargo bench --no-run` would, in the dev profile whose artifacts the tests
# already built: a cold opt-level-3 build of the whole workspace would add ten minutes to CI.
bench=0
cargo build --workspace --exclude uniffi-bindgen --benches --locked || bench=1
cargo run -p opencharge-bench --locked -- --smoke || bench=1
# The push extension's peak RSS (1,000 receipts, one wake-up), printed, never asserted: a debug
# build here, so only the trend means something (docs/performance.md has the bench-profile figure).
{ cargo build -p opencharge-bench --bins --locked && target/debug/push-extension-rss; } || bench=1
# Order POST -> push sent latency through the strict loopback FCM, printed, never asserted.
target/debug/push-latency --orders 200 --wallets 10 || bench=1
if [ "$bench" -eq 0 ]; then record bench 4 0; else record bench 0 1; fi

step "scripts/size-report.sh (the mobile profile's library against the 5 MiB budget)"
scripts/size-report.sh 2>&1 | tee target/size-output.txt
if [ "${PIPESTATUS[0]}" -eq 0 ] && grep -qE '^size: stripped [0-9]+ bytes .*: ok$' target/size-output.txt; then
  record size 1 0
else
  record size 0 1
fi

printf '\n==> summary\n'
passed=0 failed=0
for line in "${SUMMARY[@]}"; do
  echo "$line"
  passed=$((passed + $(sed -E 's/^.*: ([0-9]+) passed.*/\1/' <<<"$line")))
  failed=$((failed + $(sed -E 's/^.*, ([0-9]+) failed$/\1/' <<<"$line")))
done
if [ "$FAILED" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
