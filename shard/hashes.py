"""Hash commands.

A hash is a Python dict (field -> value) plus a flag for Redis 7.0's two encodings:
``listpack`` while it has at most ``hash-max-listpack-entries`` fields and every field and
value is at most ``hash-max-listpack-value`` bytes, ``hashtable`` once either limit was
exceeded (it never converts back).  A listpack keeps fields in insertion order, and an
update keeps a field's place: exactly what a dict does, so HGETALL, HKEYS, HSCAN ... of a
small hash answer in Redis' order.
"""

from __future__ import annotations

from typing import Any

from shard import errors
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.notify import GENERIC, HASH
from shard.numbers import NanOrInfinity, NotAFloat, hincrbyfloat, string2ld, string2ll
from shard.reply import OK
from shard.sets import (
    SCANS,
    parse_cursor,
    parse_scan_options,
    random_distinct,
    random_member,
    ranged_count,
    repeated_count,
)
from shard.table import command
from shard.values import ValueType, register

LLONG_MAX = (1 << 63) - 1
LLONG_MIN = -(1 << 63)
HALF_LONG_MAX = LLONG_MAX // 2  # HRANDFIELD WITHVALUES bound (count * 2 must fit)


class HashValue:
    __slots__ = ("fields", "listpack", "pool")

    def __init__(self, fields: dict[bytes, bytes] | None = None, listpack: bool = True) -> None:
        self.fields: dict[bytes, bytes] = fields if fields is not None else {}
        self.listpack = listpack
        self.pool: list[bytes] | None = None  # random field cache, see sets.random_member

    def __len__(self) -> int:
        return len(self.fields)

    def check_lengths(self, texts: list[bytes], max_value: int) -> None:
        """Convert before adding when any field or value is too long for a listpack."""
        if self.listpack and any(len(text) > max_value for text in texts):
            self.listpack = False

    def set(self, field: bytes, value: bytes, max_entries: int) -> bool:
        """Set one field (Redis ``hashTypeSet`` after the length checks); True if new."""
        fields = self.fields
        new = field not in fields
        fields[field] = value
        if new:
            self.pool = None
            if self.listpack and len(fields) > max_entries:
                self.listpack = False
        return new


def _hash_encoding(value: HashValue, config: dict[str, Any]) -> bytes:
    return b"listpack" if value.listpack else b"hashtable"


def _dump_hash(value: HashValue) -> Any:
    return [value.listpack, [item for pair in value.fields.items() for item in pair]]


def _load_hash(data: Any) -> HashValue:
    flat = data[1]
    return HashValue(dict(zip(flat[0::2], flat[1::2], strict=True)), bool(data[0]))


register(HashValue, ValueType(b"hash", _hash_encoding, _dump_hash, _load_hash))


def _limits(ctx: Ctx) -> tuple[int, int]:
    config = ctx.config
    return (
        int(config.get("hash-max-listpack-entries", 512)),
        int(config.get("hash-max-listpack-value", 64)),
    )


def get_hash(ctx: Ctx, key: bytes) -> HashValue | None:
    value = ctx.lookup(key)
    if value is not None and type(value) is not HashValue:
        raise RedisError(errors.WRONGTYPE)
    return value


def _hash_for_write(ctx: Ctx, key: bytes) -> HashValue:
    """The hash at ``key``, created empty when missing (callers always add to it)."""
    value = get_hash(ctx, key)
    if value is None:
        value = HashValue()
        ctx.ks.set(ctx.db, key, value)
    else:
        ctx.ks.modified(ctx.db, key)
    return value


def _store_field(ctx: Ctx, key: bytes, hash_: HashValue | None, field: bytes, value: bytes) -> None:
    """HINCRBY*'s write: the field and its new value, with both listpack checks."""
    if hash_ is None:
        hash_ = _hash_for_write(ctx, key)
    else:
        ctx.ks.modified(ctx.db, key)
    max_entries, max_value = _limits(ctx)
    hash_.check_lengths([field, value], max_value)
    hash_.set(field, value, max_entries)


# --- writes ------------------------------------------------------------------------------


@command(
    "HSET key field value [field value ...]",
    -4,
    "write denyoom fast",
    (1, 1, 1),
    acl="@write @hash @fast",
    group="hash",
    since="2.0.0",
    summary="Set the string value of a hash field",
)
def hset(ctx: Ctx, args: list[bytes]) -> Any:
    if len(args) % 2 == 0:
        raise errors.wrong_arity(ctx.name)
    hash_ = _hash_for_write(ctx, args[0])
    max_entries, max_value = _limits(ctx)
    hash_.check_lengths(args[1:], max_value)
    created = 0
    for i in range(1, len(args), 2):
        created += hash_.set(args[i], args[i + 1], max_entries)
    if ctx.events:
        ctx.notify(HASH, b"hset", args[0])
    return created


