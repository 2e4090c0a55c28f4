"""The in-process gate: named concurrency limits and rate limits for one event loop.

Built on :class:`SlotTable` (all-or-nothing acquisition, FIFO waiters woken by the release
itself) and :class:`RateSchedule` (each start booked at its exact time, so a waiter sleeps
until then and never polls).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from shardflow._clock import Clock
from shardflow.errors import ConfigError
from shardflow.limits.rates import RateSchedule, parse_rate
from shardflow.limits.slots import Request, SlotTable


class LocalGate:
    """Implements :class:`shardflow.limits.gate.Gate` within one event loop."""

    def __init__(self, limits: Mapping[str, int], rate_limits: Mapping[str, str],
                 clock: Clock) -> None:
        for name, size in limits.items():
            if not isinstance(size, int) or size < 1:
                raise ConfigError(f"limits.{name}", f"size must be a positive integer, got {size!r}")
        self.slots = SlotTable.of(limits)
        self._rates = {name: RateSchedule(parse_rate(name, spec))
                       for name, spec in rate_limits.items()}
        self._clock = clock

    async def enter(self, limits: tuple[str, ...], rate_limit: str | None) -> Any:
        request: Request | None = None
        try:
            if limits:
                granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

                def grant() -> None:
                    if not granted.done():
                        granted.set_result(None)

                request = self.slots.request(limits, grant, self._clock.now())
                await granted
            if rate_limit is not None:
                delay = self._rates[rate_limit].reserve(self._clock.now())
                if delay > 0:
                    await self._clock.sleep(delay)
        except BaseException:
            if request is not None:
                self.slots.release(request, self._clock.now())
            raise
        return request

    def leave(self, token: Any) -> None:
        if token is not None:
            self.slots.release(token, self._clock.now())
