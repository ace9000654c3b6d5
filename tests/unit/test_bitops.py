"""Bitmap commands driven through a ShardExecutor: no processes, a fake clock."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from shard import errors, wire
from shard.actor import ShardExecutor
from shard.table import load_shard_commands
from tests.unit.shard_calls import Clock, call
from tests.unit.shard_calls import error as err

LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1


def resp(ex: ShardExecutor, resp3: bool, *argv: bytes) -> bytes:
    return ex.execute_batch([[wire.meta(0, resp3), [argv[0].lower(), *argv[1:]]]])[0]


def bits_of(value: bytes) -> list[int]:
    return [(byte >> (7 - i)) & 1 for byte in value for i in range(8)]


# --- the command table ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, arity, flags, keys, acl",
    [
        ("setbit", 4, ("write", "denyoom"), (1, 1, 1), ("@write", "@bitmap", "@slow")),
        ("getbit", 3, ("readonly", "fast"), (1, 1, 1), ("@read", "@bitmap", "@fast")),
        ("bitcount", -2, ("readonly",), (1, 1, 1), ("@read", "@bitmap", "@slow")),
        ("bitpos", -3, ("readonly",), (1, 1, 1), ("@read", "@bitmap", "@slow")),
        ("bitop", -4, ("write", "denyoom"), (2, -1, 1), ("@write", "@bitmap", "@slow")),
        ("bitfield", -2, ("write", "denyoom"), (1, 1, 1), ("@write", "@bitmap", "@slow")),
        ("bitfield_ro", -2, ("readonly", "fast"), (1, 1, 1), ("@read", "@bitmap", "@fast")),
    ],
)
def test_command_table_matches_redis(name: str, arity: int, flags: tuple[str, ...],
                                     keys: tuple[int, int, int], acl: tuple[str, ...]) -> None:  # fmt: skip
    spec = load_shard_commands()[name]
    assert (spec.arity, spec.flags, (spec.first_key, spec.last_key, spec.step), spec.acl) == (
        arity, flags, keys, acl)  # fmt: skip
    assert spec.group == "bitmap"


def test_bitop_key_positions() -> None:
    spec = load_shard_commands()["bitop"]
    assert spec.key_positions([b"bitop", b"and", b"d", b"a", b"b"]) == [2, 3, 4]


# --- SETBIT / GETBIT --------------------------------------------------------------------------


def test_setbit_creates_and_grows(ex: ShardExecutor) -> None:
    assert call(ex, "setbit", "k", 1, 1) == 0
    assert call(ex, "get", "k") == b"\x40"
    assert call(ex, "setbit", "k", 1, 1) == 1
    assert call(ex, "setbit", "k", 1, 0) == 1
    assert call(ex, "get", "k") == b"\x00"
    assert call(ex, "setbit", "k", 23, 1) == 0
    assert call(ex, "get", "k") == b"\x00\x00\x01"
    assert call(ex, "setbit", "new", 9, 0) == 0  # clearing a bit still creates the string
    assert call(ex, "get", "new") == b"\x00\x00"


def test_setbit_on_integer_string(ex: ShardExecutor) -> None:
    call(ex, "set", "n", "1")  # 0x31
    assert call(ex, "setbit", "n", 6, 1) == 0
    assert call(ex, "get", "n") == b"3"
    assert call(ex, "getbit", "n", 2) == 1
    assert call(ex, "getbit", "n", 7) == 1


def test_setbit_errors(ex: ShardExecutor) -> None:
    call(ex, "rpush", "list", "a")
    for offset in (-1, "x", "", "1.5", "+1", 4 * 1024 * 1024 * 1024, "#1"):
        assert err(call(ex, "setbit", "k", offset, 1)) == errors.BIT_OFFSET
        assert err(call(ex, "getbit", "k", offset)) == errors.BIT_OFFSET
    for value in (2, -1, "x", "", "1.0", "01", LONG_MAX):
        assert err(call(ex, "setbit", "k", 0, value)) == "ERR bit is not an integer or out of range"
    assert err(call(ex, "setbit", "list", 0, 1)) == errors.WRONGTYPE
    assert err(call(ex, "getbit", "list", 0)) == errors.WRONGTYPE
    # The offset is checked before the type, the bit value too.
    assert err(call(ex, "setbit", "list", -1, 1)) == errors.BIT_OFFSET
    assert err(call(ex, "setbit", "list", 0, 5)) == errors.BIT_VALUE
    assert call(ex, "exists", "k") == 0


def test_bit_offset_limit_follows_proto_max_bulk_len(clock: Clock) -> None:
    ex = ShardExecutor(0, {"databases": 16, "proto-max-bulk-len": 100}, clock=clock)
    assert call(ex, "setbit", "k", 799, 1) == 0
    assert len(call(ex, "get", "k")) == 100
    assert err(call(ex, "setbit", "k", 800, 1)) == errors.BIT_OFFSET
    assert err(call(ex, "bitfield", "k", "get", "u8", "#100")) == errors.BIT_OFFSET
    assert call(ex, "bitfield", "k", "get", "u8", "#99") == [1]


def test_setbit_keeps_ttl_and_skips_unchanged_writes(ex: ShardExecutor) -> None:
    call(ex, "set", "k", "a")
    call(ex, "pexpire", "k", 5000)
    assert call(ex, "setbit", "k", 100, 1) == 0
    assert call(ex, "pttl", "k") == 5000
    dirty = ex.ks.dirty
    assert call(ex, "setbit", "k", 100, 1) == 1
    assert call(ex, "setbit", "k", 0, 0) == 0
    assert ex.ks.dirty == dirty
    assert call(ex, "setbit", "k", 0, 1) == 0
    assert ex.ks.dirty == dirty + 1


def test_getbit(ex: ShardExecutor) -> None:
    assert call(ex, "getbit", "none", 0) == 0
    call(ex, "set", "k", "`")  # 0110 0000
    assert [call(ex, "getbit", "k", i) for i in range(10)] == [0, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert call(ex, "getbit", "k", 4 * 1024 * 1024 * 1024 - 1) == 0


def test_setbit_fuzzing_against_a_bit_list(ex: ShardExecutor) -> None:
    rng = random.Random(1)
    model: list[int] = []
    for _ in range(2000):
        offset, bit = rng.randrange(0, 300), rng.randint(0, 1)
        if offset >= len(model):
            model += [0] * ((offset // 8 + 1) * 8 - len(model))
        assert call(ex, "setbit", "k", offset, bit) == model[offset]
        model[offset] = bit
    assert bits_of(call(ex, "get", "k")) == model


# --- BITCOUNT ---------------------------------------------------------------------------------


def _model_count(value: bytes, start: int, end: int, in_bits: bool) -> int:
    bits = bits_of(value)
    total = len(bits) if in_bits else len(value)
    if start < 0 and end < 0 and start > end:
        return 0
    start, end = (start + total if start < 0 else start), (end + total if end < 0 else end)
    start, end = max(start, 0), min(max(end, 0), total - 1)
    if start > end:
        return 0
    if not in_bits:
        start, end = start * 8, end * 8 + 7
    return sum(bits[start : end + 1])


def test_bitcount(ex: ShardExecutor) -> None:
    assert call(ex, "bitcount", "none") == 0
    assert call(ex, "bitcount", "none", "bad", "args", "x", "y") == 0  # key first, as Redis
    call(ex, "set", "s", "foobar")
    assert call(ex, "bitcount", "s") == 26
    assert call(ex, "bitcount", "s", 0, 0) == 4
    assert call(ex, "bitcount", "s", 1, 1) == 6
    assert call(ex, "bitcount", "s", 1, 1, "byte") == 6
    assert call(ex, "bitcount", "s", 5, 30, "BIT") == 17
    assert call(ex, "bitcount", "s", 100, 200) == 0
    assert call(ex, "bitcount", "s", -1, -5) == 0
    assert call(ex, "bitcount", "s", -1, -5, "bad") == 0  # the start > end shortcut comes first
    assert err(call(ex, "bitcount", "s", 0)) == errors.SYNTAX
    assert err(call(ex, "bitcount", "s", 0, 1, "bit", "x")) == errors.SYNTAX
    assert err(call(ex, "bitcount", "s", 0, 1, "bits")) == errors.SYNTAX
    assert err(call(ex, "bitcount", "s", "x", 1)) == errors.NOT_INTEGER
    assert err(call(ex, "bitcount", "s", 0, "1x")) == errors.NOT_INTEGER
    call(ex, "set", "empty", "")
    assert call(ex, "bitcount", "empty") == 0
    assert call(ex, "bitcount", "empty", 0, -1, "bit") == 0
    call(ex, "rpush", "list", "a")
    assert err(call(ex, "bitcount", "list")) == errors.WRONGTYPE


def test_bitcount_fuzzing(ex: ShardExecutor) -> None:
    rng = random.Random(2)
    for _ in range(300):
        value = rng.randbytes(rng.randrange(1, 40))
        call(ex, "set", "s", value)
        assert call(ex, "bitcount", "s") == sum(bits_of(value))
        in_bits = rng.random() < 0.5
        span = len(value) * (8 if in_bits else 1) + 5
        start, end = rng.randrange(-span, span), rng.randrange(-span, span)
        argv: list[Any] = ["bitcount", "s", start, end] + (["bit"] if in_bits else [])
        assert call(ex, *argv) == _model_count(value, start, end, in_bits), argv


def test_bitcount_of_a_megabyte_is_fast(ex: ShardExecutor) -> None:
    value = random.Random(3).randbytes(1 << 20)
    call(ex, "set", "big", value)
    expected = sum(bin(b).count("1") for b in value[:1000])
    assert call(ex, "bitcount", "big", 0, 999) == expected
    best = min(_timed(lambda: call(ex, "bitcount", "big")) for _ in range(5))
    assert best < 0.025  # about 1 ms here; a per-byte Python loop would take ~100 ms
    best = min(_timed(lambda: call(ex, "bitcount", "big", 3, -3, "bit")) for _ in range(5))
    assert best < 0.025


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# --- BITPOS -----------------------------------------------------------------------------------


def _model_bitpos(value: bytes, bit: int, rest: list[int], in_bits: bool) -> int:
    bits = bits_of(value)
    total = len(bits) if in_bits else len(value)
    start = rest[0] if rest else 0
    end = rest[1] if len(rest) > 1 else total - 1
    start, end = (start + total if start < 0 else start), (end + total if end < 0 else end)
    start, end = max(start, 0), min(max(end, 0), total - 1)
    if start > end:
        return -1
    if not in_bits:
        start, end = start * 8, end * 8 + 7
    for i in range(start, end + 1):
        if bits[i] == bit:
            return i
    return end + 1 if bit == 0 and len(rest) < 2 else -1


def test_bitpos_basics(ex: ShardExecutor) -> None:
    assert call(ex, "bitpos", "none", 0) == 0
    assert call(ex, "bitpos", "none", 1) == -1
    assert call(ex, "bitpos", "none", 1, "junk", "args", "x", "y", "z") == -1
    call(ex, "set", "s", b"\xff\xf0\x00")
    assert call(ex, "bitpos", "s", 0) == 12
    assert call(ex, "bitpos", "s", 1, 2) == -1
    assert call(ex, "bitpos", "s", 1, 2, -1, "byte") == -1
    assert call(ex, "bitpos", "s", 1, 7, 15, "bit") == 7
    assert call(ex, "bitpos", "s", 0, 7, 11, "bit") == -1
    call(ex, "set", "ff", b"\xff\xff\xff")
    assert call(ex, "bitpos", "ff", 0) == 24  # no end given: zeros follow the string
    assert call(ex, "bitpos", "ff", 0, 0) == 24
    assert call(ex, "bitpos", "ff", 0, 0, -1) == -1  # an explicit end: the range has no zero
    assert call(ex, "bitpos", "ff", 0, 0, -1, "bit") == -1
    call(ex, "set", "zero", b"\x00\x00\x00")
    assert call(ex, "bitpos", "zero", 1) == -1
    call(ex, "set", "empty", "")
    assert call(ex, "bitpos", "empty", 0) == -1
    assert call(ex, "bitpos", "empty", 1) == -1


def test_bitpos_errors(ex: ShardExecutor) -> None:
    call(ex, "set", "s", "abc")
    call(ex, "rpush", "list", "a")
    for bit in (2, -1):
        assert err(call(ex, "bitpos", "s", bit)) == "ERR The bit argument must be 1 or 0."
    assert err(call(ex, "bitpos", "s", "x")) == errors.NOT_INTEGER
    assert err(call(ex, "bitpos", "none", 2)) == errors.BITPOS_BIT  # checked before the key
    assert err(call(ex, "bitpos", "list", 1)) == errors.WRONGTYPE
    assert err(call(ex, "bitpos", "s", 1, "x")) == errors.NOT_INTEGER
    assert err(call(ex, "bitpos", "s", 1, 0, "x")) == errors.NOT_INTEGER
    assert err(call(ex, "bitpos", "s", 1, 0, 1, "bits")) == errors.SYNTAX
    assert err(call(ex, "bitpos", "s", 1, 0, "x", "bits")) == errors.SYNTAX  # unit before end
    assert err(call(ex, "bitpos", "s", 1, 0, 1, "bit", "x")) == errors.SYNTAX


def test_bitpos_fuzzing(ex: ShardExecutor) -> None:
    rng = random.Random(4)
    for _ in range(400):
        length = rng.randrange(1, 30)
        value = bytes(rng.choice([0, 255, rng.randrange(256)]) for _ in range(length))
        call(ex, "set", "s", value)
        bit = rng.randint(0, 1)
        in_bits = rng.random() < 0.4
        span = length * (8 if in_bits else 1) + 3
        rest = [rng.randrange(-span, span) for _ in range(2 if in_bits else rng.randint(0, 2))]
        argv: list[Any] = ["bitpos", "s", bit, *rest] + (["bit"] if in_bits else [])
        assert call(ex, *argv) == _model_bitpos(value, bit, rest, in_bits), (value, argv)


def test_bitpos_in_a_megabyte(ex: ShardExecutor) -> None:
    call(ex, "set", "z", b"\x00" * (1 << 20) + b"\x01")
    call(ex, "set", "o", b"\xff" * (1 << 20))
    assert call(ex, "bitpos", "z", 1) == (8 << 20) + 7
    assert call(ex, "bitpos", "o", 0) == 8 << 20
    assert call(ex, "bitpos", "o", 0, 0, -1) == -1
    assert call(ex, "bitpos", "z", 0, 5, -1, "bit") == 5
    assert min(_timed(lambda: call(ex, "bitpos", "o", 0)) for _ in range(5)) < 0.05


# --- BITOP ------------------------------------------------------------------------------------


def test_bitop(ex: ShardExecutor) -> None:
    call(ex, "set", "a", b"\x01\x02\xff")
    call(ex, "set", "b", b"\x03")
    assert call(ex, "bitop", "and", "d", "a", "b") == 3
    assert call(ex, "get", "d") == b"\x01\x00\x00"
    assert call(ex, "bitop", "OR", "d", "a", "b", "none") == 3
    assert call(ex, "get", "d") == b"\x03\x02\xff"
    assert call(ex, "bitop", "Xor", "d", "a", "b") == 3
    assert call(ex, "get", "d") == b"\x02\x02\xff"
    assert call(ex, "bitop", "not", "d", "a") == 3
    assert call(ex, "get", "d") == b"\xfe\xfd\x00"
    assert call(ex, "bitop", "and", "a", "a") == 3  # dest may be a source
    assert call(ex, "get", "a") == b"\x01\x02\xff"
    call(ex, "set", "n", "12")  # integer-looking strings are plain bytes here
    assert call(ex, "bitop", "not", "d", "n") == 2
    assert call(ex, "get", "d") == bytes([0xFF ^ ord("1"), 0xFF ^ ord("2")])


def test_bitop_empty_result_deletes_dest(ex: ShardExecutor) -> None:
    call(ex, "rpush", "d", "x")
    call(ex, "set", "e", "")
    assert call(ex, "bitop", "or", "d", "none", "e") == 0
    assert call(ex, "exists", "d") == 0
    assert call(ex, "bitop", "not", "d", "e") == 0


def test_bitop_overwrites_dest_and_its_ttl(ex: ShardExecutor) -> None:
    call(ex, "rpush", "d", "x")
    call(ex, "pexpire", "d", 9000)
    call(ex, "set", "a", "abc")
    assert call(ex, "bitop", "or", "d", "a") == 3
    assert call(ex, "get", "d") == b"abc"
    assert call(ex, "pttl", "d") == -1


def test_bitop_errors(ex: ShardExecutor) -> None:
    call(ex, "set", "a", "abc")
    call(ex, "rpush", "list", "x")
    assert err(call(ex, "bitop", "nand", "d", "a")) == errors.SYNTAX
    assert err(call(ex, "bitop", "not", "d", "a", "a")) == errors.BITOP_NOT_ONE_KEY
    assert errors.BITOP_NOT_ONE_KEY == "ERR BITOP NOT must be called with a single source key."
    assert err(call(ex, "bitop", "and", "d", "a", "list")) == errors.WRONGTYPE
    assert err(call(ex, "bitop", "not", "d", "list")) == errors.WRONGTYPE
    assert call(ex, "exists", "d") == 0


def test_bitop_fuzzing(ex: ShardExecutor) -> None:
    rng = random.Random(5)
    for _ in range(200):
        values = [rng.randbytes(rng.randrange(0, 50)) for _ in range(rng.randint(1, 4))]
        for i, value in enumerate(values):
            call(ex, "set", f"s{i}", value)
        size = max(len(v) for v in values)
        padded = [v + bytes(size - len(v)) for v in values]
        op = rng.choice(["and", "or", "xor", "not"]) if len(values) == 1 else rng.choice(
            ["and", "or", "xor"])  # fmt: skip
        expected = bytearray(padded[0])
        for other in padded[1:]:
            for j in range(size):
                if op == "and":
                    expected[j] &= other[j]
                elif op == "or":
                    expected[j] |= other[j]
                else:
                    expected[j] ^= other[j]
        if op == "not":
            expected = bytearray(b ^ 0xFF for b in expected)
        assert call(ex, "bitop", op, "dest", *[f"s{i}" for i in range(len(values))]) == size
        assert call(ex, "get", "dest") == (bytes(expected) if size else None)


# --- BITFIELD ---------------------------------------------------------------------------------


def test_bitfield_signed_and_unsigned_set_get(ex: ShardExecutor) -> None:
    assert call(ex, "bitfield", "b", "set", "i8", 0, -100) == [0]
    assert call(ex, "bitfield", "b", "set", "i8", 0, 101) == [-100]
    assert call(ex, "bitfield", "b", "get", "i8", 0) == [101]
    assert call(ex, "bitfield", "u", "set", "u8", 0, 255, "get", "u8", 0) == [0, 255]
    assert call(ex, "bitfield", "u", "set", "u8", 0, 100) == [255]
    assert call(ex, "bitfield", "t", "set", "i8", 0, 255, "get", "i8", 0) == [0, -1]
    assert call(ex, "bitfield", "t", "set", "u2", 9, 3, "get", "u2", 9, "incrby", "u2", 9, 1) == [
        0, 3, 0]  # fmt: skip


def test_bitfield_hash_offsets_and_unaligned_fields(ex: ShardExecutor) -> None:
    assert call(ex, "bitfield", "h", "set", "u8", "#0", 65, "set", "u8", "#1", 66) == [0, 0]
    assert call(ex, "get", "h") == b"AB"
    assert call(ex, "bitfield", "h", "get", "u8", "#1", "get", "u8", 8) == [66, 66]
    assert call(ex, "bitfield", "x", "set", "u5", 7, 23) == [0]
    assert call(ex, "get", "x") == b"\x01\x70"
    assert call(ex, "bitfield", "x", "get", "i5", 7, "get", "u63", 0) == [-9, 0x170 << 47]


def test_bitfield_hash_offset_wraps_like_c(ex: ShardExecutor) -> None:
    # #n is multiplied by the width in a wrapping 64-bit multiplication, as Redis does.
    assert call(ex, "bitfield", "w", "set", "i4", "#4611686018427387905", 5) == [0]
    assert call(ex, "get", "w") == b"\x05"
    assert err(call(ex, "bitfield", "w", "get", "i8", "#9223372036854775807")) == errors.BIT_OFFSET


def test_bitfield_overflow_modes(ex: ShardExecutor) -> None:
    assert call(ex, "bitfield", "o", "set", "u8", 0, 255, "incrby", "u8", 0, 100) == [0, 99]
    assert call(ex, "bitfield", "o", "overflow", "sat", "incrby", "u8", 0, 1000) == [255]
    assert call(ex, "bitfield", "o", "overflow", "sat", "incrby", "u8", 0, -1000) == [0]
    assert call(ex, "bitfield", "o", "overflow", "fail", "incrby", "u8", 0, -1) == [None]
    assert call(ex, "bitfield", "o", "set", "i8", 0, 127, "incrby", "i8", 0, 1) == [0, -128]
    assert call(ex, "bitfield", "o", "overflow", "sat", "incrby", "i8", 0, -1000) == [-128]
    assert call(ex, "bitfield", "o", "overflow", "sat", "set", "i8", 0, 1000, "get", "i8", 0) == [
        -128, 127]  # fmt: skip
    assert call(ex, "bitfield", "o", "overflow", "fail", "set", "i8", 0, 128, "get", "i8", 0) == [
        None, 127]  # fmt: skip
    # OVERFLOW applies to the operations after it only.
    assert call(ex, "bitfield", "o", "incrby", "u2", 0, 5, "overflow", "fail", "incrby", "u2", 0,
                5, "overflow", "sat", "incrby", "u2", 0, 5) == [2, None, 3]  # fmt: skip
    assert call(ex, "bitfield", "o2", "set", "u8", 0, -1, "get", "u8", 0) == [0, 255]


def test_bitfield_64_bit_extremes(ex: ShardExecutor) -> None:
    argv: list[str | int] = ["bitfield", "e", "overflow", "sat", "set", "i64", 0, 5, "incrby", "i64", 0, LONG_MAX,
            "overflow", "wrap", "incrby", "i64", 0, LONG_MAX]  # fmt: skip
    assert call(ex, *argv) == [0, LONG_MAX, -2]
    assert call(ex, "bitfield", "e", "set", "i64", 0, LONG_MIN, "incrby", "i64", 0, -1) == [
        -2, LONG_MAX]  # fmt: skip
    argv = ["bitfield", "e2", "overflow", "sat", "set", "u63", 8, -1, "get", "u63", 8]
    assert call(ex, *argv) == [0, LONG_MAX]
    # Redis' overflow test wraps in int64: SAT of INT64_MIN into an i8 saturates to 127.
    argv = ["bitfield", "q", "overflow", "sat", "set", "i8", 0, LONG_MIN, "get", "i8", 0]
    assert call(ex, *argv) == [0, 127]


def _model_field(bits: int, signed: bool, value: int, incr: int, how: str) -> int | None:
    """value + incr stored in a field, with values and increments inside the field's range."""
    top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    bottom = -top - 1 if signed else 0
    result = value + incr
    if bottom <= result <= top:
        return result
    if how == "fail":
        return None
    if how == "sat":
        return top if result > top else bottom
    result &= (1 << bits) - 1
    return result - (1 << bits) if signed and result >> (bits - 1) else result


