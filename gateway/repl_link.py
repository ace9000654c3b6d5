"""A gateway's link to the replication actor (``replication/actor.py``).

The actor owns the replication stream, the replicas and the master link.  A gateway asks it,
over one DEALER socket (identity ``gateway-<index>``, msgpack ``[id, kind, args]``), for WAIT,
ROLE, INFO replication and the ``sync_*`` counters, and forwards REPLICAOF/SLAVEOF to it.
Every answer (``[id, ok, value, state]``) carries the actor's replication *state* (role, master
link, replicas good for ``min-replicas-to-write``), and the actor also pushes the state
(``id`` 0) to every gateway when it changes and once a second; the gateway acknowledges a
push so a REPLICAOF is answered only once every gateway refuses writes.  From the state the
gateway installs the router's write guard: READONLY/MASTERDOWN on a replica, NOREPLICAS on a
master short of good replicas.  Replica connections themselves are handed to the actor
(``replication/handoff.py``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from typing import TYPE_CHECKING, Any

import msgpack
import zmq

from shard import errors
from shard.errors import RedisError

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.server import Gateway
    from shard.table import CommandSpec

log = logging.getLogger("atoll.gateway")
REQUEST_TIMEOUT_S = 5.0
WAIT_SLACK_S = 2.0  # a WAIT answer may take this much longer than its own timeout


def actor_endpoint(run_dir: str) -> str:
    return f"ipc://{run_dir}/replication.sock"


class ReplicationLink:
    def __init__(self, gw: Gateway, run_dir: str) -> None:
        self.gw = gw
        self.run_dir = run_dir
        sock = self.sock = gw.links.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, b"gateway-%d" % gw.index)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(actor_endpoint(run_dir))
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.waits: set[int] = set()  # pending WAITs: answered 0 when the actor restarts
        target = str(gw.config.value("replicaof") or "")
        host, _, port = target.partition(" ")
        # Until the actor speaks, the configuration tells the role (a replica refuses writes).
        self.state: dict[str, Any] = {"role": "slave" if target else "master", "up": False,
                                      "host": host, "port": int(port or 0), "good": 0,
                                      "epoch": "", "v": 0}
        self.fd = int(sock.getsockopt(zmq.FD))
        gw.loop.add_reader(self.fd, self._readable)
        self.apply_state()

    def close(self) -> None:
        self.gw.loop.remove_reader(self.fd)
        self.sock.close(0)

    # --- requests ------------------------------------------------------------------------

    async def request(self, kind: str, args: Any = None, timeout: float | None = None) -> Any:
        """The actor's answer to ``kind``; its error is raised as the client's error."""
        ident = next(self.ids)
        future: asyncio.Future[Any] = self.gw.loop.create_future()
        self.pending[ident] = future
        if kind == "wait":
            self.waits.add(ident)
        self.sock.send(msgpack.packb([ident, kind, args], use_bin_type=True))
        self._readable()  # the FD is edge-triggered: re-check after a send
        try:
            ok, value = await asyncio.wait_for(future, timeout or REQUEST_TIMEOUT_S)
        except TimeoutError:
            raise RedisError("ERR the replication actor did not answer, try again") from None
        finally:
            self.pending.pop(ident, None)
            self.waits.discard(ident)
        if not ok:
            raise RedisError(value)
        return value

    async def wait(self, wanted: int, timeout_ms: int, in_multi: bool) -> Any:
        limit = timeout_ms / 1000 + WAIT_SLACK_S if timeout_ms else 365 * 86400.0
        return await self.request("wait", [wanted, timeout_ms, in_multi], limit)

    def _readable(self) -> None:
        sock = self.sock
        while int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            try:
                payload = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            ident, ok, value, state = msgpack.unpackb(payload, raw=False)
            self._new_state(state)
            if ident == 0:  # a push: acknowledge it
                sock.send(msgpack.packb([0, "ack", state["v"]], use_bin_type=True))
                continue
            future = self.pending.get(ident)
            if future is not None and not future.done():
                future.set_result((ok, value))

    def _new_state(self, state: dict[str, Any]) -> None:
        old = self.state
        if state["epoch"] != old["epoch"] and old["epoch"]:
            # The actor restarted: WAITs the old one had are lost; nobody acknowledged them.
            for ident in list(self.waits):
                future = self.pending.get(ident)
                if future is not None and not future.done():
                    future.set_result((True, 0))
        elif state["epoch"] == old["epoch"] and state["v"] < old["v"]:
            return  # an older state overtaken by a push
        changed = {k: v for k, v in state.items() if k != "v"} != \
            {k: v for k, v in old.items() if k != "v"}
        self.state = state
        if changed:
            self.apply_state()

    # --- the write guard -----------------------------------------------------------------

    @property
    def is_replica(self) -> bool:
        return bool(self.state["role"] == "slave")

    def apply_state(self) -> None:
        """Install the guard the state asks for (also after CONFIG SET of its settings)."""
        router = self.gw.router
        config = self.gw.config
        if self.is_replica:
            stale_refused = not self.state["up"] and not config.value("replica-serve-stale-data")
            router.set_write_guard(self._replica_guard, stale_refused)
        elif int(config.value("min-replicas-to-write")):
            router.set_write_guard(self._master_guard)
        else:
            router.set_write_guard(None)

    def _replica_guard(self, conn: ClientConnection, spec: CommandSpec) -> str | None:
        config = self.gw.config
        if "write" in spec.flags and config.value("replica-read-only"):
            return errors.READONLY_REPLICA
        if not self.state["up"] and "stale" not in spec.flags \
                and not config.value("replica-serve-stale-data"):
            return errors.MASTERDOWN
        return None

    def _master_guard(self, conn: ClientConnection, spec: CommandSpec) -> str | None:
        config = self.gw.config
        wanted = int(config.value("min-replicas-to-write"))
        if wanted and int(config.value("min-replicas-max-lag")) and self.state["good"] < wanted:
            return errors.NOREPLICAS
        return None

    # --- handing replicas over -----------------------------------------------------------

    def hand_off(self, conn: ClientConnection, argv: list[bytes]) -> Any:
        from replication.handoff import hand_off, handoff_path

        return hand_off(conn, argv, handoff_path(self.run_dir))


def link_for(gw: Gateway, shard_endpoint: str) -> ReplicationLink | None:
    """The link of a gateway whose actors share its run directory (``ipc://``)."""
    if not shard_endpoint.startswith("ipc://"):
        return None
    return ReplicationLink(gw, os.path.dirname(shard_endpoint[len("ipc://"):]))
