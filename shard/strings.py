"""String commands.  Handlers run on the shard that owns the key and do no I/O."""

from __future__ import annotations

from typing import Any

from shard import errors, numbers
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.notify import GENERIC, STRING
from shard.numbers import string2ll
from shard.reply import OK
from shard.table import command

LLONG_MAX = (1 << 63) - 1
LLONG_MIN = -(1 << 63)

# Option bits shared by SET and GETEX, as Redis parses them.
NX, XX, GET, KEEPTTL, PERSIST, EX, PX, EXAT, PXAT = (1 << i for i in range(9))
_EXPIRY = EX | PX | EXAT | PXAT
# option -> (bit, bits it cannot be combined with, takes a value, allowed in SET, in GETEX)
_OPTIONS: dict[bytes, tuple[int, int, bool, bool, bool]] = {
    b"NX": (NX, XX, False, True, False),
    b"XX": (XX, NX, False, True, False),
    b"GET": (GET, 0, False, True, False),
    b"KEEPTTL": (KEEPTTL, PERSIST | _EXPIRY, False, True, False),
    b"PERSIST": (PERSIST, KEEPTTL | _EXPIRY, False, False, True),
    b"EX": (EX, KEEPTTL | PERSIST | EXAT | PX | PXAT, True, True, True),
    b"PX": (PX, KEEPTTL | PERSIST | EX | EXAT | PXAT, True, True, True),
    b"EXAT": (EXAT, KEEPTTL | PERSIST | EX | PX | PXAT, True, True, True),
    b"PXAT": (PXAT, KEEPTTL | PERSIST | EX | EXAT | PX, True, True, True),
}


def parse_string_options(args: list[bytes], start: int, for_set: bool) -> tuple[int, bytes | None]:
    """The option flags and the raw expire argument of SET (``for_set``) or GETEX."""
    flags = 0
    expire = None
    i = start
    while i < len(args):
        option = _OPTIONS.get(args[i].upper())
        has_next = i + 1 < len(args)
        if option is None:
            raise RedisError(errors.SYNTAX)
        bit, conflicts, takes_value, in_set, in_getex = option
        if flags & conflicts or not (in_set if for_set else in_getex) or (takes_value and not has_next):
            raise RedisError(errors.SYNTAX)
        flags |= bit
        if takes_value:
            expire = args[i + 1]
            i += 1
        i += 1
    return flags, expire


