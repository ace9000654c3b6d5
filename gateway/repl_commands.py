"""Replication commands: SYNC, PSYNC, REPLCONF, WAIT, ROLE, REPLICAOF/SLAVEOF.

They run in two places.  In a gateway (``conn.gateway.repl_link`` set) SYNC/PSYNC/REPLCONF
hand the connection to the replication actor and WAIT/ROLE/REPLICAOF ask it
(``gateway/repl_link.py``).  In the actor (a headless gateway, ``replication/actor.py``) they
run against the master side (``replication/master.py``) and the replica side
(``replication/replica.py``).  This module parses arguments and words errors as Redis does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway import cross
from replication.master import master_of
from shard import errors
from shard.errors import RedisError
from shard.reply import OK, Simple
from shard.table import GATEWAY, command

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.server import Gateway


def _replica_state(conn: ClientConnection) -> Any:
    from replication.replica import replica_of

    return replica_of(conn.gateway)


def _remote(conn: ClientConnection) -> Any:
    """The gateway's link to the replication actor; None inside the actor."""
    return getattr(conn.gateway, "repl_link", None)


def _start_sync(conn: ClientConnection, argv: list[bytes], psync: bool) -> Any:
    remote = _remote(conn)
    if remote is not None:
        return remote.hand_off(conn, argv)
    master = master_of(conn.gateway)
    link = master.replicas.get(conn.id)
    if link is not None and link.state != "none":
        return cross.NO_REPLY  # already a replica: Redis ignores it
    replica = _replica_state(conn)
    if replica.host and not replica.connected():
        raise RedisError(errors.NOMASTERLINK)
    if any(item is not None and not isinstance(item, bytes) for item in conn.replies):
        raise RedisError(errors.SYNC_PENDING_OUTPUT)
    if psync:
        try:
            offset = int(argv[2])
        except ValueError:
            offset = -1
        if master.try_partial(conn, argv[1], offset):
            return cross.NO_REPLY
    return master.full_sync(conn, psync)


@command("SYNC", 1, "admin noscript no_async_loading no_multi", acl="@admin @slow @dangerous",
         route=GATEWAY, group="server", summary="Internal command used for replication")
def sync(conn: ClientConnection, argv: list[bytes]) -> Any:
    """SYNC"""
    return _start_sync(conn, argv, psync=False)


@command("PSYNC replicationid offset", -3, "admin noscript no_async_loading no_multi",
         acl="@admin @slow @dangerous", route=GATEWAY, group="server",
         summary="Internal command used for replication")
def psync(conn: ClientConnection, argv: list[bytes]) -> Any:
    """PSYNC replicationid offset"""
    return _start_sync(conn, argv, psync=True)


@command("REPLCONF [option value ...]", -1, "admin noscript loading stale allow_busy",
         acl="@admin @slow @dangerous", route=GATEWAY, group="server",
         summary="An internal command for configuring the replication stream")
def replconf(conn: ClientConnection, argv: list[bytes]) -> Any:
    """REPLCONF [option value ...]"""
    if len(argv) % 2 == 0:
        raise RedisError(errors.SYNTAX)
    remote = _remote(conn)
    if remote is not None:
        return remote.hand_off(conn, argv)
    master = master_of(conn.gateway)
    for at in range(1, len(argv), 2):
        option, value = argv[at].lower(), argv[at + 1]
        if option == b"listening-port":
            master.link_of(conn).port = _integer(value)
        elif option == b"ip-address":
            master.link_of(conn).ip = value.decode("latin-1")
        elif option == b"capa":
            master.link_of(conn).capa.add(value.lower())
        elif option == b"ack":
            try:
                master.ack(conn, int(value))
            except ValueError:
                pass
            return cross.NO_REPLY
        elif option == b"getack":
            _replica_state(conn).getack(conn)
            return cross.NO_REPLY
        elif option == b"rdb-only":
            flag = _integer(value)
            if flag not in (0, 1):
                raise RedisError("ERR value is out of range, must be positive")
            master.link_of(conn).rdb_only = flag == 1
        elif option == b"rdb-filter-only":
            pass
        else:
            raise RedisError(errors.REPLCONF_UNKNOWN.format(option=argv[at].decode("latin-1")))
    return OK


def _integer(value: bytes) -> int:
    try:
        return int(value)
    except ValueError:
        raise RedisError(errors.NOT_INTEGER) from None


@command("WAIT numreplicas timeout", 3, "noscript", acl="@slow @connection", route=GATEWAY,
         group="generic", summary="Wait for the synchronous replication of all the write "
         "commands sent in the context of the current connection")
def wait(conn: ClientConnection, argv: list[bytes]) -> Any:
    """WAIT numreplicas timeout"""
    remote = _remote(conn)
    if remote.is_replica if remote is not None else _replica_state(conn).host:
        raise RedisError(errors.WAIT_ON_REPLICA)
    wanted = _integer(argv[1])
    try:
        timeout = int(argv[2])
    except ValueError:
        raise RedisError(errors.TIMEOUT_NOT_INTEGER) from None
    if timeout < 0:
        raise RedisError(errors.TIMEOUT_NEGATIVE)
    if remote is not None:
        return _wait_remote(conn, remote, wanted, timeout)
    master = master_of(conn.gateway)
    count = master.acknowledged(master.offset)
    if count >= wanted or conn.multi is not None:
        return count
    return master.wait(wanted, timeout)


