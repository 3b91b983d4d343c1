#!/usr/bin/env bash
# Measures two builds side by side (issue 17's targets) and prints one table with a column per
# build and the 1-minute load average of every run. Takes about 9 minutes per round (PAIRS=2:
# about 18 minutes) on the project's 2-core machine, plus one to five minutes for `npm install`
# of the Express peer unless EXPRESS_PEER_DIR names an installed copy; never part of CI (too
# long, and its figures are meaningful only on a quiet machine).
#
# usage: scripts/perf-side-by-side.sh BEFORE_DIR AFTER_DIR [PAIRS=2]
#
# BEFORE_DIR and AFTER_DIR each hold the `opencharge` and `opencharge-bench` binaries of one
# build, e.g. `cargo build --profile bench -p opencharge-cli -p opencharge-bench --locked` and a
# copy of target/release/{opencharge,opencharge-bench}. Giving the same directory twice measures
# the noise. For each of PAIRS rounds, interleaved (before, after, before, after), each run on a
# fresh server and database on disk:
#   1. the Express peer's `ours/pair.sh` with one pair: the peer (seed code, better-sqlite3, WAL)
#      then this build's `opencharge gateway`, the same pre-signed orders replayed by `load.js`
#      on 64 keep-alive connections to POST /orders/create/{sessionId}: orders/s, p50/p99;
#   2. whole payments, closed loop: `opencharge-bench --gateway-bin` with 20 wallets and 4
#      merchants, 2,000 payments: payments/s and the gateway process's CPU per payment;
#   3. open loop: 1,000 wallets with open event streams, payments started at 300/s, 6,000
#      payments: POST->prompt p50/p99, the rate reached, the gateway's CPU per payment.
# The table shows the median of the rounds (and every round's value).
#
# Environment:
#   EXPRESS_PEER_DIR  a writable copy of the Express peer folder with `npm install` done; default:
#                     a temporary copy of ../shared/peers/express-gateway (beside the repository),
#                     installed here.
#   PERF_WORK_DIR     where the databases go (must be on disk, not tmpfs); default: target/ of this
#                     repository. A temporary directory is made inside it and removed at the end.
#   PERF_KEEP_RAW     a directory to copy every run's raw output (JSON, logs) into.
#   PAIR_LOAD_ARGS    load.js arguments of each pair.sh run; default "--count 10000 --duration 10"
#                     (our gateway's session setup slows as one account's open sessions grow, so
#                     pair.sh's own 30,000 take minutes).
set -euo pipefail

