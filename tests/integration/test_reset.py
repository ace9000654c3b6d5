"""RESET of a MONITOR client, the same against Atoll and a real redis-server: the monitor
answers +RESET (it does not see its own RESET) and stops receiving lines."""

from __future__ import annotations

import socket

import pytest

from tests.servers import AtollServer, RedisServer, wait_until


def _lines(sock: socket.socket, count: int) -> list[bytes]:
    data = b""
    while data.count(b"\r\n") < count:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        data += chunk
    return data.split(b"\r\n")[:count]


@pytest.mark.parametrize("kind", ["atoll", "redis"])
def test_reset_ends_monitoring(kind: str, atoll: AtollServer, reference: RedisServer) -> None:
    server = atoll if kind == "atoll" else reference
    client = server.client()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(5)
        sock.sendall(b"MONITOR\r\n")
        assert _lines(sock, 1) == [b"+OK"]
        sock.sendall(b"RESET\r\n")
        assert _lines(sock, 1) == [b"+RESET"]
        wait_until(lambda: all("O" not in c["flags"] for c in client.client_list()),
                   what="no monitor left")
        client.set("after-reset", "1")
        sock.sendall(b"PING\r\n")
        assert _lines(sock, 1) == [b"+PONG"]  # no monitor line came before it
    client.close()
