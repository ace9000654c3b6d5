"""Set commands, and the random sampling and SCAN helpers that hashes share.

A set is a Python ``set`` of bytes plus a flag for Redis 7.0's two encodings: ``intset``
(every member a canonical 64-bit integer, at most ``set-max-intset-entries`` of them) and
``hashtable``.  Redis 7.0 has no listpack sets.  A set never goes back to intset once
converted, except where Redis builds a fresh set (the *STORE commands, SPOP's rebuild).
Iterating an intset yields its members in ascending numeric order, which SMEMBERS, SSCAN and
friends make observable, so :meth:`SetValue.ordered` sorts intsets.
"""

from __future__ import annotations

import random
import re
from collections import OrderedDict
from collections.abc import Collection
from typing import Any

from shard import errors
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.glob import compile_glob
from shard.notify import GENERIC, SET
from shard.numbers import string2ll
from shard.reply import SetReply
from shard.table import command, numkeys_at
from shard.values import ValueType, register

LONG_MAX = (1 << 63) - 1
INTSET_HARD_LIMIT = 1 << 30  # Redis caps set-max-intset-entries here (intset internals)
# Replies that repeat random picks (negative counts) are built in memory before they are sent;
# Redis streams them.  Larger counts are refused rather than exhausting the shard.
MAX_REPEATED_PICKS = 1 << 24


class SetValue:
    __slots__ = ("members", "intset", "pool")

    def __init__(self, members: set[bytes] | None = None, intset: bool = True) -> None:
        self.members: set[bytes] = members if members is not None else set()
        self.intset = intset
        self.pool: list[bytes] | None = None  # see random_member

    def __len__(self) -> int:
        return len(self.members)

    def add(self, member: bytes, max_intset: int) -> bool:
        """Add one member (Redis ``setTypeAdd``); True when it was new."""
        members = self.members
        if member in members:
            return False
        members.add(member)
        self.pool = None
        if self.intset and (len(members) > max_intset or not is_int(member)):
            self.intset = False
        return True

    def ordered(self) -> list[bytes]:
        """The members in the order Redis iterates them: ascending for an intset."""
        if self.intset:
            return sorted(self.members, key=int)
        return list(self.members)


def is_int(member: bytes) -> bool:
    """Whether an intset can hold ``member`` (``isSdsRepresentableAsLongLong``)."""
    return len(member) < 21 and string2ll(member) is not None


def max_intset_entries(ctx: Ctx) -> int:
    return min(int(ctx.config.get("set-max-intset-entries", 512)), INTSET_HARD_LIMIT)


def built_set(members: set[bytes], max_intset: int) -> SetValue:
    """A set Redis builds by adding ``members`` to an empty intset: it stays an intset only
    if every member is an integer and there are no more than the limit."""
    intset = len(members) <= max_intset and all(map(is_int, members))
    return SetValue(members, intset)


def _set_encoding(value: SetValue, config: dict[str, Any]) -> bytes:
    return b"intset" if value.intset else b"hashtable"


def _dump_set(value: SetValue) -> Any:
    return [value.intset, value.ordered()]


def _load_set(data: Any) -> SetValue:
    return SetValue(set(data[1]), bool(data[0]))


register(SetValue, ValueType(b"set", _set_encoding, _dump_set, _load_set))


# --- random picks, shared with hashes ----------------------------------------------------


def random_member(owner: Any, items: Collection[bytes]) -> bytes:
    """A uniformly random element of the non-empty ``items`` in O(1) expected time.

    ``owner.pool`` caches a list of the elements; it may hold removed ones (they are drawn
    and rejected) but never lacks a live one, so adding to ``items`` must reset it to None.
    It is rebuilt once half of it is stale.
    """
    pool: list[bytes] | None = owner.pool
    if pool is None or len(pool) > 2 * len(items) + 8:
        pool = owner.pool = list(items)
    size = len(pool)
    draw = random.random
    while True:
        candidate = pool[int(draw() * size)]
        if candidate in items:
            return candidate


def random_distinct(owner: Any, items: Collection[bytes], count: int) -> list[bytes]:
    """``count`` (< len(items)) distinct random elements, in random order."""
    if count * 3 > len(items):
        return random.sample(list(items), count)
    chosen: dict[bytes, None] = {}
    while len(chosen) < count:
        chosen[random_member(owner, items)] = None
    return list(chosen)


def repeated_count(count: int) -> int:
    if count > MAX_REPEATED_PICKS:
        raise RedisError(errors.VALUE_OUT_OF_RANGE)
    return count


