"""maxmemory against a real server (2 shards): what each policy evicts, and OOM under
noeviction.  Each test fills a few MB past a limit set just above the current usage.

Under heavy churn (many more keys written than fit) a shard's dicts grow to 3-6x their
live entries (CPython resizes them on dummy-slot exhaustion) and that memory counts, so the
number of keys that fit falls; tests that check *which* keys go stay near the limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.servers import AtollServer, atoll_server, wait_until

HEADROOM = 1536 * 1024
VALUE = b"x" * 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtollServer]:
    with atoll_server(tmp_path_factory.mktemp("evict"), shards=2) as s:
        yield s


@pytest.fixture
def c(server: AtollServer) -> Iterator[redis.Redis]:
    client = server.client()
    client.config_set("maxmemory", 0)
    client.flushall()
    yield client
    client.config_set("maxmemory", 0)
    client.config_set("maxmemory-policy", "noeviction")
    client.flushall()
    client.close()


def _limit(c: redis.Redis, policy: str) -> int:
    limit = int(c.info("memory")["used_memory"]) + HEADROOM
    c.config_set("maxmemory-policy", policy)
    c.config_set("maxmemory", limit)
    return limit


def _fill(c: redis.Redis, prefix: str, count: int, ttl: int | None = None) -> int:
    """SET ``count`` keys in pipelines of 500; the number of OOM errors."""
    errors = 0
    for start in range(0, count, 500):
        pipe = c.pipeline(transaction=False)
        for i in range(start, min(start + 500, count)):
            pipe.set(f"{prefix}:{i}", VALUE, ex=ttl)
        for result in pipe.execute(raise_on_error=False):
            if isinstance(result, redis.ResponseError):
                assert str(result) == "command not allowed when used memory > 'maxmemory'."
                errors += 1
    return errors


def _kept(c: redis.Redis, prefix: str, count: int) -> int:
    pipe = c.pipeline(transaction=False)
    for i in range(count):
        pipe.exists(f"{prefix}:{i}")
    return sum(pipe.execute())


def test_noeviction_answers_oom_to_writes_and_serves_the_rest(c: redis.Redis) -> None:
    limit = _limit(c, "noeviction")
    assert _fill(c, "k", 15000) > 0
    info = c.info()
    assert info["evicted_keys"] == 0
    assert info["used_memory"] < limit + 1024 * 1024
    assert c.get("k:0") == VALUE
    assert c.delete("k:0", "k:1") == 2  # not denyoom
    with pytest.raises(redis.ResponseError, match="command not allowed when used memory"):
        c.lpush("list", "x")


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"])
def test_volatile_policies_keep_every_persistent_key(c: redis.Redis, policy: str) -> None:
    _limit(c, policy)
    assert _fill(c, "p", 1500) == 0
    _fill(c, "t", 12000, ttl=1000)
    assert _kept(c, "p", 1500) == 1500
    assert c.info("stats")["evicted_keys"] > 0


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_allkeys_policies_stay_under_the_limit_without_errors(c: redis.Redis, policy: str) -> None:
    limit = _limit(c, policy)
    assert _fill(c, "k", 15000) == 0
    info = c.info()
    assert info["evicted_keys"] > 0
    assert info["used_memory"] < limit + 512 * 1024
    assert c.dbsize() < 15000


def test_allkeys_lru_keeps_recently_touched_keys(c: redis.Redis) -> None:
    assert _fill(c, "old", 4000) == 0
    # The LRU clock ticks in seconds (as Redis'): wait until the old keys are idle.
    wait_until(lambda: c.object("idletime", "old:0") >= 2, timeout=10, what="idle keys")
    pipe = c.pipeline(transaction=False)
    for i in range(0, 4000, 2):
        pipe.get(f"old:{i}")
    pipe.execute()
    _limit(c, "allkeys-lru")
    _fill(c, "new", 10000)
    touched = sum(c.exists(f"old:{i}") for i in range(0, 4000, 2))
    untouched = sum(c.exists(f"old:{i}") for i in range(1, 4000, 2))
    assert touched > 4 * max(untouched, 1), (touched, untouched)


def test_volatile_ttl_takes_the_shortest_ttls_first(c: redis.Redis) -> None:
    limit = _limit(c, "volatile-ttl")
    _fill(c, "long", 500, ttl=100000)
    refused = _fill(c, "short", 5000, ttl=1000)  # a little past the limit: no mass churn
    long_kept, short_kept = _kept(c, "long", 500) / 500, _kept(c, "short", 5000) / 5000
    # Sampled, as in Redis, so not exact: runs gave 2.3x to 10x; a policy blind to TTLs
    # keeps both at the same rate.  (Once, in CI, both were 0: the numbers below say why if
    # it happens again.)
    memory = c.info("memory")
    assert long_kept > 1.5 * short_kept, (
        long_kept, short_kept, refused, limit, memory["used_memory"],
        memory.get("atoll_shard_used_memory"), c.info("stats")["evicted_keys"])


def test_watch_sees_an_eviction(c: redis.Redis, server: AtollServer) -> None:
    c.set("watched", "v")
    other = server.client()
    pipe = other.pipeline(transaction=True)
    pipe.watch("watched")
    _limit(c, "allkeys-random")
    # Random eviction takes the watched key sooner or later: keep writing until it did.
    for round_ in range(40):
        _fill(c, f"k{round_}", 5000)
        if not c.exists("watched"):
            break
    assert not c.exists("watched"), "40 rounds of random eviction spared one key"
    pipe.multi()
    pipe.set("after", "1")
    with pytest.raises(redis.WatchError):
        pipe.execute()
    other.close()


def test_memory_is_reported_per_process_allocator(tmp_path: Path, c: redis.Redis) -> None:
    before = c.info("memory")["used_memory"]
    _fill(c, "m", 10000)
    grown = c.info("memory")["used_memory"] - before
    assert 1_500_000 < grown < 6_000_000  # 10000 x (key + 200-byte value + dict slots)
    c.flushall()
    assert c.info("memory")["used_memory"] - before < 1_000_000
