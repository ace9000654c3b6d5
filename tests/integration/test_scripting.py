"""Scripts on a real server: busy scripts and SCRIPT KILL, MULTI/EXEC while a script is busy,
scripts whose keys live on two shards, undeclared keys of another shard, EVALSHA wherever
the keys are, and SIGTERM while a script loops."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.servers import AtollServer, atoll_server, wait_until

BUSY = "BUSY Redis is busy running a script"


def _busy(client: redis.Redis) -> bool:
    try:
        client.ping()
    except redis.ResponseError as exc:
        return str(exc).startswith(BUSY)
    return False


def _run_in_thread(server: AtollServer, *command: Any) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        client = server.client()
        try:
            outcome.append(client.execute_command(*command))
        except redis.RedisError as exc:  # the error reply, or the server went away
            outcome.append(exc)
        finally:
            client.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.fixture
def slow_scripts(atoll: AtollServer, r: redis.Redis) -> Any:
    r.config_set("busy-reply-threshold", "10")
    yield r
    r.config_set("busy-reply-threshold", "5000")


def test_busy_script_is_killed(atoll: AtollServer, slow_scripts: redis.Redis) -> None:
    r = slow_scripts
    r.set("{k}x", "1")
    thread, outcome = _run_in_thread(atoll, "EVAL", "while true do end", "0")
    wait_until(lambda: _busy(r), what="the shard to report the busy script")
    with pytest.raises(redis.ResponseError, match=BUSY):
        r.get("{k}x")
    assert r.execute_command("SCRIPT", "KILL") == b"OK"
    thread.join(10)
    assert "Script killed by user with SCRIPT KILL..." in str(outcome[0])
    wait_until(lambda: not _busy(r), what="the shard to be free again")
    assert r.get("{k}x") == b"1"
    with pytest.raises(redis.ResponseError, match="NOTBUSY No scripts in execution right now."):
        r.execute_command("SCRIPT", "KILL")


def test_exec_during_busy_script_is_aborted(atoll: AtollServer, slow_scripts: redis.Redis) -> None:
    r = slow_scripts
    r.set("xx", "1")
    other = atoll.client()
    other.execute_command("MULTI")
    assert other.execute_command("INCR", "xx") == b"QUEUED"
    thread, outcome = _run_in_thread(atoll, "EVAL", "while true do end", "0")
    wait_until(lambda: _busy(r), what="the busy script")
    with pytest.raises(redis.ResponseError, match="Transaction discarded because of: BUSY"):
        other.execute_command("EXEC")
    r.execute_command("SCRIPT", "KILL")
    thread.join(10)
    wait_until(lambda: not _busy(r), what="the shard to be free again")
    assert r.get("xx") == b"1"
    assert other.execute_command("ECHO", "asdf") == b"asdf"  # no longer in MULTI
    other.close()


def test_a_script_that_wrote_cannot_be_killed_and_sigterm_stops_it(tmp_path: Path) -> None:
    with atoll_server(tmp_path, "--busy-reply-threshold", "10") as server:
        client = server.client()
        thread, outcome = _run_in_thread(
            server, "EVAL", "redis.call('set', KEYS[1], 'v') while true do end", "1", "k")
        wait_until(lambda: _busy(client), what="the busy script")
        with pytest.raises(redis.ResponseError, match="UNKILLABLE Sorry the script already"):
            client.execute_command("SCRIPT", "KILL")
        client.close()
        assert server.stop() == 0  # SIGTERM reaches the shard from inside the script
        thread.join(10)


def test_script_over_two_shards_is_atomic_and_writes_back(r: redis.Redis) -> None:
    r.mset({"a": "1", "b": "2"})  # a and b live on different shards of the 2-shard server
    script = "return {redis.call('incr', KEYS[1]), redis.call('incrby', KEYS[2], ARGV[1])}"
    assert r.eval(script, 2, "a", "b", "10") == [2, 12]
    assert r.mget("a", "b") == [b"2", b"12"]
    sha = r.script_load(script)
    assert r.evalsha(sha, 2, "a", "b", "1") == [3, 13]


def test_undeclared_key_of_another_shard_fails_cleanly(r: redis.Redis) -> None:
    # "a" and "b" are on different shards: a script declaring "a" cannot reach "b".
    with pytest.raises(redis.ResponseError,
                       match="Script attempted to access a non local key in a cluster node"):
        r.eval("return redis.call('set', 'b', 'wrong')", 1, "a")
    assert r.get("b") is None
    with pytest.raises(redis.ResponseError, match="non local key"):
        r.eval("return redis.call('get', 'b')", 2, "a", "{t}c")


def test_evalsha_finds_scripts_loaded_by_eval_on_any_shard(r: redis.Redis) -> None:
    body = "return redis.call('set', KEYS[1], ARGV[1])"
    r.eval(body, 1, "a", "1")  # runs on a's shard, and is loaded on every shard
    digest = hashlib.sha1(body.encode()).hexdigest()
    for key in ("a", "b", "c", "d", "e"):
        assert r.evalsha(digest, 1, key, "v") == b"OK"
    assert r.script_exists(digest, "0" * 40) == [True, False]
    assert r.script_flush() is True
    assert r.script_exists(digest) == [False]
    with pytest.raises(redis.exceptions.NoScriptError):
        r.evalsha(digest, 1, "b", "v")


def test_scripts_inside_transactions(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.eval("return redis.call('incr', KEYS[1])", 1, "{w}n")
    pipe.eval("return redis.call('incr', KEYS[1])", 1, "{w}n")
    assert pipe.execute() == [1, 2]