def ranged_count(raw: bytes) -> int:
    """A count in -LONG_MAX..LONG_MAX (SRANDMEMBER, HRANDFIELD)."""
    count = int_arg(raw)
    if count < -LONG_MAX:
        raise RedisError(errors.COUNT_RANGE)
    return count


def positive_long(raw: bytes, message: str) -> int:
    """Redis ``getPositiveLongFromObjectOrReply``: one message for bad text and negatives."""
    value = string2ll(raw)
    if value is None or value < 0:
        raise RedisError(message)
    return value


# --- SCAN over collections, shared with hashes ---------------------------------------------

_ULONG_MAX = (1 << 64) - 1
_CURSOR = re.compile(rb"[+-]?[0-9]+")
_C_SPACE = b" \t\n\v\f\r"


def parse_cursor(raw: bytes) -> int:
    """A cursor as Redis reads it with ``strtoul``: digits with an optional sign ("-1" wraps
    around), no leading space, nothing after; the empty text is 0."""
    text = raw.split(b"\0", 1)[0]
    if not text:
        return 0
    if text[:1] in _C_SPACE or not _CURSOR.fullmatch(text):
        raise RedisError(errors.INVALID_CURSOR)
    digits = text.lstrip(b"+-").lstrip(b"0")
    if len(digits) > 20 or int(digits or b"0") > _ULONG_MAX:
        raise RedisError(errors.INVALID_CURSOR)
    value = int(digits or b"0")
    return (-value) & _ULONG_MAX if text[:1] == b"-" else value


def parse_scan_options(args: list[bytes]) -> tuple[int, Any]:
    """(count, matcher or None) of ``[MATCH pattern] [COUNT count]``, in any order, repeated."""
    count, matcher = 10, None
    i = 0
    while i < len(args):
        option = args[i].upper()
        if option == b"COUNT" and len(args) - i >= 2:
            count = int_arg(args[i + 1])
            if count < 1:
                raise RedisError(errors.SYNTAX)
        elif option == b"MATCH" and len(args) - i >= 2:
            # "*" exactly turns matching off (so even an empty member is returned).
            matcher = None if args[i + 1] == b"*" else compile_glob(args[i + 1])
        else:
            raise RedisError(errors.SYNTAX)
        i += 2
    return count, matcher


class ScanSnapshots:
    """Element lists that cursors of big collections walk through.

    A scan of a hashtable-encoded collection starts by copying its element names; the cursor
    is ``snapshot id << 32 | position``.  So every element present for the whole scan is
    returned exactly once, and elements removed meanwhile are skipped.  Only the newest
    ``LIMIT`` snapshots are kept; a cursor whose snapshot is gone (or that belongs to another
    collection) starts over, which may repeat elements, as Redis allows.
    """

    LIMIT = 64

    def __init__(self) -> None:
        self.snapshots: OrderedDict[int, tuple[Any, list[bytes]]] = OrderedDict()
        self.next_id = 1

    def step(
        self, owner: Any, items: Collection[bytes], cursor: int, count: int
    ) -> tuple[int, list[bytes]]:
        """(next cursor, the next ``count`` snapshot elements still in ``items``)."""
        snap_id, position = cursor >> 32, cursor & 0xFFFFFFFF
        found = self.snapshots.get(snap_id) if cursor else None
        if found is None or found[0] is not owner:
            snapshot, position, snap_id = list(items), 0, 0
        else:
            snapshot = found[1]
        end = position + count
        chunk = [item for item in snapshot[position:end] if item in items]
        if end >= len(snapshot):
            self.snapshots.pop(snap_id, None)
            return 0, chunk
        if not snap_id:
            snap_id = self.next_id
            self.next_id = self.next_id % (1 << 30) + 1  # cursors stay below 2**62
            self.snapshots[snap_id] = (owner, snapshot)
            while len(self.snapshots) > self.LIMIT:
                self.snapshots.popitem(last=False)
        return (snap_id << 32) | end, chunk


SCANS = ScanSnapshots()


# --- lookups -----------------------------------------------------------------------------


def get_set(ctx: Ctx, key: bytes) -> SetValue | None:
    value = ctx.lookup(key)
    if value is not None and type(value) is not SetValue:
        raise RedisError(errors.WRONGTYPE)
    return value


def get_sets(ctx: Ctx, keys: list[bytes]) -> list[SetValue | None]:
    """Every key's set (None when missing), checking types in key order as Redis does."""
    return [get_set(ctx, key) for key in keys]


