"""List commands: the same seeded random streams go to Atoll and to a real redis-server 7.0;
every reply (values and error texts) must be identical.  A RESP3 stream compares the raw reply
bytes, where the null of a missing list (``_``) and an empty array differ from RESP2's."""

from __future__ import annotations

import random
import socket
from typing import Any

import pytest
import redis

# "{L}" keys share a slot; the others spread over both shards (multi-key commands cross them).
KEYS = [b"{L}a", b"{L}b", b"{L}c", b"p", b"q", b"r", b"{L}str", b"str"]
LIST_KEYS = KEYS[:6]
ELEMENTS = [b"a", b"b", b"c", b"a", b"b", b"1", b"-1", b"0", b"", b"-0", b"01", b"\x00\xff",
            b"x" * 70, b"9223372036854775807", b"9223372036854775808", b"3.5"]  # fmt: skip
INDEXES = [b"0", b"1", b"-1", b"2", b"-2", b"3", b"-3", b"5", b"-5", b"100", b"-100",
           b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808",
           b"abc", b"1.5", b"", b"+1", b"01", b" 1"]  # fmt: skip
COUNTS = [b"0", b"1", b"2", b"3", b"10", b"-1", b"-2", b"abc", b"", b"1.0",
          b"9223372036854775807", b"-9223372036854775808"]  # fmt: skip
SIDES = [b"LEFT", b"RIGHT", b"left", b"Right", b"up"]


def gen_lpos(rng: random.Random, key: bytes, element: bytes) -> list[bytes]:
    cmd = [b"LPOS", key, element]
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        option = rng.choice([b"RANK", b"COUNT", b"MAXLEN", b"rank", b"count", b"maxlen", b"BAD"])
        cmd.append(option)
        if option.upper() == b"RANK":
            cmd.append(rng.choice([b"1", b"2", b"-1", b"-2", b"3", b"0", b"x", b"-9223372036854775808",
                                   b"9223372036854775807"]))  # fmt: skip
        elif rng.random() < 0.95:
            cmd.append(rng.choice(COUNTS))
    return cmd


def gen_lmpop(rng: random.Random) -> list[bytes]:
    keys = [rng.choice(KEYS) for _ in range(rng.randint(1, 3))]
    numkeys = rng.choice([b"%d" % len(keys)] * 12 + [b"0", b"-1", b"x", b"%d" % (len(keys) + 2)])
    cmd = [b"LMPOP", numkeys, *keys, rng.choice(SIDES)]
    if rng.random() < 0.5:
        cmd += [rng.choice([b"COUNT", b"count", b"CNT"]), rng.choice(COUNTS)]
    if rng.random() < 0.05:
        cmd += [b"COUNT", b"1"]
    return cmd


def gen_command(rng: random.Random) -> list[bytes]:
    key = rng.choice(LIST_KEYS) if rng.random() < 0.85 else rng.choice(KEYS)
    other = rng.choice(KEYS)
    el = rng.choice(ELEMENTS)
    idx = rng.choice(INDEXES)
    elements = [rng.choice(ELEMENTS) for _ in range(rng.randint(1, 4))]
    choices: list[Any] = [
        lambda: [b"LPUSH", key, *elements],
        lambda: [b"RPUSH", key, *elements],
        lambda: [b"LPUSH", key, *elements],
        lambda: [b"RPUSH", key, *elements],
        lambda: [b"LPUSHX", key, *elements],
        lambda: [b"RPUSHX", key, *elements],
        lambda: [rng.choice([b"LPOP", b"RPOP"]), key],
        lambda: [rng.choice([b"LPOP", b"RPOP"]), key, rng.choice(COUNTS)],
        lambda: [b"LPOP", key, b"1", b"2"],
        lambda: [b"LLEN", key],
        lambda: [b"LRANGE", key, rng.choice(INDEXES), rng.choice(INDEXES)],
        lambda: [b"LRANGE", key, b"0", b"-1"],
        lambda: [b"LINDEX", key, idx],
        lambda: [b"LSET", key, idx, el],
        lambda: [
            b"LINSERT",
            key,
            rng.choice([b"BEFORE", b"after", b"middle"]),
            el,
            rng.choice(ELEMENTS),
        ],  # fmt: skip
        lambda: [b"LREM", key, rng.choice(COUNTS + [b"-3", b"4"]), el],
        lambda: [b"LTRIM", key, rng.choice(INDEXES), rng.choice(INDEXES)],
        lambda: gen_lpos(rng, key, el),
        lambda: gen_lpos(rng, key, el),
        lambda: [b"LMOVE", key, other, rng.choice(SIDES), rng.choice(SIDES)],
        lambda: [b"RPOPLPUSH", key, other],
        lambda: gen_lmpop(rng),
        lambda: gen_lmpop(rng),
        lambda: [b"SET", rng.choice([b"str", b"{L}str"]), el],
        lambda: [b"DEL", key],
        lambda: [b"EXISTS", key],
        lambda: [b"TYPE", key],
        lambda: [b"OBJECT", b"ENCODING", key],
        lambda: [rng.choice([b"LPUSH", b"LINDEX", b"LSET", b"LMOVE", b"LMPOP", b"LPOS"]), key],
    ]
    return rng.choice(choices)()