@command(
    "HMSET key field value [field value ...]",
    -4,
    "write denyoom fast",
    (1, 1, 1),
    acl="@write @hash @fast",
    group="hash",
    since="2.0.0",
    summary="Set multiple hash fields to multiple values",
)
def hmset(ctx: Ctx, args: list[bytes]) -> Any:
    hset(ctx, args)
    return OK


@command(
    "HSETNX key field value",
    4,
    "write denyoom fast",
    (1, 1, 1),
    acl="@write @hash @fast",
    group="hash",
    since="2.0.0",
    summary="Set the value of a hash field, only if the field does not exist",
)
def hsetnx(ctx: Ctx, args: list[bytes]) -> Any:
    key, field, value = args
    hash_ = get_hash(ctx, key)
    if hash_ is not None and field in hash_.fields:
        return 0
    _store_field(ctx, key, hash_, field, value)
    ctx.notify(HASH, b"hset", key)
    return 1


@command(
    "HDEL key field [field ...]",
    -3,
    "write fast",
    (1, 1, 1),
    acl="@write @hash @fast",
    group="hash",
    since="2.0.0",
    summary="Delete one or more hash fields",
)
def hdel(ctx: Ctx, args: list[bytes]) -> Any:
    key = args[0]
    hash_ = get_hash(ctx, key)
    if hash_ is None:
        return 0
    fields = hash_.fields
    deleted = 0
    for field in args[1:]:
        if fields.pop(field, None) is not None:
            deleted += 1
    if deleted:
        ctx.notify(HASH, b"hdel", key)
    if not fields:
        ctx.ks.delete(ctx.db, key)
        if deleted:
            ctx.notify(GENERIC, b"del", key)
    elif deleted:
        ctx.ks.modified(ctx.db, key)
    return deleted


@command(
    "HINCRBY key field increment",
    4,
    "write denyoom fast",
    (1, 1, 1),
    acl="@write @hash @fast",
    group="hash",
    since="2.0.0",
    summary="Increment the integer value of a hash field by the given number",
)
def hincrby(ctx: Ctx, args: list[bytes]) -> Any:
    key, field = args[0], args[1]
    increment = int_arg(args[2])
    hash_ = get_hash(ctx, key)
    current = 0
    if hash_ is not None and field in hash_.fields:
        parsed = string2ll(hash_.fields[field])
        if parsed is None:
            raise RedisError(errors.HASH_NOT_INTEGER)
        current = parsed
    result = current + increment
    if not LLONG_MIN <= result <= LLONG_MAX:
        raise RedisError(errors.OVERFLOW)
    _store_field(ctx, key, hash_, field, b"%d" % result)
    ctx.notify(HASH, b"hincrby", key)
    return result


@command(
    "HINCRBYFLOAT key field increment",
    4,
    "write denyoom fast",
    (1, 1, 1),
    acl="@write @hash @fast",
    group="hash",
    since="2.6.0",
    summary="Increment the float value of a hash field by the given amount",
)
def hincrbyfloat_(ctx: Ctx, args: list[bytes]) -> Any:
    key, field, increment = args
    step = string2ld(increment)
    if step is None:
        raise RedisError(errors.NOT_FLOAT)
    if step.infinite:
        raise RedisError(errors.VALUE_NAN_OR_INF)
    hash_ = get_hash(ctx, key)
    current = hash_.fields.get(field) if hash_ is not None else None
    try:
        text = hincrbyfloat(current, increment)
    except NotAFloat as exc:
        raise RedisError(errors.HASH_NOT_FLOAT) from exc
    except NanOrInfinity as exc:
        raise RedisError(errors.NAN_OR_INF) from exc
    _store_field(ctx, key, hash_, field, text)
    ctx.notify(HASH, b"hincrbyfloat", key)
    return text


# --- reads -------------------------------------------------------------------------------


@command(
    "HGET key field",
    3,
    "readonly fast",
    (1, 1, 1),
    acl="@read @hash @fast",
    group="hash",
    since="2.0.0",
    summary="Get the value of a hash field",
)
def hget(ctx: Ctx, args: list[bytes]) -> Any:
    hash_ = get_hash(ctx, args[0])
    return hash_.fields.get(args[1]) if hash_ is not None else None


@command(
    "HMGET key field [field ...]",
    -3,
    "readonly fast",
    (1, 1, 1),
    acl="@read @hash @fast",
    group="hash",
    since="2.0.0",
    summary="Get the values of all the given hash fields",
)
def hmget(ctx: Ctx, args: list[bytes]) -> Any:
    hash_ = get_hash(ctx, args[0])
    fields = hash_.fields if hash_ is not None else {}
    return [fields.get(field) for field in args[1:]]


