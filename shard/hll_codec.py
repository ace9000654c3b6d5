"""Redis' HyperLogLog string representation, byte for byte as Redis 7.0 writes it.

A HyperLogLog is an ordinary string: a 16-byte header (``HYLL``, the encoding byte, three
unused bytes, the cached cardinality as 8 little-endian bytes whose top bit marks it stale)
followed by either 16384 registers of 6 bits packed LSB first (dense, 12288 bytes), or a run
length code (sparse) of three opcodes: ZERO ``00xxxxxx`` (1-64 zero registers), XZERO
``01xxxxxx yyyyyyyy`` (1-16384 zero registers) and VAL ``1vvvvvxx`` (1-4 registers holding
1-32).  Clients see these bytes through GET, DUMP and SETRANGE, so every edit here follows the
order and the merging rules of Redis' own, including what it does with corrupt input.

Pure Python, no I/O.  Whole-register work (counting, merging, converting) goes through
``bytes.translate`` and big-integer ORs so that it runs in C loops.
"""

from __future__ import annotations

import math
import struct

MAGIC = b"HYLL"
DENSE, SPARSE = 0, 1
HEADER = 16
P = 14
REGISTERS = 1 << P  # 16384
Q = 64 - P
DENSE_SIZE = HEADER + REGISTERS * 6 // 8  # 12304
VAL_MAX_VALUE, VAL_MAX_LEN, ZERO_MAX_LEN, XZERO_MAX_LEN = 32, 4, 64, 16384

_MASK64 = (1 << 64) - 1
_MURMUR_M = 0xC6A4A7935BD1E995
_SEED = 0xADC83B19
_ALPHA_INF = 0.721347520444481703680  # 0.5 / ln(2)

# A new, empty HLL: sparse, one XZERO opcode covering all registers.
EMPTY = MAGIC + bytes([SPARSE]) + bytes(11) + bytes([0x40 | ((REGISTERS - 1) >> 8), 0xFF])


def murmur64a(data: bytes) -> int:
    """MurmurHash64A of ``data`` with the seed Redis uses for HyperLogLogs."""
    size = len(data)
    h = (_SEED ^ (size * _MURMUR_M)) & _MASK64
    body = size - (size & 7)
    if body:
        for (k,) in struct.iter_unpack("<Q", memoryview(data)[:body]):
            k = (k * _MURMUR_M) & _MASK64
            k ^= k >> 47
            h ^= (k * _MURMUR_M) & _MASK64
            h = (h * _MURMUR_M) & _MASK64
    if size & 7:
        h ^= int.from_bytes(data[body:], "little")
        h = (h * _MURMUR_M) & _MASK64
    h ^= h >> 47
    h = (h * _MURMUR_M) & _MASK64
    return h ^ (h >> 47)


def pattern(element: bytes) -> tuple[int, int]:
    """(register index, run length of zeros + 1) that ``element`` stands for."""
    h = murmur64a(element)
    rest = (h >> P) | (1 << Q)
    return h & (REGISTERS - 1), (rest & -rest).bit_length()


def cache_valid(value: bytes | bytearray) -> bool:
    return not value[15] & 0x80


def cached(value: bytes) -> int:
    return int.from_bytes(value[8:16], "little")


def with_cardinality(value: bytes, card: int) -> bytes:
    return value[:8] + card.to_bytes(8, "little") + value[16:]


def is_valid_header(value: bytes) -> bool:
    """Redis' isHLLObjectOrReply test for a string value."""
    if len(value) < HEADER or value[:4] != MAGIC or value[4] > SPARSE:
        return False
    return not (value[4] == DENSE and len(value) != DENSE_SIZE)


# --- dense registers ------------------------------------------------------------------------


def dense_get(buf: bytes | bytearray, index: int) -> int:
    pos = HEADER + index * 6 // 8
    shift = index * 6 & 7
    high = buf[pos + 1] if pos + 1 < len(buf) else 0
    return ((buf[pos] >> shift) | (high << (8 - shift))) & 63


def dense_set(buf: bytearray, index: int, count: int) -> int:
    """Raise register ``index`` to ``count``: 1 when it changed, else 0."""
    pos = HEADER + index * 6 // 8
    shift = index * 6 & 7
    low = buf[pos]
    high = buf[pos + 1] if shift > 2 else 0
    if count <= ((low >> shift) | (high << (8 - shift))) & 63:
        return 0
    buf[pos] = (low & ~(63 << shift) & 0xFF) | ((count << shift) & 0xFF)
    if shift > 2:  # the register spills into the next byte
        buf[pos + 1] = (high & ~(63 >> (8 - shift)) & 0xFF) | (count >> (8 - shift))
    return 1


def _table(fn: object) -> bytes:
    return bytes(fn(x) for x in range(256))  # type: ignore[operator]


_AND63, _SHR2, _SHR4, _SHR6 = (_table(f) for f in (lambda x: x & 63, lambda x: x >> 2,
                                                   lambda x: x >> 4, lambda x: x >> 6))
