#!/usr/bin/env bash
# Runs the Kotlin (JUnit 5) tests of the generated wallet-core bindings on the host JVM, through
# JNA against target/debug/libopencharge_wallet.so and a live `opencharge sandbox`.
#
# Installs what it needs on a fresh Debian machine: Java, npm, JNA and JUnit 5 from Debian
# (apt-get; sudo when not root) and kotlinc from npm `kotlin-compiler` into .tools/ (override
# with TOOLS_DIR). Checks the committed bindings are current (scripts/bindings.sh --check),
# builds the CLI for the sandbox, compiles bindings/kotlin + tests/kotlin in one kotlinc call,
# runs JUnit and prints its tree, then compiles the READMEs' Kotlin blocks
# (scripts/check-readme-kotlin.sh, counted as one test). The last line is `kotlin: N passed, N failed` (a run that
# cannot start counts as one failure); the exit status is nonzero on any failure.
# Env: TOOLS_DIR (tool cache), OPENCHARGE_BIN (the opencharge binary the tests spawn),
# CARGO_TARGET_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

KOTLIN_VERSION=2.4.20
TOOLS=${TOOLS_DIR:-$ROOT/.tools}
case "$TOOLS" in /*) ;; *) TOOLS=$ROOT/$TOOLS ;; esac
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
OUT=$TARGET/kotlin-tests
KHOME=$TOOLS/kotlinc-$KOTLIN_VERSION
J=/usr/share/java

step() { printf '\n==> %s\n' "$*" >&2; }
# timed LABEL CMD...: runs CMD, then reports its wall time under LABEL on stderr.
timed() {
  local label=$1 start=$SECONDS rc
  shift
  "$@"
  rc=$?
  printf '    [%d s] %s\n' $((SECONDS - start)) "$label" >&2
  return $rc
}
# abort MESSAGE: the run cannot happen; counts as one failure.
abort() {
  echo "test-kotlin.sh: $*" >&2
  echo "kotlin: 0 passed, 1 failed"
  exit 1
}

# ---- 1. system packages (Debian) ------------------------------------------------------------
SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
missing=()
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -f "$J/jna.jar" ] || missing+=(libjna-java)
[ -f "$J/junit-platform-console-standalone.jar" ] || missing+=(junit5)
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  command -v apt-get >/dev/null 2>&1 || abort "missing ${missing[*]} and no apt-get to install them"
  if ! timed "apt-get install" $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    timed "apt-get update" $SUDO apt-get update -qq >/dev/null || abort "apt-get update failed"
    timed "apt-get install" $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || abort "apt-get install ${missing[*]} failed"
  fi
fi

# ---- 2. kotlinc (npm kotlin-compiler: the full JetBrains distribution, coroutines included) ---
if [ ! -x "$KHOME/bin/kotlinc" ]; then
  step "npm pack kotlin-compiler@$KOTLIN_VERSION into $TOOLS"
  mkdir -p "$TOOLS" || abort "cannot create $TOOLS"
  unpack=$(mktemp -d "$TOOLS/kotlinc.XXXXXX")
  (
    cd "$unpack" &&
      timed "npm pack" npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null &&
      tar xzf "kotlin-compiler-$KOTLIN_VERSION.tgz" &&
      rm -rf "$KHOME" && mv package "$KHOME"
  ) || {
    rm -rf "$unpack"
    abort "could not fetch kotlin-compiler@$KOTLIN_VERSION from npm"
  }
  rm -rf "$unpack"
fi
for jar in kotlin-stdlib kotlinx-coroutines-core-jvm kotlin-test kotlin-test-junit5; do
  [ -f "$KHOME/lib/$jar.jar" ] || abort "$KHOME/lib/$jar.jar is missing (delete $KHOME to refetch)"
done

# ---- 3. bindings are current; the library and the sandbox binary are built ------------------
step "scripts/bindings.sh --check"
timed "bindings.sh --check" scripts/bindings.sh --check || abort "the committed bindings do not match the library"
step "cargo build -p opencharge-cli"
timed "cargo build -p opencharge-cli" cargo build -p opencharge-cli --locked || abort "cargo build -p opencharge-cli failed"
LIB=$TARGET/debug/libopencharge_wallet.so
BIN=${OPENCHARGE_BIN:-$TARGET/debug/opencharge}
[ -f "$LIB" ] || abort "no $LIB"
[ -x "$BIN" ] || abort "no opencharge binary at $BIN"

# ---- 4. compile bindings + tests in one kotlinc call (skipped when nothing changed) -----------
CP=$J/jna.jar:$KHOME/lib/kotlinx-coroutines-core-jvm.jar:$KHOME/lib/kotlin-test.jar:$KHOME/lib/kotlin-test-junit5.jar:$J/junit-platform-console-standalone.jar
JAR=$OUT/tests.jar
mkdir -p "$OUT"
stamp=$({
  echo "$KOTLIN_VERSION $CP"
  find bindings/kotlin tests/kotlin -type f -name '*.kt' | LC_ALL=C sort | xargs sha256sum
} | sha256sum | cut -d' ' -f1)
if [ -f "$JAR" ] && [ "$(cat "$JAR.stamp" 2>/dev/null)" = "$stamp" ]; then
  step "kotlinc: $JAR is up to date"
else
  step "kotlinc bindings/kotlin tests/kotlin"
  rm -f "$JAR" "$JAR.stamp"
  timed kotlinc "$KHOME/bin/kotlinc" bindings/kotlin tests/kotlin -cp "$CP" -d "$JAR" || abort "kotlinc failed"
  echo "$stamp" >"$JAR.stamp"
fi

# ---- 5. JUnit 5 on the host library ------------------------------------------------------------
step "JUnit 5 (sandbox: $BIN)"
rm -rf "$OUT/reports"
timed junit java \
  -Djna.library.path="$TARGET/debug" \
  -Duniffi.component.opencharge_wallet.libraryOverride="$LIB" \
  -Dopencharge.root="$ROOT" \
  -Dopencharge.bin="$BIN" \
  -jar "$J/junit-platform-console-standalone.jar" \
  --class-path "$JAR:$CP:$KHOME/lib/kotlin-stdlib.jar" \
  --scan-class-path "$JAR" --include-engine=junit-jupiter --fail-if-no-tests \
  --disable-banner --disable-ansi-colors --details=tree \
  --reports-dir="$OUT/reports" 2>&1 | tee "$OUT/junit.txt"
junit_rc=${PIPESTATUS[0]}

passed=$(sed -nE 's/^\[ *([0-9]+) tests successful.*/\1/p' "$OUT/junit.txt" | tail -1)
failed=$(sed -nE 's/^\[ *([0-9]+) tests failed.*/\1/p' "$OUT/junit.txt" | tail -1)
passed=${passed:-0}
failed=${failed:-0}
if [ "$junit_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

# ---- 6. the READMEs' Kotlin snippets compile (what the README tells a user to type) -----------
step "scripts/check-readme-kotlin.sh"
if timed "readme snippets" scripts/check-readme-kotlin.sh; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi
echo "kotlin: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
