"""The shard's part of DEBUG (internal ``__DEBUG``, sent by gateway/debug.py)."""

from __future__ import annotations

import time
from typing import Any

from shard.context import Ctx
from shard.errors import RedisError
from shard.reply import OK, Simple
from shard.table import INTERNAL, command
from shard.values import encoding_of


@command("__DEBUG SLEEP seconds | ACTIVE-EXPIRE 0|1 | OBJECT key | RELOAD", -2, "admin",
         route=INTERNAL)
def debug_part(ctx: Ctx, args: list[bytes]) -> Any:
    what = args[0].upper()
    if what == b"SLEEP":  # the whole shard stops, as Redis' DEBUG SLEEP stops the server
        time.sleep(float(args[1]))
        return OK
    if what == b"ACTIVE-EXPIRE" and ctx.shard is not None:
        ctx.shard.active_expire_enabled = args[1] == b"1"
        return OK
    if what == b"OBJECT":
        return _object(ctx, args[1])
    if what == b"RELOAD" and ctx.shard is not None:
        return _reload(ctx)
    raise RedisError("ERR unknown __DEBUG request")


def _object(ctx: Ctx, key: bytes) -> Any:
    from persistence import rdb
    from shard.rdb_values import to_rdb

    value = ctx.peek(key)
    if value is None:
        raise RedisError("ERR no such key")
    serialized = len(rdb.dump_payload(*to_rdb(value))) - 11  # without type, version and CRC
    idle = ctx.ks.idle_seconds(ctx.db, key) if not ctx.ks.lfu else 0
    encoding = encoding_of(value, ctx.config).decode()
    line = (f"Value at:0x{id(value):x} refcount:1 encoding:{encoding} "
            f"serializedlength:{max(serialized, 1)} lru:{ctx.ks.lru_clock & 0xFFFFFF} "
            f"lru_seconds_idle:{idle}")
    if encoding == "quicklist":
        line += (f" ql_nodes:1 ql_avg_node:{float(len(value)):.2f} ql_listpack_max:-2"
                 f" ql_compressed:0 ql_uncompressed_size:{serialized}")
    return Simple(line.encode())


def _reload(ctx: Ctx) -> Any:
    """Empty this shard and load its keys from the snapshot just written."""
    from persistence.loader import load_into, snapshot_path

    shard = ctx.shard
    assert shard is not None
    with open(snapshot_path(shard.config), "rb") as f:
        data = f.read()
    for db in ctx.ks.dbs:
        ctx.ks.flush(db)
    load_into(shard, data, shard.index, int(shard.config.get("shards", 1) or 1))
    ctx.ks.dirty = 0
    return OK
