"""A shard's data: one :class:`Database` per Redis database, with lazy and active expiry.

Values are plain Python objects chosen for memory: ``bytes`` for strings (Redis' own small
strings cost ~105 bytes a key; a dict of bytes is ~155).  Expiry times live in a side dict
holding only the keys that have one, so keys without a TTL pay nothing for it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from shard.errors import WRONGTYPE, RedisError

LFU_INIT_VAL = 5  # a new key's LFU counter, as in Redis


def now_ms() -> int:
    return int(time.time() * 1000)


class Database:
    __slots__ = ("index", "data", "expires", "lru", "_scan_keys", "_scan_pos")

    def __init__(self, index: int) -> None:
        self.index = index
        self.data: dict[bytes, Any] = {}
        self.expires: dict[bytes, int] = {}
        # Per key what Redis keeps in an object's 24 LRU bits: the last access in seconds
        # (LRU policies and OBJECT IDLETIME), or under an LFU policy the last decrement time
        # in minutes << 8 | a logarithmic access counter (OBJECT FREQ).  Keys accessed in the
        # same second share one int object, so an entry costs only its dict slot (~41 bytes;
        # 1M keys measured 1.95x Redis' used_memory with it, 1.52x without).
        self.lru: dict[bytes, int] = {}
        self._scan_keys: list[bytes] = []
        self._scan_pos = 0

    def __len__(self) -> int:
        return len(self.data)


class Keyspace:
    """All databases of one shard, plus the counters INFO reports."""

    def __init__(self, databases: int = 16, clock: Callable[[], int] = now_ms) -> None:
        self.dbs = [Database(i) for i in range(databases)]
        self.clock = clock
        self.now: int = clock()
        self.expired_keys = 0
        self.hits = 0
        self.misses = 0
        self.dirty = 0  # writes since the last save, as Redis counts them
        self.replica = False  # replicas wait for the master's DEL instead of expiring
        self.from_master = False  # on a replica: the entry running comes from the master
        # CLIENT PAUSE (wall-clock ms): until then keys that expire read as gone but stay,
        # and the active cycle rests, as Redis keeps the dataset still during a pause.
        self.paused_until = 0
        self.lru_clock = self.now // 1000
        self.lfu = False  # an LFU maxmemory-policy is set: keep access counters, not times
        self.lfu_log_factor = 10
        self.lfu_decay_time = 1
        self.on_expire: Any = None  # called with (db index, key) when a key expires
        self.on_new: Any = None  # called with (db index, key) before a key is created

    def tick(self) -> int:
        """Refresh the cached time once per batch: every command in it sees the same clock."""
        now = self.now = self.clock()
        if now // 1000 != self.lru_clock:
            self.lru_clock = now // 1000
        return now

    # --- reading -------------------------------------------------------------------------

    def get(self, db: Database, key: bytes, touch: bool = True) -> Any:
        """The live value of ``key`` or None; an expired key is deleted on the way.

        ``touch`` counts the access (Redis' LOOKUP_NOTOUCH is ``touch=False``).
        """
        value = db.data.get(key)
        if value is None:
            return None
        if db.expires and key in db.expires:
            if db.expires[key] <= self.now:
                if not self.replica:
                    if self.now >= self.paused_until:
                        self._expire(db, key)
                    return None
                if not self.from_master:  # a replica waits for the master's DEL, but its
                    return None  # clients see the key as gone already (as Redis 7.0)
        if touch:
            if self.lfu:
                self._lfu_touch(db, key)
            else:
                db.lru[key] = self.lru_clock
        return value

    # --- access clock and counter (OBJECT IDLETIME / FREQ, eviction) ---------------------

    def idle_seconds(self, db: Database, key: bytes) -> int:
        return max(self.lru_clock - db.lru.get(key, self.lru_clock), 0)

    def access_frequency(self, db: Database, key: bytes) -> int:
        return self._lfu_decayed(db.lru.get(key, LFU_INIT_VAL))

    def _minutes(self) -> int:
        return (self.now // 60000) & 0xFFFF

    def _lfu_decayed(self, packed: int) -> int:
        """The counter after the decay owed since it was last decremented (Redis' rule)."""
        counter = packed & 255
        if not self.lfu_decay_time:
            return counter
        last, now = packed >> 8, self._minutes()
        elapsed = now - last if now >= last else 0xFFFF - last + now
        periods = elapsed // self.lfu_decay_time
        return 0 if periods > counter else counter - periods

    def _lfu_touch(self, db: Database, key: bytes) -> None:
        counter = self._lfu_decayed(db.lru.get(key, LFU_INIT_VAL))
        if counter < 255:
            base = max(counter - LFU_INIT_VAL, 0)
            if random.random() < 1.0 / (base * self.lfu_log_factor + 1):
                counter += 1
        db.lru[key] = (self._minutes() << 8) | counter

    def configure_access_tracking(self, policy: str, log_factor: int, decay_time: int) -> None:
        self.lfu = "lfu" in policy
        self.lfu_log_factor = log_factor
        self.lfu_decay_time = decay_time

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
        if self.on_new is not None and key not in db.data:  # the "new" keyspace event
            self.on_new(db.index, key)
        db.data[key] = value
        if self.lfu:  # an overwritten key keeps its counter, as in Redis
            if key not in db.lru:
                db.lru[key] = (self._minutes() << 8) | LFU_INIT_VAL
        else:
            db.lru[key] = self.lru_clock
        if not keep_ttl and db.expires:
            db.expires.pop(key, None)
        self.dirty += 1

    def delete(self, db: Database, key: bytes) -> bool:
        if self.get(db, key) is None:
            return False
        del db.data[key]
        db.lru.pop(key, None)
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
        db.lru.clear()
        db._scan_keys = []
        db._scan_pos = 0
        self.dirty += 1

    def _expire(self, db: Database, key: bytes) -> None:
        del db.data[key]
        del db.expires[key]
        db.lru.pop(key, None)
        self.expired_keys += 1
        if self.on_expire is not None:
            self.on_expire(db.index, key)

    # --- active expiry -------------------------------------------------------------------

    def active_expire(self, budget_ms: float = 25.0, sample: int = 20) -> int:
        """Remove expired keys for at most ``budget_ms``, as Redis' active expire cycle does.

        Each database is walked through a snapshot of its keys with a TTL, ``sample`` at a
        time; the walk goes on while more than a quarter of a sample had expired.
        """
        if self.replica or self.clock() < self.paused_until:
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
