"""The same seeded random command streams go to Atoll and to a real redis-server 7.0; every
reply (values and error texts) must be identical.  Bounded in CI; `-m slow` runs longer."""

from __future__ import annotations

import random
from typing import Any

import pytest
import redis

KEYS = [b"a", b"b", b"c", b"{t}x", b"{t}y", b"num", b"f", b"\xff\x00bin", b"long:key:" + b"z" * 40]
VALUES = [b"", b"0", b"1", b"-1", b"12", b"abc", b"hello world", b"3.5", b"1e3", b" 1",
          b"9223372036854775807", b"-9223372036854775808", b"18446744073709551616", b"x" * 50,
          b"+1", b"01", b"-0", b"inf", b"nan", b"0x10", b"1.0", b"\x00\xff"]
INTS = [b"0", b"1", b"-1", b"5", b"100", b"-100", b"9223372036854775807", b"-9223372036854775808",
        b"abc", b"", b"1.5", b"99999999999999999999"]
FLOATS = [b"0.1", b"-0.1", b"1.5", b"1e5", b"-3.7e10", b"17", b"inf", b"-inf", b"nan", b"abc",
          b"1.23456789012345678", b"5.0e3", b"0x10", b" 1", b"1e308", b"-1e308", b"1e-320"]
BIG_TTL = [b"1000", b"5000", b"100000"]


def pick(rng: random.Random, items: list[bytes]) -> bytes:
    return rng.choice(items)


def gen_set(rng: random.Random) -> list[bytes]:
    cmd = [b"SET", pick(rng, KEYS), pick(rng, VALUES)]
    for opt in rng.sample([b"NX", b"XX", b"GET", b"EX", b"PX", b"EXAT", b"KEEPTTL", b"bogus"],
                          rng.randint(0, 2)):
        cmd.append(opt)
        if opt in (b"EX", b"PX"):
            cmd.append(rng.choice(BIG_TTL + [b"0", b"-5", b"abc"]))
        elif opt == b"EXAT":
            cmd.append(rng.choice([b"99999999999", b"1", b"0"]))
    return cmd


def gen_command(rng: random.Random) -> list[bytes]:
    k = lambda: pick(rng, KEYS)  # noqa: E731
    v = lambda: pick(rng, VALUES)  # noqa: E731
    i = lambda: pick(rng, INTS)  # noqa: E731
    choices: list[Any] = [
        gen_set,
        lambda r: [b"GET", k()],
        lambda r: [b"SETNX", k(), v()],
        lambda r: [b"SETEX", k(), rng.choice(BIG_TTL + [b"0", b"-1", b"x"]), v()],
        lambda r: [b"PSETEX", k(), rng.choice(BIG_TTL + [b"0"]), v()],
        lambda r: [b"GETSET", k(), v()],
        lambda r: [b"GETDEL", k()],
        lambda r: [b"GETEX", k()] + rng.choice([[], [b"PERSIST"], [b"EX", b"100"], [b"PX", b"0"],
                                                [b"EXAT", b"1"], [b"BAD"]]),
        lambda r: [b"MGET"] + [k() for _ in range(rng.randint(1, 4))],
        lambda r: [b"MSET"] + [x for _ in range(rng.randint(1, 3)) for x in (k(), v())],
        lambda r: [b"MSETNX"] + [x for _ in range(rng.randint(1, 3)) for x in (k(), v())],
        lambda r: [b"APPEND", k(), v()],
        lambda r: [b"STRLEN", k()],
        lambda r: [b"INCR", k()],
        lambda r: [b"DECR", k()],
        lambda r: [b"INCRBY", k(), i()],
        lambda r: [b"DECRBY", k(), i()],
        lambda r: [b"INCRBYFLOAT", k(), pick(rng, FLOATS)],
        lambda r: [b"GETRANGE", k(), i(), i()],
        lambda r: [b"SUBSTR", k(), rng.choice([b"0", b"-3", b"2"]), rng.choice([b"-1", b"5", b"-10"])],
        lambda r: [b"SETRANGE", k(), rng.choice([b"0", b"3", b"-1", b"20", b"x"]), v()],
        lambda r: [b"LCS", k(), k()] + rng.choice([[], [b"LEN"], [b"IDX"], [b"IDX", b"WITHMATCHLEN"],
                                                   [b"IDX", b"MINMATCHLEN", b"2"], [b"LEN", b"IDX"]]),
        lambda r: [b"DEL"] + [k() for _ in range(rng.randint(1, 3))],
        lambda r: [b"UNLINK", k()],
        lambda r: [b"EXISTS"] + [k() for _ in range(rng.randint(1, 3))],
        lambda r: [b"TOUCH", k(), k()],
        lambda r: [b"TYPE", k()],
        lambda r: [b"RENAME", k(), k()],
        lambda r: [b"RENAMENX", k(), k()],
        lambda r: [b"COPY", k(), k()] + rng.choice([[], [b"REPLACE"], [b"DB", b"1"], [b"DB", b"99"], [b"X"]]),
        lambda r: [b"MOVE", k(), rng.choice([b"0", b"1", b"16", b"x"])],
        lambda r: [rng.choice([b"EXPIRE", b"PEXPIRE"]), k(), rng.choice(BIG_TTL + [b"-1", b"x"])]
        + rng.sample([b"NX", b"XX", b"GT", b"LT", b"ZZ"], rng.randint(0, 2)),
        lambda r: [rng.choice([b"EXPIREAT", b"PEXPIREAT"]), k(), rng.choice([b"99999999999", b"1"])],
        lambda r: [b"TTL", k()],
        lambda r: [b"EXPIRETIME", k()],
        lambda r: [b"PERSIST", k()],
        lambda r: [b"DBSIZE"],
        lambda r: [b"ECHO", v()],
        lambda r: [b"PING"],
        lambda r: [rng.choice([b"GET", b"SET", b"INCR", b"MSET", b"EXPIRE"])],  # arity errors
        lambda r: [b"NOSUCHCOMMAND", v()],
    ]
    return rng.choice(choices)(rng)


def run(client: redis.Redis, cmd: list[bytes]) -> Any:
    try:
        return client.execute_command(*cmd)
    except redis.ResponseError as exc:
        return ("error", str(exc))


def normalise(cmd: list[bytes], reply: Any) -> Any:
    name = cmd[0].upper()
    if name in (b"TTL",) and isinstance(reply, int) and reply > 0:
        return "ttl>0"  # the two servers run at slightly different moments
    if name == b"EXPIRETIME" and isinstance(reply, int) and reply > 0:
        return "abs>0"
    return reply


@pytest.mark.parametrize("seed", range(6))
def test_random_string_and_key_streams(r, ref, seed: int) -> None:
    rng = random.Random(seed)
    for step in range(400):
        cmd = gen_command(rng)
        expected = normalise(cmd, run(ref, cmd))
        got = normalise(cmd, run(r, cmd))
        assert got == expected, f"seed {seed} step {step}: {cmd!r}"
    keys_ref = sorted(ref.keys("*"))
    assert sorted(r.keys("*")) == keys_ref
    for key in keys_ref:
        assert r.get(key) == ref.get(key)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 140))
def test_random_streams_long(r, ref, seed: int) -> None:
    test_random_string_and_key_streams(r, ref, seed)
