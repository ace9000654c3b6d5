"""Blocking pops in the gateway: waiting in one shard, or over several.

One shard: the command goes to the shard, which serves it at once or parks it in its FIFO per
key (``shard/blocking.py``); the reply then comes as an unsolicited message.

Several shards (BLPOP a b with a and b on different shards):

1. The arguments are checked by running the command on the empty scratch keyspace, so errors
   come exactly as Redis words them and before anything waits.
2. Under intents on every key, the first key in argument order that holds a value decides, as
   in Redis: the pop runs there (or WRONGTYPE).  Inside MULTI this is all that happens.
3. Otherwise the command waits on every shard involved, each with its share of the keys, and
   the first shard that serves it wins.  The other waits are dropped; a shard that served in
   the same instant gets its values given back (``gateway/orphans.py``), so a value is never
   delivered twice and never lost.  Each key keeps its FIFO of waiters inside its shard.

BLMOVE / BRPOPLPUSH between shards move at once under intents when the source has an element;
otherwise they wait on the source's shard with a one-key pop, then push to the destination
under intents, giving the element back when the destination has another type.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import hiredis

from gateway import cross
from gateway.intents import Transaction, holding
from gateway.links import BlockingWaiter, ShardLink
from shard import errors, wire
from shard.errors import RedisError
from shard.reply import NULL_ARRAY, Raw, encode

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.server import Gateway
    from shard.table import CommandSpec


class Popped(Raw):
    """The RESP reply of a blocking pop, with what is needed to undo the pop."""

    argv: list[bytes]
    db: int

    def __new__(cls, reply: bytes, argv: list[bytes], db: int) -> Popped:
        self = super().__new__(cls, reply)
        self.argv = argv
        self.db = db
        return self


def _parse(reply: bytes) -> Any:
    reader = hiredis.Reader()
    reader.feed(reply)
    return reader.gets()


def _popped(reply: Any) -> bool:
    """Whether a blocking pop's RESP reply carries values (not a timeout or an error)."""
    return isinstance(reply, bytes) and reply[:1] == b"*" and not reply.startswith(b"*-1")


async def wait_one(gw: Gateway, conn: ClientConnection, link: ShardLink, meta: int,
                   argv: list[bytes], give_back: bool = True) -> Any:
    """A blocking command on one shard: the connection holds its later commands until the
    reply.  The reply is a :class:`Popped`: should the client be gone when it is written,
    what it took goes back (see ``ClientConnection._async_done``)."""
    future = gw.loop.create_future()
    gw.links.send(link, [meta, argv], BlockingWaiter(future, conn, argv))
    reply = await future
    return Popped(reply, argv, conn.db) if give_back else Raw(reply)


# --- one command over several shards -------------------------------------------------------

def _share(spec: CommandSpec, argv: list[bytes], keys: list[bytes]) -> list[bytes]:
    """The command restricted to ``keys`` (its share on one shard)."""
    if spec.name in ("blmpop", "bzmpop"):
        numkeys = int(argv[2])
        return [spec.wire_name, argv[1], b"%d" % len(keys), *keys, *argv[3 + numkeys:]]
    return [spec.wire_name, *keys, argv[-1]]


def _wanted_type(spec: CommandSpec) -> bytes:
    return b"list" if spec.group == "list" else b"zset"


def check_arguments(gw: Gateway, conn: ClientConnection, spec: CommandSpec, argv: list[bytes]) -> None:
    """Raise the error Redis gives for bad arguments, by running the command on the empty
    scratch keyspace (where it can only time out)."""
    meta = wire.meta(conn.db, conn.resp3, structured=True) | wire.NOBLOCK
    value = gw.scratch.executor.execute(meta, [spec.wire_name, *argv[1:]])
    if isinstance(value, RedisError):
        raise value


async def pop_now(tx: Transaction, conn: ClientConnection, spec: CommandSpec,
                  argv: list[bytes], keys: list[bytes]) -> bytes | None:
    """Under ``tx``'s intents: pop from the first key (in argument order) that holds a value,
    as Redis does; None when every key is empty."""
    per_shard: dict[int, list[bytes]] = {}
    for key in dict.fromkeys(keys):
        per_shard.setdefault(tx.shard_of(key), []).append(key)
    meta = wire.meta(conn.db, False, structured=True)
    futures = {index: tx.send(index, meta, [[b"type", k] for k in shard_keys])
               for index, shard_keys in per_shard.items()}
    kinds: dict[bytes, bytes] = {}
    for index, future in futures.items():
        replies = await future
        if not isinstance(replies, list):
            raise replies if isinstance(replies, RedisError) else RedisError(str(replies))
        kinds.update(zip(per_shard[index], [bytes(t) for t in replies[1:]], strict=True))
    wanted = _wanted_type(spec)
    for key in keys:
        kind = kinds[key]
        if kind == b"none":
            continue
        if kind != wanted:
            raise RedisError(errors.WRONGTYPE)
        meta = wire.meta(conn.db, conn.resp3) | wire.NOBLOCK
        reply: bytes = (await tx.run(tx.shard_of(key), meta, [_share(spec, argv, [key])]))[0]
        return reply
    return None


