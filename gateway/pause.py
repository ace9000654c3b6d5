"""CLIENT PAUSE / UNPAUSE over every gateway.

A pause is an end time (wall clock, shared by the gateways of one host) and a mode: ALL holds
every command, WRITE the commands that write or may (and EXEC of a transaction holding one).
The gateway that runs CLIENT PAUSE tells the others through gateway/peers.py.  While paused, a
gateway routes everything through the general dispatch (no hot path) and a held command waits
in its connection, like a multi-step command, so the client's later commands wait behind it;
when the pause ends the command runs and the rest follow in order.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from gateway import peers
from shard.errors import RedisError
from shard.numbers import string2ll
from shard.reply import OK, Raw
from shard.table import GATEWAY, CommandSpec, command

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.server import Gateway

ALL, WRITE = "all", "write"


class PauseState:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.mode = ""  # "" (not paused), ALL or WRITE
        self.until = 0.0
        self.ended = asyncio.Event()
        self.ended.set()
        self.timer: asyncio.TimerHandle | None = None

    def holds(self, conn: ClientConnection, spec: CommandSpec) -> bool:
        if not self.mode:
            return False
        if self.mode == ALL:
            return True
        if spec.name == "exec" and conn.multi:
            return any(_writes(s) for s, _ in conn.multi)
        return _writes(spec)

    def pause(self, until: float, mode: str) -> None:
        # As Redis: a longer or stricter pause wins over the one in force.
        if self.mode and self.until >= until and (self.mode == ALL or mode == WRITE):
            return
        self.mode = ALL if ALL in (mode, self.mode) and self.until > time.time() else mode
        self.until = max(until, self.until) if self.mode else until
        self.ended.clear()
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.gateway.loop.call_later(max(self.until - time.time(), 0), self.unpause)
        _update(self.gateway)

    def unpause(self) -> None:
        self.mode = ""
        self.until = 0.0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.ended.set()
        _update(self.gateway)


def _writes(spec: CommandSpec) -> bool:
    return "write" in spec.flags or "may_replicate" in spec.flags


def _update(gw: Gateway) -> None:
    from gateway.monitor import update_feeding

    update_feeding(gw)


def hold(conn: ClientConnection, argv: list[bytes]) -> None:
    """Hold a command until the pause ends, then run it (its reply keeps its place)."""
    gw = conn.gateway

    async def later() -> Any:
        await gw.pause.ended.wait()
        gw.router._dispatch(conn, argv)  # its reply goes right after this empty one
        return Raw(b"")

    conn.run_async(later())


@command("CLIENT PAUSE timeout [WRITE | ALL]", -3, "admin noscript loading stale",
         acl="@admin @slow @dangerous @connection", route=GATEWAY, parent="client",
         since="2.9.50", summary="Stop processing commands from clients for some time")
def client_pause(conn: ClientConnection, argv: list[bytes]) -> Any:
    if len(argv) > 4:
        from shard import errors

        raise RedisError(errors.SYNTAX)
    mode = ALL
    if len(argv) == 4:
        mode = argv[3].decode("latin-1").lower()
        if mode not in (ALL, WRITE):
            raise RedisError("ERR CLIENT PAUSE mode must be WRITE or ALL")
    millis = string2ll(argv[2])
    if millis is None:
        raise RedisError("ERR timeout is not an integer or out of range")
    if millis < 0:
        raise RedisError("ERR timeout is negative")
    until = time.time() + millis / 1000
    conn.gateway.pause.pause(until, mode)
    conn.gateway.peers.tell("pause", [until, mode])
    return OK


@command("CLIENT UNPAUSE", 2, "admin noscript loading stale",
         acl="@admin @slow @dangerous @connection", route=GATEWAY, parent="client",
         since="6.2.0", summary="Resume processing of clients that were paused")
def client_unpause(conn: ClientConnection, argv: list[bytes]) -> Any:
    conn.gateway.pause.unpause()
    conn.gateway.peers.tell("unpause", None)
    return OK


def _on_pause(gw: Gateway, sender: str, payload: Any) -> None:
    gw.pause.pause(float(payload[0]), str(payload[1]))


def _on_unpause(gw: Gateway, sender: str, payload: Any) -> None:
    gw.pause.unpause()


peers.NOTICES["pause"] = _on_pause
peers.NOTICES["unpause"] = _on_unpause
