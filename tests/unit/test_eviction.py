"""Eviction choices on a shard executor with a fake clock: which key each policy takes.

With ``maxmemory-samples`` at least the number of keys, the sampled approximation sees every
key, so the choice is exact and can be asserted.
"""

from __future__ import annotations

from shard.actor import ShardExecutor
from shard.errors import OOM, RedisError
from shard.eviction import MemoryMeter, _Sampler
from tests.unit.shard_calls import Clock, call


def _configure(ex: ShardExecutor, policy: str, samples: int = 64) -> None:
    ex.config.update({"maxmemory-policy": policy, "maxmemory-samples": samples})
    call(ex, "__config", "maxmemory-policy", _packed(policy))
    ex.evictor.configure(ex.config)


def _packed(value: object) -> bytes:
    import msgpack

    packed: bytes = msgpack.packb(value)
    return packed


def _alive(ex: ShardExecutor, names: list[str]) -> set[str]:
    return {n for n in names if n.encode() in ex.ks.dbs[0].data}


def test_allkeys_lru_takes_the_longest_idle_key(ex: ShardExecutor, clock: Clock) -> None:
    _configure(ex, "allkeys-lru")
    for i in range(10):
        call(ex, "set", f"k{i}", "v")
        clock.advance(2000)
    call(ex, "get", "k0")  # now the most recently used
    assert ex.evictor.evict_some(2) == 2
    assert _alive(ex, [f"k{i}" for i in range(10)]) == {"k0", *(f"k{i}" for i in range(3, 10))}
    assert ex.evictor.evicted_keys == 2


def test_volatile_policies_never_take_persistent_keys(ex: ShardExecutor, clock: Clock) -> None:
    for policy in ("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"):
        call(ex, "flushall")
        _configure(ex, policy)
        for i in range(5):
            call(ex, "set", f"p{i}", "v")
            call(ex, "set", f"t{i}", "v", "EX", 100 + i)
        assert ex.evictor.evict_some(20) == 5, policy
        assert _alive(ex, [f"p{i}" for i in range(5)] + [f"t{i}" for i in range(5)]) == {
            f"p{i}" for i in range(5)}, policy


def test_volatile_ttl_takes_the_nearest_expiry_first(ex: ShardExecutor) -> None:
    _configure(ex, "volatile-ttl")
    for i, ttl in enumerate([500, 100, 300, 200, 400]):
        call(ex, "set", f"t{i}", "v", "EX", ttl)
    ex.evictor.evict_some(2)
    assert _alive(ex, [f"t{i}" for i in range(5)]) == {"t0", "t2", "t4"}


def test_allkeys_lfu_keeps_the_frequently_used(ex: ShardExecutor) -> None:
    _configure(ex, "allkeys-lfu")
    for i in range(10):
        call(ex, "set", f"k{i}", "v")
    for _ in range(200):
        call(ex, "get", "k3")
        call(ex, "get", "k7")
    ex.evictor.evict_some(8)
    assert _alive(ex, [f"k{i}" for i in range(10)]) == {"k3", "k7"}


def test_random_policies_evict_across_databases(ex: ShardExecutor) -> None:
    _configure(ex, "allkeys-random")
    for db in (0, 5):
        ex.ks.dbs[db].data.update({b"a%d" % i: b"v" for i in range(3)})
    assert ex.evictor.evict_some(10) == 6
    assert not ex.ks.dbs[0].data and not ex.ks.dbs[5].data
    assert ex.evictor.evict_some(1) == 0


def test_noeviction_over_the_limit_refuses_denyoom_commands_only(ex: ShardExecutor) -> None:
    call(ex, "set", "k", "v")
    ex.evictor.limit = 1  # far below what any process uses
    assert ex.evictor.check() is False
    reply = call(ex, "set", "k2", "v")
    assert isinstance(reply, RedisError) and reply.line() == b"-" + OOM.encode() + b"\r\n"
    assert call(ex, "get", "k") == b"v"
    assert call(ex, "del", "k") == 1  # DEL frees memory: never refused


def test_watch_is_touched_by_an_eviction(ex: ShardExecutor) -> None:
    _configure(ex, "allkeys-lru")
    call(ex, "set", "w", "v")
    call(ex, "__watch", "7", "w")
    ex.evictor.evict_some(1)
    assert call(ex, "__watchcheck", "7") == 1


def test_sampler_survives_a_flush_of_its_snapshot() -> None:
    sampler = _Sampler()
    source = {b"k%d" % i: 1 for i in range(100)}
    assert len(sampler.sample(source, 5)) == 5
    source.clear()
    source.update({b"n%d" % i: 1 for i in range(100)})  # same size: no resnapshot by growth
    assert all(k.startswith(b"n") for k in sampler.sample(source, 5))


def test_meter_follows_allocations_and_frees() -> None:
    meter = MemoryMeter()
    before = meter.exact()
    blob = [b"x" * 100 + str(i).encode() for i in range(20000)]  # ~2.9 MB of small objects
    grown = meter.exact() - before
    assert 2_700_000 < grown < 3_400_000
    del blob
    assert meter.exact() - before < 300_000
