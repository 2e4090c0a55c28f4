"""SlotTable: named concurrency limits with all-or-nothing acquisition and FIFO waiters.

Both the in-process gate and the batch coordinator's arbiter (which sizes limits across all
worker processes) are built on it, so the rules are the same everywhere:

* a request takes a slot of every limit it names at once, or waits holding none, so two
  steps naming the same limits in different orders cannot deadlock;
* a release grants waiting requests immediately, in arrival order; a request blocked by
  another of its limits does not hold back later ones that can run (up to a bounded scan,
  so a release costs O(1) for single-limit steps however many are waiting);
* statistics per limit: peak in use, time spent at capacity, mean wait.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class LimitStats:
    size: int
    used: int = 0
    peak: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    full_since: float | None = None
    full_seconds: float = 0.0

    def to_dict(self, now: float) -> dict[str, Any]:
        full = self.full_seconds + (now - self.full_since if self.full_since is not None else 0)
        return {"size": self.size, "peak": self.peak,
                "mean_wait_ms": round(self.wait_seconds / self.waits * 1000, 3) if self.waits else 0.0,
                "waits": self.waits, "seconds_at_capacity": round(full, 3)}


@dataclass(slots=True, eq=False)
class Request:
    names: tuple[str, ...]
    on_grant: Callable[[], None]
    since: float
    granted: bool = False
    cancelled: bool = False


_SCAN = 64
"""How many blocked multi-limit requests a release looks past, at most."""


@dataclass(slots=True)
class SlotTable:
    limits: dict[str, LimitStats] = field(default_factory=dict)
    queues: dict[str, deque[Request]] = field(default_factory=dict)
    """Waiting requests per limit name, in arrival order (granted or withdrawn ones are
    dropped lazily when met)."""

    @classmethod
    def of(cls, sizes: Mapping[str, int]) -> SlotTable:
        return cls({name: LimitStats(size) for name, size in sizes.items()},
                   {name: deque() for name in sizes})

    def _free(self, names: tuple[str, ...]) -> bool:
        limits = self.limits
        return all(limits[n].used < limits[n].size for n in names)

    def _take(self, request: Request, now: float) -> None:
        for name in request.names:
            lim = self.limits[name]
            lim.used += 1
            if lim.used > lim.peak:
                lim.peak = lim.used
            if lim.used >= lim.size and lim.full_since is None:
                lim.full_since = now
        request.granted = True

    def request(self, names: tuple[str, ...], on_grant: Callable[[], None], now: float) -> Request:
        """Ask for a slot of each of ``names``; ``on_grant`` runs when they are taken (maybe
        before this returns)."""
        request = Request(names, on_grant, now)
        queues = self.queues
        if self._free(names) and not any(_live(queues[n]) for n in names):
            self._take(request, now)
            on_grant()
            return request
        for name in names:
            self.limits[name].waits += 1
            queues[name].append(request)
        self._grant_waiting(names, now)
        return request

    def release(self, request: Request, now: float) -> None:
        """Give back a granted request's slots, or withdraw a waiting one."""
        if request.cancelled:
            return
        request.cancelled = True
        if not request.granted:
            return  # withdrawn: its queue entries are dropped when met
        for name in request.names:
            lim = self.limits[name]
            lim.used -= 1
            if lim.full_since is not None and lim.used < lim.size:
                lim.full_seconds += now - lim.full_since
                lim.full_since = None
        self._grant_waiting(request.names, now)

    def _grant_waiting(self, names: tuple[str, ...], now: float) -> None:
        """Grant what the freed (or newly wanted) ``names`` allow, oldest first."""
        for name in names:
            queue = self.queues[name]
            lim = self.limits[name]
            index = 0
            while index < len(queue) and index <= _SCAN and lim.used < lim.size:
                request = queue[index]
                if request.granted or request.cancelled:
                    del queue[index]
                    continue
                if not self._free(request.names):
                    index += 1  # blocked by another of its limits: look past it
                    continue
                del queue[index]
                self._take(request, now)
                for each in request.names:
                    self.limits[each].wait_seconds += now - request.since
                request.on_grant()

    def report(self, now: float) -> dict[str, dict[str, Any]]:
        return {name: lim.to_dict(now) for name, lim in sorted(self.limits.items())}


def _live(queue: deque[Request]) -> bool:
    """Whether a queue holds a request still waiting (dropping dead ones at its head)."""
    while queue and (queue[0].granted or queue[0].cancelled):
        queue.popleft()
    return bool(queue)
