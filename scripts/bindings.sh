#!/usr/bin/env bash
# Generates the uniffi bindings of the wallet core into bindings/ (Kotlin JVM, Kotlin Android,
# Swift); with --check, fails when the committed bindings/ differ from what the library generates.
#
# Usage: scripts/bindings.sh           regenerate bindings/{kotlin,android,swift}
#        scripts/bindings.sh --check   generate into a temp dir and compare with bindings/
#
# The cdylib and the bindgen are built by two separate cargo invocations on purpose: building
# them together unifies uniffi's `cli` feature into the library. Bindings are generated from the
# unstripped debug library (its metadata symbols are what uniffi reads), without formatting
# (no ktlint / swift-format needed), and generated twice to prove the output is deterministic.
# The Swift error enum's cases are then renamed lowerCamel by scripts/swift_error_cases.py.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODE=write
case "${1:-}" in
  "") ;;
  --check) MODE=check ;;
  -h | --help)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "bindings.sh: unknown argument '$1' (expected --check or nothing)" >&2
    exit 2
    ;;
esac

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
LIB=$TARGET/debug/libopencharge_wallet.so
BINDGEN=$TARGET/debug/uniffi-bindgen

echo "==> cargo build -p opencharge-wallet" >&2
cargo build -p opencharge-wallet --locked
echo "==> cargo build -p uniffi-bindgen" >&2
cargo build -p uniffi-bindgen --locked

WORK=$(mktemp -d "${TMPDIR:-/tmp}/opencharge-bindings.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# generate DIR: the three binding sets of the wallet core into DIR/{kotlin,android,swift}.
generate() {
  local out=$1
  "$BINDGEN" generate "$LIB" --crate opencharge_wallet --no-format \
    --language kotlin --config uniffi/uniffi.toml --out-dir "$out/kotlin" >/dev/null
  "$BINDGEN" generate "$LIB" --crate opencharge_wallet --no-format \
    --language kotlin --config uniffi/uniffi-android.toml --out-dir "$out/android" >/dev/null
  "$BINDGEN" generate "$LIB" --crate opencharge_wallet --no-format \
    --language swift --config uniffi/uniffi.toml --out-dir "$out/swift" >/dev/null
  # uniffi 0.32 names Swift *error* cases UpperCamel (`.Gateway`); rename them lowerCamel
  # (`.gateway`) like every other Swift enum case (see the script's header).
  python3 scripts/swift_error_cases.py "$out/swift/OpenchargeWallet.swift"
  local f
  for f in kotlin/network/opencharge/wallet/opencharge_wallet.kt \
    android/network/opencharge/wallet/opencharge_wallet.kt \
    swift/OpenchargeWallet.swift swift/OpenchargeWalletFFI.h swift/OpenchargeWalletFFI.modulemap; do
    if [ ! -s "$out/$f" ]; then
      echo "bindings.sh: uniffi-bindgen did not produce $f" >&2
      exit 1
    fi
  done
}

echo "==> uniffi-bindgen generate (kotlin, android, swift)" >&2
generate "$WORK/a"
generate "$WORK/b"
if ! diff -r "$WORK/a" "$WORK/b" >/dev/null; then
  echo "bindings.sh: two generations from the same library differ (non-deterministic output):" >&2
  diff -r "$WORK/a" "$WORK/b" | head -40 >&2
  exit 1
fi

if [ "$MODE" = check ]; then
  if [ ! -d bindings ] || ! diff -r "$WORK/a" bindings >"$WORK/diff.txt" 2>&1; then
    head -60 "$WORK/diff.txt" >&2 || true
    echo "bindings are stale: run scripts/bindings.sh" >&2
    exit 1
  fi
  echo "bindings are up to date" >&2
  exit 0
fi

rm -rf bindings/kotlin bindings/android bindings/swift
mkdir -p bindings
cp -R "$WORK/a/kotlin" "$WORK/a/android" "$WORK/a/swift" bindings/
echo "bindings written:" >&2
(cd bindings && find kotlin android swift -type f | sort | sed 's/^/  bindings\//') >&2
