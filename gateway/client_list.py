"""CLIENT LIST, CLIENT INFO and CLIENT KILL over the clients of every gateway.

The answering gateway handles its own clients at once (so the caller's line shows the state
at the time of the call, as in Redis) and asks the other gateways through gateway/peers.py.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gateway import peers
from shard import errors
from shard.errors import RedisError
from shard.numbers import string2ll
from shard.reply import OK, Verbatim
from shard.table import GATEWAY, command

if TYPE_CHECKING:
    from gateway.connection import ClientConnection

G = GATEWAY


def client_line(conn: ClientConnection, me: ClientConnection | None,
                me_argv: list[bytes] | None = None) -> bytes:
    now = time.time()
    qbuf = conn.parser.buffered
    if conn is me and me_argv is not None:  # Redis still holds the running command's bytes
        qbuf += sum(len(a) + len(str(len(a))) + 5 for a in me_argv) + len(str(len(me_argv))) + 3
    transport = conn.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    fd = sock.fileno() if sock is not None else -1
    omem = transport.get_write_buffer_size() if transport is not None and not conn.closing else 0
    from gateway.pubsub_commands import subscription_counts

    sub, psub, ssub = subscription_counts(conn)
    flags = (("O" if conn.monitoring else "") + ("x" if conn.multi is not None else "")
             + ("b" if conn.blocked_on else "") + ("P" if sub + psub + ssub else ""))
    command = me_argv and b"|".join(a.lower() for a in me_argv[:2]) if conn is me else None
    fields = [
        f"id={conn.id}", f"addr={conn.addr}", f"laddr={conn.laddr}", f"fd={fd}",
        f"name={conn.name.decode('latin-1')}", f"age={int(now - conn.created)}",
        f"idle={int(now - conn.last_interaction)}", f"flags={flags or 'N'}", f"db={conn.db}",
        f"sub={sub}", f"psub={psub}", f"ssub={ssub}",
        f"multi={len(conn.multi) if conn.multi is not None else -1}", f"qbuf={qbuf}",
        f"qbuf-free={max(0, 32768 - qbuf) if qbuf else 0}", "argv-mem=0", "multi-mem=0",
        f"rbs={max(qbuf, 1024)}", "rbp=0", "obl=0",
        f"oll={len(conn.replies)}", f"omem={omem}", f"tot-mem={qbuf + omem}",
        f"events=r{'w' if omem else ''}",
        f"cmd={(command or conn.last_command).decode('latin-1')}",
        f"user={conn.user.decode('latin-1')}", "redir=-1", f"resp={3 if conn.resp3 else 2}",
        f"lib-name={conn.lib_name.decode('latin-1')}", f"lib-ver={conn.lib_ver.decode('latin-1')}",
    ]
    return " ".join(fields).encode()


@command("CLIENT INFO", 2, "noscript loading stale", acl="@slow @connection", route=G,
         parent="client", since="6.2.0", summary="Returns information about the current client connection.")
def client_info(conn: ClientConnection, argv: list[bytes]) -> Any:
    return Verbatim(client_line(conn, conn, argv) + b"\n")


@command("CLIENT LIST [TYPE NORMAL | MASTER | REPLICA | PUBSUB] [ID client-id [client-id ...]]",
         -2, "admin noscript loading stale", acl="@admin @slow @dangerous @connection", route=G,
         parent="client", since="2.4.0", summary="Get the list of client connections")
def client_list(conn: ClientConnection, argv: list[bytes]) -> Any:
    """The clients of every gateway: this one's now, the others' through gateway/peers.py."""
    wanted: list[Any] = []
    if len(argv) > 2:
        opt = argv[2].upper()
        if opt == b"TYPE" and len(argv) == 4:
            kind = argv[3].lower()
            if kind not in (b"normal", b"master", b"replica", b"slave", b"pubsub"):
                raise RedisError(f"ERR Unknown client type '{argv[3].decode('latin-1')}'")
            wanted = [b"TYPE", kind]
        elif opt == b"ID" and len(argv) >= 4:
            ids = set()
            for raw in argv[3:]:
                value = string2ll(raw)
                if value is None or value <= 0:
                    raise RedisError("ERR Invalid client ID")
                ids.add(value)
            wanted = [b"ID", sorted(ids)]
        else:
            raise RedisError(errors.SYNTAX)
    local = _list_lines(conn.gateway, wanted, conn, argv)
    if not conn.gateway.peers.count:
        return Verbatim(local)

    async def everywhere() -> Any:
        return Verbatim(local + b"".join(a for a in await conn.gateway.peers.ask("client_list",
                                                                                  wanted) if a))

    return everywhere()


def _list_lines(gw: Any, wanted: list[Any], me: ClientConnection | None = None,
                argv: list[bytes] | None = None) -> bytes:
    clients = list(gw.clients.values())
    if wanted and wanted[0] == b"TYPE":
        clients = [c for c in clients if _client_type(c) == wanted[1]]
    elif wanted:
        ids = set(wanted[1])
        clients = [c for c in clients if c.id in ids]
    return b"".join(client_line(c, me, argv) + b"\n" for c in clients)


@command("CLIENT KILL ip:port | [ID client-id] [TYPE type] [USER username] [ADDR ip:port] [LADDR ip:port] [SKIPME yes/no]",
         -3, "admin noscript loading stale", acl="@admin @slow @dangerous @connection", route=G,
         parent="client", since="2.4.0", summary="Kill the connection of a client")
def client_kill(conn: ClientConnection, argv: list[bytes]) -> Any:
    """Clients of every gateway: this one's now, the others' through gateway/peers.py."""
    gw = conn.gateway
    if len(argv) == 3:
        filters: list[tuple[bytes, bytes]] = [(b"ADDR", argv[2])]
        old_style = True
    else:
        filters, skipme = _kill_filters(gw, argv)
        old_style = False
        if skipme:
            filters.append((b"SKIP", b"%d" % conn.id))
    killed = _kill_matching(gw, filters, conn)
    if not gw.peers.count:
        return _kill_reply(killed, old_style)

    async def everywhere() -> Any:
        answers = await gw.peers.ask("client_kill", filters)
        return _kill_reply(killed + sum(a for a in answers if isinstance(a, int)), old_style)

    return everywhere()


def _kill_reply(killed: int, old_style: bool) -> Any:
    if not old_style:
        return killed
    if not killed:
        raise RedisError("ERR No such client")
    return OK


def _kill_filters(gw: Any, argv: list[bytes]) -> tuple[list[tuple[bytes, bytes]], bool]:
    if len(argv) % 2:
        raise RedisError(errors.SYNTAX)
    skipme = True
    filters = []
    for i in range(2, len(argv), 2):
        opt, value = argv[i].upper(), argv[i + 1]
        if opt == b"ID":
            wanted = string2ll(value)
            if wanted is None or wanted <= 0:
                raise RedisError("ERR client-id should be greater than 0")
        elif opt == b"USER":
            if value not in gw.acl.users:
                raise RedisError(f"ERR No such user '{value.decode('latin-1')}'")
        elif opt == b"TYPE":
            value = value.lower()
            if value not in (b"normal", b"master", b"replica", b"slave", b"pubsub"):
                raise RedisError(f"ERR Unknown client type '{argv[i + 1].decode('latin-1')}'")
        elif opt == b"SKIPME":
            if value.lower() not in (b"yes", b"no"):
                raise RedisError(errors.SYNTAX)
            skipme = value.lower() == b"yes"
            continue
        elif opt not in (b"ADDR", b"LADDR"):
            raise RedisError(errors.SYNTAX)
        filters.append((opt, value))
    return filters, skipme


def _kill_matching(gw: Any, filters: list[tuple[bytes, bytes]],
                   me: ClientConnection | None = None) -> int:
    chosen = list(gw.clients.values())
    for opt, value in filters:
        text = value.decode("latin-1")
        if opt == b"ID":
            chosen = [c for c in chosen if c.id == int(value)]
        elif opt == b"ADDR":
            chosen = [c for c in chosen if c.addr == text]
        elif opt == b"LADDR":
            chosen = [c for c in chosen if c.laddr == text]
        elif opt == b"USER":
            chosen = [c for c in chosen if c.user == value]
        elif opt == b"TYPE":
            chosen = [c for c in chosen if _client_type(c) == value]
        elif opt == b"SKIP":
            chosen = [c for c in chosen if c.id != int(value)]
    for victim in chosen:
        if me is not None and victim is me:
            victim.close_after_reply = True
        else:
            victim.close()
    return len(chosen)


def _client_type(conn: ClientConnection) -> bytes:
    return b"pubsub" if conn.pubsub is not None and conn.pubsub.total() else b"normal"


def _peer_list(gw: Any, wanted: Any) -> bytes:
    return _list_lines(gw, [bytes(w) if isinstance(w, bytes) else w for w in wanted or []])


def _peer_kill(gw: Any, filters: Any) -> int:
    return _kill_matching(gw, [(bytes(a), bytes(b)) for a, b in filters])


peers.HANDLERS["client_list"] = _peer_list
peers.HANDLERS["client_kill"] = _peer_kill
