"""Longest common subsequence for the LCS command.

The table of LCS lengths is kept as one bit-vector row per byte of ``a`` (Hyyrö's bit-parallel
algorithm on Python integers), so building it costs O(len(a) * len(b) / 64) machine words
instead of a Python loop per cell; ``length(i, j)`` reads any cell back with a popcount.  The
walk back through the table follows Redis' tie-breaking so ranges and the LCS string are the
same as Redis'.
"""

from __future__ import annotations

from typing import Any

from shard import errors
from shard.context import int_arg
from shard.errors import RedisError


class LcsTable:
    def __init__(self, a: bytes, b: bytes) -> None:
        self.a, self.b = a, b
        masks: dict[int, int] = {}
        for j, ch in enumerate(b):
            masks[ch] = masks.get(ch, 0) | (1 << j)
        full = (1 << len(b)) - 1
        row = full
        self.rows = [row]
        for ch in a:
            match = row & masks.get(ch, 0)
            row = ((row + match) | (row - match)) & full
            self.rows.append(row)

    def length(self, i: int, j: int) -> int:
        """LCS length of ``a[:i]`` and ``b[:j]``: the zero bits among the low ``j`` bits."""
        return j - (self.rows[i] & ((1 << j) - 1)).bit_count()


def _parse_options(options: list[bytes]) -> tuple[bool, bool, bool, int]:
    getidx = getlen = withmatchlen = False
    minmatchlen = 0
    i = 0
    while i < len(options):
        opt = options[i].upper()
        if opt == b"IDX":
            getidx = True
        elif opt == b"LEN":
            getlen = True
        elif opt == b"WITHMATCHLEN":
            withmatchlen = True
        elif opt == b"MINMATCHLEN" and i + 1 < len(options):
            minmatchlen = max(int_arg(options[i + 1]), 0)
            i += 1
        else:
            raise RedisError(errors.SYNTAX)
        i += 1
    if getlen and getidx:
        raise RedisError("ERR If you want both the length and indexes, please just use IDX.")
    return getidx, getlen, withmatchlen, minmatchlen


def lcs_compute(a: bytes, b: bytes, options: list[bytes], max_bulk: int) -> Any:
    getidx, getlen, withmatchlen, minmatchlen = _parse_options(options)
    if (len(a) + 1) * (len(b) + 1) * 4 > max_bulk:
        raise RedisError(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
        )
    table = LcsTable(a, b)
    total = table.length(len(a), len(b))
    if getlen:
        return total
    result, matches = _walk_back(table, minmatchlen, withmatchlen)
    if getidx:
        return {b"matches": matches, b"len": total}
    return result


def _walk_back(table: LcsTable, minmatchlen: int, withmatchlen: bool) -> tuple[bytes, list[Any]]:
    a, b = table.a, table.b
    alen = len(a)
    out = bytearray()
    matches: list[Any] = []
    i, j = len(a), len(b)
    a_start = alen  # alen means "no range open"
    a_end = b_start = b_end = 0
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            out.append(a[i - 1])
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            i -= 1
            j -= 1
        else:
            if table.length(i - 1, j) > table.length(i, j - 1):
                i -= 1
            else:
                j -= 1
            if a_start != alen:
                emit = True
        if emit:
            match_len = a_end - a_start + 1
            if minmatchlen == 0 or match_len >= minmatchlen:
                entry: list[Any] = [[a_start, a_end], [b_start, b_end]]
                if withmatchlen:
                    entry.append(match_len)
                matches.append(entry)
            a_start = alen
    out.reverse()
    return bytes(out), matches
