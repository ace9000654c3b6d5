"""server.config: redis.conf parsing, the command line, CONFIG GET/SET, and parity with Redis.

Expected values come from redis-server 7.0.15; the last section re-checks the important ones
against a real redis-server (skipped when it is not installed).
"""

from __future__ import annotations

import os
import pickle
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hiredis
import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.config import (
    DIRECTIVES,
    Config,
    ConfigError,
    command_line_text,
    join_args,
    parse_memory,
    quote_arg,
    split_args,
)
from tests.servers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
FATAL_HEAD = "*** FATAL CONFIG FILE ERROR (Atoll 7.0.15) ***\n"

# Documented differences from `CONFIG GET *` of a redis-server started without a config file:
ATOLL_ONLY = {"shards", "gateways"}  # Atoll's own directives
OWN_DEFAULTS = {"bind", "dir", "port"}  # Atoll's defaults (Redis' bind without a file is
# "* -::*"; dir is ./data made absolute; the reference runs on a free port)


def load(text: str, tmp_path: Path, *options: str) -> Config:
    path = tmp_path / "test.conf"
    path.write_text(text)
    return Config.from_args([str(path), *options])


def fatal(argv: list[str]) -> str:
    with pytest.raises(ConfigError) as info:
        Config.from_args(argv)
    return str(info.value)


def fatal_text(text: str, tmp_path: Path, *options: str) -> str:
    path = tmp_path / "bad.conf"
    path.write_text(text)
    return fatal([str(path), *options])


def set_error(pairs: list[tuple[str, str]], config: Config | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        (config or Config.from_args([])).set(pairs)
    return str(info.value)


# --- argument splitting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("port 6379", ["port", "6379"]),
        ("  a \t b  ", ["a", "b"]),
        ('a "b c" d', ["a", "b c", "d"]),
        ('"\\n\\r\\t\\b\\a\\\\\\""', ["\n\r\t\b\a\\" + '"']),
        ('"\\x41\\x7a"', ["Az"]),
        ('"\\xZZ"', ["xZZ"]),  # not hex: the backslash just quotes the x
        ('"\\q"', ["q"]),
        ("'it\\'s'", ["it's"]),
        ("'a\\nb'", ["a\\nb"]),  # single quotes keep backslashes
        ('foo"bar baz"', ["foobar baz"]),  # a quote inside a word opens a quoted part
        ('"" x', ["", "x"]),
        ("''", [""]),
        ('"a"\t"b"', ["a", "b"]),
        ("", []),
        ("   ", []),
    ],
)
def test_split_args(line: str, args: list[str]) -> None:
    assert split_args(line) == args


@pytest.mark.parametrize("line", ['"abc', "'abc", '"a"b', "'a'b", 'x "a\\"'])
def test_split_args_unbalanced(line: str) -> None:
    with pytest.raises(ValueError):
        split_args(line)


@given(st.text(alphabet=st.characters(max_codepoint=255)))
def test_quote_arg_round_trips(text: str) -> None:
    assert split_args(quote_arg(text)) == [text]


@given(st.lists(st.text(alphabet=st.characters(max_codepoint=255))))
def test_join_args_round_trips(args: list[str]) -> None:
    assert split_args(join_args(args)) == args


def test_quote_arg_like_redis() -> None:
    assert quote_arg('a b"\\\n\x01\xe9') == '"a b\\"\\\\\\n\\x01\\xe9"'


# --- sizes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("1k", 1000),
        ("1K", 1000),
        ("1kb", 1024),
        ("1kB", 1024),
        ("1m", 1000**2),
        ("1mb", 1024**2),
        ("1g", 1000**3),
        ("1GB", 1024**3),
        ("1b", 1),
        ("007", 7),
        ("", 0),
        ("k", 0),
        ("18446744073709551616", 2**64 - 1),  # saturates
        ("99999999999999999999k", 2**64 - 1000),  # then wraps, as Redis
    ],
)
def test_memory_units(text: str, value: int) -> None:
    assert parse_memory(text) == value


@pytest.mark.parametrize("text", [" 1k", "1.5k", "+1", "-0", "1 k", "1t", "0x10", "1kbb", "1e3"])
def test_memory_rejects(text: str) -> None:
    assert parse_memory(text) is None