def test_bitfield_overflow_fuzzing(ex: ShardExecutor) -> None:
    rng = random.Random(6)
    for _ in range(1500):
        signed = rng.random() < 0.5
        bits = rng.randint(1, 64 if signed else 63)
        top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        bottom = -top - 1 if signed else 0
        value = rng.randint(bottom, top)
        incr = rng.randint(max(-top - 1, LONG_MIN), min(top, LONG_MAX))
        how = rng.choice(["wrap", "sat", "fail"])
        kind = ("i" if signed else "u") + str(bits)
        offset = rng.randrange(0, 40)
        call(ex, "bitfield", "f", "set", kind, offset, value)
        got = call(ex, "bitfield", "f", "overflow", how, "incrby", kind, offset, incr)
        expected = _model_field(bits, signed, value, incr, how)
        assert got == [expected], (kind, value, incr, how)
        stored = call(ex, "bitfield", "f", "get", kind, offset)
        assert stored == [value if expected is None else expected]


def test_bitfield_get_past_the_end_reads_zeros(ex: ShardExecutor) -> None:
    call(ex, "set", "s", b"\xff")
    assert call(ex, "bitfield", "s", "get", "u16", 0, "get", "i8", 4, "get", "u8", 1000) == [
        0xFF00, -16, 0]  # fmt: skip
    assert call(ex, "bitfield", "none", "get", "i64", 0) == [0]
    assert call(ex, "exists", "none") == 0
    call(ex, "set", "bits", "1")
    assert call(ex, "bitfield", "bits", "get", "u1", 0) == [0]


