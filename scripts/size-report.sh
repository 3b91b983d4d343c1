#!/usr/bin/env bash
# Reports the size of the shipped (mobile profile) wallet-core library (unstripped, stripped, gzip -9) and fails
# when the stripped library is larger than 5 MiB (5,242,880 bytes). It also says whether it fits
# the stricter decimal reading of the budget, 5,000,000 bytes.
#
# Builds the library as the Android build ships it: `cargo rustc -p opencharge-wallet --lib
# --profile mobile --crate-type cdylib` (the root Cargo.toml's mobile profile: opt-level "s",
# LTO, one codegen unit, panic = "unwind"; the cdylib alone, as android/opencharge-wallet's
# cargo-ndk task builds it: the same library built together with the crate's other types, rlib
# and staticlib, came out 914 KB larger when stripped, measured in issue 19), copies it to
# target/size-report/, strips the copy and compresses it; the build output itself is untouched.
# The host library stands in for the per-ABI Android/iOS libraries, which need toolchains
# this machine does not have. Last line: `size: stripped N bytes (limit 5242880): ok|too large`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

LIMIT=5242880
DECIMAL_LIMIT=5000000
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
OUT=$TARGET/size-report
NAME=libopencharge_wallet.so

if ! command -v strip >/dev/null 2>&1 || ! command -v nm >/dev/null 2>&1; then
  SUDO=
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
  $SUDO apt-get install -y -qq --no-install-recommends binutils >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends binutils >/dev/null; }
fi

start=$SECONDS
cargo rustc -p opencharge-wallet --lib --profile mobile --locked --crate-type cdylib
build_secs=$((SECONDS - start))

rm -rf "$OUT"
mkdir -p "$OUT"
cp "$TARGET/mobile/$NAME" "$OUT/$NAME"
cp "$TARGET/mobile/$NAME" "$OUT/stripped-$NAME"
strip "$OUT/stripped-$NAME"
gzip -9 -c "$OUT/stripped-$NAME" >"$OUT/stripped-$NAME.gz"

bytes() { stat -c %s "$1"; }
unstripped=$(bytes "$OUT/$NAME")
stripped=$(bytes "$OUT/stripped-$NAME")
gzipped=$(bytes "$OUT/stripped-$NAME.gz")
# The bindings call these; stripping must keep them (they live in the dynamic symbol table).
exported=$(nm -D --defined-only "$OUT/stripped-$NAME" | grep -c ' uniffi_opencharge_wallet_' || true)

mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
printf '%-28s %12s  %s\n' "mobile $NAME" "$unstripped" "$(mib "$unstripped")"
printf '%-28s %12s  %s\n' "stripped" "$stripped" "$(mib "$stripped")"
printf '%-28s %12s  %s\n' "stripped, gzip -9" "$gzipped" "$(mib "$gzipped")"
printf '%-28s %12s\n' "exported uniffi functions" "$exported"
printf '%-28s %12s\n' "mobile build (s)" "$build_secs"

if [ "$exported" -eq 0 ]; then
  echo "size: the stripped library exports no uniffi_opencharge_wallet_* symbols" >&2
  exit 1
fi
if [ "$stripped" -gt "$LIMIT" ]; then
  echo "size: stripped $stripped bytes (limit $LIMIT): too large"
  exit 1
fi
if [ "$stripped" -gt "$DECIMAL_LIMIT" ]; then
  echo "note: $((stripped - DECIMAL_LIMIT)) bytes over 5,000,000 (the decimal reading of 5 MB)"
fi
echo "size: stripped $stripped bytes (limit $LIMIT): ok"