usage() { sed -n '8p' "$0" >&2; exit 2; }
[ $# -ge 2 ] && [ $# -le 3 ] || usage
repo=$(cd "$(dirname "$0")/.." && pwd)
PAIRS=${3:-2}
[[ "$PAIRS" =~ ^[1-9][0-9]*$ ]] || { echo "error: PAIRS must be a positive whole number, not '$PAIRS'" >&2; exit 2; }

declare -A DIR
DIR[before]=$(realpath "$1")
DIR[after]=$(realpath "$2")
for build in before after; do
  for bin in opencharge opencharge-bench; do
    if [ ! -x "${DIR[$build]}/$bin" ]; then
      echo "error: ${DIR[$build]}/$bin is missing or not executable: give a directory holding the" \
        "opencharge and opencharge-bench binaries of the $build build" \
        "(cargo build --profile bench -p opencharge-cli -p opencharge-bench --locked puts them in target/release)" >&2
      exit 2
    fi
  done
done
for tool in node npm jq curl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed (the Express peer and its driver use it)" >&2; exit 2; }
done

work_parent=${PERF_WORK_DIR:-$repo/target}
mkdir -p "$work_parent"
if [ "$(stat -f -c %T "$work_parent")" = tmpfs ]; then
  echo "error: $work_parent is on tmpfs: the figures must include fsync; set PERF_WORK_DIR to a directory on disk" >&2
  exit 2
fi
work=$(mktemp -d -p "$work_parent" perf-side-by-side.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The peer runs from a copy made here (EXPRESS_PEER_DIR is never changed), with its mkconf.js
# wrapped so the gateway config it writes lets load.js's one account and one device create every
# session it prepares: by default the gateway allows 20 open sessions per account ([limits]
# max_open_sessions_per_account) and 100 requests/s per device ([rate_limits]), and load.js opens
# thousands of sessions before timing. Both are checked when a session is created, outside the
# timed phase. The config also turns the metrics listener off (its fixed default port may be taken).
peer="$work/express-gateway"
if [ -n "${EXPRESS_PEER_DIR:-}" ]; then
  [ -f "$EXPRESS_PEER_DIR/ours/pair.sh" ] && [ -d "$EXPRESS_PEER_DIR/node_modules" ] ||
    { echo "error: EXPRESS_PEER_DIR=$EXPRESS_PEER_DIR is not an installed Express peer (ours/pair.sh and node_modules/ expected; run npm install in it)" >&2; exit 2; }
  cp -r "$EXPRESS_PEER_DIR" "$peer"
else
  src="$repo/../shared/peers/express-gateway"
  [ -f "$src/ours/pair.sh" ] || { echo "error: no Express peer at $src: set EXPRESS_PEER_DIR to an installed copy of it" >&2; exit 2; }
  cp -r "$src" "$peer"
  echo "installing the Express peer's packages (npm install, one to five minutes)..." >&2
  (cd "$peer" && npm install --no-audit --no-fund >"$work/npm-install.log" 2>&1) ||
    { echo "error: npm install failed in the peer copy; its log:" >&2; tail -n 20 "$work/npm-install.log" >&2; exit 1; }
fi
# A copy made from a folder this script already wrapped keeps its mkconf-peer.js.
[ -f "$peer/ours/mkconf-peer.js" ] || mv "$peer/ours/mkconf.js" "$peer/ours/mkconf-peer.js"
cat >"$peer/ours/mkconf.js" <<'JS'
// Written by perf-side-by-side.sh: the peer's mkconf.js (now mkconf-peer.js), its output with the
// metrics listener off and [limits] and [rate_limits] tables added (see the script).
'use strict';
const { execFileSync } = require('child_process');
const path = require('path');
if (process.env.PERF_MKCONF_WRAPPED) {
  console.error('ours/mkconf-peer.js is this wrapper itself: copy the peer\'s ours/mkconf.js over it');
  process.exit(1);
}
const base = execFileSync(process.execPath, [path.join(__dirname, 'mkconf-peer.js'), ...process.argv.slice(2)],
  { encoding: 'utf8', env: { ...process.env, PERF_MKCONF_WRAPPED: '1' } });
// No metrics listener (its fixed default port may be taken), and budgets that let one account
// and one device create every session load.js prepares (outside the timed phase).
const top = /^metrics_listen/m.test(base) ? '' : 'metrics_listen = "off"\n';
const limits = /^\[limits\]/m.test(base) ? '' : '\n[limits]\nmax_open_sessions_per_account = 1000000\n';
const rates = /^\[rate_limits\]/m.test(base) ? ''
  : '\n[rate_limits]\ndevice_per_second = 1000000\ndevice_burst = 1000000\n';
process.stdout.write(top + base.trimEnd() + '\n' + limits + rates);
JS

PAIR_LOAD_ARGS=${PAIR_LOAD_ARGS:---count 10000 --duration 10}
load() { cut -d' ' -f1 /proc/loadavg; }
# Results: one line per measurement, "BUILD METRIC ROUND VALUE LOAD".
results="$work/results.txt"
: >"$results"
record() { echo "$1 $2 $3 $4 $5" >>"$results"; }
keep() { [ -n "${PERF_KEEP_RAW:-}" ] && mkdir -p "$PERF_KEEP_RAW" && cp "$1" "$PERF_KEEP_RAW/$2"; return 0; }

pair() { # pair BUILD ROUND
  local build=$1 round=$2 out="$work/pair-$1-$2.txt" l
  l=$(load)
  echo "[$(date -u +%H:%M:%S)] round $round, $build: Express peer vs opencharge gateway (pair.sh, load $l)" >&2
  # shellcheck disable=SC2086 # PAIR_LOAD_ARGS is a list of load.js arguments
  TMPDIR="$work" bash "$peer/ours/pair.sh" "${DIR[$build]}/opencharge" 1 $PAIR_LOAD_ARGS >"$out" 2>&1 || true
  keep "$out" "pair-$build-$round.txt"
  # "peer  run 1: orders/s p50 p99 = 2281.3 27.3 54.4  load 1.2"
  local peer_ops='' peer_p50='' peer_p99='' peer_load='' ours_ops='' ours_p50='' ours_p99='' ours_load=''
  read -r peer_ops peer_p50 peer_p99 peer_load < <(awk '/^peer  run/ {print $8, $9, $10, $12}' "$out") || true
  read -r ours_ops ours_p50 ours_p99 ours_load < <(awk '/^ours  run/ {print $8, $9, $10, $12}' "$out") || true
  if [ -z "$ours_ops" ] || [ -z "$peer_ops" ] || [ "$ours_ops" = 0 ] || [ "$peer_ops" = 0 ]; then
    echo "  pair.sh failed; its output:" >&2; sed 's/^/    /' "$out" >&2
    return
  fi
  record "$build" peer_orders "$round" "$peer_ops" "$peer_load"
  record "$build" peer_p50 "$round" "$peer_p50" "$peer_load"
  record "$build" peer_p99 "$round" "$peer_p99" "$peer_load"
  record "$build" ours_orders "$round" "$ours_ops" "$ours_load"
  record "$build" ours_p50 "$round" "$ours_p50" "$ours_load"
  record "$build" ours_p99 "$round" "$ours_p99" "$ours_load"
  record "$build" ratio "$round" "$(python3 -c "print(round($ours_ops / $peer_ops, 3))")" "$ours_load"
}

bench() { # bench BUILD ROUND NAME ARGS...
  local build=$1 round=$2 name=$3 out="$work/$3-$1-$2.json" l
  shift 3
  l=$(load)
  echo "[$(date -u +%H:%M:%S)] round $round, $build: opencharge-bench $name (load $l)" >&2
  sync; sleep 3
  if ! "${DIR[$build]}/opencharge-bench" --gateway-bin "${DIR[$build]}/opencharge" --json \
    --data-dir "$work/data" "$@" >"$out" 2>"$work/$name-$build-$round.err"; then
    echo "  opencharge-bench reported failed payments or an error:" >&2
    tail -n 5 "$work/$name-$build-$round.err" | sed 's/^/    /' >&2
  fi
  rm -rf "$work/data"
  keep "$out" "$name-$build-$round.json"
  [ -s "$out" ] || return 0
  if python3 - "$out" "$build" "$round" "$name" >>"$results" <<'PY'
import json, sys
path, build, round_, name = sys.argv[1:]
report = json.load(open(path))
legs = {leg["leg"]: leg for leg in report["legs"]}
load = (report.get("cpu") or {}).get("loadBefore")
load = "?" if load is None else f"{load:.2f}"
gateway = report.get("gatewayCpu") or {}
rows = [
    ("payments_per_sec", report["paymentsPerSec"]),
    ("failed", report["failed"]),
    ("post_to_prompt_p50", legs["post_to_prompt"]["p50Ms"]),
    ("post_to_prompt_p99", legs["post_to_prompt"]["p99Ms"]),
    ("total_p99", legs["total"]["p99Ms"]),
    ("gateway_cpu_ms", gateway.get("msPerPayment")),
    ("gateway_cores", gateway.get("coresUsed")),
]
for metric, value in rows:
    if value is not None:
        print(f"{build} {name}_{metric} {round_} {value} {load}")
PY
  then :; else echo "  cannot read the report $out" >&2; fi
}

for round in $(seq "$PAIRS"); do
  for build in before after; do pair "$build" "$round"; done
  for build in before after; do
    bench "$build" "$round" closed --wallets 20 --merchants 4 --payments 2000 --duration 30
  done
  for build in before after; do
    bench "$build" "$round" open --wallets 1000 --merchants 20 --rate 300 --payments 6000 \
      --duration 20 --warmup 1000
  done
done

python3 - "$results" "${DIR[before]}" "${DIR[after]}" <<'PY'
import collections, statistics, sys
path, before_dir, after_dir = sys.argv[1:]
values = collections.defaultdict(list)
for line in open(path):
    build, metric, round_, value, load = line.split()
    values[(build, metric)].append((float(value), load))

ROWS = [
    ("ratio", "/orders/create: ours / Express peer (target >= 2.5)"),
    ("ours_orders", "/orders/create: ours, orders/s"),
    ("peer_orders", "/orders/create: Express peer, orders/s"),
    ("ours_p50", "/orders/create: ours p50 ms"),
    ("ours_p99", "/orders/create: ours p99 ms"),
    ("closed_payments_per_sec", "whole payments/s, 20 wallets, closed (target >= 600)"),
    ("closed_gateway_cpu_ms", "gateway CPU ms per payment, closed (target <= 1)"),
    ("closed_gateway_cores", "gateway cores busy, closed"),
    ("closed_post_to_prompt_p99", "POST->prompt p99 ms, closed"),
    ("open_payments_per_sec", "open loop 300/s, 1,000 wallets: payments/s reached"),
    ("open_post_to_prompt_p50", "open loop: POST->prompt p50 ms"),
    ("open_post_to_prompt_p99", "open loop: POST->prompt p99 ms (target <= 10)"),
    ("open_gateway_cpu_ms", "open loop: gateway CPU ms per payment"),
    ("open_failed", "open loop: failed payments"),
]

def cell(build, metric):
    runs = values.get((build, metric))
    if not runs:
        return "-"
    median = statistics.median(v for v, _ in runs)
    each = ", ".join(f"{v:g} @{load}" for v, load in runs)
    return f"{median:g} ({each})"

print(f"\nbefore: {before_dir}\nafter:  {after_dir}")
print("median of the rounds; in brackets each round's value @ the 1-minute load average at its start\n")
print("| measure | before | after |")
print("|---|---|---|")
for metric, label in ROWS:
    print(f"| {label} | {cell('before', metric)} | {cell('after', metric)} |")
PY
