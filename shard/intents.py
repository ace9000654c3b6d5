"""Intents: the per-key locks that make commands over several shards atomic.

A gateway coordinating a cross-shard operation (MSET over shards, RENAME, SMOVE, a transaction
...) first takes an *intent* on every key it will touch, on every shard involved, then runs its
hops with entries tagged by its transaction id, and releases.  While a key is held, any other
entry that touches it waits here, in arrival order, and runs when the holder releases; entries
on other keys keep flowing.  A *whole* intent holds every key of the shard (FLUSHALL, SWAPDB,
DBSIZE and KEYS act as barriers across shards this way).

Waiting entries keep three orders: per key (an entry waits behind an earlier waiting entry
that shares a key), per client (an entry waits behind an earlier waiting entry of the same
client connection, its *origin*), and a whole request waits for everything before it.

Deadlock freedom: a lock request either only *tries* (answered 0 at once on conflict, never
waiting) or waits, and coordinators wait for shards strictly in index order, holding nothing
on higher shards; waiting entries hold nothing.  So the waits-for graph has no cycle, also with
several gateway processes.  A transaction id carries its gateway's index in its high bits, so
a restarted gateway can release what its previous life held (``__hello``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from shard.table import INTERNAL, command

log = logging.getLogger("atoll.shard")

GATEWAY_SHIFT = 40  # txid = gateway index << GATEWAY_SHIFT | counter

Slot = tuple[int, bytes]  # (db, key)

# Entries that never wait: the lock protocol itself and bookkeeping that reads no data.
NEVER_WAIT = frozenset({b"__lock", b"__tx", b"__unlock", b"__hello", b"__unblock", b"__config",
                        b"__info", b"__watch", b"__unwatch", b"__scan", b"config|resetstat"})
# Entries that read or change whole databases: they wait while anything is held.
WHOLE_COMMANDS = frozenset({b"flushall", b"flushdb", b"swapdb", b"dbsize", b"keys",
                            b"randomkey"})


@dataclass(eq=False, slots=True)
class Waiting:
    """An entry that waits for intents: its reply leaves later under ``token``."""

    identity: bytes
    token: int
    meta: int
    argv: Any
    keys: list[Slot]
    whole: bool
    origin: tuple[bytes, int] | None


class Intents:
    def __init__(self) -> None:
        self.owner: dict[Slot, int] = {}  # held key -> txid
        self.held: dict[int, list[Slot]] = {}  # txid -> keys it holds
        self.whole_owner = 0  # txid holding the whole shard, 0 = none
        self.waiting: list[Waiting] = []
        # Filled while entries wait, so the next arrivals can see whom they must queue behind.
        self.claimed: set[Slot] = set()
        self.waiting_origins: set[tuple[bytes, int]] = set()
        self.whole_waiting = False

    @property
    def active(self) -> bool:
        return bool(self.held or self.waiting)

    # --- conflicts -------------------------------------------------------------------------

    def blocked(self, keys: list[Slot], whole: bool, origin: tuple[bytes, int] | None,
                txid: int = 0) -> bool:
        """Whether an entry touching ``keys`` (or everything, with ``whole``) must wait."""
        if self.whole_waiting or (origin is not None and origin in self.waiting_origins):
            return True
        if self.whole_owner and self.whole_owner != txid:
            return True
        if whole:
            return any(owner != txid for owner in self.held)
        owner = self.owner
        claimed = self.claimed
        for slot in keys:
            held_by = owner.get(slot)
            if (held_by is not None and held_by != txid) or slot in claimed:
                return True
        return False

    def add_waiting(self, waiting: Waiting) -> None:
        self.waiting.append(waiting)
        self._claim(waiting)

    def _claim(self, waiting: Waiting) -> None:
        self.claimed.update(waiting.keys)
        if waiting.origin is not None:
            self.waiting_origins.add(waiting.origin)
        if waiting.whole:
            self.whole_waiting = True

    def runnable(self) -> list[Waiting]:
        """Take out, in order, the waiting entries that may run now; the rest keep waiting."""
        ready: list[Waiting] = []
        rest, self.waiting = self.waiting, []
        self.claimed = set()
        self.waiting_origins = set()
        self.whole_waiting = False
        for waiting in rest:
            txid = lock_txid(waiting.argv)
            if self.blocked(waiting.keys, waiting.whole, waiting.origin, txid):
                self.add_waiting(waiting)
            else:
                ready.append(waiting)
                if txid:  # a lock that may be taken now: take it before judging the next
                    self.acquire(txid, waiting.keys, waiting.whole)
        return ready

    # --- holding -------------------------------------------------------------------------

    def acquire(self, txid: int, keys: list[Slot], whole: bool) -> None:
        mine = self.held.setdefault(txid, [])
        if whole:
            self.whole_owner = txid
        for slot in keys:
            if slot not in self.owner:
                self.owner[slot] = txid
                mine.append(slot)

    def release(self, txid: int) -> list[Slot]:
        """Let go of ``txid``'s keys, and drop a lock request of it still waiting (its
        coordinator gave up on it: the answer was lost with a previous life of this shard)."""
        if self.waiting and any(lock_txid(w.argv) == txid for w in self.waiting):
            self.waiting = [w for w in self.waiting if lock_txid(w.argv) != txid]
        keys = self.held.pop(txid, [])
        for slot in keys:
            if self.owner.get(slot) == txid:
                del self.owner[slot]
        if self.whole_owner == txid:
            self.whole_owner = 0
        return keys

    def release_gateway(self, gateway: int) -> int:
        """Forget what transactions of a gateway that restarted held or asked for."""
        mine = [txid for txid in self.held if txid >> GATEWAY_SHIFT == gateway]
        for txid in mine:
            self.release(txid)
        self.waiting = [w for w in self.waiting
                        if not lock_txid(w.argv) or lock_txid(w.argv) >> GATEWAY_SHIFT != gateway]
        return len(mine)

    def holds(self, txid: int, keys: list[Slot], whole: bool) -> bool:
        if whole and self.whole_owner != txid:
            return False
        owner = self.owner
        return all(owner.get(slot) == txid for slot in keys) and txid in self.held

    def locked(self, slot: Slot) -> bool:
        return bool(self.whole_owner) or slot in self.owner


def lock_txid(argv: Any) -> int:
    """The transaction id of a ``__lock`` entry, else 0."""
    if argv and argv[0] == b"__lock":
        return int(argv[1])
    return 0


def lock_request(args: list[bytes]) -> tuple[int, bool, bool, list[Slot]]:
    """``txid TRY|WAIT db key [db key ...]`` or ``txid TRY|WAIT *`` (the whole shard)."""
    txid, mode = int(args[0]), args[1]
    if len(args) == 3 and args[2] == b"*":
        return txid, mode == b"TRY", True, []
    return txid, mode == b"TRY", False, [(int(args[i]), args[i + 1]) for i in range(2, len(args), 2)]


@command("__LOCK txid TRY|WAIT db key [db key ...]", -4, "admin", route=INTERNAL)
def lock(ctx: Any, args: list[bytes]) -> Any:
    """Take intents for a transaction: 1 when held, 0 when a TRY met a conflict.  A WAIT
    request that conflicts never gets here: the executor parks it until it can run."""
    txid, try_only, whole, keys = lock_request(args)
    intents: Intents = ctx.shard.intents
    if intents.holds(txid, keys, whole):  # a waiting request, granted when it became runnable
        return 1
    if intents.blocked(keys, whole, None, txid):
        return 0
    intents.acquire(txid, keys, whole)
    return 1


@command("__TX txid", 2, "admin", route=INTERNAL)
def in_transaction(ctx: Any, args: list[bytes]) -> Any:
    """Heads an entry that runs under the intents of transaction ``txid`` (never waits)."""
    return 1


@command("__UNLOCK txid [shards]", -2, "admin", route=INTERNAL)
def unlock(ctx: Any, args: list[bytes]) -> Any:
    """Release a transaction's intents; ``shards``: how many shards ran its hops (its
    replication stream part is one of that many, shard/replication.py)."""
    if len(args) > 1:  # before the entries that waited for these keys run (and record)
        from shard.replication import transaction_released

        transaction_released(ctx.shard, int(args[0]), int(args[1]))
    ctx.shard.release_intents(int(args[0]))
    return 1


@command("__HELLO gateway-index", 2, "admin", route=INTERNAL)
def hello(ctx: Any, args: list[bytes]) -> Any:
    """A gateway (re)started: drop the intents its previous life may have left behind."""
    from shard.replication import coordinator_restarted

    coordinator_restarted(ctx.shard, int(args[0]))
    released = ctx.shard.intents.release_gateway(int(args[0]))
    if released:
        log.warning("Shard %d: released the intents of %d transaction(s) of gateway %s, which "
                    "restarted", ctx.shard.index, released, args[0].decode())
        ctx.shard.retry_waiting()
    return released
