from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import AtollServer, RedisServer, have_redis


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not have_redis():
        raise pytest.UsageError(
            "redis-server and redis-cli are required (apt-get install redis-server redis-tools);"
            " `make test` installs them"
        )


@pytest.fixture(scope="session")
def atoll(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtollServer]:
    """One Atoll server (2 shards) shared by the integration tests; tests use their own keys
    or FLUSHALL first."""
    server = AtollServer(tmp_path_factory.mktemp("atoll")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def r(atoll: AtollServer):
    client = atoll.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def ref(reference: RedisServer):
    client = reference.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path
