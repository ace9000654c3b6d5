"""One shard's SCAN step (shard/scan.py) and the log of keys it gave away to other shards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shard.actor import ShardExecutor
from shard.control import ShardControl
from shard.scan import MOVED, SCANS
from tests.unit.shard_calls import call


@pytest.fixture(autouse=True)
def fresh_log() -> Iterator[None]:
    MOVED.keys.clear()
    SCANS.snapshots.clear()
    yield
    MOVED.keys.clear()
    SCANS.snapshots.clear()


def scan_all(ex: ShardExecutor, since: int, count: int = 3, kind: str = "",
             between: Any = None) -> list[bytes]:
    cursor, seen = 0, []
    while True:
        cursor, keys, got_since = call(ex, "__scan", cursor, count, "*", kind, since)
        assert got_since == since
        seen.extend(keys)
        if between is not None:
            between()
            between = None
        if cursor == 0:
            return seen


def give_away(ex: ShardExecutor, keys: list[bytes], version: int) -> None:
    ShardControl(ex, None).give_away({"slots": [], "keys": [[0, k] for k in keys],
                                      "version": version})


def test_keys_given_away_after_the_scan_started_are_still_returned(ex: ShardExecutor) -> None:
    for i in range(10):
        call(ex, "set", f"s{i}", "v")
    call(ex, "rpush", "list", "x")
    give_away(ex, [b"s0", b"list"], version=7)
    assert call(ex, "dbsize") == 9
    assert sorted(scan_all(ex, since=6)) == sorted([f"s{i}".encode() for i in range(10)]
                                                   + [b"list"])
    assert b"s0" not in scan_all(ex, since=7)  # moved before that scan started
    assert scan_all(ex, since=6, kind="list") == [b"list"]  # TYPE uses the remembered type
    assert b"list" not in scan_all(ex, since=6, kind="string")


def test_a_key_leaving_during_the_walk_is_returned(ex: ShardExecutor) -> None:
    names = [f"k{i}".encode() for i in range(12)]
    for name in names:
        call(ex, "set", name, "v")
    # after the first step, every key moves away (the scan started at version 3)
    seen = scan_all(ex, since=3, between=lambda: give_away(ex, names, version=4))
    assert sorted(seen) == sorted(names)


def test_a_key_that_came_back_leaves_the_log(ex: ShardExecutor) -> None:
    call(ex, "set", "k", "v")
    give_away(ex, [b"k"], version=2)
    assert (0, b"k") in MOVED.keys
    ShardControl(ex, None).import_keys({"items": [[0, b"k", b"string", b"v", -1]]})
    assert (0, b"k") not in MOVED.keys
    call(ex, "del", "k")
    assert scan_all(ex, since=0) == []


def test_the_log_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type(MOVED), "LIMIT", 4)
    for i in range(6):
        MOVED.gave_away(i + 1, 0, b"k%d" % i, b"string")
    assert len(MOVED.keys) == 4 and MOVED.forgotten == 2
    assert MOVED.since(0, 0) == [b"k2", b"k3", b"k4", b"k5"]