_LOW2_SHL4, _LOW2_SHL6 = _table(lambda x: (x & 3) << 4), _table(lambda x: (x & 3) << 6)
_LOW4_SHL2, _LOW4_SHL4 = _table(lambda x: (x & 15) << 2), _table(lambda x: (x & 15) << 4)
_SHL2 = _table(lambda x: (x << 2) & 0xFF)


def _or(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") | int.from_bytes(b, "little")).to_bytes(len(a), "little")


def unpack_dense(packed: bytes | bytearray) -> bytes:
    """The 16384 register values (one byte each) of 12288 packed bytes."""
    b0, b1, b2 = bytes(packed[0::3]), bytes(packed[1::3]), bytes(packed[2::3])
    out = bytearray(REGISTERS)
    out[0::4] = b0.translate(_AND63)
    out[1::4] = _or(b0.translate(_SHR6), b1.translate(_LOW4_SHL2))
    out[2::4] = _or(b1.translate(_SHR4), b2.translate(_LOW2_SHL4))
    out[3::4] = b2.translate(_SHR2)
    return bytes(out)


def pack_dense(registers: bytes | bytearray) -> bytes:
    """12288 packed bytes of 16384 register values (each below 64)."""
    r0, r1 = bytes(registers[0::4]), bytes(registers[1::4])
    r2, r3 = bytes(registers[2::4]), bytes(registers[3::4])
    out = bytearray(REGISTERS * 6 // 8)
    out[0::3] = _or(r0, r1.translate(_LOW2_SHL6))
    out[1::3] = _or(r1.translate(_SHR2), r2.translate(_LOW4_SHL4))
    out[2::3] = _or(r2.translate(_SHR4), r3.translate(_SHL2))
    return bytes(out)


# --- sparse opcodes -------------------------------------------------------------------------


def _val(value: int, length: int) -> int:
    return 0x80 | ((value - 1) << 2) | (length - 1)


def _zeros(length: int) -> bytes:
    """The shortest opcode for a run of zero registers (as Redis splits a run)."""
    if length > ZERO_MAX_LEN:
        return bytes([0x40 | ((length - 1) >> 8), (length - 1) & 0xFF])
    return bytes([length - 1])


def _opcode(buf: bytes | bytearray, p: int, end: int) -> tuple[int, int, int]:
    """(registers covered, value, opcode length) of the opcode at ``p``."""
    op = buf[p]
    if op & 0x80:
        return (op & 3) + 1, ((op >> 2) & 31) + 1, 1
    if op & 0x40:
        low = buf[p + 1] if p + 1 < end else 0
        return (((op & 63) << 8) | low) + 1, 0, 2
    return (op & 63) + 1, 0, 1


def sparse_registers(buf: bytes | bytearray) -> bytes | None:
    """The register values of a sparse HLL; None if its runs do not cover exactly 16384."""
    registers = bytearray(REGISTERS)
    index, p, end = 0, HEADER, len(buf)
    while p < end:
        span, value, size = _opcode(buf, p, end)
        if value:
            if index + span > REGISTERS:
                break
            registers[index:index + span] = bytes((value,)) * span
        index += span
        p += size
    return bytes(registers) if index == REGISTERS else None


def sparse_to_dense(buf: bytes | bytearray) -> bytearray | None:
    """The dense form of a sparse HLL (the header kept, encoding changed); None if corrupt."""
    if buf[4] == DENSE:
        return bytearray(buf)
    registers = sparse_registers(buf)
    if registers is None:
        return None
    dense = bytearray(buf[:HEADER])
    dense[4] = DENSE
    dense += pack_dense(registers)
    return dense


def sparse_set(buf: bytearray, index: int, count: int, max_bytes: int) -> tuple[int, bytearray]:
    """Raise register ``index`` of a sparse HLL to ``count``, as Redis' hllSparseSet.

    Returns (1 changed / 0 unchanged / -1 corrupt, the value), which is a new dense value when
    the change needed more than ``max_bytes`` or a count above what VAL can hold.
    """
    if count > VAL_MAX_VALUE:
        return _promote(buf, index, count)
    end = len(buf)
    p, first, prev, span, size = HEADER, 0, -1, 0, 1
    while p < end:  # the hot loop of a sparse PFADD: _opcode inlined
        op = buf[p]
        if op & 0x80:
            span, size = (op & 3) + 1, 1
        elif op & 0x40:
            span, size = (((op & 63) << 8) | (buf[p + 1] if p + 1 < end else 0)) + 1, 2
        else:
            span, size = (op & 63) + 1, 1
        if index < first + span:
            break
        prev = p
        p += size
        first += span
    if span == 0 or p >= end:
        return -1, buf
    op = buf[p]
    current = 0
    is_val, is_xzero = bool(op & 0x80), (op & 0xC0) == 0x40
    if is_val:
        current = ((op >> 2) & 31) + 1
        if current >= count:
            return 0, buf
        if span == 1:
            buf[p] = _val(count, 1)
            return _merge_neighbours(buf, prev), buf
    elif not is_xzero and span == 1:
        buf[p] = _val(count, 1)
        return _merge_neighbours(buf, prev), buf
    last = first + span - 1
    seq = bytearray()
    if is_val:
        if index != first:
            seq.append(_val(current, index - first))
        seq.append(_val(count, 1))
        if index != last:
            seq.append(_val(current, last - index))
    else:
        if index != first:
            seq += _zeros(index - first)
        seq.append(_val(count, 1))
        if index != last:
            seq += _zeros(last - index)
    delta = len(seq) - size
    if delta > 0 and end + delta > max_bytes:
        return _promote(buf, index, count)
    buf[p:p + size] = seq
    return _merge_neighbours(buf, prev), buf


def _merge_neighbours(buf: bytearray, prev: int) -> int:
    """Join adjacent VAL opcodes of equal value, scanning five opcodes from ``prev``."""
    p = prev if prev >= 0 else HEADER
    end = len(buf)
    budget = 5
    while p < end and budget:
        budget -= 1
        op = buf[p]
        if not op & 0x80:
            p += 2 if op & 0x40 else 1
            continue
        if p + 1 < end and buf[p + 1] & 0x80 and (op >> 2) & 31 == (buf[p + 1] >> 2) & 31:
            length = (op & 3) + (buf[p + 1] & 3) + 2
            if length <= VAL_MAX_LEN:
                buf[p + 1] = _val(((op >> 2) & 31) + 1, length)
                del buf[p]
                end -= 1
                continue
        p += 1
    buf[15] |= 0x80
    return 1


def _promote(buf: bytearray, index: int, count: int) -> tuple[int, bytearray]:
    dense = sparse_to_dense(buf)
    if dense is None:
        return -1, buf
    dense_set(dense, index, count)
    return 1, dense


# --- counting -------------------------------------------------------------------------------


def registers_of(value: bytes | bytearray) -> bytes | None:
    """All register values of a (header-checked) HLL; None if a sparse one is corrupt."""
    if value[4] == DENSE:
        return unpack_dense(value[HEADER:])
    return sparse_registers(value)


def sparse_histogram(buf: bytes | bytearray) -> list[int] | None:
    """How many registers hold each value, from the runs (no overflow check, as Redis)."""
    histogram = [0] * 64
    index, p, end = 0, HEADER, len(buf)
    while p < end:
        span, value, size = _opcode(buf, p, end)
        histogram[value] += span
        index += span
        p += size
    return histogram if index == REGISTERS else None


def histogram_of(registers: bytes) -> list[int]:
    return [registers.count(value) for value in range(64)]


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if previous == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if previous == z:
            return z / 3


def estimate(histogram: list[int]) -> int:
    """The cardinality estimate Redis 7.0 computes (Ertl's improved estimator)."""
    m = float(REGISTERS)
    z = m * _tau((m - histogram[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histogram[j]
        z *= 0.5
    z += m * _sigma(histogram[0] / m)
    e = _ALPHA_INF * m * m / z
    whole = math.trunc(e)  # llroundl: halves away from zero
    return int(whole + (1 if e - whole >= 0.5 else 0))


def count(value: bytes | bytearray) -> int | None:
    """The estimate for one HLL (ignoring its cache); None if a sparse one is corrupt."""
    if value[4] == DENSE:
        return estimate(histogram_of(unpack_dense(value[HEADER:])))
    histogram = sparse_histogram(value)
    return None if histogram is None else estimate(histogram)


_LANE_HIGH = int.from_bytes(b"\x80" * REGISTERS, "little")
_ALL = (1 << (8 * REGISTERS)) - 1


def max_registers(a: bytes | bytearray, b: bytes | bytearray) -> bytes:
    """The larger of each pair of register values (each below 128), with lane-wise big-int
    arithmetic: bit 7 of a byte of ``(a | 0x80..) - b`` is set exactly where a >= b."""
    x, y = int.from_bytes(a, "little"), int.from_bytes(b, "little")
    keep_x = ((((x | _LANE_HIGH) - y) & _LANE_HIGH) >> 7) * 0xFF
    return ((x & keep_x) | (y & (keep_x ^ _ALL))).to_bytes(REGISTERS, "little")


def merge_into(registers: bytearray, value: bytes) -> bool:
    """Raise ``registers`` to the registers of ``value`` (Redis' hllMerge); False: corrupt."""
    if value[4] == DENSE:
        registers[:] = max_registers(registers, unpack_dense(value[HEADER:]))
        return True
    index, p, end = 0, HEADER, len(value)
    while p < end:
        span, level, size = _opcode(value, p, end)
        if level:
            if index + span > REGISTERS:
                break
            for i in range(index, index + span):
                if level > registers[i]:
                    registers[i] = level
        index += span
        p += size
    return index == REGISTERS


def decode_sparse(buf: bytes) -> bytes:
    """PFDEBUG DECODE's text: ``z:len``, ``Z:len`` and ``v:value,len`` per opcode."""
    parts = []
    p, end = HEADER, len(buf)
    while p < end:
        span, value, size = _opcode(buf, p, end)
        if value:
            parts.append(b"v:%d,%d" % (value, span))
        else:
            parts.append(b"%s:%d" % (b"Z" if size == 2 else b"z", span))
        p += size
    return b" ".join(parts)
