"""Cache mode: ``maxmemory`` with ``allkeys-lru`` while far more is written than fits.

One client writes new keys (``new:N`` -> VALUE bytes, pipelined) at a steady rate, reading a
small hot set (``hot:0..H-1``) after every pipeline; a second connection samples INFO
``used_memory`` as fast as it can meanwhile.  At the end: the peak sample against
``maxmemory``, how many hot keys survive, evictions, and (for Atoll) the RSS of every process
(from ``atoll-admin status --json``) beside ``used_memory``.  The same script runs against a
real redis-server with the same settings.

Why a rate: Redis' LRU clock (and Atoll's) ticks once a second, so keys touched in the same
second look equally recent.  If the resident keys were all written within a second or two,
the hot keys would tie with them and be evicted like any other, on Redis as on Atoll
(``--rate 0`` shows it).  The default rate keeps the resident set a few seconds deep.

    python bench/cache_mode.py [--maxmemory-mb 50] [--write-mb 200] [--rate 8000]
                               [--shards 2] [--skip-redis]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import redis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.servers import free_port, wait_until  # noqa: E402

MB = 1024 * 1024


@dataclass
class CacheReport:
    maxmemory: int
    written_keys: int = 0
    seconds: float = 0.0
    samples: list[int] = field(default_factory=list)
    hot_misses_during: int = 0  # hot-set GETs that found nothing while the writer ran
    hot_present: int = 0
    evicted_keys: int = 0
    dbsize: int = 0
    used_memory_end: int = 0

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)

    def lines(self, name: str) -> list[str]:
        return [
            f"{name}: wrote {self.written_keys} keys in {self.seconds:.1f} s; maxmemory "
            f"{self.maxmemory / MB:.2f} MiB; used_memory peak {self.peak / MB:.2f} MiB "
            f"({100 * (self.peak / self.maxmemory - 1):+.2f}% of maxmemory, "
            f"{len(self.samples)} samples), at the end {self.used_memory_end / MB:.2f} MiB",
            f"{name}: hot set {self.hot_present} present; {self.hot_misses_during} hot misses "
            f"while writing; evicted_keys {self.evicted_keys}; dbsize {self.dbsize}",
        ]


class MemorySampler(threading.Thread):
    """INFO memory in a loop on its own connection until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port, protocol=2, socket_timeout=30)
        self.samples: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append(int(self.client.info("memory")["used_memory"]))
        self.client.close()


def drive(port: int, *, write_bytes: int, value_size: int = 1024, hot: int = 200,
          pipeline: int = 100, rate: float = 8000.0) -> CacheReport:
    """Run the workload on a server already configured for cache mode."""
    client = redis.Redis(port=port, protocol=2, socket_timeout=30)
    report = CacheReport(maxmemory=int(client.config_get("maxmemory")["maxmemory"]))
    value = b"v" * value_size
    hot_keys = [b"hot:%d" % i for i in range(hot)]
    client.mset({key: value for key in hot_keys})
    total = write_bytes // value_size
    sampler = MemorySampler(port)
    sampler.start()
    started = time.monotonic()
    try:
        for start in range(0, total, pipeline):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(start + pipeline, total)):
                pipe.set(b"new:%d" % i, value)
            pipe.execute()
            pipe = client.pipeline(transaction=False)
            for key in hot_keys:
                pipe.get(key)
            report.hot_misses_during += sum(got is None for got in pipe.execute())
            if rate:  # hold the pace: no more than `rate` new keys a second on average
                ahead = (start + pipeline) / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    finally:
        sampler.done.set()
        sampler.join(60)
    report.seconds = time.monotonic() - started
    report.written_keys = total
    report.samples = sampler.samples
    report.hot_present = int(sum(client.exists(key) for key in hot_keys))
    info = client.info()
    report.evicted_keys = int(info["evicted_keys"])
    report.used_memory_end = int(info["used_memory"])
    report.dbsize = int(client.dbsize())
    client.close()
    return report


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def atoll_processes(data_dir: str, port: int) -> list[tuple[str, int]]:
    """(name, pid) of every Atoll process, from atoll-admin, plus any other descendant of
    the supervisor (multiprocessing helpers) found in /proc."""
    admin = os.path.join(os.path.dirname(sys.executable), "atoll-admin")
    out = subprocess.run([admin, "--dir", data_dir, "--port", str(port), "--json", "status"],
                         capture_output=True, check=True, timeout=30).stdout
    rows = [(str(row["name"]), int(row["pid"])) for row in json.loads(out)]
    known = {pid for _, pid in rows}
    supervisor = next(pid for name, pid in rows if name == "supervisor")
    pending = [supervisor]
    while pending:
        pid = pending.pop()
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = [int(p) for p in f.read().split()]
        except OSError:
            continue
        for child in children:
            if child not in known:
                with open(f"/proc/{child}/comm") as f:
                    rows.append((f"other ({f.read().strip()})", child))
                known.add(child)
            pending.append(child)
    return rows


