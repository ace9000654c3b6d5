"""Hash commands driven through a ShardExecutor: no processes."""

from __future__ import annotations

import pytest

from shard import errors, wire
from shard.actor import ShardExecutor
from shard.hashes import HashValue
from shard.reply import Simple
from shard.values import decode_value, encode_value
from tests.unit.shard_calls import call, error


def resp(ex: ShardExecutor, resp3: bool, *argv: bytes) -> bytes:
    return ex.execute_batch([[wire.meta(0, resp3), [argv[0].lower(), *argv[1:]]]])[0]


def encoding(ex: ShardExecutor, key: str) -> bytes:
    return call(ex, "object", "encoding", key)


# --- writes ------------------------------------------------------------------------------


def test_hset_hmset_hsetnx(ex: ShardExecutor) -> None:
    assert call(ex, "HSET", "h", "a", "1", "b", "2", "a", "3") == 2
    assert call(ex, "HGET", "h", "a") == b"3"
    assert call(ex, "HMSET", "h", "c", "4") == Simple(b"OK")
    assert (
        error(call(ex, "HSET", "h", "a", "1", "b"))
        == "ERR wrong number of arguments for 'hset' command"
    )
    assert (
        error(call(ex, "HMSET", "h", "a", "1", "b"))
        == "ERR wrong number of arguments for 'hmset' command"
    )
    assert call(ex, "HSETNX", "h", "a", "x") == 0
    assert call(ex, "HSETNX", "h", "d", "x") == 1
    assert call(ex, "HSETNX", "new", "f", "v") == 1
    assert call(ex, "HGETALL", "h") == {b"a": b"3", b"b": b"2", b"c": b"4", b"d": b"x"}


def test_hdel_deletes_the_empty_hash(ex: ShardExecutor) -> None:
    call(ex, "HSET", "h", "a", "1", "b", "2")
    assert call(ex, "HDEL", "h", "a", "zz", "a") == 1
    assert call(ex, "HDEL", "nokey", "a") == 0
    assert call(ex, "HDEL", "h", "b") == 1
    assert call(ex, "EXISTS", "h") == 0


def test_wrong_type_everywhere(ex: ShardExecutor) -> None:
    call(ex, "SET", "str", "x")
    for argv in (
        ["HSET", "str", "a", "1"],
        ["HMSET", "str", "a", "1"],
        ["HSETNX", "str", "a", "1"],
        ["HGET", "str", "a"],
        ["HMGET", "str", "a"],
        ["HDEL", "str", "a"],
        ["HLEN", "str"],
        ["HSTRLEN", "str", "a"],
        ["HEXISTS", "str", "a"],
        ["HKEYS", "str"],
        ["HVALS", "str"],
        ["HGETALL", "str"],
        ["HINCRBY", "str", "a", "1"],
        ["HINCRBYFLOAT", "str", "a", "1"],
        ["HRANDFIELD", "str"],
        ["HRANDFIELD", "str", "0"],
        ["HSCAN", "str", "0"],
    ):
        assert error(call(ex, *argv)) == errors.WRONGTYPE, argv
    assert call(ex, "GET", "str") == b"x"


def test_reads_on_missing_keys(ex: ShardExecutor) -> None:
    assert call(ex, "HGET", "no", "a") is None
    assert call(ex, "HMGET", "no", "a", "b") == [None, None]
    assert call(ex, "HLEN", "no") == 0
    assert call(ex, "HSTRLEN", "no", "a") == 0
    assert call(ex, "HEXISTS", "no", "a") == 0
    assert call(ex, "HKEYS", "no") == [] and call(ex, "HVALS", "no") == []
    assert resp(ex, True, b"HGETALL", b"no") == b"%0\r\n"
    assert resp(ex, False, b"HGETALL", b"no") == b"*0\r\n"
    assert resp(ex, True, b"HRANDFIELD", b"no") == b"_\r\n"
    assert resp(ex, True, b"HRANDFIELD", b"no", b"3") == b"*0\r\n"
    assert call(ex, "HSCAN", "no", "0") == [b"0", []]


