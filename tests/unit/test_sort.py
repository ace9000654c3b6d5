"""SORT and SORT_RO driven through a ShardExecutor: no processes."""

from __future__ import annotations

from shard.actor import ShardExecutor
from shard.sort import lookup_by_pattern, sort_keys, sort_score
from tests.unit.shard_calls import call
from tests.unit.shard_calls import error as err


def test_key_positions() -> None:
    assert sort_keys([b"SORT", b"k"]) == [1]
    assert sort_keys([b"SORT", b"k", b"STORE", b"d"]) == [1, 3]
    assert sort_keys([b"SORT", b"k", b"STORE", b"a", b"store", b"b"]) == [1, 5]
    # LIMIT, GET and BY take their arguments along, even one spelt "store".
    assert sort_keys([b"SORT", b"k", b"GET", b"store", b"x"]) == [1]
    assert sort_keys([b"SORT", b"k", b"LIMIT", b"store", b"1", b"STORE", b"d"]) == [1, 6]
    assert sort_keys([b"SORT", b"k", b"STORE"]) == [1]


def test_sort_score_reads_like_strtod() -> None:
    assert sort_score(b"") == 0.0
    assert sort_score(b" 3") == 3.0 and sort_score(b"0x10") == 16.0
    assert sort_score(b"12\0junk") == 12.0  # C sees the text end at the NUL
    assert sort_score(b"-inf") == float("-inf")
    assert sort_score(b"0x1p-1074") == 5e-324  # an exact subnormal is no range error
    for bad in (b"  ", b"4 ", b"nan", b"1e400", b"1e-400", b"1e-310", b"abc", b"--1"):
        assert sort_score(bad) is None, bad


def test_numeric_alpha_desc_limit(ex: ShardExecutor) -> None:
    call(ex, "rpush", "l", "10", "2", "-1.5", "3e0", "0x3")
    assert call(ex, "sort", "l") == [b"-1.5", b"2", b"0x3", b"3e0", b"10"]  # ties: by bytes
    assert call(ex, "sort", "l", "desc") == [b"10", b"3e0", b"0x3", b"2", b"-1.5"]
    assert call(ex, "sort", "l", "alpha") == [b"-1.5", b"0x3", b"10", b"2", b"3e0"]
    assert call(ex, "sort", "l", "limit", 1, 2) == [b"2", b"0x3"]
    assert call(ex, "sort", "l", "limit", -5, 2) == [b"-1.5", b"2"]
    assert call(ex, "sort", "l", "limit", 3, -1) == [b"3e0", b"10"]
    assert call(ex, "sort", "l", "limit", 5, 1) == []
    assert call(ex, "sort", "l", "limit", 0, 0) == []
    call(ex, "rpush", "bad", "1", "x")
    assert err(call(ex, "sort", "bad")) == "ERR One or more scores can't be converted into double"
    assert call(ex, "sort", "bad", "alpha") == [b"1", b"x"]
    assert call(ex, "sort", "nokey") == []


def test_alpha_compares_c_strings_unless_storing(ex: ShardExecutor) -> None:
    call(ex, "rpush", "l", b"a\x00z", b"a", b"a\x00b")
    # Replies compare with strcoll, which stops at the NUL: the three tie, in list order.
    assert call(ex, "sort", "l", "alpha") == [b"a\x00z", b"a", b"a\x00b"]
    assert call(ex, "sort", "l", "alpha", "store", "d") == 3
    assert call(ex, "lrange", "d", 0, -1) == [b"a", b"a\x00b", b"a\x00z"]


def test_by_and_get_patterns(ex: ShardExecutor) -> None:
    call(ex, "rpush", "l", "a", "b", "c")
    call(ex, "mset", "w_a", "3", "w_b", "1", "w_c", "2", "v_a", "A", "v_c", "C")
    call(ex, "hset", "h_a", "f", "30")
    call(ex, "hset", "h_b", "f", "10")
    assert call(ex, "sort", "l", "by", "w_*") == [b"b", b"c", b"a"]
    assert call(ex, "sort", "l", "by", "w_*", "get", "#", "get", "v_*") == [
        b"b",
        None,
        b"c",
        b"C",
        b"a",
        b"A",
    ]
    # A missing weight counts as 0 (numeric) or sorts first (ALPHA).
    assert call(ex, "sort", "l", "by", "h_*->f") == [b"c", b"b", b"a"]
    assert call(ex, "sort", "l", "by", "h_*->f", "alpha", "desc") == [b"a", b"b", b"c"]
    assert call(ex, "sort", "l", "by", "h_*->f", "get", "h_*->f", "get", "h_*->g") == [
        None,
        None,
        b"10",
        None,
        b"30",
        None,
    ]
    assert call(ex, "sort", "l", "by", "nosort", "get", "nostar") == [None, None, None]
    assert err(call(ex, "sort", "l", "by", "v_*")) == (
        "ERR One or more scores can't be converted into double"
    )


