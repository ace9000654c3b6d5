"""The control protocol every actor answers on its own socket (version 1).

Control sockets are ZeroMQ ROUTER sockets in the private run directory, one per actor
(``control-supervisor.sock``, ``control-shard-<i>.sock``, ``control-gateway-<i>.sock``,
``control-pubsub-0.sock``), separate from the data sockets, so control requests never queue
behind data batches.  A request is one msgpack map ``{"v": 1, "op": NAME, ...arguments}``; the
answer is ``{"v": 1, "ok": true, "result": ...}`` or ``{"v": 1, "ok": false, "error": TEXT}``.
Clients use a REQ (or DEALER with an empty delimiter frame) socket.  See docs/CONTROL.md.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import msgpack
import zmq

VERSION = 1
MANIFEST = "atoll.json"  # in the run directory: what atoll-admin needs to find every actor
SLOT_MAP_FILE = "atoll-slots.json"  # in ``dir``, next to the data: survives restarts

log = logging.getLogger("atoll")

Handler = Callable[[dict[str, Any]], Any]


class ControlError(Exception):
    """A request that cannot be served; its text goes back to the caller."""


def control_endpoint(run_dir: str, name: str) -> str:
    return f"ipc://{run_dir}/control-{name}.sock"


def run_dir_of(endpoint: str) -> str:
    """The run directory of an ``ipc://`` data endpoint."""
    return os.path.dirname(endpoint[len("ipc://"):])


def bind_control(context: zmq.Context[Any], endpoint: str) -> zmq.Socket[Any]:
    sock: zmq.Socket[Any] = context.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    return sock


def answer(handlers: dict[str, Handler], payload: bytes) -> bytes:
    """Run one request against ``handlers`` and encode its reply."""
    try:
        request = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        if not isinstance(request, dict) or request.get("v") != VERSION:
            raise ControlError(f"unsupported control protocol version (this actor speaks {VERSION})")
        handler = handlers.get(str(request.get("op")))
        if handler is None:
            raise ControlError(f"unknown control operation {request.get('op')!r}")
        reply = {"v": VERSION, "ok": True, "result": handler(request)}
    except ControlError as exc:
        reply = {"v": VERSION, "ok": False, "error": str(exc)}
    except Exception as exc:  # a bug must not take the actor down
        log.exception("control request failed")
        reply = {"v": VERSION, "ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}
    packed: bytes = msgpack.packb(reply, use_bin_type=True)
    return packed


def drain(sock: zmq.Socket[Any], handlers: dict[str, Handler]) -> None:
    """Answer every request waiting on a ROUTER control socket (envelope kept)."""
    while True:
        try:
            frames = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        *envelope, payload = frames
        sock.send_multipart([*envelope, answer(handlers, payload)])


def process_memory(pid: int) -> int:
    """Resident set size of a process in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class ControlClient:
    """A synchronous client of one control socket (REQ; a new socket after a timeout)."""

    def __init__(self, context: zmq.Context[Any], endpoint: str, timeout: float = 5.0,
                 curve: dict[str, bytes] | None = None) -> None:
        self.context = context
        self.endpoint = endpoint
        self.timeout = timeout
        self.curve = curve
        self.sock: zmq.Socket[Any] | None = None

    def _socket(self) -> zmq.Socket[Any]:
        if self.sock is None:
            sock = self.context.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            if self.curve:
                sock.curve_secretkey = self.curve["secret"]
                sock.curve_publickey = self.curve["public"]
                sock.curve_serverkey = self.curve["server"]
            sock.connect(self.endpoint)
            self.sock = sock
        return self.sock

    def call(self, op: str, timeout: float | None = None, **args: Any) -> Any:
        """Send a request and return its result; ControlError on failure or timeout."""
        sock = self._socket()
        sock.send(msgpack.packb({"v": VERSION, "op": op, **args}, use_bin_type=True))
        wait_ms = int(1000 * (self.timeout if timeout is None else timeout))
        if not sock.poll(wait_ms):
            self.close()  # a REQ socket that got no answer cannot send again
            raise ControlError(f"no answer from {self.endpoint} within {wait_ms} ms")
        reply = msgpack.unpackb(sock.recv(), raw=False, strict_map_key=False)
        if not reply.get("ok"):
            raise ControlError(str(reply.get("error")))
        return reply.get("result")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None


def write_manifest(run_dir: str, data: dict[str, Any]) -> None:
    path = os.path.join(run_dir, MANIFEST)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({**data, "written": time.time()}, f, indent=1)
    os.replace(tmp, path)
