"""Per-command statistics, error statistics, latency histograms, latency events and slow log.

One ``CommandStats`` lives in every shard and every gateway; each client command is counted
once, where it runs: a command sent whole to one shard by that shard, every other command
(gateway commands, fan-outs, commands split over shards, MULTI/EXEC) by the gateway.  INFO,
LATENCY and SLOWLOG add the parts up (gateway/stats_commands.py).

A command's counters are a list kept on its ``CommandSpec`` (``spec.stats``: calls, ns,
rejected, failed, buckets), so the shard's per-command cost is two clock reads and a few
integer additions (ShardExecutor.execute); names are only built when INFO asks.  Latencies go
into power-of-two buckets by nanoseconds (bucket ``b`` holds calls shorter than 2**b ns), enough
for INFO's percentiles and for LATENCY HISTOGRAM, whose buckets Redis also doubles.  Slow log
and latency events cost nothing until a call passes ``watch_ns``.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from shard.errors import OOM, RedisError

BUCKETS = 64
NEVER = 1 << 62
SLOWLOG_ARGS = 32  # as Redis: at most 32 arguments, each at most 128 bytes
SLOWLOG_ARG_BYTES = 128


def new_counters() -> list[Any]:
    return [0, 0, 0, 0, [0] * BUCKETS]  # calls, ns, rejected calls, failed calls, buckets


class CommandStats:
    def __init__(self) -> None:
        self.by_spec: list[Any] = []  # specs whose ``stats`` this object made
        self.calls: dict[str, list[Any]] = {}  # by name, for what has no spec (gateway)
        self.errors: dict[str, int] = {}  # error prefix (ERR, WRONGTYPE ...) -> count
        self.slowlog: deque[list[Any]] = deque()
        self.slow_ns = 10_000_000  # slowlog-log-slower-than, in ns (-1: off)
        self.slowlog_max = 128
        self.slowlog_id = 0
        self.latency_ns = 0  # latency-monitor-threshold, in ns (0: off)
        self.watch_ns = self.slow_ns  # the smaller of the two that are on
        self.events: dict[str, deque[tuple[int, int]]] = {}  # LATENCY: event -> (time, ms)

    def configure(self, config: Any) -> None:
        slower = int(config.get("slowlog-log-slower-than", 10000))
        self.slow_ns = -1 if slower < 0 else slower * 1000
        self.slowlog_max = int(config.get("slowlog-max-len", 128))
        while len(self.slowlog) > self.slowlog_max:
            self.slowlog.pop()
        self.latency_ns = int(config.get("latency-monitor-threshold", 0)) * 1_000_000
        watched = [n for n in (self.slow_ns if self.slow_ns >= 0 else NEVER,
                               self.latency_ns or NEVER)]
        self.watch_ns = min(watched)

    # --- recording -----------------------------------------------------------------------

    def counters_for(self, spec: Any) -> list[Any]:
        spec.stats = new_counters()
        self.by_spec.append(spec)
        return spec.stats  # type: ignore[no-any-return]

    def named(self, name: str) -> list[Any]:
        found = self.calls.get(name)
        if found is None:
            found = self.calls[name] = new_counters()
        return found

    def failed(self, spec: Any, error: RedisError) -> None:
        """A counted call answered an error (OOM: it was refused before running)."""
        if spec is not None and spec.stats is not None and spec.name[:2] != "__":
            if error.message == OOM:
                spec.stats[0] -= 1
                spec.stats[2] += 1
            else:
                spec.stats[3] += 1
        self.error(error.message)

    def count_call(self, name: str, elapsed_ns: int, failed: bool,
                   argv: list[bytes] | None = None, client: int = 0) -> None:
        """A call that ran in the gateway, whose error reply is counted where it is written."""
        found = self.named(name)
        found[0] += 1
        found[1] += elapsed_ns
        found[4][min(elapsed_ns.bit_length(), BUCKETS - 1)] += 1
        if failed:
            found[3] += 1
        if elapsed_ns >= self.watch_ns and argv is not None:
            self.slow(elapsed_ns, argv, client)

    def reject(self, name: str | None, message: str | None) -> None:
        """A call refused before it ran (arity, ACL ...); None: its error is counted where
        the reply is written."""
        if name is not None:
            self.named(name)[2] += 1
        if message is not None:
            self.error(message)

    def error(self, message: str) -> None:
        prefix = message.split(" ", 1)[0]
        self.errors[prefix] = self.errors.get(prefix, 0) + 1

    def slow(self, elapsed_ns: int, argv: list[bytes], client: int) -> None:
        if argv[0][:2] == b"__":
            return
        if elapsed_ns >= self.slow_ns >= 0:
            self.log_slow(argv, elapsed_ns, client)
        if self.latency_ns and elapsed_ns >= self.latency_ns:
            self.latency_event("command", elapsed_ns)

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

    # --- reading -------------------------------------------------------------------------

    def reset(self) -> None:
        for spec in self.by_spec:
            spec.stats = None
        self.by_spec.clear()
        self.calls.clear()
        self.errors.clear()

    def export(self) -> dict[bytes, Any]:
        """A msgpack-friendly copy for the gateway."""
        calls = {k.encode(): v for k, v in self.calls.items()}
        for spec in self.by_spec:
            if spec.name[:2] != "__" and spec.stats is not None and spec.stats[0] + spec.stats[2]:
                calls[spec.fullname.encode()] = spec.stats
        return {b"calls": calls, b"errors": {k.encode(): v for k, v in self.errors.items()}}

    def latency_export(self) -> dict[bytes, Any]:
        return {k.encode(): [list(s) for s in v] for k, v in self.events.items()}


def merge(parts: list[dict[bytes, Any]]) -> tuple[dict[str, list[Any]], dict[str, int]]:
    """Add up exported stats of shards and gateways."""
    calls: dict[str, list[Any]] = {}
    errors: dict[str, int] = {}
    for part in parts:
        for raw, (n, ns, rejected, failed, buckets) in part.get(b"calls", {}).items():
            name = raw.decode() if isinstance(raw, bytes) else raw
            total = calls.setdefault(name, new_counters())
            total[0] += n
            total[1] += ns
            total[2] += rejected
            total[3] += failed
            total[4] = [a + b for a, b in zip(total[4], buckets, strict=False)]
        for raw, count in part.get(b"errors", {}).items():
            name = raw.decode() if isinstance(raw, bytes) else raw
            errors[name] = errors.get(name, 0) + count
    return calls, errors


def _usec_bound(bucket: int) -> int:
    """Bucket ``b`` holds calls under 2**b ns; in microseconds (powers of two, at least 1)."""
    return 1 << max(bucket - 10, 0)


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
            return float(_usec_bound(index))
    return float(_usec_bound(len(buckets) - 1))


def histogram_usec(buckets: list[int]) -> dict[int, int]:
    """LATENCY HISTOGRAM's map: bucket upper bound in microseconds -> calls so far."""
    out: dict[int, int] = {}
    seen = 0
    for index, count in enumerate(buckets):
        if count:
            seen += count
            out[_usec_bound(index)] = seen
    return out
