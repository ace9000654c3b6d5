from __future__ import annotations

import pytest

from shard.actor import ShardExecutor
from tests.unit.shard_calls import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ex(clock: Clock) -> ShardExecutor:
    """A shard executor with 16 databases on the fake clock."""
    return ShardExecutor(0, {"databases": 16}, clock=clock)
