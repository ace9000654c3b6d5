"""Crash safety of the append-only log: acknowledged writes survive SIGKILL of the whole
server or of one shard, for appendfsync always and everysec; truncated and corrupted logs.

What is promised (and checked here): in every appendfsync mode a shard write(2)s a batch's
effects to its log before the batch's replies leave, so a process crash loses no acknowledged
write.  fsync only matters for an OS crash or power loss (not testable here): ``always``
fsyncs before replying; ``everysec`` may lose the last ~1-2 s.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.servers import AtollServer, wait_until

# Keys on both shards of a 2-shard server (slots 0-8191 on shard 0, the rest on shard 1):
# {a} is slot 15495 (shard 1), {b} 3300 and {c} 7365 (shard 0).
COUNTER, LIST, HASH = "counter{a}", "list{b}", "hash{c}"


class Writer(threading.Thread):
    """INCR / RPUSH / HSET in a loop, counting what was sent and what was acknowledged."""

    def __init__(self, port: int, tolerate_errors: bool) -> None:
        super().__init__(daemon=True)
        # No automatic retries: redis-py (>= 6) would send a command again after a connection
        # error, and a write that was logged before its shard died would then land twice.
        self.client = redis.Redis(port=port, socket_timeout=20, protocol=2,
                                  retry=Retry(NoBackoff(), 0))
        self.tolerate_errors = tolerate_errors
        self.attempted = [0, 0, 0]
        self.acked = [0, 0, 0]
        self.stop = threading.Event()
        self.failure: Exception | None = None

    def run(self) -> None:
        steps = [lambda n: self.client.incr(COUNTER),
                 lambda n: self.client.rpush(LIST, n),
                 lambda n: self.client.hset(HASH, f"f{n}", n)]
        while not self.stop.is_set():
            for i, step in enumerate(steps):
                self.attempted[i] += 1
                try:
                    step(self.attempted[i])
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
                    if not self.tolerate_errors:
                        self.failure = exc
                        return
                    time.sleep(0.01)  # the shard is restarting
                    continue
                self.acked[i] += 1


def _check(r: redis.Redis, writer: Writer) -> None:
    """Every acknowledged write is there; nothing beyond what was sent; list order kept."""
    counter = int(r.get(COUNTER) or 0)
    items = [int(x) for x in r.lrange(LIST, 0, -1)]
    fields = r.hlen(HASH)
    assert writer.acked[0] <= counter <= writer.attempted[0]
    assert writer.acked[1] <= len(items) <= writer.attempted[1]
    assert items == sorted(set(items))
    assert writer.acked[2] <= fields <= writer.attempted[2]
    assert writer.acked[0] > 0 and writer.acked[1] > 0 and writer.acked[2] > 0


def _kill_everything(server: AtollServer) -> None:
    assert server.proc is not None
    children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True,
                              text=True).stdout.split()
    for pid in [server.proc.pid, *map(int, children)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.proc.wait()
    for pid in map(int, children):  # orphans: wait until they are gone, not merely dying
        wait_until(lambda p=pid: not _alive(p), what=f"pid {pid} gone")


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status


def _shard_pid(server: AtollServer, index: int, nth: int = 1) -> int:
    pattern = re.compile(rf"Shard {index} ready .*\(pid (\d+)\)")

    def find() -> int | None:
        found = pattern.findall(server.log.read_text())
        return int(found[nth - 1]) if len(found) >= nth else None

    return int(wait_until(find, timeout=30, what=f"shard {index} ready #{nth}"))


def _crash_whole_server(tmp_path: Path, fsync: str, seconds: float,
                        before: Writer | None = None) -> Writer:
    """Write, SIGKILL everything, restart on the same directory and check; answers the
    writer, whose counts go on from ``before``'s (an earlier round on the same files)."""
    args = ("--appendonly", "yes", "--appendfsync", fsync)
    server = AtollServer(tmp_path, *args, shards=2).start()
    try:
        writer = Writer(server.port, tolerate_errors=True)
        if before is not None:
            writer.attempted, writer.acked = list(before.attempted), list(before.acked)
        writer.start()
        start = min(writer.acked)
        wait_until(lambda: min(writer.acked) >= start + 20, what="first acknowledgements")
        time.sleep(random.uniform(0.05, seconds))  # the crash comes at a random moment
        _kill_everything(server)
        writer.stop.set()
        writer.join(30)
        assert not writer.is_alive()
    finally:
        server.stop()
    restarted = AtollServer(tmp_path, *args, shards=2).start()
    try:
        _check(restarted.client(), writer)
    finally:
        restarted.stop()
    return writer


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_sigkill_of_the_whole_server_loses_no_acknowledged_write(tmp_path: Path,
                                                                 fsync: str) -> None:
    _crash_whole_server(tmp_path, fsync, 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("fsync", ["always", "everysec", "no"])
def test_repeated_sigkill_soak(tmp_path: Path, fsync: str) -> None:
    writer = None
    for _ in range(5):
        writer = _crash_whole_server(tmp_path, fsync, 3.0, writer)


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_sigkill_of_one_shard_loses_no_acknowledged_write(tmp_path: Path, fsync: str) -> None:
    server = AtollServer(tmp_path, "--appendonly", "yes", "--appendfsync", fsync, shards=2).start()
    try:
        writer = Writer(server.port, tolerate_errors=True)
        writer.start()
        wait_until(lambda: min(writer.acked) >= 20, what="first acknowledgements")
        time.sleep(random.uniform(0.05, 0.5))
        os.kill(_shard_pid(server, 0), signal.SIGKILL)
        _shard_pid(server, 0, nth=2)  # the supervisor restarted it and it loaded its log
        before = list(writer.acked)
        wait_until(lambda: min(a - b for a, b in zip(writer.acked, before, strict=True)) >= 20, timeout=30,
                   what="writes acknowledged after the restart")
        writer.stop.set()
        writer.join(30)
        _check(server.client(), writer)
    finally:
        server.stop()


def test_restarted_shard_answers_only_after_loading(tmp_path: Path) -> None:
    """Clients wait while a shard reloads its log: no reply ever shows missing data."""
    server = AtollServer(tmp_path, "--appendonly", "yes", shards=2).start()
    try:
        r = server.client()
        pipe = r.pipeline(transaction=False)
        for i in range(30000):
            pipe.set(f"key{{b}}{i}", i)  # all on shard 0
        pipe.execute()
        os.kill(_shard_pid(server, 0), signal.SIGKILL)
        seen = 0
        while len(re.findall(r"Shard 0 ready", server.log.read_text())) < 2 or seen < 50:
            i = random.randrange(30000)
            try:
                value = r.get(f"key{{b}}{i}")
            except (redis.ConnectionError, redis.TimeoutError):
                continue
            except redis.ResponseError as exc:
                assert str(exc).startswith("LOADING"), exc
                continue
            assert value == str(i).encode()
            seen += 1
        assert r.dbsize() == 30000
    finally:
        server.stop()


def _stopped_server_with_log(tmp_path: Path) -> tuple[Path, int]:
    """Write 100 keys on shard 0 with the log on, stop cleanly; answer shard 0's log file."""
    server = AtollServer(tmp_path, "--appendonly", "yes", shards=2).start()
    r = server.client()
    for i in range(100):
        r.set(f"k{{b}}{i}", "v" * 10)
    assert server.stop() == 0
    path = tmp_path / "appendonlydir" / "appendonly-shard-0-of-2.aof"
    return path, path.stat().st_size


def _start_fails(tmp_path: Path, *args: str) -> str:
    server = AtollServer(tmp_path, "--appendonly", "yes", *args, shards=2)
    offset = server.log.stat().st_size
    done = subprocess.run(server.args, capture_output=True, timeout=60)
    assert done.returncode != 0
    return server.log.read_text()[offset:] + done.stdout.decode() + done.stderr.decode()


def test_truncated_log_loads_with_a_warning(tmp_path: Path) -> None:
    path, size = _stopped_server_with_log(tmp_path)
    os.truncate(path, size - 5)  # the last SET lost its tail: a crash during a write
    server = AtollServer(tmp_path, "--appendonly", "yes", shards=2).start()
    try:
        r = server.client()
        assert [r.exists(f"k{{b}}{i}") for i in range(100)] == [1] * 99 + [0]
        assert "short read while loading the AOF file" in server.log.read_text()
        r.set("k{b}99", "again")  # the file was cut back to a command boundary
    finally:
        server.stop()
    server = AtollServer(tmp_path, "--appendonly", "yes", shards=2).start()
    try:
        assert server.client().get("k{b}99") == b"again"
    finally:
        server.stop()


def test_truncated_log_refused_when_aof_load_truncated_is_off(tmp_path: Path) -> None:
    path, size = _stopped_server_with_log(tmp_path)
    os.truncate(path, size - 5)
    output = _start_fails(tmp_path, "--aof-load-truncated", "no")
    assert "Unexpected end of file" in output and str(path) in output


def test_corruption_in_the_middle_refuses_to_start(tmp_path: Path) -> None:
    path, size = _stopped_server_with_log(tmp_path)
    data = bytearray(path.read_bytes())
    middle = data.index(b"*3\r\n$3\r\nset", size // 2)
    data[middle] = ord("X")
    path.write_bytes(bytes(data))
    output = _start_fails(tmp_path)
    assert "Bad file format reading the append only file" in output and str(path) in output


def test_bgrewriteaof_compacts_and_keeps_writes_made_meanwhile(tmp_path: Path) -> None:
    args = ("--appendonly", "yes", "--appendfsync", "always")
    server = AtollServer(tmp_path, *args, shards=2).start()
    try:
        r = server.client()
        for _ in range(2000):
            r.incr("n{a}")
        r.rpush("l{b}", *range(100))
        before = int(r.info("persistence")["aof_current_size"])
        assert r.bgrewriteaof() in (True, b"Background append only file rewriting started")
        for _ in range(50):  # writes during the rewrite go to the new log too
            r.incr("n{a}")
        wait_until(lambda: r.info("persistence")["aof_rewrite_in_progress"] == 0,
                   what="rewrite done")
        info = r.info("persistence")
        assert info["aof_rewrites"] == 1 and info["aof_last_bgrewrite_status"] == "ok"
        assert int(info["aof_current_size"]) < before
        r.incr("n{a}")
        _kill_everything(server)
    finally:
        server.stop()
    restarted = AtollServer(tmp_path, *args, shards=2).start()
    try:
        r = restarted.client()
        assert r.get("n{a}") == b"2051"
        assert r.lrange("l{b}", 0, -1) == [str(i).encode() for i in range(100)]
    finally:
        restarted.stop()


def test_logs_load_with_another_shard_count(tmp_path: Path) -> None:
    server = AtollServer(tmp_path, "--appendonly", "yes", shards=2).start()
    try:
        r = server.client()
        r.mset({f"key{i}": i for i in range(300)})
        r.set("ttl", "v", ex=1000)
        r.sadd("set", "a", "b", "c")
    finally:
        server.stop()
    for shards in (3, 1):
        server = AtollServer(tmp_path, "--appendonly", "yes", shards=shards).start()
        try:
            r = server.client()
            assert r.dbsize() == 302
            assert r.mget([f"key{i}" for i in range(300)]) == [str(i).encode() for i in range(300)]
            assert 0 < r.ttl("ttl") <= 1000
            assert r.smembers("set") == {b"a", b"b", b"c"}
        finally:
            server.stop()
        names = sorted(os.listdir(tmp_path / "appendonlydir"))
        assert names == [f"appendonly-shard-{i}-of-{shards}.aof" for i in range(shards)]


def test_swapdb_and_a_snapshot_reach_the_log_correctly(tmp_path: Path) -> None:
    """SWAPDB is logged (it changes the dataset) and a BGSAVE's bookkeeping is not: after a
    SIGKILL the swapped databases come back as they were."""
    server = AtollServer(tmp_path, "--appendonly", "yes", "--appendfsync", "always",
                         shards=2).start()
    try:
        r = server.client()
        r.mset({"a": 1, "b": 2})
        r.swapdb(0, 1)
        saves = int(r.info("persistence")["rdb_saves"])
        r.bgsave()
        wait_until(lambda: int(r.info("persistence")["rdb_saves"]) > saves, what="bgsave")
        r.set("c", 3)
        _kill_everything(server)
        server.start()
        r = server.client()
        assert r.dbsize() == 1 and r.get("c") == b"3"
        r1 = server.client(db=1)
        assert r1.mget("a", "b") == [b"1", b"2"]
    finally:
        server.stop()
