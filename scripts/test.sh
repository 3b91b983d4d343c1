#!/usr/bin/env bash
# The project's one test command (README "Run all tests"): installs what it needs on a fresh
# Debian machine, then runs formatting, lints, every Rust test, the one-command demo, the
# Kotlin binding tests, the Swift static checks, the Android layer's JVM checks, the benchmark
# build with a load-generator smoke run and the push extension's peak RSS, and the mobile
# library's size budget. Each part prints `NAME: N passed, N failed`; the last line totals them
# and the exit status is nonzero if anything failed.
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

step "opencharge demo --flow all"
cargo build -p opencharge-cli --locked && target/debug/opencharge demo --flow all --no-qr | tee target/demo-output.txt
rc=${PIPESTATUS[0]}
paid=$(grep -cE '^  (wallet-qr|merchant-qr|checkout) .* paid ' target/demo-output.txt || true)
if [ "$rc" -eq 0 ] && [ "$paid" -eq 3 ]; then record demo 3 0; else record demo "$paid" $((3 - paid > 0 ? 3 - paid : 1)); fi

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
