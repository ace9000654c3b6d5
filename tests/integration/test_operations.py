"""Several gateways, authentication, limits and adversarial input against a real server."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import redis

from tests.servers import AtollServer, atoll_server, wait_until


def test_two_gateways_share_the_port_and_settings(tmp_path: Path) -> None:
    with atoll_server(tmp_path, shards=2, gateways=2) as server:
        clients = server.clients_on_every_gateway(8)
        ids = {c.client_id() for c in clients}
        assert len(ids) == 16
        assert clients[0].config_set("maxmemory-samples", 7)
        for c in clients:
            wait_until(lambda c=c: c.config_get("maxmemory-samples") == {"maxmemory-samples": "7"},
                       timeout=5, what="setting on every gateway")
        clients[3].set("shared", "yes")
        assert all(c.get("shared") == b"yes" for c in clients)
        for c in clients:
            c.close()


def test_requirepass_and_hello_auth(tmp_path: Path) -> None:
    with atoll_server(tmp_path, "--requirepass", "s3cret") as server:
        anon = server.client()
        with pytest.raises(redis.AuthenticationError):
            anon.get("x")
        with pytest.raises(redis.AuthenticationError):
            server.client(password="wrong").ping()
        assert server.client(password="s3cret").ping()
        assert server.client(password="s3cret", protocol=3).ping()
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"GET x\r\nHELLO 3 AUTH default s3cret\r\nGET x\r\n")
            time.sleep(0.3)
            data = sock.recv(65536)
        assert data.startswith(b"-NOAUTH Authentication required.\r\n%7\r\n")
        assert data.endswith(b"_\r\n")


def test_glob_does_not_backtrack(atoll: AtollServer) -> None:
    r = atoll.client()
    r.flushall()
    r.set(b"x" * 50000, "v")
    started = time.monotonic()
    assert r.keys(b"*?" * 50000) == [b"x" * 50000]
    assert r.keys(b"a*" * 20000 + b"b") == []
    assert time.monotonic() - started < 1.0


def test_client_that_never_reads_does_not_grow_the_server(tmp_path: Path) -> None:
    """A client pipelines GETs of a 1 MB value and never reads: the gateway stops reading
    from it (flow control) instead of buffering gigabytes, and other clients carry on."""
    with atoll_server(tmp_path) as server:
        _never_reads(server)


def _never_reads(atoll: AtollServer) -> None:
    r = atoll.client()
    r.set("big", b"x" * (1 << 20))
    gateway_pid = _gateway_pid(atoll)
    before = _rss(gateway_pid)
    sock = socket.create_connection(("127.0.0.1", atoll.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.setblocking(False)
    request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 1000
    sent = 0
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:  # 4000 requests would mean 4 GB of replies
        try:
            sent += sock.send(request)
        except BlockingIOError:
            time.sleep(0.05)
    assert r.ping()
    grown = _rss(gateway_pid) - before
    assert grown < 600 * (1 << 20), f"gateway grew by {grown >> 20} MB"
    sock.close()


def _gateway_pid(server: AtollServer) -> int:
    import re

    found = re.findall(r"Gateway 0 ready .*\(pid (\d+)\)", server.log.read_text())
    return int(found[-1])


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_malformed_input_gets_errors_and_server_survives(atoll: AtollServer) -> None:
    cases = [b"*-10\r\n", b"*1\r\n$-5\r\n", b"*1\r\n$99999999999\r\n", b"\x00\xff\r\n",
             b"*2\r\n$3\r\nGET\r\n:1\r\n", b"SET 'a\r\n", b"*1\r\n" + b"$1\r\nx\r\n" * 3]
    for payload in cases:
        with socket.create_connection(("127.0.0.1", atoll.port), timeout=5) as sock:
            sock.sendall(payload)
            sock.settimeout(0.5)
            try:
                sock.recv(65536)
            except TimeoutError:
                pass
    assert atoll.client().ping()
