"""The RDB codec without processes: CRC-64, LZF, the compact blobs, round trips, corruption."""

from __future__ import annotations

import math
import random
import struct
import time

import pytest

from persistence import lzf, packed, rdb
from persistence.crc64 import crc64, crc64_python
from persistence.rdb import RdbError
from persistence.rdb_reader import FileReader, Reader, load_payload

SAMPLE = [
    (0, b"s", rdb.STRING, b"hello", None),
    (0, b"n", rdb.STRING, b"-129", 1_900_000_000_000),
    (0, b"big", rdb.STRING, b"2147483648", None),
    (0, b"lead0", rdb.STRING, b"007", None),
    (0, b"bin", rdb.STRING, bytes(range(256)) * 70, None),
    (0, b"l", rdb.LIST, [b"a", b"", b"1", b"x" * 20000], None),
    (3, b"set", rdb.SET, [b"1", b"b", b"-3"], 5),
    (3, b"h", rdb.HASH, {b"f": b"v", b"n": b"12"}, None),
    (15, b"z", rdb.ZSET, [(b"a", 1.5), (b"b", -math.inf), (b"c", 1e-300)], None),
]


def _file(records: list[tuple[int, bytes, bytes, object, int | None]]) -> bytes:
    dbs: dict[int, list[tuple[bytes, bytes, object, int | None]]] = {}
    for db, key, kind, data, when in records:
        dbs.setdefault(db, []).append((key, kind, data, when))
    return rdb.encode_file([(b"redis-ver", b"7.0.15")], sorted(dbs.items()))


def test_crc64_matches_redis_check_value_and_the_python_fallback() -> None:
    assert crc64(b"123456789", 0) == 0xE9C6D914C4B8D9CA
    data = bytes(random.Random(1).randbytes(5000))
    assert crc64(data, 0) == crc64_python(data)
    assert crc64(data[1000:], crc64(data[:1000], 0)) == crc64(data, 0)


def test_lzf_literal_and_overlapping_back_reference() -> None:
    assert lzf.decompress(b"\x02abc", 3) == b"abc"
    # 'a', then a back-reference one byte back of 7 + 5 + 2 bytes: a repeating pattern.
    assert lzf.decompress(b"\x00a\xe0\x05\x00", 15) == b"a" * 15
    assert lzf.decompress(b"\x01ab\x20\x01", 5) == b"ababa"


@pytest.mark.parametrize("bad", [b"\x05ab", b"\x00a\xe0", b"\x20\x05", b"\x00a\x20\x00"])
def test_lzf_corrupt_input_is_refused(bad: bytes) -> None:
    with pytest.raises(lzf.LzfError):
        lzf.decompress(bad, 3)


def test_file_round_trip_keeps_every_type_db_and_expiry() -> None:
    reader = FileReader(_file(SAMPLE))
    got = [(r.db, r.key, r.kind, r.data, r.expire_ms) for r in reader.records()]
    assert got == [(db, key, kind, list(data.items()) if isinstance(data, dict) else data, when)
                   if kind != rdb.HASH else (db, key, kind, data, when)
                   for db, key, kind, data, when in SAMPLE]
    assert reader.aux == {b"redis-ver": b"7.0.15"}


def test_integers_use_the_integer_encoding_only_when_canonical() -> None:
    assert rdb.string(b"-129") == b"\xc1" + struct.pack("<h", -129)
    assert rdb.string(b"7") == b"\xc0\x07"
    assert rdb.string(b"007") == b"\x03007"
    assert rdb.string(b"2147483648") == b"\x0a2147483648"
    assert rdb.string(b"-0") == b"\x02-0"


def test_lengths_of_every_width() -> None:
    for n in (0, 63, 64, 16383, 16384, 2**32 - 1, 2**32, 2**40):
        assert Reader(rdb.length(n)).length() == (n, False)


def test_dump_payload_round_trip_and_footer_checks() -> None:
    payload = rdb.dump_payload(rdb.ZSET, [(b"m", 2.0)])
    assert rdb.payload_ok(payload)
    assert load_payload(payload) == (rdb.ZSET, [(b"m", 2.0)])
    flipped = payload[:3] + bytes((payload[3] ^ 1,)) + payload[4:]
    assert not rdb.payload_ok(flipped)
    newer = payload[:-10] + (11).to_bytes(2, "little")
    newer += crc64(newer, 0).to_bytes(8, "little")
    assert not rdb.payload_ok(newer)
    assert not rdb.payload_ok(b"\x00" * 9)


