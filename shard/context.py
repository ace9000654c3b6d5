"""What a command handler sees of its shard while it runs."""

from __future__ import annotations

from typing import Any

from shard.errors import NOT_INTEGER, SYNTAX, WRONGTYPE, RedisError
from shard.keyspace import Database, Keyspace
from shard.numbers import string2ll


class Ctx:
    """The keyspace, the client's selected database and a few per-call facts.

    One instance per shard is reused for every command of a batch; the actor sets ``db``,
    ``resp3`` and ``name`` before each call.
    """

    __slots__ = ("ks", "db", "resp3", "spec", "config", "shard")

    def __init__(self, ks: Keyspace, config: dict[str, Any] | None = None) -> None:
        self.ks = ks
        self.db: Database = ks.dbs[0]
        self.resp3 = False
        self.spec: Any = None
        self.config: dict[str, Any] = config if config is not None else {}
        self.shard: Any = None

    @property
    def name(self) -> str:
        """The running command's full name (``set``, ``object|encoding``), for error texts."""
        return self.spec.fullname if self.spec is not None else ""

    @property
    def now(self) -> int:
        return self.ks.now

    def lookup(self, key: bytes) -> Any:
        return self.ks.get(self.db, key)

    def peek(self, key: bytes) -> Any:
        """A lookup that Redis makes without counting an access (TYPE, TTL, EXISTS, OBJECT)."""
        return self.ks.get(self.db, key, touch=False)

    def lookup_string(self, key: bytes) -> bytes | None:
        value = self.ks.get(self.db, key)
        if value is not None and type(value) is not bytes:
            raise RedisError(WRONGTYPE)
        return value


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
