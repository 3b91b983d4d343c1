#!/usr/bin/env bash
# FFI cost of the wallet core from Kotlin (a measurement, not a test): compiles
# benchmarks/ffi/FfiBench.kt against the Kotlin bindings and runs it on the host JVM through
# JNA, on the shipped library profile (mobile: opt-level "s", LTO), against an
# `opencharge sandbox` built with the bench profile (opt-level 3). Prints ns/call per call.
#
# Usage: scripts/bench-ffi.sh
# Env: TOOLS_DIR (kotlinc cache, default .tools), CARGO_TARGET_DIR.
# Uses bindings/kotlin when present, else generates a scratch copy under the target dir.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

KOTLIN_VERSION=2.4.20
TOOLS=${TOOLS_DIR:-$ROOT/.tools}
case "$TOOLS" in /*) ;; *) TOOLS=$ROOT/$TOOLS ;; esac
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
KHOME=$TOOLS/kotlinc-$KOTLIN_VERSION
J=/usr/share/java
OUT=$TARGET/ffi-bench

step() { printf '==> %s\n' "$*" >&2; }

# ---- tools: Java, JNA (Debian) and kotlinc (npm kotlin-compiler, as scripts/test-kotlin.sh) ----
command -v java >/dev/null 2>&1 || { echo "bench-ffi.sh: java is missing (apt-get install default-jre-headless)" >&2; exit 1; }
[ -f "$J/jna.jar" ] || { echo "bench-ffi.sh: $J/jna.jar is missing (apt-get install libjna-java)" >&2; exit 1; }
if [ ! -x "$KHOME/bin/kotlinc" ]; then
  step "npm pack kotlin-compiler@$KOTLIN_VERSION into $TOOLS"
  mkdir -p "$TOOLS"
  unpack=$(mktemp -d "$TOOLS/kotlinc.XXXXXX")
  (cd "$unpack" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null &&
    tar xzf "kotlin-compiler-$KOTLIN_VERSION.tgz" && rm -rf "$KHOME" && mv package "$KHOME")
  rm -rf "$unpack"
fi

# ---- bindings ------------------------------------------------------------------------------
mkdir -p "$OUT"
if [ -d bindings/kotlin ]; then
  BINDINGS=bindings/kotlin
else
  step "no bindings/kotlin: generating a scratch copy into $OUT/bindings"
  cargo build -p opencharge-wallet
  cargo build -p uniffi-bindgen
  rm -rf "$OUT/bindings"
  "$TARGET/debug/uniffi-bindgen" generate "$TARGET/debug/libopencharge_wallet.so" --crate opencharge_wallet \
    --language kotlin --config uniffi/uniffi.toml --out-dir "$OUT/bindings" --no-format >/dev/null
  BINDINGS=$OUT/bindings
fi

# ---- the shipped library (mobile profile) and a fast sandbox (bench profile) ------------------
step "cargo rustc -p opencharge-wallet --lib --profile mobile --crate-type cdylib (the shipped library)"
cargo rustc -p opencharge-wallet --lib --profile mobile --crate-type cdylib
mkdir -p "$OUT/lib"
cp "$TARGET/mobile/libopencharge_wallet.so" "$OUT/lib/libopencharge_wallet.so"
step "cargo build --profile bench -p opencharge-cli (the sandbox)"
cargo build --profile bench -p opencharge-cli
BIN=$TARGET/release/opencharge

# ---- compile (skipped when nothing changed) --------------------------------------------------
CP=$J/jna.jar:$KHOME/lib/kotlinx-coroutines-core-jvm.jar:$KHOME/lib/kotlin-stdlib.jar
JAR=$OUT/ffibench.jar
stamp=$({
  echo "$KOTLIN_VERSION $CP"
  find "$BINDINGS" benchmarks/ffi -type f -name '*.kt' | LC_ALL=C sort | xargs sha256sum
} | sha256sum | cut -d' ' -f1)
if [ -f "$JAR" ] && [ "$(cat "$JAR.stamp" 2>/dev/null)" = "$stamp" ]; then
  step "kotlinc: $JAR is up to date"
else
  step "kotlinc $BINDINGS benchmarks/ffi"
  rm -f "$JAR" "$JAR.stamp"
  "$KHOME/bin/kotlinc" "$BINDINGS" benchmarks/ffi -cp "$CP" -d "$JAR"
  echo "$stamp" >"$JAR.stamp"
fi

# ---- run ----------------------------------------------------------------------------------------
step "java FfiBench (load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'))"
exec java -Xss4m \
  -Duniffi.component.opencharge_wallet.libraryOverride="$OUT/lib/libopencharge_wallet.so" \
  -Dopencharge.bin="$BIN" \
  -cp "$JAR:$CP" network.opencharge.wallet.bench.FfiBenchKt