def expire_at_ms(ctx: Ctx, raw: bytes, flags: int) -> int:
    """The absolute expiry time an EX/PX/EXAT/PXAT argument stands for."""
    value = int_arg(raw)
    seconds = bool(flags & (EX | EXAT))
    if value <= 0 or (seconds and value > LLONG_MAX // 1000):
        raise RedisError(errors.INVALID_EXPIRE.format(cmd=ctx.name))
    if seconds:
        value *= 1000
    if flags & (EX | PX):
        value += ctx.now
    if value <= 0 or value > LLONG_MAX:
        raise RedisError(errors.INVALID_EXPIRE.format(cmd=ctx.name))
    return value


@command("SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]",
         -3, "write denyoom", (1, 1, 1), acl="@write @string @slow", group="string",
         summary="Set the string value of a key")
def set_(ctx: Ctx, args: list[bytes]) -> Any:
    if len(args) == 2:  # the common case, kept short: it is most of a SET benchmark
        ctx.ks.set(ctx.db, args[0], args[1])
        if ctx.events:
            ctx.notify(STRING, b"set", args[0])
        return OK
    flags, expire = parse_string_options(args, 2, True)
    return set_generic(ctx, args[0], args[1], flags, expire)


def set_generic(ctx: Ctx, key: bytes, value: bytes, flags: int, expire: bytes | None,
                ok: Any = OK, aborted: Any = None) -> Any:
    when = expire_at_ms(ctx, expire, flags) if expire is not None else None
    old = ctx.lookup_string(key) if flags & GET else ctx.lookup(key)
    found = old is not None
    if (flags & NX and found) or (flags & XX and not found):
        return old if flags & GET else aborted
    ctx.ks.set(ctx.db, key, value, keep_ttl=bool(flags & KEEPTTL))
    if ctx.events:
        ctx.notify(STRING, b"set", key)
    if when is not None:
        ctx.ks.set_expire(ctx.db, key, when)
        if ctx.events:
            ctx.notify(GENERIC, b"expire", key)
    return old if flags & GET else ok


@command("SETNX key value", 3, "write denyoom fast", (1, 1, 1), acl="@write @string @fast",
         group="string", summary="Set the value of a key, only if the key does not exist")
def setnx(ctx: Ctx, args: list[bytes]) -> Any:
    return set_generic(ctx, args[0], args[1], NX, None, ok=1, aborted=0)


@command("SETEX key seconds value", 4, "write denyoom", (1, 1, 1), acl="@write @string @slow",
         group="string", since="2.0.0", summary="Set the value and expiration of a key")
def setex(ctx: Ctx, args: list[bytes]) -> Any:
    return set_generic(ctx, args[0], args[2], EX, args[1])


@command("PSETEX key milliseconds value", 4, "write denyoom", (1, 1, 1),
         acl="@write @string @slow", group="string", since="2.6.0",
         summary="Set the value and expiration in milliseconds of a key")
def psetex(ctx: Ctx, args: list[bytes]) -> Any:
    return set_generic(ctx, args[0], args[2], PX, args[1])


@command("GET key", 2, "readonly fast", (1, 1, 1), acl="@read @string @fast", group="string",
         summary="Get the value of a key")
def get(ctx: Ctx, args: list[bytes]) -> Any:
    return ctx.lookup_string(args[0])


@command("GETSET key value", 3, "write denyoom fast", (1, 1, 1), acl="@write @string @fast",
         group="string", summary="Set the string value of a key and return its old value")
def getset(ctx: Ctx, args: list[bytes]) -> Any:
    old = ctx.lookup_string(args[0])
    ctx.ks.set(ctx.db, args[0], args[1])
    ctx.notify(STRING, b"set", args[0])
    return old


@command("GETDEL key", 2, "write fast", (1, 1, 1), acl="@write @string @fast", group="string",
         since="6.2.0", summary="Get the value of a key and delete the key")
def getdel(ctx: Ctx, args: list[bytes]) -> Any:
    old = ctx.lookup_string(args[0])
    if old is not None:
        ctx.ks.delete(ctx.db, args[0])
        ctx.notify(GENERIC, b"del", args[0])
    return old


@command("GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]",
         -2, "write fast", (1, 1, 1), acl="@write @string @fast", group="string", since="6.2.0",
         summary="Get the value of a key and optionally set its expiration")
def getex(ctx: Ctx, args: list[bytes]) -> Any:
    key = args[0]
    flags, expire = parse_string_options(args, 1, False)
    value = ctx.lookup_string(key)
    if value is None:
        return None
    if expire is not None:
        when = expire_at_ms(ctx, expire, flags)
        if flags & (EXAT | PXAT) and when <= ctx.now:
            ctx.ks.delete(ctx.db, key)
            ctx.notify(GENERIC, b"del", key)
        else:
            ctx.ks.set_expire(ctx.db, key, when)
            ctx.notify(GENERIC, b"expire", key)
    elif flags & PERSIST:
        if ctx.ks.persist(ctx.db, key):
            ctx.notify(GENERIC, b"persist", key)
    return value


@command("MGET key [key ...]", -2, "readonly fast", (1, -1, 1), acl="@read @string @fast",
         group="string", cross="mget", summary="Get the values of all the given keys")
def mget(ctx: Ctx, args: list[bytes]) -> Any:
    out = []
    for key in args:
        value = ctx.lookup(key)
        out.append(value if type(value) is bytes else None)
    return out


@command("MSET key value [key value ...]", -3, "write denyoom", (1, -1, 2),
         acl="@write @string @slow", group="string", since="1.0.1", cross="mset",
         summary="Set multiple keys to multiple values")
def mset(ctx: Ctx, args: list[bytes]) -> Any:
    if len(args) % 2:
        raise errors.wrong_arity(ctx.name)
    for i in range(0, len(args), 2):
        ctx.ks.set(ctx.db, args[i], args[i + 1])
        if ctx.events:
            ctx.notify(STRING, b"set", args[i])
    return OK


@command("MSETNX key value [key value ...]", -3, "write denyoom", (1, -1, 2),
         acl="@write @string @slow", group="string", since="1.0.1", cross="msetnx",
         summary="Set multiple keys to multiple values, only if none of the keys exist")
def msetnx(ctx: Ctx, args: list[bytes]) -> Any:
    if len(args) % 2:
        raise errors.wrong_arity(ctx.name)
    if any(ctx.lookup(args[i]) is not None for i in range(0, len(args), 2)):
        return 0
    mset(ctx, args)
    return 1


def _incr_by(ctx: Ctx, key: bytes, delta: int) -> int:
    current = ctx.lookup_string(key)
    value = 0
    if current is not None:
        parsed = string2ll(current)
        if parsed is None:
            raise RedisError(errors.NOT_INTEGER)
        value = parsed
    result = value + delta
    if result > LLONG_MAX or result < LLONG_MIN:
        raise RedisError(errors.OVERFLOW)
    ctx.ks.set(ctx.db, key, b"%d" % result, keep_ttl=True)
    if ctx.events:
        ctx.notify(STRING, b"incrby", key)
    return result


@command("INCR key", 2, "write denyoom fast", (1, 1, 1), acl="@write @string @fast",
         group="string", summary="Increment the integer value of a key by one")
def incr(ctx: Ctx, args: list[bytes]) -> Any:
    return _incr_by(ctx, args[0], 1)


@command("DECR key", 2, "write denyoom fast", (1, 1, 1), acl="@write @string @fast",
         group="string", summary="Decrement the integer value of a key by one")
def decr(ctx: Ctx, args: list[bytes]) -> Any:
    return _incr_by(ctx, args[0], -1)


@command("INCRBY key increment", 3, "write denyoom fast", (1, 1, 1), acl="@write @string @fast",
         group="string", summary="Increment the integer value of a key by the given amount")
def incrby(ctx: Ctx, args: list[bytes]) -> Any:
    return _incr_by(ctx, args[0], int_arg(args[1]))


@command("DECRBY key decrement", 3, "write denyoom fast", (1, 1, 1), acl="@write @string @fast",
         group="string", summary="Decrement the integer value of a key by the given number")
def decrby(ctx: Ctx, args: list[bytes]) -> Any:
    delta = int_arg(args[1])
    if delta == LLONG_MIN:
        raise RedisError("ERR decrement would overflow")
    return _incr_by(ctx, args[0], -delta)


@command("INCRBYFLOAT key increment", 3, "write denyoom fast", (1, 1, 1),
         acl="@write @string @fast", group="string", since="2.6.0",
         summary="Increment the float value of a key by the given amount")
def incrbyfloat(ctx: Ctx, args: list[bytes]) -> Any:
    current = ctx.lookup_string(args[0])
    try:
        result = numbers.incrbyfloat(current, args[1])
    except numbers.NanOrInfinity:
        raise RedisError(errors.NAN_OR_INF) from None
    except numbers.NotAFloat:
        raise RedisError(errors.NOT_FLOAT) from None
    ctx.ks.set(ctx.db, args[0], result, keep_ttl=True)
    ctx.notify(STRING, b"incrbyfloat", args[0])
    return result


def _check_length(ctx: Ctx, size: int) -> None:
    if size > ctx.config.get("proto-max-bulk-len", 512 * 1024 * 1024):
        raise RedisError(errors.STRING_TOO_LONG)


@command("APPEND key value", 3, "write denyoom fast", (1, 1, 1), acl="@write @string @fast",
         group="string", since="2.0.0", summary="Append a value to a key")
def append(ctx: Ctx, args: list[bytes]) -> Any:
    key, tail = args
    current = ctx.lookup_string(key)
    if current is None:
        ctx.ks.set(ctx.db, key, tail)
        ctx.notify(STRING, b"append", key)
        return len(tail)
    _check_length(ctx, len(current) + len(tail))
    ctx.ks.set(ctx.db, key, current + tail, keep_ttl=True)
    ctx.notify(STRING, b"append", key)
    return len(current) + len(tail)


@command("STRLEN key", 2, "readonly fast", (1, 1, 1), acl="@read @string @fast", group="string",
         since="2.2.0", summary="Get the length of the value stored in a key")
def strlen(ctx: Ctx, args: list[bytes]) -> Any:
    value = ctx.lookup_string(args[0])
    return 0 if value is None else len(value)


@command("GETRANGE key start end", 4, "readonly", (1, 1, 1), acl="@read @string @slow",
         group="string", since="2.4.0", summary="Get a substring of the string stored at a key")
def getrange(ctx: Ctx, args: list[bytes]) -> Any:
    start, end = int_arg(args[1]), int_arg(args[2])
    value = ctx.lookup_string(args[0])
    if value is None:
        return b""
    size = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    start = max(start + size if start < 0 else start, 0)
    end = max(end + size if end < 0 else end, 0)
    end = min(end, size - 1)
    if start > end or size == 0:
        return b""
    return value[start : end + 1]


@command("SUBSTR key start end", 4, "readonly", (1, 1, 1), acl="@read @string @slow",
         group="string", summary="Get a substring of the string stored at a key")
def substr(ctx: Ctx, args: list[bytes]) -> Any:
    return getrange(ctx, args)


@command("SETRANGE key offset value", 4, "write denyoom", (1, 1, 1), acl="@write @string @slow",
         group="string", since="2.2.0",
         summary="Overwrite part of a string at key starting at the specified offset")
def setrange(ctx: Ctx, args: list[bytes]) -> Any:
    key, patch = args[0], args[2]
    offset = int_arg(args[1])
    if offset < 0:
        raise RedisError(errors.OFFSET_RANGE)
    current = ctx.lookup_string(key)
    if not patch:
        return 0 if current is None else len(current)
    _check_length(ctx, offset + len(patch))
    base = current or b""
    if len(base) < offset:
        base += b"\0" * (offset - len(base))
    result = base[:offset] + patch + base[offset + len(patch) :]
    ctx.ks.set(ctx.db, key, result, keep_ttl=current is not None)
    ctx.notify(STRING, b"setrange", key)
    return len(result)


@command("LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]", -3, "readonly",
         (1, 2, 1), acl="@read @string @slow", group="string", since="7.0.0", cross="lcs",
         summary="Find longest common substring")
def lcs(ctx: Ctx, args: list[bytes]) -> Any:
    a, b = ctx.lookup(args[0]), ctx.lookup(args[1])
    return lcs_reply(ctx, a, b, args[2:])


def lcs_reply(ctx: Ctx, a: Any, b: Any, options: list[bytes]) -> Any:
    """LCS over two fetched values; shared with the gateway when the keys are on two shards."""
    from shard.lcs import lcs_compute

    if (a is not None and type(a) is not bytes) or (b is not None and type(b) is not bytes):
        raise RedisError("ERR The specified keys must contain string values")
    return lcs_compute(a or b"", b or b"", options, ctx.config.get("proto-max-bulk-len", 512 << 20))
