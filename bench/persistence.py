"""Snapshot costs on N keys: SAVE time, start-up load time, and command latency (p50/p99 of
single GET/SET round trips from one client) before and during a BGSAVE.

    .venv/bin/python bench/persistence.py --keys 1000000 --shards 2
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import AtollServer  # noqa: E402


def fill(client, keys: int) -> None:
    for start in range(0, keys, 10_000):
        client.mset({b"key:%012d" % i: b"v%09d" % i for i in range(start, min(start + 10_000, keys))})


def latencies(client, seconds: float, stop=None) -> list[float]:
    out = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline and not (stop and stop()):
        t = time.perf_counter()
        if i % 2:
            client.get(b"key:%012d" % i)
        else:
            client.set(b"probe:%d" % (i % 1000), b"x")
        out.append((time.perf_counter() - t) * 1000)
        i += 1
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(int(len(values) * p), len(values) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="atoll-bench-"))
    server = AtollServer(tmp, shards=args.shards).start()
    try:
        client = server.client()
        fill(client, args.keys)
        base = latencies(client, 3)
        t = time.perf_counter()
        client.save()
        save_s = time.perf_counter() - t
        size = (tmp / "dump.rdb").stat().st_size
        t = time.perf_counter()
        client.bgsave()
        during = latencies(client, 120, stop=lambda: client.info("persistence")["rdb_bgsave_in_progress"] == 0)
        bgsave_s = time.perf_counter() - t
    finally:
        server.stop()
    t = time.perf_counter()
    server = AtollServer(tmp, shards=args.shards).start()
    client = server.client()
    while client.dbsize() < args.keys:
        time.sleep(0.05)
    start_s = time.perf_counter() - t
    server.stop()
    loads = re.findall(r"(\d+) keys, \d+ expired skipped, ([\d.]+) seconds", server.log.read_text())
    print(f"keys={args.keys} shards={args.shards} file={size / 1e6:.1f} MB")
    print(f"SAVE: {save_s:.2f} s   BGSAVE (while probing): {bgsave_s:.2f} s")
    print(f"load at start-up (per shard, from the log): {loads}; start until every key is there: {start_s:.2f} s")
    print(f"latency ms before BGSAVE: p50 {statistics.median(base):.3f} p99 {pct(base, 0.99):.3f} "
          f"max {max(base):.3f} (n={len(base)})")
    print(f"latency ms during BGSAVE: p50 {statistics.median(during):.3f} p99 {pct(during, 0.99):.3f} "
          f"max {max(during):.3f} (n={len(during)})")


if __name__ == "__main__":
    main()
