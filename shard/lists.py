"""List commands.  Handlers run on the shard that owns the key(s) and do no I/O.

The value class and its range/search rules are in :mod:`shard.list_value`; this module parses
arguments, checks types and keeps the keyspace's book (empty lists lose their key).
"""

from __future__ import annotations

from typing import Any

from shard import errors
from shard.context import Ctx, int_arg
from shard.errors import RedisError
from shard.list_value import ListValue
from shard.notify import GENERIC, LIST
from shard.numbers import string2ll
from shard.reply import NULL_ARRAY, OK
from shard.table import command, numkeys_at


def _list_or_none(ctx: Ctx, key: bytes) -> ListValue | None:
    value = ctx.ks.get(ctx.db, key)
    if value is not None and type(value) is not ListValue:
        raise RedisError(errors.WRONGTYPE)
    return value


def _removed(ctx: Ctx, key: bytes, lst: ListValue, count: int, event: bytes) -> None:
    """Book-keeping after ``count`` elements left ``lst``: an emptied list loses its key."""
    if ctx.events:
        ctx.notify(LIST, event, key)
    if lst:
        ctx.ks.modified(ctx.db, key)
    else:
        ctx.ks.delete(ctx.db, key)
        if ctx.events:
            ctx.notify(GENERIC, b"del", key)
    if count > 1:
        ctx.ks.dirty += count - 1  # Redis counts one change per element


def _where(raw: bytes) -> bool:
    """True for LEFT (the head), False for RIGHT; anything else is a syntax error."""
    word = raw.lower()
    if word == b"left":
        return True
    if word == b"right":
        return False
    raise RedisError(errors.SYNTAX)


def _positive(raw: bytes, message: str) -> int:
    """A long in 0..LONG_MAX; ``message`` answers both a non-number and a negative one."""
    value = string2ll(raw)
    if value is None or value < 0:
        raise RedisError(message)
    return value


# --- pushing ------------------------------------------------------------------------------


@command(
    "LPUSH key element [element ...]",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    acl="@write @list @fast",
    group="list",
    since="1.0.0",
    summary="Prepend one or multiple elements to a list",
)
def lpush(ctx: Ctx, args: list[bytes]) -> Any:
    return _push(ctx, args, head=True)


@command(
    "RPUSH key element [element ...]",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    acl="@write @list @fast",
    group="list",
    since="1.0.0",
    summary="Append one or multiple elements to a list",
)
def rpush(ctx: Ctx, args: list[bytes]) -> Any:
    return _push(ctx, args, head=False)


def _push(ctx: Ctx, args: list[bytes], head: bool) -> int:
    """LPUSH/RPUSH.  On the benchmark's hot path: one lookup, one C-level push."""
    key = args[0]
    ks = ctx.ks
    db = ctx.db
    lst = ks.get(db, key)
    if lst is None:
        lst = ListValue()
        ks.set(db, key, lst)
    elif type(lst) is ListValue:
        ks.modified(db, key)
    else:
        raise RedisError(errors.WRONGTYPE)
    if len(args) == 2:
        (lst.appendleft if head else lst.append)(args[1])
    else:
        (lst.extendleft if head else lst.extend)(args[1:])
        ks.dirty += len(args) - 2
    if ctx.events:
        ctx.notify(LIST, b"lpush" if head else b"rpush", key)
    return len(lst)


def _pushx(ctx: Ctx, args: list[bytes], head: bool) -> int:
    lst = _list_or_none(ctx, args[0])
    if lst is None:
        return 0
    if head:
        lst.extendleft(args[1:])
    else:
        lst.extend(args[1:])
    ctx.ks.modified(ctx.db, args[0])
    if len(args) > 2:
        ctx.ks.dirty += len(args) - 2
    ctx.notify(LIST, b"lpush" if head else b"rpush", args[0])
    return len(lst)


@command(
    "LPUSHX key element [element ...]",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    acl="@write @list @fast",
    group="list",
    since="2.2.0",
    summary="Prepend an element to a list, only if the list exists",
)
def lpushx(ctx: Ctx, args: list[bytes]) -> Any:
    return _pushx(ctx, args, head=True)


@command(
    "RPUSHX key element [element ...]",
    -3,
    "write denyoom fast",
    (1, 1, 1),
    acl="@write @list @fast",
    group="list",
    since="2.2.0",
    summary="Append an element to a list, only if the list exists",
)
def rpushx(ctx: Ctx, args: list[bytes]) -> Any:
    return _pushx(ctx, args, head=False)


@command(
    "LINSERT key BEFORE | AFTER pivot element",
    5,
    "write denyoom",
    (1, 1, 1),
    acl="@write @list @slow",
    group="list",
    since="2.2.0",
    summary="Insert an element before or after another element in a list",
)
def linsert(ctx: Ctx, args: list[bytes]) -> Any:
    where = args[1].lower()
    if where not in (b"before", b"after"):
        raise RedisError(errors.SYNTAX)
    lst = _list_or_none(ctx, args[0])
    if lst is None:
        return 0
    try:
        index = lst.index(args[2])
    except ValueError:
        return -1
    lst.insert(index if where == b"before" else index + 1, args[3])
    ctx.ks.modified(ctx.db, args[0])
    ctx.notify(LIST, b"linsert", args[0])
    return len(lst)


