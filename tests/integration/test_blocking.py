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


def test_blocking_pops_over_several_shards(atoll: AtollServer) -> None:
    """BLPOP/BZPOPMIN/BLMPOP with keys on both shards: the first non-empty key in argument
    order wins at once; otherwise the first shard to get a value serves the client; timeouts,
    CLIENT UNBLOCK and MULTI behave as in Redis."""
    r = atoll.client()
    a, b = "multi:a", "multi:b"
    assert atoll_shard_count_differs(r, a.encode(), b.encode())
    r.delete(a, b)
    r.rpush(b, "b1")
    r.rpush(a, "a1")
    assert r.blpop([a, b], 1) == (a.encode(), b"a1")  # argument order, not shard order
    assert r.blpop([a, b], 1) == (b.encode(), b"b1")
    assert r.blpop([a, b], 0.1) is None  # times out
    r.set(a, "string")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.blpop([a, b], 1)
    r.delete(a)
    assert r.blmpop(1, 2, a, b, direction="LEFT", count=5) is None
    r.rpush(b, "x", "y", "z")
    assert r.blmpop(1, 2, a, b, direction="RIGHT", count=2) == [b.encode(), [b"z", b"y"]]
    r.delete(b)

    got: list[object] = []
    waiter = atoll.client()
    waiter_id = waiter.client_id()
    thread = threading.Thread(target=lambda: got.append(waiter.bzpopmin([a, b], 0)))
    thread.start()
    wait_until(lambda: is_blocked(r, waiter_id), what="client blocked on two shards")
    r.zadd(b, {"m": 1.5})
    thread.join(10)
    assert got == [(b.encode(), b"m", 1.5)]
    assert r.exists(a, b) == 0  # nothing was popped twice or left behind
    wait_until(lambda: not is_blocked(r, waiter_id), what="waits dropped")

    def pop_or_error() -> None:
        try:
            got.append(waiter.blpop([a, b], 0))
        except redis.ResponseError as exc:
            got.append(str(exc))

    thread = threading.Thread(target=pop_or_error)
    thread.start()
    wait_until(lambda: is_blocked(r, waiter_id), what="client blocked again")
    assert r.client_unblock(waiter_id, error=True) == 1
    thread.join(10)
    assert got[1] == "UNBLOCKED client unblocked via CLIENT UNBLOCK"
    wait_until(lambda: not is_blocked(r, waiter_id), what="every wait ended")
    assert r.client_unblock(waiter_id) == 0

    pipe = r.pipeline(transaction=True)
    pipe.blpop([a, b], 0)  # inside MULTI it never blocks
    pipe.rpush(a, "v")
    pipe.blpop([b, a], 0)
    assert pipe.execute() == [None, 1, (a.encode(), b"v")]


def test_no_value_is_lost_when_two_shards_serve_one_waiter_at_once(atoll: AtollServer) -> None:
    """Pushing to both keys of a multi-shard BLPOP at once: the client gets one value and the
    other stays (given back if its shard had popped it too)."""
    r = atoll.client()
    a, b = "race:a", "race:b"
    assert atoll_shard_count_differs(r, a.encode(), b.encode())
    for round_ in range(20):
        r.delete(a, b)
        waiter = atoll.client()
        waiter_id = waiter.client_id()
        got: list[object] = []
        thread = threading.Thread(target=lambda w=waiter, g=got: g.append(w.blpop([a, b], 0)))
        thread.start()
        wait_until(lambda i=waiter_id: is_blocked(r, i), what="client blocked")
        pipe = r.pipeline(transaction=False)
        pipe.rpush(a, f"a{round_}")
        pipe.rpush(b, f"b{round_}")
        pipe.execute()
        thread.join(10)
        key, value = got[0]
        wait_until(lambda: r.llen(a) + r.llen(b) == 1, what="the other value back")
        left = r.lrange(a, 0, -1) + r.lrange(b, 0, -1)
        assert sorted([value, *left]) == [f"a{round_}".encode(), f"b{round_}".encode()]
        waiter.close()
