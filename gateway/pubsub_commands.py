"""Pub/sub commands (SUBSCRIBE ... PUBLISH, PUBSUB), CLIENT REPLY, and the dispatch used by
connections in a special mode.

A connection normally dispatches straight to the router.  While it has subscriptions, or its
replies are switched off, it goes through :func:`special_dispatch` instead, so the hot path
pays nothing for these modes: a RESP2 subscriber may only run the commands Redis allows, and
CLIENT REPLY OFF / SKIP drop replies but never pushes (subscription replies and messages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gateway.commands  # noqa: F401  (declares the CLIENT container)
from gateway.cross import NO_REPLY
from gateway.pubsub import ClientSubscriptions
from pubsub.registry import CHANNEL, PATTERN, SHARD_CHANNEL
from shard import errors
from shard.errors import RedisError
from shard.reply import OK, Raw
from shard.table import GATEWAY, command, container

if TYPE_CHECKING:
    from gateway.connection import ClientConnection

G = GATEWAY
REPLY_ON, REPLY_OFF, REPLY_SKIP = 0, 1, 2
SUBSCRIBED_ALLOWED = {b"ping", b"subscribe", b"ssubscribe", b"unsubscribe", b"sunsubscribe",
                      b"psubscribe", b"punsubscribe", b"quit", b"reset"}
# Commands whose whole output is pushes, which CLIENT REPLY OFF does not silence.
PUSH_ONLY = SUBSCRIBED_ALLOWED - {b"ping", b"quit", b"reset"}


def refresh_dispatch(conn: ClientConnection) -> None:
    """Pick the connection's dispatch function for its current mode."""
    special = conn.reply_mode != REPLY_ON or (conn.pubsub is not None and conn.pubsub.total())
    conn.dispatch = special_dispatch if special else conn.gateway.router.dispatch


def special_dispatch(conn: ClientConnection, argv: list[bytes]) -> None:
    router = conn.gateway.router
    name = argv[0].lower()
    subs = conn.pubsub
    if subs is not None and not conn.resp3 and subs.total() and name not in SUBSCRIBED_ALLOWED:
        spec = router.resolve(conn, argv)  # unknown command, arity and NOAUTH come first
        if spec is not None:
            conn.reply(RedisError(errors.SUBSCRIBED_CONTEXT.format(name=spec.fullname)).line())
        return
    mode = conn.reply_mode
    if (mode == REPLY_ON or name in PUSH_ONLY
            or (name == b"client" and len(argv) > 1 and argv[1].lower() == b"reply")):
        router.dispatch(conn, argv)
        return
    replies = conn.replies
    before = len(replies)
    router.dispatch(conn, argv)
    conn.open_group = None  # a group must not gather replies of both modes
    added = [replies.pop() for _ in range(len(replies) - before)]
    for item in reversed(added):
        if type(item) is not bytes:
            replies.append(Muted(item))
    if mode == REPLY_SKIP:
        conn.reply_mode = REPLY_ON
        refresh_dispatch(conn)


class Muted:
    """A reply placeholder whose reply is dropped (CLIENT REPLY OFF / SKIP)."""

    __slots__ = ("inner",)

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @property
    def value(self) -> bytes | None:
        return None if self.inner.value is None else b""


def reset_client(conn: ClientConnection) -> None:
    """RESET: leave every channel without notices, replies back on."""
    conn.gateway.pubsub.forget(conn)
    conn.reply_mode = REPLY_ON
    refresh_dispatch(conn)


def _subscribe(conn: ClientConnection, kind: int, names: list[bytes]) -> Any:
    # Inside EXEC (the connection is busy running it) the pushes are part of its reply.
    pushes = conn.gateway.pubsub.subscribe(conn, kind, names, inline=conn.busy)
    refresh_dispatch(conn)
    return NO_REPLY if pushes is None else Raw(pushes)


def _unsubscribe(conn: ClientConnection, kind: int, names: list[bytes]) -> Any:
    pushes = conn.gateway.pubsub.unsubscribe(conn, kind, names or None)
    refresh_dispatch(conn)
    if conn.busy:  # inside EXEC: the pushes are its reply
        return Raw(pushes)
    conn.reply(pushes)
    return NO_REPLY


_FLAGS = "pubsub noscript loading stale"


@command("SUBSCRIBE channel [channel ...]", -2, _FLAGS, acl="@pubsub @slow", route=G,
         group="pubsub", since="2.0.0", summary="Listen for messages published to the given channels")
def subscribe(conn: ClientConnection, argv: list[bytes]) -> Any:
    return _subscribe(conn, CHANNEL, argv[1:])


@command("UNSUBSCRIBE [channel [channel ...]]", -1, _FLAGS, acl="@pubsub @slow", route=G,
         group="pubsub", since="2.0.0",
         summary="Stop listening for messages posted to the given channels")
def unsubscribe(conn: ClientConnection, argv: list[bytes]) -> Any:
    return _unsubscribe(conn, CHANNEL, argv[1:])


@command("PSUBSCRIBE pattern [pattern ...]", -2, _FLAGS, acl="@pubsub @slow", route=G,
         group="pubsub", since="2.0.0",
         summary="Listen for messages published to channels matching the given patterns")
def psubscribe(conn: ClientConnection, argv: list[bytes]) -> Any:
    return _subscribe(conn, PATTERN, argv[1:])


@command("PUNSUBSCRIBE [pattern [pattern ...]]", -1, _FLAGS, acl="@pubsub @slow", route=G,
         group="pubsub", since="2.0.0",
         summary="Stop listening for messages posted to channels matching the given patterns")
def punsubscribe(conn: ClientConnection, argv: list[bytes]) -> Any:
    return _unsubscribe(conn, PATTERN, argv[1:])


