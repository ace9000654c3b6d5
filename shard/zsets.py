"""Sorted set commands on one key: adding, scoring, ranking, ranges and range removal, as
``t_zset.c`` in Redis 7.0 answers them.  No I/O.

The value class and the range machinery live in :mod:`shard.zset_value`; commands over
several keys or handing out members in bulk (ZUNION/ZINTER/ZDIFF, ZPOP*, ZMPOP,
ZRANDMEMBER, ZSCAN) in :mod:`shard.zset_multi`.
"""

from __future__ import annotations

from typing import Any

from shard import errors
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.notify import GENERIC, ZSET
from shard.numbers import string2d
from shard.table import command
from shard.zset_value import (
    IN_GT,
    IN_INCR,
    IN_LT,
    IN_NX,
    IN_XX,
    LEX,
    OUT_ADDED,
    OUT_NAN,
    OUT_NOP,
    OUT_UPDATED,
    RANK,
    SCORE,
    Item,
    LexRange,
    ZSet,
    lex_first,
    lex_walk,
    listpack_limits,
    parse_score_range,
    select_range,
    zset_add,
)

LONG_MAX = (1 << 63) - 1


def get_zset(ctx: Ctx, key: bytes) -> ZSet | None:
    value = ctx.lookup(key)
    if value is not None and type(value) is not ZSet:
        raise RedisError(errors.WRONGTYPE)
    return value


def with_scores(items: list[Item], withscores: bool, resp3: bool) -> list[Any]:
    """Members, or members and scores: flat in RESP2, [member, score] pairs in RESP3."""
    if not withscores:
        return [member for _, member in items]
    if resp3:
        return [[member, score] for score, member in items]
    out: list[Any] = []
    for score, member in items:
        out.append(member)
        out.append(score)
    return out


def ranged_long(raw: bytes, low: int, high: int, message: str) -> int:
    """``getRangeLongFromObjectOrReply``: the message covers parse and range failures."""
    from shard.numbers import string2ll

    value = string2ll(raw)
    if value is None or not low <= value <= high:
        raise RedisError(message)
    return value


def removed_some(ctx: Ctx, key: bytes, zs: ZSet, event: bytes) -> None:
    if ctx.events:
        ctx.notify(ZSET, event, key)
    if zs:
        ctx.ks.modified(ctx.db, key)
    else:
        ctx.ks.delete(ctx.db, key)
        if ctx.events:
            ctx.notify(GENERIC, b"del", key)


# --- ZADD / ZINCRBY / ZREM -------------------------------------------------------------

_CH = 32
_ZADD_OPTIONS = {
    b"NX": IN_NX,
    b"XX": IN_XX,
    b"CH": _CH,
    b"INCR": IN_INCR,
    b"GT": IN_GT,
    b"LT": IN_LT,
}


def parse_score(raw: bytes) -> float | None:
    """A score argument (``string2d``); plain integers, the common case, take a shortcut."""
    if raw.isdigit() and len(raw) < 16:  # ASCII digits only: exact as a double
        return float(raw)
    return string2d(raw)


def _zadd_one(ctx: Ctx, key: bytes, score: float, member: bytes) -> int:
    """``ZADD key score member`` without options: ZADD's hot path."""
    zs = ctx.lookup(key)
    if zs is None:
        entries, max_value = listpack_limits(ctx.config)
        zs = ZSet(listpack=entries != 0 and len(member) <= max_value)
        zs.insert(member, score)
        ctx.ks.set(ctx.db, key, zs)
        if ctx.events:
            ctx.notify(ZSET, b"zadd", key)
        return 1
    if type(zs) is not ZSet:
        raise RedisError(errors.WRONGTYPE)
    current = zs.scores.get(member)
    if current is None:
        if zs.listpack:
            entries, max_value = listpack_limits(ctx.config)
            if len(zs.scores) >= entries or len(member) > max_value:
                zs.to_skiplist()
        zs.insert(member, score)
        ctx.ks.modified(ctx.db, key)
        if ctx.events:
            ctx.notify(ZSET, b"zadd", key)
        return 1
    if score != current:
        zs.rescore(member, current, score)
        ctx.ks.modified(ctx.db, key)
        if ctx.events:
            ctx.notify(ZSET, b"zadd", key)
    return 0


