#!/usr/bin/env bash
# Measures the gateway on SQLite (one instance) against PostgreSQL with 1, 2 and 3 instances on
# one database, interleaved round by round so a noisy machine shifts every column alike, and
# prints one table: payments/s, POST->prompt p50/p99, and per payment on PostgreSQL the
# transactions committed, the WAL written (pg_stat_database, pg_current_wal_lsn) and the
# server's CPU time (/proc), and the bench process's own CPU per payment (gateways, wallets,
# merchants and the round-robin front all run in it). The
# PostgreSQL cluster is a throwaway one with the server's durable defaults (fsync on,
# synchronous_commit on: scripts/pg-cluster.sh --durable), as SQLite runs with synchronous=FULL.
#
#   scripts/perf-postgres.sh BENCH_BIN [ROUNDS] [-- BENCH_ARGS...]
#
# BENCH_BIN is an `opencharge-bench` built with `cargo build --profile bench -p opencharge-bench`
# (target/release/opencharge-bench). Default bench arguments: 20 wallets, 4 merchants, 1,500
# payments (closed loop). Needs python3 and psql.
set -euo pipefail
cd "$(dirname "$0")/.."

bench=${1:?usage: $0 BENCH_BIN [ROUNDS] [-- BENCH_ARGS...]}
shift
rounds=2
if [ $# -gt 0 ] && [ "$1" != "--" ]; then rounds=$1; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi
bench_args=("$@")
if [ ${#bench_args[@]} -eq 0 ]; then bench_args=(--wallets 20 --merchants 4 --payments 1500); fi

work=$(mktemp -d)
# Its own directory: the cluster runs as the postgres user, who cannot enter $work.
pgdir=$(mktemp -d)
trap 'scripts/pg-cluster.sh stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 30000))
admin=$(scripts/pg-cluster.sh start "$pgdir" "$port" --durable)
base=${admin%/postgres}
echo "cluster: PostgreSQL $(psql -XAtq "$admin" -c 'SHOW server_version'), fsync $(psql -XAtq "$admin" -c 'SHOW fsync'), synchronous_commit $(psql -XAtq "$admin" -c 'SHOW synchronous_commit')"

# The server's CPU seconds so far: the postmaster's own and its reaped children's (backends of
# closed connections) plus its live children's.
server_cpu() {
  python3 - "$(head -1 "$pgdir/data/postmaster.pid")" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
main = sys.argv[1]
def fields(pid):
    text = open(f"/proc/{pid}/stat").read()
    return text[text.rindex(")") + 2:].split()
total = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        f = fields(pid)
    except OSError:
        continue
    if pid == main:
        total += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    elif f[1] == main:
        total += int(f[11]) + int(f[12])
print(total / tick)
PY
}

# stats DB: "xact_commit wal_lsn_bytes server_cpu_seconds"
stats() {
  echo "$(psql -XAtq "$base/$1" -F ' ' -c \
    "SELECT xact_commit, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint FROM pg_stat_database WHERE datname = '$1'") $(server_cpu)"
}

results="$work/results.jsonl"
for round in $(seq 1 "$rounds"); do
  for config in sqlite pg1 pg2 pg3; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    extra=()
    db=""
    if [ "$config" != sqlite ]; then
      db="bench_${round}_${config}"
      psql -XAtq "$admin" -c "CREATE DATABASE $db" >/dev/null
      extra=(--database "$base/$db" --instances "${config#pg}")
      # pg_stat_database counts from the first connection: take the baseline after one.
      sleep 0.5
    fi
    echo "round $round: $config (load average $load)" >&2
    before=""
    if [ -n "$db" ]; then before=$(stats "$db"); fi
    "$bench" --json "${bench_args[@]}" "${extra[@]}" >"$work/out.json"
    after=""
    if [ -n "$db" ]; then
      sleep 0.6 # pg_stat_database is updated at most every 500 ms
      after=$(stats "$db")
      psql -XAtq "$admin" -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
    fi
    python3 - "$work/out.json" "$config" "$round" "$load" "$before" "$after" >>"$results" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
config, rnd, load, before, after = sys.argv[2:7]
legs = {l["leg"]: l for l in report["legs"]}
row = {"config": config, "round": int(rnd), "load": float(load),
       "completed": report["completed"], "failed": report["failed"],
       "pps": report["paymentsPerSec"],
       "p50": legs["post_to_prompt"]["p50Ms"], "p99": legs["post_to_prompt"]["p99Ms"]}
if before and after:
    b, a = [list(map(float, s.split())) for s in (before, after)]
    # The database's counters span the whole run (setup and warm-up included): per payment of it.
    total = report["completed"] + report["failed"] + report["warmupCompleted"] + report["warmupFailed"]
    row["xact_per_payment"] = (a[0] - b[0]) / max(total, 1)
    row["wal_per_payment"] = (a[1] - b[1]) / max(total, 1)
    row["server_ms"] = (a[2] - b[2]) * 1000 / max(total, 1)
cpu = report.get("cpu") or {}
if cpu.get("processSecs"):
    # The process's CPU is read around the measured phase only.
    row["bench_ms"] = cpu["processSecs"] * 1000 / max(report["completed"] + report["failed"], 1)
print(json.dumps(row))
PY
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
names = {"sqlite": "SQLite, 1 instance", "pg1": "PostgreSQL, 1 instance",
         "pg2": "PostgreSQL, 2 instances", "pg3": "PostgreSQL, 3 instances"}
print("| database | payments/s | POST->prompt p50 ms | p99 ms | transactions / payment (reads included) | WAL bytes / payment | PostgreSQL CPU ms / payment | bench process CPU ms / payment | failed | load avg at start |")
print("|---|---|---|---|---|---|---|---|---|---|")
for key, name in names.items():
    mine = [r for r in rows if r["config"] == key]
    if not mine:
        continue
    med = lambda k: statistics.median(r[k] for r in mine)
    per = lambda k: f"{med(k):.1f}" if k in mine[0] else "-"
    wal = f"{med('wal_per_payment'):,.0f}" if "wal_per_payment" in mine[0] else "-"
    loads = "/".join(f"{r['load']:.1f}" for r in mine)
    print(f"| {name} | {med('pps'):.0f} | {med('p50'):.1f} | {med('p99'):.1f} | {per('xact_per_payment')} | {wal} | {per('server_ms')} | {per('bench_ms')} | {sum(r['failed'] for r in mine)} | {loads} |")
print(f"(medians of {len(rows) // len(names)} interleaved rounds)")
PY
