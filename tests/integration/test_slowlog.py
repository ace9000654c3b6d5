"""SLOWLOG compared with a real redis-server: the gateway's and every shard's entries come back
as one log, newest first, at most slowlog-max-len of them, arguments trimmed as Redis does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.servers import AtollServer, RedisServer


@pytest.fixture
def both(atoll: AtollServer, reference: RedisServer) -> Iterator[list[redis.Redis]]:
    clients = [atoll.client(), reference.client()]
    for client in clients:
        client.flushall()
    try:
        yield clients
    finally:
        for client in clients:
            client.config_set("slowlog-log-slower-than", "10000")
            client.config_set("slowlog-max-len", "128")
            client.slowlog_reset()
            client.close()


def _logged(client: redis.Redis, *commands: tuple[Any, ...], max_len: int = 128) -> Any:
    """Log every command, then (SLOWLOG LEN, the logged argument lists, newest first)."""
    client.config_set("slowlog-max-len", str(max_len))
    client.config_set("slowlog-log-slower-than", "0")
    client.slowlog_reset()
    for command in commands:
        client.execute_command(*command)
    client.config_set("slowlog-log-slower-than", "-1")  # the GET below is not logged
    length = client.slowlog_len()
    entries = client.execute_command("SLOWLOG", "GET", "-1")
    return length, [b" ".join(entry[3]) for entry in entries]


def test_entries_of_every_shard_come_back_newest_first(both: list[redis.Redis]) -> None:
    # keys on both shards, between gateway commands (PING, ECHO)
    commands = [("set", "key", "test"), ("ping",), ("sadd", "set", "a", "b"),
                ("incr", "num"), ("echo", "x"), ("lpush", "list", "a")]
    atoll, reference = (_logged(client, *commands) for client in both)
    assert atoll == reference
    assert atoll[1][:2] == [b"lpush list a", b"echo x"] and atoll[0] == len(commands) + 1


def test_max_len_bounds_the_whole_log(both: list[redis.Redis]) -> None:
    commands = [("set", "key", "test"), ("sadd", "set", "a"), ("incr", "num"),
                ("lpush", "list", "a"), ("get", "key")]
    atoll, reference = (_logged(client, *commands, max_len=3) for client in both)
    assert atoll == reference
    assert atoll[0] == 3


def test_long_commands_are_trimmed(both: list[redis.Redis]) -> None:
    many = ("sadd", "set", *range(3, 34))
    long = ("sadd", "set", "foo", "A" * 129)
    atoll, reference = (_logged(client, many, long) for client in both)
    assert atoll == reference
    assert atoll[1][1].endswith(b"... (2 more arguments)")
    assert atoll[1][0].endswith(b"A... (1 more bytes)")
