"""Joining a cross-shard transaction's parts into one MULTI/EXEC of the stream.

Each shard that ran hops of a transaction sends its part (``REPL_TX``: txid, how many shards
have parts, its effects) where the transaction released its intents there
(``shard/replication.py``).  The stream must keep every shard's order (a later command on one
of the transaction's keys follows the transaction), so each shard's items queue behind an
incomplete part of that shard; a transaction is written once all its parts are in and each
is at the head of its shard's queue, as ``MULTI`` + every part + ``EXEC``.

Two transactions may release on two shards in opposite orders (they held different keys
there), which would leave each waiting for the other; and a part may never come (its shard
restarted, which also ends the history).  So a queue whose head has not moved for
``SPLIT_AFTER_S`` writes that head's part on its own, as one MULTI/EXEC per shard (still in
every shard's order); the transaction's other parts follow alone too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from persistence.effects import EXEC, MULTI, Effect

SPLIT_AFTER_S = 0.05


def wrap(effects: list[Effect]) -> list[Effect]:
    """``effects`` as one MULTI/EXEC when there is more than one."""
    if len(effects) <= 1:
        return effects
    return [(effects[0][0], MULTI), *effects, (effects[-1][0], EXEC)]


class TxJoiner:
    def __init__(self, emit: Callable[[list[Effect]], None], loop: Any) -> None:
        self.emit = emit
        self.loop = loop
        self.queues: dict[int, deque[tuple[int, Any]]] = {}  # shard -> (txid or 0, effects)
        self.parts: dict[int, dict[int, list[Effect]]] = {}  # txid -> shard -> effects
        self.wanted: dict[int, int] = {}
        self.split: dict[int, int] = {}  # txid written per shard -> parts still to come
        self.timer: Any = None
        self.heads: dict[int, tuple[int, Any]] = {}  # the heads when the timer was armed

    def reset(self) -> None:
        self.queues, self.parts, self.wanted, self.split = {}, {}, {}, {}
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def flush(self) -> None:
        """Write everything queued now (a full sync's cut: the image's offset follows it)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        while self.queues:
            self.heads = {shard: queue[0] for shard, queue in self.queues.items()}
            self._unstick()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def effects(self, shard: int, effects: list[Effect]) -> None:
        queue = self.queues.get(shard)
        if queue:
            queue.append((0, effects))
        else:
            self.emit(effects)

    def part(self, shard: int, txid: int, shards: int, effects: list[Effect]) -> None:
        if txid in self.split:
            self._split_part_came(txid)
            self.effects(shard, wrap(effects))
            return
        if shards <= 1:
            self.effects(shard, wrap(effects))
            return
        self.parts.setdefault(txid, {})[shard] = effects
        self.wanted[txid] = shards
        self.queues.setdefault(shard, deque()).append((txid, effects))
        self._progress()

    def _split_part_came(self, txid: int) -> None:
        self.split[txid] -= 1
        if self.split[txid] <= 0:
            del self.split[txid]

    def _progress(self) -> None:
        moved = True
        while moved:
            moved = False
            for shard in list(self.queues):
                queue = self.queues.get(shard)
                while queue:
                    txid, effects = queue[0]
                    if not txid:
                        queue.popleft()
                        self.emit(effects)
                        continue
                    if self._ready(txid):
                        self._write(txid)
                        moved = True
                    break
                if shard in self.queues and not self.queues[shard]:
                    del self.queues[shard]
        if self.queues and self.timer is None:
            self.heads = {shard: queue[0] for shard, queue in self.queues.items()}
            self.timer = self.loop.call_later(SPLIT_AFTER_S, self._unstick)

    def _ready(self, txid: int) -> bool:
        parts = self.parts[txid]
        if len(parts) < self.wanted[txid]:
            return False
        return all(self.queues[s][0][0] == txid for s in parts)

    def _write(self, txid: int) -> None:
        parts = self.parts.pop(txid)
        del self.wanted[txid]
        for shard in parts:
            self.queues[shard].popleft()
        self.emit(wrap([e for shard in sorted(parts) for e in parts[shard]]))

    def _unstick(self) -> None:
        """Heads that did not move since the timer was armed are written alone."""
        self.timer = None
        for shard, queue in list(self.queues.items()):
            if not queue or self.heads.get(shard) is not queue[0]:
                continue
            txid, effects = queue.popleft()
            if txid in self.parts:  # write its parts per shard from now on
                parts = self.parts.pop(txid)
                self.split[txid] = self.wanted.pop(txid) - len(parts)
                for other in parts:
                    if other != shard:
                        # Already queued on its shard: it is written there, in order.
                        self._mark_alone(other, txid)
                if self.split[txid] <= 0:
                    del self.split[txid]
            self.emit(wrap(effects) if txid else effects)
        self._progress()

    def _mark_alone(self, shard: int, txid: int) -> None:
        queue = self.queues[shard]
        for i, (queued, effects) in enumerate(queue):
            if queued == txid:
                queue[i] = (0, wrap(effects))
                return
