"""Bitmap commands: the same seeded random streams go to Atoll and to a real redis-server 7.0;
every reply (values and error texts) and the final strings must be identical."""

from __future__ import annotations

import random
from typing import Any

import pytest
import redis

# "{B}" keys share a slot; the others spread over both shards (BITOP crosses them).
KEYS = [b"{B}a", b"{B}b", b"{B}c", b"p", b"q", b"r", b"{B}list", b"list"]
STRING_KEYS = KEYS[:6]
VALUES = [b"", b"a", b"foobar", b"\xff", b"\x00", b"\xff\xf0\x00", b"\x00\x00\x01", b"123",
          b"-1", b"\xaa" * 40, b"\xff" * 37 + b"\x7f", b"\x00" * 50 + b"\x10"]  # fmt: skip
OFFSETS = [b"0", b"1", b"7", b"8", b"9", b"15", b"16", b"23", b"31", b"63", b"64", b"100",
           b"200", b"333", b"-1", b"abc", b"", b"1.5", b"+1", b"01", b"#1", b"4294967296",
           b"9223372036854775807", b"-9223372036854775808"]  # fmt: skip
INDEXES = [b"0", b"1", b"2", b"-1", b"-2", b"3", b"-3", b"5", b"7", b"8", b"-8", b"9", b"15",
           b"16", b"17", b"-17", b"40", b"100", b"-100", b"300", b"-300",
           b"9223372036854775807", b"-9223372036854775808", b"x", b"", b"1.0"]  # fmt: skip
UNITS = [b"BIT", b"BYTE", b"bit", b"byte", b"Bit", b"BITS", b"", b"bit\x00x"]
TYPES = [b"i1", b"i2", b"i5", b"i8", b"i13", b"i16", b"i31", b"i32", b"i63", b"i64",
         b"u1", b"u2", b"u7", b"u8", b"u16", b"u31", b"u32", b"u62", b"u63"]  # fmt: skip
BAD_TYPES = [b"u64", b"i65", b"i0", b"u0", b"x8", b"I8", b"U8", b"", b"i", b"i08", b"i-1",
             b"i+8", b"i8\x00z", b"u 8"]  # fmt: skip
FIELD_OFFSETS = [b"0", b"1", b"3", b"5", b"7", b"8", b"13", b"17", b"31", b"32", b"60", b"64",
                 b"100", b"#0", b"#1", b"#2", b"#3", b"#7", b"-1", b"#-1", b"x", b"#", b"##1"]  # fmt: skip
NUMBERS = [b"0", b"1", b"-1", b"2", b"-2", b"3", b"7", b"-8", b"100", b"-100", b"127", b"128",
           b"-128", b"-129", b"255", b"256", b"1000", b"65535", b"-32768", b"2147483647",
           b"-2147483648", b"4294967295", b"4611686018427387903", b"-4611686018427387904",
           b"9223372036854775807", b"-9223372036854775808", b"-9223372036854775700",
           b"9223372036854775808", b"x", b"", b"1.5"]  # fmt: skip
OVERFLOWS = [b"WRAP", b"SAT", b"FAIL", b"wrap", b"sat", b"fail", b"BAD", b""]


def gen_bitfield(rng: random.Random, key: bytes, read_only: bool) -> list[bytes]:
    cmd = [b"BITFIELD_RO" if read_only else b"BITFIELD", key]
    for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4, 6])):
        kind = rng.random()
        ftype = rng.choice(TYPES) if rng.random() < 0.93 else rng.choice(BAD_TYPES)
        offset = rng.choice(FIELD_OFFSETS) if rng.random() < 0.97 else rng.choice(OFFSETS)
        if kind < 0.35 or (read_only and kind < 0.7):
            cmd += [rng.choice([b"GET", b"get"]), ftype, offset]
        elif kind < 0.6:
            cmd += [rng.choice([b"SET", b"set"]), ftype, offset, rng.choice(NUMBERS)]
        elif kind < 0.85:
            cmd += [rng.choice([b"INCRBY", b"incrby"]), ftype, offset, rng.choice(NUMBERS)]
        elif kind < 0.97:
            cmd += [rng.choice([b"OVERFLOW", b"overflow"]), rng.choice(OVERFLOWS)]
        else:
            cmd += [rng.choice([b"GETX", b"OVERFLOW", b"GET", b"SET", b"INCRBY"])]
    if rng.random() < 0.05:
        cmd.append(rng.choice([b"GET", b"i8", b"SET"]))
    return cmd


def gen_range(rng: random.Random, base: list[bytes], count: int) -> list[bytes]:
    return base + [rng.choice(INDEXES) for _ in range(count)]


