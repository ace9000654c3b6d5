"""A gateway's control socket (server/control.py) and its part of online slot moves.

Moving slots S from shard A to shard B (driven by the supervisor, server/migration.py):

1. ``park``: client commands for S stop going to A; they wait here in order (``links.park``,
   a ParkedLink at routing index N).  A barrier round trip to A then proves that everything
   sent to A before has run there (or waits behind intents, in order).
2. The supervisor moves the keys A -> B while it holds both shards whole.  A answers stale
   entries on S (clients blocked on its keys, plans made before the park) ``Moved``; they
   join ``park.redirected``, ahead of everything parked.
3. ``unpark``: after a second barrier to A (every Moved it sent is in), S maps to B and the
   redirected, then the parked entries leave for B in their original order.

Cross-shard plans route by ``links.slot_home`` (never the park) and plan again when the map
version changes while they take intents (gateway/intents.py); EXEC after a WATCH fails when
the map changed meanwhile (gateway/transactions.py).
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

import zmq

from gateway.links import BlockingWaiter, GroupPart, Slot, key_slot
from server.control import (
    ControlError,
    Handler,
    answer,
    bind_control,
    control_endpoint,
    process_memory,
    run_dir_of,
)
from shard import errors, wire
from shard.errors import RedisError
from shard.table import TABLE

if TYPE_CHECKING:
    from gateway.server import Gateway

log = logging.getLogger("atoll.gateway")


class GatewayControl:
    def __init__(self, gw: Gateway, data_endpoint: str) -> None:
        self.gw = gw
        self.links = gw.links
        self.sock = bind_control(self.links.context,
                                 control_endpoint(run_dir_of(data_endpoint), gw.process_name()))
        self.handlers: dict[str, Handler] = {
            "ping": lambda r: "pong", "status": self.status, "park": self.park,
            "unpark": self.unpark, "save": self.save,
        }
        self.links.on_moved = self.reroute
        self.fd = int(self.sock.getsockopt(zmq.FD))
        gw.loop.add_reader(self.fd, self.readable)
        gw.loop.call_soon(self.readable)  # the FD is edge-triggered: look once now

    def close(self) -> None:
        self.gw.loop.remove_reader(self.fd)
        self.sock.close(0)

    def readable(self) -> None:
        while int(self.sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            try:
                *envelope, payload = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            import msgpack

            try:
                request = msgpack.unpackb(payload, raw=False)
                handler = self.handlers.get(str(request.get("op")))
                is_async = handler in (self.park, self.unpark, self.save) and request.get("v") == 1
            except Exception:
                is_async = False
            if is_async:
                self.gw.loop.create_task(self._later(envelope, handler(request)))  # type: ignore[misc]
            else:
                self.sock.send_multipart([*envelope, answer(self.handlers, payload)])

    async def _later(self, envelope: list[bytes], work: Any) -> None:
        import msgpack

        try:
            reply = {"v": 1, "ok": True, "result": await work}
        except (ControlError, RedisError) as exc:
            reply = {"v": 1, "ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("control request failed")
            reply = {"v": 1, "ok": False, "error": f"internal error: {exc!r}"}
        self.sock.send_multipart([*envelope, msgpack.packb(reply, use_bin_type=True)])
        self.gw.loop.call_soon(self.readable)

    # --- status --------------------------------------------------------------------------

    def status(self, request: dict[str, Any]) -> Any:
        gw = self.gw
        return {
            "gateway": gw.index, "pid": os.getpid(), "rss": process_memory(os.getpid()),
            "uptime": time.time() - gw.started, "clients": len(gw.clients),
            "commands": gw.router.commands_processed, "blocked_clients": gw.blocked_clients(),
            "map_version": self.links.map_version,
            "parked": len(self.links.park.outgoing) + len(self.links.park.redirected),
        }

    async def save(self, request: dict[str, Any]) -> Any:
        from gateway.snapshots import snapshots_of

        snapshots = snapshots_of(self.gw)
        running = snapshots.running
        if running is not None and not running.done():
            await running
        return bool(await snapshots.start(background=False))

    # --- slot moves ----------------------------------------------------------------------

    async def _barrier(self, source: int | None) -> None:
        if source is None:
            return
        link = self.links.links[source]
        await self.links.request(link, wire.meta(0, False, structured=True), [b"__barrier"])

    async def park(self, request: dict[str, Any]) -> int:
        index = self.links.park.index
        for slot in request["slots"]:
            self.links.slot_owner[slot] = index
        await self._barrier(request.get("source"))
        return len(request["slots"])

    async def unpark(self, request: dict[str, Any]) -> int:
        await self._barrier(request.get("source"))
        links = self.links
        owner = int(request["owner"])
        for slot in request["slots"]:
            links.slot_owner[slot] = links.slot_home[slot] = owner
        links.map_version = max(links.map_version, int(request["version"]))
        park = links.park
        target = links.links[owner]
        redirected, park.redirected = park.redirected, []
        entries, waiters = park.outgoing, park.waiters
        park.outgoing, park.waiters = [], []
        for entry, waiter in redirected:
            links.send(target, entry, waiter)
        for entry, waiter in zip(entries, waiters, strict=True):
            links.send(target, entry, waiter)
        return len(redirected) + len(entries)

    def reroute(self, waiter: Any, moved: Any) -> None:
        """A shard answered ``Moved``: send the entry where its keys are now."""
        entry = moved.entry
        meta, argv = entry
        if not (meta & wire.RUN) and argv[0] == b"__lock":
            waiter(moved)  # the transaction plans again (gateway/intents.py)
            return
        if type(waiter) is BlockingWaiter and waiter in waiter.conn.blocked_on:
            waiter.conn.blocked_on.remove(waiter)  # it parks again where it goes
        owners = {self.links.slot_owner[key_slot(key)] for key in _entry_keys(meta, argv)}
        if len(owners) != 1:
            _fail(waiter, RedisError(errors.TRYAGAIN_MOVING), entry)
            return
        target = self.links.route_links[owners.pop()]
        if target is self.links.park:
            target.redirected.append((entry, waiter))
        else:
            self.links.send(target, entry, waiter)


def _entry_keys(meta: int, argv: list[Any]) -> list[bytes]:
    commands = argv if meta & wire.RUN else [argv]
    keys: list[bytes] = []
    for command in commands:
        name, _, sub = command[0].decode("latin-1").partition("|")
        spec = TABLE.get(name)
        if spec is not None and sub:
            spec = spec.subcommands.get(sub)
        if spec is not None:
            keys.extend(command[p] for p in spec.key_positions(command))
    return keys


def _fail(waiter: Any, error: RedisError, entry: list[Any]) -> None:
    line = error.line()
    if type(waiter) is GroupPart:
        group = waiter.group
        if group.complete(waiter.index, [line] * len(entry[1])):
            group.conn.write_ready()
    elif type(waiter) is Slot:
        waiter.value = line
        waiter.conn.write_ready()
    elif type(waiter) is BlockingWaiter:
        waiter.resolve(line)
    else:
        waiter(error)
