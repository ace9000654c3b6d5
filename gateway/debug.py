"""DEBUG: the subset Redis' own test suite leans on, behind ``enable-debug-command``.

* ``SLEEP seconds``: every shard sleeps that long at once (Redis' whole server stops).
* ``SET-ACTIVE-EXPIRE 0|1``: the shards' active expiry cycle off / on.
* ``OBJECT key``: Redis' line (address, encoding, serialized length, LRU idle).
* ``RELOAD [NOSAVE]``: SAVE through the persistence code, then every shard empties itself and
  loads its keys back from the file (a round trip through the RDB codec).
* ``CHANGE-REPL-ID``, ``QUICKLIST-PACKED-THRESHOLD size``, ``SET-SKIP-CHECKSUM-VALIDATION``,
  ``STRINGMATCH-LEN``: accepted, nothing to change here.
Anything else answers Redis' unknown-subcommand error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway import cross
from shard import wire
from shard.errors import RedisError
from shard.reply import OK
from shard.table import GATEWAY, command

if TYPE_CHECKING:
    from gateway.connection import ClientConnection

NOT_ALLOWED = (
    'ERR DEBUG command not allowed. If the enable-debug-command option is set to "local", you '
    "can run it from a local connection, otherwise you need to set this option in the "
    "configuration file, and then restart the server."
)
_NO_OP = {b"CHANGE-REPL-ID": 2, b"QUICKLIST-PACKED-THRESHOLD": 3,
          b"SET-SKIP-CHECKSUM-VALIDATION": 3, b"STRINGMATCH-LEN": 3}
HELP = [
    b"DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CHANGE-REPL-ID", b"    Accepted; Atoll has no replication id to change yet.",
    b"OBJECT <key>", b"    Show low level info about the `key` and associated value.",
    b"RELOAD [NOSAVE]", b"    Save the RDB on disk and reload it back to memory.",
    b"SET-ACTIVE-EXPIRE <0|1>", b"    Setting it to 0 disables expiring keys in background.",
    b"SLEEP <seconds>", b"    Stop the server for <seconds>. Decimals allowed.",
    b"HELP", b"    Print this help.",
]


def debug_allowed(conn: ClientConnection) -> bool:
    setting = str(conn.gateway.config.value("enable-debug-command"))
    if setting == "yes":
        return True
    local = conn.addr.startswith(("127.0.0.1:", "[::1]:")) or not conn.addr
    return setting == "local" and local


@command("DEBUG subcommand [argument ...]", -2, "admin noscript loading stale",
         acl="@admin @slow @dangerous", route=GATEWAY, group="server", since="1.0.0",
         summary="A container for debugging commands")
def debug(conn: ClientConnection, argv: list[bytes]) -> Any:
    if not debug_allowed(conn):
        raise RedisError(NOT_ALLOWED)
    sub = argv[1].upper()
    if sub == b"HELP" and len(argv) == 2:
        return HELP
    if sub == b"SLEEP" and len(argv) == 3:
        return _everywhere(conn, [b"__debug", b"SLEEP", b"%f" % _float(argv[2])])
    if sub == b"SET-ACTIVE-EXPIRE" and len(argv) == 3:
        flag = b"1" if _int(argv[2]) else b"0"
        return _everywhere(conn, [b"__debug", b"ACTIVE-EXPIRE", flag])
    if sub == b"OBJECT" and len(argv) == 3:
        gw = conn.gateway
        meta = wire.meta(conn.db, conn.resp3, structured=True)
        answer = gw.links.request(gw.links.shard_of(argv[2]), meta,
                                  [b"__debug", b"OBJECT", argv[2]])

        async def object_line() -> Any:
            value = await answer
            if isinstance(value, RedisError):
                raise value
            return value

        return object_line()
    if sub == b"RELOAD":
        return _reload(conn, [a.upper() for a in argv[2:]])
    if sub in _NO_OP and len(argv) == _NO_OP[sub]:
        return OK
    raise RedisError(f"ERR unknown subcommand '{argv[1].decode('latin-1')}'. Try DEBUG HELP.")


async def _everywhere(conn: ClientConnection, argv: list[bytes]) -> Any:
    for part in await cross.all_shards(conn.gateway, conn, argv):
        if isinstance(part, RedisError):
            raise part
    return OK


async def _reload(conn: ClientConnection, options: list[bytes]) -> Any:
    if any(o not in (b"NOSAVE", b"NOFLUSH", b"MERGE") for o in options):
        raise RedisError("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
    if b"NOSAVE" not in options:
        from gateway.snapshots import snapshots_of

        if not await snapshots_of(conn.gateway).start(background=False):
            raise RedisError("ERR Error trying to save the DB")
    return await _everywhere(conn, [b"__debug", b"RELOAD"])


def _float(raw: bytes) -> float:
    try:
        return max(float(raw), 0.0)
    except ValueError:
        return 0.0  # strtod: no number is zero


def _int(raw: bytes) -> int:
    digits = raw.lstrip()[:1] in (b"-", b"+") or raw.strip()[:1].isdigit()
    try:
        return int(raw) if digits else 0
    except ValueError:
        return 0  # atoi: no number is zero
