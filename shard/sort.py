"""SORT and SORT_RO over lists, sets and sorted sets, as ``sort.c`` in Redis 7.0 does it.

``BY`` and ``GET`` patterns name other keys: the first ``*`` is replaced by the element,
``key->field`` reads a hash field, and ``GET #`` is the element itself.  Those keys are
looked up on this shard only; a pattern that names keys living on another shard finds
nothing there (Redis Cluster refuses such patterns outright).

The collections are read through their value classes' public attributes (a list iterates,
a set has ``ordered()``, a hash has ``fields``), told apart with ``values.type_name``.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any

from shard import errors
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.notify import GENERIC, LIST
from shard.numbers import string2d
from shard.table import command
from shard.values import type_name
from shard.zset_value import ZSet

_C_SPACE = b" \t\n\v\f\r"
_SORTABLE = (b"list", b"set", b"zset")


def sort_keys(argv: list[bytes]) -> list[int]:
    """The key positions of a SORT line (``sortGetKeys``): the sorted key and the last STORE."""
    positions = [1]
    store = None
    i = 2
    skips = {b"LIMIT": 2, b"GET": 1, b"BY": 1}
    while i < len(argv):
        option = argv[i].upper()
        if option in skips:
            i += skips[option]
        elif option == b"STORE" and i + 1 < len(argv):
            store = i + 1
        i += 1
    return positions + ([store] if store is not None else [])


class SortOptions:
    __slots__ = ("desc", "alpha", "start", "count", "store", "by", "dontsort", "gets")

    def __init__(self, args: list[bytes], readonly: bool) -> None:
        self.desc = self.alpha = self.dontsort = False
        self.start, self.count = 0, -1
        self.store: bytes | None = None
        self.by: bytes | None = None
        self.gets: list[bytes] = []
        j = 1
        while j < len(args):
            left = len(args) - j - 1
            option = args[j].upper()
            if option == b"ASC":
                self.desc = False
            elif option == b"DESC":
                self.desc = True
            elif option == b"ALPHA":
                self.alpha = True
            elif option == b"LIMIT" and left >= 2:
                self.start, self.count = int_arg(args[j + 1]), int_arg(args[j + 2])
                j += 2
            elif not readonly and option == b"STORE" and left >= 1:
                self.store = args[j + 1]
                j += 1
            elif option == b"BY" and left >= 1:
                self.by = args[j + 1]
                if b"*" not in _c_string(self.by):
                    self.dontsort = True  # a constant pattern: keep the natural order
                j += 1
            elif option == b"GET" and left >= 1:
                self.gets.append(args[j + 1])
                j += 1
            else:
                raise RedisError(errors.SYNTAX)
            j += 1


def _c_string(raw: bytes) -> bytes:
    """What C string functions see of ``raw``: everything before the first NUL."""
    return raw.split(b"\0", 1)[0]


def lookup_by_pattern(ctx: Ctx, pattern: bytes, element: bytes) -> bytes | None:
    """The value a BY/GET pattern names for ``element`` (``lookupKeyByPattern``)."""
    text = _c_string(pattern)
    if text == b"#":
        return element
    star = text.find(b"*")
    if star < 0:
        return None  # a fixed key makes no sense to GET
    arrow = text.find(b"->", star + 1)
    field = None
    if 0 <= arrow and arrow + 2 < len(text):
        field = pattern[arrow + 2 :]
        key = pattern[:star] + element + pattern[star + 1 : arrow]
    else:
        key = pattern[:star] + element + pattern[star + 1 :]
    value = ctx.lookup(key)
    if value is None:
        return None
    if field is not None:
        if type_name(value) != b"hash":
            return None
        found: bytes | None = value.fields.get(field)
        return found
    return value if type(value) is bytes else None


def sort_score(raw: bytes) -> float | None:
    """A numeric sort weight as ``strtod`` reads it, or None where Redis gives up: text left
    over, NaN, or a result out of range (overflow, or an inexact underflow)."""
    text = _c_string(raw)
    if not text:
        return 0.0  # nothing converted, but the end pointer is already on the terminator
    body = text.lstrip(_C_SPACE)
    value = string2d(body) if body else None
    if value is None:
        return None
    if value != 0 and abs(value) < sys.float_info.min and _inexact(body, value):
        return None  # glibc reports ERANGE for a subnormal that lost digits
    return value


def _inexact(body: bytes, value: float) -> bool:
    if b"x" in body.lower():
        return False  # hex digits convert exactly until the precision runs out
    try:
        return Decimal(body.decode()) != Decimal(value)
    except ArithmeticError:
        return True


def _elements(value: Any, opts: SortOptions) -> tuple[list[bytes], int, int]:
    """The elements to sort (or, for an ordered type with nothing to sort, just the range
    LIMIT selects) and the output range [start, end] within them."""
    kind = type_name(value) if value is not None else b"list"
    length = len(value) if value is not None else 0
    start = min(max(opts.start, 0), length)
    count = min(max(opts.count, -1), length)
    end = length - 1 if count < 0 else start + count - 1
    if start >= length:
        start, end = length - 1, length - 2
    end = min(end, length - 1)
    ranged = opts.dontsort and kind != b"set" and (start != 0 or end != length - 1)
    if value is None:
        return [], start, end
    if kind == b"list":
        items: list[bytes] = list(value)
        if opts.dontsort and opts.desc:
            items.reverse()  # the natural order, read from the tail
    elif kind == b"zset":
        items = [member for _, member in value.items()]
        if opts.dontsort and opts.desc:
            items.reverse()
    else:
        items = list(value.ordered())
    if ranged:
        return items[start : end + 1], 0, end - start
    return items, start, end


def _sorted(ctx: Ctx, items: list[bytes], opts: SortOptions) -> list[bytes]:
    by = opts.by
    store = opts.store is not None
    if opts.alpha:
        if by is None:
            # strcoll in the C locale for replies; full binary comparison when storing.
            return sorted(items, key=(lambda e: e) if store else _c_string, reverse=opts.desc)
        weights: dict[int, Any] = {}
        for i, item in enumerate(items):
            found = lookup_by_pattern(ctx, by, item)
            weights[i] = (0, b"") if found is None else (1, found if store else _c_string(found))
        order = sorted(range(len(items)), key=weights.__getitem__, reverse=opts.desc)
        return [items[i] for i in order]
    keyed = []
    failed = False
    for item in items:
        weight = lookup_by_pattern(ctx, by, item) if by is not None else item
        score = 0.0 if weight is None else sort_score(weight)
        if score is None:
            failed, score = True, 0.0
        keyed.append((score, item))
    if failed:
        raise RedisError(errors.SORT_NOT_DOUBLE)
    keyed.sort(reverse=opts.desc)
    return [item for _, item in keyed]


def sort_generic(ctx: Ctx, args: list[bytes], readonly: bool) -> Any:
    opts = SortOptions(args, readonly)
    value = ctx.lookup(args[0])
    if value is not None and type_name(value) not in _SORTABLE:
        raise RedisError(errors.WRONGTYPE)
    if (
        opts.dontsort
        and value is not None
        and type_name(value) == b"set"
        and opts.store is not None
    ):
        # A set has no natural order: storing it must not depend on hashing, so sort it.
        opts.dontsort, opts.alpha, opts.by = False, True, None
    if type(value) is ZSet:
        value.to_skiplist()  # Redis converts a listpack sorted set before sorting it
    items, start, end = _elements(value, opts)
    if not opts.dontsort:
        items = _sorted(ctx, items, opts)
    chosen = items[start : end + 1] if end >= start else []
    if opts.store is None:
        if not opts.gets:
            return chosen
        return [lookup_by_pattern(ctx, get, item) for item in chosen for get in opts.gets]
    from shard.list_value import ListValue

    if opts.gets:
        stored = [lookup_by_pattern(ctx, get, item) or b"" for item in chosen for get in opts.gets]
    else:
        stored = chosen
    if stored:
        ctx.ks.set(ctx.db, opts.store, ListValue(stored))
        ctx.notify(LIST, b"sortstore", opts.store)
    elif ctx.ks.delete(ctx.db, opts.store):
        ctx.notify(GENERIC, b"del", opts.store)
    return len(stored)


@command(
    "SORT key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC | DESC] [ALPHA] [STORE destination]",
    -2,
    "write denyoom",
    (1, 1, 1),
    acl="@write @set @sortedset @list @slow @dangerous",
    group="generic",
    since="1.0.0",
    summary="Sort the elements in a list, set or sorted set",
    keys_fn=sort_keys,
)
def sort(ctx: Ctx, args: list[bytes]) -> Any:
    return sort_generic(ctx, args, readonly=False)


@command(
    "SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC | DESC] [ALPHA]",
    -2,
    "readonly",
    (1, 1, 1),
    acl="@read @set @sortedset @list @slow @dangerous",
    group="generic",
    since="7.0.0",
    summary="Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
    keys_fn=lambda argv: [1],
)
def sort_ro(ctx: Ctx, args: list[bytes]) -> Any:
    return sort_generic(ctx, args, readonly=True)
