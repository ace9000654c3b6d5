"""The replication actor is one process for the whole server (replication/actor.py): with two
gateways a replica resyncs partially whatever gateway it lands on, WAIT counts it from either
gateway, a replica refuses writes on every gateway, and a killed actor is restarted and its
replicas resync."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.test_admin import admin_json
from tests.integration.test_replication import _contents, _mixed_load
from tests.servers import AtollServer, RedisServer, atoll_server, wait_until


def _linked(replica: redis.Redis) -> bool:
    return replica.info("replication")["master_link_status"] == "up"


def _same(master: redis.Redis, replica: redis.Redis) -> None:
    wait_until(lambda: _contents(master) == _contents(replica), timeout=10, what="same data")


def test_two_gateways_partial_resync_and_wait_from_both(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    master = AtollServer(tmp_path / "m", shards=2, gateways=2).start()
    replica = RedisServer(tmp_path / "r").start()
    try:
        first, second = master.clients_on_every_gateway(1)
        rclient = replica.client()
        rclient.replicaof("127.0.0.1", master.port)
        wait_until(lambda: _linked(rclient), what="linked")
        full = first.info("stats")["sync_full"]
        partial = first.info("stats")["sync_partial_ok"]
        for round_ in range(4):  # the replica reconnects to whichever gateway the kernel picks
            _mixed_load(first if round_ % 2 else second, 100, seed=round_)
            for client in (first, second):
                assert client.execute_command("WAIT", 1, 5000) == 1
            for entry in second.client_list():
                if entry["cmd"] in ("psync", "replconf", "sync"):
                    second.client_kill_filter(_id=entry["id"])
            wanted = partial + round_ + 1
            wait_until(lambda: second.info("stats")["sync_partial_ok"] == wanted,  # noqa: B023
                       what="partial resync")
        _mixed_load(second, 100, seed=9)
        assert first.execute_command("WAIT", 1, 5000) == 1
        _same(first, rclient)
        assert first.info("stats")["sync_full"] == full
        assert second.info("replication")["connected_slaves"] == 1
    finally:
        replica.stop()
        master.stop()


def test_two_gateway_replica_refuses_writes_on_both(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    master = RedisServer(tmp_path / "m").start()
    replica = AtollServer(tmp_path / "r", shards=2, gateways=2).start()
    try:
        mclient = master.client()
        mclient.set("a", 1)
        first, second = replica.clients_on_every_gateway(1)
        assert first.replicaof("127.0.0.1", master.port)
        for client in (first, second):  # REPLICAOF answers once every gateway refuses writes
            with pytest.raises(redis.ResponseError, match="^You can't write against a read only"):
                client.set("x", 1)
            assert client.execute_command("ROLE")[0] == b"slave"
        wait_until(lambda: _linked(second), what="linked")
        assert mclient.execute_command("WAIT", 1, 5000) == 1
        assert first.get("a") == second.get("a") == b"1"
        with pytest.raises(redis.ResponseError, match="^WAIT cannot be used with replica"):
            second.execute_command("WAIT", 1, 10)
        assert second.replicaof("no", "one")
        assert first.set("x", 1) and second.set("y", 2)
        assert first.execute_command("ROLE")[0] == b"master"
    finally:
        replica.stop()
        master.stop()


def test_killed_replication_actor_restarts_and_replicas_resync(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    master = AtollServer(tmp_path / "m", shards=2).start()
    replica = RedisServer(tmp_path / "r").start()
    try:
        client = master.client(retry=Retry(NoBackoff(), 0))
        rclient = replica.client()
        rclient.replicaof("127.0.0.1", master.port)
        wait_until(lambda: _linked(rclient), what="linked")
        actor = [row for row in admin_json(master, "status") if row["name"] == "replication-0"]
        assert actor and actor[0]["health"].startswith("ok")
        writer_client = master.client(retry=Retry(NoBackoff(), 0))
        writer = threading.Thread(target=lambda: [_mixed_load(writer_client, 150, seed)
                                                  for seed in range(30, 38)])
        writer.start()
        os.kill(actor[0]["pid"], signal.SIGKILL)
        writer.join()
        # The new actor has a new history: the replica comes back with a full sync.
        wait_until(lambda: client.execute_command("WAIT", 1, 1000) == 1, timeout=30,
                   what="replica back after the actor restarted")
        _same(client, rclient)
        rows = {row["name"]: row for row in admin_json(master, "status")}
        assert rows["replication-0"]["restarts"] == 1
        assert rows["replication-0"]["pid"] != actor[0]["pid"]
    finally:
        replica.stop()
        master.stop()


def test_psync_while_the_actor_restarts_waits_for_it(tmp_path: Path) -> None:
    """A PSYNC that reaches a gateway while the actor is down must not get an error: a Redis
    replica reads an error as "no PSYNC here" and falls back to SYNC, without a replication
    id or offset, and WAIT could then never count it.  The gateway waits for the new actor."""
    with atoll_server(tmp_path, shards=2) as master:
        client = master.client()
        client.set("k", "v")
        actor = [row for row in admin_json(master, "status") if row["name"] == "replication-0"]
        os.kill(actor[0]["pid"], signal.SIGKILL)
        # Only once it is gone: a handoff to the dying actor would just drop the connection.
        wait_until(lambda: f"replication-0 (pid {actor[0]['pid']}) exited"
                   in master.log.read_text(), what="actor gone")
        with socket.create_connection(("127.0.0.1", master.port), timeout=15) as sock:
            sock.sendall(b"PSYNC ? -1\r\n")
            first = sock.makefile("rb").readline()
        assert first.startswith(b"+FULLRESYNC "), first
        wait_until(lambda: {r["name"]: r for r in admin_json(master, "status")}
                   ["replication-0"]["restarts"] == 1, what="actor restarted")


def _stream_commands(sock: socket.socket, until: Any, timeout: float = 10.0) -> list[list[bytes]]:
    """Commands of a raw replication stream (after the RDB) until ``until(commands)``."""
    import hiredis

    reader = hiredis.Reader()
    commands: list[list[bytes]] = []
    deadline = time.monotonic() + timeout
    while not until(commands):
        assert time.monotonic() < deadline, commands
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        reader.feed(sock.recv(65536))
        while (command := reader.gets()) is not False:
            commands.append([part.lower() if i == 0 else part for i, part in enumerate(command)])
    return commands


def _psync_reader(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"PSYNC ? -1\r\n")
    data = b""
    while True:  # +FULLRESYNC line, newlines while the image is made, $<len>, the RDB
        data += sock.recv(65536)
        data = data.lstrip(b"\n")
        if data.startswith(b"+FULLRESYNC") and b"\r\n$" in data:
            head, _, rest = data.partition(b"\r\n$")
            size, _, payload = rest.partition(b"\r\n")
            if size.isdigit() and len(payload) >= int(size):
                assert payload[int(size):] == b""
                return sock


def test_cross_shard_writes_reach_the_stream_as_one_multi_exec(tmp_path: Path) -> None:
    master = AtollServer(tmp_path, shards=2).start()
    try:
        client = master.client()
        sock = _psync_reader(master.port)
        client.set("{a}before", 1)
        client.mset({"{a}x": 1, "{b}y": 2})  # {a} and {b} live on different shards
        tx = client.pipeline(transaction=True)
        tx.incr("{a}n").incr("{b}n").execute()
        client.rename("{a}before", "{b}after")
        client.set("{b}last", 1)

        def done(commands: list[list[bytes]]) -> bool:
            return any(c[:2] == [b"set", b"{b}last"] for c in commands)

        commands = [c for c in _stream_commands(sock, done)
                    if c[0] not in (b"ping", b"replconf", b"select")]
        sock.close()
        blocks: list[list[list[bytes]]] = []
        inside: list[list[bytes]] | None = None
        for command in commands:
            if command[0] == b"multi":
                assert inside is None, commands  # never nested, never interleaved
                inside = []
            elif command[0] == b"exec":
                assert inside is not None
                blocks.append(inside)
                inside = None
            elif inside is not None:
                inside.append(command)
        keys = [sorted(k for c in block for k in c[1:] if k.startswith(b"{")) for block in blocks]
        assert [b"{a}x", b"{b}y"] == [k for k in keys[0] if k in (b"{a}x", b"{b}y")], commands
        assert keys[1] == [b"{a}n", b"{b}n"], commands
        assert len(keys) > 2 and b"{a}before" in keys[2] and b"{b}after" in keys[2], commands[5:]
        assert len(blocks) == 3, commands
    finally:
        master.stop()
