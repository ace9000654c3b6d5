"""The gateway's share of scripting: SCRIPT EXISTS/KILL/DEBUG, busy shards, scripts over
several shards.

- *Script cache.*  Every shard keeps its own cache; SCRIPT LOAD goes to all of them, and the
  first EVAL of a script seen by this gateway also loads it everywhere, so EVALSHA finds it
  on whichever shard its keys name.
- *Busy.*  A shard whose script runs past ``busy-reply-threshold`` says so (an unsolicited
  BUSY_NOTICE, see ``shard/busy.py``).  While any shard is busy the gateway refuses what
  Redis refuses during a slow script: every command but the ``allow_busy`` ones gets BUSY,
  a refused command inside MULTI dooms the transaction, and EXEC is aborted with
  ``EXECABORT Transaction discarded because of: BUSY ...``.  The hot path is switched off
  meanwhile (``router.hot`` emptied), so it pays nothing for the check.
- *Keys on several shards.*  The script runs in the gateway's scratch keyspace
  (``gateway/cross.py``) under intents on every declared key: the keys are copied in, the
  script runs with the shard handlers, what changed is written back.  Undeclared keys are
  out of reach there (the non-local-key error).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import shard.functions  # noqa: F401  (declares the FUNCTION container this module extends)
import shard.scripting  # noqa: F401  (declares the SCRIPT container this module extends)
from gateway import cross
from gateway.links import ShardLink
from shard import errors, wire
from shard.errors import RedisError
from shard.reply import OK
from shard.table import GATEWAY, TABLE, CommandSpec, command

if TYPE_CHECKING:
    from gateway.connection import ClientConnection
    from gateway.intents import Transaction
    from gateway.router import Router
    from gateway.server import Gateway

G = GATEWAY


def install(gw: Gateway) -> None:
    """Wire the busy notices of ``gw``'s shard links to its router."""
    gw.links.on_busy = lambda link, busy: busy_changed(gw, link, busy)


def busy_changed(gw: Gateway, link: ShardLink, busy: Any) -> None:
    if busy:
        gw.busy_shards.add(link.index)
    else:
        gw.busy_shards.discard(link.index)
    if busy == 2:  # a function, not a script: BUSY names FUNCTION KILL
        BUSY_FUNCTION_SHARDS.setdefault(id(gw), set()).add(link.index)
    else:
        BUSY_FUNCTION_SHARDS.get(id(gw), set()).discard(link.index)
    gw.router.refresh_hot()


def intercept(router: Router, conn: ClientConnection, spec: CommandSpec,
              argv: list[bytes]) -> bool:
    """Called for scripting commands and while a shard is busy; True when handled here."""
    gw = router.gateway
    if gw.busy_shards and "allow_busy" not in spec.flags:
        refuse_busy(conn, spec)
        return True
    name = spec.name
    if name in ("eval", "eval_ro"):
        sha = hashlib.sha1(argv[1]).hexdigest()
        if sha not in gw.known_scripts:
            gw.known_scripts.add(sha)
            gw.pause.learn_script(argv[1])
            load_everywhere(gw, argv[1])
    elif spec.parent is not None and spec.parent.name == "script":
        if name == "flush":
            gw.known_scripts.clear()
            gw.pause.read_only_scripts.clear()
        elif name == "load":
            gw.pause.learn_script(argv[2])
    return False


# Per gateway (by id): the shards whose busy script is a function.
BUSY_FUNCTION_SHARDS: dict[int, set[int]] = {}


def refuse_busy(conn: ClientConnection, spec: CommandSpec) -> None:
    """Redis' rejectCommand during a slow script."""
    from gateway.transactions import forget_watches

    text = errors.BUSY_FUNCTION if BUSY_FUNCTION_SHARDS.get(id(conn.gateway)) else errors.BUSY_SCRIPT
    if spec.name == "exec":
        conn.multi = None
        forget_watches(conn)
        line = errors.EXECABORT_BECAUSE.format(error=text)
        conn.reply(RedisError(line).line())
        return
    if conn.multi is not None:
        conn.multi_error = True
    conn.reply(RedisError(text).line())


def load_everywhere(gw: Gateway, body: bytes) -> None:
    """SCRIPT LOAD on every shard, answer ignored (EVAL reports compile errors itself)."""
    meta = wire.meta(0, False, structured=True)
    for link in gw.links.links:
        gw.links.request(link, meta, [b"script|load", b"LOAD", body])


