"""The write effects of a shard: what its commands changed, in a form that replays exactly.

The executor asks :class:`Effects` for a mark before a command runs and hands it the command
afterwards; when the keyspace's ``dirty`` counter moved (Redis propagates only commands that
changed the dataset) the command is recorded as ``(db, argv)``: as executed when it is
deterministic, rewritten by :data:`REWRITERS` otherwise (relative expiry times become
absolute, SPOP becomes SREM of what it removed, INCRBYFLOAT becomes SET of its result, a
blocking pop served later becomes its non-blocking form).  Keys that expire or are evicted
are recorded as DEL.  A script records the commands it ran (they pass through the executor
themselves), and a transaction's or a script's effects are wrapped in MULTI/EXEC so a replay
applies them whole.

The append-only log consumes this stream (``persistence/aof.py``); replication will too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Effect = tuple[int, list[bytes]]  # (db, argv)
MULTI: list[bytes] = [b"multi"]
EXEC: list[bytes] = [b"exec"]


class Effects:
    """The effects recorded since the last :meth:`take`, in execution order."""

    def __init__(self) -> None:
        self.pending: list[Effect] = []

    def record(self, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
        """A command that changed the dataset ran in ``db`` and answered ``value``."""
        rewrite = REWRITERS.get(argv[0])
        if rewrite is None:
            self.pending.append((db.index, argv))
        else:
            rewrite(self, mark, db, argv, value)

    def deleted(self, db: int, key: bytes) -> None:
        """A key expired or was evicted."""
        self.pending.append((db, [b"del", key]))

    def atomic(self, mark: int) -> None:
        """Wrap the effects recorded since ``mark`` so that a replay applies them whole."""
        pending = self.pending
        if len(pending) - mark > 1:
            db = pending[mark][0]
            pending.insert(mark, (db, MULTI))
            pending.append((pending[-1][0], EXEC))

    def take(self) -> list[Effect]:
        taken, self.pending = self.pending, []
        return taken


Rewriter = Callable[[Effects, int, Any, list[bytes], Any], None]


def _expiry_state(effects: Effects, db: Any, key: bytes) -> None:
    """The key's expiry as it is now: absolute PEXPIREAT, or DEL when the key is gone."""
    if key not in db.data:
        effects.pending.append((db.index, [b"del", key]))
        return
    when = db.expires.get(key)
    if when is None:
        effects.pending.append((db.index, [b"persist", key]))
    else:
        effects.pending.append((db.index, [b"pexpireat", key, b"%d" % when]))


