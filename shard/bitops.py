"""Bitmap commands on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD(_RO).

Strings are immutable ``bytes``; a write builds the new value and stores it.  Bit 0 is the
most significant bit of the first byte.  Counting and searching turn the byte range into one
Python int (``int.from_bytes``) so the work happens in C: a 1 MB BITCOUNT costs about a
millisecond.  Where Redis' C arithmetic wraps at 64 bits (``#`` offsets, BITFIELD overflow
checks) the same wrap is reproduced, because clients can observe it.
"""

from __future__ import annotations

from typing import Any

from shard import errors
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.notify import GENERIC, STRING
from shard.numbers import string2ll
from shard.table import command

_M64 = (1 << 64) - 1
_DEFAULT_MAX_BULK = 512 * 1024 * 1024


def _s64(value: int) -> int:
    """``value`` as C's int64_t after unsigned wrap-around."""
    value &= _M64
    return value - (1 << 64) if value >> 63 else value


def _cword(raw: bytes) -> bytes:
    # Redis compares option words with strcasecmp, which stops at the first NUL byte.
    return raw.split(b"\0", 1)[0].lower()


def _bit_offset(ctx: Ctx, raw: bytes, bits: int = 0) -> int:
    """A bit offset below proto-max-bulk-len bytes; ``#n`` means ``n * bits`` when bits > 0."""
    hashed = bits > 0 and raw[:1] == b"#"
    offset = string2ll(raw[1:] if hashed else raw)
    if offset is None:
        raise RedisError(errors.BIT_OFFSET)
    if hashed:
        offset = _s64(offset * bits)  # long long multiplication, wrapping as in C
    if offset < 0 or offset >> 3 >= ctx.config.get("proto-max-bulk-len", _DEFAULT_MAX_BULK):
        raise RedisError(errors.BIT_OFFSET)
    return offset


def _is_bit_unit(raw: bytes) -> bool:
    """BIT (True) or BYTE (False); anything else is a syntax error."""
    word = _cword(raw)
    if word == b"bit":
        return True
    if word == b"byte":
        return False
    raise RedisError(errors.SYNTAX)


def _clamp(start: int, end: int, total: int) -> tuple[int, int]:
    """Redis' index rules for BITCOUNT/BITPOS: negatives count from the end, then clamp."""
    if start < 0:
        start += total
    if end < 0:
        end += total
    start = max(start, 0)
    end = max(end, 0)
    if end >= total:
        end = total - 1
    return start, end


# --- SETBIT / GETBIT --------------------------------------------------------------------------


@command(
    "SETBIT key offset value",
    4,
    "write denyoom",
    (1, 1, 1),
    acl="@write @bitmap @slow",
    group="bitmap",
    since="2.2.0",
    summary="Sets or clears the bit at offset in the string value stored at key",
)
def setbit(ctx: Ctx, args: list[bytes]) -> Any:
    """SETBIT key offset value -> the bit's old value; the string grows with zero bytes."""
    key = args[0]
    offset = _bit_offset(ctx, args[1])
    on = string2ll(args[2])
    if on is None or on & ~1:
        raise RedisError(errors.BIT_VALUE)
    current = ctx.lookup_string(key)
    index, shift = offset >> 3, 7 - (offset & 7)
    if current is not None and index < len(current):
        byte = current[index]
        old = (byte >> shift) & 1
        if old == on:
            return old  # nothing changes: Redis does not touch the key either
        updated = current[:index] + bytes((byte ^ (1 << shift),)) + current[index + 1 :]
    else:
        old = 0
        base = current or b""
        updated = base + bytes(index - len(base)) + bytes((on << shift,))
    ctx.ks.set(ctx.db, key, updated, keep_ttl=True)
    ctx.notify(STRING, b"setbit", key)
    return old


@command(
    "GETBIT key offset",
    3,
    "readonly fast",
    (1, 1, 1),
    acl="@read @bitmap @fast",
    group="bitmap",
    since="2.2.0",
    summary="Returns the bit value at offset in the string value stored at key",
)
def getbit(ctx: Ctx, args: list[bytes]) -> Any:
    """GETBIT key offset -> 0 or 1; bits past the end (or of a missing key) are 0."""
    offset = _bit_offset(ctx, args[1])
    value = ctx.lookup_string(args[0])
    index = offset >> 3
    if value is None or index >= len(value):
        return 0
    return (value[index] >> (7 - (offset & 7))) & 1


# --- BITCOUNT / BITPOS ------------------------------------------------------------------------


