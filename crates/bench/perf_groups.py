#!/usr/bin/env python3
"""Splits the samples of a `perf record -g -p GATEWAY_PID` profile of the gateway process into the
groups of issue 17's table (fsync, SQLite and WAL, ECDSA, tokio hand-offs, HTTP, JSON, malloc), as
used in docs/performance.md ("Issue 17: before and after"). A sample whose stack passes through
fsync/fdatasync or the block layer counts as fsync; otherwise the innermost frame naming a group
decides.

Usage (only the timed phase: END is the last sample's time, START = END - timed seconds):
  perf script -i perf.data -F time | tail -1
  perf script -i perf.data --time START,END -F comm,tid,ip,sym > timed.txt
  python3 crates/bench/perf_groups.py timed.txt
"""

import collections
import sys

from perf_categories import samples

GROUPS = [
    ("fsync (kernel, under fsync/fdatasync)", ["fsync", "fdatasync", "jbd2", "blk_", "iowrite16", "virtblk", "ext4_sync"]),
    ("ECDSA (k256)", ["k256::", "ecdsa::", "elliptic_curve", "primeorder"]),
    ("SQLite and WAL", ["sqlite3", "rusqlite", "pager", "wal", "btree", "pcache", "yy_reduce", "minmaxStep", "getCellInfo"]),
    ("JSON (serde_json, canonical)", ["serde_json", "canonical"]),
    ("SHA-256", ["sha2::"]),
    ("HTTP (hyper, axum, tower, sockets)", ["hyper", "axum", "tower", "h2::", "httparse", "tcp_", "inet_", "sock_", "__sys_sendto", "recvfrom", "epoll"]),
    ("tokio hand-offs, wake-ups, mutex", ["tokio::", "futex", "try_to_wake_up", "finish_task_switch", "parking_lot", "std::sync", "schedule", "_raw_spin_unlock"]),
    ("malloc/free", ["malloc", "free", "unlink_chunk", "_int_", "cfree"]),
]


def group(stack):
    fsync_name, fsync_keys = GROUPS[0]
    if any(any(key in frame for key in fsync_keys) for frame in stack):
        return fsync_name
    for frame in stack:
        for name, keys in GROUPS[1:]:
            if any(key in frame for key in keys):
                return name
    return "other"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    all_samples = [stack for _, stack in samples(sys.argv[1])]
    total = len(all_samples) or 1
    print("%d samples" % len(all_samples))
    for name, count in collections.Counter(group(s) for s in all_samples).most_common():
        print("%5.1f%%  %s" % (100.0 * count / total, name))


if __name__ == "__main__":
    main()
