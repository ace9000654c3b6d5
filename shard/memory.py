"""MEMORY USAGE: what a key costs this shard, in bytes of Python objects.

The estimate adds the key, the value object and its elements (``sys.getsizeof``, which counts
Python's own headers), plus the slot the key takes in its database's dict.  Like Redis,
aggregates larger than SAMPLES elements are estimated from a sample and scaled up.
"""

from __future__ import annotations

import sys
from typing import Any

from shard import errors
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.table import command, container
from shard.values import TYPES

DICT_SLOT = 40  # a dict entry (hash, key and value pointers) plus its share of the index


def _element_size(item: Any) -> int:
    if isinstance(item, tuple):
        return sys.getsizeof(item) + sum(sys.getsizeof(part) for part in item)
    return sys.getsizeof(item)


def value_size(value: Any, samples: int) -> int:
    if isinstance(value, (bytes, bytearray)):
        return sys.getsizeof(value)
    # The portable form every type registers (shard/values.py) lists the elements.
    data = TYPES[type(value)].dump(value)
    elements = list(data.items()) if isinstance(data, dict) else list(data)
    count = len(elements)
    size = sys.getsizeof(value)
    if count == 0:
        return size
    sample = elements if samples == 0 else elements[: min(samples, count)]
    per_element = sum(_element_size(e) for e in sample) / len(sample)
    return size + int(per_element * count) + DICT_SLOT * count


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
