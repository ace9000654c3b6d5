"""Set commands driven through a ShardExecutor: no processes."""

from __future__ import annotations

import pytest

from shard import errors, wire
from shard.actor import ShardExecutor
from shard.errors import RedisError
from shard.reply import SetReply
from shard.sets import SCANS, SetValue, parse_cursor
from shard.values import decode_value, encode_value
from tests.unit.shard_calls import call, error


def resp(ex: ShardExecutor, resp3: bool, *argv: bytes) -> bytes:
    return ex.execute_batch([[wire.meta(0, resp3), [argv[0].lower(), *argv[1:]]]])[0]


def encoding(ex: ShardExecutor, key: str) -> bytes:
    return call(ex, "object", "encoding", key)


# --- basics ------------------------------------------------------------------------------


def test_sadd_srem_count_and_delete_empty(ex: ShardExecutor) -> None:
    assert call(ex, "SADD", "s", "a", "b", "a") == 2
    assert call(ex, "SADD", "s", "b", "c") == 1
    assert call(ex, "SCARD", "s") == 3
    assert call(ex, "SREM", "s", "a", "zz", "a") == 1
    assert call(ex, "SREM", "nokey", "a") == 0
    assert call(ex, "SREM", "s", "b", "c") == 2
    assert call(ex, "EXISTS", "s") == 0
    assert call(ex, "TYPE", "s") == b"none"


def test_wrong_type_everywhere(ex: ShardExecutor) -> None:
    call(ex, "SET", "str", "x")
    call(ex, "SADD", "s", "1")
    for argv in (
        ["SADD", "str", "a"],
        ["SREM", "str", "a"],
        ["SMEMBERS", "str"],
        ["SISMEMBER", "str", "a"],
        ["SMISMEMBER", "str", "a"],
        ["SCARD", "str"],
        ["SPOP", "str"],
        ["SPOP", "str", "1"],
        ["SRANDMEMBER", "str"],
        ["SRANDMEMBER", "str", "0"],
        ["SMOVE", "str", "s", "a"],
        ["SMOVE", "s", "str", "1"],
        ["SINTER", "s", "str"],
        ["SINTER", "nokey", "str"],
        ["SINTERCARD", "2", "nokey", "str"],
        ["SUNION", "s", "str"],
        ["SDIFF", "nokey", "str"],
        ["SINTERSTORE", "d", "str"],
        ["SUNIONSTORE", "d", "str"],
        ["SDIFFSTORE", "d", "s", "str"],
        ["SSCAN", "str", "0"],
    ):
        assert error(call(ex, *argv)) == errors.WRONGTYPE, argv
    assert call(ex, "TYPE", "s") == b"set"
    assert call(ex, "EXISTS", "d") == 0


def test_membership_on_missing_and_existing(ex: ShardExecutor) -> None:
    assert call(ex, "SISMEMBER", "nokey", "a") == 0
    assert call(ex, "SMISMEMBER", "nokey", "a", "b") == [0, 0]
    call(ex, "SADD", "s", "a", "1")
    assert call(ex, "SISMEMBER", "s", "a") == 1
    assert call(ex, "SMISMEMBER", "s", "1", "01", "a") == [1, 0, 1]
    assert call(ex, "SCARD", "nokey") == 0


# --- encodings and the order they make observable ------------------------------------------


def test_intset_iterates_in_numeric_order(ex: ShardExecutor) -> None:
    call(ex, "SADD", "s", "10", "-3", "2", "9223372036854775807", "-9223372036854775808", "0")
    assert encoding(ex, "s") == b"intset"
    expected = [b"-9223372036854775808", b"-3", b"0", b"2", b"10", b"9223372036854775807"]
    assert call(ex, "SMEMBERS", "s") == expected
    assert call(ex, "SSCAN", "s", "0") == [b"0", expected]
    assert call(ex, "SRANDMEMBER", "s", "100") == expected
    assert call(ex, "SUNION", "s", "nokey") == expected


@pytest.mark.parametrize(
    "member", [b"01", b"-0", b" 1", b"1 ", b"+1", b"1.0", b"a", b"9223372036854775808", b""]
)
def test_non_canonical_integers_need_a_hashtable(ex: ShardExecutor, member: bytes) -> None:
    call(ex, "SADD", "s", "1")
    call(ex, "SADD", "s", member)
    assert encoding(ex, "s") == b"hashtable"
    call(ex, "SREM", "s", member)
    assert encoding(ex, "s") == b"hashtable"  # never converts back