def _zadd_generic(ctx: Ctx, args: list[bytes], flags: int) -> Any:
    key = args[0]
    argc = len(args)
    i = 1
    options = _ZADD_OPTIONS
    while i < argc:
        bit = options.get(args[i].upper())
        if bit is None:
            break
        flags |= bit
        i += 1
    elements = argc - i
    if elements % 2 or not elements:
        raise RedisError(errors.SYNTAX)
    if flags & IN_NX and flags & IN_XX:
        raise RedisError(errors.ZADD_NX_XX)
    if flags & (IN_GT | IN_LT) and flags & IN_NX or flags & IN_GT and flags & IN_LT:
        raise RedisError(errors.GT_LT_NX)
    incr = flags & IN_INCR
    if incr and elements > 2:
        raise RedisError(errors.ZADD_INCR_PAIRS)
    scores = []
    for j in range(i, argc, 2):
        score = parse_score(args[j])
        if score is None:
            raise RedisError(errors.NOT_FLOAT)
        scores.append(score)

    zs = ctx.lookup(key)
    if zs is not None and type(zs) is not ZSet:
        raise RedisError(errors.WRONGTYPE)
    entries, max_value = listpack_limits(ctx.config)
    created = zs is None
    if created:
        if flags & IN_XX:
            return None if incr else 0
        zs = ZSet(listpack=entries != 0 and len(args[i + 1]) <= max_value)
    added = updated = processed = 0
    score = 0.0
    for n, j in enumerate(range(i + 1, argc, 2)):
        out, score = zset_add(zs, scores[n], args[j], flags, entries, max_value)
        if out & OUT_NAN:
            raise RedisError(errors.SCORE_NAN)
        if out & OUT_ADDED:
            added += 1
        elif out & OUT_UPDATED:
            updated += 1
        if not out & OUT_NOP:
            processed += 1
    if created:
        if zs:
            ctx.ks.set(ctx.db, key, zs)
    elif added or updated:
        ctx.ks.modified(ctx.db, key)
    if added or updated:
        ctx.notify(ZSET, b"zincr" if incr else b"zadd", key)
    if incr:
        return score if processed else None
    return added + updated if flags & _CH else added


@command(
    "ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]",
    -4,
    "write denyoom fast",
    (1, 1, 1),
    acl="@write @sortedset @fast",
    since="1.2.0",
    summary="Add one or more members to a sorted set, or update its score if it already exists",
    group="sorted-set",
)
def zadd(ctx: Ctx, args: list[bytes]) -> Any:
    if len(args) == 3:
        score = parse_score(args[1])  # an option name is no score: None, the general path
        if score is not None:
            return _zadd_one(ctx, args[0], score, args[2])
    return _zadd_generic(ctx, args, 0)


@command(
    "ZINCRBY key increment member",
    4,
    "write denyoom fast",
    (1, 1, 1),
    acl="@write @sortedset @fast",
    since="1.2.0",
    summary="Increment the score of a member in a sorted set",
    group="sorted-set",
)
def zincrby(ctx: Ctx, args: list[bytes]) -> Any:
    # Redis runs ZADD's parser here too, so "ZINCRBY key NX member" is a syntax error.
    return _zadd_generic(ctx, args, IN_INCR)


@command(
    "ZREM key member [member ...]",
    -3,
    "write fast",
    (1, 1, 1),
    acl="@write @sortedset @fast",
    since="1.2.0",
    summary="Remove one or more members from a sorted set",
    group="sorted-set",
)
def zrem(ctx: Ctx, args: list[bytes]) -> Any:
    key = args[0]
    zs = get_zset(ctx, key)
    if zs is None:
        return 0
    deleted = 0
    for member in args[1:]:
        if zs.discard(member):
            deleted += 1
            if not zs:
                break
    if deleted:
        removed_some(ctx, key, zs, b"zrem")
    return deleted