def _listpack(entries: list[bytes]) -> bytes:
    """A listpack of strings and 7-bit/13-bit/16-bit integers (enough encodings to test)."""
    body = b""
    for item in entries:
        if item.isdigit() and int(item) < 128:
            enc = bytes((int(item),))
        elif item.lstrip(b"-").isdigit() and -4096 <= int(item) < 4096:
            value = int(item) & 0x1FFF
            enc = bytes((0xC0 | value >> 8, value & 0xFF))
        elif item.lstrip(b"-").isdigit():
            enc = b"\xf1" + struct.pack("<h", int(item))
        elif len(item) < 64:
            enc = bytes((0x80 | len(item),)) + item
        else:
            enc = bytes((0xE0 | len(item) >> 8, len(item) & 0xFF)) + item
        size = len(enc)
        back = bytes((size,)) if size < 128 else bytes((size >> 7, (size & 127) | 128))
        body += enc + back
    return struct.pack("<IH", 7 + len(body), len(entries)) + body + b"\xff"


def _ziplist(entries: list[bytes]) -> bytes:
    body, previous, tail = b"", 0, 10
    for item in entries:
        prev = bytes((previous,)) if previous < 254 else b"\xfe" + struct.pack("<I", previous)
        if item.lstrip(b"-").isdigit() and 0 <= int(item) <= 12:
            enc = bytes((0xF1 + int(item),))
        elif item.lstrip(b"-").isdigit():
            enc = b"\xd0" + struct.pack("<i", int(item))
        elif len(item) < 64:
            enc = bytes((len(item),)) + item
        else:
            enc = bytes((0x40 | len(item) >> 8, len(item) & 0xFF)) + item
        tail = 10 + len(body)
        body += prev + enc
        previous = len(prev + enc)
    return struct.pack("<IIH", 11 + len(body), tail, len(entries)) + body + b"\xff"


ITEMS = [b"a", b"5", b"-3", b"5000", b"-70000", b"12", b"x" * 300, b""]


def test_listpack_and_ziplist_entries() -> None:
    assert packed.listpack_entries(_listpack(ITEMS[:4] + [b"300", b"x" * 300])) == ITEMS[:4] + [b"300", b"x" * 300]
    assert packed.ziplist_entries(_ziplist(ITEMS)) == ITEMS


def test_intset_and_zipmap() -> None:
    blob = struct.pack("<II", 4, 3) + struct.pack("<3i", -5, 7, 70000)
    assert packed.intset_members(blob) == [b"-5", b"7", b"70000"]
    with pytest.raises(packed.PackedError):
        packed.intset_members(struct.pack("<II", 4, 2) + struct.pack("<2i", 7, 7))
    zipmap = b"\x02\x02f1\x02\x00v1\x02f2\x02\x01v2X\xff"
    assert packed.zipmap_pairs(zipmap) == [b"f1", b"v1", b"f2", b"v2"]


def _record_file(rdb_type: int, body: bytes) -> bytes:
    data = b"REDIS0010" + bytes((rdb_type,)) + rdb.string(b"k") + body + b"\xff"
    return data + crc64(data, 0).to_bytes(8, "little")


@pytest.mark.parametrize("rdb_type, blob, expected", [
    (rdb.TYPE_LIST_ZIPLIST, _ziplist([b"a", b"7"]), (rdb.LIST, [b"a", b"7"])),
    (rdb.TYPE_HASH_ZIPLIST, _ziplist([b"f", b"v"]), (rdb.HASH, {b"f": b"v"})),
    (rdb.TYPE_ZSET_ZIPLIST, _ziplist([b"m", b"2"]), (rdb.ZSET, [(b"m", 2.0)])),
    (rdb.TYPE_HASH_LISTPACK, _listpack([b"f", b"-9"]), (rdb.HASH, {b"f": b"-9"})),
    (rdb.TYPE_ZSET_LISTPACK, _listpack([b"m", b"1"]), (rdb.ZSET, [(b"m", 1.0)])),
    (rdb.TYPE_SET_LISTPACK, _listpack([b"m", b"1"]), (rdb.SET, [b"m", b"1"])),
])
def test_compact_value_types(rdb_type: int, blob: bytes, expected: tuple[bytes, object]) -> None:
    (record,) = FileReader(_record_file(rdb_type, rdb.string(blob))).records()
    assert (record.kind, record.data) == expected


