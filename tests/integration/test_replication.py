"""Replication over the real protocol: Atoll master with a real redis-server replica and with an
Atoll replica (full sync, stream, WAIT, partial resync after a broken link, chained replicas),
an Atoll replica of a real redis-server master, `redis-cli --rdb`, and the replication
commands' replies and errors compared with Redis."""

from __future__ import annotations

import random
import subprocess
import threading
from pathlib import Path

import pytest
import redis

from tests import rdb_data
from tests.servers import AtollServer, RedisServer, wait_until


def _mixed_load(client: redis.Redis, rounds: int, seed: int) -> None:
    """Writes of every kind over both shards and several databases: transactions, expiries,
    cross-shard MSET, SPOP/INCRBYFLOAT (rewritten effects), deletes."""
    rng = random.Random(seed)
    pipe = client.pipeline(transaction=False)
    for i in range(rounds):
        key = f"k{rng.randrange(200)}"
        kind = rng.randrange(9)
        if kind == 0:
            pipe.set(key, i)
        elif kind == 1:
            pipe.incrbyfloat(f"f{rng.randrange(5)}", 1.5)
        elif kind == 2:
            pipe.rpush(f"l{rng.randrange(10)}", i, i + 1)
        elif kind == 3:
            pipe.sadd(f"s{rng.randrange(5)}", *range(i % 7, i % 7 + 5))
            pipe.spop(f"s{rng.randrange(5)}")
        elif kind == 4:
            pipe.mset({f"m{rng.randrange(50)}": i, f"{{b}}m{rng.randrange(50)}": i})
        elif kind == 5:
            pipe.set(key, i, px=rng.choice([5, 100000]))
        elif kind == 6:
            pipe.execute_command("SELECT", rng.choice([0, 3]))
            pipe.hset(f"h{rng.randrange(5)}", f"f{i % 11}", i)
            pipe.execute_command("SELECT", 0)
        elif kind == 7:
            pipe.delete(key)
        else:  # keys moved between shards travel as internal imports
            pipe.set(f"{{a}}mv{i}", i, px=100000)
            pipe.rename(f"{{a}}mv{i}", f"{{b}}mv{i % 20}")
            pipe.sadd("{a}set", i)
            pipe.smove("{a}set", "{b}set", i)
    pipe.execute()
    tx = client.pipeline(transaction=True)
    tx.incr("{a}tx")
    tx.incr("{b}tx")
    tx.execute()


def _contents(client: redis.Redis) -> dict:
    return rdb_data.contents(client, databases=4)


