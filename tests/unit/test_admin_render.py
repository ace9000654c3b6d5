"""atoll-admin's tables in a terminal: a narrow screen loses optional columns, never a header."""

from __future__ import annotations

from rich.console import Console

from admin import render


def shard_stats(index: int) -> dict[str, object]:
    return {"shard": index, "slots": 8192, "keys": {0: 10002, 1: 2}, "expires": {1: 1},
            "used_memory": 15_000_000, "ops_per_sec": 12345.0, "latency_p50_us": 11.5,
            "latency_p99_us": 120.25, "blocked_clients": 3, "log_size": 314_000,
            "last_save": 1_700_000_000}


def draw(width: int) -> list[str]:
    console = Console(width=width, record=True, force_terminal=True, color_system=None)
    rows = render.shard_rows([shard_stats(0), shard_stats(1)])
    console.print(render.fit_table(console, "Shards", render.SHARD_COLUMNS, rows))
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_a_wide_terminal_shows_every_column() -> None:
    lines = draw(160)
    assert lines[2].split() == render.SHARD_COLUMNS
    assert all(len(line) <= 160 for line in lines)
    assert "too narrow" not in "\n".join(lines)


def test_an_80_column_terminal_drops_columns_instead_of_squeezing_them() -> None:
    lines = draw(80)
    header = lines[2].split()
    assert header == ["shard", "slots", "keys", "used_memory", "ops/s", "p50_us", "p99_us"]
    assert all(len(line) <= 80 for line in lines)
    values = lines[4].split()
    assert values[:3] == ["0", "8192", "10004"] and values[-3:] == ["12345", "11.5", "120.2"]
    assert "…" not in "\n".join(lines)
    assert lines[-1] == "(too narrow for: last_save, log_size, expires, blocked)"
