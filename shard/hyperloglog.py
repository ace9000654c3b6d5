"""HyperLogLog commands (PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST), as Redis 7.0 runs them.

An HLL is a plain string value in Redis' own layout (:mod:`shard.hll_codec`), so GET, DUMP,
SETRANGE and APPEND see and change exactly the bytes Redis would hold.  Redis edits the string
in place; here each change stores a new ``bytes`` value, keeping the key's TTL.  Where Redis
stops half way through (a corrupt HLL met by the third element of PFADD), the registers it
already changed stay changed here too.

PFCOUNT of one key stores the estimate in the header (and so is replicated, as in Redis, by
the write it makes); PFCOUNT of several keys and PFMERGE read every source first, and the
gateway's cross-shard plan runs them atomically when the keys live on several shards.
"""

from __future__ import annotations

import math
import random
from typing import Any

from shard import errors
from shard import hll_codec as hll
from shard.context import Ctx
from shard.errors import RedisError
from shard.notify import STRING
from shard.reply import OK, Simple
from shard.table import command

DEFAULT_SPARSE_MAX_BYTES = 3000


def _max_bytes(ctx: Ctx) -> int:
    return int(ctx.config.get("hll-sparse-max-bytes", DEFAULT_SPARSE_MAX_BYTES))


def _checked(value: Any) -> bytes:
    """``value`` if it is a well-formed HLL string, else the WRONGTYPE error Redis gives."""
    if type(value) is not bytes:
        raise RedisError(errors.WRONGTYPE)
    if not hll.is_valid_header(value):
        raise RedisError(errors.HLL_WRONGTYPE)
    return value


def _lookup_read(ctx: Ctx, key: bytes) -> bytes | None:
    value = ctx.lookup(key)
    return None if value is None else _checked(value)


@command("PFADD key [element [element ...]]", -2, "write denyoom fast", (1, 1, 1),
         acl="@write @hyperloglog @fast", group="hyperloglog", since="2.8.9",
         summary="Adds the specified elements to the specified HyperLogLog.")
def pfadd(ctx: Ctx, args: list[bytes]) -> Any:
    key = args[0]
    value = ctx.ks.get(ctx.db, key)
    updated = 0
    if value is None:
        value = hll.EMPTY
        updated = 1
    else:
        _checked(value)
    buf = bytearray(value)
    if buf[4] == hll.DENSE:
        for element in args[1:]:
            index, count = hll.pattern(element)
            updated += hll.dense_set(buf, index, count)
    else:
        max_bytes = _max_bytes(ctx)
        for element in args[1:]:
            index, count = hll.pattern(element)
            if buf[4] == hll.DENSE:
                updated += hll.dense_set(buf, index, count)
                continue
            changed, buf = hll.sparse_set(buf, index, count, max_bytes)
            if changed < 0:
                _keep(ctx, key, value, buf)
                raise RedisError(errors.HLL_CORRUPT)
            updated += changed
    if not updated:
        return 0
    buf[15] |= 0x80  # the cached cardinality is stale
    ctx.ks.set(ctx.db, key, bytes(buf), keep_ttl=True)
    if ctx.events:
        ctx.notify(STRING, b"pfadd", key)
    return 1


def _keep(ctx: Ctx, key: bytes, old: bytes, buf: bytearray) -> None:
    """Keep what an interrupted PFADD already changed, as Redis' in-place edits do."""
    if buf != old:
        ctx.ks.set(ctx.db, key, bytes(buf), keep_ttl=True)


@command("PFCOUNT key [key ...]", -2, "readonly may_replicate", (1, -1, 1),
         acl="@read @hyperloglog @slow", group="hyperloglog", since="2.8.9",
         summary="Return the approximated cardinality of the set(s) observed by the "
                 "HyperLogLog at key(s).")
def pfcount(ctx: Ctx, args: list[bytes]) -> Any:
    if len(args) > 1:
        registers = bytearray(hll.REGISTERS)
        for key in args:
            value = _lookup_read(ctx, key)
            if value is not None and not hll.merge_into(registers, value):
                raise RedisError(errors.HLL_CORRUPT)
        return hll.estimate(hll.histogram_of(bytes(registers)))
    key = args[0]
    value = _lookup_read(ctx, key)
    if value is None:
        return 0
    if hll.cache_valid(value):
        return hll.cached(value)
    card = hll.count(value)
    if card is None:
        raise RedisError(errors.HLL_CORRUPT)
    ctx.ks.set(ctx.db, key, hll.with_cardinality(value, card), keep_ttl=True)
    return card


@command("PFMERGE destkey sourcekey [sourcekey ...]", -2, "write denyoom", (1, -1, 1),
         acl="@write @hyperloglog @slow", group="hyperloglog", since="2.8.9",
         summary="Merge N different HyperLogLogs into a single one.")
def pfmerge(ctx: Ctx, args: list[bytes]) -> Any:
    registers = bytearray(hll.REGISTERS)
    use_dense = False
    for key in args:
        value = _lookup_read(ctx, key)
        if value is None:
            continue
        use_dense = use_dense or value[4] == hll.DENSE
        if not hll.merge_into(registers, value):
            raise RedisError(errors.HLL_CORRUPT)
    dest = args[0]
    current = ctx.ks.get(ctx.db, dest)
    buf = bytearray(hll.EMPTY if current is None else current)
    if use_dense:
        dense = hll.sparse_to_dense(buf)
        if dense is None:
            raise RedisError(errors.HLL_CORRUPT)
        buf = dense
    if buf[4] == hll.DENSE:
        buf = _merge_dense(buf, registers)
    else:
        buf = _merge_sparse(buf, registers, _max_bytes(ctx))
    buf[15] |= 0x80
    ctx.ks.set(ctx.db, dest, bytes(buf), keep_ttl=True)
    if ctx.events:
        ctx.notify(STRING, b"pfadd", dest)
    return OK


