"""SAVE, BGSAVE, LASTSAVE and save points: the gateway coordinates a snapshot over every shard.

All shards start their part in the same tick (one message each), walk their keys between
batches (``persistence/snapshot.py``), and when every part is written a worker thread splices
them into ``dir/dbfilename`` (``persistence/assemble.py``).  SAVE asks the shards to finish
their walk at once and answers when the file is in place.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from typing import TYPE_CHECKING, Any

from gateway import cross
from gateway.intents import holding
from persistence.assemble import assemble
from shard.errors import RedisError
from shard.reply import OK, Simple
from shard.table import GATEWAY, command

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.server import Gateway

log = logging.getLogger("atoll.gateway")
POLL_S = 0.01
RETRY_AFTER_ERROR_S = 5  # as Redis' CONFIG_BGSAVE_RETRY_DELAY
BGSAVE_IN_PROGRESS = "ERR Background save already in progress"


class Snapshots:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.running: asyncio.Task[bool] | None = None
        self.scheduled = False
        self.last_try = 0.0
        self.last_ok = True

    async def _all(self, *argv: bytes) -> list[Any]:
        return await cross.all_shards(self.gw, cross.ADMIN, list(argv))

    async def info(self) -> list[dict[bytes, Any]]:
        return await self._all(b"__persistence_info")

    def start(self, background: bool) -> asyncio.Task[bool]:
        """Run one snapshot; the task's result says whether the file was written."""
        if self.running is not None and not self.running.done():
            raise RedisError(BGSAVE_IN_PROGRESS)
        self.running = self.gw.loop.create_task(self._run(background))
        return self.running

    async def _run(self, background: bool) -> bool:
        config = self.gw.config
        directory = os.path.abspath(str(config.value("dir")))
        target = os.path.join(directory, str(config.value("dbfilename")))
        token = secrets.token_hex(8).encode()
        self.last_try = time.time()
        started = time.monotonic()
        parts = [os.path.join(directory, f"temp-{token.decode()}-{i}.part").encode()
                 for i in range(len(self.gw.links.links))]
        links = self.gw.links
        admin = cross.ADMIN
        from shard import wire

        meta = wire.meta(0, False, structured=True)
        if len(links.links) > 1:
            # The cut happens under intents on every shard: no cross-shard command or
            # transaction is half applied in the image.
            async with holding(self.gw, whole=True) as tx:
                by_shard = await tx.each({i: [b"__snapshot_begin", token, parts[i]]
                                          for i in range(len(links.links))}, 0)
            begun = [by_shard[i] for i in range(len(links.links))]
        else:
            begun = [await links.request(links.links[0], meta,
                                         [b"__snapshot_begin", token, parts[0]])]
        errors = [b for b in begun if isinstance(b, RedisError)]
        if errors:
            await self._all(b"__snapshot_end", token, b"0", b"0")
            raise errors[0]
        ok = False
        try:
            states = await self._wait(token, background)
            failed = [s for s in states if s[b"state"] != b"done"]
            if failed:
                raise OSError(failed[0][b"error"].decode() or "a shard could not write its part")
            layout = [(s[b"path"].decode(), s[b"sections"]) for s in states]
            size = await self.gw.loop.run_in_executor(None, assemble, target, layout)
            ok = True
            log.info("DB saved on disk (%d bytes, %.3f seconds)", size, time.monotonic() - started)
        except Exception as exc:  # the outcome is reported through LASTSAVE / INFO, as in Redis
            log.warning("Failed saving the DB: %s", exc)
        finally:
            self.last_ok = ok
            await cross.all_shards(self.gw, admin, [b"__snapshot_end", token, b"1" if ok else b"0",
                                                    b"%d" % time.time()])
        return ok

    async def _wait(self, token: bytes, background: bool) -> list[dict[bytes, Any]]:
        if not background:
            return await self._all(b"__snapshot_finish", token)
        while True:
            states = await self._all(b"__snapshot_poll", token)
            if all(isinstance(s, dict) and s[b"state"] != b"running" for s in states):
                return states
            await asyncio.sleep(POLL_S)

    async def save_points_loop(self) -> None:
        """Redis' serverCron check: start a BGSAVE when a ``save <seconds> <changes>`` point is
        reached (and not within 5 s of a failed one)."""
        while True:
            await asyncio.sleep(1)
            try:
                await self._check_points()
            except Exception:  # a shard restarting: try again next second
                log.debug("save point check failed", exc_info=True)

    async def _check_points(self) -> None:
        busy = self.running is not None and not self.running.done()
        if self.scheduled and not busy:
            self.scheduled = False
            self.start(background=True)
            return
        points = self.gw.config.value("save") or []
        if not points or busy:
            return
        infos = await self.info()
        dirty = sum(int(i[b"dirty"]) for i in infos)
        last_save = max(int(i[b"last_save"]) for i in infos)
        now = time.time()
        if not self.last_ok and now - self.last_try < RETRY_AFTER_ERROR_S:
            return
        for seconds, changes in points:
            if dirty >= changes and now - last_save > seconds:
                log.info("%d changes in %d seconds. Saving...", changes, seconds)
                self.start(background=True)
                return


