"""Memory for N small string keys (``key:%012d`` -> 10-byte values): Atoll against redis-server.

Loads the keys with pipelined MSET-free SETs (redis-benchmark's own format is not used so both
servers get exactly the same data), then prints Redis' ``used_memory`` delta and, for Atoll,
the RSS delta of every process of the server (supervisor, gateways, shards) and its INFO
``used_memory``.

    python bench/memory.py [--keys 1000000] [--shards 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import redis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.servers import free_port, wait_until  # noqa: E402


def rss_tree(pid: int) -> int:
    """RSS in bytes of a process and all its descendants."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            with open(f"/proc/{current}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            with open(f"/proc/{current}/task/{current}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            continue
    return total


def load(port: int, keys: int) -> None:
    client = redis.Redis(port=port, protocol=2)
    batch = 10000
    for start in range(0, keys, batch):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + batch, keys)):
            pipe.set(b"key:%012d" % i, b"v" * 10)
        pipe.execute()
    assert client.dbsize() == keys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="atoll-mem-")
    redis_port, atoll_port = free_port(), free_port()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    redis_proc = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "",
                                   "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL)
    atoll_proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "atoll-server"),
                                   os.path.join(root, "conf", "atoll.conf"), "--port", str(atoll_port),
                                   "--save", "", "--dir", workdir, "--shards", str(args.shards)],
                                  stdout=subprocess.DEVNULL)
    try:
        for port in (redis_port, atoll_port):
            wait_until(lambda p=port: redis.Redis(port=p).ping(), what="server")
        time.sleep(0.5)
        r_before = redis.Redis(port=redis_port).info("memory")["used_memory"]
        a_before = rss_tree(atoll_proc.pid)
        a_used_before = redis.Redis(port=atoll_port).info("memory")["used_memory"]
        load(redis_port, args.keys)
        load(atoll_port, args.keys)
        time.sleep(0.5)
        r_after = redis.Redis(port=redis_port).info("memory")
        a_after = rss_tree(atoll_proc.pid)
        a_info = redis.Redis(port=atoll_port).info("memory")
        redis_used = r_after["used_memory"] - r_before
        atoll_rss = a_after - a_before
        print(f"keys={args.keys} shards={args.shards}")
        print(f"redis used_memory delta: {redis_used / args.keys:7.1f} bytes/key "
              f"({redis_used / 2**20:.1f} MiB); redis RSS {r_after['used_memory_rss'] / 2**20:.1f} MiB")
        print(f"atoll RSS delta, all processes: {atoll_rss / args.keys:7.1f} bytes/key "
              f"({atoll_rss / 2**20:.1f} MiB); total RSS {a_after / 2**20:.1f} MiB; "
              f"INFO used_memory {a_info['used_memory'] / 2**20:.1f} MiB")
        print(f"ratio atoll/redis (RSS delta / used_memory delta): {atoll_rss / redis_used:.2f}")
        # How well the shards' own accounting (shard/eviction.py) follows the real growth;
        # the shards hold the data, so their RSS growth is the all-process growth.
        used_delta = a_info["used_memory"] - a_used_before
        print(f"atoll INFO used_memory delta {used_delta / 2**20:.1f} MiB vs RSS delta "
              f"{atoll_rss / 2**20:.1f} MiB: accounting error {100 * (used_delta / atoll_rss - 1):+.1f}%")
    finally:
        for proc in (redis_proc, atoll_proc):
            proc.terminate()
            proc.wait(20)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
