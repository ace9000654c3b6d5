"""Generic key commands: existence, deletion, renaming, copying and expiry."""

from __future__ import annotations

from typing import Any

from shard import errors
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.notify import GENERIC
from shard.reply import OK, Simple
from shard.table import INTERNAL, command, container
from shard.values import decode_value, encode_value, encoding_of, type_name

LLONG_MAX = (1 << 63) - 1
LLONG_MIN = -(1 << 63)


@command("DEL key [key ...]", -2, "write", (1, -1, 1), acl="@keyspace @write @slow",
         cross="sum", summary="Delete a key")
def del_(ctx: Ctx, args: list[bytes]) -> Any:
    if not ctx.events:
        return sum(ctx.ks.delete(ctx.db, key) for key in args)
    deleted = 0
    for key in args:
        if ctx.ks.delete(ctx.db, key):
            deleted += 1
            ctx.notify(GENERIC, b"del", key)
    return deleted


@command("UNLINK key [key ...]", -2, "write fast", (1, -1, 1), acl="@keyspace @write @fast",
         cross="sum", since="4.0.0",
         summary="Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.")
def unlink(ctx: Ctx, args: list[bytes]) -> Any:
    return del_(ctx, args)


@command("EXISTS key [key ...]", -2, "readonly fast", (1, -1, 1), acl="@keyspace @read @fast",
         cross="sum", summary="Determine if a key exists")
def exists(ctx: Ctx, args: list[bytes]) -> Any:
    return sum(ctx.peek(key) is not None for key in args)


@command("TOUCH key [key ...]", -2, "readonly fast", (1, -1, 1), acl="@keyspace @read @fast",
         cross="sum", since="3.2.1",
         summary="Alters the last access time of a key(s). Returns the number of existing keys specified.")
def touch(ctx: Ctx, args: list[bytes]) -> Any:
    return sum(ctx.lookup(key) is not None for key in args)


@command("TYPE key", 2, "readonly fast", (1, 1, 1), acl="@keyspace @read @fast",
         summary="Determine the type stored at key")
def type_(ctx: Ctx, args: list[bytes]) -> Any:
    value = ctx.peek(args[0])
    return Simple(b"none" if value is None else type_name(value))


@command("RENAME key newkey", 3, "write", (1, 2, 1), acl="@keyspace @write @slow", cross="rename",
         summary="Rename a key")
def rename(ctx: Ctx, args: list[bytes]) -> Any:
    return _rename(ctx, args[0], args[1], nx=False)


@command("RENAMENX key newkey", 3, "write fast", (1, 2, 1), acl="@keyspace @write @fast",
         cross="renamenx", summary="Rename a key, only if the new key does not exist")
def renamenx(ctx: Ctx, args: list[bytes]) -> Any:
    return _rename(ctx, args[0], args[1], nx=True)


def _rename(ctx: Ctx, src: bytes, dst: bytes, nx: bool) -> Any:
    value = ctx.lookup(src)
    if value is None:
        raise RedisError(errors.NO_SUCH_KEY)
    if src == dst:
        return 0 if nx else OK
    if nx and ctx.lookup(dst) is not None:
        return 0
    when = ctx.db.expires.get(src)
    ctx.ks.delete(ctx.db, src)
    ctx.ks.set(ctx.db, dst, value)
    if when is not None:
        ctx.ks.set_expire(ctx.db, dst, when)
    ctx.notify(GENERIC, b"rename_from", src)
    ctx.notify(GENERIC, b"rename_to", dst)
    return 1 if nx else OK


def parse_copy_options(ctx: Ctx, options: list[bytes]) -> tuple[int, bool]:
    """The destination database and REPLACE flag of COPY."""
    dbid, replace = ctx.db.index, False
    i = 0
    while i < len(options):
        opt = options[i].upper()
        if opt == b"REPLACE":
            replace = True
        elif opt == b"DB" and i + 1 < len(options):
            dbid = int_arg(options[i + 1])
            if dbid < 0 or dbid >= len(ctx.ks.dbs) or dbid > 2**31 - 1:
                raise RedisError(errors.DB_INDEX)
            i += 1
        else:
            raise RedisError(errors.SYNTAX)
        i += 1
    return dbid, replace


