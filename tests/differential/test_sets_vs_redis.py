"""Set commands: the same seeded random streams go to Atoll and to a real redis-server 7.0;
every reply (values and error texts), every OBJECT ENCODING and the keys at the end must be
identical.  RESP3 shapes are compared byte for byte over raw sockets.

What Redis leaves to chance is compared by what is fixed about it:

* member order: an intset iterates in ascending order, so replies built from intsets
  (SMEMBERS, SINTER, SUNION, SDIFF, SSCAN) are compared exactly; replies from hashtables are
  compared sorted, and SSCAN of a hashtable by the members a full scan returns;
* SPOP and SRANDMEMBER: counts, distinctness and membership; after an SPOP both servers are
  given the members the reference kept, so the streams stay in step.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator
from typing import Any

import hiredis
import pytest
import redis

T = b"{t}"
SAME_SHARD = [T + b"a", T + b"b", T + b"c"]
OTHER_SHARDS = [b"s1", b"s2", b"zz"]  # spread over both shards: multi-key commands cross
STRING_KEY = T + b"str"
HASH_KEY = T + b"hash"
MISSING = T + b"missing"
INTS = [b"%d" % i for i in range(-3, 25)] + [b"9223372036854775807", b"-9223372036854775808"]
OTHERS = [b"a", b"b", b"c", b"", b"01", b"-0", b"+1", b" 1", b"1.5", b"x" * 70, b"\x00\xff"]
COUNTS = [
    b"0",
    b"1",
    b"2",
    b"3",
    b"5",
    b"8",
    b"20",
    b"100",
    b"-1",
    b"-3",
    b"-30",
    b"x",
    b"",
    b"1.0",
    b"9223372036854775807",
    b"-9223372036854775808",
]
CURSORS = [b"0", b"", b"-0", b"+0", b"x", b" 0", b"18446744073709551616", b"-1", b"7"]


def raw_client(client: redis.Redis) -> redis.Redis:
    """The client with redis-py's reply post-processing turned off: raw replies only."""
    client.response_callbacks.clear()
    return client


def run(client: redis.Redis, cmd: list[bytes]) -> Any:
    try:
        return client.execute_command(*cmd)
    except redis.ResponseError as exc:
        return ("error", str(exc))


def is_error(reply: Any) -> bool:
    return isinstance(reply, tuple) and reply[:1] == ("error",)


def members_of(client: redis.Redis, key: bytes) -> list[bytes] | None:
    """The members of a set key, sorted; None when the key holds no set."""
    if client.execute_command("TYPE", key) != b"set":
        return None
    return sorted(client.execute_command("SMEMBERS", key))


def encoding(client: redis.Redis, key: bytes) -> bytes | None:
    return client.execute_command("OBJECT", "ENCODING", key)


