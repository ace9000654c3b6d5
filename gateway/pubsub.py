"""The gateway's side of pub/sub: its clients' subscriptions, its link to the pub/sub actor, and
the fan-in of delivered messages to local connections.

The actor only knows, per channel (pattern, shard channel), how many subscribers each gateway
has; the gateway tells it every change in small ``COUNTS`` entries and, whenever its link to
the actor (re)connects, its whole state in one ``RESYNC`` entry, so a restarted actor is
rebuilt without clients noticing.  Entries leave once per event-loop tick in one message
(``[batch_id, entries]``), like shard batches; the actor answers every batch in order.

A published message reaches this gateway once, whatever the number of local subscribers: the
actor says whether the gateway wants the channel itself and which of its patterns match, and
the gateway writes the message to each subscriber.  A subscriber that does not read is closed
when its output passes ``client-output-buffer-limit pubsub`` (hard limit at once, soft limit
after its seconds), as in Redis, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgpack
import zmq

from gateway.links import Slot
from pubsub.actor import COUNTS, DELIVERY, PUBLISH, QUERY, RESYNC
from pubsub.registry import CHANNEL, PATTERN, SHARD_CHANNEL
from shard import errors
from shard.errors import RedisError
from shard.stats_part import MONITOR_CHANNEL

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.server import Gateway

log = logging.getLogger("atoll.gateway")

ACTOR_DOWN = errors.PUBSUB_ACTOR_DOWN
_MESSAGE_KIND = {CHANNEL: b"message", SHARD_CHANNEL: b"smessage"}


class ClientSubscriptions:
    """One connection's channels, patterns and shard channels (insertion-ordered sets)."""

    __slots__ = ("names", "soft_since")

    def __init__(self) -> None:
        self.names: tuple[dict[bytes, None], ...] = ({}, {}, {})
        self.soft_since = 0.0  # when the output first passed the soft limit (0: it has not)

    def count(self) -> int:
        """What SUBSCRIBE/PSUBSCRIBE replies carry: channels plus patterns."""
        return len(self.names[CHANNEL]) + len(self.names[PATTERN])

    def total(self) -> int:
        return self.count() + len(self.names[SHARD_CHANNEL])


def push_header(resp3: bool, count: int) -> bytes:
    return b">%d\r\n" % count if resp3 else b"*%d\r\n" % count


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


class _Waiter:
    """What to do with the actor's answer to one entry (or with its failure)."""

    __slots__ = ("conn", "slot", "ready", "callback")

    def __init__(self, conn: Any = None, slot: Slot | None = None, ready: bytes | None = None,
                 callback: Callable[[Any], None] | None = None) -> None:
        self.conn = conn
        self.slot = slot
        self.ready = ready  # the slot's bytes once acknowledged; None: the reply is a count
        self.callback = callback

    def done(self, reply: Any, failed: bool = False) -> None:
        if self.callback is not None:
            self.callback(RedisError(ACTOR_DOWN) if failed else reply)
            return
        if self.slot is None:
            return
        if self.ready is not None:  # a subscription stands either way: resync brings it back
            self.slot.value = self.ready
        elif failed:
            self.slot.value = RedisError(ACTOR_DOWN).line()
        else:
            self.slot.value = b":%d\r\n" % reply
        self.conn.write_ready()