def test_reads(ex: ShardExecutor) -> None:
    call(ex, "HSET", "h", "f", "hello", "n", "12345", "e", "")
    assert call(ex, "HMGET", "h", "f", "zz", "n") == [b"hello", None, b"12345"]
    assert call(ex, "HSTRLEN", "h", "f") == 5 and call(ex, "HSTRLEN", "h", "n") == 5
    assert call(ex, "HSTRLEN", "h", "e") == 0 and call(ex, "HSTRLEN", "h", "zz") == 0
    assert call(ex, "HEXISTS", "h", "e") == 1 and call(ex, "HEXISTS", "h", "zz") == 0
    assert call(ex, "HLEN", "h") == 3


def test_listpack_order_is_insertion_order(ex: ShardExecutor) -> None:
    call(ex, "HSET", "h", "z", "1", "a", "2", "m", "3")
    call(ex, "HSET", "h", "a", "updated")  # keeps its place
    call(ex, "HDEL", "h", "z")
    call(ex, "HSET", "h", "z", "back")  # goes to the end
    assert call(ex, "HKEYS", "h") == [b"a", b"m", b"z"]
    assert call(ex, "HVALS", "h") == [b"updated", b"3", b"back"]
    assert resp(ex, True, b"HGETALL", b"h") == (
        b"%3\r\n$1\r\na\r\n$7\r\nupdated\r\n$1\r\nm\r\n$1\r\n3\r\n$1\r\nz\r\n$4\r\nback\r\n"
    )
    assert resp(ex, False, b"HGETALL", b"h")[:4] == b"*6\r\n"
    assert call(ex, "HSCAN", "h", "0", "COUNT", "1") == [
        b"0",
        [b"a", b"updated", b"m", b"3", b"z", b"back"],
    ]
    assert call(ex, "HRANDFIELD", "h", "10") == [b"a", b"m", b"z"]


# --- encodings -----------------------------------------------------------------------------


def test_entry_limit(ex: ShardExecutor) -> None:
    ex.config["hash-max-listpack-entries"] = 2
    call(ex, "HSET", "h", "a", "1", "b", "2")
    assert encoding(ex, "h") == b"listpack"
    call(ex, "HSET", "h", "a", "3")
    assert encoding(ex, "h") == b"listpack"
    call(ex, "HSET", "h", "c", "3")
    assert encoding(ex, "h") == b"hashtable"
    call(ex, "HDEL", "h", "c", "b")
    assert encoding(ex, "h") == b"hashtable"  # never converts back


@pytest.mark.parametrize(
    "argv",
    [
        ["HSET", "h", "x" * 65, "v"],
        ["HSET", "h", "f", "v" * 65],
        ["HSET", "h", "a", "v" * 65],
        ["HSETNX", "h", "new", "v" * 65],
        ["HINCRBYFLOAT", "h", "a", "1e70"],
        ["HINCRBY", "h", "f" * 65, "1"],
        ["HINCRBYFLOAT", "h", "f" * 65, "1"],
    ],
)
def test_value_length_limit(ex: ShardExecutor, argv: list[str]) -> None:
    call(ex, "HSET", "h", "a", "1")
    call(ex, *argv)
    assert encoding(ex, "h") == b"hashtable"


def test_long_values_of_existing_fields_convert_too(ex: ShardExecutor) -> None:
    call(ex, "HSET", "h", "a", "1")
    assert call(ex, "HSETNX", "h", "a", "v" * 65) == 0
    assert encoding(ex, "h") == b"listpack"  # HSETNX of an existing field changes nothing
    ex.config["hash-max-listpack-value"] = 3
    call(ex, "HINCRBY", "h", "a", "999")
    assert encoding(ex, "h") == b"hashtable"  # "1000" is 4 bytes