class Stream:
    """Generates commands over ``keys`` and checks each reply against the reference."""

    def __init__(
        self, r: redis.Redis, ref: redis.Redis, seed: int, keys: list[bytes], intset_limit: int
    ) -> None:
        self.r, self.ref = raw_client(r), raw_client(ref)
        self.rng = random.Random(seed)
        self.keys = keys
        self.intset_limit = intset_limit
        for client in (self.r, self.ref):
            client.execute_command("SET", STRING_KEY, "v")
            client.execute_command("HSET", HASH_KEY, "f", "v")

    # --- generation ------------------------------------------------------------------------

    def key(self) -> bytes:
        return self.rng.choice(self.keys + [STRING_KEY, MISSING, HASH_KEY] + self.keys)

    def member(self) -> bytes:
        return self.rng.choice(INTS if self.rng.random() < 0.75 else OTHERS)

    def some_keys(self, low: int = 1, high: int = 4) -> list[bytes]:
        return [self.key() for _ in range(self.rng.randint(low, high))]

    def command(self) -> list[bytes]:  # noqa: C901 - one table of generators
        rng, k, m = self.rng, self.key, self.member
        choices: list[Callable[[], list[bytes]]] = [
            lambda: [b"SADD", k()] + [m() for _ in range(rng.randint(1, 6))],
            lambda: [b"SADD", k()] + [m() for _ in range(rng.randint(1, 6))],
            lambda: [b"SADD", k()] + rng.sample(INTS, rng.randint(5, len(INTS))),
            lambda: [b"SREM", k()] + [m() for _ in range(rng.randint(1, 6))],
            lambda: [b"SMEMBERS", k()],
            lambda: [b"SISMEMBER", k(), m()],
            lambda: [b"SMISMEMBER", k()] + [m() for _ in range(rng.randint(1, 4))],
            lambda: [b"SCARD", k()],
            lambda: [b"SPOP", k()],
            lambda: [b"SPOP", k(), rng.choice(COUNTS[:8] + [b"-1", b"x"])],
            lambda: [b"SPOP", k(), b"1", b"2"],
            lambda: [b"SRANDMEMBER", k()],
            lambda: [b"SRANDMEMBER", k(), rng.choice(COUNTS)],
            lambda: [b"SRANDMEMBER", k(), b"1", b"2"],
            lambda: [b"SMOVE", k(), k(), m()],
            lambda: [b"SINTER"] + self.some_keys(),
            lambda: [b"SUNION"] + self.some_keys(),
            lambda: [b"SDIFF"] + self.some_keys(),
            lambda: [b"SINTERSTORE", k()] + self.some_keys(),
            lambda: [b"SUNIONSTORE", k()] + self.some_keys(),
            lambda: [b"SDIFFSTORE", k()] + self.some_keys(),
            self.sintercard,
            self.sscan,
            lambda: [b"OBJECT", b"ENCODING", k()],
            lambda: [b"DEL", k()],
            lambda: [rng.choice([b"SADD", b"SREM", b"SMOVE", b"SINTERCARD", b"SISMEMBER"])],
        ]
        return rng.choice(choices)()

    def sintercard(self) -> list[bytes]:
        rng = self.rng
        keys = self.some_keys()
        numkeys = rng.choice([b"%d" % len(keys)] * 4 + [b"0", b"-1", b"x", b"%d" % (len(keys) + 1)])
        cmd = [b"SINTERCARD", numkeys] + keys
        if rng.random() < 0.5:
            cmd += [b"LIMIT", rng.choice([b"0", b"1", b"2", b"-1", b"x"])]
        if rng.random() < 0.1:
            cmd += [rng.choice([b"LIMIT", b"junk"])]
        return cmd

    def sscan(self) -> list[bytes]:
        rng = self.rng
        cmd = [b"SSCAN", self.key(), rng.choice(CURSORS)]
        for _ in range(rng.randint(0, 2)):
            option = rng.choice([b"COUNT", b"MATCH", b"TYPE", b"COUNT"])
            value = {
                b"COUNT": [b"1", b"3", b"100", b"0", b"x"],
                b"MATCH": [b"*", b"1*", b"?", b"[a-c]", b"-*"],
                b"TYPE": [b"set"],
            }[option]
            cmd += [option, rng.choice(value)]
        if rng.random() < 0.05:
            cmd.append(b"COUNT")
        return cmd

    # --- checking --------------------------------------------------------------------------

    def step(self, cmd: list[bytes]) -> None:
        name = cmd[0].upper()
        if name == b"SPOP" and len(cmd) <= 3:
            self.check_spop(cmd)
        elif name == b"SRANDMEMBER" and len(cmd) <= 3:
            self.check_srandmember(cmd)
        elif name == b"SSCAN":
            self.check_sscan(cmd)
        else:
            expected, got = run(self.ref, cmd), run(self.r, cmd)
            if name in (b"SMEMBERS", b"SINTER", b"SUNION", b"SDIFF") and not is_error(expected):
                if not self.intset_ordered(cmd[1:], expected):
                    expected, got = sorted(expected), sorted(got) if isinstance(got, list) else got
            assert got == expected
        for key in set(cmd[1:]) & set(self.keys):
            assert encoding(self.r, key) == encoding(self.ref, key), key

    def intset_ordered(self, keys: list[bytes], reply: list[bytes]) -> bool:
        """Whether Redis built this reply by walking an intset (ascending order)."""
        existing = [key for key in keys if self.ref.execute_command("EXISTS", key)]
        return (
            all(encoding(self.ref, key) == b"intset" for key in existing)
            and len(reply) <= self.intset_limit
        )

    def check_spop(self, cmd: list[bytes]) -> None:
        key = cmd[1]
        before = members_of(self.ref, key)
        assert members_of(self.r, key) == before
        expected, got = run(self.ref, cmd), run(self.r, cmd)
        if is_error(expected) or before is None:
            assert got == expected
            return
        for client, reply in ((self.ref, expected), (self.r, got)):
            if len(cmd) == 2:
                assert (reply is None) == (not before)
                popped = [] if reply is None else [reply]
            else:
                popped = reply
                assert len(popped) == min(int(cmd[2]), len(before)), (cmd, reply)
            assert len(set(popped)) == len(popped) and set(popped) <= set(before)
            assert sorted(set(before) - set(popped)) == (members_of(client, key) or [])
        kept = members_of(self.ref, key)
        for client in (self.r, self.ref):  # back in step, with a freshly built encoding
            client.execute_command("DEL", key)
            if kept:
                client.execute_command("SADD", key, *kept)

    def check_srandmember(self, cmd: list[bytes]) -> None:
        key = cmd[1]
        current = members_of(self.ref, key)
        expected, got = run(self.ref, cmd), run(self.r, cmd)
        if is_error(expected) or current is None:
            assert got == expected
            return
        for reply in (expected, got):
            if len(cmd) == 2:
                assert reply in current if current else reply is None
                continue
            count = int(cmd[2])
            size = len(reply)
            assert size == (
                min(count, len(current)) if count >= 0 else (-count if current else 0)
            ), (cmd, reply)
            assert set(reply) <= set(current)
            if count >= 0:
                assert len(set(reply)) == size

    def check_sscan(self, cmd: list[bytes]) -> None:
        expected, got = run(self.ref, cmd), run(self.r, cmd)
        if is_error(expected) or encoding(self.ref, cmd[1]) != b"hashtable":
            assert got == expected
            return
        assert not is_error(got)
        if cmd[2].strip(b"+-0"):  # a cursor the server never gave: any position is right
            assert set(got[1]) <= set(members_of(self.ref, cmd[1]) or [])
            return
        assert self.finish_scan(self.ref, cmd, expected) == self.finish_scan(self.r, cmd, got)

    @staticmethod
    def finish_scan(client: redis.Redis, cmd: list[bytes], first: list[Any]) -> list[bytes]:
        seen = set(first[1])
        cursor = first[0]
        while cursor != b"0":
            cursor, chunk = client.execute_command(cmd[0], cmd[1], cursor, *cmd[3:])
            seen.update(chunk)
        return sorted(seen)

    def final_check(self) -> None:
        for key in self.keys:
            assert members_of(self.r, key) == members_of(self.ref, key), key
            assert encoding(self.r, key) == encoding(self.ref, key), key
        assert sorted(self.r.execute_command("KEYS", "*")) == sorted(
            self.ref.execute_command("KEYS", "*")
        )


