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
import hashlib
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
        self.held: set[ClientConnection] = set()  # INFO blocked_clients counts them, as Redis
        # SHA1s of cached scripts declared ``#!lua flags=no-writes`` (EVALSHA passes a pause)
        self.read_only_scripts: set[str] = set()
        # Functions (lower-cased names) known to be no-writes during this pause: libraries
        # cannot change meanwhile (FUNCTION LOAD and friends are writes), so asking a shard
        # once per function and pause is enough.
        self.read_only_functions: set[bytes] = set()

    def holds(self, conn: ClientConnection, spec: CommandSpec, argv: list[bytes]) -> bool:
        if not self.mode:
            return False
        if self.mode == ALL:
            return True
        if spec.name == "exec" and conn.multi:
            return any(self.may_replicate(s, a) for s, a in conn.multi)
        return self.may_replicate(spec, argv)

    def may_replicate(self, spec: CommandSpec, argv: list[bytes]) -> bool:
        """Redis' is_may_replicate_command, with a script's own flags for EVAL/EVALSHA: a
        script with a shebang writes unless it says no-writes; one without may write."""
        if "write" in spec.flags:
            return True
        if "may_replicate" not in spec.flags:
            return False
        if spec.name == "eval":
            return not script_read_only(argv[1])
        if spec.name == "evalsha":
            return argv[1].decode("latin-1").lower() not in self.read_only_scripts
        if spec.name == "fcall":
            return argv[1].lower() not in self.read_only_functions
        return True

    def learn_script(self, body: bytes) -> None:
        """Remember a script the gateway saw (EVAL, SCRIPT LOAD) by its flags."""
        if script_read_only(body):
            self.read_only_scripts.add(hashlib.sha1(body).hexdigest())

    def pause(self, until: float, mode: str) -> None:
        # As Redis: a longer or stricter pause wins over the one in force.
        if self.mode and self.until >= until and (self.mode == ALL or mode == WRITE):
            return
        if not self.mode:
            self.read_only_functions.clear()
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


def script_read_only(body: bytes) -> bool:
    """True for a script whose shebang declares no-writes (a bad shebang: False, the script
    fails when it runs)."""
    if not body.startswith(b"#!"):
        return False
    from shard.scripting import _shebang

    try:
        return _shebang(body)[0]
    except RedisError:
        return False


def _update(gw: Gateway) -> None:
    from gateway.monitor import update_feeding

    update_feeding(gw)


def tell_shards(gw: Gateway, until: float) -> None:
    """Shards stop expiring and evicting until ``until`` (0: at once, CLIENT UNPAUSE)."""
    from shard import wire

    meta = wire.meta(0, False, structured=True)
    for link in gw.links.links:
        gw.links.request(link, meta, [b"__pause", b"%d" % int(until * 1000)])


def hold(conn: ClientConnection, argv: list[bytes]) -> None:
    """Hold a command until the pause ends, then run it (its reply keeps its place)."""
    gw = conn.gateway

    async def later() -> Any:
        if argv[0].lower() == b"fcall" and len(argv) > 1 and gw.pause.mode == WRITE \
                and await _no_writes_function(gw, argv[1]):
            gw.pause.read_only_functions.add(argv[1].lower())
            if not conn.closing:
                gw.router._dispatch(conn, argv)  # now it passes the pause
            return Raw(b"")
        gw.pause.held.add(conn)
        try:
            await gw.pause.ended.wait()
        finally:
            gw.pause.held.discard(conn)
        if not conn.closing:
            gw.router._dispatch(conn, argv)  # its reply goes right after this empty one
        return Raw(b"")

    conn.run_async(later())


async def _no_writes_function(gw: Gateway, name: bytes) -> bool:
    """Whether the function ``name`` is declared no-writes (every shard has every library)."""
    from shard import wire

    try:
        flags = await gw.links.request(gw.links.links[0], wire.meta(0, False, structured=True),
                                       [b"__function_flags", name])
    except Exception:
        return False
    return isinstance(flags, list) and b"no-writes" in flags


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
    tell_shards(conn.gateway, until)
    return OK


@command("CLIENT UNPAUSE", 2, "admin noscript loading stale",
         acl="@admin @slow @dangerous @connection", route=GATEWAY, parent="client",
         since="6.2.0", summary="Resume processing of clients that were paused")
def client_unpause(conn: ClientConnection, argv: list[bytes]) -> Any:
    conn.gateway.pause.unpause()
    conn.gateway.peers.tell("unpause", None)
    tell_shards(conn.gateway, 0)
    return OK


def _on_pause(gw: Gateway, sender: str, payload: Any) -> None:
    gw.pause.pause(float(payload[0]), str(payload[1]))


def _on_unpause(gw: Gateway, sender: str, payload: Any) -> None:
    gw.pause.unpause()


peers.NOTICES["pause"] = _on_pause
peers.NOTICES["unpause"] = _on_unpause
