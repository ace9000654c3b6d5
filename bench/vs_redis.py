"""Throughput of Atoll against a real redis-server in the same run, as ratios.

Starts both servers on free loopback ports, runs ``redis-benchmark -c 50`` for each test at
``-P 1`` and ``-P 16``, alternating which server goes first, and prints requests per second
and the ratio Atoll/Redis per test plus the geometric mean per pipeline depth.

    python bench/vs_redis.py [--shards 2] [--requests 200000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

TESTS = ["set", "get", "incr", "lpush"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ping(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            out = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                                 text=True, timeout=2)
            if out.stdout.strip() == "PONG":
                return
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not answer PING")


def benchmark(port: int, test: str, pipeline: int, requests: int, clients: int) -> float:
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(requests),
         "-P", str(pipeline), "-t", test, "-r", "100000", "--csv"],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = [r for r in csv.reader(io.StringIO(out)) if r and r[0] != "test"]
    # Some tests print a preparation step first ("LPUSH (needed to benchmark LRANGE)").
    wanted = [r for r in rows if r[0].upper().startswith(test.upper()) and "needed" not in r[0]]
    return float((wanted or rows)[-1][1])


@contextlib.contextmanager
def both_servers(shards: int, gateways: int = 1, appendonly: str = "no",
                 appendfsync: str = "everysec") -> Iterator[tuple[int, int]]:
    """A real redis-server and Atoll on free loopback ports, no snapshots, the same
    append-only settings: (redis port, atoll port)."""
    workdir = tempfile.mkdtemp(prefix="atoll-bench-")
    redis_port, atoll_port = free_port(), free_port()
    aof = ["--appendonly", appendonly, "--appendfsync", appendfsync]
    # Separate directories: both would use the same append-only directory name.
    redis_dir, atoll_dir = os.path.join(workdir, "redis"), os.path.join(workdir, "atoll")
    os.makedirs(redis_dir)
    os.makedirs(atoll_dir)
    here = os.path.dirname(os.path.abspath(__file__))
    atoll_bin = (shutil.which("atoll-server")
                 or os.path.join(os.path.dirname(sys.executable), "atoll-server"))
    procs = [
        subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "", *aof,
                          "--dir", redis_dir], stdout=subprocess.DEVNULL),
        subprocess.Popen([atoll_bin, os.path.join(here, "..", "conf", "atoll.conf"), "--port",
                          str(atoll_port), "--save", "", *aof, "--dir", atoll_dir,
                          "--shards", str(shards), "--gateways", str(gateways)],
                         stdout=subprocess.DEVNULL),
    ]
    try:
        wait_ping(redis_port)
        wait_ping(atoll_port)
        yield redis_port, atoll_port
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--gateways", type=int, default=1)
    parser.add_argument("--requests", type=int, default=200000)
    parser.add_argument("--requests-p16", type=int, default=0,
                        help="requests per -P 16 run (default: 4x --requests, so a run lasts "
                             "about as long as at -P 1 and warm-up matters less)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--tests", default=",".join(TESTS))
    parser.add_argument("--appendonly", default="no", choices=["no", "yes"],
                        help="the same append-only setting for both servers")
    parser.add_argument("--appendfsync", default="everysec", choices=["always", "everysec", "no"])
    args = parser.parse_args()
    tests = args.tests.split(",")
    with both_servers(args.shards, args.gateways, args.appendonly,
                      args.appendfsync) as (redis_port, atoll_port):
        results: dict[tuple[str, int], dict[str, list[float]]] = {}
        flip = False
        for _ in range(args.rounds):
            for pipeline in (1, 16):
                for test in tests:
                    order = [("atoll", atoll_port), ("redis", redis_port)]
                    if flip:
                        order.reverse()
                    flip = not flip
                    entry = results.setdefault((test, pipeline), {"atoll": [], "redis": []})
                    count = args.requests if pipeline == 1 else (args.requests_p16 or 4 * args.requests)
                    for name, port in order:
                        entry[name].append(benchmark(port, test, pipeline, count, args.clients))
        print(f"shards={args.shards} gateways={args.gateways} clients={args.clients} "
              f"requests={args.requests} rounds={args.rounds} cores={os.cpu_count()}")
        print(f"{'test':8} {'P':>3} {'redis rps':>12} {'atoll rps':>12} {'ratio':>7}")
        for pipeline in (1, 16):
            ratios = []
            for test in tests:
                entry = results[(test, pipeline)]
                redis_rps = sum(entry["redis"]) / len(entry["redis"])
                atoll_rps = sum(entry["atoll"]) / len(entry["atoll"])
                ratio = atoll_rps / redis_rps
                ratios.append(ratio)
                print(f"{test:8} {pipeline:>3} {redis_rps:12.0f} {atoll_rps:12.0f} {ratio:7.3f}")
            geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            print(f"{'geomean':8} {pipeline:>3} {'':12} {'':12} {geo:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
