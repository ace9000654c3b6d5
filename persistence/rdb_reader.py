"""Reading RDB files and DUMP payloads: every type and encoding Redis 7.0 writes.

Every length is checked against the bytes that remain before anything is allocated or
looped over, so corrupt or hostile input raises :class:`~persistence.rdb.RdbError` quickly and
never hangs or eats memory.  Values come out in the neutral form described in
``persistence.rdb``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from persistence import lzf, packed
from persistence import rdb as R
from persistence.crc64 import crc64
from persistence.rdb import EmptyKeyError, RdbError

_I64_LE = struct.Struct("<q").unpack_from
_U64_LE = struct.Struct("<Q").unpack_from
_U32_LE = struct.Struct("<I").unpack_from
_U32_BE = struct.Struct(">I").unpack_from
_U64_BE = struct.Struct(">Q").unpack_from
_DOUBLE_LE = struct.Struct("<d").unpack_from
LZF_MAX_RATIO = 100  # an LZF back-reference of 3 bytes yields at most 264


@dataclass(slots=True)
class Record:
    db: int
    key: bytes
    kind: bytes
    data: Any
    expire_ms: int | None = None
    idle: int | None = None  # seconds since the last access (LRU policies)
    freq: int | None = None  # LFU counter


class Reader:
    """A cursor over one buffer."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def take(self, size: int) -> bytes:
        pos = self.pos
        if size < 0 or pos + size > len(self.buf):
            raise RdbError("unexpected end of data")
        self.pos = pos + size
        return self.buf[pos : pos + size]

    def byte(self) -> int:
        pos = self.pos
        if pos >= len(self.buf):
            raise RdbError("unexpected end of data")
        self.pos = pos + 1
        return self.buf[pos]

    def length(self) -> tuple[int, bool]:
        """(value, is_special): a length, or with is_special the 11xxxxxx string encoding."""
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return _U32_BE(self.take(4))[0], False
        if first == 0x81:
            return _U64_BE(self.take(8))[0], False
        raise RdbError(f"unknown length encoding {first:#x}")

    def count(self, least_bytes: int = 1) -> int:
        """A number of elements, refused if the remaining bytes cannot hold that many."""
        n, special = self.length()
        if special:
            raise RdbError("element count is string-encoded")
        if n * least_bytes > len(self.buf) - self.pos:
            raise RdbError("element count larger than the data")
        return n

    def string(self) -> bytes:
        n, special = self.length()
        if not special:
            return self.take(n)
        if n == R.ENC_INT8:
            return b"%d" % int.from_bytes(self.take(1), "little", signed=True)
        if n == R.ENC_INT16:
            return b"%d" % int.from_bytes(self.take(2), "little", signed=True)
        if n == R.ENC_INT32:
            return b"%d" % int.from_bytes(self.take(4), "little", signed=True)
        if n == R.ENC_LZF:
            compressed, size = self.length()[0], self.length()[0]
            if size > compressed * LZF_MAX_RATIO + 64:
                raise RdbError("LZF string claims an impossible length")
            try:
                return lzf.decompress(self.take(compressed), size)
            except lzf.LzfError as exc:
                raise RdbError(f"Invalid LZF compressed string: {exc}") from None
        raise RdbError(f"unknown string encoding {n}")

    def text_double(self) -> float:
        size = self.byte()
        if size == 253:
            return math.nan
        if size == 254:
            return math.inf
        if size == 255:
            return -math.inf
        try:
            return float(self.take(size))
        except ValueError:
            raise RdbError("bad double") from None

    def binary_double(self) -> float:
        return float(_DOUBLE_LE(self.take(8))[0])

    # --- values ------------------------------------------------------------------------

    def value(self, rdb_type: int) -> tuple[bytes, Any]:
        """(kind, data) of a value of ``rdb_type``."""
        reader = _VALUE_READERS.get(rdb_type)
        if reader is None:
            if rdb_type in (R.TYPE_STREAM_LISTPACKS, R.TYPE_STREAM_LISTPACKS_2,
                            R.TYPE_STREAM_LISTPACKS_3):
                raise RdbError("stream keys are not supported by Atoll")
            if rdb_type in (R.TYPE_MODULE, R.TYPE_MODULE_2):
                raise RdbError("module keys are not supported by Atoll")
            raise RdbError(f"unknown value type {rdb_type}")
        try:
            kind, data = reader(self)
        except packed.PackedError as exc:
            raise RdbError(f"corrupt compact encoding: {exc}") from None
        return kind, data