def _expire(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
    _expiry_state(effects, db, argv[1])


def _getex(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
    _expiry_state(effects, db, argv[1])


_SET_TTL_OPTIONS = {b"ex", b"px", b"exat", b"pxat"}


def _set(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
    """SET with a relative or absolute expiry: SET key value [NX|XX] PXAT when."""
    options = [a.lower() for a in argv[3:]]
    if not _SET_TTL_OPTIONS.intersection(options):
        effects.pending.append((db.index, argv))
        return
    kept = [a for a in options if a in (b"nx", b"xx")]
    effects.pending.append((db.index, [b"set", argv[1], argv[2], *kept, *_pxat(db, argv[1])]))


def _pxat(db: Any, key: bytes) -> list[bytes]:
    when = db.expires.get(key)
    return [b"pxat", b"%d" % when] if when is not None else []


def _setex(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
    effects.pending.append((db.index, [b"set", argv[1], argv[3], *_pxat(db, argv[1])]))


def _incrbyfloat(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
    effects.pending.append((db.index, [b"set", argv[1], value, b"keepttl"]))


def _hincrbyfloat(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
    effects.pending.append((db.index, [b"hset", argv[1], argv[2], value]))


def _spop(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
    members = [value] if type(value) is bytes else list(value or ())
    if members:
        effects.pending.append((db.index, [b"srem", argv[1], *members]))


def _restore(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
    """RESTORE with a relative ttl: the same with the absolute time and ABSTTL."""
    options = [a.lower() for a in argv[4:]]
    if argv[2] == b"0" or b"absttl" in options:
        effects.pending.append((db.index, argv))
        return
    when = db.expires.get(argv[1])
    if when is None:  # a ttl in the past created nothing
        return
    effects.pending.append((db.index, [b"restore", argv[1], b"%d" % when, argv[3], *argv[4:],
                                       b"absttl"]))


def _import(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
    """A key moved in from another shard (cross-shard RENAME, COPY, SMOVE ...): a RESTORE
    with Redis' DUMP payload, which a replica (also a real Redis) understands."""
    from persistence import rdb
    from shard.rdb_values import to_rdb
    from shard.values import decode_value

    key, kind, payload, when = argv[1], argv[2], argv[3], int(argv[4])
    dumped = rdb.dump_payload(*to_rdb(decode_value(kind, payload)))
    effects.pending.append((int(argv[6]), [b"restore", key, b"%d" % max(when, 0), dumped,
                                           b"replace", b"absttl"]))


def _pop_served(name: bytes) -> Rewriter:
    """BLPOP/BRPOP/BZPOPMIN/BZPOPMAX key ... timeout: the same pop of the key served."""

    def rewrite(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
        effects.pending.append((db.index, [name, value[0]]))

    return rewrite


def _drop_timeout_last(name: bytes) -> Rewriter:
    """BRPOPLPUSH/BLMOVE ... timeout: the same move without the timeout."""

    def rewrite(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
        effects.pending.append((db.index, [name, *argv[1:-1]]))

    return rewrite


def _drop_timeout_first(name: bytes) -> Rewriter:
    """BLMPOP/BZMPOP timeout numkeys ...: LMPOP/ZMPOP numkeys ..."""

    def rewrite(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
        effects.pending.append((db.index, [name, *argv[2:]]))

    return rewrite


def _script(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
    """A script's commands recorded themselves: keep them, atomically."""
    effects.atomic(mark)


def _ran_others(effects: Effects, mark: int, db: Any, argv: list[bytes], value: Any) -> None:
    """Intent bookkeeping that ran entries which had waited for it (they recorded
    themselves): nothing of its own to replay."""


REWRITERS: dict[bytes, Rewriter] = {
    b"__unlock": _ran_others, b"__hello": _ran_others, b"__lock": _ran_others,
    b"expire": _expire, b"pexpire": _expire, b"expireat": _expire, b"pexpireat": _expire,
    b"getex": _getex,
    b"set": _set, b"setex": _setex, b"psetex": _setex,
    b"incrbyfloat": _incrbyfloat, b"hincrbyfloat": _hincrbyfloat,
    b"spop": _spop,
    b"restore": _restore, b"__import": _import,
    b"blpop": _pop_served(b"lpop"), b"brpop": _pop_served(b"rpop"),
    b"bzpopmin": _pop_served(b"zpopmin"), b"bzpopmax": _pop_served(b"zpopmax"),
    b"brpoplpush": _drop_timeout_last(b"rpoplpush"), b"blmove": _drop_timeout_last(b"lmove"),
    b"blmpop": _drop_timeout_first(b"lmpop"), b"bzmpop": _drop_timeout_first(b"zmpop"),
    b"eval": _script, b"evalsha": _script, b"eval_ro": _script, b"evalsha_ro": _script,
    b"fcall": _script, b"fcall_ro": _script,
}


def encode_command(argv: list[bytes]) -> bytes:
    """One command in RESP, as Redis writes its append-only file."""
    parts = [b"*%d\r\n" % len(argv)]
    for arg in argv:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def encode_effects(effects: list[Effect], db: int) -> tuple[bytes, int]:
    """Effects in RESP with a SELECT before each change of database; answers the bytes and
    the database selected at their end (-1 before anything was selected)."""
    out: list[bytes] = []
    for effect_db, argv in effects:
        if effect_db != db:
            out.append(encode_command([b"select", b"%d" % effect_db]))
            db = effect_db
        out.append(encode_command(argv))
    return b"".join(out), db