def gen_bitop(rng: random.Random) -> list[bytes]:
    op = rng.choice([b"AND", b"OR", b"XOR", b"NOT", b"and", b"Or", b"xor", b"not", b"NAND"])
    sources = [rng.choice(KEYS) for _ in range(rng.choice([1, 1, 2, 2, 3, 4]))]
    return [b"BITOP", op, rng.choice(KEYS[:6]), *sources]


def gen_command(rng: random.Random) -> list[bytes]:
    key = rng.choice(STRING_KEYS) if rng.random() < 0.9 else rng.choice(KEYS)
    choices: list[Any] = [
        lambda: [b"SETBIT", key, rng.choice(OFFSETS[:14]), rng.choice([b"0", b"1"])],
        lambda: [b"SETBIT", key, rng.choice(OFFSETS[:14]), rng.choice([b"0", b"1"])],
        lambda: [b"SETBIT", key, rng.choice(OFFSETS), rng.choice([b"0", b"1", b"2", b"-1", b"x"])],
        lambda: [b"GETBIT", key, rng.choice(OFFSETS)],
        lambda: [b"GETBIT", key, rng.choice(OFFSETS[:14])],
        lambda: [b"SET", key, rng.choice(VALUES)],
        lambda: [b"APPEND", key, rng.choice(VALUES)],
        lambda: [b"BITCOUNT", key],
        lambda: gen_range(rng, [b"BITCOUNT", key], 2),
        lambda: gen_range(rng, [b"BITCOUNT", key], 2) + [rng.choice(UNITS)],
        lambda: gen_range(rng, [b"BITCOUNT", key], rng.choice([1, 4])),
        lambda: [b"BITPOS", key, rng.choice([b"0", b"1"])],
        lambda: gen_range(rng, [b"BITPOS", key, rng.choice([b"0", b"1"])], 1),
        lambda: gen_range(rng, [b"BITPOS", key, rng.choice([b"0", b"1"])], 2),
        lambda: gen_range(rng, [b"BITPOS", key, rng.choice([b"0", b"1"])], 2) + [rng.choice(UNITS)],
        lambda: gen_range(rng, [b"BITPOS", key, rng.choice([b"0", b"1"])], 2) + [b"BIT"],
        lambda: [b"BITPOS", key, rng.choice([b"2", b"-1", b"x", b"", b"01"]), b"0"],
        lambda: gen_range(rng, [b"BITPOS", key, b"1"], 4),
        lambda: gen_bitop(rng),
        lambda: gen_bitop(rng),
        lambda: gen_bitfield(rng, key, False),
        lambda: gen_bitfield(rng, key, False),
        lambda: gen_bitfield(rng, key, False),
        lambda: gen_bitfield(rng, key, True),
        lambda: [b"RPUSH", rng.choice([b"{B}list", b"list"]), b"x"],
        lambda: [b"DEL", key],
        lambda: [b"GET", key],
        lambda: [b"STRLEN", key],
    ]
    return rng.choice(choices)()


def run(client: redis.Redis, cmd: list[bytes]) -> Any:
    try:
        return client.execute_command(*cmd)
    except redis.ResponseError as exc:
        return ("error", type(exc).__name__, str(exc))


def assert_same_strings(r: redis.Redis, ref: redis.Redis) -> None:
    keys = sorted(ref.keys("*"))
    assert sorted(r.keys("*")) == keys
    for key in keys:
        assert r.type(key) == ref.type(key), key
        if ref.type(key) == b"string":
            assert r.get(key) == ref.get(key), key


@pytest.mark.parametrize("seed", range(10))
def test_random_bitmap_streams(r: redis.Redis, ref: redis.Redis, seed: int) -> None:
    rng = random.Random(seed)
    for step in range(500):
        cmd = gen_command(rng)
        expected = run(ref, cmd)
        got = run(r, cmd)
        assert got == expected, f"seed {seed} step {step}: {cmd!r}"
    assert_same_strings(r, ref)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 130))
def test_random_bitmap_streams_long(r: redis.Redis, ref: redis.Redis, seed: int) -> None:
    rng = random.Random(seed)
    for step in range(3000):
        cmd = gen_command(rng)
        assert run(r, cmd) == run(ref, cmd), f"seed {seed} step {step}: {cmd!r}"
    assert_same_strings(r, ref)


