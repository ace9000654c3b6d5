"""A shard's part of a point-in-time snapshot, written without stalling the shard.

At the start the job takes each database's key list (the keys of time T).  Between batches
:meth:`SnapshotJob.step` encodes a few thousand of them into the shard's part file.  Before a
command writes a key the walk has not reached, :meth:`SnapshotJob.before_write` keeps the
key's value and expiry of time T (strings are immutable, so that is a reference; collections
are copied: the copy-on-write Redis gets from fork).  Keys created after T were absent at T
and are not saved; keys that expired meanwhile would be dropped by any later load anyway.

The part file holds, per database, the key records of this shard back to back; the
coordinator (``gateway/snapshots.py``) splices every shard's sections into one RDB file.
"""

from __future__ import annotations

import os
import time
from typing import Any

from persistence import rdb
from shard.keyspace import Database
from shard.rdb_values import to_rdb

_MISSING = object()
CHUNK = 256  # keys encoded between two clock readings
FLUSH_BYTES = 1 << 20

# Writes that touch keys they do not name (or other databases): the walk is completed before
# they run, which is correct and rare.
COMPLETE_FIRST = {"flushall", "flushdb", "swapdb", "move", "copy", "__import"}


class SnapshotJob:
    def __init__(self, token: bytes, path: str, dbs: list[Database], dirty: int,
                 preamble: bytes = b"") -> None:
        self.token = token
        self.path = path
        self.dbs = dbs
        self.dirty_at_start = dirty
        self.started = time.time()
        self.order = [list(db.data) if db.data else [] for db in dbs]
        self.kept: list[dict[bytes, Any]] = [{} for _ in dbs]  # key -> (value, expiry) of T
        self.done: list[set[bytes]] = [set() for _ in dbs]  # walked keys holding collections
        self.db = 0
        self.pos = 0
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.file = open(path, "wb")  # noqa: SIM115 - closed by finish/abort
        self.offset = 0
        self.section_start = 0
        self.keys = 0
        self.expires = 0
        self.sections: list[list[int]] = []  # [db, offset, length, keys, expires]
        if preamble:  # function libraries: a section of "database -1", before the keys
            self.file.write(preamble)
            self.offset = self.section_start = len(preamble)
            self.sections.append([-1, 0, len(preamble), 0, 0])
        self.running = True
        self.error = ""

    # --- copy-on-write -------------------------------------------------------------------

    def before_write(self, db: Database, keys: list[bytes]) -> None:
        """Keep the T value of each key about to be written that the walk has not saved."""
        kept, done = self.kept[db.index], self.done[db.index]
        for key in keys:
            if key in kept or key in done:
                continue
            value = db.data.get(key, _MISSING)
            if value is _MISSING:
                kept[key] = _MISSING
            else:
                kept[key] = (value if type(value) is bytes else to_rdb(value), db.expires.get(key))

    # --- the walk ------------------------------------------------------------------------

    def step(self, budget_s: float) -> None:
        """Encode keys for about ``budget_s`` seconds."""
        deadline = time.perf_counter() + budget_s
        try:
            while self.running and time.perf_counter() < deadline:
                self._encode_chunk(CHUNK)
        except OSError as exc:
            self.abort(str(exc))

    def complete(self) -> None:
        """Walk everything left now (SAVE, and writes listed in COMPLETE_FIRST)."""
        try:
            while self.running:
                self._encode_chunk(4096)
        except OSError as exc:
            self.abort(str(exc))

    def _encode_chunk(self, count: int) -> None:
        if self.db >= len(self.dbs):
            self._finish()
            return
        keys = self.order[self.db]
        db = self.dbs[self.db]
        kept, done = self.kept[self.db], self.done[self.db]
        data, expires = db.data, db.expires
        record = rdb.key_record
        out = self.buffer
        end = min(self.pos + count, len(keys))
        for key in keys[self.pos : end]:
            saved = kept.pop(key, None) if kept else None
            if saved is None:
                value = data.get(key)
                if value is None:
                    continue  # expired since T
                when = expires.get(key) if expires else None
                if type(value) is bytes:
                    out.append(record(key, rdb.STRING, value, when))
                else:
                    done.add(key)
                    out.append(record(key, *to_rdb(value), when))
            elif saved is not _MISSING:
                value, when = saved
                if type(value) is bytes:
                    out.append(record(key, rdb.STRING, value, when))
                else:
                    out.append(record(key, value[0], value[1], when))
            else:
                continue
            self.keys += 1
            if when is not None:
                self.expires += 1
            self.buffered += len(out[-1])
        self.pos = end
        if self.buffered >= FLUSH_BYTES:
            self._flush()
        if end >= len(keys):
            self._close_section()

    def _close_section(self) -> None:
        self._flush()
        if self.keys:
            self.sections.append([self.db, self.section_start, self.offset - self.section_start,
                                  self.keys, self.expires])
        self.db += 1
        self.pos = 0
        self.keys = self.expires = 0
        self.section_start = self.offset

    def _flush(self) -> None:
        if self.buffer:
            chunk = b"".join(self.buffer)
            self.file.write(chunk)
            self.offset += len(chunk)
            self.buffer = []
            self.buffered = 0

    def _finish(self) -> None:
        # No fsync: the part is read back at once by the assembler, which fsyncs the result
        # (an fsync here stalled the shard for tens of ms).
        self.file.close()
        self.running = False
        self.order = []
        self.kept = []
        self.done = []

    def abort(self, error: str) -> None:
        self.running = False
        self.error = error or "write failed"
        try:
            self.file.close()
        except OSError:
            pass

    def discard(self) -> None:
        """Remove the part file (after the coordinator spliced it, or gave up)."""
        if self.running:
            self.abort("discarded")
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def state(self) -> dict[bytes, Any]:
        return {
            b"token": self.token,
            b"state": b"running" if self.running else (b"failed" if self.error else b"done"),
            b"error": self.error.encode(),
            b"path": self.path.encode(),
            b"sections": self.sections,
        }
