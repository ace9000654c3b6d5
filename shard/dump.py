"""DUMP and RESTORE: a value serialized as Redis does (its RDB encoding, the RDB version and a
CRC-64), so payloads move between Atoll and Redis in both directions."""

from __future__ import annotations

from typing import Any

from persistence import rdb
from persistence.rdb_reader import load_payload
from shard import errors
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.rdb_values import from_rdb, to_rdb
from shard.reply import OK
from shard.table import command


@command("DUMP key", 2, "readonly", (1, 1, 1), acl="@keyspace @read @slow", since="2.6.0",
         summary="Return a serialized version of the value stored at the specified key.")
def dump(ctx: Ctx, args: list[bytes]) -> Any:
    value = ctx.lookup(args[0])
    if value is None:
        return None
    return rdb.dump_payload(*to_rdb(value))


@command("RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]",
         -4, "write denyoom", (1, 1, 1), acl="@keyspace @write @slow @dangerous", since="2.6.0",
         summary="Create a key using the provided serialized value, previously obtained using DUMP.")
def restore(ctx: Ctx, args: list[bytes]) -> Any:
    key, payload = args[0], args[2]
    replace, absttl, idle, freq = _restore_options(args[3:])
    if not replace and ctx.lookup(key) is not None:
        raise RedisError(errors.BUSYKEY)
    ttl = int_arg(args[1])
    if ttl < 0:
        raise RedisError(errors.BAD_TTL)
    if not rdb.payload_ok(payload):
        raise RedisError(errors.DUMP_PAYLOAD)
    try:
        kind, data = load_payload(payload)
    except rdb.RdbError:
        raise RedisError(errors.BAD_DATA_FORMAT) from None
    value = from_rdb(kind, data, ctx.config)
    ks, db = ctx.ks, ctx.db
    deleted = ks.delete(db, key) if replace else False
    if ttl and not absttl:
        ttl += ks.now
    if ttl and ttl <= ks.now and not ks.replica:
        if deleted:
            ks.dirty += 1
        return OK
    ks.set(db, key, value)
    if ttl:
        ks.set_expire(db, key, ttl)
    _set_access(ctx, key, idle, freq)
    return OK


def _restore_options(options: list[bytes]) -> tuple[bool, bool, int, int]:
    """REPLACE, ABSTTL, IDLETIME seconds (-1: none), FREQ f (-1: none); IDLETIME and FREQ
    exclude each other, the second one being a syntax error as in Redis."""
    replace = absttl = False
    idle = freq = -1
    i = 0
    while i < len(options):
        word = options[i].lower()
        more = len(options) - i - 1
        if word == b"replace":
            replace = True
        elif word == b"absttl":
            absttl = True
        elif word == b"idletime" and more >= 1 and freq == -1:
            idle = int_arg(options[i + 1])
            if idle < 0:
                raise RedisError(errors.BAD_IDLETIME)
            i += 1
        elif word == b"freq" and more >= 1 and idle == -1:
            freq = int_arg(options[i + 1])
            if not 0 <= freq <= 255:
                raise RedisError(errors.BAD_FREQ)
            i += 1
        else:
            raise RedisError(errors.SYNTAX)
        i += 1
    return replace, absttl, idle, freq


def _set_access(ctx: Ctx, key: bytes, idle: int, freq: int) -> None:
    """Redis' objectSetLRUOrLFU: FREQ counts under an LFU policy, IDLETIME otherwise."""
    ks = ctx.ks
    if ks.lfu:
        if freq >= 0:
            ctx.db.lru[key] = (ks.now // 60000 & 0xFFFF) << 8 | freq
    elif idle >= 0:
        ctx.db.lru[key] = max(ks.lru_clock - idle, 0)
