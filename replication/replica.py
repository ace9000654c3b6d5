"""The replica side of replication: REPLICAOF host port.

A task of the gateway connects to the master, speaks the handshake (AUTH with
``masterauth``/``masteruser``, PING, REPLCONF listening-port and capa, PSYNC), loads a full
sync's RDB into the shards (``__REPL_LOAD``: each shard keeps its slots' keys) and applies the
stream through the normal command path as the *master client*: a ClientConnection with no
socket, which the read-only rule lets write.  The offset it acknowledges (REPLCONF ACK, every
second and on GETACK) counts only bytes whose commands the shards have answered, so after
``WAIT`` a read on the replica sees the write.  A broken link reconnects with
``PSYNC <replid> <offset+1>`` (partial when the master's backlog still has it).

Shards of a replica do not expire keys (``__REPL_REPLICA 1``): they wait for the master's DEL.
For chained replicas the gateway relays the bytes it applied, unchanged, into its own stream
(same replication id and offsets as its master), so sub-replicas can move between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from typing import TYPE_CHECKING, Any

from gateway import cross
from gateway.connection import ClientConnection
from persistence.effects import encode_command
from replication.master import master_of
from shard import errors, wire
from shard.table import CommandSpec

if TYPE_CHECKING:
    from gateway.server import Gateway

log = logging.getLogger("atoll.gateway")
RETRY_S = 1.0
ACK_PERIOD_S = 1.0
READ_SIZE = 1 << 16


class ReplicationError(Exception):
    pass


class MasterClient(ClientConnection):
    """The master's stream, applied as a client without a socket."""

    def __init__(self, gateway: Gateway, state: ReplicaState) -> None:
        super().__init__(gateway)
        # One well-known id: the replica's shards recognise the master's entries by it
        # (only they may see keys logically expired but not yet deleted by the master),
        # also inside the plans and transactions the gateway coordinates for it.
        self.id = wire.MASTER_ORIGIN
        self.origin = wire.MASTER_ORIGIN << wire.ORIGIN_SHIFT
        self.state = state
        self.received = 0  # bytes of whole commands handed to the router (stream offset)
        self.applied = 0  # of those, the bytes whose commands have all been answered
        self.ack_wanted = False
        self.detached = False  # its link broke: it finishes what it received, then leaves
        self.fast_path = True
        self.authenticated = True
        self.parser.authenticated = True
        self.addr = f"{state.host}:{state.port}"
        self.multi_bytes = -1  # bytes of a MULTI received without its EXEC yet, else -1

    @property
    def open_multi(self) -> int:
        """As Redis' reploff: an unfinished MULTI does not count as applied, so a link broken
        inside one resumes at its MULTI (the commands queued here are dropped)."""
        return self.multi_bytes if self.multi_bytes > 0 else 0

    def feed(self, data: bytes) -> None:
        """Apply stream bytes; relay them to our own replicas."""
        commands, error = self.parser.feed(data)
        if error is not None:
            raise ReplicationError(f"protocol error in the master's stream: {error}")
        self.received += len(data)
        for argv in commands:  # where an unfinished MULTI started (see open_multi)
            head = argv[0].lower() if 4 <= len(argv[0]) <= 7 else b""
            if head == b"multi":
                self.multi_bytes = 0
            if self.multi_bytes >= 0:
                self.multi_bytes += len(encode_command(argv))
            if head == b"exec" or head == b"discard":
                self.multi_bytes = -1
        if self.busy or self.held:  # behind a multi-step command or the RUN_AT_ONCE cap
            self.held.extend(commands)
        else:
            self.run_commands(commands)
        self.write_ready()

    @property
    def stream_offset(self) -> int:
        return self.received - self.parser.buffered

    def write_ready(self) -> None:
        _drop_ready(self)  # the master gets no replies
        if self.replies or self.busy:
            return
        if self.held:  # more than RUN_AT_ONCE commands arrived at once: the rest next tick
            self._schedule_resume()
            return
        self.applied = self.stream_offset - self.open_multi
        if self.detached:
            self.state.drained(self)
        elif self.ack_wanted:
            self.ack_wanted = False
            self.state.send_ack()


def _drop_ready(conn: ClientConnection) -> None:
    replies = conn.replies
    while replies and (type(replies[0]) is bytes or replies[0].value is not None):
        replies.popleft()