def test_bitfield_regression_3564(ex: ShardExecutor) -> None:
    for _ in range(3):
        call(ex, "del", "m")
        argv: list[str | int] = [
            "bitfield",
            "m",
            "set",
            "i8",
            0,
            10,
            "set",
            "i8",
            64,
            10,
            "incrby",
            "i8",
            10,
            99900,
        ]
        assert call(ex, *argv) == [0, 0, 60]


def test_bitfield_grows_the_string_even_when_every_write_fails(ex: ShardExecutor) -> None:
    dirty = ex.ks.dirty
    assert call(ex, "bitfield", "g", "overflow", "fail", "incrby", "u2", 100, 10) == [None]
    assert call(ex, "strlen", "g") == 13
    assert ex.ks.dirty == dirty  # Redis counts no change, although the key now exists


def test_bitfield_dirty_counts_changes(ex: ShardExecutor) -> None:
    dirty = ex.ks.dirty
    call(ex, "bitfield", "d", "set", "i5", 0, 0)
    assert ex.ks.dirty == dirty + 1
    call(ex, "bitfield", "d", "set", "i5", 0, 0)
    assert ex.ks.dirty == dirty + 1
    call(ex, "bitfield", "d", "set", "i5", 0, 1, "set", "i5", 0, 1, "set", "i5", 2, 3)
    assert ex.ks.dirty == dirty + 3  # two of the three writes changed bits
    call(ex, "bitfield", "d", "set", "i5", 0, 1, "set", "i5", 8, 3)
    assert ex.ks.dirty == dirty + 5  # the string grew: every write counts
    call(ex, "bitfield", "d", "set", "i5", 90, 0)
    assert ex.ks.dirty == dirty + 6


