"""Cache mode, scaled down from ``bench/cache_mode.py`` (maxmemory 50 MB, 200 MB written):
allkeys-lru (2 shards) while twice what fits is written, pipelined, and a hot set of
200 keys is read after every pipeline.  INFO used_memory, sampled all along on a second
connection, must stay within a small tolerance of maxmemory, and every hot key must survive.
A real redis-server runs the same script with the same room for data to show that the
expectation is fair.

Room, not maxmemory, is what the two servers share: an empty 2-shard Atoll already uses ~27 MB
(two Python processes' baselines, which count as Redis' own ~1 MB does), so the limits are set
to each server's startup usage plus the same ROOM.

Tolerance: a shard checks its share before each batch (Redis before each command), so it can
pass it by one batch's writes (a pipeline: 100 KB over two shards); and CPython grows a dict's
table in one step, which Redis 7 would postpone near the limit: at a few thousand keys a shard
that is up to ~300 KB for each of its two per-key dicts (values and access clocks).  Both
shards together: 1.5 MiB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from bench.cache_mode import MB, CacheReport, drive
from tests.servers import AtollServer, RedisServer, atoll_server

ROOM = 12 * MB
WRITTEN = 24 * MB
RATE = 4000.0  # keys a second: the resident keys span ~3 s of the 1-second LRU clock
TOLERANCE = 3 * MB // 2


@pytest.fixture(scope="module")
def cache_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtollServer]:
    with atoll_server(tmp_path_factory.mktemp("cache"), shards=2) as server:
        yield server


def _run(port: int) -> CacheReport:
    client = redis.Redis(port=port, protocol=2)
    client.flushall()
    startup = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.config_set("maxmemory-samples", 5)
    client.config_set("maxmemory", startup + ROOM)
    try:
        return drive(port, write_bytes=WRITTEN, rate=RATE)
    finally:
        client.config_set("maxmemory", 0)
        client.flushall()
        client.close()


def _check(report: CacheReport) -> None:
    assert report.evicted_keys > 0 and len(report.samples) > 10
    assert report.peak <= report.maxmemory + TOLERANCE, report.lines("peak")
    assert report.hot_present == 200, report.lines("hot set")
    assert report.hot_misses_during == 0, report.lines("hot set")


def test_allkeys_lru_keeps_used_memory_under_maxmemory_and_the_hot_set(
        cache_server: AtollServer) -> None:
    report = _run(cache_server.port)
    _check(report)
    # The eviction really worked against the limit, not far under it.
    assert report.used_memory_end > report.maxmemory - 2 * MB
    info = redis.Redis(port=cache_server.port, protocol=2).info("memory")
    assert int(info["used_memory_peak"]) <= report.maxmemory + TOLERANCE


def test_the_same_script_on_redis_keeps_its_hot_set(reference: RedisServer) -> None:
    _check(_run(reference.port))