def _start_atoll(workdir: str, port: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    server = os.path.join(os.path.dirname(sys.executable), "atoll-server")
    log = open(os.path.join(workdir, "atoll.log"), "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen([server, os.path.join(root, "conf", "atoll.conf"), "--port",
                             str(port), "--save", "", "--dir", workdir, "--shards",
                             str(args.shards), "--maxmemory", f"{args.maxmemory_mb}mb",
                             "--maxmemory-policy", "allkeys-lru"], stdout=log, stderr=log)


def _start_redis(workdir: str, port: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly",
                             "no", "--dir", workdir, "--maxmemory", f"{args.maxmemory_mb}mb",
                             "--maxmemory-policy", "allkeys-lru"], stdout=subprocess.DEVNULL)


def _run(name: str, port: int, proc: subprocess.Popen[bytes], args: argparse.Namespace,
         workdir: str) -> CacheReport:
    wait_until(lambda: redis.Redis(port=port).ping(), timeout=60, what=name)
    report = drive(port, write_bytes=args.write_mb * MB, value_size=args.value,
                   hot=args.hot, pipeline=args.pipeline, rate=args.rate)
    for line in report.lines(name):
        print(line, flush=True)
    if name == "atoll":
        total = 0
        for process, pid in atoll_processes(workdir, port):
            total += rss(pid)
            print(f"atoll: RSS {process:<14} pid {pid:>7}: {rss(pid) / MB:8.2f} MiB")
        print(f"atoll: RSS all processes {total / MB:.2f} MiB against used_memory "
              f"{report.used_memory_end / MB:.2f} MiB")
        shard_memory = redis.Redis(port=port).info("memory").get("atoll_shard_used_memory")
        if shard_memory is not None:
            print(f"atoll: used_memory per shard (atoll_shard_used_memory): {shard_memory}")
    else:
        print(f"{name}: RSS pid {proc.pid}: {rss(proc.pid) / MB:.2f} MiB against used_memory "
              f"{report.used_memory_end / MB:.2f} MiB")
    return report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--maxmemory-mb", type=int, default=50)
    parser.add_argument("--write-mb", type=int, default=200)
    parser.add_argument("--value", type=int, default=1024)
    parser.add_argument("--hot", type=int, default=200)
    parser.add_argument("--pipeline", type=int, default=100)
    parser.add_argument("--rate", type=float, default=8000.0, help="new keys a second; 0: flat out")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--skip-redis", action="store_true")
    args = parser.parse_args()
    print(f"maxmemory {args.maxmemory_mb} MiB allkeys-lru; writing {args.write_mb} MiB of "
          f"{args.value}-byte values, {args.pipeline} a pipeline, rate {args.rate or 'unpaced'}; "
          f"hot set {args.hot} keys read after every pipeline", flush=True)
    servers = [("atoll", _start_atoll)] + ([] if args.skip_redis else [("redis", _start_redis)])
    for name, start in servers:
        workdir = tempfile.mkdtemp(prefix=f"cache-mode-{name}-")
        port = free_port()
        proc = start(workdir, port, args)
        try:
            _run(name, port, proc, args, workdir)
        finally:
            proc.terminate()
            proc.wait(30)
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
