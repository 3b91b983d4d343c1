#!/usr/bin/env bash
# Measures the gateway on SQLite (one instance) against PostgreSQL with 1, 2 and 3 instances on
# one database, interleaved round by round so a noisy machine shifts every column alike, and
# prints one table: payments/s, POST->prompt p50/p99, and per payment on PostgreSQL the
# transactions committed and the WAL written (pg_stat_database, pg_current_wal_lsn). The
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
pgdir="$work/pg"
trap 'scripts/pg-cluster.sh stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 30000))
admin=$(scripts/pg-cluster.sh start "$pgdir" "$port" --durable)
base=${admin%/postgres}
echo "cluster: PostgreSQL $(psql -XAtq "$admin" -c 'SHOW server_version'), fsync $(psql -XAtq "$admin" -c 'SHOW fsync'), synchronous_commit $(psql -XAtq "$admin" -c 'SHOW synchronous_commit')"

# stats DB: "xact_commit wal_lsn_bytes"
stats() {
  psql -XAtq "$base/$1" -F ' ' -c \
    "SELECT xact_commit, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint FROM pg_stat_database WHERE datname = '$1'"
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
    b, a = [list(map(int, s.split())) for s in (before, after)]
    total = report["completed"] + report["failed"] + report["warmupCompleted"] + report["warmupFailed"]
    row["xact_per_payment"] = (a[0] - b[0]) / max(total, 1)
    row["wal_per_payment"] = (a[1] - b[1]) / max(total, 1)
print(json.dumps(row))
PY
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
names = {"sqlite": "SQLite, 1 instance", "pg1": "PostgreSQL, 1 instance",
         "pg2": "PostgreSQL, 2 instances", "pg3": "PostgreSQL, 3 instances"}
print("| database | payments/s | POST->prompt p50 ms | p99 ms | transactions / payment (reads included) | WAL bytes / payment | failed | load avg at start |")
print("|---|---|---|---|---|---|---|---|")
for key, name in names.items():
    mine = [r for r in rows if r["config"] == key]
    if not mine:
        continue
    med = lambda k: statistics.median(r[k] for r in mine)
    per = lambda k: f"{med(k):.1f}" if k in mine[0] else "-"
    wal = f"{med('wal_per_payment'):,.0f}" if "wal_per_payment" in mine[0] else "-"
    loads = "/".join(f"{r['load']:.1f}" for r in mine)
    print(f"| {name} | {med('pps'):.0f} | {med('p50'):.1f} | {med('p99'):.1f} | {per('xact_per_payment')} | {wal} | {sum(r['failed'] for r in mine)} | {loads} |")
print(f"(medians of {len(rows) // len(names)} interleaved rounds)")
PY
