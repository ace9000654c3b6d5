"""What a blocking pop took, turned back into the command that restores it.

Used when the shard served a wait in the instant its client disconnected: the reply has no
reader, so its values go back where they came from (head or tail, scores kept).  BLMOVE and
BRPOPLPUSH need nothing: their element is already in the destination list.
"""

from __future__ import annotations

from typing import Any

import hiredis

from shard.numbers import format_double


def _parse(reply: bytes) -> Any:
    reader = hiredis.Reader()
    reader.feed(reply)
    return reader.gets()


def give_back_command(argv: list[bytes], reply: bytes) -> list[bytes] | None:
    """The command that undoes the pop answered by ``reply``, or None if nothing was taken."""
    if not reply.startswith(b"*") or reply.startswith(b"*-1"):
        return None
    value = _parse(reply)
    name = argv[0].lower()
    if name in (b"blpop", b"brpop"):
        key, element = value
        return [b"lpush" if name == b"blpop" else b"rpush", key, element]
    if name in (b"bzpopmin", b"bzpopmax"):
        key, member, score = value
        return [b"zadd", key, _score(score), member]
    if name == b"blmpop":
        key, elements = value
        left = argv[3 + int(argv[2])].upper() == b"LEFT"
        return [b"lpush" if left else b"rpush", key, *reversed(elements)]
    if name == b"bzmpop":
        key, pairs = value
        return [b"zadd", key, *[p for member, score in pairs for p in (_score(score), member)]]
    return None


def _score(score: Any) -> bytes:
    # RESP3 replies carry scores as doubles, which hiredis turns into floats.
    return format_double(score) if isinstance(score, float) else bytes(score)
