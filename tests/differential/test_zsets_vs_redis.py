"""Sorted set commands: the same seeded random streams go to Atoll and to a real redis-server
7.0; every reply (values and error texts) must be identical, and so must the keys at the end
(members, scores, encodings).  RESP3 shapes are compared byte for byte over raw sockets.

Replies that Redis itself leaves to chance are compared by what is fixed about them:
ZRANDMEMBER by length and membership, ZSCAN of a skiplist by the pairs a full scan returns,
lex ranges over mixed scores only on listpack sets (a skiplist answers those depending on
its random node levels).
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator
from typing import Any

import hiredis
import pytest
import redis

T = b"{z}"
ZKEYS = [T + b"a", T + b"b", T + b"c", T + b"d"]
LEXKEYS = [T + b"l1", T + b"l2"]  # scores always 0: lex ranges are well defined there
STRING_KEY = T + b"str"
SET_KEY = T + b"set"  # a plain set: ZUNION and friends read its members with score 1
MISSING = T + b"missing"
SINGLE = ZKEYS + [STRING_KEY, MISSING, b"plain"]
SOURCES = ZKEYS + [STRING_KEY, MISSING, LEXKEYS[0], SET_KEY, SET_KEY]
MEMBERS = [
    b"a",
    b"b",
    b"c",
    b"d",
    b"e",
    b"",
    b"1",
    b"-1",
    b"10",
    b"\x00",
    b"\xff",
    b"aa",
    b"ab",
    b"b\x00",
    b"x" * 70,
    b"f",
    b"g",
    b"h",
] + [b"m%d" % i for i in range(12)]
SCORES = [
    b"0",
    b"1",
    b"-1",
    b"2",
    b"1.5",
    b"-0",
    b"+inf",
    b"-inf",
    b"inf",
    b"1e308",
    b"3",
    b"0.1",
    b"100",
    b"-2.5",
    b"1e17",
    b"4503599627370497",
    b"5",
    b"-0.0",
    b"0x10",
    b".5",
]
BAD_SCORES = [b"nan", b"abc", b"", b" 1", b"1e400", b"1e-320", b"1e", b"-nan", b"1 "]
SCORE_BOUNDS = [
    b"-inf",
    b"+inf",
    b"(1",
    b"1",
    b"(-inf",
    b"(+inf",
    b"0",
    b"-0",
    b"(0",
    b"1.5",
    b"(2",
    b"3",
    b"inf",
    b"(inf",
    b"100",
    b"-1",
    b"(-1",
]
BAD_BOUNDS = [b"abc", b"(", b"", b" 2", b"nan", b"(nan", b"1e400", b"((1", b"2 "]
LEX_BOUNDS = [
    b"-",
    b"+",
    b"[a",
    b"(a",
    b"[b",
    b"(c",
    b"[",
    b"(",
    b"[aa",
    b"(ab",
    b"[\xff",
    b"[x",
    b"(b",
    b"[e",
    b"(\x00",
]
BAD_LEX = [b"a", b"+x", b"-a", b"", b"1"]
RANKS = [b"0", b"1", b"-1", b"2", b"-2", b"3", b"10", b"-10", b"100", b"-100"]
BAD_INTS = [b"abc", b"1.5", b"", b"9223372036854775808", b" 1"]
BIG_INTS = [
    b"9223372036854775807",
    b"-9223372036854775808",
    b"4611686018427387904",
    b"-9223372036854775807",
]
WEIGHTS = [b"1", b"2", b"-1", b"0", b"0.5", b"inf", b"-inf", b"3"]


class Gen:
    """Random arguments, mostly valid, sometimes not."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(
        self, items: list[bytes], bad: list[bytes] | None = None, p_bad: float = 0.04
    ) -> bytes:
        if bad and self.rng.random() < p_bad:
            return self.rng.choice(bad)
        return self.rng.choice(items)

    def key(self) -> bytes:
        return self.rng.choice(SINGLE)

    def zkey(self) -> bytes:
        return self.rng.choice(ZKEYS) if self.rng.random() < 0.9 else self.key()

    def member(self) -> bytes:
        return self.rng.choice(MEMBERS)

    def score(self) -> bytes:
        return self.pick(SCORES, BAD_SCORES)

    def rank(self) -> bytes:
        return self.pick(RANKS, BAD_INTS + BIG_INTS)

    def bound(self) -> bytes:
        return self.pick(SCORE_BOUNDS, BAD_BOUNDS)

    def lex(self) -> bytes:
        return self.pick(LEX_BOUNDS, BAD_LEX)

    def maybe(self, p: float = 0.5) -> bool:
        return self.rng.random() < p

    def limit(self) -> list[bytes]:
        if not self.maybe(0.35):
            return []
        offset = self.pick([b"0", b"1", b"2", b"-1", b"5"], BAD_INTS)
        count = self.pick([b"1", b"2", b"-1", b"0", b"3", b"10"], BAD_INTS)
        return [b"LIMIT", offset, count]


