"""List commands driven through a ShardExecutor: no processes, a fake clock."""

from __future__ import annotations

import pytest

from shard import wire
from shard.actor import ShardExecutor
from shard.errors import NOT_INTEGER
from shard.list_value import ListValue
from shard.lists import parse_lmpop
from shard.reply import NULL_ARRAY, Simple
from shard.table import load_shard_commands
from shard.values import decode_value, encode_value
from tests.unit.shard_calls import Clock, call
from tests.unit.shard_calls import error as err

LONG_MIN = b"-9223372036854775808"
LONG_MAX = b"9223372036854775807"


def resp(ex: ShardExecutor, resp3: bool, *argv: bytes) -> bytes:
    """One command, its reply as the RESP bytes a client of that protocol gets."""
    return ex.execute_batch([[wire.meta(0, resp3), [argv[0].lower(), *argv[1:]]]])[0]


def make(ex: ShardExecutor, key: bytes, *items: bytes) -> None:
    call(ex, "del", key)
    if items:
        call(ex, "rpush", key, *items)


def lrange(ex: ShardExecutor, key: bytes) -> list[bytes]:
    return call(ex, "lrange", key, 0, -1)


WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


# --- pushing -------------------------------------------------------------------------------


def test_push_order_and_length(ex: ShardExecutor) -> None:
    assert call(ex, "lpush", b"k", b"a", b"b", b"c") == 3
    assert call(ex, "rpush", b"k", b"x", b"y") == 5
    assert call(ex, "lpush", b"k", b"z") == 6
    assert lrange(ex, b"k") == [b"z", b"c", b"b", b"a", b"x", b"y"]
    assert call(ex, "llen", b"k") == 6
    assert call(ex, "type", b"k") == Simple(b"list")


def test_pushx_only_on_existing_lists(ex: ShardExecutor) -> None:
    assert call(ex, "lpushx", b"k", b"a") == 0
    assert call(ex, "rpushx", b"k", b"a", b"b") == 0
    assert call(ex, "exists", b"k") == 0
    call(ex, "rpush", b"k", b"m")
    assert call(ex, "lpushx", b"k", b"a", b"b") == 3
    assert call(ex, "rpushx", b"k", b"y", b"z") == 5
    assert lrange(ex, b"k") == [b"b", b"a", b"m", b"y", b"z"]


def test_push_keeps_ttl_and_expired_key_starts_fresh(ex: ShardExecutor, clock: Clock) -> None:
    call(ex, "rpush", b"k", b"a")
    call(ex, "pexpire", b"k", 100)
    call(ex, "rpush", b"k", b"b")
    assert call(ex, "pttl", b"k") == 100
    clock.now += 200
    assert call(ex, "rpush", b"k", b"c") == 1
    assert call(ex, "pttl", b"k") == -1


def test_wrong_type_everywhere(ex: ShardExecutor) -> None:
    call(ex, "set", b"s", b"v")
    call(ex, "rpush", b"l", b"a")
    for argv in (
        ("lpush", b"s", b"a"),
        ("rpush", b"s", b"a"),
        ("lpushx", b"s", b"a"),
        ("rpushx", b"s", b"a"),
        ("lpop", b"s"),
        ("rpop", b"s", 2),
        ("lpop", b"s", 0),
        ("llen", b"s"),
        ("lrange", b"s", 0, -1),
        ("lindex", b"s", 0),
        ("lset", b"s", 0, b"x"),
        ("linsert", b"s", b"before", b"a", b"b"),
        ("lrem", b"s", 0, b"a"),
        ("ltrim", b"s", 0, 1),
        ("lpos", b"s", b"a"),
        ("lmove", b"s", b"l", b"left", b"right"),
        ("lmove", b"l", b"s", b"left", b"right"),
        ("rpoplpush", b"l", b"s"),
        ("lmpop", 2, b"nokey", b"s", b"left"),
    ):
        assert err(call(ex, *argv)) == WRONGTYPE, argv
    assert call(ex, "get", b"s") == b"v"
    assert lrange(ex, b"l") == [b"a"]  # a failed LMOVE popped nothing


# --- popping -------------------------------------------------------------------------------


def test_pop_single_and_empty_list_is_deleted(ex: ShardExecutor) -> None:
    make(ex, b"k", b"a", b"b", b"c")
    assert call(ex, "lpop", b"k") == b"a"
    assert call(ex, "rpop", b"k") == b"c"
    assert call(ex, "rpop", b"k") == b"b"
    assert call(ex, "exists", b"k") == 0
    assert call(ex, "lpop", b"k") is None