class PubSubHub:
    """This gateway's subscriptions and its DEALER link to the pub/sub actor."""

    def __init__(self, gateway: Gateway, endpoint: str) -> None:
        self.gateway = gateway
        self.loop = gateway.loop
        # kind -> name -> the local connections subscribed (an ordered set)
        self.local: tuple[dict[bytes, dict[Any, None]], ...] = ({}, {}, {})
        self.context = zmq.Context()
        self.sock: Any = self.context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, gateway.process_name().encode())
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.monitor: Any = self.sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        self.sock.connect(endpoint)
        self.outgoing: list[Any] = []
        self.waiters: list[_Waiter] = []
        self.inflight: dict[int, list[_Waiter]] = {}
        self.batch_id = 0
        self.flush_scheduled = False
        self.limits = (0, 0, 0)
        self.refresh()
        self.loop.add_reader(self.sock.FD, self._readable)
        self.loop.add_reader(self.monitor.FD, self._monitor_event)
        # ZeroMQ's FD only signals a change: events that came before the reader was added
        # must be drained once, or the FD never signals again (and no resync would happen).
        self.loop.call_soon(self._monitor_event)
        self.loop.call_soon(self._readable)

    def refresh(self) -> None:
        """Follow CONFIG SET client-output-buffer-limit."""
        limits = self.gateway.config.value("client-output-buffer-limit")
        hard, soft, seconds = limits.get("pubsub", (0, 0, 0))
        self.limits = (int(hard), int(soft), int(seconds))

    # --- talking to the actor ------------------------------------------------------------

    def send(self, entry: list[Any], waiter: _Waiter) -> None:
        self.outgoing.append(entry)
        self.waiters.append(waiter)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if not self.outgoing:
            return
        self.batch_id += 1
        self.inflight[self.batch_id] = self.waiters
        batch, self.outgoing, self.waiters = self.outgoing, [], []
        self.sock.send(msgpack.packb([self.batch_id, batch]))
        if self.sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # the FD is edge-triggered
            self._readable()

    def query(self, what: bytes, args: list[bytes]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()

        def settle(value: Any) -> None:
            if not future.done():
                future.set_result(value)

        self.send([QUERY, what, args], _Waiter(callback=settle))
        return future

    def publish(self, conn: ClientConnection, kind: int, channel: bytes, message: bytes) -> None:
        """PUBLISH / SPUBLISH: the reply (the receivers' count) fills a slot in order."""
        self.send([PUBLISH, kind, channel, message], _Waiter(conn, conn.new_slot()))

    def publish_later(self, kind: int, channel: bytes, message: bytes) -> asyncio.Future[Any]:
        """The same, answered through a future (inside EXEC)."""
        future: asyncio.Future[Any] = self.loop.create_future()

        def settle(value: Any) -> None:
            if not future.done():
                future.set_result(value)

        self.send([PUBLISH, kind, channel, message], _Waiter(callback=settle))
        return future

    def _readable(self) -> None:
        sock = self.sock
        unpack = msgpack.unpackb
        while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            try:
                payload = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            batch_id, replies = unpack(payload)
            if batch_id == DELIVERY:
                self.deliver(replies)
                continue
            waiters = self.inflight.pop(batch_id, None)
            if waiters is None:  # failed when the actor went away
                continue
            for waiter, reply in zip(waiters, replies, strict=True):
                waiter.done(reply)

    def _monitor_event(self) -> None:
        while self.monitor.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            try:
                frames = self.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            event = int.from_bytes(frames[0][:2], "little")
            if event == zmq.EVENT_DISCONNECTED:
                self.fail_inflight()
            elif event == zmq.EVENT_CONNECTED:
                self.resync()

    def fail_inflight(self) -> None:
        batches, self.inflight = self.inflight, {}
        for waiters in batches.values():
            for waiter in waiters:
                waiter.done(None, failed=True)

    def resync(self) -> None:
        """Tell a (new) actor everything this gateway's clients are subscribed to."""
        state = [[kind, name, len(conns)] for kind in (CHANNEL, PATTERN, SHARD_CHANNEL)
                 for name, conns in self.local[kind].items()]
        if state:
            log.info("Pub/sub actor connected: resubscribing %d channel(s) and pattern(s)",
                     len(state))
        self.send([RESYNC, state], _Waiter())

    # --- subscriptions -------------------------------------------------------------------

    def subscribe(self, conn: ClientConnection, kind: int, names: list[bytes],
                  inline: bool = False) -> bytes | None:
        """SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE: one push per name.  When anything is new the
        replies wait for the actor's acknowledgement, so a message published anywhere after
        the client saw its reply reaches it.  ``inline``: return the pushes instead."""
        subs = conn.pubsub
        if subs is None:
            subs = conn.pubsub = ClientSubscriptions()
        mine, local = subs.names[kind], self.local[kind]
        word = (b"subscribe", b"psubscribe", b"ssubscribe")[kind]
        changes = []
        out = []
        for name in names:
            if name not in mine:
                mine[name] = None
                local.setdefault(name, {})[conn] = None
                changes.append([kind, name, 1])
            count = len(mine) if kind == SHARD_CHANNEL else subs.count()
            out.append(b"%s$%d\r\n%s\r\n%s:%d\r\n" % (push_header(conn.resp3, 3), len(word), word,
                                                       bulk(name), count))
        ready = b"".join(out)
        if inline:
            if changes:
                self.send([COUNTS, changes], _Waiter())
            return ready
        if not changes:
            conn.reply(ready)
        else:
            self.send([COUNTS, changes], _Waiter(conn, conn.new_slot(), ready))
        return None

    def unsubscribe(self, conn: ClientConnection, kind: int, names: list[bytes] | None) -> bytes:
        """UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE (``names`` None: all): the pushes."""
        subs = conn.pubsub
        mine = subs.names[kind] if subs is not None else {}
        word = (b"unsubscribe", b"punsubscribe", b"sunsubscribe")[kind]
        out = []
        changes = []
        for name in list(mine) if names is None else names:
            if name in mine:
                del mine[name]
                changes.append([kind, name, -1])
                self._forget_local(kind, name, conn)
            count = (len(mine) if kind == SHARD_CHANNEL else subs.count()) if subs else 0
            out.append(b"%s$%d\r\n%s\r\n%s:%d\r\n" % (push_header(conn.resp3, 3), len(word), word,
                                                       bulk(name), count))
        if not out:  # nothing to leave: still one reply, with a null name
            null = b"_\r\n" if conn.resp3 else b"$-1\r\n"
            count = (len(mine) if kind == SHARD_CHANNEL else subs.count()) if subs else 0
            out.append(b"%s$%d\r\n%s\r\n%s:%d\r\n" % (push_header(conn.resp3, 3), len(word), word,
                                                       null, count))
        if changes:
            self.send([COUNTS, changes], _Waiter())
        return b"".join(out)

    def _forget_local(self, kind: int, name: bytes, conn: Any) -> None:
        local = self.local[kind]
        conns = local.get(name)
        if conns is not None:
            conns.pop(conn, None)
            if not conns:
                del local[name]

    def forget(self, conn: Any) -> None:
        """Drop every subscription of a connection (it closed, or RESET)."""
        subs = conn.pubsub
        if subs is None:
            return
        changes = []
        for kind in (CHANNEL, PATTERN, SHARD_CHANNEL):
            for name in subs.names[kind]:
                self._forget_local(kind, name, conn)
                changes.append([kind, name, -1])
            subs.names[kind].clear()
        conn.pubsub = None
        if changes:
            self.send([COUNTS, changes], _Waiter())

    def local_counts(self) -> tuple[int, int]:
        return len(self.local[CHANNEL]), len(self.local[PATTERN])

    # --- delivery ------------------------------------------------------------------------

    def deliver(self, deliveries: list[Any]) -> None:
        """Messages from the actor: write each to the local subscribers, one write per
        connection for the whole message."""
        out: dict[Any, list[bytes]] = {}
        local = self.local
        for kind, channel, message, direct, patterns in deliveries:
            if channel == MONITOR_CHANNEL:  # script calls shown to MONITOR (gateway/monitor.py)
                from gateway.monitor import write_lines

                write_lines(self.gateway, message)
                continue
            if direct:
                conns = local[kind].get(channel)
                if conns:
                    tail = b"$%d\r\n%s\r\n%s%s" % (len(_MESSAGE_KIND[kind]), _MESSAGE_KIND[kind],
                                                    bulk(channel), bulk(message))
                    _fan_out(out, conns, b"*3\r\n" + tail, b">3\r\n" + tail)
            for pattern in patterns:
                conns = local[PATTERN].get(pattern)
                if conns:
                    tail = b"$8\r\npmessage\r\n%s%s%s" % (bulk(pattern), bulk(channel),
                                                          bulk(message))
                    _fan_out(out, conns, b"*4\r\n" + tail, b">4\r\n" + tail)
        now = 0.0
        for conn, parts in out.items():
            if conn.closing:
                continue
            data = b"".join(parts) if len(parts) > 1 else parts[0]
            if conn.replies:  # behind replies still being computed, to keep them in order
                conn.replies.append(data)
                conn.write_ready()
            elif conn.transport is not None:
                conn.transport.write(data)
            if not now:
                now = time.monotonic()
            self._check_limits(conn, now)

    def _check_limits(self, conn: Any, now: float) -> None:
        hard, soft, seconds = self.limits
        transport = conn.transport
        if transport is None or not (hard or soft):
            return
        used = transport.get_write_buffer_size()
        if used and conn.replies:
            used += sum(len(item) for item in conn.replies if type(item) is bytes)
        subs = conn.pubsub
        over = bool(hard and used >= hard)
        if not over and soft and used >= soft and subs is not None:
            if not subs.soft_since:
                subs.soft_since = now
            elif now - subs.soft_since > seconds:
                over = True
        elif subs is not None:
            subs.soft_since = 0.0
        if over:
            from gateway.commands import client_line

            log.warning("Client %s scheduled to be closed ASAP for overcoming of output buffer "
                        "limits.", client_line(conn, conn).decode("latin-1"))
            transport.abort()  # drop the unsent output now: that is the memory to give back
            conn.close()

    def close(self) -> None:
        self.loop.remove_reader(self.sock.FD)
        self.loop.remove_reader(self.monitor.FD)
        self.sock.disable_monitor()
        self.monitor.close()
        self.sock.close()
        self.context.term()


def _fan_out(out: dict[Any, list[bytes]], conns: dict[Any, None], resp2: bytes,
             resp3: bytes) -> None:
    for conn in conns:
        parts = out.get(conn)
        if parts is None:
            parts = out[conn] = []
        parts.append(resp3 if conn.resp3 else resp2)
