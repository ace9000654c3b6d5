"""The pub/sub actor's control socket (server/control.py): ``ping`` and ``status`` for
atoll-admin, polled beside the actor's data socket like a shard's (shard/control.py)."""

from __future__ import annotations

import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from pubsub.registry import CHANNEL, PATTERN, SHARD_CHANNEL
from server.control import Handler, process_memory

if TYPE_CHECKING:
    from pubsub.actor import PubSubExecutor

RATE_EVERY = 0.1  # seconds between two samples of the message counter


class PubSubControl:
    def __init__(self, executor: PubSubExecutor) -> None:
        self.executor = executor
        self.started = time.time()
        self.samples: deque[tuple[float, int]] = deque(maxlen=32)
        self.handlers: dict[str, Handler] = {"ping": lambda r: "pong", "status": self.status}

    def sample(self) -> None:
        """Called by the loop after every wake-up; keeps one sample per RATE_EVERY."""
        now = time.monotonic()
        if not self.samples or now - self.samples[-1][0] >= RATE_EVERY:
            self.samples.append((now, self.executor.published))

    def messages_per_sec(self) -> float:
        now, count = time.monotonic(), self.executor.published
        for when, then in self.samples:  # the oldest sample within the last ~second
            if now - when <= 1.5 and now > when:
                return (count - then) / (now - when)
        return 0.0

    def status(self, request: dict[str, Any]) -> dict[str, Any]:
        ex = self.executor
        maps = ex.registry.maps
        now = time.monotonic()
        return {
            "pid": os.getpid(), "rss": process_memory(os.getpid()),
            "uptime": time.time() - self.started,
            "channels": len(maps[CHANNEL]), "patterns": len(maps[PATTERN]),
            "shard_channels": len(maps[SHARD_CHANNEL]),
            "gateways": {name.decode("latin-1"): round(now - seen, 3)
                         for name, seen in sorted(ex.gateways.items())},
            "messages": ex.published,
            "messages_per_sec": round(self.messages_per_sec(), 1),
        }
