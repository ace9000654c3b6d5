"""What a stored value is: its Redis type name, its OBJECT ENCODING, and a portable form.

Data-type modules register their Python classes here so that generic key commands (TYPE,
COPY, cross-shard RENAME) handle every type without knowing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from shard.numbers import string2ll


@dataclass(frozen=True, slots=True)
class ValueType:
    name: bytes  # as TYPE answers it
    encoding: Callable[[Any, dict[str, Any]], bytes]
    dump: Callable[[Any], Any]  # -> msgpack-able data
    load: Callable[[Any], Any]  # data -> a new value


def _string_encoding(value: bytes, config: dict[str, Any]) -> bytes:
    if len(value) <= 20 and string2ll(value) is not None:
        return b"int"
    return b"embstr" if len(value) <= 44 else b"raw"


TYPES: dict[type, ValueType] = {
    bytes: ValueType(b"string", _string_encoding, lambda v: v, bytes),
}
BY_NAME: dict[bytes, ValueType] = {b"string": TYPES[bytes]}


def register(cls: type, kind: ValueType) -> None:
    TYPES[cls] = kind
    BY_NAME[kind.name] = kind


def type_name(value: Any) -> bytes:
    return TYPES[type(value)].name


def encoding_of(value: Any, config: dict[str, Any]) -> bytes:
    return TYPES[type(value)].encoding(value, config)


def encode_value(value: Any) -> tuple[bytes, bytes]:
    """(type name, bytes) that :func:`decode_value` turns back into an equal, unshared value."""
    kind = TYPES[type(value)]
    if kind.name == b"string":
        return kind.name, value
    return kind.name, msgpack.packb(kind.dump(value), use_bin_type=True)


def decode_value(name: bytes, payload: bytes) -> Any:
    kind = BY_NAME[name]
    if name == b"string":
        return bytes(payload)
    return kind.load(msgpack.unpackb(payload, raw=True, strict_map_key=False))
