"""Per-command statistics, error statistics, latency histograms and the slow log.

One ``CommandStats`` lives in every shard and every gateway; each client command is counted
once, where it runs: a command sent whole to one shard by that shard, every other command
(gateway commands, fan-outs, commands split over shards, MULTI/EXEC) by the gateway.  INFO,
LATENCY HISTOGRAM and SLOWLOG add the parts up (gateway/stats_commands.py).

Recording costs a clock read, one dict lookup and a few integer additions: latencies go into
power-of-two buckets (bucket ``b`` holds calls of up to 2**b microseconds), enough for the
percentiles INFO latencystats prints and for LATENCY HISTOGRAM, whose buckets Redis also
doubles.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from shard.errors import RedisError

BUCKETS = 40
SLOWLOG_ARGS = 32  # as Redis: at most 32 arguments, each at most 128 bytes
SLOWLOG_ARG_BYTES = 128


class CommandStats:
    __slots__ = ("calls", "errors", "slowlog", "slow_ns", "slowlog_max", "slowlog_id",
                 "latency_ns", "events")

    def __init__(self) -> None:
        # name -> [calls, total ns, rejected calls, failed calls, latency buckets]
        self.calls: dict[str, list[Any]] = {}
        self.errors: dict[str, int] = {}  # error prefix (ERR, WRONGTYPE ...) -> count
        self.slowlog: deque[list[Any]] = deque()
        self.slow_ns = 10_000_000  # slowlog-log-slower-than, in ns (-1: off)
        self.slowlog_max = 128
        self.slowlog_id = 0
        self.latency_ns = 0  # latency-monitor-threshold, in ns (0: off)
        self.events: dict[str, deque[tuple[int, int]]] = {}  # LATENCY: event -> (time, ms)

    def configure(self, config: Any) -> None:
        slower = int(config.get("slowlog-log-slower-than", 10000))
        self.slow_ns = -1 if slower < 0 else slower * 1000
        self.slowlog_max = int(config.get("slowlog-max-len", 128))
        self.latency_ns = int(config.get("latency-monitor-threshold", 0)) * 1_000_000
        while len(self.slowlog) > self.slowlog_max:
            self.slowlog.pop()

    def entry(self, name: str) -> list[Any]:
        found = self.calls.get(name)
        if found is None:
            found = self.calls[name] = [0, 0, 0, 0, [0] * BUCKETS]
        return found

    def record(self, name: str, elapsed_ns: int, value: Any, argv: list[bytes] | None = None,
               client: int = 0) -> None:
        """One call that ran (``value`` is its reply: an error counts as failed)."""
        found = self.calls.get(name)
        if found is None:
            found = self.entry(name)
        found[0] += 1
        found[1] += elapsed_ns
        found[4][min((elapsed_ns >> 10).bit_length(), BUCKETS - 1)] += 1
        if isinstance(value, RedisError):
            found[3] += 1
            self.error(value.message)
        if elapsed_ns >= self.slow_ns >= 0 and argv is not None:
            self.log_slow(argv, elapsed_ns, client)
        if self.latency_ns and elapsed_ns >= self.latency_ns:
            self.latency_event("command", elapsed_ns)

    def latency_event(self, event: str, elapsed_ns: int) -> None:
        """LATENCY's samples: one per second per event (the worst), the last 160 kept."""
        ms = elapsed_ns // 1_000_000
        samples = self.events.get(event)
        if samples is None:
            samples = self.events[event] = deque(maxlen=160)
        now = int(time.time())
        if samples and samples[-1][0] == now:
            if samples[-1][1] < ms:
                samples[-1] = (now, ms)
            return
        samples.append((now, ms))

    def reject(self, name: str | None, message: str | None) -> None:
        """A call refused before it ran (arity, ACL, OOM ...); None: its error is counted
        where the reply is written."""
        if name is not None:
            self.entry(name)[2] += 1
        if message is not None:
            self.error(message)

    def count_call(self, name: str, elapsed_ns: int, failed: bool,
                   argv: list[bytes] | None = None, client: int = 0) -> None:
        """A call that ran in the gateway, whose error reply is counted where it is written."""
        found = self.calls.get(name)
        if found is None:
            found = self.entry(name)
        found[0] += 1
        found[1] += elapsed_ns
        found[4][min((elapsed_ns >> 10).bit_length(), BUCKETS - 1)] += 1
        if failed:
            found[3] += 1
        if elapsed_ns >= self.slow_ns >= 0 and argv is not None:
            self.log_slow(argv, elapsed_ns, client)
        if self.latency_ns and elapsed_ns >= self.latency_ns:
            self.latency_event("command", elapsed_ns)

    def error(self, message: str) -> None:
        prefix = message.split(" ", 1)[0]
        self.errors[prefix] = self.errors.get(prefix, 0) + 1

    def log_slow(self, argv: list[bytes], elapsed_ns: int, client: int) -> None:
        shown = [a if len(a) <= SLOWLOG_ARG_BYTES else
                 a[:SLOWLOG_ARG_BYTES] + b"... (%d more bytes)" % (len(a) - SLOWLOG_ARG_BYTES)
                 for a in argv[:SLOWLOG_ARGS]]
        if len(argv) > SLOWLOG_ARGS:
            shown[-1] = b"... (%d more arguments)" % (len(argv) - SLOWLOG_ARGS + 1)
        self.slowlog.appendleft([self.slowlog_id, int(time.time()), elapsed_ns // 1000, shown,
                                 client])
        self.slowlog_id += 1
        while len(self.slowlog) > self.slowlog_max:
            self.slowlog.pop()

    def reset(self) -> None:
        self.calls.clear()
        self.errors.clear()

    def export(self) -> dict[bytes, Any]:
        """A msgpack-friendly copy for the gateway."""
        return {b"calls": {k.encode(): v for k, v in self.calls.items()},
                b"errors": {k.encode(): v for k, v in self.errors.items()}}

    def latency_export(self) -> dict[bytes, Any]:
        return {k.encode(): [list(s) for s in v] for k, v in self.events.items()}


def merge(parts: list[dict[bytes, Any]]) -> tuple[dict[str, list[Any]], dict[str, int]]:
    """Add up exported stats of shards and gateways."""
    calls: dict[str, list[Any]] = {}
    errors: dict[str, int] = {}
    for part in parts:
        for raw, (n, ns, rejected, failed, buckets) in part.get(b"calls", {}).items():
            name = raw.decode() if isinstance(raw, bytes) else raw
            total = calls.setdefault(name, [0, 0, 0, 0, [0] * BUCKETS])
            total[0] += n
            total[1] += ns
            total[2] += rejected
            total[3] += failed
            total[4] = [a + b for a, b in zip(total[4], buckets, strict=False)]
        for raw, count in part.get(b"errors", {}).items():
            name = raw.decode() if isinstance(raw, bytes) else raw
            errors[name] = errors.get(name, 0) + count
    return calls, errors


def percentile_usec(buckets: list[int], fraction: float) -> float:
    """The upper bound (in microseconds) of the bucket holding the given fraction of calls."""
    total = sum(buckets)
    if not total:
        return 0.0
    wanted = total * fraction
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= wanted:
            return float(1 << index)
    return float(1 << (len(buckets) - 1))


def histogram_usec(buckets: list[int]) -> dict[int, int]:
    """LATENCY HISTOGRAM's map: bucket upper bound in microseconds -> calls so far."""
    out: dict[int, int] = {}
    seen = 0
    for index, count in enumerate(buckets):
        if count:
            seen += count
            out[1 << index] = seen
    return out
