"""The supervisor's control protocol on ``tcp://``, for atoll-admin on another host.

Only CURVE: ``control-bind tcp://HOST:PORT`` needs the server's secret key
(``control-curve-secret-key-file``, written by ``atoll-admin keygen``) and the public keys of
the clients allowed in (``control-curve-authorized-keys``: a file of z85 keys, one a line, lines starting with
``#`` ignored, or
a directory of ``*.key`` files).  A ZAP authenticator (``zmq.auth``) refuses every other
client during the handshake, so an unknown or plain client gets no answer at all.

The tcp socket answers what the supervisor's ipc socket answers, plus ``manifest`` (the actors
there are) and ``relay {to, request}``: the request goes to that actor's ipc control socket and
its reply comes back unchanged.  So the actors' own sockets stay ``ipc://`` in the 0700 run
directory.  Each request runs in a thread of its own (a relayed ``save`` can take minutes);
replies return to the socket's thread through an inproc pipe.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

import zmq
import zmq.auth.thread

from server.control import ControlClient, ControlError, Handler, answer

if TYPE_CHECKING:
    from server.config import Config

log = logging.getLogger("atoll")
RELAY_TIMEOUT = 600.0  # a relayed save may take that long
REPLIES = "inproc://control-tcp-replies"


def read_key(path: str) -> bytes:
    """A z85 CURVE key as ``atoll-admin keygen`` writes it (40 characters and a newline)."""
    with open(path, "rb") as f:
        key = f.read().strip()
    if len(key) != 40:
        raise ValueError(f"{path} does not hold a z85 CURVE key (40 characters)")
    return key


def authorized_keys(path: str) -> set[bytes]:
    """Public keys from a file (one a line, ``#`` comment lines) or a directory of ``*.key``."""
    if os.path.isdir(path):
        return {read_key(p) for p in sorted(glob.glob(os.path.join(path, "*.key")))}
    with open(path, "rb") as f:
        lines = [line.strip() for line in f]  # z85 has "#": comments are whole lines
    keys = {line for line in lines if line and not line.startswith(b"#")}
    bad = [k for k in keys if len(k) != 40]
    if bad:
        raise ValueError(f"{path}: not a z85 CURVE public key: {bad[0][:50]!r}")
    return keys


def check_settings(config: Config) -> str | None:
    """Why the control-* directives cannot work (a start-up error), or None."""
    bind = str(config.value("control-bind") or "")
    if not bind:
        return None
    if not bind.startswith("tcp://"):
        return "control-bind takes a tcp:// endpoint (the ipc:// sockets are always there)"
    secret = str(config.value("control-curve-secret-key-file") or "")
    allowed = str(config.value("control-curve-authorized-keys") or "")
    if not secret or not allowed:
        return ("control-bind on tcp:// needs CURVE: set control-curve-secret-key-file and "
                "control-curve-authorized-keys (atoll-admin keygen writes the keys)")
    try:
        read_key(secret)
        if not authorized_keys(allowed):
            return f"control-curve-authorized-keys: no key in {allowed}"
    except (OSError, ValueError) as exc:
        return f"control CURVE keys: {exc}"
    return None


class KeyRing:
    """ZAP credentials provider: a client is let in when its public key is authorized."""

    def __init__(self, keys: set[bytes]) -> None:
        self.keys = keys

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keys:  # z85, as zmq.auth hands it over
            return True
        log.warning("Control: refused a CURVE client with an unknown key")
        return False


class TcpControl:
    """Serves ``control-bind`` in a thread; requests run in threads of their own."""

    def __init__(self, config: Config, handlers: dict[str, Handler], run_dir: str,
                 manifest: dict[str, Any]) -> None:
        self.endpoint = str(config.value("control-bind"))
        self.secret = read_key(str(config.value("control-curve-secret-key-file")))
        self.keys = authorized_keys(str(config.value("control-curve-authorized-keys")))
        self.run_dir = run_dir
        self.manifest = manifest
        self.handlers: dict[str, Handler] = {**handlers, "manifest": lambda r: self.manifest,
                                             "relay": self.relay}
        self.context: zmq.Context[Any] = zmq.Context()
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._serve, name="control-tcp", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(10)
        if self.error is not None:
            raise self.error

    def relay(self, request: dict[str, Any]) -> Any:
        name = str(request.get("to"))
        endpoint = self.manifest["control"].get(name)
        if name == "supervisor" or endpoint is None:
            raise ControlError(f"this server has no actor {name}")
        inner = dict(request.get("request") or {})
        op = str(inner.pop("op", ""))
        inner.pop("v", None)
        timeout = min(float(request.get("relay_timeout") or 5.0), RELAY_TIMEOUT)
        client = ControlClient(self.context, endpoint, timeout)
        try:
            return client.call(op, **inner)
        finally:
            client.close()

    def _serve(self) -> None:
        auth = zmq.auth.thread.ThreadAuthenticator(self.context, log=log)
        try:
            auth.start()
            auth.configure_curve_callback(domain="*", credentials_provider=KeyRing(self.keys))
            sock = self.context.socket(zmq.ROUTER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.curve_server = True
            sock.curve_secretkey = self.secret
            sock.curve_publickey = zmq.curve_public(self.secret)
            sock.bind(self.endpoint)
            replies = self.context.socket(zmq.PULL)
            replies.bind(REPLIES)
        except Exception as exc:  # reported by start()
            self.error = exc
            auth.stop()
            self.ready.set()
            return
        log.info("Control protocol on %s (CURVE, %d authorized key(s))", self.endpoint,
                 len(self.keys))
        self.ready.set()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(replies, zmq.POLLIN)
        while not self.stop.is_set():
            ready = dict(poller.poll(200))
            if sock in ready:
                self._take(sock)
            if replies in ready:
                while True:
                    try:
                        sock.send_multipart(replies.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
        sock.close(0)
        replies.close(0)
        auth.stop()

    def _take(self, sock: zmq.Socket[Any]) -> None:
        while True:
            try:
                *envelope, payload = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            threading.Thread(target=self._run, args=(envelope, payload), daemon=True).start()

    def _run(self, envelope: list[bytes], payload: bytes) -> None:
        reply = answer(self.handlers, payload)
        out = self.context.socket(zmq.PUSH)
        out.setsockopt(zmq.LINGER, 1000)
        out.connect(REPLIES)
        out.send_multipart([*envelope, reply])
        out.close()


def client_keys(directory: str) -> dict[str, bytes]:
    """What ``atoll-admin --curve-keys DIR`` needs: its key pair and the server's public key."""
    names = {"public": "atoll-control-client.key", "secret": "atoll-control-client.key_secret",
             "server": "atoll-control-server.key"}
    try:
        return {role: read_key(os.path.join(directory, name)) for role, name in names.items()}
    except (OSError, ValueError) as exc:
        raise ControlError(f"--curve-keys {directory}: {exc}") from None

