"""atoll-admin against a real server: every subcommand, and an online slot move of a third of
the keyspace while a writer and a reader run (zero wrong replies, no key lost)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.servers import AtollServer, wait_until

ADMIN = str(Path(sys.executable).parent / "atoll-admin")


def admin(server: AtollServer, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([ADMIN, "--dir", str(server.dir), *args], capture_output=True,
                          text=True, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr + done.stdout
    return done


def admin_json(server: AtollServer, *args: str) -> Any:
    return json.loads(admin(server, "--json", *args).stdout)


@pytest.fixture
def server(tmp_path: Path):
    srv = AtollServer(tmp_path, shards=2, gateways=2).start()
    yield srv
    srv.stop()


def fill(client: redis.Redis, count: int, prefix: str = "k") -> dict[bytes, bytes]:
    data = {f"{prefix}:{i}".encode(): f"v{i}".encode() for i in range(count)}
    pipe = client.pipeline(transaction=False)
    for i, (key, value) in enumerate(data.items()):
        pipe.set(key, value)
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    return data


def test_status_shards_top_save(server: AtollServer) -> None:
    client = server.client()
    fill(client, 500)
    client.set("ttl-key", "x", ex=100)
    rows = admin_json(server, "status")
    assert [r["role"] for r in rows] == ["supervisor", "shard", "shard", "gateway", "gateway",
                                          "replication", "pubsub"]
    assert all(r["pid"] > 0 and r["rss"] > 0 and r["health"].startswith("ok") for r in rows)
    shards = admin_json(server, "shards")
    assert sum(sum(s["keys"].values()) for s in shards) == client.dbsize() == 501
    assert sum(sum(s["expires"].values()) for s in shards) == 1
    assert sum(s["slots"] for s in shards) == 16384
    assert all(s["commands"] > 0 and s["latency_p99_us"] >= s["latency_p50_us"] > 0
               for s in shards)
    info = client.info("stats")
    assert len(str(info["atoll_shard_latency_p99_us"]).split(",")) == 2  # INFO has them too
    plain = admin(server, "shards").stdout
    assert plain.splitlines()[0].split()[:3] == ["shard", "slots", "keys"]
    frames = admin(server, "--json", "top", "--iterations", "2", "--interval", "0.2")
    lines = [json.loads(line) for line in frames.stdout.splitlines()]
    assert len(lines) == 2 and all(len(f["shards"]) == 2 for f in lines)
    assert "shard" in admin(server, "top", "--iterations", "1").stdout
    assert admin_json(server, "save")["saved"] is True
    assert (server.dir / "dump.rdb").exists()
    refused = admin(server, "save", "--shard", "0", check=False)
    assert refused.returncode == 1 and "rewrite-log --shard" in refused.stderr
    rewrite = admin(server, "rewrite-log")  # BGREWRITEAOF on every shard
    assert "rewriting started" in rewrite.stdout
    one = admin_json(server, "rewrite-log", "--shard", "1")
    assert one["ok"] and one["shard"] == 1


def test_keygen(tmp_path: Path) -> None:
    done = subprocess.run([ADMIN, "keygen", "--out", str(tmp_path)], capture_output=True,
                          text=True, check=True)
    paths = done.stdout.split()
    assert len(paths) == 4 and all(len(Path(p).read_bytes().strip()) == 40 for p in paths)
    assert oct(Path(paths[1]).stat().st_mode & 0o777) == "0o600"


def test_restart_shard_keeps_data_and_serves(server: AtollServer) -> None:
    client = server.client()
    data = fill(client, 2000)
    report = admin_json(server, "restart", "--shard", "1")
    assert report["error"] is None and report["keys_moved"] > 0
    rows = {r["name"]: r for r in admin_json(server, "status")}
    assert rows["shard-1"]["restarts"] == 1 and rows["shard-1"]["health"].startswith("ok")
    assert client.mget(list(data)) == list(data.values())


class Load:
    """A writer (INCR on counters, SET of new keys) and a reader (GET of known keys) that
    count every reply that is not what it must be."""

    def __init__(self, server: AtollServer, known: dict[bytes, bytes]) -> None:
        self.server = server
        self.known = list(known.items())
        self.stop = threading.Event()
        self.violations: list[str] = []
        self.counters: dict[bytes, int] = {}
        self.written: dict[bytes, bytes] = {}
        self.ops = {"writer": 0, "reader": 0}
        self.threads = [threading.Thread(target=self.guard, args=(self.writer,)),
                        threading.Thread(target=self.guard, args=(self.reader,))]

    def guard(self, loop: Any) -> None:
        try:
            loop()
        except redis.RedisError as exc:  # an error reply is a wrong reply too
            self.violations.append(f"{loop.__name__}: {exc!r}")

    def writer(self) -> None:
        client = self.server.client()
        i = 0
        while not self.stop.is_set():
            key = f"counter:{i % 3000}".encode()
            got = client.incr(key)
            want = self.counters.get(key, 0) + 1
            self.counters[key] = want
            if got != want:
                self.violations.append(f"INCR {key!r}: {got} != {want}")
            new = f"new:{i}".encode()
            client.set(new, b"n%d" % i)
            self.written[new] = b"n%d" % i
            self.ops["writer"] += 2
            i += 1

    def reader(self) -> None:
        client = self.server.client()
        i = 0
        while not self.stop.is_set():
            batch = [self.known[(i * 7 + j) % len(self.known)] for j in range(10)]
            got = client.mget([k for k, _ in batch])
            for (key, want), value in zip(batch, got, strict=True):
                if value != want:
                    self.violations.append(f"GET {key!r}: {value!r} != {want!r}")
            self.ops["reader"] += 1
            i += 1

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def test_move_a_third_of_the_keyspace_under_load(server: AtollServer) -> None:
    client = server.client()
    known = fill(client, 20000)
    with Load(server, known) as load:
        wait_until(lambda: load.ops["writer"] > 200 and load.ops["reader"] > 50, what="load")
        started = time.monotonic()
        report = admin_json(server, "move-slots", "--from", "0", "--to", "1", "--slots", "0-5460")
        seconds = time.monotonic() - started
        ops_during = dict(load.ops)
        wait_until(lambda: load.ops["writer"] > ops_during["writer"] + 200, what="writes after")
    assert report["error"] is None and report["slots_done"] == 5461
    assert load.violations == []
    assert ops_during["writer"] > 0 and ops_during["reader"] > 0
    print(f"moved {report['keys_moved']} keys in {seconds:.2f}s; ops {load.ops}")
    expected = {**known, **load.written}
    expected.update({k: str(v).encode() for k, v in load.counters.items()})
    assert client.dbsize() == len(expected)
    keys = list(expected)
    for first in range(0, len(keys), 5000):
        chunk = keys[first : first + 5000]
        assert client.mget(chunk) == [expected[k] for k in chunk]
    counts = admin_json(server, "slots")["counts"]
    assert counts == [2731, 13653]
    shards = admin_json(server, "shards")
    assert sum(sum(s["keys"].values()) for s in shards) == len(expected)


def test_slot_map_survives_a_restart_and_rebalance(tmp_path: Path) -> None:
    srv = AtollServer(tmp_path, shards=2).start()
    try:
        client = srv.client()
        data = fill(client, 3000)
        admin(srv, "move-slots", "--from", "1", "--to", "0", "--slots", "8192-9000")
        assert admin_json(srv, "save")["saved"]
    finally:
        srv.stop()
    srv.start()
    try:
        client = srv.client()
        slots = admin_json(srv, "slots")
        assert slots["counts"] == [8192 + 809, 8192 - 809]
        assert client.mget(list(data)) == list(data.values())
        report = admin_json(srv, "rebalance")
        assert report["error"] is None and report["slots_done"] == 809
        assert admin_json(srv, "slots")["counts"] == [8192, 8192]
        assert client.mget(list(data)) == list(data.values())
    finally:
        srv.stop()


def test_moved_keys_survive_a_crash_with_the_append_only_log(tmp_path: Path) -> None:
    """Slots move, then the whole server is SIGKILLed: each shard's log has the keys that moved
    in (and not those that moved out), so every key comes back on its new shard."""
    import signal

    srv = AtollServer(tmp_path, "--appendonly", "yes", "--appendfsync", "always",
                      shards=2).start()
    try:
        c = srv.client()
        values = {f"key:{i}": f"v{i}" for i in range(3000)}
        c.mset(values)
        admin(srv, "move-slots", "--from", "0", "--to", "1", "--slots", "0-5000")
        c.set("key:after", "moved-map")
        values["key:after"] = "moved-map"
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        # The shards and gateways notice their supervisor is gone and exit.
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in _children(srv)),
                   what="actors gone")
        srv.start()
        c = srv.client()
        assert c.dbsize() == len(values)
        assert dict(zip(values, c.mget(list(values)), strict=True)) == {
            k: v.encode() for k, v in values.items()}
        assert admin_json(srv, "slots")  # the moved map came back too
    finally:
        srv.stop()


def _children(srv: AtollServer) -> list[int]:
    pids = []
    for line in srv.log.read_text(errors="replace").splitlines():
        if "ready to accept" in line or "Shard" in line and "ready" in line:
            pids.append(int(line.split(":")[0]))
    return pids
