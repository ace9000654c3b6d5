"""The RDB format (version 10, as Redis 7.0 writes and reads it): constants and the writer.

A sans-I/O codec: functions turn values into ``bytes`` and back (``persistence.rdb_reader``);
files, shards and sockets are the callers' business.

Values cross this module in a neutral form, so it knows nothing of the shard's classes:

=========  ================================================
``string``  ``bytes``
``list``    a sequence of ``bytes``, head first
``set``     an iterable of ``bytes``
``hash``    a ``dict`` of field -> value (or (field, value) pairs)
``zset``    (member, score) pairs
=========  ================================================

The writer uses the plain encodings every Redis since 2.x loads (RDB_TYPE_LIST, SET, HASH and
ZSET_2); Redis converts them to its compact encodings while loading, as it does for its own
big collections.  Strings that are small integers get Redis' integer encoding.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

from persistence.crc64 import crc64

RDB_VERSION = 10
MAX_READ_VERSION = 11  # 7.2's files differ only by types we also read (set listpack)

# Value types
TYPE_STRING = 0
TYPE_LIST = 1
TYPE_SET = 2
TYPE_ZSET = 3
TYPE_HASH = 4
TYPE_ZSET_2 = 5
TYPE_MODULE = 6
TYPE_MODULE_2 = 7
TYPE_HASH_ZIPMAP = 9
TYPE_LIST_ZIPLIST = 10
TYPE_SET_INTSET = 11
TYPE_ZSET_ZIPLIST = 12
TYPE_HASH_ZIPLIST = 13
TYPE_LIST_QUICKLIST = 14
TYPE_STREAM_LISTPACKS = 15
TYPE_HASH_LISTPACK = 16
TYPE_ZSET_LISTPACK = 17
TYPE_LIST_QUICKLIST_2 = 18
TYPE_STREAM_LISTPACKS_2 = 19
TYPE_SET_LISTPACK = 20
TYPE_STREAM_LISTPACKS_3 = 21

# Opcodes
OP_FUNCTION2 = 245
OP_FUNCTION = 246
OP_MODULE_AUX = 247
OP_IDLE = 248
OP_FREQ = 249
OP_AUX = 250
OP_RESIZEDB = 251
OP_EXPIRETIME_MS = 252
OP_EXPIRETIME = 253
OP_SELECTDB = 254
OP_EOF = 255

# Special string encodings (length byte 11xxxxxx)
ENC_INT8 = 0
ENC_INT16 = 1
ENC_INT32 = 2
ENC_LZF = 3

STRING, LIST, SET, ZSET, HASH = b"string", b"list", b"set", b"zset", b"hash"

_PLAIN_TYPE = {STRING: TYPE_STRING, LIST: TYPE_LIST, SET: TYPE_SET, ZSET: TYPE_ZSET_2,
               HASH: TYPE_HASH}

_U32_BE = struct.Struct(">I").pack
_U64_BE = struct.Struct(">Q").pack
_U64_LE = struct.Struct("<Q").pack
_I64_LE = struct.Struct("<q").pack
_DOUBLE_LE = struct.Struct("<d").pack


class RdbError(ValueError):
    """The input is not a valid RDB file or value; the text says what is wrong."""


class EmptyKeyError(RdbError):
    """A collection with no elements: Redis skips such keys in files and refuses them in
    RESTORE."""


# --- encoding ------------------------------------------------------------------------------


def length(n: int) -> bytes:
    """Redis' variable-length encoding of a length."""
    if n < 64:
        return bytes((n,))
    if n < 16384:
        return bytes((0x40 | (n >> 8), n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + _U32_BE(n)
    return b"\x81" + _U64_BE(n)


def string(data: bytes) -> bytes:
    """A string, with the integer encoding when it is the canonical text of a small integer."""
    size = len(data)
    if 0 < size <= 11:
        number = _small_int(data)
        if number is not None:
            if -128 <= number <= 127:
                return bytes((0xC0 | ENC_INT8, number & 0xFF))
            if -32768 <= number <= 32767:
                return b"\xc1" + number.to_bytes(2, "little", signed=True)
            if -(1 << 31) <= number < (1 << 31):
                return b"\xc2" + number.to_bytes(4, "little", signed=True)
    if size < 64:
        return bytes((size,)) + data
    return length(size) + data


def _small_int(data: bytes) -> int | None:
    first = data[0]
    if not (48 <= first <= 57 or first == 45):  # a digit or '-'
        return None
    try:
        number = int(data)
    except ValueError:
        return None
    return number if b"%d" % number == data else None


def value_body(kind: bytes, data: Any) -> bytes:
    """The value's type byte and encoding, as a key record and a DUMP payload hold it."""
    if kind == STRING:
        return b"\x00" + string(data)
    parts = [bytes((_PLAIN_TYPE[kind],))]
    if kind == LIST or kind == SET:
        items = data if isinstance(data, list | tuple) else list(data)
        parts.append(length(len(items)))
        parts.extend(map(string, items))
    elif kind == HASH:
        pairs = list(data.items()) if isinstance(data, Mapping) else list(data)
        parts.append(length(len(pairs)))
        for field, value in pairs:
            parts.append(string(field))
            parts.append(string(value))
    elif kind == ZSET:
        pairs = list(data)
        parts.append(length(len(pairs)))
        for member, score in pairs:
            parts.append(string(member))
            parts.append(_DOUBLE_LE(score))
    else:
        raise RdbError(f"unknown value kind {kind!r}")
    return b"".join(parts)


def key_record(key: bytes, kind: bytes, data: Any, expire_ms: int | None = None,
               idle: int | None = None, freq: int | None = None) -> bytes:
    """One key of a database section: optional expiry and LRU/LFU hints, then type, key, value."""
    head = b""
    if expire_ms is not None:
        head = bytes((OP_EXPIRETIME_MS,)) + _I64_LE(expire_ms)
    if idle is not None:
        head += bytes((OP_IDLE,)) + length(idle)
    if freq is not None:
        head += bytes((OP_FREQ, freq & 0xFF))
    body = value_body(kind, data)
    return head + body[:1] + string(key) + body[1:]


def header(aux: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The magic, the version and the AUX fields."""
    parts = [b"REDIS%04d" % RDB_VERSION]
    for name, value in aux:
        parts += [bytes((OP_AUX,)), string(name), string(value)]
    return b"".join(parts)


def select_db(index: int, keys: int, expires: int) -> bytes:
    """SELECTDB and the RESIZEDB hint that open a database's section."""
    return bytes((OP_SELECTDB,)) + length(index) + bytes((OP_RESIZEDB,)) + length(keys) + length(expires)


def footer(crc_so_far: int) -> bytes:
    """EOF and the CRC-64 of everything before the checksum (``crc_so_far`` covers the bytes
    written before the EOF opcode)."""
    eof = bytes((OP_EOF,))
    return eof + _U64_LE(crc64(eof, crc_so_far))


def encode_file(aux: Iterable[tuple[bytes, bytes]],
                dbs: Iterable[tuple[int, list[tuple[bytes, bytes, Any, int | None]]]]) -> bytes:
    """A whole RDB file from (db index, [(key, kind, data, expire_ms), ...]) sections."""
    parts = [header(aux)]
    for index, records in dbs:
        if not records:
            continue
        expires = sum(1 for record in records if record[3] is not None)
        parts.append(select_db(index, len(records), expires))
        parts.extend(key_record(key, kind, data, when) for key, kind, data, when in records)
    body = b"".join(parts)
    return body + footer(crc64(body, 0))


# --- DUMP payloads -------------------------------------------------------------------------


def dump_payload(kind: bytes, data: Any) -> bytes:
    """The DUMP serialization: value, 2-byte RDB version, CRC-64 (both little-endian)."""
    body = value_body(kind, data) + RDB_VERSION.to_bytes(2, "little")
    return body + _U64_LE(crc64(body, 0))


def payload_ok(payload: bytes) -> bool:
    """Whether a RESTORE payload has a version we read and a matching checksum."""
    if len(payload) < 10:
        return False
    if int.from_bytes(payload[-10:-8], "little") > RDB_VERSION:
        return False
    return crc64(memoryview(payload)[:-8], 0) == int.from_bytes(payload[-8:], "little")
