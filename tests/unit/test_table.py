"""The command table alone: lookups, arity rule and key positions the gateway routes by."""

from __future__ import annotations

from shard.table import TABLE, load_shard_commands, lookup

load_shard_commands()


def test_lookup_resolves_names_and_subcommands() -> None:
    assert lookup([b"GET", b"k"]).name == "get"
    assert lookup([b"object", b"ENCODING", b"k"]).fullname == "object|encoding"
    assert lookup([b"nosuch"]) is None
    assert lookup([b"object", b"nosuch"]) is None


def test_arity_rule() -> None:
    get, mset = TABLE["get"], TABLE["mset"]
    assert get.arity_ok(2) and not get.arity_ok(1) and not get.arity_ok(3)
    assert mset.arity_ok(3) and mset.arity_ok(5) and not mset.arity_ok(2)


def test_key_positions() -> None:
    assert TABLE["mset"].key_positions([b"mset", b"a", b"1", b"b", b"2"]) == [1, 3]
    assert TABLE["del"].key_positions([b"del", b"a", b"b", b"c"]) == [1, 2, 3]
    assert TABLE["blpop"].key_positions([b"blpop", b"a", b"b", b"0"]) == [1, 2]
    assert TABLE["lmpop"].key_positions([b"lmpop", b"2", b"a", b"b", b"LEFT"]) == [2, 3]
    zunionstore = TABLE["zunionstore"].key_positions([b"zunionstore", b"d", b"2", b"a", b"b"])
    assert sorted(zunionstore) == [1, 3, 4]
    assert TABLE["lmpop"].key_positions([b"lmpop", b"x", b"a"]) == []  # bad numkeys: no keys
    assert TABLE["dbsize"].key_positions([b"dbsize"]) == []


def test_every_command_is_declared_consistently() -> None:
    for spec in TABLE.values():
        for one in [spec, *spec.subcommands.values()]:
            assert one.arity != 0, one.name
            assert one.handler is not None or one.subcommands, one.name
            if one.first_key > 0:
                assert one.step > 0, one.name
