#!/usr/bin/env bash
# Static check of everything Swift in the repository, on a machine without a Swift toolchain:
# the generated bindings and all hand-written Swift under ios/ (package, layer, XCTest tests,
# sample app) through scripts/swift_check.py (tree-sitter syntax, FFI symbols vs header and
# library, contract version + API checksums vs the library through ctypes, modulemap, use of the
# generated API, localization keys vs the package's Localizable.xcstrings); the generated C
# header through gcc; the ios/ package layout (the symlink to the generated bindings, the paths
# and resources Package.swift names); and a self-test: the checker must reject every deliberately broken
# fixture in tests/swift-broken/ with the error that fixture names.
#
# Assumes target/debug/libopencharge_wallet.so and bindings/swift/ exist (scripts/bindings.sh).
# Overrides: TOOLS_DIR (tool cache, default .tools), LIB (the library), SWIFT_BINDINGS_DIR.
# Last line: "swift: N passed, N failed"; exit status 1 when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=${TOOLS_DIR:-$ROOT/.tools}
VENV=$TOOLS/venv
LIB=${LIB:-$ROOT/target/debug/libopencharge_wallet.so}
SWIFT_DIR=${SWIFT_BINDINGS_DIR:-$ROOT/bindings/swift}
GENERATED=$SWIFT_DIR/OpenchargeWallet.swift
HEADER=$SWIFT_DIR/OpenchargeWalletFFI.h
MODULEMAP=$SWIFT_DIR/OpenchargeWalletFFI.modulemap

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok  $*"; }
fail() { failed=$((failed + 1)); echo "FAILED  $*"; }
finish() {
  echo "swift: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

# ---- the checker's Python environment: tree-sitter + the Swift grammar (prebuilt wheels) ----
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import tree_sitter, tree_sitter_swift" 2>/dev/null; then
  echo "==> installing tree-sitter 0.26.1 + tree-sitter-swift 0.7.4 into $VENV"
  mkdir -p "$TOOLS"
  if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q tree-sitter==0.26.1 tree-sitter-swift==0.7.4; }; then
    fail "could not install the Swift checker's Python packages"
    finish
  fi
fi
PY=$VENV/bin/python
CHECK=$ROOT/scripts/swift_check.py

for f in "$GENERATED" "$HEADER" "$MODULEMAP" "$LIB"; do
  if [ ! -f "$f" ]; then
    fail "missing $f (run cargo build -p opencharge-wallet and scripts/bindings.sh first)"
    finish
  fi
done

# ---- 1. generated + hand-written Swift ------------------------------------------------------
mapfile -t HAND < <(find ios -name '*.swift' -not -path '*/Generated/*' -not -path '*/.build/*' | sort)
if [ "${#HAND[@]}" -eq 0 ]; then
  fail "no hand-written Swift found under ios/"
fi
CATALOG=ios/Sources/OpenchargeWallet/Resources/Localizable.xcstrings
out=$("$PY" "$CHECK" "$GENERATED" "${HAND[@]}" --header "$HEADER" --lib "$LIB" \
      --modulemap "$MODULEMAP" --api "$GENERATED" --strings "$CATALOG" 2>&1)
echo "$out"
line=$(printf '%s\n' "$out" | tail -n 1)
if [[ $line =~ ^swift-check:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  passed=$((passed + BASH_REMATCH[1]))
  failed=$((failed + BASH_REMATCH[2]))
else
  fail "swift_check.py did not finish: $line"
fi

# ---- 2. the C header Swift imports, through a C compiler ------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include "OpenchargeWalletFFI.h"\n' > "$tmp/header.c"
if gcc -fsyntax-only -Wall -Wextra -Werror -D_Nullable= -D_Nonnull= -I"$SWIFT_DIR" "$tmp/header.c"; then
  pass "gcc -fsyntax-only $HEADER"
else
  fail "gcc rejects $HEADER"
fi

# ---- 3. ios/ package layout: the symlink SwiftPM compiles is the generated file -------------
link=ios/Sources/OpenchargeWallet/Generated/OpenchargeWallet.swift
if [ -L "$link" ] && [ "$(realpath -m "$link")" = "$(realpath -m bindings/swift/OpenchargeWallet.swift)" ]; then
  pass "$link -> bindings/swift/OpenchargeWallet.swift"
else
  fail "$link is not a symlink to bindings/swift/OpenchargeWallet.swift"
fi
layout_ok=1
for path in $(sed -nE 's/.*path: "([^"]+)".*/\1/p' ios/Package.swift); do
  case $path in
    *.xcframework) ;;  # built by scripts/build-xcframework, not committed
    *) [ -d "ios/$path" ] || { echo "ios/Package.swift names ios/$path, which does not exist"; layout_ok=0; } ;;
  esac
done
for res in $(sed -nE 's/.*\.process\("([^"]+)"\).*/\1/p' ios/Package.swift); do
  [ -e "ios/Sources/OpenchargeWallet/$res" ] || { echo "ios/Package.swift names the resource $res, which does not exist"; layout_ok=0; }
done
if [ "$layout_ok" -eq 1 ]; then pass "paths named in ios/Package.swift exist"; else fail "ios/Package.swift paths"; fi

# ---- 4. self-test: each broken fixture is rejected, for the reason it names -----------------
shopt -s nullglob
fixtures=(tests/swift-broken/*.swift)
if [ "${#fixtures[@]}" -eq 0 ]; then
  fail "no fixtures in tests/swift-broken/"
fi
for fixture in "${fixtures[@]}"; do
  expect=$(sed -nE 's|^// swift-check-expect: (.*)$|\1|p' "$fixture" | head -n 1)
  if [ -z "$expect" ]; then
    fail "$fixture has no '// swift-check-expect:' line"
    continue
  fi
  # A fixture may ask for more checks: `// swift-check-args: --strings FILE`.
  read -r -a extra <<<"$(sed -nE 's|^// swift-check-args: (.*)$|\1|p' "$fixture" | head -n 1)"
  fout=$("$PY" "$CHECK" "$fixture" --header "$HEADER" --lib "$LIB" --api "$GENERATED" "${extra[@]}" 2>&1)
  rc=$?
  if [ "$rc" -eq 1 ] && grep -Eq -- "$expect" <<<"$fout"; then
    pass "checker rejects $fixture ($expect)"
  else
    printf '%s\n' "$fout"
    fail "checker did not reject $fixture with /$expect/ (exit $rc)"
  fi
done

finish
