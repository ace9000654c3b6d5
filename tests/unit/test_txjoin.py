"""The replication actor joins a cross-shard transaction's parts into one MULTI/EXEC
(replication/txjoin.py), keeping every shard's order."""

from __future__ import annotations

from typing import Any

from replication.txjoin import TxJoiner, wrap


class FakeLoop:
    def __init__(self) -> None:
        self.timers: list[Any] = []

    def call_later(self, delay: float, callback: Any) -> Any:
        loop = self

        class Handle:
            def cancel(self) -> None:
                if self in loop.timers:
                    loop.timers.remove(self)

        handle = Handle()
        handle.callback = callback  # type: ignore[attr-defined]
        self.timers.append(handle)
        return handle

    def fire(self) -> None:
        timers, self.timers = self.timers, []
        for handle in timers:
            handle.callback()


def _joiner() -> tuple[TxJoiner, list[Any], FakeLoop]:
    out: list[Any] = []
    loop = FakeLoop()
    return TxJoiner(lambda effects: out.extend(argv for _, argv in effects), loop), out, loop


def test_two_parts_become_one_multi_exec_and_later_effects_wait() -> None:
    joiner, out, _ = _joiner()
    joiner.part(0, 7, 2, [(0, [b"set", b"a", b"1"])])
    joiner.effects(0, [(0, [b"set", b"a", b"2"])])  # after the transaction on shard 0: waits
    joiner.effects(1, [(0, [b"set", b"z", b"0"])])  # shard 1 before its part: flows
    assert out == [[b"set", b"z", b"0"]]
    joiner.part(1, 7, 2, [(0, [b"set", b"b", b"1"])])
    assert out[1:] == [[b"multi"], [b"set", b"a", b"1"], [b"set", b"b", b"1"], [b"exec"],
                       [b"set", b"a", b"2"]]
    assert not joiner.queues


def test_a_single_part_is_written_at_once() -> None:
    joiner, out, _ = _joiner()
    joiner.part(1, 3, 1, [(0, [b"set", b"a", b"1"]), (0, [b"set", b"b", b"1"])])
    assert out == [[b"multi"], [b"set", b"a", b"1"], [b"set", b"b", b"1"], [b"exec"]]


def test_crossed_releases_are_split_per_shard_after_the_timeout() -> None:
    joiner, out, loop = _joiner()
    joiner.part(0, 1, 2, [(0, [b"set", b"a", b"1"])])
    joiner.part(0, 2, 2, [(0, [b"set", b"c", b"2"])])
    joiner.part(1, 2, 2, [(0, [b"set", b"d", b"2"])])
    joiner.part(1, 1, 2, [(0, [b"set", b"b", b"1"])])
    assert out == []  # each waits for the other
    loop.fire()
    # Every shard's order is kept: shard 0 writes tx 1 then tx 2, shard 1 tx 2 then tx 1.
    assert out.index([b"set", b"a", b"1"]) < out.index([b"set", b"c", b"2"])
    assert out.index([b"set", b"d", b"2"]) < out.index([b"set", b"b", b"1"])
    assert len([argv for argv in out if argv[0] == b"set"]) == 4
    assert not joiner.queues and not joiner.parts and not joiner.split


def test_a_part_that_never_comes_does_not_stop_the_stream() -> None:
    joiner, out, loop = _joiner()
    joiner.part(0, 5, 2, [(0, [b"set", b"a", b"1"])])
    joiner.effects(0, [(0, [b"del", b"a"])])
    loop.fire()
    assert out == [[b"set", b"a", b"1"], [b"del", b"a"]]
    joiner.part(1, 5, 2, [(0, [b"set", b"b", b"1"])])  # late: written alone
    assert out[-1] == [b"set", b"b", b"1"] and not joiner.split


def test_flush_writes_everything_queued() -> None:
    joiner, out, loop = _joiner()
    joiner.part(0, 1, 2, [(0, [b"set", b"a", b"1"])])
    joiner.part(1, 2, 2, [(0, [b"set", b"b", b"1"])])
    joiner.flush()
    assert len(out) == 2 and not joiner.queues and not loop.timers


def test_wrap_only_wraps_several_effects() -> None:
    assert wrap([(0, [b"set", b"a", b"1"])]) == [(0, [b"set", b"a", b"1"])]
    assert wrap([]) == []
