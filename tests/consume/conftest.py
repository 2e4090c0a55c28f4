from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("redis", reason="the shardflow[redis] extra is not installed")

from consume.helpers import reap
from consume.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        reap()  # consumers a failed test left running, before their Redis goes
        server.stop()