def test_pop_with_count(ex: ShardExecutor) -> None:
    make(ex, b"k", b"a", b"b", b"c", b"d")
    assert call(ex, "lpop", b"k", 2) == [b"a", b"b"]
    assert call(ex, "rpop", b"k", 0) == []
    assert call(ex, "rpop", b"k", 10) == [b"d", b"c"]
    assert call(ex, "exists", b"k") == 0
    assert call(ex, "lpop", b"k", 1) is NULL_ARRAY
    assert call(ex, "lpop", b"k", 0) is NULL_ARRAY  # the key lookup comes first


def test_pop_count_nulls_per_protocol(ex: ShardExecutor) -> None:
    assert resp(ex, False, b"lpop", b"none", b"3") == b"*-1\r\n"
    assert resp(ex, True, b"lpop", b"none", b"3") == b"_\r\n"
    assert resp(ex, False, b"rpop", b"none") == b"$-1\r\n"
    assert resp(ex, True, b"rpop", b"none") == b"_\r\n"
    assert resp(ex, False, b"lmpop", b"1", b"none", b"left") == b"*-1\r\n"
    assert resp(ex, True, b"lmpop", b"1", b"none", b"left") == b"_\r\n"
    call(ex, "rpush", b"k", b"a")
    assert resp(ex, True, b"lpop", b"k", b"0") == b"*0\r\n"


def test_pop_count_errors(ex: ShardExecutor) -> None:
    make(ex, b"k", b"a")
    positive = "ERR value is out of range, must be positive"
    assert err(call(ex, "lpop", b"k", -1)) == positive
    assert err(call(ex, "rpop", b"k", b"abc")) == positive
    arity = "ERR wrong number of arguments for 'lpop' command"
    assert err(call(ex, "lpop", b"k", b"1", b"2")) == arity
    assert lrange(ex, b"k") == [b"a"]


def test_lmpop(ex: ShardExecutor) -> None:
    make(ex, b"a", b"1", b"2", b"3")
    make(ex, b"b", b"x")
    assert call(ex, "lmpop", 2, b"none", b"a", b"RIGHT", b"count", 2) == [b"a", [b"3", b"2"]]
    assert call(ex, "lmpop", 2, b"b", b"a", b"left") == [b"b", [b"x"]]
    assert call(ex, "exists", b"b") == 0
    assert call(ex, "lmpop", 1, b"a", b"left", b"COUNT", 9) == [b"a", [b"1"]]
    assert call(ex, "lmpop", 2, b"a", b"b", b"left") is NULL_ARRAY


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((b"0", b"k", b"left"), "ERR numkeys should be greater than 0"),
        ((b"x", b"k", b"left"), "ERR numkeys should be greater than 0"),
        ((b"-1", b"k", b"left"), "ERR numkeys should be greater than 0"),
        ((b"3", b"k", b"left"), "ERR syntax error"),
        ((b"1", b"k", b"up"), "ERR syntax error"),
        ((b"1", b"k", b"left", b"count"), "ERR syntax error"),
        ((b"1", b"k", b"left", b"count", b"0"), "ERR count should be greater than 0"),
        ((b"1", b"k", b"left", b"count", b"x"), "ERR count should be greater than 0"),
        ((b"1", b"k", b"left", b"count", b"1", b"count", b"2"), "ERR syntax error"),
        ((b"1", b"k", b"left", b"bogus"), "ERR syntax error"),
    ],
)
def test_lmpop_errors(ex: ShardExecutor, argv: tuple[bytes, ...], message: str) -> None:
    make(ex, b"k", b"a")
    assert err(call(ex, "lmpop", *argv)) == message
    assert lrange(ex, b"k") == [b"a"]


def test_parse_lmpop_with_a_leading_timeout() -> None:
    assert parse_lmpop([b"0.5", b"2", b"a", b"b", b"right", b"count", b"3"], 1) == (2, False, 3)
    assert parse_lmpop([b"1", b"k", b"LEFT"], 0) == (1, True, 1)


