"""The shard's part of SLOWLOG, LATENCY and CONFIG RESETSTAT (internal, from the gateway)."""

from __future__ import annotations

import time
from typing import Any

from shard.context import Ctx
from shard.errors import RedisError
from shard.table import INTERNAL, command

# Script calls for MONITOR travel as publishes on this channel through the pub/sub actor.
MONITOR_CHANNEL = b"__atoll:monitor"


def monitor_line(db: int, argv: list[bytes]) -> list[bytes]:
    from server.config import quote_arg

    now = time.time()
    args = " ".join(quote_arg(a.decode("latin-1")) for a in argv)
    line = f"+{int(now)}.{int(now * 1e6) % 1_000_000:06d} [{db} lua] {args}\r\n"
    return [MONITOR_CHANNEL, line.encode("latin-1")]


@command("__STATS RESET | SLOWLOG GET count | SLOWLOG LEN | SLOWLOG RESET | LATENCY [RESET]",
         -2, "admin", route=INTERNAL)
def stats_part(ctx: Ctx, args: list[bytes]) -> Any:
    """What the gateway merges: this shard's counters, slow log and latency samples."""
    if ctx.shard is None:
        return []
    stats = ctx.shard.stats
    what = args[0].upper()
    sub = args[1].upper() if len(args) > 1 else b""
    if what == b"RESET":
        stats.reset()
        ctx.shard.error_replies = 0
        ctx.shard.commands_processed = 0
        return 1
    if what == b"SLOWLOG":
        if sub == b"GET":
            return [list(entry) for entry in list(stats.slowlog)[: int(args[2])]]
        if sub == b"LEN":
            return len(stats.slowlog)
        stats.slowlog.clear()
        return 1
    if what == b"MONITOR":  # a gateway got its first MONITOR client, or lost its last
        gateway, on = int(args[1]), args[2] == b"1"
        (ctx.shard.monitoring.add if on else ctx.shard.monitoring.discard)(gateway)
        return 1
    if what == b"LATENCY":
        if sub == b"RESET":
            names = [a.decode("latin-1").lower() for a in args[2:]] or list(stats.events)
            return sum(1 for name in names if stats.events.pop(name, None) is not None)
        return stats.latency_export()
    raise RedisError("ERR unknown __STATS request")