def test_intset_entry_limit(ex: ShardExecutor) -> None:
    ex.config["set-max-intset-entries"] = 3
    call(ex, "SADD", "s", "1", "2", "3")
    assert encoding(ex, "s") == b"intset"
    call(ex, "SADD", "s", "3")  # no new member: no conversion
    assert encoding(ex, "s") == b"intset"
    call(ex, "SADD", "s", "4")
    assert encoding(ex, "s") == b"hashtable"
    call(ex, "SREM", "s", "4", "3")
    assert encoding(ex, "s") == b"hashtable"
    ex.config["set-max-intset-entries"] = 0
    call(ex, "SADD", "z", "1")
    assert encoding(ex, "z") == b"hashtable"


def test_replies_are_resp3_sets(ex: ShardExecutor) -> None:
    call(ex, "SADD", "s", "2", "1")
    for argv in ([b"SMEMBERS", b"s"], [b"SINTER", b"s"], [b"SUNION", b"s"], [b"SDIFF", b"s"]):
        assert resp(ex, True, *argv) == b"~2\r\n$1\r\n1\r\n$1\r\n2\r\n"
        assert resp(ex, False, *argv) == b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    for argv in (
        [b"SMEMBERS", b"no"],
        [b"SINTER", b"s", b"no"],
        [b"SUNION", b"no"],
        [b"SDIFF", b"no", b"s"],
        [b"SPOP", b"no", b"3"],
        [b"SPOP", b"s", b"0"],
    ):
        assert resp(ex, True, *argv) == b"~0\r\n"
        assert resp(ex, False, *argv) == b"*0\r\n"
    assert resp(ex, True, b"SRANDMEMBER", b"no", b"3") == b"*0\r\n"
    assert resp(ex, True, b"SRANDMEMBER", b"s", b"-1")[:4] == b"*1\r\n"
    assert resp(ex, True, b"SPOP", b"s", b"1")[:4] == b"~1\r\n"
    assert resp(ex, True, b"SPOP", b"no") == b"_\r\n"
    assert resp(ex, False, b"SRANDMEMBER", b"no") == b"$-1\r\n"


def test_copy_and_transfer_keep_the_encoding(ex: ShardExecutor) -> None:
    call(ex, "SADD", "s", "1", "x")
    call(ex, "SREM", "s", "x")
    call(ex, "COPY", "s", "t")
    assert encoding(ex, "t") == b"hashtable"
    value = decode_value(*encode_value(SetValue({b"3", b"1"}, True)))
    assert value.intset and value.ordered() == [b"1", b"3"]


# --- SPOP / SRANDMEMBER ----------------------------------------------------------------------


def test_spop_single_and_counts(ex: ShardExecutor) -> None:
    call(ex, "SADD", "s", *[str(i) for i in range(20)])
    popped = call(ex, "SPOP", "s")
    assert popped not in call(ex, "SMEMBERS", "s") and call(ex, "SCARD", "s") == 19
    few = call(ex, "SPOP", "s", "3")
    assert type(few) is SetReply and len(set(few)) == 3 and call(ex, "SCARD", "s") == 16
    many = call(ex, "SPOP", "s", "15")
    assert len(set(many)) == 15 and call(ex, "SCARD", "s") == 1
    assert not set(many) & set(call(ex, "SMEMBERS", "s"))
    last = call(ex, "SMEMBERS", "s")
    assert call(ex, "SPOP", "s", "10") == last
    assert call(ex, "EXISTS", "s") == 0
    assert call(ex, "SPOP", "s") is None
    call(ex, "SADD", "one", "x")
    assert call(ex, "SPOP", "one") == b"x" and call(ex, "EXISTS", "one") == 0


def test_spop_errors_come_before_the_type_check(ex: ShardExecutor) -> None:
    call(ex, "SET", "str", "v")
    assert error(call(ex, "SPOP", "str", "-1")) == errors.MUST_BE_POSITIVE
    assert error(call(ex, "SPOP", "nokey", "x")) == errors.MUST_BE_POSITIVE
    assert error(call(ex, "SPOP", "str", "0")) == errors.WRONGTYPE
    assert error(call(ex, "SPOP", "str", "1", "2")) == errors.SYNTAX


