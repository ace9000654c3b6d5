"""Running commands on a shard executor in unit tests (no processes, no sockets)."""

from __future__ import annotations

from typing import Any

from shard import wire
from shard.actor import ShardExecutor
from shard.errors import RedisError


class Clock:
    """A fake clock in milliseconds; tests move it by hand."""

    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def call(ex: ShardExecutor, *argv: bytes | str | int | float, resp3: bool = False) -> Any:
    """One command, its reply as a Python value (errors come back as RedisError)."""
    raw = [a if isinstance(a, bytes) else str(a).encode() for a in argv]
    raw[0] = raw[0].lower()
    return ex.execute_batch([[wire.meta(0, resp3, structured=True), raw]])[0]


def error(value: Any) -> str:
    """The text of an error reply (the test fails if the reply is not an error)."""
    assert isinstance(value, RedisError), value
    return value.message
