"""Splices the shards' part files into one RDB file: header, each database's sections from
every shard under one SELECTDB/RESIZEDB, EOF and the CRC-64 of it all.  Written to a temp
file, fsynced and renamed over the old one, so a crash never leaves a half-written dump."""

from __future__ import annotations

import os
import time
from typing import Any

from persistence import rdb
from persistence.crc64 import crc64

COPY_CHUNK = 1 << 20


def aux_fields(used_memory: int = 0) -> list[tuple[bytes, bytes]]:
    return [(b"redis-ver", b"7.0.15"), (b"redis-bits", b"64"), (b"ctime", b"%d" % time.time()),
            (b"used-mem", b"%d" % used_memory), (b"aof-base", b"0")]


def assemble(target: str, parts: list[tuple[str, list[list[int]]]]) -> int:
    """Write ``target`` from (part path, [[db, offset, length, keys, expires], ...]) per shard;
    answer the file's size."""
    directory = os.path.dirname(target) or "."
    temp = os.path.join(directory, f"temp-{os.getpid()}.rdb")
    by_db: dict[int, list[tuple[str, int, int]]] = {}
    counts: dict[int, list[int]] = {}
    for path, sections in parts:
        for db, offset, size, keys, expires in sections:
            by_db.setdefault(db, []).append((path, offset, size))
            total = counts.setdefault(db, [0, 0])
            total[0] += keys
            total[1] += expires
    files: dict[str, Any] = {}
    try:
        with open(temp, "wb") as out:
            head = rdb.header(aux_fields())
            crc = crc64(head, 0)
            out.write(head)
            for db in sorted(by_db):
                if db >= 0:  # -1: the function libraries, which precede every database
                    select = rdb.select_db(db, *counts[db])
                    crc = crc64(select, crc)
                    out.write(select)
                for path, offset, size in by_db[db]:
                    source = files.get(path) or files.setdefault(path, open(path, "rb"))  # noqa: SIM115
                    source.seek(offset)
                    while size:
                        chunk = source.read(min(size, COPY_CHUNK))
                        if not chunk:
                            raise OSError(f"part file {path} is shorter than announced")
                        crc = crc64(chunk, crc)
                        out.write(chunk)
                        size -= len(chunk)
            out.write(rdb.footer(crc))
            out.flush()
            os.fsync(out.fileno())
            written = out.tell()
        os.replace(temp, target)
        _fsync_dir(directory)
        return written
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    finally:
        for source in files.values():
            source.close()


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
