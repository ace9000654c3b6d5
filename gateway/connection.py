"""One client connection: parse, hand commands to the router, write replies in order.

Replies leave in request order: every command appends either its ready bytes or a ``Slot`` to
``replies``; after each read and after each batch of shard replies the ready prefix is
written in one ``transport.write``.  Flow control: reading stops while too many replies are
pending or the socket's send buffer is above its high-water mark.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from gateway.links import Slot
from gateway.protocol import RequestParser
from shard import wire
from shard.errors import RedisError

if TYPE_CHECKING:
    from gateway.server import Gateway

log = logging.getLogger("atoll.gateway")

MAX_PENDING_REPLIES = 16384


class ClientConnection(asyncio.Protocol):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.transport: asyncio.Transport | None = None
        self.parser = RequestParser(gateway.config.value("proto-max-bulk-len"))
        self.replies: deque[Any] = deque()
        self.held: deque[list[bytes]] = deque()  # commands waiting behind a multi-step one
        self.busy = False
        self.open_group: Any = None
        self.blocked_on: list[Any] = []  # BlockingWaiters of this client parked in shards
        self.multi: list[Any] | None = None  # queued (spec, argv) between MULTI and EXEC
        self.multi_error = False
        self.watching: set[int] = set()  # shards holding this client's WATCHes
        self.watched: list[tuple[int, bytes]] = []  # and the (db, key) pairs watched
        self.watch_map_version = 0  # the slot map's version at the first WATCH
        # The router's dispatch, or gateway/pubsub_commands.special_dispatch while the client
        # is subscribed or its replies are off: those modes cost the hot path nothing.
        self.dispatch: Any = gateway.router.dispatch
        self.pubsub: Any = None  # gateway.pubsub.ClientSubscriptions once it subscribes
        self.reply_mode = 0  # CLIENT REPLY: 0 on, 1 off, 2 skip the next reply
        self.closing = False
        self.close_after_reply = False
        self.paused_by_replies = False
        self.write_paused = False
        self.reading_paused = False
        # Connection state (what Redis keeps per client).
        self.id = gateway.next_client_id()
        self.origin = self.id << wire.ORIGIN_SHIFT  # tells shards whose entry it is
        self.db = 0
        self.resp3 = False
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.user = b"default"
        default = gateway.acl.users[b"default"]
        self.authenticated = default.enabled and default.nopass
        # The one check the hot path makes: authenticated as an unrestricted user (ACL).
        self.fast_path = self.authenticated and default.unrestricted
        self.created = time.time()
        self.last_interaction = self.created
        self.last_command = b"NULL"
        self.addr = ""
        self.laddr = ""

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.addr = _format_addr(peer)
        self.laddr = _format_addr(sock)
        self.parser.authenticated = self.authenticated
        self.gateway.clients[self.id] = self

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.gateway.clients.pop(self.id, None)
        if self.blocked_on:  # stop the wait, so no value is popped for nobody
            self.gateway.unblock(self, b"DROP")
        if self.watching:
            from gateway.transactions import forget_watches

            forget_watches(self)
        if self.pubsub is not None:
            self.gateway.pubsub.forget(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        self.last_interaction = time.time()
        commands, error = self.parser.feed(data)
        if self.busy:
            self.held.extend(commands)
        else:
            self.run_commands(commands)
        if error is not None:
            log.info("Protocol error (%s) from client: id=%d addr=%s", error, self.id, self.addr)
            self.reply(RedisError(error).line())
            self.close_after_reply = True
            self.held.clear()
        self.write_ready()
        if self.parser.buffered > self.gateway.config.value("client-query-buffer-limit"):
            log.warning("Closing client that reached max query buffer length: id=%d addr=%s",
                        self.id, self.addr)
            self.close()

    # --- running commands ----------------------------------------------------------------

    def run_commands(self, commands: Any) -> None:
        try:
            for i, argv in enumerate(commands):
                if self.closing or self.close_after_reply:
                    return
                if self.busy:
                    self.held.extend(commands[i:])
                    return
                self.dispatch(self, argv)
        finally:
            # A group may only grow until its batches leave (next loop tick): close it here.
            self.open_group = None

    def reply(self, data: bytes) -> None:
        """Queue ready bytes."""
        self.open_group = None
        self.replies.append(data)
        if data[:1] == b"-":
            self.gateway.stats["errors"] += 1

    def new_slot(self) -> Slot:
        self.open_group = None
        slot = Slot(self)
        self.replies.append(slot)
        return slot

    def run_async(self, coro: Any) -> None:
        """Run a multi-step command; later commands of this client wait until it is done."""
        slot = self.new_slot()
        self.busy = True
        task = self.gateway.loop.create_task(coro)
        task.add_done_callback(lambda t: self._async_done(slot, t))

    def _async_done(self, slot: Slot, task: asyncio.Task[Any]) -> None:
        from shard.reply import Raw, encode

        try:
            value = task.result()
        except RedisError as exc:
            value = exc
        except Exception as exc:
            log.exception("command failed in the gateway")
            value = RedisError(f"ERR internal error: {type(exc).__name__}")
        if isinstance(value, RedisError):
            self.gateway.stats["errors"] += 1
        if self.closing and hasattr(value, "argv"):  # a blocking pop's values, for nobody
            self.gateway.give_back_values(value.argv, value.db, bytes(value))
        slot.value = bytes(value) if isinstance(value, Raw) else encode(value, self.resp3)
        self.busy = False
        self.write_ready()
        if self.held and not self.closing:
            held = list(self.held)
            self.held.clear()
            self.run_commands(held)
            self.write_ready()

    def write_ready(self) -> None:
        """Write the ready prefix of the reply queue."""
        replies = self.replies
        out = []
        while replies:
            item = replies[0]
            if type(item) is bytes:
                out.append(item)
            else:
                value = item.value
                if value is None:
                    break
                out.append(value)
            replies.popleft()
        transport = self.transport
        if out and transport is not None and not self.closing:
            transport.write(b"".join(out) if len(out) > 1 else out[0])
        if self.close_after_reply and not replies:
            self.close()
            return
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or self.closing:
            return
        should_pause = self.write_paused or len(self.replies) > MAX_PENDING_REPLIES
        if should_pause and not self.reading_paused:
            self.reading_paused = True
            transport.pause_reading()
        elif not should_pause and self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()

    def output_bytes(self) -> int:
        """Reply bytes written but not yet taken by the socket (Redis' omem)."""
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None and not self.closing else 0

    def close(self) -> None:
        if self.transport is not None and not self.closing:
            self.closing = True
            self.transport.close()


def _format_addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr or "")
