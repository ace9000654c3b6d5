"""A shard whose script runs past ``busy-reply-threshold`` keeps answering.

Redis processes events from inside a slow script and answers everything with BUSY except
SCRIPT KILL and SHUTDOWN NOSAVE.  The shard does the same from the script's Lua hook
(``shard/scripting.py``): :func:`poll` drains its socket and answers each batch at once.

- client commands get ``BUSY Redis is busy running a script ...``;
- ``__script_kill`` (SCRIPT KILL, sent to every shard) is answered by the running script;
- other internal entries (intents, WATCH registrations, settings) must not be lost nor run
  in the middle of the script: they are deferred and run, under the token given to the
  gateway, as soon as the script ends.

The gateways are told when the shard becomes busy and free again (an unsolicited message
under :data:`shard.wire.BUSY_NOTICE`), so they can refuse commands the way Redis does
while a script runs, MULTI/EXEC included.
"""

from __future__ import annotations

from typing import Any

import zmq

from shard import errors, wire
from shard.errors import RedisError
from shard.reply import encode


def entered(shard: Any) -> None:
    run = shard.scripts.run if shard.scripts is not None else None
    _notify(shard, 2 if run is not None and run.is_function else 1)  # 2: a function (FCALL)


def left(shard: Any) -> None:
    """The busy script ended: tell the gateways, then run what waited for it."""
    _notify(shard, 0)
    deferred, shard.busy_deferred = shard.busy_deferred, []
    if not deferred:
        return
    ctx = shard.ctx
    saved = ctx.db, ctx.resp3, ctx.spec, shard.current_identity
    blocked = shard.blocked
    for identity, token, meta, argv in deferred:
        # The entry keeps the token the gateway already waits on, should it wait again.
        next_token, blocked.next_token = blocked.next_token, token
        shard.reuse_token = token
        reply = shard.execute_batch([[meta, argv]], identity)[0]
        shard.reuse_token = 0
        blocked.next_token = next_token
        if type(reply) not in (wire.Deferred, wire.Blocked):
            shard.outbox.append((identity, token, reply))
    ctx.db, ctx.resp3, ctx.spec, shard.current_identity = saved


def _notify(shard: Any, busy: int) -> None:
    sock = shard.busy_socket
    if sock is None or shard.scripts is None:
        return
    message = wire.pack([wire.UNSOLICITED, [[wire.BUSY_NOTICE, busy]]])
    for identity in shard.scripts.gateways:
        sock.send_multipart((identity, message))


def poll(shard: Any) -> None:
    """Answer every batch waiting on the shard's socket."""
    sock = shard.busy_socket
    if sock is None:
        return
    if shard.stop_flag and shard.scripts.run is not None:  # SIGTERM: SHUTDOWN NOSAVE
        shard.scripts.run.killed = True
    while True:
        try:
            identity, payload = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        shard.scripts.gateways.add(identity)
        batch_id, entries = wire.unpack(payload)
        replies = [_answer(shard, identity, meta, argv) for meta, argv in entries]
        sock.send_multipart((identity, wire.pack([batch_id, replies])))


def _answer(shard: Any, identity: bytes, meta: int, argv: list[Any]) -> Any:
    busy_error = RedisError(_busy_text(shard))
    if meta & wire.RUN:
        return [_reply(shard, meta, busy_error) for _ in argv]
    name = argv[0]
    if name == b"__function_stats":
        from shard.functions import stats_part

        return _reply(shard, meta, stats_part(shard))
    if name == b"__script_kill" or name == b"__function_kill":
        return _reply(shard, meta, shard.scripts.kill(name == b"__function_kill"))
    if name[:2] == b"__":
        token = shard.blocked.next_token
        shard.blocked.next_token += 1
        shard.busy_deferred.append((identity, token, meta, argv))
        return wire.Deferred(token)
    return _reply(shard, meta, busy_error)


def _busy_text(shard: Any) -> str:
    """Redis names the KILL that would help: SCRIPT KILL for EVAL, FUNCTION KILL for FCALL."""
    run = shard.scripts.run
    return errors.BUSY_FUNCTION if run is not None and run.is_function else errors.BUSY_SCRIPT


def _reply(shard: Any, meta: int, value: Any) -> Any:
    if isinstance(value, RedisError):
        shard.error_replies += 1
    if meta & wire.STRUCTURED:
        return value
    return encode(value, bool(meta & wire.RESP3))
