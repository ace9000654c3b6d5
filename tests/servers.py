"""Start real server processes for tests: Atoll (``atoll-server``) and the reference redis-server."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
ATOLL = str(Path(sys.executable).parent / "atoll-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}: {last_error!r}")


def ping(port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=1, protocol=2)
    try:
        return bool(client.ping())
    except (redis.AuthenticationError, redis.ResponseError) as exc:
        return "NOAUTH" in str(exc) or isinstance(exc, redis.AuthenticationError)
    finally:
        client.close()


class AtollServer:
    def __init__(self, tmp: Path, *args: str, shards: int = 2, gateways: int = 1,
                 conf: str | None = None) -> None:
        self.port = free_port()
        self.dir = tmp
        self.gateways = gateways
        self.log = tmp / "atoll.log"
        self.args = [
            ATOLL, conf or str(ROOT / "conf" / "atoll.conf"), "--port", str(self.port), "--dir", str(tmp),
            "--save", "", "--shards", str(shards), "--gateways", str(gateways), *args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def _log_since(self, offset: int) -> bytes:
        with open(self.log, "rb") as log:
            log.seek(offset)
            return log.read()

    def start(self) -> AtollServer:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: ping(self.port), what=f"atoll on port {self.port}")
            # Every gateway listens (a later one would otherwise get no connections at first).
            wait_until(lambda: self._log_since(offset).count(b"ready to accept connections")
                       >= self.gateways, what="every gateway listening")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def client(self, **kwargs) -> redis.Redis:
        kwargs.setdefault("protocol", 2)
        return redis.Redis(port=self.port, socket_timeout=10, **kwargs)

    def clients_on_every_gateway(self, per_gateway: int, **kwargs) -> list[redis.Redis]:
        """``per_gateway`` connected clients on each gateway (a client id modulo the number
        of gateways names its gateway).  The kernel spreads SO_REUSEPORT connections by a
        hash, so a handful of connections may all land on one gateway: keep connecting."""
        kept: dict[int, list[redis.Redis]] = {g: [] for g in range(self.gateways)}
        for _ in range(64 * self.gateways * per_gateway):
            client = self.client(**kwargs)
            bucket = kept[int(client.client_id()) % self.gateways]
            if len(bucket) < per_gateway:
                bucket.append(client)
            else:
                client.close()
            if all(len(b) == per_gateway for b in kept.values()):
                return [c for g in sorted(kept) for c in kept[g]]
        raise AssertionError(f"could not reach every gateway: {[len(b) for b in kept.values()]}")


class RedisServer:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.dir = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: ping(self.port), what=f"redis-server on port {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def client(self, **kwargs) -> redis.Redis:
        kwargs.setdefault("protocol", 2)
        return redis.Redis(port=self.port, socket_timeout=10, **kwargs)


def have_redis() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


@contextmanager
def atoll_server(tmp: Path, *args: str, **kwargs) -> Iterator[AtollServer]:
    server = AtollServer(tmp, *args, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()