def gen_zadd(g: Gen) -> list[bytes]:
    cmd = [b"ZADD", g.zkey()]
    options = [b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR", b"nx", b"incr"]
    cmd += g.rng.sample(options, g.rng.choice([0, 0, 0, 1, 1, 2]))
    for _ in range(g.rng.choice([1, 1, 1, 2, 3, 4, 6])):
        cmd += [g.score(), g.member()]
    if g.maybe(0.03):
        cmd.pop()  # an odd number of arguments
    return cmd


def gen_lex_add(g: Gen) -> list[bytes]:
    cmd = [b"ZADD", g.rng.choice(LEXKEYS)]
    for _ in range(g.rng.randint(1, 4)):
        cmd += [b"0", g.member()]
    return cmd


def gen_range(g: Gen, key: bytes) -> list[bytes]:
    kind = g.rng.choice([b"", b"BYSCORE", b"BYLEX"])
    if kind == b"BYSCORE":
        low, high = g.bound(), g.bound()
    elif kind == b"BYLEX":
        low, high = g.lex(), g.lex()
    else:
        low, high = g.rank(), g.rank()
    options = [kind] if kind else []
    if g.maybe(0.4):
        options.append(b"REV")
    if g.maybe(0.05 if kind == b"BYLEX" else 0.4):
        options.append(b"WITHSCORES")
    options += g.limit() if kind else []
    if g.maybe(0.05):
        options.append(g.rng.choice([b"BYSCORE", b"REV", b"bogus", b"LIMIT"]))
    g.rng.shuffle(options) if g.maybe(0.2) else None
    return [key, low, high, *options]


def gen_setop(g: Gen, name: bytes, store: bool) -> list[bytes]:
    count = g.rng.randint(1, 3)
    keys = [g.rng.choice(SOURCES) for _ in range(count)]
    numkeys = b"%d" % count
    if g.maybe(0.04):
        numkeys = g.rng.choice([b"0", b"-1", b"abc", b"5"])
    cmd = [name] + ([g.rng.choice(ZKEYS + [MISSING, STRING_KEY])] if store else []) + [numkeys]
    cmd += keys
    weighted = name not in (b"ZDIFF", b"ZDIFFSTORE", b"ZINTERCARD")
    if weighted and g.maybe(0.4):
        cmd += [b"WEIGHTS"] + [g.pick(WEIGHTS, [b"abc", b"nan", b""]) for _ in range(count)]
    if weighted and g.maybe(0.4):
        cmd += [b"AGGREGATE", g.pick([b"SUM", b"MIN", b"MAX", b"min"], [b"AVG"])]
    if not store and name != b"ZINTERCARD" and g.maybe(0.5):
        cmd.append(b"WITHSCORES")
    if name == b"ZINTERCARD" and g.maybe(0.5):
        cmd += [b"LIMIT", g.pick([b"0", b"1", b"2"], [b"-1", b"abc"])]
    return cmd


def gen_command(g: Gen) -> list[bytes]:  # noqa: C901 - one table of generators
    rng = g.rng
    k, m = g.zkey, g.member
    choices: list[tuple[int, Callable[[], list[bytes]]]] = [
        (12, lambda: gen_zadd(g)),
        (3, lambda: gen_lex_add(g)),
        (3, lambda: [b"ZINCRBY", k(), g.score(), m()]),
        (1, lambda: [b"ZINCRBY", k(), rng.choice([b"NX", b"incr", b"CH"]), m()]),
        (4, lambda: [b"ZREM", k()] + [m() for _ in range(rng.randint(1, 3))]),
        (2, lambda: [b"ZCARD", g.key()]),
        (3, lambda: [b"ZSCORE", g.key(), m()]),
        (2, lambda: [b"ZMSCORE", g.key()] + [m() for _ in range(rng.randint(1, 3))]),
        (2, lambda: [rng.choice([b"ZRANK", b"ZREVRANK"]), g.key(), m()]),
        (3, lambda: [b"ZCOUNT", g.key(), g.bound(), g.bound()]),
        (2, lambda: [b"ZLEXCOUNT", rng.choice(LEXKEYS + [k()]), g.lex(), g.lex()]),
        (8, lambda: [b"ZRANGE", *gen_range(g, rng.choice(ZKEYS + LEXKEYS + [STRING_KEY]))]),
        (3, lambda: [b"ZRANGESTORE", k(), *gen_range(g, rng.choice(ZKEYS + LEXKEYS))]),
        (
            3,
            lambda: (
                [rng.choice([b"ZRANGEBYSCORE", b"ZREVRANGEBYSCORE"]), g.key(), g.bound(), g.bound()]
                + ([b"WITHSCORES"] if g.maybe() else [])
                + g.limit()
            ),
        ),
        (
            3,
            lambda: (
                [
                    rng.choice([b"ZRANGEBYLEX", b"ZREVRANGEBYLEX"]),
                    rng.choice(LEXKEYS + [k()]),
                    g.lex(),
                    g.lex(),
                ]
                + g.limit()
                + ([b"WITHSCORES"] if g.maybe(0.05) else [])
            ),
        ),
        (
            2,
            lambda: (
                [b"ZREVRANGE", g.key(), g.rank(), g.rank()]
                + ([b"WITHSCORES"] if g.maybe() else [])
                + ([b"LIMIT", b"0", b"1"] if g.maybe(0.05) else [])
            ),
        ),
        (2, lambda: [b"ZREMRANGEBYRANK", k(), g.rank(), g.rank()]),
        (2, lambda: [b"ZREMRANGEBYSCORE", k(), g.bound(), g.bound()]),
        (2, lambda: [b"ZREMRANGEBYLEX", rng.choice(LEXKEYS + [k()]), g.lex(), g.lex()]),
        (
            3,
            lambda: (
                [rng.choice([b"ZPOPMIN", b"ZPOPMAX"]), g.key()]
                + rng.choice(
                    [[], [], [b"1"], [b"2"], [b"0"], [b"10"], [b"-1"], [b"x"], [b"1", b"2"]]
                )
            ),
        ),
        (2, lambda: [b"ZMPOP", *gen_zmpop_args(g)]),
        (
            3,
            lambda: (
                [b"ZRANDMEMBER", g.key()]
                + rng.choice(
                    [
                        [],
                        [b"1"],
                        [b"3"],
                        [b"-3"],
                        [b"0"],
                        [b"100"],
                        [b"-1"],
                        [b"2", b"WITHSCORES"],
                        [b"-5", b"WITHSCORES"],
                        [b"100", b"withscores"],
                        [b"abc"],
                        [b"1", b"bogus"],
                        [b"-9223372036854775808"],
                        [b"4611686018427387904", b"WITHSCORES"],
                        [b"1", b"WITHSCORES", b"x"],
                    ]
                )
            ),
        ),
        (2, lambda: gen_setop(g, b"ZUNION", False)),
        (2, lambda: gen_setop(g, b"ZINTER", False)),
        (2, lambda: gen_setop(g, b"ZDIFF", False)),
        (2, lambda: gen_setop(g, b"ZUNIONSTORE", True)),
        (2, lambda: gen_setop(g, b"ZINTERSTORE", True)),
        (2, lambda: gen_setop(g, b"ZDIFFSTORE", True)),
        (2, lambda: gen_setop(g, b"ZINTERCARD", False)),
        (
            2,
            lambda: (
                [b"ZSCAN", g.key(), rng.choice([b"0", b"0", b"0", b"", b"abc", b" 0", b"-"])]
                + rng.choice(
                    [
                        [],
                        [b"COUNT", b"2"],
                        [b"MATCH", b"*a*"],
                        [b"MATCH", b"?"],
                        [b"COUNT", b"0"],
                        [b"MATCH"],
                        [b"COUNT", b"x"],
                        [b"MATCH", b"*"],
                    ]
                )
            ),
        ),
        (1, lambda: [b"OBJECT", b"ENCODING", g.key()]),
        (1, lambda: [b"TYPE", g.key()]),
        (1, lambda: [b"DEL", k()]),
        (1, lambda: [b"SET", STRING_KEY, b"v"]),
        (1, lambda: [b"SADD", SET_KEY, m(), m()]),
        (
            1,
            lambda: [
                rng.choice(
                    [
                        b"ZADD",
                        b"ZINCRBY",
                        b"ZRANGE",
                        b"ZSCORE",
                        b"ZCOUNT",
                        b"ZPOPMIN",
                        b"ZUNIONSTORE",
                        b"ZMPOP",
                        b"ZRANGESTORE",
                    ]
                )
            ],
        ),
    ]
    weights = [w for w, _ in choices]
    return rng.choices([c for _, c in choices], weights=weights)[0]()


def gen_zmpop_args(g: Gen) -> list[bytes]:
    count = g.rng.randint(1, 3)
    numkeys = b"%d" % count if not g.maybe(0.05) else g.rng.choice([b"0", b"-1", b"x", b"9"])
    args = [numkeys] + [g.rng.choice(SOURCES) for _ in range(count)]
    args.append(g.pick([b"MIN", b"MAX", b"min"], [b"MID"]))
    if g.maybe(0.5):
        args += [b"COUNT", g.pick([b"1", b"2", b"10"], [b"0", b"-1", b"x"])]
    if g.maybe(0.03):
        args += [b"COUNT", b"1"]
    return args


# --- running and comparing ----------------------------------------------------------------


def raw_client(client: redis.Redis) -> redis.Redis:
    """The client without redis-py's reply callbacks: replies as the server sent them."""
    client.response_callbacks.clear()
    return client


def run(client: redis.Redis, cmd: list[bytes]) -> Any:
    try:
        return client.execute_command(*cmd)
    except redis.ResponseError as exc:
        return ("error", str(exc))


def encoding(client: redis.Redis, key: bytes) -> Any:
    return run(client, [b"OBJECT", b"ENCODING", key])


def full_scan(client: redis.Redis, cmd: list[bytes]) -> Any:
    """Every (member, score) pair a ZSCAN from cursor 0 returns, as a sorted list."""
    pairs = []
    reply = run(client, cmd)
    for _ in range(10_000):
        if isinstance(reply, tuple):
            return reply
        cursor, flat = reply
        pairs += list(zip(flat[0::2], flat[1::2], strict=True))
        if cursor == b"0":
            return sorted(pairs)
        reply = run(client, [cmd[0], cmd[1], cursor, *cmd[3:]])
    raise AssertionError("ZSCAN did not finish")


def random_reply_ok(cmd: list[bytes], got: Any, expected: Any, ref: redis.Redis) -> bool:
    """ZRANDMEMBER: same shape and length as Redis', every element from the set."""
    if isinstance(expected, tuple) or expected is None or not isinstance(expected, list):
        return got == expected
    if not isinstance(got, list) or len(got) != len(expected):
        return False
    pairs = run(ref, [b"ZRANGE", cmd[1], b"0", b"-1", b"WITHSCORES"])
    scores = dict(zip(pairs[0::2], pairs[1::2], strict=True)) if isinstance(pairs, list) else {}
    withscores = len(cmd) == 4
    if withscores:
        return all(scores.get(m) == s for m, s in zip(got[0::2], got[1::2], strict=True))
    return all(m in scores for m in got)


def check(r: redis.Redis, ref: redis.Redis, cmd: list[bytes], where: str) -> None:
    name = cmd[0].upper()
    if name == b"ZSCAN" and len(cmd) >= 3 and cmd[2] in (b"0", b""):
        if encoding(ref, cmd[1]) != b"listpack":
            assert full_scan(r, cmd) == full_scan(ref, cmd), where
            return
    lexical = name in (b"ZRANGEBYLEX", b"ZREVRANGEBYLEX", b"ZLEXCOUNT", b"ZREMRANGEBYLEX") or (
        name in (b"ZRANGE", b"ZRANGESTORE") and any(a.upper() == b"BYLEX" for a in cmd)
    )
    if lexical:
        key = cmd[2] if name == b"ZRANGESTORE" else cmd[1]
        if key not in EQUAL_SCORES and encoding(ref, key) == b"skiplist":
            return  # mixed scores in a skiplist: Redis' answer depends on random levels
    expected = run(ref, cmd)
    got = run(r, cmd)
    if name == b"ZRANDMEMBER" and len(cmd) > 2:
        assert random_reply_ok(cmd, got, expected, ref), f"{where}: {got!r} vs {expected!r}"
    elif name == b"ZRANDMEMBER":
        assert type(got) is type(expected), where
    else:
        assert got == expected, where


def compare_keyspaces(r: redis.Redis, ref: redis.Redis, where: str) -> None:
    keys = sorted(run(ref, [b"KEYS", b"*"]))
    assert sorted(run(r, [b"KEYS", b"*"])) == keys, where
    for key in keys:
        kind = run(ref, [b"TYPE", key])
        assert run(r, [b"TYPE", key]) == kind, (where, key)
        assert encoding(r, key) == encoding(ref, key), (where, key)
        if kind == b"zset":
            dump = [b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]
            assert run(r, dump) == run(ref, dump), (where, key)
        elif kind == b"set":
            dump = [b"SMEMBERS", key]
            assert sorted(run(r, dump)) == sorted(run(ref, dump)), (where, key)


def stream(r: redis.Redis, ref: redis.Redis, seed: int, steps: int) -> None:
    raw_client(r)
    raw_client(ref)
    g = Gen(random.Random(seed))
    for client in (r, ref):
        client.execute_command("SET", STRING_KEY, "v")
        client.execute_command("SADD", SET_KEY, "a", "c", "1", "10", "m1")
    for step in range(steps):
        cmd = gen_command(g)
        check(r, ref, cmd, f"seed {seed} step {step}: {cmd!r}")
    compare_keyspaces(r, ref, f"seed {seed} end")


@pytest.mark.parametrize("seed", range(5))
def test_random_zset_streams(r: redis.Redis, ref: redis.Redis, seed: int) -> None:
    stream(r, ref, seed, 500)


def set_listpack_limits(clients: list[redis.Redis], entries: bytes, value: bytes) -> None:
    for client in clients:
        client.execute_command(
            "CONFIG", "SET", "zset-max-listpack-entries", entries, "zset-max-listpack-value", value
        )


@pytest.fixture
def small_listpacks(r: redis.Redis, ref: redis.Redis) -> Iterator[None]:
    set_listpack_limits([r, ref], b"4", b"3")
    yield
    set_listpack_limits([r, ref], b"128", b"64")


@pytest.mark.parametrize("seed", range(100, 103))
def test_random_streams_with_small_listpacks(
    r: redis.Redis, ref: redis.Redis, small_listpacks: None, seed: int
) -> None:
    """Conversions listpack -> skiplist on every path (ZADD, ZRANGESTORE, *STORE)."""
    stream(r, ref, seed, 400)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1000, 1030))
