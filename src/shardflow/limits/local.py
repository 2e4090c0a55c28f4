"""The in-process gate: named concurrency limits and rate limits for one event loop.

A step acquires all of its limits at once or none: while it waits it holds no slot, so two
steps needing the same limits in different orders cannot deadlock, and no slot idles.
Waiters are woken by the release itself (a future per waiter), never by polling.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping

from shardflow._clock import Clock
from shardflow.errors import ConfigError, WorkflowValidationError
from shardflow.limits.rates import RateSchedule, parse_rate
from shardflow.model.plan import Plan


class _Limit:
    __slots__ = ("size", "used", "waiters")

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self.waiters: deque[asyncio.Future[None]] = deque()


class LocalGate:
    """Implements :class:`shardflow.limits.gate.Gate` within one event loop."""

    def __init__(self, limits: Mapping[str, int], rate_limits: Mapping[str, str],
                 clock: Clock) -> None:
        for name, size in limits.items():
            if not isinstance(size, int) or size < 1:
                raise ConfigError(f"limits.{name}", f"size must be a positive integer, got {size!r}")
        self._limits = {name: _Limit(size) for name, size in limits.items()}
        self._rates = {name: RateSchedule(parse_rate(name, spec))
                       for name, spec in rate_limits.items()}
        self._clock = clock

    async def enter(self, limits: tuple[str, ...], rate_limit: str | None) -> None:
        if limits:
            await self._acquire(limits)
        if rate_limit is not None:
            delay = self._rates[rate_limit].reserve(self._clock.now())
            if delay > 0:
                try:
                    await self._clock.sleep(delay)
                except BaseException:
                    self.leave(limits)
                    raise

    async def _acquire(self, names: tuple[str, ...]) -> None:
        wanted = [self._limits[n] for n in names]
        while True:
            blocked = next((lim for lim in wanted if lim.used >= lim.size), None)
            if blocked is None:
                for lim in wanted:
                    lim.used += 1
                return
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            blocked.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake(blocked)  # pass the wake-up on, it was meant for someone
                else:
                    blocked.waiters.remove(waiter)
                raise

    def leave(self, limits: tuple[str, ...]) -> None:
        for name in limits:
            lim = self._limits[name]
            lim.used -= 1
            self._wake(lim)

    @staticmethod
    def _wake(lim: _Limit) -> None:
        while lim.waiters:
            waiter = lim.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def check_limits(plan: Plan, limits: Mapping[str, int], rate_limits: Mapping[str, str]) -> None:
    """Fail if a step names a limit the run does not size."""
    problems = [f"a step declares limit {n!r}, but the run sets no size for it "
                f"(add it to [limits])" for n in sorted(plan.limit_names - set(limits))]
    problems += [f"a step declares rate_limit {n!r}, but the run sets no rate for it "
                 f"(add it to [rate_limits])" for n in sorted(plan.rate_limit_names - set(rate_limits))]
    if problems:
        raise WorkflowValidationError(plan.name, problems)
