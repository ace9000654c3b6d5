"""What the replication actor answers the gateways (``gateway/repl_link.py``): WAIT, ROLE,
INFO replication and the sync counters, REPLICAOF.  Each handler takes the actor's gateway and
the request's arguments and returns plain data (msgpack)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gateway import cross
from replication.master import master_of
from replication.replica import replica_of


async def wait(gw: Any, args: list[Any]) -> int:
    """WAIT from a client of a gateway: count replicas at or past the stream's offset."""
    wanted, timeout_ms, in_multi = int(args[0]), int(args[1]), bool(args[2])
    # A barrier through every shard: the effects of the client's writes (sent by each shard
    # before it answered them, on the socket this round trip uses) are in the stream now.
    await cross.all_shards(gw, cross.ADMIN, [b"__tx", b"0"])
    master = master_of(gw)
    count = master.acknowledged(master.offset)
    if count >= wanted or in_multi:
        return count
    return await master.wait(wanted, timeout_ms)


async def role(gw: Any, args: Any) -> list[Any]:
    replica = replica_of(gw)
    return replica.role() if replica.host else master_of(gw).role()


async def info(gw: Any, args: Any) -> dict[str, Any]:
    from gateway.repl_commands import info_replication

    master = master_of(gw)
    return {"replication": info_replication(gw),
            "sync": [("sync_full", master.sync_full), ("sync_partial_ok", master.sync_partial_ok),
                     ("sync_partial_err", master.sync_partial_err)]}


async def replicaof(gw: Any, args: list[bytes]) -> str:
    from gateway.repl_commands import apply_replicaof

    return apply_replicaof(gw, args[0], args[1])


HANDLERS: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {
    "wait": wait, "role": role, "info": info, "replicaof": replicaof,
}
