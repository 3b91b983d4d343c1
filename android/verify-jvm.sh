#!/usr/bin/env bash
# What of the Android module can be verified without an Android SDK/NDK/Gradle: the module's
# Kotlin files that use nothing from android.*/androidx.* (the Flow adapter, the sealed key
# store) are compiled with kotlinc together with the JVM variant of the generated bindings
# (bindings/kotlin), the module's unit tests (src/test) and the host-library tests
# (android/verify-jvm/), then the tests run with JUnit on the host JVM against
# target/debug/libopencharge_wallet.so through JNA and a real `opencharge sandbox`.
# The files that need Android classes, with bindings/android, are only type-checked against
# signature stubs of the few Android APIs they use (android/verify-jvm/android-stubs), and so is
# the sample app's push package (Firebase messaging service, notification buttons, the shared
# wallet), against the same stubs plus Firebase's; the rest of the sample (Compose) is not.
#
# Needs: java 17, npm (kotlinc 2.4.20 from the npm package kotlin-compiler, cached in .tools/),
# Debian's libjna-java and junit5 (installed with apt-get when missing), and the built
# target/debug/libopencharge_wallet.so and target/debug/opencharge.
# Overrides: TOOLS_DIR, KOTLIN_BINDINGS_DIR, ANDROID_BINDINGS_DIR, LIB, OPENCHARGE_BIN,
# CARGO_TARGET_DIR.
# Last line: "android-jvm: N passed, N failed"; exit status 1 when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=${TOOLS_DIR:-$ROOT/.tools}
KOTLIN_VERSION=2.4.20
KHOME=$TOOLS/kotlinc-$KOTLIN_VERSION
BINDINGS=${KOTLIN_BINDINGS_DIR:-$ROOT/bindings/kotlin}
ANDROID_BINDINGS=${ANDROID_BINDINGS_DIR:-$ROOT/bindings/android}
LIB=${LIB:-$ROOT/target/debug/libopencharge_wallet.so}
BIN=${OPENCHARGE_BIN:-$ROOT/target/debug/opencharge}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
OUT=$TARGET/android-jvm
MODULE=android/opencharge-wallet
J=/usr/share/java

passed=0
failed=0
finish() {
  echo "android-jvm: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}
broken() { failed=$((failed + 1)); echo "FAILED  $*"; finish; }

# ---- tools ------------------------------------------------------------------------------------
if [ ! -f "$J/jna.jar" ] || [ ! -f "$J/junit-platform-console-standalone.jar" ]; then
  echo "==> apt-get install libjna-java junit5"
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends libjna-java junit5 >/dev/null; } \
    || broken "could not install libjna-java and junit5"
fi
if [ ! -x "$KHOME/bin/kotlinc" ]; then
  echo "==> installing kotlinc $KOTLIN_VERSION into $KHOME"
  mkdir -p "$TOOLS"
  unpack=$(mktemp -d "$TOOLS/.kotlinc-install.XXXXXX")
  if ( cd "$unpack" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null \
       && tar xzf "kotlin-compiler-$KOTLIN_VERSION.tgz" ); then
    # Another script may have installed it meanwhile: keep whichever arrived first.
    [ -x "$KHOME/bin/kotlinc" ] || mv "$unpack/package" "$KHOME"
  fi
  rm -rf "$unpack"
  [ -x "$KHOME/bin/kotlinc" ] || broken "could not install kotlinc $KOTLIN_VERSION"
fi
for f in "$BINDINGS/network/opencharge/wallet/opencharge_wallet.kt" \
         "$ANDROID_BINDINGS/network/opencharge/wallet/opencharge_wallet.kt" "$LIB" "$BIN"; do
  [ -e "$f" ] || broken "missing $f (build the library and the cli, run scripts/bindings.sh)"
done

# ---- which module sources need no Android classes -------------------------------------------
free=()
android_only=()
while IFS= read -r f; do
  # Code lines (comments stripped) that name the android or androidx packages. Not a pipe into
  # `grep -q`: grep leaves at the first match, sed then dies of SIGPIPE on a file over one pipe
  # write (4 KB) and pipefail turned that into "no match" under load.
  code=$(sed -E 's#//.*$##; /^[[:space:]]*\*/d' "$f") || broken "could not read $f"
  if grep -Eq '(^|[^.[:alnum:]_])androidx?\.' <<<"$code"; then
    android_only+=("$f")
  else
    free+=("$f")
  fi
