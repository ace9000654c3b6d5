"""Routing: from a parsed command to a shard batch, a gateway handler or a multi-shard plan.

The router knows commands only through the table: name, subcommands, arity, key positions,
route and cross-shard strategy.  What a command means is the shard's (or, for connection
commands, the gateway handler's) business.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

from gateway import cross, transactions
from gateway.connection import ClientConnection
from gateway.links import BlockingWaiter, Group, GroupPart, ShardLink, crc16, key_slot
from shard import errors, wire
from shard.errors import RedisError
from shard.reply import Raw, encode
from shard.table import FANOUT, GATEWAY, SHARD, TABLE, CommandSpec

if TYPE_CHECKING:
    from gateway.server import Gateway

log = logging.getLogger("atoll.gateway")
_RUN = wire.RUN


class Popped(Raw):
    """The RESP reply of a blocking pop, with what is needed to undo the pop."""

    argv: list[bytes]
    db: int

    def __new__(cls, reply: bytes, argv: list[bytes], db: int) -> Popped:
        self = super().__new__(cls, reply)
        self.argv = argv
        self.db = db
        return self


def _second_bulk(reply: bytes) -> bytes:
    """The element of a ``*2 [key, element]`` BLPOP reply."""
    import hiredis

    reader = hiredis.Reader()
    reader.feed(reply)
    element: bytes = reader.gets()[1]
    return element


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
        self.hot = {
            name: spec for name, spec in self.by_name.items()
            if spec.route == SHARD and spec.single_key and not spec.subcommands
        }
        # Clients send names in upper case (redis-cli, redis-py, redis-benchmark): finding
        # them without lower() saves a bytes object per command.
        self.hot.update({name.upper(): spec for name, spec in self.hot.items()})
        assert wire.DB_SHIFT == 4 and wire.RESP3 == 1  # the hot path packs meta by hand
        self.commands_processed = 0

    def resolve(self, conn: ClientConnection, argv: list[bytes]) -> CommandSpec | None:
        """The spec to run, or None after replying with the error Redis would give."""
        name = argv[0].lower()
        spec = self.by_name.get(name)
        if spec is None:
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
            return None
        if not conn.authenticated and "no_auth" not in spec.flags:
            conn.reply(RedisError(errors.NOAUTH).line())
            return None
        if not conn.fast_path and "no_auth" not in spec.flags:
            from gateway.acl_commands import permission_error

            denied = permission_error(conn, spec, argv)
            if denied is not None:
                conn.reply(denied.line())
                return None
        return spec

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
            meta = (conn.db << 4) | conn.resp3 | _RUN
            group = conn.open_group
            if group is None or group.meta != meta:
                group = conn.open_group = Group(conn, meta)
                conn.replies.append(group)
            commands = group.entries.get(index)
            if commands is None:
                commands = group.entries[index] = []
                group.missing += 1
                self.links.send(self.links.links[index], [meta, commands], GroupPart(group, index))
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
            conn.run_async(cross.fanout(self.gateway, conn, spec, argv))
        else:
            conn.reply(errors.unknown_command(argv[0], argv[1:]).line())

    def _to_shard(self, conn: ClientConnection, spec: CommandSpec, argv: list[bytes]) -> None:
        links = self.links
        argv[0] = spec.wire_name
        meta = (conn.db << wire.DB_SHIFT) | conn.resp3
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
            if len(shards) > 1:
                if spec.name in ("blmove", "brpoplpush"):
                    conn.run_async(self._blocking_move(conn, spec, argv))
                else:  # waiting on several shards comes with the cross-shard issue
                    conn.reply(RedisError(errors.CROSSSHARD_BLOCKING).line())
                return
            conn.run_async(self._blocking(conn, links.links[shards.pop()], meta, argv))
            return
        if len(shards) == 1:
            links.send(links.links[shards.pop()], [meta, argv], conn.new_slot())
            return
        strategy: cross.Strategy = cross.STRATEGIES.get(spec.cross or "", cross.via_scratch)
        conn.run_async(strategy(self.gateway, conn, spec, argv, positions))

    async def _blocking(self, conn: ClientConnection, link: ShardLink, meta: int,
                        argv: list[bytes], give_back: bool = True) -> Any:
        """A blocking command: the connection holds its later commands until the reply, which
        comes at once or, after the shard parked it, in an unsolicited message.  The reply is
        a :class:`Popped`: should the client be gone when it is written, what it took goes
        back (see ``ClientConnection._async_done``)."""
        future = self.gateway.loop.create_future()
        self.links.send(link, [meta, argv], BlockingWaiter(future, conn, argv))
        reply = await future
        return Popped(reply, argv, conn.db) if give_back else Raw(reply)

    async def _blocking_move(self, conn: ClientConnection, spec: CommandSpec,
                             argv: list[bytes]) -> Any:
        """BLMOVE / BRPOPLPUSH with source and destination on different shards.

        Move at once if the source has an element; otherwise wait on the source's shard with a
        one-key blocking pop, then push to the destination.  Should the destination have
        become a non-list meanwhile, the element goes back where it came from and the client
        gets WRONGTYPE, so nothing is lost.  (Not atomic across shards: the cross-shard
        issue puts intents around this.)
        """
        from shard.blocking import timeout_ms
        from shard.lists import _where

        src, dst = argv[1], argv[2]
        if spec.name == "blmove":
            from_head, to_head, raw_timeout = _where(argv[3]), _where(argv[4]), argv[5]
        else:
            from_head, to_head, raw_timeout = False, True, argv[3]
        timeout_ms(raw_timeout)  # its errors come first, as in Redis
        side = [b"LEFT" if from_head else b"RIGHT", b"LEFT" if to_head else b"RIGHT"]
        lmove = self.by_name[b"lmove"]
        moved = await cross.via_scratch(self.gateway, conn, lmove, [b"lmove", src, dst, *side],
                                        [1, 2])
        if moved is not None:
            return moved
        pop = b"blpop" if from_head else b"brpop"
        meta = (conn.db << wire.DB_SHIFT) | conn.resp3
        reply = await self._blocking(conn, self.links.shard_of(src), meta,
                                     [pop, src, raw_timeout], give_back=False)
        if bytes(reply).startswith((b"*-1", b"_")):
            return None
        if bytes(reply).startswith(b"-"):
            return reply
        element = _second_bulk(bytes(reply))
        push = b"lpush" if to_head else b"rpush"
        try:
            await cross.single(self.gateway, conn, dst, [push, dst, element])
        except RedisError:
            back = b"lpush" if from_head else b"rpush"
            await cross.single(self.gateway, conn, src, [back, src, element])
            raise
        return element

    def _local(self, conn: ClientConnection, spec: CommandSpec, argv: list[bytes]) -> None:
        try:
            result = spec.handler(conn, argv)  # type: ignore[misc]
        except RedisError as exc:
            conn.reply(exc.line())
            return
        if inspect.iscoroutine(result):
            conn.run_async(result)
        elif result is not cross.NO_REPLY:
            conn.reply(encode(result, conn.resp3))