def test_bitfield_keeps_ttl(ex: ShardExecutor) -> None:
    call(ex, "set", "k", "a")
    call(ex, "pexpire", "k", 5000)
    call(ex, "bitfield", "k", "incrby", "u8", 100, 1)
    assert call(ex, "pttl", "k") == 5000


def test_bitfield_errors(ex: ShardExecutor) -> None:
    call(ex, "rpush", "list", "a")
    for kind in ("u64", "i65", "i0", "u0", "x8", "I8", "", "i", "i08", "i+8", "u-1"):
        assert err(call(ex, "bitfield", "k", "get", kind, 0)) == errors.BITFIELD_TYPE
    assert errors.BITFIELD_TYPE == (
        "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported "
        "but i64 is.")  # fmt: skip
    assert call(ex, "bitfield", "k", "get", b"i8\x00x", 0) == [0]  # read as a C string
    for offset in ("-1", "#-1", "x", "#", "##1", "1.0", "4294967296"):
        assert err(call(ex, "bitfield", "k", "get", "u8", offset)) == errors.BIT_OFFSET
    assert err(call(ex, "bitfield", "k", "set", "u8", 0, "x")) == errors.NOT_INTEGER
    assert (
        err(call(ex, "bitfield", "k", "overflow", "bad")) == "ERR Invalid OVERFLOW type specified"
    )
    for argv in (["get", "u8"], ["set", "u8", 0], ["incrby"], ["overflow"], ["bogus", 1, 2]):
        assert err(call(ex, "bitfield", "k", *argv)) == errors.SYNTAX
    # Every operation is parsed before anything runs.
    assert (
        err(call(ex, "bitfield", "k", "set", "u8", 0, 1, "get", "u64", 0)) == errors.BITFIELD_TYPE
    )
    assert call(ex, "exists", "k") == 0
    # The type check comes after parsing.
    assert err(call(ex, "bitfield", "list", "get", "u8", 0)) == errors.WRONGTYPE
    assert err(call(ex, "bitfield", "list", "set", "u8", 0, 1)) == errors.WRONGTYPE
    assert err(call(ex, "bitfield", "list", "get", "u99", 0)) == errors.BITFIELD_TYPE
    assert call(ex, "bitfield", "k") == []
    assert err(call(ex, "bitfield", "list")) == errors.WRONGTYPE


