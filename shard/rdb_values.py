"""Shard values to and from the RDB codec's neutral form (``persistence.rdb``).

Loading picks the encoding Redis would: the compact one (intset, listpack) when the value fits
the ``*-max-*`` limits in force, whatever encoding the file used.
"""

from __future__ import annotations

from typing import Any

from persistence import rdb
from shard.hashes import HashValue
from shard.list_value import ListValue
from shard.sets import INTSET_HARD_LIMIT, SetValue, built_set
from shard.zset_value import ZSet, stored_result


def to_rdb(value: Any) -> tuple[bytes, Any]:
    """(kind, data) of a stored value; collections are copied, so the caller may keep them
    while the value changes."""
    kind = type(value)
    if kind is bytes:
        return rdb.STRING, value
    if kind is ListValue:
        return rdb.LIST, list(value)
    if kind is SetValue:
        return rdb.SET, list(value.members)
    if kind is HashValue:
        return rdb.HASH, dict(value.fields)
    if kind is ZSet:
        return rdb.ZSET, list(value.scores.items())
    raise TypeError(f"no RDB form for {kind.__name__}")


def from_rdb(kind: bytes, data: Any, config: dict[str, Any]) -> Any:
    """A new stored value from the codec's (kind, data)."""
    if kind == rdb.STRING:
        return bytes(data)
    if kind == rdb.LIST:
        return ListValue(data)
    if kind == rdb.SET:
        max_intset = min(int(config.get("set-max-intset-entries", 512)), INTSET_HARD_LIMIT)
        return built_set(set(data), max_intset)
    if kind == rdb.HASH:
        fields = dict(data)
        entries = int(config.get("hash-max-listpack-entries", 512))
        longest = int(config.get("hash-max-listpack-value", 64))
        small = len(fields) <= entries and all(
            len(f) <= longest and len(v) <= longest for f, v in fields.items())
        return HashValue(fields, listpack=small)
    if kind == rdb.ZSET:
        return stored_result(dict(data), config)
    raise TypeError(f"unknown kind {kind!r}")
