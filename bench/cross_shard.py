"""What cross-shard atomicity costs, measured with redis-benchmark.

1. MSET of 10 keys: every key hash-tagged into one slot (one shard, no intents) against 10
   untagged random keys (spread over the shards: intents on every shard involved), on Atoll
   and on a real redis-server in the same run.  Throughput and latency percentiles.
2. Single-key throughput (SET and GET at -P 1 and -P 16) alone, then while other clients
   run cross-shard MSETs of 10 keys and cross-shard MULTI/EXEC transfers the whole time.

    python bench/cross_shard.py [--shards 2] [--requests 50000]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vs_redis import benchmark, both_servers  # noqa: E402


def mset_args(tagged: bool) -> list[str]:
    keys = [f"{{t}}k{i}:__rand_int__" if tagged else f"k{i}:__rand_int__" for i in range(10)]
    return ["MSET", *[part for key in keys for part in (key, "v")]]


def custom(port: int, argv: list[str], requests: int, clients: int) -> dict[str, float]:
    """One redis-benchmark run of a custom command: rps and latency percentiles (ms)."""
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(requests),
         "-r", "100000", "--csv", *argv],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = list(csv.reader(io.StringIO(out)))
    header, values = rows[0], rows[-1]
    return {name: float(value) for name, value in zip(header[1:], values[1:], strict=True)}


class Background:
    """Cross-shard load (MSET of 10 keys and MULTI/EXEC transfers) until stopped."""

    def __init__(self, port: int, clients: int) -> None:
        import redis

        self.stop = threading.Event()
        self.done = 0
        self.threads = []
        for i in range(clients):
            client = redis.Redis(port=port)
            self.threads.append(threading.Thread(target=self._run, args=(client, i), daemon=True))

    def _run(self, client, i: int) -> None:  # noqa: ANN001
        n = 0
        while not self.stop.is_set():
            if i % 2:
                client.mset({f"bg{i}:{j}:{n % 1000}": n for j in range(10)})
            else:
                pipe = client.pipeline(transaction=True)
                pipe.decrby(f"acct:{n % 8}", 1)
                pipe.incrby(f"acct:{(n + 3) % 8}", 1)
                pipe.execute()
            n += 1
            self.done += 1

    def __enter__(self) -> Background:
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)
        self.rate = self.done / (time.monotonic() - self.started)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--requests", type=int, default=50000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    with both_servers(args.shards) as (redis_port, atoll_port):
        print(f"shards={args.shards} clients={args.clients} requests={args.requests} "
              f"cores={os.cpu_count()}")
        print("1. MSET of 10 keys (-P 1)")
        print(f"{'':28}{'rps':>10}{'avg ms':>9}{'p50 ms':>9}{'p99 ms':>9}")
        for label, port, tagged in (("redis, any keys", redis_port, False),
                                    ("atoll, one shard ({tag})", atoll_port, True),
                                    ("atoll, across shards", atoll_port, False)):
            row = custom(port, mset_args(tagged), args.requests, args.clients)
            print(f"{label:28}{row['rps']:10.0f}{row['avg_latency_ms']:9.3f}"
                  f"{row['p50_latency_ms']:9.3f}{row['p99_latency_ms']:9.3f}")
        print("2. single-key throughput alone and under cross-shard load (8 clients)")
        print(f"{'':12}{'alone':>10}{'loaded':>10}{'ratio':>8}{'bg tx/s':>9}")
        for test, pipeline in (("set", 1), ("get", 1), ("set", 16), ("get", 16)):
            count = args.requests * (4 if pipeline > 1 else 1)
            alone = benchmark(atoll_port, test, pipeline, count, args.clients)
            with Background(atoll_port, 8) as background:
                loaded = benchmark(atoll_port, test, pipeline, count, args.clients)
            print(f"{test} -P {pipeline:<5}{alone:10.0f}{loaded:10.0f}{loaded / alone:8.2f}"
                  f"{background.rate:9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
