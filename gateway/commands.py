"""Commands the gateway answers itself: connection state, CLIENT, CONFIG, INFO, SCAN ...

Handlers take ``(conn, argv)`` and return a reply value, a coroutine (for commands that ask the
shards), or ``NO_REPLY``.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any

from gateway.cross import NO_REPLY
from shard import errors, wire
from shard.errors import RedisError
from shard.numbers import string2ll
from shard.reply import OK, PONG, Simple
from shard.table import GATEWAY, command, container

log = logging.getLogger("atoll.gateway")

if TYPE_CHECKING:
    from gateway.connection import ClientConnection

G = GATEWAY


@command("PING [message]", -1, "fast", acl="@fast @connection", route=G,
         group="connection", summary="Ping the server")
def ping(conn: ClientConnection, argv: list[bytes]) -> Any:
    if len(argv) > 2:
        raise errors.wrong_arity("ping")
    if conn.pubsub is not None and not conn.resp3 and conn.pubsub.total():
        return [b"pong", argv[1] if len(argv) > 1 else b""]  # as Redis answers subscribers
    return PONG if len(argv) == 1 else argv[1]


@command("ECHO message", 2, "loading stale fast", acl="@fast @connection", route=G, group="connection",
         summary="Echo the given string")
def echo(conn: ClientConnection, argv: list[bytes]) -> Any:
    return argv[1]


@command("SELECT index", 2, "loading stale fast", acl="@fast @connection", route=G,
         group="connection", summary="Change the selected database for the current connection")
def select(conn: ClientConnection, argv: list[bytes]) -> Any:
    index = string2ll(argv[1])
    if index is None or not -(2**31) <= index < 2**31:
        raise RedisError(errors.NOT_INTEGER)
    if not 0 <= index < conn.gateway.databases:
        raise RedisError(errors.DB_INDEX)
    conn.db = index
    return OK


@command("QUIT", -1, "allow_busy noscript loading stale fast no_auth", acl="@fast @connection",
         route=G, group="connection", summary="Close the connection")
def quit_(conn: ClientConnection, argv: list[bytes]) -> Any:
    conn.reply(b"+OK\r\n")
    conn.close_after_reply = True
    return NO_REPLY


@command("RESET", 1, "noscript loading stale fast no_auth allow_busy", acl="@fast @connection",
         route=G, group="connection", since="6.2.0", summary="Reset the connection")
def reset(conn: ClientConnection, argv: list[bytes]) -> Any:
    conn.db = 0
    conn.resp3 = False
    conn.name = b""
    conn.multi = None
    from gateway.transactions import forget_watches

    forget_watches(conn)
    from gateway.pubsub_commands import reset_client

    reset_client(conn)
    if conn.monitoring:
        from gateway.monitor import monitor_gone

        conn.monitoring = False
        monitor_gone(conn.gateway, conn)
    default = conn.gateway.acl.users[b"default"]
    conn.user = b"default"
    conn.authenticated = default.enabled and default.nopass
    conn.fast_path = conn.authenticated and default.unrestricted
    conn.parser.authenticated = conn.authenticated
    return Simple(b"RESET")


def _check_password(conn: ClientConnection, user: bytes, password: bytes) -> None:
    from gateway.acl_commands import authenticate

    authenticate(conn, user, password)


@command("AUTH [username] password", -2, "noscript loading stale fast no_auth allow_busy",
         acl="@fast @connection", route=G, group="connection",
         summary="Authenticate to the server")
def auth(conn: ClientConnection, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise RedisError(errors.SYNTAX)
    if len(argv) == 2 and conn.gateway.acl.users[b"default"].nopass:
        raise RedisError(
            "ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?"
        )
    user, password = (b"default", argv[1]) if len(argv) == 2 else (argv[1], argv[2])
    _check_password(conn, user, password)
    return OK


def _valid_name(name: bytes) -> None:
    if any(c < 33 or c > 126 for c in name):
        raise RedisError("ERR Client names cannot contain spaces, newlines or special characters.")


@command("HELLO [protover [AUTH username password] [SETNAME clientname]]", -1,
         "noscript loading stale fast no_auth allow_busy", acl="@fast @connection",
         route=G, group="connection", since="6.0.0", summary="Handshake with Redis")
def hello(conn: ClientConnection, argv: list[bytes]) -> Any:
    version = 0
    if len(argv) >= 2:
        parsed = string2ll(argv[1])
        if parsed is None:
            raise RedisError("ERR Protocol version is not an integer or out of range")
        if parsed < 2 or parsed > 3:
            raise RedisError(errors.NOPROTO)
        version = parsed
    credentials = name = None
    i = 2
    while i < len(argv):
        more = len(argv) - 1 - i
        opt = argv[i].upper()
        if opt == b"AUTH" and more >= 2:
            credentials = (argv[i + 1], argv[i + 2])
            i += 3
        elif opt == b"SETNAME" and more >= 1:
            name = argv[i + 1]
            _valid_name(name)
            i += 2
        else:
            raise RedisError(f"ERR Syntax error in HELLO option '{argv[i].decode('latin-1')}'")
    if credentials:
        _check_password(conn, *credentials)
    if not conn.authenticated:
        raise RedisError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
            "select the RESP protocol version at the same time"
        )
    if name is not None:
        conn.name = name
    if version:
        conn.resp3 = version == 3
    return {
        b"server": b"redis",
        b"version": b"7.0.15",
        b"proto": 3 if conn.resp3 else 2,
        b"id": conn.id,
        b"mode": b"standalone",
        b"role": b"master",
        b"modules": [],
    }


@command("TIME", 1, "loading stale fast", acl="@fast", route=G, group="server", since="2.6.0",
         summary="Return the current server time")
def time_(conn: ClientConnection, argv: list[bytes]) -> Any:
    now = time.time_ns() // 1000
    return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]


@command("SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]", -1,
         "admin noscript loading stale no_multi allow_busy", acl="@admin @slow @dangerous",
         route=G, group="server", summary="Synchronously save the dataset to disk and then shut down the server")
def shutdown(conn: ClientConnection, argv: list[bytes]) -> Any:
    flags = {a.upper() for a in argv[1:]}
    if not flags <= {b"NOSAVE", b"SAVE", b"NOW", b"FORCE", b"ABORT"} or (
        b"NOSAVE" in flags and b"SAVE" in flags
    ):
        raise RedisError(errors.SYNTAX)
    if b"ABORT" in flags:
        if len(flags) > 1:
            raise RedisError(errors.SYNTAX)
        raise RedisError("ERR No shutdown in progress.")
    from gateway.snapshots import shutdown_with_save

    return shutdown_with_save(conn, flags)


# --- CLIENT ----------------------------------------------------------------------------

container("client", acl="@slow", group="connection", since="2.4.0",
          summary="A container for client connection commands")


@command("CLIENT ID", 2, "noscript loading stale", acl="@slow @connection", route=G,
         parent="client", since="5.0.0", summary="Returns the client ID for the current connection")
def client_id(conn: ClientConnection, argv: list[bytes]) -> Any:
    return conn.id


@command("CLIENT SETNAME connection-name", 3, "noscript loading stale", acl="@slow @connection",
         route=G, parent="client", since="2.6.9", summary="Set the current connection name")
def client_setname(conn: ClientConnection, argv: list[bytes]) -> Any:
    _valid_name(argv[2])
    conn.name = argv[2]
    return OK


@command("CLIENT GETNAME", 2, "noscript loading stale", acl="@slow @connection", route=G,
         parent="client", since="2.6.9", summary="Get the current connection name")
def client_getname(conn: ClientConnection, argv: list[bytes]) -> Any:
    return conn.name or None


@command("CLIENT SETINFO LIB-NAME libname | LIB-VER libver", 4, "noscript loading stale",
         acl="@slow @connection", route=G, parent="client", since="7.2.0",
         summary="Set client or connection specific info")
def client_setinfo(conn: ClientConnection, argv: list[bytes]) -> Any:
    attr, value = argv[2].upper(), argv[3]
    if attr not in (b"LIB-NAME", b"LIB-VER"):
        raise RedisError(f"ERR Unrecognized option '{argv[2].decode('latin-1')}'")
    if any(c < 33 or c > 126 for c in value):
        raise RedisError(f"ERR {attr.decode()} cannot contain spaces, newlines or special characters.")
    if attr == b"LIB-NAME":
        conn.lib_name = value
    else:
        conn.lib_ver = value
    return OK


@command("CLIENT UNBLOCK client-id [TIMEOUT | ERROR]", -3, "admin noscript loading stale",
         acl="@admin @slow @dangerous @connection", route=G, parent="client", since="5.0.0",
         summary="Unblock a client blocked in a blocking command from a different connection")
def client_unblock(conn: ClientConnection, argv: list[bytes]) -> Any:
    client_id = string2ll(argv[2])
    if client_id is None:
        raise RedisError(errors.NOT_INTEGER)
    how = b"TIMEOUT"
    if len(argv) == 4:
        how = argv[3].upper()
        if how not in (b"TIMEOUT", b"ERROR"):
            raise RedisError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    elif len(argv) > 4:
        raise RedisError(errors.SYNTAX)
    target = conn.gateway.clients.get(client_id)
    if target is None or not target.blocked_on:
        return 0
    conn.gateway.unblock(target, how)
    return 1


@command("CLIENT NO-EVICT ON | OFF", 3, "admin noscript loading stale",
         acl="@admin @slow @dangerous @connection", route=G, parent="client", since="7.0.0",
         summary="Set client eviction mode for the current connection")
def client_no_evict(conn: ClientConnection, argv: list[bytes]) -> Any:
    if argv[2].upper() not in (b"ON", b"OFF"):
        raise RedisError(errors.SYNTAX)
    return OK


# --- CONFIG ----------------------------------------------------------------------------

container("config", acl="@slow", group="server", since="2.0.0",
          summary="A container for server configuration commands")


@command("CONFIG GET parameter [parameter ...]", -3, "admin noscript loading stale",
         acl="@admin @slow @dangerous", route=G, parent="config", since="2.0.0",
         summary="Get the values of configuration parameters")
def config_get(conn: ClientConnection, argv: list[bytes]) -> Any:
    pairs = conn.gateway.config.match([a.decode("latin-1") for a in argv[2:]])
    return {name.encode(): value.encode("latin-1") for name, value in pairs}


@command("CONFIG SET parameter value [parameter value ...]", -4,
         "admin noscript loading stale", acl="@admin @slow @dangerous", route=G, parent="config",
         since="2.0.0", summary="Set configuration parameters to the given values")
def config_set(conn: ClientConnection, argv: list[bytes]) -> Any:
    from server.config import ConfigError

    if len(argv) % 2:
        raise RedisError(errors.SYNTAX)
    pairs = [(argv[i].decode("latin-1"), argv[i + 1].decode("latin-1"))
             for i in range(2, len(argv), 2)]
    try:
        changed = conn.gateway.config.set(pairs, check=_port_free(conn.gateway))
    except ConfigError as exc:
        raise RedisError(str(exc)) from None
    return conn.gateway.apply_config(pairs, changed)


def _port_free(gw: Any) -> Any:
    """CONFIG SET port: the new port must be one we can listen on (checked before anything
    is stored, so a failure changes nothing, as Redis rolls back)."""

    def check(name: str, value: Any) -> str | None:
        if name != "port" or int(value) == gw.port or int(value) == 0:
            return None
        from gateway.server import port_available

        return None if port_available(gw, int(value)) else "Unable to listen on this port"

    return check


@command("CONFIG REWRITE", 2, "admin noscript loading stale", acl="@admin @slow @dangerous",
         route=G, parent="config", since="2.8.0",
         summary="Rewrite the configuration file with the in memory configuration")
def config_rewrite(conn: ClientConnection, argv: list[bytes]) -> Any:
    from server.config_rewrite import rewrite

    path = conn.gateway.config.config_file
    if not path:
        raise RedisError("ERR The server is running without a config file")
    try:
        rewrite(conn.gateway.config, str(path))
    except OSError as exc:
        log.warning("CONFIG REWRITE failed: %s", exc.strerror)
        raise RedisError(f"ERR Rewriting config file: {exc.strerror}") from None
    log.info("CONFIG REWRITE executed with success.")
    return OK


@command("CONFIG RESETSTAT", 2, "admin noscript loading stale", acl="@admin @slow @dangerous",
         route=G, parent="config", since="2.0.0", summary="Reset the stats returned by INFO")
def config_resetstat(conn: ClientConnection, argv: list[bytes]) -> Any:
    from gateway.stats_commands import reset_everywhere

    return reset_everywhere(conn.gateway, conn)


# --- SCAN ------------------------------------------------------------------------------

SHARD_BITS = 10
SCAN_VERSION_LIMIT = (1 << 32) - 2  # a start version travels in 32 bits


@command("SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]", -2, "readonly",
         acl="@keyspace @read @slow", route=G, since="2.8.0",
         summary="Incrementally iterate the keys space")
def scan(conn: ClientConnection, argv: list[bytes]) -> Any:
    cursor = _parse_cursor(argv[1])
    pattern, count, kind = b"*", 10, b""
    i = 2
    while i < len(argv):
        opt = argv[i].upper()
        if i + 1 >= len(argv):
            raise RedisError(errors.SYNTAX)
        if opt == b"COUNT":
            count = string2ll(argv[i + 1]) or 0
            if string2ll(argv[i + 1]) is None:
                raise RedisError(errors.NOT_INTEGER)
            if count < 1:
                raise RedisError(errors.SYNTAX)
        elif opt == b"MATCH":
            pattern = argv[i + 1]
        elif opt == b"TYPE":
            kind = argv[i + 1]
        else:
            raise RedisError(errors.SYNTAX)
        i += 2
    return _scan_step(conn, cursor, count, pattern, kind)


def _parse_cursor(raw: bytes) -> int:
    if not raw.isdigit() or int(raw) >= 2**64:
        raise RedisError(errors.INVALID_CURSOR)
    return int(raw)


async def _scan_step(conn: ClientConnection, cursor: int, count: int, pattern: bytes,
                     kind: bytes) -> Any:
    """Cursor = ``inner << SHARD_BITS | shard``.  Inside a shard, ``inner`` is that shard's
    cursor (>= 2**32: it names a snapshot); at a shard's start it is the slot-map version the
    scan started at plus two (1: unknown), so each shard also returns the keys it gave away
    to shards the scan may have passed (shard/scan.py).  Cursor 0 starts at shard 0 with this
    gateway's version.  Keys stay within 62 bits: a plain unsigned decimal cursor."""
    links = conn.gateway.links
    shard = cursor & ((1 << SHARD_BITS) - 1)
    inner = cursor >> SHARD_BITS
    if shard >= len(links.links):
        return [b"0", []]
    if inner == 0:
        since = links.map_version
    else:
        since = inner - 2 if inner >> 32 == 0 else -1  # inside a shard its snapshot knows
    reply = await links.request(
        links.links[shard], wire.meta(conn.db, conn.resp3, structured=True),
        [b"__scan", b"%d" % (inner if inner >> 32 else 0), b"%d" % count, pattern, kind,
         b"%d" % since],
    )
    if isinstance(reply, RedisError):
        raise reply
    next_inner, keys, since = reply
    if next_inner:
        following = (next_inner << SHARD_BITS) | shard
    elif shard + 1 < len(links.links):
        start = since + 2 if since < SCAN_VERSION_LIMIT else 1  # 1: unknown, count every move
        following = (start << SHARD_BITS) | (shard + 1)
    else:
        following = 0
    return [b"%d" % following, keys]


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


# CLIENT LIST / INFO / KILL live in their own module; it needs the container above.
from gateway.client_list import client_line as client_line  # noqa: E402  (re-exported)
