#!/usr/bin/env bash
# The project's one test command (README "Run all tests"): installs what it needs on a fresh
# machine, then runs formatting, lints and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Toolchain components (present on the standard machine; installed when missing).
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  step "installing rustfmt and clippy"
  rustup component add rustfmt clippy
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --exclude uniffi-bindgen --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --exclude uniffi-bindgen --locked 2>&1 | tee target/test-output.txt
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "rust: %d passed, %d failed\n", p, f }' target/test-output.txt
