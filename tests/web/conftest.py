"""Fixtures for the web inbox tests. The web extra is imported only inside the fixture, so
the tests that need it skip (``needs_web``) instead of failing collection without it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from web.inbox_helpers import TOKEN, Api

if TYPE_CHECKING:
    from litestar.testing import TestClient

    from shardflow.web.resumer import Resumer


@pytest.fixture
def serve() -> Iterator[Callable[..., Api]]:
    """``serve(run_dirs, **config)``: an app over those runs and a client logged in to it."""
    from litestar.testing import TestClient

    from shardflow.web.app import ServeConfig, create_app

    clients: list[TestClient[Any]] = []

    def start(run_dirs: list[Path], resumer: Resumer | None = None, login: bool = True,
              **config: Any) -> Api:
        """``login=False``: a client that sends no token."""
        settings = ServeConfig(run_dirs=tuple(run_dirs), **{"user": "ann", "token": TOKEN,
                                                            **config})
        client: TestClient[Any] = TestClient(create_app(settings, resumer),
                                             base_url="http://127.0.0.1:8765")
        client.__enter__()
        clients.append(client)
        return Api(client, token=settings.token if login else None)

    yield start
    for client in clients:
        client.__exit__(None, None, None)
