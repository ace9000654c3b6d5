"""redis-cli's operator tools against Atoll (2 shards), checked against the data written and
against a real redis-server holding the same data: --bigkeys, --memkeys, --scan (--pattern,
--quoted-pattern, -n), SCAN ... COUNT ... TYPE from redis-cli, --stat and --latency.

redis-cli 7.0.15 has no ``--count`` option (it came in 7.2); COUNT is exercised through
redis-cli running SCAN itself."""

from __future__ import annotations

import re
import subprocess
import time

import redis

from tests.servers import AtollServer, RedisServer

SMALL = 20  # small keys of each collection type, sizes 1..SMALL
BIG = {"list": ("biglist", 700), "set": ("bigset", 900), "hash": ("bighash", 300),
       "zset": ("bigzset", 400), "string": ("bigstr", 5000)}
OTHER_DB = 2
OTHER_DB_KEYS = {f"db2:{i}" for i in range(37)}
BIGGEST = re.compile(rb"Biggest\s+(\w+) found '\"(.+)\"' has (\d+) (\w+)")
TOTALS = re.compile(rb"^(\d+) (\w+)s with (\d+) (\w+) \(", re.M)


def _fill(client: redis.Redis) -> set[str]:
    """The same data on both servers; returns the names of the keys in db 0."""
    client.flushall()
    pipe = client.pipeline(transaction=False)
    for i in range(300):
        pipe.set(f"str:{i}", "x" * (i % 50))
    for i in range(1, SMALL + 1):
        pipe.rpush(f"list:{i}", *range(i))
        pipe.sadd(f"set:{i}", *range(i))
        pipe.hset(f"hash:{i}", mapping={str(j): j for j in range(i)})
        pipe.zadd(f"zset:{i}", {str(j): j for j in range(i)})
    pipe.set("bigstr", "y" * 5000)
    pipe.rpush("biglist", *range(700))
    pipe.sadd("bigset", *range(900))
    pipe.hset("bighash", mapping={str(j): "v" * 10 for j in range(300)})
    pipe.zadd("bigzset", {str(j): j for j in range(400)})
    pipe.execute()
    port = client.connection_pool.connection_kwargs["port"]
    with redis.Redis(port=port, db=OTHER_DB, protocol=2) as db2:
        db2.mset({key: "1" for key in OTHER_DB_KEYS})
    return {key.decode() for key in client.keys("*")}


def _cli(port: int, *args: str, timeout: float = 60) -> bytes:
    done = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                          timeout=timeout, check=True)
    return done.stdout


def _biggest(output: bytes) -> dict[str, tuple[str, int, str]]:
    summary = output.split(b"-------- summary -------")[1]
    return {kind.decode(): (name.decode(), int(size), unit.decode())
            for kind, name, size, unit in BIGGEST.findall(summary)}


def _totals(output: bytes) -> dict[str, tuple[int, int]]:
    return {kind.decode(): (int(count), int(size))
            for count, kind, size, _ in TOTALS.findall(output)}


def test_bigkeys_finds_the_biggest_key_of_each_type(r: redis.Redis, atoll: AtollServer,
                                                     ref: redis.Redis,
                                                     reference: RedisServer) -> None:
    _fill(r)
    _fill(ref)
    output = _cli(atoll.port, "--bigkeys")
    units = {"list": "items", "set": "members", "hash": "fields", "zset": "members",
             "string": "bytes"}
    assert _biggest(output) == {kind: (name, size, units[kind])
                                for kind, (name, size) in BIG.items()}
    small_total = SMALL * (SMALL + 1) // 2
    strings = sum(i % 50 for i in range(300)) + 5000
    assert _totals(output) == {"list": (21, small_total + 700), "set": (21, small_total + 900),
                               "hash": (21, small_total + 300), "zset": (21, small_total + 400),
                               "string": (301, strings), "stream": (0, 0)}
    assert b"Sampled 385 keys in the keyspace!" in output
    reference_output = _cli(reference.port, "--bigkeys")
    summary = output.split(b"-------- summary -------")[1]
    assert summary == reference_output.split(b"-------- summary -------")[1]


def test_bigkeys_in_another_database_with_a_pattern(r: redis.Redis, atoll: AtollServer) -> None:
    _fill(r)
    output = _cli(atoll.port, "-n", str(OTHER_DB), "--bigkeys")
    assert b"Sampled 37 keys in the keyspace!" in output
    assert _totals(output)["string"] == (37, 37)
    output = _cli(atoll.port, "--bigkeys", "--pattern", "zset:*")
    assert _biggest(output) == {"zset": ("zset:20", 20, "members")}


