"""Blocking pops: BLPOP BRPOP BRPOPLPUSH BLMOVE BLMPOP BZPOPMIN BZPOPMAX BZMPOP.

A blocking handler first tries to serve at once, exactly like its non-blocking sibling.  When
every key is empty it raises :class:`Block`; the shard parks the command in a FIFO per key
(:class:`BlockedClients`) and answers the gateway with a token.  Each write to a key someone
waits on retries that key's waiters in arrival order; a served or timed-out waiter's reply
leaves as an unsolicited message carrying its token.  This module covers keys on one shard;
waiting across shards is the cross-shard issue's.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from shard.context import Ctx
from shard.errors import RedisError
from shard.lists import _list_or_none, _move, _where, lmpop, parse_lmpop
from shard.notify import GENERIC, LIST
from shard.numbers import string2d
from shard.reply import NULL_ARRAY
from shard.table import command, numkeys_at
from shard.zset_multi import get_zset, parse_zmpop, pop_items, zmpop_keys


class Block(Exception):
    """Raised by a blocking handler that cannot be served now."""

    def __init__(self, keys: list[bytes], deadline_ms: int, timeout_reply: Any) -> None:
        super().__init__()
        self.keys = keys
        self.deadline_ms = deadline_ms  # 0 = forever
        self.timeout_reply = timeout_reply


@dataclass(eq=False)
class Waiter:
    identity: bytes  # the gateway's ZeroMQ routing id
    token: int
    meta: int
    argv: list[bytes]
    db: int
    keys: list[bytes]
    deadline_ms: int
    timeout_reply: Any


@dataclass
class BlockedClients:
    by_key: dict[tuple[int, bytes], deque[Waiter]] = field(default_factory=dict)
    by_token: dict[tuple[bytes, int], Waiter] = field(default_factory=dict)
    ready: set[tuple[int, bytes]] = field(default_factory=set)
    next_token: int = 1

    def add(self, waiter: Waiter) -> None:
        self.by_token[(waiter.identity, waiter.token)] = waiter
        for key in waiter.keys:
            self.by_key.setdefault((waiter.db, key), deque()).append(waiter)

    def remove(self, waiter: Waiter) -> None:
        self.by_token.pop((waiter.identity, waiter.token), None)
        for key in waiter.keys:
            queue = self.by_key.get((waiter.db, key))
            if queue is not None:
                try:
                    queue.remove(waiter)
                except ValueError:
                    pass
                if not queue:
                    del self.by_key[(waiter.db, key)]

    def signal(self, db: int, keys: list[bytes]) -> None:
        for key in keys:
            if (db, key) in self.by_key:
                self.ready.add((db, key))

    def signal_all(self) -> None:
        self.ready.update(self.by_key)

    def expired(self, now_ms: int) -> list[Waiter]:
        return [w for w in self.by_token.values() if w.deadline_ms and w.deadline_ms <= now_ms]

    def next_deadline(self) -> int:
        deadlines = [w.deadline_ms for w in self.by_token.values() if w.deadline_ms]
        return min(deadlines) if deadlines else 0


def parse_timeout(ctx: Ctx, raw: bytes) -> int:
    """Absolute deadline in ms for a timeout in (float) seconds; 0 waits forever."""
    millis = timeout_ms(raw)
    return ctx.now + millis if millis > 0 else 0


def timeout_ms(raw: bytes) -> int:
    """A blocking command's timeout in (float) seconds, as milliseconds (0 = forever)."""
    seconds = string2d(raw)
    if seconds is None or math.isnan(seconds):
        raise RedisError("ERR timeout is not a float or out of range")
    if math.isinf(seconds):
        raise RedisError("ERR timeout is negative" if seconds < 0 else "ERR timeout is out of range")
    millis = math.ceil(seconds * 1000.0)
    if millis < 0:
        raise RedisError("ERR timeout is negative")
    return millis


def _check_lists(ctx: Ctx, keys: list[bytes]) -> None:
    for key in keys:
        _list_or_none(ctx, key)  # WRONGTYPE for a key of another type, as Redis checks first


def _blocking_pop(ctx: Ctx, args: list[bytes], head: bool) -> Any:
    keys, deadline = args[:-1], parse_timeout(ctx, args[-1])
    for key in keys:
        lst = _list_or_none(ctx, key)
        if lst:
            element = lst.popleft() if head else lst.pop()
            ctx.notify(LIST, b"lpop" if head else b"rpop", key)
            if not lst:
                ctx.ks.delete(ctx.db, key)
                ctx.notify(GENERIC, b"del", key)
            else:
                ctx.ks.modified(ctx.db, key)
            return [key, element]
    raise Block(keys, deadline, NULL_ARRAY)


_BL = "write noscript blocking"


@command("BLPOP key [key ...] timeout", -3, _BL, (1, -2, 1), acl="@write @list @slow @blocking",
         group="list", since="2.0.0",
         summary="Remove and get the first element in a list, or block until one is available")
def blpop(ctx: Ctx, args: list[bytes]) -> Any:
    return _blocking_pop(ctx, args, head=True)


