"""Memory accounting and eviction in a shard: ``used_memory``, ``maxmemory`` and its policies.

**Accounting.**  Redis reports what its allocator holds; so do we.  A shard's memory is what
CPython's small-object allocator (pymalloc) has handed out plus what glibc's malloc has
handed out (large strings, dict tables, lists).  Both are read from the allocators:
``mallinfo2()`` for malloc (~20 us), and pymalloc's "bytes in allocated blocks" from
``sys._debugmallocstats()`` (a walk of its arenas, ~1 ms per 64 MB, so done at most once
per calibration period).  Between calibrations the pymalloc part follows
``sys.getallocatedblocks()`` (a counter, nearly free) times the average block size of the
last calibration.  Measured against the RSS growth of a process storing 1M small strings the
sum is within 0.5% (bench/memory.py prints the comparison), and unlike RSS it falls when keys
are deleted, which is what eviction needs.

**Eviction** follows Redis' sampled approximations: every database contributes
``maxmemory-samples`` random keys (all keys, or keys with a TTL for ``volatile-*``) to a pool of
the 16 best candidates seen so far, and the best candidate still present is deleted; random
policies pick a random key, visiting the databases in turn.  Python dicts offer no random
access, so a sampler keeps a snapshot list of a dict's keys and draws indexes from it;
vanished keys are skipped, and the snapshot is taken again once it is stale (many misses, or
the dict grew by a quarter, or a quarter of it was evicted).
"""

from __future__ import annotations

import ctypes
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from shard.keyspace import Database, Keyspace
from shard.memory import value_size

POOL_SIZE = 16  # candidates kept between eviction rounds (Redis' EVPOOL_SIZE)
CALIBRATE_EVERY_S = 1.0  # how old the pymalloc byte count may get before it is measured again
NEAR_LIMIT = 0.9  # above this share of maxmemory, measure more often (see Evictor.check)
KEY_OVERHEAD = 2 * 40  # the key's slots in the data and access-clock dicts
EXPIRE_OVERHEAD = 40 + 32  # a slot in the expires dict and its int
POLICIES = ("noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru",
            "volatile-lfu", "volatile-random", "volatile-ttl")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _load_mallinfo() -> Callable[[], int] | None:
    try:
        libc = ctypes.CDLL(None)
        function = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    function.restype = _MallInfo2

    def malloc_bytes() -> int:
        info = function()
        return int(info.uordblks + info.hblkhd)

    return malloc_bytes


def _pymalloc_bytes() -> int | None:
    """Bytes in blocks pymalloc has handed out (None if pymalloc is not in use).

    ``_debugmallocstats`` writes to the C-level stderr, so fd 2 points at a temporary file
    while it runs (the shard is single-threaded: nothing else writes meanwhile).
    """
    saved = os.dup(2)
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        for line in out.read().splitlines():
            if line.startswith(b"# bytes in allocated blocks"):
                return int(line.split(b"=")[1].replace(b",", b""))
    return None


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class MemoryMeter:
    """This process' allocated bytes, as an allocator sees them."""

    def __init__(self) -> None:
        self._malloc = _load_mallinfo()
        self._py_bytes = 0
        self._py_blocks = 0
        self._per_block = 0.0
        self._calibrated = 0.0
        self.calibration_cost = 0.0  # seconds the last calibration took
        self.peak = 0
        self.calibrate()
        self.startup = self.used()

    def calibrate(self) -> None:
        started = time.perf_counter()
        blocks = sys.getallocatedblocks()
        measured = _pymalloc_bytes()
        if measured is None:
            measured, self._per_block = 0, 0.0
        elif abs(blocks - self._py_blocks) >= 1000 and self._py_blocks:
            # The blocks allocated or freed since the last calibration say more about the
            # workload's objects than the average over the interpreter's own.
            marginal = (measured - self._py_bytes) / (blocks - self._py_blocks)
            self._per_block = marginal if 16 <= marginal <= 512 else measured / blocks
        elif blocks and not self._per_block:
            self._per_block = measured / blocks
        self._py_bytes, self._py_blocks = measured, blocks
        self._calibrated = time.monotonic()
        self.calibration_cost = time.perf_counter() - started

    def fresh(self) -> int:
        """``used`` from a recent calibration: the block-count estimate drifts when new
        objects differ in size from the average, which matters near the limit.  Calibrating
        takes ~1 ms per 64 MB, so it runs at most every 50x its own cost (2% of the time)."""
        if time.monotonic() - self._calibrated > max(0.1, 50 * self.calibration_cost):
            self.calibrate()
        return self.used()

    def used(self) -> int:
        """Allocated bytes now: cheap enough to call before every batch."""
        if time.monotonic() - self._calibrated > CALIBRATE_EVERY_S:
            self.calibrate()
        if self._malloc is None:
            value = _rss_bytes()
        else:
            drift = (sys.getallocatedblocks() - self._py_blocks) * self._per_block
            value = max(int(self._py_bytes + drift), 0) + self._malloc()
        if value > self.peak:
            self.peak = value
        return value

    def exact(self) -> int:
        self.calibrate()
        return self.used()