def test_random_zset_streams_long(r: redis.Redis, ref: redis.Redis, seed: int) -> None:
    stream(r, ref, seed, 2000)


# --- RESP3 shapes, byte for byte ------------------------------------------------------------


class RawConnection:
    """A RESP connection that returns each reply's exact bytes."""

    def __init__(self, port: int, protocol: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if protocol == 3:
            self.call([b"HELLO", b"3"])

    def call(self, argv: list[bytes]) -> bytes:
        out = b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
        self.sock.sendall(out)
        reader = hiredis.Reader()
        data = b""
        while True:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
            reader.feed(chunk)
            if reader.gets() is not False:
                return data

    def close(self) -> None:
        self.sock.close()


RESP3_SCRIPT = [
    b"ZADD {z}a 1 a 2.5 b +inf c -0 d 1e17 e",
    b"ZADD {z}b 1 a 3 x",
    b"ZRANGE {z}a 0 -1 WITHSCORES",
    b"ZRANGE {z}a 0 -1",
    b"ZRANGE {z}a (1 +inf BYSCORE WITHSCORES LIMIT 0 2",
    b"ZREVRANGE {z}a 0 1 WITHSCORES",
    b"ZRANGEBYSCORE {z}a -inf +inf WITHSCORES",
    b"ZSCORE {z}a b",
    b"ZSCORE {z}a d",
    b"ZSCORE {z}a nosuch",
    b"ZMSCORE {z}a a nosuch c",
    b"ZMSCORE {z}nokey a",
    b"ZINCRBY {z}a 0.5 a",
    b"ZADD {z}a INCR 1 zz",
    b"ZADD {z}a XX INCR 1 nosuch",
    b"ZRANK {z}a b",
    b"ZRANK {z}a nosuch",
    b"ZUNION 2 {z}a {z}b WITHSCORES",
    b"ZINTER 2 {z}a {z}b WITHSCORES AGGREGATE MAX",
    b"ZDIFF 2 {z}a {z}b WITHSCORES",
    b"ZDIFF 2 {z}a {z}b",
    b"ZSCAN {z}a 0",
    b"ZRANDMEMBER {z}b 5 WITHSCORES",
    b"ZRANDMEMBER {z}b 5",
    b"ZRANDMEMBER {z}nokey 5",
    b"ZRANDMEMBER {z}nokey",
    b"ZPOPMIN {z}a",
    b"ZPOPMIN {z}a 2",
    b"ZPOPMAX {z}a 1",
    b"ZPOPMAX {z}a 0",
    b"ZPOPMAX {z}nokey",
    b"ZMPOP 2 {z}nokey {z}a MAX COUNT 2",
    b"ZMPOP 1 {z}nokey MIN",
    b"ZMPOP 1 {z}b MIN",
    b"ZRANGESTORE {z}c {z}a 0 -1",
    b"ZUNIONSTORE {z}c 2 {z}a {z}b WEIGHTS 2 -1",
    b"ZRANGE {z}c 0 -1 WITHSCORES",
    b"ZCARD {z}c",
    b"ZRANGE {z}nokey 0 -1 WITHSCORES",
    b"ZADD {z}a GT LT 1 a",
    b"ZADD {z}a NX XX 1 a",
    b"ZADD {z}a INCR 1 a 2 b",
    b"ZINCRBY {z}a -inf c",
    b"ZADD {z}n 0 x",
    b"ZINCRBY {z}n -inf x",
    b"ZINCRBY {z}n +inf x",
]


@pytest.mark.parametrize("protocol", [2, 3])
def test_reply_bytes(atoll, reference, protocol: int) -> None:
    ours, theirs = RawConnection(atoll.port, protocol), RawConnection(reference.port, protocol)
    try:
        for conn in (ours, theirs):
            conn.call([b"FLUSHALL"])
        for line in RESP3_SCRIPT:
            argv = line.split(b" ")
            assert ours.call(argv) == theirs.call(argv), line
    finally:
        ours.close()
        theirs.close()


# --- large sets (SortedList-backed here, skiplists in Redis) -------------------------------

BIG = T + b"big"
BIGLEX = T + b"biglex"
EQUAL_SCORES = [*LEXKEYS, BIGLEX]


def fill_large(clients: list[redis.Redis], rng: random.Random, size: int) -> list[bytes]:
    members = [b"k%04d" % i for i in range(size)]
    for client in clients:
        client.execute_command("DEL", BIG, BIGLEX)
    for start in range(0, size, 100):
        scored: list[bytes] = []
        lexed: list[bytes] = []
        for member in members[start : start + 100]:
            scored += [
                b"%d" % rng.randint(-50, 50) if rng.random() < 0.8 else b"%.3f" % rng.random(),
                member,
            ]
            lexed += [b"0", member]
        for client in clients:
            client.execute_command("ZADD", BIG, *scored)
            client.execute_command("ZADD", BIGLEX, *lexed)
    return members


def gen_large(g: Gen, members: list[bytes]) -> list[bytes]:
    rng = g.rng
    rank = lambda: b"%d" % rng.randint(-700, 700)  # noqa: E731
    score = lambda: rng.choice([b"(", b""]) + b"%d" % rng.randint(-60, 60)  # noqa: E731
    lex = lambda: rng.choice([b"[", b"("]) + rng.choice(members)[: rng.randint(1, 5)]  # noqa: E731
    limit = [b"LIMIT", b"%d" % rng.randint(0, 50), b"%d" % rng.randint(-1, 40)]
    choices: list[list[bytes]] = [
        [b"ZRANGE", BIG, rank(), rank(), b"WITHSCORES"],
        [b"ZRANGE", BIG, rank(), rank(), b"REV"],
        [b"ZRANGE", BIG, score(), score(), b"BYSCORE", b"WITHSCORES", *limit],
        [b"ZRANGE", BIG, score(), score(), b"BYSCORE", b"REV", *limit],
        [b"ZRANGE", BIGLEX, lex(), lex(), b"BYLEX", *limit],
        [b"ZRANGE", BIGLEX, lex(), lex(), b"BYLEX", b"REV", *limit],
        [b"ZCOUNT", BIG, score(), score()],
        [b"ZLEXCOUNT", BIGLEX, lex(), rng.choice([lex(), b"+"])],
        [b"ZRANK", BIG, rng.choice(members)],
        [b"ZREVRANK", BIG, rng.choice(members)],
        [b"ZSCORE", BIG, rng.choice(members)],
        [b"ZINCRBY", BIG, b"%d" % rng.randint(-5, 5), rng.choice(members)],
        [b"ZADD", BIG, b"%d" % rng.randint(-60, 60), rng.choice(members) + b"x"],
        [b"ZREM", BIG, rng.choice(members), rng.choice(members)],
        [b"ZREMRANGEBYRANK", BIG, rank(), rank()],
        [b"ZREMRANGEBYSCORE", BIG, score(), score()],
        [b"ZREMRANGEBYLEX", BIGLEX, lex(), lex()],
        [rng.choice([b"ZPOPMIN", b"ZPOPMAX"]), BIG, b"%d" % rng.randint(1, 3)],
        [b"ZRANGESTORE", T + b"dst", BIG, score(), score(), b"BYSCORE"],
        [b"ZUNIONSTORE", T + b"dst", b"2", BIG, BIGLEX, b"WEIGHTS", b"2", b"1"],
        [b"ZINTER", b"2", BIG, BIGLEX, b"AGGREGATE", b"MAX"],
        [b"ZDIFF", b"2", BIG, T + b"dst"],
        [b"ZSCAN", BIG, b"0", b"COUNT", b"25", b"MATCH", b"k0*"],
    ]
    return rng.choice(choices)


@pytest.mark.parametrize("seed", range(2))
def test_large_sets(r: redis.Redis, ref: redis.Redis, seed: int) -> None:
    raw_client(r)
    raw_client(ref)
    g = Gen(random.Random(seed))
    members = fill_large([r, ref], g.rng, 700)
    for step in range(300):
        cmd = gen_large(g, members)
        check(r, ref, cmd, f"seed {seed} step {step}: {cmd!r}")
    compare_keyspaces(r, ref, f"seed {seed} end")


# --- SORT and SORT_RO over lists, sets and sorted sets -------------------------------------

SORT_ELEMENTS = [
    b"1",
    b"2",
    b"10",
    b"-3",
    b"1.5",
    b"abc",
    b"b",
    b"",
    b"3e2",
    b"0x10",
    b" 4",
    b"inf",
    b"-inf",
    b"B",
    b"a",
    b"7",
    b"-0",
    b"0",
]
# Weights that fail without overflow: Redis tests a stale errno after strtod, so one ERANGE
# (1e400, 1e-310) can fail later sorts on the same connection (unit tests cover those).
SORT_BAD = [b"nan", b"4 ", b"a\x00b", b"12\x00x", b"0x", b"--1"]
SORT_KEYS = [T + b"L1", T + b"L2", T + b"S1", T + b"S2", T + b"Z1", T + b"Z2", STRING_KEY, MISSING]
BY_PATTERNS = [
    T + b"w_*",
    T + b"h_*->f",
    b"nosort",
    T + b"w_*->",
    T + b"none_*",
    T + b"w_\x00*",
    T + b"h_*->g",
]
GET_PATTERNS = [b"#", T + b"w_*", T + b"h_*->f", T + b"h_*->g", b"nostar", T + b"h_*->", b"#\x00x"]


def gen_sort_setup(g: Gen) -> list[list[bytes]]:
    rng = g.rng
    elements = lambda n: [rng.choice(SORT_ELEMENTS) for _ in range(n)]  # noqa: E731
    cmds = [
        [b"RPUSH", T + b"L1", *elements(rng.randint(1, 12))],
        [b"RPUSH", T + b"L2", *[b"%d" % rng.randint(-20, 20) for _ in range(rng.randint(1, 12))]],
        [b"SADD", T + b"S1", *[b"%d" % rng.randint(-20, 20) for _ in range(rng.randint(1, 8))]],
        [b"SADD", T + b"S2", *elements(rng.randint(1, 10))],
        [b"ZADD", T + b"Z1", *[x for e in elements(8) for x in (b"%d" % rng.randint(0, 5), e)]],
        [b"ZADD", T + b"Z2", *[x for e in elements(3) for x in (b"1", e)]],
    ]
    weights = list(range(-30, 30))
    rng.shuffle(weights)  # distinct weights: BY never ties on the value it looks up
    for element, weight in zip(SORT_ELEMENTS + SORT_BAD, weights, strict=False):
        if rng.random() < 0.8:
            cmds.append(
                [
                    b"SET",
                    T + b"w_" + element,
                    b"%d" % weight if rng.random() < 0.8 else b"t%03d" % (weight + 50),
                ]
            )
        if rng.random() < 0.7:
            cmds.append([b"HSET", T + b"h_" + element, b"f", b"%d" % (weight * 3)])
    return cmds


def gen_sort(g: Gen) -> list[bytes]:
    rng = g.rng
    if rng.random() < 0.15:  # change something between the sorts
        key = rng.choice(SORT_KEYS[:6])
        element = rng.choice(SORT_ELEMENTS + SORT_BAD[:4])
        return rng.choice(
            [
                [b"RPUSH", T + b"L1", element],
                [b"SADD", T + b"S1", element],
                [b"ZADD", T + b"Z1", b"3", element],
                [b"DEL", key],
                [b"SET", T + b"w_" + element, b"%d" % rng.randint(100, 200)],
            ]
        )
    readonly = rng.random() < 0.3
    cmd = [b"SORT_RO" if readonly else b"SORT", rng.choice(SORT_KEYS)]
    options: list[list[bytes]] = []
    if g.maybe(0.5):
        options.append([b"BY", rng.choice(BY_PATTERNS)])
    if g.maybe(0.3):
        options.append(
            [
                b"LIMIT",
                g.pick([b"0", b"1", b"3", b"-1", b"20"], [b"x"]),
                g.pick([b"1", b"2", b"-1", b"0", b"5", b"100"], [b"1.5"]),
            ]
        )
    for _ in range(rng.choice([0, 0, 1, 2])):
        options.append([b"GET", rng.choice(GET_PATTERNS)])
    if g.maybe(0.4):
        options.append([rng.choice([b"ASC", b"DESC", b"desc"])])
    if g.maybe(0.4):
        options.append([b"ALPHA"])
    if g.maybe(0.25):
        options.append([b"STORE", T + b"dst"])
    if g.maybe(0.03):
        options.append([rng.choice([b"BY", b"GET", b"LIMIT", b"bogus", b"STORE"])])
    rng.shuffle(options)
    return cmd + [word for option in options for word in option]


def sort_is_unordered(ref: redis.Redis, cmd: list[bytes]) -> bool:
    """Whether Redis' order depends on hashing (sets, sorted set dicts) or ties ALPHA BY."""
    upper = [a.upper() for a in cmd]
    kind = run(ref, [b"TYPE", cmd[1]])
    by = [cmd[i + 1] for i, a in enumerate(upper[:-1]) if a == b"BY"]
    sorting = not by or b"*" in by[-1].split(b"\0")[0]
    dontsort = any(b"*" not in p.split(b"\0")[0] for p in by)
    if kind == b"set" and dontsort and encoding(ref, cmd[1]) == b"hashtable":
        return b"STORE" not in upper  # with STORE Redis sorts the set instead
    return b"ALPHA" in upper and bool(by) and sorting and not dontsort


def check_sort(r: redis.Redis, ref: redis.Redis, cmd: list[bytes], where: str) -> None:
    unordered = sort_is_unordered(ref, cmd)
    partial = b"LIMIT" in [a.upper() for a in cmd]  # which part of an unordered whole: chance
    expected, got = run(ref, cmd), run(r, cmd)
    if unordered and isinstance(expected, list) and isinstance(got, list):
        if partial:
            assert len(got) == len(expected), where
        else:
            assert sorted(got, key=repr) == sorted(expected, key=repr), where
    else:
        assert got == expected, where
    if b"STORE" in [a.upper() for a in cmd]:
        dump = [b"LRANGE", T + b"dst", b"0", b"-1"]
        stored, ref_stored = run(r, dump), run(ref, dump)
        if unordered:
            stored, ref_stored = sorted(stored, key=repr), sorted(ref_stored, key=repr)
        if not (unordered and partial):
            assert stored == ref_stored, where
        for client in (r, ref):
            client.execute_command("DEL", T + b"dst")


@pytest.mark.parametrize("seed", range(4))
def test_random_sort_streams(r: redis.Redis, ref: redis.Redis, seed: int) -> None:
    raw_client(r)
    raw_client(ref)
    g = Gen(random.Random(seed))
    for cmd in [[b"SET", STRING_KEY, b"v"], *gen_sort_setup(g)]:
        assert run(r, cmd) == run(ref, cmd)
    for step in range(250):
        cmd = gen_sort(g)
        where = f"seed {seed} step {step}: {cmd!r}"
        if cmd[0] in (b"SORT", b"SORT_RO"):
            check_sort(r, ref, cmd, where)
        else:
            assert run(r, cmd) == run(ref, cmd), where
    for key in (T + b"Z1", T + b"Z2"):  # SORT converted these to skiplists
        assert encoding(r, key) == encoding(ref, key)
