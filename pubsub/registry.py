"""Who listens to what, as the pub/sub actor knows it: per channel, pattern and shard channel,
the number of subscribers on each gateway.

No sockets here, so tests drive it directly.  Gateways report their subscriber counts (changes,
or the whole set after a reconnect); a publish asks :meth:`Registry.route` which gateways want
the message and how many clients will receive it in all.
"""

from __future__ import annotations

from shard.glob import Matcher, compile_glob

CHANNEL, PATTERN, SHARD_CHANNEL = 0, 1, 2
KINDS = (CHANNEL, PATTERN, SHARD_CHANNEL)

# What a gateway is told about one published message: is it subscribed to the channel itself,
# and which of its patterns match.
Interest = tuple[bool, list[bytes]]


class Registry:
    def __init__(self) -> None:
        # kind -> name -> {gateway identity: subscribers there}
        self.maps: tuple[dict[bytes, dict[bytes, int]], ...] = ({}, {}, {})
        self.matchers: dict[bytes, Matcher] = {}  # pattern -> compiled glob

    def change(self, gateway: bytes, kind: int, name: bytes, delta: int) -> None:
        """Add ``delta`` subscribers of ``gateway`` to a channel, pattern or shard channel."""
        by_name = self.maps[kind]
        counts = by_name.get(name)
        if counts is None:
            if delta <= 0:
                return
            counts = by_name[name] = {}
            if kind == PATTERN:
                self.matchers[name] = compile_glob(name)
        total = counts.get(gateway, 0) + delta
        if total > 0:
            counts[gateway] = total
            return
        counts.pop(gateway, None)
        if not counts:
            del by_name[name]
            if kind == PATTERN:
                self.matchers.pop(name, None)

    def replace(self, gateway: bytes, entries: list[tuple[int, bytes, int]]) -> None:
        """Forget what ``gateway`` had and take its full list ``[[kind, name, count], ...]``."""
        self.drop(gateway)
        for kind, name, count in entries:
            self.change(gateway, kind, name, count)

    def drop(self, gateway: bytes) -> None:
        for kind in KINDS:
            for name in [n for n, counts in self.maps[kind].items() if gateway in counts]:
                self.change(gateway, kind, name, -self.maps[kind][name][gateway])

    def route(self, kind: int, channel: bytes) -> tuple[int, dict[bytes, Interest]]:
        """Receivers in all and, per interested gateway, what it should deliver.

        A client subscribed to the channel and to a matching pattern receives (and counts)
        twice, as in Redis.  Shard channels ignore patterns.
        """
        receivers = 0
        out: dict[bytes, Interest] = {}
        direct = self.maps[kind].get(channel)
        if direct:
            for gateway, count in direct.items():
                receivers += count
                out[gateway] = (True, [])
        if kind == SHARD_CHANNEL or not self.maps[PATTERN]:
            return receivers, out
        matchers = self.matchers
        for pattern, counts in self.maps[PATTERN].items():
            if not matchers[pattern](channel):
                continue
            for gateway, count in counts.items():
                receivers += count
                interest = out.get(gateway)
                if interest is None:
                    interest = out[gateway] = (False, [])
                interest[1].append(pattern)
        return receivers, out

    def channels(self, kind: int, pattern: bytes | None) -> list[bytes]:
        names = list(self.maps[kind])
        if pattern is None:
            return names
        match = compile_glob(pattern)
        return [name for name in names if match(name)]

    def numsub(self, kind: int, names: list[bytes]) -> list[object]:
        out: list[object] = []
        for name in names:
            counts = self.maps[kind].get(name)
            out += [name, sum(counts.values()) if counts else 0]
        return out

    def numpat(self) -> int:
        return len(self.maps[PATTERN])
