"""The pub/sub actor's registry and executor, and notify-keyspace-events parsing (no sockets)."""

from __future__ import annotations

from pubsub.actor import COUNTS, PUBLISH, QUERY, RESYNC, PubSubExecutor
from pubsub.registry import CHANNEL, PATTERN, SHARD_CHANNEL, Registry
from shard import notify
from shard.actor import ShardExecutor
from tests.unit.shard_calls import Clock, call


def test_counts_per_gateway_and_receivers() -> None:
    reg = Registry()
    reg.change(b"g0", CHANNEL, b"news", 2)
    reg.change(b"g1", CHANNEL, b"news", 1)
    reg.change(b"g1", PATTERN, b"n*", 3)
    receivers, interested = reg.route(CHANNEL, b"news")
    assert receivers == 6  # a channel and a matching pattern both count, as in Redis
    assert interested == {b"g0": (True, []), b"g1": (True, [b"n*"])}
    assert reg.route(CHANNEL, b"other") == (0, {})
    assert reg.route(SHARD_CHANNEL, b"news") == (0, {})  # shard channels ignore the others
    reg.change(b"g0", CHANNEL, b"news", -2)
    assert reg.numsub(CHANNEL, [b"news", b"x"]) == [b"news", 1, b"x", 0]
    reg.change(b"g1", CHANNEL, b"news", -1)
    assert reg.channels(CHANNEL, None) == [] and reg.numpat() == 1


def test_resync_replaces_a_gateways_state() -> None:
    reg = Registry()
    reg.change(b"g0", CHANNEL, b"old", 1)
    reg.change(b"g1", CHANNEL, b"old", 1)
    reg.replace(b"g0", [(CHANNEL, b"new", 2)])
    assert reg.numsub(CHANNEL, [b"old", b"new"]) == [b"old", 1, b"new", 2]


def test_executor_delivers_once_per_gateway_in_order() -> None:
    ex = PubSubExecutor()
    assert ex.run(b"g0", [[COUNTS, [[CHANNEL, b"c", 5]]], [RESYNC, [[PATTERN, b"*", 1]]]]) \
        == [None, None]
    ex.run(b"g1", [[COUNTS, [[CHANNEL, b"c", 1]]]])
    assert ex.run(b"g2", [[PUBLISH, CHANNEL, b"c", b"m1"], [PUBLISH, CHANNEL, b"c", b"m2"]]) \
        == [2, 2]  # g0's channel count was replaced by its resync
    assert ex.outbox == {
        b"g0": [[CHANNEL, b"c", b"m1", False, [b"*"]], [CHANNEL, b"c", b"m2", False, [b"*"]]],
        b"g1": [[CHANNEL, b"c", b"m1", True, []], [CHANNEL, b"c", b"m2", True, []]],
    }
    assert ex.run(b"g2", [[QUERY, b"channels", []], [QUERY, b"numpat", []]]) == [[b"c"], 1]


def test_parse_events() -> None:
    assert notify.parse_events("") == 0
    assert notify.parse_events("A") == 0  # no K or E: nothing would ever be published
    assert notify.parse_events("K") == 0  # no class
    bits = notify.parse_events("KEA")
    assert bits & notify.EXPIRED and bits & notify.GENERIC and not bits & notify.NEW
    assert notify.parse_events("En") == notify.KEYEVENT | notify.NEW


def test_shard_notes_follow_config_and_expiry() -> None:
    clock = Clock()
    ex = ShardExecutor(0, {"databases": 16, "notify-keyspace-events": "Exn"}, clock=clock)
    call(ex, "SET", "k", "v", "PX", 10)
    assert ex.ctx.notes == [[b"__keyevent@0__:new", b"k"]]
    ex.ctx.notes.clear()
    clock.advance(20)
    assert call(ex, "GET", "k") is None  # lazy expiry: the key is removed now, and says so
    assert ex.ctx.notes == [[b"__keyevent@0__:expired", b"k"]]
    ex.config["notify-keyspace-events"] = ""
    ex.configure_notifications()
    ex.ctx.notes.clear()
    call(ex, "SET", "k2", "v")
    assert ex.ctx.notes == [] and ex.ctx.events == 0
