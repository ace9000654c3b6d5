"""Sorted set commands driven through a ShardExecutor: no processes."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from shard import wire
from shard.actor import ShardExecutor
from shard.errors import RedisError
from shard.reply import NULL_ARRAY
from shard.sets import parse_cursor
from shard.values import decode_value, encode_value
from shard.zset_value import SMALL_MAX, LexRange, SmallOrder, ZSet, lex_first, lex_last
from tests.unit.shard_calls import call
from tests.unit.shard_calls import error as err


def resp(ex: ShardExecutor, *argv: bytes | str, resp3: bool = False) -> bytes:
    """One command; its reply as the RESP bytes a client gets."""
    raw = [a if isinstance(a, bytes) else a.encode() for a in argv]
    raw[0] = raw[0].lower()
    reply: bytes = ex.execute_batch([[wire.meta(0, resp3), raw]])[0]
    return reply


def value_of(ex: ShardExecutor, key: bytes) -> ZSet:
    value = ex.ks.dbs[0].data[key]
    assert type(value) is ZSet
    return value


def encoding(ex: ShardExecutor, key: str) -> Any:
    return call(ex, "object", "encoding", key)


def everything(ex: ShardExecutor, key: str) -> Any:
    return call(ex, "zrange", key, 0, -1, "withscores")


# --- ZADD and ZINCRBY ----------------------------------------------------------------------


def test_zadd_counts_added_and_changed(ex: ShardExecutor) -> None:
    assert call(ex, "zadd", "z", 1, "a", 2, "b") == 2
    assert call(ex, "zadd", "z", 1, "a", 3, "b", 4, "c") == 1
    assert call(ex, "zadd", "z", "CH", 1, "a", 5, "b", 6, "d") == 2
    assert everything(ex, "z") == [b"a", 1.0, b"c", 4.0, b"b", 5.0, b"d", 6.0]


def test_zadd_nx_xx_gt_lt(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", 5, "a")
    assert call(ex, "zadd", "z", "NX", 1, "a", 1, "b") == 1
    assert call(ex, "zscore", "z", "a") == 5.0
    assert call(ex, "zadd", "z", "XX", 7, "a", 1, "c") == 0
    assert call(ex, "zscore", "z", "a") == 7.0 and call(ex, "zscore", "z", "c") is None
    assert call(ex, "zadd", "z", "GT", "CH", 6, "a", 9, "b") == 1
    assert call(ex, "zadd", "z", "LT", "CH", 8, "a", 2, "b") == 1
    assert everything(ex, "z") == [b"b", 2.0, b"a", 7.0]
    assert call(ex, "zadd", "z", "GT", 1, "new") == 1  # GT and LT only restrain updates
    assert call(ex, "zadd", "missing", "XX", 1, "a") == 0
    assert call(ex, "exists", "missing") == 0


def test_zadd_option_errors(ex: ShardExecutor) -> None:
    assert err(call(ex, "zadd", "z", "NX", "XX", 1, "a")) == (
        "ERR XX and NX options at the same time are not compatible"
    )
    for options in (["GT", "LT"], ["NX", "GT"], ["LT", "NX"]):
        assert err(call(ex, "zadd", "z", *options, 1, "a")) == (
            "ERR GT, LT, and/or NX options at the same time are not compatible"
        )
    assert err(call(ex, "zadd", "z", "INCR", 1, "a", 2, "b")) == (
        "ERR INCR option supports a single increment-element pair"
    )
    assert err(call(ex, "zadd", "z", 1, "a", 2)) == "ERR syntax error"
    assert err(call(ex, "zadd", "z", "nx", "ch")) == "ERR syntax error"
    # Scores are checked before anything is written: nothing is added.
    assert err(call(ex, "zadd", "z", 1, "a", "nan", "b")) == "ERR value is not a valid float"
    assert call(ex, "exists", "z") == 0
    call(ex, "set", "s", "x")
    assert err(call(ex, "zadd", "s", 1, "a")).startswith("WRONGTYPE")
    assert err(call(ex, "zadd", "s", 1, "a", "x", "b")) == "ERR value is not a valid float"


def test_zadd_incr_replies(ex: ShardExecutor) -> None:
    assert call(ex, "zadd", "z", "INCR", 2.5, "a") == 2.5
    assert call(ex, "zadd", "z", "INCR", 1, "a") == 3.5
    assert call(ex, "zadd", "z", "NX", "INCR", 1, "a") is None
    assert call(ex, "zadd", "z", "XX", "INCR", 1, "nosuch") is None
    assert call(ex, "zadd", "z", "GT", "INCR", -1, "a") is None
    assert call(ex, "zadd", "z", "INCR", 0, "a") == 3.5
    assert call(ex, "zadd", "missing", "XX", "INCR", 1, "a") is None


def test_zincrby_runs_zadds_parser(ex: ShardExecutor) -> None:
    assert call(ex, "zincrby", "z", 2, "a") == 2.0
    assert call(ex, "zincrby", "z", "-inf", "a") == -math.inf
    assert err(call(ex, "zincrby", "z", "+inf", "a")) == "ERR resulting score is not a number (NaN)"
    assert call(ex, "zscore", "z", "a") == -math.inf
    # Redis parses the increment position as a ZADD option first.
    assert err(call(ex, "zincrby", "z", "NX", "a")) == "ERR syntax error"
    assert err(call(ex, "zincrby", "z", "abc", "a")) == "ERR value is not a valid float"


def test_scores_parse_like_redis(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", "+inf", "a", "-inf", "b", "0x10", "c", ".5", "d", "0.1", "e")
    assert resp(ex, "zscore", "z", "a") == b"$3\r\ninf\r\n"
    assert resp(ex, "zscore", "z", "c") == b"$2\r\n16\r\n"
    assert resp(ex, "zscore", "z", "d", resp3=True) == b",0.5\r\n"
    assert resp(ex, "zscore", "z", "e") == b"$19\r\n0.10000000000000001\r\n"
    for bad in ("nan", "", " 1", "1e400", "1e-400", "inf1"):
        assert err(call(ex, "zadd", "z", bad, "x")) == "ERR value is not a valid float", bad


def test_negative_zero_depends_on_the_encoding(ex: ShardExecutor) -> None:
    # A listpack keeps scores as text: "-0" reads back as 0.  A skiplist keeps the double.
    assert resp(ex, "zincrby", "lp", "-0", "m") == b"$2\r\n-0\r\n"
    assert resp(ex, "zscore", "lp", "m") == b"$1\r\n0\r\n"
    ex.config["zset-max-listpack-entries"] = 0
    call(ex, "zadd", "sl", "-0", "m")
    assert encoding(ex, "sl") == b"skiplist"
    assert resp(ex, "zscore", "sl", "m") == b"$2\r\n-0\r\n"
    assert call(ex, "zscan", "sl", 0) == [b"0", [b"m", b"-0"]]
    assert call(ex, "zscan", "lp", 0) == [b"0", [b"m", b"0"]]


# --- encodings -----------------------------------------------------------------------------


def test_listpack_converts_on_size_and_member_length(ex: ShardExecutor) -> None:
    ex.config["zset-max-listpack-entries"] = 3
    ex.config["zset-max-listpack-value"] = 4
    call(ex, "zadd", "z", 1, "a", 2, "b", 3, "c")
    assert encoding(ex, "z") == b"listpack"
    call(ex, "zadd", "z", 4, "d")
    assert encoding(ex, "z") == b"skiplist"
    call(ex, "zrem", "z", "a", "b", "c")
    assert encoding(ex, "z") == b"skiplist"  # never goes back on its own
    call(ex, "zadd", "long", 1, "abcde")
    assert encoding(ex, "long") == b"skiplist"  # the first member decides at creation
    call(ex, "zadd", "grow", 1, "abcd", 2, "abcde")
    assert encoding(ex, "grow") == b"skiplist"
    call(ex, "zadd", "ok", 1, "abcd")
    assert encoding(ex, "ok") == b"listpack"


def test_stored_results_convert_back_when_small(ex: ShardExecutor) -> None:
    ex.config["zset-max-listpack-entries"] = 2
    call(ex, "zadd", "big", 1, "a", 2, "b", 3, "c")
    assert encoding(ex, "big") == b"skiplist"
    assert call(ex, "zunionstore", "u", 1, "big") == 3
    assert encoding(ex, "u") == b"skiplist"
    assert call(ex, "zinterstore", "i", 1, "big", "weights", 0) == 3
    call(ex, "zrem", "big", "c")
    assert call(ex, "zunionstore", "u", 1, "big", "weights", -1) == 2
    assert encoding(ex, "u") == b"listpack"
    # ZRANGESTORE: a rank range of known length starts as a skiplist when too long ...
    assert call(ex, "zadd", "big", 3, "c") == 1
    assert call(ex, "zrangestore", "r", "big", 0, -1) == 3
    assert encoding(ex, "r") == b"skiplist"
    # ... a score range starts as a listpack and converts while filling.
    assert call(ex, "zrangestore", "r", "big", "-inf", "+inf", "byscore") == 3
    assert encoding(ex, "r") == b"skiplist"
    assert call(ex, "zrangestore", "r", "big", 0, 1) == 2
    assert encoding(ex, "r") == b"listpack"


def test_union_of_negative_zero_into_a_listpack_writes_zero(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", 0, "a")
    assert resp(ex, "zunion", "1", "z", "weights", "-1", "withscores") == (
        b"*2\r\n$1\r\na\r\n$2\r\n-0\r\n"
    )
    call(ex, "zunionstore", "d", 1, "z", "weights", -1)
    assert resp(ex, "zscore", "d", "a") == b"$1\r\n0\r\n"


def test_values_survive_encode_decode(ex: ShardExecutor) -> None:
    ex.config["zset-max-listpack-entries"] = 1
    call(ex, "zadd", "z", 1, "a", "-0", "b", "inf", "c")
    for key in (b"z",):
        value = value_of(ex, key)
        copy = decode_value(*encode_value(value))
        assert type(copy) is ZSet and copy is not value
        assert list(copy.order) == list(value.order) and copy.scores == value.scores
        assert copy.listpack == value.listpack
    assert call(ex, "copy", "z", "z2") == 1
    assert encoding(ex, "z2") == b"skiplist"
    assert resp(ex, "zscore", "z2", "b") == b"$2\r\n-0\r\n"
    assert call(ex, "type", "z2") == b"zset"


def test_small_order_becomes_a_sorted_list() -> None:
    zs = ZSet(listpack=False)
    for i in range(SMALL_MAX + 1):
        zs.insert(b"m%05d" % i, float(i % 7))
    assert type(zs.order) is not SmallOrder
    expected = sorted((float(i % 7), b"m%05d" % i) for i in range(SMALL_MAX + 1))
    assert list(zs.items()) == expected
    assert zs.rank(b"m00003") == expected.index((3.0, b"m00003"))
    assert zs.discard(b"m00003") and not zs.discard(b"m00003")
    assert zs.score_span((2.0, True, 4.0, False)) == (
        sum(1 for s, _ in expected if s <= 2.0),
        sum(1 for s, _ in expected if s <= 4.0) - 1,
    )


# --- reads ---------------------------------------------------------------------------------


def test_single_member_reads(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", 1, "a", 2, "b", 3, "c")
    assert call(ex, "zcard", "z") == 3 and call(ex, "zcard", "nokey") == 0
    assert call(ex, "zmscore", "z", "a", "x", "c") == [1.0, None, 3.0]
    assert call(ex, "zmscore", "nokey", "a", "b") == [None, None]
    assert call(ex, "zrank", "z", "c") == 2 and call(ex, "zrevrank", "z", "c") == 0
    assert call(ex, "zrank", "z", "x") is None and call(ex, "zrank", "nokey", "a") is None
    assert call(ex, "zscore", "nokey", "a") is None
    call(ex, "set", "s", "v")
    for cmd in (["zcard"], ["zscore", "a"], ["zmscore", "a"], ["zrank", "a"], ["zcount", 0, 1]):
        assert err(call(ex, cmd[0], "s", *cmd[1:])).startswith("WRONGTYPE"), cmd


def test_zcount_bounds(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", "-inf", "a", 1, "b", 2, "c", 3, "d", "inf", "e")
    cases = {
        ("-inf", "+inf"): 5,
        ("(1", "3"): 2,
        ("(1", "(3"): 1,
        ("(-inf", "(inf"): 3,
        ("3", "1"): 0,
        ("(2", "2"): 0,
        ("2", "2"): 1,
        ("inf", "inf"): 1,
        ("(inf", "inf"): 0,
        ("", "1"): 1,
        (" 2", "2"): 1,
        ("1e400", "inf"): 1,
        ("0x1", "0X2"): 2,
        ("(", "1"): 1,
    }  # "(" alone is an exclusive 0: strtod reads nothing, to the end
    for (low, high), count in cases.items():
        assert call(ex, "zcount", "z", low, high) == count, (low, high)
    for low, high in (("abc", "1"), ("1", "(("), ("nan", "1"), ("(nan", "1"), ("1 ", "2")):
        assert err(call(ex, "zcount", "z", low, high)) == "ERR min or max is not a float"
    assert err(call(ex, "zcount", "nokey", "x", 1)) == "ERR min or max is not a float"


def test_lex_ranges(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", *[x for m in "abcdefg" for x in (0, m)])
    assert call(ex, "zlexcount", "z", "-", "+") == 7
    assert call(ex, "zlexcount", "z", "[b", "(e") == 3
    assert call(ex, "zrangebylex", "z", "(b", "[d") == [b"c", b"d"]
    assert call(ex, "zrevrangebylex", "z", "+", "[e", "limit", 1, 2) == [b"f", b"e"]
    assert call(ex, "zrange", "z", "[e", "-", "bylex", "rev") == [b"e", b"d", b"c", b"b", b"a"]
    assert call(ex, "zrangebylex", "z", "+", "-") == []
    assert call(ex, "zrangebylex", "z", "-", "-") == []
    assert call(ex, "zrangebylex", "z", "[c", "(c") == []
    assert call(ex, "zrangebylex", "z", "-", "+\0ignored") == [
        b"a",
        b"b",
        b"c",
        b"d",
        b"e",
        b"f",
        b"g",
    ]
    for low, high in (("a", "+"), ("-", "+x"), ("", "+"), ("[a", "b")):
        assert (
            err(call(ex, "zlexcount", "z", low, high))
            == "ERR min or max not valid string range item"
        )
    assert call(ex, "zremrangebylex", "z", "[b", "[c") == 2
    assert call(ex, "zrange", "z", 0, -1) == [b"a", b"d", b"e", b"f", b"g"]


def test_lex_on_mixed_scores_scans_like_a_listpack() -> None:
    zs = ZSet()
    for score, member in ((1, b"d"), (2, b"a"), (3, b"c"), (4, b"b")):
        zs.insert(member, float(score))
    spec = LexRange(b"[b", b"+")
    # Redis walks from the head to the first member >= "b", and from the tail back.
    assert lex_first(zs, spec) == 0
    assert lex_last(zs, spec) == 3
    assert lex_first(zs, LexRange(b"-", b"[a")) == -1  # the head "d" is above the max


def test_zrange_by_rank(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", 1, "a", 2, "b", 3, "c", 4, "d")
    assert call(ex, "zrange", "z", 1, 2) == [b"b", b"c"]
    assert call(ex, "zrange", "z", -2, 100) == [b"c", b"d"]
    assert call(ex, "zrange", "z", -100, 0) == [b"a"]
    assert call(ex, "zrange", "z", 3, 1) == [] and call(ex, "zrange", "z", 4, 10) == []
    assert call(ex, "zrange", "z", 0, 1, "rev", "withscores") == [b"d", 4.0, b"c", 3.0]
    assert call(ex, "zrevrange", "z", 1, -2) == [b"c", b"b"]
    assert call(ex, "zrange", "nokey", 0, -1) == []


def test_zrange_by_score_with_limit(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", *[x for i in range(10) for x in (i, f"m{i}")])
    assert call(ex, "zrange", "z", 2, "(6", "byscore") == [b"m2", b"m3", b"m4", b"m5"]
    assert call(ex, "zrange", "z", 2, 6, "byscore", "limit", 1, 2) == [b"m3", b"m4"]
    assert call(ex, "zrange", "z", "(6", 2, "byscore", "rev", "limit", 1, 2) == [b"m4", b"m3"]
    assert call(ex, "zrangebyscore", "z", 2, 6, "limit", 0, -1) == [
        b"m2",
        b"m3",
        b"m4",
        b"m5",
        b"m6",
    ]
    assert call(ex, "zrangebyscore", "z", 2, 6, "limit", -1, 2) == []  # a negative offset
    assert call(ex, "zrangebyscore", "z", 2, 6, "limit", 0, 0) == []
    assert call(ex, "zrangebyscore", "z", 2, 6, "limit", 10, 1) == []
    assert call(ex, "zrevrangebyscore", "z", "+inf", 8, "withscores") == [b"m9", 9.0, b"m8", 8.0]


def test_zrange_option_errors(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", 1, "a")
    assert err(call(ex, "zrange", "z", 0, 1, "limit", 0, 1)) == (
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    )
    assert call(ex, "zrange", "z", 0, 1, "limit", 0, -1) == [b"a"]  # -1 is "no LIMIT"
    assert err(call(ex, "zrange", "z", "-", "+", "bylex", "withscores")) == (
        "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
    )
    for extra in (["byscore", "bylex"], ["rev", "rev"], ["limit", 1], ["bogus"]):
        assert err(call(ex, "zrange", "z", 0, 1, *extra)) == "ERR syntax error", extra
    assert err(call(ex, "zrangebyscore", "z", 0, 1, "rev")) == "ERR syntax error"
    assert err(call(ex, "zrangestore", "d", "z", 0, 1, "withscores")) == "ERR syntax error"
    assert err(call(ex, "zrange", "z", "x", 1)) == "ERR value is not an integer or out of range"
    assert err(call(ex, "zrange", "z", 0, 1, "limit", "x", 1, "byscore")) == (
        "ERR value is not an integer or out of range"
    )


def test_zrangestore(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", 1, "a", 2, "b", 3, "c")
    call(ex, "set", "d", "string")
    ex.ks.set_expire(ex.ks.dbs[0], b"d", ex.ks.now + 100_000)
    assert call(ex, "zrangestore", "d", "z", 1, -1) == 2
    assert call(ex, "zrange", "d", 0, -1, "withscores") == [b"b", 2.0, b"c", 3.0]
    assert call(ex, "ttl", "d") == -1
    assert call(ex, "zrangestore", "d", "z", 5, 10) == 0
    assert call(ex, "exists", "d") == 0
    call(ex, "zadd", "d", 1, "x")
    assert call(ex, "zrangestore", "d", "nokey", 0, -1) == 0
    assert call(ex, "exists", "d") == 0


def test_zremrange(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", *[x for i in range(6) for x in (i, f"m{i}")])
    assert call(ex, "zremrangebyrank", "z", -2, -1) == 2
    assert call(ex, "zremrangebyscore", "z", "(0", 1) == 1
    assert call(ex, "zrange", "z", 0, -1) == [b"m0", b"m2", b"m3"]
    assert call(ex, "zremrangebyrank", "z", 5, 10) == 0
    assert (
        err(call(ex, "zremrangebyrank", "z", "a", 1))
        == "ERR value is not an integer or out of range"
    )
    assert call(ex, "zremrangebyscore", "z", "-inf", "+inf") == 3
    assert call(ex, "exists", "z") == 0
    assert call(ex, "zremrangebyrank", "nokey", 0, -1) == 0


def test_zrem_deletes_the_emptied_key(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", 1, "a", 2, "b")
    assert call(ex, "zrem", "z", "a", "x", "b", "a") == 2
    assert call(ex, "exists", "z") == 0
    assert call(ex, "zrem", "z", "a") == 0


# --- pops --------------------------------------------------------------------------------


def test_zpop_shapes(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", 1, "a", 2, "b", 3, "c", 4, "d")
    assert resp(ex, "zpopmin", "z") == b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    assert resp(ex, "zpopmin", "z", resp3=True) == b"*2\r\n$1\r\nb\r\n,2\r\n"
    assert resp(ex, "zpopmax", "z", "1", resp3=True) == b"*1\r\n*2\r\n$1\r\nd\r\n,4\r\n"
    assert call(ex, "zpopmax", "z", 0) == []
    assert err(call(ex, "zpopmax", "z", -1)) == "ERR value is out of range, must be positive"
    assert err(call(ex, "zpopmax", "z", "x")) == "ERR value is out of range, must be positive"
    assert err(call(ex, "zpopmax", "z", 1, 2)) == "ERR syntax error"
    assert call(ex, "zpopmax", "z", 10) == [b"c", 3.0]
    assert call(ex, "exists", "z") == 0
    assert call(ex, "zpopmin", "z") == []


def test_zmpop(ex: ShardExecutor) -> None:
    call(ex, "zadd", "b", 1, "x", 2, "y", 3, "z")
    assert call(ex, "zmpop", 2, "a", "b", "max", "count", 2) == [b"b", [[b"z", 3.0], [b"y", 2.0]]]
    assert (
        resp(ex, "zmpop", "1", "b", "min") == b"*2\r\n$1\r\nb\r\n*1\r\n*2\r\n$1\r\nx\r\n$1\r\n1\r\n"
    )
    assert call(ex, "zmpop", 1, "b", "min") is NULL_ARRAY
    assert resp(ex, "zmpop", "1", "b", "min") == b"*-1\r\n"
    assert resp(ex, "zmpop", "1", "b", "min", resp3=True) == b"_\r\n"
    call(ex, "set", "s", "v")
    assert err(call(ex, "zmpop", 2, "a", "s", "min")).startswith("WRONGTYPE")
    cases = {
        ("0", "a", "min"): "ERR numkeys should be greater than 0",
        ("x", "a", "min"): "ERR numkeys should be greater than 0",
        ("3", "a", "min"): "ERR syntax error",
        ("1", "a", "mid"): "ERR syntax error",
        ("1", "a", "min", "count", "0"): "ERR count should be greater than 0",
        ("1", "a", "min", "count", "1", "count", "1"): "ERR syntax error",
        ("1", "a", "min", "count"): "ERR syntax error",
    }
    for args, message in cases.items():
        assert err(call(ex, "zmpop", *args)) == message, args


# --- ZRANDMEMBER -------------------------------------------------------------------------


def test_zrandmember(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", 1, "a", 2, "b", 3, "c")
    assert call(ex, "zrandmember", "z") in (b"a", b"b", b"c")
    assert call(ex, "zrandmember", "nokey") is None
    assert call(ex, "zrandmember", "nokey", 5) == []
    assert call(ex, "zrandmember", "z", 0) == []
    # Asking for at least the whole set returns it, walked from the highest score.
    assert call(ex, "zrandmember", "z", 5, "withscores") == [b"c", 3.0, b"b", 2.0, b"a", 1.0]
    two = call(ex, "zrandmember", "z", 2)
    assert len(set(two)) == 2 and set(two) <= {b"a", b"b", b"c"}
    many = call(ex, "zrandmember", "z", -20, "withscores")
    assert len(many) == 40 and all(
        many[i + 1] == {b"a": 1, b"b": 2, b"c": 3}[many[i]] for i in range(0, 40, 2)
    )
    pairs = call(ex, "zrandmember", "z", -2, "withscores", resp3=True)
    assert len(pairs) == 2 and all(len(pair) == 2 for pair in pairs)
    assert err(call(ex, "zrandmember", "z", 1, "bogus")) == "ERR syntax error"
    assert err(call(ex, "zrandmember", "z", "-9223372036854775808")) == (
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    )
    assert err(call(ex, "zrandmember", "z", "4611686018427387904", "withscores")) == (
        "ERR value is out of range"
    )


# --- set algebra ---------------------------------------------------------------------------


def test_union_inter_diff(ex: ShardExecutor) -> None:
    call(ex, "zadd", "a", 1, "x", 2, "y", 3, "z")
    call(ex, "zadd", "b", 10, "y", 20, "z", 30, "w")
    assert call(ex, "zunion", 2, "a", "b", "withscores") == [
        b"x",
        1.0,
        b"y",
        12.0,
        b"z",
        23.0,
        b"w",
        30.0,
    ]
    assert call(ex, "zinter", 2, "a", "b", "weights", 2, 1, "aggregate", "min", "withscores") == [
        b"y",
        4.0,
        b"z",
        6.0,
    ]
    assert call(ex, "zinter", 2, "a", "b", "aggregate", "max") == [b"y", b"z"]
    assert call(ex, "zdiff", 2, "a", "b", "withscores") == [b"x", 1.0]
    assert call(ex, "zdiff", 2, "a", "a") == []
    assert call(ex, "zintercard", 2, "a", "b") == 2
    assert call(ex, "zintercard", 2, "a", "b", "limit", 1) == 1
    assert call(ex, "zinter", 2, "a", "nokey") == []
    assert call(ex, "zdiffstore", "d", 2, "a", "b") == 1
    assert call(ex, "zinterstore", "d", 2, "a", "nokey") == 0
    assert call(ex, "exists", "d") == 0


def test_infinities_and_nan_in_algebra(ex: ShardExecutor) -> None:
    call(ex, "zadd", "p", "inf", "m", 0, "zero")
    call(ex, "zadd", "n", "-inf", "m", "inf", "zero")
    # inf + -inf is NaN, which Redis turns into 0; so is 0 * inf from a weight.
    assert call(ex, "zunion", 2, "p", "n", "withscores") == [b"m", 0.0, b"zero", math.inf]
    assert call(ex, "zunion", 1, "p", "weights", 0, "withscores") == [b"m", 0.0, b"zero", 0.0]
    assert call(ex, "zinter", 2, "p", "n", "aggregate", "min", "withscores") == [
        b"m",
        -math.inf,
        b"zero",
        0.0,
    ]


def test_algebra_errors(ex: ShardExecutor) -> None:
    call(ex, "zadd", "a", 1, "x")
    call(ex, "set", "s", "v")
    assert (
        err(call(ex, "zunion", 0, "a")) == "ERR at least 1 input key is needed for 'zunion' command"
    )
    assert err(call(ex, "zunionstore", "d", -1, "a")) == (
        "ERR at least 1 input key is needed for 'zunionstore' command"
    )
    assert err(call(ex, "zunion", 2, "a")) == "ERR syntax error"
    assert err(call(ex, "zunion", "x", "a")) == "ERR value is not an integer or out of range"
    # The keys are looked up before the options are read.
    assert err(call(ex, "zunion", 1, "s", "bogus")).startswith("WRONGTYPE")
    assert err(call(ex, "zunion", 1, "a", "weights", "x")) == "ERR weight value is not a float"
    assert err(call(ex, "zunion", 2, "a", "a", "weights", 1)) == "ERR syntax error"
    assert err(call(ex, "zunion", 1, "a", "aggregate", "avg")) == "ERR syntax error"
    assert err(call(ex, "zunionstore", "d", 1, "a", "withscores")) == "ERR syntax error"
    assert err(call(ex, "zdiff", 1, "a", "weights", 1)) == "ERR syntax error"
    assert err(call(ex, "zintercard", 1, "a", "limit", -1)) == "ERR LIMIT can't be negative"
    assert err(call(ex, "zintercard", 1, "a", "limit", "x")) == "ERR LIMIT can't be negative"
    assert err(call(ex, "zintercard", 1, "a", "withscores")) == "ERR syntax error"


# --- ZSCAN -------------------------------------------------------------------------------


def test_scan_cursor_parsing() -> None:
    assert parse_cursor(b"0") == 0 and parse_cursor(b"") == 0 and parse_cursor(b"+7") == 7
    assert parse_cursor(b"-1") == (1 << 64) - 1
    assert parse_cursor(b"12\0junk") == 12
    for bad in (b" 1", b"abc", b"1 ", b"-", b"0x10", b"18446744073709551616"):
        with pytest.raises(RedisError, match="invalid cursor"):
            parse_cursor(bad)


def test_zscan_listpack_returns_everything(ex: ShardExecutor) -> None:
    call(ex, "zadd", "z", *[x for i in range(20) for x in (i * 0.5, f"m{i}")])
    cursor, flat = call(ex, "zscan", "z", 0, "count", 2)
    assert cursor == b"0" and len(flat) == 40
    assert flat[:4] == [b"m0", b"0", b"m1", b"0.5"]
    assert call(ex, "zscan", "z", 0, "match", "m1?") == [
        b"0",
        [x for i in range(10, 20) for x in (b"m%d" % i, b"%g" % (i * 0.5))],
    ]
    assert err(call(ex, "zscan", "z", 0, "count", 0)) == "ERR syntax error"
    assert err(call(ex, "zscan", "z", 0, "match")) == "ERR syntax error"
    assert call(ex, "zscan", "nokey", 0, "count", 0) == [b"0", []]  # missing key: no parsing
    assert err(call(ex, "zscan", "z", "x")) == "ERR invalid cursor"


def test_zscan_skiplist_walks_a_snapshot(ex: ShardExecutor) -> None:
    ex.config["zset-max-listpack-entries"] = 0
    call(ex, "zadd", "z", *[x for i in range(50) for x in (i, f"m{i}")])
    seen: dict[bytes, bytes] = {}
    cursor = b"0"
    deleted = False
    while True:
        cursor, flat = call(ex, "zscan", "z", cursor, "count", 7)
        seen.update(zip(flat[0::2], flat[1::2], strict=True))
        if not deleted:
            call(ex, "zrem", "z", "m49", "m48")  # deleted during the scan: never returned
            call(ex, "zadd", "z", 100, "late")
            deleted = True
        if cursor == b"0":
            break
    assert {b"m%d" % i for i in range(48)} <= set(seen) and b"m49" not in seen
    assert seen[b"m10"] == b"10"


# --- large sets ----------------------------------------------------------------------------


def test_large_set_matches_a_plain_model(ex: ShardExecutor) -> None:
    rng = random.Random(7)
    model: dict[bytes, float] = {}
    for _ in range(1500):
        member = b"k%03d" % rng.randrange(800)
        score = float(rng.randint(-20, 20))
        call(ex, "zadd", "z", score, member)
        model[member] = score
        if rng.random() < 0.2:
            victim = b"k%03d" % rng.randrange(800)
            assert call(ex, "zrem", "z", victim) == int(model.pop(victim, None) is not None)
    ordered = sorted((s, m) for m, s in model.items())
    assert type(value_of(ex, b"z").order) is not SmallOrder
    assert call(ex, "zcard", "z") == len(ordered)
    assert call(ex, "zrange", "z", 100, 110) == [m for _, m in ordered[100:111]]
    assert call(ex, "zcount", "z", "(-5", 5) == sum(1 for s, _ in ordered if -5 < s <= 5)
    for _, member in ordered[::37]:
        assert call(ex, "zrank", "z", member) == ordered.index((model[member], member))
    expected = [m for s, m in ordered if 0 <= s < 3][5:25]
    assert call(ex, "zrangebyscore", "z", 0, "(3", "limit", 5, 20) == expected
    assert call(ex, "zremrangebyrank", "z", 0, 99) == 100
    assert call(ex, "zrange", "z", 0, 0) == [ordered[100][1]]


def test_plain_sets_count_as_score_one(ex: ShardExecutor) -> None:
    call(ex, "sadd", "s", "a", "b", "1")
    call(ex, "zadd", "z", 5, "a", 2, "x")
    assert call(ex, "zunion", 2, "s", "z", "withscores") == [
        b"1",
        1.0,
        b"b",
        1.0,
        b"x",
        2.0,
        b"a",
        6.0,
    ]
    assert call(ex, "zinter", 2, "z", "s", "weights", 2, 3, "withscores") == [b"a", 13.0]
    assert call(ex, "zdiff", 2, "s", "z") == [b"1", b"b"]
    assert call(ex, "zintercard", 2, "s", "z") == 1
    assert call(ex, "zunionstore", "d", 1, "s") == 3
    assert call(ex, "type", "d") == b"zset"
    # ... but only the set algebra reads sets.
    assert err(call(ex, "zrange", "s", 0, -1)).startswith("WRONGTYPE")
    assert err(call(ex, "zmpop", 1, "s", "min")).startswith("WRONGTYPE")
