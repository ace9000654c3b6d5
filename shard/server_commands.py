"""Whole-keyspace commands.  The gateway sends them to every shard and combines the parts."""

from __future__ import annotations

import random
import resource
from itertools import islice
from typing import Any

from shard import errors
from shard.context import Ctx
from shard.errors import RedisError
from shard.glob import compile_glob
from shard.reply import OK
from shard.table import FANOUT, INTERNAL, command


@command("DBSIZE", 1, "readonly fast", acl="@keyspace @read @fast", route=FANOUT, cross="sum",
         group="server", summary="Return the number of keys in the selected database")
def dbsize(ctx: Ctx, args: list[bytes]) -> Any:
    return len(ctx.db.data)


def _flush_mode(args: list[bytes]) -> None:
    if len(args) > 1 or (args and args[0].upper() not in (b"ASYNC", b"SYNC")):
        raise RedisError(errors.SYNTAX)


@command("FLUSHDB [ASYNC | SYNC]", -1, "write", acl="@keyspace @write @slow @dangerous",
         route=FANOUT, cross="first", group="server",
         summary="Remove all keys from the current database")
def flushdb(ctx: Ctx, args: list[bytes]) -> Any:
    _flush_mode(args)
    ctx.ks.flush(ctx.db)
    return OK


@command("FLUSHALL [ASYNC | SYNC]", -1, "write", acl="@keyspace @write @slow @dangerous",
         route=FANOUT, cross="first", group="server",
         summary="Remove all keys from all databases")
def flushall(ctx: Ctx, args: list[bytes]) -> Any:
    _flush_mode(args)
    for db in ctx.ks.dbs:
        ctx.ks.flush(db)
    return OK


def _db_index(raw: bytes, which: str, count: int) -> int:
    try:
        index = int(raw)
    except ValueError:
        raise RedisError(f"ERR invalid {which} DB index") from None
    if index < 0 or index >= count:
        raise RedisError(errors.DB_INDEX)
    return index


@command("SWAPDB index1 index2", 3, "write fast", acl="@keyspace @write @fast @dangerous",
         route=FANOUT, cross="first", group="server", since="4.0.0",
         summary="Swaps two Redis databases")
def swapdb(ctx: Ctx, args: list[bytes]) -> Any:
    from shard.numbers import string2ll

    dbs = ctx.ks.dbs
    first, second = string2ll(args[0]), string2ll(args[1])
    if first is None or not -(2**31) <= first < 2**31:
        raise RedisError("ERR invalid first DB index")
    if second is None or not -(2**31) <= second < 2**31:
        raise RedisError("ERR invalid second DB index")
    if not (0 <= first < len(dbs) and 0 <= second < len(dbs)):
        raise RedisError(errors.DB_INDEX)
    dbs[first], dbs[second] = dbs[second], dbs[first]
    dbs[first].index, dbs[second].index = first, second
    ctx.ks.dirty += 1  # as Redis: the append-only log and replicas must see it
    return OK


@command("KEYS pattern", 2, "readonly", acl="@keyspace @read @slow @dangerous", route=FANOUT,
         cross="concat", summary="Find all keys matching the given pattern")
def keys(ctx: Ctx, args: list[bytes]) -> Any:
    ks, db = ctx.ks, ctx.db
    if args[0] == b"*":  # Redis skips matching here, so even the empty key is listed
        return [key for key in list(db.data) if ks.get(db, key, touch=False) is not None]
    match = compile_glob(args[0])
    return [key for key in list(db.data) if match(key) and ks.get(db, key, touch=False) is not None]


@command("RANDOMKEY", 1, "readonly", acl="@keyspace @read @slow", route=FANOUT,
         cross="randomkey", summary="Return a random key from the keyspace")
def randomkey(ctx: Ctx, args: list[bytes]) -> Any:
    """[number of keys, a random live key or None]; the gateway weighs shards by size."""
    db = ctx.db
    for _ in range(100):
        if not db.data:
            break
        key = next(islice(iter(db.data), random.randrange(len(db.data)), None))
        if ctx.ks.get(db, key, touch=False) is not None:
            return [len(db.data), key]
    return [len(db.data), None]


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:
        return 0


@command("__INFO", 1, "readonly", route=INTERNAL)
def info_part(ctx: Ctx, args: list[bytes]) -> Any:
    """This shard's counters for INFO: keyspace per database and stats."""
    ks = ctx.ks
    keyspace = []
    for db in ks.dbs:
        if db.data:
            ttls = [when - ks.now for when in db.expires.values()]
            avg = sum(max(t, 0) for t in ttls) // len(ttls) if ttls else 0
            keyspace.append([db.index, len(db.data), len(db.expires), avg])
    processed = ctx.shard.commands_processed if ctx.shard is not None else 0
    error_replies = ctx.shard.error_replies if ctx.shard is not None else 0
    memory = ctx.shard.evictor.info() if ctx.shard is not None else {b"used_memory": _rss_bytes()}
    return {
        **memory,
        b"keyspace": keyspace,
        b"expired_keys": ks.expired_keys,
        b"keyspace_hits": ks.hits,
        b"keyspace_misses": ks.misses,
        b"dirty": ks.dirty,
        b"commands": processed,
        b"error_replies": error_replies,
        b"persistence": ctx.shard.persistence.info(ctx.ks) if ctx.shard is not None else {},
        **(_admin_numbers(ctx.shard) if ctx.shard is not None else {}),
        b"cmdstats": ctx.shard.stats.export() if ctx.shard is not None else {},
        b"cpu": _cpu_seconds(),
    }


def _cpu_seconds() -> list[float]:
    """System and user CPU seconds of this process (INFO cpu sums every process)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return [usage.ru_stime, usage.ru_utime]


def _admin_numbers(shard: Any) -> dict[bytes, Any]:
    """The ops rate and latency atoll-admin shows (shard/control.py), for INFO too."""
    p50, p99 = shard.batch_stats.percentiles()
    return {b"ops_per_sec": round(shard.batch_stats.ops_per_sec(shard.commands_processed)),
            b"latency_p50_us": round(p50, 1), b"latency_p99_us": round(p99, 1)}


@command("__CONFIG name value [name value ...]", -3, "admin", route=INTERNAL)
def config_part(ctx: Ctx, args: list[bytes]) -> Any:
    """Apply settings changed by CONFIG SET (the gateway validated them)."""
    import msgpack

    for i in range(0, len(args) - 1, 2):
        ctx.config[args[i].decode()] = msgpack.unpackb(args[i + 1], raw=False)
    configure_tracking(ctx.ks, ctx.config)
    if ctx.shard is not None:
        ctx.shard.stats.configure(ctx.config)
        ctx.shard.configure_notifications()
        ctx.shard.evictor.configure(ctx.config)
        ctx.shard.evictor.check()  # a lower maxmemory evicts at once, as in Redis
        ctx.shard.aof.configure()
    return OK


def configure_tracking(ks: Any, config: dict[str, Any]) -> None:
    """Follow maxmemory-policy: LFU policies keep access counters, the others access times."""
    ks.configure_access_tracking(str(config.get("maxmemory-policy", "noeviction")),
                                 int(config.get("lfu-log-factor", 10)),
                                 int(config.get("lfu-decay-time", 1)))
