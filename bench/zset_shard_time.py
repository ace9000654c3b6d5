"""Shard time of ZRANK and ZRANGEBYSCORE ... LIMIT 0 10 on a 1 000 000-member sorted set.

Runs the handlers in-process on a shard executor (no sockets), so the numbers are the time a
shard spends, not network round trips.

    python bench/zset_shard_time.py [--members 1000000]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from shard import wire  # noqa: E402
from shard.actor import ShardExecutor  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    args = parser.parse_args()
    ex = ShardExecutor(0, {"databases": 16})
    meta = wire.meta(0, False)
    n = args.members
    for start in range(0, n, 10_000):
        argv = [b"zadd", b"z"]
        for i in range(start, min(start + 10_000, n)):
            argv += [b"%d" % random.randrange(10**9), b"member:%d" % i]
        ex.execute_batch([[meta, argv]])
    queries = {
        "ZRANK": lambda: [b"zrank", b"z", b"member:%d" % random.randrange(n)],
        "ZRANGEBYSCORE LIMIT 0 10": lambda: [b"zrangebyscore", b"z", b"%d" % random.randrange(10**9),
                                             b"+inf", b"LIMIT", b"0", b"10"],
    }
    for name, make in queries.items():
        commands = [make() for _ in range(20_000)]
        started = time.perf_counter()
        for argv in commands:
            ex.execute(meta, argv)
        per = (time.perf_counter() - started) / len(commands)
        print(f"{name}: {per * 1e6:.1f} us per command on {n} members")
    return 0


if __name__ == "__main__":
    sys.exit(main())
