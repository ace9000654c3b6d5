"""A shard's control socket (server/control.py): statistics for atoll-admin and INFO, and
the shard's part of online slot moves and restarts (server/migration.py).

Slot moves: the coordinator takes a *whole* intent on the shard (it waits, in order, behind
transactions holding keys here), exports the keys of the moving slots, and after the
destination imported them, drops them here and marks the slots as gone.  From then on an
entry that touches a gone slot (a stale plan, a client blocked on such a key) is answered
``Moved(entry)`` and the gateway routes it again by its current slot map.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from server.control import ControlError, Handler, process_memory
from shard import wire
from shard.intents import Waiting
from shard.scan import MOVED
from shard.slots import NSLOTS
from shard.values import decode_value, encode_value, type_name

if TYPE_CHECKING:
    from shard.actor import ShardExecutor

CONTROL_IDENTITY = b""  # replies to a parked control lock go nowhere (the ROUTER drops them)
LATENCY_SAMPLES = 2048


class ShardStats:
    """Per-command service time (a batch's time over its commands) and the ops rate; the
    same numbers feed INFO (``__info``) and atoll-admin."""

    def __init__(self) -> None:
        self.latency_us: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.rate_samples: deque[tuple[float, int]] = deque(maxlen=32)
        self.started = time.time()

    def record_batch(self, seconds: float, commands: int) -> None:
        if commands:
            self.latency_us.append(seconds * 1e6 / commands)

    def sample_rate(self, processed: int) -> None:
        self.rate_samples.append((time.monotonic(), processed))

    def ops_per_sec(self, processed: int) -> float:
        now = time.monotonic()
        for when, count in self.rate_samples:  # the oldest sample within the last ~second
            if now - when <= 1.5 and now > when:
                return (processed - count) / (now - when)
        return 0.0

    def percentiles(self) -> tuple[float, float]:
        if not self.latency_us:
            return 0.0, 0.0
        ordered = sorted(self.latency_us)
        return (ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)])


def key_slot(key: bytes) -> int:
    from gateway.links import key_slot as slot_of

    return slot_of(key)


class ShardControl:
    def __init__(self, executor: ShardExecutor, owners: list[int] | None) -> None:
        self.shard = executor
        index = executor.index
        self.owned = bytearray(NSLOTS)
        for slot, owner in enumerate(owners or [index] * NSLOTS):
            self.owned[slot] = owner == index
        self.handlers: dict[str, Handler] = {
            "ping": lambda r: "pong", "stats": self.stats, "lock": self.lock,
            "locked": self.locked, "unlock": self.unlock, "export_slots": self.export_slots,
            "import_keys": self.import_keys, "give_away": self.give_away,
            "take_slots": self.take_slots, "handoff": self.handoff,
            "rewrite": lambda r: int(self.shard.aof.start_rewrite()),
        }
        self.run_dir = ""

    # --- statistics ------------------------------------------------------------------------

    def stats(self, request: dict[str, Any]) -> dict[str, Any]:
        shard = self.shard
        ks = shard.ks
        p50, p99 = shard.batch_stats.percentiles()
        persistence = shard.persistence
        memory = shard.evictor.info()
        return {
            "shard": shard.index, "pid": os.getpid(), "rss": process_memory(os.getpid()),
            "uptime": time.time() - shard.batch_stats.started,
            "slots": sum(self.owned),
            "keys": {db.index: len(db.data) for db in ks.dbs if db.data},
            "expires": {db.index: len(db.expires) for db in ks.dbs if db.expires},
            "used_memory": int(memory.get(b"used_memory", 0)),
            "commands": shard.commands_processed,
            "ops_per_sec": round(shard.batch_stats.ops_per_sec(shard.commands_processed), 1),
            "latency_p50_us": round(p50, 1), "latency_p99_us": round(p99, 1),
            "blocked_clients": len(shard.blocked.by_token),
            "log_size": shard.aof.file.size if shard.aof.file is not None else None,
            "last_save": persistence.last_save, "saving": persistence.job is not None,
            "intents_held": len(shard.intents.held), "moved_out": len(shard.moved_out),
        }

    def handoff(self, request: dict[str, Any]) -> int:
        """Save every key for the next life of this shard and stop (``restart``): only while
        the coordinator holds the whole shard and the gateways hold its slots."""
        shard = self.shard
        for waiter in list(shard.blocked.by_token.values()):  # they wait again in the next life
            shard.blocked.remove(waiter)
            shard.outbox.append((waiter.identity, waiter.token, wire.Moved([waiter.meta, waiter.argv])))
        written = write_handoff(self.shard, self.run_dir)
        self.shard.stop_flag.append(1)
        return written

    # --- slot moves --------------------------------------------------------------------------

    def lock(self, request: dict[str, Any]) -> int:
        """Take a whole intent for transaction ``txid``: 1 when held now, 0 when queued (ask
        ``locked``).  A snapshot in progress refuses: its walk must not lose moving keys."""
        shard = self.shard
        txid = int(request["txid"])
        if shard.persistence.job is not None:
            raise ControlError("a snapshot is in progress; try again when it is done")
        intents = shard.intents
        if intents.holds(txid, [], True):
            return 1
        if not intents.blocked([], True, None, txid):
            intents.acquire(txid, [], True)
            return 1
        argv = [b"__lock", b"%d" % txid, b"WAIT", b"*"]
        token = shard.blocked.next_token
        shard.blocked.next_token += 1
        intents.add_waiting(Waiting(CONTROL_IDENTITY, token, 0, argv, [], True, None))
        return 0

    def locked(self, request: dict[str, Any]) -> bool:
        return self.shard.intents.holds(int(request["txid"]), [], True)

    def unlock(self, request: dict[str, Any]) -> int:
        self.shard.release_intents(int(request["txid"]))
        return 1

    def _keys_of(self, slots: set[int]) -> list[tuple[Any, bytes]]:
        return [(db, key) for db in self.shard.ks.dbs for key in list(db.data)
                if key_slot(key) in slots]

    def export_slots(self, request: dict[str, Any]) -> list[list[Any]]:
        """``[[db, key, type, payload, pexpireat or -1], ...]`` of every live key in the slots."""
        ks = self.shard.ks
        out = []
        for db, key in self._keys_of(set(request["slots"])):
            value = ks.get(db, key, touch=False)  # expired keys go away here
            if value is None:
                continue
            kind, payload = encode_value(value)
            out.append([db.index, key, kind, payload, db.expires.get(key, -1)])
        return out

    def import_keys(self, request: dict[str, Any]) -> int:
        ks = self.shard.ks
        effects = self.shard.effects
        for db_index, key, kind, payload, when in request["items"]:
            db = ks.dbs[db_index]
            MOVED.came_back(db_index, key)
            if ks.get(db, key, touch=False) is not None:
                ks.delete(db, key)
            ks.set(db, key, decode_value(kind, payload))
            if when >= 0:
                ks.set_expire(db, key, when)
            if effects is not None:  # the append-only log must see keys that moved in
                effects.pending.append((db_index, [b"__import", key, kind, payload,
                                                   b"%d" % when, b"REPLACE", b"%d" % db_index]))
        self._commit_log()
        return len(request["items"])

    def _commit_log(self) -> None:
        """Moved keys reach the shard's log before the mover hears back (a crash then keeps
        each key on exactly one shard's log)."""
        if self.shard.effects is not None:
            self.shard.aof.commit()

    def take_slots(self, request: dict[str, Any]) -> int:
        for slot in request["slots"]:
            self.owned[slot] = 1
            self.shard.moved_out.discard(slot)
        return len(request["slots"])

    def give_away(self, request: dict[str, Any]) -> int:
        """Drop the keys of ``slots`` (now on another shard) and answer later entries on them,
        and clients blocked on them, with Moved.  WATCHers of the keys see them change."""
        shard = self.shard
        slots = set(request["slots"])
        dropped = 0
        dbs = shard.ks.dbs
        # The keys export_slots listed (the coordinator holds the shard: no key came since).
        listed = [(dbs[db], key) for db, key in request["keys"]] if "keys" in request else None
        version = int(request.get("version", 0))  # the slot map's, once this group moved
        for db, key in listed if listed is not None else self._keys_of(slots):
            value = db.data.get(key)
            if value is not None:  # a SCAN that has not passed here yet still returns it
                MOVED.gave_away(version, db.index, key, type_name(value))
            if shard.ks.delete(db, key):
                dropped += 1
                if shard.effects is not None:
                    shard.effects.pending.append((db.index, [b"del", key]))
            if shard.watches.by_key:
                shard.watches.touched(db.index, [key])
        self._commit_log()
        for slot in slots:
            self.owned[slot] = 0
        shard.moved_out.update(slots)
        for waiter in list(shard.blocked.by_token.values()):
            if any(key_slot(key) in slots for key in waiter.keys):
                shard.blocked.remove(waiter)
                shard.outbox.append((waiter.identity, waiter.token,
                                     wire.Moved([waiter.meta, waiter.argv])))
        return dropped


def handoff_path(run_dir: str, index: int) -> str:
    return os.path.join(run_dir, f"handoff-shard-{index}.msgpack")


def write_handoff(executor: ShardExecutor, run_dir: str) -> int:
    """Write every key of the shard for its next life (``atoll-admin restart``); the caller
    then stops the process and the supervisor starts it again."""
    import msgpack

    control = ShardControl(executor, None)
    items = control.export_slots({"slots": range(NSLOTS)})
    path = handoff_path(run_dir, executor.index)
    with open(path + ".tmp", "wb") as f:
        f.write(msgpack.packb(items, use_bin_type=True))
    os.replace(path + ".tmp", path)
    return len(items)


def load_handoff(executor: ShardExecutor, run_dir: str) -> bool:
    """Load what a previous life of this shard handed off; False when there is nothing."""
    import msgpack

    path = handoff_path(run_dir, executor.index)
    try:
        with open(path, "rb") as f:
            items = msgpack.unpackb(f.read(), raw=False)
    except FileNotFoundError:
        return False
    ShardControl(executor, None).import_keys({"items": items})
    os.unlink(path)
    executor.ks.dirty = 0
    return True


from shard.table import INTERNAL, command  # noqa: E402


@command("__BARRIER", 1, "admin", route=INTERNAL)
def barrier(ctx: Any, args: list[bytes]) -> int:
    """Answers in order: everything a gateway sent before it has run (or waits for intents)."""
    return 1
