"""The shard's part of CLIENT PAUSE (internal, from the gateway that ran it).

While clients are paused Redis keeps the dataset still: keys whose time has come read as
expired but are not deleted (no ``expired`` event, no DEL in the log), the active expire cycle
and eviction rest.  The gateway sends the pause's end (wall-clock ms) to every shard; the
shard compares it with its own clock, so a pause that times out ends by itself.
"""

from __future__ import annotations

from typing import Any

from shard.context import Ctx
from shard.numbers import string2ll
from shard.table import INTERNAL, command


@command("__PAUSE until_ms", 2, "admin", route=INTERNAL)
def pause_part(ctx: Ctx, args: list[bytes]) -> Any:
    """__PAUSE until_ms: 0 ends the pause at once (CLIENT UNPAUSE); a later end wins."""
    until = string2ll(args[0]) or 0
    ks = ctx.ks
    ks.paused_until = max(ks.paused_until, until) if until else 0
    return 1
