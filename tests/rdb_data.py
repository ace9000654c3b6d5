"""A dataset with every type in both of Redis' encodings, binary values, several databases and
TTLs, and a type-aware dump of a server's whole contents to compare two servers by."""

from __future__ import annotations

import random
from typing import Any

import redis

BIN = bytes(range(256))


def fill(client: redis.Redis, seed: int = 7, dbs: tuple[int, ...] = (0, 3, 15)) -> None:
    """Write the dataset through ``client`` (which must be able to SELECT)."""
    rng = random.Random(seed)
    for db in dbs:
        c = client
        c.execute_command("SELECT", db)
        p = c.pipeline(transaction=False)
        tag = b"db%d:" % db
        p.set(tag + b"str:small", b"hello")
        p.set(tag + b"str:int", b"12345")
        p.set(tag + b"str:neg", b"-7")
        p.set(tag + b"str:bigint", b"9223372036854775807")
        p.set(tag + b"str:bin", BIN)
        p.set(tag + b"str:long", b"abc" * 5000)  # LZF-compressible in Redis
        p.set(tag + b"str:empty", b"")
        p.set(tag + b"str:ttl", b"expiring", px=3_600_000)
        p.rpush(tag + b"list:small", b"a", b"1", b"-2", BIN, b"300000", b"x" * 70)
        p.rpush(tag + b"list:big", *[b"%d" % rng.randint(-(10**12), 10**12) for _ in range(300)])
        p.rpush(tag + b"list:huge-elem", b"y" * 10000, b"z")
        p.sadd(tag + b"set:intset", *[b"%d" % i for i in (-5, 0, 1, 70000, 2**40)])
        p.sadd(tag + b"set:small", b"a", b"b", BIN)
        p.sadd(tag + b"set:big", *[b"m%d" % i for i in range(600)])
        p.sadd(tag + b"set:bigint", *[b"%d" % i for i in range(600)])
        p.hset(tag + b"hash:small", mapping={b"f1": b"v1", b"n": b"42", b"bin": BIN[:40]})
        p.hset(tag + b"hash:big", mapping={b"f%d" % i: b"v%d" % i for i in range(600)})
        p.hset(tag + b"hash:longval", mapping={b"f": b"w" * 100})
        p.zadd(tag + b"zset:small", {b"a": 1.5, b"b": -2, b"c": 0, b"d": 1e300, b"e": float("inf")})
        p.zadd(tag + b"zset:big", {b"m%d" % i: rng.random() * 1000 for i in range(300)})
        p.zadd(tag + b"zset:longmember", {b"q" * 100: 3.25})
        p.hset(tag + b"hash:ttl", mapping={b"a": b"b"})
        p.pexpire(tag + b"hash:ttl", 7_200_000)
        p.execute()
    client.execute_command("SELECT", 0)


def contents(client: redis.Redis, databases: int = 16) -> dict[tuple[int, bytes], Any]:
    """(db, key) -> (type, value, has-ttl) for every key of every database."""
    out: dict[tuple[int, bytes], Any] = {}
    for db in range(databases):
        client.execute_command("SELECT", db)
        for key in client.keys(b"*"):
            kind = client.type(key)
            kind = kind.decode() if isinstance(kind, bytes) else kind
            if kind == "string":
                value: Any = client.get(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = sorted(client.smembers(key))
            elif kind == "hash":
                value = sorted(client.hgetall(key).items())
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            else:
                value = None
            out[(db, key)] = (kind, value, client.pttl(key) > 0)
    client.execute_command("SELECT", 0)
    return out
