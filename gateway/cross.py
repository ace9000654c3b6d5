"""Plans for commands whose keys live on several shards, and for whole-keyspace fan-outs.

Each strategy is a coroutine that runs under a :class:`~gateway.intents.Transaction` holding
intents on every key of the command: it sends structured sub-commands to the shards involved
and combines their answers into the reply Redis would give.  Under the intents no other
client can see a half-applied command.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gateway.intents import Transaction, holding
from shard import errors, wire
from shard.errors import RedisError
from shard.reply import OK, Simple

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.server import Gateway
    from shard.table import CommandSpec


class _AdminConn:
    """The connection identity of internal fan-outs (db 0, RESP2): what the gateway, the
    snapshots and the replication actor pass to :func:`all_shards` for their own work."""

    db = 0
    resp3 = False


ADMIN: Any = _AdminConn()


NO_REPLY = object()


def _raise_first_error(values: list[Any]) -> None:
    for value in values:
        if isinstance(value, RedisError):
            raise value


def group_positions(tx: Transaction, argv: list[bytes], positions: list[int]) -> dict[int, list[int]]:
    """Argument positions per shard index, keeping their order."""
    groups: dict[int, list[int]] = {}
    for pos in positions:
        groups.setdefault(tx.shard_of(argv[pos]), []).append(pos)
    return groups


async def atomically(gw: Gateway, conn: ClientConnection, spec: CommandSpec, argv: list[bytes],
                     positions: list[int], tx: Transaction | None = None) -> Any:
    """A command whose keys live on several shards, under intents on all of them (or under
    ``tx``'s, inside a transaction that already holds them)."""
    strategy: Strategy = STRATEGIES.get(spec.cross or "", via_scratch)
    if tx is not None:
        return await strategy(tx, conn, spec, argv, positions)
    slots = [(conn.db, argv[p]) for p in positions]
    if spec.name == "copy":
        slots[1] = (copy_options(gw, conn, argv)[0], argv[2])
    async with holding(gw, slots, origin=conn.id) as held:
        return await strategy(held, conn, spec, argv, positions)


async def split_sum(tx: Transaction, conn: ClientConnection, spec: CommandSpec, argv: list[bytes],
                    positions: list[int]) -> Any:
    """DEL, UNLINK, EXISTS, TOUCH: each shard counts its own keys."""
    groups = group_positions(tx, argv, positions)
    parts = {i: [spec.wire_name, *[argv[p] for p in pos]] for i, pos in groups.items()}
    results = await tx.each(parts, conn.db)
    _raise_first_error(list(results.values()))
    return sum(results.values())


async def split_mget(tx: Transaction, conn: ClientConnection, spec: CommandSpec, argv: list[bytes],
                     positions: list[int]) -> Any:
    groups = group_positions(tx, argv, positions)
    parts = {i: [b"mget", *[argv[p] for p in pos]] for i, pos in groups.items()}
    results = await tx.each(parts, conn.db)
    _raise_first_error(list(results.values()))
    out: list[Any] = [None] * (len(argv) - 1)
    for index, pos_list in groups.items():
        for pos, value in zip(pos_list, results[index], strict=True):
            out[pos - 1] = value
    return out


def _pairs_by_shard(tx: Transaction, argv: list[bytes]) -> dict[int, list[bytes]]:
    if len(argv) % 2 == 0:
        raise errors.wrong_arity(argv[0].lower().decode("latin-1"))
    parts: dict[int, list[bytes]] = {}
    for i in range(1, len(argv), 2):
        parts.setdefault(tx.shard_of(argv[i]), []).extend((argv[i], argv[i + 1]))
    return parts


async def split_mset(tx: Transaction, conn: ClientConnection, spec: CommandSpec, argv: list[bytes],
                     positions: list[int]) -> Any:
    parts = {i: [b"mset", *pairs] for i, pairs in _pairs_by_shard(tx, argv).items()}
    results = await tx.each(parts, conn.db)
    _raise_first_error(list(results.values()))
    return OK


async def split_msetnx(tx: Transaction, conn: ClientConnection, spec: CommandSpec,
                       argv: list[bytes], positions: list[int]) -> Any:
    parts = _pairs_by_shard(tx, argv)
    existing = await tx.each({i: [b"exists", *a[0::2]] for i, a in parts.items()}, conn.db)
    _raise_first_error(list(existing.values()))
    if sum(existing.values()):
        return 0
    results = await tx.each({i: [b"mset", *a] for i, a in parts.items()}, conn.db)
    _raise_first_error(list(results.values()))
    return 1


async def move_key(tx: Transaction, conn: ClientConnection, spec: CommandSpec, argv: list[bytes],
                   positions: list[int]) -> Any:
    """RENAME / RENAMENX between shards: export, import on the destination, delete."""
    src, dst = argv[1], argv[2]
    nx = spec.name == "renamenx"
    exported = await tx.call_key(src, conn.db, [b"__export", src])
    if exported is None:
        raise RedisError(errors.NO_SUCH_KEY)
    kind, payload, when = exported
    mode = b"NX" if nx else b"REPLACE"
    stored = await tx.call_key(dst, conn.db, [b"__import", dst, kind, payload, b"%d" % when, mode,
                                              b"%d" % conn.db])
    if not stored:
        return 0
    await tx.call_key(src, conn.db, [b"del", src])
    return 1 if nx else OK


def copy_options(gw: Gateway, conn: ClientConnection, argv: list[bytes]) -> tuple[int, bool]:
    """COPY's destination database and REPLACE flag."""
    from shard.numbers import string2ll

    dbid, replace = conn.db, False
    i = 3
    while i < len(argv):
        opt = argv[i].upper()
        if opt == b"REPLACE":
            replace = True
        elif opt == b"DB" and i + 1 < len(argv):
            parsed = string2ll(argv[i + 1])
            if parsed is None:
                raise RedisError(errors.NOT_INTEGER)
            if not 0 <= parsed < gw.databases:
                raise RedisError(errors.DB_INDEX)
            dbid = parsed
            i += 1
        else:
            raise RedisError(errors.SYNTAX)
        i += 1
    return dbid, replace


async def copy_key(tx: Transaction, conn: ClientConnection, spec: CommandSpec, argv: list[bytes],
                   positions: list[int]) -> Any:
    src, dst = argv[1], argv[2]
    dbid, replace = copy_options(tx.gw, conn, argv)
    exported = await tx.call_key(src, conn.db, [b"__export", src])
    if exported is None:
        return 0
    kind, payload, when = exported
    mode = b"REPLACE" if replace else b"NX"
    return await tx.call_key(dst, conn.db, [b"__import", dst, kind, payload, b"%d" % when, mode,
                                            b"%d" % dbid])


async def lcs_keys(tx: Transaction, conn: ClientConnection, spec: CommandSpec, argv: list[bytes],
                   positions: list[int]) -> Any:
    from shard.lcs import lcs_compute
    from shard.values import decode_value

    values = []
    for key in (argv[1], argv[2]):
        exported = await tx.call_key(key, conn.db, [b"__export", key])
        values.append(None if exported is None else decode_value(exported[0], exported[1]))
    if any(v is not None and type(v) is not bytes for v in values):
        raise RedisError("ERR The specified keys must contain string values")
    return lcs_compute(values[0] or b"", values[1] or b"", argv[3:],
                       tx.gw.config.value("proto-max-bulk-len"))


class Scratch:
    """A private, process-local keyspace in which a multi-key command runs on copies of its
    keys when they live on different shards.

    ``pull -> run -> push``: every key of the command is exported from its shard, the command
    runs here exactly as a shard would run it (same handlers), and each key whose value or
    TTL changed is written back (or deleted) on its owner.  Any command of the table works
    this way without a cross-shard version of its own (SMOVE, LMOVE, SINTERSTORE, ZUNIONSTORE
    ...).  Under the intents of the cross-shard issue the same three steps become atomic.
    """

    def __init__(self, gw: Gateway) -> None:
        from shard.actor import ShardExecutor

        self.executor = ShardExecutor(-1, {"databases": gw.databases})
        self.refresh(gw.config)

    def refresh(self, config: Any) -> None:
        """Take the settings that shape values (encodings, size limits) from ``config``."""
        self.executor.config.update({k: config.value(k) for k in _SCRATCH_SETTINGS})

    async def run(self, tx: Transaction, conn: ClientConnection, spec: CommandSpec,
                  argv: list[bytes], positions: list[int]) -> Any:
        from shard.values import decode_value, encode_value

        keys = list(dict.fromkeys(argv[p] for p in positions))
        meta = wire.meta(conn.db, conn.resp3, structured=True)
        futures = [tx.send(tx.shard_of(k), meta, [[b"__export", k]]) for k in keys]
        before = dict(zip(keys, [_first(await f) for f in futures], strict=True))
        _raise_first_error(list(before.values()))
        ks = self.executor.ks
        db = ks.dbs[conn.db]
        ks.flush(db)
        ks.tick()
        for key, exported in before.items():
            if exported is not None:
                kind, payload, when = exported
                ks.set(db, key, decode_value(kind, payload))
                if when >= 0:
                    ks.set_expire(db, key, when)
        value = self.executor.execute(wire.meta(conn.db, conn.resp3, structured=True),
                                      [spec.fullname.encode(), *argv[1:]])
        writes = []
        for key, old in before.items():
            current = ks.get(db, key)
            if current is None:
                if old is not None:
                    writes.append(tx.call_key(key, conn.db, [b"del", key]))
                continue
            kind, payload = encode_value(current)
            when = db.expires.get(key, -1)
            if old is None or old[0] != kind or old[1] != payload or old[2] != when:
                writes.append(tx.call_key(key, conn.db, [b"__import", key, kind, payload,
                                                         b"%d" % when, b"REPLACE", b"%d" % conn.db]))
        # Loading, running and diffing happen without an await, so runs of several clients
        # never see each other's keys in the shared scratch keyspace.
        ks.flush(db)
        await asyncio.gather(*writes)
        return value


def _first(replies: Any) -> Any:
    if not isinstance(replies, list):  # the shard went away
        raise replies if isinstance(replies, RedisError) else RedisError(str(replies))
    return replies[1]


_SCRATCH_SETTINGS = ("proto-max-bulk-len", "list-max-listpack-size", "hash-max-listpack-entries",
                     "hash-max-listpack-value", "set-max-intset-entries",
                     "zset-max-listpack-entries", "zset-max-listpack-value", "hll-sparse-max-bytes")


async def via_scratch(tx: Transaction, conn: ClientConnection, spec: CommandSpec,
                      argv: list[bytes], positions: list[int]) -> Any:
    return await tx.gw.scratch.run(tx, conn, spec, argv, positions)


Strategy = Callable[..., Awaitable[Any]]
STRATEGIES: dict[str, Strategy] = {
    "sum": split_sum,
    "mget": split_mget,
    "mset": split_mset,
    "msetnx": split_msetnx,
    "rename": move_key,
    "renamenx": move_key,
    "copy": copy_key,
    "lcs": lcs_keys,
}


# --- fan-outs to every shard -----------------------------------------------------------

async def all_shards(gw: Gateway, conn: ClientConnection, argv: list[bytes],
                     db: int | None = None) -> list[Any]:
    links = gw.links
    meta = wire.meta(conn.db if db is None else db, conn.resp3, structured=True)
    futures = [links.request(link, meta, argv) for link in links.links]
    return list(await asyncio.gather(*futures))


# Fan-outs that read or write whole databases run as barriers: under intents on every shard.
BARRIERS = {"dbsize", "keys", "flushall", "flushdb", "swapdb"}


async def fanout(gw: Gateway, conn: ClientConnection, spec: CommandSpec, argv: list[bytes],
                 tx: Transaction | None = None) -> Any:
    command = [spec.wire_name, *argv[1:]]
    if tx is not None:
        parts = {index: command for index in range(len(gw.links.links))}
        results = list((await tx.each(parts, conn.db, conn.resp3)).values())
    elif spec.name in BARRIERS and len(gw.links.links) > 1:
        async with holding(gw, whole=True, origin=conn.id) as held:
            parts = {index: command for index in range(len(gw.links.links))}
            results = list((await held.each(parts, conn.db, conn.resp3)).values())
    else:
        results = await all_shards(gw, conn, command)
    _raise_first_error(results)
    how = spec.cross
    if how == "sum":
        return sum(results)
    if how == "concat":
        return [key for part in results for key in part]
    if how == "randomkey":
        sizes = [size for size, key in results if key is not None]
        keys = [key for size, key in results if key is not None]
        return random.choices(keys, weights=sizes)[0] if keys else None
    first = results[0]
    return Simple(first) if isinstance(first, bytes) and first == b"OK" else first