def test_memkeys_finds_the_biggest_key_of_each_type_by_memory(
        r: redis.Redis, atoll: AtollServer, ref: redis.Redis, reference: RedisServer) -> None:
    _fill(r)
    _fill(ref)
    found = _biggest(_cli(atoll.port, "--memkeys"))
    assert {kind: name for kind, (name, _, _) in found.items()} == {
        kind: name for kind, (name, _) in BIG.items()}
    expected_on_redis = _biggest(_cli(reference.port, "--memkeys"))
    assert {k: v[0] for k, v in found.items()} == {k: v[0] for k, v in expected_on_redis.items()}
    for kind, (name, size, unit) in found.items():
        assert unit == "bytes"
        assert size == r.memory_usage(name), name  # redis-cli sends no SAMPLES by default
        # At least the payload: every element is a Python bytes object (33 bytes when
        # empty); and not absurdly more.
        objects = BIG[kind][1] * (2 if kind == "hash" else 1)
        floor = 5000 if kind == "string" else 33 * objects
        assert floor < size < 200 * BIG[kind][1], (name, size)
    # Measuring every element gives the same order of size as the default sample of 5.
    measured = _biggest(_cli(atoll.port, "--memkeys", "--memkeys-samples", "1000"))
    for kind, (name, size, _) in measured.items():
        assert name == found[kind][0]
        assert size == r.memory_usage(name, samples=0), name
        assert 0.7 * found[kind][1] < size < 1.3 * found[kind][1], name


def test_scan_lists_exactly_the_keys(r: redis.Redis, atoll: AtollServer) -> None:
    keys = _fill(r)
    assert len(keys) == 385

    def scanned(*args: str) -> list[str]:
        return _cli(atoll.port, "--scan", *args).decode().splitlines()

    everything = scanned()
    assert len(everything) == len(keys) and set(everything) == keys
    assert set(scanned("--pattern", "list:*")) == {k for k in keys if k.startswith("list:")}
    assert set(scanned("--pattern", "*:1?")) == {k for k in keys if re.fullmatch(r".*:1.", k)}
    assert scanned("--pattern", "nothing*") == []
    assert set(scanned("--quoted-pattern", '"big\\x73*"')) == {"bigset", "bigstr"}
    assert set(scanned("-n", str(OTHER_DB))) == OTHER_DB_KEYS
    assert set(scanned("-n", "5")) == set()


def test_scan_with_count_and_type_from_redis_cli(r: redis.Redis, atoll: AtollServer) -> None:
    keys = _fill(r)
    for kind, count in (("zset", "7"), ("string", "1"), ("hash", "1000")):
        cursor, found, rounds = "0", [], 0
        while True:
            lines = _cli(atoll.port, "SCAN", cursor, "COUNT", count, "TYPE", kind).splitlines()
            cursor = lines[0].decode()
            found += [line.decode() for line in lines[1:] if line]
            rounds += 1
            if cursor == "0":
                break
        expected = {k for k in keys if r.type(k) == kind.encode()}
        assert len(found) == len(expected) and set(found) == expected, kind
        if count == "1000":
            assert rounds <= 2  # one call per shard at most
        else:
            assert rounds > len(keys) // (int(count) * 20)  # COUNT bounds the work per call


def _stat_rows(port: int, rows: int) -> list[bytes]:
    """The first lines of ``redis-cli --stat -i 0.1``: two header lines, then ``rows`` rows.
    stdbuf keeps redis-cli's stdout line-buffered, since the process is stopped, not ended."""
    proc = subprocess.Popen(["stdbuf", "-oL", "redis-cli", "-p", str(port), "--stat", "-i",
                             "0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    lines: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while len(lines) < rows + 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip(b"\n"))
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
    assert len(lines) == rows + 2, lines
    return lines


def test_stat_prints_rows_with_the_key_count(r: redis.Redis, atoll: AtollServer,
                                            ref: redis.Redis, reference: RedisServer) -> None:
    _fill(r)
    _fill(ref)
    lines = _stat_rows(atoll.port, 3)
    assert lines[:2] == _stat_rows(reference.port, 1)[:2]
    for row in lines[2:]:
        keys, mem, clients, blocked, requests, _, connections = row.split()[:7]
        assert int(keys) == 385 + len(OTHER_DB_KEYS)
        used = int(r.info("memory")["used_memory"])
        value, unit = float(mem[:-1]), mem[-1:]
        scale = {b"B": 1, b"K": 1 << 10, b"M": 1 << 20, b"G": 1 << 30}[unit]
        assert 0.5 * used < value * scale < 2 * used, (mem, used)
        assert int(clients) >= 1 and int(blocked) == 0
        assert int(requests) > 0 and int(connections) > 0
    # Each row's request counter moves on by the INFO that produced the previous one.
    first, second = (int(row.split()[4]) for row in lines[2:4])
    assert second > first


def test_latency_prints_min_max_avg(atoll: AtollServer) -> None:
    # Not on a terminal redis-cli --latency samples for one interval, prints once and exits.
    for mode, separator in (("--raw", " "), ("--csv", ",")):
        started = time.monotonic()
        output = _cli(atoll.port, "--latency", mode, "-i", "0.5", timeout=30).decode()
        assert time.monotonic() - started < 20
        fields = output.strip().split(separator)
        assert len(fields) == 4, output
        low, high, avg, count = int(fields[0]), int(fields[1]), float(fields[2]), int(fields[3])
        assert count >= 3 and 0 <= low <= avg <= high < 1000, output


def test_latency_history_prints_a_line_per_sample(atoll: AtollServer) -> None:
    proc = subprocess.Popen(["stdbuf", "-oL", "redis-cli", "-p", str(atoll.port),
                             "--latency-history", "--raw", "-i", "1"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        lines = [proc.stdout.readline().decode() for _ in range(5)]
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
    counts = []
    for line in lines:
        low, high, avg, count = line.split()[:4]
        assert 0 <= int(low) <= float(avg) <= int(high) < 1000, line
        counts.append(int(count))
    assert counts == list(range(1, 6))
