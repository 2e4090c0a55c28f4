"""Time as a swappable policy: the real event-loop clock, a fake clock for tests, and the one
timeout helper built on top of either.

Every timeout and retry delay in shardflow goes through a :class:`Clock`, so a test can drive a
30-second timeout with ``FakeClock.advance(30)`` instead of waiting (trio's ``MockClock`` idea).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from types import TracebackType
from typing import Protocol


class TimerHandle(Protocol):
    """Something that can stop a scheduled callback."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time, timers and sleeping."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` after ``delay`` seconds."""
        ...

    async def sleep(self, delay: float) -> None:
        """Suspend the caller for ``delay`` seconds."""
        ...


class LoopClock:
    """The running event loop's clock (the default)."""

    __slots__ = ()

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when a test calls :meth:`advance`.

    ``await clock.wait_for_timers(n)`` returns once ``n`` timers are scheduled, so a test can
    wait for "the step is now sleeping / guarded by a timeout" on an event, not on real time.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, _FakeTimer]] = []
        self._seq = itertools.count()
        self._changed: asyncio.Event | None = None

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _FakeTimer(self._now + max(delay, 0.0), callback)
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
        if self._changed is not None:
            self._changed.set()
        return timer

    async def sleep(self, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_later(delay, wake)
        try:
            await future
        finally:
            timer.cancel()

    @property
    def pending_timers(self) -> int:
        """Timers scheduled and not yet fired or cancelled."""
        return sum(1 for _, _, t in self._heap if not t.cancelled)

    async def wait_for_timers(self, count: int = 1) -> None:
        """Return once at least ``count`` live timers are scheduled."""
        while self.pending_timers < count:
            self._changed = asyncio.Event()
            await self._changed.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer that falls due, in order."""
        target = self._now + seconds
        while self._heap and self._heap[0][0] <= target:
            when, _, timer = heapq.heappop(self._heap)
            self._now = max(self._now, when)
            if not timer.cancelled:
                timer.cancelled = True
                timer.callback()
        self._now = target


class TimeoutScope:
    """``async with TimeoutScope(clock, seconds):`` cancels the body when time runs out and
    raises :class:`TimeoutError`, exactly like :func:`asyncio.timeout`, but on any clock.

    A cancellation that did not come from this scope is never swallowed: the check compares the
    task's cancel count on entry and exit, as asyncio's own implementation does.
    """

    __slots__ = ("_cancelling", "_clock", "_delay", "_expired", "_handle", "_task")

    def __init__(self, clock: Clock, delay: float) -> None:
        self._clock = clock
        self._delay = delay
        self._expired = False
        self._handle: TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0

    @property
    def expired(self) -> bool:
        return self._expired

    async def __aenter__(self) -> TimeoutScope:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("TimeoutScope must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._handle = self._clock.call_later(self._delay, self._fire)
        return self

    def _fire(self) -> None:
        if self._task is not None and not self._task.done():
            self._expired = True
            self._task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if (
            self._expired
            and self._task is not None
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc
