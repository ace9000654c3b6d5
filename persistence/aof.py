"""A shard's append-only log: its write effects in RESP, one file per shard.

Files live in ``dir/appenddirname`` and are named ``<stem>-shard-<i>-of-<n>.aof`` (the stem is
``appendfilename`` without ``.aof``): the shard count in the name tells a start-up with another
count which files to read (``persistence/aof_load.py``).  A file is an optional RDB preamble
(the base written by a rewrite, ``aof-use-rdb-preamble``) followed by commands, as Redis 7's
single-file format.

Group commit: the shard appends everything its batches recorded with one ``write`` before
their replies leave; with ``appendfsync always`` it also fsyncs then, with ``everysec`` a
background thread fsyncs once a second, with ``no`` the OS decides.  Because the write comes
before the reply in every mode, a process crash (SIGKILL) loses no acknowledged write; only an
OS crash or power loss can lose the last ~1-2 s under ``everysec``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Any

from persistence.effects import Effect, encode_effects

log = logging.getLogger("atoll.shard")

EVERYSEC_S = 1.0


def aof_dir(config: dict[str, Any]) -> str:
    return os.path.join(str(config.get("dir") or "."),
                        str(config.get("appenddirname") or "appendonlydir"))


def _stem(config: dict[str, Any]) -> str:
    name = str(config.get("appendfilename") or "appendonly.aof")
    return name[:-4] if name.endswith(".aof") else name


def aof_path(config: dict[str, Any], index: int, shards: int) -> str:
    return os.path.join(aof_dir(config), f"{_stem(config)}-shard-{index}-of-{shards}.aof")


def existing_logs(config: dict[str, Any]) -> dict[int, dict[int, str]]:
    """The log files on disk: shard count -> shard index -> path."""
    directory = aof_dir(config)
    pattern = re.compile(re.escape(_stem(config)) + r"-shard-(\d+)-of-(\d+)\.aof")
    found: dict[int, dict[int, str]] = {}
    try:
        names = os.listdir(directory)
    except OSError:
        return found
    for name in names:
        match = pattern.fullmatch(name)
        if match:
            index, count = int(match[1]), int(match[2])
            found.setdefault(count, {})[index] = os.path.join(directory, name)
    return found


def fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AppendOnlyFile:
    """The open log of one shard and its fsync policy."""

    def __init__(self, path: str, policy: str) -> None:
        self.path = path
        self.policy = policy
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.size = os.fstat(self.fd).st_size
        self.base_size = self.size
        self.db = -1  # nothing selected yet in this file: the first effect says SELECT
        self.lock = threading.Lock()  # the fsync thread against a file switch
        self.unsynced = False
        self.last_fsync = time.monotonic()
        self.write_ok = True
        self.delayed_fsync = 0
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self._start_thread()

    def _start_thread(self) -> None:
        if self.policy == "everysec" and self.thread is None:
            self.stopping.clear()
            self.thread = threading.Thread(target=self._fsync_loop, name="aof-fsync", daemon=True)
            self.thread.start()

    def set_policy(self, policy: str) -> None:
        self.policy = policy
        if policy == "everysec":
            self._start_thread()
        elif self.thread is not None:
            self.stopping.set()
            self.thread.join()
            self.thread = None

    def append(self, effects: list[Effect]) -> None:
        """Write the effects with one write (fsync per ``always``); raises OSError."""
        data, self.db = encode_effects(effects, self.db)
        self.write(data)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
        except OSError:
            self.write_ok = False
            raise
        self.write_ok = True
        self.size += len(data)
        self.unsynced = True
        if self.policy == "always":
            self.fsync()

    def fsync(self) -> None:
        with self.lock:
            self.unsynced = False
            os.fdatasync(self.fd)
            self.last_fsync = time.monotonic()

    def _fsync_loop(self) -> None:
        while not self.stopping.wait(EVERYSEC_S):
            if self.unsynced:
                try:
                    self.fsync()
                except OSError as exc:
                    log.warning("Asynchronous AOF fsync failed: %s", exc)

    def switch_to(self, path: str) -> None:
        """Continue in a new file that replaced the old one (after a rewrite)."""
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        with self.lock:
            old, self.fd = self.fd, fd
            self.path = path
            self.size = self.base_size = os.fstat(fd).st_size
            self.db = -1
        os.close(old)

    def close(self) -> None:
        """Stop the fsync thread, fsync what is left and close (a clean stop)."""
        if self.thread is not None:
            self.stopping.set()
            self.thread.join()
            self.thread = None
        try:
            os.fdatasync(self.fd)
        except OSError as exc:
            log.warning("AOF fsync at close failed: %s", exc)
        os.close(self.fd)
