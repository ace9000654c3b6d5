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
# Commands of one read run at most ``run_at_once`` at a time; the rest wait until their
# replies have left, so a client that pipelines and never reads cannot make the gateway hold
# more than that many replies (see gateway/limits.py).  The cap starts at RUN_AT_ONCE, doubles
# each time a held chunk's replies were all taken by the socket (a client that reads), up to
# RUN_AT_ONCE_MAX, and falls back when the socket's buffer fills.
RUN_AT_ONCE = 1024
RUN_AT_ONCE_MAX = 16384


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
        self.resume_scheduled = False
        self.run_at_once = RUN_AT_ONCE
        self.monitoring = False
        self.registered = False
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
        if not self.gateway.limits.admit(self, transport):
            self.closing = True
            return
        self.registered = True
        self.gateway.clients[self.id] = self
        self.gateway.limits.count_changed()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if not self.registered:
            return
        self.gateway.clients.pop(self.id, None)
        self.gateway.limits.count_changed()
        if self.monitoring:
            from gateway.monitor import monitor_gone

            monitor_gone(self.gateway, self)
        if self.blocked_on:  # stop the wait, so no value is popped for nobody
            self.gateway.unblock(self, b"DROP")
        if self.watching:
            from gateway.transactions import forget_watches

            forget_watches(self)
        if self.pubsub is not None:
            self.gateway.pubsub.forget(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        self.run_at_once = RUN_AT_ONCE
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()
        if self.held and not self.busy:
            self._schedule_resume()

    def data_received(self, data: bytes) -> None:
        self.last_interaction = time.time()
        stats = self.gateway.stats
        stats["reads"] += 1
        stats["net_in"] += len(data)
        commands, error = self.parser.feed(data)
        if not self.parser.authenticated and commands:
            # Unauthenticated: one command at a time, so limits after AUTH are the usual ones.
            while commands and error is None and not self.busy and not self.closing:
                self.run_commands(commands)
                commands, error = self.parser.feed(b"") if self.parser.buffered else ([], None)
        if self.busy or self.held:
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
        if len(commands) > self.run_at_once or self.write_paused:
            if self.write_paused:
                self.held.extend(commands)
                return
            self.held.extend(commands[self.run_at_once :])
            commands = commands[: self.run_at_once]
        try:
            for i, argv in enumerate(commands):
                if self.closing or self.close_after_reply:
                    return
                if self.busy:
                    # Ahead of what is already held (the rest of a read past run_at_once).
                    self.held.extendleft(reversed(commands[i:]))
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
            self.gateway.cmdstats.error(data[1:].split(b" ", 1)[0].strip().decode("latin-1"))

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
            self.gateway.cmdstats.error(value.message)
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
            data = b"".join(out) if len(out) > 1 else out[0]
            transport.write(data)
            stats = self.gateway.stats
            stats["writes"] += 1
            stats["net_out"] += len(data)
        if self.close_after_reply and not replies:
            self.close()
            return
        if self.write_paused:
            self.gateway.limits.check_output(self)
        elif self.held and not replies and not self.busy:
            self._schedule_resume()
        self._update_reading()

    def _schedule_resume(self) -> None:
        if not self.resume_scheduled:
            self.resume_scheduled = True
            self.gateway.loop.call_soon(self._resume_held)

    def _resume_held(self) -> None:
        """Run commands held back by RUN_AT_ONCE or a full socket buffer."""
        self.resume_scheduled = False
        if self.closing or self.busy or self.write_paused or not self.held:
            return
        self.run_at_once = min(self.run_at_once * 2, RUN_AT_ONCE_MAX)  # it reads: trust more
        held = list(self.held)
        self.held.clear()
        self.run_commands(held)
        self.write_ready()

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
