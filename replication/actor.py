"""The replication actor: a process of its own that keeps the replication stream.

DESIGN.md: it receives each shard's stream of write effects, keeps the replication id, offset
and backlog, serves PSYNC to replicas, and in replica mode applies a master's stream.

It is built from the gateway's machinery as a library: a *headless* gateway
(:class:`ReplicationGateway`: shard links, router, intents, but no listening socket) with the
gateway index ``gateways`` (one more coordinator for the shards' intents).  Inside it the
master side (``replication/master.py``) and the replica side (``replication/replica.py``) run
as they did inside a gateway: the master stream subscribes to every shard's effects, a full
sync cuts every shard under whole-shard intents, and a replica's MasterClient applies the
master's stream through this router.  Replica connections reach it from the gateways
(``replication/handoff.py``); the gateways ask it for WAIT, ROLE and INFO and learn its state
(``gateway/repl_link.py``, served here by :class:`GatewayRequests`).

A crash: the supervisor starts it again with the last REPLICAOF it was told (``replicaof``
messages on its pipe); the backlog is gone, so replicas come back with a full sync under a
new replication id.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import time
from typing import Any

import msgpack
import zmq

from gateway.repl_link import actor_endpoint
from gateway.server import Gateway
from replication.handoff import HandoffServer, handoff_path
from server.config import Config
from shard.errors import RedisError

log = logging.getLogger("atoll.replication")
STATE_POLL_S = 0.05
STATE_RESEND_S = 1.0
ACK_TIMEOUT_S = 1.0
NAME = "replication-0"


class ReplicationGateway(Gateway):
    """A gateway without a listening socket: the replication actor's coordinator."""

    headless = True

    def process_name(self) -> str:
        return NAME

    async def _listen_again(self) -> None:
        return None  # CONFIG SET port: nothing to listen on

    async def serve(self) -> None:
        from gateway.repl_commands import start_replication

        self.peers.count = max(int(self.config.value("gateways")), 1)  # all gateways answer
        run_dir = os.path.dirname(self.links.links[0].endpoint[len("ipc://"):])
        self.requests = GatewayRequests(self, actor_endpoint(run_dir))
        self.handoff = HandoffServer(self, handoff_path(run_dir))
        start_replication(self)
        log.info("Replication actor ready (pid %d)", os.getpid())
        watcher = self.loop.create_task(self.requests.watch_state())
        await self.stopping.wait()
        watcher.cancel()
        self.handoff.close()
        for conn in list(self.clients.values()):
            conn.close()
        self.requests.close()
        if self.control is not None:
            self.control.close()
        self.links.close()
        self.pubsub.close()

    def replicaof_changed(self, target: str) -> None:
        """Remember REPLICAOF in the supervisor: a restarted actor resumes it."""
        if self.supervisor is not None:
            self.supervisor.send(("replicaof", target))


class GatewayRequests:
    """The gateways' requests (ROUTER, msgpack) and the state pushed to them."""

    def __init__(self, gw: ReplicationGateway, endpoint: str) -> None:
        self.gw = gw
        sock = self.sock = gw.links.context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted gateway reuses its identity
        sock.bind(endpoint)
        self.epoch = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.version = 0
        self.state: dict[str, Any] = {}
        self.acked: dict[bytes, int] = {}
        self.ack_event = asyncio.Event()
        self.targets = [b"gateway-%d" % i for i in range(max(int(gw.config.value("gateways")), 1))]
        self.fd = int(sock.getsockopt(zmq.FD))
        gw.loop.add_reader(self.fd, self._readable)

    def close(self) -> None:
        self.gw.loop.remove_reader(self.fd)
        self.sock.close(0)

    # --- state ---------------------------------------------------------------------------

    def current(self) -> dict[str, Any]:
        from replication.master import master_of
        from replication.replica import replica_of

        gw = self.gw
        replica = replica_of(gw)
        lag = int(gw.config.value("min-replicas-max-lag"))
        state = {"role": "slave" if replica.host else "master", "up": replica.link_up,
                 "host": replica.host, "port": replica.port,
                 "good": master_of(gw).good_replicas(lag), "epoch": self.epoch}
        if {k: v for k, v in self.state.items() if k != "v"} != state:
            self.version += 1
        state["v"] = self.version
        self.state = state
        return state

    def push(self) -> int:
        """Send the state to every gateway; answer its version."""
        state = self.current()
        payload = msgpack.packb([0, True, None, state], use_bin_type=True)
        for target in self.targets:
            try:
                self.sock.send_multipart([target, payload], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # that gateway is not connected (yet): it gets the next push
        self._readable()
        return int(state["v"])

    async def watch_state(self) -> None:
        """Push when the state changes (checked every STATE_POLL_S) and once a second."""
        last_sent = 0.0
        while True:
            await asyncio.sleep(STATE_POLL_S)
            before = self.version
            self.current()
            now = time.monotonic()
            if self.version != before or now - last_sent >= STATE_RESEND_S:
                self.push()
                last_sent = now

    async def settle(self) -> None:
        """Push the state and wait (a short while) until every gateway has it."""
        version = self.push()
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while any(self.acked.get(t, -1) < version for t in self.targets):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.ack_event.clear()
            try:
                await asyncio.wait_for(self.ack_event.wait(), remaining)
            except TimeoutError:
                return

    # --- requests ------------------------------------------------------------------------

    def _readable(self) -> None:
        sock = self.sock
        while int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            try:
                identity, payload = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            ident, kind, args = msgpack.unpackb(payload, raw=False)
            if kind == "ack":
                self.acked[identity] = int(args)
                self.ack_event.set()
                continue
            self.gw.loop.create_task(self._answer(identity, ident, kind, args))

    async def _answer(self, identity: bytes, ident: int, kind: str, args: Any) -> None:
        from replication import service

        try:
            value = await service.HANDLERS[kind](self.gw, args)
            reply = [ident, True, value]
        except RedisError as exc:
            reply = [ident, False, exc.message]
        except Exception as exc:
            log.exception("replication request %s failed", kind)
            reply = [ident, False, f"ERR internal error: {type(exc).__name__}"]
        if kind == "replicaof":
            await self.settle()
        payload = msgpack.packb([*reply, self.current()], use_bin_type=True)
        try:
            self.sock.send_multipart([identity, payload], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        self._readable()


def run_replication(index: int, config_dict: dict[str, Any], shard_endpoints: list[str],
                    run_id: str, supervisor: Any = None, owners: list[int] | None = None) -> None:
    """Process entry point."""
    import uvloop

    from server.log import setup_logging
    from shard.actor import tune_gc

    config = Config.from_dict(config_dict)
    setup_logging({"logfile": config.value("logfile"), "loglevel": config.value("loglevel")},
                  role="R")
    tune_gc()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    gateway = ReplicationGateway(index, config, shard_endpoints, loop, run_id, supervisor, owners)
    loop.add_signal_handler(signal.SIGTERM, gateway.stopping.set)
    try:
        loop.run_until_complete(gateway.serve())
    finally:
        loop.close()
