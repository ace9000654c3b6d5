"""Start-up with ``appendonly yes``: a shard loads its data from the append-only logs.

- Its own log for the current shard count exists: replay it (the RDB snapshot is ignored: the
  log wins, as in Redis).
- Otherwise, logs written with another shard count exist: replay each of them in a scratch
  keyspace and keep the keys of this shard's slots (so any command replays whole, whatever
  keys it names), then write this shard's own log from its data.  The old files are removed
  only once every shard of the new count has its own log, so a crash half-way loses nothing.
- No log at all: load the RDB snapshot, then write the own log from the data.

A truncated tail loads with a warning when ``aof-load-truncated`` is on (the file is cut back
to its last complete command); anything else unreadable stops the server with the file named,
as Redis refuses to start.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from persistence import FATAL_EXIT
from persistence.aof import AppendOnlyFile, aof_dir, aof_path, existing_logs
from persistence.aof_parse import CORRUPT, OK, AofParser
from persistence.loader import load_at_startup as load_snapshot
from persistence.loader import load_records, owner_of
from persistence.rdb import RdbError
from persistence.rdb_reader import FileReader
from shard import wire
from shard.errors import RedisError

log = logging.getLogger("atoll.shard")

REPLAY_META = wire.STRUCTURED | wire.NOBLOCK


class AofLoadError(Exception):
    pass


def load_with_aof(executor: Any, index: int) -> AppendOnlyFile:
    """Load this shard's data at start-up and answer its open log (``appendonly yes``)."""
    from persistence.aof_rewrite import remove_stale_logs, write_base

    config = executor.config
    shards = int(config.get("shards", 1) or 1)
    os.makedirs(aof_dir(config), exist_ok=True)
    started = time.monotonic()
    logs = existing_logs(config)
    own = logs.get(shards, {}).get(index)
    policy = str(config.get("appendfsync", "everysec"))
    try:
        if own is not None:
            commands = replay_file(executor, own, bool(config.get("aof-load-truncated", True)))
            log.info("Shard %d: DB loaded from append only file %s: %d commands, %.3f seconds",
                     index, own, commands, time.monotonic() - started)
            return AppendOnlyFile(own, policy)
        others = {count: files for count, files in logs.items() if count != shards}
        if others:
            count = max(others, key=lambda c: max(os.path.getmtime(p) for p in others[c].values()))
            for path in others[count].values():
                _replay_foreign(executor, path, index, shards)
            log.info("Shard %d: keys of its slots loaded from %d append only file(s) written by "
                     "%d shard(s), %.3f seconds", index, len(others[count]), count,
                     time.monotonic() - started)
        else:
            load_snapshot(executor, index)
    except AofLoadError as exc:
        log.warning("Shard %d: %s", index, exc)
        sys.exit(FATAL_EXIT)
    path = aof_path(config, index, shards)
    write_base(executor, path)
    remove_stale_logs(config, shards)
    return AppendOnlyFile(path, policy)


def replay_file(executor: Any, path: str, load_truncated: bool) -> int:
    """Apply the log at ``path`` to the executor's keyspace; answers the commands applied."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise AofLoadError(f"cannot open the append only file {path}: {exc}") from exc
    start = 0
    if data.startswith(b"REDIS"):
        try:
            reader = FileReader(data)
            load_records(executor, reader, 0, 1)
        except RdbError as exc:
            raise AofLoadError(f"Bad file format reading the RDB preamble of the append only "
                               f"file {path}: {exc}") from exc
        start = reader.end
    parser = AofParser(data, start)
    applied, open_at = _apply(executor, parser, path)
    end = parser.valid_end
    if parser.status == CORRUPT:
        raise AofLoadError(f"Bad file format reading the append only file {path} at offset "
                           f"{parser.error_at}: make a backup of it, then cut it at the damage "
                           f"(redis-check-aof --fix) or remove it")
    if open_at >= 0:  # a MULTI whose EXEC never made it to the file: a truncated tail too
        end = open_at
    if parser.status != OK or open_at >= 0:
        if not load_truncated:
            raise AofLoadError(f"Unexpected end of file reading the append only file {path}; "
                               f"set aof-load-truncated yes to load it up to offset {end}")
        log.warning("!!! Warning: short read while loading the AOF file %s!!!", path)
        log.warning("AOF %s loaded anyway because aof-load-truncated is enabled; cut at offset "
                    "%d (%d bytes dropped)", path, end, len(data) - end)
        os.truncate(path, end)
    return applied


def _apply(executor: Any, parser: AofParser, path: str) -> tuple[int, int]:
    """Run the parsed commands; a MULTI ... EXEC runs when its EXEC is read.  Answers the
    commands run and the offset of a MULTI left open at the end (-1: none)."""
    ks, ctx = executor.ks, executor.ctx
    events, ctx.events = ctx.events, 0  # a replay raises no keyspace events
    ks.replica = True  # nothing expires during a replay: the log has the DELs (Redis' rule)
    ks.tick()
    db = applied = depth = 0
    open_at = previous_end = parser.start
    queued: list[tuple[int, list[bytes]]] = []
    try:
        for argv, end in parser.commands():
            name = argv[0] = argv[0].lower()
            if name == b"select":
                db = _db_index(argv, path)
            elif name == b"multi":
                if depth == 0:
                    open_at = previous_end
                depth += 1
            elif name == b"exec" and depth:
                depth -= 1
                if depth == 0:
                    for one_db, one in queued:
                        _run(executor, one_db, one, path)
                    applied += len(queued)
                    queued = []
            elif depth:
                queued.append((db, argv))
            else:
                _run(executor, db, argv, path)
                applied += 1
            previous_end = end
    finally:
        ks.replica = False
        ctx.events = events
        ctx.notes = []
        executor.commands_processed = 0
        executor.error_replies = 0
    return applied, open_at if depth else -1


def _db_index(argv: list[bytes], path: str) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        raise AofLoadError(f"Bad SELECT in the append only file {path}")
    return int(argv[1])


def _run(executor: Any, db: int, argv: list[bytes], path: str) -> None:
    if db >= len(executor.ks.dbs):
        raise AofLoadError(f"the append only file {path} uses database {db} but 'databases' "
                           f"is {len(executor.ks.dbs)}")
    if argv[0] not in executor.handlers:
        raise AofLoadError(f"Unknown command '{argv[0].decode('latin-1')}' reading the append "
                           f"only file {path}")
    value = executor.execute((db << wire.DB_SHIFT) | REPLAY_META, argv)
    if isinstance(value, RedisError):
        log.warning("Command %s in the append only file %s failed: %s",
                    argv[0].decode("latin-1"), path, value.message)


def _replay_foreign(executor: Any, path: str, index: int, shards: int) -> None:
    """Replay a log of another shard count in a scratch keyspace; keep this shard's keys."""
    from gateway.links import key_slot
    from shard.actor import ShardExecutor

    scratch = ShardExecutor(index, {**executor.config, "appendonly": False})
    replay_file(scratch, path, bool(executor.config.get("aof-load-truncated", True)))
    for source, target in zip(scratch.ks.dbs, executor.ks.dbs, strict=True):
        for key, value in source.data.items():
            if owner_of(key_slot(key), shards) != index:
                continue
            target.data[key] = value
            when = source.expires.get(key)
            if when is not None:
                target.expires[key] = when
            target.lru[key] = source.lru.get(key, executor.ks.lru_clock)