# --- single-member reads ---------------------------------------------------------------


@command(
    "ZCARD key",
    2,
    "readonly fast",
    (1, 1, 1),
    acl="@read @sortedset @fast",
    since="1.2.0",
    summary="Get the number of members in a sorted set",
    group="sorted-set",
)
def zcard(ctx: Ctx, args: list[bytes]) -> Any:
    zs = get_zset(ctx, args[0])
    return 0 if zs is None else len(zs)


@command(
    "ZSCORE key member",
    3,
    "readonly fast",
    (1, 1, 1),
    acl="@read @sortedset @fast",
    since="1.2.0",
    summary="Get the score associated with the given member in a sorted set",
    group="sorted-set",
)
def zscore(ctx: Ctx, args: list[bytes]) -> Any:
    zs = get_zset(ctx, args[0])
    return None if zs is None else zs.scores.get(args[1])


@command(
    "ZMSCORE key member [member ...]",
    -3,
    "readonly fast",
    (1, 1, 1),
    acl="@read @sortedset @fast",
    since="6.2.0",
    summary="Get the score associated with the given members in a sorted set",
    group="sorted-set",
)
def zmscore(ctx: Ctx, args: list[bytes]) -> Any:
    zs = get_zset(ctx, args[0])
    if zs is None:
        return [None] * (len(args) - 1)
    get = zs.scores.get
    return [get(member) for member in args[1:]]


def _rank(ctx: Ctx, args: list[bytes], reverse: bool) -> Any:
    zs = get_zset(ctx, args[0])
    if zs is None:
        return None
    rank = zs.rank(args[1])
    if rank is None:
        return None
    return len(zs) - 1 - rank if reverse else rank


@command(
    "ZRANK key member",
    3,
    "readonly fast",
    (1, 1, 1),
    acl="@read @sortedset @fast",
    since="2.0.0",
    summary="Determine the index of a member in a sorted set",
    group="sorted-set",
)
def zrank(ctx: Ctx, args: list[bytes]) -> Any:
    return _rank(ctx, args, reverse=False)


@command(
    "ZREVRANK key member",
    3,
    "readonly fast",
    (1, 1, 1),
    acl="@read @sortedset @fast",
    since="2.0.0",
    summary="Determine the index of a member in a sorted set, with scores ordered from high to low",
    group="sorted-set",
)
def zrevrank(ctx: Ctx, args: list[bytes]) -> Any:
    return _rank(ctx, args, reverse=True)


@command(
    "ZCOUNT key min max",
    4,
    "readonly fast",
    (1, 1, 1),
    acl="@read @sortedset @fast",
    since="2.0.0",
    summary="Count the members in a sorted set with scores within the given values",
    group="sorted-set",
)
def zcount(ctx: Ctx, args: list[bytes]) -> Any:
    spec = parse_score_range(args[1], args[2])
    zs = get_zset(ctx, args[0])
    if zs is None:
        return 0
    lo, hi = zs.score_span(spec)
    return hi - lo


@command(
    "ZLEXCOUNT key min max",
    4,
    "readonly fast",
    (1, 1, 1),
    acl="@read @sortedset @fast",
    since="2.8.9",
    summary="Count the number of members in a sorted set between a given lexicographical range",
    group="sorted-set",
)
def zlexcount(ctx: Ctx, args: list[bytes]) -> Any:
    spec = LexRange(args[1], args[2])
    zs = get_zset(ctx, args[0])
    if zs is None:
        return 0
    first = lex_first(zs, spec)
    return 0 if first < 0 else lex_walk(zs, spec, first, reverse=False) - first


# --- ZRANGE and its family ---------------------------------------------------------------