def _check(kind: bytes, data: Any) -> tuple[bytes, Any]:
    if not data:
        raise EmptyKeyError("empty collection")
    return kind, data


def _unique(kind: bytes, items: list[bytes]) -> tuple[bytes, Any]:
    if len(set(items)) != len(items):
        raise RdbError(f"duplicate {kind.decode()} members")
    return _check(kind, items)


def _pairs_to_hash(flat: list[bytes]) -> tuple[bytes, Any]:
    if len(flat) % 2:
        raise RdbError("hash with an odd number of entries")
    fields = dict(zip(flat[0::2], flat[1::2], strict=True))
    if len(fields) * 2 != len(flat):
        raise RdbError("duplicate hash fields")
    return _check(R.HASH, fields)


def _pairs_to_zset(flat: list[bytes]) -> tuple[bytes, Any]:
    if len(flat) % 2:
        raise RdbError("sorted set with an odd number of entries")
    scores: dict[bytes, float] = {}
    for member, raw in zip(flat[0::2], flat[1::2], strict=True):
        try:
            score = float(raw)
        except ValueError:
            raise RdbError("bad score in a sorted set") from None
        if math.isnan(score):
            raise RdbError("Zset with NAN score detected")
        scores[member] = score
    if len(scores) * 2 != len(flat):
        raise RdbError("duplicate sorted set members")
    return _check(R.ZSET, list(scores.items()))


def _read_list(r: Reader) -> tuple[bytes, Any]:
    return _check(R.LIST, [r.string() for _ in range(r.count())])


def _read_set(r: Reader) -> tuple[bytes, Any]:
    return _unique(R.SET, [r.string() for _ in range(r.count())])


def _read_zset(r: Reader, binary: bool) -> tuple[bytes, Any]:
    n = r.count(2)
    scores: dict[bytes, float] = {}
    for _ in range(n):
        member = r.string()
        score = r.binary_double() if binary else r.text_double()
        if math.isnan(score):
            raise RdbError("Zset with NAN score detected")
        scores[member] = score
    if len(scores) != n:
        raise RdbError("duplicate sorted set members")
    return _check(R.ZSET, list(scores.items()))


def _read_hash(r: Reader) -> tuple[bytes, Any]:
    n = r.count(2)
    fields: dict[bytes, bytes] = {}
    for _ in range(n):
        field = r.string()
        fields[field] = r.string()
    if len(fields) != n:
        raise RdbError("duplicate hash fields")
    return _check(R.HASH, fields)


def _read_quicklist(r: Reader, version: int) -> tuple[bytes, Any]:
    items: list[bytes] = []
    for _ in range(r.count()):
        container = 2
        if version == 2:
            container, special = r.length()
            if special or container not in (1, 2):
                raise RdbError("Quicklist integrity check failed.")
        node = r.string()
        if not node:
            raise RdbError("empty quicklist node")
        if container == 1:  # a plain node holds one large element as is
            items.append(node)
        elif version == 2:
            items += packed.listpack_entries(node)
        else:
            items += packed.ziplist_entries(node)
    return _check(R.LIST, items)


