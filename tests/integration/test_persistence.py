"""Snapshots on a real server: SAVE/BGSAVE files load back (into other shard counts and into a
real redis-server), Redis' files load into Atoll, save on SHUTDOWN/SIGTERM and save points,
and a corrupt file stops the start-up with a message naming it."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from persistence.rdb_reader import FileReader
from tests import rdb_data
from tests.servers import ATOLL, ROOT, AtollServer, RedisServer, free_port, wait_until


def _persistence(client) -> dict:
    return client.info("persistence")


def test_save_then_restart_with_other_shard_counts(tmp_path: Path) -> None:
    server = AtollServer(tmp_path, shards=2).start()
    try:
        client = server.client()
        rdb_data.fill(client)
        expected = rdb_data.contents(client)
        assert client.save()
    finally:
        server.stop()
    for shards in (3, 1):
        server = AtollServer(tmp_path, shards=shards).start()
        try:
            assert rdb_data.contents(server.client()) == expected, shards
        finally:
            server.stop()


def test_redis_loads_atoll_snapshot_and_atoll_loads_redis_snapshot(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "atoll", tmp_path / "redis"
    ours.mkdir()
    theirs.mkdir()
    server = AtollServer(ours).start()
    try:
        client = server.client()
        rdb_data.fill(client)
        expected = rdb_data.contents(client)
        assert client.save()
    finally:
        server.stop()
    check = subprocess.run(["redis-check-rdb", str(ours / "dump.rdb")], capture_output=True, text=True)
    assert "RDB looks OK" in check.stdout, check.stdout
    shutil.copy(ours / "dump.rdb", theirs / "dump.rdb")
    redis_server = RedisServer(theirs).start()
    try:
        assert rdb_data.contents(redis_server.client()) == expected
        redis_server.client().flushall()
        rdb_data.fill(redis_server.client(), seed=9)
        expected = rdb_data.contents(redis_server.client())
        redis_server.client().save()
    finally:
        redis_server.stop()
    shutil.copy(theirs / "dump.rdb", ours / "dump.rdb")
    server = AtollServer(ours).start()
    try:
        assert rdb_data.contents(server.client()) == expected
    finally:
        server.stop()


def test_bgsave_is_point_in_time_while_writes_continue(tmp_path: Path) -> None:
    server = AtollServer(tmp_path).start()
    try:
        client = server.client()
        for start in range(0, 200_000, 2000):
            client.mset({b"k%d" % i: b"old" for i in range(start, start + 2000)})
        client.rpush("list", *range(100))
        before = client.lastsave()
        assert client.bgsave()
        pipe = client.pipeline(transaction=False)
        for i in range(0, 200_000, 50):
            pipe.set(b"k%d" % i, b"new")
            pipe.rpush("list", "more")
        pipe.set("created-after", "x")
        pipe.execute()
        # The writes ran while the walk went on (else this test would prove nothing).
        assert _persistence(client)["rdb_bgsave_in_progress"] == 1
        wait_until(lambda: _persistence(client)["rdb_bgsave_in_progress"] == 0, timeout=60,
                   what="bgsave end")
        info = _persistence(client)
        assert info["rdb_last_bgsave_status"] == "ok" and info["rdb_saves"] == 1
        assert client.lastsave() >= before
    finally:
        server.stop()
    records = {r.key: r.data for r in FileReader((tmp_path / "dump.rdb").read_bytes()).records()}
    assert len(records) == 200_001
    assert all(records[b"k%d" % i] == b"old" for i in range(0, 200_000, 50))
    assert records[b"list"] == [b"%d" % i for i in range(100)]


def test_save_on_sigterm_and_shutdown_options(tmp_path: Path) -> None:
    with_points = ("--save", "3600 1")
    server = AtollServer(tmp_path, *with_points).start()
    server.client().set("a", "1")
    assert server.stop() == 0  # SIGTERM with save points: saved
    server = AtollServer(tmp_path).start()
    client = server.client()
    assert client.get("a") == b"1"
    client.set("b", "2")
    try:
        client.shutdown(save=True)
    except Exception:  # the connection closes
        pass
    server.proc.wait(30)
    server = AtollServer(tmp_path, *with_points).start()
    client = server.client()
    assert client.get("b") == b"2"
    client.set("c", "3")
    try:
        client.shutdown(nosave=True)
    except Exception:
        pass
    server.proc.wait(30)
    server = AtollServer(tmp_path).start()
    try:
        assert server.client().get("c") is None and server.client().get("b") == b"2"
    finally:
        server.stop()


def test_save_point_triggers_a_background_save(tmp_path: Path) -> None:
    server = AtollServer(tmp_path, "--save", "1 1").start()
    try:
        server.client().set("x", "1")
        wait_until(lambda: (tmp_path / "dump.rdb").exists(), timeout=20, what="dump.rdb")
        wait_until(lambda: _persistence(server.client())["rdb_changes_since_last_save"] == 0,
                   timeout=20, what="reset")
    finally:
        server.stop()


def test_corrupt_snapshot_stops_start_up_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "dump.rdb").write_bytes(b"REDIS0010\xfa\x05hello")
    log = tmp_path / "atoll.log"
    with open(log, "wb") as out:
        proc = subprocess.run(
            [ATOLL, str(ROOT / "conf" / "atoll.conf"), "--port", str(free_port()), "--dir",
             str(tmp_path), "--save", "", "--shards", "2"],
            stdout=out, stderr=subprocess.STDOUT, timeout=60)
    assert proc.returncode != 0
    assert str(tmp_path / "dump.rdb") in log.read_text()
    assert time.time()  # the run ended on its own: no restart loop


def test_bgsave_never_cuts_a_cross_shard_command_in_half(tmp_path: Path) -> None:
    """Writers MSET 8 keys on every shard to one value; each snapshot taken meanwhile must
    hold the 8 keys with one value (the cut happens under intents on every shard)."""
    import threading

    # Two gateways: with one, the cut and an MSET's parts reach every shard in the same order
    # through the same sockets, and the test could not fail.
    server = AtollServer(tmp_path, shards=4, gateways=2).start()
    keys = [b"group:%d" % i for i in range(8)]
    stop = threading.Event()

    def writer(seed: int) -> None:
        client = server.client()
        n = 0
        while not stop.is_set():
            client.mset(dict.fromkeys(keys, b"%d-%d" % (seed, n)))
            n += 1

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(6)]
    try:
        client = server.client()
        client.mset(dict.fromkeys(keys, b"start"))
        for thread in threads:
            thread.start()
        for _ in range(25):
            saves = _persistence(client)["rdb_saves"]
            assert client.bgsave()
            wait_until(lambda saves=saves: _persistence(client)["rdb_saves"] > saves, timeout=60,
                       what="bgsave end")
            records = {r.key: r.data for r in
                       FileReader((tmp_path / "dump.rdb").read_bytes()).records()}
            values = {records[key] for key in keys}
            assert len(values) == 1, f"a snapshot holds a half-applied MSET: {values}"
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        server.stop()