def test_units_in_a_file(tmp_path: Path) -> None:
    config = load("maxmemory 2mb\nproto-max-bulk-len 1G\nhash-max-listpack-value 1k\n", tmp_path)
    assert config.value("maxmemory") == 2 * 1024**2
    assert config.get("proto-max-bulk-len") == "1000000000"
    assert config.value("hash-max-listpack-value") == 1000


# --- files --------------------------------------------------------------------------------------


def test_comments_blank_lines_case_and_crlf(tmp_path: Path) -> None:
    text = "# a comment\n\n   \t\n  # indented comment\r\nPORT 7001\r\nAppendOnly YES\r\n"
    config = load(text, tmp_path)
    assert config.value("port") == 7001
    assert config.value("appendonly") is True
    assert config.get("appendonly") == "yes"


def test_later_lines_win(tmp_path: Path) -> None:
    config = load("port 7001\nmaxmemory-policy allkeys-lru\nport 7002\n", tmp_path)
    assert config.value("port") == 7002
    assert config.get("maxmemory-policy") == "allkeys-lru"


def test_trailing_hash_is_not_a_comment(tmp_path: Path) -> None:
    assert fatal_text("port 5 # five\n", tmp_path).endswith("wrong number of arguments")


def test_include_is_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "main.conf").write_text("port 7001\ninclude extra.conf\ntimeout 5\n")
    (tmp_path / "extra.conf").write_text("port 7002\ntimeout 9\n")
    monkeypatch.chdir(tmp_path)
    config = Config.from_args(["sub/main.conf"])
    assert (config.value("port"), config.value("timeout")) == (7002, 5)
    assert config.config_file == str(tmp_path / "sub" / "main.conf")


def test_include_glob_loads_in_order(tmp_path: Path) -> None:
    (tmp_path / "b.conf").write_text("save 20 2\n")
    (tmp_path / "a.conf").write_text("save 10 1\n")
    config = load(f"include {tmp_path}/[ab].conf\ninclude {tmp_path}/none*.conf\n", tmp_path)
    assert config.get("save") == "10 1 20 2"


def test_include_errors(tmp_path: Path) -> None:
    (tmp_path / "inner.conf").write_text("port 1\n\nport zz\n")
    message = fatal_text(f"port 2\ninclude {tmp_path}/inner.conf\n", tmp_path)
    assert message == FATAL_HEAD + (
        "Reading the configuration file, at line 3\n>>> 'port zz'\n"
        "argument couldn't be parsed into an integer"
    )
    message = fatal_text("include nothere.conf\n", tmp_path)
    assert (
        message == "Fatal error, can't open config file 'nothere.conf': No such file or directory"
    )
    assert fatal_text("include a b\n", tmp_path).endswith(
        ">>> 'include a b'\nBad directive or wrong number of arguments"
    )


def test_include_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "loop.conf").write_text(f"include {tmp_path}/loop.conf\n")
    assert fatal([str(tmp_path / "loop.conf")]).endswith("Too many nested include directives")


def test_missing_config_file_is_named_absolutely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert fatal(["nope.conf"]) == (
        f"Fatal error, can't open config file '{tmp_path}/nope.conf': No such file or directory"
    )


def test_file_only_directives_are_kept(tmp_path: Path) -> None:
    text = (
        "rename-command flushall ''\nrename-command CONFIG myconfig\n"
        'user alice on >pw ~* +@all\nuser bob on ">a b"\n'
        "list-max-ziplist-entries 5\nlua-replicate-commands yes\n"
    )
    config = load(text, tmp_path)
    assert config.rename_commands == [("flushall", ""), ("CONFIG", "myconfig")]
    assert config.users == ["alice on >pw ~* +@all", 'bob on ">a b"']
    assert split_args(config.users[1]) == ["bob", "on", ">a b"]
    assert config.match(["rename-command", "user", "include", "list-max-ziplist-entries"]) == []


# --- save: points accumulate, the first line replaces the defaults ---------------------------


