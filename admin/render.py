"""Tables for atoll-admin: rich on a terminal, aligned plain text otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

STATUS_COLUMNS = ["name", "role", "pid", "uptime", "restarts", "rss", "health"]
SHARD_COLUMNS = ["shard", "slots", "keys", "expires", "used_memory", "ops/s", "p50_us", "p99_us",
                 "blocked", "log_size", "last_save"]

PUBSUB_COLUMNS = ["name", "channels", "patterns", "shard_channels", "gateways", "messages",
                  "msg/s"]


def human_bytes(size: int) -> str:
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}{unit}"
    return f"{size}B"


def human_seconds(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60}s"
    return f"{seconds}s"


def _per_db(counts: dict[Any, int]) -> str:
    if not counts:
        return "0"
    total = sum(counts.values())
    if len(counts) == 1 and 0 in counts:
        return str(total)
    return f"{total} (" + " ".join(f"db{db}={n}" for db, n in sorted(counts.items())) + ")"


def status_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [[r["name"], r["role"], str(r["pid"]), human_seconds(r["uptime"]), str(r["restarts"]),
             human_bytes(r["rss"]), r["health"]] for r in rows]


def shard_rows(shards: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for s in shards:
        if "error" in s:
            out.append([str(s["shard"]), "?", s["error"], *([""] * 8)])
            continue
        last = s.get("last_save") or 0
        out.append([
            str(s["shard"]), str(s["slots"]), _per_db(s["keys"]), _per_db(s["expires"]),
            human_bytes(s["used_memory"]), f"{s['ops_per_sec']:.0f}", f"{s['latency_p50_us']:.1f}",
            f"{s['latency_p99_us']:.1f}", str(s["blocked_clients"]),
            "off" if s["log_size"] is None else human_bytes(s["log_size"]),
            time.strftime("%H:%M:%S", time.localtime(last)) if last else "never",
        ])
    return out


def pubsub_rows(actors: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for a in actors:
        if "error" in a:
            out.append([a["name"], a["error"], *([""] * 5)])
            continue
        out.append([a["name"], str(a["channels"]), str(a["patterns"]), str(a["shard_channels"]),
                    str(len(a["gateways"])), str(a["messages"]), f"{a['messages_per_sec']:.0f}"])
    return out


def plain_table(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
              for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


# Columns a narrow terminal loses first (rather than squeezing every cell into "1…").
OPTIONAL = ["last_save", "log_size", "expires", "blocked", "shard_channels", "restarts"]
LEFT = {"name", "role", "health", "last_save", "keys", "expires", "log_size"}


def rich_table(title: str, columns: list[str], rows: list[list[str]],
               keep: list[int] | None = None) -> Table:
    keep = list(range(len(columns))) if keep is None else keep
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True)
    for i in keep:
        column = columns[i]
        table.add_column(column, justify="left" if column in LEFT else "right", no_wrap=True,
                         min_width=len(column))
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table


def fit_table(console: Console, title: str, columns: list[str], rows: list[list[str]]) -> Table:
    """The table at its natural width, without optional columns the terminal has no room for
    (the caption says which)."""
    keep = list(range(len(columns)))
    dropped: list[str] = []
    table = rich_table(title, columns, rows, keep)
    unbounded = console.options.update_width(10_000)  # the natural width, not the screen's
    for name in [c for c in OPTIONAL if c in columns]:
        if Measurement.get(console, unbounded, table).maximum <= console.width:
            break
        keep.remove(columns.index(name))
        dropped.append(name)
        table = rich_table(title, columns, rows, keep)
    if dropped:
        table.caption = f"(too narrow for: {', '.join(dropped)})"
        table.caption_justify = "left"
    return table


def show(title: str, columns: list[str], rows: list[list[str]]) -> None:
    if sys.stdout.isatty():
        console = Console()
        console.print(fit_table(console, title, columns, rows))
    else:
        print(plain_table(columns, rows))
