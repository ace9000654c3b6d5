"""MULTI/EXEC/DISCARD/WATCH against a real server, through redis-py pipelines and raw RESP."""

from __future__ import annotations

import socket
import time

import pytest
import redis

from tests.servers import AtollServer


def raw(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        time.sleep(0.3)
        return sock.recv(65536)


def test_transaction_replies_and_errors(atoll: AtollServer) -> None:
    reply = raw(atoll.port, b"MULTI\r\nSET tx 1\r\nFOO\r\nEXEC\r\nEXEC\r\nDISCARD\r\n"
                           b"MULTI\r\nMULTI\r\nSET tx abc\r\nINCR tx\r\nGET tx\r\nEXEC\r\n")
    assert reply == (
        b"+OK\r\n+QUEUED\r\n-ERR unknown command 'FOO', with args beginning with: \r\n"
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
        b"-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n"
        b"+OK\r\n-ERR MULTI calls can not be nested\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"
        b"*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n$3\r\nabc\r\n"
    )


@pytest.mark.parametrize("keys", [["{t}a", "{t}b"], ["a", "b", "c", "d"]])
def test_redis_py_transaction_pipeline(atoll: AtollServer, keys: list[str]) -> None:
    r = atoll.client()
    pipe = r.pipeline()
    for key in keys:
        pipe.set(key, 1).incr(key)
    pipe.mget(keys).blpop(["nothing{t}"], 0)  # a blocking pop inside MULTI never blocks
    assert pipe.execute() == [True, 2] * len(keys) + [[b"2"] * len(keys), None]


def test_watch(atoll: AtollServer) -> None:
    r, other = atoll.client(), atoll.client()
    r.set("w1", 1)

    def transaction(touch: list[str], watched: list[str]) -> object:
        pipe = r.pipeline()
        pipe.watch(*watched)
        pipe.multi()
        pipe.incr("w1")
        for key in touch:
            other.set(key, 100)
        try:
            return pipe.execute()
        except redis.WatchError:
            return "aborted"

    assert transaction([], ["w1"]) == [2]
    assert transaction(["w1"], ["w1"]) == "aborted"
    assert transaction(["w2"], ["w1", "w2"]) == "aborted"  # w2 lives on the other shard
    assert transaction(["unrelated"], ["w1", "w2"]) == [101]
    r.execute_command("WATCH", "w1")
    r.execute_command("UNWATCH")
    other.set("w1", 5)
    pipe = r.pipeline()
    pipe.multi()
    pipe.get("w1")
    assert pipe.execute() == [b"5"]
    assert raw(atoll.port, b"MULTI\r\nWATCH x\r\n") == (
        b"+OK\r\n-ERR WATCH inside MULTI is not allowed\r\n")


def test_flush_touches_only_watched_keys_that_exist(atoll: AtollServer) -> None:
    r, other = atoll.client(), atoll.client()
    r.flushall()
    pipe = r.pipeline()
    pipe.watch("absent")
    pipe.multi()
    pipe.ping()
    other.flushall()
    assert pipe.execute() == [True]
    r.set("present", 1)
    pipe = r.pipeline()
    pipe.watch("present")
    pipe.multi()
    pipe.ping()
    other.flushdb()
    with pytest.raises(redis.WatchError):
        pipe.execute()


def _watch_scenarios(client: redis.Redis) -> list[object]:
    """WATCH over keys on several shards and databases, as a script of plain commands."""
    out: list[object] = []
    other = client.connection_pool.get_connection()
    try:
        def run(*args: object, conn=None) -> object:  # noqa: ANN001
            target = conn or main
            target.send_command(*args)
            try:
                return target.read_response()
            except redis.ResponseError as exc:
                return f"error: {exc}"

        main = client.connection_pool.get_connection()
        try:
            for args in (("FLUSHALL",), ("SELECT", 1), ("SET", "x", 30), ("SELECT", 0),
                         ("WATCH", "x", "a", "b", "c"), ("SWAPDB", 0, 1), ("MULTI",),
                         ("PING",), ("EXEC",),
                         ("WATCH", "a", "b", "c", "d"), ("MULTI",), ("SET", "a", 1),
                         ("INCR", "d"), ("EXEC",),
                         ("WATCH", "a", "b", "c", "d")):
                out.append(run(*args))
            out.append(run("SET", "c", "other", conn=other))
            for args in (("MULTI",), ("SET", "a", 2), ("EXEC",), ("MGET", "a", "b", "c", "d"),
                         ("WATCH", "nosuch"), ("SELECT", 1), ("FLUSHDB",), ("SELECT", 0),
                         ("MULTI",), ("PING",), ("EXEC",)):
                out.append(run(*args))
        finally:
            client.connection_pool.release(main)
    finally:
        client.connection_pool.release(other)
    return out


def test_watch_over_shards_and_databases_like_redis(r: redis.Redis, ref: redis.Redis) -> None:
    assert _watch_scenarios(r) == _watch_scenarios(ref)
