"""SLOWLOG, LATENCY, CONFIG RESETSTAT and INFO's commandstats / errorstats / latencystats.

Every shard and the gateway keep a ``shard.cmdstats.CommandStats``; these commands ask every
shard for its part (internal ``__STATS``, or ``__INFO`` for INFO) and add the gateway's own.
Slow-log ids are made unique over the parts as ``local id * 64 + source`` (source 0 for the
gateway, shard index + 1 for shards), so they grow with time inside one source only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway import cross, peers
from shard import cmdstats, errors
from shard.errors import RedisError
from shard.numbers import string2ll
from shard.reply import OK, Verbatim
from shard.table import GATEWAY, command, container

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.server import Gateway

G = GATEWAY
SOURCES = 64


# --- INFO sections -----------------------------------------------------------------------

def _merged(gw: Gateway, shards: list[dict[bytes, Any]]) -> tuple[dict[str, Any], dict[str, int]]:
    parts = [s.get(b"cmdstats", {}) for s in shards] + [gw.cmdstats.export()]
    parts += [c["cmdstats"] for c in gw.peer_counters if "cmdstats" in c]
    return cmdstats.merge(parts)


def commandstats_section(gw: Gateway, shards: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    calls, _ = _merged(gw, shards)
    lines = []
    for name in sorted(calls):
        n, ns, rejected, failed, _ = calls[name]
        usec = ns // 1000
        per_call = usec / n if n else 0.0
        lines.append((f"cmdstat_{name}", f"calls={n},usec={usec},usec_per_call={per_call:.2f},"
                                         f"rejected_calls={rejected},failed_calls={failed}"))
    return lines


def errorstats_section(gw: Gateway, shards: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    _, errs = _merged(gw, shards)
    return [(f"errorstat_{name}", f"count={count}") for name, count in sorted(errs.items())]


def latencystats_section(gw: Gateway, shards: list[dict[bytes, Any]]) -> list[tuple[str, Any]]:
    calls, _ = _merged(gw, shards)
    percentiles = _percentiles(gw)
    lines = []
    for name in sorted(calls):
        buckets = calls[name][4]
        if not sum(buckets):
            continue
        values = ",".join(f"p{_label(p)}={cmdstats.percentile_usec(buckets, p / 100):.3f}"
                          for p in percentiles)
        lines.append((f"latency_percentiles_usec_{name}", values))
    return lines


def _percentiles(gw: Gateway) -> list[float]:
    value = gw.config.value("latency-tracking-info-percentiles")
    if isinstance(value, str):
        return [float(v) for v in value.split()]
    return [float(v) for v in value]


def _label(p: float) -> str:
    return f"{p:g}"


# --- SLOWLOG -----------------------------------------------------------------------------

container("slowlog", acl="@slow", group="server", since="2.2.12",
          summary="A container for slow log commands")


@command("SLOWLOG GET [count]", -2, "admin loading stale", acl="@admin @slow @dangerous",
         route=G, parent="slowlog", since="2.2.12", summary="Get the slow log's entries")
def slowlog_get(conn: ClientConnection, argv: list[bytes]) -> Any:
    count = 10
    if len(argv) == 3:
        parsed = string2ll(argv[2])
        if parsed is None:
            raise RedisError(errors.NOT_INTEGER)
        if parsed < -1:
            raise RedisError("ERR count should be greater than or equal to -1")
        count = parsed if parsed >= 0 else 1 << 30
    return _slowlog_get(conn, count)


async def _slowlog_get(conn: ClientConnection, count: int) -> Any:
    gw = conn.gateway
    parts = await cross.all_shards(gw, conn, [b"__stats", b"SLOWLOG", b"GET", b"%d" % count])
    entries = [[e[0] * SOURCES, *e[1:]] for e in gw.cmdstats.slowlog]
    for index, part in enumerate(parts):
        if isinstance(part, list):
            entries += [[e[0] * SOURCES + index + 1, *e[1:]] for e in part]
    entries.sort(key=lambda e: (e[1], e[0]), reverse=True)
    out = []
    for ident, when, usec, args, client in entries[:count]:
        other = gw.clients.get(client)
        addr = other.addr.encode() if other is not None else b""
        name = other.name if other is not None else b""
        out.append([ident, when, usec, list(args), addr, name])
    return out


@command("SLOWLOG LEN", 2, "admin loading stale", acl="@admin @slow @dangerous", route=G,
         parent="slowlog", since="2.2.12", summary="Get the slow log's length")
def slowlog_len(conn: ClientConnection, argv: list[bytes]) -> Any:
    async def total() -> int:
        parts = await cross.all_shards(conn.gateway, conn, [b"__stats", b"SLOWLOG", b"LEN"])
        return len(conn.gateway.cmdstats.slowlog) + sum(p for p in parts if isinstance(p, int))

    return total()


@command("SLOWLOG RESET", 2, "admin loading stale", acl="@admin @slow @dangerous", route=G,
         parent="slowlog", since="2.2.12", summary="Clear all entries from the slow log")
def slowlog_reset(conn: ClientConnection, argv: list[bytes]) -> Any:
    async def reset() -> Any:
        conn.gateway.cmdstats.slowlog.clear()
        await cross.all_shards(conn.gateway, conn, [b"__stats", b"SLOWLOG", b"RESET"])
        return OK

    return reset()


# --- LATENCY -----------------------------------------------------------------------------

container("latency", acl="@slow", group="server", since="2.8.13",
          summary="A container for latency diagnostics commands")


async def _events(conn: ClientConnection) -> dict[str, list[tuple[int, int]]]:
    """Every source's samples per event, merged by second (the worst sample wins)."""
    gw = conn.gateway
    parts = await cross.all_shards(gw, conn, [b"__stats", b"LATENCY"])
    merged: dict[str, dict[int, int]] = {}
    sources = [{k.encode(): [list(x) for x in v] for k, v in gw.cmdstats.events.items()}]
    for part in sources + [p for p in parts if isinstance(p, dict)]:
        for raw, samples in part.items():
            name = raw.decode() if isinstance(raw, bytes) else raw
            seconds = merged.setdefault(name, {})
            for when, ms in samples:
                seconds[when] = max(seconds.get(when, 0), ms)
    return {name: sorted(seconds.items()) for name, seconds in merged.items()}


