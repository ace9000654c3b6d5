"""Client limits over real sockets: maxclients over several gateways, timeout, output-buffer
and query-buffer limits, unauthenticated clients' caps."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import redis

from tests.servers import ROOT, AtollServer, atoll_server, wait_until


def _connect(server: AtollServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def _closed(sock: socket.socket) -> bool:
    """True once the server closed the connection (whatever it sent before)."""
    sock.settimeout(0.05)
    try:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_maxclients_counts_the_clients_of_every_gateway(tmp_path: Path) -> None:
    with atoll_server(tmp_path, "--maxclients", "6", gateways=2) as server:
        opened: list[socket.socket] = []

        def ping_new() -> bytes:
            sock = _connect(server)
            opened.append(sock)
            sock.sendall(b"PING\r\n")
            return sock.recv(100)

        try:
            answers = [ping_new() for _ in range(10)]  # SO_REUSEPORT spreads them
            assert answers.count(b"+PONG\r\n") == 6
            assert set(answers) == {b"+PONG\r\n", b"-ERR max number of clients reached\r\n"}
            refused = [s for s, a in zip(opened, answers, strict=True) if a != b"+PONG\r\n"]
            assert all(_closed(sock) for sock in refused)
            admitted = [s for s, a in zip(opened, answers, strict=True) if a == b"+PONG\r\n"]
            for sock in admitted[:3]:
                sock.close()
            # Room again for three: the counts of both gateways went down.
            wait_until(lambda: ping_new() == b"+PONG\r\n", what="a place to be free")
            assert ping_new() == b"+PONG\r\n" and ping_new() == b"+PONG\r\n"
            assert ping_new() == b"-ERR max number of clients reached\r\n"
        finally:
            for sock in opened:
                sock.close()


def test_idle_clients_are_closed_after_timeout(tmp_path: Path) -> None:
    with atoll_server(tmp_path, "--timeout", "1") as server:
        idle = _connect(server)
        idle.sendall(b"PING\r\n")
        assert idle.recv(100) == b"+PONG\r\n"
        subscriber = server.client().pubsub()
        subscriber.subscribe("chan")
        blocked = _connect(server)
        blocked.sendall(b"*3\r\n$5\r\nBLPOP\r\n$4\r\nlist\r\n$1\r\n0\r\n")
        wait_until(lambda: _closed(idle), timeout=5, what="the idle client to be closed")
        assert not _closed(blocked)  # blocked and subscribed clients have no idle timeout
        assert subscriber.get_message(timeout=1) is not None  # the subscribe confirmation
        assert server.client().publish("chan", "x") == 1
        for sock in (idle, blocked):
            sock.close()
        subscriber.close()


def test_client_over_the_normal_output_limit_is_dropped(tmp_path: Path) -> None:
    """Pipelined GETs of a 32 KB value, never read: the client passes the hard limit, is
    closed with Redis' log line, the gateway does not grow (at most RUN_AT_ONCE replies are
    in flight), and others keep working."""
    with atoll_server(tmp_path, "--client-output-buffer-limit", "normal 4mb 0 0") as server:
        r = server.client()
        r.set("big", b"x" * (32 << 10))
        pid = int(re.findall(r"Gateway 0 ready .*\(pid (\d+)\)", server.log.read_text())[-1])
        before = _rss(pid)
        sock = _connect(server)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 16000  # 500 MB of replies
        sock.settimeout(0.2)
        try:
            sock.sendall(request)
        except OSError:
            pass  # closed by the server while we were still sending
        wait_until(lambda: "overcoming of output buffer limits" in server.log.read_text(),
                   timeout=10, what="the output-buffer log line")
        assert _rss(pid) - before < 150 << 20
        assert r.get("big") == b"x" * (32 << 10)
        assert [c["cmd"] for c in r.client_list()] == ["client|list"]
        sock.close()


def test_query_buffer_limit_closes_the_client(tmp_path: Path) -> None:
    with atoll_server(tmp_path, "--client-query-buffer-limit", "1mb") as server:
        sock = _connect(server)
        sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4000000\r\n" + b"x" * (2 << 20))
        wait_until(lambda: _closed(sock), timeout=5, what="the client to be closed")
        sock.close()
        assert "Closing client that reached max query buffer length" in server.log.read_text()
        assert server.client().ping()


def test_unauthenticated_clients_get_small_caps(tmp_path: Path) -> None:
    with atoll_server(tmp_path, "--requirepass", "pw") as server:
        with _connect(server) as sock:
            sock.sendall(b"*20\r\n")
            assert sock.recv(200) == b"-ERR Protocol error: unauthenticated multibulk length\r\n"
            assert _closed(sock)
        with _connect(server) as sock:
            sock.sendall(b"*2\r\n$20000\r\n")
            assert sock.recv(200) == b"-ERR Protocol error: unauthenticated bulk length\r\n"
            assert _closed(sock)
        sock = _connect(server)  # once authenticated, the usual limits apply
        sock.sendall(b"AUTH pw\r\n*2\r\n$4\r\nECHO\r\n$20000\r\n" + b"y" * 20000 + b"\r\n")
        got = bytearray()
        while len(got) < 20015:
            got += sock.recv(1 << 16)
        assert got == b"+OK\r\n$20000\r\n" + b"y" * 20000 + b"\r\n"
        sock.close()


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_rename_command_renames_and_removes_commands(tmp_path: Path) -> None:
    """rename-command in the config file: the new name works, the old one is unknown, and
    an empty name removes the command, as in Redis."""
    conf = tmp_path / "renamed.conf"
    conf.write_text(f"include {ROOT / 'conf' / 'atoll.conf'}\n"
                    "rename-command flushall \"\"\nrename-command set put\n")
    server = AtollServer(tmp_path, conf=str(conf)).start()
    try:
        r = server.client()
        assert r.execute_command("PUT", "k", "v") == b"OK"
        assert r.get("k") == b"v"
        with pytest.raises(redis.ResponseError, match="unknown command 'SET'"):
            r.execute_command("SET", "k", "w")
        with pytest.raises(redis.ResponseError, match="unknown command 'FLUSHALL'"):
            r.execute_command("FLUSHALL")
    finally:
        server.stop()


def test_protected_mode_accepts_only_local_peers() -> None:
    from gateway.limits import PROTECTED_MODE_DENIED, is_local_peer

    assert is_local_peer(("127.0.0.1", 5000)) and is_local_peer(("::1", 5000, 0, 0))
    assert is_local_peer(("::ffff:127.0.0.1", 5000, 0, 0)) and is_local_peer("/tmp/atoll.sock")
    assert not is_local_peer(("10.1.2.3", 5000)) and not is_local_peer(("fe80::1", 1, 0, 0))
    assert PROTECTED_MODE_DENIED.startswith(b"-DENIED Redis is running in protected mode")
