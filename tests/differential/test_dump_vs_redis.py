"""DUMP / RESTORE against a real redis-server 7.0: payloads move both ways for every type and
encoding, and every error reply is Redis' byte for byte."""

from __future__ import annotations

import random

import pytest
import redis

from persistence import rdb
from persistence.crc64 import crc64
from tests import rdb_data


def _move_all(source: redis.Redis, target: redis.Redis) -> int:
    """DUMP every key of ``source`` and RESTORE it (with its TTL) into ``target``."""
    moved = 0
    for db in range(16):
        source.execute_command("SELECT", db)
        target.execute_command("SELECT", db)
        for key in source.keys(b"*"):
            ttl = max(source.pttl(key), 0)
            target.execute_command("RESTORE", key, ttl, source.dump(key), "REPLACE")
            moved += 1
    source.execute_command("SELECT", 0)
    target.execute_command("SELECT", 0)
    return moved


def test_payloads_move_from_redis_to_atoll_and_back(r: redis.Redis, ref: redis.Redis) -> None:
    rdb_data.fill(ref)
    expected = rdb_data.contents(ref)
    assert _move_all(ref, r) == len(expected) == 66
    assert rdb_data.contents(r) == expected
    ref.flushall()
    _move_all(r, ref)
    assert rdb_data.contents(ref) == expected


def test_encodings_after_restore_match_redis(r: redis.Redis, ref: redis.Redis) -> None:
    rdb_data.fill(ref, dbs=(0,))
    _move_all(ref, r)
    for key in sorted(ref.keys(b"*")):
        assert r.object("encoding", key) == ref.object("encoding", key), key


def _both(r: redis.Redis, ref: redis.Redis, *argv: object) -> None:
    replies = []
    for client in (r, ref):
        try:
            replies.append(client.execute_command(*argv))
        except redis.ResponseError as exc:
            replies.append(("error", str(exc)))
    assert replies[0] == replies[1], argv


def _reseal(body: bytes) -> bytes:
    """A payload with a valid version and checksum around ``body``."""
    head = body + rdb.RDB_VERSION.to_bytes(2, "little")
    return head + crc64(head, 0).to_bytes(8, "little")


def test_restore_errors_match_redis(r: redis.Redis, ref: redis.Redis) -> None:
    good = rdb.dump_payload(rdb.LIST, [b"a", b"b"])
    for client in (r, ref):
        client.set("exists", "1")
    cases = [
        ("RESTORE", "exists", 0, good),
        ("RESTORE", "k", -1, good),
        ("RESTORE", "k", "abc", good),
        ("RESTORE", "k", 0, good[:-1] + bytes((good[-1] ^ 1,))),
        ("RESTORE", "k", 0, b"short"),
        ("RESTORE", "k", 0, good[:-10] + b"\x0b\x00" + good[-8:]),
        ("RESTORE", "k", 0, _reseal(b"\x01\x05\x01a")),  # declares 5 elements, holds 1
        ("RESTORE", "k", 0, _reseal(b"\x01\x00")),  # an empty list
        ("RESTORE", "k", 0, _reseal(b"\x0f\x00")),  # a stream
        ("RESTORE", "k", 0, _reseal(b"\x63")),  # unknown type
        ("RESTORE", "k", 0, good, "IDLETIME", -1),
        ("RESTORE", "k", 0, good, "IDLETIME", "x"),
        ("RESTORE", "k", 0, good, "FREQ", 256),
        ("RESTORE", "k", 0, good, "IDLETIME", 5, "FREQ", 5),
        ("RESTORE", "k", 0, good, "FREQ", 5, "IDLETIME", 5),
        ("RESTORE", "k", 0, good, "BOGUS"),
        ("RESTORE", "k", 0, good, "IDLETIME"),
        ("RESTORE", "k", 1, good, "ABSTTL"),  # already expired: OK, nothing stored
        ("EXISTS", "k"),
        ("RESTORE", "exists", 1, good, "ABSTTL", "REPLACE"),  # replaces with nothing
        ("EXISTS", "exists"),
        ("RESTORE", "k", 100000, good, "IDLETIME", 1000),
        ("OBJECT", "IDLETIME", "k"),
        ("LRANGE", "k", 0, -1),
        ("DUMP", "nokey"),
    ]
    for argv in cases:
        _both(r, ref, *argv)


def test_corrupt_payloads_never_break_the_shard(r: redis.Redis) -> None:
    """Random corruption with a valid checksum: each RESTORE answers OK or Bad data format,
    and the shard keeps serving."""
    rng = random.Random(11)
    bodies = [rdb.dump_payload(kind, data)[:-10] for kind, data in [
        (rdb.HASH, {b"f%d" % i: b"v" for i in range(20)}),
        (rdb.ZSET, [(b"m%d" % i, i / 3) for i in range(20)]),
        (rdb.SET, [b"%d" % i for i in range(20)]),
    ]]
    for _ in range(300):
        body = bytearray(rng.choice(bodies))
        for _ in range(rng.randint(1, 3)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        try:
            r.execute_command("RESTORE", "fuzz", 0, _reseal(bytes(body)), "REPLACE")
        except redis.ResponseError as exc:
            assert str(exc) == "Bad data format"
    assert r.ping()


@pytest.mark.parametrize("freq", [0, 77, 255])
def test_freq_under_lfu_policy(r: redis.Redis, ref: redis.Redis, freq: int) -> None:
    for client in (r, ref):
        client.config_set("maxmemory-policy", "allkeys-lfu")
    try:
        payload = rdb.dump_payload(rdb.STRING, b"v")
        _both(r, ref, "RESTORE", "f", 0, payload, "FREQ", freq)
        _both(r, ref, "OBJECT", "FREQ", "f")
    finally:
        for client in (r, ref):
            client.config_set("maxmemory-policy", "noeviction")
