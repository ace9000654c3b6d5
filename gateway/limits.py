"""Client limits: maxclients (server-wide), timeout, tcp-keepalive, output-buffer limits.

* ``maxclients`` counts the clients of every gateway process: each gateway writes its own
  count into its slot of a shared array the supervisor created (one writer per slot, so no
  lock); a new connection is refused when the sum has reached the limit, with Redis' error
  line and ``rejected_connections`` counted.  Two gateways accepting in the same instant can
  both see room for one more: the limit may be passed by one client per extra gateway.
* ``timeout``: once a second the gateway closes clients idle longer than that, except blocked
  and subscribed ones (as Redis' clientsCronHandleTimeout).
* ``tcp-keepalive``: SO_KEEPALIVE with that idle time on every accepted socket.
* ``client-output-buffer-limit normal``: checked whenever a connection's socket buffer is past
  its high-water mark (the only time it can grow) and once a second for the soft limit;
  subscribed clients are checked by gateway/pubsub.py with the pubsub class.  A client over
  the limit is closed and its unsent output dropped at once.

Memory stays bounded for a client that never reads even without a limit: the connection stops
reading, and stops running commands it already read, while its output is past the high-water
mark or too many replies are pending (gateway/connection.py).
"""

from __future__ import annotations

import logging
import socket
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.server import Gateway

log = logging.getLogger("atoll.gateway")

MAXCLIENTS_REACHED = b"-ERR max number of clients reached\r\n"
# Redis' reply to a non-local client in protected mode (networking.c), word for word.
PROTECTED_MODE_DENIED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no "
    b"password is set for the default user. In this mode connections are only accepted from "
    b"the loopback interface. If you want to connect from external computers to Redis you may "
    b"adopt one of the following solutions: 1) Just disable protected mode sending the command "
    b"'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from "
    b"the same host the server is running, however MAKE SURE Redis is not publicly accessible "
    b"from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
    b"Alternatively you can just disable the protected mode by editing the Redis configuration "
    b"file, and setting the protected mode option to 'no', and then restarting the server. 3) "
    b"If you started the server manually just for testing, restart it with the "
    b"'--protected-mode no' option. 4) Setup a an authentication password for the default user. "
    b"NOTE: You only need to do one of the above things in order for the server to start "
    b"accepting connections from the outside.\r\n")


def is_local_peer(peer: Any) -> bool:
    """A loopback address or a unix socket (Redis' islocalClient)."""
    if not isinstance(peer, tuple) or not peer:
        return True  # unix sockets have no (host, port) peer
    host = str(peer[0])
    if host.startswith("::ffff:"):
        host = host[7:]
    return host.startswith("127.") or host == "::1"



class ClientLimits:
    def __init__(self, gateway: Gateway, counts: Any = None) -> None:
        self.gateway = gateway
        self.counts = counts  # multiprocessing RawArray of client counts, one per gateway
        if counts is not None and gateway.index < len(counts):
            counts[gateway.index] = 0  # a restarted gateway's clients died with it
        self.output_soft: dict[int, float] = {}  # client id -> when it passed the soft limit

    # --- maxclients ----------------------------------------------------------------------

    def total_clients(self) -> int:
        counts = self.counts
        if counts is None:
            return len(self.gateway.clients)
        own = self.gateway.index
        others: int = sum(counts[i] for i in range(len(counts)) if i != own)
        return others + len(self.gateway.clients)

    def admit(self, conn: ClientConnection, transport: Any) -> bool:
        """Refuse a connection past maxclients (error line, then close); else set it up."""
        gw = self.gateway
        if (gw.config.value("protected-mode") and gw.acl.users[b"default"].nopass
                and not is_local_peer(transport.get_extra_info("peername"))):
            gw.stats["rejected"] += 1
            transport.write(PROTECTED_MODE_DENIED)
            transport.close()
            return False
        if self.total_clients() >= int(gw.config.value("maxclients")):
            gw.stats["rejected"] += 1
            transport.write(MAXCLIENTS_REACHED)
            transport.close()
            return False
        keepalive = int(gw.config.value("tcp-keepalive"))
        sock = transport.get_extra_info("socket")
        if keepalive and sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            _set_keepalive(sock, keepalive)
        return True

    def count_changed(self) -> None:
        counts = self.counts
        if counts is not None and self.gateway.index < len(counts):
            counts[self.gateway.index] = len(self.gateway.clients)

    # --- once a second -------------------------------------------------------------------

    def start(self) -> None:
        self.gateway.loop.call_later(1.0, self._cron)

    def _cron(self) -> None:
        try:
            self._close_idle()
            self._check_soft_limits()
        finally:
            if not self.gateway.stopping.is_set():
                self.gateway.loop.call_later(1.0, self._cron)

    def _close_idle(self) -> None:
        timeout = int(self.gateway.config.value("timeout"))
        if not timeout:
            return
        now = time.time()
        for conn in list(self.gateway.clients.values()):
            if conn.blocked_on or conn.pubsub is not None or conn.monitoring:
                continue
            if now - conn.last_interaction > timeout:
                log.debug("Closing idle client id=%d addr=%s", conn.id, conn.addr)
                conn.close()

    def _check_soft_limits(self) -> None:
        if not self.output_soft:
            return
        for client_id in list(self.output_soft):
            conn = self.gateway.clients.get(client_id)
            if conn is None:
                del self.output_soft[client_id]
            else:
                self.check_output(conn)

    # --- output buffers ------------------------------------------------------------------

    def check_output(self, conn: ClientConnection) -> None:
        """Close a client whose unsent output passed client-output-buffer-limit normal."""
        if conn.pubsub is not None:
            return  # the pubsub class, checked by gateway/pubsub.py
        limits = self.gateway.config.value("client-output-buffer-limit")
        hard, soft, seconds = limits.get("normal", (0, 0, 0))
        used = conn.output_bytes()
        over = bool(hard and used >= hard)
        if not over and soft and used >= soft:
            since = self.output_soft.setdefault(conn.id, time.monotonic())
            over = time.monotonic() - since > seconds
        else:
            self.output_soft.pop(conn.id, None)
        if over:
            self.output_soft.pop(conn.id, None)
            drop_for_output_limit(conn)


def drop_for_output_limit(conn: ClientConnection) -> None:
    from gateway.commands import client_line

    log.warning("Client %s scheduled to be closed ASAP for overcoming of output buffer limits.",
                client_line(conn, conn).decode("latin-1"))
    transport = conn.transport
    conn.held.clear()
    conn.replies.clear()
    if transport is not None:
        transport.abort()  # drop the unsent output now: that is the memory to give back
    conn.close()


def _set_keepalive(sock: socket.socket, interval: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(interval // 3, 1))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError:
        pass  # best effort, as Redis' anetKeepAlive
