"""Internal commands through which a gateway runs a snapshot on every shard (SAVE, BGSAVE,
save points, SHUTDOWN), and the shard's persistence state that INFO and LASTSAVE report."""

from __future__ import annotations

import os
import time
from typing import Any

from persistence.aof_rewrite import REWRITE_TOKEN, library_preamble
from persistence.snapshot import COMPLETE_FIRST, SnapshotJob
from shard.context import Ctx
from shard.errors import RedisError
from shard.reply import OK
from shard.table import INTERNAL, CommandSpec, command

BGSAVE_IN_PROGRESS = "ERR Background save already in progress"


class PersistenceState:
    """What a shard remembers about snapshots between jobs."""

    def __init__(self) -> None:
        self.job: SnapshotJob | None = None
        self.last_save = int(time.time())
        self.last_status = b"ok"
        self.last_duration = -1
        self.saves = 0
        self.loaded = 0  # keys loaded at start-up, and expired ones skipped
        self.load_expired = 0
        self.aof: Any = None  # the shard's AofState (persistence/aof_rewrite.py)

    def info(self, ks: Any) -> dict[bytes, Any]:
        """Counters for INFO persistence, LASTSAVE and save points."""
        job = self.job
        if job is not None and job.token == REWRITE_TOKEN:
            job = None  # an AOF rewrite's walk is not a BGSAVE
        return {
            b"dirty": ks.dirty,
            b"last_save": self.last_save,
            b"last_status": self.last_status,
            b"in_progress": int(job is not None),
            b"last_duration": self.last_duration,
            b"current_duration": int(time.time() - job.started) if job is not None else -1,
            b"saves": self.saves,
            b"loaded": self.loaded,
            b"load_expired": self.load_expired,
            **(self.aof.info() if self.aof is not None else {}),
        }

    def before_write(self, ctx: Ctx, spec: CommandSpec, argv: list[bytes]) -> None:
        """Called by the executor before a write command runs while a job walks."""
        job = self.job
        if job is None or not job.running:
            return
        if spec.name in COMPLETE_FIRST:
            job.complete()
            return
        positions = spec.key_positions(argv)
        if positions:
            job.before_write(ctx.db, [argv[p] for p in positions])
        else:
            job.complete()


def state_of(ctx: Ctx) -> PersistenceState:
    state: PersistenceState = ctx.shard.persistence
    return state


@command("__SNAPSHOT_BEGIN token path", 3, "admin", route=INTERNAL)
def snapshot_begin(ctx: Ctx, args: list[bytes]) -> Any:
    """Start this shard's part of a snapshot, writing it to ``path``."""
    state = state_of(ctx)
    if state.job is not None:
        if state.job.token == args[0]:
            return OK
        raise RedisError(BGSAVE_IN_PROGRESS)
    # Every shard holds every library: shard 0 alone saves them, once in the assembled file.
    preamble = library_preamble(ctx.shard) if ctx.shard.index == 0 else b""
    state.job = SnapshotJob(args[0], os.fsdecode(args[1]), ctx.ks.dbs, ctx.ks.dirty, preamble)
    return OK


@command("__SNAPSHOT_FINISH token", 2, "admin", route=INTERNAL)
def snapshot_finish(ctx: Ctx, args: list[bytes]) -> Any:
    """Walk the rest at once (SAVE) and answer the job's state."""
    job = _job(ctx, args[0])
    job.complete()
    return job.state()


@command("__SNAPSHOT_POLL token", 2, "admin", route=INTERNAL)
def snapshot_poll(ctx: Ctx, args: list[bytes]) -> Any:
    return _job(ctx, args[0]).state()


@command("__SNAPSHOT_END token ok unixtime", 4, "admin", route=INTERNAL)
def snapshot_end(ctx: Ctx, args: list[bytes]) -> Any:
    """The coordinator is done with the parts: record the outcome and remove the part file."""
    state = state_of(ctx)
    job = state.job
    if job is None or job.token != args[0]:
        return 0
    job.discard()
    state.job = None
    ok = args[1] == b"1"
    state.last_status = b"ok" if ok else b"err"
    state.last_duration = int(time.time() - job.started)
    if ok:
        state.saves += 1
        state.last_save = int(args[2])
        ctx.ks.dirty = max(ctx.ks.dirty - job.dirty_at_start, 0)
    return 1


@command("__AOF_REWRITE", 1, "admin", route=INTERNAL)
def aof_rewrite(ctx: Ctx, args: list[bytes]) -> Any:
    """BGREWRITEAOF on this shard: 1 if started (or running), 0 if scheduled after a save."""
    return int(ctx.shard.aof.start_rewrite())


@command("__PERSISTENCE_INFO", 1, "admin", route=INTERNAL)
def persistence_info(ctx: Ctx, args: list[bytes]) -> Any:
    """Counters for INFO persistence, LASTSAVE and save points."""
    return state_of(ctx).info(ctx.ks)


def _job(ctx: Ctx, token: bytes) -> SnapshotJob:
    job = state_of(ctx).job
    if job is None or job.token != token:
        raise RedisError("ERR no such snapshot")
    return job