def snapshots_of(gw: Gateway) -> Snapshots:
    found: Snapshots | None = getattr(gw, "snapshots", None)
    if found is None:
        found = Snapshots(gw)
        gw.snapshots = found  # type: ignore[attr-defined]
    return found


@command("SAVE", 1, "admin noscript no_async_loading no_multi", acl="@admin @slow @dangerous",
         route=GATEWAY, group="server", summary="Synchronously save the dataset to disk")
def save(conn: ClientConnection, argv: list[bytes]) -> Any:
    task = snapshots_of(conn.gateway).start(background=False)

    async def wait() -> Any:
        if not await task:
            raise RedisError("ERR")
        return OK

    return wait()


@command("BGSAVE [SCHEDULE]", -1, "admin noscript no_async_loading", acl="@admin @slow @dangerous",
         route=GATEWAY, group="server", summary="Asynchronously save the dataset to disk")
def bgsave(conn: ClientConnection, argv: list[bytes]) -> Any:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != b"schedule"):
        raise RedisError("ERR syntax error")
    snapshots_of(conn.gateway).start(background=True)
    return Simple(b"Background saving started")


@command("LASTSAVE", 1, "loading stale fast", acl="@admin @fast @dangerous", route=GATEWAY,
         group="server", summary="Get the UNIX time stamp of the last successful save to disk")
def lastsave(conn: ClientConnection, argv: list[bytes]) -> Any:
    async def ask() -> Any:
        infos = await snapshots_of(conn.gateway).info()
        return max(int(i[b"last_save"]) for i in infos)

    return ask()


def shutdown_with_save(conn: ClientConnection, flags: set[bytes]) -> Any:
    """SHUTDOWN: save first with SAVE, or without NOSAVE when save points are set; a failed
    save cancels the shutdown unless FORCE."""
    gw = conn.gateway
    wanted = b"SAVE" in flags or (b"NOSAVE" not in flags and bool(gw.config.value("save")))

    def stop() -> Any:
        gw.request_shutdown(False)
        conn.close_after_reply = True
        return cross.NO_REPLY

    if not wanted:
        return stop()

    async def save_then_stop() -> Any:
        try:
            ok = await snapshots_of(conn.gateway).start(background=False)
        except RedisError:
            ok = False
        if not ok and b"FORCE" not in flags:
            raise RedisError("ERR Errors trying to SHUTDOWN. Check logs.")
        return stop()

    return save_then_stop()


def save_for_supervisor(gw: Gateway) -> None:
    """SAVE for a supervisor stopping on SIGTERM; answers ("saved", ok) on its pipe."""
    async def run() -> None:
        ok = False
        try:
            running = snapshots_of(gw).running
            if running is not None and not running.done():
                await running  # a BGSAVE in progress: Redis kills it; we let it finish
            ok = await snapshots_of(gw).start(background=False)
        except Exception:
            log.exception("final snapshot failed")
        gw.supervisor.send(("saved", ok))

    gw.loop.create_task(run())


def start_save_points(gw: Gateway) -> None:
    gw.loop.create_task(snapshots_of(gw).save_points_loop())


@command("BGREWRITEAOF", 1, "admin noscript no_async_loading", acl="@admin @slow @dangerous",
         route=GATEWAY, group="server", summary="Asynchronously rewrite the append-only file")
def bgrewriteaof(conn: ClientConnection, argv: list[bytes]) -> Any:
    """BGREWRITEAOF: every shard compacts its log from its data, without stopping."""
    snapshots = snapshots_of(conn.gateway)

    async def run() -> Any:
        infos = await snapshots.info()
        if any(int(i.get(b"aof_rewrite_in_progress", 0)) for i in infos):
            raise RedisError("ERR Background append only file rewriting already in progress")
        started = await snapshots._all(b"__aof_rewrite")
        if all(s == 1 for s in started):
            return Simple(b"Background append only file rewriting started")
        return Simple(b"Background append only file rewriting scheduled")

    return run()
