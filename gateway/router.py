"""Routing: from a parsed command to a shard batch, a gateway handler or a multi-shard plan.

The router knows commands only through the table: name, subcommands, arity, key positions,
route and cross-shard strategy.  What a command means is the shard's (or, for connection
commands, the gateway handler's) business.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from gateway import blocking, cross, scripting, security, transactions
from gateway.connection import ClientConnection
from gateway.links import Group, GroupPart, crc16, key_slot
from shard import errors, wire
from shard.errors import RedisError
from shard.reply import encode
from shard.table import FANOUT, GATEWAY, SHARD, TABLE, CommandSpec

if TYPE_CHECKING:
    from gateway.server import Gateway

log = logging.getLogger("atoll.gateway")
_RUN = wire.RUN


class Router:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.links = gateway.links
        self.by_name: dict[bytes, CommandSpec] = {
            name.encode(): spec for name, spec in TABLE.items() if spec.route != "internal"
        }
        for spec in TABLE.values():
            for one in [spec, *spec.subcommands.values()]:
                one.wire_name = one.fullname.encode()
                one.single_key = one.first_key == 1 and one.last_key == 1 and one.keys_fn is None
        self.slot_owner = self.links.slot_owner
        for spec in self.by_name.values():
            spec.min_argc = spec.arity if spec.arity > 0 else -spec.arity
            spec.max_argc = spec.arity if spec.arity > 0 else 1 << 30
        for old, new in gateway.config.rename_commands:  # rename-command: "" removes it
            key = old.lower().encode()
            if key in self.by_name:
                renamed = self.by_name.pop(key)
                if new:
                    self.by_name[new.lower().encode()] = renamed
        self.hot = {
            name: spec for name, spec in self.by_name.items()
            if spec.route == SHARD and spec.single_key and not spec.subcommands
        }
        # Clients send names in upper case (redis-cli, redis-py, redis-benchmark): finding
        # them without lower() saves a bytes object per command.
        self.hot.update({name.upper(): spec for name, spec in self.hot.items()})
        # ``hot`` shrinks while a mode needs a check the hot path does not make: see
        # refresh_hot(), the one place that decides it.
        self.hot_all = self.hot
        self.feed_monitors: Any = None  # gateway/monitor.py, while anybody monitors
        self.paused: Any = None  # gateway/pause.py's state while CLIENT PAUSE is in force
        # A replica's read-only rule or min-replicas-to-write (replication/replica.py): a check of
        # write commands (or of every command), which then leave the hot path.
        self.write_guard: Callable[[ClientConnection, CommandSpec], str | None] | None = None
        self.guard_all = False
        assert wire.DB_SHIFT == 4 and wire.RESP3 == 1  # the hot path packs meta by hand
        self.commands_processed = 0
        self.stats = gateway.cmdstats  # commands the gateway runs or plans (shard/cmdstats.py)

    def resolve(self, conn: ClientConnection, argv: list[bytes]) -> CommandSpec | None:
        """The spec to run, or None after replying with the error Redis would give."""
        name = argv[0].lower()
        spec = self.by_name.get(name)
        if spec is None:
            if name in security.HTTP_NAMES:
                security.drop_http_client(conn)
                return None
            conn.reply(errors.unknown_command(argv[0], argv[1:]).line())
            return None
        if spec.subcommands:
            if len(argv) < 2:
                if spec.handler is not None:  # COMMAND alone is a command of its own
                    return spec
                conn.reply(errors.wrong_arity(spec.name).line())
                return None
            sub = spec.subcommands.get(argv[1].lower().decode("latin-1"))
            if sub is None:
                conn.reply(errors.unknown_subcommand(spec.name, argv[1]).line())
                return None
            spec = sub
        if not (len(argv) == spec.arity if spec.arity > 0 else len(argv) >= -spec.arity):
            conn.reply(errors.wrong_arity(spec.fullname).line())
            self.stats.reject(spec.fullname, None)
            return None
        if not conn.authenticated and "no_auth" not in spec.flags:
            conn.reply(RedisError(errors.NOAUTH).line())
            self.stats.reject(spec.fullname, None)
            return None
        if not conn.fast_path and "no_auth" not in spec.flags:
            from gateway.acl_commands import permission_error

            denied = permission_error(conn, spec, argv)
            if denied is not None:
                conn.reply(denied.line())
                self.stats.reject(spec.fullname, None)
                return None
        if self.write_guard is not None and (self.guard_all or "write" in spec.flags):
            refused = self.write_guard(conn, spec)
            if refused is not None:
                conn.reply(RedisError(refused).line())
                return None
        return spec

    def set_write_guard(self, guard: Callable[[ClientConnection, CommandSpec], str | None] | None,
                        all_commands: bool = False) -> None:
        """Check write commands (or every command) with ``guard``: None lets one run, else
        the error line."""
        self.write_guard = guard
        self.guard_all = all_commands and guard is not None
        self.refresh_hot()

    def refresh_hot(self) -> None:
        """Recompute the hot table from every mode that needs the general dispatch: a shard
        running a busy script, MONITOR, CLIENT PAUSE, and the replica's write guard."""
        gw = self.gateway
        if gw.busy_shards or self.feed_monitors is not None or self.paused is not None \
                or self.guard_all:
            self.hot = {}
        elif self.write_guard is not None:
            self.hot = {name: spec for name, spec in self.hot_all.items()
                        if "write" not in spec.flags}
        else:
            self.hot = self.hot_all

    def dispatch(self, conn: ClientConnection, argv: list[bytes]) -> None:
        """Route one command.

        The first branch is the hot path: a command whose only key is argv[1] (GET, SET,
        INCR, LPUSH ...).  Such commands of one connection within one read form a *group*
        (see ``links.Group``): one batch entry per shard involved and one reply slot, so a
        pipeline of 16 commands costs the gateway one slot and at most one entry per shard.
        """
        hot = self.hot
        spec = hot.get(argv[0]) or hot.get(argv[0].lower())
        if (spec is not None and conn.fast_path and conn.multi is None
                and spec.min_argc <= len(argv) <= spec.max_argc):
            self.commands_processed += 1
            conn.last_command = argv[0] = spec.wire_name
            key = argv[1]
            start = key.find(b"{")  # the slot of the key, as links.key_slot, inlined
            if start >= 0:
                end = key.find(b"}", start + 1)
                if end > start + 1:
                    key = key[start + 1 : end]
            index = self.slot_owner[crc16(key, 0) & 16383]
            meta = conn.origin | (conn.db << 4) | conn.resp3 | _RUN
            group = conn.open_group
            if group is None or group.meta != meta:
                group = conn.open_group = Group(conn, meta)
                conn.replies.append(group)
            commands = group.entries.get(index)
            if commands is None:
                commands = group.entries[index] = []
                group.missing += 1
                self.links.send(self.links.route_links[index], [meta, commands], GroupPart(group, index))
            commands.append(argv)
            group.order.append(index)
            return
        conn.open_group = None
        self._dispatch(conn, argv)

    def _dispatch(self, conn: ClientConnection, argv: list[bytes]) -> None:
        spec = self.resolve(conn, argv)
        if spec is None:
            if conn.multi is not None:
                conn.multi_error = True  # EXEC will answer EXECABORT
            return
        if spec.group == "scripting" or self.gateway.busy_shards:
            if scripting.intercept(self, conn, spec, argv):  # see gateway/scripting.py
                return
        if self.paused is not None and self.paused.holds(conn, spec, argv):
            from gateway.pause import hold

            hold(conn, argv)
            return
        if self.feed_monitors is not None:
            self.feed_monitors(conn, spec, argv)
        if conn.multi is not None and spec.name not in transactions.IMMEDIATE:
            transactions.queue(self, conn, spec, argv)
            return
        self.commands_processed += 1
        conn.last_command = spec.wire_name
        route = spec.route
        if route == SHARD:
            self._to_shard(conn, spec, argv)
        elif route == GATEWAY:
            self._local(conn, spec, argv)
        elif route == FANOUT:
            conn.run_async(_counted(self, spec, argv, conn,
                                    cross.fanout(self.gateway, conn, spec, argv)))
        else:
            conn.reply(errors.unknown_command(argv[0], argv[1:]).line())

    def _to_shard(self, conn: ClientConnection, spec: CommandSpec, argv: list[bytes]) -> None:
        links = self.links
        argv[0] = spec.wire_name
        meta = conn.origin | (conn.db << wire.DB_SHIFT) | conn.resp3
        if spec.single_key:
            links.send(links.shard_of(argv[1]), [meta, argv], conn.new_slot())
            return
        positions = spec.key_positions(argv)
        if not positions:
            links.send(links.links[0], [meta, argv], conn.new_slot())
            return
        owner = links.slot_owner
        shards = {owner[key_slot(argv[p])] for p in positions}
        if "blocking" in spec.flags:
            if len(shards) == 1:
                conn.run_async(blocking.wait_one(self.gateway, conn, links.route_links[shards.pop()],
                                                 meta, argv))
            elif spec.name in ("blmove", "brpoplpush"):
                conn.run_async(blocking.move_between(self.gateway, conn, spec, argv))
            else:
                conn.run_async(blocking.wait_many(self.gateway, conn, spec, argv, positions))
            return
        if len(shards) == 1:
            links.send(links.route_links[shards.pop()], [meta, argv], conn.new_slot())
            return
        conn.run_async(_counted(self, spec, argv, conn,
                                cross.atomically(self.gateway, conn, spec, argv, positions)))

    def _local(self, conn: ClientConnection, spec: CommandSpec, argv: list[bytes]) -> None:
        started = perf_counter_ns()
        try:
            result = spec.handler(conn, argv)  # type: ignore[misc]
        except RedisError as exc:
            self.stats.count_call(spec.fullname, perf_counter_ns() - started, True, argv, conn.id)
            conn.reply(exc.line())
            return
        if inspect.iscoroutine(result):
            conn.run_async(_counted(self, spec, argv, conn, result))
            return
        self.stats.count_call(spec.fullname, perf_counter_ns() - started, False, argv, conn.id)
        if result is not cross.NO_REPLY:
            conn.reply(encode(result, conn.resp3))


async def _counted(router: Router, spec: CommandSpec, argv: list[bytes], conn: ClientConnection,
                   work: Any) -> Any:
    """Run a multi-step command and count it once it is done, as Redis counts after a call."""
    started = perf_counter_ns()
    failed = True
    try:
        value = await work
        failed = isinstance(value, RedisError)
        return value
    finally:
        router.stats.count_call(spec.fullname, perf_counter_ns() - started, failed, argv, conn.id)
