"""LZF decompression, for the compressed strings of RDB files written by Redis.

The format is a sequence of runs, each introduced by a control byte: below 32 it is a literal
of ``ctrl + 1`` bytes; otherwise a back-reference of ``(ctrl >> 5) + 2`` bytes (a length of 7
continues in the next byte) copied from ``((ctrl & 31) << 8 | next) + 1`` bytes back in the
output.  Every read is bounds-checked, so corrupt input raises :class:`LzfError` and never
writes past the expected length.
"""

from __future__ import annotations


class LzfError(ValueError):
    pass


def decompress(data: bytes | memoryview, expected: int) -> bytes:
    """The ``expected`` bytes that ``data`` expands to."""
    src = bytes(data)
    out = bytearray(expected)
    ip = op = 0
    end = len(src)
    while ip < end:
        ctrl = src[ip]
        ip += 1
        if ctrl < 32:
            run = ctrl + 1
            if ip + run > end or op + run > expected:
                raise LzfError("literal run past the end")
            out[op : op + run] = src[ip : ip + run]
            ip += run
            op += run
            continue
        length = ctrl >> 5
        if length == 7:
            if ip >= end:
                raise LzfError("truncated back-reference length")
            length += src[ip]
            ip += 1
        if ip >= end:
            raise LzfError("truncated back-reference")
        ref = op - ((ctrl & 31) << 8) - src[ip] - 1
        ip += 1
        length += 2
        if ref < 0 or op + length > expected:
            raise LzfError("back-reference out of range")
        if ref + length <= op:
            out[op : op + length] = out[ref : ref + length]
        else:  # an overlapping copy repeats a pattern: copy it in growing slices
            while length:
                step = min(length, op - ref)
                out[op : op + step] = out[ref : ref + step]
                op += step
                length -= step
            continue
        op += length
    if op != expected:
        raise LzfError("decompressed length differs from the declared one")
    return bytes(out)
