"""Replication lag under load: an Atoll master (``--shards``) with one replica (Atoll, or a real
redis-server with ``--redis-replica``) while redis-benchmark writes to the master.

Samples both offsets every 50 ms (master_repl_offset on the master, slave_repl_offset on the
replica; the master's view lags by up to a second, the ACK period), prints
the bytes behind (median, p99, max), and after the load how long the replica took to
acknowledge the master's last offset.

    python bench/replication_lag.py [--shards 2] [--requests 200000] [--pipeline 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.servers import AtollServer, RedisServer, wait_until  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--requests", type=int, default=200000)
    parser.add_argument("--pipeline", type=int, default=16)
    parser.add_argument("--redis-replica", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "m").mkdir()
        (Path(tmp) / "r").mkdir()
        master = AtollServer(Path(tmp) / "m", shards=args.shards).start()
        replica: AtollServer | RedisServer = (RedisServer(Path(tmp) / "r") if args.redis_replica
                                              else AtollServer(Path(tmp) / "r", shards=args.shards))
        replica.start()
        try:
            run(master, replica, args)
        finally:
            replica.stop()
            master.stop()


def run(master: AtollServer, replica: AtollServer | RedisServer, args: argparse.Namespace) -> None:
    client = master.client()
    replica.client().replicaof("127.0.0.1", master.port)
    wait_until(lambda: client.info("replication").get("slave0", {}).get("state") == "online",
               what="replica online")
    rclient = replica.client()

    def applied() -> int:
        return int(rclient.info("replication")["slave_repl_offset"])

    behind: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            replica_offset = applied()  # first: the difference is an upper bound
            behind.append(client.info("replication")["master_repl_offset"] - replica_offset)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    subprocess.run(["redis-benchmark", "-p", str(master.port), "-t", "set,incr,lpush",
                    "-n", str(args.requests), "-c", "50", "-P", str(args.pipeline), "-r", "100000",
                    "-q"], check=True, capture_output=True)
    load_s = time.monotonic() - started
    end = client.info("replication")["master_repl_offset"]
    finished = time.monotonic()
    wait_until(lambda: applied() >= end, timeout=120,
               interval=0.005, what="replica caught up")
    catch_up = time.monotonic() - finished
    done.set()
    sampler.join()
    behind.sort()
    print(f"load: {load_s:.1f} s, stream {end / load_s / 1e6:.2f} MB/s over {len(behind)} samples")
    rate = end / load_s
    p99 = behind[max(int(len(behind) * 0.99) - 1, 0)]
    print(f"bytes behind: median {statistics.median(behind):.0f}, p99 {p99}, max {behind[-1]} "
          f"(max ~{behind[-1] / rate * 1000:.0f} ms of stream)")
    print(f"caught up {catch_up * 1000:.0f} ms after the load ended")


if __name__ == "__main__":
    main()
