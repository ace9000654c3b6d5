"""A shard's snapshot walk on an executor (no processes): the file holds the data as it was
when the snapshot began, whatever the commands run between its steps did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from persistence import rdb
from persistence.assemble import assemble
from persistence.loader import load_into
from persistence.rdb_reader import FileReader
from shard.actor import ShardExecutor
from shard.reply import OK
from tests.unit.shard_calls import call


def _begin(ex: ShardExecutor, path: Path, token: bytes = b"t1") -> None:
    assert call(ex, "__snapshot_begin", token, str(path).encode()) is OK


def _file_contents(path: Path) -> dict[tuple[int, bytes], Any]:
    return {(r.db, r.key): (r.kind, sorted(r.data) if r.kind == rdb.SET else r.data, r.expire_ms)
            for r in FileReader(path.read_bytes()).records()}


def _finish(ex: ShardExecutor, tmp_path: Path, token: bytes = b"t1") -> Path:
    state = call(ex, "__snapshot_finish", token)
    assert state[b"state"] == b"done"
    target = tmp_path / "dump.rdb"
    assemble(str(target), [(state[b"path"].decode(), state[b"sections"])])
    assert call(ex, "__snapshot_end", token, "1", "12345") == 1
    return target


def test_snapshot_is_point_in_time_while_commands_change_data(ex: ShardExecutor, tmp_path: Path) -> None:
    for i in range(3000):
        call(ex, "set", f"k{i}", "old")
    call(ex, "rpush", "list", "a", "b")
    call(ex, "sadd", "set", "1", "2")
    call(ex, "hset", "h", "f", "v")
    call(ex, "zadd", "z", "1", "m")
    call(ex, "pexpire", "k1", "100000")
    _begin(ex, tmp_path / "part")
    job = ex.persistence.job
    assert job is not None
    job.step(0)  # one chunk only: most keys are still unsaved
    assert job.running
    call(ex, "set", "k2999", "new")  # a string not walked yet
    call(ex, "del", "k2998")
    call(ex, "rpush", "list", "c")  # in-place change of a collection
    call(ex, "sadd", "set", "3")
    call(ex, "hset", "h", "f", "changed")
    call(ex, "zincrby", "z", "5", "m")
    call(ex, "persist", "k1")
    call(ex, "set", "brand-new", "x")  # created after the snapshot began
    call(ex, "set", "k0", "after-walk")  # walked already
    target = _finish(ex, tmp_path)
    got = _file_contents(target)
    assert len(got) == 3004
    assert got[(0, b"k2999")] == (rdb.STRING, b"old", None)
    assert got[(0, b"k2998")] == (rdb.STRING, b"old", None)
    assert got[(0, b"k0")] == (rdb.STRING, b"old", None)
    assert got[(0, b"k1")] == (rdb.STRING, b"old", 1_000_000 + 100000)
    assert got[(0, b"list")] == (rdb.LIST, [b"a", b"b"], None)
    assert got[(0, b"set")] == (rdb.SET, [b"1", b"2"], None)
    assert got[(0, b"h")] == (rdb.HASH, {b"f": b"v"}, None)
    assert got[(0, b"z")] == (rdb.ZSET, [(b"m", 1.0)], None)
    assert (0, b"brand-new") not in got
    assert ex.persistence.job is None


def test_flushall_during_a_walk_completes_it_first(ex: ShardExecutor, tmp_path: Path) -> None:
    for i in range(2000):
        call(ex, "set", f"k{i}", "v")
    _begin(ex, tmp_path / "part")
    call(ex, "flushall")
    got = _file_contents(_finish(ex, tmp_path))
    assert len(got) == 2000


def test_second_begin_is_refused_and_dirty_resets_on_success(ex: ShardExecutor, tmp_path: Path) -> None:
    call(ex, "set", "a", "1")
    _begin(ex, tmp_path / "part")
    refused = call(ex, "__snapshot_begin", "other", str(tmp_path / "p2"))
    assert refused.message == "ERR Background save already in progress"
    call(ex, "set", "b", "2")  # a change after the start stays counted
    before = ex.ks.dirty
    _finish(ex, tmp_path)
    assert ex.ks.dirty == before - 1
    info = call(ex, "__persistence_info")
    assert info[b"last_save"] == 12345 and info[b"in_progress"] == 0


def test_load_keeps_only_the_keys_of_this_shards_slots(tmp_path: Path) -> None:
    records = [(b"key%d" % i, rdb.STRING, b"v%d" % i, None) for i in range(1000)]
    records.append((b"gone", rdb.STRING, b"x", 5))  # expired long ago
    data = rdb.encode_file([], [(0, records), (7, [(b"z", rdb.LIST, [b"a"], None)])])
    loaded = expired = 0
    for index in range(3):
        ex = ShardExecutor(index, {"databases": 16})
        count, skipped = load_into(ex, data, index, 3)
        assert 200 < count < 500  # contiguous slot ranges share the keys about evenly
        assert count == len(ex.ks.dbs[0].data) + len(ex.ks.dbs[7].data)
        loaded += count
        expired += skipped
    assert (loaded, expired) == (1001, 1)