def test_quicklists_of_ziplists_and_listpacks_with_plain_nodes() -> None:
    v1 = rdb.length(2) + rdb.string(_ziplist([b"a"])) + rdb.string(_ziplist([b"b", b"3"]))
    (record,) = FileReader(_record_file(rdb.TYPE_LIST_QUICKLIST, v1)).records()
    assert record.data == [b"a", b"b", b"3"]
    v2 = rdb.length(2) + b"\x02" + rdb.string(_listpack([b"a"])) + b"\x01" + rdb.string(b"p" * 100)
    (record,) = FileReader(_record_file(rdb.TYPE_LIST_QUICKLIST_2, v2)).records()
    assert record.data == [b"a", b"p" * 100]


def test_streams_modules_and_duplicates_are_refused_with_a_reason() -> None:
    with pytest.raises(RdbError, match="stream"):
        list(FileReader(_record_file(rdb.TYPE_STREAM_LISTPACKS, b"\x00")).records())
    with pytest.raises(RdbError, match="duplicate"):
        list(FileReader(_record_file(rdb.TYPE_SET, rdb.length(2) + b"\x01a\x01a")).records())
    with pytest.raises(RdbError, match="NAN"):
        list(FileReader(_record_file(rdb.TYPE_ZSET, rdb.length(1) + b"\x01a\xfd")).records())


def test_empty_collections_are_skipped_in_files() -> None:
    reader = FileReader(_record_file(rdb.TYPE_LIST, b"\x00"))
    assert list(reader.records()) == [] and reader.skipped == 1


def test_bad_signature_version_and_checksum() -> None:
    good = _file(SAMPLE)
    with pytest.raises(RdbError, match="signature"):
        FileReader(b"RODIS0010")
    with pytest.raises(RdbError, match="version"):
        FileReader(b"REDIS0012\xff")
    with pytest.raises(RdbError, match="CRC"):
        list(FileReader(good[:-1] + bytes((good[-1] ^ 1,))).records())
    no_checksum = good[:-8] + b"\x00" * 8  # rdbchecksum no
    assert len(list(FileReader(no_checksum).records())) == len(SAMPLE)


def test_every_truncation_and_random_corruption_fails_cleanly() -> None:
    """Corrupt input (with a recomputed checksum, so the parser sees it) raises RdbError; it
    never hangs, crashes with another exception or allocates what it was told."""
    good = _file(SAMPLE)
    for cut in range(9, len(good) - 8, 97):
        with pytest.raises(RdbError):
            list(FileReader(good[:cut]).records())
    rng = random.Random(3)
    deadline = time.monotonic() + 10
    for _ in range(400):
        data = bytearray(good[:-8])
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(9, len(data))] = rng.randrange(256)
        blob = bytes(data) + crc64(bytes(data), 0).to_bytes(8, "little")
        try:
            list(FileReader(blob).records())
        except RdbError:
            pass
        assert time.monotonic() < deadline


def test_huge_declared_lengths_are_refused_before_allocating() -> None:
    huge = b"\x81" + (2**62).to_bytes(8, "big")
    for rdb_type in (rdb.TYPE_LIST, rdb.TYPE_SET, rdb.TYPE_HASH, rdb.TYPE_ZSET_2):
        with pytest.raises(RdbError):
            list(FileReader(_record_file(rdb_type, huge)).records())
    lzf_bomb = b"\xc3" + rdb.length(3) + b"\x81" + (2**40).to_bytes(8, "big") + b"\x00\x00\x00"
    with pytest.raises(RdbError, match="LZF"):
        list(FileReader(_record_file(rdb.TYPE_STRING, lzf_bomb)).records())
