"""Gateway-to-gateway messages through the supervisor's pipes.

The supervisor relays ``("peer", (target, message))`` from one gateway to another (``target``
a gateway name) or to all the others (``target`` None), as ``("peer", (sender, message))``.
On top of that:

* ``ask(what, args)``: every other gateway runs ``HANDLERS[what](gateway, args)`` and
  answers; the future resolves with the answers that came within a second (a gateway being
  restarted simply does not answer).  CLIENT LIST / KILL / PAUSE and INFO's per-gateway
  counters use it.
* ``tell(message)``: one-way, to every other gateway (MONITOR lines and who monitors,
  gateway/monitor.py).

The pipe was chosen over the pub/sub actor because these messages are rare (administration,
or MONITOR, a debugging tool whose cost Redis also warns about), the supervisor already relays
CONFIG SET and ACL changes this way, and the actor's protocol stays about pub/sub.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.server import Gateway

log = logging.getLogger("atoll.gateway")

ANSWER_TIMEOUT_S = 1.0
# what -> handler(gateway, args) -> a picklable answer; modules register theirs at import.
HANDLERS: dict[str, Callable[[Any, Any], Any]] = {}
# kind -> handler(gateway, sender, payload) for one-way messages.
NOTICES: dict[str, Callable[[Any, str, Any], None]] = {}


class Peers:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.count = max(int(gateway.config.value("gateways")), 1) - 1  # the other gateways
        self.next_id = 0
        self.waiting: dict[int, tuple[asyncio.Future[list[Any]], list[Any]]] = {}

    def _send(self, target: str | None, message: Any) -> None:
        pipe = self.gateway.supervisor
        if pipe is None or not self.count:
            return
        try:
            pipe.send(("peer", (target, message)))
        except OSError:
            log.warning("could not reach the supervisor")

    def tell(self, kind: str, payload: Any) -> None:
        self._send(None, ("notice", kind, payload))

    async def ask(self, what: str, args: Any = None) -> list[Any]:
        """The answers of the other gateways (those that answered within a second)."""
        if not self.count or self.gateway.supervisor is None:
            return []
        self.next_id += 1
        ident = self.next_id
        future: asyncio.Future[list[Any]] = self.gateway.loop.create_future()
        answers: list[Any] = []
        self.waiting[ident] = (future, answers)
        self._send(None, ("ask", ident, what, args))
        try:
            return await asyncio.wait_for(asyncio.shield(future), ANSWER_TIMEOUT_S)
        except TimeoutError:
            return answers
        finally:
            self.waiting.pop(ident, None)

    def receive(self, payload: Any) -> None:
        sender, message = payload
        kind = message[0]
        if kind == "ask":
            _, ident, what, args = message
            try:
                answer = HANDLERS[what](self.gateway, args)
            except Exception:
                log.exception("peer request %s failed", what)
                answer = None
            self._send(sender, ("answer", ident, answer))
        elif kind == "answer":
            _, ident, answer = message
            found = self.waiting.get(ident)
            if found is not None:
                future, answers = found
                answers.append(answer)
                if len(answers) >= self.count and not future.done():
                    future.set_result(answers)
        elif kind == "notice":
            _, what, data = message
            handler = NOTICES.get(what)
            if handler is not None:
                handler(self.gateway, sender, data)
