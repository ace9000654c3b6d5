"""The effects stream and the append-only log's codec, on executors without processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from persistence.aof_load import AofLoadError, replay_file
from persistence.aof_parse import CORRUPT, OK, TRUNCATED, AofParser
from persistence.effects import Effects, encode_command, encode_effects
from shard import wire
from shard.actor import ShardExecutor
from shard.rdb_values import to_rdb

NOW = 1_700_000_000_000


def _executor() -> ShardExecutor:
    executor = ShardExecutor(0, {"databases": 16}, clock=lambda: NOW)
    executor.effects = Effects()
    return executor


def _run(executor: ShardExecutor, *argv: bytes, db: int = 0) -> Any:
    executor.execute_batch([[wire.meta(db, False), [argv[0].lower(), *argv[1:]]]])
    assert executor.effects is not None
    return [(d, list(a)) for d, a in executor.effects.take()]


@pytest.mark.parametrize("argv, effects", [
    ([b"set", b"k", b"v"], [[b"set", b"k", b"v"]]),
    ([b"set", b"k", b"v", b"EX", b"10"], [[b"set", b"k", b"v", b"pxat", b"%d" % (NOW + 10000)]]),
    ([b"set", b"k", b"v", b"nx", b"px", b"5"], [[b"set", b"k", b"v", b"nx", b"pxat", b"%d" % (NOW + 5)]]),
    ([b"setex", b"k", b"3", b"v"], [[b"set", b"k", b"v", b"pxat", b"%d" % (NOW + 3000)]]),
    ([b"psetex", b"k", b"3", b"v"], [[b"set", b"k", b"v", b"pxat", b"%d" % (NOW + 3)]]),
    ([b"incrbyfloat", b"n", b"1.5"], [[b"set", b"n", b"1.5", b"keepttl"]]),
    ([b"hincrbyfloat", b"h", b"f", b"2.5"], [[b"hset", b"h", b"f", b"2.5"]]),
    ([b"get", b"missing"], []),
    ([b"del", b"missing"], []),  # changed nothing: nothing to log (Redis' server.dirty rule)
    ([b"rpush", b"l", b"a", b"b"], [[b"rpush", b"l", b"a", b"b"]]),
])
def test_effects_of_one_command(argv: list[bytes], effects: list[list[bytes]]) -> None:
    assert [a for _, a in _run(_executor(), *argv)] == effects


def test_relative_expiry_becomes_absolute_and_past_expiry_a_del() -> None:
    executor = _executor()
    _run(executor, b"set", b"k", b"v")
    assert _run(executor, b"expire", b"k", b"100") == [(0, [b"pexpireat", b"k", b"%d" % (NOW + 100000)])]
    assert _run(executor, b"getex", b"k", b"persist") == [(0, [b"persist", b"k"])]
    assert _run(executor, b"expire", b"k", b"-1") == [(0, [b"del", b"k"])]


def test_spop_becomes_srem_of_what_it_removed() -> None:
    executor = _executor()
    _run(executor, b"sadd", b"s", b"a", b"b", b"c")
    effects = _run(executor, b"spop", b"s", b"2")
    assert effects[0][1][:2] == [b"srem", b"s"] and len(effects[0][1]) == 4
    remaining = set(to_rdb(executor.ks.dbs[0].data[b"s"])[1])
    assert len(remaining) == 1 and not set(effects[0][1][2:]) & remaining


def test_blocking_pop_is_logged_as_its_plain_form_and_expiry_as_del() -> None:
    executor = _executor()
    _run(executor, b"rpush", b"l", b"x", db=3)
    assert _run(executor, b"blpop", b"other", b"l", b"0", db=3) == [(3, [b"lpop", b"l"])]
    _run(executor, b"set", b"t", b"v", b"pxat", b"%d" % (NOW + 1))
    executor.ks.clock = lambda: NOW + 2
    assert _run(executor, b"get", b"t") == [(0, [b"del", b"t"])]


def test_transaction_effects_are_wrapped_in_multi_exec() -> None:
    executor = _executor()
    meta = wire.meta(0, False) | wire.RUN | wire.NOBLOCK
    executor.execute_batch([[meta, [[b"set", b"a", b"1"], [b"get", b"a"], [b"incr", b"a"]]]])
    assert executor.effects is not None
    assert [a for _, a in executor.effects.take()] == [
        [b"multi"], [b"set", b"a", b"1"], [b"incr", b"a"], [b"exec"]]


def test_encoding_selects_the_database_when_it_changes() -> None:
    data, db = encode_effects([(0, [b"set", b"a", b"1"]), (0, [b"del", b"a"]), (2, [b"del", b"b"])], -1)
    assert db == 2
    assert data == (encode_command([b"select", b"0"]) + encode_command([b"set", b"a", b"1"])
                    + encode_command([b"del", b"a"]) + encode_command([b"select", b"2"])
                    + encode_command([b"del", b"b"]))


def test_parser_tells_truncation_from_corruption() -> None:
    good = encode_command([b"set", b"a", b"1"]) + encode_command([b"incr", b"a"])
    parser = AofParser(good)
    assert [argv for argv, _ in parser.commands()] == [[b"set", b"a", b"1"], [b"incr", b"a"]]
    assert parser.status == OK and parser.valid_end == len(good)
    first = len(encode_command([b"set", b"a", b"1"]))
    for cut in range(first + 1, len(good)):  # cut anywhere inside the last command
        parser = AofParser(good[:cut])
        assert len(list(parser.commands())) == 1
        assert (parser.status, parser.valid_end) == (TRUNCATED, first), cut
    for damaged in (good[:first] + b"X" + good[first + 1 :], good.replace(b"$1\r\n1", b"$1\r\n12")):
        parser = AofParser(damaged)
        list(parser.commands())
        assert parser.status == CORRUPT


def test_replay_reproduces_the_recorded_data(tmp_path: Path) -> None:
    source = _executor()
    commands = [[b"set", b"k", b"v", b"ex", b"100"], [b"incrbyfloat", b"f", b"0.5"],
                [b"sadd", b"s", b"a", b"b", b"c"], [b"spop", b"s"], [b"hset", b"h", b"x", b"1"],
                [b"rpush", b"l", b"1", b"2"], [b"lpop", b"l"]]
    log = b""
    db = -1
    for argv in commands:
        source.execute_batch([[wire.meta(5, False), argv]])
        assert source.effects is not None
        data, db = encode_effects(source.effects.take(), db)
        log += data
    log += encode_command([b"multi"]) + encode_command([b"set", b"half", b"tx"])  # no EXEC
    path = tmp_path / "a.aof"
    path.write_bytes(log)
    target = ShardExecutor(0, {"databases": 16}, clock=lambda: NOW)
    replay_file(target, str(path), load_truncated=True)
    assert _image(target) == _image(source)
    assert target.ks.dbs[5].expires == source.ks.dbs[5].expires
    assert path.read_bytes() == log[: log.index(b"*1\r\n$5\r\nmulti")]  # cut before the MULTI
    path.write_bytes(log)
    with pytest.raises(AofLoadError, match="Unexpected end of file"):
        replay_file(ShardExecutor(0, {"databases": 16}), str(path), load_truncated=False)


def _image(executor: ShardExecutor) -> dict[bytes, Any]:
    return {key: value if type(value) is bytes else to_rdb(value)
            for key, value in executor.ks.dbs[5].data.items()}
