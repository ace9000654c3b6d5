"""The shard actor: a plain synchronous loop around a ZeroMQ ROUTER socket.

It owns the keys of its hash slots in every database.  Each message is a batch of commands
from one gateway; the shard runs them in order and answers with one message.  Between batches
it runs the active expiry cycle (``hz`` times a second).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import traceback
from time import perf_counter_ns
from typing import Any

import zmq

from persistence.aof_rewrite import AofState
from persistence.effects import Effects
from persistence.loader import load_at_startup
from shard import notify, wire
from shard.blocking import Block, BlockedClients, Waiter
from shard.cmdstats import CommandStats
from shard.context import Ctx
from shard.errors import OOM, RedisError
from shard.eviction import Evictor
from shard.intents import (
    NEVER_WAIT,
    WHOLE_COMMANDS,
    Intents,
    Slot,
    Waiting,
    lock_request,
    lock_txid,
)
from shard.keyspace import Keyspace
from shard.reply import OK, encode
from shard.snapshots import PersistenceState
from shard.table import CommandSpec, load_shard_commands
from shard.values import type_name
from shard.watch import Watches
from shard.wire import Blocked, Deferred

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
        self.stats = CommandStats()  # commandstats, errorstats, latency, slow log
        self.active_expire_enabled = True  # DEBUG SET-ACTIVE-EXPIRE
        self.monitoring: set[int] = set()  # gateways with MONITOR clients (shard/stats_part.py)
        self.stats.configure(config)
        from shard.server_commands import configure_tracking

        configure_tracking(self.ks, config)
        self.blocked = BlockedClients()
        self.watches = Watches()
        self.ks.on_expire = self._expired
        self.configure_notifications()
        self.evictor = Evictor(self.ks, self.on_evict)
        self.evictor.configure(config)
        self.current_identity = b""  # the gateway whose batch is running
        self.outbox: list[tuple[bytes, int, Any]] = []  # replies to blocked/deferred entries
        self.intents = Intents()
        self.reuse_token = 0
        self.persistence = PersistenceState()
        # Write effects (persistence/effects.py) for the append-only log; None: not recorded.
        self.effects: Effects | None = None
        self.aof = AofState(self)
        self.persistence.aof = self.aof
        # Scripting (shard/scripting.py, shard/busy.py): the Lua engine, made on first use;
        # the socket a busy script answers from; entries deferred until it ends.
        self.scripts: Any = None
        self.busy_socket: zmq.Socket[Any] | None = None
        self.busy_deferred: list[Any] = []
        self.stop_flag: list[int] = []
        from shard.control import ShardStats

        self.batch_stats = ShardStats()  # latency and ops rate for atoll-admin and INFO
        self.moved_out: set[int] = set()  # slots given away by online moves (shard/control.py)

    def execute_batch(self, entries: list[Any], identity: bytes = b"") -> list[Any]:
        self.ks.tick()
        if self.evictor.limit:
            self.evictor.check()
        self.current_identity = identity
        # The wrapper that groups a transaction's log effects only when a log is on: the hot
        # path otherwise pays no extra call per entry.
        run_entry = self.run_entry if self.effects is not None else self._run_entry
        intents = self.intents
        out: list[Any] = []
        moved_out = self.moved_out
        for meta, argv in entries:
            if moved_out and self.touches_moved(meta, argv):
                out.append(wire.Moved([meta, argv]))
                continue
            if intents.held or intents.waiting:
                deferred = self._wait_for_intents(meta, argv)
                if deferred is not None:
                    out.append(deferred)
                    continue
            out.append(run_entry(meta, argv))
            # As in Redis, clients blocked on keys a command filled are served right after
            # it, before the next command runs.
            if self.blocked.ready:
                self.serve_ready()
        return out

    def run_entry(self, meta: int, argv: list[Any]) -> Any:
        effects = self.effects
        if effects is not None and meta & wire.RUN:
            # A transaction (MULTI/EXEC, a cross-shard hop): its effects replay whole.
            mark = len(effects.pending)
            reply = self._run_entry(meta, argv)
            if meta & wire.NOBLOCK:
                effects.atomic(mark)
            feed = getattr(self, "feed", None)  # a cross-shard hop: one part of a MULTI/EXEC
            if feed is not None and argv and argv[0][0] == b"__tx":
                feed.hop(int(argv[0][1]), mark, len(effects.pending))
            return reply
        return self._run_entry(meta, argv)

    def _run_entry(self, meta: int, argv: list[Any]) -> Any:
        execute = self.execute
        if meta & wire.RUN:
            # A transaction may start with its WATCH check: a dirty one runs nothing.
            if argv and argv[0][0] == b"__watchcheck" and execute(meta, argv[0]) == b":1\r\n":
                return None
            if meta & wire.NOBLOCK or not self.blocked.by_key:  # a transaction, or nobody waits
                return [execute(meta, one) for one in argv]
            replies = []
            for one in argv:
                replies.append(execute(meta, one))
                if self.blocked.ready:
                    self.serve_ready()
            return replies
        return execute(meta, argv)

    # --- intents (shard/intents.py) ------------------------------------------------------

    def _wait_for_intents(self, meta: int, argv: list[Any]) -> Deferred | None:
        """Park an entry that touches keys another transaction holds; None if it may run."""
        claims = self._claims(meta, argv)
        if claims is None:
            return None
        keys, whole, txid = claims
        origin = meta >> wire.ORIGIN_SHIFT
        who = (self.current_identity, origin) if origin else None
        if not self.intents.blocked(keys, whole, who, txid):
            return None
        token = self.blocked.next_token
        self.blocked.next_token += 1
        self.intents.add_waiting(Waiting(self.current_identity, token, meta, argv, keys, whole, who))
        return Deferred(token)

    def _claims(self, meta: int, argv: list[Any]) -> tuple[list[Slot], bool, int] | None:
        """The keys an entry touches, whether it touches everything, and the transaction it
        asks intents for (0: none); None for entries that never wait."""
        if meta & wire.RUN:
            if not argv or argv[0][0] == b"__tx":  # runs under intents its transaction holds
                return None
            commands = argv
        else:
            name = argv[0]
            if name in NEVER_WAIT:
                if name == b"__lock" and argv[2] == b"WAIT":
                    txid, _, whole_shard, wanted = lock_request(argv[1:])
                    return wanted, whole_shard, txid
                return None
            commands = [argv]
        db = (meta >> wire.DB_SHIFT) & wire.DB_MASK
        keys: list[Slot] = []
        whole = False
        handlers = self.handlers
        for one in commands:
            if one[0] in WHOLE_COMMANDS:
                whole = True
                continue
            spec = handlers.get(one[0])
            if spec is not None:
                keys.extend([(db, one[p]) for p in spec.key_positions(one)])
        return keys, whole, 0

    def touches_moved(self, meta: int, argv: list[Any]) -> bool:
        """Whether an entry names a key of a slot this shard gave away (shard/control.py)."""
        from shard.control import key_slot

        if not (meta & wire.RUN) and argv[0] == b"__lock" and argv[3:4] != [b"*"]:
            keys = lock_request(argv[1:])[3]
        else:
            claims = self._claims(meta, argv)
            if claims is None:
                return False
            keys = claims[0]
        moved = self.moved_out
        return any(key_slot(key) in moved for _, key in keys)

    def release_intents(self, txid: int) -> None:
        keys = self.intents.release(txid)
        # Waiters of released keys were skipped while the keys were held: look again.
        if self.blocked.by_key:
            if keys:
                for db, key in keys:
                    self.blocked.signal(db, [key])
            else:
                self.blocked.signal_all()
        self.retry_waiting()

    def retry_waiting(self) -> None:
        """Run the entries that waited for intents and may run now; their replies leave as
        unsolicited messages under their tokens."""
        identity = self.current_identity
        again = True
        while again:
            again = False
            for waiting in self.intents.runnable():
                self.current_identity = waiting.identity
                self.reuse_token = waiting.token
                if self.moved_out and self.touches_moved(waiting.meta, waiting.argv):
                    reply: Any = wire.Moved([waiting.meta, waiting.argv])
                    txid = lock_txid(waiting.argv)
                    if txid:
                        # runnable() granted this lock request; its transaction now plans
                        # again and never unlocks here, so the grant must go (else the keys
                        # stay held for good).
                        self.intents.release(txid)
                        again = True
                else:
                    reply = self.run_entry(waiting.meta, waiting.argv)
                self.reuse_token = 0
                self.outbox.append((waiting.identity, waiting.token, reply))
        self.current_identity = identity

    def execute(self, meta: int, argv: list[bytes]) -> Any:
        ctx = self.ctx
        ctx.db = self.ks.dbs[(meta >> wire.DB_SHIFT) & wire.DB_MASK]
        resp3 = bool(meta & wire.RESP3)
        ctx.resp3 = resp3
        self.commands_processed += 1
        if self.ks.replica:
            self.ks.from_master = meta >> wire.ORIGIN_SHIFT == wire.MASTER_ORIGIN
        started = perf_counter_ns()
        spec = None
        try:
            spec = self.handlers.get(argv[0])
            if spec is None:
                sub = self.handlers.get(argv[0] + b"|" + argv[1].lower()) if len(argv) > 1 else None
                if sub is None:
                    raise RedisError(f"ERR unknown command '{argv[0].decode('latin-1')}' for shard")
                spec = sub
            ctx.spec = spec
            if self.evictor.over_limit and "denyoom" in spec.flags:
                raise RedisError(OOM)
            if self.persistence.job is not None and spec.is_write():
                self.persistence.before_write(ctx, spec, argv)
            if self.watches.by_key and spec.name in _DB_WIDE:
                self._touch_db_wide(spec.name, argv)
            effects = self.effects
            if effects is None:
                value = spec.handler(ctx, argv[1:])  # type: ignore[misc]
            else:
                mark, dirty = len(effects.pending), self.ks.dirty
                value = spec.handler(ctx, argv[1:])  # type: ignore[misc]
                if self.ks.dirty > dirty:  # (__snapshot_end lowers it: not a write)
                    effects.record(mark, ctx.db, argv, value)
            if (self.blocked.by_key or self.watches.by_key) and spec.is_write():
                self._signal(spec, argv)
        except Block as block:
            if meta & (wire.STRUCTURED | wire.NOBLOCK):
                value = block.timeout_reply
            else:
                return self._park(meta, argv, block)
        except RedisError as exc:
            value = exc
            exc.__traceback__ = None  # else exc -> traceback -> this frame -> value: a cycle
        except Exception as exc:  # a bug must not take the shard down: log it, answer an error
            log.error("shard %d: %s failed:\n%s", self.index, argv[:1], traceback.format_exc())
            value = RedisError(f"ERR internal error in shard: {type(exc).__name__}")
        # Client commands are counted here; parts of the gateway's plans by the gateway.  This
        # runs for every command, so it is kept to a few integer additions (shard/cmdstats.py).
        if spec is not None and (not meta & wire.STRUCTURED or meta & wire.NOBLOCK):
            elapsed = perf_counter_ns() - started
            counters = spec.stats or self.stats.counters_for(spec)
            counters[0] += 1
            counters[1] += elapsed
            counters[4][elapsed.bit_length()] += 1
            if elapsed >= self.stats.watch_ns:  # slow log or latency monitor
                self.stats.slow(elapsed, argv, meta >> wire.ORIGIN_SHIFT)
        if meta & wire.STRUCTURED:  # the gateway decides what the client sees, and counts it
            if meta & wire.NOBLOCK and spec is not None and isinstance(value, RedisError):
                self.stats.failed(spec, value)  # a script's call
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
            self.stats.failed(spec, value)
        return encode(value, resp3)


    def _touch_db_wide(self, name: str, argv: list[bytes]) -> None:
        """Before a flush or SWAPDB, watchers of the keys it changes become dirty."""
        dbs = self.ks.dbs
        if name == "swapdb":
            pair = [int(a) for a in argv[1:3] if a.isdigit() and int(a) < len(dbs)]
            if len(pair) == 2 and pair[0] != pair[1]:
                self.watches.touch_swapped(dbs, pair[0], pair[1])
            return
        self.watches.touch_existing(dbs, None if name != "flushdb" else self.ctx.db.index)

    # --- blocked clients ---------------------------------------------------------------------

    def _park(self, meta: int, argv: list[bytes], block: Block) -> Blocked:
        blocked = self.blocked
        token = self.reuse_token  # an entry that waited for intents keeps its token
        if not token:
            token = blocked.next_token
            blocked.next_token += 1
        blocked.add(Waiter(self.current_identity, token, meta, argv, self.ctx.db.index,
                           block.keys, block.deadline_ms, block.timeout_reply))
        return Blocked(token)

    def _signal(self, spec: CommandSpec, argv: list[bytes]) -> None:
        """A write may have filled keys that clients wait on, or touched watched keys."""
        db = self.ctx.db.index
        if spec.name in _SIGNAL_ALL:
            self.blocked.signal_all()
        keys = [argv[p] for p in spec.key_positions(argv)]
        if spec.name == "smove" and self.ctx.unchanged is not None:
            keys.remove(self.ctx.unchanged)
        if self.blocked.by_key:
            self.blocked.signal(db, keys)
        if self.watches.by_key:
            self.watches.touched(db, keys)

    def _expired(self, db: int, key: bytes) -> None:
        if self.effects is not None:
            self.effects.deleted(db, key)
        if self.watches.by_key:
            self.watches.touched(db, [key])
        if self.ctx.events:
            self.ctx.notify(notify.EXPIRED, b"expired", key, db)

    def key_evicted(self, db: int, key: bytes) -> None:
        """For the eviction code: call after removing ``key`` under maxmemory."""
        if self.effects is not None:
            self.effects.deleted(db, key)
        if self.watches.by_key:
            self.watches.touched(db, [key])
        if self.ctx.events:
            self.ctx.notify(notify.EVICTED, b"evicted", key, db)

    def configure_notifications(self) -> None:
        """Follow notify-keyspace-events (at start and on CONFIG SET)."""
        events = notify.parse_events(str(self.config.get("notify-keyspace-events", "")))
        self.ctx.events = events
        self.ks.on_new = self._new_key if events & notify.NEW else None

    def _new_key(self, db: int, key: bytes) -> None:
        self.ctx.notify(notify.NEW, b"new", key, db)

    def on_evict(self, db: int, key: bytes) -> None:
        """A key was evicted by maxmemory: WATCHers see it as a write, and the `evicted`
        notification fires (the replication stream will hook in here too)."""
        self.key_evicted(db, key)

    def serve_ready(self) -> None:
        """Serve waiters of keys that got written, each key's waiters in arrival order."""
        blocked = self.blocked
        intents = self.intents
        while blocked.ready:
            key = blocked.ready.pop()
            if intents.held and intents.locked(key):
                continue  # served when its transaction releases it (release_intents)
            for waiter in list(blocked.by_key.get(key, ())):
                if self._try_serve(waiter):
                    blocked.remove(waiter)

    def _try_serve(self, waiter: Waiter) -> bool:
        ctx = self.ctx
        ctx.db = self.ks.dbs[waiter.db]
        ctx.resp3 = bool(waiter.meta & wire.RESP3)
        spec = self.handlers[waiter.argv[0]]
        ctx.spec = spec
        # Like Redis, a waiter is only served by a key of the type it waits for: a key that
        # became a string meanwhile leaves it waiting rather than answering WRONGTYPE.
        wanted = b"list" if spec.group == "list" else b"zset"
        if not any(type_name(v) == wanted for v in
                   (self.ks.get(ctx.db, k, touch=False) for k in waiter.keys) if v is not None):
            return False
        if self.persistence.job is not None:
            self.persistence.before_write(ctx, spec, waiter.argv)
        effects = self.effects
        mark, dirty = (len(effects.pending), self.ks.dirty) if effects is not None else (0, 0)
        try:
            value = spec.handler(ctx, waiter.argv[1:])  # type: ignore[misc]
        except Block:
            return False
        except RedisError as exc:
            value = exc
        if effects is not None and self.ks.dirty > dirty and not isinstance(value, RedisError):
            effects.record(mark, ctx.db, waiter.argv, value)
        self._signal(spec, waiter.argv)
        self.deliver(waiter, value)
        return True

    def deliver(self, waiter: Waiter, value: Any) -> None:
        if isinstance(value, RedisError):
            self.error_replies += 1
        self.outbox.append((waiter.identity, waiter.token, encode(value, bool(waiter.meta & wire.RESP3))))

    def expire_waiters(self) -> None:
        for waiter in self.blocked.expired(self.ks.clock()):
            self.blocked.remove(waiter)
            self.deliver(waiter, waiter.timeout_reply)