done < <(find "$MODULE/src/main/kotlin" -name '*.kt' | sort)
mapfile -t tests < <(find "$MODULE/src/test/kotlin" android/verify-jvm -name '*.kt' | sort)
# The sample's push wiring: no Compose, so it type-checks against the stubs with the module.
mapfile -t sample_push < <(find android/sample/src/main/kotlin -path '*/sample/push/*' -name '*.kt' | sort)
[ "${#sample_push[@]}" -gt 0 ] || broken "no sample push sources found"
echo "compiled on the JVM: ${free[*]}"
echo "needs Android classes (type-checked against stubs only): ${android_only[*]:-none}"
[ "${#free[@]}" -gt 0 ] || broken "no Android-free sources found in $MODULE"

# ---- compile everything in one kotlinc run (its JVM start-up is paid once) --------------------
rm -rf "$OUT"
mkdir -p "$OUT"
CP=$J/jna.jar:$KHOME/lib/kotlinx-coroutines-core-jvm.jar:$KHOME/lib/kotlin-test.jar:$KHOME/lib/kotlin-test-junit.jar:$J/junit-platform-console-standalone.jar
echo "==> kotlinc (bindings/kotlin + ${#free[@]} module sources + ${#tests[@]} test files)"
if "$KHOME/bin/kotlinc" -jvm-target 17 "$BINDINGS" "${free[@]}" "${tests[@]}" -cp "$CP" \
     -d "$OUT/android-jvm.jar" 2>&1 | tee "$OUT/kotlinc.txt"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
  passed=$((passed + 1))
  echo "ok  kotlinc: the Android-free module sources compile against the generated JVM bindings"
else
  broken "kotlinc rejected the sources (see above)"
fi

# ---- the Android-only sources and bindings/android, type-checked against API stubs ----------
# No android.jar can be installed here: android/verify-jvm/android-stubs declares the few Android
# members the code uses (documented signatures, bodies that throw). Weaker than android.jar (a
# wrong stub hides an error), never run, never packaged.
STUBS=android/verify-jvm/android-stubs
mkdir -p "$OUT/stubs"
echo "==> kotlinc (bindings/android + all ${#free[@]}+${#android_only[@]} module sources + ${#sample_push[@]} sample push sources, Android and Firebase API stubs)"
# The module's R class, generated from its string resources as the Android build would: a code
# reference to a string strings.xml lacks fails here.
android/verify-jvm/generate-r.sh "$OUT/generated" || broken "could not generate the R class"
if javac -d "$OUT/stubs" $(find "$STUBS" "$OUT/generated" -name '*.java') \
   && "$KHOME/bin/kotlinc" -jvm-target 17 "$ANDROID_BINDINGS" "${free[@]}" "${android_only[@]}" "${sample_push[@]}" \
        -cp "$OUT/stubs:$J/jna.jar:$KHOME/lib/kotlinx-coroutines-core-jvm.jar" -d "$OUT/android-stubbed.jar"; then
  passed=$((passed + 1))
  echo "ok  kotlinc: every module source, the sample's push package and bindings/android type-check against the Android and Firebase API stubs"
else
  failed=$((failed + 1))
  echo "FAILED  the module sources, the sample's push package or bindings/android do not type-check against the API stubs"
fi

# ---- run the tests on the host JVM -----------------------------------------------------------
java -Djna.library.path="$(dirname "$LIB")" -Dopencharge.bin="$BIN" \
     -jar "$J/junit-platform-console-standalone.jar" \
     --class-path "$OUT/android-jvm.jar:$CP:$KHOME/lib/kotlin-stdlib.jar" \
     --scan-class-path --include-classname '.*Test$' --fail-if-no-tests \
     --disable-banner --disable-ansi-colors --details=tree \
     --reports-dir="$OUT/junit-reports" 2>&1 | tee "$OUT/junit.txt"
junit_rc=${PIPESTATUS[0]}
ok=$(sed -nE 's/^\[ *([0-9]+) tests successful.*/\1/p' "$OUT/junit.txt")
bad=$(sed -nE 's/^\[ *([0-9]+) tests failed.*/\1/p' "$OUT/junit.txt")
passed=$((passed + ${ok:-0}))
failed=$((failed + ${bad:-0}))
if [ "$junit_rc" -ne 0 ] && [ "${bad:-0}" -eq 0 ]; then
  failed=$((failed + 1))
  echo "FAILED  JUnit exited with $junit_rc"
fi
finish
