"""MULTI / EXEC / DISCARD / WATCH.

The gateway queues a transaction's commands and runs them at EXEC.  When every queued command
and every watched key is on one shard (the common case, and always with hash-tagged keys) the
commands travel as one batch entry, headed by the WATCH check, and the shard runs them back to
back: nothing else runs in between, as in Redis.

A transaction over several shards first takes intents (``gateway/intents.py``) on every key
its commands name and every key it watches (or on whole shards, when it holds a command such
as FLUSHALL or DBSIZE), checks the watches, runs its commands and releases: no other client
sees it half done.  Commands run in their order per shard; the shards' shares of a stretch of
single-shard commands go out at once, since under the intents nobody can tell the difference.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any

from gateway import blocking, cross
from gateway.intents import Transaction, holding
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
        conn.watched.append((conn.db, key))
    if not conn.watching:  # a slot move after this makes EXEC fail (see gateway/control.py)
        conn.watch_map_version = links.map_version
    meta = wire.meta(conn.db, False, structured=True)
    for index, shard_keys in per_shard.items():
        conn.watching.add(index)
        await links.request(links.route_links[index], meta, [b"__watch", b"%d" % conn.id, *shard_keys])
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
        links.request(links.route_links[index], meta, [b"__unwatch", b"%d" % conn.id])
    conn.watching = set()
    conn.watched = []


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


def run_transaction(conn: ClientConnection, queued: list[tuple[CommandSpec, list[bytes]]]) -> Any:
    """EXEC's reply, or a coroutine for it.  A transaction on one shard leaves for it right
    here, in the same loop step as the EXEC was read, so a command another client sent just
    after the EXEC reaches the shard after it (as Redis, which runs EXEC when it reads it)."""
    gw = conn.gateway
    watching, watched = conn.watching, conn.watched
    conn.watching, conn.watched = set(), []
    if watching and conn.watch_map_version != gw.links.map_version:
        for index in watching:  # a watched key may have moved shards: abort, never guess
            gw.links.request(gw.links.route_links[index], wire.meta(0, False, structured=True),
                             [b"__unwatch", b"%d" % conn.id])
        return NULL_ARRAY
    plan = _Plan(conn, queued, watched)
    if plan.one_shard is not None and watching <= {plan.one_shard}:
        check = bool(watching)
        return _one_shard_reply(_send_one_shard(conn, plan.one_shard, queued, check),
                                len(queued), check)
    return _run_held(conn, queued, plan, watching)


async def _run_held(conn: ClientConnection, queued: list[tuple[CommandSpec, list[bytes]]],
                    plan: _Plan, watching: set[int]) -> Any:
    """A transaction over several shards: under intents on every key it touches."""
    async with holding(conn.gateway, plan.slots, whole=plan.whole, origin=conn.id) as tx:
        if watching:
            meta = wire.meta(0, False, structured=True)
            checks = {index: tx.send(index, meta, [[b"__watchcheck", b"%d" % conn.id]])
                      for index in watching}
            dirty = [(await check)[1] for check in checks.values()]
            if any(answer == 1 for answer in dirty):
                return NULL_ARRAY
        replies = await _run_all(conn, tx, queued)
    return Raw(b"*%d\r\n" % len(replies) + b"".join(replies))


class _Plan:
    """What a queued transaction touches: its keys with their databases (following SELECT),
    whether it needs whole shards, and its one shard when it has only one."""

    def __init__(self, conn: ClientConnection, queued: list[tuple[CommandSpec, list[bytes]]],
                 watched: list[tuple[int, bytes]]) -> None:
        owner = conn.gateway.links.slot_owner
        self.slots: list[tuple[int, bytes]] = list(watched)
        self.whole = False
        shards: set[int | None] = {owner[key_slot(key)] for _, key in watched}
        db = conn.db
        for spec, argv in queued:
            if spec.route == FANOUT:
                self.whole = True
            if spec.route != SHARD:
                shards.add(None)
                if spec.name == "select" and argv[1].isdigit():
                    db = int(argv[1])
                continue
            positions = spec.key_positions(argv)
            shards.update(owner[key_slot(argv[p])] for p in positions)
            self.slots.extend((db, argv[p]) for p in positions)
            if spec.name == "move" and argv[2].isdigit():
                self.slots.append((int(argv[2]), argv[1]))
            if spec.name == "copy":
                self.slots.extend((int(argv[i + 1]), argv[2]) for i in range(3, len(argv) - 1)
                                  if argv[i].upper() == b"DB" and argv[i + 1].isdigit())
            if not positions:
                shards.add(0)
        one = len(shards) == 1 and None not in shards and bool(queued)
        self.one_shard: int | None = next(iter(shards)) if one else None


def _send_one_shard(conn: ClientConnection, index: int,
                    queued: list[tuple[CommandSpec, list[bytes]]],
                    check: bool) -> asyncio.Future[Any]:
    """All commands as one RUN entry: the shard runs them back to back (atomic).  With
    ``check`` the entry starts with the WATCH check."""
    links = conn.gateway.links
    future = conn.gateway.loop.create_future()
    commands = [[spec.wire_name, *argv[1:]] for spec, argv in queued]
    if check:
        commands.insert(0, [b"__watchcheck", b"%d" % conn.id])
    meta = conn.origin | (conn.db << wire.DB_SHIFT) | conn.resp3 | wire.RUN | wire.NOBLOCK
    links.send(links.route_links[index], [meta, commands], BlockingWaiter(future, conn))
    return future


async def _one_shard_reply(future: asyncio.Future[Any], count: int, check: bool) -> Any:
    replies = await future
    if replies is None:  # the WATCH check failed
        return NULL_ARRAY
    if isinstance(replies, bytes):  # the shard went away: its error for every command
        replies = [replies] * count
    elif check:
        replies = replies[1:]
    return Raw(b"*%d\r\n" % len(replies) + b"".join(replies))


async def _run_all(conn: ClientConnection, tx: Transaction,
                   queued: list[tuple[CommandSpec, list[bytes]]]) -> list[bytes]:
    """Every queued command under ``tx``'s intents; errors become replies.  A stretch of
    commands that each go to one shard is sent as one entry per shard, all at once."""
    replies: list[bytes] = [b""] * len(queued)
    stretch: dict[int, list[int]] = {}  # shard -> positions in ``queued``
    owner = conn.gateway.links.slot_owner
    for i, (spec, argv) in enumerate(queued):
        shards = {owner[key_slot(argv[p])] for p in spec.key_positions(argv)} or {0}
        if spec.route == SHARD and len(shards) == 1 and "blocking" not in spec.flags:
            stretch.setdefault(shards.pop(), []).append(i)
            continue
        await _run_stretch(conn, tx, queued, stretch, replies)
        stretch = {}
        replies[i] = await _run_one(conn, tx, spec, argv)
    await _run_stretch(conn, tx, queued, stretch, replies)
    return replies


async def _run_stretch(conn: ClientConnection, tx: Transaction,
                       queued: list[tuple[CommandSpec, list[bytes]]],
                       stretch: dict[int, list[int]], replies: list[bytes]) -> None:
    meta = wire.meta(conn.db, conn.resp3) | wire.NOBLOCK
    futures = {index: tx.send(index, meta, [[queued[i][0].wire_name, *queued[i][1][1:]]
                                             for i in positions])
               for index, positions in stretch.items()}
    for index, future in futures.items():
        answer = await future
        if isinstance(answer, list):
            shard_replies = answer[1:]
        else:  # the shard went away: its error for each of its commands
            shard_replies = [RedisError(str(answer)).line()] * len(stretch[index])
        for i, reply in zip(stretch[index], shard_replies, strict=True):
            replies[i] = reply


async def _run_one(conn: ClientConnection, tx: Transaction, spec: CommandSpec,
                   argv: list[bytes]) -> bytes:
    """A queued command that is not a plain one-shard command: a connection command, a
    fan-out, a command over several shards or a blocking one (which never blocks here)."""
    try:
        if spec.route == GATEWAY:
            value = spec.handler(conn, argv)  # type: ignore[misc]
            if inspect.iscoroutine(value):
                value = await value
            return b"" if value is cross.NO_REPLY else encode(value, conn.resp3)
        if spec.route == FANOUT:
            return encode(await cross.fanout(conn.gateway, conn, spec, argv, tx), conn.resp3)
        positions = spec.key_positions(argv)
        shards = {tx.shard_of(argv[p]) for p in positions} or {0}
        if len(shards) == 1:  # a blocking command on one shard: it answers at once
            meta = wire.meta(conn.db, conn.resp3) | wire.NOBLOCK
            reply: bytes = (await tx.run(shards.pop(), meta, [[spec.wire_name, *argv[1:]]]))[0]
            return reply
        if "blocking" in spec.flags:
            return await _pop_now(conn, tx, spec, argv, positions)
        return encode(await cross.atomically(conn.gateway, conn, spec, argv, positions, tx),
                      conn.resp3)
    except RedisError as exc:
        return exc.line()


async def _pop_now(conn: ClientConnection, tx: Transaction, spec: CommandSpec,
                   argv: list[bytes], positions: list[int]) -> bytes:
    """A blocking command over several shards inside MULTI: pop now or time out at once."""
    if spec.name in ("blmove", "brpoplpush"):
        src, dst = argv[1], argv[2]
        sides = argv[3:5] if spec.name == "blmove" else [b"RIGHT", b"LEFT"]
        lmove = conn.gateway.router.by_name[b"lmove"]
        moved = await cross.atomically(conn.gateway, conn, lmove, [b"lmove", src, dst, *sides],
                                       [1, 2], tx)
        return encode(moved, conn.resp3)
    blocking.check_arguments(conn.gateway, conn, spec, argv)
    reply = await blocking.pop_now(tx, conn, spec, argv, [argv[p] for p in positions])
    return reply if reply is not None else blocking.timeout_reply(conn)