def _count_ones(value: bytes, first: int, last: int) -> int:
    """Set bits between bit indexes ``first`` and ``last`` (inclusive, inside the string)."""
    b0, b1 = first >> 3, last >> 3
    view = memoryview(value)[b0 : b1 + 1] if b0 or b1 + 1 < len(value) else value
    count = int.from_bytes(view, "big").bit_count()
    # The edge bytes may hold bits outside the range: take their ones back out.
    if first & 7:
        count -= (value[b0] >> (8 - (first & 7))).bit_count()
    if last & 7 != 7:
        count -= (value[b1] & ((1 << (7 - (last & 7))) - 1)).bit_count()
    return count


def _find_bit(value: bytes, bit: int, first: int, last: int) -> int:
    """The first bit equal to ``bit`` between ``first`` and ``last`` (inclusive), or -1."""
    b0, b1 = first >> 3, last >> 3
    view = memoryview(value)[b0 : b1 + 1] if b0 or b1 + 1 < len(value) else value
    bits = int.from_bytes(view, "big") >> (7 - (last & 7))
    width = last - first + 1
    mask = (1 << width) - 1
    bits = bits & mask if bit else ~bits & mask
    if not bits:
        return -1
    return first + width - bits.bit_length()


@command(
    "BITCOUNT key [start end [BYTE | BIT]]",
    -2,
    "readonly",
    (1, 1, 1),
    acl="@read @bitmap @slow",
    group="bitmap",
    since="2.6.0",
    summary="Count set bits in a string",
)
def bitcount(ctx: Ctx, args: list[bytes]) -> Any:
    """BITCOUNT key [start end [BYTE | BIT]] -> the number of set bits in the range."""
    value = ctx.lookup_string(args[0])
    if value is None:
        return 0  # before any argument is looked at, as in Redis
    if len(args) == 1:
        return int.from_bytes(value, "big").bit_count()
    if len(args) not in (3, 4):
        raise RedisError(errors.SYNTAX)
    start, end = int_arg(args[1]), int_arg(args[2])
    if start < 0 and end < 0 and start > end:
        return 0
    in_bits = len(args) == 4 and _is_bit_unit(args[3])
    start, end = _clamp(start, end, len(value) * 8 if in_bits else len(value))
    if start > end:
        return 0
    if not in_bits:
        start, end = start * 8, end * 8 + 7
    return _count_ones(value, start, end)


@command(
    "BITPOS key bit [start [end [BYTE | BIT]]]",
    -3,
    "readonly",
    (1, 1, 1),
    acl="@read @bitmap @slow",
    group="bitmap",
    since="2.8.7",
    summary="Find first bit set or clear in a string",
)
def bitpos(ctx: Ctx, args: list[bytes]) -> Any:
    """BITPOS key bit [start [end [BYTE | BIT]]] -> the first bit equal to ``bit``, or -1."""
    bit = int_arg(args[1])
    if bit not in (0, 1):
        raise RedisError(errors.BITPOS_BIT)
    value = ctx.lookup_string(args[0])
    if value is None:
        return -1 if bit else 0  # a missing key is an endless run of zeros
    size = len(value)
    end_given = False
    in_bits = False
    if len(args) == 2:
        start, end = 0, size - 1
    elif len(args) <= 5:
        start = int_arg(args[2])
        if len(args) == 5:
            in_bits = _is_bit_unit(args[4])
        if len(args) >= 4:
            end = int_arg(args[3])
            end_given = True
        else:
            end = size - 1
        start, end = _clamp(start, end, size * 8 if in_bits else size)
    else:
        raise RedisError(errors.SYNTAX)
    if start > end:
        return -1
    if not in_bits:
        start, end = start * 8, end * 8 + 7
    found = _find_bit(value, bit, start, end)
    if found < 0 and bit == 0 and not end_given:
        # Without an explicit end the string counts as padded with zeros on the right.
        return end + 1
    return found


# --- BITOP ------------------------------------------------------------------------------------

_BITOPS = {b"and": 0, b"or": 1, b"xor": 2, b"not": 3}


@command(
    "BITOP operation destkey key [key ...]",
    -4,
    "write denyoom",
    (2, -1, 1),
    acl="@write @bitmap @slow",
    group="bitmap",
    since="2.6.0",
    summary="Perform bitwise operations between strings",
)
def bitop(ctx: Ctx, args: list[bytes]) -> Any:
    """BITOP AND | OR | XOR | NOT destkey key [key ...] -> the length of the result."""
    op = _BITOPS.get(_cword(args[0]))
    if op is None:
        raise RedisError(errors.SYNTAX)
    if op == 3 and len(args) != 3:
        raise RedisError(errors.BITOP_NOT_ONE_KEY)
    sources = []
    for key in args[2:]:
        value = ctx.lookup(key)
        if value is not None and type(value) is not bytes:
            raise RedisError(errors.WRONGTYPE)
        sources.append(value or b"")
    size = max(len(value) for value in sources)
    dest = args[1]
    if size == 0:
        if ctx.ks.delete(ctx.db, dest):
            ctx.notify(GENERIC, b"del", dest)
        return 0
    # Shorter strings count as padded with zero bytes on the right.
    numbers = [int.from_bytes(value, "big") << (8 * (size - len(value))) for value in sources]
    result = numbers[0]
    if op == 0:
        for number in numbers[1:]:
            result &= number
    elif op == 1:
        for number in numbers[1:]:
            result |= number
    elif op == 2:
        for number in numbers[1:]:
            result ^= number
    else:
        result = ~result & ((1 << (8 * size)) - 1)
    ctx.ks.set(ctx.db, dest, result.to_bytes(size, "big"))
    ctx.notify(STRING, b"set", dest)
    return size


