"""GEOSEARCH latency in a 100k-member index, against already running servers.

Fills ``bench:geo`` with 100k random places over Europe (seeded), then times GEOSEARCH
around one point at 5, 50 and 500 km (20 runs each: median and best) and one COUNT ANY
search over 5000 km; the key is deleted afterwards.

    python bench/geo_search.py --port 6379 [--port 6380 ...]
"""

from __future__ import annotations

import argparse
import random
import time

import redis

KEY = "bench:geo"


def fill(client: redis.Redis, size: int) -> None:
    rng = random.Random(11)
    client.delete(KEY)
    for start in range(0, size, 1000):
        args: list[str] = []
        for i in range(start, min(start + 1000, size)):
            args += [f"{rng.uniform(-10, 30):.6f}", f"{rng.uniform(35, 60):.6f}", f"m{i}"]
        client.execute_command("GEOADD", KEY, *args)


def timed(client: redis.Redis, cmd: list[str], runs: int) -> tuple[int, float, float]:
    """(results, median ms, best ms)."""
    times = []
    found = 0
    for _ in range(runs):
        started = time.perf_counter()
        found = len(client.execute_command(*cmd))
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return found, times[len(times) // 2], times[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--size", type=int, default=100_000)
    options = parser.parse_args()
    for port in options.port:
        client = redis.Redis(port=port)
        fill(client, options.size)
        for radius in ("5", "50", "500"):
            cmd = ["GEOSEARCH", KEY, "FROMLONLAT", "10", "50", "BYRADIUS", radius, "km", "ASC"]
            found, median, best = timed(client, cmd, 20)
            print(f"port {port} radius {radius} km: {found} results, "
                  f"median {median:.2f} ms, best {best:.2f} ms")
        cmd = ["GEOSEARCH", KEY, "FROMLONLAT", "10", "50", "BYRADIUS", "5000", "km", "COUNT", "10",
               "ANY"]
        found, median, best = timed(client, cmd, 20)
        print(f"port {port} 5000 km COUNT 10 ANY: median {median:.2f} ms, best {best:.2f} ms")
        client.delete(KEY)
        client.close()


if __name__ == "__main__":
    main()
