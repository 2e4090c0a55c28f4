"""SlotTable: named concurrency limits with all-or-nothing acquisition and FIFO waiters.

Both the in-process gate and the batch coordinator's arbiter (which sizes limits across all
worker processes) are built on it, so the rules are the same everywhere:

* a request takes a slot of every limit it names at once, or waits holding none, so two
  steps naming the same limits in different orders cannot deadlock;
* a release grants waiting requests immediately, in arrival order (a request that cannot
  be granted yet does not block later ones that can);
* statistics per limit: peak in use, time spent at capacity, mean wait.
"""

from __future__ import annotations

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


@dataclass(slots=True)
class SlotTable:
    limits: dict[str, LimitStats] = field(default_factory=dict)
    waiting: list[Request] = field(default_factory=list)

    @classmethod
    def of(cls, sizes: Mapping[str, int]) -> SlotTable:
        return cls({name: LimitStats(size) for name, size in sizes.items()})

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
        if not self.waiting and self._free(names):
            self._take(request, now)
            on_grant()
        else:
            for name in names:
                self.limits[name].waits += 1
            self.waiting.append(request)
            self._grant_waiting(now)
        return request

    def release(self, request: Request, now: float) -> None:
        """Give back a granted request's slots, or withdraw a waiting one."""
        if request.cancelled:
            return
        request.cancelled = True
        if not request.granted:
            if request in self.waiting:
                self.waiting.remove(request)
            return
        for name in request.names:
            lim = self.limits[name]
            lim.used -= 1
            if lim.full_since is not None and lim.used < lim.size:
                lim.full_seconds += now - lim.full_since
                lim.full_since = None
        self._grant_waiting(now)

    def _grant_waiting(self, now: float) -> None:
        if not self.waiting:
            return
        still: list[Request] = []
        for request in self.waiting:
            if self._free(request.names):
                self._take(request, now)
                for name in request.names:
                    self.limits[name].wait_seconds += now - request.since
                request.on_grant()
            else:
                still.append(request)
        self.waiting = still

    def report(self, now: float) -> dict[str, dict[str, Any]]:
        return {name: lim.to_dict(now) for name, lim in sorted(self.limits.items())}
