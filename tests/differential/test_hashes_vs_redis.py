"""Hash commands: the same seeded random streams go to Atoll and to a real redis-server 7.0;
every reply (values and error texts), every OBJECT ENCODING and the hashes at the end must be
identical.  RESP3 shapes are compared byte for byte over raw sockets.

What Redis leaves to chance is compared by what is fixed about it:

* field order: a listpack keeps insertion order, so HGETALL, HKEYS, HVALS and HSCAN of
  listpack hashes are compared exactly; those of hashtables sorted, and HSCAN of a hashtable
  by the pairs a full scan returns;
* HRANDFIELD: counts, distinctness, membership, and that values belong to their fields.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.differential.test_sets_vs_redis import RawConnection, is_error, raw_client, run

T = b"{t}"
SAME_SHARD = [T + b"h1", T + b"h2", T + b"h3"]
OTHER_SHARDS = [b"h4", b"h5"]
STRING_KEY = T + b"str"
SET_KEY = T + b"set"
MISSING = T + b"missing"
FIELDS = [b"f%d" % i for i in range(14)] + [b"a", b"b", b"", b"n", b"fl", b"x" * 70, b"\x00"]
VALUES = [
    b"0",
    b"1",
    b"-1",
    b"12",
    b"abc",
    b"",
    b"3.5",
    b"1e3",
    b" 1",
    b"01",
    b"y" * 70,
    b"9223372036854775807",
    b"-9223372036854775808",
    b"inf",
    b"1.7976931348623157e308",
]
INCRS = [
    b"1",
    b"-1",
    b"5",
    b"100",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"x",
    b"",
    b"1.5",
]
FLOAT_INCRS = [
    b"0.1",
    b"-0.1",
    b"1.5",
    b"1e5",
    b"-3.7e10",
    b"17",
    b"inf",
    b"-inf",
    b"nan",
    b"abc",
    b"5.0e3",
    b"0x10",
    b" 1",
    b"1e308",
    b"1e-320",
    b"1e70",
]
COUNTS = [
    b"0",
    b"1",
    b"2",
    b"3",
    b"5",
    b"30",
    b"-1",
    b"-3",
    b"-40",
    b"x",
    b"",
    b"-9223372036854775808",
    b"4611686018427387904",
]


def hash_of(client: redis.Redis, key: bytes) -> dict[bytes, bytes] | None:
    if client.execute_command("TYPE", key) != b"hash":
        return None
    flat = client.execute_command("HGETALL", key)
    return dict(zip(flat[::2], flat[1::2], strict=True))


def encoding(client: redis.Redis, key: bytes) -> bytes | None:
    return client.execute_command("OBJECT", "ENCODING", key)


def pairs(flat: list[bytes]) -> list[tuple[bytes, bytes]]:
    return list(zip(flat[::2], flat[1::2], strict=True))


class Stream:
    def __init__(self, r: redis.Redis, ref: redis.Redis, seed: int, keys: list[bytes]) -> None:
        self.r, self.ref = raw_client(r), raw_client(ref)
        self.rng = random.Random(seed)
        self.keys = keys
        for client in (self.r, self.ref):
            client.execute_command("SET", STRING_KEY, "v")
            client.execute_command("SADD", SET_KEY, "m")

    def key(self) -> bytes:
        return self.rng.choice(self.keys * 2 + [STRING_KEY, SET_KEY, MISSING])

    def field(self) -> bytes:
        return self.rng.choice(FIELDS)

    def value(self) -> bytes:
        return self.rng.choice(VALUES)

    def pairs(self, most: int = 4) -> list[bytes]:
        return [x for _ in range(self.rng.randint(1, most)) for x in (self.field(), self.value())]

    def command(self) -> list[bytes]:
        rng, k, f = self.rng, self.key, self.field
        choices: list[Callable[[], list[bytes]]] = [
            lambda: [b"HSET", k()] + self.pairs(),
            lambda: [b"HSET", k()] + self.pairs(),
            lambda: [b"HSET", k()] + self.pairs(12),
            lambda: [b"HSET", k()] + self.pairs()[:-1],
            lambda: [b"HMSET", k()] + self.pairs(),
            lambda: [b"HSETNX", k(), f(), self.value()],
            lambda: [b"HGET", k(), f()],
            lambda: [b"HMGET", k()] + [f() for _ in range(rng.randint(1, 4))],
            lambda: [b"HDEL", k()] + [f() for _ in range(rng.randint(1, 5))],
            lambda: [b"HLEN", k()],
            lambda: [b"HSTRLEN", k(), f()],
            lambda: [b"HEXISTS", k(), f()],
            lambda: [b"HKEYS", k()],
            lambda: [b"HVALS", k()],
            lambda: [b"HGETALL", k()],
            lambda: [b"HINCRBY", k(), f(), rng.choice(INCRS)],
            lambda: [b"HINCRBYFLOAT", k(), f(), rng.choice(FLOAT_INCRS)],
            lambda: [b"HRANDFIELD", k()],
            lambda: [b"HRANDFIELD", k(), rng.choice(COUNTS)],
            lambda: [
                b"HRANDFIELD",
                k(),
                rng.choice(COUNTS),
                rng.choice([b"WITHVALUES", b"withvalues", b"x"]),
            ],
            lambda: [b"HRANDFIELD", k(), b"1", b"WITHVALUES", b"x"],
            self.hscan,
            lambda: [b"OBJECT", b"ENCODING", k()],
            lambda: [b"DEL", k()],
            lambda: [rng.choice([b"HSET", b"HGET", b"HMGET", b"HINCRBY", b"HSCAN", b"HRANDFIELD"])],
        ]
        return rng.choice(choices)()

    def hscan(self) -> list[bytes]:
        rng = self.rng
        cmd = [b"HSCAN", self.key(), rng.choice([b"0", b"", b"x", b"-1", b" 0"])]
        for _ in range(rng.randint(0, 2)):
            option = rng.choice([b"COUNT", b"MATCH", b"NOVALUES"])
            if option == b"NOVALUES":
                cmd.append(option)
                continue
            value = {
                b"COUNT": [b"1", b"2", b"100", b"0", b"x"],
                b"MATCH": [b"*", b"f1*", b"?", b"[a-c]", b"f"],
            }[option]
            cmd += [option, rng.choice(value)]
        return cmd

    # --- checking --------------------------------------------------------------------------

    def step(self, cmd: list[bytes]) -> None:
        name = cmd[0].upper()
        if name == b"HRANDFIELD" and 3 <= len(cmd) <= 4 or name == b"HRANDFIELD" and len(cmd) == 2:
            self.check_hrandfield(cmd)
        elif name == b"HSCAN":
            self.check_hscan(cmd)
        else:
            expected, got = run(self.ref, cmd), run(self.r, cmd)
            if (
                name in (b"HGETALL", b"HKEYS", b"HVALS")
                and not is_error(expected)
                and encoding(self.ref, cmd[1]) == b"hashtable"
            ):
                if name == b"HGETALL":
                    expected, got = sorted(pairs(expected)), sorted(pairs(got))
                else:
                    expected, got = sorted(expected), sorted(got)
            assert got == expected
        if len(cmd) > 1 and cmd[1] in self.keys:
            assert encoding(self.r, cmd[1]) == encoding(self.ref, cmd[1])

    def check_hrandfield(self, cmd: list[bytes]) -> None:
        current = hash_of(self.ref, cmd[1])
        expected, got = run(self.ref, cmd), run(self.r, cmd)
        if is_error(expected) or current is None:
            assert got == expected
            return
        for reply in (expected, got):
            if len(cmd) == 2:
                assert reply in current if current else reply is None
                continue
            count = int(cmd[2])
            fields = reply
            if len(cmd) == 4:
                assert all(current[f] == v for f, v in pairs(reply))
                fields = reply[::2]
            size = min(count, len(current)) if count >= 0 else (-count if current else 0)
            assert len(fields) == size, (cmd, reply)
            assert set(fields) <= set(current)
            if count >= 0:
                assert len(set(fields)) == len(fields)

    def check_hscan(self, cmd: list[bytes]) -> None:
        expected, got = run(self.ref, cmd), run(self.r, cmd)
        if is_error(expected) or encoding(self.ref, cmd[1]) != b"hashtable":
            assert got == expected
            return
        assert not is_error(got)
        if cmd[2].strip(b"+-0"):  # a cursor the server never gave: any position is right
            current = hash_of(self.ref, cmd[1]) or {}
            assert all(current.get(f) == v for f, v in pairs(got[1]))
            return
        assert self.finish_scan(self.ref, cmd, expected) == self.finish_scan(self.r, cmd, got)

    @staticmethod
    def finish_scan(client: redis.Redis, cmd: list[bytes], first: list[Any]) -> dict[bytes, bytes]:
        seen = dict(pairs(first[1]))
        cursor = first[0]
        while cursor != b"0":
            cursor, chunk = client.execute_command(cmd[0], cmd[1], cursor, *cmd[3:])
            seen.update(pairs(chunk))
        return seen

    def final_check(self) -> None:
        for key in self.keys:
            assert hash_of(self.r, key) == hash_of(self.ref, key), key
            assert encoding(self.r, key) == encoding(self.ref, key), key
            if encoding(self.ref, key) == b"listpack":
                assert self.r.execute_command("HKEYS", key) == self.ref.execute_command(
                    "HKEYS", key
                )


def run_stream(r: redis.Redis, ref: redis.Redis, seed: int, keys: list[bytes], steps: int) -> None:
    stream = Stream(r, ref, seed, keys)
    for step in range(steps):
        cmd = stream.command()
        try:
            stream.step(cmd)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed} step {step}: {cmd!r}") from exc
    stream.final_check()


@pytest.mark.parametrize("seed", range(6))
def test_random_hash_streams(r, ref, seed: int) -> None:
    run_stream(r, ref, seed, SAME_SHARD + OTHER_SHARDS, 300)


@pytest.fixture
def small_limits(r, ref) -> Iterator[None]:
    for client in (r, ref):
        client.config_set("hash-max-listpack-entries", 6)
        client.config_set("hash-max-listpack-value", 8)
    yield
    for client in (r, ref):
        client.config_set("hash-max-listpack-entries", 512)
        client.config_set("hash-max-listpack-value", 64)


@pytest.mark.parametrize("seed", range(4))
def test_random_hash_streams_small_listpacks(r, ref, small_limits, seed: int) -> None:
    run_stream(r, ref, 1000 + seed, SAME_SHARD, 300)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 120))
def test_random_hash_streams_long(r, ref, seed: int) -> None:
    run_stream(r, ref, seed, SAME_SHARD + OTHER_SHARDS, 2000)


def test_big_hash_conversion_and_scan(r, ref) -> None:
    r, ref = raw_client(r), raw_client(ref)
    flat = [x for i in range(600) for x in (b"field:%d" % i, b"%d" % i)]
    for client in (r, ref):
        client.execute_command("HSET", "big", *flat[:1024])
    assert encoding(r, b"big") == encoding(ref, b"big") == b"listpack"
    assert r.execute_command("HGETALL", "big") == ref.execute_command("HGETALL", "big")
    for client in (r, ref):
        client.execute_command("HSET", "big", *flat[1024:])
        client.execute_command("HDEL", "big", *[b"field:%d" % i for i in range(500)])
    assert encoding(r, b"big") == encoding(ref, b"big") == b"hashtable"
    cmd = [b"HSCAN", b"big", b"0", b"COUNT", b"7", b"MATCH", b"*5*"]
    assert Stream.finish_scan(r, cmd, run(r, cmd)) == Stream.finish_scan(ref, cmd, run(ref, cmd))


@pytest.mark.parametrize("protocol", [b"2", b"3"])
def test_raw_reply_bytes(atoll, reference, r, ref, protocol: bytes) -> None:
    a, b = RawConnection(atoll.port), RawConnection(reference.port)
    try:
        a.call(b"HELLO", protocol)
        b.call(b"HELLO", protocol)
        script = [
            [b"HSET", b"h", b"z", b"1", b"a", b"two", b"n", b"-5"],
            [b"HSET", b"one", b"only", b"v"],
            [b"HGETALL", b"h"],
            [b"HGETALL", b"none"],
            [b"HKEYS", b"h"],
            [b"HVALS", b"h"],
            [b"HKEYS", b"none"],
            [b"HMGET", b"h", b"a", b"nope"],
            [b"HGET", b"h", b"nope"],
            [b"HRANDFIELD", b"none"],
            [b"HRANDFIELD", b"none", b"3"],
            [b"HRANDFIELD", b"none", b"3", b"WITHVALUES"],
            [b"HRANDFIELD", b"h", b"0"],
            [b"HRANDFIELD", b"h", b"10", b"WITHVALUES"],
            [b"HRANDFIELD", b"h", b"3"],
            [b"HRANDFIELD", b"one", b"-2", b"WITHVALUES"],
            [b"HRANDFIELD", b"one", b"1"],
            [b"HRANDFIELD", b"one"],
            [b"HSCAN", b"h", b"0"],
            [b"HSCAN", b"none", b"0"],
            [b"HINCRBYFLOAT", b"h", b"f", b"1.25"],
            [b"HINCRBY", b"h", b"n", b"6"],
            [b"HSETNX", b"h", b"a", b"x"],
            [b"HMSET", b"h", b"m", b"1"],
            [b"HSTRLEN", b"h", b"a"],
            [b"HDEL", b"one", b"only"],
            [b"EXISTS", b"one"],
            [b"OBJECT", b"ENCODING", b"h"],
        ]
        for cmd in script:
            assert a.call(*cmd) == b.call(*cmd), cmd
    finally:
        a.close()
        b.close()


def test_command_info_matches(r, ref) -> None:
    r, ref = raw_client(r), raw_client(ref)
    names = [
        "hset",
        "hsetnx",
        "hget",
        "hmget",
        "hmset",
        "hdel",
        "hlen",
        "hstrlen",
        "hexists",
        "hkeys",
        "hvals",
        "hgetall",
        "hincrby",
        "hincrbyfloat",
        "hrandfield",
        "hscan",
    ]
    for name in names:
        got = r.execute_command("COMMAND", "INFO", name)[0]
        expected = ref.execute_command("COMMAND", "INFO", name)[0]
        mine = got[:2] + [sorted(got[2])] + got[3:6] + [sorted(got[6])]
        theirs = expected[:2] + [sorted(expected[2])] + expected[3:6] + [sorted(expected[6])]
        assert mine == theirs, name
