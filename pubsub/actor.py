"""The pub/sub actor: a plain synchronous loop around a ZeroMQ ROUTER socket.

Gateways (DEALER, identity ``gateway-<i>``) send batches ``[batch_id, entries]`` and get
``[batch_id, replies]`` back, a reply per entry in order.  Entries:

- ``[COUNTS, [[kind, name, delta], ...]]``: subscriber counts changed on that gateway (ack);
- ``[RESYNC, [[kind, name, count], ...]]``: the gateway's whole state, after (re)connecting;
- ``[PUBLISH, kind, channel, message]``: answered with the number of receivers;
- ``[QUERY, what, args]``: PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARD* answers.

Shards (DEALER, identity ``shard-<i>``) send keyspace notifications as
``[NO_REPLY, [[channel, message], ...]]`` and get nothing back.

Every publish is delivered with one message per interested gateway: for each batch received,
each gateway gets ``[DELIVERY, [[kind, channel, message, direct, patterns], ...]]`` holding
every message of that batch it wants, in publish order.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import msgpack
import zmq

from pubsub.registry import CHANNEL, PATTERN, SHARD_CHANNEL, Registry

log = logging.getLogger("atoll.pubsub")

NO_REPLY = DELIVERY = 0  # batch id of messages that are not answers
COUNTS, RESYNC, PUBLISH, QUERY = 1, 2, 3, 4


def pubsub_endpoint(shard_endpoint: str) -> str:
    """The actor's socket lives in the run directory beside the shards' sockets."""
    return shard_endpoint.rsplit("/", 1)[0] + "/pubsub.sock"


class PubSubExecutor:
    """Applies entries to the registry and collects deliveries; no sockets."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.outbox: dict[bytes, list[list[Any]]] = {}  # gateway -> deliveries
        self.published = 0  # messages published (PUBLISH and keyspace notifications)
        self.gateways: dict[bytes, float] = {}  # gateway -> when it last sent a batch

    def run(self, gateway: bytes, entries: list[Any]) -> list[Any]:
        self.gateways[gateway] = time.monotonic()
        return [self.entry(gateway, entry) for entry in entries]

    def entry(self, gateway: bytes, entry: list[Any]) -> Any:
        op = entry[0]
        if op == PUBLISH:
            return self.publish(entry[1], entry[2], entry[3])
        registry = self.registry
        if op == COUNTS:
            for kind, name, delta in entry[1]:
                registry.change(gateway, kind, name, delta)
            return None
        if op == RESYNC:
            registry.replace(gateway, [(k, n, c) for k, n, c in entry[1]])
            return None
        if op == QUERY:
            return self.query(entry[1], entry[2])
        return None

    def publish(self, kind: int, channel: bytes, message: bytes) -> int:
        self.published += 1
        receivers, interested = self.registry.route(kind, channel)
        outbox = self.outbox
        for gateway, (direct, patterns) in interested.items():
            queue = outbox.get(gateway)
            if queue is None:
                queue = outbox[gateway] = []
            queue.append([kind, channel, message, direct, patterns])
        return receivers

    def query(self, what: bytes, args: list[bytes]) -> Any:
        registry = self.registry
        if what == b"channels":
            return registry.channels(CHANNEL, args[0] if args else None)
        if what == b"shardchannels":
            return registry.channels(SHARD_CHANNEL, args[0] if args else None)
        if what == b"numsub":
            return registry.numsub(CHANNEL, args)
        if what == b"shardnumsub":
            return registry.numsub(SHARD_CHANNEL, args)
        if what == b"numpat":
            return registry.numpat()
        if what == b"stats":  # INFO: channels and patterns with subscribers anywhere
            return [len(registry.maps[CHANNEL]), len(registry.maps[PATTERN])]
        return None


def run_pubsub(endpoint: str, config: dict[str, Any]) -> None:
    """Process entry point: serve gateways and shards on ``endpoint`` until SIGTERM."""
    from server.log import setup_logging
    from shard.actor import tune_gc

    setup_logging(config, role="P")
    tune_gc()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    executor = PubSubExecutor()
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted gateway takes its identity back
    sock.bind(endpoint)
    from pubsub.control import PubSubControl
    from server.control import bind_control, control_endpoint, drain, run_dir_of

    control = PubSubControl(executor)
    control_sock = bind_control(context, control_endpoint(run_dir_of(endpoint), "pubsub-0"))
    log.info("Pub/sub actor ready on %s (pid %d)", endpoint, os.getpid())
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(control_sock, zmq.POLLIN)
    parent = os.getppid()
    while not stop:
        ready = dict(poller.poll(250))
        if sock in ready:
            _drain(sock, executor)
        if control_sock in ready:
            drain(control_sock, control.handlers)
        control.sample()
        if not ready and os.getppid() != parent:  # the supervisor is gone: nobody stops us
            log.warning("Pub/sub actor: supervisor exited, exiting too")
            break
    control_sock.close()
    sock.close()
    context.term()


def _drain(sock: zmq.Socket[Any], executor: PubSubExecutor) -> None:
    """Run every message waiting.  A batch's deliveries leave before its replies, so a
    publisher that reads its reply knows every gateway has been handed the message."""
    pack, unpack = msgpack.packb, msgpack.unpackb
    while True:
        try:
            identity, payload = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        try:
            batch_id, entries = unpack(payload)
        except Exception:  # a malformed message must not take the actor down
            log.warning("Pub/sub actor: dropped a malformed message from %r", identity)
            continue
        if batch_id == NO_REPLY:  # keyspace notifications from a shard
            publish = executor.publish
            for channel, message in entries:
                publish(CHANNEL, channel, message)
            replies = None
        else:
            replies = executor.run(identity, entries)
        if executor.outbox:
            outbox, executor.outbox = executor.outbox, {}
            for gateway, deliveries in outbox.items():
                sock.send_multipart((gateway, pack([DELIVERY, deliveries])))
        if replies is not None:
            sock.send_multipart((identity, pack([batch_id, replies])))
