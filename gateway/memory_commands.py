"""MEMORY STATS / DOCTOR / MALLOC-STATS / PURGE (MEMORY USAGE runs in the key's shard).

The numbers come from the shards' allocator accounting (shard/eviction.py), added up, with the
gateways' client buffers as ``clients.normal``, as INFO memory reports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway import cross
from shard.reply import OK, Verbatim
from shard.table import GATEWAY, command

if TYPE_CHECKING:
    from gateway.connection import ClientConnection

G = GATEWAY


async def _parts(conn: ClientConnection) -> list[dict[bytes, Any]]:
    parts = await cross.all_shards(conn.gateway, conn, [b"__info"])
    return [p for p in parts if isinstance(p, dict)]


def _total(parts: list[dict[bytes, Any]], name: bytes) -> int:
    return sum(int(p.get(name, 0)) for p in parts)


@command("MEMORY STATS", 2, "", acl="@slow", route=G, parent="memory", since="4.0.0",
         summary="Show memory usage details")
def memory_stats(conn: ClientConnection, argv: list[bytes]) -> Any:
    async def stats() -> Any:
        parts = await _parts(conn)
        used, rss = _total(parts, b"used_memory"), _total(parts, b"used_memory_rss")
        peak, startup = _total(parts, b"used_memory_peak"), _total(parts, b"used_memory_startup")
        clients = sum(c.output_bytes() for c in conn.gateway.clients.values())
        keys = sum(db[1] for p in parts for db in p.get(b"keyspace", []))
        dataset = max(used - startup, 0)
        out: dict[bytes, Any] = {
            b"peak.allocated": peak, b"total.allocated": used, b"startup.allocated": startup,
            b"replication.backlog": 0, b"clients.slaves": 0, b"clients.normal": clients,
            b"cluster.links": 0, b"aof.buffer": 0, b"lua.caches": 0, b"functions.caches": 0,
            b"overhead.total": startup + clients, b"keys.count": keys,
            b"keys.bytes-per-key": dataset // keys if keys else 0, b"dataset.bytes": dataset,
            b"dataset.percentage": f"{100 * dataset / used if used else 0:.6f}".encode(),
            b"peak.percentage": f"{100 * used / peak if peak else 0:.6f}".encode(),
            b"allocator.allocated": used, b"allocator.active": rss, b"allocator.resident": rss,
            b"allocator-fragmentation.ratio": f"{rss / used if used else 1:.3f}".encode(),
            b"allocator-fragmentation.bytes": rss - used, b"allocator.rss-ratio": b"1.000",
            b"allocator.rss-bytes": 0, b"rss-overhead.ratio": b"1.000", b"rss-overhead.bytes": 0,
            b"fragmentation": f"{rss / used if used else 1:.3f}".encode(),
            b"fragmentation.bytes": rss - used,
        }
        return out

    return stats()


@command("MEMORY DOCTOR", 2, "", acl="@slow", route=G, parent="memory", since="4.0.0",
         summary="Outputs memory problems report")
def memory_doctor(conn: ClientConnection, argv: list[bytes]) -> Any:
    async def doctor() -> Any:
        parts = await _parts(conn)
        used, rss = _total(parts, b"used_memory"), _total(parts, b"used_memory_rss")
        if used < 5 << 20 or not used:
            text = ("Hi Sam, this instance is empty or is using very little memory, my issues "
                    "detector can't be used in these conditions. Please, leave for your mission "
                    "on Earth and fill it with some data. The new Sam and I will be back to our "
                    "programming as soon as I finished rebooting.")
        elif rss / used > 1.4:
            text = (f"Sam, I detected a few issues in this Atoll instance memory implants:\n\n"
                    f" * High total RSS: the processes hold {rss / used:.2f} times the memory "
                    "the data needs (fragmentation, or memory freed but kept by the allocator)."
                    "\n\nI'm here to keep you safe, Sam. I want to help you.\n")
        else:
            text = "Hi Sam, I can't find any memory issue in your instance. I can only " \
                   "account for what occurs on this base."
        return Verbatim(text.encode())

    return doctor()


@command("MEMORY MALLOC-STATS", 2, "", acl="@slow", route=G, parent="memory", since="4.0.0",
         summary="Show allocator internal stats")
def memory_malloc_stats(conn: ClientConnection, argv: list[bytes]) -> Any:
    return Verbatim(b"Stats not supported for the current allocator")


@command("MEMORY PURGE", 2, "", acl="@slow", route=G, parent="memory", since="4.0.0",
         summary="Ask the allocator to release memory")
def memory_purge(conn: ClientConnection, argv: list[bytes]) -> Any:
    return OK