def test_spop_rebuild_decides_the_encoding_afresh(ex: ShardExecutor) -> None:
    call(ex, "SADD", "s", *[str(i) for i in range(10)], "x")
    call(ex, "SREM", "s", "x")
    assert encoding(ex, "s") == b"hashtable"
    call(ex, "PEXPIRE", "s", "100000")
    call(ex, "SPOP", "s", "9")  # few remain: Redis moves them into a new set
    assert encoding(ex, "s") == b"intset"
    assert call(ex, "PTTL", "s") > 0


def test_spop_whole_set_answers_in_union_order(ex: ShardExecutor) -> None:
    call(ex, "SADD", "s", "5", "x", "3")
    call(ex, "SREM", "s", "x")
    assert call(ex, "SPOP", "s", "2") == [b"3", b"5"]  # the union of ints is an intset


def test_srandmember_counts(ex: ShardExecutor) -> None:
    members = {str(i).encode() for i in range(50)} | {b"a"}
    call(ex, "SADD", "s", *members)
    assert call(ex, "SRANDMEMBER", "s") in members
    assert call(ex, "SRANDMEMBER", "s", "0") == []
    for count in (1, 5, 20, 40, 50):
        got = call(ex, "SRANDMEMBER", "s", str(count))
        assert len(got) == count == len(set(got)) and set(got) <= members
    assert sorted(call(ex, "SRANDMEMBER", "s", "100")) == sorted(members)
    repeated = call(ex, "SRANDMEMBER", "s", "-200")
    assert len(repeated) == 200 and set(repeated) <= members
    assert call(ex, "SCARD", "s") == 51
    assert call(ex, "SRANDMEMBER", "nokey", "5") == []
    assert call(ex, "SRANDMEMBER", "nokey") is None


def test_srandmember_errors(ex: ShardExecutor) -> None:
    assert error(call(ex, "SRANDMEMBER", "s", "x")) == errors.NOT_INTEGER
    assert error(call(ex, "SRANDMEMBER", "s", "-9223372036854775808")) == errors.COUNT_RANGE
    assert error(call(ex, "SRANDMEMBER", "s", "1", "2")) == errors.SYNTAX
    call(ex, "SADD", "s", "a")
    assert error(call(ex, "SRANDMEMBER", "s", "-99999999999")) == errors.VALUE_OUT_OF_RANGE


def test_random_picks_cover_the_set_after_removals(ex: ShardExecutor) -> None:
    call(ex, "SADD", "s", *[str(i) for i in range(100)])
    call(ex, "SRANDMEMBER", "s")  # builds the sampling pool
    call(ex, "SREM", "s", *[str(i) for i in range(90)])
    seen = set(call(ex, "SRANDMEMBER", "s", "-500"))
    assert seen == {str(i).encode() for i in range(90, 100)}
    call(ex, "SADD", "s", "new")
    assert b"new" in set(call(ex, "SRANDMEMBER", "s", "-500"))


# --- SMOVE -------------------------------------------------------------------------------


def test_smove(ex: ShardExecutor) -> None:
    call(ex, "SET", "str", "v")
    assert call(ex, "SMOVE", "nokey", "str", "a") == 0  # a missing source wins
    call(ex, "SADD", "src", "a", "b")
    assert error(call(ex, "SMOVE", "src", "str", "a")) == errors.WRONGTYPE
    assert call(ex, "SMOVE", "src", "src", "a") == 1
    assert call(ex, "SMOVE", "src", "src", "z") == 0
    assert call(ex, "SMOVE", "src", "dst", "z") == 0
    assert call(ex, "SMOVE", "src", "dst", "a") == 1
    assert call(ex, "SMEMBERS", "dst") == [b"a"] and encoding(ex, "dst") == b"hashtable"
    assert call(ex, "SMOVE", "src", "num", "b") == 1
    assert call(ex, "EXISTS", "src") == 0
    call(ex, "SADD", "src", "7")
    assert call(ex, "SMOVE", "src", "ints", "7") == 1 and encoding(ex, "ints") == b"intset"
    call(ex, "SADD", "src", "b")
    assert call(ex, "SMOVE", "src", "num", "b") == 1  # already there: still moved out
    assert call(ex, "SMEMBERS", "num") == [b"b"] and call(ex, "EXISTS", "src") == 0


