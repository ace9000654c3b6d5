"""Handing a replica's connection from a gateway to the replication actor.

A replica (or ``redis-cli --rdb``/``--replica``) connects to the normal port and lands on any
gateway.  Its first ``REPLCONF``/``SYNC``/``PSYNC`` moves the socket to the actor: the gateway
waits until every earlier reply has left, stops reading, duplicates the file descriptor and
sends it with ``SCM_RIGHTS`` over a Unix socket in the private run directory (mode 0700),
together with the connection's state (id, user, name, db, protocol, the command being run and
every byte it received but did not run).  Then it drops its transport; the duplicate keeps
the socket open.  The actor adopts the socket as one of its own client connections and runs
the command: from then on the replica talks to the actor only, so a slow replica never costs a
gateway anything.

Wire format on the handoff socket, one connection per handoff: ``<u32 length><msgpack state>``
with the descriptor attached to the first bytes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

import msgpack

from persistence.effects import encode_command
from shard import wire
from shard.errors import RedisError
from shard.reply import Raw

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.server import Gateway

log = logging.getLogger("atoll.replication")
HANDOFF_FILE = "replication-handoff.sock"
FLUSH_TIMEOUT_S = 5.0
RECEIVE_TIMEOUT_S = 2.0
# While the actor restarts (about a second), a handoff is tried again this long.  An error
# reply would be wrong: a Redis replica takes an error to PSYNC for "no PSYNC here" and falls
# back to SYNC, which has no replication id or offset (WAIT could then never count it).
RETRY_FOR_S = 5.0
RETRY_EVERY_S = 0.1
HEADER = struct.Struct("!I")
UNAVAILABLE = "ERR the replication actor is not available, try again"


def handoff_path(run_dir: str) -> str:
    return os.path.join(run_dir, HANDOFF_FILE)


# --- gateway side --------------------------------------------------------------------------

async def hand_off(conn: ClientConnection, argv: list[bytes], path: str) -> Any:
    """Move ``conn`` (running ``argv``) to the replication actor; it answers from there."""
    deadline = time.monotonic() + FLUSH_TIMEOUT_S
    # Our own reply slot is the last one queued: every reply before it must be on the wire,
    # or the actor's bytes could overtake them.
    while len(conn.replies) > 1 or conn.output_bytes() > 0:
        if conn.closing or time.monotonic() > deadline:
            raise RedisError(UNAVAILABLE)
        await asyncio.sleep(0.001)
    transport = conn.transport
    if transport is None or conn.closing:
        return Raw(b"")
    transport.pause_reading()
    pending = b"".join(encode_command(held) for held in conn.held) + conn.parser.take_buffered()
    conn.held.clear()
    state = {"id": conn.id, "user": conn.user, "name": conn.name, "lib_name": conn.lib_name,
             "lib_ver": conn.lib_ver, "db": conn.db, "resp3": conn.resp3,
             "authenticated": conn.authenticated, "fast_path": conn.fast_path,
             "created": conn.created, "argv": argv, "pending": pending}
    fd = os.dup(transport.get_extra_info("socket").fileno())
    retry_until = time.monotonic() + RETRY_FOR_S
    try:
        while (failure := _send(path, state, fd)) is not None:
            if conn.closing or time.monotonic() > retry_until:
                # The replica reconnects and asks again (as after any broken link).
                log.warning("Could not hand a replica's connection to the replication actor "
                            "(%s); closing it", failure)
                conn.close()
                return Raw(b"")
            await asyncio.sleep(RETRY_EVERY_S)
    finally:
        os.close(fd)
    conn.closing = True  # nothing more goes out from here: the socket is the actor's
    transport.abort()  # closes our descriptor only; the actor's keeps the connection
    return Raw(b"")


def _send(path: str, state: dict[str, Any], fd: int) -> str | None:
    """None once the descriptor reached the actor (from then on the connection is its own,
    even if the rest of the message fails: the actor then drops it and the client
    reconnects), else why it could not."""
    body: bytes = msgpack.packb(state, use_bin_type=True)
    data = HEADER.pack(len(body)) + body
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.settimeout(RECEIVE_TIMEOUT_S)
            sock.connect(path)
            sent = socket.send_fds(sock, [data[:4096]], [fd])
        except OSError as exc:
            return str(exc)
        try:
            if sent < len(data):
                sock.sendall(data[sent:])
        except OSError as exc:
            log.warning("A replica's connection handoff was cut short: %s", exc)
    return None


# --- actor side ----------------------------------------------------------------------------

class HandoffServer:
    """Accepts the connections gateways hand over and adopts them into the actor's gateway."""

    def __init__(self, gw: Gateway, path: str) -> None:
        self.gw = gw
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o600)
        self.sock.listen(64)
        self.sock.setblocking(False)
        gw.loop.add_reader(self.sock.fileno(), self._accept)
        self.adopted = 0

    def close(self) -> None:
        self.gw.loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                peer, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            try:
                fd, state = _receive(peer)
            except (OSError, ValueError) as exc:
                log.warning("A connection handoff failed: %s", exc)
                continue
            finally:
                peer.close()
            self.adopted += 1
            self.gw.loop.create_task(adopt(self.gw, fd, state))


def _receive(peer: socket.socket) -> tuple[int, dict[str, Any]]:
    peer.settimeout(RECEIVE_TIMEOUT_S)
    data, fds, _, _ = socket.recv_fds(peer, 1 << 16, 1)
    if not fds:
        raise ValueError("no descriptor came with the handoff")
    try:
        while len(data) < HEADER.size or len(data) < HEADER.size + HEADER.unpack(data[:4])[0]:
            chunk = peer.recv(1 << 16)
            if not chunk:
                raise ValueError("the handoff message was cut short")
            data += chunk
        size = HEADER.unpack(data[:4])[0]
        state = msgpack.unpackb(data[4 : 4 + size], raw=False)
    except BaseException:
        os.close(fds[0])
        raise
    return fds[0], state


async def adopt(gw: Gateway, fd: int, state: dict[str, Any]) -> None:
    """Make the handed-over socket a client connection of ours and run its command."""
    from gateway.connection import ClientConnection

    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    conn = ClientConnection(gw)
    conn.id = int(state["id"])
    conn.origin = conn.id << wire.ORIGIN_SHIFT
    conn.user = state["user"]
    conn.name, conn.lib_name, conn.lib_ver = state["name"], state["lib_name"], state["lib_ver"]
    conn.db, conn.resp3 = int(state["db"]), bool(state["resp3"])
    conn.authenticated = bool(state["authenticated"])
    conn.fast_path = bool(state["fast_path"]) and conn.user in gw.acl.users
    conn.created = float(state["created"])
    try:
        await gw.loop.connect_accepted_socket(lambda: conn, sock=sock)
    except OSError as exc:
        log.warning("Could not adopt a replica's connection: %s", exc)
        sock.close()
        return
    if conn.closing:
        return
    conn.run_commands([list(state["argv"])])
    if state["pending"]:
        conn.data_received(bytes(state["pending"]))
    else:
        conn.write_ready()