@pytest.mark.parametrize("seed", range(6))
def test_random_set_streams(r, ref, seed: int) -> None:
    """Default limits; keys on both shards, so multi-key commands also cross shards."""
    stream = Stream(r, ref, seed, SAME_SHARD + OTHER_SHARDS, intset_limit=512)
    for step in range(300):
        cmd = stream.command()
        try:
            stream.step(cmd)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed} step {step}: {cmd!r}") from exc
    stream.final_check()


@pytest.fixture
def small_limits(r, ref) -> Iterator[None]:
    for client in (r, ref):
        client.config_set("set-max-intset-entries", 12)
    yield
    for client in (r, ref):
        client.config_set("set-max-intset-entries", 512)


@pytest.mark.parametrize("seed", range(4))
def test_random_set_streams_small_intsets(r, ref, small_limits, seed: int) -> None:
    """set-max-intset-entries 12: conversions happen all the time (keys on one shard)."""
    stream = Stream(r, ref, 1000 + seed, SAME_SHARD, intset_limit=12)
    for step in range(300):
        cmd = stream.command()
        try:
            stream.step(cmd)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed} step {step}: {cmd!r}") from exc
    stream.final_check()


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 120))
def test_random_set_streams_long(r, ref, seed: int) -> None:
    stream = Stream(r, ref, seed, SAME_SHARD + OTHER_SHARDS, intset_limit=512)
    for step in range(2000):
        cmd = stream.command()
        try:
            stream.step(cmd)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed} step {step}: {cmd!r}") from exc
    stream.final_check()


def test_encoding_transitions_match(r, ref) -> None:
    """The conversions Redis makes (and the ones it never undoes) at the default limits."""
    script = [
        [b"SADD", b"s", *[b"%d" % i for i in range(512)]],
        [b"OBJECT", b"ENCODING", b"s"],
        [b"SADD", b"s", b"512"],
        [b"OBJECT", b"ENCODING", b"s"],
        [b"SREM", b"s", b"512", b"511"],
        [b"OBJECT", b"ENCODING", b"s"],
        [b"SPOP", b"s", b"509"],  # few remain: rebuilt as a fresh set
        [b"OBJECT", b"ENCODING", b"s"],
        [b"SADD", b"u", b"1", b"x"],
        [b"SREM", b"u", b"x"],
        [b"OBJECT", b"ENCODING", b"u"],
        [b"SUNIONSTORE", b"v", b"u"],
        [b"OBJECT", b"ENCODING", b"v"],
        [b"SADD", b"big", *[b"%d" % i for i in range(9)], b"x"],
        [b"SADD", b"one", b"x"],
        [b"SADD", b"two", b"y"],
        [b"SDIFFSTORE", b"d", b"big", b"one", b"two"],
        [b"OBJECT", b"ENCODING", b"d"],
        [b"SDIFFSTORE", b"d", b"big", b"one"],
        [b"OBJECT", b"ENCODING", b"d"],
        [b"SMEMBERS", b"d"],
        [b"SDIFF", b"big", b"one"],
        [b"SMOVE", b"one", b"fresh", b"x"],
        [b"OBJECT", b"ENCODING", b"fresh"],
        [b"SMOVE", b"big", b"fresh2", b"3"],
        [b"OBJECT", b"ENCODING", b"fresh2"],
    ]
    r, ref = raw_client(r), raw_client(ref)
    for cmd in script:
        expected = run(ref, cmd)
        got = run(r, cmd)
        if cmd[0] == b"SPOP":
            assert len(got) == len(expected)
            continue
        assert got == expected, cmd


