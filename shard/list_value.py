"""The list value: a deque of bytes with the range, search and removal rules of Redis lists.

Pushes and pops at either end are O(1) and indexing is O(n/64), which is what a quicklist
gives Redis.  Redis 7.0 keeps every list in a quicklist (the listpack list encoding only
arrived in 7.2), so ``OBJECT ENCODING`` answers ``quicklist`` whatever
``list-max-listpack-size`` says; that setting only shapes the quicklist's nodes, which no
command can observe.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import islice
from typing import Any

from shard import values

LONG_MIN = -(1 << 63)


class ListValue(deque[bytes]):
    """A Redis list of bytes elements, head at the left."""

    __slots__ = ()

    def clamp(self, start: int, end: int) -> tuple[int, int]:
        """Redis' inclusive index range as (start, end) within the list; (0, -1) if empty."""
        length = len(self)
        if start < 0:
            start += length
        if end < 0:
            end += length
        if start < 0:
            start = 0
        if start > end or start >= length:
            return 0, -1
        return start, min(end, length - 1)

    def slice(self, start: int, end: int) -> list[bytes]:
        """Elements ``start..end`` (inclusive, clamped), walking in from the nearer end."""
        length = len(self)
        if end < start:
            return []
        if start == 0 and end == length - 1:
            return list(self)
        if start <= length - 1 - end:
            return list(islice(self, start, end + 1))
        out = list(islice(reversed(self), length - 1 - end, length - start))
        out.reverse()
        return out

    def trim(self, start: int, end: int) -> int:
        """Keep only ``start..end`` (clamped; end < start empties the list); the count removed."""
        length = len(self)
        kept = end - start + 1 if end >= start else 0
        if kept == 0:
            self.clear()
        elif kept < length // 2:
            survivors = self.slice(start, end)
            self.clear()
            self.extend(survivors)
        else:
            for _ in range(start):
                self.popleft()
            for _ in range(length - 1 - end):
                self.pop()
        return length - kept

    def positions(self, element: bytes, rank: int, count: int, maxlen: int) -> list[int]:
        """Indexes of LPOS matches: skip ``|rank| - 1`` matches (from the tail when rank < 0),
        keep ``count`` of them (0: all; -1: no COUNT option, one), look at ``maxlen`` elements
        (0: all)."""
        length = len(self)
        from_tail = rank < 0
        if rank == LONG_MIN:
            # Redis negates the rank in a C long: LONG_MIN stays negative, so every match
            # passes the rank test and the count test never ends the scan.
            rank, count = 1, (-1 if count == -1 else 0)
        rank = abs(rank)
        wanted = 1 if count == -1 else count
        scan = length if maxlen == 0 else min(maxlen, length)
        found: list[int] = []
        seen = 0
        for position, item in enumerate(islice(reversed(self) if from_tail else self, scan)):
            if item == element:
                seen += 1
                if seen >= rank:
                    found.append(length - 1 - position if from_tail else position)
                    if wanted and len(found) >= wanted:
                        break
        return found

    def remove_matches(self, element: bytes, count: int) -> int:
        """LREM: remove ``count`` matches from the head (from the tail when negative; all
        when 0); the number removed."""
        present = self.count(element)
        if present == 0:
            return 0
        removed = present if count == 0 else min(abs(count), present)
        if removed == present:
            kept = [item for item in self if item != element]
        elif count > 0:
            kept = _without_first(self, element, removed)
        else:
            kept = _without_first(reversed(self), element, removed)
            kept.reverse()
        self.clear()
        self.extend(kept)
        return removed


def _without_first(items: Iterable[bytes], element: bytes, limit: int) -> list[bytes]:
    kept: list[bytes] = []
    removed = 0
    for item in items:
        if removed < limit and item == element:
            removed += 1
        else:
            kept.append(item)
    return kept


def _encoding(value: ListValue, config: dict[str, Any]) -> bytes:
    return b"quicklist"


values.register(
    ListValue,
    values.ValueType(name=b"list", encoding=_encoding, dump=list, load=ListValue),
)
