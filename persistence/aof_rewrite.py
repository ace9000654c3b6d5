"""A shard's log state: committing effects before replies, BGREWRITEAOF, auto-rewrite.

A rewrite compacts the log from the shard's current data without stopping it: the same
non-blocking walk as a snapshot (``persistence/snapshot.py``) writes the keys of time T to a
part file; a worker thread splices it into an RDB preamble (``persistence/assemble.py``);
the effects that arrived meanwhile, kept in memory, are appended to it; it is fsynced and
renamed over the log, and the shard continues in the new file.  Until the rename the old log
keeps receiving every effect, so a crash at any point loses nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

from persistence.aof import AppendOnlyFile, aof_dir, aof_path, existing_logs, fsync_dir
from persistence.assemble import assemble
from persistence.effects import Effect, Effects, encode_effects
from persistence.snapshot import SnapshotJob

log = logging.getLogger("atoll.shard")

REWRITE_TOKEN = b"aof-rewrite"


def library_preamble(executor: Any) -> bytes:
    from shard.functions import library_preamble as preamble

    return preamble(executor)


def _temp(config: dict[str, Any], index: int, what: str) -> str:
    return os.path.join(aof_dir(config), f"temp-{what}-shard-{index}.aof")


def write_base(executor: Any, path: str) -> None:
    """Write a log holding the shard's data now (start-up, before serving): walk, splice,
    rename."""
    ks = executor.ks
    part = _temp(executor.config, executor.index, "part")
    job = SnapshotJob(REWRITE_TOKEN, part, ks.dbs, ks.dirty, library_preamble(executor))
    try:
        job.complete()
        if job.error:
            raise OSError(job.error)
        assemble(path, [(part, job.sections)])
    finally:
        job.discard()


def remove_stale_logs(config: dict[str, Any], shards: int) -> None:
    """Once every shard of this count has its log, the logs of other counts are obsolete."""
    logs = existing_logs(config)
    if len(logs.get(shards, {})) < shards:
        return
    for count, files in logs.items():
        if count == shards:
            continue
        for path in files.values():
            try:
                os.unlink(path)
                log.info("Removed %s, written with %d shard(s)", path, count)
            except OSError:
                pass


class Rewrite:
    def __init__(self, job: SnapshotJob | None) -> None:
        self.job = job
        self.started = time.time()
        self.buffer: list[Effect] = []
        self.thread: threading.Thread | None = None
        self.error = ""


class AofState:
    """The log of one shard (``file`` is None with ``appendonly no``) and its rewrites."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.file: AppendOnlyFile | None = None
        self.rewrite: Rewrite | None = None
        self.scheduled = False
        self.rewrites = 0
        self.failures = 0
        self.last_status = b"ok"
        self.last_duration = -1
        self.feed: Any = None  # shard/replication.py EffectsFeed, once a replica attached

    def enable(self, file: AppendOnlyFile) -> None:
        self.file = file
        if self.executor.effects is None:
            self.executor.effects = Effects()

    # --- committing ------------------------------------------------------------------------

    def commit(self) -> None:
        """Append what the batches recorded; called before their replies leave."""
        effects = self.executor.effects
        if effects is None:
            return
        feed = self.feed
        if not effects.pending:
            if feed is not None and feed.unlocks:  # a transaction's part, due at its release
                feed.send([])
            return
        taken = effects.take()
        if feed is not None:
            feed.send(taken)
        if self.rewrite is not None:
            self.rewrite.buffer.extend(taken)
        file = self.file
        if file is None:
            return
        try:
            file.append(taken)
        except OSError as exc:
            # Redis exits too: acknowledging writes that are not in the log would break the
            # promise; the supervisor restarts the shard, which reloads its log.
            log.warning("Shard %d: cannot write to the append only file %s: %s; exiting",
                        self.executor.index, file.path, exc)
            sys.exit(1)

    # --- rewriting -------------------------------------------------------------------------

    def start_rewrite(self) -> bool:
        """BGREWRITEAOF: start now, or schedule after a snapshot in progress (False)."""
        if self.rewrite is not None:
            return True
        executor = self.executor
        if executor.persistence.job is not None:
            self.scheduled = True
            return False
        self.scheduled = False
        ks = executor.ks
        part = _temp(executor.config, executor.index, "part")
        os.makedirs(aof_dir(executor.config), exist_ok=True)
        job = SnapshotJob(REWRITE_TOKEN, part, ks.dbs, ks.dirty, library_preamble(executor))
        executor.persistence.job = job
        if executor.effects is None:
            executor.effects = Effects()
        self.rewrite = Rewrite(job)
        log.info("Shard %d: background append only file rewriting started", executor.index)
        return True

    def tick(self) -> None:
        """Between batches: move a rewrite on, start a scheduled or automatic one."""
        rewrite = self.rewrite
        if rewrite is None:
            if self.scheduled and self.executor.persistence.job is None:
                self.start_rewrite()
            return
        job = rewrite.job
        if job is not None and not job.running:
            self.executor.persistence.job = None
            rewrite.job = None
            if job.error:
                rewrite.error = job.error
                job.discard()
                self._finish(rewrite, None)
                return
            base = _temp(self.executor.config, self.executor.index, "base")
            rewrite.thread = threading.Thread(target=self._splice, args=(rewrite, job, base),
                                              name="aof-rewrite", daemon=True)
            rewrite.thread.start()
        elif rewrite.thread is not None and not rewrite.thread.is_alive():
            self._finish(rewrite, _temp(self.executor.config, self.executor.index, "base"))

    def _splice(self, rewrite: Rewrite, job: SnapshotJob, base: str) -> None:
        try:
            assemble(base, [(job.path, job.sections)])
        except Exception as exc:  # reported by _finish, the log stays as it was
            rewrite.error = str(exc) or type(exc).__name__
        finally:
            job.discard()

    def _finish(self, rewrite: Rewrite, base: str | None) -> None:
        executor = self.executor
        config = executor.config
        self.commit()  # effects recorded outside a batch belong to the new file as well
        self.rewrite = None
        self.last_duration = int(time.time() - rewrite.started)
        if base is not None and not rewrite.error:
            try:
                self._install(rewrite, base)
            except OSError as exc:
                rewrite.error = str(exc)
        if self.file is None and not self._feeding():
            executor.effects = None  # appendonly was switched off meanwhile
        if rewrite.error:
            self.failures += 1
            self.last_status = b"err"
            log.warning("Shard %d: background AOF rewrite failed: %s", executor.index,
                        rewrite.error)
            if base is not None:
                try:
                    os.unlink(base)
                except OSError:
                    pass
            return
        self.rewrites += 1
        self.failures = 0
        self.last_status = b"ok"
        remove_stale_logs(config, int(config.get("shards", 1) or 1))
        log.info("Shard %d: background AOF rewrite finished successfully", executor.index)

    def _install(self, rewrite: Rewrite, base: str) -> None:
        executor = self.executor
        config = executor.config
        data, _ = encode_effects(rewrite.buffer, -1)
        fd = os.open(base, os.O_WRONLY | os.O_APPEND)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if not config.get("appendonly"):
            os.unlink(base)  # appendonly was switched off meanwhile
            return
        path = aof_path(config, executor.index, int(config.get("shards", 1) or 1))
        os.replace(base, path)
        fsync_dir(aof_dir(config))
        if self.file is None:
            self.enable(AppendOnlyFile(path, str(config.get("appendfsync", "everysec"))))
        else:
            self.file.switch_to(path)

    def auto_rewrite(self) -> None:
        """Redis' rule: rewrite when the log outgrew its base by auto-aof-rewrite-percentage
        and is larger than auto-aof-rewrite-min-size."""
        file = self.file
        config = self.executor.config
        percentage = int(config.get("auto-aof-rewrite-percentage", 100) or 0)
        if file is None or self.rewrite is not None or not percentage:
            return
        if file.size < int(config.get("auto-aof-rewrite-min-size", 64 << 20) or 0):
            return
        base = file.base_size or 1
        if (file.size - base) * 100 // base >= percentage:
            log.info("Shard %d: starting automatic rewriting of AOF on %d%% growth",
                     self.executor.index, (file.size - base) * 100 // base)
            self.start_rewrite()

    # --- configuration and INFO ------------------------------------------------------------

    def configure(self) -> None:
        """Follow CONFIG SET appendonly / appendfsync."""
        config = self.executor.config
        if config.get("appendonly"):
            if self.file is None and self.rewrite is None:
                self.start_rewrite()  # the log starts with the shard's data, as in Redis
            elif self.file is not None:
                self.file.set_policy(str(config.get("appendfsync", "everysec")))
        elif self.file is not None:
            self.commit()
            self.file.close()
            self.file = None
            if self.rewrite is None and not self._feeding():
                self.executor.effects = None

    def _feeding(self) -> bool:
        return self.feed is not None and bool(self.feed.active)

    def close(self) -> None:
        self.commit()
        if self.file is not None:
            self.file.close()
            self.file = None

    def info(self) -> dict[bytes, Any]:
        file = self.file
        rewrite = self.rewrite
        return {
            b"aof_enabled": int(file is not None),
            b"aof_rewrite_in_progress": int(rewrite is not None),
            b"aof_rewrite_scheduled": int(self.scheduled),
            b"aof_last_rewrite_time_sec": self.last_duration,
            b"aof_current_rewrite_time_sec":
                int(time.time() - rewrite.started) if rewrite is not None else -1,
            b"aof_last_bgrewrite_status": self.last_status,
            b"aof_rewrites": self.rewrites,
            b"aof_rewrites_consecutive_failures": self.failures,
            b"aof_last_write_status": b"ok" if file is None or file.write_ok else b"err",
            b"aof_current_size": file.size if file is not None else 0,
            b"aof_base_size": file.base_size if file is not None else 0,
            b"aof_buffer_length": 0,
            b"aof_delayed_fsync": file.delayed_fsync if file is not None else 0,
        }
