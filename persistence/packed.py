"""Readers for the compact blobs Redis stores inside RDB values: listpack, ziplist, intset and
zipmap.  Each returns the entries as ``bytes`` (integers as their decimal text, which is how
Redis hands them out) and checks every length against the blob, so a corrupt blob raises
:class:`PackedError` instead of reading out of bounds.
"""

from __future__ import annotations

import struct

_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I16 = struct.Struct("<h").unpack_from
_I32 = struct.Struct("<i").unpack_from
_I64 = struct.Struct("<q").unpack_from
_U32_BE = struct.Struct(">I").unpack_from


class PackedError(ValueError):
    pass


def _need(blob: bytes, pos: int, size: int) -> None:
    if pos + size > len(blob) or size < 0:
        raise PackedError("entry runs past the end of the blob")


# --- listpack ----------------------------------------------------------------------------


def listpack_entries(blob: bytes) -> list[bytes]:
    """Every entry of a listpack (``lpValidateIntegrity`` with the deep checks)."""
    if len(blob) < 7:
        raise PackedError("listpack shorter than its header")
    total, declared = _U32(blob, 0)[0], _U16(blob, 4)[0]
    if total != len(blob) or blob[-1] != 0xFF:
        raise PackedError("listpack size or terminator wrong")
    out: list[bytes] = []
    pos, end = 6, len(blob) - 1
    while pos < end:
        start = pos
        value, pos = _listpack_entry(blob, pos)
        size = pos - start
        backlen = _backlen_size(size)
        _need(blob, pos, backlen)
        if _decode_backlen(blob, pos, backlen) != size:
            raise PackedError("listpack back-length mismatch")
        pos += backlen
        out.append(value)
    if pos != end:
        raise PackedError("listpack entries overrun the terminator")
    if declared != 65535 and declared != len(out):
        raise PackedError("listpack entry count mismatch")
    return out


def _backlen_size(size: int) -> int:
    """How many bytes ``lpEncodeBacklen`` uses for an entry of ``size`` bytes."""
    if size <= 127:
        return 1
    if size < 16383:
        return 2
    if size < 2097151:
        return 3
    return 4 if size < 268435455 else 5


def _decode_backlen(blob: bytes, end: int, size: int) -> int:
    """The back-length stored in blob[end:end+size] (7 bits a byte, most significant first)."""
    value = 0
    for i in range(size):
        value = (value << 7) | (blob[end + i] & 127)
    return value


def _listpack_entry(blob: bytes, pos: int) -> tuple[bytes, int]:
    _need(blob, pos, 1)
    head = blob[pos]
    if head < 0x80:  # 7-bit unsigned integer
        return b"%d" % head, pos + 1
    if head < 0xC0:  # string up to 63 bytes
        size, pos = head & 0x3F, pos + 1
    elif head < 0xE0:  # 13-bit signed integer
        _need(blob, pos, 2)
        value = ((head & 0x1F) << 8) | blob[pos + 1]
        return b"%d" % (value - 8192 if value >= 4096 else value), pos + 2
    elif head < 0xF0:  # string up to 4095 bytes
        _need(blob, pos, 2)
        size, pos = ((head & 0x0F) << 8) | blob[pos + 1], pos + 2
    elif head == 0xF0:
        _need(blob, pos, 5)
        size, pos = _U32(blob, pos + 1)[0], pos + 5
    elif head == 0xF1:
        _need(blob, pos, 3)
        return b"%d" % _I16(blob, pos + 1)[0], pos + 3
    elif head == 0xF2:
        _need(blob, pos, 4)
        value = int.from_bytes(blob[pos + 1 : pos + 4], "little", signed=True)
        return b"%d" % value, pos + 4
    elif head == 0xF3:
        _need(blob, pos, 5)
        return b"%d" % _I32(blob, pos + 1)[0], pos + 5
    elif head == 0xF4:
        _need(blob, pos, 9)
        return b"%d" % _I64(blob, pos + 1)[0], pos + 9
    else:
        raise PackedError(f"bad listpack encoding byte {head:#x}")
    _need(blob, pos, size)
    return blob[pos : pos + size], pos + size


# --- ziplist -----------------------------------------------------------------------------