@pytest.mark.parametrize(
    ("text", "options", "save"),
    [
        ("", [], "3600 1 300 100 60 10000"),
        ("save 10 1\nsave 20 2\n", [], "10 1 20 2"),
        ("save 10 1 20 2\n", [], "10 1 20 2"),
        ('save "10  1 20 2"\n', [], "10 1 20 2"),
        ('save 10 1\nsave ""\nsave 30 3\n', [], "30 3"),
        ('save 10 1\nsave ""\n', [], ""),
        ("save\n", [], ""),
        ("save 10 1\nsave\n", [], "10 1"),
        ("save 10 1\n", ["--save", "40", "4"], "10 1 40 4"),
        ("save 10 1\n", ["--save", "", "--save", "60", "1"], "60 1"),
        ("", ["--save", "60", "1", "--save", "70", "2"], "60 1 70 2"),
        ("", ["--save", "60 1"], "60 1"),
        ("", ["--save"], ""),
        ("", ["--save", "--appendonly", "yes"], ""),
        ("save 1 1\n", ["--save", " "], "1 1"),
        ("save 05 +1 9223372036854775807 9223372036854775807\n", [], "5 1 9223372036854775807 -1"),
    ],
)
def test_save_lines(text: str, options: list[str], save: str, tmp_path: Path) -> None:
    assert load(text, tmp_path, *options).get("save") == save


def test_save_value() -> None:
    assert Config.from_args([]).value("save") == [(3600, 1), (300, 100), (60, 10000)]


# --- the command line ---------------------------------------------------------------------------


def test_command_line_overrides_file(tmp_path: Path) -> None:
    config = load(
        "port 7001\ntimeout 3\n", tmp_path, "--port", "7002", "--timeout", "4", "--port", "7003"
    )
    assert (config.value("port"), config.value("timeout")) == (7003, 4)


@pytest.mark.parametrize(
    ("options", "text"),
    [
        (["--port", "7000"], 'port "7000" '),
        (["--save", "60", "1", "--port", "7000"], 'save "60" "1" \nport "7000" '),
        (["--masterauth", "--port", "1"], 'masterauth "--port" "1" '),  # a value may start with --
        (["--save", "--port", "1"], 'save ""\nport "1" '),
        (["--port 7000", "--timeout", "1"], 'port 7000 \ntimeout "1" '),
        (["-port", "5"], '"-port" "5" '),
        (["--requirepass", 'a "b'], 'requirepass "a \\"b" '),
    ],
)
def test_command_line_text(options: list[str], text: str) -> None:
    assert command_line_text(options) == text


def test_command_line_values(tmp_path: Path) -> None:
    config = Config.from_args(
        ["--masterauth", "--secret", "--bind", "1.2.3.4", "::1", "--port 7005"]
    )
    assert config.value("masterauth") == "--secret"
    assert config.value("bind") == ["1.2.3.4", "::1"]
    assert config.value("port") == 7005


@pytest.mark.parametrize(
    ("argv", "line", "shown", "reason"),
    [
        (["--port", "abc"], 2, 'port "abc"', "argument couldn't be parsed into an integer"),
        (["--foo", "bar"], 2, 'foo "bar"', "Bad directive or wrong number of arguments"),
        (["--port", "1", "2"], 2, 'port "1" "2"', "wrong number of arguments"),
        (["--save", "60", "1", "--port"], 3, "port", "wrong number of arguments"),
        (
            ["--bind", "x", "--appendonly", "maybe"],
            3,
            'appendonly "maybe"',
            "argument must be 'yes' or 'no'",
        ),
    ],
)
def test_command_line_errors(argv: list[str], line: int, shown: str, reason: str) -> None:
    assert (
        fatal(argv)
        == FATAL_HEAD + f"Reading the configuration file, at line {line}\n>>> '{shown}'\n{reason}"
    )


@pytest.mark.parametrize(("text", "line"), [("port 1", 2), ("port 1\n", 3), ("port 1\n\n# c\n", 5)])
def test_command_line_lines_follow_the_file(text: str, line: int, tmp_path: Path) -> None:
    """Options are lines after the file's text, joined to it by one newline."""
    assert f"at line {line}\n>>> 'port \"x\"'" in fatal_text(text, tmp_path, "--port", "x")


