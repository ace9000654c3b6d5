"""The master side of replication: one stream of write effects, its backlog, and the replicas.

Where it runs: in the gateway that a replica (or ``redis-cli --rdb``) connected to.  The
gateway already owns the replica's socket and a link to every shard, so there is no extra
hop: on the first full sync the gateway subscribes to every shard's effects
(``__REPL_BEGIN``, ``shard/replication.py``), and from then on each shard sends what it
commits, before the replies of its batch.  Effects of one shard keep their order; effects
of different shards interleave in the order they reach the gateway, which is fine because
they touch different keys.  A transaction over several shards arrives as one MULTI/EXEC
part per shard (each applied whole), not as one MULTI/EXEC: a replica applying them never
sees half a shard's part, but may see one shard's part before the other's.

A full sync cuts every shard at one barrier: ``__REPL_BEGIN`` runs under whole-shard
intents (no cross-shard command is half applied) and each shard marks the cut in its
effects (``REPL_CUT``).  Effects a shard sends after its mark are held until every shard
has marked; the stream offset at that moment is the image's offset.  The image is the same
point-in-time walk as BGSAVE, spliced into one RDB, sent as ``$<len>`` (disk-style, also
with ``repl-diskless-sync``), followed by the backlog from that offset.

Each gateway process has its own stream (replication id, offset, backlog); with several
gateways a replica must reconnect to the same one for a partial resync.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from typing import TYPE_CHECKING, Any

from gateway import cross
from gateway.intents import holding
from persistence.assemble import assemble
from persistence.effects import Effect, encode_command, encode_effects
from replication.txjoin import TxJoiner
from shard import wire
from shard.errors import RedisError
from shard.replication import REPL_CUT, REPL_EFFECTS, REPL_TX
from shard.reply import Raw

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.server import Gateway

log = logging.getLogger("atoll.gateway")
POLL_S = 0.01
# Run by every shard (a barrier), but once for a replica: SWAPDB twice would undo itself.
KEYSPACE_WIDE = frozenset({b"swapdb", b"flushall", b"flushdb"})
RETRY_S = 0.1


def _once(shard: int, effects: list[Effect]) -> list[Effect]:
    """Keyspace-wide writes run by every shard reach replicas once: shard 0's copy."""
    if shard == 0:
        return effects
    return [(db, argv) for db, argv in effects if argv[0] not in KEYSPACE_WIDE]


def new_replid() -> str:
    return secrets.token_hex(20)


class ReplicaLink:
    """One connected replica (or one REPLCONF-ing client before its PSYNC)."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.ip = conn.addr.rsplit(":", 1)[0].strip("[]")
        self.port = 0  # REPLCONF listening-port
        self.capa: set[bytes] = set()
        self.rdb_only = False
        self.state = "none"  # wait_bgsave, send_bulk, online
        self.ack_offset = 0
        self.ack_time = time.time()
        self.soft_since = 0.0


class Cut:
    """A full sync's barrier while shards mark it."""

    def __init__(self, token: bytes, shards: int, future: asyncio.Future[int]) -> None:
        self.token = token
        self.waiting = set(range(shards))
        self.held: list[tuple[int, int, Any]] = []  # (shard, token, item) after its mark
        self.future = future


