"""MEMORY USAGE's estimate (``shard.memory.value_size``) against what building the value
really allocated (tracemalloc), for every type: redis-cli --memkeys ranks keys by it and
eviction counts the bytes it frees with it."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from shard.hashes import HashValue
from shard.list_value import ListValue
from shard.memory import value_size
from shard.sets import SetValue
from shard.zset_value import ZSet


def _zset(n: int) -> ZSet:
    zset = ZSet(listpack=False)
    for i in range(n):
        zset.insert(b"member:%d" % i, float(i) + 0.5)
    return zset


BUILDERS: dict[str, Callable[[int], Any]] = {
    "string": lambda n: b"v" * n,
    "list": lambda n: ListValue(b"element:%d" % i for i in range(n)),
    "set": lambda n: SetValue({b"member:%d" % i for i in range(n)}, intset=False),
    "hash": lambda n: HashValue({b"field:%d" % i: b"value:%d" % i for i in range(n)}, False),
    "zset": _zset,
}


def _allocated(build: Callable[[int], Any], n: int) -> tuple[Any, int]:
    build(n)  # warms shared caches (the sorted sets' score prefixes), which no value owns
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        value = build(n)
        return value, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", sorted(BUILDERS))
@pytest.mark.parametrize("n", [10, 300, 5000])
def test_estimate_is_close_to_what_the_value_allocated(kind: str, n: int) -> None:
    value, allocated = _allocated(BUILDERS[kind], n)
    for samples in (0, 5):
        estimate = value_size(value, samples)
        assert 0.8 * allocated <= estimate <= 1.25 * allocated, (kind, n, samples, estimate,
                                                                 allocated)


def test_estimate_grows_with_the_element_count() -> None:
    for kind, build in BUILDERS.items():
        sizes = [value_size(build(n), 5) for n in (10, 100, 1000)]
        assert sizes[0] < sizes[1] < sizes[2], kind