class ReplicaState:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.host = ""
        self.port = 0
        self.task: asyncio.Task[None] | None = None
        self.link_up = False
        self.sync_in_progress = False
        self.master: MasterClient | None = None
        # A broken link's client still running the whole commands it received: the next
        # PSYNC asks for the bytes after them, so they must run first (and in order).
        self.draining: MasterClient | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.replid = "?"
        self.offset = -1  # the stream offset at the start of ``master``'s bytes
        self.base = 0
        self.last_io = time.time()
        self.down_since = time.time()
        self.quiet = asyncio.Event()
        self.quiet.set()

    # --- state -----------------------------------------------------------------------------

    def connected(self) -> bool:
        return self.link_up

    def applied_offset(self) -> int:
        master = self.master or self.draining
        return self.base + (master.applied if master is not None else 0)

    def start(self, host: str, port: int) -> None:
        self.stop_task()
        first = not self.host
        self.host, self.port = host, port
        stream = master_of(self.gw)
        if first:
            # Keep our own history as the one to continue from (as Redis' cached master).
            self.replid, self.base = stream.replid, stream.offset
        stream.drop_replicas()
        stream.relaying = True
        stream.quiesce = self.quiesce
        stream.resume = self.resume
        stream.resync = self.resync
        self.refresh_guard()
        self.gw.loop.create_task(self._set_shards_replica(True))
        self.task = self.gw.loop.create_task(self._run())
        log.info("Connecting to MASTER %s:%d", host, port)

    def stop(self) -> None:
        """REPLICAOF NO ONE: keep the data, start a new history that continues this one."""
        self.stop_task()
        self.host, self.port = "", 0
        self.gw.router.set_write_guard(master_guard(self.gw))
        self.gw.loop.create_task(self._set_shards_replica(False))
        stream = master_of(self.gw)
        stream.relaying = False
        stream.rewind(self.applied_offset())
        stream.new_history()
        stream.drop_replicas()
        log.info("MASTER MODE enabled")

    def stop_task(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self._close_link()

    def _close_link(self) -> None:
        if self.link_up:
            self.down_since = time.time()
        self.link_up = False
        self.refresh_guard()
        if self.master is not None:
            # Whole commands received run anyway (see drained()); the bytes of a command cut
            # in half by the break are dropped from our stream.
            master, self.master = self.master, None
            master.detached = True
            self.draining = master
            master.write_ready()
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def _set_shards_replica(self, flag: bool) -> None:
        await cross.all_shards(self.gw, cross.ADMIN, [b"__repl_replica", b"1" if flag else b"0"])

    def guard(self, conn: ClientConnection, spec: CommandSpec) -> str | None:
        if conn is self.master or conn is self.draining:  # a broken link's client finishes
            return None
        if "write" in spec.flags and self.gw.config.value("replica-read-only"):
            return errors.READONLY_REPLICA
        if not self.link_up and "stale" not in spec.flags and not self.serve_stale():
            return errors.MASTERDOWN
        return None

    def serve_stale(self) -> bool:
        return bool(self.gw.config.value("replica-serve-stale-data"))

    def refresh_guard(self) -> None:
        """replica-serve-stale-data no: while the link is down every command is checked."""
        if self.host:
            self.gw.router.set_write_guard(self.guard, not self.link_up and not self.serve_stale())

    # --- the link ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while self.host:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (OSError, EOFError, ReplicationError, asyncio.IncompleteReadError) as exc:
                log.warning("Replication link with %s:%d: %s", self.host, self.port, exc)
            except Exception:
                log.exception("Replication link failed")
            self._close_link()
            await asyncio.sleep(RETRY_S)

    def drained(self, master: MasterClient) -> None:
        """``master`` (a broken link's client) has run everything it received."""
        if self.draining is not master:
            return
        self.draining = None
        self.base += master.stream_offset - master.open_multi
        master.closing = True
        master_of(self.gw).rewind(self.base)

    async def _session(self) -> None:
        while self.draining is not None:  # the old link's commands first
            await asyncio.sleep(0.001)
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.writer = writer
        config = self.gw.config
        password = config.value("masterauth")
        if password:
            user = config.value("masteruser")
            await _ask(reader, writer, [b"AUTH", *([user.encode()] if user else []),
                                        password.encode()])
        await _ask(reader, writer, [b"PING"], accept=(b"+", b"-NOAUTH", b"-NOPERM"))
        await _ask(reader, writer, [b"REPLCONF", b"listening-port", b"%d" % self.gw.port])
        await _ask(reader, writer, [b"REPLCONF", b"capa", b"psync2"])
        offset = self.applied_offset()
        writer.write(encode_command([b"PSYNC", self.replid.encode(),
                                     b"%d" % (offset + 1 if self.replid != "?" else -1)]))
        line = await _line(reader)
        if line.startswith(b"+FULLRESYNC"):
            _, replid, start = line.split()
            await self._full_sync(reader, replid.decode(), int(start))
        elif line.startswith(b"+CONTINUE"):
            fields = line.split()
            if len(fields) > 1 and fields[1].decode() != self.replid:
                stream = master_of(self.gw)
                stream.replid2, stream.second_offset = self.replid, offset + 1
                self.replid = stream.replid = fields[1].decode()
            log.info("Successful partial resynchronization with master.")
        else:
            raise ReplicationError(f"unexpected reply to PSYNC: {line[:100]!r}")
        await self._stream(reader, writer)

    async def _full_sync(self, reader: asyncio.StreamReader, replid: str, start: int) -> None:
        self.sync_in_progress = True
        try:
            header = await _line(reader)
            if not header.startswith(b"$") or header.startswith(b"$EOF:"):
                raise ReplicationError(f"unexpected bulk payload header {header[:60]!r}")
            size = int(header[1:])
            directory = os.path.abspath(str(self.gw.config.value("dir")))
            path = os.path.join(directory, f"temp-{secrets.token_hex(6)}.{os.getpid()}.rdb")
            try:
                with open(path, "wb") as out:
                    left = size
                    while left:
                        chunk = await reader.read(min(left, READ_SIZE))
                        if not chunk:
                            raise EOFError("the master closed the link during the RDB transfer")
                        out.write(chunk)
                        left -= len(chunk)
                log.info("MASTER <-> REPLICA sync: Loading DB in memory (%d bytes)", size)
                results = await cross.all_shards(self.gw, cross.ADMIN,
                                                 [b"__repl_load", os.fsencode(path)])
                if any(isinstance(r, Exception) for r in results):
                    raise ReplicationError(f"loading the master's RDB failed: {results}")
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            self.replid, self.base = replid, start
            stream = master_of(self.gw)
            stream.adopt(replid, start)
            log.info("MASTER <-> REPLICA sync: Finished with success")
        finally:
            self.sync_in_progress = False

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        master = self.master = MasterClient(self.gw, self)
        self.link_up = True
        self.refresh_guard()
        self.last_io = time.time()
        acker = self.gw.loop.create_task(self._ack_loop())
        stream = master_of(self.gw)
        try:
            while True:
                await self.quiet.wait()
                data = await reader.read(READ_SIZE)
                if not data:
                    raise EOFError("connection lost")
                self.last_io = time.time()
                master.feed(data)
                stream.relay(data)
        finally:
            acker.cancel()

    async def _ack_loop(self) -> None:
        while True:
            await asyncio.sleep(ACK_PERIOD_S)
            self.send_ack()

    def send_ack(self) -> None:
        if self.writer is not None and self.master is not None:
            self.writer.write(encode_command([b"REPLCONF", b"ACK",
                                              b"%d" % self.applied_offset()]))

    def resync(self) -> None:
        """A shard restarted: commands it failed with LOADING were not applied, and it forgot
        it is a replica's.  Start over with a full sync (which tells the shards again)."""
        log.warning("A shard restarted: full resynchronization with the master")
        self.replid = "?"
        if self.writer is not None:
            self.writer.close()

    def getack(self, conn: ClientConnection) -> None:
        """REPLCONF GETACK from the master: answer once what came before it is applied."""
        if conn is not self.master:
            return
        master = self.master
        master.ack_wanted = True

    async def quiesce(self) -> int:
        """Stop applying the stream until :meth:`resume`; answer the applied offset."""
        self.quiet.clear()
        master = self.master
        while master is not None and master.applied != master.stream_offset - master.open_multi:
            await asyncio.sleep(0.001)
        return self.applied_offset()

    def resume(self) -> None:
        self.quiet.set()

    # --- introspection -----------------------------------------------------------------------

    def role(self) -> list[Any]:
        state = b"connected" if self.link_up else (b"sync" if self.sync_in_progress
                                                   else b"connect")
        return [b"slave", self.host.encode(), self.port, state,
                self.applied_offset() if self.link_up else -1]

    def info_lines(self) -> list[tuple[str, Any]]:
        now = time.time()
        lines: list[tuple[str, Any]] = [
            ("role", "slave"), ("master_host", self.host), ("master_port", self.port),
            ("master_link_status", "up" if self.link_up else "down"),
            ("master_last_io_seconds_ago", int(now - self.last_io) if self.link_up else -1),
            ("master_sync_in_progress", int(self.sync_in_progress)),
            ("slave_read_repl_offset", self.applied_offset()),
            ("slave_repl_offset", self.applied_offset())]
        if not self.link_up:
            lines.append(("master_link_down_since_seconds", int(now - self.down_since)))
        lines += [("slave_priority", self.gw.config.value("replica-priority")),
                  ("slave_read_only", int(bool(self.gw.config.value("replica-read-only")))),
                  ("replica_announced", 1)]
        return lines


async def _line(reader: asyncio.StreamReader) -> bytes:
    """The next reply line, skipping the newlines a master sends while it prepares the RDB."""
    while True:
        line = await reader.readline()
        if not line:
            raise EOFError("connection lost")
        line = line.rstrip(b"\r\n")
        if line:
            return line


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, argv: list[bytes],
               accept: tuple[bytes, ...] = (b"+",)) -> bytes:
    writer.write(encode_command(argv))
    line = await _line(reader)
    if not line.startswith(accept):
        raise ReplicationError(f"{argv[0].decode()} {argv[1:2]!r}: {line.decode('latin-1')}")
    return line


def master_guard(gw: Gateway) -> Any:
    """min-replicas-to-write for a master: None when not configured."""
    if not int(gw.config.value("min-replicas-to-write")):
        return None

    def guard(conn: ClientConnection, spec: CommandSpec) -> str | None:
        config = gw.config
        wanted = int(config.value("min-replicas-to-write"))
        lag = int(config.value("min-replicas-max-lag"))
        if wanted and lag and master_of(gw).good_replicas(lag) < wanted:
            return errors.NOREPLICAS
        return None

    return guard


def replica_of(gw: Gateway) -> ReplicaState:
    found: ReplicaState | None = getattr(gw, "replica", None)
    if found is None:
        found = ReplicaState(gw)
        gw.replica = found  # type: ignore[attr-defined]
    return found
