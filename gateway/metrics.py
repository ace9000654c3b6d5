"""Redis' instantaneous metrics (INFO stats ``instantaneous_*``), per gateway.

Every 100 ms the gateway samples its running totals (commands, bytes in, bytes out); a
metric is the mean rate over the last 16 samples, as Redis' ``trackInstantaneousMetric``.
The gateway answering INFO sums the rates of every gateway (their counters travel with
``gateway_counters``); shards' work is already counted where the commands entered.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.server import Gateway

PERIOD_S = 0.1
SAMPLES = 16


class Instantaneous:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.last: dict[str, tuple[float, int]] = {}
        self.rates: dict[str, deque[float]] = {}

    def start(self) -> None:
        self.gateway.loop.call_later(PERIOD_S, self._tick)

    def _tick(self) -> None:
        gw = self.gateway
        now = time.monotonic()
        for name, value in (("ops", gw.router.commands_processed),
                            ("net_in", gw.stats["net_in"]), ("net_out", gw.stats["net_out"])):
            at, before = self.last.get(name, (now, value))
            if now > at:
                self.rates.setdefault(name, deque(maxlen=SAMPLES)).append(
                    (value - before) / (now - at))
            self.last[name] = (now, value)
        if not gw.stopping.is_set():
            gw.loop.call_later(PERIOD_S, self._tick)

    def rate(self, name: str) -> float:
        """Per second, averaged over the last samples."""
        samples = self.rates.get(name)
        return sum(samples) / len(samples) if samples else 0.0

    def counters(self) -> dict[str, float]:
        return {"inst_ops": self.rate("ops"), "inst_in": self.rate("net_in"),
                "inst_out": self.rate("net_out")}