async def _wait_remote(conn: ClientConnection, remote: Any, wanted: int, timeout: int) -> Any:
    # A barrier through our own shard links first: the releases of this client's cross-shard
    # writes (which put their effects in the stream, shard/replication.py) have run.
    await cross.all_shards(conn.gateway, conn, [b"__tx", b"0"])
    return await remote.wait(wanted, timeout, conn.multi is not None)


@command("ROLE", 1, "noscript loading stale fast", acl="@admin @fast @dangerous", route=GATEWAY,
         group="server", summary="Return the role of the instance in the context of replication")
def role(conn: ClientConnection, argv: list[bytes]) -> Any:
    """ROLE"""
    remote = _remote(conn)
    if remote is not None:
        return remote.request("role")
    replica = _replica_state(conn)
    if replica.host:
        return replica.role()
    return master_of(conn.gateway).role()


@command("REPLICAOF host port", 3, "admin noscript stale no_async_loading",
         acl="@admin @slow @dangerous", route=GATEWAY, group="server",
         summary="Make the server a replica of another instance, or promote it as master.")
def replicaof(conn: ClientConnection, argv: list[bytes]) -> Any:
    """REPLICAOF host port | NO ONE"""
    remote = _remote(conn)
    if remote is not None:
        _check_replicaof(argv[1], argv[2])

        async def forward() -> Any:
            return Simple((await remote.request("replicaof", argv[1:3])).encode())

        return forward()
    link = master_of(conn.gateway).replicas.get(conn.id)
    no_one = argv[1].lower() == b"no" and argv[2].lower() == b"one"
    if not no_one and link is not None and link.state != "none":
        raise RedisError(errors.REPLICAOF_FROM_REPLICA)
    return Simple(apply_replicaof(conn.gateway, argv[1], argv[2]).encode())


def _check_replicaof(host: bytes, port: bytes) -> int:
    """The port of REPLICAOF host port (-1 for NO ONE); errors as Redis words them."""
    if host.lower() == b"no" and port.lower() == b"one":
        return -1
    try:
        number = int(port)
    except ValueError:
        raise RedisError(errors.INVALID_MASTER_PORT) from None
    if not 0 <= number <= 65535:
        raise RedisError(errors.INVALID_MASTER_PORT)
    return number


def apply_replicaof(gw: Gateway, host: bytes, port: bytes) -> str:
    """REPLICAOF in the process that replicates: the status line to answer."""
    number = _check_replicaof(host, port)
    from replication.replica import replica_of

    replica = replica_of(gw)
    if number < 0:
        if replica.host:
            replica.stop()
            _remember(gw, "")
        return "OK"
    name = host.decode("latin-1")
    if replica.host == name and replica.port == number:
        return "OK Already connected to specified master"
    replica.start(name, number)
    _remember(gw, f"{name} {number}")
    return "OK"


def _remember(gw: Gateway, target: str) -> None:
    remember = getattr(gw, "replicaof_changed", None)
    if remember is not None:
        remember(target)


@command("SLAVEOF host port", 3, "admin noscript stale no_async_loading",
         acl="@admin @slow @dangerous", route=GATEWAY, group="server",
         summary="Make the server a replica of another instance, or promote it as master.")
def slaveof(conn: ClientConnection, argv: list[bytes]) -> Any:
    """SLAVEOF host port | NO ONE"""
    return replicaof(conn, argv)


def info_replication(gw: Gateway) -> list[tuple[str, Any]]:
    """INFO replication, in Redis' order (a gateway shows what the actor last told it)."""
    if getattr(gw, "repl_link", None) is not None:
        return [(str(name), value) for name, value in gw.repl_info.get("replication", [])]
    from replication.replica import replica_of

    replica = replica_of(gw)
    master = master_of(gw)
    lines = replica.info_lines() if replica.host else [("role", "master")]
    lines += master.info_lines()
    lines.append(("master_failover_state", "no-failover"))
    lines += master.backlog_lines()
    return lines


def start_replication(gw: Gateway) -> None:
    """At start-up (gateway 0): ``replicaof`` from the config, or min-replicas-to-write."""
    from replication.replica import master_guard, replica_of

    target = str(gw.config.value("replicaof") or "")
    if target:
        host, port = target.split()
        replica_of(gw).start(host, int(port))
    else:
        gw.router.set_write_guard(master_guard(gw))


def refresh_write_guard(gw: Gateway) -> None:
    """CONFIG SET min-replicas-to-write or replica-serve-stale-data."""
    remote = getattr(gw, "repl_link", None)
    if remote is not None:
        remote.apply_state()
        return
    from replication.replica import master_guard, replica_of

    replica = replica_of(gw)
    if replica.host:
        replica.refresh_guard()
    else:
        gw.router.set_write_guard(master_guard(gw))
