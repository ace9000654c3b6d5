"""Cross-shard atomicity under load: 4 shards, 2 gateway processes, many clients at once.

Every workload spans keys on several shards (checked below), and every reader checks an
invariant that a half-applied command would break:

- MSET of 8 keys to one value, while readers MGET them: never a mix of values;
- MULTI/EXEC transfers between 8 counters, while readers MGET them: the sum never changes;
- SMOVE between 4 sets, while readers run MULTI + 4 x SCARD: the total never changes;
- RPUSH of unique items to 4 lists, while consumers BLPOP all 4: every item exactly once.
"""

from __future__ import annotations

import os
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from gateway.links import key_slot
from tests.servers import AtollServer, wait_until

SHARDS = 4
SECONDS = float(os.environ.get("ATOLL_CONCURRENCY_SECONDS", "4"))


def shard_of(key: str) -> int:
    return min(key_slot(key.encode()) * SHARDS // 16384, SHARDS - 1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtollServer]:
    tmp: Path = tmp_path_factory.mktemp("concurrency")
    atoll = AtollServer(tmp, shards=SHARDS, gateways=2).start()
    yield atoll
    atoll.stop()


def client(server: AtollServer) -> redis.Redis:
    return redis.Redis(port=server.port, socket_timeout=30)


class Run:
    """Threads that loop until the deadline; the first failure is kept and re-raised."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []
        self.counts: Counter[str] = Counter()

    def loop(self, name: str, step: Callable[[], None]) -> None:
        def body() -> None:
            try:
                while not self.stop.is_set():
                    step()
                    self.counts[name] += 1
            except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                self.errors.append(exc)
                self.stop.set()

        thread = threading.Thread(target=body, name=name, daemon=True)
        self.threads.append(thread)

    def go(self, seconds: float) -> None:
        for thread in self.threads:
            thread.start()
        self.stop.wait(seconds)
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        if self.errors:
            raise self.errors[0]


def test_keys_span_shards() -> None:
    for keys in (MSET_KEYS, COUNTERS, SETS, LISTS):
        assert len({shard_of(k) for k in keys}) >= 3, keys


MSET_KEYS = [f"mset:{i}" for i in range(8)]
COUNTERS = [f"counter:{i}" for i in range(8)]
SETS = [f"set:{i}" for i in range(4)]
LISTS = [f"list:{i}" for i in range(4)]
MEMBERS = 100
START = 1000


def test_cross_shard_invariants_hold_under_load(server: AtollServer) -> None:
    setup = client(server)
    setup.flushall()
    setup.mset({k: 0 for k in MSET_KEYS})
    setup.mset({k: START for k in COUNTERS})
    setup.sadd(SETS[0], *range(MEMBERS))
    run = Run()

    def mset_writer(seed: int) -> Callable[[], None]:
        r = client(server)
        rng = random.Random(seed)
        return lambda: r.mset(dict.fromkeys(MSET_KEYS, rng.randrange(1_000_000)))

    def mset_reader() -> Callable[[], None]:
        r = client(server)

        def step() -> None:
            values = r.mget(MSET_KEYS)
            assert len(set(values)) == 1, f"MGET saw a half-applied MSET: {values}"
        return step

    def transfer(seed: int) -> Callable[[], None]:
        r = client(server)
        rng = random.Random(seed)

        def step() -> None:
            a, b = rng.sample(COUNTERS, 2)
            amount = rng.randrange(1, 50)
            pipe = r.pipeline(transaction=True)
            pipe.decrby(a, amount)
            pipe.incrby(b, amount)
            pipe.execute()
        return step

    def sum_reader() -> Callable[[], None]:
        r = client(server)

        def step() -> None:
            values = [int(v) for v in r.mget(COUNTERS)]
            assert sum(values) == START * len(COUNTERS), f"transfers seen half done: {values}"
        return step

    def mover(seed: int) -> Callable[[], None]:
        r = client(server)
        rng = random.Random(seed)

        def step() -> None:
            src, dst = rng.sample(SETS, 2)
            r.smove(src, dst, rng.randrange(MEMBERS))
        return step

    def card_reader() -> Callable[[], None]:
        r = client(server)

        def step() -> None:
            pipe = r.pipeline(transaction=True)
            for key in SETS:
                pipe.scard(key)
            sizes = pipe.execute()
            assert sum(sizes) == MEMBERS, f"SMOVE seen half done: {sizes}"
        return step

    produced: list[list[bytes]] = [[] for _ in range(2)]
    consumed: list[list[bytes]] = [[] for _ in range(3)]

    def producer(index: int) -> Callable[[], None]:
        r = client(server)
        rng = random.Random(index)
        counter = iter(range(10**9))

        def step() -> None:
            item = b"p%d-%d" % (index, next(counter))
            r.rpush(rng.choice(LISTS), item)
            produced[index].append(item)
        return step

    def consumer(index: int) -> Callable[[], None]:
        r = client(server)

        def step() -> None:
            got = r.blpop(LISTS, timeout=0.2)
            if got is not None:
                consumed[index].append(got[1])
        return step

    for i in range(2):
        run.loop(f"mset-writer-{i}", mset_writer(i))
        run.loop(f"transfer-{i}", transfer(i))
        run.loop(f"smove-{i}", mover(i))
        run.loop(f"producer-{i}", producer(i))
        run.loop(f"mset-reader-{i}", mset_reader())
        run.loop(f"sum-reader-{i}", sum_reader())
        run.loop(f"card-reader-{i}", card_reader())
    for i in range(3):
        run.loop(f"consumer-{i}", consumer(i))
    run.go(SECONDS)

    # Drain what the consumers left, then every produced item was popped exactly once.
    drain = client(server)
    while (got := drain.blpop(LISTS, timeout=0.1)) is not None:
        consumed[0].append(got[1])
    popped = Counter(item for part in consumed for item in part)
    pushed = Counter(item for part in produced for item in part)
    assert [item for item, n in popped.items() if n > 1] == []
    assert popped == pushed
    assert sum(int(v) for v in drain.mget(COUNTERS)) == START * len(COUNTERS)
    assert sum(drain.scard(k) for k in SETS) == MEMBERS
    # Every workload made real progress (a stalled one would pass its checks trivially).
    for name in ("mset-writer-0", "mset-reader-0", "transfer-0", "sum-reader-0", "smove-0",
                 "card-reader-0", "producer-0"):
        assert run.counts[name] > 20, run.counts
    assert sum(pushed.values()) > 100


@pytest.mark.parametrize("victim", ["gateway", "shard"])
def test_an_actor_killed_mid_transaction_leaves_no_key_locked(tmp_path: Path, victim: str) -> None:
    """SIGKILL a gateway (or a shard) while clients run cross-shard MSETs through it: once the
    supervisor restarted it, every key answers again (intents are released: by the restarted
    gateway's __hello, or by the coordinators when a shard's replies fail)."""
    import signal

    atoll = AtollServer(tmp_path, shards=2, gateways=2).start()
    keys = [f"locked:{i}" for i in range(8)]
    assert len({shard_of2(k) for k in keys}) == 2
    run = Run()
    try:
        for i in range(6):
            r = redis.Redis(port=atoll.port, socket_timeout=5)

            def step(r: redis.Redis = r, i: int = i) -> None:
                try:
                    r.mset(dict.fromkeys(keys, i))
                except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError):
                    pass  # the killed actor's clients lose their connection or get an error
            run.loop(f"writer-{i}", step)
        for thread in run.threads:
            thread.start()
        wait_until(lambda: sum(run.counts.values()) > 50, what="writers running")
        role = "G" if victim == "gateway" else "S"
        name = "Gateway 0 ready" if victim == "gateway" else "Shard 1 ready"
        line = next(line for line in atoll.log.read_text().splitlines() if name in line)
        assert f":{role} " in line
        os.kill(int(line.split(":")[0]), signal.SIGKILL)
        wait_until(lambda: atoll.log.read_text().count(name) >= 2, what="actor restarted")
        run.stop.set()
        for thread in run.threads:
            thread.join(10)
        check = redis.Redis(port=atoll.port, socket_timeout=5)
        wait_until(lambda: check.ping(), what="server answers")
        for key in keys:  # a key still locked would time out here
            check.set(key, "after")
        assert check.mget(keys) == [b"after"] * len(keys)
    finally:
        run.stop.set()
        atoll.stop()


def shard_of2(key: str) -> int:
    return min(key_slot(key.encode()) * 2 // 16384, 1)