def ziplist_entries(blob: bytes) -> list[bytes]:
    """Every entry of a ziplist (``ziplistValidateIntegrity`` with the deep checks)."""
    if len(blob) < 11:
        raise PackedError("ziplist shorter than its header")
    total, tail, declared = _U32(blob, 0)[0], _U32(blob, 4)[0], _U16(blob, 8)[0]
    if total != len(blob) or blob[-1] != 0xFF or tail > total - 1:
        raise PackedError("ziplist size, tail or terminator wrong")
    out: list[bytes] = []
    pos, end, previous_size, last_start = 10, len(blob) - 1, 0, 10
    while pos < end:
        start = pos
        if blob[pos] < 0xFE:
            prevlen, pos = blob[pos], pos + 1
        else:
            _need(blob, pos, 5)
            prevlen, pos = _U32(blob, pos + 1)[0], pos + 5
        if prevlen != previous_size:
            raise PackedError("ziplist previous-length mismatch")
        value, pos = _ziplist_entry(blob, pos)
        out.append(value)
        previous_size, last_start = pos - start, start
    if pos != end or (out and tail != last_start) or (not out and tail != 10):
        raise PackedError("ziplist entries overrun the terminator or tail offset wrong")
    if declared != 65535 and declared != len(out):
        raise PackedError("ziplist entry count mismatch")
    return out


def _ziplist_entry(blob: bytes, pos: int) -> tuple[bytes, int]:
    _need(blob, pos, 1)
    head = blob[pos]
    kind = head >> 6
    if kind == 0:
        size, pos = head & 0x3F, pos + 1
    elif kind == 1:
        _need(blob, pos, 2)
        size, pos = ((head & 0x3F) << 8) | blob[pos + 1], pos + 2
    elif kind == 2:
        if head != 0x80:
            raise PackedError("bad ziplist string encoding")
        _need(blob, pos, 5)
        size, pos = _U32_BE(blob, pos + 1)[0], pos + 5
    elif head == 0xC0:
        _need(blob, pos, 3)
        return b"%d" % _I16(blob, pos + 1)[0], pos + 3
    elif head == 0xD0:
        _need(blob, pos, 5)
        return b"%d" % _I32(blob, pos + 1)[0], pos + 5
    elif head == 0xE0:
        _need(blob, pos, 9)
        return b"%d" % _I64(blob, pos + 1)[0], pos + 9
    elif head == 0xF0:
        _need(blob, pos, 4)
        return b"%d" % int.from_bytes(blob[pos + 1 : pos + 4], "little", signed=True), pos + 4
    elif head == 0xFE:
        _need(blob, pos, 2)
        return b"%d" % int.from_bytes(blob[pos + 1 : pos + 2], "little", signed=True), pos + 2
    elif 0xF1 <= head <= 0xFD:
        return b"%d" % ((head & 0x0F) - 1), pos + 1
    else:
        raise PackedError(f"bad ziplist encoding byte {head:#x}")
    _need(blob, pos, size)
    return blob[pos : pos + size], pos + size


# --- intset ------------------------------------------------------------------------------


def intset_members(blob: bytes) -> list[bytes]:
    """The members of an intset: strictly ascending integers of 2, 4 or 8 bytes."""
    if len(blob) < 8:
        raise PackedError("intset shorter than its header")
    width, count = _U32(blob, 0)[0], _U32(blob, 4)[0]
    if width not in (2, 4, 8) or 8 + width * count != len(blob):
        raise PackedError("intset encoding or length wrong")
    fmt = {2: "<%dh", 4: "<%di", 8: "<%dq"}[width] % count
    numbers = struct.unpack_from(fmt, blob, 8)
    if any(a >= b for a, b in zip(numbers, numbers[1:], strict=False)):
        raise PackedError("intset members not strictly ascending")
    return [b"%d" % n for n in numbers]


# --- zipmap (hashes of RDB files from Redis before 2.6) -----------------------------------


def zipmap_pairs(blob: bytes) -> list[bytes]:
    """Field, value, field, value ... of a zipmap."""
    if len(blob) < 2 or blob[-1] != 0xFF:
        raise PackedError("zipmap too short or not terminated")
    out: list[bytes] = []
    pos, end = 1, len(blob) - 1
    while pos < end:
        size, pos = _zipmap_len(blob, pos)
        is_value = len(out) % 2 == 1
        free = 0
        if is_value:
            _need(blob, pos, 1)
            free, pos = blob[pos], pos + 1
        _need(blob, pos, size + free)
        out.append(blob[pos : pos + size])
        pos += size + free
    if pos != end or len(out) % 2:
        raise PackedError("zipmap entries overrun the terminator")
    return out


def _zipmap_len(blob: bytes, pos: int) -> tuple[int, int]:
    _need(blob, pos, 1)
    if blob[pos] < 254:
        return blob[pos], pos + 1
    if blob[pos] == 254:
        _need(blob, pos, 5)
        return _U32(blob, pos + 1)[0], pos + 5
    raise PackedError("zipmap entry where the terminator should be")