# Commands that change whole databases: watchers of keys that exist are touched before them.
_DB_WIDE = {"flushall", "flushdb", "swapdb"}

# Writes that can fill keys without naming them: they wake every waiter to look again.
_SIGNAL_ALL = {"move", "swapdb", "copy", "flushall", "flushdb", "__import", "restore"}


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


SNAPSHOT_STEP_S = 0.001  # snapshot work between two batches: bounds the latency it adds
SNAPSHOT_PAUSE_MS = 1.0


def run_shard(index: int, endpoint: str, config: dict[str, Any]) -> None:
    """Process entry point: serve batches on ``endpoint`` until SIGTERM."""
    from server.log import setup_logging

    setup_logging(config, role="S")
    tune_gc()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    executor = ShardExecutor(index, config)
    from server.control import bind_control, control_endpoint, drain, run_dir_of
    from shard.control import ShardControl, handoff_path, load_handoff

    if config.get("appendonly"):
        # The shard's log holds everything, also across an `atoll-admin restart`.
        from persistence.aof_load import load_with_aof

        executor.aof.enable(load_with_aof(executor, index))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handoff_path(run_dir_of(endpoint), index))
    elif not load_handoff(executor, run_dir_of(endpoint)):  # atoll-admin restart
        load_at_startup(executor, index)
    control = ShardControl(executor, config.get("slot-owners"))
    control.run_dir = run_dir_of(endpoint)
    context = zmq.Context()
    control_sock = bind_control(context, control_endpoint(run_dir_of(endpoint), f"shard-{index}"))
    notifier = _Notifier(context, index, endpoint)
    sock = context.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.bind(endpoint)
    executor.busy_socket = sock
    executor.stop_flag = stop
    log.info("Shard %d ready to accept batches on %s (pid %d)", index, endpoint, os.getpid())
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(control_sock, zmq.POLLIN)
    period = 1.0 / max(int(config.get("hz", 10)), 1)
    next_cycle = time.monotonic() + period
    parent = os.getppid()
    while not stop:
        timeout = max(next_cycle - time.monotonic(), 0) * 1000
        deadline = executor.blocked.next_deadline() if executor.blocked.by_token else 0
        if deadline:
            timeout = min(timeout, max(deadline - executor.ks.clock(), 0))
        job = executor.persistence.job
        if job is not None and job.running:
            # A snapshot walks between batches, at most every other millisecond: on a busy
            # machine the walk must not starve the gateway of CPU (p99 latency).
            timeout = min(timeout, SNAPSHOT_PAUSE_MS)
        ready = dict(poller.poll(int(timeout) + (timeout % 1 > 0)))
        if sock in ready:
            _drain(sock, executor, notifier)
        if control_sock in ready:  # after the data: a control lock then sees what came first
            drain(control_sock, control.handlers)
        if job is not None and job.running:
            job.step(SNAPSHOT_STEP_S)
        if executor.blocked.by_token:
            executor.expire_waiters()
        aof = executor.aof
        if executor.effects is not None:
            aof.commit()  # the log has every effect before any reply to it leaves
            aof.tick()
        if executor.outbox:
            _send_outbox(sock, executor)
        now = time.monotonic()
        if now >= next_cycle:
            if executor.active_expire_enabled:
                executor.ks.active_expire(budget_ms=period * 250)
            took = time.monotonic() - now
            if executor.stats.latency_ns and took * 1e9 >= executor.stats.latency_ns:
                executor.stats.latency_event("expire-cycle", int(took * 1e9))
            executor.batch_stats.sample_rate(executor.commands_processed)
            if executor.effects is not None:
                aof.commit()
            aof.auto_rewrite()
            if executor.ctx.notes:
                notifier.send(executor.ctx)
            next_cycle = now + period
            if os.getppid() != parent:  # the supervisor is gone: nobody will stop us
                log.warning("Shard %d: supervisor exited, exiting too", index)
                break
    executor.aof.close()
    sock.close()
    control_sock.close()
    if notifier.sock is not None:
        notifier.sock.close()
    context.term()


