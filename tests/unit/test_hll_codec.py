"""The HLL representation helpers on their own (no processes): register packing, lane-wise
max, the empty sparse layout, sparse edits and the estimator's edge cases.  Byte equality with
Redis itself is checked in tests/differential/test_hll_vs_redis.py."""

from __future__ import annotations

import random

from shard import hll_codec as hll


def test_empty_hll_is_one_xzero_run() -> None:
    assert hll.EMPTY == b"HYLL\x01" + bytes(11) + b"\x7f\xff"
    assert hll.decode_sparse(hll.EMPTY) == b"Z:16384"
    assert hll.count(hll.EMPTY) == 0


def test_pack_unpack_and_single_registers_agree() -> None:
    rng = random.Random(1)
    registers = bytes(rng.getrandbits(6) for _ in range(hll.REGISTERS))
    dense = bytearray(hll.MAGIC + bytes(12)) + hll.pack_dense(registers)
    assert len(dense) == hll.DENSE_SIZE
    assert hll.unpack_dense(dense[hll.HEADER:]) == registers
    assert [hll.dense_get(dense, i) for i in range(hll.REGISTERS)] == list(registers)
    assert hll.dense_set(dense, 5, 0) == 0
    assert hll.dense_set(dense, 5, 63) == 1 and hll.dense_get(dense, 5) == 63
    assert hll.dense_get(dense, 4) == registers[4] and hll.dense_get(dense, 6) == registers[6]


def test_max_registers_is_elementwise_max() -> None:
    rng = random.Random(2)
    for _ in range(20):
        a = bytes(rng.getrandbits(6) for _ in range(hll.REGISTERS))
        b = bytes(rng.choice((0, rng.getrandbits(6))) for _ in range(hll.REGISTERS))
        assert hll.max_registers(a, b) == bytes(map(max, a, b))


def test_sparse_set_splits_and_merges_runs() -> None:
    buf = bytearray(hll.EMPTY)
    changed, buf = hll.sparse_set(buf, 100, 3, 3000)
    assert changed == 1 and hll.decode_sparse(bytes(buf)) == b"Z:100 v:3,1 Z:16283"
    changed, buf = hll.sparse_set(buf, 101, 3, 3000)
    assert changed == 1 and hll.decode_sparse(bytes(buf)) == b"Z:100 v:3,2 Z:16282"
    assert hll.sparse_set(buf, 100, 2, 3000)[0] == 0
    assert not hll.cache_valid(buf)


def test_sparse_set_promotes_past_the_limit_or_a_large_count() -> None:
    changed, dense = hll.sparse_set(bytearray(hll.EMPTY), 7, 33, 3000)
    assert changed == 1 and dense[4] == hll.DENSE and hll.dense_get(dense, 7) == 33
    changed, dense = hll.sparse_set(bytearray(hll.EMPTY), 7, 2, len(hll.EMPTY))
    assert dense[4] == hll.DENSE and len(dense) == hll.DENSE_SIZE


def test_corrupt_sparse_is_reported() -> None:
    short = bytearray(hll.EMPTY[:-2]) + b"\x00"  # one zero register only
    assert hll.count(short) is None
    assert hll.sparse_to_dense(short) is None
    assert hll.sparse_set(bytearray(hll.EMPTY[:hll.HEADER]), 0, 1, 3000)[0] == -1


def test_murmur_and_estimate_basics() -> None:
    assert hll.murmur64a(b"") != hll.murmur64a(b"\x00")
    index, count = hll.pattern(b"a")
    assert 0 <= index < hll.REGISTERS and 1 <= count <= hll.Q + 1
    assert hll.estimate([hll.REGISTERS] + [0] * 63) == 0