# --- BITFIELD ---------------------------------------------------------------------------------

GET, SET, INCRBY = 0, 1, 2
WRAP, SAT, FAIL = 0, 1, 2
_SUBCOMMANDS = {b"get": (GET, 2), b"set": (SET, 3), b"incrby": (INCRBY, 3)}
_OVERFLOWS = {b"wrap": WRAP, b"sat": SAT, b"fail": FAIL}

# One parsed operation: (opcode, signed, bits, offset, value, overflow behaviour).
Op = tuple[int, bool, int, int, int, int]


def _bitfield_type(raw: bytes) -> tuple[bool, int]:
    """``i1``..``i64`` or ``u1``..``u63`` -> (signed, bits)."""
    sign = raw[:1]
    # The width is read as a C string: a NUL byte ends it.
    bits = string2ll(raw[1:].split(b"\0", 1)[0]) if sign in (b"i", b"u") else None
    if bits is None or bits < 1 or bits > (64 if sign == b"i" else 63):
        raise RedisError(errors.BITFIELD_TYPE)
    return sign == b"i", bits


def parse_bitfield(ctx: Ctx, args: list[bytes]) -> tuple[list[Op], int]:
    """The operations of a BITFIELD call and the highest bit a write reaches (-1: none)."""
    ops: list[Op] = []
    overflow = WRAP
    highest = -1
    j = 1
    while j < len(args):
        remaining = len(args) - j - 1
        word = _cword(args[j])
        if word == b"overflow" and remaining >= 1:
            overflow_type = _OVERFLOWS.get(_cword(args[j + 1]))
            if overflow_type is None:
                raise RedisError(errors.BITFIELD_OVERFLOW)
            overflow = overflow_type
            j += 2
            continue
        sub = _SUBCOMMANDS.get(word)
        if sub is None or remaining < sub[1]:
            raise RedisError(errors.SYNTAX)
        opcode = sub[0]
        signed, bits = _bitfield_type(args[j + 1])
        offset = _bit_offset(ctx, args[j + 2], bits)
        value = 0
        if opcode != GET:
            highest = max(highest, offset + bits - 1)
            value = int_arg(args[j + 3])
        ops.append((opcode, signed, bits, offset, value, overflow))
        j += 1 + sub[1]
    return ops, highest


def _get_field(buf: bytes | bytearray, offset: int, bits: int, signed: bool) -> int:
    """The integer of ``bits`` bits at ``offset``; bits past the end of ``buf`` read as 0."""
    last = offset + bits - 1
    b0, b1 = offset >> 3, last >> 3
    chunk = buf[b0 : b1 + 1]
    number = int.from_bytes(chunk, "big") << (8 * (b1 + 1 - b0 - len(chunk)))
    number = (number >> (7 - (last & 7))) & ((1 << bits) - 1)
    if signed and number >> (bits - 1):
        number -= 1 << bits
    return number


def _set_field(buf: bytearray, offset: int, bits: int, value: int) -> None:
    """Store the low ``bits`` bits of ``value`` (two's complement) at ``offset``."""
    last = offset + bits - 1
    b0, b1 = offset >> 3, last >> 3
    shift = 7 - (last & 7)
    field = (1 << bits) - 1
    number = int.from_bytes(buf[b0 : b1 + 1], "big") & ~(field << shift)
    buf[b0 : b1 + 1] = (number | ((value & field) << shift)).to_bytes(b1 + 1 - b0, "big")


def _unsigned_overflow(value: int, incr: int, bits: int, how: int) -> tuple[bool, int | None]:
    """Does ``value + incr`` leave u<bits>?  And the value to store instead (WRAP/SAT)."""
    top = (1 << bits) - 1
    max_incr, min_incr = _s64(top - value), _s64(-value)
    if value > top or (incr > 0 and incr > max_incr):
        saturated = top
    elif incr < 0 and incr < min_incr:
        saturated = 0
    else:
        return False, None
    if how == WRAP:
        return True, (value + incr) & top
    return True, saturated if how == SAT else None