@command("LATENCY LATEST", 2, "admin noscript loading stale", acl="@admin @slow @dangerous",
         route=G, parent="latency", since="2.8.13",
         summary="Return the latest latency samples for all events")
def latency_latest(conn: ClientConnection, argv: list[bytes]) -> Any:
    async def latest() -> Any:
        events = await _events(conn)
        return [[name.encode(), samples[-1][0], samples[-1][1], max(ms for _, ms in samples)]
                for name, samples in events.items() if samples]

    return latest()


@command("LATENCY HISTORY event", 3, "admin noscript loading stale",
         acl="@admin @slow @dangerous", route=G, parent="latency", since="2.8.13",
         summary="Return timestamp-latency samples for the event")
def latency_history(conn: ClientConnection, argv: list[bytes]) -> Any:
    async def history() -> Any:
        events = await _events(conn)
        return [[when, ms] for when, ms in events.get(argv[2].decode("latin-1").lower(), [])]

    return history()


@command("LATENCY RESET [event [event ...]]", -2, "admin noscript loading stale",
         acl="@admin @slow @dangerous", route=G, parent="latency", since="2.8.13",
         summary="Reset latency data for one or more events")
def latency_reset(conn: ClientConnection, argv: list[bytes]) -> Any:
    async def reset() -> int:
        names = [a.decode("latin-1").lower() for a in argv[2:]]
        before = await _events(conn)
        wanted = names or list(before)
        events = conn.gateway.cmdstats.events
        for name in wanted:
            events.pop(name, None)
        await cross.all_shards(conn.gateway, conn, [b"__stats", b"LATENCY", b"RESET",
                                                    *[n.encode() for n in names]])
        return sum(1 for name in wanted if name in before)

    return reset()


@command("LATENCY HISTOGRAM [command [command ...]]", -2, "admin noscript loading stale",
         acl="@admin @slow @dangerous", route=G, parent="latency", since="7.0.0",
         summary="Return the cumulative distribution of latencies of a subset of commands or "
                 "all")
def latency_histogram(conn: ClientConnection, argv: list[bytes]) -> Any:
    async def histogram() -> Any:
        gw = conn.gateway
        parts = await cross.all_shards(gw, conn, [b"__info"])
        gw.peer_counters = [a for a in await gw.peers.ask("counters") if isinstance(a, dict)]
        calls, _ = _merged(gw, [p for p in parts if isinstance(p, dict)])
        wanted = [a.decode("latin-1").lower() for a in argv[2:]]
        names = sorted(calls) if not wanted else [
            n for n in sorted(calls) if any(n == w or n.startswith(w + "|") for w in wanted)]
        out: dict[bytes, Any] = {}
        for name in names:
            n, _, _, _, buckets = calls[name]
            if n:
                out[name.encode()] = {b"calls": n,
                                      b"histogram_usec": cmdstats.histogram_usec(buckets)}
        return out

    return histogram()


@command("LATENCY DOCTOR", 2, "admin noscript loading stale", acl="@admin @slow @dangerous",
         route=G, parent="latency", since="2.8.13",
         summary="Return a human readable latency analysis report")
def latency_doctor(conn: ClientConnection, argv: list[bytes]) -> Any:
    async def doctor() -> Any:
        events = await _events(conn)
        if not events:
            text = ("Dave, no latency spike was observed during the lifetime of this Atoll "
                    "instance, not in the slightest bit.\n")
        else:
            text = "Latency spikes observed:\n" + "".join(
                f"{name}: {len(s)} samples, worst {max(ms for _, ms in s)} ms, "
                f"latest {s[-1][1]} ms\n" for name, s in events.items())
        return Verbatim(text.encode())

    return doctor()


@command("LATENCY GRAPH event", 3, "admin noscript loading stale", acl="@admin @slow @dangerous",
         route=G, parent="latency", since="2.8.13",
         summary="Return a latency graph for the event")
def latency_graph(conn: ClientConnection, argv: list[bytes]) -> Any:
    async def graph() -> Any:
        name = argv[2].decode("latin-1").lower()
        samples = (await _events(conn)).get(name)
        if not samples:
            raise RedisError(f"ERR No samples available for event '{name}'")
        worst = max(ms for _, ms in samples) or 1
        rows = "".join(f"{when} {'#' * max(1, 40 * ms // worst)} {ms} ms\n"
                       for when, ms in samples)
        return Verbatim(f"{name} - high {worst} ms\n{rows}".encode())

    return graph()


# --- CONFIG RESETSTAT --------------------------------------------------------------------

async def reset_everywhere(gw: Gateway, conn: ClientConnection) -> Any:
    """Reset the counters of every gateway and every shard."""
    _reset_here(gw)
    gw.peers.tell("resetstat", None)
    await cross.all_shards(gw, conn, [b"__stats", b"RESET"])
    return OK


def _reset_here(gw: Gateway, sender: str = "", payload: Any = None) -> None:
    gw.reset_stats()
    gw.cmdstats.reset()


peers.NOTICES["resetstat"] = _reset_here
