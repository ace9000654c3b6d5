"""Pub/sub throughput of Atoll against a real redis-server in the same run, as ratios.

One publisher pipelines PUBLISH commands (``--pipeline`` in flight) to one channel while 1, 10
and 100 subscribers (raw asyncio sockets, so the client is not the bottleneck) read them.
Prints, per subscriber count, messages delivered per second (publishes x subscribers) for
each server and the ratio Atoll/Redis.

    python bench/pubsub.py [--messages 20000] [--shards 2] [--gateways 1] [--pipeline 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
from vs_redis import both_servers  # noqa: E402

PAYLOAD = b"x" * 32


async def subscriber(port: int, channel: bytes, expected: int, ready: asyncio.Event,
                     counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"SUBSCRIBE %s\r\n" % channel)
    await reader.readuntil(b":1\r\n")
    ready.set()
    marker = b"$%d\r\n%s\r\n" % (len(PAYLOAD), PAYLOAD)
    seen = 0
    tail = b""
    while seen < expected:
        data = await reader.read(1 << 16)
        if not data:
            break
        chunk = tail + data
        seen += chunk.count(marker)
        tail = chunk[-(len(marker) - 1):]
    counts.append(seen)
    writer.close()


async def publisher(port: int, channel: bytes, messages: int, pipeline: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    command = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
        len(channel), channel, len(PAYLOAD), PAYLOAD)
    sent = 0
    while sent < messages:
        batch = min(pipeline, messages - sent)
        writer.write(command * batch)
        for _ in range(batch):
            await reader.readuntil(b"\r\n")
        sent += batch
    writer.close()


async def run_one(port: int, subscribers: int, messages: int, pipeline: int) -> float:
    channel = b"bench-%d" % time.monotonic_ns()
    events = [asyncio.Event() for _ in range(subscribers)]
    counts: list[int] = []
    tasks = [asyncio.create_task(subscriber(port, channel, messages, e, counts))
             for e in events]
    for event in events:
        await event.wait()
    start = time.perf_counter()
    await publisher(port, channel, messages, pipeline)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)
    elapsed = time.perf_counter() - start
    assert all(c == messages for c in counts), f"lost messages: {counts[:5]}"
    return messages * subscribers / elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--gateways", type=int, default=1)
    parser.add_argument("--pipeline", type=int, default=16)
    parser.add_argument("--subscribers", default="1,10,100")
    args = parser.parse_args()
    with both_servers(args.shards, args.gateways) as (redis_port, atoll_port):
        print(f"messages={args.messages} pipeline={args.pipeline} shards={args.shards} "
              f"gateways={args.gateways} payload={len(PAYLOAD)}B cores={os.cpu_count()}")
        print(f"{'subscribers':>11} {'redis msg/s':>12} {'atoll msg/s':>12} {'ratio':>7}")
        for count in (int(n) for n in args.subscribers.split(",")):
            redis_rate = asyncio.run(run_one(redis_port, count, args.messages, args.pipeline))
            atoll_rate = asyncio.run(run_one(atoll_port, count, args.messages, args.pipeline))
            print(f"{count:>11} {redis_rate:12.0f} {atoll_rate:12.0f} "
                  f"{atoll_rate / redis_rate:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
