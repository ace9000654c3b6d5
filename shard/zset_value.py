"""The sorted set value: a member -> score dict beside an ordered sequence of sort keys.

The dict answers ZSCORE and membership in O(1); the ordered sequence answers ranks and
ranges.  Each entry of the sequence is one ``bytes``: 8 bytes that sort as the score does,
then the member, so ordering by (score, member) is a single ``memcmp`` (several times faster
than comparing tuples, which matters most to ZADD).  Small sets keep the sequence in a plain
list (bisect and memmove: fast and compact for a few hundred entries); past ``SMALL_MAX``
entries it becomes a ``SortedList`` (O(log n) inserts, ranks and index access).

Redis' two encodings are tracked by a flag, independently of the structure: a ``listpack``
set stores scores as text, which turns ``-0`` into ``0`` (so ZSCORE answers ``0``), and it
converts to ``skiplist`` when it outgrows ``zset-max-listpack-entries`` or a member is
longer than ``zset-max-listpack-value``; a skiplist never goes back on its own.

Ranges follow ``t_zset.c``: score bounds as ``zslParseRange`` reads them, lex bounds as
``zslParseLexRange`` does.  Lex ranges assume equal scores; for small (listpack) sets the
search is the linear scan Redis does, so even mixed scores give Redis' answer.
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_left, insort
from collections.abc import Callable, Iterator
from typing import Any

from sortedcontainers import SortedList

from shard import errors, values
from shard.errors import RedisError
from shard.numbers import parse_score_bound

SMALL_MAX = 256  # a plain list up to this many entries, then a SortedList
DEFAULT_ENTRIES = 128  # zset-max-listpack-entries
DEFAULT_VALUE = 64  # zset-max-listpack-value

RANK, SCORE, LEX = 1, 2, 3  # the kinds of ZRANGE

Item = tuple[float, bytes]  # (score, member): what ranges hand to replies

_PACK_DOUBLE = struct.Struct(">d").pack
_UNPACK_BITS = struct.Struct(">Q").unpack
_PACK_BITS = struct.Struct(">Q").pack
_SIGN = 1 << 63
_ALL_BITS = (1 << 64) - 1


_PREFIXES: dict[float, bytes] = {}  # scores repeat a lot (integers, ties): remember some
_PREFIXES_MAX = 4096


def score_prefix(score: float) -> bytes:
    """8 bytes whose byte order is the order of the scores (``-0`` and ``0`` are equal)."""
    prefix = _PREFIXES.get(score)
    if prefix is None:
        (bits,) = _UNPACK_BITS(_PACK_DOUBLE(score + 0.0))  # adding +0.0 turns -0.0 into 0.0
        prefix = _PACK_BITS(bits ^ _ALL_BITS if bits & _SIGN else bits | _SIGN)
        if len(_PREFIXES) >= _PREFIXES_MAX:
            _PREFIXES.clear()
        _PREFIXES[score] = prefix
    return prefix


class SmallOrder(list):  # type: ignore[type-arg]
    """A sorted Python list with the part of the SortedList API the sorted set uses."""

    __slots__ = ()

    def add(self, entry: bytes) -> None:
        insort(self, entry)

    def remove(self, entry: bytes) -> None:
        del self[bisect_left(self, entry)]

    def bisect_left(self, entry: bytes) -> int:
        return bisect_left(self, entry)


class ZSet:
    """A sorted set.  ``listpack`` is the encoding Redis would report."""

    __slots__ = ("scores", "order", "listpack")

    def __init__(self, listpack: bool = True) -> None:
        self.scores: dict[bytes, float] = {}
        self.order: Any = SmallOrder()  # sort keys: score_prefix(score) + member
        self.listpack = listpack

    def __len__(self) -> int:
        return len(self.scores)

    def __repr__(self) -> str:
        kind = "listpack" if self.listpack else "skiplist"
        return f"ZSet({kind}, {list(self.items())!r})"

    # --- changes -----------------------------------------------------------------------

    def insert(self, member: bytes, score: float) -> None:
        """Add a member that is not in the set yet."""
        if self.listpack and score == 0.0:
            score = 0.0  # a listpack stores "-0" as the integer 0
        self.scores[member] = score
        order = self.order
        order.add(score_prefix(score) + member)
        if len(order) > SMALL_MAX and type(order) is SmallOrder:
            self.order = SortedList(order)

    def rescore(self, member: bytes, old: float, new: float) -> None:
        if self.listpack and new == 0.0:
            new = 0.0
        order = self.order
        order.remove(score_prefix(old) + member)
        order.add(score_prefix(new) + member)
        self.scores[member] = new

    def discard(self, member: bytes) -> bool:
        score = self.scores.pop(member, None)
        if score is None:
            return False
        self.order.remove(score_prefix(score) + member)
        return True

    def delete_slice(self, start: int, stop: int) -> int:
        """Remove the members ranked ``start`` .. ``stop - 1``; returns how many."""
        if stop <= start:
            return 0
        order = self.order
        scores = self.scores
        for entry in order[start:stop]:
            del scores[entry[8:]]
        del order[start:stop]
        return stop - start

    def to_skiplist(self) -> None:
        self.listpack = False

    def to_listpack(self) -> None:
        """Convert to listpack, writing each ``-0`` score as ``0`` as the listpack does."""
        self.listpack = True
        scores = self.scores
        for member, score in scores.items():
            if score == 0.0:
                scores[member] = 0.0  # the sort keys already treat -0 as 0

    # --- reading -----------------------------------------------------------------------

    def rank(self, member: bytes) -> int | None:
        score = self.scores.get(member)
        if score is None:
            return None
        return int(self.order.bisect_left(score_prefix(score) + member))

    def first_at_least(self, score: float) -> int:
        """Index of the first member whose score is >= ``score``."""
        return int(self.order.bisect_left(score_prefix(score)))

    def first_above(self, score: float) -> int:
        """Index of the first member whose score is > ``score``."""
        if score == math.inf:
            return len(self.order)
        return int(self.order.bisect_left(score_prefix(math.nextafter(score, math.inf))))

    def score_span(self, spec: ScoreRange) -> tuple[int, int]:
        """The ranks ``[lo, hi)`` of the members inside a score range."""
        low, low_ex, high, high_ex = spec
        lo = self.first_above(low) if low_ex else self.first_at_least(low)
        hi = self.first_at_least(high) if high_ex else self.first_above(high)
        return lo, max(lo, hi)

    def member_at(self, rank: int) -> bytes:
        entry: bytes = self.order[rank]
        return entry[8:]

    def item_at(self, rank: int) -> Item:
        member: bytes = self.order[rank][8:]
        return self.scores[member], member

    def items_between(self, start: int, stop: int) -> list[Item]:
        """(score, member) of the ranks ``start`` .. ``stop - 1``, lowest first."""
        scores = self.scores
        return [(scores[m], m) for m in [entry[8:] for entry in self.order[start:stop]]]

    def items(self) -> Iterator[Item]:
        scores = self.scores
        for entry in self.order:
            member = entry[8:]
            yield scores[member], member


# --- building --------------------------------------------------------------------------


def listpack_limits(config: dict[str, Any]) -> tuple[int, int]:
    return (
        int(config.get("zset-max-listpack-entries", DEFAULT_ENTRIES)),
        int(config.get("zset-max-listpack-value", DEFAULT_VALUE)),
    )


def from_scores(scores: dict[bytes, float], listpack: bool) -> ZSet:
    """A set holding ``scores`` (the dict is taken over, not copied)."""
    zs = ZSet(listpack=False)
    zs.scores = scores
    order = sorted([score_prefix(score) + member for member, score in scores.items()])
    zs.order = SmallOrder(order) if len(order) <= SMALL_MAX else SortedList(order)
    if listpack:
        zs.to_listpack()
    return zs


def stored_result(scores: dict[bytes, float], config: dict[str, Any]) -> ZSet:
    """The value ZUNIONSTORE and friends store: built as a skiplist, then converted to a
    listpack when small enough (``zsetConvertToListpackIfNeeded``)."""
    entries, max_value = listpack_limits(config)
    small = len(scores) <= entries and all(len(m) <= max_value for m in scores)
    return from_scores(scores, listpack=small)


# --- ZADD's core (zsetAdd) ---------------------------------------------------------------

IN_INCR, IN_NX, IN_XX, IN_GT, IN_LT = 1, 2, 4, 8, 16
OUT_ADDED, OUT_UPDATED, OUT_NOP, OUT_NAN = 1, 2, 4, 8


def zset_add(
    zs: ZSet, score: float, member: bytes, flags: int, entries: int, max_value: int
) -> tuple[int, float]:
    """Add or update one member as Redis' ``zsetAdd``: (OUT_* flags, new score).

    The score returned is the one computed (``-0`` stays ``-0`` in the reply even when a
    listpack stores it as ``0``)."""
    current = zs.scores.get(member)
    if current is not None:
        if flags & IN_NX:
            return OUT_NOP, score
        if flags & IN_INCR:
            score += current
            if score != score:
                return OUT_NAN, score
        if (flags & IN_LT and score >= current) or (flags & IN_GT and score <= current):
            return OUT_NOP, score
        if score != current:
            zs.rescore(member, current, score)
            return OUT_UPDATED, score
        return 0, score
    if flags & IN_XX:
        return OUT_NOP, score
    if zs.listpack and (len(zs.scores) + 1 > entries or len(member) > max_value):
        zs.to_skiplist()
    zs.insert(member, score)
    return OUT_ADDED, score


# --- ranges ----------------------------------------------------------------------------

ScoreRange = tuple[float, bool, float, bool]  # min, min exclusive, max, max exclusive


def parse_score_range(low: bytes, high: bytes) -> ScoreRange:
    parsed_low = parse_score_bound(low)
    parsed_high = parse_score_bound(high)
    if parsed_low is None or parsed_high is None:
        raise RedisError(errors.MIN_MAX_NOT_FLOAT)
    return parsed_low[0], parsed_low[1], parsed_high[0], parsed_high[1]


def in_score_range(score: float, spec: ScoreRange) -> bool:
    low, low_ex, high, high_ex = spec
    above = score > low if low_ex else score >= low
    below = score < high if high_ex else score <= high
    return above and below


MINUS, PLUS = -1, 1  # the "-" and "+" lex bounds
LexBound = tuple[int, bytes, bool]  # kind (MINUS, PLUS or 0), text, exclusive


def _parse_lex_bound(raw: bytes) -> LexBound | None:
    head = raw[:1]
    if head == b"+" or head == b"-":
        # Redis compares the C string: "+" followed by a NUL byte is still "+".
        if raw[1:2] not in (b"", b"\0"):
            return None
        return (PLUS if head == b"+" else MINUS), b"", True
    if head == b"(":
        return 0, raw[1:], True
    if head == b"[":
        return 0, raw[1:], False
    return None


class LexRange:
    """A ZRANGEBYLEX range with the predicates Redis tests members against."""

    __slots__ = ("low", "high")

    def __init__(self, low_raw: bytes, high_raw: bytes) -> None:
        low = _parse_lex_bound(low_raw)
        high = _parse_lex_bound(high_raw)
        if low is None or high is None:
            raise RedisError(errors.MIN_MAX_NOT_LEX)
        self.low = low
        self.high = high

    def empty(self) -> bool:
        """Ranges that can hold nothing whatever the set (``min > max`` ...)."""
        cmp = _compare_bounds(self.low, self.high)
        return cmp > 0 or (cmp == 0 and (self.low[2] or self.high[2]))

    def above_min(self, member: bytes) -> bool:
        kind, text, exclusive = self.low
        if kind:
            return kind == MINUS
        return member > text if exclusive else member >= text

    def below_max(self, member: bytes) -> bool:
        kind, text, exclusive = self.high
        if kind:
            return kind == PLUS
        return member < text if exclusive else member <= text

    def contains(self, member: bytes) -> bool:
        return self.above_min(member) and self.below_max(member)


def _compare_bounds(a: LexBound, b: LexBound) -> int:
    if a == b and a[0]:
        return 0  # the same shared "-" or "+" string
    if a[0] == MINUS or b[0] == PLUS:
        return -1
    if a[0] == PLUS or b[0] == MINUS:
        return 1
    return (a[1] > b[1]) - (a[1] < b[1])


def _scan(order: Any, start: int, step: int, keep: Callable[[bytes], bool]) -> int:
    """First index from ``start`` (moving by ``step``) whose member fails ``keep``.

    Small sets are walked one by one, as Redis walks a listpack; large ones are searched
    by bisection, which gives the same answer whenever the scores are equal.
    """
    n = len(order)
    if type(order) is SmallOrder:
        i = start
        while 0 <= i < n and keep(order[i][8:]):
            i += step
        return i
    if step > 0:
        lo, hi = start, n
        while lo < hi:
            mid = (lo + hi) // 2
            if keep(order[mid][8:]):
                lo = mid + 1
            else:
                hi = mid
        return lo
    lo, hi = -1, start  # find the largest index <= start that fails
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if keep(order[mid][8:]):
            hi = mid - 1
        else:
            lo = mid
    return lo


def lex_first(zs: ZSet, spec: LexRange) -> int:
    """Rank of the first member in the lex range, or -1 (``zzlFirstInLexRange``)."""
    order = zs.order
    if not order or spec.empty():
        return -1
    if not spec.above_min(order[-1][8:]) or not spec.below_max(order[0][8:]):
        return -1
    i = _scan(order, 0, 1, lambda m: not spec.above_min(m))
    return i if i < len(order) and spec.below_max(order[i][8:]) else -1


def lex_last(zs: ZSet, spec: LexRange) -> int:
    """Rank of the last member in the lex range, or -1 (``zzlLastInLexRange``)."""
    order = zs.order
    if not order or spec.empty():
        return -1
    if not spec.above_min(order[-1][8:]) or not spec.below_max(order[0][8:]):
        return -1
    i = _scan(order, len(order) - 1, -1, lambda m: not spec.below_max(m))
    return i if i >= 0 and spec.above_min(order[i][8:]) else -1


def lex_walk(zs: ZSet, spec: LexRange, start: int, reverse: bool) -> int:
    """Where a walk from rank ``start`` stops: the first rank past the end of the range."""
    if reverse:
        return _scan(zs.order, start, -1, spec.above_min)
    return _scan(zs.order, start, 1, spec.below_max)


# --- selecting a range (ZRANGE's rank, score and lex forms) ---------------------------


def select_range(
    zs: ZSet, kind: int, bounds: Any, reverse: bool, offset: int, limit: int
) -> list[Item]:
    """The (score, member) items a range selects, in reply order."""
    n = len(zs)
    if kind == RANK:
        start, end = bounds
        if start < 0:
            start += n
        if end < 0:
            end += n
        start = max(start, 0)
        if start > end or start >= n:
            return []
        end = min(end, n - 1)
        if reverse:
            return _reversed(zs.items_between(n - 1 - end, n - start))
        return zs.items_between(start, end + 1)
    # BYSCORE and BYLEX: a negative offset walks off the end; a negative limit is no limit.
    if offset < 0 or limit == 0:
        return []
    if kind == SCORE:
        if offset > 0 and offset >= n:
            return []
        lo, hi = zs.score_span(bounds)
        if lo >= hi:
            return []
        first, stop = (hi - 1, lo - 1) if reverse else (lo, hi)
    else:
        first = lex_last(zs, bounds) if reverse else lex_first(zs, bounds)
        if first < 0:
            return []
        stop = -1
    start = first - offset if reverse else first + offset
    if not 0 <= start < n:
        return []
    if kind == LEX:
        stop = lex_walk(zs, bounds, start, reverse)
    count = start - stop if reverse else stop - start
    if 0 <= limit < count:
        count = limit
    if count <= 0:
        return []
    if reverse:
        return _reversed(zs.items_between(start - count + 1, start + 1))
    return zs.items_between(start, start + count)


def _reversed(items: list[Item]) -> list[Item]:
    items.reverse()
    return items


# --- registration ----------------------------------------------------------------------


def _encoding(value: ZSet, config: dict[str, Any]) -> bytes:
    return b"listpack" if value.listpack else b"skiplist"


def _dump(value: ZSet) -> Any:
    flat: list[Any] = []
    for score, member in value.items():
        flat.append(member)
        flat.append(score)
    return [value.listpack, flat]


def _load(data: Any) -> ZSet:
    listpack, flat = data
    scores = {bytes(flat[i]): float(flat[i + 1]) for i in range(0, len(flat), 2)}
    zs = from_scores(scores, listpack=False)
    zs.listpack = bool(listpack)
    return zs


values.register(ZSet, values.ValueType(name=b"zset", encoding=_encoding, dump=_dump, load=_load))