def test_encoding_travels_with_the_value(ex: ShardExecutor) -> None:
    call(ex, "HSET", "h", "b", "1", "a", "2", "x" * 100, "3")
    call(ex, "HDEL", "h", "x" * 100)
    call(ex, "COPY", "h", "c")
    assert encoding(ex, "c") == b"hashtable"
    value = decode_value(*encode_value(HashValue({b"b": b"1", b"a": b"2"})))
    assert value.listpack and list(value.fields) == [b"b", b"a"]


# --- increments ----------------------------------------------------------------------------


def test_hincrby(ex: ShardExecutor) -> None:
    assert call(ex, "HINCRBY", "h", "n", "5") == 5
    assert call(ex, "HINCRBY", "h", "n", "-7") == -2
    call(ex, "HSET", "h", "s", "abc", "big", "9223372036854775807", "sp", " 1")
    assert error(call(ex, "HINCRBY", "h", "s", "1")) == errors.HASH_NOT_INTEGER
    assert error(call(ex, "HINCRBY", "h", "sp", "1")) == errors.HASH_NOT_INTEGER
    assert error(call(ex, "HINCRBY", "h", "big", "1")) == errors.OVERFLOW
    assert call(ex, "HINCRBY", "h", "big", "-1") == 9223372036854775806
    assert error(call(ex, "HINCRBY", "h", "n", "x")) == errors.NOT_INTEGER
    call(ex, "SET", "str", "v")
    assert error(call(ex, "HINCRBY", "str", "n", "x")) == errors.NOT_INTEGER  # before the type
    assert error(call(ex, "HINCRBY", "new", "n", "1.5")) == errors.NOT_INTEGER
    assert call(ex, "EXISTS", "new") == 0


def test_hincrbyfloat(ex: ShardExecutor) -> None:
    assert call(ex, "HINCRBYFLOAT", "h", "f", "10.5") == b"10.5"
    assert call(ex, "HINCRBYFLOAT", "h", "f", "0.1") == b"10.6"
    assert call(ex, "HINCRBYFLOAT", "h", "f", "-5.6") == b"5"
    assert call(ex, "HINCRBYFLOAT", "h", "g", "5.0e3") == b"5000"
    assert call(ex, "HGET", "h", "g") == b"5000"
    call(ex, "HSET", "h", "s", "abc", "m", "1.7976931348623157e308")
    call(ex, "SET", "str", "v")
    assert error(call(ex, "HINCRBYFLOAT", "str", "f", "x")) == errors.NOT_FLOAT
    assert error(call(ex, "HINCRBYFLOAT", "str", "f", "inf")) == errors.VALUE_NAN_OR_INF
    assert error(call(ex, "HINCRBYFLOAT", "str", "f", "1")) == errors.WRONGTYPE
    assert error(call(ex, "HINCRBYFLOAT", "h", "f", "nan")) == errors.NOT_FLOAT
    assert error(call(ex, "HINCRBYFLOAT", "h", "s", "1")) == errors.HASH_NOT_FLOAT
    assert error(call(ex, "HINCRBYFLOAT", "new", "f", "1e5000")) == errors.NOT_FLOAT
    assert call(ex, "EXISTS", "new") == 0


# --- HRANDFIELD ----------------------------------------------------------------------------