def _merge_dense(buf: bytearray, registers: bytearray) -> bytearray:
    """Raise the dense registers of ``buf`` to ``registers`` (hllDenseSet keeps the larger)."""
    current = hll.unpack_dense(buf[hll.HEADER:])
    merged = hll.max_registers(current, registers)
    return bytearray(buf[:hll.HEADER]) + hll.pack_dense(merged)


def _merge_sparse(buf: bytearray, registers: bytearray, max_bytes: int) -> bytearray:
    """Set each non-zero register one by one, as Redis does: the sparse runs it builds (and
    the moment it turns dense) depend on that order."""
    for index, level in enumerate(registers):
        if not level:
            continue
        if buf[4] == hll.DENSE:
            hll.dense_set(buf, index, level)
        else:
            _, buf = hll.sparse_set(buf, index, level, max_bytes)
    return buf


@command("PFDEBUG subcommand key", 3, "write denyoom admin", (2, 2, 1),
         acl="@write @hyperloglog @admin @slow @dangerous", group="hyperloglog",
         since="2.8.9", summary="Internal commands for debugging HyperLogLog values")
def pfdebug(ctx: Ctx, args: list[bytes]) -> Any:
    sub, key = args
    value = ctx.ks.get(ctx.db, key)
    if value is None:
        raise RedisError(errors.HLL_NO_KEY)
    _checked(value)
    name = sub.lower()
    if name in (b"getreg", b"todense"):
        converted = value[4] == hll.SPARSE
        if converted:
            dense = hll.sparse_to_dense(value)
            if dense is None:
                raise RedisError(errors.HLL_CORRUPT)
            value = bytes(dense)
            ctx.ks.set(ctx.db, key, value, keep_ttl=True)  # propagated, as Redis forces
        if name == b"todense":
            return int(converted)
        return list(hll.unpack_dense(value[hll.HEADER:]))
    if name == b"decode":
        if value[4] != hll.SPARSE:
            raise RedisError(errors.HLL_NOT_SPARSE)
        return hll.decode_sparse(value)
    if name == b"encoding":
        return Simple(b"dense" if value[4] == hll.DENSE else b"sparse")
    raise RedisError(errors.HLL_UNKNOWN_DEBUG.format(sub=sub.decode("latin-1")))


SELFTEST_CYCLES = 10  # Redis runs 1000 rounds and 10 million elements; in Python that
SELFTEST_ELEMENTS = 10_000  # would hold the shard for minutes, so the same checks run smaller


@command("PFSELFTEST", 1, "admin", acl="@hyperloglog @admin @slow @dangerous",
         group="hyperloglog", since="2.8.9",
         summary="An internal command for testing HyperLogLog values")
def pfselftest(ctx: Ctx, args: list[bytes]) -> Any:
    """PFSELFTEST: the register packing round-trips, and a dense and a sparse HLL fed the
    same elements agree with each other and stay within six standard errors."""
    rng = random.Random()
    dense = bytearray(hll.DENSE_SIZE)
    for _ in range(SELFTEST_CYCLES):
        expected = bytes(rng.getrandbits(6) for _ in range(hll.REGISTERS))
        dense[hll.HEADER:] = hll.pack_dense(expected)
        found = hll.unpack_dense(dense[hll.HEADER:])
        for index in range(hll.REGISTERS):
            if hll.dense_get(dense, index) != expected[index] or found[index] != expected[index]:
                raise RedisError(errors.HLL_TEST_REGISTER.format(
                    index=index, expected=expected[index], found=hll.dense_get(dense, index)))
    dense = bytearray(hll.MAGIC + bytes(hll.DENSE_SIZE - 4))
    sparse = bytearray(hll.EMPTY)
    max_bytes = _max_bytes(ctx)
    relerr = 1.04 / math.sqrt(hll.REGISTERS)
    seed = rng.getrandbits(64)
    checkpoint = 1
    for j in range(1, SELFTEST_ELEMENTS + 1):
        index, count = hll.pattern((j ^ seed).to_bytes(8, "little"))
        hll.dense_set(dense, index, count)
        if sparse[4] == hll.SPARSE:
            _, sparse = hll.sparse_set(sparse, index, count, max_bytes)
        else:
            hll.dense_set(sparse, index, count)
        if j != checkpoint:
            continue
        if j < max_bytes // 2 and sparse[4] != hll.SPARSE:
            raise RedisError(errors.HLL_TEST_SPARSE)
        estimate = hll.count(dense)
        if estimate != hll.count(sparse) or estimate is None:
            raise RedisError(errors.HLL_TEST_DISAGREE)
        error = abs(checkpoint - estimate)
        if error > (1 if j == 10 else math.ceil(relerr * 6 * checkpoint)):
            raise RedisError(errors.HLL_TEST_ERROR.format(card=checkpoint, error=error))
        checkpoint *= 10
    return OK
