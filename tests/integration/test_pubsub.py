"""Pub/sub against 2 gateways and 2 shards: redis-py (sync and asyncio, RESP2 and RESP3),
redis-cli SUBSCRIBE / PSUBSCRIBE, slow consumers, keyspace notifications and an actor
restart.  With two gateways (SO_REUSEPORT) clients land on either, so messages cross."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from tests.servers import AtollServer, wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtollServer]:
    atoll = AtollServer(tmp_path_factory.mktemp("pubsub"), shards=2, gateways=2).start()
    yield atoll
    atoll.stop()


def messages(pubsub: Any, count: int, timeout: float = 10.0) -> list[tuple[str, bytes, bytes]]:
    out: list[tuple[str, bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message and message["type"] in ("message", "pmessage", "smessage"):
            out.append((message["type"], message["channel"], message["data"]))
    return out


def subscribed(pubsub: Any, count: int) -> None:
    got = 0
    deadline = time.monotonic() + 10
    while got < count and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message and message["type"].endswith("subscribe"):
            got += 1
    assert got == count


@pytest.mark.parametrize("protocol", [2, 3])
def test_publish_reaches_subscribers_on_every_gateway(server: AtollServer, protocol: int) -> None:
    clients = server.clients_on_every_gateway(3, protocol=protocol)
    pubsubs = [c.pubsub() for c in clients]
    for ps in pubsubs:
        ps.subscribe("news")
        ps.psubscribe("ne*")
        subscribed(ps, 2)
    publisher = server.client()
    # Each subscriber counts twice: once for the channel, once for the matching pattern.
    assert [publisher.publish("news", f"m{i}") for i in range(5)] == [12] * 5
    for ps in pubsubs:
        got = messages(ps, 10)
        direct = [data for kind, _, data in got if kind == "message"]
        by_pattern = [data for kind, _, data in got if kind == "pmessage"]
        assert direct == by_pattern == [b"m0", b"m1", b"m2", b"m3", b"m4"]  # publish order
    assert publisher.pubsub_numsub("news") == [(b"news", 6)]
    assert publisher.pubsub_numpat() == 1
    assert b"news" in publisher.pubsub_channels()
    stats = publisher.info("stats")
    assert stats["pubsub_channels"] >= 1 and stats["pubsub_patterns"] >= 1
    for ps in pubsubs:
        ps.close()
    wait_until(lambda: publisher.publish("news", "gone") == 0, what="subscriptions dropped")


def test_listen_and_sharded_channels(server: AtollServer) -> None:
    client = server.client()
    ps = client.pubsub()
    ps.ssubscribe("shard-news")
    assert next(ps.listen())["type"] == "ssubscribe"
    assert client.spublish("shard-news", "hello") == 1
    for message in ps.listen():
        assert message["type"] == "smessage" and message["data"] == b"hello"
        break
    assert client.execute_command("PUBSUB", "SHARDNUMSUB", "shard-news") == [b"shard-news", 1]
    assert client.execute_command("PUBSUB", "SHARDCHANNELS") == [b"shard-news"]
    ps.close()


def test_subscribed_resp2_allows_only_pubsub_commands(server: AtollServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"SUBSCRIBE a\r\nGET x\r\nPING\r\nPING hi\r\nUNSUBSCRIBE\r\nPING\r\n")
        expected = (
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
            b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
            b"RESET are allowed in this context\r\n"
            b"*2\r\n$4\r\npong\r\n$0\r\n\r\n*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"
            b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n+PONG\r\n"
        )
        assert _read_exactly(sock, len(expected)) == expected


def test_resp3_subscriber_can_run_any_command(server: AtollServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"HELLO 3\r\n")
        _read_until(sock, b"modules\r\n*0\r\n")
        sock.sendall(b"SUBSCRIBE b\r\nSET k v\r\nGET k\r\n")
        expected = b">3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:1\r\n+OK\r\n$1\r\nv\r\n"
        assert _read_exactly(sock, len(expected)) == expected


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    sock.settimeout(10)
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    sock.settimeout(10)
    data = b""
    while marker not in data:
        data += sock.recv(4096)
    return data


def test_asyncio_client_resp3(server: AtollServer) -> None:
    async def run() -> list[bytes]:
        client = redis.asyncio.Redis(port=server.port, protocol=3)
        publisher = redis.asyncio.Redis(port=server.port)
        ps = client.pubsub()
        await ps.subscribe("async-chan")
        await ps.get_message(timeout=5)  # the subscribe confirmation
        for i in range(3):
            await publisher.publish("async-chan", f"a{i}")
        got: list[bytes] = []
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            message = await ps.get_message(ignore_subscribe_messages=True, timeout=1)
            if message:
                got.append(message["data"])
        await ps.aclose()
        await client.aclose()
        await publisher.aclose()
        return got

    assert asyncio.run(run()) == [b"a0", b"a1", b"a2"]


@pytest.mark.parametrize("command", ["SUBSCRIBE", "PSUBSCRIBE"])
def test_redis_cli_subscribe(server: AtollServer, command: str) -> None:
    name = "cli-chan" if command == "SUBSCRIBE" else "cli-*"
    proc = subprocess.Popen(["redis-cli", "-p", str(server.port), command, name],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        publisher = server.client()
        wait_until(lambda: publisher.publish("cli-chan", "from-test") == 1,
                   what="redis-cli subscribed")
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 10
        while b"from-test" not in lines and time.monotonic() < deadline:
            lines.append(proc.stdout.readline().strip())
        assert lines[:3] == [command.lower().encode(), name.encode(), b"1"]
        assert b"from-test" in lines
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_slow_subscriber_is_disconnected_others_unaffected(server: AtollServer) -> None:
    admin = server.client()
    admin.config_set("client-output-buffer-limit", "pubsub 256kb 128kb 60")
    try:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
        slow.connect(("127.0.0.1", server.port))
        slow.sendall(b"SUBSCRIBE flood\r\n")
        fast = server.client().pubsub()
        fast.subscribe("flood")
        subscribed(fast, 1)
        publisher = server.client()
        wait_until(lambda: publisher.publish("flood", "x") == 2, what="both subscribed")
        payload = b"y" * 65536
        received = 0
        # 13 MB for a reader that never reads: more than the kernel's socket buffers hold,
        # so the rest waits in the gateway until the hard limit closes the client.
        for _ in range(200):
            publisher.publish("flood", payload)
            received += len(messages(fast, 1))
        wait_until(lambda: publisher.publish("flood", "z") == 1, what="the slow one is closed")
        assert received == 200
        assert "for overcoming of output buffer limits" in server.log.read_text()
        slow.close()
        fast.close()
    finally:
        admin.config_set("client-output-buffer-limit", "pubsub 32mb 8mb 60")


def test_keyspace_notifications_cross_gateways(server: AtollServer) -> None:
    admin = server.client()
    admin.config_set("notify-keyspace-events", "KEA")
    try:
        ps = server.client().pubsub()
        ps.psubscribe("__key*@0__:*")
        subscribed(ps, 1)
        writer = server.client()
        writer.set("k1", "v")           # shards differ for k1 and k2 with 2 shards
        writer.lpush("k2", "a")
        writer.expire("k1", 100)
        writer.delete("k2")
        got = [(channel, data) for _, channel, data in messages(ps, 8)]
        assert got == [
            (b"__keyspace@0__:k1", b"set"), (b"__keyevent@0__:set", b"k1"),
            (b"__keyspace@0__:k2", b"lpush"), (b"__keyevent@0__:lpush", b"k2"),
            (b"__keyspace@0__:k1", b"expire"), (b"__keyevent@0__:expire", b"k1"),
            (b"__keyspace@0__:k2", b"del"), (b"__keyevent@0__:del", b"k2"),
        ]
        writer.psetex("short", 50, "v")
        got = [(channel, data) for _, channel, data in messages(ps, 6)]
        assert (b"__keyevent@0__:expired", b"short") in got  # active expiry, nobody reads it
        ps.close()
    finally:
        admin.config_set("notify-keyspace-events", "")


def test_subscribers_survive_a_pubsub_actor_restart(server: AtollServer) -> None:
    ps = server.client().pubsub()
    ps.subscribe("durable")
    subscribed(ps, 1)
    publisher = server.client()
    assert publisher.publish("durable", "before") == 1
    assert messages(ps, 1) == [("message", b"durable", b"before")]
    actor = _pubsub_actor_pid(server)
    os.kill(actor, signal.SIGKILL)
    wait_until(lambda: _pubsub_actor_pid(server) not in (None, actor), what="actor restarted")

    def delivered() -> bool:
        try:
            return publisher.publish("durable", "after") == 1
        except redis.ResponseError:  # LOADING while the actor comes back
            return False

    wait_until(delivered, what="subscription restored")
    assert ("message", b"durable", b"after") in messages(ps, 1)
    ps.close()


def _pubsub_actor_pid(server: AtollServer) -> int | None:
    assert server.proc is not None
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(server.proc.pid)],
                         capture_output=True, text=True).stdout
    children = [int(line.split()[0]) for line in out.splitlines() if line.strip()]
    for pid in children:
        comm = Path(f"/proc/{pid}/cmdline").read_bytes() if Path(f"/proc/{pid}").exists() else b""
        if b"pubsub" in comm:
            return pid
    # spawn children all look alike; the log names the actor's pid
    for line in reversed(server.log.read_text().splitlines()):
        if "Pub/sub actor ready" in line:
            pid = int(line.split("pid ")[-1].rstrip(")"))
            return pid if pid in children else None
    return None