@command("BRPOP key [key ...] timeout", -3, _BL, (1, -2, 1), acl="@write @list @slow @blocking",
         group="list", since="2.0.0",
         summary="Remove and get the last element in a list, or block until one is available")
def brpop(ctx: Ctx, args: list[bytes]) -> Any:
    return _blocking_pop(ctx, args, head=False)


def _blocking_move(ctx: Ctx, src: bytes, dst: bytes, from_head: bool, to_head: bool,
                   raw_timeout: bytes) -> Any:
    deadline = parse_timeout(ctx, raw_timeout)
    # Like Redis, the destination's type is only checked once there is something to move:
    # a waiter whose destination turned out wrong is answered WRONGTYPE and pops nothing.
    element = _move(ctx, src, dst, from_head, to_head)
    if element is None:
        raise Block([src], deadline, None)
    return element


@command("BRPOPLPUSH source destination timeout", 4, "write denyoom noscript blocking", (1, 2, 1),
         acl="@write @list @slow @blocking", group="list", since="2.2.0",
         summary="Pop an element from a list, push it to another list and return it; or block until one is available")
def brpoplpush(ctx: Ctx, args: list[bytes]) -> Any:
    return _blocking_move(ctx, args[0], args[1], False, True, args[2])


@command("BLMOVE source destination LEFT | RIGHT LEFT | RIGHT timeout", 6,
         "write denyoom noscript blocking", (1, 2, 1), acl="@write @list @slow @blocking", group="list",
         since="6.2.0",
         summary="Pop an element from a list, push it to another list and return it; or block until one is available")
def blmove(ctx: Ctx, args: list[bytes]) -> Any:
    from_head, to_head = _where(args[2]), _where(args[3])
    return _blocking_move(ctx, args[0], args[1], from_head, to_head, args[4])


@command("BLMPOP timeout numkeys key [key ...] LEFT | RIGHT [COUNT count]", -5,
         "write blocking", (0, 0, 0), acl="@write @list @slow @blocking", group="list",
         since="7.0.0", keys_fn=numkeys_at(2),
         summary="Pop elements from a list, or block until one is available")
def blmpop(ctx: Ctx, args: list[bytes]) -> Any:
    deadline = parse_timeout(ctx, args[0])
    numkeys, _, _ = parse_lmpop(args, 1)
    result = lmpop(ctx, args[1:])
    if result is NULL_ARRAY:
        raise Block(args[2 : 2 + numkeys], deadline, NULL_ARRAY)
    return result


def _blocking_zpop(ctx: Ctx, args: list[bytes], highest: bool) -> Any:
    keys, deadline = args[:-1], parse_timeout(ctx, args[-1])
    for key in keys:
        zs = get_zset(ctx, key)
        if zs is not None:
            (score, member), = pop_items(ctx, key, zs, 1, highest)
            return [key, member, score]
    raise Block(keys, deadline, NULL_ARRAY)


@command("BZPOPMIN key [key ...] timeout", -3, "write noscript blocking fast", (1, -2, 1),
         acl="@write @sortedset @fast @blocking", group="sorted-set", since="5.0.0",
         summary="Remove and return the member with the lowest score from one or more sorted sets, or block until one is available")
def bzpopmin(ctx: Ctx, args: list[bytes]) -> Any:
    return _blocking_zpop(ctx, args, highest=False)


@command("BZPOPMAX key [key ...] timeout", -3, "write noscript blocking fast", (1, -2, 1),
         acl="@write @sortedset @fast @blocking", group="sorted-set", since="5.0.0",
         summary="Remove and return the member with the highest score from one or more sorted sets, or block until one is available")
def bzpopmax(ctx: Ctx, args: list[bytes]) -> Any:
    return _blocking_zpop(ctx, args, highest=True)


@command("BZMPOP timeout numkeys key [key ...] MIN | MAX [COUNT count]", -5, "write blocking",
         (0, 0, 0), acl="@write @sortedset @slow @blocking", group="sorted-set",
         since="7.0.0", keys_fn=numkeys_at(2),
         summary="Remove and return members with scores in a sorted set or block until one is available")
def bzmpop(ctx: Ctx, args: list[bytes]) -> Any:
    deadline = parse_timeout(ctx, args[0])
    keys, highest, count = parse_zmpop(args, 1)
    result = zmpop_keys(ctx, keys, highest, count)
    if result is NULL_ARRAY:
        raise Block(keys, deadline, NULL_ARRAY)
    return result


@command("__UNBLOCK token TIMEOUT|ERROR|DROP", 3, "admin", route="internal")
def unblock(ctx: Ctx, args: list[bytes]) -> Any:
    """CLIENT UNBLOCK or a vanished client: end a wait.  1 if it was still waiting."""
    shard = ctx.shard
    waiter = shard.blocked.by_token.get((shard.current_identity, int(args[0])))
    if waiter is None:
        return 0
    shard.blocked.remove(waiter)
    how = args[1].upper()
    if how == b"ERROR":
        shard.deliver(waiter, RedisError("UNBLOCKED client unblocked via CLIENT UNBLOCK"))
    elif how == b"TIMEOUT":
        shard.deliver(waiter, waiter.timeout_reply)
    return 1

