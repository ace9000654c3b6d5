"""SCAN while ``atoll-admin move-slots`` moves a third of the keyspace back and forth: every key
present for the whole scan is returned (Redis' guarantee), however the moves fall."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from admin.find import manifest
from server.control import ControlClient
from tests.integration.test_admin import ADMIN, fill
from tests.servers import AtollServer, wait_until

MOVING = "8192-13652"  # a third of the slots: shard 1's first two thirds


@pytest.fixture
def server(tmp_path: Path):
    srv = AtollServer(tmp_path, shards=2, gateways=2).start()
    yield srv
    srv.stop()


class BackAndForth:
    """Moves MOVING from shard 1 to shard 0 and back with atoll-admin until stopped."""

    def __init__(self, server: AtollServer) -> None:
        self.server = server
        self.stop = threading.Event()
        self.moves: list[tuple[str, float]] = []
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        source, target = "1", "0"
        while not self.stop.is_set():
            started = time.monotonic()
            done = subprocess.run(
                [ADMIN, "--dir", str(self.server.dir), "move-slots", "--from", source, "--to",
                 target, "--slots", MOVING, "--group", "64"],
                capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                self.errors.append(done.stderr + done.stdout)
                return
            self.moves.append((f"{source}->{target}", time.monotonic() - started))
            source, target = target, source

    def __enter__(self) -> BackAndForth:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(120)


def test_scan_sees_every_key_while_slots_move(server: AtollServer) -> None:
    client = server.client()
    keys = set(fill(client, 10000))
    context: zmq.Context[Any] = zmq.Context()
    info = manifest(str(server.dir), None)
    supervisor = ControlClient(context, info["control"]["supervisor"], 5.0)

    def version() -> int:
        return int(supervisor.call("slots")["version"])

    seen: list[bytes] = []
    versions_during = 0
    steps = 0
    started = time.monotonic()
    try:
        with BackAndForth(server) as mover:
            wait_until(lambda: version() > 0, timeout=60, what="the first moved group")
            cursor, last = 0, version()
            while True:
                cursor, batch = client.scan(cursor, count=10)
                seen.extend(batch)
                steps += 1
                if cursor == 0:
                    break
                if steps % 10 == 0:  # let a group move between every 10 steps
                    wait_until(lambda v=last: version() > v, timeout=60, what="a moved group")
                    versions_during += version() - last
                    last = version()
            seconds = time.monotonic() - started
        assert mover.errors == []
    finally:
        supervisor.close()
        context.term()
    missing = keys - set(seen)
    print(f"scan: {steps} steps, {len(seen)} keys returned ({len(set(seen))} distinct) for "
          f"{len(keys)} keys in {seconds:.1f}s; {versions_during} groups moved during the scan; "
          f"moves {mover.moves}")
    assert versions_during >= 50  # the moves really happened under the scan
    assert not missing, f"{len(missing)} keys never returned, e.g. {sorted(missing)[:5]}"
    assert set(seen) <= keys
    assert client.dbsize() == len(keys)
