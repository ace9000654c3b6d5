"""A read of more commands than a client may run at once (RUN_AT_ONCE) keeps its order when
a multi-step command (here a cross-shard MSET) makes the client wait in the middle."""

from __future__ import annotations

import socket
from pathlib import Path

from persistence.effects import encode_command
from tests.servers import AtollServer


def test_held_commands_keep_their_order_behind_a_multi_step_command(tmp_path: Path) -> None:
    server = AtollServer(tmp_path, shards=2).start()
    try:
        commands = [[b"RPUSH", b"list", b"%d" % i] for i in range(1500)]
        commands.insert(10, [b"MSET", b"{a}x", b"1", b"{b}y", b"2"])  # two shards: async
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"".join(encode_command(c) for c in commands))  # one read, mostly
            expected = b"".join(b":%d\r\n" % (i + 1) for i in range(10)) + b"+OK\r\n" + \
                b"".join(b":%d\r\n" % (i + 1) for i in range(10, 1500))
            got = b""
            sock.settimeout(10)
            while len(got) < len(expected):
                chunk = sock.recv(65536)
                assert chunk, got[-200:]
                got += chunk
            assert got == expected
        client = server.client()
        assert client.lrange("list", 0, -1) == [b"%d" % i for i in range(1500)]
    finally:
        server.stop()