def test_lmove_and_rpoplpush(ex: ShardExecutor) -> None:
    make(ex, b"src", b"a", b"b", b"c")
    assert call(ex, "lmove", b"src", b"dst", b"left", b"right") == b"a"
    assert call(ex, "lmove", b"src", b"dst", b"RIGHT", b"LEFT") == b"c"
    assert lrange(ex, b"dst") == [b"c", b"a"]
    assert call(ex, "rpoplpush", b"src", b"dst") == b"b"
    assert call(ex, "exists", b"src") == 0
    assert lrange(ex, b"dst") == [b"b", b"c", b"a"]
    assert call(ex, "rpoplpush", b"src", b"dst") is None
    assert call(ex, "lmove", b"src", b"dst", b"left", b"left") is None


def test_lmove_same_key_rotates(ex: ShardExecutor) -> None:
    make(ex, b"k", b"a", b"b", b"c")
    assert call(ex, "lmove", b"k", b"k", b"left", b"right") == b"a"
    assert lrange(ex, b"k") == [b"b", b"c", b"a"]
    assert call(ex, "rpoplpush", b"k", b"k") == b"a"
    assert lrange(ex, b"k") == [b"a", b"b", b"c"]
    make(ex, b"one", b"x")
    assert call(ex, "lmove", b"one", b"one", b"right", b"left") == b"x"
    assert lrange(ex, b"one") == [b"x"]


def test_lmove_direction_errors_come_first(ex: ShardExecutor) -> None:
    call(ex, "set", b"s", b"v")
    assert err(call(ex, "lmove", b"s", b"d", b"up", b"left")) == "ERR syntax error"
    assert err(call(ex, "lmove", b"none", b"d", b"left", b"down")) == "ERR syntax error"
    assert call(ex, "lmove", b"none", b"s", b"left", b"left") is None  # no source: no type check


# --- reading -------------------------------------------------------------------------------


def test_lrange_edges(ex: ShardExecutor) -> None:
    items = [b"%d" % i for i in range(10)]
    make(ex, b"k", *items)
    cases = [
        (0, -1), (2, 4), (-3, -1), (-100, 2), (5, 100), (7, 3), (10, 20), (-1, -1),
        (0, 0), (9, 9), (-5, 7), (8, -9), (-10, -10), (LONG_MIN, LONG_MAX), (LONG_MAX, LONG_MIN),
    ]  # fmt: skip
    for start, end in cases:
        s, e = int(start), int(end)
        if s < 0:
            s = max(s + 10, 0)
        if e < 0:
            e += 10
        expected = items[s : e + 1] if s <= e else []
        assert call(ex, "lrange", b"k", start, end) == expected, (start, end)
    assert call(ex, "lrange", b"none", 0, -1) == []
    assert err(call(ex, "lrange", b"none", b"a", 1)) == NOT_INTEGER
    assert err(call(ex, "lrange", b"k", 0, b"1.5")) == NOT_INTEGER


def test_lindex(ex: ShardExecutor) -> None:
    make(ex, b"k", b"a", b"b", b"c")
    assert [call(ex, "lindex", b"k", i) for i in (0, 2, 3, -1, -3, -4)] == [
        b"a", b"c", None, b"c", b"a", None,
    ]  # fmt: skip
    assert call(ex, "lindex", b"k", LONG_MIN) is None
    assert call(ex, "lindex", b"none", b"x") is None  # the key lookup comes first
    assert err(call(ex, "lindex", b"k", b"x")) == NOT_INTEGER


def test_lpos(ex: ShardExecutor) -> None:
    make(ex, b"k", b"a", b"b", b"a", b"c", b"a")
    assert call(ex, "lpos", b"k", b"a") == 0
    assert call(ex, "lpos", b"k", b"z") is None
    assert call(ex, "lpos", b"k", b"z", b"count", 0) == []
    assert call(ex, "lpos", b"k", b"a", b"rank", 2) == 2
    assert call(ex, "lpos", b"k", b"a", b"rank", -1) == 4
    assert call(ex, "lpos", b"k", b"a", b"rank", -2, b"count", 0) == [2, 0]
    assert call(ex, "lpos", b"k", b"a", b"count", 2) == [0, 2]
    assert call(ex, "lpos", b"k", b"a", b"count", 0, b"maxlen", 3) == [0, 2]
    assert call(ex, "lpos", b"k", b"a", b"rank", -1, b"maxlen", 1) == 4
    assert call(ex, "lpos", b"k", b"a", b"rank", -2, b"maxlen", 2) is None
    assert call(ex, "lpos", b"k", b"a", b"rank", 4) is None
    assert call(ex, "lpos", b"k", b"a", b"rank", LONG_MAX) is None
    assert call(ex, "lpos", b"k", b"a", b"RANK", 1, b"RANK", 3) == 4  # the last one wins
    assert call(ex, "lpos", b"none", b"a") is None
    assert call(ex, "lpos", b"none", b"a", b"count", 1) == []


