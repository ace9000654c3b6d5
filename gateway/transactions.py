"""MULTI / EXEC / DISCARD.

The gateway queues a transaction's commands and runs them at EXEC.  When every queued command
goes to one shard (the common case, and always with hash-tagged keys) they travel as one batch
entry and the shard runs them back to back: nothing else runs in between, as in Redis.  A
transaction over several shards runs its commands in order, each shard's share unbroken by
nothing but other transactions' commands; isolation across shards is the cross-shard issue's
(intents on every involved shard).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from gateway import cross
from gateway.links import BlockingWaiter, key_slot
from shard import errors, wire
from shard.errors import RedisError
from shard.reply import NULL_ARRAY, OK, QUEUED, Raw, encode
from shard.table import FANOUT, GATEWAY, SHARD, CommandSpec, command

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.router import Router

G = GATEWAY
EXECABORT = "EXECABORT Transaction discarded because of previous errors."
# Commands that act at once even inside MULTI (the rest are queued).
IMMEDIATE = {"exec", "discard", "multi", "watch", "quit", "reset"}


@command("MULTI", 1, "noscript loading stale fast allow_busy", acl="@fast @transaction",
         route=G, group="transactions", since="1.2.0", summary="Mark the start of a transaction block")
def multi(conn: ClientConnection, argv: list[bytes]) -> Any:
    if conn.multi is not None:
        raise RedisError("ERR MULTI calls can not be nested")
    conn.multi = []
    conn.multi_error = False
    return OK


@command("DISCARD", 1, "noscript loading stale fast allow_busy", acl="@fast @transaction",
         route=G, group="transactions", since="2.0.0", summary="Discard all commands issued after MULTI")
def discard(conn: ClientConnection, argv: list[bytes]) -> Any:
    if conn.multi is None:
        raise RedisError("ERR DISCARD without MULTI")
    conn.multi = None
    return OK


@command("EXEC", 1, "noscript loading stale skip_slowlog", acl="@slow @transaction", route=G,
         group="transactions", since="1.2.0", summary="Execute all commands issued after MULTI")
def exec_(conn: ClientConnection, argv: list[bytes]) -> Any:
    if conn.multi is None:
        raise RedisError("ERR EXEC without MULTI")
    queued, failed = conn.multi, conn.multi_error
    conn.multi = None
    if failed:
        raise RedisError(EXECABORT)
    return run_transaction(conn, queued)


def queue(router: Router, conn: ClientConnection, spec: CommandSpec, argv: list[bytes]) -> None:
    """A command received between MULTI and EXEC."""
    if "no_multi" in spec.flags:
        conn.multi_error = True
        conn.reply(RedisError("ERR Command not allowed inside a transaction").line())
        return
    conn.multi.append((spec, list(argv)))
    conn.reply(b"+QUEUED\r\n")


async def run_transaction(conn: ClientConnection, queued: list[tuple[CommandSpec, list[bytes]]]) -> Any:
    gw = conn.gateway
    router = gw.router
    shards = set()
    for spec, argv in queued:
        if spec.route != SHARD:
            shards.add(None)
            continue
        positions = spec.key_positions(argv)
        shards.update(gw.links.slot_owner[key_slot(argv[p])] for p in positions or [])
        if not positions:
            shards.add(0)
    if len(shards) == 1 and None not in shards and queued:
        return Raw(await _on_one_shard(conn, router, shards.pop(), queued))
    replies = [await _run_one(conn, router, spec, argv) for spec, argv in queued]
    return Raw(b"*%d\r\n" % len(replies) + b"".join(replies))


async def _on_one_shard(conn: ClientConnection, router: Router, index: int,
                        queued: list[tuple[CommandSpec, list[bytes]]]) -> bytes:
    """All commands as one RUN entry: the shard runs them back to back (atomic)."""
    links = conn.gateway.links
    future = conn.gateway.loop.create_future()
    commands = [[spec.wire_name, *argv[1:]] for spec, argv in queued]
    meta = (conn.db << wire.DB_SHIFT) | conn.resp3 | wire.RUN | wire.NOBLOCK
    links.send(links.links[index], [meta, commands], BlockingWaiter(future, conn))
    replies = await future
    if isinstance(replies, bytes):  # the shard went away: its error for every command
        replies = [replies] * len(queued)
    return b"*%d\r\n" % len(replies) + b"".join(replies)


async def _run_one(conn: ClientConnection, router: Router, spec: CommandSpec,
                   argv: list[bytes]) -> bytes:
    """One queued command of a transaction over several shards; errors become replies."""
    try:
        if spec.route == GATEWAY:
            value = spec.handler(conn, argv)  # type: ignore[misc]
            if inspect.iscoroutine(value):
                value = await value
            return b"" if value is cross.NO_REPLY else encode(value, conn.resp3)
        if spec.route == FANOUT:
            return encode(await cross.fanout(conn.gateway, conn, spec, argv), conn.resp3)
        links = conn.gateway.links
        positions = spec.key_positions(argv)
        owners = {links.slot_owner[key_slot(argv[p])] for p in positions} or {0}
        if len(owners) == 1:
            future = conn.gateway.loop.create_future()
            meta = (conn.db << wire.DB_SHIFT) | conn.resp3 | wire.NOBLOCK
            links.send(links.links[owners.pop()], [meta, [spec.wire_name, *argv[1:]]],
                       BlockingWaiter(future, conn))
            return bytes(await future)
        strategy = cross.STRATEGIES.get(spec.cross or "", cross.via_scratch)
        return encode(await strategy(conn.gateway, conn, spec, argv, positions), conn.resp3)
    except RedisError as exc:
        return exc.line()


__all__ = ["EXECABORT", "IMMEDIATE", "NULL_ARRAY", "QUEUED", "queue", "run_transaction"]