def _store(ctx: Ctx, dest: bytes, result: SetValue) -> int:
    """Replace ``dest`` with ``result``, or delete it when the result is empty."""
    if not result.members:
        if ctx.ks.delete(ctx.db, dest):
            ctx.notify(GENERIC, b"del", dest)
        return 0
    ctx.ks.set(ctx.db, dest, result)
    ctx.notify(SET, ctx.name.encode(), dest)  # sinterstore, sunionstore, sdiffstore
    return len(result.members)


# --- single-set commands -----------------------------------------------------------------


@command(
    "SADD key member [member ...]",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    acl="@write @set @fast",
    summary="Add one or more members to a set",
    group="set",
)
def sadd(ctx: Ctx, args: list[bytes]) -> Any:
    key = args[0]
    value = get_set(ctx, key)
    if value is None:
        value = SetValue()
        ctx.ks.set(ctx.db, key, value)
    limit = max_intset_entries(ctx)
    added = sum(value.add(member, limit) for member in args[1:])
    if added:
        ctx.ks.modified(ctx.db, key)
        if ctx.events:
            ctx.notify(SET, b"sadd", key)
    return added


@command(
    "SREM key member [member ...]",
    -3,
    "write fast",
    (1, 1, 1),
    acl="@write @set @fast",
    summary="Remove one or more members from a set",
    group="set",
)
def srem(ctx: Ctx, args: list[bytes]) -> Any:
    key = args[0]
    value = get_set(ctx, key)
    if value is None:
        return 0
    members = value.members
    removed = 0
    for member in args[1:]:
        if member in members:
            members.discard(member)
            removed += 1
    if removed:
        ctx.notify(SET, b"srem", key)
    if not members:
        ctx.ks.delete(ctx.db, key)
        if removed:
            ctx.notify(GENERIC, b"del", key)
    elif removed:
        ctx.ks.modified(ctx.db, key)
    return removed


@command(
    "SMEMBERS key",
    2,
    "readonly",
    (1, 1, 1),
    acl="@read @set @slow",
    summary="Get all the members in a set",
    group="set",
)
def smembers(ctx: Ctx, args: list[bytes]) -> Any:
    value = get_set(ctx, args[0])
    return SetReply(value.ordered() if value is not None else [])


@command(
    "SISMEMBER key member",
    3,
    "readonly fast",
    (1, 1, 1),
    acl="@read @set @fast",
    summary="Determine if a given value is a member of a set",
    group="set",
)
def sismember(ctx: Ctx, args: list[bytes]) -> Any:
    value = get_set(ctx, args[0])
    return int(value is not None and args[1] in value.members)


@command(
    "SMISMEMBER key member [member ...]",
    -3,
    "readonly fast",
    (1, 1, 1),
    acl="@read @set @fast",
    since="6.2.0",
    summary="Returns the membership associated with the given elements for a set",
    group="set",
)
def smismember(ctx: Ctx, args: list[bytes]) -> Any:
    value = get_set(ctx, args[0])
    members = value.members if value is not None else set()
    return [int(member in members) for member in args[1:]]


@command(
    "SCARD key",
    2,
    "readonly fast",
    (1, 1, 1),
    acl="@read @set @fast",
    summary="Get the number of members in a set",
    group="set",
)
def scard(ctx: Ctx, args: list[bytes]) -> Any:
    value = get_set(ctx, args[0])
    return len(value.members) if value is not None else 0


@command(
    "SPOP key [count]",
    -2,
    "write fast",
    (1, 1, 1),
    acl="@write @set @fast",
    summary="Remove and return one or multiple random members from a set",
    group="set",
)
def spop(ctx: Ctx, args: list[bytes]) -> Any:
    if len(args) > 2:
        raise RedisError(errors.SYNTAX)
    key = args[0]
    if len(args) == 2:
        return _spop_count(ctx, key, positive_long(args[1], errors.MUST_BE_POSITIVE))
    value = get_set(ctx, key)
    if value is None:
        return None
    member = random_member(value, value.members)
    value.members.discard(member)
    _after_pop(ctx, key, value, b"spop")
    return member