def _send_outbox(sock: zmq.Socket[Any], executor: ShardExecutor) -> None:
    """Replies to blocked commands, one message per gateway."""
    per_gateway: dict[bytes, list[Any]] = {}
    for identity, token, reply in executor.outbox:
        per_gateway.setdefault(identity, []).append([token, reply])
    executor.outbox = []
    for identity, items in per_gateway.items():
        sock.send_multipart((identity, wire.pack([wire.UNSOLICITED, items])))


def _drain(sock: zmq.Socket[Any], executor: ShardExecutor, notifier: _Notifier) -> None:
    if executor.effects is not None:
        _drain_logged(sock, executor, notifier)
        return
    pack, unpack, execute_batch = wire.pack, wire.unpack, executor.execute_batch
    ctx = executor.ctx
    record = executor.batch_stats.record_batch
    while True:
        if executor.effects is not None:  # a replica attached meanwhile (shard/replication.py)
            _drain_logged(sock, executor, notifier)
            return
        try:
            identity, payload = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        batch_id, entries = unpack(payload)
        started, before = time.perf_counter(), executor.commands_processed
        replies = execute_batch(entries, identity)
        record(time.perf_counter() - started, executor.commands_processed - before)
        if ctx.notes:  # keyspace events leave before the replies, as Redis publishes first
            notifier.send(ctx)
        sock.send_multipart((identity, pack([batch_id, replies])))


