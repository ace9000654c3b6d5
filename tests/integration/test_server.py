"""A real atoll-server process driven over TCP by redis-py (RESP2 and RESP3) and redis-cli."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import redis

from tests.servers import AtollServer, atoll_server, wait_until


def raw(port: int, payload: bytes, expect_close: bool = False, timeout: float = 5.0) -> bytes:
    """Send bytes, collect what comes back until the server is quiet (or closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        sock.settimeout(0.5 if not expect_close else timeout)
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


@pytest.mark.parametrize("protocol", [2, 3])
def test_strings_and_expiry_over_redis_py(atoll: AtollServer, protocol: int) -> None:
    r = atoll.client(protocol=protocol)
    r.flushall()
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.incr("n") == 1
    assert r.incrbyfloat("f", 1.5) == 1.5
    assert r.set("t", "x", px=100) is True
    wait_until(lambda: r.get("t") is None, timeout=3, what="key expiry")
    assert r.mset({f"key{i}": i for i in range(100)}) is True
    assert r.mget([f"key{i}" for i in range(100)]) == [str(i).encode() for i in range(100)]
    assert r.delete(*[f"key{i}" for i in range(50)]) == 50
    assert r.exists(*[f"key{i}" for i in range(100)]) == 50
    assert r.dbsize() == 53
    assert sorted(r.keys("key*")) == sorted(f"key{i}".encode() for i in range(50, 100))
    assert sorted(r.scan_iter(match="key9*", count=7)) == sorted(
        f"key{i}".encode() for i in range(90, 100)
    )
    info = r.info()
    assert info["redis_version"] == "7.0.15"
    assert info["db0"]["keys"] == 53
    with pytest.raises(redis.ResponseError, match="WRONGTYPE|not an integer"):
        r.incr("k")
    r.close()


def test_resp3_hello_map(atoll: AtollServer) -> None:
    reply = raw(atoll.port, b"HELLO 3\r\n")
    assert reply.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n")
    assert b"$5\r\nproto\r\n:3\r\n" in reply
    assert raw(atoll.port, b"HELLO 4\r\n") == b"-NOPROTO unsupported protocol version\r\n"


def test_pipelined_replies_keep_request_order(atoll: AtollServer) -> None:
    r = atoll.client()
    pipe = r.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"p{i}", i)
        pipe.get(f"p{i}")
        pipe.ping()
        pipe.incr("counter")
    replies = pipe.execute()
    for i in range(2000):
        assert replies[4 * i : 4 * i + 3] == [True, str(i).encode(), True]
        assert replies[4 * i + 3] == i + 1


def test_unknown_command_and_arity_errors(atoll: AtollServer) -> None:
    assert raw(atoll.port, b"*2\r\n$6\r\nFOOBAR\r\n$3\r\nabc\r\n") == (
        b"-ERR unknown command 'FOOBAR', with args beginning with: 'abc' \r\n"
    )
    assert raw(atoll.port, b"GET\r\n") == b"-ERR wrong number of arguments for 'get' command\r\n"
    assert raw(atoll.port, b"OBJECT FOO\r\n") == b"-ERR unknown subcommand 'FOO'. Try OBJECT HELP.\r\n"


def test_protocol_error_closes_after_earlier_replies(atoll: AtollServer) -> None:
    reply = raw(atoll.port, b"PING\r\n*1\r\n$x\r\n", expect_close=True)
    assert reply == b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"


def test_inline_commands_and_quotes(atoll: AtollServer) -> None:
    assert raw(atoll.port, b'SET "in line" \'v v\'\r\nGET "in line"\r\n') == b"+OK\r\n$3\r\nv v\r\n"


def test_binary_keys_and_values(atoll: AtollServer) -> None:
    r = atoll.client()
    key, value = bytes(range(256)), bytes(reversed(range(256))) * 100
    assert r.set(key, value)
    assert r.get(key) == value
    assert r.strlen(key) == len(value)


def test_redis_cli_basics_and_mass_insert(atoll: AtollServer, tmp_path: Path) -> None:
    cli = ["redis-cli", "-p", str(atoll.port)]
    assert subprocess.run(cli + ["SET", "c", "1"], capture_output=True, text=True).stdout == "OK\n"
    assert subprocess.run(cli + ["INCR", "c"], capture_output=True, text=True).stdout == "2\n"
    assert subprocess.run(cli + ["EXPIRE", "c", "100"], capture_output=True, text=True).stdout == "1\n"
    ttl = subprocess.run(cli + ["TTL", "c"], capture_output=True, text=True).stdout
    assert 99 <= int(ttl) <= 100
    lines = "".join(f"SET bulk:{i} value{i}\r\n" for i in range(20000))
    done = subprocess.run(cli + ["--pipe"], input=lines, capture_output=True, text=True)
    assert "errors: 0, replies: 20000" in done.stdout
    count = subprocess.run(cli + ["DBSIZE"], capture_output=True, text=True)
    assert int(count.stdout) >= 20000
    info = subprocess.run(cli + ["INFO", "keyspace"], capture_output=True, text=True).stdout
    assert "db0:keys=" in info


def _pid_of(server: AtollServer, role: str) -> int:
    """The pid an actor logged when it became ready (``Shard 0 ready ... (pid N)``)."""
    pattern = re.compile(rf"{role} ready .*\(pid (\d+)\)")

    def find() -> int | None:
        found = pattern.findall(server.log.read_text())
        return int(found[-1]) if found else None

    return int(wait_until(find, what=f"{role} pid in the log"))


@pytest.mark.parametrize("role", ["Shard 0", "Gateway 0"])
def test_killed_actor_is_restarted_and_server_keeps_answering(tmp_path: Path, role: str) -> None:
    with atoll_server(tmp_path, shards=2) as server:
        r = server.client()
        assert r.set("before", "kill")
        victim = _pid_of(server, role)
        os.kill(victim, signal.SIGKILL)

        pattern = re.compile(rf"{role} ready .*\(pid (\d+)\)")
        wait_until(lambda: len(pattern.findall(server.log.read_text())) >= 2, timeout=20,
                   what=f"{role} restarted")

        def answers() -> bool:
            # Keys on every shard, so the restarted one must serve too.
            try:
                return all(r.set(f"after{i}", i) and r.get(f"after{i}") == str(i).encode()
                           for i in range(20))
            except redis.RedisError:
                return False

        wait_until(answers, timeout=20, what="server answering after a child was killed")
        assert _pid_of(server, role) != victim
        assert "restarting it" in server.log.read_text()
        assert r.ping()


def test_shutdown_command_stops_everything(tmp_path: Path) -> None:
    server = AtollServer(tmp_path).start()
    children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True,
                              text=True).stdout.split()
    r = server.client()
    r.shutdown()  # redis-py treats the closed connection as success, as Redis closes it
    assert server.proc.wait(15) == 0
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_sigterm_exits_zero(tmp_path: Path) -> None:
    server = AtollServer(tmp_path).start()
    assert server.stop() == 0


def test_actors_exit_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    server = AtollServer(tmp_path).start()
    shard, gateway = _pid_of(server, "Shard 0"), _pid_of(server, "Gateway 0")
    server.proc.kill()
    server.proc.wait()

    def gone(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return True
        return "zombie" in state

    wait_until(lambda: gone(shard) and gone(gateway), timeout=10, what="orphaned actors exiting")


def test_second_server_on_a_taken_port_refuses_to_start(atoll: AtollServer, tmp_path: Path) -> None:
    done = subprocess.run(
        [*AtollServer(tmp_path).args[:2], "--port", str(atoll.port), "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 1
    assert "Address already in use" in done.stdout
