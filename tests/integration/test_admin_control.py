"""Control sockets beyond shards and gateways: the pub/sub actor's, and tcp:// with CURVE."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_admin import ADMIN, admin, admin_json
from tests.servers import ATOLL, AtollServer, free_port, wait_until


class _AnyAge:
    def __eq__(self, other: Any) -> bool:
        return isinstance(other, float) and other >= 0


ANY_AGE: Any = _AnyAge()


@pytest.fixture
def server(tmp_path: Path):
    srv = AtollServer(tmp_path, shards=2, gateways=2).start()
    yield srv
    srv.stop()


def test_pubsub_actor_answers_status(server: AtollServer) -> None:
    subscriber = server.client().pubsub()
    subscriber.subscribe("news", "sport")
    subscriber.psubscribe("log.*")
    wait_until(lambda: server.client().pubsub_numpat() == 1, what="pattern registered")
    publisher = server.client()
    for _ in range(50):
        publisher.publish("news", "x")
    stop = threading.Event()

    def publish() -> None:
        client = server.client()
        while not stop.is_set():
            client.publish("log.a", "y")

    thread = threading.Thread(target=publish)
    thread.start()
    try:
        rows = {r["name"]: r for r in admin_json(server, "status")}
        text = admin(server, "status").stdout
        frames = admin(server, "--json", "top", "--iterations", "2", "--interval", "0.1").stdout
    finally:
        stop.set()
        thread.join(10)
        subscriber.close()
    row = rows["pubsub-0"]
    assert row["health"].startswith("ok (") and row["health"].endswith("ms)")
    status = row["pubsub"]
    assert status["pid"] == row["pid"] and status["uptime"] > 0 and status["rss"] > 0
    assert (status["channels"], status["patterns"], status["shard_channels"]) == (2, 1, 0)
    # The replication actor runs replicated PUBLISHes: it is one more gateway of the actor.
    assert sorted(status["gateways"]) == ["gateway-0", "gateway-1", "replication-0"]
    assert status["messages"] >= 51 and status["messages_per_sec"] > 0
    top = [json.loads(line) for line in frames.splitlines()]  # one document a refresh
    assert len(top) == 2 and top[1]["time"] > top[0]["time"]
    for frame in top:
        assert [s["shard"] for s in frame["shards"]] == [0, 1]
        assert {p["name"] for p in frame["processes"]} >= {"supervisor", "pubsub-0"}
        assert frame["pubsub"][0]["name"] == "pubsub-0" and frame["pubsub"][0]["channels"] == 2
    lines = text.splitlines()
    header = lines.index(next(line for line in lines if line.split()[:2] == ["name", "channels"]))
    assert lines[header + 1].split()[:4] == ["pubsub-0", "2", "1", "0"]


def _keygen(where: Path) -> Path:
    subprocess.run([ADMIN, "keygen", "--out", str(where)], check=True, capture_output=True)
    return where


def test_tcp_control_needs_an_authorized_curve_key(tmp_path: Path) -> None:
    keys = _keygen(tmp_path / "keys")
    stranger = _keygen(tmp_path / "stranger")  # a client key pair the server does not know
    shutil.copy(keys / "atoll-control-server.key", stranger / "atoll-control-server.key")
    wrong_server = _keygen(tmp_path / "wrong-server")  # its own pair, another server's key
    shutil.copy(keys / "atoll-control-client.key", wrong_server / "atoll-control-client.key")
    shutil.copy(keys / "atoll-control-client.key_secret",
                wrong_server / "atoll-control-client.key_secret")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    data = tmp_path / "data"
    data.mkdir()
    srv = AtollServer(data, "--control-bind", endpoint, "--control-curve-secret-key-file",
                      str(keys / "atoll-control-server.key_secret"),
                      "--control-curve-authorized-keys", str(keys / "atoll-control-client.key"),
                      shards=2).start()
    try:
        srv.client().mset({f"k{i}": i for i in range(100)})

        def remote(*args: str, keys_dir: Path | None = keys) -> subprocess.CompletedProcess[str]:
            curve = ["--curve-keys", str(keys_dir)] if keys_dir else []
            return subprocess.run([ADMIN, "--connect", endpoint, *curve, "--timeout", "1", *args],
                                  capture_output=True, text=True, timeout=60)

        done = remote("--json", "status")
        assert done.returncode == 0, done.stderr
        rows = {r["name"]: r for r in json.loads(done.stdout)}
        assert set(rows) == {"supervisor", "shard-0", "shard-1", "gateway-0", "pubsub-0",
                             "replication-0"}
        assert rows["pubsub-0"]["pubsub"]["gateways"] == {"gateway-0": ANY_AGE,
                                                          "replication-0": ANY_AGE}
        done = remote("--json", "shards")  # shard requests go through the supervisor's relay
        assert done.returncode == 0, done.stderr
        assert sum(sum(s["keys"].values()) for s in json.loads(done.stdout)) == 100
        for keys_dir, hint in ((None, "without --curve-keys"), (stranger, "authorized-keys"),
                               (wrong_server, "authorized-keys")):
            started = time.monotonic()
            refused = remote("status", keys_dir=keys_dir)
            assert refused.returncode == 1 and refused.stdout == ""
            assert "no answer from " + endpoint in refused.stderr and hint in refused.stderr
            assert time.monotonic() - started < 20
        assert b"refused a CURVE client with an unknown key" in srv.log.read_bytes()
        run_dir = srv.dir / f".atoll-run-{srv.port}"  # internal sockets stay ipc://, 0700
        manifest = json.loads((run_dir / "atoll.json").read_text())
        assert all(e.startswith("ipc://") for e in manifest["control"].values())
        assert os.stat(os.path.realpath(run_dir)).st_mode & 0o777 == 0o700
    finally:
        srv.stop()


def test_tcp_control_refuses_to_start_without_keys(tmp_path: Path) -> None:
    done = subprocess.run([ATOLL, "--port", str(free_port()), "--dir", str(tmp_path),
                           "--control-bind", "tcp://127.0.0.1:1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "control-bind on tcp:// needs CURVE" in done.stderr
