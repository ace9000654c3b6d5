"""CLIENT PAUSE WRITE, run the same way against Atoll and a real redis-server: which commands
are held (scripts by their shebang flags, EXEC by what it queued), held clients counted in
INFO blocked_clients, and a dataset that keeps still (no expiry) while paused."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis

from tests.servers import AtollServer, RedisServer, wait_until

RO_SCRIPT = b"#!lua flags=no-writes\nreturn 12"
RW_SCRIPT = b"#!lua\nreturn 13"


def _command(*args: bytes | str) -> bytes:
    parts = [a.encode() if isinstance(a, str) else a for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class Raw:
    """A client that sends without waiting, so a held command does not stall the test."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(10)
        self.data = b""

    def send(self, *args: bytes | str) -> None:
        self.sock.sendall(_command(*args))

    def line(self) -> bytes:
        while b"\r\n" not in self.data:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.data += chunk
        line, self.data = self.data.split(b"\r\n", 1)
        return line

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["atoll", "redis"])
def server(request: pytest.FixtureRequest, atoll: AtollServer,
           reference: RedisServer) -> Iterator[redis.Redis]:
    client = (atoll if request.param == "atoll" else reference).client()
    client.flushall()
    try:
        yield client
    finally:
        client.execute_command("CLIENT", "UNPAUSE")
        client.close()


def _port(client: redis.Redis) -> int:
    return int(client.connection_pool.connection_kwargs["port"])


def _blocked(client: redis.Redis) -> int:
    return int(client.info("clients")["blocked_clients"])


def _held_then_released(client: redis.Redis, *commands: tuple[bytes | str, ...]) -> list[bytes]:
    """Send each command from its own connection under PAUSE WRITE; every one must be counted
    as blocked; after UNPAUSE their first reply lines."""
    raws = [Raw(_port(client)) for _ in commands]
    try:
        client.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
        for raw, command in zip(raws, commands, strict=True):
            raw.send(*command)
        wait_until(lambda: _blocked(client) == len(commands), what="held clients counted")
        client.execute_command("CLIENT", "UNPAUSE")
        return [raw.line() for raw in raws]
    finally:
        for raw in raws:
            raw.close()


def test_writes_and_writing_scripts_are_held_and_counted(server: redis.Redis) -> None:
    sha = server.script_load(RW_SCRIPT)
    assert _held_then_released(
        server, ("SET", "k", "v"), ("EVAL", "return 1", "0"), ("EVAL", RW_SCRIPT, "0"),
        ("EVALSHA", sha, "0"), ("PUBLISH", "ch", "m"),
    ) == [b"+OK", b":1", b":13", b":13", b":0"]
    assert _blocked(server) == 0


def test_reads_and_read_only_scripts_pass_a_write_pause(server: redis.Redis) -> None:
    server.set("k", "v")
    sha = server.script_load(RO_SCRIPT)
    other = redis.Redis(port=_port(server), socket_timeout=5)
    try:
        server.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
        assert other.get("k") == b"v"
        assert other.eval(RO_SCRIPT, 0) == 12
        assert other.evalsha(sha, 0) == 12
        assert other.eval_ro("return redis.call('get', KEYS[1])", 1, "k") == b"v"
        with other.pipeline(transaction=True) as pipe:
            pipe.get("k").eval(RO_SCRIPT, 0)
            assert pipe.execute() == [b"v", 12]
        assert _blocked(server) == 0
    finally:
        other.close()


RO_LIBRARY = (b"#!lua name=pauselib\n"
              b"redis.register_function{function_name='ro', callback=function() return 21 end,"
              b" flags={'no-writes'}}\n"
              b"redis.register_function('rw', function() return 22 end)")


def test_functions_pass_a_write_pause_by_their_flags(server: redis.Redis) -> None:
    """FCALL of a no-writes function runs during CLIENT PAUSE WRITE; one that may write is
    held until the pause ends."""
    server.execute_command("FUNCTION", "LOAD", "REPLACE", RO_LIBRARY)
    other = redis.Redis(port=_port(server), socket_timeout=5)
    try:
        server.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
        assert other.fcall("ro", 0) == 21
        assert other.fcall("RO", 0) == 21  # names ignore case
        assert other.fcall_ro("ro", 0) == 21
        assert _blocked(server) == 0
    finally:
        other.close()
        server.execute_command("CLIENT", "UNPAUSE")
    assert _held_then_released(server, ("FCALL", "rw", "0")) == [b":22"]
    server.execute_command("FUNCTION", "FLUSH")


def test_exec_is_held_when_it_queued_a_write(server: redis.Redis) -> None:
    raw = Raw(_port(server))
    try:
        for command in (("MULTI",), ("GET", "k"), ("EVAL", RW_SCRIPT, "0")):
            raw.send(*command)
        assert [raw.line(), raw.line(), raw.line()] == [b"+OK", b"+QUEUED", b"+QUEUED"]
        server.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
        raw.send("EXEC")
        wait_until(lambda: _blocked(server) == 1, what="EXEC held")
        server.execute_command("CLIENT", "UNPAUSE")
        assert [raw.line(), raw.line(), raw.line()] == [b"*2", b"$-1", b":13"]
    finally:
        raw.close()


def test_keys_do_not_expire_while_paused(server: redis.Redis) -> None:
    expired = int(server.info("stats")["expired_keys"])
    with server.pipeline(transaction=True) as pipe:  # the pause starts once EXEC is done
        pipe.set("a{t}", "1", px=10).set("b{t}", "2", px=10)
        pipe.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
        assert pipe.execute() == [True, True, b"OK"]
    wait_until(lambda: server.get("a{t}") is None and server.get("b{t}") is None,
               what="the keys to read as expired")
    assert server.exists("a{t}", "b{t}") == 0
    assert server.dbsize() == 2  # still there: neither lazy nor active expiry deleted them
    assert int(server.info("stats")["expired_keys"]) == expired
    server.execute_command("CLIENT", "UNPAUSE")
    assert server.get("a{t}") is None and server.get("b{t}") is None
    assert int(server.info("stats")["expired_keys"]) == expired + 2
    assert server.dbsize() == 0
