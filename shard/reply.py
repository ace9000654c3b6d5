"""Reply values and their RESP2/RESP3 encoding.

Handlers return plain Python values; the encoder turns them into the bytes a client of a given
protocol version expects:

=================  ===================  ======================
value              RESP2                RESP3
=================  ===================  ======================
bytes              ``$n`` bulk          ``$n`` bulk
int                ``:n``               ``:n``
None               ``$-1``              ``_``
NULL_ARRAY         ``*-1``              ``_``
list / tuple       ``*n`` array         ``*n`` array
dict               flat ``*2n`` array   ``%n`` map
SetReply           ``*n`` array         ``~n`` set
float              ``$`` bulk text      ``,`` double
bool               ``:0`` / ``:1``      ``#f`` / ``#t``
Simple             ``+text``            ``+text``
Verbatim           ``$`` bulk           ``=`` verbatim
RedisError         ``-text``            ``-text``
Raw                the bytes as they are
=================  ===================  ======================
"""

from __future__ import annotations

from typing import Any

from shard.errors import RedisError


class Simple(bytes):
    """A status reply such as ``+OK``."""


class Raw(bytes):
    """Bytes that are already RESP, passed through untouched."""


class SetReply(list):  # type: ignore[type-arg]
    """An unordered collection: a RESP3 set, a plain array in RESP2."""


class Verbatim:
    """Text that RESP3 sends as a verbatim string (INFO, CLIENT INFO ...)."""

    __slots__ = ("text", "kind")

    def __init__(self, text: bytes, kind: bytes = b"txt") -> None:
        self.text = text
        self.kind = kind


class _NullArray:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()
OK = Simple(b"OK")
PONG = Simple(b"PONG")
QUEUED = Simple(b"QUEUED")

OK_BYTES = b"+OK\r\n"
NULL2 = b"$-1\r\n"
NULL3 = b"_\r\n"


def format_double(value: float) -> bytes:
    from shard.numbers import format_double as fmt

    return fmt(value)


def encode(value: Any, resp3: bool) -> bytes:
    """The RESP bytes of one reply value."""
    if type(value) is list and all(type(item) is bytes for item in value):
        return _bulk_array(value)
    out: list[bytes] = []
    _encode_into(value, resp3, out)
    return b"".join(out)


_BULK_HEADERS = [b"$%d" % n for n in range(4096)]


def _bulk_array(items: list[bytes]) -> bytes:
    """An array of bulk strings (LRANGE, SMEMBERS, KEYS ...) in one join: headers of short
    strings come from a table and CRLFs from the join, half the cost of formatting each."""
    headers = _BULK_HEADERS
    parts = [b"*%d" % len(items)]
    append = parts.append
    for item in items:
        size = len(item)
        append(headers[size] if size < 4096 else b"$%d" % size)
        append(item)
    append(b"")
    return b"\r\n".join(parts)


def _encode_into(value: Any, resp3: bool, out: list[bytes]) -> None:  # noqa: C901
    kind = type(value)
    if kind is bytes:
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    elif kind is int:
        out.append(b":%d\r\n" % value)
    elif value is None:
        out.append(NULL3 if resp3 else NULL2)
    elif kind is Simple:
        out.append(b"+%s\r\n" % value)
    elif kind is list or kind is tuple:
        out.append(b"*%d\r\n" % len(value))
        for item in value:
            _encode_into(item, resp3, out)
    elif kind is dict:
        out.append((b"%%%d\r\n" if resp3 else b"*%d\r\n") % (len(value) * (1 if resp3 else 2)))
        for key, item in value.items():
            _encode_into(key, resp3, out)
            _encode_into(item, resp3, out)
    elif kind is SetReply:
        out.append((b"~%d\r\n" if resp3 else b"*%d\r\n") % len(value))
        for item in value:
            _encode_into(item, resp3, out)
    elif isinstance(value, RedisError):
        out.append(value.line())
    elif kind is float:
        text = format_double(value)
        out.append(b",%s\r\n" % text if resp3 else b"$%d\r\n%s\r\n" % (len(text), text))
    elif kind is bool:
        out.append((b"#t\r\n" if value else b"#f\r\n") if resp3 else (b":1\r\n" if value else b":0\r\n"))
    elif kind is Raw:
        out.append(value)
    elif kind is Verbatim:
        if resp3:
            body = value.kind + b":" + value.text
            out.append(b"=%d\r\n%s\r\n" % (len(body), body))
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(value.text), value.text))
    elif value is NULL_ARRAY:
        out.append(NULL3 if resp3 else b"*-1\r\n")
    elif kind is str:
        raw = value.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    else:
        raise TypeError(f"cannot encode reply of type {kind.__name__}")