def test_bitfield_ro(ex: ShardExecutor) -> None:
    call(ex, "bitfield", "b", "set", "u8", 0, 100)
    assert call(ex, "bitfield_ro", "b", "get", "u8", 0, "overflow", "sat") == [100]
    assert call(ex, "bitfield_ro", "b") == []
    message = "ERR BITFIELD_RO only supports the GET subcommand"
    assert err(call(ex, "bitfield_ro", "b", "set", "u8", 0, 1, "get", "u8", 0)) == message
    assert err(call(ex, "bitfield_ro", "b", "incrby", "u8", 0, 1)) == message
    assert err(call(ex, "bitfield_ro", "b", "incrby", "u64", 0, 1)) == errors.BITFIELD_TYPE
    call(ex, "rpush", "list", "a")
    assert err(call(ex, "bitfield_ro", "list", "set", "u8", 0, 1)) == message
    assert err(call(ex, "bitfield_ro", "list", "get", "u8", 0)) == errors.WRONGTYPE
    assert call(ex, "bitfield", "b", "get", "u8", 0) == [100]


def test_bitfield_fail_is_a_null_in_both_protocols(ex: ShardExecutor) -> None:
    argv = [b"bitfield", b"n", b"overflow", b"fail", b"incrby", b"u2", b"0", b"9"]
    assert resp(ex, False, *argv) == b"*1\r\n$-1\r\n"
    assert resp(ex, True, *argv) == b"*1\r\n_\r\n"
