"""String and key commands on a shard executor with a fake clock: no processes, no sleeps."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from shard import wire
from shard.actor import ShardExecutor
from shard.errors import RedisError


class FakeClock:
    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def shard(clock: FakeClock) -> ShardExecutor:
    return ShardExecutor(0, {"databases": 16}, clock=clock)


def call(shard: ShardExecutor, *args: Any, db: int = 0) -> Any:
    argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    argv[0] = argv[0].lower()
    value = shard.execute_batch([[wire.meta(db, False, structured=True), argv]])[0]
    if isinstance(value, RedisError):
        return ("error", value.message)
    return value


def test_set_options_and_expiry(shard: ShardExecutor, clock: FakeClock) -> None:
    assert call(shard, "SET", "k", "v", "PX", 100) == b"OK"
    assert call(shard, "PTTL", "k") == 100
    clock.advance(99)
    assert call(shard, "GET", "k") == b"v"
    clock.advance(1)
    assert call(shard, "GET", "k") is None
    assert shard.ks.expired_keys == 1
    assert call(shard, "SET", "k", "v", "NX", "GET") is None
    assert call(shard, "SET", "k", "w", "NX", "GET") == b"v"
    assert call(shard, "SET", "k", "w", "XX", "EX", 10) == b"OK"
    assert call(shard, "SET", "k", "x", "KEEPTTL") == b"OK"
    assert call(shard, "TTL", "k") == 10
    assert call(shard, "SET", "k", "y") == b"OK"
    assert call(shard, "TTL", "k") == -1
    assert call(shard, "SET", "k", "v", "EX", 0) == ("error", "ERR invalid expire time in 'set' command")
    assert call(shard, "SET", "k", "v", "EX", 10, "PX", 10) == ("error", "ERR syntax error")
    assert call(shard, "SET", "k", "v", "NX", "XX") == ("error", "ERR syntax error")
    assert call(shard, "SET", "k", "v", "EX", "1.5") == (
        "error", "ERR value is not an integer or out of range")


def test_ttl_rounding_and_expiretime(shard: ShardExecutor, clock: FakeClock) -> None:
    call(shard, "SET", "k", "v")
    assert call(shard, "PEXPIRE", "k", 1499) == 1
    assert call(shard, "TTL", "k") == 1
    assert call(shard, "PEXPIRE", "k", 1500) == 1
    assert call(shard, "TTL", "k") == 2  # Redis rounds half up
    assert call(shard, "PEXPIRETIME", "k") == clock.now + 1500
    assert call(shard, "EXPIRETIME", "k") == (clock.now + 1500 + 500) // 1000
    assert call(shard, "TTL", "missing") == -2
    assert call(shard, "PERSIST", "k") == 1
    assert call(shard, "TTL", "k") == -1


def test_expire_flags(shard: ShardExecutor) -> None:
    call(shard, "SET", "k", "v")
    assert call(shard, "EXPIRE", "k", 100, "XX") == 0
    assert call(shard, "EXPIRE", "k", 100, "NX") == 1
    assert call(shard, "EXPIRE", "k", 50, "GT") == 0
    assert call(shard, "EXPIRE", "k", 200, "GT") == 1
    assert call(shard, "EXPIRE", "k", 300, "LT") == 0
    assert call(shard, "EXPIRE", "k", 10, "NX", "XX") == (
        "error", "ERR NX and XX, GT or LT options at the same time are not compatible")
    assert call(shard, "EXPIRE", "k", 10, "GT", "LT") == (
        "error", "ERR GT and LT options at the same time are not compatible")
    assert call(shard, "EXPIRE", "k", 10, "FOO") == ("error", "ERR Unsupported option FOO")
    assert call(shard, "EXPIRE", "k", -1) == 1  # a time in the past deletes
    assert call(shard, "EXISTS", "k") == 0
    assert call(shard, "EXPIRE", "k", 9223372036854775807) == (
        "error", "ERR invalid expire time in 'expire' command")


def test_active_expiry_removes_keys_nobody_reads(shard: ShardExecutor, clock: FakeClock) -> None:
    for i in range(500):
        call(shard, "SET", f"k{i}", "v", "PX", 10)
    call(shard, "SET", "keep", "v")
    clock.advance(11)
    shard.ks.active_expire(budget_ms=1000)
    assert len(shard.ks.dbs[0].data) == 1
    assert shard.ks.expired_keys == 500


def test_incr_family(shard: ShardExecutor) -> None:
    assert call(shard, "INCR", "n") == 1
    assert call(shard, "INCRBY", "n", -11) == -10
    assert call(shard, "DECRBY", "n", "-9223372036854775808") == ("error", "ERR decrement would overflow")
    call(shard, "SET", "n", "9223372036854775807")
    assert call(shard, "INCR", "n") == ("error", "ERR increment or decrement would overflow")
    call(shard, "SET", "n", " 1")
    assert call(shard, "INCR", "n") == ("error", "ERR value is not an integer or out of range")
    call(shard, "SET", "f", "10.5")
    assert call(shard, "INCRBYFLOAT", "f", "0.1") == b"10.6"
    assert call(shard, "INCRBYFLOAT", "f", "inf") == ("error", "ERR increment would produce NaN or Infinity")
    call(shard, "LPUSH", "l", "x")
    assert call(shard, "INCR", "l") == (
        "error", "WRONGTYPE Operation against a key holding the wrong kind of value")


def test_ranges(shard: ShardExecutor) -> None:
    call(shard, "SET", "s", "Hello World")
    assert call(shard, "GETRANGE", "s", 0, 4) == b"Hello"
    assert call(shard, "GETRANGE", "s", -5, -1) == b"World"
    assert call(shard, "GETRANGE", "s", -1, -5) == b""
    assert call(shard, "GETRANGE", "s", 5, 100) == b" World"
    assert call(shard, "SETRANGE", "s", 6, "Redis") == 11
    assert call(shard, "GET", "s") == b"Hello Redis"
    assert call(shard, "SETRANGE", "new", 3, "x") == 4
    assert call(shard, "GET", "new") == b"\0\0\0x"
    assert call(shard, "SETRANGE", "s", -1, "x") == ("error", "ERR offset is out of range")
    assert call(shard, "SETRANGE", "s", 536870911, "xx") == (
        "error", "ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    assert call(shard, "APPEND", "s", "!") == 12


def test_lcs(shard: ShardExecutor) -> None:
    call(shard, "MSET", "a", "ohmytext", "b", "mynewtext")
    assert call(shard, "LCS", "a", "b") == b"mytext"
    assert call(shard, "LCS", "a", "b", "LEN") == 6
    assert call(shard, "LCS", "a", "b", "IDX", "MINMATCHLEN", 4, "WITHMATCHLEN") == {
        b"matches": [[[4, 7], [5, 8], 4]], b"len": 6}


def test_rename_copy_move(shard: ShardExecutor, clock: FakeClock) -> None:
    call(shard, "SET", "a", "1", "EX", 100)
    assert call(shard, "RENAME", "a", "b") == b"OK"
    assert call(shard, "TTL", "b") == 100
    assert call(shard, "RENAME", "a", "b") == ("error", "ERR no such key")
    assert call(shard, "COPY", "b", "c") == 1
    assert call(shard, "COPY", "b", "c") == 0
    assert call(shard, "COPY", "b", "c", "REPLACE") == 1
    assert call(shard, "COPY", "b", "b") == ("error", "ERR source and destination objects are the same")
    assert call(shard, "MOVE", "c", 1) == 1
    assert call(shard, "GET", "c", db=1) == b"1"
    assert call(shard, "TTL", "c", db=1) == 100
    assert call(shard, "MOVE", "b", 0) == ("error", "ERR source and destination objects are the same")
    assert call(shard, "MOVE", "b", 16) == ("error", "ERR DB index is out of range")


def test_swapdb_and_flush(shard: ShardExecutor) -> None:
    call(shard, "SET", "x", "0")
    call(shard, "SET", "y", "1", db=1)
    assert call(shard, "SWAPDB", 0, 1) == b"OK"
    assert call(shard, "GET", "y") == b"1"
    assert call(shard, "GET", "x", db=1) == b"0"
    assert call(shard, "SWAPDB", 0, "x") == ("error", "ERR invalid second DB index")
    assert call(shard, "FLUSHALL") == b"OK"
    assert call(shard, "DBSIZE") == 0 and call(shard, "DBSIZE", db=1) == 0


def test_scan_returns_every_key_present_for_the_whole_scan(shard: ShardExecutor) -> None:
    for i in range(1000):
        call(shard, "SET", f"k{i}", "v")
    seen: set[bytes] = set()
    cursor = 0
    step = 0
    while True:
        cursor, keys, _since = call(shard, "__SCAN", cursor, 37, "*", "", 0)
        seen.update(keys)
        # Churn during the scan: delete and add keys that are not part of the guarantee.
        call(shard, "DEL", f"k{999 - step}")
        call(shard, "SET", f"new{step}", "v")
        step += 1
        if cursor == 0:
            break
    survivors = {f"k{i}".encode() for i in range(1000 - step)}
    assert survivors <= seen


def test_unknown_internal_failure_is_an_error_not_a_crash(
    shard: ShardExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    call(shard, "SET", "k", "v")
    monkeypatch.setattr(shard.handlers[b"get"], "handler", lambda ctx, args: 1 / 0)
    assert call(shard, "GET", "k") == ("error", "ERR internal error in shard: ZeroDivisionError")


def test_memory_usage_grows_with_the_value(shard: ShardExecutor) -> None:
    call(shard, "SET", "small", "x")
    call(shard, "SET", "big", "x" * 10000)
    small, big = call(shard, "MEMORY", "USAGE", "small"), call(shard, "MEMORY", "USAGE", "big")
    assert 0 < small < big and big > 10000
    call(shard, "HSET", "h", *[f"f{i}" for i in range(200)])
    assert call(shard, "MEMORY", "USAGE", "h") > call(shard, "MEMORY", "USAGE", "small")
    assert call(shard, "MEMORY", "USAGE", "missing") is None
    assert call(shard, "MEMORY", "USAGE", "h", "SAMPLES", "x") == (
        "error", "ERR value is not an integer or out of range")


def test_object_idletime_and_freq(shard: ShardExecutor, clock: FakeClock) -> None:
    call(shard, "SET", "k", "v")
    clock.advance(5000)
    assert call(shard, "OBJECT", "IDLETIME", "k") == 5  # OBJECT itself does not touch
    assert call(shard, "TYPE", "k") == b"string" and call(shard, "TTL", "k") == -1
    assert call(shard, "OBJECT", "IDLETIME", "k") == 5
    call(shard, "GET", "k")
    assert call(shard, "OBJECT", "IDLETIME", "k") == 0
    assert call(shard, "OBJECT", "FREQ", "k")[0] == "error"
    call(shard, "__CONFIG", "maxmemory-policy", msgpack.packb("allkeys-lfu"))
    assert call(shard, "OBJECT", "IDLETIME", "k")[1].startswith("ERR An LRU maxmemory policy")
    call(shard, "SET", "hot", "v")
    assert call(shard, "OBJECT", "FREQ", "hot") == 5  # LFU_INIT_VAL
    for _ in range(2000):
        call(shard, "GET", "hot")
    assert 5 < call(shard, "OBJECT", "FREQ", "hot") < 255
    before = call(shard, "OBJECT", "FREQ", "hot")
    clock.advance(3 * 60_000)  # lfu-decay-time 1: one point a minute
    assert call(shard, "OBJECT", "FREQ", "hot") == before - 3
