"""A shard's side of replication: it feeds its write effects to the gateways that serve
replicas, and a replica's shards load their master's image and stop expiring keys.

``__REPL_BEGIN token path`` starts a snapshot part (as ``__SNAPSHOT_BEGIN``) and subscribes
the asking gateway to the shard's effects.  From then on every effect the shard commits
(``AofState.commit``, before the replies of its batch leave) is sent to each subscribed
gateway as an unsolicited item ``[REPL_EFFECTS, [[db, argv], ...]]``.  The begin command
first commits what earlier commands recorded and then sends ``[REPL_CUT, token]``: the
gateway knows exactly which of this shard's effects are in the image and which follow it.
"""

from __future__ import annotations

import os
from typing import Any

from persistence.effects import Effect, Effects
from shard import wire
from shard.context import Ctx
from shard.reply import OK
from shard.snapshots import snapshot_begin
from shard.table import INTERNAL, command

REPL_EFFECTS = -2  # unsolicited item: effects committed by the shard
REPL_CUT = -3  # unsolicited item: the point of a replication snapshot in the effects
REPL_TX = -4  # unsolicited item: [txid, shards, effects], a cross-shard transaction's part
CONTROL = (b"multi", b"exec")


class EffectsFeed:
    """The coordinators (ROUTER identities: the replication actor) receiving this shard's
    effects.

    A cross-shard transaction's hops (entries headed ``__tx txid``) are not sent where they
    ran: their effects are kept under the txid and sent as one ``REPL_TX`` part where the
    transaction releases its intents here (``__unlock txid shards``, told by the coordinator
    how many shards ran hops), so the actor can join the parts into one MULTI/EXEC.  Moving
    them there is safe: until the release no other entry touches the transaction's keys.
    Positions are indexes into the effects recorded since the last commit.
    """

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.gateways: set[bytes] = set()
        self.hops: list[tuple[int, int, int]] = []  # (start, end, txid) since the last commit
        self.unlocks: list[tuple[int, int, int]] = []  # (position, txid, shards)
        self.parts: dict[int, list[Effect]] = {}  # txid -> its effects so far

    @property
    def active(self) -> bool:
        return bool(self.gateways)

    def hop(self, txid: int, start: int, end: int) -> None:
        if self.gateways and start <= end:  # (a hop that committed, as __repl_begin: none)
            self.hops.append((start, end, txid))

    def released(self, txid: int, shards: int, position: int) -> None:
        if self.gateways:
            self.unlocks.append((position, txid, shards))

    def send(self, effects: list[Effect]) -> None:
        """The effects of one commit (AofState.commit), in order."""
        if not self.gateways:
            self.hops, self.unlocks, self.parts = [], [], {}
            return
        if not self.hops and not self.unlocks:
            self._send([REPL_EFFECTS, effects])
            return
        events = sorted([(start, 0, end, txid) for start, end, txid in self.hops]
                        + [(at, 1, shards, txid) for at, txid, shards in self.unlocks])
        self.hops, self.unlocks = [], []
        items: list[list[Any]] = []
        done = 0
        for at, kind, value, txid in events:
            if at > done:
                items.append([REPL_EFFECTS, effects[done:at]])
                done = at
            if kind == 0:
                self.parts.setdefault(txid, []).extend(
                    e for e in effects[at:value] if e[1][0] not in CONTROL)
                done = max(done, value)
            elif txid in self.parts:
                items.append([REPL_TX, [txid, value, self.parts.pop(txid)]])
        if done < len(effects):
            items.append([REPL_EFFECTS, effects[done:]])
        self._send_items([item for item in items if item[0] != REPL_EFFECTS or item[1]])

    def _send(self, item: list[Any]) -> None:
        self._send_items([item])

    def _send_items(self, items: list[list[Any]]) -> None:
        sock = self.executor.busy_socket
        if sock is None or not items:
            return
        payload = wire.pack([wire.UNSOLICITED, items])
        for identity in self.gateways:
            sock.send_multipart((identity, payload))

    def cut(self, identity: bytes, token: bytes) -> None:
        executor = self.executor
        if executor.effects is None:
            executor.effects = Effects()
        executor.aof.commit()  # what ran before the cut is before it in the stream too
        self.gateways.add(identity)
        self._send([REPL_CUT, token])


def feed_of(executor: Any) -> EffectsFeed:
    feed: EffectsFeed | None = getattr(executor, "feed", None)
    if feed is None:
        feed = EffectsFeed(executor)
        executor.feed = feed
        executor.aof.feed = feed
    return feed


def coordinator_restarted(executor: Any, index: int) -> None:
    """``__HELLO index``: the coordinator with that index (the replication actor among them)
    has a new ZeroMQ identity; effects for its previous life's identity stop."""
    known: dict[int, bytes] | None = getattr(executor, "coordinators", None)
    if known is None:
        known = executor.coordinators = {}
    old = known.get(index)
    known[index] = executor.current_identity
    feed: EffectsFeed | None = getattr(executor, "feed", None)
    if feed is not None and old is not None and old != executor.current_identity:
        feed.gateways.discard(old)
    if feed is not None and executor.effects is not None:
        # Its transactions will never release here: their parts go out alone.
        from shard.intents import GATEWAY_SHIFT

        for txid in [t for t in feed.parts if t >> GATEWAY_SHIFT == index]:
            feed.released(txid, 1, len(executor.effects.pending))


def transaction_released(executor: Any, txid: int, shards: int) -> None:
    """``__UNLOCK txid shards``: where a transaction's part joins the stream."""
    feed: EffectsFeed | None = getattr(executor, "feed", None)
    if feed is not None and executor.effects is not None:
        feed.released(txid, shards, len(executor.effects.pending))


@command("__REPL_BEGIN token path", 3, "admin", route=INTERNAL)
def repl_begin(ctx: Ctx, args: list[bytes]) -> Any:
    """Start this shard's part of a replication image and feed its effects to the caller."""
    snapshot_begin(ctx, args)
    executor = ctx.shard
    feed_of(executor).cut(executor.current_identity, args[0])
    return OK


@command("__REPL_REPLICA flag", 2, "admin", route=INTERNAL)
def repl_replica(ctx: Ctx, args: list[bytes]) -> Any:
    """1: this shard belongs to a replica (keys expire only by the master's DEL); 0: not."""
    ctx.ks.replica = args[0] == b"1"
    return OK


@command("__REPL_LOAD path", 2, "admin", route=INTERNAL)
def repl_load(ctx: Ctx, args: list[bytes]) -> Any:
    """Replace every database with this shard's keys of the RDB file at ``path``."""
    from persistence.loader import load_into

    executor = ctx.shard
    with open(os.fsdecode(args[0]), "rb") as f:
        data = f.read()
    ks = ctx.ks
    dirty = ks.dirty
    for db in ks.dbs:
        ks.flush(db)
    loaded, _ = load_into(executor, data, executor.index, int(ctx.config.get("shards", 1) or 1))
    ks.dirty = dirty  # not an effect: this command cannot be replayed from a log
    ks.replica = True  # also after a restart of this shard: a full sync tells it again
    return loaded