# --- RESP3, byte for byte --------------------------------------------------------------------


class RawConnection:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = hiredis.Reader()

    def call(self, *argv: bytes) -> bytes:
        frame = b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
        self.sock.sendall(frame)
        data = b""
        while True:  # read until hiredis sees one whole reply; keep its bytes
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
            self.reader.feed(chunk)
            if self.reader.gets() is not False:
                return data

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("protocol", [b"2", b"3"])
def test_raw_reply_bytes(atoll, reference, r, ref, protocol: bytes) -> None:
    a, b = RawConnection(atoll.port), RawConnection(reference.port)
    try:
        a.call(b"HELLO", protocol)
        b.call(b"HELLO", protocol)
        script = [
            [b"SADD", b"{t}i", b"5", b"-2", b"30", b"7"],
            [b"SADD", b"{t}j", b"7", b"5", b"100"],
            [b"SADD", b"{t}w", b"word"],
            [b"SMEMBERS", b"{t}i"],
            [b"SMEMBERS", b"{t}none"],
            [b"SMEMBERS", b"{t}w"],
            [b"SINTER", b"{t}i", b"{t}j"],
            [b"SINTER", b"{t}i", b"{t}none"],
            [b"SUNION", b"{t}i", b"{t}j"],
            [b"SDIFF", b"{t}i", b"{t}j"],
            [b"SDIFF", b"{t}none"],
            [b"SINTERCARD", b"2", b"{t}i", b"{t}j"],
            [b"SMISMEMBER", b"{t}i", b"5", b"6"],
            [b"SPOP", b"{t}none"],
            [b"SPOP", b"{t}none", b"2"],
            [b"SPOP", b"{t}i", b"0"],
            [b"SPOP", b"{t}w", b"5"],
            [b"SRANDMEMBER", b"{t}none"],
            [b"SRANDMEMBER", b"{t}none", b"2"],
            [b"SRANDMEMBER", b"{t}i", b"0"],
            [b"SRANDMEMBER", b"{t}i", b"10"],
            [b"SSCAN", b"{t}i", b"0"],
            [b"SSCAN", b"{t}none", b"0"],
            [b"SISMEMBER", b"{t}i", b"5"],
            [b"SINTERSTORE", b"{t}d", b"{t}i", b"{t}j"],
            [b"SMEMBERS", b"{t}d"],
            [b"OBJECT", b"ENCODING", b"{t}d"],
            [b"OBJECT", b"ENCODING", b"{t}none"],
            [b"SPOP", b"{t}j", b"3"],  # every member: answered as the union, in order
            [b"SRANDMEMBER", b"{t}i", b"-9223372036854775808"],
            [b"SINTERCARD", b"0", b"x"],
        ]
        for cmd in script:
            assert a.call(*cmd) == b.call(*cmd), cmd
    finally:
        a.close()
        b.close()


def test_command_info_matches(r, ref) -> None:
    r, ref = raw_client(r), raw_client(ref)
    names = [
        "sadd",
        "srem",
        "smembers",
        "sismember",
        "smismember",
        "scard",
        "spop",
        "srandmember",
        "smove",
        "sinter",
        "sintercard",
        "sunion",
        "sdiff",
        "sinterstore",
        "sunionstore",
        "sdiffstore",
        "sscan",
    ]
    for name in names:
        got = r.execute_command("COMMAND", "INFO", name)
        expected = ref.execute_command("COMMAND", "INFO", name)
        assert got and expected
        mine, theirs = _info(got), _info(expected)
        assert mine == theirs, name


def _info(reply: Any) -> tuple[Any, ...]:
    name, arity, flags, first, last, step, acl = reply[0][:7]
    return name, arity, sorted(flags), first, last, step, sorted(acl)
