#!/usr/bin/env python3
"""Splits a `perf script -F comm,tid,ip,sym` dump of an opencharge-bench run into what the CPU
did (SQLite, ECDSA, HTTP, JSON, ...) and for whom (gateway, wallet core, merchants), as used in
docs/performance.md. Each sample goes to the category of the innermost frame that names one.

Usage:
  perf record -F 199 --call-graph dwarf,16384 -o perf.data target/release/opencharge-bench ...
  perf script -i perf.data -F comm,tid,ip,sym > perf.txt
  python3 crates/bench/perf_categories.py perf.txt
"""

import collections
import sys

CATEGORIES = [
    ("ECDSA (k256)", ["k256::", "ecdsa::", "elliptic_curve", "primeorder"]),
    ("SHA-256", ["sha2::"]),
    ("SQLite (incl. its write/fsync syscalls)", ["sqlite3", "rusqlite", "pagerWal", "walChecksum", "pcache1"]),
    ("JSON (serde_json)", ["serde_json"]),
    ("canonical JSON", ["canonical"]),
    ("QR", ["qrcode"]),
    ("HTTP stack (hyper, reqwest, axum, rustls)", ["hyper", "reqwest", "axum", "rustls", "h2::", "tower"]),
    ("tokio scheduling and wake-ups", ["tokio::runtime"]),
]
OWNERS = ["opencharge_gateway", "opencharge_merchant", "opencharge_wallet", "opencharge_peer", "opencharge_bench"]


def samples(path):
    """Yields (thread name, [frames, innermost first]) per sample."""
    comm, stack = None, []
    with open(path, errors="replace") as lines:
        for line in lines:
            if not line.strip():
                if comm is not None:
                    yield comm, stack
                comm, stack = None, []
            elif not line[0].isspace():
                comm, stack = line.split()[0], []
                # Without a call graph the header line itself ends with the symbol.
                rest = line.split(None, 3)
                if len(rest) >= 4:
                    stack.append(rest[3].strip())
            else:
                parts = line.strip().split(None, 1)
                stack.append(parts[1] if len(parts) > 1 else parts[0])
    if comm is not None:
        yield comm, stack


def category(stack):
    for frame in stack:
        for name, keys in CATEGORIES:
            if any(key in frame for key in keys):
                return name
    return "other"


def owner(comm, stack):
    for frame in stack:
        for name in OWNERS:
            if name in frame:
                return name
    return "no crate frame (thread %s)" % comm[:9]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    all_samples = list(samples(sys.argv[1]))
    total = len(all_samples) or 1
    print("%d samples" % len(all_samples))
    for title, key in (("by category", lambda c, s: category(s)), ("by crate", owner)):
        print("\n" + title)
        counts = collections.Counter(key(c, s) for c, s in all_samples)
        for name, count in counts.most_common():
            print("%6.1f%%  %s" % (100.0 * count / total, name))
    print("\nby crate and category (top 15)")
    counts = collections.Counter((owner(c, s), category(s)) for c, s in all_samples)
    for (who, what), count in counts.most_common(15):
        print("%6.1f%%  %-22s %s" % (100.0 * count / total, who, what))


if __name__ == "__main__":
    main()
