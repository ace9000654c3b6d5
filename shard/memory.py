"""MEMORY USAGE: what a key costs this shard, in bytes of Python objects.

The estimate adds the key, the value object, the tables it owns (a set's or a hash's hash
table, a sorted set's score dict and its ordered index) and its elements
(``sys.getsizeof``, which counts Python's own headers), plus the slot the key takes in its
database's dict.  Like Redis, elements past the first SAMPLES (0: all) are not measured one
by one: the sample's average is scaled to the element count.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from sortedcontainers import SortedList

from shard import errors
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.hashes import HashValue
from shard.list_value import ListValue
from shard.sets import SetValue
from shard.table import command, container
from shard.zset_value import ZSet

DICT_SLOT = 40  # a dict entry (hash, key and value pointers) plus its share of the index
FLOAT_SIZE = sys.getsizeof(0.5)


def _scaled(items: Iterable[Any], count: int, samples: int, size: Callable[[Any], int]) -> int:
    """The bytes of ``count`` elements, measured on the first ``samples`` (0: all) of them."""
    if count == 0:
        return 0
    sample = list(items if samples == 0 else islice(items, samples))
    if not sample:
        return 0
    return int(sum(map(size, sample)) / len(sample) * count)


def _pair_size(pair: tuple[bytes, bytes]) -> int:
    return sys.getsizeof(pair[0]) + sys.getsizeof(pair[1])


def _order_size(order: Any) -> int:
    """The index of a sorted set: a plain list, or a SortedList's lists of sublists."""
    if isinstance(order, SortedList):
        lists = order._lists  # noqa: SLF001 - its storage is what costs the memory
        return (sys.getsizeof(order) + sys.getsizeof(lists) + sys.getsizeof(order._maxes)  # noqa: SLF001
                + sum(map(sys.getsizeof, lists)))
    return int(sys.getsizeof(order))


def value_size(value: Any, samples: int) -> int:
    """Bytes held by one value (string, list, set, hash or sorted set)."""
    if isinstance(value, (bytes, bytearray)):
        return sys.getsizeof(value)
    size = sys.getsizeof(value)
    if isinstance(value, ListValue):
        return size + _scaled(value, len(value), samples, sys.getsizeof)
    if isinstance(value, SetValue):
        members = value.members
        size += sys.getsizeof(members) + _scaled(members, len(members), samples, sys.getsizeof)
    elif isinstance(value, HashValue):
        fields = value.fields
        size += sys.getsizeof(fields) + _scaled(fields.items(), len(fields), samples, _pair_size)
    elif isinstance(value, ZSet):
        scores, order = value.scores, value.order
        # Each member is held twice: as the score dict's key and inside its sort key.
        size += sys.getsizeof(scores) + _order_size(order) + FLOAT_SIZE * len(scores)
        size += _scaled(scores, len(scores), samples, sys.getsizeof)
        size += _scaled(order, len(order), samples, sys.getsizeof)
    else:
        return size
    pool = getattr(value, "pool", None)
    return size + (sys.getsizeof(pool) if pool is not None else 0)


container("memory", acl="@slow", group="server", since="4.0.0", route="shard",
          summary="A container for memory diagnostics commands")


@command("MEMORY USAGE key [SAMPLES count]", -3, "readonly", (2, 2, 1), acl="@read @slow",
         parent="memory", since="4.0.0", summary="Estimate the memory usage of a key")
def memory_usage(ctx: Ctx, args: list[bytes]) -> Any:
    samples = 5
    i = 2
    while i < len(args):
        if args[i].upper() == b"SAMPLES" and i + 1 < len(args):
            samples = int_arg(args[i + 1])
            if samples < 0:
                raise RedisError(errors.SYNTAX)
            i += 2
        else:
            raise RedisError(errors.SYNTAX)
    value = ctx.peek(args[1])
    if value is None:
        return None
    return sys.getsizeof(args[1]) + value_size(value, samples) + DICT_SLOT