class _Sampler:
    """Random keys of one dict, drawn from a snapshot of its key list (see the module doc)."""

    __slots__ = ("keys", "misses", "size_at_snapshot", "taken")

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.misses = 0
        self.size_at_snapshot = 0
        self.taken = 0  # keys evicted since the snapshot: new keys replaced them unseen

    def sample(self, source: dict[bytes, Any], count: int) -> list[bytes]:
        size = len(source)
        if size <= count:
            return list(source)
        if (not self.keys or self.misses * 2 > len(self.keys) or self.taken * 4 > len(self.keys)
                or size > self.size_at_snapshot + self.size_at_snapshot // 4 + 16):
            self._snapshot(source)
        out = self._draw(source, count)
        if not out:  # the snapshot had gone stale in one go (a flush, a burst of deletes)
            self._snapshot(source)
            out = self._draw(source, count)
        return out

    def _snapshot(self, source: dict[bytes, Any]) -> None:
        self.keys = list(source)
        self.misses = self.taken = 0
        self.size_at_snapshot = len(source)

    def _draw(self, source: dict[bytes, Any], count: int) -> list[bytes]:
        keys, out = self.keys, []
        for _ in range(count * 3):  # a stale snapshot gets a few extra draws
            key = keys[random.randrange(len(keys))]
            if key in source:
                out.append(key)
                if len(out) == count:
                    break
            else:
                self.misses += 1
        return out


class Evictor:
    """``maxmemory`` for one shard: its share of the limit, the policy, and the pool."""

    def __init__(self, ks: Keyspace, on_evict: Callable[[int, bytes], None]) -> None:
        self.ks = ks
        self.on_evict = on_evict
        self.meter = MemoryMeter()
        self.limit = 0
        self.policy = "noeviction"
        self.samples = 5
        self.evicted_keys = 0
        self.eviction_exceeded_time = 0.0
        self.over_limit = False  # the last check ended above the limit (OOM for denyoom)
        self._pool: list[tuple[float, int, bytes]] = []
        self._samplers: dict[tuple[int, bool], _Sampler] = {}
        self._next_db = 0

    def configure(self, config: dict[str, Any]) -> None:
        shards = max(int(config.get("shard-count", 1)), 1)
        maxmemory = int(config.get("maxmemory", 0))
        self.limit = -(-maxmemory // shards) if maxmemory else 0
        policy = str(config.get("maxmemory-policy", "noeviction"))
        if policy != self.policy:
            self._pool.clear()
        self.policy = policy
        self.samples = max(int(config.get("maxmemory-samples", 5)), 1)

    # --- the check before commands ---------------------------------------------------------

    def check(self, budget_s: float = 0.05) -> bool:
        """Evict until this shard is under its limit; False if it could not get there
        (nothing left to evict, or the policy forbids it): denyoom commands then fail."""
        if not self.limit or self.ks.now < self.ks.paused_until:
            self.over_limit = False  # no eviction and no OOM during CLIENT PAUSE, as Redis
            return True
        used = self.meter.used()
        if used > self.limit * NEAR_LIMIT:
            used = self.meter.fresh()
        if used <= self.limit:
            self.over_limit = False
            return True
        if self.policy == "noeviction":
            self.over_limit = True
            return False
        # Like Redis, free what is over the limit, counting each evicted key's own size
        # (re-measuring after each key would follow the allocators' noise instead).
        deadline = time.perf_counter() + budget_s
        tofree, freed = used - self.limit, 0
        while freed < tofree:
            chosen = self._pick()
            if chosen is None:
                self.over_limit = True
                return False
            freed += self._delete(*chosen)
            if time.perf_counter() > deadline:
                break  # go on at the next check rather than stall this batch
        self.over_limit = False
        return True

    def evict_some(self, count: int) -> int:
        """Evict up to ``count`` keys chosen by the policy; the number evicted."""
        done = 0
        for _ in range(count):
            chosen = self._pick()
            if chosen is None:
                break
            db, key = chosen
            self._delete(db, key)
            done += 1
        return done

    def _delete(self, db: Database, key: bytes) -> int:
        """Evict one key; roughly the bytes that frees."""
        ks = self.ks
        size = 0
        value = db.data.pop(key, None)
        if value is not None:
            size = sys.getsizeof(key) + value_size(value, 5) + KEY_OVERHEAD
            db.lru.pop(key, None)
            if db.expires and db.expires.pop(key, None) is not None:
                size += EXPIRE_OVERHEAD
            ks.dirty += 1
        self.evicted_keys += 1
        self._sampler(db).taken += 1
        self.on_evict(db.index, key)
        return size

    # --- choosing a key --------------------------------------------------------------------

    def _source(self, db: Database) -> dict[bytes, Any]:
        return db.data if self.policy.startswith("allkeys") else db.expires

    def _sampler(self, db: Database) -> _Sampler:
        slot = (db.index, self.policy.startswith("volatile"))
        sampler = self._samplers.get(slot)
        if sampler is None:
            sampler = self._samplers[slot] = _Sampler()
        return sampler

    def _pick(self) -> tuple[Database, bytes] | None:
        if self.policy.endswith("random"):
            return self._pick_random()
        for _ in range(4):
            if not self._populate():
                return None
            while self._pool:
                _score, index, key = self._pool.pop()
                db = self.ks.dbs[index]
                if key in self._source(db):
                    return db, key
        return None

    def _pick_random(self) -> tuple[Database, bytes] | None:
        dbs = self.ks.dbs
        for _ in range(len(dbs)):
            self._next_db = (self._next_db + 1) % len(dbs)
            db = dbs[self._next_db]
            source = self._source(db)
            if source:
                found = self._sampler(db).sample(source, 1)
                if found:
                    return db, found[0]
        return None

    def _populate(self) -> bool:
        """Add sampled keys of every database to the pool; False when there are no keys."""
        any_keys = False
        for db in self.ks.dbs:
            source = self._source(db)
            if not source:
                continue
            any_keys = True
            for key in self._sampler(db).sample(source, self.samples):
                self._offer(self._score(db, key), db.index, key)
        return any_keys

    def _score(self, db: Database, key: bytes) -> float:
        """Higher is a better candidate: idle seconds, 255 - frequency, or -expiry."""
        policy = self.policy
        if policy.endswith("lru"):
            return float(self.ks.idle_seconds(db, key))
        if policy.endswith("lfu"):
            return float(255 - self.ks.access_frequency(db, key))
        return -float(db.expires.get(key, 0))

    def _offer(self, score: float, index: int, key: bytes) -> None:
        pool = self._pool
        entry = (score, index, key)
        if entry in pool:
            return
        if len(pool) < POOL_SIZE:
            pool.append(entry)
        elif score > pool[0][0]:
            pool[0] = entry
        else:
            return
        pool.sort(key=lambda e: e[0])  # worst first, best last (popped first)

    # --- reports ---------------------------------------------------------------------------

    def info(self) -> dict[bytes, Any]:
        used = self.meter.exact()
        return {
            b"used_memory": used,
            b"used_memory_peak": self.meter.peak,
            b"used_memory_startup": self.meter.startup,
            b"used_memory_rss": _rss_bytes(),
            b"evicted_keys": self.evicted_keys,
            b"maxmemory_shard": self.limit,
        }
