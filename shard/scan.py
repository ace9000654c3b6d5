"""SCAN inside one shard, and what keeps its guarantee while slots move between shards.

The gateway walks the shards in order (gateway/commands.py); inside a shard a scan walks a
snapshot of the database's key list taken at its first step there, so a key present for the
whole scan is returned even while the dict changes.

Online slot moves (server/migration.py) take keys away from a shard and give them to another
one, which the scan may already have passed.  So every shard remembers the keys it gave away,
with the slot-map version of the move (:class:`MovedKeys`), and a scan carries the version
its gateway knew when it started (``since``).  A key present for the whole scan was on some
shard X when it started; when the scan reaches X, that key is either still in X's keyspace or
was given away by a move finished after the scan started, whose version is therefore above
``since``.  X's snapshot takes both, and a key of the snapshot found gone from the keyspace
is still returned when X gave it away after ``since`` (its type is remembered for TYPE).  So
the key is returned by X, wherever it went meanwhile, and however often it moved.  A key may
come twice (once from X, once from where it went), which SCAN allows.

Without moves the log is empty and a step costs what it did before: one ``list(db.data)`` at
a shard's first step, then COUNT lookups.
"""

from __future__ import annotations

from typing import Any

from shard.context import Ctx
from shard.glob import compile_glob
from shard.table import INTERNAL, command
from shard.values import type_name

UNKNOWN_SINCE = -1  # a scan whose start is unknown (evicted snapshot): every logged key counts


class MovedKeys:
    """Keys this shard gave away to other shards: ``(db, key) -> (map version, type)``.

    Bounded: past ``LIMIT`` keys the oldest are forgotten (``forgotten`` is the newest version
    dropped); a scan that started before that version and outlived the log has no guarantee
    for keys that moved before it reached their shard.
    """

    LIMIT = 1 << 20

    def __init__(self) -> None:
        self.keys: dict[tuple[int, bytes], tuple[int, bytes]] = {}
        self.forgotten = 0

    def gave_away(self, version: int, db: int, key: bytes, kind: bytes) -> None:
        self.keys.pop((db, key), None)  # insertion order stays the order of the moves
        self.keys[(db, key)] = (version, kind)
        while len(self.keys) > self.LIMIT:
            oldest = next(iter(self.keys))
            self.forgotten = max(self.forgotten, self.keys.pop(oldest)[0])

    def came_back(self, db: int, key: bytes) -> None:
        """A key imported here: its own keyspace entry covers it from now on."""
        if self.keys:
            self.keys.pop((db, key), None)

    def since(self, db: int, since: int) -> list[bytes]:
        """Keys of ``db`` given away by moves newer than version ``since``."""
        return [key for (index, key), (version, _) in self.keys.items()
                if index == db and version > since]

    def moved_type(self, db: int, key: bytes, since: int) -> bytes | None:
        """The type of ``key`` when a move newer than ``since`` took it away, else None."""
        found = self.keys.get((db, key))
        if found is None or found[0] <= since:
            return None
        return found[1]


MOVED = MovedKeys()


class ScanState:
    """Snapshots of key lists that live SCAN cursors walk through, with the map version each
    scan started at.  Only the newest few are kept; an evicted cursor goes on in a fresh
    snapshot (with every logged move counted, as its start is lost)."""

    LIMIT = 64

    def __init__(self) -> None:
        self.snapshots: dict[int, tuple[list[bytes], int]] = {}
        self.next_id = 1

    def take(self, keys: list[bytes], since: int) -> int:
        snap_id = self.next_id
        self.next_id = self.next_id % (1 << 20) + 1  # keeps cursors below 2**64
        self.snapshots[snap_id] = (keys, since)
        if len(self.snapshots) > self.LIMIT:
            del self.snapshots[next(iter(self.snapshots))]
        return snap_id


SCANS = ScanState()


def _snapshot(ctx: Ctx, since: int) -> list[bytes]:
    keys = list(ctx.db.data)
    if MOVED.keys:
        data = ctx.db.data
        keys.extend(key for key in MOVED.since(ctx.db.index, since) if key not in data)
    return keys


@command("__SCAN cursor count pattern type since", 6, "readonly", route=INTERNAL)
def scan_part(ctx: Ctx, args: list[bytes]) -> Any:
    """One step of SCAN inside this shard: [next cursor (0 = done), keys, since].

    ``since`` is the slot-map version the scan started at (-1: unknown); a cursor inside the
    shard names a snapshot, which remembers it, and the reply hands it back for the next shard.
    """
    cursor, count = int(args[0]), max(int(args[1]), 1)
    match = compile_glob(args[2]) if args[2] != b"*" else None
    wanted = args[3].lower() or None
    snap_id, pos = cursor >> 32, cursor & 0xFFFFFFFF
    found_snapshot = SCANS.snapshots.get(snap_id) if snap_id else None
    if found_snapshot is None:
        since = int(args[4]) if not snap_id else UNKNOWN_SINCE
        keys_list = _snapshot(ctx, since)
        snap_id = SCANS.take(keys_list, since)
    else:
        keys_list, since = found_snapshot
    chunk = keys_list[pos : pos + count]
    pos += len(chunk)
    found = []
    db, get = ctx.db, ctx.ks.get
    for key in chunk:
        value = get(db, key, touch=False)
        if value is None:  # gone, or given away to another shard after the scan started
            kind = MOVED.moved_type(db.index, key, since) if MOVED.keys else None
            if kind is None:
                continue
        elif wanted is not None:
            kind = type_name(value)
        if match is not None and not match(key):
            continue
        if wanted is not None and kind != wanted:
            continue
        found.append(key)
    if pos >= len(keys_list):
        SCANS.snapshots.pop(snap_id, None)
        return [0, found, since]
    return [(snap_id << 32) | pos, found, since]
