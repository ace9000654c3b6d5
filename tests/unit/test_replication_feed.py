"""A shard's effects feed for replication: the cut mark sits exactly between the effects of
the commands before and after ``__REPL_BEGIN`` (also within one batch), and a replica's shard
never expires keys itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shard import wire
from shard.actor import ShardExecutor
from shard.replication import REPL_CUT, REPL_EFFECTS
from tests.unit.shard_calls import Clock, call


class FakeRouter:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def send_multipart(self, parts: tuple[bytes, bytes]) -> None:
        identity, payload = parts
        batch_id, items = wire.unpack(payload)
        assert batch_id == wire.UNSOLICITED
        self.sent.extend((identity, item) for item in items)


def _entry(*argv: bytes) -> list[Any]:
    return [wire.meta(0, False, structured=True), list(argv)]


def test_cut_mark_splits_one_batch(tmp_path: Path) -> None:
    executor = ShardExecutor(0, {"databases": 16})
    router = FakeRouter()
    executor.busy_socket = router  # type: ignore[assignment]
    call(executor, "set", "before-any", 1)  # no replica yet: nothing recorded
    part = str(tmp_path / "part").encode()
    executor.execute_batch([_entry(b"set", b"a", b"1"), _entry(b"__repl_begin", b"t1", part),
                            _entry(b"set", b"b", b"2")], identity=b"gw")
    executor.aof.commit()  # what the actor loop does before the batch's replies leave
    items = [item for identity, item in router.sent if identity == b"gw"]
    assert items == [[REPL_CUT, b"t1"], [REPL_EFFECTS, [[0, [b"set", b"b", b"2"]]]]]
    job = executor.persistence.job
    assert job is not None
    job.complete()
    assert b"before-any" in executor.ks.dbs[0].data and b"a" in executor.ks.dbs[0].data
    call(executor, "__snapshot_end", "t1", "1", "0")
    router.sent.clear()
    executor.execute_batch([_entry(b"set", b"c", b"3"), _entry(b"__repl_begin", b"t2", part),
                            _entry(b"set", b"d", b"4")], identity=b"gw")
    executor.aof.commit()
    assert [item for _, item in router.sent] == [
        [REPL_EFFECTS, [[0, [b"set", b"c", b"3"]]]], [REPL_CUT, b"t2"],
        [REPL_EFFECTS, [[0, [b"set", b"d", b"4"]]]]]
    call(executor, "__snapshot_finish", "t2")
    call(executor, "__snapshot_end", "t2", "1", "0")


def test_replica_shard_does_not_expire_keys() -> None:
    clock = Clock()
    executor = ShardExecutor(0, {"databases": 16}, clock=clock)
    call(executor, "set", "k", "v", "px", 100)
    assert call(executor, "__repl_replica", "1") is not None
    clock.advance(1000)
    executor.ks.active_expire()
    assert b"k" in executor.ks.dbs[0].data
    call(executor, "__repl_replica", "0")
    executor.ks.active_expire()
    assert b"k" not in executor.ks.dbs[0].data