# --- start-up errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("nosuch 1", "Bad directive or wrong number of arguments"),
        ("port abc", "argument couldn't be parsed into an integer"),
        ("port 70000", "argument must be between 0 and 65535 inclusive"),
        ("port -0", "argument couldn't be parsed into an integer"),
        ("databases 0", "argument must be between 1 and 2147483647 inclusive"),
        ("shards 1025", "argument must be between 0 and 1024 inclusive"),
        ("gateways 0", "argument must be between 1 and 64 inclusive"),
        ("appendonly maybe", "argument must be 'yes' or 'no'"),
        ("maxmemory 1x", "argument must be a memory value"),
        ("maxmemory-clients 101%", "percentage argument must be less or equal to 100"),
        (
            "maxmemory-policy foo",
            "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random,"
            " volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction",
        ),
        ('port "1', "Unbalanced quotes in configuration line"),
        ('port "1"x', "Unbalanced quotes in configuration line"),
        ("save 10", "Invalid save parameters"),
        ("save 0 1", "Invalid save parameters"),
        ("bind " + " ".join(str(n) for n in range(17)), "Too many bind addresses specified."),
        ("client-output-buffer-limit master 1 1 1", "Invalid client class specified in buffer limit configuration."),
        ("client-output-buffer-limit normal 1 1", "Wrong number of arguments in buffer limit configuration."),
        ("client-output-buffer-limit normal 1 1 -1", "Error in hard, soft or soft_seconds setting in buffer limit configuration."),
        ("oom-score-adj-values 1 2", "wrong number of arguments"),
        ("oom-score-adj-values 1 2 3000", "Invalid oom-score-adj-values, elements must be between -2000 and 2000."),
        ("latency-tracking-info-percentiles 101", "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"),
        ("latency-tracking-info-percentiles nan", "Invalid latency-tracking-info-percentiles parameters"),
        ("notify-keyspace-events Q", "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
        ("replicaof a", "wrong number of arguments"),
        ("replicaof 127.0.0.1 99999", "Invalid master port"),
        ("shutdown-on-sigint save nosave", "shutdown options SAVE and NOSAVE can't be used simultaneously"),
        ("shutdown-on-sigint later", "argument(s) must be one of the following: default, save, nosave, now, force"),
        ("unixsocketperm 800", "argument couldn't be parsed as an octal number"),
        ("unixsocketperm 1777", "argument must be between 0 and 777 inclusive"),
        ("dbfilename a/b", "dbfilename can't be a path, just a filename"),
        ('appendfilename ""', "appendfilename can't be empty"),
        ("appenddirname a\\\\b", "appenddirname can't be a path, just a dirname"),
        ("proc-title-template {title}", "template format is invalid or contains unknown variables"),
        ("proc-title-template {nope}", "template format is invalid or contains unknown variables"),
        ("cluster-announce-hostname a_b", "Hostnames may only contain alphanumeric characters, hyphens or dots"),
        ('dir ""', "No such file or directory"),
        ("sentinel monitor x", "sentinel directive while not in sentinel mode"),
        ("rename-command get", "Bad directive or wrong number of arguments"),
        ("user", "Bad directive or wrong number of arguments"),
        ("loadmodule", "Bad directive or wrong number of arguments"),
        ("list-max-ziplist-entries", "Bad directive or wrong number of arguments"),
        ("logfile", "wrong number of arguments"),
    ],
)  # fmt: skip
def test_startup_errors(line: str, reason: str, tmp_path: Path) -> None:
    message = fatal_text(f"# first\n{line}\n", tmp_path)
    assert (
        message == FATAL_HEAD + f"Reading the configuration file, at line 2\n>>> '{line}'\n{reason}"
    )


# --- values ---------------------------------------------------------------------------------------