def zrange_generic(
    ctx: Ctx, args: list[bytes], src: int, store: bool, kind: int | None, reverse: bool | None
) -> Any:
    """ZRANGE, ZRANGESTORE and the older Z[REV]RANGE[BYSCORE|BYLEX] (``zrangeGenericCommand``).

    ``kind`` and ``reverse`` are None when options may choose them.
    """
    withscores = False
    offset, limit = 0, -1
    j = src + 3
    argc = len(args)
    while j < argc:
        option = args[j].upper()
        if not store and option == b"WITHSCORES":
            withscores = True
        elif option == b"LIMIT" and argc - j - 1 >= 2:
            offset = int_arg(args[j + 1])
            limit = int_arg(args[j + 2])
            j += 2
        elif reverse is None and option == b"REV":
            reverse = True
        elif kind is None and option == b"BYLEX":
            kind = LEX
        elif kind is None and option == b"BYSCORE":
            kind = SCORE
        else:
            raise RedisError(errors.SYNTAX)
        j += 1
    reverse = bool(reverse)
    kind = kind or RANK
    if limit != -1 and kind == RANK:
        raise RedisError(errors.ZRANGE_LIMIT_RANK)
    if withscores and kind == LEX:
        raise RedisError(errors.ZRANGE_WITHSCORES_LEX)
    low, high = args[src + 1], args[src + 2]
    if reverse and kind != RANK:
        low, high = high, low  # the range is given as max, min
    bounds: Any
    if kind == RANK:
        bounds = (int_arg(low), int_arg(high))
    elif kind == SCORE:
        bounds = parse_score_range(low, high)
    else:
        bounds = LexRange(low, high)
    zs = get_zset(ctx, args[src])
    items = [] if zs is None else select_range(zs, kind, bounds, reverse, offset, limit)
    if store:
        return _store_range(ctx, args[0], items, kind == RANK)
    return with_scores(items, withscores, ctx.resp3)


def _store_range(ctx: Ctx, dest: bytes, items: list[Item], known_length: bool) -> int:
    if not items:
        if ctx.ks.delete(ctx.db, dest):
            ctx.notify(GENERIC, b"del", dest)
        return 0
    entries, max_value = listpack_limits(ctx.config)
    # The destination starts as a listpack unless the length is known to be too large.
    zs = ZSet(listpack=not (known_length and len(items) > entries))
    for score, member in items:
        zset_add(zs, score, member, 0, entries, max_value)
    ctx.ks.set(ctx.db, dest, zs)
    ctx.notify(ZSET, ctx.name.encode(), dest)  # zrangestore, georadiusstore ...
    return len(items)


@command(
    "ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]",
    -4,
    "readonly",
    (1, 1, 1),
    since="1.2.0",
    summary="Return a range of members in a sorted set",
    acl="@read @sortedset @slow",
    group="sorted-set",
)
def zrange(ctx: Ctx, args: list[bytes]) -> Any:
    return zrange_generic(ctx, args, 0, False, None, None)


@command(
    "ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]",
    -5,
    "write denyoom",
    (1, 2, 1),
    acl="@write @sortedset @slow",
    since="6.2.0",
    summary="Store a range of members from sorted set into another key",
    group="sorted-set",
)
def zrangestore(ctx: Ctx, args: list[bytes]) -> Any:
    return zrange_generic(ctx, args, 1, True, None, None)


@command(
    "ZREVRANGE key start stop [WITHSCORES]",
    -4,
    "readonly",
    (1, 1, 1),
    since="1.2.0",
    summary="Return a range of members in a sorted set, by index, with scores ordered from high to low",
    acl="@read @sortedset @slow",
    group="sorted-set",
)
def zrevrange(ctx: Ctx, args: list[bytes]) -> Any:
    return zrange_generic(ctx, args, 0, False, RANK, True)