def test_lpos_rank_long_min_matches_redis_wraparound(ex: ShardExecutor) -> None:
    make(ex, b"k", b"a", b"b", b"a", b"c", b"a")
    assert call(ex, "lpos", b"k", b"a", b"rank", LONG_MIN) == 4
    assert call(ex, "lpos", b"k", b"a", b"rank", LONG_MIN, b"count", 1) == [4, 2, 0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ((b"rank", b"0"), "ERR RANK can't be zero: use 1 to start from the first match, 2 from "
         "the second ... or use negative to start from the end of the list"),
        ((b"rank", b"x"), NOT_INTEGER),
        ((b"count", b"-1"), "ERR COUNT can't be negative"),
        ((b"count", b"x"), "ERR COUNT can't be negative"),
        ((b"maxlen", b"-1"), "ERR MAXLEN can't be negative"),
        ((b"maxlen", b"1.0"), "ERR MAXLEN can't be negative"),
        ((b"count",), "ERR syntax error"),
        ((b"bogus", b"1"), "ERR syntax error"),
        ((b"count", b"1", b"maxlen"), "ERR syntax error"),
    ],
)  # fmt: skip
def test_lpos_errors(ex: ShardExecutor, options: tuple[bytes, ...], message: str) -> None:
    call(ex, "set", b"s", b"v")
    assert err(call(ex, "lpos", b"s", b"a", *options)) == message  # before the type check
    assert err(call(ex, "lpos", b"none", b"a", *options)) == message


# --- changing in place ---------------------------------------------------------------------


def test_lset(ex: ShardExecutor) -> None:
    make(ex, b"k", b"a", b"b", b"c")
    assert call(ex, "lset", b"k", 1, b"B") == Simple(b"OK")
    assert call(ex, "lset", b"k", -1, b"C") == Simple(b"OK")
    assert lrange(ex, b"k") == [b"a", b"B", b"C"]
    assert err(call(ex, "lset", b"k", 3, b"x")) == "ERR index out of range"
    assert err(call(ex, "lset", b"k", -4, b"x")) == "ERR index out of range"
    assert err(call(ex, "lset", b"k", b"x", b"x")) == NOT_INTEGER
    assert err(call(ex, "lset", b"none", b"x", b"x")) == "ERR no such key"


def test_linsert(ex: ShardExecutor) -> None:
    make(ex, b"k", b"a", b"b", b"a")
    assert call(ex, "linsert", b"k", b"BEFORE", b"a", b"x") == 4
    assert call(ex, "linsert", b"k", b"after", b"a", b"y") == 5
    assert call(ex, "linsert", b"k", b"after", b"z", b"y") == -1
    assert lrange(ex, b"k") == [b"x", b"a", b"y", b"b", b"a"]
    assert call(ex, "linsert", b"none", b"after", b"z", b"y") == 0
    assert err(call(ex, "linsert", b"none", b"middle", b"z", b"y")) == "ERR syntax error"
    assert call(ex, "exists", b"none") == 0


def test_lrem(ex: ShardExecutor) -> None:
    items = [b"a", b"b", b"a", b"c", b"a", b"b"]
    make(ex, b"k", *items)
    assert call(ex, "lrem", b"k", 2, b"a") == 2
    assert lrange(ex, b"k") == [b"b", b"c", b"a", b"b"]
    make(ex, b"k", *items)
    assert call(ex, "lrem", b"k", -2, b"a") == 2
    assert lrange(ex, b"k") == [b"a", b"b", b"c", b"b"]
    make(ex, b"k", *items)
    assert call(ex, "lrem", b"k", 0, b"b") == 2
    assert call(ex, "lrem", b"k", LONG_MIN, b"a") == 3
    assert lrange(ex, b"k") == [b"c"]
    assert call(ex, "lrem", b"k", 1, b"zz") == 0
    assert call(ex, "lrem", b"k", 1, b"c") == 1
    assert call(ex, "exists", b"k") == 0
    assert call(ex, "lrem", b"none", 1, b"c") == 0
    assert err(call(ex, "lrem", b"none", b"x", b"c")) == NOT_INTEGER


