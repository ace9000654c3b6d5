"""Introspection over real sockets: MONITOR over two gateways, commandstats/errorstats compared
with a real redis-server, SLOWLOG, LATENCY, and the peers' CLIENT LIST / KILL."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.servers import AtollServer, RedisServer, atoll_server, wait_until


def _read_lines(sock: socket.socket, count: int, skip: bytes = b"") -> list[bytes]:
    """``count`` lines, leaving out those that contain ``skip`` (redis-py's CLIENT SETINFO)."""
    data = b""
    sock.settimeout(5)
    while True:
        lines = [line for line in data.split(b"\r\n")[:-1] if not skip or skip not in line]
        if len(lines) >= count:
            return lines[:count]
        chunk = sock.recv(65536)
        assert chunk, "monitor connection closed"
        data += chunk


def test_monitor_sees_the_clients_of_every_gateway(tmp_path: Path) -> None:
    with atoll_server(tmp_path, gateways=2) as server:
        monitors = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
        try:
            for sock in monitors:
                sock.sendall(b"MONITOR\r\n")
                assert _read_lines(sock, 1) == [b"+OK"]
            clients = server.clients_on_every_gateway(4)
            for i, client in enumerate(clients):
                client.set(f"k{i}", "v\n\x01")
            clients[0].config_set("maxmemory-samples", "5")  # admin: not shown
            clients[0].get("k0")
            for sock in monitors:
                lines = _read_lines(sock, 9, b"\"CLIENT\" ")  # SETINFO, ID
                shown = [line.split(b"] ", 1)[1] for line in lines]
                assert shown[:8] == [b'"SET" "k%d" "v\\n\\x01"' % i for i in range(8)]
                assert shown[8] == b'"GET" "k0"'
                assert re.fullmatch(rb"\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\]", lines[0].split(b" \"")[0])
            for client in clients:
                client.close()
        finally:
            for sock in monitors:
                sock.close()


def test_monitor_shows_transactions_in_order_and_redacts_auth(atoll: AtollServer) -> None:
    with socket.create_connection(("127.0.0.1", atoll.port)) as sock:
        sock.sendall(b"MONITOR\r\n")
        assert _read_lines(sock, 1) == [b"+OK"]
        r = atoll.client()
        with r.pipeline(transaction=True) as pipe:
            pipe.set("foo", "bar").get("foo").execute()
        try:
            r.execute_command("AUTH", "nobody", "secret")
        except redis.RedisError:
            pass
        lines = _read_lines(sock, 5, b'"CLIENT" "SETINFO"')
        shown = [line.split(b"] ", 1)[1] for line in lines]
        assert shown == [b'"MULTI"', b'"SET" "foo" "bar"', b'"GET" "foo"', b'"EXEC"',
                         b'"AUTH" "(redacted)" "(redacted)"']
        r.close()


STREAM: list[tuple[Any, ...]] = [
    ("SET", "a", "1"), ("GET", "a"), ("INCR", "a"), ("LPUSH", "a", "x"), ("GET", "nokey"),
    ("GET",), ("NOSUCH", "x"), ("HSET", "h", "f", "v"), ("HGET", "h", "f"), ("CLIENT", "ID"),
    ("DBSIZE",), ("MSET", "m1", "1", "m2", "2"), ("EXPIRE", "m1", "100"), ("INCR", "h"),
]


def _stats(client: redis.Redis, section: str) -> dict[str, Any]:
    out = {}
    for key, value in client.info(section).items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("usec", "usec_per_call")}
        out[key] = value
    return out


def test_commandstats_and_errorstats_match_redis(atoll: AtollServer,
                                                 reference: RedisServer) -> None:
    results = []
    for server in (atoll, reference):
        client = server.client()
        client.flushall()
        client.config_resetstat()
        for args in STREAM:
            try:
                client.execute_command(*args)
            except redis.ResponseError:
                pass
        stats = _stats(client, "commandstats")
        stats.pop("cmdstat_flushall", None)
        results.append((stats, _stats(client, "errorstats")))
        client.close()
    assert results[0] == results[1]