@command("SCRIPT EXISTS sha1 [sha1 ...]", -3, "noscript", acl="@slow @scripting", route=G,
         parent="script", group="scripting", since="2.6.0",
         summary="Check existence of scripts in the script cache.")
def script_exists(conn: ClientConnection, argv: list[bytes]) -> Any:
    async def ask() -> Any:
        answers = await cross.all_shards(conn.gateway, conn, [b"__script_exists", *argv[2:]])
        cross._raise_first_error(answers)
        return [int(any(known)) for known in zip(*answers, strict=True)]

    return ask()


@command("SCRIPT KILL", 2, "noscript allow_busy", acl="@slow @scripting", route=G,
         parent="script", group="scripting", since="2.6.0",
         summary="Kill the script currently in execution.")
def script_kill(conn: ClientConnection, argv: list[bytes]) -> Any:
    """Sent to every shard; the one running a busy script answers from its hook."""
    return _kill_everywhere(conn, b"__script_kill")


async def _kill_everywhere(conn: ClientConnection, internal: bytes) -> Any:
    """SCRIPT KILL / FUNCTION KILL: OK from the shard that stopped one, else its error."""
    answers = await cross.all_shards(conn.gateway, conn, [internal])
    if any(answer == OK or answer == b"OK" for answer in answers):
        return OK
    for answer in answers:
        if isinstance(answer, RedisError) and answer.code != "NOTBUSY":
            raise answer
    raise RedisError(errors.NOTBUSY)


@command("FUNCTION KILL", 2, "noscript allow_busy", acl="@slow @scripting", route=G,
         parent="function", group="scripting", since="7.0.0",
         summary="Kill the function currently in execution.")
def function_kill(conn: ClientConnection, argv: list[bytes]) -> Any:
    """As SCRIPT KILL: the shard running a busy function answers from its hook."""
    return _kill_everywhere(conn, b"__function_kill")


@command("FUNCTION STATS", 2, "noscript allow_busy", acl="@slow @scripting", route=G,
         parent="function", group="scripting", since="7.0.0",
         summary="Return information about the function currently running")
def function_stats(conn: ClientConnection, argv: list[bytes]) -> Any:
    """Every shard holds the same libraries; the busy one (if any) tells what runs."""

    async def stats() -> Any:
        answers = await cross.all_shards(conn.gateway, conn, [b"__function_stats"])
        cross._raise_first_error(answers)
        running = None
        for part in answers:
            if part[0] == b"eval":
                raise RedisError(errors.BUSY_SCRIPT)
            if part[0] is not None:
                name, command, elapsed = part[0]
                running = {b"name": name, b"command": command, b"duration_ms": elapsed}
        libraries, functions = answers[0][1], answers[0][2]
        return {b"running_script": running,
                b"engines": {b"LUA": {b"libraries_count": libraries,
                                      b"functions_count": functions}}}

    return stats()


@command("SCRIPT DEBUG YES | SYNC | NO", 3, "noscript", acl="@slow @scripting", route=G,
         parent="script", group="scripting", since="3.2.0",
         summary="Set the debug mode for executed scripts.")
def script_debug(conn: ClientConnection, argv: list[bytes]) -> Any:
    mode = argv[2].lower()
    if mode == b"no":
        return OK
    if mode in (b"yes", b"sync"):
        raise RedisError(errors.SCRIPT_DEBUGGER)
    raise RedisError("ERR Use SCRIPT DEBUG YES/SYNC/NO")


async def across_shards(tx: Transaction, conn: ClientConnection, spec: CommandSpec,
                        argv: list[bytes], positions: list[int]) -> Any:
    """A script whose declared keys live on several shards, in the scratch keyspace."""
    if spec.name.startswith("evalsha"):
        body = await tx.call_key(argv[positions[0]], conn.db, [b"__script_body", argv[1]])
        if body is None:
            raise RedisError(errors.NOSCRIPT)
        spec = TABLE["eval_ro" if spec.name == "evalsha_ro" else "eval"]
        argv = [spec.name.encode(), body, *argv[2:]]
    elif spec.name.startswith("fcall"):
        code = await tx.call_key(argv[positions[0]], conn.db, [b"__function_code", argv[1]])
        if code is None:
            raise RedisError("ERR Function not found")
        read_only = b"1" if spec.name == "fcall_ro" else b"0"
        spec = TABLE["__fcall_with"]
        argv = [b"__fcall_with", code, read_only, *argv[1:]]
        positions = [position + 2 for position in positions]
    return await cross.via_scratch(tx, conn, spec, argv, positions)


cross.STRATEGIES["script"] = across_shards
