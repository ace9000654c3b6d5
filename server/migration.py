"""Online slot moves and shard restarts, driven by the supervisor (in a worker thread).

Moving a group of slots S from shard A to shard B (see gateway/control.py for the gateway's
side and shard/control.py for the shards'):

1. every gateway *parks* S: new commands on S wait in the gateway, in order; a barrier round
   trip proves that what it sent to A before has run there;
2. the mover takes a *whole* intent on A and B (lower index first, as every coordinator
   waits, so no deadlock): it waits behind transactions holding keys there, and from then on
   nothing else runs on them (a few milliseconds: groups are small);
3. A exports the keys of S, B imports them and takes S; A drops them and marks S as gone:
   from now on A answers entries on S with ``Moved`` (the gateway sends them on);
4. the intents are released; every gateway *unparks* S (after a second barrier to A, so the
   entries A answered Moved go first), routing S to B from now on;
5. the supervisor records the new owner and saves the slot map next to the data.

All gateways must have parked before the keys move and each one unparks on its own: the keys
are on B by then, so a gateway already routing to B is always right.  A command on a key of a
moving slot waits for at most one group's move.  Restarting a shard is the same dance with all
its slots: park them, hold the shard, let it write its keys to a handoff file and exit; the
supervisor starts it again, it loads the handoff, and the gateways unpark.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import zmq

from server.control import ControlClient, ControlError, control_endpoint

if TYPE_CHECKING:
    from server.supervisor import Supervisor

log = logging.getLogger("atoll")
MOVER_GATEWAY = 0xFFFF  # txids of the mover: never a gateway's (shard/intents.py GATEWAY_SHIFT)
LOCK_TIMEOUT = 30.0


class Job:
    """One move, rebalance or restart, run in its own thread; ``atoll-admin`` polls it."""

    def __init__(self, kind: str, total: int) -> None:
        self.kind = kind
        self.total = total
        self.done = 0
        self.keys = 0
        self.groups = 0
        self.started = time.time()
        self.finished: float | None = None
        self.error: str | None = None
        self.max_pause_ms = 0.0

    def report(self) -> dict[str, Any]:
        end = self.finished or time.time()
        return {"kind": self.kind, "slots_total": self.total, "slots_done": self.done,
                "keys_moved": self.keys, "groups": self.groups,
                "seconds": round(end - self.started, 3), "finished": self.finished is not None,
                "error": self.error, "max_pause_ms": round(self.max_pause_ms, 1)}


class Mover:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.context: zmq.Context[Any] = zmq.Context()
        self.counter = 0
        self.lock = threading.Lock()  # one job at a time

    def client(self, name: str, timeout: float = 10.0) -> ControlClient:
        return ControlClient(self.context, control_endpoint(self.sup.run_dir, name), timeout)

    def _txid(self) -> int:
        from shard.intents import GATEWAY_SHIFT

        self.counter += 1
        return (MOVER_GATEWAY << GATEWAY_SHIFT) | self.counter

    def _gateways(self) -> list[ControlClient]:
        # The replication actor routes too (a replica's stream, a full sync's cut).
        names = [f"gateway-{i}" for i in range(self.sup.gateways)] + ["replication-0"]
        return [self.client(name) for name in names]

    def _hold(self, shard: ControlClient, txid: int) -> None:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                if shard.call("lock", txid=txid) == 1 or shard.call("locked", txid=txid):
                    break
                while not shard.call("locked", txid=txid):
                    if time.monotonic() > deadline:
                        raise ControlError("timed out waiting for the shard's intents")
                    time.sleep(0.001)
                return
            except ControlError as exc:
                if "snapshot" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # a snapshot is being written: moves wait for its end

    # --- slot moves ----------------------------------------------------------------------

    def move(self, job: Job, source: int, target: int, slots: list[int], group: int) -> None:
        owners = self.sup.slot_map.owners
        slots = [s for s in slots if owners[s] == source]
        job.total = len(slots)
        a, b = self.client(f"shard-{source}"), self.client(f"shard-{target}")
        gateways = self._gateways()
        try:
            for first in range(0, len(slots), group):
                chunk = slots[first : first + group]
                started = time.monotonic()
                job.keys += self._move_group(a, b, gateways, source, target, chunk)
                job.max_pause_ms = max(job.max_pause_ms, 1000 * (time.monotonic() - started))
                job.done += len(chunk)
                job.groups += 1
        finally:
            for c in [a, b, *gateways]:
                c.close()

    def _move_group(self, a: ControlClient, b: ControlClient, gateways: list[ControlClient],
                    source: int, target: int, slots: list[int]) -> int:
        txid = self._txid()
        for gw in gateways:
            gw.call("park", slots=slots, source=source)
        ordered = [a, b] if source < target else [b, a]
        try:
            for shard in ordered:
                self._hold(shard, txid)
            items = a.call("export_slots", slots=slots)
            b.call("import_keys", items=items)
            b.call("take_slots", slots=slots)
            a.call("give_away", slots=slots, keys=[[item[0], item[1]] for item in items],
                   version=self.sup.slot_map.version + 1)  # what slot_moved makes it
        finally:
            for shard in ordered:
                shard.call("unlock", txid=txid)
        self.sup.slot_moved(slots, target)
        version = self.sup.slot_map.version
        for gw in gateways:
            gw.call("unpark", slots=slots, owner=target, source=source, version=version)
        return len(items)

    # --- restart -------------------------------------------------------------------------

    def restart(self, job: Job, index: int) -> None:
        slots = self.sup.slot_map.slots_of(index)
        shard = self.client(f"shard-{index}")
        gateways = self._gateways()
        before = self.sup.restarts.get(f"shard-{index}", 0)
        txid = self._txid()
        try:
            for gw in gateways:
                gw.call("park", slots=slots, source=index)
            try:
                self._hold(shard, txid)
                job.keys = shard.call("handoff")
            except ControlError:
                shard.call("unlock", txid=txid)
                raise
            shard.close()
            deadline = time.monotonic() + 120
            while True:  # the supervisor starts it again; it answers once loaded
                if self.sup.restarts.get(f"shard-{index}", 0) > before:
                    try:
                        shard.call("ping", timeout=0.5)
                        break
                    except ControlError:
                        pass
                if time.monotonic() > deadline:
                    raise ControlError(f"shard {index} did not come back")
                time.sleep(0.05)
        finally:
            for gw in gateways:
                gw.call("unpark", slots=slots, owner=index, source=index,
                        version=self.sup.slot_map.version)
            for c in [shard, *gateways]:
                c.close()
        job.done = len(slots)


def rebalance_plan(owners: list[int], shards: int) -> list[tuple[int, int, list[int]]]:
    """Moves ``(from, to, slots)`` that leave every shard with 16384/shards slots (+-1)."""
    per_shard = {i: [s for s, o in enumerate(owners) if o == i] for i in range(shards)}
    base, extra = divmod(len(owners), shards)
    target = {i: base + (1 if i < extra else 0) for i in range(shards)}
    surplus = {i: per_shard[i][target[i]:] for i in range(shards) if len(per_shard[i]) > target[i]}
    moves: list[tuple[int, int, list[int]]] = []
    for dst in range(shards):
        need = target[dst] - len(per_shard[dst])
        for src in list(surplus):
            if need <= 0:
                break
            take, surplus[src] = surplus[src][:need], surplus[src][need:]
            if take:
                moves.append((src, dst, take))
                need -= len(take)
    return moves