def _spop_count(ctx: Ctx, key: bytes, count: int) -> Any:
    value = get_set(ctx, key)
    if value is None or count == 0:
        return SetReply()
    members = value.members
    size = len(members)
    if count >= size:
        # Redis answers with SUNION of the set alone, then deletes it.
        everything = built_set(members, max_intset_entries(ctx)).ordered()
        ctx.ks.delete(ctx.db, key)
        ctx.notify(SET, b"spop", key)
        ctx.notify(GENERIC, b"del", key)
        return SetReply(everything)
    remaining = size - count
    if remaining * 5 > count:
        popped = []
        for _ in range(count):
            member = random_member(value, members)
            members.discard(member)
            popped.append(member)
        _after_pop(ctx, key, value, b"spop")
        return SetReply(popped)
    # Few members stay: Redis moves them into a new set (whose encoding is decided afresh)
    # and answers with what is left in the old one.
    keep = set(random_distinct(value, members, remaining))
    members -= keep
    popped = value.ordered()
    ctx.ks.set(ctx.db, key, built_set(keep, max_intset_entries(ctx)), keep_ttl=True)
    ctx.notify(SET, b"spop", key)
    return SetReply(popped)


def _after_pop(ctx: Ctx, key: bytes, value: SetValue, event: bytes) -> None:
    ctx.notify(SET, event, key)
    if value.members:
        ctx.ks.modified(ctx.db, key)
    else:
        ctx.ks.delete(ctx.db, key)
        ctx.notify(GENERIC, b"del", key)


@command(
    "SRANDMEMBER key [count]",
    -2,
    "readonly",
    (1, 1, 1),
    acl="@read @set @slow",
    summary="Get one or multiple random members from a set",
    group="set",
)
def srandmember(ctx: Ctx, args: list[bytes]) -> Any:
    if len(args) > 2:
        raise RedisError(errors.SYNTAX)
    if len(args) == 1:
        value = get_set(ctx, args[0])
        return None if value is None else random_member(value, value.members)
    count = ranged_count(args[1])
    value = get_set(ctx, args[0])
    if value is None or count == 0:
        return []
    members = value.members
    if count < 0 or count == 1:
        return [random_member(value, members) for _ in range(repeated_count(abs(count)))]
    if count >= len(members):
        return value.ordered()
    return random_distinct(value, members, count)


@command(
    "SMOVE source destination member",
    4,
    "write fast",
    (1, 2, 1),
    acl="@write @set @fast",
    summary="Move a member from one set to another",
    group="set",
)
def smove(ctx: Ctx, args: list[bytes]) -> Any:
    src_key, dst_key, member = args
    ctx.unchanged = None
    source = ctx.lookup(src_key)
    if source is None:
        return 0
    if type(source) is not SetValue:
        raise RedisError(errors.WRONGTYPE)
    dest = get_set(ctx, dst_key)
    if source is dest:
        return int(member in source.members)
    if member not in source.members:
        return 0
    source.members.discard(member)
    _after_pop(ctx, src_key, source, b"srem")
    if dest is None:
        dest = SetValue()
        ctx.ks.set(ctx.db, dst_key, dest)
    if dest.add(member, max_intset_entries(ctx)):
        ctx.ks.modified(ctx.db, dst_key)
        ctx.notify(SET, b"sadd", dst_key)
    else:
        ctx.unchanged = dst_key
    return 1


# --- intersections, unions and differences -------------------------------------------------


def _intersection(sets: list[SetValue], limit: int = 0) -> list[bytes]:
    """SINTER's members in Redis' order: those of the smallest set (the first of the smallest
    when several tie, as a stable sort leaves them), in its iteration order."""
    ordered = sorted(sets, key=len)
    first = ordered[0]
    others = [s.members for s in ordered[1:] if s is not first]
    out = []
    for member in first.ordered() if first.intset else first.members:
        for other in others:
            if member not in other:
                break
        else:
            out.append(member)
            if limit and len(out) >= limit:
                break
    return out


@command(
    "SINTER key [key ...]",
    -2,
    "readonly",
    (1, -1, 1),
    acl="@read @set @slow",
    summary="Intersect multiple sets",
    group="set",
)
def sinter(ctx: Ctx, args: list[bytes]) -> Any:
    sets = get_sets(ctx, args)
    if any(s is None for s in sets):
        return SetReply()
    return SetReply(_intersection(sets))  # type: ignore[arg-type]


