"""Cross protocol scripting: a web page can make a browser POST to a local Redis port, and
each line of the HTTP request then reads as an inline command.  As Redis does, a command named
``POST`` or ``Host:`` drops the connection at once, without a reply and without sending the
replies still waiting in it, and the gateway logs a warning at most once a minute."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.connection import ClientConnection

log = logging.getLogger("atoll.gateway")

HTTP_NAMES = frozenset({b"post", b"host:"})
LOG_EVERY_S = 60.0

_last_logged = -LOG_EVERY_S


def drop_http_client(conn: ClientConnection) -> None:
    """Abort ``conn``: it sent an HTTP request line or header."""
    global _last_logged
    now = time.monotonic()
    if now - _last_logged > LOG_EVERY_S:
        _last_logged = now
        log.warning("Possible SECURITY ATTACK detected: a client sent POST or Host: as a "
                    "command, as an HTTP request relayed by a browser would (cross protocol "
                    "scripting). Connection aborted.")
    conn.replies.clear()
    conn.held.clear()
    conn.closing = True
    if conn.transport is not None:
        conn.transport.abort()