# --- popping ------------------------------------------------------------------------------


def _pop(ctx: Ctx, args: list[bytes], head: bool) -> Any:
    """LPOP/RPOP key [count]: one bulk without a count, an array with one."""
    if len(args) > 2:
        raise errors.wrong_arity(ctx.name)
    key = args[0]
    if len(args) == 1:
        lst = _list_or_none(ctx, key)
        if lst is None:
            return None
        element = lst.popleft() if head else lst.pop()
        _removed(ctx, key, lst, 1, b"lpop" if head else b"rpop")
        return element
    count = _positive(args[1], errors.MUST_BE_POSITIVE)
    lst = _list_or_none(ctx, key)
    if lst is None:
        return NULL_ARRAY
    if count == 0:
        return []
    return _pop_many(ctx, key, lst, head, count)


def _pop_many(ctx: Ctx, key: bytes, lst: ListValue, head: bool, count: int) -> list[bytes]:
    count = min(count, len(lst))
    take = lst.popleft if head else lst.pop
    out = [take() for _ in range(count)]
    _removed(ctx, key, lst, count, b"lpop" if head else b"rpop")
    return out


@command(
    "LPOP key [count]",
    -2,
    "write fast",
    (1, 1, 1),
    acl="@write @list @fast",
    group="list",
    since="1.0.0",
    summary="Remove and get the first elements in a list",
)
def lpop(ctx: Ctx, args: list[bytes]) -> Any:
    return _pop(ctx, args, head=True)


@command(
    "RPOP key [count]",
    -2,
    "write fast",
    (1, 1, 1),
    acl="@write @list @fast",
    group="list",
    since="1.0.0",
    summary="Remove and get the last elements in a list",
)
def rpop(ctx: Ctx, args: list[bytes]) -> Any:
    return _pop(ctx, args, head=False)


@command(
    "LMPOP numkeys key [key ...] LEFT | RIGHT [COUNT count]",
    -4,
    "write",
    (0, 0, 0),
    acl="@write @list @slow",
    group="list",
    since="7.0.0",
    keys_fn=numkeys_at(1),
    summary="Pop elements from a list",
)
def lmpop(ctx: Ctx, args: list[bytes]) -> Any:
    numkeys, head, count = parse_lmpop(args, 0)
    for key in args[1 : 1 + numkeys]:
        lst = _list_or_none(ctx, key)
        if lst:
            return [key, _pop_many(ctx, key, lst, head, count)]
    return NULL_ARRAY


def parse_lmpop(args: list[bytes], numkeys_index: int) -> tuple[int, bool, int]:
    """(numkeys, pop from the head, count) of ``[B]LMPOP``'s arguments from ``numkeys`` on.

    Shared with the gateway's BLMPOP, which has a timeout before ``numkeys``.
    """
    numkeys = string2ll(args[numkeys_index])
    if numkeys is None or numkeys < 1:
        raise RedisError(errors.NUMKEYS_NOT_POSITIVE)
    where_index = numkeys_index + numkeys + 1
    if where_index >= len(args):
        raise RedisError(errors.SYNTAX)
    head = _where(args[where_index])
    count = -1
    i = where_index + 1
    while i < len(args):
        if count == -1 and args[i].upper() == b"COUNT" and i + 1 < len(args):
            count = string2ll(args[i + 1]) or 0  # None (not a number) and 0 both fail
            if count < 1:
                raise RedisError(errors.COUNT_NOT_POSITIVE)
            i += 2
        else:
            raise RedisError(errors.SYNTAX)
    return numkeys, head, 1 if count == -1 else count


def _move(ctx: Ctx, src: bytes, dst: bytes, from_head: bool, to_head: bool) -> Any:
    source = _list_or_none(ctx, src)
    if source is None:
        return None
    target = _list_or_none(ctx, dst)
    element = source.popleft() if from_head else source.pop()
    if target is None:
        target = ListValue()
        ctx.ks.set(ctx.db, dst, target)
    else:
        ctx.ks.modified(ctx.db, dst)
    if to_head:
        target.appendleft(element)
    else:
        target.append(element)
    ctx.notify(LIST, b"lpush" if to_head else b"rpush", dst)
    # With src == dst the element is back already, so the list cannot be empty here.
    _removed(ctx, src, source, 1, b"lpop" if from_head else b"rpop")
    return element


@command(
    "LMOVE source destination LEFT | RIGHT LEFT | RIGHT",
    5,
    "write denyoom",
    (1, 2, 1),
    acl="@write @list @slow",
    group="list",
    since="6.2.0",
    summary="Pop an element from a list, push it to another list and return it",
)
def lmove(ctx: Ctx, args: list[bytes]) -> Any:
    from_head = _where(args[2])
    to_head = _where(args[3])
    return _move(ctx, args[0], args[1], from_head, to_head)


