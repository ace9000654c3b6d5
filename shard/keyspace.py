"""A shard's data: one :class:`Database` per Redis database, with lazy and active expiry.

Values are plain Python objects chosen for memory: ``bytes`` for strings (Redis' own small
strings cost ~105 bytes a key; a dict of bytes is ~155).  Expiry times live in a side dict
holding only the keys that have one, so keys without a TTL pay nothing for it.
"""

from __future__ import annotations

import time
from typing import Any

from shard.errors import WRONGTYPE, RedisError


def now_ms() -> int:
    return int(time.time() * 1000)


class Database:
    __slots__ = ("index", "data", "expires", "_scan_keys", "_scan_pos")

    def __init__(self, index: int) -> None:
        self.index = index
        self.data: dict[bytes, Any] = {}
        self.expires: dict[bytes, int] = {}
        self._scan_keys: list[bytes] = []
        self._scan_pos = 0

    def __len__(self) -> int:
        return len(self.data)


class Keyspace:
    """All databases of one shard, plus the counters INFO reports."""

    def __init__(self, databases: int = 16, clock: Any = now_ms) -> None:
        self.dbs = [Database(i) for i in range(databases)]
        self.clock = clock
        self.now = clock()
        self.expired_keys = 0
        self.hits = 0
        self.misses = 0
        self.dirty = 0  # writes since the last save, as Redis counts them
        self.replica = False  # replicas wait for the master's DEL instead of expiring
        self.on_expire: Any = None  # called with (db index, key) when a key expires

    def tick(self) -> int:
        """Refresh the cached time once per batch: every command in it sees the same clock."""
        self.now = self.clock()
        return self.now

    # --- reading -------------------------------------------------------------------------

    def get(self, db: Database, key: bytes) -> Any:
        """The live value of ``key`` or None; an expired key is deleted on the way."""
        value = db.data.get(key)
        if value is not None and db.expires and key in db.expires:
            if db.expires[key] <= self.now and not self.replica:
                self._expire(db, key)
                return None
        return value

    def get_typed(self, db: Database, key: bytes, kind: type) -> Any:
        value = self.get(db, key)
        if value is not None and type(value) is not kind:
            raise RedisError(WRONGTYPE)
        return value

    def exists(self, db: Database, key: bytes) -> bool:
        return self.get(db, key) is not None

    def ttl_ms(self, db: Database, key: bytes) -> int | None:
        """Absolute expiry time in ms, or None for a persistent key (call after ``get``)."""
        return db.expires.get(key)

    # --- writing -------------------------------------------------------------------------

    def set(self, db: Database, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        db.data[key] = value
        if not keep_ttl and db.expires:
            db.expires.pop(key, None)
        self.dirty += 1

    def delete(self, db: Database, key: bytes) -> bool:
        if self.get(db, key) is None:
            return False
        del db.data[key]
        if db.expires:
            db.expires.pop(key, None)
        self.dirty += 1
        return True

    def modified(self, db: Database, key: bytes) -> None:
        """Record an in-place change of a collection (LPUSH on an existing list ...)."""
        self.dirty += 1

    def set_expire(self, db: Database, key: bytes, when_ms: int) -> None:
        db.expires[key] = when_ms
        self.dirty += 1

    def persist(self, db: Database, key: bytes) -> bool:
        if db.expires.pop(key, None) is None:
            return False
        self.dirty += 1
        return True

    def flush(self, db: Database) -> None:
        db.data.clear()
        db.expires.clear()
        db._scan_keys = []
        db._scan_pos = 0
        self.dirty += 1

    def _expire(self, db: Database, key: bytes) -> None:
        del db.data[key]
        del db.expires[key]
        self.expired_keys += 1
        if self.on_expire is not None:
            self.on_expire(db.index, key)

    # --- active expiry -------------------------------------------------------------------

    def active_expire(self, budget_ms: float = 25.0, sample: int = 20) -> int:
        """Remove expired keys for at most ``budget_ms``, as Redis' active expire cycle does.

        Each database is walked through a snapshot of its keys with a TTL, ``sample`` at a
        time; the walk goes on while more than a quarter of a sample had expired.
        """
        if self.replica:
            return 0
        deadline = time.perf_counter() + budget_ms / 1000
        removed = 0
        for db in self.dbs:
            if not db.expires:
                continue
            while True:
                expired, checked = self._expire_sample(db, sample)
                removed += expired
                if checked == 0 or expired * 4 <= checked or time.perf_counter() > deadline:
                    break
            if time.perf_counter() > deadline:
                break
        return removed

    def _expire_sample(self, db: Database, sample: int) -> tuple[int, int]:
        if db._scan_pos >= len(db._scan_keys):
            db._scan_keys = list(db.expires)
            db._scan_pos = 0
        batch = db._scan_keys[db._scan_pos : db._scan_pos + sample]
        db._scan_pos += len(batch)
        now = self.now = self.clock()
        expired = 0
        for key in batch:
            when = db.expires.get(key)
            if when is not None and when <= now:
                self._expire(db, key)
                expired += 1
        if db._scan_pos >= len(db._scan_keys):
            db._scan_keys = []
        return expired, len(batch)
