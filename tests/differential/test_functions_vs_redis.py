"""FUNCTION and FCALL: the same command streams go to Atoll and to a real redis-server 7.0
over raw sockets, and the reply bytes must be identical (RESP2 and RESP3): FUNCTION LOAD's
errors (shebang, names, register_function's arguments, the load-time API), FCALL/FCALL_RO
with their flags, FUNCTION LIST/DELETE/STATS/FLUSH, and FUNCTION DUMP payloads restored
across both servers.

Keys carry the ``{t}`` hash tag; one library at a time is listed, since Redis lists its
libraries in hash order.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import AtollServer, RedisServer
from tests.differential.test_scripting_vs_redis import RawClient

LIB = b"""#!lua name=mylib
redis.register_function('setget', function(keys, args)
  redis.call('set', keys[1], args[1])
  return {redis.call('get', keys[1]), #keys, #args}
end)
redis.register_function{function_name = 'readonly', description = 'reads a key',
  callback = function(keys, args) return redis.call('get', keys[1]) end,
  flags = {'no-writes', 'allow-stale'}}
redis.register_function{function_name = 'sneaky', flags = {'no-writes'},
  callback = function(keys, args) return redis.call('incr', keys[1]) end}
redis.register_function('fails', function(keys, args) return redis.call('incr', keys[1]) end)
redis.register_function('raises', function(keys, args) error('boom') end)
redis.register_function('status', function(keys, args) return redis.status_reply('FINE') end)
redis.register_function('pcalls', function(keys, args) return redis.pcall('incr', keys[1]) end)
"""

SOLO = b"""#!lua name=solo
redis.register_function{function_name = 'solo', description = 'alone',
  callback = function() return 1 end, flags = {'allow-cross-slot-keys', 'no-writes', 'allow-oom'}}
"""

BAD_LOADS = [
    b"return 1",
    b"#!lua\nreturn 1",
    b"#!lua name=a name=b\nreturn 1",
    b"#!lua name=x foo=bar\nreturn 1",
    b"#!nosuch name=x\nreturn 1",
    b"#!lua name=bad-name\nreturn 1",
    b"#!lua name=bad\\0name\nreturn 1",  # a backslash outside quotes is literal
    b'#!lua name="quoted"\nredis.register_function("q", function() return 1 end)',
    b"#!lua name=empty\nlocal a = 1",
    b"#!lua name=x\nlocal a = 1 +",
    b"#!lua name=x\nerror('oops')",
    b"#!lua name=x\nfoo = 1",
    b"#!lua name=x\nredis.call('ping')",
    b"#!lua name=x\nlocal s = string.len('a')",
    b"#!lua name=x\nredis.register_function('f', 'notfunc')",
    b"#!lua name=x\nredis.register_function(1)",
    b"#!lua name=x\nredis.register_function('f-g', function() end)",
    b"#!lua name=x\nredis.register_function('f', function() end, 3)",
    b"#!lua name=x\nredis.register_function{function_name='f', callback=function() end, "
    b"flags={'bad'}}",
    b"#!lua name=x\nredis.register_function{function_name='f', callback=function() end, "
    b"flags='no-writes'}",
    b"#!lua name=x\nredis.register_function{function_name='f', callback=1}",
    b"#!lua name=x\nredis.register_function{function_name='f', what=1}",
    b"#!lua name=x\nredis.register_function{callback=function() end}",
    b"#!lua name=x\nredis.register_function{function_name='f'}",
    b"#!lua name=x\nredis.register_function('f', function() end)\n"
    b"redis.register_function('f', function() end)",
    b"#!lua name=mylib\nredis.register_function('other', function() end)",
    b"#!lua name=x\nredis.register_function('setget', function() end)",
]

COMMANDS: list[list[bytes]] = [
    [b"FCALL", b"setget", b"1", b"{t}a", b"v1"],
    [b"FCALL", b"setget", b"1", b"{t}a", b"v2", b"extra"],
    [b"FCALL", b"readonly", b"1", b"{t}a"],
    [b"FCALL_RO", b"readonly", b"1", b"{t}a"],
    [b"FCALL_RO", b"setget", b"1", b"{t}a", b"v"],
    [b"FCALL", b"sneaky", b"1", b"{t}n"],
    [b"FCALL", b"fails", b"1", b"{t}a"],
    [b"FCALL", b"raises", b"0"],
    [b"FCALL", b"status", b"0"],
    [b"FCALL", b"pcalls", b"1", b"{t}a"],
    [b"FCALL", b"nosuch", b"0"],
    [b"FCALL", b"setget", b"x"],
    [b"FCALL", b"setget", b"-1"],
    [b"FCALL", b"setget", b"5", b"{t}a"],
    # Redis lists libraries and functions in hash order: list a one-function library only.
    [b"FUNCTION", b"LOAD", SOLO],
    [b"FUNCTION", b"LIST", b"LIBRARYNAME", b"so*"],
    [b"FUNCTION", b"LIST", b"WITHCODE", b"LIBRARYNAME", b"SOLO"],
    [b"FUNCTION", b"LIST", b"LIBRARYNAME", b"nomatch*"],
    [b"FUNCTION", b"DELETE", b"solo"],
    [b"FUNCTION", b"LIST", b"LIBRARYNAME"],
    [b"FUNCTION", b"LIST", b"BOGUS"],
    [b"FUNCTION", b"STATS"],
    [b"FUNCTION", b"DELETE", b"nosuch"],
    [b"FUNCTION", b"FLUSH", b"BOGUS"],
    [b"FUNCTION", b"FLUSH", b"SYNC", b"EXTRA"],
    [b"FUNCTION", b"RESTORE", b"garbage"],
    [b"FUNCTION", b"RESTORE", b"garbage", b"BADPOLICY"],
    [b"FUNCTION", b"LOAD", b"BOGUS", LIB],
    [b"FUNCTION", b"LOAD", LIB],
    [b"FUNCTION", b"LOAD", b"REPLACE", LIB],
    [b"FUNCTION", b"KILL"],
    [b"FUNCTION", b"DELETE", b"mylib"],
    [b"FCALL", b"setget", b"1", b"{t}a", b"v1"],
    [b"FUNCTION", b"STATS"],
]


@pytest.fixture
def pair(atoll: AtollServer, reference: RedisServer) -> Iterator[tuple[RawClient, RawClient]]:
    ours, theirs = RawClient(atoll.port), RawClient(reference.port)
    for client in (ours, theirs):
        client.call(b"FLUSHALL")
        client.call(b"FUNCTION", b"FLUSH")
        client.call(b"SET", b"{t}a", b"x")
    yield ours, theirs
    for client in (ours, theirs):
        client.call(b"FUNCTION", b"FLUSH")
        client.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_function_commands_match_redis(pair: tuple[RawClient, RawClient], protocol: int) -> None:
    ours, theirs = pair
    if protocol == 3:
        assert ours.call(b"HELLO", b"3")[:1] == theirs.call(b"HELLO", b"3")[:1] == b"%"
    assert ours.call(b"FUNCTION", b"LOAD", LIB) == theirs.call(b"FUNCTION", b"LOAD", LIB)
    mismatches = []
    for code in BAD_LOADS:
        mine, real = ours.call(b"FUNCTION", b"LOAD", code), theirs.call(b"FUNCTION", b"LOAD", code)
        if mine != real:
            mismatches.append((code, mine, real))
    for command in COMMANDS:
        mine, real = ours.call(*command), theirs.call(*command)
        if mine != real:
            mismatches.append((command, mine, real))
    assert not mismatches, mismatches
    assert real.startswith((b"*", b"%"))  # the last FUNCTION STATS answered


def test_dump_restores_across_servers(pair: tuple[RawClient, RawClient]) -> None:
    """A FUNCTION DUMP of either server restores into the other (Redis' is LZF-compressed)."""
    ours, theirs = pair
    first = LIB
    second = b"#!lua name=second\nredis.register_function('two', function() return 2 end)"
    for client in (ours, theirs):
        client.call(b"FUNCTION", b"LOAD", first)
    theirs.call(b"FUNCTION", b"LOAD", second)
    payload = _bulk(theirs.call(b"FUNCTION", b"DUMP"))
    assert theirs.call(b"FUNCTION", b"DELETE", b"second") == b"+OK\r\n"
    steps = [
        [b"FUNCTION", b"RESTORE", payload],  # mylib collides: nothing is restored
        [b"FCALL", b"two", b"0"],
        [b"FUNCTION", b"RESTORE", payload, b"REPLACE"],
        [b"FCALL", b"two", b"0"],
        [b"FUNCTION", b"RESTORE", payload, b"FLUSH"],
        [b"FUNCTION", b"LIST", b"LIBRARYNAME", b"second", b"WITHCODE"],
        [b"FUNCTION", b"DELETE", b"second"],
    ]
    for step in steps:
        assert ours.call(*step) == theirs.call(*step), step
    # And back: Atoll's payload into Redis, after both flushed.
    mine = _bulk(ours.call(b"FUNCTION", b"DUMP"))
    theirs.call(b"FUNCTION", b"FLUSH")
    assert theirs.call(b"FUNCTION", b"RESTORE", mine) == b"+OK\r\n"
    assert theirs.call(b"FCALL", b"setget", b"1", b"{t}z", b"w") == ours.call(
        b"FCALL", b"setget", b"1", b"{t}z", b"w")
    stats = [b"FUNCTION", b"STATS"]
    assert theirs.call(*stats) == ours.call(*stats)


def _bulk(reply: bytes) -> bytes:
    assert reply[:1] == b"$", reply
    header, _, rest = reply.partition(b"\r\n")
    return rest[: int(header[1:])]