def _signed_overflow(value: int, incr: int, bits: int, how: int) -> tuple[bool, int | None]:
    """As :func:`_unsigned_overflow` for i<bits>, with Redis' int64 wrap-around in the checks
    (so SAT of a SET near INT64_MIN into a narrow field saturates upwards, as in Redis)."""
    top = (1 << (bits - 1)) - 1
    bottom = -top - 1
    max_incr, min_incr = _s64(top - value), _s64(bottom - value)
    narrow = bits != 64
    if value > top or (narrow and incr > max_incr) or (value >= 0 and incr > 0 and incr > max_incr):
        saturated = top
    elif (
        value < bottom
        or (narrow and incr < min_incr)
        or (value < 0 and incr < 0 and incr < min_incr)
    ):
        saturated = bottom
    else:
        return False, None
    if how == WRAP:
        wrapped = (value + incr) & ((1 << bits) - 1)
        if wrapped >> (bits - 1):  # the field's sign bit: extend it
            wrapped -= 1 << bits
        return True, wrapped
    return True, saturated if how == SAT else None


def _write_op(buf: bytearray, op: Op) -> tuple[int | None, bool]:
    """Run one SET or INCRBY on ``buf``: its reply (None when OVERFLOW FAIL stops it) and
    whether the field's value changed."""
    opcode, signed, bits, offset, number, how = op
    old = _get_field(buf, offset, bits, signed)
    check = _signed_overflow if signed else _unsigned_overflow
    if opcode == INCRBY:
        overflowed, limit = check(old, number, bits, how)
        new = limit if overflowed and limit is not None else old + number
        reply = new
    else:
        new = number if signed else number & _M64
        overflowed, limit = check(new, 0, bits, how)
        if overflowed and limit is not None:
            new = limit
        reply = old
    if overflowed and how == FAIL:
        return None, False
    _set_field(buf, offset, bits, new)
    return reply, new != old


def bitfield_generic(ctx: Ctx, args: list[bytes], read_only: bool) -> Any:
    """BITFIELD and BITFIELD_RO: parse every operation first, then run them in order."""
    key = args[0]
    ops, highest = parse_bitfield(ctx, args)
    if highest < 0:
        source = ctx.lookup_string(key) or b""
        return [_get_field(source, op[3], op[2], op[1]) for op in ops]
    if read_only:
        raise RedisError(errors.BITFIELD_RO_GET_ONLY)
    value = ctx.lookup_string(key)
    buf = bytearray(value or b"")
    need = (highest >> 3) + 1
    grew = value is None or len(buf) < need
    if len(buf) < need:  # Redis grows (or creates) the string even if every write fails
        buf.extend(bytes(need - len(buf)))
    replies: list[int | None] = []
    changes = 0
    for op in ops:
        if op[0] == GET:
            replies.append(_get_field(buf, op[3], op[2], op[1]))
            continue
        reply, changed = _write_op(buf, op)
        replies.append(reply)
        # As in Redis, a write into a created or grown string counts even if its bits stay.
        if reply is not None and (grew or changed):
            changes += 1
    if grew or changes:
        ctx.ks.set(ctx.db, key, bytes(buf), keep_ttl=True)
        ctx.ks.dirty += changes - 1  # Redis counts one change per write that changed bits
        ctx.notify(STRING, b"setbit", key)
    return replies


@command(
    "BITFIELD key [GET encoding offset | [OVERFLOW <WRAP | SAT | FAIL>] <SET encoding offset value | INCRBY encoding offset increment> [GET encoding offset | [OVERFLOW <WRAP | SAT | FAIL>] <SET encoding offset value | INCRBY encoding offset increment> ...]]",
    -2,
    "write denyoom",
    (1, 1, 1),
    acl="@write @bitmap @slow",
    group="bitmap",
    since="3.2.0",
    summary="Perform arbitrary bitfield integer operations on strings",
)
def bitfield(ctx: Ctx, args: list[bytes]) -> Any:
    """BITFIELD key [GET type offset | SET type offset value | INCRBY type offset increment |
    OVERFLOW WRAP | SAT | FAIL] ... -> one reply per GET/SET/INCRBY."""
    return bitfield_generic(ctx, args, read_only=False)


@command(
    "BITFIELD_RO key [GET encoding offset [GET encoding offset ...]]",
    -2,
    "readonly fast",
    (1, 1, 1),
    acl="@read @bitmap @fast",
    group="bitmap",
    since="6.0.0",
    summary="Perform arbitrary bitfield integer operations on strings. Read-only variant of "
    "BITFIELD",
)
def bitfield_ro(ctx: Ctx, args: list[bytes]) -> Any:
    """BITFIELD_RO key [GET type offset ...] -> one integer per GET."""
    return bitfield_generic(ctx, args, read_only=True)