def test_hrandfield_counts(ex: ShardExecutor) -> None:
    fields = {f"f{i}".encode(): f"v{i}".encode() for i in range(30)}
    call(ex, "HSET", "h", *[x for pair in fields.items() for x in pair])
    assert call(ex, "HRANDFIELD", "h") in fields
    assert call(ex, "HRANDFIELD", "h", "0") == []
    for count in (1, 5, 15, 29):
        got = call(ex, "HRANDFIELD", "h", str(count))
        assert len(got) == count == len(set(got)) and set(got) <= set(fields)
    assert call(ex, "HRANDFIELD", "h", "30") == list(fields)
    repeated = call(ex, "HRANDFIELD", "h", "-100")
    assert len(repeated) == 100 and set(repeated) <= set(fields)
    flat = call(ex, "HRANDFIELD", "h", "-7", "WITHVALUES")
    assert len(flat) == 14 and all(
        fields[f] == v for f, v in zip(flat[::2], flat[1::2], strict=True)
    )
    pairs = call(ex, "HRANDFIELD", "h", "5", "withvalues", resp3=True)
    assert len(pairs) == 5 and all(fields[f] == v for f, v in pairs)
    assert len({f for f, _ in pairs}) == 5


def test_hrandfield_resp_shapes(ex: ShardExecutor) -> None:
    call(ex, "HSET", "h", "a", "1")
    assert resp(ex, True, b"HRANDFIELD", b"h", b"1", b"WITHVALUES") == (
        b"*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    )
    assert resp(ex, False, b"HRANDFIELD", b"h", b"1", b"WITHVALUES") == (
        b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    )
    assert resp(ex, True, b"HRANDFIELD", b"h", b"-2") == b"*2\r\n$1\r\na\r\n$1\r\na\r\n"


def test_hrandfield_errors(ex: ShardExecutor) -> None:
    call(ex, "HSET", "h", "a", "1")
    assert error(call(ex, "HRANDFIELD", "h", "x")) == errors.NOT_INTEGER
    assert error(call(ex, "HRANDFIELD", "no", "x", "junk")) == errors.NOT_INTEGER
    assert error(call(ex, "HRANDFIELD", "h", "1", "withvalue")) == errors.SYNTAX
    assert error(call(ex, "HRANDFIELD", "no", "1", "withvalues", "x")) == errors.SYNTAX
    assert error(call(ex, "HRANDFIELD", "h", "-9223372036854775808")) == errors.COUNT_RANGE
    for count in ("4611686018427387904", "-4611686018427387904"):
        assert error(call(ex, "HRANDFIELD", "h", count, "WITHVALUES")) == errors.VALUE_OUT_OF_RANGE
    assert call(ex, "HRANDFIELD", "h", "4611686018427387904") == [b"a"]


# --- HSCAN -------------------------------------------------------------------------------


def test_hscan_options(ex: ShardExecutor) -> None:
    call(ex, "HSET", "h", "apple", "1", "banana", "2", "avocado", "3")
    assert call(ex, "HSCAN", "h", "0", "MATCH", "a*") == [b"0", [b"apple", b"1", b"avocado", b"3"]]
    assert call(ex, "HSCAN", "h", "0", "MATCH", "*", "COUNT", "1")[1][:2] == [b"apple", b"1"]
    assert error(call(ex, "HSCAN", "h", "0", "NOVALUES")) == errors.SYNTAX
    assert error(call(ex, "HSCAN", "h", "0", "COUNT", "0")) == errors.SYNTAX
    assert error(call(ex, "HSCAN", "h", " 0")) == errors.INVALID_CURSOR
    assert call(ex, "HSCAN", "no", "0", "COUNT", "0") == [b"0", []]


def test_hscan_big_hash(ex: ShardExecutor) -> None:
    fields = {f"f{i}".encode(): f"v{i}".encode() for i in range(700)}
    call(ex, "HSET", "h", *[x for pair in fields.items() for x in pair])
    assert encoding(ex, "h") == b"hashtable"
    got: dict[bytes, bytes] = {}
    cursor, steps = b"0", 0
    while True:
        cursor, flat = call(ex, "HSCAN", "h", cursor, "COUNT", "100", "MATCH", "f1*")
        got.update(zip(flat[::2], flat[1::2], strict=True))
        steps += 1
        if cursor == b"0":
            break
    assert steps == 7
    assert got == {f: v for f, v in fields.items() if f.startswith(b"f1")}
