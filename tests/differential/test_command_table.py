"""Every command Atoll declares must carry the arity, flags, legacy key positions and ACL
categories that redis-server 7.0.15 reports for it (COMMAND INFO)."""

from __future__ import annotations

from typing import Any

import redis

# Commands Atoll has that 7.0.15 does not (7.2 additions that clients send anyway).
NOT_IN_7_0 = {"client|setinfo"}
# Flags that describe Redis internals Atoll does not mirror.
IGNORED_FLAGS = {"module", "no_mandatory_keys"}


def command_info(client: redis.Redis, names: list[str]) -> dict[str, Any]:
    client.set_response_callback("COMMAND", lambda response, **options: response)
    raw = client.execute_command("COMMAND", "INFO", *names)
    out = {}
    for entry in raw:
        if entry is None:
            continue
        out[entry[0].decode()] = entry
        for sub in entry[9] if len(entry) > 9 else []:
            out[sub[0].decode()] = sub
    return out


def normalise(entry: Any) -> tuple[Any, ...]:
    flags = {f.decode() for f in entry[2]} - IGNORED_FLAGS
    acl = {c.decode() for c in entry[6]}
    return entry[1], sorted(flags), entry[3], entry[4], entry[5], sorted(acl)


def test_command_info_matches_redis(r, ref) -> None:
    r.set_response_callback("COMMAND", lambda response, **options: response)
    names = [n.decode() for n in r.execute_command("COMMAND", "LIST")]
    ours = command_info(r, names)
    theirs = command_info(ref, names)
    mismatches = []
    for name in names:
        if name in NOT_IN_7_0:
            continue
        if name not in theirs:
            mismatches.append(f"{name}: not a Redis 7.0.15 command")
            continue
        if normalise(ours[name]) != normalise(theirs[name]):
            mismatches.append(f"{name}: atoll {normalise(ours[name])} != redis {normalise(theirs[name])}")
    assert not mismatches, "\n".join(mismatches)


def test_command_count_and_getkeys(r) -> None:
    r.set_response_callback("COMMAND", lambda response, **options: response)
    assert r.execute_command("COMMAND", "COUNT") == len(r.execute_command("COMMAND"))
    assert r.execute_command("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2") == [b"a", b"b"]
    assert r.execute_command("COMMAND", "GETKEYS", "LCS", "x", "y") == [b"x", b"y"]


def _getkeys(client: redis.Redis, *argv: str) -> Any:
    client.set_response_callback("COMMAND", lambda response, **options: response)
    try:
        return client.execute_command("COMMAND", "GETKEYS", *argv)
    except redis.ResponseError as exc:
        return str(exc)


def test_getkeys_edge_cases_as_redis(r, ref) -> None:
    cases = [("EVAL", "return 1", "0"), ("EVAL", "return 1", "1", "k"), ("EVALSHA_RO", "x", "0"),
             ("PING",), ("GET",), ("NOSUCH", "k"), ("ZUNIONSTORE", "t", "2", "a", "b"),
             ("SORT", "k", "STORE", "d"), ("MEMORY", "USAGE", "k")]
    for argv in cases:
        assert _getkeys(r, *argv) == _getkeys(ref, *argv), argv