# --- algebra -------------------------------------------------------------------------------


def test_sinter_family(ex: ShardExecutor) -> None:
    call(ex, "SADD", "a", "1", "2", "3", "x")
    call(ex, "SADD", "b", "3", "2", "9")
    assert sorted(call(ex, "SINTER", "a", "b")) == [b"2", b"3"]
    assert call(ex, "SINTER", "b", "a") == [b"2", b"3"]  # smallest set is an intset
    assert call(ex, "SINTER", "a", "nokey") == []
    assert call(ex, "SINTER", "a", "a") == call(ex, "SMEMBERS", "a")
    assert call(ex, "SINTERCARD", "2", "a", "b") == 2
    assert call(ex, "SINTERCARD", "2", "a", "b", "LIMIT", "1") == 1
    assert call(ex, "SINTERCARD", "2", "a", "b", "limit", "0", "LIMIT", "5") == 2
    assert call(ex, "SINTERCARD", "1", "nokey") == 0
    assert call(ex, "SINTERSTORE", "d", "a", "b") == 2
    assert encoding(ex, "d") == b"intset"
    call(ex, "EXPIRE", "d", "100")
    assert call(ex, "SINTERSTORE", "d", "a", "x") == 0
    assert call(ex, "EXISTS", "d") == 0
    call(ex, "SET", "d", "string")
    assert call(ex, "SINTERSTORE", "d", "a") == 4 and encoding(ex, "d") == b"hashtable"
    assert call(ex, "TTL", "d") == -1


def test_sintercard_argument_errors(ex: ShardExecutor) -> None:
    for argv, message in (
        (["x", "s"], errors.NUMKEYS_NOT_POSITIVE),
        (["0", "s"], errors.NUMKEYS_NOT_POSITIVE),
        (["-1", "s"], errors.NUMKEYS_NOT_POSITIVE),
        (["3", "s"], errors.NUMKEYS_TOO_MANY),
        (["1", "s", "LIMIT", "-1"], errors.LIMIT_NEGATIVE),
        (["1", "s", "LIMIT", "x"], errors.LIMIT_NEGATIVE),
        (["1", "s", "LIMIT"], errors.SYNTAX),
        (["1", "s", "foo"], errors.SYNTAX),
    ):
        assert error(call(ex, "SINTERCARD", *argv)) == message, argv


def test_sunion_and_sdiff(ex: ShardExecutor) -> None:
    call(ex, "SADD", "a", "3", "1", "2")
    call(ex, "SADD", "b", "2", "x")
    assert sorted(call(ex, "SUNION", "a", "b", "nokey")) == [b"1", b"2", b"3", b"x"]
    assert call(ex, "SUNION", "a", "nokey") == [b"1", b"2", b"3"]
    assert call(ex, "SDIFF", "a", "b") == [b"1", b"3"]
    assert sorted(call(ex, "SDIFF", "b", "a")) == [b"x"]
    assert call(ex, "SDIFF", "a", "a") == [] and call(ex, "SDIFF", "nokey", "a") == []
    assert call(ex, "SUNIONSTORE", "u", "a", "b") == 4 and encoding(ex, "u") == b"hashtable"
    assert call(ex, "SUNIONSTORE", "u", "a") == 3 and encoding(ex, "u") == b"intset"
    assert call(ex, "SUNIONSTORE", "u", "nokey") == 0 and call(ex, "EXISTS", "u") == 0
    assert call(ex, "SDIFFSTORE", "d", "b", "a") == 1
    assert call(ex, "SDIFFSTORE", "d", "a", "a") == 0 and call(ex, "EXISTS", "d") == 0


def test_sdiff_encoding_follows_redis_algorithm(ex: ShardExecutor) -> None:
    call(ex, "SADD", "big", *[str(i) for i in range(9)], "x")
    call(ex, "SADD", "one", "x")
    call(ex, "SADD", "two", "y")
    # 10 * 3 / 2 > 10 + 1 + 1: Redis copies all of "big" first, so the result is a hashtable
    assert call(ex, "SDIFFSTORE", "d", "big", "one", "two") == 9
    assert encoding(ex, "d") == b"hashtable"
    # with one set to subtract Redis only adds the result's members: an intset
    assert call(ex, "SDIFFSTORE", "d", "big", "one") == 9
    assert encoding(ex, "d") == b"intset"