@command(
    "SINTERCARD numkeys key [key ...] [LIMIT limit]",
    -3,
    "readonly",
    (0, 0, 0),
    acl="@read @set @slow",
    since="7.0.0",
    keys_fn=numkeys_at(1),
    summary="Intersect multiple sets and return the cardinality of the result",
    group="set",
)
def sintercard(ctx: Ctx, args: list[bytes]) -> Any:
    numkeys = positive_long(args[0], errors.NUMKEYS_NOT_POSITIVE)
    if numkeys == 0:
        raise RedisError(errors.NUMKEYS_NOT_POSITIVE)
    if numkeys > len(args) - 1:
        raise RedisError(errors.NUMKEYS_TOO_MANY)
    limit = 0
    i = 1 + numkeys
    while i < len(args):
        if args[i].upper() == b"LIMIT" and i + 1 < len(args):
            limit = positive_long(args[i + 1], errors.LIMIT_NEGATIVE)
            i += 2
        else:
            raise RedisError(errors.SYNTAX)
    sets = get_sets(ctx, args[1 : 1 + numkeys])
    if any(s is None for s in sets):
        return 0
    return len(_intersection(sets, limit))  # type: ignore[arg-type]


@command(
    "SINTERSTORE destination key [key ...]",
    -3,
    "write denyoom",
    (1, -1, 1),
    acl="@write @set @slow",
    summary="Intersect multiple sets and store the resulting set in a key",
    group="set",
)
def sinterstore(ctx: Ctx, args: list[bytes]) -> Any:
    sets = get_sets(ctx, args[1:])
    members: set[bytes] = set()
    if all(s is not None for s in sets):
        members = set(_intersection(sets))  # type: ignore[arg-type]
    return _store(ctx, args[0], built_set(members, max_intset_entries(ctx)))


def _union(ctx: Ctx, keys: list[bytes]) -> SetValue:
    members: set[bytes] = set()
    for value in get_sets(ctx, keys):
        if value is not None:
            members |= value.members
    return built_set(members, max_intset_entries(ctx))


def _difference(ctx: Ctx, keys: list[bytes]) -> SetValue:
    """SDIFF's result set, with the encoding Redis' chosen algorithm leaves it in."""
    sets = get_sets(ctx, keys)
    first = sets[0]
    limit = max_intset_entries(ctx)
    if first is None or any(s is first for s in sets[1:]):
        return SetValue()
    others = [s.members for s in sets[1:] if s is not None]
    work_one = len(first.members) * (len(others) + 1) // 2
    work_two = len(first.members) + sum(len(o) for o in others)
    members = first.members.difference(*others)
    if work_one <= work_two:
        return built_set(members, limit)  # only the result's members were ever added
    # The whole first set was added, then the others removed: it decides the encoding.
    fits = len(first.members) <= limit
    return SetValue(members, fits and (first.intset or all(map(is_int, first.members))))


@command(
    "SUNION key [key ...]",
    -2,
    "readonly",
    (1, -1, 1),
    acl="@read @set @slow",
    summary="Add multiple sets",
    group="set",
)
def sunion(ctx: Ctx, args: list[bytes]) -> Any:
    return SetReply(_union(ctx, args).ordered())


@command(
    "SUNIONSTORE destination key [key ...]",
    -3,
    "write denyoom",
    (1, -1, 1),
    acl="@write @set @slow",
    summary="Add multiple sets and store the resulting set in a key",
    group="set",
)
def sunionstore(ctx: Ctx, args: list[bytes]) -> Any:
    return _store(ctx, args[0], _union(ctx, args[1:]))


@command(
    "SDIFF key [key ...]",
    -2,
    "readonly",
    (1, -1, 1),
    acl="@read @set @slow",
    summary="Subtract multiple sets",
    group="set",
)
def sdiff(ctx: Ctx, args: list[bytes]) -> Any:
    return SetReply(_difference(ctx, args).ordered())


@command(
    "SDIFFSTORE destination key [key ...]",
    -3,
    "write denyoom",
    (1, -1, 1),
    acl="@write @set @slow",
    summary="Subtract multiple sets and store the resulting set in a key",
    group="set",
)
def sdiffstore(ctx: Ctx, args: list[bytes]) -> Any:
    return _store(ctx, args[0], _difference(ctx, args[1:]))


@command(
    "SSCAN key cursor [MATCH pattern] [COUNT count]",
    -3,
    "readonly",
    (1, 1, 1),
    acl="@read @set @slow",
    since="2.8.0",
    summary="Incrementally iterate Set elements",
    group="set",
)
def sscan(ctx: Ctx, args: list[bytes]) -> Any:
    cursor = parse_cursor(args[1])
    value = get_set(ctx, args[0])
    if value is None:
        return [b"0", []]
    count, matcher = parse_scan_options(args[2:])
    if value.intset:
        cursor, chunk = 0, value.ordered()
    else:
        cursor, chunk = SCANS.step(value, value.members, cursor, count)
    if matcher is not None:
        chunk = [member for member in chunk if matcher(member)]
    return [b"%d" % cursor, chunk]
