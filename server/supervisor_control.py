"""The supervisor's control socket (server/control.py), served by a thread of its own so it
answers while the supervisor waits on its children: status of every actor, the slot map,
and the jobs (slot moves, rebalance, shard restart) that server/migration.py runs."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import zmq

from server.control import (
    ControlClient,
    ControlError,
    Handler,
    bind_control,
    control_endpoint,
    drain,
    process_memory,
)
from server.migration import Job, Mover, rebalance_plan
from server.slotmap import parse_slots

if TYPE_CHECKING:
    from server.supervisor import Supervisor

log = logging.getLogger("atoll")
DEFAULT_GROUP = 128  # slots moved under one hold: ~50 keys of a 100k-key keyspace per 8 slots


class SupervisorControl:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.mover = Mover(sup)
        self.job: Job | None = None
        self.handlers: dict[str, Handler] = {
            "ping": lambda r: "pong", "status": self.status, "slots": self.slots,
            "move": self.move, "rebalance": self.rebalance, "restart": self.restart,
            "job": self.job_report,
        }
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="control", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _serve(self) -> None:
        context: zmq.Context[Any] = zmq.Context()
        sock = bind_control(context, control_endpoint(self.sup.run_dir, "supervisor"))
        self.pinger = context
        while not self.stop.is_set():
            if sock.poll(200):
                drain(sock, self.handlers)
        sock.close(0)
        context.term()

    # --- status --------------------------------------------------------------------------

    def status(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        sup = self.sup
        now = time.time()
        rows = [{"name": "supervisor", "role": "supervisor", "pid": os.getpid(),
                 "uptime": now - sup.started_at, "restarts": 0,
                 "rss": process_memory(os.getpid()), "health": "ok"}]
        for name, proc in sorted(list(sup.children.items()), key=lambda i: _order(i[0])):
            alive = proc.is_alive()
            health = "down" if not alive else self._health(name)
            rows.append({"name": name, "role": name.partition("-")[0], "pid": proc.pid,
                         "uptime": now - sup.spawned_at.get(name, now),
                         "restarts": sup.restarts.get(name, 0),
                         "rss": process_memory(proc.pid or 0) if alive else 0, "health": health})
        return rows

    def _health(self, name: str) -> str:
        client = ControlClient(self.mover.context, control_endpoint(self.sup.run_dir, name), 1.0)
        try:
            started = time.monotonic()
            client.call("ping")
            return f"ok ({1000 * (time.monotonic() - started):.1f} ms)"
        except ControlError:
            return "no answer"
        finally:
            client.close()

    def slots(self, request: dict[str, Any]) -> dict[str, Any]:
        data = self.sup.slot_map.to_dict()
        data["counts"] = self.sup.slot_map.counts()
        return data

    # --- jobs ----------------------------------------------------------------------------

    def _start(self, job: Job, work: Any) -> dict[str, Any]:
        if self.job is not None and self.job.finished is None:
            raise ControlError(f"a {self.job.kind} job is running; wait for it")
        self.job = job

        def run() -> None:
            try:
                work()
            except Exception as exc:
                log.exception("%s failed", job.kind)
                job.error = str(exc)
            finally:
                job.finished = time.time()
                log.info("%s: %s", job.kind, job.report())

        threading.Thread(target=run, name=job.kind, daemon=True).start()
        return job.report()

    def _shard_arg(self, request: dict[str, Any], name: str) -> int:
        value = int(request[name])
        if not 0 <= value < self.sup.shards:
            raise ControlError(f"no shard {value} (shards are 0-{self.sup.shards - 1})")
        return value

    def move(self, request: dict[str, Any]) -> dict[str, Any]:
        source, target = self._shard_arg(request, "from"), self._shard_arg(request, "to")
        if source == target:
            raise ControlError("--from and --to name the same shard")
        try:
            slots = parse_slots(str(request["slots"]))
        except ValueError as exc:
            raise ControlError(str(exc)) from None
        group = int(request.get("group") or DEFAULT_GROUP)
        job = Job("move-slots", len(slots))
        return self._start(job, lambda: self.mover.move(job, source, target, slots, group))

    def rebalance(self, request: dict[str, Any]) -> dict[str, Any]:
        plan = rebalance_plan(self.sup.slot_map.owners, self.sup.shards)
        group = int(request.get("group") or DEFAULT_GROUP)
        job = Job("rebalance", sum(len(s) for _, _, s in plan))

        def work() -> None:
            done = 0
            for source, target, slots in plan:
                self.mover.move(job, source, target, slots, group)
                done += len(slots)
                job.done = done
            job.total = done

        return self._start(job, work)

    def restart(self, request: dict[str, Any]) -> dict[str, Any]:
        index = self._shard_arg(request, "shard")
        job = Job("restart", len(self.sup.slot_map.slots_of(index)))
        return self._start(job, lambda: self.mover.restart(job, index))

    def job_report(self, request: dict[str, Any]) -> dict[str, Any] | None:
        return self.job.report() if self.job is not None else None


def _order(name: str) -> tuple[int, int]:
    kind, _, number = name.partition("-")
    return ({"shard": 0, "gateway": 1, "replication": 2, "pubsub": 3}.get(kind, 4), int(number or 0))