@command("SSUBSCRIBE shardchannel [shardchannel ...]", -2, _FLAGS, (1, -1, 1),
         acl="@pubsub @slow", route=G, group="pubsub", since="7.0.0",
         summary="Listen for messages published to the given shard channels")
def ssubscribe(conn: ClientConnection, argv: list[bytes]) -> Any:
    if conn.busy:  # inside EXEC, as in Redis (MULTI makes the client DENY BLOCKING)
        raise RedisError(errors.DENY_BLOCKING.format(cmd="SSUBSCRIBE"))
    return _subscribe(conn, SHARD_CHANNEL, argv[1:])


@command("SUNSUBSCRIBE [shardchannel [shardchannel ...]]", -1, _FLAGS, (1, -1, 1),
         acl="@pubsub @slow", route=G, group="pubsub", since="7.0.0",
         summary="Stop listening for messages posted to the given shard channels")
def sunsubscribe(conn: ClientConnection, argv: list[bytes]) -> Any:
    return _unsubscribe(conn, SHARD_CHANNEL, argv[1:])


def _publish(conn: ClientConnection, kind: int, argv: list[bytes]) -> Any:
    hub = conn.gateway.pubsub
    if conn.busy:  # inside EXEC: the count is a value of its reply array
        return _count(hub.publish_later(kind, argv[1], argv[2]))
    hub.publish(conn, kind, argv[1], argv[2])
    return NO_REPLY


async def _count(future: Any) -> Any:
    value = await future
    if isinstance(value, RedisError):
        raise value
    return value


@command("PUBLISH channel message", 3, "pubsub loading stale fast may_replicate", acl="@pubsub @fast",
         route=G, group="pubsub", since="2.0.0", summary="Post a message to a channel")
def publish(conn: ClientConnection, argv: list[bytes]) -> Any:
    return _publish(conn, CHANNEL, argv)


@command("SPUBLISH shardchannel message", 3, "pubsub loading stale fast may_replicate", (1, 1, 1),
         acl="@pubsub @fast", route=G, group="pubsub", since="7.0.0",
         summary="Post a message to a shard channel")
def spublish(conn: ClientConnection, argv: list[bytes]) -> Any:
    return _publish(conn, SHARD_CHANNEL, argv)


# --- PUBSUB ----------------------------------------------------------------------------

container("pubsub", acl="@slow", group="pubsub", since="2.8.0",
          summary="A container for Pub/Sub commands")
_INTROSPECTION = "pubsub loading stale"


async def _ask(conn: ClientConnection, what: bytes, args: list[bytes]) -> Any:
    return await _count(conn.gateway.pubsub.query(what, args))


@command("PUBSUB CHANNELS [pattern]", -2, _INTROSPECTION, acl="@pubsub @slow", route=G,
         parent="pubsub", since="2.8.0", summary="List active channels")
def pubsub_channels(conn: ClientConnection, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise RedisError(errors.SUBCOMMAND_SYNTAX.format(sub=argv[1].decode("latin-1"), cmd="PUBSUB"))
    return _ask(conn, b"channels", argv[2:])


@command("PUBSUB NUMSUB [channel [channel ...]]", -2, _INTROSPECTION, acl="@pubsub @slow",
         route=G, parent="pubsub", since="2.8.0",
         summary="Get the count of subscribers for channels")
def pubsub_numsub(conn: ClientConnection, argv: list[bytes]) -> Any:
    return _ask(conn, b"numsub", argv[2:])


@command("PUBSUB NUMPAT", 2, _INTROSPECTION, acl="@pubsub @slow", route=G, parent="pubsub",
         since="2.8.0", summary="Get the count of unique patterns pattern subscriptions")
def pubsub_numpat(conn: ClientConnection, argv: list[bytes]) -> Any:
    return _ask(conn, b"numpat", [])


@command("PUBSUB SHARDCHANNELS [pattern]", -2, _INTROSPECTION, acl="@pubsub @slow", route=G,
         parent="pubsub", since="7.0.0", summary="List active shard channels")
def pubsub_shardchannels(conn: ClientConnection, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise RedisError(errors.SUBCOMMAND_SYNTAX.format(sub=argv[1].decode("latin-1"), cmd="PUBSUB"))
    return _ask(conn, b"shardchannels", argv[2:])


@command("PUBSUB SHARDNUMSUB [shardchannel [shardchannel ...]]", -2, _INTROSPECTION,
         acl="@pubsub @slow", route=G, parent="pubsub", since="7.0.0",
         summary="Get the count of subscribers for shard channels")
def pubsub_shardnumsub(conn: ClientConnection, argv: list[bytes]) -> Any:
    return _ask(conn, b"shardnumsub", argv[2:])


# --- CLIENT REPLY ----------------------------------------------------------------------

@command("CLIENT REPLY ON | OFF | SKIP", 3, "noscript loading stale", acl="@slow @connection",
         route=G, parent="client", since="3.2.0",
         summary="Instruct the server whether to reply to commands")
def client_reply(conn: ClientConnection, argv: list[bytes]) -> Any:
    mode = argv[2].lower()
    if mode == b"on":
        conn.reply_mode = REPLY_ON
        refresh_dispatch(conn)
        return OK
    if mode not in (b"off", b"skip"):
        raise RedisError(errors.SYNTAX)
    conn.reply_mode = REPLY_OFF if mode == b"off" else REPLY_SKIP
    refresh_dispatch(conn)
    return NO_REPLY


def subscription_counts(conn: Any) -> tuple[int, int, int]:
    """sub, psub, ssub for CLIENT LIST / INFO."""
    subs: ClientSubscriptions | None = conn.pubsub
    if subs is None:
        return 0, 0, 0
    return tuple(len(names) for names in subs.names)  # type: ignore[return-value]
