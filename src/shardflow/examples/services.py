"""Fake external services for the examples: configurable latency, default none.

``FakeService(latency=0.01)`` makes every call await that long, which turns the examples into
IO-bound workloads; with the default ``0`` a call returns without suspending.
"""

from __future__ import annotations

import asyncio
from typing import Any


class FakeService:
    """Stands in for an email/SMS/HTTP API; counts calls so tests can check who was called."""

    def __init__(self, name: str, latency: float = 0.0, payload: Any = None) -> None:
        self.name = name
        self.latency = latency
        self.payload = payload
        self.calls = 0

    async def send(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        return {"service": self.name, "ok": True}

    async def fetch(self) -> Any:
        self.calls += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        return self.payload if self.payload is not None else {"source": self.name}