@command(
    "ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]",
    -4,
    "readonly",
    (1, 1, 1),
    since="1.0.5",
    summary="Return a range of members in a sorted set, by score",
    acl="@read @sortedset @slow",
    group="sorted-set",
)
def zrangebyscore(ctx: Ctx, args: list[bytes]) -> Any:
    return zrange_generic(ctx, args, 0, False, SCORE, False)


@command(
    "ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]",
    -4,
    "readonly",
    (1, 1, 1),
    since="2.2.0",
    summary="Return a range of members in a sorted set, by score, with scores ordered from high to low",
    acl="@read @sortedset @slow",
    group="sorted-set",
)
def zrevrangebyscore(ctx: Ctx, args: list[bytes]) -> Any:
    return zrange_generic(ctx, args, 0, False, SCORE, True)


@command(
    "ZRANGEBYLEX key min max [LIMIT offset count]",
    -4,
    "readonly",
    (1, 1, 1),
    since="2.8.9",
    summary="Return a range of members in a sorted set, by lexicographical range",
    acl="@read @sortedset @slow",
    group="sorted-set",
)
def zrangebylex(ctx: Ctx, args: list[bytes]) -> Any:
    return zrange_generic(ctx, args, 0, False, LEX, False)


@command(
    "ZREVRANGEBYLEX key max min [LIMIT offset count]",
    -4,
    "readonly",
    (1, 1, 1),
    since="2.8.9",
    summary="Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.",
    acl="@read @sortedset @slow",
    group="sorted-set",
)
def zrevrangebylex(ctx: Ctx, args: list[bytes]) -> Any:
    return zrange_generic(ctx, args, 0, False, LEX, True)


# --- ZREMRANGEBY* ------------------------------------------------------------------------


def _zremrange(ctx: Ctx, args: list[bytes], kind: int) -> Any:
    key = args[0]
    bounds: Any
    if kind == RANK:
        bounds = (int_arg(args[1]), int_arg(args[2]))
    elif kind == SCORE:
        bounds = parse_score_range(args[1], args[2])
    else:
        bounds = LexRange(args[1], args[2])
    zs = get_zset(ctx, key)
    if zs is None:
        return 0
    n = len(zs)
    if kind == RANK:
        start, end = bounds
        start = start + n if start < 0 else start
        end = end + n if end < 0 else end
        start = max(start, 0)
        if start > end or start >= n:
            return 0
        lo, hi = start, min(end, n - 1) + 1
    elif kind == SCORE:
        lo, hi = zs.score_span(bounds)
    else:
        lo = lex_first(zs, bounds)
        if lo < 0:
            return 0
        hi = lex_walk(zs, bounds, lo, reverse=False)
    deleted = zs.delete_slice(lo, hi)
    if deleted:
        removed_some(ctx, key, zs, ctx.name.encode())  # zremrangebyrank|score|lex
    return deleted


@command(
    "ZREMRANGEBYRANK key start stop",
    4,
    "write",
    (1, 1, 1),
    since="2.0.0",
    summary="Remove all members in a sorted set within the given indexes",
    acl="@write @sortedset @slow",
    group="sorted-set",
)
def zremrangebyrank(ctx: Ctx, args: list[bytes]) -> Any:
    return _zremrange(ctx, args, RANK)


@command(
    "ZREMRANGEBYSCORE key min max",
    4,
    "write",
    (1, 1, 1),
    since="1.2.0",
    summary="Remove all members in a sorted set within the given scores",
    acl="@write @sortedset @slow",
    group="sorted-set",
)
def zremrangebyscore(ctx: Ctx, args: list[bytes]) -> Any:
    return _zremrange(ctx, args, SCORE)


@command(
    "ZREMRANGEBYLEX key min max",
    4,
    "write",
    (1, 1, 1),
    since="2.8.9",
    summary="Remove all members in a sorted set between the given lexicographical range",
    acl="@write @sortedset @slow",
    group="sorted-set",
)
def zremrangebylex(ctx: Ctx, args: list[bytes]) -> Any:
    return _zremrange(ctx, args, LEX)
