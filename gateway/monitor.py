"""MONITOR over every gateway.

Commands are shown when the gateway dispatches them (Redis shows them once they ran; the order
per client is the same): ``+<seconds>.<micros> [<db> <addr>] "arg" ...`` with Redis' quoting.
Admin commands are not shown, AUTH's arguments are redacted, commands queued in MULTI are shown
at EXEC, before it, as Redis does.

While any gateway has a MONITOR client every gateway routes all commands through the general
dispatch (the hot path is switched off, as during a busy script) and feeds them here; lines for
monitors of other gateways leave once per event-loop tick through gateway/peers.py.  A gateway
tells the others when it gets its first monitor and when its last one goes.

Not shown: commands run by scripts inside shards (Redis shows them as ``[db lua]``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gateway import peers
from server.config import quote_arg
from shard.errors import RedisError
from shard.reply import OK
from shard.table import GATEWAY, CommandSpec, command

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.server import Gateway

_REDACTED = {"auth": 1, "hello": None, "migrate": None}


@command("MONITOR", 1, "admin noscript loading stale", acl="@admin @slow @dangerous",
         route=GATEWAY, group="server", since="1.0.0",
         summary="Listen for all requests received by the server in real time")
def monitor(conn: ClientConnection, argv: list[bytes]) -> Any:
    gw = conn.gateway
    if conn.multi is not None:
        raise RedisError("ERR MONITOR isn't allowed for DENY BLOCKING client")
    if conn.monitoring:
        return OK
    conn.monitoring = True
    gw.monitors.add(conn)
    if len(gw.monitors) == 1:
        gw.peers.tell("monitoring", True)
        update_feeding(gw)
        _scripts_shown(gw, True)
    return OK


def _scripts_shown(gw: Gateway, on: bool) -> None:
    """Shards publish script calls on MONITOR_CHANNEL while a gateway monitors; this gateway
    takes them from the pub/sub actor like a subscriber."""
    from gateway import pubsub
    from pubsub.actor import COUNTS
    from pubsub.registry import CHANNEL
    from shard import wire
    from shard.stats_part import MONITOR_CHANNEL

    gw.pubsub.send([COUNTS, [[CHANNEL, MONITOR_CHANNEL, 1 if on else -1]]], pubsub._Waiter())
    meta = wire.meta(0, False, structured=True)
    for link in gw.links.links:
        gw.links.request(link, meta, [b"__stats", b"MONITOR", b"%d" % gw.index, b"%d" % on])


def monitor_gone(gw: Gateway, conn: ClientConnection) -> None:
    gw.monitors.discard(conn)
    if not gw.monitors:
        gw.peers.tell("monitoring", False)
        update_feeding(gw)
        _scripts_shown(gw, False)


def update_feeding(gw: Gateway) -> None:
    """Route everything through the general dispatch while anybody monitors."""
    router = gw.router
    router.feed_monitors = feed if gw.monitors or gw.remote_monitors else None
    router.paused = gw.pause if gw.pause.mode else None
    router.refresh_hot()


def feed(conn: ClientConnection, spec: CommandSpec, argv: list[bytes]) -> None:
    from gateway.transactions import IMMEDIATE

    if conn.multi is not None and spec.name not in IMMEDIATE:
        return  # shown at EXEC
    if spec.name == "exec" and conn.multi:
        for queued_spec, queued_argv in conn.multi:
            _show(conn, queued_spec, queued_argv)
    _show(conn, spec, argv)


def _show(conn: ClientConnection, spec: CommandSpec, argv: list[bytes]) -> None:
    """One command's line to every monitor (a monitor's own RESET ends its monitoring
    before Redis shows the command, so it does not see that one)."""
    if "admin" in spec.flags:
        return
    gw = conn.gateway
    now = time.time()
    args = [quote_arg(a.decode("latin-1")) for a in argv]
    if spec.name in _REDACTED:
        args = _redact(spec.name, args)
    micros = int(now * 1e6) % 1_000_000
    line = f"+{int(now)}.{micros:06d} [{conn.db} {conn.addr}] {' '.join(args)}\r\n".encode("latin-1")
    _write(gw, line, conn if spec.name == "reset" else None)
    if gw.remote_monitors:
        if not gw.monitor_outgoing:
            gw.loop.call_soon(_send_lines, gw)
        gw.monitor_outgoing.append(line)


def _redact(name: str, args: list[str]) -> list[str]:
    if name == "auth":
        return args[:1] + ['"(redacted)"'] * (len(args) - 1)
    out = list(args)
    for i, arg in enumerate(args):
        if arg.strip('"').lower() == "auth" and name == "hello" and i + 2 < len(args) + 1:
            for j in range(i + 1, min(i + 3, len(args))):
                out[j] = '"(redacted)"'
    return out


def _write(gw: Gateway, data: bytes, resetting: ClientConnection | None = None) -> None:
    for other in list(gw.monitors):
        if other.closing or other is resetting:
            continue
        if other.replies:
            other.replies.append(data)
            other.write_ready()
        elif other.transport is not None:
            other.transport.write(data)
            if other.write_paused:
                gw.limits.check_output(other)


def _send_lines(gw: Gateway) -> None:
    lines, gw.monitor_outgoing = gw.monitor_outgoing, []
    if lines and gw.remote_monitors:
        gw.peers.tell("monitor_lines", b"".join(lines))


def _on_monitoring(gw: Gateway, sender: str, active: Any) -> None:
    if active:
        gw.remote_monitors.add(sender)
    else:
        gw.remote_monitors.discard(sender)
    update_feeding(gw)


def _on_lines(gw: Gateway, sender: str, data: Any) -> None:
    _write(gw, data)


def write_lines(gw: Gateway, data: bytes) -> None:
    _write(gw, data)


def _monitoring_here(gw: Gateway, args: Any) -> list[Any]:
    return [f"gateway-{gw.index}", bool(gw.monitors)]


async def learn_monitors(gw: Gateway) -> None:
    """At start-up (or after a restart): which other gateways have monitors."""
    for answer in await gw.peers.ask("monitoring"):
        if answer and answer[1]:
            gw.remote_monitors.add(answer[0])
    update_feeding(gw)


peers.NOTICES["monitoring"] = _on_monitoring
peers.NOTICES["monitor_lines"] = _on_lines
peers.HANDLERS["monitoring"] = _monitoring_here