def test_ltrim(ex: ShardExecutor) -> None:
    items = [b"%d" % i for i in range(10)]
    for start, end, expected in [
        (0, -1, items), (2, 4, items[2:5]), (-3, -1, items[7:]), (1, 8, items[1:9]),
        (0, 0, items[:1]), (-100, 100, items),
    ]:  # fmt: skip
        make(ex, b"k", *items)
        assert call(ex, "ltrim", b"k", start, end) == Simple(b"OK")
        assert lrange(ex, b"k") == expected, (start, end)
    for start, end in [(5, 2), (10, 20), (-1, -2), (0, -11)]:
        make(ex, b"k", *items)
        assert call(ex, "ltrim", b"k", start, end) == Simple(b"OK")
        assert call(ex, "exists", b"k") == 0, (start, end)
    assert call(ex, "ltrim", b"none", 0, 1) == Simple(b"OK")
    assert err(call(ex, "ltrim", b"none", b"a", 1)) == NOT_INTEGER


# --- the value ------------------------------------------------------------------------------


def test_encoding_is_always_quicklist_in_redis_7_0(clock: Clock) -> None:
    ex = ShardExecutor(0, {"databases": 16, "list-max-listpack-size": 4}, clock=clock)
    call(ex, "rpush", b"small", b"a")
    call(ex, "rpush", b"big", *[b"x"] * 100)
    assert call(ex, "object", b"encoding", b"small") == b"quicklist"
    assert call(ex, "object", b"encoding", b"big") == b"quicklist"


def test_value_round_trip_is_an_equal_unshared_copy(ex: ShardExecutor) -> None:
    call(ex, "rpush", b"k", b"a", b"\x00\xff", b"")
    value = ex.ks.dbs[0].data[b"k"]
    assert type(value) is ListValue
    copy = decode_value(*encode_value(value))
    assert type(copy) is ListValue and copy == value and copy is not value
    assert call(ex, "copy", b"k", b"k2") == 1
    call(ex, "rpush", b"k2", b"more")
    assert lrange(ex, b"k") == [b"a", b"\x00\xff", b""]


def test_list_value_has_no_instance_dict() -> None:
    assert not hasattr(ListValue(), "__dict__")


def test_dirty_counts_elements(ex: ShardExecutor) -> None:
    before = ex.ks.dirty
    call(ex, "lpush", b"k", b"a", b"b", b"c")
    assert ex.ks.dirty - before == 3
    call(ex, "rpop", b"k", 2)
    assert ex.ks.dirty - before == 5


def test_command_table_matches_redis() -> None:
    table = load_shard_commands()
    expected = {
        # name: (arity, flags, first, last, step, acl) as redis-server 7.0.15 reports them
        "lpush": (-3, "write denyoom fast", 1, 1, 1, "@write @list @fast"),
        "rpush": (-3, "write denyoom fast", 1, 1, 1, "@write @list @fast"),
        "lpushx": (-3, "write denyoom fast", 1, 1, 1, "@write @list @fast"),
        "rpushx": (-3, "write denyoom fast", 1, 1, 1, "@write @list @fast"),
        "lpop": (-2, "write fast", 1, 1, 1, "@write @list @fast"),
        "rpop": (-2, "write fast", 1, 1, 1, "@write @list @fast"),
        "llen": (2, "readonly fast", 1, 1, 1, "@read @list @fast"),
        "lrange": (4, "readonly", 1, 1, 1, "@read @list @slow"),
        "lindex": (3, "readonly", 1, 1, 1, "@read @list @slow"),
        "lset": (4, "write denyoom", 1, 1, 1, "@write @list @slow"),
        "linsert": (5, "write denyoom", 1, 1, 1, "@write @list @slow"),
        "lrem": (4, "write", 1, 1, 1, "@write @list @slow"),
        "ltrim": (4, "write", 1, 1, 1, "@write @list @slow"),
        "lpos": (-3, "readonly", 1, 1, 1, "@read @list @slow"),
        "lmove": (5, "write denyoom", 1, 2, 1, "@write @list @slow"),
        "rpoplpush": (3, "write denyoom", 1, 2, 1, "@write @list @slow"),
        "lmpop": (-4, "write", 0, 0, 0, "@write @list @slow"),
    }
    for name, (arity, flags, first, last, step, acl) in expected.items():
        spec = table[name]
        assert spec.group == "list"
        got = (spec.arity, " ".join(spec.flags), spec.first_key, spec.last_key, spec.step)
        assert got == (arity, flags, first, last, step), name
        assert " ".join(spec.acl) == acl, name
    lmpop = table["lmpop"]
    assert lmpop.key_positions([b"lmpop", b"2", b"a", b"b", b"left"]) == [2, 3]