def run(client: redis.Redis, cmd: list[bytes]) -> Any:
    try:
        return client.execute_command(*cmd)
    except redis.ResponseError as exc:
        return ("error", type(exc).__name__, str(exc))


def assert_same_lists(r: redis.Redis, ref: redis.Redis) -> None:
    keys = sorted(ref.keys("*"))
    assert sorted(r.keys("*")) == keys
    for key in keys:
        assert r.type(key) == ref.type(key), key
        if ref.type(key) == b"list":
            assert r.lrange(key, 0, -1) == ref.lrange(key, 0, -1), key


@pytest.mark.parametrize("seed", range(8))
def test_random_list_streams(r: redis.Redis, ref: redis.Redis, seed: int) -> None:
    rng = random.Random(seed)
    for step in range(400):
        cmd = gen_command(rng)
        expected = run(ref, cmd)
        got = run(r, cmd)
        assert got == expected, f"seed {seed} step {step}: {cmd!r}"
    assert_same_lists(r, ref)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 130))
def test_random_list_streams_long(r: redis.Redis, ref: redis.Redis, seed: int) -> None:
    rng = random.Random(seed)
    for step in range(3000):
        cmd = gen_command(rng)
        assert run(r, cmd) == run(ref, cmd), f"seed {seed} step {step}: {cmd!r}"
    assert_same_lists(r, ref)


def test_long_lists(r: redis.Redis, ref: redis.Redis) -> None:
    """Ranges, trims and searches deep inside lists of a few thousand elements."""
    rng = random.Random(7)
    items = [b"%d" % rng.randrange(50) for _ in range(3000)]
    for client in (r, ref):
        client.rpush(b"{L}big", *items)
        client.lpush(b"{L}big", *items[:500])
    for _ in range(150):
        a, b = rng.randrange(-3600, 3600), rng.randrange(-3600, 3600)
        value = b"%d" % rng.randrange(55)
        for cmd in (
            [b"LRANGE", b"{L}big", b"%d" % a, b"%d" % b],
            [b"LINDEX", b"{L}big", b"%d" % a],
            [b"LPOS", b"{L}big", value, b"RANK", b"%d" % (rng.choice([1, -1]) * rng.randint(1, 40)),
             b"COUNT", b"%d" % rng.randint(0, 30), b"MAXLEN", b"%d" % rng.randint(0, 4000)],
            [b"LREM", b"{L}big", b"%d" % rng.randint(-3, 3), value],
            [b"LINSERT", b"{L}big", rng.choice([b"BEFORE", b"AFTER"]), value, b"new"],
            [b"LSET", b"{L}big", b"%d" % a, b"set"],
            [b"LMPOP", b"2", b"{L}none", b"{L}big", rng.choice(SIDES[:2]), b"COUNT", b"3"],
        ):  # fmt: skip
            assert run(r, cmd) == run(ref, cmd), cmd
    for cmd in ([b"LTRIM", b"{L}big", b"100", b"-200"], [b"LTRIM", b"{L}big", b"-50", b"2000"]):
        assert run(r, cmd) == run(ref, cmd)
        assert r.lrange(b"{L}big", 0, -1) == ref.lrange(b"{L}big", 0, -1)


# --- RESP3, compared byte for byte ---------------------------------------------------------


class RawClient:
    """A bare RESP client: sends one command, returns its reply exactly as the server sent it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def call(self, *argv: bytes) -> bytes:
        frame = b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
        self.sock.sendall(frame)
        return self._read()

    def _read(self) -> bytes:
        line = self.file.readline()
        kind = line[:1]
        if kind in b"$=!":
            size = int(line[1:-2])
            return line if size < 0 else line + self.file.read(size + 2)
        if kind in b"*~>%|":
            size = int(line[1:-2])
            count = size * 2 if kind in b"%|" else size
            return line + b"".join(self._read() for _ in range(max(count, 0)))
        return line


def test_resp3_replies_byte_for_byte(atoll: Any, reference: Any, r: redis.Redis,
                                     ref: redis.Redis) -> None:  # fmt: skip
    ours, theirs = RawClient(atoll.port), RawClient(reference.port)
    try:
        for client in (ours, theirs):
            assert client.call(b"HELLO", b"3")[:1] == b"%"
        rng = random.Random(3)
        fixed = [
            [b"LPOP", b"nolist", b"2"], [b"RPOP", b"nolist"], [b"LPOP", b"nolist", b"0"],
            [b"LMPOP", b"2", b"nolist", b"{L}none", b"LEFT"], [b"LINDEX", b"nolist", b"0"],
            [b"LPOS", b"nolist", b"a"], [b"LPOS", b"nolist", b"a", b"COUNT", b"0"],
            [b"LMOVE", b"nolist", b"p", b"LEFT", b"LEFT"], [b"RPOPLPUSH", b"nolist", b"q"],
            [b"RPUSH", b"p", b"a", b"b"], [b"LPOP", b"p", b"0"], [b"LSET", b"p", b"0", b"z"],
            [b"LTRIM", b"p", b"0", b"-1"], [b"LRANGE", b"p", b"5", b"9"],
        ]  # fmt: skip
        stream = fixed + [gen_command(rng) for _ in range(400)]
        for step, cmd in enumerate(stream):
            assert ours.call(*cmd) == theirs.call(*cmd), f"step {step}: {cmd!r}"
    finally:
        ours.close()
        theirs.close()
    assert_same_lists(r, ref)