# Fields of real Redis' INFO that Atoll leaves out: jemalloc's allocator internals, fork
# copy-on-write, active defragmentation and the eviction-time counters have no counterpart.
NOT_IN_ATOLL = {
    "memory": {"allocator_frag_bytes", "allocator_frag_ratio", "allocator_rss_bytes",
               "allocator_rss_ratio", "rss_overhead_bytes", "rss_overhead_ratio"},
    "persistence": {"current_cow_peak", "current_cow_size", "current_cow_size_age",
                    "current_fork_perc", "current_save_keys_processed",
                    "current_save_keys_total"},
    "stats": {"active_defrag_hits", "active_defrag_key_hits", "active_defrag_key_misses",
              "active_defrag_misses", "current_active_defrag_time", "total_active_defrag_time",
              "current_eviction_exceeded_time", "total_eviction_exceeded_time",
              "dump_payload_sanitizations", "expire_cycle_cpu_milliseconds",
              "expired_stale_perc", "expired_time_cap_reached_count", "pubsubshard_channels",
              "reply_buffer_expands", "reply_buffer_shrinks", "slave_expires_tracked_keys",
              "unexpected_error_replies",
              # replication traffic counters: not yet kept by the replication stream
              "instantaneous_input_repl_kbps", "instantaneous_output_repl_kbps",
              "total_net_repl_input_bytes", "total_net_repl_output_bytes"},
}


def test_info_has_the_fields_of_redis(atoll: AtollServer, reference: RedisServer) -> None:
    """Every field of real Redis' INFO sections, except the documented few, and only
    Atoll-specific (``atoll_``) extras."""
    ours, theirs = atoll.client(), reference.client()
    for section in ("server", "clients", "memory", "persistence", "stats", "replication",
                    "cpu"):
        fields = set(ours.info(section))
        wanted = set(theirs.info(section))
        assert wanted - fields <= NOT_IN_ATOLL.get(section, set()), section
        assert all(name.startswith("atoll_") for name in fields - wanted), section


def test_info_counters_move_with_traffic(atoll: AtollServer) -> None:
    client = atoll.client()
    before = client.info("stats")
    payload = b"x" * 1000
    with client.pipeline(transaction=False) as pipe:
        for i in range(500):
            pipe.set(f"traffic:{i}", payload)
        pipe.execute()
    after = client.info("stats")
    assert after["total_commands_processed"] - before["total_commands_processed"] >= 500
    assert after["total_net_input_bytes"] - before["total_net_input_bytes"] >= 500 * 1000
    assert after["total_net_output_bytes"] - before["total_net_output_bytes"] >= 500 * 5
    assert after["total_reads_processed"] > before["total_reads_processed"]
    assert after["total_writes_processed"] > before["total_writes_processed"]

    def busy() -> bool:  # a rate over the last 1.6 s, as Redis samples it
        with client.pipeline(transaction=False) as pipe:
            for i in range(200):
                pipe.get(f"traffic:{i}")
            pipe.execute()
        stats = client.info("stats")
        return stats["instantaneous_ops_per_sec"] > 0 \
            and float(stats["instantaneous_output_kbps"]) > 0
    wait_until(busy, timeout=10, what="instantaneous rates")
    cpu = client.info("cpu")
    # The shards' CPU time is in the totals: more than this gateway's main thread alone.
    assert cpu["used_cpu_user"] + cpu["used_cpu_sys"] > \
        cpu["used_cpu_user_main_thread"] + cpu["used_cpu_sys_main_thread"]


def test_slowlog_and_latency(atoll: AtollServer) -> None:
    r = atoll.client()
    r.config_set("slowlog-log-slower-than", "0")
    try:
        r.slowlog_reset()
        r.set("slow", "x" * 300)
        r.client_id()
        entries = r.slowlog_get(-1)
        commands = [e["command"] for e in entries]
        # Atoll shows the command name as the table spells it (lower case); Redis as sent.
        commands = [c.split(b" ", 1)[0].upper() + b" " + c.split(b" ", 1)[1] for c in commands]
        assert b"SET slow " + b"x" * 128 + b"... (172 more bytes)" in commands
        assert b"CLIENT ID" in commands
        assert r.slowlog_len() >= 2
        r.config_set("slowlog-log-slower-than", "-1")
        r.slowlog_reset()
        assert r.slowlog_len() == 0
    finally:
        r.config_set("slowlog-log-slower-than", "10000")
    r.config_resetstat()
    r.set("a", "1")
    histogram = r.execute_command("LATENCY", "HISTOGRAM", "set", "nosuch")
    assert histogram[0] == b"set" and histogram[1][:2] == [b"calls", 1]
    assert r.execute_command("LATENCY", "RESET") >= 0
    assert r.execute_command("LATENCY", "LATEST") == []
    r.close()