def test_bitfield_overflow_arithmetic(r: redis.Redis, ref: redis.Redis) -> None:
    """Every width and overflow mode, values around each field's limits."""
    rng = random.Random(11)
    for bits in range(1, 65):
        kinds = [b"i%d" % bits] + ([b"u%d" % bits] if bits < 64 else [])
        for kind in kinds:
            signed = kind[:1] == b"i"
            top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
            bottom = -top - 1 if signed else 0
            edges = [top, top - 1, top + 1, bottom, bottom + 1, bottom - 1, 0, 1, -1,
                     (1 << 63) - 1, -(1 << 63), -(1 << 63) + 5, (1 << 63) - 5]  # fmt: skip
            for _ in range(12):
                start = rng.choice(edges)
                start = max(min(start, (1 << 63) - 1), -(1 << 63))
                incr = max(min(rng.choice(edges + [rng.randint(-top, top)]), (1 << 63) - 1),
                           -(1 << 63))  # fmt: skip
                offset = b"%d" % rng.randrange(0, 20)
                cmd = [b"BITFIELD", b"{B}f", b"OVERFLOW", rng.choice(OVERFLOWS[:3]), b"SET",
                       kind, offset, b"%d" % start, b"INCRBY", kind, offset, b"%d" % incr,
                       b"GET", kind, offset]  # fmt: skip
                assert run(r, cmd) == run(ref, cmd), cmd
    assert r.get(b"{B}f") == ref.get(b"{B}f")


def test_large_bitmaps(r: redis.Redis, ref: redis.Redis) -> None:
    """Counts and searches over a 64 KB string: ranges in bytes and bits, both ends."""
    rng = random.Random(5)
    blob = bytearray(rng.randbytes(1 << 16))
    blob[1000:30000] = b"\x00" * 29000
    blob[40000:60000] = b"\xff" * 20000
    for client in (r, ref):
        client.set(b"{B}big", bytes(blob))
        client.set(b"{B}zeros", b"\x00" * 5000 + b"\x02")
        client.set(b"{B}ones", b"\xff" * 5000)
    size = len(blob)
    for _ in range(150):
        a = rng.randrange(-size * 9, size * 9)
        b = rng.randrange(-size * 9, size * 9)
        key = rng.choice([b"{B}big", b"{B}zeros", b"{B}ones"])
        for cmd in (
            [b"BITCOUNT", key, b"%d" % (a // 8), b"%d" % (b // 8)],
            [b"BITCOUNT", key, b"%d" % a, b"%d" % b, b"BIT"],
            [b"BITPOS", key, rng.choice([b"0", b"1"]), b"%d" % (a // 8)],
            [b"BITPOS", key, rng.choice([b"0", b"1"]), b"%d" % (a // 8), b"%d" % (b // 8)],
            [b"BITPOS", key, rng.choice([b"0", b"1"]), b"%d" % a, b"%d" % b, b"BIT"],
            [b"BITFIELD", key, b"GET", rng.choice(TYPES), b"%d" % abs(a)],
        ):
            assert run(r, cmd) == run(ref, cmd), cmd
    for cmd in (
        [b"BITCOUNT", b"{B}big"], [b"BITPOS", b"{B}ones", b"0"], [b"BITPOS", b"{B}zeros", b"1"],
        [b"BITPOS", b"{B}ones", b"0", b"0", b"-1"], [b"BITPOS", b"{B}ones", b"1", b"-1"],
        [b"BITOP", b"AND", b"{B}d", b"{B}big", b"{B}zeros", b"{B}ones"],
        [b"BITOP", b"OR", b"{B}d", b"{B}big", b"{B}zeros"], [b"BITOP", b"NOT", b"{B}d", b"{B}big"],
        [b"BITOP", b"XOR", b"{B}d", b"{B}big", b"{B}ones", b"p"],
        [b"SETBIT", b"{B}big", b"600000", b"1"], [b"SETBIT", b"{B}big", b"100", b"0"],
    ):  # fmt: skip
        assert run(r, cmd) == run(ref, cmd), cmd
        assert r.get(b"{B}d") == ref.get(b"{B}d")
    assert r.get(b"{B}big") == ref.get(b"{B}big")


def test_resp3_bitfield_null(atoll: Any, reference: Any) -> None:
    """OVERFLOW FAIL answers a null, which RESP3 sends as ``_``."""
    ours = atoll.client(protocol=3)
    theirs = reference.client(protocol=3)
    try:
        for client in (ours, theirs):
            client.delete(b"{B}n")
        cmd = [b"BITFIELD", b"{B}n", b"OVERFLOW", b"FAIL", b"INCRBY", b"u2", b"0", b"9", b"GET",
               b"u2", b"0"]  # fmt: skip
        assert ours.execute_command(*cmd) == theirs.execute_command(*cmd) == [None, 0]
    finally:
        ours.close()
        theirs.close()
