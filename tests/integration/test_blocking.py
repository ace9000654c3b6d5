"""Blocking pops on one shard, against a real server: served in arrival order, timeouts,
CLIENT UNBLOCK, INFO blocked_clients, and a client that leaves while waiting."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.servers import AtollServer, wait_until


def blocked_clients(r: redis.Redis) -> int:
    return int(r.info("clients")["blocked_clients"])


def is_blocked(r: redis.Redis, client_id: int) -> bool:
    """Whether this client waits in a blocking command (the session server is shared, so
    another test's client may be the one INFO counts)."""
    return any(int(c["id"]) == client_id and "b" in c["flags"] for c in r.client_list())


def test_waiters_are_served_in_arrival_order(atoll: AtollServer) -> None:
    r = atoll.client()
    r.delete("q{b}")
    results: dict[int, object] = {}

    def wait(i: int) -> None:
        results[i] = atoll.client().blpop(["q{b}"], timeout=10)

    threads = []
    for i in range(3):
        thread = threading.Thread(target=wait, args=(i,))
        thread.start()
        threads.append(thread)
        wait_until(lambda i=i: blocked_clients(r) == i + 1, what="client blocked")
    r.rpush("q{b}", "a", "b", "c")
    for thread in threads:
        thread.join(10)
    assert results == {0: (b"q{b}", b"a"), 1: (b"q{b}", b"b"), 2: (b"q{b}", b"c")}
    assert blocked_clients(r) == 0


def test_timeout_and_errors(atoll: AtollServer) -> None:
    r = atoll.client()
    started = time.monotonic()
    assert r.blpop(["empty{b}"], timeout=0.2) is None
    assert 0.15 < time.monotonic() - started < 2
    assert r.bzpopmin(["emptyz{b}"], timeout=0.1) is None
    with pytest.raises(redis.ResponseError, match="timeout is negative"):
        r.blpop(["x"], timeout=-1)
    r.set("str{b}", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.blpop(["str{b}"], timeout=1)


def test_blmove_wakes_a_waiter_on_its_destination(atoll: AtollServer) -> None:
    r = atoll.client()
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(atoll.client().blpop(["dst{b}"], 10)))
    thread.start()
    wait_until(lambda: blocked_clients(r) == 1, what="client blocked")
    r.rpush("src{b}", "v")
    assert r.blmove("src{b}", "dst{b}", 1, "RIGHT", "LEFT") == b"v"
    thread.join(10)
    assert got == [(b"dst{b}", b"v")]


def test_client_unblock_and_vanished_clients(atoll: AtollServer) -> None:
    r = atoll.client()
    waiter = atoll.client()
    waiter_id = waiter.client_id()
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(waiter.blpop(["never{b}"], 0)))
    thread.start()
    wait_until(lambda: is_blocked(r, waiter_id), what="client blocked")
    assert r.client_unblock(waiter_id) == 1
    thread.join(10)
    assert outcome == [None]
    assert r.client_unblock(waiter_id) == 0

    # A client that disconnects while blocked must not swallow a later value.
    # No retries: redis-py (>= 6) would otherwise send the BLPOP again on a new connection,
    # and that live client would rightly take the value.
    gone = atoll.client(retry=Retry(NoBackoff(), 0))
    gone_id = gone.client_id()
    thread = threading.Thread(target=lambda: _ignore(lambda: gone.blpop(["kept{b}"], 0)))
    thread.start()
    wait_until(lambda: is_blocked(r, gone_id), what="client blocked")
    gone.connection_pool.disconnect()
    wait_until(lambda: all(int(c["id"]) != gone_id for c in r.client_list()), what="client gone")
    r.rpush("kept{b}", "value")
    assert r.lrange("kept{b}", 0, -1) == [b"value"]


def _ignore(fn) -> None:
    try:
        fn()
    except redis.RedisError:
        pass


def test_blmove_between_shards(atoll: AtollServer) -> None:
    """Source and destination on different shards (no hash tag): moves at once when it can,
    otherwise waits on the source's shard and then pushes."""
    r = atoll.client()
    assert atoll_shard_count_differs(r, b"blist", b"target")
    r.delete("blist", "target")
    r.rpush("blist", "a")
    assert r.brpoplpush("blist", "target", 1) == b"a"
    got: list[object] = []
    thread = threading.Thread(
        target=lambda: got.append(atoll.client().blmove("blist", "target", 0, "LEFT", "RIGHT")))
    thread.start()
    wait_until(lambda: blocked_clients(r) == 1, what="client blocked")
    r.rpush("blist", "b")
    thread.join(10)
    assert got == [b"b"]
    assert r.lrange("target", 0, -1) == [b"a", b"b"]
    assert r.brpoplpush("blist", "target", 0.1) is None


def atoll_shard_count_differs(r: redis.Redis, a: bytes, b: bytes) -> bool:
    from gateway.links import key_slot

    # The session server runs 2 shards: slots 0-8191 on shard 0, the rest on shard 1.
    return (key_slot(a) < 8192) != (key_slot(b) < 8192)


def test_value_popped_for_a_vanishing_client_is_given_back(atoll: AtollServer) -> None:
    """A client blocked on a list hangs up while another client pushes.  Whichever reaches
    the shard first, the value is never popped for nobody: either the server wrote it to the
    waiter before it saw the hang-up (as Redis would), or it is back in the list."""
    r = atoll.client()
    push = b"*3\r\n$5\r\nRPUSH\r\n$7\r\nrace{b}\r\n$1\r\nv\r\n"
    for _ in range(30):
        r.delete("race{b}")
        waiter = socket.create_connection(("127.0.0.1", atoll.port))
        waiter.sendall(b"*3\r\n$5\r\nBLPOP\r\n$7\r\nrace{b}\r\n$1\r\n0\r\n")
        wait_until(lambda: blocked_clients(r) == 1, what="client blocked")
        pusher = socket.create_connection(("127.0.0.1", atoll.port))
        pusher.sendall(push)
        waiter.shutdown(socket.SHUT_WR)  # hang up, but still able to see what was sent
        assert pusher.recv(100) == b":1\r\n"
        pusher.close()
        wait_until(lambda: blocked_clients(r) == 0, what="wait ended")
        waiter.settimeout(1)
        try:
            delivered = waiter.recv(100)
        except TimeoutError:
            delivered = b""
        waiter.close()
        if delivered:
            assert delivered == b"*2\r\n$7\r\nrace{b}\r\n$1\r\nv\r\n"
            assert r.lrange("race{b}", 0, -1) == []
        else:
            wait_until(lambda: r.lrange("race{b}", 0, -1) == [b"v"], timeout=5,
                       what="the value back in its list")
