"""ZeroMQ links from a gateway to the shard actors, with per-tick batching.

Each shard gets one DEALER socket.  Commands for a shard are appended to its outgoing batch;
once per event-loop tick (``loop.call_soon``) every non-empty batch leaves as one message.
Each batch carries a number and its reply echoes it; the batch's waiters (a ``Slot`` in a
connection's reply queue, or a callback for replies the gateway combines itself) are kept
under that number.  When a shard dies, the batches it never answered are failed at once, and
a late reply for a failed batch is dropped, so a reply can never reach the wrong client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import zmq

from shard import wire
from shard.slots import NSLOTS, default_owner
from shard.slots import crc16 as crc16
from shard.slots import key_slot as key_slot


class Slot:
    """A reply placeholder in a connection's queue, filled when its shard answers."""

    __slots__ = ("conn", "value")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.value: bytes | None = None


class Group:
    """One connection's hot commands from one read, spread over shards.

    Each shard involved gets one batch entry holding all of the group's commands for it and
    answers with their replies in order; when every part is in, the replies are put back in
    request order.  Reordering across shards is safe because every command of a group has a
    single key: commands on different shards never touch the same key.
    """

    __slots__ = ("conn", "value", "meta", "order", "entries", "parts", "missing")

    def __init__(self, conn: Any, meta: int) -> None:
        self.conn = conn
        self.value: bytes | None = None
        self.meta = meta
        self.order: list[int] = []  # shard index of each command, in request order
        self.entries: dict[int, list[Any]] = {}  # shard index -> its commands
        self.parts: dict[int, list[bytes]] = {}
        self.missing = 0

    def complete(self, index: int, replies: list[bytes]) -> bool:
        self.parts[index] = replies
        self.missing -= 1
        if self.missing:
            return False
        if len(self.parts) == 1:
            self.value = b"".join(replies)
        else:
            streams = {i: iter(part) for i, part in self.parts.items()}
            self.value = b"".join([next(streams[i]) for i in self.order])
        return True


class GroupPart:
    """The waiter for one shard's share of a :class:`Group`."""

    __slots__ = ("group", "index")

    def __init__(self, group: Group, index: int) -> None:
        self.group = group
        self.index = index


class BlockingWaiter:
    """The waiter of a blocking command: resolved by its immediate reply, or later by an
    unsolicited message carrying the token the shard parked it under."""

    __slots__ = ("future", "conn", "token", "argv", "db", "link", "abandoned")

    def __init__(self, future: Any, conn: Any, argv: list[bytes] | None = None) -> None:
        self.future = future
        self.conn = conn
        self.token = 0
        self.link: Any = None  # the shard it waits in, once parked
        self.abandoned = False  # a wait over several shards that another shard already won
        self.argv = argv or []  # the blocking command, to give back what it popped if
        self.db = conn.db       # its client is gone by the time the shard serves it

    def resolve(self, reply: Any) -> None:
        waits = self.conn.blocked_on
        if self in waits:
            waits.remove(self)
        if not self.future.done():
            self.future.set_result(reply)


class ShardLink:
    __slots__ = ("index", "sock", "outgoing", "waiters", "endpoint", "inflight", "monitor",
                 "blocked", "dropped")

    def __init__(self, index: int, endpoint: str, context: zmq.Context[Any]) -> None:
        self.index = index
        self.endpoint = endpoint
        self.sock = context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.connect(endpoint)
        self.outgoing: list[Any] = []
        self.waiters: list[Any] = []
        self.inflight: dict[int, list[Any]] = {}
        self.blocked: dict[int, BlockingWaiter] = {}  # token -> a client waiting in the shard
        self.dropped: dict[int, BlockingWaiter] = {}  # waits whose client left (see Gateway)
        self.monitor = self.sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)


