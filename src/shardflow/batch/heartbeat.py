"""The coordinator's heartbeat watch: the backup for a worker's own loop watchdog.

A worker's watchdog thread cannot run while C code holds the GIL; then its heartbeats stop
too. The watch kills a worker whose last heartbeat is older than ``limit`` seconds (the hard
timeout + 2 s), so the pool replaces it like any dead worker. Time comes from a
:class:`~shardflow._clock.Clock`, so tests drive it with ``FakeClock.advance``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from shardflow._clock import Clock

W = TypeVar("W", bound=Hashable)


class HeartbeatWatch(Generic[W]):
    """Tracks the last heartbeat of each watched worker; :meth:`run` checks every
    ``interval`` seconds and calls ``kill`` once per silence longer than ``limit``."""

    def __init__(self, clock: Clock, limit: float, kill: Callable[[W], None], *,
                 interval: float = 0.25) -> None:
        self.clock = clock
        self.limit = limit
        self.interval = interval
        self._kill = kill
        self._last: dict[W, float] = {}

    def beat(self, worker: W) -> None:
        """``worker`` is alive now (and watched from now on)."""
        self._last[worker] = self.clock.now()

    def forget(self, worker: W) -> None:
        """Stop watching ``worker`` (it is stopping or gone)."""
        self._last.pop(worker, None)

    def check(self) -> None:
        now = self.clock.now()
        for worker, last in list(self._last.items()):
            if now - last > self.limit:
                self._last[worker] = now  # one kill per silence, not one per check
                self._kill(worker)

    async def run(self) -> None:
        while True:
            await self.clock.sleep(self.interval)
            self.check()