@command("COPY source destination [DB destination-db] [REPLACE]", -3, "write denyoom",
         (1, 2, 1), acl="@keyspace @write @slow", cross="copy", since="6.2.0",
         summary="Copy a key")
def copy(ctx: Ctx, args: list[bytes]) -> Any:
    src, dst = args[0], args[1]
    dbid, replace = parse_copy_options(ctx, args[2:])
    if src == dst and dbid == ctx.db.index:
        raise RedisError(errors.SAME_OBJECT)
    value = ctx.lookup(src)
    if value is None:
        return 0
    target = ctx.ks.dbs[dbid]
    if ctx.ks.get(target, dst) is not None:
        if not replace:
            return 0
        ctx.ks.delete(target, dst)
    kind, payload = encode_value(value)
    ctx.ks.set(target, dst, decode_value(kind, payload))
    when = ctx.db.expires.get(src)
    if when is not None:
        ctx.ks.set_expire(target, dst, when)
    ctx.notify(GENERIC, b"copy_to", dst, dbid)
    return 1


@command("MOVE key db", 3, "write fast", (1, 1, 1), acl="@keyspace @write @fast",
         summary="Move a key to another database")
def move(ctx: Ctx, args: list[bytes]) -> Any:
    key = args[0]
    dbid = int_arg(args[1])
    if dbid < -(2**31) or dbid > 2**31 - 1:
        raise RedisError(errors.NOT_INTEGER)
    if dbid < 0 or dbid >= len(ctx.ks.dbs):
        raise RedisError(errors.DB_INDEX)
    if dbid == ctx.db.index:
        raise RedisError(errors.SAME_OBJECT)
    value = ctx.lookup(key)
    if value is None:
        return 0
    target = ctx.ks.dbs[dbid]
    if ctx.ks.get(target, key) is not None:
        return 0
    when = ctx.db.expires.get(key)
    ctx.ks.delete(ctx.db, key)
    ctx.ks.set(target, key, value)
    if when is not None:
        ctx.ks.set_expire(target, key, when)
    ctx.notify(GENERIC, b"move_from", key)
    ctx.notify(GENERIC, b"move_to", key, dbid)
    return 1


# --- expiry ----------------------------------------------------------------------------

EXPIRE_NX, EXPIRE_XX, EXPIRE_GT, EXPIRE_LT = 1, 2, 4, 8


def _expire_flags(options: list[bytes]) -> int:
    flags = 0
    for raw in options:
        opt = raw.upper()
        bit = {b"NX": EXPIRE_NX, b"XX": EXPIRE_XX, b"GT": EXPIRE_GT, b"LT": EXPIRE_LT}.get(opt)
        if bit is None:
            raise RedisError(errors.UNSUPPORTED_OPTION.format(opt=raw.decode("latin-1")))
        flags |= bit
    if flags & EXPIRE_NX and flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT):
        raise RedisError(errors.NX_XX_GT_LT)
    if flags & EXPIRE_GT and flags & EXPIRE_LT:
        raise RedisError("ERR GT and LT options at the same time are not compatible")
    return flags


def _expire_generic(ctx: Ctx, args: list[bytes], relative: bool, seconds: bool) -> int:
    key = args[0]
    flags = _expire_flags(args[2:])
    when = int_arg(args[1])
    invalid = RedisError(errors.INVALID_EXPIRE.format(cmd=ctx.name))
    if seconds:
        if when > LLONG_MAX // 1000 or when < -(-LLONG_MIN // 1000):
            raise invalid
        when *= 1000
    base = ctx.now if relative else 0
    if when > LLONG_MAX - base:
        raise invalid
    when += base
    if ctx.lookup(key) is None:
        return 0
    current = ctx.db.expires.get(key)
    if flags:
        if flags & EXPIRE_NX and current is not None:
            return 0
        if flags & EXPIRE_XX and current is None:
            return 0
        if flags & EXPIRE_GT and (current is None or when <= current):
            return 0
        if flags & EXPIRE_LT and current is not None and when >= current:
            return 0
    if when <= ctx.now and not ctx.ks.replica:
        ctx.ks.delete(ctx.db, key)
        ctx.notify(GENERIC, b"del", key)
    else:
        ctx.ks.set_expire(ctx.db, key, when)
        ctx.notify(GENERIC, b"expire", key)
    return 1