def test_value_types(tmp_path: Path) -> None:
    config = load(
        "client-output-buffer-limit replica 1mb 2mb 3\nunixsocketperm 0755\n"
        "notify-keyspace-events KEA\nreplicaof 10.0.0.1 +6380\nhz 1000\n",
        tmp_path,
    )
    assert config.value("port") == 6379
    assert config.value("protected-mode") is True
    assert config.value("maxmemory-policy") == "noeviction"
    assert config.value("bind") == ["127.0.0.1", "-::1"]
    assert config.value("dir") == os.path.abspath("data")
    assert config.value("client-output-buffer-limit")["slave"] == (1024**2, 2 * 1024**2, 3)
    assert config.get("client-output-buffer-limit") == (
        "normal 0 0 0 slave 1048576 2097152 3 pubsub 33554432 8388608 60"
    )
    assert (config.value("unixsocketperm"), config.get("unixsocketperm")) == (0o755, "755")
    assert (config.value("notify-keyspace-events"), config.get("notify-keyspace-events")) == (
        "g$lshzxetdKE",
        "AKE",
    )
    assert config.get("replicaof") == config.get("slaveof") == "10.0.0.1 6380"
    assert config.value("hz") == 500  # clamped like Redis
    assert config.value("latency-tracking-info-percentiles") == [50.0, 99.0, 99.9]


def test_get_and_value_reject_unknown_names() -> None:
    config = Config.from_args([])
    with pytest.raises(KeyError):
        config.get("nosuch")
    with pytest.raises(KeyError):
        config.value("include")


def test_value_returns_a_copy() -> None:
    config = Config.from_args([])
    config.value("bind").append("0.0.0.0")
    assert config.value("bind") == ["127.0.0.1", "-::1"]


def test_default_file_loads_to_the_defaults() -> None:
    config = Config.from_args([str(ROOT / "conf" / "atoll.conf")])
    assert config.match(["*"]) == Config.from_args([]).match(["*"])
    assert config.config_file == str(ROOT / "conf" / "atoll.conf")


@pytest.mark.parametrize("codec", ["pickle", "msgpack"])
def test_dict_round_trip(codec: str, tmp_path: Path) -> None:
    config = load(
        "save 5 5\nclient-output-buffer-limit pubsub 1 2 3\nrename-command get fetch\n"
        "user default on nopass\nnotify-keyspace-events KAn\nlatency-tracking-info-percentiles 1.5\n",
        tmp_path,
        "--maxmemory-clients",
        "5%",
    )
    data = config.to_dict()
    wire = (
        pickle.loads(pickle.dumps(data))
        if codec == "pickle"
        else msgpack.unpackb(msgpack.packb(data))
    )
    rebuilt = Config.from_dict(wire)
    assert rebuilt.match(["*"]) == config.match(["*"])
    assert rebuilt.value("save") == [(5, 5)]
    assert rebuilt.value("client-output-buffer-limit")["pubsub"] == (1, 2, 3)
    assert rebuilt.value("notify-keyspace-events") == "g$lshzxetdnK"  # "A" plus "n" survives
    assert (rebuilt.rename_commands, rebuilt.users) == ([("get", "fetch")], ["default on nopass"])
    assert rebuilt.config_file == config.config_file


# --- CONFIG SET ---------------------------------------------------------------------------------


def failed(name: str, reason: str) -> str:
    return f"ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"


