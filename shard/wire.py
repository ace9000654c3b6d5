"""The gateway <-> shard message format.

A batch is one msgpack list of entries ``[meta, argv]``; ``argv[0]`` is the lower-case command
name.  With the RUN flag an entry is ``[meta, [argv, argv, ...]]``: the commands of one
client for this shard (see gateway/links.py Group), answered with the list of their replies.
``meta`` packs the database index and the flags below.  A batch travels as
``[batch_id, entries]`` and the shard answers ``[batch_id, replies]``, a reply per entry in
order: ready RESP bytes for plain entries, or a structured value for entries the gateway
merges.
"""

from __future__ import annotations

from typing import Any

import msgpack

from shard.errors import RedisError
from shard.reply import NULL_ARRAY, Simple

RESP3 = 1
STRUCTURED = 2
RUN = 4  # the entry holds a list of commands of one client; the reply is the list of replies
NOBLOCK = 8  # a blocking command must answer at once (inside MULTI, or from the scratch keyspace)
DB_SHIFT = 4
DB_MASK = (1 << 24) - 1  # after the shift
# The client connection an entry comes from (its id; 0 = the gateway itself).  Shards only
# look at it while intents are held, to keep a client's waiting commands in order.
ORIGIN_SHIFT = 28
# The origin of the master's stream applied on a replica (replication/replica.py): a replica's
# shards let only it see keys that are logically expired but not yet deleted by the master.
MASTER_ORIGIN = (1 << 34) - 1

EXT_ERROR = 1
EXT_SIMPLE = 2
EXT_NULL_ARRAY = 3
EXT_BLOCKED = 4  # the reply to a blocking command that is now waiting: its token (int64)
EXT_DEFERRED = 5  # the entry waits for intents (shard/intents.py); its reply comes later
EXT_MOVED = 6  # the entry's slot moved to another shard: the gateway sends it there (its entry)

# A message from a shard with this batch id is not an answer to a batch: it carries
# ``[[token, reply], ...]`` for blocking commands served (or timed out) since.
UNSOLICITED = 0
# The token of an unsolicited item that says whether the shard runs a busy script (1) or
# not any more (0); see shard/busy.py.
BUSY_NOTICE = -1


def meta(db: int, resp3: bool, structured: bool = False, origin: int = 0) -> int:
    return ((origin << ORIGIN_SHIFT) | (db << DB_SHIFT) | (RESP3 if resp3 else 0)
            | (STRUCTURED if structured else 0))


def _default(value: Any) -> Any:
    if isinstance(value, RedisError):
        return msgpack.ExtType(EXT_ERROR, value.message.encode("latin-1", "replace"))
    if type(value) is Simple:
        return msgpack.ExtType(EXT_SIMPLE, bytes(value))
    if value is NULL_ARRAY:
        return msgpack.ExtType(EXT_NULL_ARRAY, b"")
    if type(value) is Blocked:
        return msgpack.ExtType(EXT_BLOCKED, value.token.to_bytes(8, "big"))
    if type(value) is Deferred:
        return msgpack.ExtType(EXT_DEFERRED, value.token.to_bytes(8, "big"))
    if type(value) is Moved:
        # A packer of its own: the shared one is in the middle of packing the whole message.
        return msgpack.ExtType(EXT_MOVED, msgpack.packb(value.entry, use_bin_type=True,
                                                        default=_default, strict_types=True))
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, dict):
        return dict(value)
    raise TypeError(f"cannot send {type(value).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_ERROR:
        return RedisError(data.decode("latin-1"))
    if code == EXT_SIMPLE:
        return Simple(data)
    if code == EXT_NULL_ARRAY:
        return NULL_ARRAY
    if code == EXT_BLOCKED:
        return Blocked(int.from_bytes(data, "big"))
    if code == EXT_DEFERRED:
        return Deferred(int.from_bytes(data, "big"))
    if code == EXT_MOVED:
        return Moved(unpack(data))
    return msgpack.ExtType(code, data)


class Blocked:
    """Decoded EXT_BLOCKED: the command waits in the shard under ``token``."""

    __slots__ = ("token",)

    def __init__(self, token: int) -> None:
        self.token = token


class Deferred:
    """Decoded EXT_DEFERRED: the entry waits for another transaction's intents; its reply
    comes later in an unsolicited message under ``token``."""

    __slots__ = ("token",)

    def __init__(self, token: int) -> None:
        self.token = token


class Moved:
    """EXT_MOVED: the entry ``[meta, argv]`` touches a slot this shard gave away (an online
    slot move, server/migration.py); the gateway routes it again by the current slot map."""

    __slots__ = ("entry",)

    def __init__(self, entry: Any) -> None:
        self.entry = entry


# strict_types: subclasses (Simple, SetReply) reach _default instead of passing as their base.
_packer = msgpack.Packer(use_bin_type=True, default=_default, autoreset=True, strict_types=True)


def pack(value: Any) -> bytes:
    packed: bytes = _packer.pack(value)
    return packed


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=True, ext_hook=_ext_hook, strict_map_key=False, use_list=True)
