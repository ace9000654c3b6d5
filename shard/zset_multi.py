"""Sorted set commands over several keys or handing out members in bulk: ZUNION, ZINTER,
ZDIFF (and their STORE forms), ZINTERCARD, ZPOPMIN, ZPOPMAX, ZMPOP, ZRANDMEMBER and ZSCAN.
No I/O.

Inputs may be plain sets (every member scores 1), as in Redis.  Scores combine as
``zunionInterAggregate`` does: a weighted score that is NaN (``0 * inf``) counts as 0, and
so does a NaN sum (``inf + -inf``).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable
from typing import Any

from shard import errors
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.notify import GENERIC, ZSET
from shard.numbers import d2string, format_long_double_auto, string2d
from shard.reply import NULL_ARRAY
from shard.sets import SCANS, parse_cursor, parse_scan_options, repeated_count
from shard.table import command, numkeys_at
from shard.values import type_name
from shard.zset_value import Item, ZSet, stored_result
from shard.zsets import LONG_MAX, get_zset, ranged_long, removed_some, with_scores

UNION, INTER, DIFF = 1, 2, 3
SUM, MIN, MAX = 1, 2, 3
_AGGREGATES = {b"SUM": SUM, b"MIN": MIN, b"MAX": MAX}


class _Source:
    """One input: a sorted set, a plain set (every member scores 1) or a missing key."""

    __slots__ = ("scores", "members", "weight")

    def __init__(self, value: Any) -> None:
        self.weight = 1.0
        self.scores: dict[bytes, float] | None = None
        self.members: Collection[bytes] = ()
        if type(value) is ZSet:
            self.scores = value.scores
        elif value is not None:
            self.members = value.members  # a set value: its members are a Python set

    def __len__(self) -> int:
        return len(self.scores) if self.scores is not None else len(self.members)

    def items(self) -> Iterable[tuple[bytes, float]]:
        if self.scores is not None:
            return self.scores.items()
        return ((member, 1.0) for member in self.members)

    def score(self, member: bytes) -> float | None:
        if self.scores is not None:
            return self.scores.get(member)
        return 1.0 if member in self.members else None


def _lookup_source(ctx: Ctx, key: bytes) -> _Source:
    value = ctx.lookup(key)
    if value is not None and type(value) is not ZSet and type_name(value) != b"set":
        raise RedisError(errors.WRONGTYPE)
    return _Source(value)


def _aggregate(target: float, value: float, how: int) -> float:
    if how == SUM:
        total = target + value
        return 0.0 if total != total else total
    if how == MIN:
        return value if value < target else target
    return value if value > target else target


def _weighted(score: float, weight: float) -> float:
    value = weight * score
    return 0.0 if value != value else value


def setop_generic(
    ctx: Ctx,
    args: list[bytes],
    numkeys_index: int,
    op: int,
    dest: bytes | None,
    cardinality_only: bool = False,
) -> Any:
    """``zunionInterDiffGenericCommand``: args exclude the command name."""
    setnum = int_arg(args[numkeys_index])
    if setnum < 1:
        raise RedisError(errors.SETOP_NO_KEYS.format(cmd=ctx.name))
    first = numkeys_index + 1
    if setnum > len(args) - first:
        raise RedisError(errors.SYNTAX)
    sources = [_lookup_source(ctx, key) for key in args[first : first + setnum]]
    how, withscores, limit = _parse_setop_options(
        args, first + setnum, sources, op, dest is not None, cardinality_only
    )
    if cardinality_only:
        return _intersection_size(sources, limit)
    if op == INTER:
        result = _intersect(sources, how)
    elif op == UNION:
        result = _union(sources, how)
    else:
        result = _difference(sources)
    if dest is not None:
        if not result:
            if ctx.ks.delete(ctx.db, dest):
                ctx.notify(GENERIC, b"del", dest)
            return 0
        ctx.ks.set(ctx.db, dest, stored_result(result, ctx.config))
        ctx.notify(ZSET, ctx.name.encode(), dest)  # zunionstore, zinterstore, zdiffstore
        return len(result)
    items = sorted([(score, member) for member, score in result.items()])
    return with_scores(items, withscores, ctx.resp3)


def _parse_setop_options(
    args: list[bytes], j: int, sources: list[_Source], op: int, store: bool, cardinality_only: bool
) -> tuple[int, bool, int]:
    how, withscores, limit = SUM, False, 0
    argc = len(args)
    weighted = op != DIFF and not cardinality_only
    while j < argc:
        remaining = argc - j
        option = args[j].upper()
        if weighted and remaining >= len(sources) + 1 and option == b"WEIGHTS":
            j += 1
            for source in sources:
                weight = string2d(args[j])
                if weight is None:
                    raise RedisError(errors.WEIGHT_NOT_FLOAT)
                source.weight = weight
                j += 1
        elif weighted and remaining >= 2 and option == b"AGGREGATE":
            chosen = _AGGREGATES.get(args[j + 1].upper())
            if chosen is None:
                raise RedisError(errors.SYNTAX)
            how = chosen
            j += 2
        elif not store and not cardinality_only and option == b"WITHSCORES":
            withscores = True
            j += 1
        elif cardinality_only and remaining >= 2 and option == b"LIMIT":
            limit = ranged_long(args[j + 1], 0, LONG_MAX, errors.LIMIT_NEGATIVE)
            j += 2
        else:
            raise RedisError(errors.SYNTAX)
    return how, withscores, limit


def _by_size(sources: list[_Source]) -> list[_Source]:
    return sorted(sources, key=len)  # stable, like glibc's merge-sorting qsort


def _intersect(sources: list[_Source], how: int) -> dict[bytes, float]:
    """Members in every source, iterating the smallest one (sizes ascending, like Redis)."""
    ordered = _by_size(sources)
    smallest, rest = ordered[0], ordered[1:]
    out: dict[bytes, float] = {}
    for member, score in smallest.items():
        total = _weighted(score, smallest.weight)
        for source in rest:
            found = source.score(member)
            if found is None:
                break
            total = _aggregate(total, found * source.weight, how)
        else:
            out[member] = total
    return out


def _intersection_size(sources: list[_Source], limit: int) -> int:
    """ZINTERCARD: how many members are in every source, counting no further than ``limit``
    (0: no limit)."""
    ordered = _by_size(sources)
    smallest, rest = ordered[0], ordered[1:]
    count = 0
    for member, _ in smallest.items():
        if all(source.score(member) is not None for source in rest):
            count += 1
            if count == limit:
                break
    return count


def _union(sources: list[_Source], how: int) -> dict[bytes, float]:
    out: dict[bytes, float] = {}
    for source in _by_size(sources):
        weight = source.weight
        for member, score in source.items():
            value = _weighted(score, weight)
            current = out.get(member)
            out[member] = value if current is None else _aggregate(current, value, how)
    return out


def _difference(sources: list[_Source]) -> dict[bytes, float]:
    first, rest = sources[0], sources[1:]
    return {
        member: score
        for member, score in first.items()
        if all(source.score(member) is None for source in rest)
    }


@command(
    "ZUNION numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX] [WITHSCORES]",
    -3,
    "readonly",
    (0, 0, 0),
    since="6.2.0",
    summary="Add multiple sorted sets",
    acl="@read @sortedset @slow",
    group="sorted-set",
    keys_fn=numkeys_at(1),
)
def zunion(ctx: Ctx, args: list[bytes]) -> Any:
    return setop_generic(ctx, args, 0, UNION, None)


@command(
    "ZINTER numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX] [WITHSCORES]",
    -3,
    "readonly",
    (0, 0, 0),
    since="6.2.0",
    summary="Intersect multiple sorted sets",
    acl="@read @sortedset @slow",
    group="sorted-set",
    keys_fn=numkeys_at(1),
)
def zinter(ctx: Ctx, args: list[bytes]) -> Any:
    return setop_generic(ctx, args, 0, INTER, None)


@command(
    "ZDIFF numkeys key [key ...] [WITHSCORES]",
    -3,
    "readonly",
    (0, 0, 0),
    since="6.2.0",
    summary="Subtract multiple sorted sets",
    acl="@read @sortedset @slow",
    group="sorted-set",
    keys_fn=numkeys_at(1),
)
def zdiff(ctx: Ctx, args: list[bytes]) -> Any:
    return setop_generic(ctx, args, 0, DIFF, None)


@command(
    "ZINTERCARD numkeys key [key ...] [LIMIT limit]",
    -3,
    "readonly",
    (0, 0, 0),
    since="7.0.0",
    summary="Intersect multiple sorted sets and return the cardinality of the result",
    acl="@read @sortedset @slow",
    group="sorted-set",
    keys_fn=numkeys_at(1),
)
def zintercard(ctx: Ctx, args: list[bytes]) -> Any:
    return setop_generic(ctx, args, 0, INTER, None, cardinality_only=True)


@command(
    "ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX]",
    -4,
    "write denyoom",
    (1, 1, 1),
    since="2.0.0",
    summary="Add multiple sorted sets and store the resulting sorted set in a new key",
    acl="@write @sortedset @slow",
    group="sorted-set",
    keys_fn=numkeys_at(2, after=1),
)
def zunionstore(ctx: Ctx, args: list[bytes]) -> Any:
    return setop_generic(ctx, args, 1, UNION, args[0])


@command(
    "ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX]",
    -4,
    "write denyoom",
    (1, 1, 1),
    since="2.0.0",
    summary="Intersect multiple sorted sets and store the resulting sorted set in a new key",
    acl="@write @sortedset @slow",
    group="sorted-set",
    keys_fn=numkeys_at(2, after=1),
)
def zinterstore(ctx: Ctx, args: list[bytes]) -> Any:
    return setop_generic(ctx, args, 1, INTER, args[0])


@command(
    "ZDIFFSTORE destination numkeys key [key ...]",
    -4,
    "write denyoom",
    (1, 1, 1),
    since="6.2.0",
    summary="Subtract multiple sorted sets and store the resulting sorted set in a new key",
    acl="@write @sortedset @slow",
    group="sorted-set",
    keys_fn=numkeys_at(2, after=1),
)
def zdiffstore(ctx: Ctx, args: list[bytes]) -> Any:
    return setop_generic(ctx, args, 1, DIFF, args[0])


# --- popping -----------------------------------------------------------------------------


def pop_items(ctx: Ctx, key: bytes, zs: ZSet, count: int, highest: bool) -> list[Item]:
    """Remove and return up to ``count`` lowest (or highest) items, deleting an emptied key."""
    n = len(zs)
    count = min(count, n)
    if highest:
        items = zs.items_between(n - count, n)
        items.reverse()
        zs.delete_slice(n - count, n)
    else:
        items = zs.items_between(0, count)
        zs.delete_slice(0, count)
    removed_some(ctx, key, zs, b"zpopmax" if highest else b"zpopmin")
    return items


def _zpop(ctx: Ctx, args: list[bytes], highest: bool) -> Any:
    if len(args) > 2:
        raise RedisError(errors.SYNTAX)
    count = -1
    if len(args) == 2:
        count = ranged_long(args[1], 0, LONG_MAX, errors.MUST_BE_POSITIVE)
    zs = get_zset(ctx, args[0])
    if zs is None or count == 0:
        return []
    items = pop_items(ctx, args[0], zs, 1 if count == -1 else count, highest)
    if ctx.resp3 and count != -1:
        return [[member, score] for score, member in items]
    return with_scores(items, True, False)


@command(
    "ZPOPMIN key [count]",
    -2,
    "write fast",
    (1, 1, 1),
    since="5.0.0",
    summary="Remove and return members with the lowest scores in a sorted set",
    acl="@write @sortedset @fast",
    group="sorted-set",
)
def zpopmin(ctx: Ctx, args: list[bytes]) -> Any:
    return _zpop(ctx, args, highest=False)


@command(
    "ZPOPMAX key [count]",
    -2,
    "write fast",
    (1, 1, 1),
    since="5.0.0",
    summary="Remove and return members with the highest scores in a sorted set",
    acl="@write @sortedset @fast",
    group="sorted-set",
)
def zpopmax(ctx: Ctx, args: list[bytes]) -> Any:
    return _zpop(ctx, args, highest=True)


def parse_zmpop(args: list[bytes], numkeys_index: int) -> tuple[list[bytes], bool, int]:
    """(keys, highest, count) of ``numkeys key [key ...] MIN|MAX [COUNT count]``."""
    numkeys = ranged_long(args[numkeys_index], 1, LONG_MAX, errors.NUMKEYS_NOT_POSITIVE)
    where = numkeys_index + numkeys + 1
    if where >= len(args):
        raise RedisError(errors.SYNTAX)
    side = args[where].upper()
    if side not in (b"MIN", b"MAX"):
        raise RedisError(errors.SYNTAX)
    count = -1
    j = where + 1
    while j < len(args):
        if count == -1 and args[j].upper() == b"COUNT" and j + 1 < len(args):
            count = ranged_long(args[j + 1], 1, LONG_MAX, errors.COUNT_NOT_POSITIVE)
            j += 2
        else:
            raise RedisError(errors.SYNTAX)
    keys = args[numkeys_index + 1 : where]
    return keys, side == b"MAX", 1 if count == -1 else count


def zmpop_keys(ctx: Ctx, keys: list[bytes], highest: bool, count: int) -> Any:
    """Pop from the first non-empty key: [key, [[member, score], ...]] or a null array."""
    for key in keys:
        zs = get_zset(ctx, key)
        if zs is not None:
            items = pop_items(ctx, key, zs, count, highest)
            return [key, [[member, score] for score, member in items]]
    return NULL_ARRAY


@command(
    "ZMPOP numkeys key [key ...] MIN | MAX [COUNT count]",
    -4,
    "write",
    (0, 0, 0),
    acl="@write @sortedset @slow",
    since="7.0.0",
    keys_fn=numkeys_at(1),
    summary="Remove and return members with scores in a sorted set",
    group="sorted-set",
)
def zmpop(ctx: Ctx, args: list[bytes]) -> Any:
    keys, highest, count = parse_zmpop(args, 0)
    return zmpop_keys(ctx, keys, highest, count)


# --- ZRANDMEMBER -------------------------------------------------------------------------


@command(
    "ZRANDMEMBER key [count [WITHSCORES]]",
    -2,
    "readonly",
    (1, 1, 1),
    acl="@read @sortedset @slow",
    since="6.2.0",
    summary="Get one or multiple random elements from a sorted set",
    group="sorted-set",
)
def zrandmember(ctx: Ctx, args: list[bytes]) -> Any:
    if len(args) == 1:
        zs = get_zset(ctx, args[0])
        if zs is None:
            return None
        return zs.member_at(random.randrange(len(zs)))
    count = int_arg(args[1])
    if count < -LONG_MAX:
        raise RedisError(errors.COUNT_RANGE)
    if len(args) > 3 or (len(args) == 3 and args[2].upper() != b"WITHSCORES"):
        raise RedisError(errors.SYNTAX)
    withscores = len(args) == 3
    if withscores and not -(LONG_MAX // 2) <= count <= LONG_MAX // 2:
        raise RedisError(errors.VALUE_OUT_OF_RANGE)
    zs = get_zset(ctx, args[0])
    if zs is None or count == 0:
        return []
    return with_scores(_random_items(zs, count), withscores, ctx.resp3)


def _random_items(zs: ZSet, count: int) -> list[Item]:
    size = len(zs)
    if count < 0 or count == 1:  # repetitions allowed (or just one)
        picks = random.choices(range(size), k=repeated_count(abs(count)))
        return [zs.item_at(i) for i in picks]
    if count >= size:
        items = zs.items_between(0, size)
        items.reverse()  # Redis walks sorted sets from the highest score
        return items
    return [zs.item_at(i) for i in random.sample(range(size), count)]


# --- ZSCAN -------------------------------------------------------------------------------


@command(
    "ZSCAN key cursor [MATCH pattern] [COUNT count]",
    -3,
    "readonly",
    (1, 1, 1),
    acl="@read @sortedset @slow",
    since="2.8.0",
    summary="Incrementally iterate sorted sets elements and associated scores",
    group="sorted-set",
)
def zscan(ctx: Ctx, args: list[bytes]) -> Any:
    cursor = parse_cursor(args[1])
    zs = get_zset(ctx, args[0])
    if zs is None:
        return [b"0", []]
    count, match = parse_scan_options(args[2:])
    scores = zs.scores
    if zs.listpack:
        # A listpack answers in one call, with scores as the listpack stores their text.
        pairs = [(m, d2string(s)) for s, m in zs.items()]
        cursor = 0
    else:
        cursor, members = SCANS.step(zs, scores, cursor, count)
        pairs = [(m, format_long_double_auto(scores[m])) for m in members]
    out: list[bytes] = []
    for member, score in pairs:
        if match is None or match(member):
            out.append(member)
            out.append(score)
    return [b"%d" % cursor, out]


# Used by shard.blocking for BZPOPMIN/BZPOPMAX/BZMPOP.
__all__ = ["get_zset", "parse_zmpop", "pop_items", "zmpop_keys"]