_EXPIRE_SYNTAX = " [NX | XX | GT | LT]"


@command("EXPIRE key seconds" + _EXPIRE_SYNTAX, -3, "write fast", (1, 1, 1),
         acl="@keyspace @write @fast", summary="Set a key's time to live in seconds")
def expire(ctx: Ctx, args: list[bytes]) -> Any:
    return _expire_generic(ctx, args, relative=True, seconds=True)


@command("PEXPIRE key milliseconds" + _EXPIRE_SYNTAX, -3, "write fast", (1, 1, 1),
         acl="@keyspace @write @fast", since="2.6.0",
         summary="Set a key's time to live in milliseconds")
def pexpire(ctx: Ctx, args: list[bytes]) -> Any:
    return _expire_generic(ctx, args, relative=True, seconds=False)


@command("EXPIREAT key unix-time-seconds" + _EXPIRE_SYNTAX, -3, "write fast", (1, 1, 1),
         acl="@keyspace @write @fast", since="1.2.0",
         summary="Set the expiration for a key as a UNIX timestamp")
def expireat(ctx: Ctx, args: list[bytes]) -> Any:
    return _expire_generic(ctx, args, relative=False, seconds=True)


@command("PEXPIREAT key unix-time-milliseconds" + _EXPIRE_SYNTAX, -3, "write fast", (1, 1, 1),
         acl="@keyspace @write @fast", since="2.6.0",
         summary="Set the expiration for a key as a UNIX timestamp specified in milliseconds")
def pexpireat(ctx: Ctx, args: list[bytes]) -> Any:
    return _expire_generic(ctx, args, relative=False, seconds=False)


def _ttl_generic(ctx: Ctx, key: bytes, in_ms: bool, absolute: bool) -> int:
    if ctx.peek(key) is None:
        return -2
    when = ctx.db.expires.get(key)
    if when is None:
        return -1
    ttl = max(when if absolute else when - ctx.now, 0)
    return ttl if in_ms else (ttl + 500) // 1000


@command("TTL key", 2, "readonly fast", (1, 1, 1), acl="@keyspace @read @fast",
         summary="Get the time to live for a key in seconds")
def ttl(ctx: Ctx, args: list[bytes]) -> Any:
    return _ttl_generic(ctx, args[0], in_ms=False, absolute=False)


@command("PTTL key", 2, "readonly fast", (1, 1, 1), acl="@keyspace @read @fast", since="2.6.0",
         summary="Get the time to live for a key in milliseconds")
def pttl(ctx: Ctx, args: list[bytes]) -> Any:
    return _ttl_generic(ctx, args[0], in_ms=True, absolute=False)


@command("EXPIRETIME key", 2, "readonly fast", (1, 1, 1), acl="@keyspace @read @fast",
         since="7.0.0", summary="Get the expiration Unix timestamp for a key")
def expiretime(ctx: Ctx, args: list[bytes]) -> Any:
    return _ttl_generic(ctx, args[0], in_ms=False, absolute=True)


@command("PEXPIRETIME key", 2, "readonly fast", (1, 1, 1), acl="@keyspace @read @fast",
         since="7.0.0", summary="Get the expiration Unix timestamp for a key in milliseconds")
def pexpiretime(ctx: Ctx, args: list[bytes]) -> Any:
    return _ttl_generic(ctx, args[0], in_ms=True, absolute=True)


@command("PERSIST key", 2, "write fast", (1, 1, 1), acl="@keyspace @write @fast", since="2.2.0",
         summary="Remove the expiration from a key")
