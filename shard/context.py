"""What a command handler sees of its shard while it runs."""

from __future__ import annotations

from typing import Any

from shard.errors import NOT_INTEGER, SYNTAX, WRONGTYPE, RedisError
from shard.keyspace import Database, Keyspace
from shard.notify import KEY_MISS
from shard.numbers import string2ll


class Ctx:
    """The keyspace, the client's selected database and a few per-call facts.

    One instance per shard is reused for every command of a batch; the actor sets ``db``,
    ``resp3`` and ``name`` before each call.
    """

    __slots__ = ("ks", "db", "resp3", "spec", "config", "shard", "events", "notes", "unchanged")

    def __init__(self, ks: Keyspace, config: dict[str, Any] | None = None) -> None:
        self.ks = ks
        self.db: Database = ks.dbs[0]
        self.resp3 = False
        self.spec: Any = None
        self.config: dict[str, Any] = config if config is not None else {}
        self.shard: Any = None
        # A key a write command named but did not change (SMOVE's destination that already
        # held the member): its watchers and waiters are not signalled, as in Redis.
        self.unchanged: bytes | None = None
        self.events = 0  # notify-keyspace-events as bits (shard/notify.py); 0: off
        self.notes: list[list[bytes]] = []  # [channel, message] for the pub/sub actor

    def notify(self, cls: int, event: bytes, key: bytes, db: int = -1) -> None:
        """A keyspace event (Redis' notifyKeyspaceEvent) in the current database."""
        if self.events & cls:
            from shard.notify import notes_for

            notes_for(self.events, cls, event, key, self.db.index if db < 0 else db, self.notes)

    @property
    def name(self) -> str:
        """The running command's full name (``set``, ``object|encoding``), for error texts."""
        return self.spec.fullname if self.spec is not None else ""

    @property
    def now(self) -> int:
        return self.ks.now

    def missed(self, key: bytes) -> None:
        """A read found no key: Redis' "keymiss" event (writes' lookups raise none)."""
        if self.events & KEY_MISS and self.spec is not None and not self.spec.is_write():
            self.notify(KEY_MISS, b"keymiss", key)

    def lookup(self, key: bytes) -> Any:
        value = self.ks.get(self.db, key)
        if value is None and self.events:
            self.missed(key)
        return value

    def peek(self, key: bytes) -> Any:
        """A lookup that Redis makes without counting an access (TYPE, TTL, EXISTS, OBJECT)."""
        return self.ks.get(self.db, key, touch=False)

    def lookup_string(self, key: bytes) -> bytes | None:
        value = self.ks.get(self.db, key)
        if value is None:
            if self.events:
                self.missed(key)
        elif type(value) is not bytes:
            raise RedisError(WRONGTYPE)
        return value  # type: ignore[no-any-return]


def int_arg(raw: bytes, error: str = NOT_INTEGER) -> int:
    """A 64-bit integer argument, parsed with Redis' strict rules."""
    value = string2ll(raw)
    if value is None:
        raise RedisError(error)
    return value


def syntax_error() -> RedisError:
    return RedisError(SYNTAX)


def upper(raw: bytes) -> bytes:
    return raw.upper()