def test_client_list_and_kill_cover_every_gateway(tmp_path: Path) -> None:
    with atoll_server(tmp_path, gateways=2) as server:
        clients = [server.client() for _ in range(6)]
        for i, client in enumerate(clients):
            client.client_setname(f"c{i}")
        admin = server.client()
        names = {c["name"] for c in admin.client_list()}
        assert {f"c{i}" for i in range(6)} <= names
        victim = next(c for c in admin.client_list() if c["name"] == "c3")
        assert admin.client_kill_filter(_id=int(victim["id"])) == 1
        wait_until(lambda: "c3" not in {c["name"] for c in admin.client_list()},
                   what="the killed client to go")
        assert int(admin.info("clients")["connected_clients"]) == 6
        for client in clients + [admin]:
            client.close()


def test_client_pause_write_holds_writes_on_every_gateway(tmp_path: Path) -> None:
    import threading
    import time

    with atoll_server(tmp_path, gateways=2) as server:
        clients = server.clients_on_every_gateway(3)
        admin = server.client()
        assert admin.client_pause(60000, all=False)
        assert [c.get("k") for c in clients] == [None] * 6  # reads go on
        done: list[float] = []

        def write(client: redis.Redis) -> None:
            client.set("k", "v")
            done.append(time.monotonic())

        threads = [threading.Thread(target=write, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        time.sleep(0.3)  # the writes must still be waiting (nothing to wait on: they are held)
        assert not done
        unpaused = time.monotonic()
        assert admin.execute_command("CLIENT", "UNPAUSE") == b"OK"
        for thread in threads:
            thread.join(10)
        assert len(done) == 6 and min(done) >= unpaused
        assert admin.get("k") == b"v"
        with pytest.raises(redis.ResponseError, match="mode must be WRITE or ALL"):
            admin.execute_command("CLIENT", "PAUSE", "10", "READ")
        for client in clients + [admin]:
            client.close()


def test_debug_is_refused_by_default_like_redis(atoll: AtollServer,
                                                reference: RedisServer) -> None:
    answers = []
    for server in (atoll, reference):
        with pytest.raises(redis.ResponseError) as caught:
            server.client().execute_command("DEBUG", "SLEEP", "0")
        answers.append(str(caught.value))
    assert answers[0] == answers[1]


def test_debug_subset(tmp_path: Path) -> None:
    with atoll_server(tmp_path, "--enable-debug-command", "yes") as server:
        r = server.client()
        r.rpush("list", "a", "b")
        r.set("n", "12345")
        assert r.debug_object("n")["encoding"] == "int"
        assert r.debug_object("list")["encoding"] == "quicklist"
        with pytest.raises(redis.ResponseError, match="no such key"):
            r.debug_object("missing")
        r.set("gone", "x", px=50)
        assert r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"OK"
        wait_until(lambda: r.execute_command("DEBUG", "OBJECT", "gone") is not None,
                   what="debug object")  # still there: only a lookup would expire it
        assert r.dbsize() == 3
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        wait_until(lambda: r.dbsize() == 2, what="active expiry to resume")
        assert r.execute_command("DEBUG", "RELOAD") == b"OK"
        assert r.lrange("list", 0, -1) == [b"a", b"b"] and r.get("n") == b"12345"
        with pytest.raises(redis.ResponseError, match="unknown subcommand 'NOPE'"):
            r.execute_command("DEBUG", "NOPE")
        r.close()


def test_config_rewrite_keeps_the_file_and_updates_values(tmp_path: Path) -> None:
    conf = tmp_path / "atoll.conf"
    conf.write_text("# my comment\nmaxmemory-policy noeviction\nhz 10\nhz 11\n")
    with atoll_server(tmp_path, conf=str(conf)) as server:
        r = server.client()
        r.config_set("maxmemory-policy", "allkeys-lru")
        r.config_set("slowlog-max-len", "77")
        assert r.config_rewrite()
        text = conf.read_text().splitlines()
        assert text[:3] == ["# my comment", "maxmemory-policy allkeys-lru", "hz 11"]
        assert "# Generated by CONFIG REWRITE" in text and "slowlog-max-len 77" in text
        r.close()


def test_memory_stats(atoll: AtollServer) -> None:
    r = atoll.client()
    r.set("m", "x" * 1000)
    stats = r.memory_stats()
    assert stats["keys.count"] >= 1 and stats["total.allocated"] > 0
    assert r.execute_command("MEMORY", "DOCTOR")
    r.close()
