#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium and its WebDriver (`chromium`, `chromium-driver`)
# when /usr/bin/chromium or /usr/bin/chromedriver is missing. The checkout-page browser test
# (tests/checkout_page.rs) needs both; scripts/test.sh calls this before `cargo test`.
# Idempotent: does nothing when both are already installed.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "ensure-chromium: not root and no sudo; install the Debian packages chromium and chromium-driver" >&2
  exit 1
fi

echo "ensure-chromium: installing chromium and chromium-driver with apt-get"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null

for bin in /usr/bin/chromium /usr/bin/chromedriver; do
  if [ ! -x "$bin" ]; then
    echo "ensure-chromium: $bin is still missing after apt-get install" >&2
    exit 1
  fi
done
echo "ensure-chromium: $(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)"
