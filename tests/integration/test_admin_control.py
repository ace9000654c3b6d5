"""Control sockets beyond shards and gateways: the pub/sub actor's, and tcp:// with CURVE."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.integration.test_admin import admin, admin_json
from tests.servers import AtollServer, wait_until


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
    finally:
        stop.set()
        thread.join(10)
        subscriber.close()
    row = rows["pubsub-0"]
    assert row["health"].startswith("ok (") and row["health"].endswith("ms)")
    status = row["pubsub"]
    assert status["pid"] == row["pid"] and status["uptime"] > 0 and status["rss"] > 0
    assert (status["channels"], status["patterns"], status["shard_channels"]) == (2, 1, 0)
    assert sorted(status["gateways"]) == ["gateway-0", "gateway-1"]
    assert status["messages"] >= 51 and status["messages_per_sec"] > 0
    lines = text.splitlines()
    header = lines.index(next(line for line in lines if line.split()[:2] == ["name", "channels"]))
    assert lines[header + 1].split()[:4] == ["pubsub-0", "2", "1", "0"]
