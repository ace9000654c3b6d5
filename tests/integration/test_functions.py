"""Functions on a real 2-shard server: FCALL on keys of each shard and of both at once, the
libraries surviving a restart (from the RDB after SAVE, from the AOF, from a rewritten AOF),
and a real redis-server loading Atoll's RDB with its libraries."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shard.slots import default_owner, key_slot
from tests.conftest import AtollServer, RedisServer
from tests.servers import wait_until

LIBRARY = """#!lua name=counters
redis.register_function('bump', function(keys, args)
  local total = 0
  for _, key in ipairs(keys) do total = total + redis.call('incrby', key, args[1]) end
  return total
end)
redis.register_function{function_name = 'peek', flags = {'no-writes'},
  callback = function(keys, args) return redis.call('mget', unpack(keys)) end}
redis.register_function{function_name = 'spin', flags = {'no-writes'},
  callback = function(keys, args) while true do end end}
"""


def _key_on(shard: int, stem: str) -> str:
    for n in range(1000):
        key = f"{stem}{n}"
        if default_owner(key_slot(key.encode()), 2) == shard:
            return key
    raise AssertionError("no key found")


def test_fcall_on_each_shard_and_across_shards(atoll: AtollServer) -> None:
    r = atoll.client(decode_responses=True)
    r.function_flush()
    assert r.function_load(LIBRARY) == "counters"
    a, b = _key_on(0, "fa"), _key_on(1, "fb")
    r.delete(a, b)
    assert r.fcall("bump", 1, a, 2) == 2
    assert r.fcall("bump", 1, b, 3) == 3
    assert r.fcall("bump", 2, a, b, 10) == 12 + 13  # keys of both shards, atomically
    assert r.mget(a, b) == ["12", "13"]
    assert r.fcall_ro("peek", 2, a, b) == ["12", "13"]
    with pytest.raises(redis.ResponseError, match="write flag using \\*_ro command"):
        r.fcall_ro("bump", 2, a, b, 1)
    stats = r.function_stats()
    assert stats == ["running_script", None, "engines",
                     ["LUA", ["libraries_count", 1, "functions_count", 3]]]
    r.function_flush()
    with pytest.raises(redis.ResponseError, match="Function not found"):
        r.fcall("bump", 1, b, 1)


def test_function_kill_stops_a_busy_function(atoll: AtollServer) -> None:
    client = atoll.client(retry=Retry(NoBackoff(), 0), decode_responses=True)
    client.function_flush()
    client.function_load(LIBRARY)
    client.config_set("busy-reply-threshold", "100")
    runner = atoll.client(retry=Retry(NoBackoff(), 0), decode_responses=True)
    try:
        import threading

        outcome: list[str] = []

        def run() -> None:
            try:
                runner.fcall("spin", 1, _key_on(1, "spin"))
            except redis.ResponseError as exc:
                outcome.append(str(exc))

        thread = threading.Thread(target=run)
        thread.start()

        def busy() -> bool:
            try:
                client.ping()
            except redis.exceptions.BusyLoadingError:
                return True
            except redis.ResponseError as exc:
                return "BUSY" in str(exc)
            return False

        wait_until(busy, what="the function to be busy")
        with pytest.raises(redis.ResponseError, match="only call FUNCTION KILL"):
            client.execute_command("SCRIPT", "KILL")
        assert client.function_kill() in ("OK", True)
        thread.join(10)
        assert not thread.is_alive()
        assert outcome and "killed" in outcome[0]
        with pytest.raises(redis.ResponseError, match="NOTBUSY"):
            client.function_kill()
    finally:
        client.config_set("busy-reply-threshold", "5000")
        client.function_flush()
        runner.close()
        client.close()


def _libraries(client: redis.Redis) -> list[dict[str, object]]:
    """FUNCTION LIST WITHCODE in RESP2: flat [field, value, ...] lists made dicts."""
    return [dict(zip(lib[::2], lib[1::2], strict=True)) for lib in client.function_list(withcode=True)]


def _check_loaded(client: redis.Redis) -> None:
    libraries = _libraries(client)
    assert [lib["library_name"] for lib in libraries] == ["counters"]
    assert libraries[0]["library_code"] == LIBRARY
    key = _key_on(1, "after")
    assert client.fcall("bump", 1, key, 5) == int(client.get(key))


@pytest.mark.parametrize("appendonly", ["no", "yes"])
def test_libraries_survive_a_restart(tmp_path: Path, appendonly: str) -> None:
    args = ("--appendonly", appendonly)
    server = AtollServer(tmp_path, *args, shards=2).start()
    try:
        client = server.client(decode_responses=True)
        client.function_load(LIBRARY)
        client.function_load("#!lua name=gone\nredis.register_function('g', function() end)")
        client.function_delete("gone")
        client.fcall("bump", 1, "k", 1)
        if appendonly == "no":
            client.save()
    finally:
        server.stop()
    restarted = AtollServer(tmp_path, *args, shards=2).start()
    try:
        client = restarted.client(decode_responses=True)
        _check_loaded(client)
        assert client.get("k") == "1"
        if appendonly == "yes":  # and once more from a rewritten log (its RDB base)
            client.bgrewriteaof()
            wait_until(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0
                       and client.info("persistence")["aof_rewrite_scheduled"] == 0,
                       what="the rewrite")
    finally:
        restarted.stop()
    if appendonly == "yes":
        again = AtollServer(tmp_path, *args, shards=2).start()
        try:
            _check_loaded(again.client(decode_responses=True))
        finally:
            again.stop()


def test_redis_loads_atolls_rdb_with_its_libraries(tmp_path: Path) -> None:
    server = AtollServer(tmp_path, shards=2).start()
    try:
        client = server.client(decode_responses=True)
        client.function_load(LIBRARY)
        client.set("k", "7")
        client.save()
    finally:
        server.stop()
    reference = RedisServer(tmp_path)  # its default dbfilename is dump.rdb too
    reference.start()
    try:
        client = reference.client(decode_responses=True)
        assert [lib["library_name"] for lib in _libraries(client)] == ["counters"]
        assert client.fcall("bump", 1, "k", 1) == 8
    finally:
        reference.stop()
