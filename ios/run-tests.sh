#!/usr/bin/env bash
# macOS CI for the Swift package: builds the core and its bindings, the xcframework (with a
# macOS slice), starts `opencharge sandbox` on loopback, runs the XCTest suite with `swift test`
# against it (OPENCHARGE_SANDBOX_JSON), then stops the sandbox by closing its stdin.
# Needs macOS with Xcode and rustup. Not runnable on Linux (no Swift toolchain, no Apple SDKs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

if [ -x scripts/bindings.sh ]; then
  scripts/bindings.sh
else
  cargo build -p opencharge-wallet
  cargo build -p uniffi-bindgen   # a separate invocation: keeps the bindgen's features out of the library
  "$TARGET_DIR/debug/uniffi-bindgen" generate "$TARGET_DIR/debug/libopencharge_wallet.dylib" \
    --language swift --config uniffi/uniffi.toml --out-dir bindings/swift --no-format
fi
scripts/build-xcframework
cargo build -p opencharge-cli

work=$(mktemp -d)
mkfifo "$work/stdin"
"$TARGET_DIR/debug/opencharge" sandbox <"$work/stdin" >"$work/sandbox.json" 2>"$work/sandbox.log" &
sandbox_pid=$!
exec 3>"$work/stdin"   # the sandbox runs while this descriptor is open
cleanup() {
  exec 3>&- || true
  wait "$sandbox_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 120); do
  [ -s "$work/sandbox.json" ] && break
  if ! kill -0 "$sandbox_pid" 2>/dev/null; then
    cat "$work/sandbox.log" >&2
    echo "the sandbox exited before it was ready" >&2
    exit 1
  fi
  sleep 0.5
done
OPENCHARGE_SANDBOX_JSON=$(head -n 1 "$work/sandbox.json")
[ -n "$OPENCHARGE_SANDBOX_JSON" ] || { echo "the sandbox printed nothing" >&2; exit 1; }
export OPENCHARGE_SANDBOX_JSON
echo "sandbox: $OPENCHARGE_SANDBOX_JSON"

cd ios
swift test
