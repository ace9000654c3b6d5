"""The gateway as coordinator of commands over several shards.

A :class:`Transaction` takes intents (per-key locks, see ``shard/intents.py``) on every key it
will touch, on every shard involved, runs its hops with entries tagged by its id (they never
wait behind its own intents), and releases.  Other clients' commands on those keys wait in
their shards until the release; commands on other keys keep flowing.

Taking intents: one round trip asks every shard at once to *try*; when all succeed (the usual
case) the transaction holds everything.  Otherwise it gives back what it got and asks again
shard by shard in index order, each time waiting until granted.  Waiting only in that global
order, holding nothing on later shards, is what keeps two coordinators (also in different
gateway processes) from waiting for each other forever.

Release happens after every hop's replies are in (strict two-phase locking), so nobody sees
one shard's part of a command without the others'.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from gateway.links import key_slot
from shard import wire
from shard.errors import RedisError
from shard.intents import GATEWAY_SHIFT

if TYPE_CHECKING:
    from gateway.server import Gateway

Slot = tuple[int, bytes]  # (db, key)


class Transaction:
    def __init__(self, gw: Gateway, origin: int = 0) -> None:
        gw.transactions_started += 1
        self.id = (gw.index << GATEWAY_SHIFT) | gw.transactions_started
        self.tag = [b"__tx", b"%d" % self.id]
        self.gw = gw
        self.links = gw.links
        self.origin = origin
        self.holding: list[int] = []  # shard indexes
        # Shards whose answer to a lock was lost (the shard went away): the request may still
        # reach its restarted process and be granted there, so they get a release too.
        self.unsure: set[int] = set()
        self.hopped: set[int] = set()  # shards that ran hops (told at release: replication)

    def shard_of(self, key: bytes) -> int:
        return self.links.slot_home[key_slot(key)]  # never the parking place of a move

    # --- intents -------------------------------------------------------------------------

    async def acquire(self, keys: Iterable[Slot] = (), whole: bool = False) -> None:
        """Hold ``keys`` ((db, key) pairs) or, with ``whole``, every shard entirely."""
        keys = list(keys)
        while True:
            version = self.links.map_version
            if await self._acquire(keys, whole) and version == self.links.map_version:
                return
            self.release()  # a slot moved meanwhile (gateway/control.py): plan again

    async def _acquire(self, keys: Iterable[Slot], whole: bool) -> bool:
        per_shard: dict[int, list[bytes]] = {}
        if whole:
            per_shard = {index: [b"*"] for index in range(len(self.links.links))}
        else:
            for db, key in keys:
                per_shard.setdefault(self.shard_of(key), []).extend((b"%d" % db, key))
        order = sorted(per_shard)
        if len(order) > 1:
            tries = [self._lock(index, b"TRY", per_shard[index]) for index in order]
            answers = await asyncio.gather(*tries)
            granted = [index for index, ok in zip(order, answers, strict=True) if ok == 1]
            self.unsure.update(index for index, ok in zip(order, answers, strict=True)
                               if not _answered(ok))
            self.holding = granted
            if len(granted) == len(order):
                return True
            self.release()
        for index in order:
            answer = await self._lock(index, b"WAIT", per_shard[index])
            if type(answer) is wire.Moved:
                return False
            if answer != 1:
                self.unsure.add(index)
                raise RedisError("ERR could not take intents: shard unavailable")
            self.holding.append(index)
        return True

    def _lock(self, index: int, mode: bytes, args: list[bytes]) -> asyncio.Future[Any]:
        meta = wire.meta(0, False, structured=True, origin=self.origin)
        return self.links.request(self.links.links[index], meta,
                                  [b"__lock", self.tag[1], mode, *args])

    def release(self) -> None:
        """Let go of every intent (no need to wait: later entries on the same sockets are
        behind the release)."""
        meta = wire.meta(0, False, structured=True)
        argv = [b"__unlock", self.tag[1]]
        if self.hopped:  # the replication stream joins that many parts (shard/replication.py)
            argv.append(b"%d" % len(self.hopped))
        for index in self.unsure.union(self.holding):
            self.links.request(self.links.links[index], meta, argv)
        self.holding = []
        self.unsure.clear()

    # --- hops ----------------------------------------------------------------------------

    def send(self, index: int, meta: int, commands: list[list[bytes]]) -> asyncio.Future[Any]:
        """Send ``commands`` to run back to back on one shard under this transaction's
        intents; the future gets their replies (see :meth:`run`)."""
        future: asyncio.Future[Any] = self.gw.loop.create_future()
        self.hopped.add(index)

        def done(value: Any) -> None:
            if not future.done():
                future.set_result(value)

        self.links.send(self.links.links[index], [meta | wire.RUN, [self.tag, *commands]], done)
        return future

    async def run(self, index: int, meta: int, commands: list[list[bytes]]) -> list[Any]:
        """Replies (structured values or RESP bytes, as ``meta`` asks) of ``commands``."""
        return _replies(await self.send(index, meta, commands))

    async def call(self, index: int, db: int, argv: list[bytes], resp3: bool = False) -> Any:
        """One structured command on shard ``index``; its error is raised."""
        value = (await self.run(index, wire.meta(db, resp3, structured=True), [argv]))[0]
        if isinstance(value, RedisError):
            raise value
        return value

    async def call_key(self, key: bytes, db: int, argv: list[bytes], resp3: bool = False) -> Any:
        return await self.call(self.shard_of(key), db, argv, resp3)

    async def each(self, parts: dict[int, list[bytes]], db: int, resp3: bool = False) -> dict[int, Any]:
        """One structured command per shard, all at once; values by shard (errors included)."""
        futures = {index: self.send(index, wire.meta(db, resp3, structured=True), [argv])
                   for index, argv in parts.items()}
        return {index: _replies(await future)[0] for index, future in futures.items()}


def _answered(answer: Any) -> bool:
    """A shard's answer to a lock: granted (1), refused (0) or moved; not a failure."""
    return answer == 1 or answer == 0 or type(answer) is wire.Moved


def _replies(value: Any) -> list[Any]:
    if not isinstance(value, list):  # the shard went away
        raise value if isinstance(value, RedisError) else RedisError(str(value))
    return value[1:]  # without the reply to the transaction tag


@asynccontextmanager
async def holding(gw: Gateway, keys: Iterable[Slot] = (), whole: bool = False,
                  origin: int = 0) -> AsyncIterator[Transaction]:
    """``async with holding(gw, keys) as tx:`` hops under intents on ``keys``."""
    tx = Transaction(gw, origin)
    try:
        await tx.acquire(keys, whole)
        yield tx
    finally:
        tx.release()