GROUP_COMMIT_BATCHES = 64  # batches whose effects share one write (and fsync)


def _drain_logged(sock: zmq.Socket[Any], executor: ShardExecutor, notifier: _Notifier) -> None:
    """As _drain, with the append-only log: the effects of up to GROUP_COMMIT_BATCHES
    batches are written (and fsynced per appendfsync) with one call before their replies."""
    pack, unpack, execute_batch = wire.pack, wire.unpack, executor.execute_batch
    ctx = executor.ctx
    more = True
    while more:
        outgoing: list[tuple[bytes, bytes]] = []
        while len(outgoing) < GROUP_COMMIT_BATCHES:
            try:
                identity, payload = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                more = False
                break
            batch_id, entries = unpack(payload)
            outgoing.append((identity, pack([batch_id, execute_batch(entries, identity)])))
        executor.aof.commit()
        if ctx.notes:
            notifier.send(ctx)
        for message in outgoing:
            sock.send_multipart(message)


class _Notifier:
    """The shard's link to the pub/sub actor, made on the first keyspace notification."""

    def __init__(self, context: zmq.Context[Any], index: int, endpoint: str) -> None:
        self.context = context
        self.identity = b"shard-%d" % index
        self.endpoint = endpoint
        self.sock: zmq.Socket[Any] | None = None

    def send(self, ctx: Any) -> None:
        from pubsub.actor import NO_REPLY, pubsub_endpoint

        if self.sock is None:
            self.sock = self.context.socket(zmq.DEALER)
            self.sock.setsockopt(zmq.IDENTITY, self.identity)
            self.sock.setsockopt(zmq.LINGER, 0)
            self.sock.setsockopt(zmq.SNDHWM, 100_000)  # an absent actor costs bounded memory
            self.sock.connect(pubsub_endpoint(self.endpoint))
        notes, ctx.notes = ctx.notes, []
        try:
            self.sock.send(wire.pack([NO_REPLY, notes]), zmq.NOBLOCK)
        except zmq.Again:
            log.warning("Pub/sub actor not keeping up: %d keyspace notification(s) dropped",
                        len(notes))