async def wait_many(gw: Gateway, conn: ClientConnection, spec: CommandSpec, argv: list[bytes],
                    positions: list[int]) -> Any:
    """A blocking pop whose keys live on several shards (steps 1-3 of the module text)."""
    check_arguments(gw, conn, spec, argv)
    keys = [argv[p] for p in positions]
    async with holding(gw, [(conn.db, k) for k in dict.fromkeys(keys)], origin=conn.id) as tx:
        reply = await pop_now(tx, conn, spec, argv, keys)
    if reply is not None:
        return Popped(reply, _share(spec, argv, [_parse(reply)[0]]), conn.db)
    per_shard: dict[int, list[bytes]] = {}
    for key in keys:
        per_shard.setdefault(tx.shard_of(key), []).append(key)
    meta = wire.meta(conn.db, conn.resp3)
    waits: list[tuple[asyncio.Future[Any], BlockingWaiter]] = []
    for index, shard_keys in sorted(per_shard.items()):
        future: asyncio.Future[Any] = gw.loop.create_future()
        share = _share(spec, argv, shard_keys)
        waiter = BlockingWaiter(future, conn, share)
        gw.links.send(gw.links.route_links[index], [meta, share], waiter)
        waits.append((future, waiter))
    await asyncio.wait([future for future, _ in waits], return_when=asyncio.FIRST_COMPLETED)
    done = [(f, w) for f, w in waits if f.done()]
    # Values beat a timeout that came in the same instant; then the earliest shard.
    winner = next(((f, w) for f, w in done if _popped(f.result())), done[0])
    for future, waiter in waits:
        if (future, waiter) != winner:
            _abandon(gw, future, waiter)
    return Popped(winner[0].result(), winner[1].argv, conn.db)


def _abandon(gw: Gateway, future: asyncio.Future[Any], waiter: BlockingWaiter) -> None:
    """Stop a losing wait; whatever it popped goes back."""
    def give_back(done: asyncio.Future[Any]) -> None:
        reply = done.result()
        if _popped(reply):
            gw.give_back_values(waiter.argv, waiter.db, reply, lost_race=True)

    if future.done():
        give_back(future)
        return
    waiter.abandoned = True
    future.add_done_callback(give_back)
    if waiter.link is not None:  # parked: drop it (a reply racing the drop is given back)
        gw.end_wait(waiter, b"DROP")


def timeout_reply(conn: ClientConnection) -> bytes:
    return encode(NULL_ARRAY, conn.resp3)


# --- BLMOVE / BRPOPLPUSH between shards ----------------------------------------------------

async def move_between(gw: Gateway, conn: ClientConnection, spec: CommandSpec,
                       argv: list[bytes]) -> Any:
    from shard.blocking import timeout_ms
    from shard.lists import _where

    src, dst = argv[1], argv[2]
    if spec.name == "blmove":
        from_head, to_head, raw_timeout = _where(argv[3]), _where(argv[4]), argv[5]
    else:
        from_head, to_head, raw_timeout = False, True, argv[3]
    timeout_ms(raw_timeout)  # its errors come first, as in Redis
    side = [b"LEFT" if from_head else b"RIGHT", b"LEFT" if to_head else b"RIGHT"]
    lmove = gw.router.by_name[b"lmove"]
    moved = await cross.atomically(gw, conn, lmove, [b"lmove", src, dst, *side], [1, 2])
    if moved is not None:
        return moved
    pop = b"blpop" if from_head else b"brpop"
    meta = wire.meta(conn.db, conn.resp3)
    reply = await wait_one(gw, conn, gw.links.shard_of(src), meta, [pop, src, raw_timeout],
                           give_back=False)
    if not _popped(bytes(reply)):
        return None if not bytes(reply).startswith(b"-") else reply
    element: bytes = _parse(bytes(reply))[1]
    push = b"lpush" if to_head else b"rpush"
    async with holding(gw, [(conn.db, dst), (conn.db, src)], origin=conn.id) as tx:
        try:
            await tx.call_key(dst, conn.db, [push, dst, element])
        except RedisError:
            back = b"lpush" if from_head else b"rpush"
            await tx.call_key(src, conn.db, [back, src, element])
            raise
    return element