class ParkedLink:
    """Where entries for slots being moved wait in the gateway (gateway/control.py): shaped
    like a ShardLink for ``ShardLinks.send``, but never flushed to a socket.  Entries a shard
    answered ``Moved`` while their slots are parked wait in ``redirected``: they are older
    than everything parked, so they leave first."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.outgoing: list[Any] = []
        self.waiters: list[Any] = []
        self.redirected: list[tuple[list[Any], Any]] = []


class ShardLinks:
    """All links of one gateway and the slot -> shard map."""

    def __init__(self, endpoints: list[str], loop: asyncio.AbstractEventLoop,
                 owners: list[int] | None = None) -> None:
        self.context = zmq.Context()
        self.loop = loop
        self.links = [ShardLink(i, ep, self.context) for i, ep in enumerate(endpoints)]
        n = len(self.links)
        # The supervisor's slot map (server/slotmap.py); contiguous ranges by default.
        # ``slot_owner`` routes client commands and says ``park.index`` for slots being moved;
        # ``slot_home`` is the shard that holds a slot's keys now (cross-shard plans use it).
        self.slot_home = list(owners) if owners else [default_owner(s, n) for s in range(NSLOTS)]
        self.slot_owner = list(self.slot_home)
        self.map_version = 0  # bumped when a slot changes owner (WATCH compares it)
        self.park = ParkedLink(n)
        self.route_links: list[Any] = [*self.links, self.park]
        self.flush_scheduled = False
        self.batch_id = 0
        self.on_replies_done: Callable[[], None] = lambda: None
        self.on_orphan: Callable[[ShardLink, BlockingWaiter, Any], None] = lambda *_: None
        self.on_stale_wait: Callable[[BlockingWaiter], None] = lambda waiter: None
        self.on_busy: Callable[[ShardLink, Any], None] = lambda link, busy: None
        self.on_repl: Callable[[ShardLink, int, Any], None] = lambda link, token, item: None
        self.on_shard_down: Callable[[ShardLink], None] = lambda link: None
        self.on_moved: Callable[[Any, Any], None] = lambda waiter, moved: None
        self.shard_down_error: tuple[bytes, Any] = (b"-ERR shard unavailable\r\n", None)
        for link in self.links:
            loop.add_reader(link.sock.getsockopt(zmq.FD), self._readable, link)
            loop.add_reader(link.monitor.getsockopt(zmq.FD), self._monitor_event, link)
            loop.call_soon(self._monitor_event, link)  # drain what came before (see PubSubHub)

    def shard_of(self, key: bytes) -> ShardLink:
        # key_slot inlined: this runs for every command.
        start = key.find(b"{")
        if start >= 0:
            end = key.find(b"}", start + 1)
            if end > start + 1:
                key = key[start + 1 : end]
        link: ShardLink = self.route_links[self.slot_owner[crc16(key, 0) & 16383]]
        return link

    def send(self, link: ShardLink, entry: list[Any], waiter: Any) -> None:
        link.outgoing.append(entry)
        link.waiters.append(waiter)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def request(self, link: ShardLink, meta: int, argv: list[bytes]) -> asyncio.Future[Any]:
        """Send one structured entry; the future gets the decoded reply value."""
        future: asyncio.Future[Any] = self.loop.create_future()

        def done(value: Any) -> None:
            if not future.done():
                future.set_result(value)

        self.send(link, [meta | wire.STRUCTURED, argv], done)
        return future

    def flush(self) -> None:
        self.flush_scheduled = False
        pack = wire.pack
        for link in self.links:
            if link.outgoing:
                self.batch_id += 1
                link.inflight[self.batch_id] = link.waiters
                batch, link.outgoing, link.waiters = link.outgoing, [], []
                link.sock.send(pack([self.batch_id, batch]))
        # The FD is edge-triggered: replies that arrived while we were sending would not wake
        # the loop again, so look now.
        for link in self.links:
            if link.sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                self._readable(link)

    def _readable(self, link: ShardLink) -> None:
        sock = link.sock
        inflight = link.inflight
        unpack = wire.unpack
        touched: set[Any] = set()
        while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            try:
                payload = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            batch_id, replies = unpack(payload)
            if batch_id == wire.UNSOLICITED:
                for token, reply in replies:
                    if token == wire.BUSY_NOTICE:  # a shard's script became busy, or ended
                        self.on_busy(link, reply)
                        continue
                    if token < wire.BUSY_NOTICE:  # effects for replication (shard/replication.py)
                        self.on_repl(link, token, reply)
                        continue
                    waiter = link.blocked.pop(token, None)
                    if waiter is not None:
                        self._deliver(link, waiter, reply, touched)
                    else:
                        orphan = link.dropped.pop(token, None)
                        if orphan is not None:
                            self.on_orphan(link, orphan, reply)
                continue
            waiters = inflight.pop(batch_id, None)
            if waiters is None:  # the batch was failed when its shard went away
                continue
            for waiter, reply in zip(waiters, replies, strict=True):
                kind = type(waiter)
                if kind is GroupPart and type(reply) is list:
                    if waiter.group.complete(waiter.index, reply):
                        touched.add(waiter.group.conn)
                elif kind is Slot and type(reply) is bytes:
                    waiter.value = reply
                    touched.add(waiter.conn)
                else:
                    self._deliver(link, waiter, reply, touched)
        for conn in touched:
            conn.write_ready()
        self.on_replies_done()

    def _deliver(self, link: ShardLink, waiter: Any, reply: Any, touched: set[Any]) -> None:
        """Hand a reply to its waiter.  A reply may say that the entry waits in the shard
        (``Deferred`` for intents, ``Blocked`` for a blocking command); the real reply then
        comes later in an unsolicited message under the same token."""
        kind = type(reply)
        if kind is wire.Moved:
            self.on_moved(waiter, reply)
            return
        if kind is wire.Deferred:
            link.blocked[reply.token] = waiter
            return
        if kind is wire.Blocked:
            link.blocked[reply.token] = waiter
            if type(waiter) is BlockingWaiter:
                waiter.token = reply.token
                waiter.link = link
                waiter.conn.blocked_on.append(waiter)
                if waiter.conn.closing or waiter.abandoned:  # nobody waits for it any more
                    self.on_stale_wait(waiter)
            return
        kind = type(waiter)
        if kind is GroupPart:
            if waiter.group.complete(waiter.index, reply):
                touched.add(waiter.group.conn)
        elif kind is Slot:
            waiter.value = reply
            touched.add(waiter.conn)
        elif kind is BlockingWaiter:
            waiter.resolve(reply)
        else:
            waiter(reply)

    def _monitor_event(self, link: ShardLink) -> None:
        while link.monitor.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            try:
                link.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self.fail_inflight(link)
            self.on_shard_down(link)

    def fail_inflight(self, link: ShardLink) -> None:
        """Answer every batch a vanished shard still owed with an error, so no client hangs
        and no late reply is matched to the wrong waiter."""
        line, value = self.shard_down_error
        touched = set()
        parked, link.blocked = link.blocked, {}
        batches, link.inflight = link.inflight, {}
        for waiters in [list(parked.values()), *batches.values()]:
            for waiter in waiters:
                if type(waiter) is GroupPart:
                    group = waiter.group
                    if group.complete(waiter.index, [line] * len(group.entries[waiter.index])):
                        touched.add(group.conn)
                elif type(waiter) is Slot:
                    waiter.value = line
                    touched.add(waiter.conn)
                elif type(waiter) is BlockingWaiter:
                    waiter.resolve(line)
                else:
                    waiter(value)
        for conn in touched:
            conn.write_ready()

    def close(self) -> None:
        for link in self.links:
            self.loop.remove_reader(link.sock.getsockopt(zmq.FD))
            self.loop.remove_reader(link.monitor.getsockopt(zmq.FD))
            link.sock.disable_monitor()
            link.monitor.close()
            link.sock.close()
        self.context.term()