class MasterStream:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.replid = new_replid()
        self.replid2 = "0" * 40
        self.second_offset = -1
        self.offset = 0
        self.backlog = bytearray()
        self.active = False  # the shards feed us: the backlog is meaningful
        self.db = -1
        self.cut: Cut | None = None
        self.replicas: dict[int, ReplicaLink] = {}  # by client id
        self.sync_lock = asyncio.Lock()
        self.acked = asyncio.Event()
        self.sync_full = 0
        self.sync_partial_ok = 0
        self.sync_partial_err = 0
        self.pinger: asyncio.Task[None] | None = None
        # As a replica (replication/replica.py) the stream is the master's bytes, relayed.
        self.relaying = False
        self.quiesce: Any = None
        self.resume: Any = None
        self.resync: Any = None
        self.joiner = TxJoiner(self.feed, gw.loop)
        gw.links.on_repl = self.on_shard_item
        gw.links.on_shard_down = self.on_shard_down

    # --- the stream ------------------------------------------------------------------------

    def on_shard_item(self, link: Any, token: int, item: Any) -> None:
        cut = self.cut
        if token == REPL_EFFECTS or token == REPL_TX:
            if self.relaying:
                return
            if cut is not None and link.index not in cut.waiting:
                cut.held.append((link.index, token, item))
            else:
                self.take(link.index, token, item)
        elif token == REPL_CUT and cut is not None and item == cut.token:
            cut.waiting.discard(link.index)
            if not cut.waiting:
                self._cut_done(cut)

    def take(self, shard: int, token: int, item: Any) -> None:
        """A shard's effects or transaction part, in the shard's order."""
        if token == REPL_EFFECTS:
            self.joiner.effects(shard, _once(shard, item))
        else:
            txid, shards, effects = item
            self.joiner.part(shard, txid, shards, _once(shard, effects))

    def on_shard_down(self, link: Any) -> None:
        """A restarted shard no longer feeds us and may have lost effects it never sent: the
        history ends here, replicas resync in full (which subscribes the new shard)."""
        if self.relaying:
            if self.resync is not None:
                self.resync()
            return
        if not self.active:
            return
        log.warning("Shard %d went away: replicas will need a full resynchronization",
                    link.index)
        self.replid, self.replid2, self.second_offset = new_replid(), "0" * 40, -1
        self.backlog = bytearray()
        self.active = False
        self.joiner.reset()
        cut = self.cut
        if cut is not None and not cut.future.done():
            cut.future.set_exception(OSError("a shard went away during the sync"))
            self.cut = None
        self.drop_replicas()

    def _cut_done(self, cut: Cut) -> None:
        self.cut = None
        self.active = True
        self.db = -1  # a replica starting here gets a SELECT first
        self.joiner.flush()  # what came before every shard's mark is before the offset
        offset = self.offset
        for shard, token, item in cut.held:
            self.take(shard, token, item)
        if not cut.future.done():
            cut.future.set_result(offset)

    def feed(self, effects: list[Effect]) -> None:
        data, self.db = encode_effects(effects, self.db)
        self.append(data)

    def append(self, data: bytes) -> None:
        if not data:
            return
        self.offset += len(data)
        backlog = self.backlog
        backlog += data
        excess = len(backlog) - int(self.gw.config.value("repl-backlog-size"))
        if excess > 0:
            del backlog[:excess]
        for replica in list(self.replicas.values()):
            if replica.state == "online":
                self._write(replica, data)

    def _write(self, replica: ReplicaLink, data: bytes) -> None:
        conn = replica.conn
        if conn.closing or conn.transport is None:
            self.replicas.pop(conn.id, None)
            return
        conn.transport.write(data)
        if self._over_limit(replica):
            log.warning("Client id=%d addr=%s closed for overcoming of output buffer limits.",
                        conn.id, conn.addr)
            self.replicas.pop(conn.id, None)
            conn.close()

    def _over_limit(self, replica: ReplicaLink) -> bool:
        hard, soft, seconds = self.gw.config.value("client-output-buffer-limit")["slave"]
        used = replica.conn.output_bytes()
        if hard and used >= hard:
            return True
        if soft and used >= soft:
            now = time.monotonic()
            if not replica.soft_since:
                replica.soft_since = now
            return bool(now - replica.soft_since >= seconds)
        replica.soft_since = 0.0
        return False

    def relay(self, data: bytes) -> None:
        if self.relaying:
            self.append(data)

    def adopt(self, replid: str, offset: int) -> None:
        """A replica's full sync: our stream continues the master's history."""
        self.drop_replicas()
        self.replid, self.offset = replid, offset
        self.replid2, self.second_offset = "0" * 40, -1
        self.backlog = bytearray()
        self.active = True
        self.db = -1

    def rewind(self, offset: int) -> None:
        """Forget the stream past ``offset`` (half a command relayed before a link broke)."""
        if offset >= self.offset:
            self.offset = offset
            return
        cut = self.offset - offset
        if cut > len(self.backlog):
            self.backlog = bytearray()
        else:
            del self.backlog[len(self.backlog) - cut:]
        self.offset = offset
        self.drop_replicas()

    def drop_replicas(self) -> None:
        for cid, link in list(self.replicas.items()):
            if link.state != "none":
                del self.replicas[cid]
                link.conn.close()

    def covers(self, offset: int) -> bool:
        """Whether the backlog holds every byte from ``offset`` (the next byte wanted) on."""
        first = self.offset - len(self.backlog) + 1
        return self.active and first <= offset <= self.offset + 1

    def since(self, offset: int) -> bytes:
        first = self.offset - len(self.backlog) + 1
        return bytes(self.backlog[offset - first:])

    def new_history(self) -> None:
        """A new replication history (REPLICAOF NO ONE keeps the old id as replid2)."""
        self.replid2 = self.replid
        self.second_offset = self.offset + 1
        self.replid = new_replid()

    # --- serving replicas ------------------------------------------------------------------

    def link_of(self, conn: ClientConnection) -> ReplicaLink:
        link = self.replicas.get(conn.id)
        if link is None:
            link = self.replicas[conn.id] = ReplicaLink(conn)
        return link

    def try_partial(self, conn: ClientConnection, replid: bytes, offset: int) -> bool:
        wanted = replid.decode("latin-1")
        same = wanted == self.replid or (wanted == self.replid2 and offset <= self.second_offset)
        if not same or not self.covers(offset):
            if wanted != "?":
                self.sync_partial_err += 1
            return False
        link = self.link_of(conn)
        psync2 = b"psync2" in link.capa
        head = b"+CONTINUE %s\r\n" % self.replid.encode() if psync2 else b"+CONTINUE\r\n"
        assert conn.transport is not None
        conn.transport.write(head + self.since(offset))
        link.state = "online"
        link.ack_time = time.time()
        self.sync_partial_ok += 1
        self._start_pinger()
        log.info("Partial resynchronization request from %s accepted.", conn.addr)
        return True

    async def full_sync(self, conn: ClientConnection, psync: bool) -> Any:
        link = self.link_of(conn)
        link.state = "wait_bgsave"
        self.sync_full += 1
        alive = True

        def announce(offset: int) -> None:
            if psync and conn.transport is not None and not conn.closing:
                conn.transport.write(b"+FULLRESYNC %s %d\r\n" % (self.replid.encode(), offset))

        async def keepalive() -> None:
            # As Redis: newlines while the image is built keep the replica's timeout away.
            while alive:
                await asyncio.sleep(1)
                if alive and conn.transport is not None and not conn.closing:
                    conn.transport.write(b"\n")

        pinger = self.gw.loop.create_task(keepalive())
        try:
            offset, image = await self.image(announce)
        finally:
            alive = False
            pinger.cancel()
        if conn.closing or conn.transport is None:
            self.replicas.pop(conn.id, None)
            return Raw(b"")
        conn.transport.write(b"$%d\r\n" % len(image) + image)
        if link.rdb_only:
            self.replicas.pop(conn.id, None)
            return Raw(b"")
        if not self.covers(offset + 1):
            log.warning("Replica %s: the backlog no longer holds offset %d; closing", conn.addr,
                        offset + 1)
            self.replicas.pop(conn.id, None)
            conn.close()
            return Raw(b"")
        conn.transport.write(self.since(offset + 1))
        link.state = "online"
        link.ack_time = time.time()
        self._start_pinger()
        log.info("Synchronization with replica %s succeeded", conn.addr)
        return Raw(b"")

    async def image(self, announce: Any = None) -> tuple[int, bytes]:
        """A point-in-time RDB image of every shard and the stream offset it stops at;
        ``announce(offset)`` is called as soon as the cut is made."""
        async with self.sync_lock:
            while True:
                result = await self._try_image(announce)
                if result is not None:
                    return result
                await asyncio.sleep(RETRY_S)  # a BGSAVE is walking: wait for it

    async def _try_image(self, announce: Any) -> tuple[int, bytes] | None:
        gw = self.gw
        links = gw.links
        count = len(links.links)
        directory = os.path.abspath(str(gw.config.value("dir")))
        token = secrets.token_hex(8).encode()
        parts = [os.path.join(directory, f"temp-repl-{token.decode()}-{i}.part").encode()
                 for i in range(count)]
        cut = self.cut = Cut(token, count, gw.loop.create_future())
        relayed = None
        if self.relaying:  # a replica: cut where the applied master stream stops
            relayed = await self.quiesce()
        try:
            begun = await self._begin(token, parts)
        finally:
            if relayed is not None:
                self.resume()
        admin = cross.ADMIN
        if any(isinstance(b, RedisError) for b in begun):
            if self.cut is cut:  # the shards that did mark keep feeding: nothing is lost
                self.cut = None
                for shard, kind, item in cut.held:
                    self.take(shard, kind, item)
            await cross.all_shards(gw, admin, [b"__snapshot_end", token, b"0", b"0"])
            return None
        offset = await cut.future if relayed is None else relayed
        if announce is not None:
            announce(offset)
        ok = False
        target = os.path.join(directory, f"temp-repl-{token.decode()}.rdb")
        try:
            states = await self._wait_parts(token)
            failed = [s for s in states if s[b"state"] != b"done"]
            if failed:
                raise OSError(failed[0][b"error"].decode() or "a shard could not write its part")
            layout = [(s[b"path"].decode(), s[b"sections"]) for s in states]
            await gw.loop.run_in_executor(None, assemble, target, layout)
            with open(target, "rb") as f:
                image = f.read()
            ok = True
        finally:
            await cross.all_shards(gw, admin, [b"__snapshot_end", token, b"1" if ok else b"0",
                                               b"%d" % time.time()])
            if os.path.exists(target):
                os.unlink(target)
        return offset, image

    async def _begin(self, token: bytes, parts: list[bytes]) -> list[Any]:
        links = self.gw.links
        count = len(links.links)
        if count > 1:
            async with holding(self.gw, whole=True) as tx:
                by_shard = await tx.each({i: [b"__repl_begin", token, parts[i]]
                                          for i in range(count)}, 0)
            return [by_shard[i] for i in range(count)]
        meta = wire.meta(0, False, structured=True)
        return [await links.request(links.links[0], meta, [b"__repl_begin", token, parts[0]])]

    async def _wait_parts(self, token: bytes) -> list[dict[bytes, Any]]:
        while True:
            states = await cross.all_shards(self.gw, cross.ADMIN, [b"__snapshot_poll", token])
            if all(isinstance(s, dict) and s[b"state"] != b"running" for s in states):
                return states
            await asyncio.sleep(POLL_S)

    def _start_pinger(self) -> None:
        if self.pinger is None or self.pinger.done():
            self.pinger = self.gw.loop.create_task(self._ping_loop())

    async def _ping_loop(self) -> None:
        """PING in the stream every repl-ping-replica-period, so replicas see a live link."""
        while self.online():
            await asyncio.sleep(int(self.gw.config.value("repl-ping-replica-period")))
            if self.online():
                self.append(encode_command([b"PING"]))

    # --- acknowledgements ------------------------------------------------------------------

    def online(self) -> list[ReplicaLink]:
        for cid, link in list(self.replicas.items()):
            if link.conn.closing:
                del self.replicas[cid]
        return [r for r in self.replicas.values() if r.state == "online"]

    def ack(self, conn: ClientConnection, offset: int) -> None:
        link = self.replicas.get(conn.id)
        if link is None:
            return
        link.ack_offset = max(link.ack_offset, offset)
        link.ack_time = time.time()
        self.acked.set()

    def acknowledged(self, offset: int) -> int:
        return sum(1 for r in self.online() if r.ack_offset >= offset)

    async def wait(self, wanted: int, timeout_ms: int) -> int:
        target = self.offset
        count = self.acknowledged(target)
        if count >= wanted:
            return count
        self.append(encode_command([b"REPLCONF", b"GETACK", b"*"]))
        deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms else None
        while True:
            self.acked.clear()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return self.acknowledged(target)
            try:
                await asyncio.wait_for(self.acked.wait(), remaining)
            except TimeoutError:
                return self.acknowledged(target)
            count = self.acknowledged(target)
            if count >= wanted:
                return count

    def good_replicas(self, max_lag: int) -> int:
        now = time.time()
        return sum(1 for r in self.online() if now - r.ack_time <= max_lag)

    # --- introspection ---------------------------------------------------------------------

    def info_lines(self) -> list[tuple[str, Any]]:
        online = self.online()
        lines: list[tuple[str, Any]] = [("connected_slaves", len(online))]
        now = time.time()
        for i, r in enumerate(online):
            lines.append((f"slave{i}", f"ip={r.ip},port={r.port},state=online,"
                                       f"offset={r.ack_offset},lag={int(now - r.ack_time)}"))
        return lines

    def backlog_lines(self) -> list[tuple[str, Any]]:
        first = self.offset - len(self.backlog) + 1 if self.active else 0
        return [("master_replid", self.replid), ("master_replid2", self.replid2),
                ("master_repl_offset", self.offset), ("second_repl_offset", self.second_offset),
                ("repl_backlog_active", int(self.active)),
                ("repl_backlog_size", int(self.gw.config.value("repl-backlog-size"))),
                ("repl_backlog_first_byte_offset", first),
                ("repl_backlog_histlen", len(self.backlog))]

    def role(self) -> list[Any]:
        return [b"master", self.offset,
                [[r.ip.encode(), b"%d" % r.port, b"%d" % r.ack_offset] for r in self.online()]]


def master_of(gw: Gateway) -> MasterStream:
    found: MasterStream | None = getattr(gw, "replication", None)
    if found is None:
        found = MasterStream(gw)
        gw.replication = found  # type: ignore[attr-defined]
    return found
