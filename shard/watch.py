"""WATCH support in a shard: which clients watch which keys, and whose keys were touched.

A client (gateway routing id + client id) watches keys; any write to one of them, its expiry,
or a flush makes the client *dirty*, and its next EXEC is refused.  Only watched keys cost
anything: a write checks one dict when nobody watches.
"""

from __future__ import annotations

from typing import Any

from shard.context import Ctx
from shard.table import INTERNAL, command

Watcher = tuple[bytes, int]  # (gateway identity, client id)


class Watches:
    def __init__(self) -> None:
        self.by_key: dict[tuple[int, bytes], set[Watcher]] = {}
        self.keys_of: dict[Watcher, list[tuple[int, bytes]]] = {}
        self.dirty: set[Watcher] = set()

    def watch(self, who: Watcher, db: int, keys: list[bytes]) -> None:
        mine = self.keys_of.setdefault(who, [])
        for key in keys:
            self.by_key.setdefault((db, key), set()).add(who)
            mine.append((db, key))

    def unwatch(self, who: Watcher) -> None:
        for slot in self.keys_of.pop(who, []):
            watchers = self.by_key.get(slot)
            if watchers is not None:
                watchers.discard(who)
                if not watchers:
                    del self.by_key[slot]
        self.dirty.discard(who)

    def touched(self, db: int, keys: list[bytes]) -> None:
        for key in keys:
            watchers = self.by_key.get((db, key))
            if watchers:
                self.dirty.update(watchers)

    def touch_existing(self, dbs: list[Any], only: int | None) -> None:
        """Before a flush or SWAPDB: watchers of keys that exist now (in database ``only``,
        or in all) become dirty; watched keys that do not exist are untouched, as in Redis."""
        for (index, key), watchers in self.by_key.items():
            if (only is None or index == only) and key in dbs[index].data:
                self.dirty.update(watchers)


    def touch_swapped(self, dbs: list[Any], first: int, second: int) -> None:
        """Before SWAPDB: a watched key of either database changes when it exists in one of
        them (it appears, disappears or gets the other database's value)."""
        for (index, key), watchers in self.by_key.items():
            if index in (first, second):
                other = second if index == first else first
                if key in dbs[index].data or key in dbs[other].data:
                    self.dirty.update(watchers)


def _who(ctx: Ctx, raw_id: bytes) -> Watcher:
    return (ctx.shard.current_identity, int(raw_id))


@command("__WATCH client-id key [key ...]", -3, "readonly", (2, -1, 1), route=INTERNAL)
def watch_keys(ctx: Ctx, args: list[bytes]) -> Any:
    ctx.shard.watches.watch(_who(ctx, args[0]), ctx.db.index, args[1:])
    return 1


@command("__UNWATCH client-id", 2, "readonly", route=INTERNAL)
def unwatch_keys(ctx: Ctx, args: list[bytes]) -> Any:
    ctx.shard.watches.unwatch(_who(ctx, args[0]))
    return 1


@command("__WATCHCHECK client-id", 2, "readonly", route=INTERNAL)
def watch_check(ctx: Ctx, args: list[bytes]) -> Any:
    """1 if a watched key changed (the EXEC must fail); the watches end either way."""
    watches = ctx.shard.watches
    who = _who(ctx, args[0])
    dirty = who in watches.dirty
    watches.unwatch(who)
    return int(dirty)