@command(
    "HLEN key",
    2,
    "readonly fast",
    (1, 1, 1),
    acl="@read @hash @fast",
    group="hash",
    since="2.0.0",
    summary="Get the number of fields in a hash",
)
def hlen(ctx: Ctx, args: list[bytes]) -> Any:
    hash_ = get_hash(ctx, args[0])
    return len(hash_.fields) if hash_ is not None else 0


@command(
    "HSTRLEN key field",
    3,
    "readonly fast",
    (1, 1, 1),
    acl="@read @hash @fast",
    group="hash",
    since="3.2.0",
    summary="Get the length of the value of a hash field",
)
def hstrlen(ctx: Ctx, args: list[bytes]) -> Any:
    hash_ = get_hash(ctx, args[0])
    return len(hash_.fields.get(args[1], b"")) if hash_ is not None else 0


@command(
    "HEXISTS key field",
    3,
    "readonly fast",
    (1, 1, 1),
    acl="@read @hash @fast",
    group="hash",
    since="2.0.0",
    summary="Determine if a hash field exists",
)
def hexists(ctx: Ctx, args: list[bytes]) -> Any:
    hash_ = get_hash(ctx, args[0])
    return int(hash_ is not None and args[1] in hash_.fields)


@command(
    "HKEYS key",
    2,
    "readonly",
    (1, 1, 1),
    acl="@read @hash @slow",
    group="hash",
    since="2.0.0",
    summary="Get all the fields in a hash",
)
def hkeys(ctx: Ctx, args: list[bytes]) -> Any:
    hash_ = get_hash(ctx, args[0])
    return list(hash_.fields) if hash_ is not None else []


@command(
    "HVALS key",
    2,
    "readonly",
    (1, 1, 1),
    acl="@read @hash @slow",
    group="hash",
    since="2.0.0",
    summary="Get all the values in a hash",
)
def hvals(ctx: Ctx, args: list[bytes]) -> Any:
    hash_ = get_hash(ctx, args[0])
    return list(hash_.fields.values()) if hash_ is not None else []


@command(
    "HGETALL key",
    2,
    "readonly",
    (1, 1, 1),
    acl="@read @hash @slow",
    group="hash",
    since="2.0.0",
    summary="Get all the fields and values in a hash",
)
def hgetall(ctx: Ctx, args: list[bytes]) -> Any:
    hash_ = get_hash(ctx, args[0])
    return dict(hash_.fields) if hash_ is not None else {}


@command(
    "HRANDFIELD key [count [WITHVALUES]]",
    -2,
    "readonly",
    (1, 1, 1),
    acl="@read @hash @slow",
    group="hash",
    since="6.2.0",
    summary="Get one or multiple random fields from a hash",
)
def hrandfield(ctx: Ctx, args: list[bytes]) -> Any:
    if len(args) == 1:
        hash_ = get_hash(ctx, args[0])
        return None if hash_ is None else random_member(hash_, hash_.fields)
    count = ranged_count(args[1])
    if len(args) > 3 or (len(args) == 3 and args[2].lower() != b"withvalues"):
        raise RedisError(errors.SYNTAX)
    with_values = len(args) == 3
    if with_values and not -HALF_LONG_MAX <= count <= HALF_LONG_MAX:
        raise RedisError(errors.VALUE_OUT_OF_RANGE)
    hash_ = get_hash(ctx, args[0])
    if hash_ is None or count == 0:
        return []
    fields = hash_.fields
    if count < 0 or count == 1:
        picked = [random_member(hash_, fields) for _ in range(repeated_count(abs(count)))]
    elif count >= len(fields):
        picked = list(fields)
    else:
        picked = random_distinct(hash_, fields, count)
    if not with_values:
        return picked
    if ctx.resp3:
        return [[field, fields[field]] for field in picked]
    return [item for field in picked for item in (field, fields[field])]


@command(
    "HSCAN key cursor [MATCH pattern] [COUNT count]",
    -3,
    "readonly",
    (1, 1, 1),
    acl="@read @hash @slow",
    group="hash",
    since="2.8.0",
    summary="Incrementally iterate hash fields and associated values",
)
def hscan(ctx: Ctx, args: list[bytes]) -> Any:
    cursor = parse_cursor(args[1])
    hash_ = get_hash(ctx, args[0])
    if hash_ is None:
        return [b"0", []]
    count, matcher = parse_scan_options(args[2:])
    fields = hash_.fields
    if hash_.listpack:
        cursor, chunk = 0, list(fields)
    else:
        cursor, chunk = SCANS.step(hash_, fields, cursor, count)
    out = []
    for field in chunk:
        if matcher is None or matcher(field):
            out.append(field)
            out.append(fields[field])
    return [b"%d" % cursor, out]
