"""EVAL, EVALSHA and SCRIPT: the same scripts go to Atoll and to a real redis-server 7.0 over
raw sockets, and the reply bytes must be identical, in RESP2 and in RESP3: conversions both
ways, error texts (with their ``script: <sha>, on @user_script:N.`` suffix), pcall, the
Lua libraries, globals protection and math.random's sequence.

Keys carry the ``{t}`` hash tag, so every script's keys live on one Atoll shard.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import hiredis
import pytest

from tests.conftest import AtollServer, RedisServer

SETUP = [
    [b"SET", b"{t}str", b"abc"],
    [b"SET", b"{t}num", b"10"],
    [b"RPUSH", b"{t}list", b"a", b"b", b"c"],
    [b"HSET", b"{t}hash", b"f1", b"v1", b"f2", b"v2"],
    [b"SADD", b"{t}set", b"x"],
    [b"ZADD", b"{t}zset", b"1.5", b"m1", b"2", b"m2"],
]

# (script, keys, args)
CASES: list[tuple[str, list[str], list[str]]] = [
    ("return 1", [], []),
    ("return 3.99", [], []),
    ("return -3.99", [], []),
    ("return 'hello'", [], []),
    ("return true", [], []),
    ("return false", [], []),
    ("return nil", [], []),
    ("return {1, 2, 3, 'ciao', {1, 2}}", [], []),
    ("return {1, nil, 3}", [], []),
    ("return {}", [], []),
    ("return {err = 'My Error'}", [], []),
    ("return {ok = 'FINE'}", [], []),
    ("return {double = 3.14}", [], []),
    ("return {map = {a = 1}}", [], []),
    ("return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}", ["{t}a", "{t}b"], ["x", "y"]),
    ("return redis.call('get', KEYS[1])", ["{t}str"], []),
    ("return redis.call('get', KEYS[1])", ["{t}missing"], []),
    ("return redis.call('incr', KEYS[1])", ["{t}num"], []),
    ("return redis.call('incr', KEYS[1])", ["{t}str"], []),
    ("return redis.pcall('incr', KEYS[1])", ["{t}str"], []),
    ("return pcall(function() return redis.call('incr', KEYS[1]) end)", ["{t}str"], []),
    ("local ok, e = pcall(redis.call, 'incr', KEYS[1]) return {tostring(ok), e}", ["{t}str"], []),
    ("local r = redis.pcall('incr', KEYS[1]) return r['err']", ["{t}str"], []),
    ("return redis.call('lrange', KEYS[1], 0, -1)", ["{t}list"], []),
    ("return redis.call('hgetall', KEYS[1])", ["{t}hash"], []),
    ("return redis.call('smembers', KEYS[1])", ["{t}set"], []),
    ("return redis.call('zrange', KEYS[1], 0, -1, 'withscores')", ["{t}zset"], []),
    ("return redis.call('zscore', KEYS[1], 'm1')", ["{t}zset"], []),
    ("return redis.call('set', KEYS[1], 'v')", ["{t}new"], []),
    ("return redis.call('type', KEYS[1])", ["{t}hash"], []),
    ("return type(redis.call('get', KEYS[1]))", ["{t}missing"], []),
    ("return redis.call('set', KEYS[1], 3.5)", ["{t}float"], []),
    ("redis.call('set', KEYS[1], 1e20) return redis.call('get', KEYS[1])", ["{t}float"], []),
    ("return redis.call('ping')", [], []),
    ("return redis.call('echo', 'hi')", [], []),
    ("redis.setresp(3) return redis.call('hgetall', KEYS[1])", ["{t}hash"], []),
    ("redis.setresp(3) return redis.call('smembers', KEYS[1])", ["{t}set"], []),
    ("redis.setresp(3) return redis.call('zscore', KEYS[1], 'm1')", ["{t}zset"], []),
    ("redis.setresp(3) return redis.call('get', KEYS[1])", ["{t}missing"], []),
    ("redis.setresp(3) return {redis.call('get', KEYS[1]) == nil}", ["{t}missing"], []),
    ("redis.setresp(3) return true", [], []),
    ("redis.setresp(3) return false", [], []),
    ("redis.setresp(4)", [], []),
    ("return redis.call('incr', 'a', 'b')", [], []),
    ("return redis.call('nosuchcommand')", [], []),
    ("return redis.call('eval', 'return 1', 0)", [], []),
    ("return redis.call('multi')", [], []),
    ("return redis.call()", [], []),
    ("return redis.call('get', {})", [], []),
    ("return redis.call('blpop', KEYS[1], 0)", ["{t}emptylist"], []),
    ("error('boom')", [], []),
    ("error({err = 'MY boom'})", [], []),
    ("local x = 1\nlocal y = nil\nreturn y.z", [], []),
    ("retur 1", [], []),
    ("return a", [], []),
    ("a = 5", [], []),
    ("string.foo = 1", [], []),
    ("redis.call = nil", [], []),
    ("print('x')", [], []),
    ("return loadfile", [], []),
    ("return redis.error_reply('My Error')", [], []),
    ("return redis.error_reply('-WRONG thing')", [], []),
    ("return redis.status_reply('FINE')", [], []),
    ("return redis.sha1hex('')", [], []),
    ("return redis.sha1hex()", [], []),
    ("return redis.REDIS_VERSION", [], []),
    ("return redis.REDIS_VERSION_NUM", [], []),
    ("return redis.replicate_commands()", [], []),
    ("redis.set_repl(redis.REPL_ALL) return 1", [], []),
    ("redis.set_repl(99)", [], []),
    ("redis.log(redis.LOG_WARNING, 'from a script') return 1", [], []),
    ("redis.log(99, 'x')", [], []),
    ("return cjson.encode({1, 2, {a = 1}})", [], []),
    ("return cjson.encode({})", [], []),
    ("return cjson.encode('a/b\"c')", [], []),
    ("return cjson.encode({1.5, -2, 1e20, true, false})", [], []),
    ("local t = cjson.decode('[1,2,{\"a\":3,\"b\":[true,false]}]') return {t[1], t[3].a, tostring(t[3].b[1])}", [], []),
    ("return cjson.decode('{\"a\":null}').a == cjson.null", [], []),
    ("return cmsgpack.unpack(cmsgpack.pack({1, 2, 'a'}))", [], []),
    ("return cmsgpack.pack({1, 2, 3})", [], []),
    ("return {bit.band(0xff, 0x0f, 7), bit.bor(1, 2), bit.bxor(3, 1), bit.bnot(0)}", [], []),
    ("return {bit.lshift(1, 4), bit.rshift(256, 4), bit.arshift(-256, 4), bit.tobit(0xffffffff)}", [], []),
    ("return bit.tohex(65535)", [], []),
    ("return struct.pack('>I2', 258)", [], []),
    ("return {struct.unpack('>I2', struct.pack('>I2', 258))}", [], []),
    ("return {math.random(), math.random(10), math.random(5, 50)}", [], []),
    ("math.randomseed(42) return {math.random(1000), math.random(1000)}", [], []),
    ("return tostring(math.random())", [], []),
    ("return {string.format('%d-%s', 5, 'x'), string.rep('ab', 3), table.concat({1, 2}, ',')}", [], []),
    ("return redis.call('exists', KEYS[1], KEYS[2])", ["{t}str", "{t}missing"], []),
    ("return redis.call('del', KEYS[1])", ["{t}new"], []),
    ("#!lua flags=no-writes\nreturn redis.call('set', KEYS[1], 'x')", ["{t}k"], []),
    ("#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])", ["{t}str"], []),
    ("#!lua flags=bogus\nreturn 1", [], []),
    ("#!python\nreturn 1", [], []),
]


class RawClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = hiredis.Reader()

    def call(self, *argv: bytes) -> bytes:
        frame = b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
        self.sock.sendall(frame)
        data = b""
        while True:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
            self.reader.feed(chunk)
            # gets() is False both for "no reply yet" and for a RESP3 #f: an empty buffer
            # tells them apart.
            if self.reader.gets() is not False or not self.reader.has_data():
                return data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def pair(atoll: AtollServer, reference: RedisServer) -> Iterator[tuple[RawClient, RawClient]]:
    ours, theirs = RawClient(atoll.port), RawClient(reference.port)
    for client in (ours, theirs):
        client.call(b"FLUSHALL")
        client.call(b"SCRIPT", b"FLUSH")
        for command in SETUP:
            client.call(*command)
    yield ours, theirs
    ours.close()
    theirs.close()


def _eval_args(script: str, keys: list[str], args: list[str]) -> list[bytes]:
    return [b"EVAL", script.encode(), b"%d" % len(keys), *[k.encode() for k in keys],
            *[a.encode() for a in args]]


@pytest.mark.parametrize("protocol", [2, 3])
def test_eval_replies_match_redis(pair: tuple[RawClient, RawClient], protocol: int) -> None:
    ours, theirs = pair
    if protocol == 3:
        assert ours.call(b"HELLO", b"3")[:1] == theirs.call(b"HELLO", b"3")[:1] == b"%"
    mismatches = []
    for script, keys, args in CASES:
        argv = _eval_args(script, keys, args)
        mine, real = ours.call(*argv), theirs.call(*argv)
        if mine != real:
            mismatches.append(f"{script!r}: atoll {mine!r} != redis {real!r}")
        for key in keys:  # what the script left behind
            mine, real = ours.call(b"DUMP", key.encode()), theirs.call(b"DUMP", key.encode())
            mine_type, real_type = ours.call(b"TYPE", key.encode()), theirs.call(b"TYPE", key.encode())
            if mine_type != real_type:
                mismatches.append(f"{script!r}: key {key} type {mine_type!r} != {real_type!r}")
    assert not mismatches, "\n".join(mismatches)


def test_script_cache_commands_match_redis(pair: tuple[RawClient, RawClient]) -> None:
    ours, theirs = pair
    body = b"return {KEYS[1], ARGV[1]}"
    sequence = [
        [b"SCRIPT", b"LOAD", body],
        [b"EVALSHA", b"a42059b356c875f0717db19a51f6aaca9ae659ea", b"1", b"{t}k", b"v"],
        [b"EVALSHA", b"A42059B356C875F0717DB19A51F6AACA9AE659EA", b"1", b"{t}k", b"v"],
        [b"EVALSHA", b"ffffffffffffffffffffffffffffffffffffffff", b"0"],
        [b"EVALSHA", b"short", b"0"],
        [b"EVALSHA_RO", b"a42059b356c875f0717db19a51f6aaca9ae659ea", b"1", b"{t}k", b"v"],
        [b"SCRIPT", b"EXISTS", b"a42059b356c875f0717db19a51f6aaca9ae659ea", b"nope"],
        [b"EVAL", b"return 2", b"0"],
        [b"SCRIPT", b"EXISTS", b"7f923f79fe76194c868d7e1d0820de36700eb649"],
        [b"SCRIPT", b"LOAD", b"retur 1"],
        [b"SCRIPT", b"FLUSH", b"bogus"],
        [b"SCRIPT", b"FLUSH", b"ASYNC"],
        [b"SCRIPT", b"EXISTS", b"a42059b356c875f0717db19a51f6aaca9ae659ea"],
        [b"EVALSHA", b"a42059b356c875f0717db19a51f6aaca9ae659ea", b"1", b"{t}k", b"v"],
        [b"SCRIPT", b"KILL"],
        [b"SCRIPT", b"DEBUG", b"NO"],
        [b"SCRIPT", b"NOPE"],
        [b"EVAL", b"return 1", b"-1"],
        [b"EVAL", b"return 1", b"2", b"{t}a"],
        [b"EVAL", b"return 1", b"x"],
        [b"EVAL_RO", b"return redis.call('set', KEYS[1], 'x')", b"1", b"{t}k"],
        [b"EVAL_RO", b"return redis.call('get', KEYS[1])", b"1", b"{t}str"],
        [b"EVAL", b"return 1"],
    ]
    mismatches = []
    for argv in sequence:
        mine, real = ours.call(*argv), theirs.call(*argv)
        if mine != real:
            mismatches.append(f"{argv!r}: atoll {mine!r} != redis {real!r}")
    assert not mismatches, "\n".join(mismatches)
