"""The shard actor: a plain synchronous loop around a ZeroMQ ROUTER socket.

It owns the keys of its hash slots in every database.  Each message is a batch of commands
from one gateway; the shard runs them in order and answers with one message.  Between batches
it runs the active expiry cycle (``hz`` times a second).
"""

from __future__ import annotations

import logging
import os
import signal
import time
import traceback
from typing import Any

import zmq

from shard import wire
from shard.context import Ctx
from shard.errors import RedisError
from shard.keyspace import Keyspace
from shard.reply import OK, encode
from shard.table import CommandSpec, load_shard_commands

log = logging.getLogger("atoll.shard")


class ShardExecutor:
    """Runs batches against one keyspace; no sockets, so tests drive it directly."""

    def __init__(self, index: int, config: dict[str, Any], clock: Any = None) -> None:
        self.index = index
        self.config = config
        kwargs = {"clock": clock} if clock is not None else {}
        self.ks = Keyspace(int(config.get("databases", 16)), **kwargs)
        self.ctx = Ctx(self.ks, config)
        self.ctx.shard = self
        self.handlers = _handlers(load_shard_commands())
        self.commands_processed = 0
        self.error_replies = 0

    def execute_batch(self, entries: list[Any]) -> list[Any]:
        self.ks.tick()
        execute = self.execute
        out = []
        for meta, argv in entries:
            if meta & wire.RUN:
                out.append([execute(meta, one) for one in argv])
            else:
                out.append(execute(meta, argv))
        return out

    def execute(self, meta: int, argv: list[bytes]) -> Any:
        ctx = self.ctx
        ctx.db = self.ks.dbs[meta >> wire.DB_SHIFT]
        resp3 = bool(meta & wire.RESP3)
        ctx.resp3 = resp3
        self.commands_processed += 1
        try:
            spec = self.handlers.get(argv[0])
            if spec is None:
                sub = self.handlers.get(argv[0] + b"|" + argv[1].lower()) if len(argv) > 1 else None
                if sub is None:
                    raise RedisError(f"ERR unknown command '{argv[0].decode('latin-1')}' for shard")
                spec = sub
            ctx.spec = spec
            value = spec.handler(ctx, argv[1:])  # type: ignore[misc]
        except RedisError as exc:
            value = exc
        except Exception as exc:  # a bug must not take the shard down: log it, answer an error
            log.error("shard %d: %s failed:\n%s", self.index, argv[:1], traceback.format_exc())
            value = RedisError(f"ERR internal error in shard: {type(exc).__name__}")
        if meta & wire.STRUCTURED:  # the gateway decides what the client sees, and counts it
            return value
        kind = type(value)
        if kind is bytes:
            return b"$%d\r\n%s\r\n" % (len(value), value)
        if kind is int:
            return b":%d\r\n" % value
        if value is OK:
            return b"+OK\r\n"
        if isinstance(value, RedisError):
            self.error_replies += 1
        return encode(value, resp3)


def _handlers(table: dict[str, CommandSpec]) -> dict[bytes, CommandSpec]:
    """Handlers by wire name: ``get``, and ``object|encoding`` for subcommands."""
    out: dict[bytes, CommandSpec] = {}
    for name, spec in table.items():
        if spec.handler is not None and spec.route in ("shard", "fanout", "internal"):
            out[name.encode()] = spec
        for sub_name, sub in spec.subcommands.items():
            if sub.handler is not None and sub.route in ("shard", "fanout", "internal"):
                out[f"{name}|{sub_name}".encode()] = sub
    return out


def tune_gc() -> None:
    """Collect cyclic garbage rarely: hot paths allocate many short-lived lists that form no
    cycles, and the default threshold (700) made the collector ~2% of a busy gateway."""
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def run_shard(index: int, endpoint: str, config: dict[str, Any]) -> None:
    """Process entry point: serve batches on ``endpoint`` until SIGTERM."""
    from server.log import setup_logging

    setup_logging(config, role="S")
    tune_gc()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    executor = ShardExecutor(index, config)
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.bind(endpoint)
    log.info("Shard %d ready to accept batches on %s (pid %d)", index, endpoint, os.getpid())
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    period = 1.0 / max(int(config.get("hz", 10)), 1)
    next_cycle = time.monotonic() + period
    parent = os.getppid()
    while not stop:
        timeout = max(next_cycle - time.monotonic(), 0) * 1000
        if poller.poll(timeout):
            _drain(sock, executor)
        now = time.monotonic()
        if now >= next_cycle:
            executor.ks.active_expire(budget_ms=period * 250)
            next_cycle = now + period
            if os.getppid() != parent:  # the supervisor is gone: nobody will stop us
                log.warning("Shard %d: supervisor exited, exiting too", index)
                break
    sock.close()
    context.term()


def _drain(sock: zmq.Socket, executor: ShardExecutor) -> None:
    pack, unpack, execute_batch = wire.pack, wire.unpack, executor.execute_batch
    while True:
        try:
            identity, payload = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        batch_id, entries = unpack(payload)
        replies = execute_batch(entries)
        sock.send_multipart((identity, pack([batch_id, replies])))