@pytest.mark.parametrize(
    ("pairs", "error"),
    [
        ([("foo", "bar")], "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
        ([("include", "x")], "ERR Unknown option or number of arguments for CONFIG SET - 'include'"),
        ([("DAEMONIZE", "no")], failed("DAEMONIZE", "can't set immutable config")),
        ([("slaveof", "a 1")], failed("slaveof", "can't set immutable config")),
        ([("shards", "2")], failed("shards", "can't set immutable config")),
        ([("dir", "/tmp")], failed("dir", "can't set protected config")),
        ([("dbfilename", "x.rdb")], failed("dbfilename", "can't set protected config")),
        ([("port", "1"), ("PORT", "2")], failed("PORT", "duplicate parameter")),
        ([("maxmemory", "abc")], failed("maxmemory", "argument must be a memory value")),
        ([("MAXMEMORY", "-1")], failed("maxmemory", "argument must be a memory value")),
        ([("Slave-Read-Only", "maybe")], failed("slave-read-only", "argument must be 'yes' or 'no'")),
        ([("timeout", " 5")], failed("timeout", "argument couldn't be parsed into an integer")),
        ([("timeout", "-1")], failed("timeout", "argument must be between 0 and 2147483647 inclusive")),
        ([("maxmemory-clients", "05%")], failed("maxmemory-clients", "argument must be a memory or percent value")),
        ([("save", "60")], failed("save", "Invalid save parameters")),
        ([("save", " ")], failed("save", "Invalid save parameters")),
        ([("oom-score-adj-values", " 1 2 3")], failed("oom-score-adj-values", "wrong number of arguments")),
        ([("proc-title-template", "")], failed("proc-title-template", "template format is invalid or contains unknown variables")),
        # names are all checked before any value
        ([("timeout", "abc"), ("daemonize", "no")], failed("daemonize", "can't set immutable config")),
        ([("daemonize", "no"), ("foo", "1")], failed("daemonize", "can't set immutable config")),
        ([("maxmemory", "abc"), ("timeout", "abc")], failed("maxmemory", "argument must be a memory value")),
    ],
)  # fmt: skip
def test_set_errors(pairs: list[tuple[str, str]], error: str) -> None:
    assert set_error(pairs) == error


def test_set_is_atomic() -> None:
    config = Config.from_args([])
    before = config.match(["*"])
    set_error([("timeout", "5"), ("save", "1 1"), ("maxmemory", "abc")], config)
    set_error([("timeout", "5"), ("daemonize", "yes")], config)
    assert config.match(["*"]) == before


def test_set_returns_changed_names() -> None:
    config = Config.from_args([])
    changed = config.set([("TIMEOUT", "5"), ("maxmemory", "1mb"), ("port", "6379")])
    assert changed == ["timeout", "maxmemory"]
    assert (config.value("timeout"), config.get("maxmemory")) == (5, "1048576")


def test_set_alias_and_name_later_wins() -> None:
    config = Config.from_args([])
    assert config.set([("hash-max-ziplist-entries", "1"), ("hash-max-listpack-entries", "2")]) == [
        "hash-max-listpack-entries"
    ]
    assert config.get("hash-max-ziplist-entries") == "2"


@pytest.mark.parametrize(
    ("name", "text", "shown"),
    [
        ("save", "", ""),
        ("save", "5 1 3 2", "5 1 3 2"),  # CONFIG SET replaces the points
        ("client-output-buffer-limit", "NORMAL 1kb 1 +1", "normal 1024 1 1 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
        ("client-output-buffer-limit", "", "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
        ("maxmemory-clients", "10%", "10%"),
        ("maxmemory-clients", "0%", "0"),
        ("maxmemory-clients", "18446744073709551615", "1%"),
        ("maxmemory", "18446744073709551616", "18446744073709551615"),
        ("notify-keyspace-events", "Kxx", "xK"),
        ("notify-keyspace-events", "KEAmn", "AKEm"),
        ("notify-keyspace-events", "Elg", "glE"),
        ("shutdown-on-sigint", "force NOW save", "save now force"),
        ("shutdown-on-sigint", "default now", "now"),
        ("oom-score-adj", "relative", "yes"),
        ("oom-score-adj-values", "+5 010 -2000", "5 10 -2000"),
        ("latency-tracking-info-percentiles", "33.333333333 1e1 0x10", "33.333333 10 16"),
        ("latency-tracking-info-percentiles", "", ""),
        ("hz", "0", "1"),
        ("maxmemory-policy", "ALLKEYS-LRU", "allkeys-lru"),
        ("bind", "", ""),
        ("proc-title-template", "{title} x", "{title} x"),
        ("list-max-ziplist-size", "-2147483648", "-2147483648"),
    ],
)  # fmt: skip
def test_set_formats(name: str, text: str, shown: str) -> None:
    config = Config.from_args([])
    config.set([(name, text)])
    assert config.get(name) == shown


def test_protected_configs(tmp_path: Path) -> None:
    config = Config.from_args(["--enable-protected-configs", "local"])
    assert set_error([("dir", str(tmp_path))], config) == failed(
        "dir", "can't set protected config"
    )
    assert config.set([("dir", str(tmp_path))], local=True) == ["dir"]
    assert config.get("dir") == str(tmp_path)
    allowed = Config.from_args(["--enable-protected-configs", "yes"])
    assert set_error([("dir", str(tmp_path / "missing"))], allowed) == failed(
        "dir", "No such file or directory"
    )
    (tmp_path / "file").write_text("")
    assert set_error([("dir", str(tmp_path / "file"))], allowed) == failed("dir", "Not a directory")
    assert allowed.set([("dbfilename", "x.rdb")]) == ["dbfilename"]


# --- CONFIG GET ---------------------------------------------------------------------------------


def names(patterns: list[str]) -> list[str]:
    return [name for name, _ in Config.from_args([]).match(patterns)]


def test_get_exact_names_answer_as_asked() -> None:
    config = Config.from_args([])
    assert config.match(["PORT"]) == [("PORT", "6379")]
    assert config.match(["SLAVE-READ-ONLY", "replica-read-only"]) == [
        ("SLAVE-READ-ONLY", "yes"),
        ("replica-read-only", "yes"),
    ]
    assert config.match(["nosuch", "include"]) == []


def test_get_patterns() -> None:
    assert sorted(names(["*max-*-entries*"])) == [
        "hash-max-listpack-entries",
        "hash-max-ziplist-entries",
        "set-max-intset-entries",
        "zset-max-listpack-entries",
        "zset-max-ziplist-entries",
    ]
    assert names(["port", "PORT", "*port"]).count("port") == 1
    assert names(["Slave-Read*"]) == ["slave-read-only"]
    # debug knobs (key-load-delay ...) stay out of globs
    assert sorted(names(["*delay*"])) == ["repl-disable-tcp-nodelay", "repl-diskless-sync-delay"]
    assert names(["key-load-delay"]) == ["key-load-delay"]
    assert len(names(["*", "*"])) == len(names(["*"])) == 192
    # Atoll's own directives answer by name only, so CONFIG GET * lists what Redis lists
    assert names(["shards", "gateways"]) == ["shards", "gateways"] and not names(["shard*"])


def test_every_directive_has_a_valid_default() -> None:
    config = Config.from_args([])
    for directive in DIRECTIVES:
        if directive.name != "dir":
            assert config.get(directive.name) == directive.default, directive.name


# --- against a real redis-server ----------------------------------------------------------------


class RawClient:
    """RESP2 over a socket; errors come back as their full text."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = hiredis.Reader(encoding="latin-1")

    def call(self, *args: str) -> Any:
        out = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            data = arg.encode("latin-1")
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(out))
        reply = self.reader.gets()
        while reply is False:
            self.reader.feed(self.sock.recv(65536))
            reply = self.reader.gets()
        return str(reply) if isinstance(reply, hiredis.ReplyError) else reply

    def config_get(self, *patterns: str) -> dict[str, str]:
        flat = self.call("CONFIG", "GET", *patterns)
        return dict(zip(flat[::2], flat[1::2], strict=True))


@pytest.fixture(scope="module")
def redis_cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawClient]:
    """A redis-server started like atoll-server's defaults would be: no file, only a port."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    cwd = tmp_path_factory.mktemp("redis-config")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = wait_until(lambda: RawClient(port), what="redis-server")
        yield client
        client.sock.close()
    finally:
        proc.kill()
        proc.wait()


def test_names_and_defaults_match_redis(redis_cli: RawClient) -> None:
    theirs = redis_cli.config_get("*")
    ours = dict(Config.from_args([]).match(["*"]))
    assert set(ours) == set(theirs)  # ATOLL_ONLY are hidden from patterns
    assert set(theirs) - set(ours) == set()
    differing = {name for name in theirs if theirs[name] != ours[name]}
    assert differing <= OWN_DEFAULTS


@pytest.mark.parametrize(
    "patterns",
    [["*max-*-entries*"], ["port", "PORT", "*port"], ["SLAVE-READ-ONLY", "*slave*"], ["*delay*"],
     ["key-load-delay", "use-exit-on-panic"], ["include", "nosuch"], ["[a-c]*", "*-?ax-*"]],
)  # fmt: skip
def test_get_matches_redis(patterns: list[str], redis_cli: RawClient) -> None:
    theirs = redis_cli.config_get(*patterns)
    ours = dict(Config.from_args([]).match(patterns))
    assert set(ours) - ATOLL_ONLY == set(theirs)
    assert {k: v for k, v in ours.items() if k.lower() not in OWN_DEFAULTS} == {
        k: v for k, v in theirs.items() if k.lower() not in OWN_DEFAULTS
    }


SET_CASES: list[list[tuple[str, str]]] = [
    [("foo", "bar")],
    [("daemonize", "no")],
    [("dir", "/tmp")],
    [("port", "1"), ("Port", "2")],
    [("timeout", "abc"), ("daemonize", "no")],
    [("maxmemory", "1x")],
    [("maxmemory", "99999999999999999999k")],
    [("maxmemory-clients", "101%")],
    [("maxmemory-clients", "9223372036854775808")],
    [("proto-max-bulk-len", "1000")],
    [("repl-backlog-size", "0")],
    [("slowlog-log-slower-than", "-2")],
    [("acllog-max-len", "9223372036854775808")],
    [("maxclients", "4294967296")],
    [("hz", "1000")],
    [("appendfsync", "always ")],
    [("save", "10 1  20 2")],
    [("save", "+5 05")],
    [("client-output-buffer-limit", "normal 0 0 1k")],
    [("client-output-buffer-limit", "normal 0 0 99999999999999999999")],
    [("save", "99999999999999999999 1")],
    [("client-output-buffer-limit", "replica 1 2 3 pubsub 4 5 6")],
    [("notify-keyspace-events", "xeKEA$lshzgtmdn")],
    [("notify-keyspace-events", "kea")],
    [("latency-tracking-info-percentiles", "99.99999 0.0000001 inf")],
    [("latency-tracking-info-percentiles", "99.99999 0.0000001")],
    [("shutdown-on-sigterm", "now default force")],
    [("oom-score-adj-values", "0x10 0 0")],
    [("proc-title-template", "{title}{port}")],
    [("proc-title-template", "{title}{unixsocket}")],
    [("cluster-announce-hostname", "bad!host")],
    [("tls-auth-clients", "OPTIONAL")],
]


@pytest.mark.parametrize("pairs", SET_CASES)
def test_set_matches_redis(pairs: list[tuple[str, str]], redis_cli: RawClient) -> None:
    names_set = [name for name, _ in pairs]
    before = redis_cli.config_get(*names_set)
    theirs = redis_cli.call("CONFIG", "SET", *[part for pair in pairs for part in pair])
    after = redis_cli.config_get(*names_set)
    if theirs == "OK":
        redis_cli.call("CONFIG", "SET", *[part for item in before.items() for part in item])
    config = Config.from_args([])
    try:
        config.set(pairs)
        ours = "OK"
    except ConfigError as exc:
        ours = str(exc)
    assert ours == theirs
    shown = {name: value for name, value in config.match(names_set) if name not in OWN_DEFAULTS}
    assert shown == {name: value for name, value in after.items() if name not in OWN_DEFAULTS}


STARTUP_CASES: list[tuple[str, list[str]]] = [
    ("port 1\n\tfoo bar baz  \n", []),
    ("save 10 1\n", ["--save", "40", "4", "--port", "abc"]),
    ("port 1", ["--maxmemory-policy", "foo"]),
    ('port "1"x\n', []),
    ("", ["--requirepass", 'a b"\x01c', "--port", "x"]),
    ("", ["--appendonly", "--port", "5"]),
    ("# x\n\nsave 1 1 1\n", []),
    ("oom-score-adj-values 1 2 3000\n", []),
]


@pytest.mark.parametrize(("text", "options"), STARTUP_CASES)
def test_startup_errors_match_redis(
    text: str, options: list[str], tmp_path: Path, redis_cli: RawClient
) -> None:
    path = tmp_path / "case.conf"
    path.write_text(text)
    argv = [str(path), *options, "--port", "0"]  # if it ever started, it would listen nowhere
    run = subprocess.run(
        ["redis-server", *argv], capture_output=True, text=True, timeout=10, cwd=tmp_path
    )
    theirs = (run.stdout + run.stderr).strip().replace("(Redis ", "(Atoll ")
    assert theirs.startswith("*** FATAL CONFIG FILE ERROR")
    assert fatal(argv) == theirs