def _same_after_wait(master: redis.Redis, replica: redis.Redis, replicas: int = 1) -> None:
    assert master.execute_command("WAIT", replicas, 5000) == replicas
    # Keys with 5 ms left may expire in between: the master's DEL then follows.
    try:
        wait_until(lambda: _contents(master) == _contents(replica), timeout=10, what="same data")
    except TimeoutError:
        a, b = _contents(master), _contents(replica)
        differ = [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        raise AssertionError(f"{len(differ)} keys differ (master, replica): {differ[:10]}") from None


def test_real_redis_replica_of_atoll(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    master = AtollServer(tmp_path / "m", shards=2).start()
    replica = RedisServer(tmp_path / "r").start()
    try:
        client = master.client()
        rdb_data.fill(client, dbs=(0, 3))
        _mixed_load(client, 300, seed=1)
        replica.client().replicaof("127.0.0.1", master.port)
        wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up",
                   what="redis replica linked")
        _mixed_load(client, 500, seed=2)
        _same_after_wait(client, replica.client())
        client.swapdb(0, 3)  # every shard swaps: the replica must swap once
        _same_after_wait(client, replica.client())
        role = client.execute_command("ROLE")
        assert role[0] == b"master" and len(role[2]) == 1
        info = client.info("replication")
        assert info["connected_slaves"] == 1 and info["slave0"]["state"] == "online"
    finally:
        replica.stop()
        master.stop()


def test_atoll_replica_partial_resync_after_broken_link(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    master = AtollServer(tmp_path / "m", shards=2).start()
    replica = AtollServer(tmp_path / "r", shards=2).start()
    try:
        client, rclient = master.client(), replica.client()
        rdb_data.fill(client, dbs=(0, 3))
        assert rclient.replicaof("127.0.0.1", master.port)
        wait_until(lambda: rclient.info("replication")["master_link_status"] == "up",
                   what="atoll replica linked")
        _mixed_load(client, 400, seed=3)
        _same_after_wait(client, rclient)
        with pytest.raises(redis.ResponseError, match="^You can't write against a read only"):
            rclient.set("x", 1)
        assert rclient.execute_command("ROLE")[0] == b"slave"
        stats = client.info("stats")
        full, partial = stats["sync_full"], stats["sync_partial_ok"]
        # Kill the link while another client writes.
        writer_client = master.client()
        writer = threading.Thread(target=lambda: [_mixed_load(writer_client, 150, seed)
                                                  for seed in range(10, 20)])
        writer.start()
        for entry in client.client_list():
            if entry["cmd"] in ("psync", "replconf", "sync"):
                client.client_kill_filter(_id=entry["id"])
        writer.join()
        wait_until(lambda: client.info("replication")["connected_slaves"] == 1, what="relinked")
        _same_after_wait(client, rclient)
        stats = client.info("stats")
        assert stats["sync_full"] == full
        assert stats["sync_partial_ok"] == partial + 1
        assert rclient.replicaof("no", "one")
        assert rclient.set("x", 1)
    finally:
        replica.stop()
        master.stop()


def test_replica_applies_a_burst_larger_than_one_read(tmp_path: Path) -> None:
    """A pipeline of 20000 writes reaches the replica as reads of thousands of commands each:
    more than a client may run at once (RUN_AT_ONCE), so the rest waits and must still run,
    in order, before the replica acknowledges the offset."""
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    master = AtollServer(tmp_path / "m", shards=2).start()
    replica = AtollServer(tmp_path / "r", shards=2).start()
    try:
        client, rclient = master.client(), replica.client()
        assert rclient.replicaof("127.0.0.1", master.port)
        wait_until(lambda: rclient.info("replication")["master_link_status"] == "up",
                   what="atoll replica linked")
        with client.pipeline(transaction=False) as pipe:
            for i in range(20000):
                pipe.incr("burst")
                pipe.rpush("order", i)
            pipe.execute()
        assert client.execute_command("WAIT", 1, 10000) == 1
        assert rclient.get("burst") == b"20000"
        assert rclient.lrange("order", 0, -1) == [b"%d" % i for i in range(20000)]
    finally:
        replica.stop()
        master.stop()


def test_chained_replicas_and_redis_master(tmp_path: Path) -> None:
    """redis-server master -> Atoll replica -> Atoll replica."""
    for name in ("m", "r1", "r2"):
        (tmp_path / name).mkdir()
    master = RedisServer(tmp_path / "m").start()
    first = AtollServer(tmp_path / "r1", shards=2).start()
    second = AtollServer(tmp_path / "r2", shards=1).start()
    try:
        client = master.client()
        rdb_data.fill(client, dbs=(0, 3))
        first.client().replicaof("127.0.0.1", master.port)
        second.client().replicaof("127.0.0.1", first.port)
        _mixed_load(client, 400, seed=5)
        assert client.execute_command("WAIT", 1, 5000) == 1
        wait_until(lambda: _contents(client) == _contents(first.client()), timeout=10,
                   what="first replica")
        wait_until(lambda: _contents(client) == _contents(second.client()), timeout=10,
                   what="second replica")
        info = second.client().info("replication")
        assert info["master_link_status"] == "up"
        assert info["master_replid"] == client.info("replication")["master_replid"]
    finally:
        second.stop()
        first.stop()
        master.stop()


def test_redis_cli_rdb_is_a_valid_file(tmp_path: Path) -> None:
    master = AtollServer(tmp_path, shards=2).start()
    try:
        client = master.client()
        rdb_data.fill(client)
        target = tmp_path / "copy.rdb"
        done = subprocess.run(["redis-cli", "-p", str(master.port), "--rdb", str(target)],
                              capture_output=True, text=True, timeout=30)
        assert "Transfer finished with success" in done.stderr + done.stdout
        check = subprocess.run(["redis-check-rdb", str(target)], capture_output=True, text=True)
        assert "RDB looks OK" in check.stdout, check.stdout
    finally:
        master.stop()


def _replies(client: redis.Redis, *argv: str) -> object:
    try:
        return client.execute_command(*argv)
    except redis.ResponseError as exc:
        return f"ERR:{exc}"


def test_replication_command_errors_match_redis(tmp_path: Path) -> None:
    master = AtollServer(tmp_path, shards=2).start()
    reference = RedisServer(tmp_path).start()
    try:
        ours, theirs = master.client(), reference.client()
        for argv in (["REPLCONF", "listening-port"], ["REPLCONF", "bogus", "1"],
                     ["REPLCONF", "listening-port", "x"], ["REPLCONF", "capa", "eof"],
                     ["WAIT", "0", "-1"], ["WAIT", "x", "0"], ["WAIT", "0", "x"],
                     ["WAIT", "1", "10"], ["REPLICAOF", "localhost", "x"],
                     ["REPLICAOF", "localhost", "70000"], ["REPLICAOF", "no", "one"],
                     ["PSYNC", "a"]):
            assert _replies(ours, *argv) == _replies(theirs, *argv), argv
    finally:
        reference.stop()
        master.stop()


@pytest.mark.parametrize("side", ["master", "replica"])
def test_a_restarted_shard_forces_a_full_resync(tmp_path: Path, side: str) -> None:
    """A restarted master shard stops feeding the stream: the history ends and the replica
    resyncs in full instead of silently missing that shard's writes.  A restarted replica
    shard lost what it had applied: the replica resyncs in full too."""
    from tests.integration.test_admin import admin

    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    master = AtollServer(tmp_path / "m", shards=2).start()
    replica = AtollServer(tmp_path / "r", shards=2).start()
    try:
        client, rclient = master.client(), replica.client()
        rclient.replicaof("127.0.0.1", master.port)
        _mixed_load(client, 200, seed=6)
        _same_after_wait(client, rclient)
        full = client.info("stats")["sync_full"]
        if side == "master":
            admin(master, "restart", "--shard", "1")
        else:
            admin(replica, "restart", "--shard", "0")
        _mixed_load(client, 300, seed=7)
        wait_until(lambda: client.info("stats")["sync_full"] == full + 1, what="full resync")
        _same_after_wait(client, rclient)
    finally:
        replica.stop()
        master.stop()


def test_min_replicas_to_write(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    master = AtollServer(tmp_path / "m", shards=2).start()
    replica = RedisServer(tmp_path / "r").start()
    try:
        client = master.client()
        client.config_set("min-replicas-to-write", 1)
        with pytest.raises(redis.ResponseError, match="^NOREPLICAS Not enough good replicas to write"):
            client.set("a", 1)
        assert client.get("a") is None
        replica.client().replicaof("127.0.0.1", master.port)
        wait_until(lambda: client.info("replication")["connected_slaves"] == 1, what="linked")
        assert client.set("a", 1)
        client.config_set("min-replicas-to-write", 0)
        assert client.set("b", 1)
    finally:
        replica.stop()
        master.stop()


def _expired_on_replica(master: redis.Redis, replica: redis.Redis) -> list:
    """What a replica's client sees of a key whose time is up while the master, paused, has
    not deleted it yet; then whether the master's DEL arrives after the pause."""
    assert master.set("short", "v", px=1500) and master.set("long", "v")
    assert master.execute_command("WAIT", 1, 5000) == 1
    master.execute_command("CLIENT", "PAUSE", 10000, "WRITE")  # the master's expiry waits
    try:
        assert master.pttl("short") > 0, "the pause must start before the key's time is up"
        wait_until(lambda: replica.get("short") is None, what="the key's time is up")
        seen = [replica.get("short"), replica.exists("short"), replica.ttl("short"),
                replica.dbsize(), replica.get("long")]
    finally:
        master.execute_command("CLIENT", "UNPAUSE")
    wait_until(lambda: replica.dbsize() == 1, what="the master's DEL")
    return seen


def test_replica_hides_logically_expired_keys_like_redis(tmp_path: Path) -> None:
    """Replicas never delete keys themselves, but their clients do not see expired ones."""
    results = []
    for kind in ("redis", "atoll"):
        (tmp_path / kind / "m").mkdir(parents=True)
        (tmp_path / kind / "r").mkdir()
        if kind == "redis":
            master: AtollServer | RedisServer = RedisServer(tmp_path / kind / "m")
            replica: AtollServer | RedisServer = RedisServer(tmp_path / kind / "r")
        else:
            master = AtollServer(tmp_path / kind / "m", shards=2)
            replica = AtollServer(tmp_path / kind / "r", shards=2)
        master.start()
        replica.start()
        try:
            rclient = replica.client()
            assert rclient.replicaof("127.0.0.1", master.port)
            wait_until(lambda rclient=rclient: rclient.info("replication")["master_link_status"] == "up",
                       what="replica linked")
            results.append(_expired_on_replica(master.client(), rclient))
        finally:
            replica.stop()
            master.stop()
    assert results[1] == results[0] == [None, 0, -2, 2, b"v"]


def test_replica_authenticates_with_masterauth(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    master = RedisServer(tmp_path / "m").start()
    master.client().config_set("requirepass", "s3cret")
    replica = AtollServer(tmp_path / "r", "--masterauth", "s3cret", "--replicaof",
                          f"127.0.0.1 {master.port}", shards=2).start()
    try:
        client = master.client(password="s3cret")
        client.set("a", 1)
        rclient = replica.client()
        wait_until(lambda: rclient.info("replication")["master_link_status"] == "up",
                   what="linked with a password")
        assert client.execute_command("WAIT", 1, 5000) == 1
        assert rclient.get("a") == b"1"
    finally:
        replica.stop()
        master.stop()


def test_slow_replica_is_dropped_by_its_output_limit(tmp_path: Path) -> None:
    """A replica that stops reading is closed past client-output-buffer-limit replica; the
    master keeps serving writes meanwhile."""
    import socket

    master = AtollServer(tmp_path, "--client-output-buffer-limit", "replica 256kb 0 0",
                         shards=2).start()
    try:
        client = master.client()
        stalled = socket.create_connection(("127.0.0.1", master.port))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(b"PSYNC ? -1\r\n")
        wait_until(lambda: client.info("replication")["connected_slaves"] == 1, what="online")
        value = "x" * 10000
        for _ in range(40):  # up to 40 MB of stream
            pipe = client.pipeline(transaction=False)
            for i in range(100):
                pipe.set(f"k{i}", value)
            pipe.execute()
            if client.info("replication")["connected_slaves"] == 0:
                break
        assert client.info("replication")["connected_slaves"] == 0
        assert client.set("after", 1)
        stalled.close()
    finally:
        master.stop()


def test_replica_serve_stale_data_no_matches_redis(tmp_path: Path) -> None:
    from tests.servers import free_port

    nobody = free_port()  # a master that is not there: the link stays down
    replica = AtollServer(tmp_path, "--replica-serve-stale-data", "no", shards=2).start()
    reference = RedisServer(tmp_path).start()
    try:
        ours, theirs = replica.client(), reference.client()
        theirs.config_set("replica-serve-stale-data", "no")
        for client in (ours, theirs):
            client.replicaof("127.0.0.1", nobody)
        for argv in (["GET", "a"], ["SET", "a", "1"], ["DBSIZE"], ["PING"], ["INFO", "nosuch"]):
            assert _replies(ours, *argv) == _replies(theirs, *argv), argv
        assert ours.info("replication")["master_link_status"] == "down"
        ours.config_set("replica-serve-stale-data", "yes")
        assert ours.get("a") is None
        assert ours.replicaof("no", "one") and ours.set("a", 1)
    finally:
        reference.stop()
        replica.stop()
