"""Start-up: a shard loads the keys of its own slots from ``dir/dbfilename``.

Every shard reads the whole file and keeps the keys whose slot it owns under the current shard
count, so a file written with another number of shards (or by Redis) loads completely.  A file
that cannot be read stops the server with a message naming it, as Redis refuses to start.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from persistence import FATAL_EXIT
from persistence.rdb import RdbError
from persistence.rdb_reader import FileReader
from shard.rdb_values import from_rdb
from shard.slots import default_owner, key_slot

log = logging.getLogger("atoll.shard")


owner_of = default_owner  # the shard owning a slot (shard/slots.py)


def snapshot_path(config: dict[str, Any]) -> str:
    return os.path.join(str(config.get("dir") or "."), str(config.get("dbfilename") or "dump.rdb"))


def load_into(executor: Any, data: bytes, index: int, shards: int) -> tuple[int, int]:
    """Put this shard's keys of an RDB image into its keyspace: (keys loaded, expired skipped)."""
    return load_records(executor, FileReader(data), index, shards)


def load_records(executor: Any, reader: FileReader, index: int, shards: int) -> tuple[int, int]:
    """The records of ``reader`` owned by shard ``index`` of ``shards`` into its keyspace."""
    ks = executor.ks
    config = executor.config
    now = ks.clock()
    loaded = expired = 0
    databases = len(ks.dbs)
    owners = config.get("slot-owners")  # the supervisor's slot map (server/slotmap.py)
    for record in reader.records():
        if shards > 1:
            slot = key_slot(record.key)
            if (owners[slot] if owners else owner_of(slot, shards)) != index:
                continue
        if record.db >= databases:
            raise RdbError(f"the file uses database {record.db} but 'databases' is {databases}")
        if record.expire_ms is not None and record.expire_ms <= now:
            expired += 1
            continue
        db = ks.dbs[record.db]
        db.data[record.key] = from_rdb(record.kind, record.data, config)
        if record.expire_ms is not None:
            db.expires[record.key] = record.expire_ms
        if record.freq is not None and ks.lfu:
            db.lru[record.key] = (now // 60000 & 0xFFFF) << 8 | record.freq
        elif record.idle is not None and not ks.lfu:
            db.lru[record.key] = max(ks.lru_clock - record.idle, 0)
        else:
            db.lru[record.key] = ks.lru_clock
        loaded += 1
    if reader.libraries:  # every shard keeps every library
        from shard.functions import load_libraries

        load_libraries(executor, reader.libraries)
    return loaded, expired


def load_at_startup(executor: Any, index: int) -> None:
    config = executor.config
    path = snapshot_path(config)
    if not os.path.exists(path):
        return
    started = time.monotonic()
    try:
        with open(path, "rb") as f:
            data = f.read()
        loaded, expired = load_into(executor, data, index, int(config.get("shards", 1) or 1))
    except (RdbError, OSError) as exc:
        log.warning("Short read or OOM loading DB. Unrecoverable error, aborting now.")
        log.warning("Shard %d: cannot load the snapshot %s: %s", index, path, exc)
        sys.exit(FATAL_EXIT)
    executor.ks.dirty = 0
    executor.persistence.loaded = loaded
    executor.persistence.load_expired = expired
    log.info("Shard %d: DB loaded from disk (%s): %d keys, %d expired skipped, %.3f seconds",
             index, path, loaded, expired, time.monotonic() - started)
