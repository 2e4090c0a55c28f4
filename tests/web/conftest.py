"""Fixtures for the web inbox tests (skipped without the web extra)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("litestar", reason="the web extra is not installed: pip install 'shardflow[web]'")

from litestar.testing import TestClient

from shardflow.web.app import ServeConfig, create_app
from shardflow.web.resumer import Resumer
from web.inbox_helpers import TOKEN, Api


@pytest.fixture
def serve() -> Iterator[Callable[..., Api]]:
    """``serve(run_dirs, **config)``: an app over those runs and a client logged in to it."""
    clients: list[TestClient[Any]] = []

    def start(run_dirs: list[Path], resumer: Resumer | None = None, login: bool = True,
              **config: Any) -> Api:
        settings = ServeConfig(run_dirs=tuple(run_dirs), **{"user": "ann", "token": TOKEN,
                                                            **config})
        client: TestClient[Any] = TestClient(create_app(settings, resumer),
                                             base_url="http://127.0.0.1:8765")
        client.__enter__()
        clients.append(client)
        if login:
            assert client.get(f"/?token={TOKEN}").status_code == 200
        return Api(client)

    yield start
    for client in clients:
        client.__exit__(None, None, None)