_VALUE_READERS: dict[int, Any] = {
    R.TYPE_STRING: lambda r: (R.STRING, r.string()),
    R.TYPE_LIST: _read_list,
    R.TYPE_SET: _read_set,
    R.TYPE_ZSET: lambda r: _read_zset(r, binary=False),
    R.TYPE_ZSET_2: lambda r: _read_zset(r, binary=True),
    R.TYPE_HASH: _read_hash,
    R.TYPE_LIST_QUICKLIST: lambda r: _read_quicklist(r, 1),
    R.TYPE_LIST_QUICKLIST_2: lambda r: _read_quicklist(r, 2),
    R.TYPE_HASH_ZIPMAP: lambda r: _pairs_to_hash(packed.zipmap_pairs(r.string())),
    R.TYPE_LIST_ZIPLIST: lambda r: _check(R.LIST, packed.ziplist_entries(r.string())),
    R.TYPE_SET_INTSET: lambda r: _check(R.SET, packed.intset_members(r.string())),
    R.TYPE_SET_LISTPACK: lambda r: _unique(R.SET, packed.listpack_entries(r.string())),
    R.TYPE_ZSET_ZIPLIST: lambda r: _pairs_to_zset(packed.ziplist_entries(r.string())),
    R.TYPE_ZSET_LISTPACK: lambda r: _pairs_to_zset(packed.listpack_entries(r.string())),
    R.TYPE_HASH_ZIPLIST: lambda r: _pairs_to_hash(packed.ziplist_entries(r.string())),
    R.TYPE_HASH_LISTPACK: lambda r: _pairs_to_hash(packed.listpack_entries(r.string())),
}


# --- DUMP payloads -------------------------------------------------------------------------


def load_payload(payload: bytes) -> tuple[bytes, Any]:
    """(kind, data) of a RESTORE payload whose footer :func:`rdb.payload_ok` accepted."""
    reader = Reader(payload[:-10])
    return reader.value(reader.byte())


# --- files ---------------------------------------------------------------------------------


class FileReader:
    """Iterates the keys of a whole RDB file held in memory; ``aux`` collects its AUX fields
    and ``skipped`` counts empty collections, which Redis drops too."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 9 or data[:5] != b"REDIS" or not data[5:9].isdigit():
            raise RdbError("Wrong signature trying to load DB from file")
        self.version = int(data[5:9])
        if not 1 <= self.version <= R.MAX_READ_VERSION:
            raise RdbError(f"Can't handle RDB format version {self.version}")
        self.data = data
        self.aux: dict[bytes, bytes] = {}
        self.skipped = 0
        self.functions = 0
        self.libraries: list[bytes] = []
        self.end = 0

    def records(self) -> Iterator[Record]:
        r = Reader(self.data, 9)
        db = 0
        expire: int | None = None
        idle: int | None = None
        freq: int | None = None
        while True:
            op = r.byte()
            if op == R.OP_EOF:
                self._check_crc(r)
                self.end = r.pos  # where an AOF's commands start after an RDB preamble
                return
            if op == R.OP_SELECTDB:
                db = r.length()[0]
            elif op == R.OP_RESIZEDB:
                r.length()
                r.length()
            elif op == R.OP_EXPIRETIME_MS:
                expire = _I64_LE(r.take(8))[0]
            elif op == R.OP_EXPIRETIME:
                expire = _U32_LE(r.take(4))[0] * 1000
            elif op == R.OP_IDLE:
                idle = r.length()[0]
            elif op == R.OP_FREQ:
                freq = r.byte()
            elif op == R.OP_AUX:
                name = r.string()
                self.aux[name] = r.string()
            elif op == R.OP_FUNCTION2:
                self.libraries.append(r.string())  # a function library's code
                self.functions += 1
            elif op in (R.OP_MODULE_AUX, R.OP_FUNCTION):
                raise RdbError("module or pre-release function data are not supported by Atoll")
            else:
                key = r.string()
                try:
                    kind, data = r.value(op)
                except EmptyKeyError:
                    self.skipped += 1
                else:
                    yield Record(db, key, kind, data, expire, idle, freq)
                expire = idle = freq = None

    def _check_crc(self, r: Reader) -> None:
        if self.version < 5:
            return
        end = r.pos
        stored = _U64_LE(r.take(8))[0]
        if stored and stored != crc64(memoryview(self.data)[:end], 0):
            raise RdbError("RDB CRC error")