def test_lookup_by_pattern_edges(ex: ShardExecutor) -> None:
    ctx = ex.ctx
    call(ex, "set", "k_e", "S")
    call(ex, "set", "k_e->", "arrow")
    call(ex, "hset", "k_e", "x", "ignored")  # WRONGTYPE: the string stays
    call(ex, "hset", "hh_e", "f\x00g", "nul-field")
    assert lookup_by_pattern(ctx, b"#", b"e") == b"e"
    assert lookup_by_pattern(ctx, b"#\x00tail", b"e") == b"e"
    assert lookup_by_pattern(ctx, b"k_*", b"e") == b"S"
    assert lookup_by_pattern(ctx, b"k_*->", b"e") == b"arrow"  # nothing after "->": no field
    assert lookup_by_pattern(ctx, b"k_*->x", b"e") is None  # not a hash
    assert lookup_by_pattern(ctx, b"hh_*->f\x00g", b"e") == b"nul-field"
    assert lookup_by_pattern(ctx, b"k_\x00*", b"e") is None  # the star hides behind a NUL
    assert lookup_by_pattern(ctx, b"hh_*", b"e") is None  # a hash is no string


def test_dontsort_keeps_natural_order(ex: ShardExecutor) -> None:
    call(ex, "rpush", "l", "3", "1", "2")
    assert call(ex, "sort", "l", "by", "nosort") == [b"3", b"1", b"2"]
    assert call(ex, "sort", "l", "by", "nosort", "desc", "limit", 0, 2) == [b"2", b"1"]
    call(ex, "zadd", "z", 1, "c", 2, "a", 3, "b")
    assert call(ex, "object", "encoding", "z") == b"listpack"
    assert call(ex, "sort", "z", "by", "nosort", "desc", "limit", 1, 5) == [b"a", b"c"]
    assert call(ex, "object", "encoding", "z") == b"skiplist"  # SORT converted it
    assert call(ex, "sort_ro", "z", "alpha") == [b"a", b"b", b"c"]
    # A set stored without sorting would depend on hashing: Redis sorts it (ALPHA).
    call(ex, "sadd", "s", "b", "10", "a")
    assert call(ex, "sort", "s", "by", "nosort", "store", "d") == 3
    assert call(ex, "lrange", "d", 0, -1) == [b"10", b"a", b"b"]
    # A later BY with a star does not undo a constant one.
    assert call(ex, "sort", "l", "by", "nosort", "by", "w_*") == [b"3", b"1", b"2"]


def test_store(ex: ShardExecutor) -> None:
    call(ex, "rpush", "l", "2", "1")
    call(ex, "set", "d", "string")
    assert call(ex, "sort", "l", "store", "d") == 2
    assert call(ex, "type", "d") == b"list"
    assert call(ex, "lrange", "d", 0, -1) == [b"1", b"2"]
    assert call(ex, "sort", "l", "get", "missing_*", "get", "#", "store", "d") == 4
    assert call(ex, "lrange", "d", 0, -1) == [b"", b"1", b"", b"2"]
    assert call(ex, "sort", "nokey", "store", "d") == 0
    assert call(ex, "exists", "d") == 0
    assert err(call(ex, "sort_ro", "l", "store", "d")) == "ERR syntax error"


def test_errors(ex: ShardExecutor) -> None:
    call(ex, "set", "s", "v")
    call(ex, "hset", "h", "f", "v")
    assert err(call(ex, "sort", "s")).startswith("WRONGTYPE")
    assert err(call(ex, "sort", "h")).startswith("WRONGTYPE")
    # Options are read before the key is looked at.
    assert err(call(ex, "sort", "s", "bogus")) == "ERR syntax error"
    assert err(call(ex, "sort", "s", "limit", "x", 1)) == (
        "ERR value is not an integer or out of range"
    )
    for option in (["by"], ["get"], ["limit", 1], ["store"]):
        assert err(call(ex, "sort", "nokey", *option)) == "ERR syntax error", option
