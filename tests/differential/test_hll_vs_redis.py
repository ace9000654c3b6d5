"""HyperLogLog against a real redis-server 7.0: seeded streams of PFADD / PFCOUNT / PFMERGE /
PFDEBUG mixed with GET, SETRANGE and APPEND corruptions go to Atoll (2 shards) and to Redis;
every reply must be identical and so must the raw bytes of every key (GET) after each step
that changes one.  Keys live on both shards, so multi-key PFCOUNT and PFMERGE also run as
cross-shard commands.  Large HLLs (100k elements, sparse -> dense promotion at several
``hll-sparse-max-bytes``) and DUMP/RESTORE between the two servers are checked too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from shard.slots import default_owner, key_slot
from tests.differential.test_sets_vs_redis import run

KEYS = [b"{a}h1", b"{a}h2", b"{b}h3", b"h4", b"{a}str"]
HLL_KEYS = KEYS[:4]


def test_keys_cover_both_shards() -> None:
    assert len({default_owner(key_slot(k), 2) for k in HLL_KEYS}) == 2


@pytest.fixture
def pair(r: redis.Redis, ref: redis.Redis) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    for client in (r, ref):
        client.response_callbacks.clear()
    yield r, ref
    for client in (r, ref):
        client.config_set("hll-sparse-max-bytes", 3000)


def both(pair: tuple[redis.Redis, redis.Redis], *cmd: Any) -> Any:
    ours, theirs = (run(client, list(cmd)) for client in pair)
    assert ours == theirs, cmd
    return ours


def same_bytes(pair: tuple[redis.Redis, redis.Redis], keys: list[bytes]) -> list[Any]:
    values = []
    for key in keys:
        ours, theirs = (run(client, [b"GET", key]) for client in pair)
        assert ours == theirs, key
        values.append(ours)
    return values


def _elements(rng: random.Random) -> list[bytes]:
    n = rng.choice([0, 1, 1, 2, 5, 30, 300])
    return [b"e%d" % rng.randrange(50_000) for _ in range(n)]


def _corruption(rng: random.Random, key: bytes) -> list[Any]:
    """A write that may break an HLL: a header byte, a register byte, or a tail."""
    choice = rng.randrange(4)
    if choice == 0:
        return [b"SETRANGE", key, rng.choice([0, 3, 4, 15]), bytes([rng.randrange(256)])]
    if choice == 1:
        return [b"SETRANGE", key, rng.randrange(16, 40), bytes([rng.randrange(256)])]
    if choice == 2:
        return [b"APPEND", key, rng.choice([b"hello", b"\x00", b"\x80\x80", b"\x7f"])]
    return [b"SET", key, rng.choice([b"x" * 20, b"HYLL", b"HYLL\x00" + b"\x00" * 11])]


def gen_command(rng: random.Random) -> list[Any]:
    key = rng.choice(KEYS)
    roll = rng.random()
    if roll < 0.45:
        return [b"PFADD", key, *_elements(rng)]
    if roll < 0.6:
        return [b"PFCOUNT", *rng.sample(KEYS, rng.choice([1, 1, 2, 3]))]
    if roll < 0.68:
        return [b"PFMERGE", *rng.sample(KEYS, rng.choice([1, 2, 3]))]
    if roll < 0.76:
        sub = rng.choice([b"ENCODING", b"DECODE", b"TODENSE", b"GETREG", b"encoding", b"nope"])
        return [b"PFDEBUG", sub, rng.choice([*KEYS, b"missing"])]
    if roll < 0.84:
        return _corruption(rng, key)
    if roll < 0.87:
        return [b"DEL", key]
    if roll < 0.9:
        return [b"EXPIRE", key, 100]
    if roll < 0.92:
        return [b"TTL", key]
    if roll < 0.94:
        return [b"SET", b"{a}str", b"x" * rng.choice([1, 16, 50])]
    return [b"GET", key]


@pytest.mark.parametrize("seed", range(4))
def test_random_hll_streams(pair: tuple[redis.Redis, redis.Redis], seed: int) -> None:
    rng = random.Random(seed)
    max_bytes = [3000, 200, 50, 5000][seed]
    for client in pair:
        client.config_set("hll-sparse-max-bytes", max_bytes)
    errors, encodings = set(), set()
    for _ in range(500):
        cmd = gen_command(rng)
        reply = both(pair, *cmd)
        if isinstance(reply, tuple):
            errors.add(reply[1].split(" ", 1)[0])
        for value in same_bytes(pair, KEYS):
            if isinstance(value, bytes) and value[:4] == b"HYLL" and len(value) > 4:
                encodings.add(value[4])
    # The stream must reach both encodings and the corrupt-HLL and type errors.
    assert {0, 1} <= encodings  # dense and sparse
    assert {"INVALIDOBJ", "WRONGTYPE"} <= errors


def test_many_elements_promote_and_match(pair: tuple[redis.Redis, redis.Redis]) -> None:
    seen = set()
    for batch in range(100):
        elements = [b"m%d" % i for i in range(batch * 1000, (batch + 1) * 1000)]
        both(pair, b"PFADD", b"{a}big", *elements)
        both(pair, b"PFADD", b"{b}half", *elements[::2])
        if batch in (0, 1, 5, 99):
            seen.add(both(pair, b"PFDEBUG", b"ENCODING", b"{a}big"))
            assert both(pair, b"PFCOUNT", b"{a}big") > 0
            same_bytes(pair, [b"{a}big", b"{b}half"])
    assert seen == {b"sparse", b"dense"}  # promoted between 1000 and 100k elements
    count = both(pair, b"PFCOUNT", b"{a}big")
    assert abs(count - 100_000) < 100_000 * 0.02
    both(pair, b"PFCOUNT", b"{a}big", b"{b}half")
    both(pair, b"PFMERGE", b"{b}merged", b"{a}big", b"{b}half")
    both(pair, b"PFCOUNT", b"{b}merged")
    same_bytes(pair, [b"{a}big", b"{b}half", b"{b}merged"])


def test_sparse_becomes_dense_at_the_limit(pair: tuple[redis.Redis, redis.Redis]) -> None:
    for client in pair:
        client.config_set("hll-sparse-max-bytes", 30)
    encodings = []
    for i in range(40):
        both(pair, b"PFADD", b"{a}p", b"p%d" % i)
        same_bytes(pair, [b"{a}p"])
        encodings.append(both(pair, b"PFDEBUG", b"ENCODING", b"{a}p"))
    assert encodings[0] == b"sparse" and encodings[-1] == b"dense"


def test_sparse_merges_stay_sparse(pair: tuple[redis.Redis, redis.Redis]) -> None:
    both(pair, b"PFADD", b"{a}x", *[b"x%d" % i for i in range(50)])
    both(pair, b"PFADD", b"{b}y", *[b"y%d" % i for i in range(50)])
    both(pair, b"PFMERGE", b"{a}z", b"{a}x", b"{b}y")
    assert both(pair, b"PFDEBUG", b"ENCODING", b"{a}z") == b"sparse"
    both(pair, b"PFDEBUG", b"DECODE", b"{a}z")
    both(pair, b"PFDEBUG", b"TODENSE", b"{a}x")
    both(pair, b"PFMERGE", b"{b}y", b"{a}x")  # a dense source makes the result dense
    assert both(pair, b"PFDEBUG", b"ENCODING", b"{b}y") == b"dense"
    same_bytes(pair, [b"{a}x", b"{b}y", b"{a}z"])


CORRUPTIONS = [
    (b"APPEND", b"{a}c", b"hello"),  # garbage at the tail of a sparse HLL
    (b"SETRANGE", b"{a}c", 0, b"hyll"),  # broken magic
    (b"SETRANGE", b"{a}c", 4, b"\x02"),  # invalid encoding
    (b"SETRANGE", b"{a}c", 4, b"\x00"),  # dense with the wrong length
    (b"SETRANGE", b"{a}c", 16, b"\xff\xff"),  # runs past the registers
    (b"SETRANGE", b"{a}c", 17, b"\x00"),  # runs short of them
]


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=lambda c: repr(c[-1]))
def test_corrupted_hlls_are_detected(pair: tuple[redis.Redis, redis.Redis],
                                     corruption: tuple[Any, ...]) -> None:
    both(pair, b"PFADD", b"{a}c", b"a", b"b", b"c")
    both(pair, *corruption)
    replies = [both(pair, b"PFCOUNT", b"{a}c"), both(pair, b"PFADD", b"{a}c", b"zz", b"q1"),
               both(pair, b"PFCOUNT", b"{a}c", b"{b}other"),
               both(pair, b"PFMERGE", b"{b}dst", b"{a}c"), both(pair, b"PFDEBUG", b"GETREG", b"{a}c")]
    assert any(isinstance(reply, tuple) for reply in replies)
    same_bytes(pair, [b"{a}c", b"{b}dst"])


def test_dense_fuzzing_matches(pair: tuple[redis.Redis, redis.Redis]) -> None:
    rng = random.Random(7)
    for _ in range(30):
        both(pair, b"DEL", b"{a}f")
        both(pair, b"PFADD", b"{a}f", *[b"f%d" % rng.randrange(10**6) for _ in range(200)])
        if rng.random() < 0.5:
            both(pair, b"PFDEBUG", b"TODENSE", b"{a}f")
        size = both(pair, b"STRLEN", b"{a}f")
        for _ in range(rng.randrange(1, 6)):
            both(pair, b"SETRANGE", b"{a}f", rng.randrange(16, size), bytes([rng.randrange(256)]))
        both(pair, b"PFCOUNT", b"{a}f")
        both(pair, b"PFADD", b"{a}f", b"more")
        both(pair, b"PFCOUNT", b"{a}f", b"{b}g")
        same_bytes(pair, [b"{a}f"])


def test_type_errors_and_debug_errors(pair: tuple[redis.Redis, redis.Redis]) -> None:
    both(pair, b"RPUSH", b"{a}list", b"x")
    both(pair, b"SET", b"{a}s", b"12345")
    for cmd in ([b"PFADD", b"{a}list", b"a"], [b"PFCOUNT", b"{a}list"], [b"PFCOUNT", b"{a}s"],
                [b"PFMERGE", b"{a}list", b"{a}s"], [b"PFMERGE", b"{a}new", b"{a}s"],
                [b"PFDEBUG", b"GETREG", b"{a}nokey"], [b"PFDEBUG", b"DECODE", b"{a}s"],
                [b"PFADD"], [b"PFDEBUG", b"GETREG"], [b"PFSELFTEST", b"x"]):
        assert isinstance(both(pair, *cmd), tuple), cmd
    both(pair, b"PFADD", b"{a}d")
    both(pair, b"PFDEBUG", b"TODENSE", b"{a}d")
    both(pair, b"PFDEBUG", b"DECODE", b"{a}d")
    both(pair, b"PFDEBUG", b"WhAt", b"{a}d")
    both(pair, b"EXISTS", b"{a}new")


def test_cached_count_is_stored_and_kept_with_ttl(pair: tuple[redis.Redis, redis.Redis]) -> None:
    both(pair, b"PFADD", b"{a}t", b"a", b"b", b"c")
    both(pair, b"EXPIRE", b"{a}t", 1000)
    same_bytes(pair, [b"{a}t"])
    assert both(pair, b"PFCOUNT", b"{a}t") == 3
    same_bytes(pair, [b"{a}t"])  # the header now holds the valid cached count
    both(pair, b"PFADD", b"{a}t", b"d")
    same_bytes(pair, [b"{a}t"])  # and its stale bit is set again
    assert both(pair, b"TTL", b"{a}t") > 0


def test_dump_restore_both_ways(pair: tuple[redis.Redis, redis.Redis]) -> None:
    r, ref = pair
    both(pair, b"PFADD", b"{a}small", b"a", b"b")
    both(pair, b"PFADD", b"{a}large", *[b"l%d" % i for i in range(5000)])
    for key in (b"{a}small", b"{a}large"):
        for source, target in ((ref, r), (r, ref)):
            payload = source.execute_command("DUMP", key)
            target.execute_command("RESTORE", key + b"copy", 0, payload, "REPLACE")
        both(pair, b"PFCOUNT", key + b"copy")
        same_bytes(pair, [key + b"copy"])


def test_selftest(r: redis.Redis) -> None:
    assert r.execute_command("PFSELFTEST") == b"OK"