@command(
    "RPOPLPUSH source destination",
    3,
    "write denyoom",
    (1, 2, 1),
    acl="@write @list @slow",
    group="list",
    since="1.2.0",
    summary="Remove the last element in a list, prepend it to another list and return it",
)
def rpoplpush(ctx: Ctx, args: list[bytes]) -> Any:
    return _move(ctx, args[0], args[1], False, True)


# --- reading ------------------------------------------------------------------------------


@command(
    "LLEN key",
    2,
    "readonly fast",
    (1, 1, 1),
    acl="@read @list @fast",
    group="list",
    since="1.0.0",
    summary="Get the length of a list",
)
def llen(ctx: Ctx, args: list[bytes]) -> Any:
    lst = _list_or_none(ctx, args[0])
    return 0 if lst is None else len(lst)


@command(
    "LRANGE key start stop",
    4,
    "readonly",
    (1, 1, 1),
    acl="@read @list @slow",
    group="list",
    since="1.0.0",
    summary="Get a range of elements from a list",
)
def lrange(ctx: Ctx, args: list[bytes]) -> Any:
    start = int_arg(args[1])
    end = int_arg(args[2])
    lst = _list_or_none(ctx, args[0])
    if lst is None:
        return []
    return lst.slice(*lst.clamp(start, end))


@command(
    "LINDEX key index",
    3,
    "readonly",
    (1, 1, 1),
    acl="@read @list @slow",
    group="list",
    since="1.0.0",
    summary="Get an element from a list by its index",
)
def lindex(ctx: Ctx, args: list[bytes]) -> Any:
    lst = _list_or_none(ctx, args[0])
    if lst is None:
        return None
    index = int_arg(args[1])
    if index < 0:
        index += len(lst)
    if 0 <= index < len(lst):
        return lst[index]
    return None


@command(
    "LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]",
    -3,
    "readonly",
    (1, 1, 1),
    acl="@read @list @slow",
    group="list",
    since="6.0.6",
    summary="Return the index of matching elements on a list",
)
def lpos(ctx: Ctx, args: list[bytes]) -> Any:
    rank, count, maxlen = 1, -1, 0  # count -1: no COUNT option
    i = 2
    while i < len(args):
        option = args[i].upper()
        more = i + 1 < len(args)
        if option == b"RANK" and more:
            rank = int_arg(args[i + 1])
            if rank == 0:
                raise RedisError(errors.LPOS_RANK_ZERO)
        elif option == b"COUNT" and more:
            count = _positive(args[i + 1], errors.LPOS_COUNT_NEGATIVE)
        elif option == b"MAXLEN" and more:
            maxlen = _positive(args[i + 1], errors.LPOS_MAXLEN_NEGATIVE)
        else:
            raise RedisError(errors.SYNTAX)
        i += 2
    lst = _list_or_none(ctx, args[0])
    if lst is None:
        return None if count == -1 else []
    matches = lst.positions(args[1], rank, count, maxlen)
    if count != -1:
        return matches
    return matches[0] if matches else None


# --- changing in place --------------------------------------------------------------------


@command(
    "LSET key index element",
    4,
    "write denyoom",
    (1, 1, 1),
    acl="@write @list @slow",
    group="list",
    since="1.0.0",
    summary="Set the value of an element in a list by its index",
)
def lset(ctx: Ctx, args: list[bytes]) -> Any:
    lst = _list_or_none(ctx, args[0])
    if lst is None:
        raise RedisError(errors.NO_SUCH_KEY)
    index = int_arg(args[1])
    if index < 0:
        index += len(lst)
    if not 0 <= index < len(lst):
        raise RedisError(errors.INDEX_OUT_OF_RANGE)
    lst[index] = args[2]
    ctx.ks.modified(ctx.db, args[0])
    ctx.notify(LIST, b"lset", args[0])
    return OK


@command(
    "LREM key count element",
    4,
    "write",
    (1, 1, 1),
    acl="@write @list @slow",
    group="list",
    since="1.0.0",
    summary="Remove elements from a list",
)
def lrem(ctx: Ctx, args: list[bytes]) -> Any:
    wanted = int_arg(args[1])
    lst = _list_or_none(ctx, args[0])
    if lst is None:
        return 0
    removed = lst.remove_matches(args[2], wanted)
    if removed:
        _removed(ctx, args[0], lst, removed, b"lrem")
    return removed


@command(
    "LTRIM key start stop",
    4,
    "write",
    (1, 1, 1),
    acl="@write @list @slow",
    group="list",
    since="1.0.0",
    summary="Trim a list to the specified range",
)
def ltrim(ctx: Ctx, args: list[bytes]) -> Any:
    start = int_arg(args[1])
    end = int_arg(args[2])
    key = args[0]
    lst = _list_or_none(ctx, key)
    if lst is None:
        return OK
    removed = lst.trim(*lst.clamp(start, end))
    # Redis signals the key as modified even when nothing was trimmed (WATCH sees it).
    _removed(ctx, key, lst, removed, b"ltrim")
    return OK
