"""RDB interoperability with a real redis-server 7.0, at the codec level: Redis' dump.rdb and
DUMP payloads read by our reader, and files from our writer loaded by Redis and accepted by
redis-check-rdb, on a dataset with every type, both encodings, binary data, dbs and TTLs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from persistence import rdb
from persistence.rdb_reader import FileReader, Record, load_payload
from tests import rdb_data
from tests.servers import RedisServer


def _as_contents(records: list[Record], now_ms: int) -> dict[tuple[int, bytes], Any]:
    out: dict[tuple[int, bytes], Any] = {}
    for r in records:
        if r.kind == rdb.LIST:
            value: Any = list(r.data)
        elif r.kind == rdb.SET:
            value = sorted(r.data)
        elif r.kind == rdb.HASH:
            value = sorted(r.data.items())
        elif r.kind == rdb.ZSET:
            value = sorted(r.data, key=lambda item: (item[1], item[0]))
        else:
            value = r.data
        out[(r.db, r.key)] = (r.kind.decode(), value, r.expire_ms is not None and r.expire_ms > now_ms)
    return out


def _redis_file(tmp: Path) -> tuple[bytes, dict[tuple[int, bytes], Any], dict[bytes, bytes]]:
    server = RedisServer(tmp).start()
    try:
        client = server.client()
        rdb_data.fill(client)
        expected = rdb_data.contents(client)
        client.execute_command("SELECT", 3)
        dumps = {key: client.dump(key) for key in client.keys(b"*")}
        client.save()
        return (tmp / "dump.rdb").read_bytes(), expected, dumps
    finally:
        server.stop()


def test_reader_loads_redis_dump_rdb_and_dump_payloads(tmp_path: Path) -> None:
    data, expected, dumps = _redis_file(tmp_path)
    assert len(expected) == 66 and len(dumps) == 22
    reader = FileReader(data)
    records = list(reader.records())
    now = records and int(reader.aux[b"ctime"]) * 1000
    assert _as_contents(records, now) == expected
    by_key = {r.key: (r.kind, r.data) for r in records if r.db == 3}
    for key, payload in dumps.items():
        assert rdb.payload_ok(payload)
        assert load_payload(payload) == by_key[key], key


def test_redis_loads_our_file_and_redis_check_rdb_accepts_it(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    data, expected, _ = _redis_file(source)
    records = list(FileReader(data).records())
    dbs: dict[int, list[tuple[bytes, bytes, Any, int | None]]] = {}
    for r in records:
        dbs.setdefault(r.db, []).append((r.key, r.kind, r.data, r.expire_ms))
    ours = rdb.encode_file([(b"redis-ver", b"7.0.15"), (b"redis-bits", b"64")], sorted(dbs.items()))
    target = tmp_path / "target"
    target.mkdir()
    (target / "dump.rdb").write_bytes(ours)
    check = subprocess.run(["redis-check-rdb", str(target / "dump.rdb")], capture_output=True, text=True)
    assert "RDB looks OK" in check.stdout, check.stdout + check.stderr
    server = RedisServer(target).start()
    try:
        assert rdb_data.contents(server.client()) == expected
    finally:
        server.stop()