# --- SSCAN -------------------------------------------------------------------------------


def test_sscan_small_and_missing(ex: ShardExecutor) -> None:
    assert call(ex, "SSCAN", "nokey", "0", "COUNT", "0") == [b"0", []]
    call(ex, "SADD", "s", "3", "1", "22")
    assert call(ex, "SSCAN", "s", "0", "COUNT", "1") == [b"0", [b"1", b"3", b"22"]]
    assert call(ex, "SSCAN", "s", "0", "MATCH", "*2") == [b"0", [b"22"]]
    assert error(call(ex, "SSCAN", "s", "0", "COUNT", "0")) == errors.SYNTAX
    assert error(call(ex, "SSCAN", "s", "0", "COUNT", "x")) == errors.NOT_INTEGER
    assert error(call(ex, "SSCAN", "s", "0", "MATCH")) == errors.SYNTAX
    assert error(call(ex, "SSCAN", "s", "0", "TYPE", "set")) == errors.SYNTAX
    assert error(call(ex, "SSCAN", "s", "x")) == errors.INVALID_CURSOR


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"0", 0),
        (b"", 0),
        (b"+5", 5),
        (b"007", 7),
        (b"-1", 2**64 - 1),
        (b"-0", 0),
        (b"18446744073709551615", 2**64 - 1),
        (b"-18446744073709551615", 1),
        (b"12\x00junk", 12),
    ],
)
def test_cursor_parsing_follows_strtoul(raw: bytes, value: int) -> None:
    assert parse_cursor(raw) == value


@pytest.mark.parametrize(
    "raw",
    [b" 1", b"1 ", b"x", b"+", b"-", b"0x10", b"18446744073709551616", b"1" * 40, b"\t1", b"1.0"],
)
def test_invalid_cursors(raw: bytes) -> None:
    with pytest.raises(RedisError, match="invalid cursor"):
        parse_cursor(raw)


def test_sscan_big_set_returns_every_stable_member_once(ex: ShardExecutor) -> None:
    members = {f"m{i}".encode() for i in range(1000)}
    call(ex, "SADD", "s", *members)
    seen: list[bytes] = []
    cursor = b"0"
    steps = 0
    while True:
        cursor, chunk = call(ex, "SSCAN", "s", cursor, "COUNT", "50")
        seen += chunk
        steps += 1
        if steps == 3:  # changes during the scan: removed ones may vanish, new ones may show
            call(ex, "SREM", "s", "m1", "m2")
            call(ex, "SADD", "s", "late")
        if cursor == b"0":
            break
    assert steps == 20
    stable = members - {b"m1", b"m2"}
    assert stable <= set(seen) and len(seen) == len(set(seen))
    assert set(seen) <= members | {b"late"}


def test_sscan_unknown_cursor_starts_over(ex: ShardExecutor) -> None:
    call(ex, "SADD", "s", *[f"m{i}" for i in range(30)])
    cursor, chunk = call(ex, "SSCAN", "s", "12345678901234", "COUNT", "10")
    assert len(chunk) == 10 and cursor != b"0"
    for _ in range(SCANS.LIMIT + 1):  # older snapshots are dropped
        call(ex, "SSCAN", "s", "0", "COUNT", "1")
    _, chunk = call(ex, "SSCAN", "s", cursor, "COUNT", "30")
    assert len(chunk) == 30


def test_smove_touches_the_destination_only_when_it_changes(ex: ShardExecutor) -> None:
    """Redis signals SMOVE's destination only when the member was added (Tcl 'SMOVE only
    notify dstset when the addition is successful')."""
    call(ex, "SADD", "src", "a", "b")
    call(ex, "SADD", "dst", "a")
    call(ex, "__watch", 1, "dst")
    assert call(ex, "SMOVE", "src", "dst", "a") == 1  # dst already held it
    assert call(ex, "__watchcheck", 1) == 0
    call(ex, "__watch", 1, "dst")
    assert call(ex, "SMOVE", "src", "dst", "b") == 1
    assert call(ex, "__watchcheck", 1) == 1