def persist(ctx: Ctx, args: list[bytes]) -> Any:
    if ctx.lookup(args[0]) is None:
        return 0
    if not ctx.ks.persist(ctx.db, args[0]):
        return 0
    ctx.notify(GENERIC, b"persist", args[0])
    return 1


# --- OBJECT ----------------------------------------------------------------------------

container("object", acl="@slow", group="generic", since="2.2.3", route="shard",
          summary="A container for object introspection commands")

@command("OBJECT ENCODING key", 3, "readonly", (2, 2, 1), acl="@keyspace @read @slow",
         parent="object", since="2.2.3", summary="Inspect the internal encoding of a Redis object")
def object_encoding(ctx: Ctx, args: list[bytes]) -> Any:
    value = ctx.peek(args[1])
    return None if value is None else encoding_of(value, ctx.config)


@command("OBJECT REFCOUNT key", 3, "readonly", (2, 2, 1), acl="@keyspace @read @slow",
         parent="object", since="2.2.3",
         summary="Get the number of references to the value of the key")
def object_refcount(ctx: Ctx, args: list[bytes]) -> Any:
    value = ctx.peek(args[1])
    if value is None:
        return None
    # Redis shares the objects of small integers (0..9999) and reports INT_MAX for them.
    if type(value) is bytes and encoding_of(value, ctx.config) == b"int":
        from shard.numbers import string2ll

        number = string2ll(value)
        if number is not None and 0 <= number < 10000:
            return 2147483647
    return 1


_LFU_ERROR = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
    "that when switching between policies at runtime LRU and LFU data will take some time to "
    "adjust."
)
_LRU_ERROR = (
    "ERR An LRU maxmemory policy is selected, idle time not tracked. Please note that when "
    "switching between policies at runtime LRU and LFU data will take some time to adjust."
)


@command("OBJECT IDLETIME key", 3, "readonly", (2, 2, 1), acl="@keyspace @read @slow",
         parent="object", since="2.2.3",
         summary="Get the time since a Redis object was last accessed")
def object_idletime(ctx: Ctx, args: list[bytes]) -> Any:
    if ctx.peek(args[1]) is None:
        return None
    if ctx.ks.lfu:
        raise RedisError(_LRU_ERROR)
    return ctx.ks.idle_seconds(ctx.db, args[1])


@command("OBJECT FREQ key", 3, "readonly", (2, 2, 1), acl="@keyspace @read @slow",
         parent="object", since="4.0.0",
         summary="Get the logarithmic access frequency counter of a Redis object")
def object_freq(ctx: Ctx, args: list[bytes]) -> Any:
    if ctx.peek(args[1]) is None:
        return None
    if not ctx.ks.lfu:
        raise RedisError(_LFU_ERROR)
    return ctx.ks.access_frequency(ctx.db, args[1])


# --- gateway-to-shard transfer of whole keys (cross-shard RENAME, COPY ...) ----------

@command("__EXPORT key", 2, "readonly", (1, 1, 1), route=INTERNAL)
def export(ctx: Ctx, args: list[bytes]) -> Any:
    """[type, payload, pexpireat or -1], or None when the key does not exist."""
    value = ctx.lookup(args[0])
    if value is None:
        return None
    kind, payload = encode_value(value)
    return [kind, payload, ctx.db.expires.get(args[0], -1)]


@command("__IMPORT key type payload pexpireat REPLACE|NX db", 7, "write", (1, 1, 1),
         route=INTERNAL)
def import_(ctx: Ctx, args: list[bytes]) -> Any:
    """Store a transferred value; NX answers 0 and stores nothing when the key exists."""
    key, kind, payload, when, mode = args[0], args[1], args[2], int(args[3]), args[4]
    target = ctx.ks.dbs[int(args[5])]
    if ctx.ks.get(target, key) is not None:
        if mode == b"NX":
            return 0
        ctx.ks.delete(target, key)
    ctx.ks.set(target, key, decode_value(kind, payload))
    if when >= 0:
        ctx.ks.set_expire(target, key, when)
    return 1
