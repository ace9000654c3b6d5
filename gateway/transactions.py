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
from shard import wire
from shard.errors import RedisError
from shard.reply import NULL_ARRAY, OK, Raw, encode
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
    forget_watches(conn)
    return OK


@command("WATCH key [key ...]", -2, "noscript loading stale fast allow_busy", (1, -1, 1),
         acl="@fast @transaction", route=G, group="transactions", since="2.2.0",
         summary="Watch the given keys to determine execution of the MULTI/EXEC block")
def watch(conn: ClientConnection, argv: list[bytes]) -> Any:
    if conn.multi is not None:
        raise RedisError("ERR WATCH inside MULTI is not allowed")
    return _watch(conn, argv[1:])


async def _watch(conn: ClientConnection, keys: list[bytes]) -> Any:
    links = conn.gateway.links
    per_shard: dict[int, list[bytes]] = {}
    for key in keys:
        per_shard.setdefault(links.slot_owner[key_slot(key)], []).append(key)
    meta = wire.meta(conn.db, False, structured=True)
    for index, shard_keys in per_shard.items():
        conn.watching.add(index)
        await links.request(links.links[index], meta, [b"__watch", b"%d" % conn.id, *shard_keys])
    return OK


@command("UNWATCH", 1, "noscript loading stale fast allow_busy", acl="@fast @transaction",
         route=G, group="transactions", since="2.2.0", summary="Forget about all watched keys")
def unwatch(conn: ClientConnection, argv: list[bytes]) -> Any:
    forget_watches(conn)
    return OK


def forget_watches(conn: ClientConnection) -> None:
    links = conn.gateway.links
    meta = wire.meta(0, False, structured=True)
    for index in conn.watching:
        links.request(links.links[index], meta, [b"__unwatch", b"%d" % conn.id])
    conn.watching = set()


async def _watch_failed(conn: ClientConnection, skip: int | None) -> bool:
    """Whether a watched key changed on any shard but ``skip`` (whose check travels with the
    transaction itself); the watches end either way."""
    links = conn.gateway.links
    meta = wire.meta(0, False, structured=True)
    dirty = False
    for index in conn.watching:
        if index != skip:
            answer = await links.request(links.links[index], meta, [b"__watchcheck", b"%d" % conn.id])
            dirty = dirty or answer == 1
    return dirty


@command("EXEC", 1, "noscript loading stale skip_slowlog", acl="@slow @transaction", route=G,
         group="transactions", since="1.2.0", summary="Execute all commands issued after MULTI")
def exec_(conn: ClientConnection, argv: list[bytes]) -> Any:
    if conn.multi is None:
        raise RedisError("ERR EXEC without MULTI")
    queued, failed = conn.multi, conn.multi_error
    conn.multi = None
    if failed:
        forget_watches(conn)
        raise RedisError(EXECABORT)
    return run_transaction(conn, queued)


def queue(router: Router, conn: ClientConnection, spec: CommandSpec, argv: list[bytes]) -> None:
    """A command received between MULTI and EXEC."""
    if "no_multi" in spec.flags:
        conn.multi_error = True
        conn.reply(RedisError("ERR Command not allowed inside a transaction").line())
        return
    assert conn.multi is not None
    conn.multi.append((spec, list(argv)))
    conn.reply(b"+QUEUED\r\n")


async def run_transaction(conn: ClientConnection, queued: list[tuple[CommandSpec, list[bytes]]]) -> Any:
    gw = conn.gateway
    router = gw.router
    shards: set[int | None] = set()
    for spec, argv in queued:
        if spec.route != SHARD:
            shards.add(None)
            continue
        positions = spec.key_positions(argv)
        shards.update(gw.links.slot_owner[key_slot(argv[p])] for p in positions or [])
        if not positions:
            shards.add(0)
    watching, conn.watching = conn.watching, set()
    one_shard = len(shards) == 1 and None not in shards and queued
    target = next(iter(shards)) if one_shard else None
    # The check for the transaction's own shard runs inside its batch (atomic with it).
    conn.watching = watching
    dirty = await _watch_failed(conn, target if target in watching else None)
    conn.watching = set()
    if dirty:
        if target in watching:
            forget = wire.meta(0, False, structured=True)
            conn.gateway.links.request(conn.gateway.links.links[target], forget,
                                       [b"__unwatch", b"%d" % conn.id])
        return NULL_ARRAY
    if one_shard and target is not None:
        reply = await _on_one_shard(conn, router, target, queued, check=target in watching)
        return NULL_ARRAY if reply is None else Raw(reply)
    replies = [await _run_one(conn, router, spec, argv) for spec, argv in queued]
    return Raw(b"*%d\r\n" % len(replies) + b"".join(replies))


async def _on_one_shard(conn: ClientConnection, router: Router, index: int,
                        queued: list[tuple[CommandSpec, list[bytes]]], check: bool) -> bytes | None:
    """All commands as one RUN entry: the shard runs them back to back (atomic).  With
    ``check`` the entry starts with the WATCH check; None means it failed."""
    links = conn.gateway.links
    future = conn.gateway.loop.create_future()
    commands = [[spec.wire_name, *argv[1:]] for spec, argv in queued]
    if check:
        commands.insert(0, [b"__watchcheck", b"%d" % conn.id])
    meta = (conn.db << wire.DB_SHIFT) | conn.resp3 | wire.RUN | wire.NOBLOCK
    links.send(links.links[index], [meta, commands], BlockingWaiter(future, conn))
    replies = await future
    if replies is None:
        return None
    if isinstance(replies, bytes):  # the shard went away: its error for every command
        replies = [replies] * len(queued)
    elif check:
        replies = replies[1:]
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
        strategy: cross.Strategy = cross.STRATEGIES.get(spec.cross or "", cross.via_scratch)
        return encode(await strategy(conn.gateway, conn, spec, argv, positions), conn.resp3)
    except RedisError as exc:
        return exc.line()

