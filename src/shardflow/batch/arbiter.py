"""The coordinator's arbiter: named limits and rate limits that hold across all workers.

Workers ask for slots (``ACQUIRE``) and give them back (``RELEASE``); the arbiter grants in
the coordinator's loop, the moment a slot frees anywhere, and books rate-limited starts on one
schedule for the whole run, sending each grant exactly when its start is due. Slots held by a
worker that dies are released at once. Time comes from a :class:`~shardflow._clock.Clock`, so
the rate timing is tested with a fake clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from shardflow._clock import Clock, LoopClock, TimerHandle
from shardflow.limits.rates import RateSchedule, RateSpec, parse_rate
from shardflow.limits.slots import Request, SlotTable

GrantSender = Callable[[Any, list[int]], None]


class _RateStats:
    __slots__ = ("first", "last", "spec", "starts")

    def __init__(self, spec: RateSpec) -> None:
        self.spec = spec
        self.starts = 0
        self.first = 0.0
        self.last = 0.0

    def started(self, now: float) -> None:
        if not self.starts:
            self.first = now
        self.starts += 1
        self.last = now

    def to_dict(self) -> dict[str, Any]:
        span = self.last - self.first
        achieved = (self.starts - 1) / span if self.starts > 1 and span > 0 else 0.0
        return {"rate": str(self.spec), "configured_per_second": round(self.spec.per_second, 3),
                "burst": self.spec.burst, "starts": self.starts, "window_seconds": round(span, 6),
                "achieved_per_second": round(achieved, 3)}


class Arbiter:
    """Grants limit slots and rate-limited starts to worker processes."""

    def __init__(self, limits: Mapping[str, int], rate_limits: Mapping[str, str],
                 send: GrantSender, clock: Clock | None = None) -> None:
        self.clock = clock or LoopClock()
        self.slots = SlotTable.of(limits)
        self._rates = {n: RateSchedule(parse_rate(n, s)) for n, s in rate_limits.items()}
        self._rate_stats = {n: _RateStats(parse_rate(n, s)) for n, s in rate_limits.items()}
        self._send = send
        self._held: dict[tuple[int, int], tuple[Request | None, TimerHandle | None]] = {}
        self._outbox: dict[int, tuple[Any, list[int]]] = {}
        self._flush_scheduled = False

    def on_acquire(self, worker: Any, payload: bytes) -> None:
        now = self.clock.now()
        for rid, names, rate in orjson.loads(payload):
            key = (id(worker), rid)
            self._held[key] = (None, None)
            if names:
                request = self.slots.request(tuple(names), self._grant_callback(worker, rid, rate),
                                             now)
                held = self._held.get(key)
                if held is not None:
                    self._held[key] = (request, held[1])
            else:
                self._granted(worker, rid, rate)

    def _grant_callback(self, worker: Any, rid: int, rate: str | None) -> Callable[[], None]:
        return lambda: self._granted(worker, rid, rate)

    def _granted(self, worker: Any, rid: int, rate: str | None) -> None:
        key = (id(worker), rid)
        if rate is None:
            self._queue(worker, rid)
            return
        now = self.clock.now()
        delay = self._rates[rate].reserve(now)
        stats = self._rate_stats[rate]
        if delay <= 0:
            stats.started(now)
            self._queue(worker, rid)
            return

        def due() -> None:
            request, _ = self._held.get(key, (None, None))
            self._held[key] = (request, None)
            stats.started(self.clock.now())
            self._queue(worker, rid)

        timer = self.clock.call_later(delay, due)
        request = self._held.get(key, (None, None))[0]
        self._held[key] = (request, timer)

    def _queue(self, worker: Any, rid: int) -> None:
        box = self._outbox.setdefault(id(worker), (worker, []))
        box[1].append(rid)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        outbox, self._outbox = self._outbox, {}
        for worker, rids in outbox.values():
            self._send(worker, rids)

    def on_release(self, worker: Any, payload: bytes) -> None:
        now = self.clock.now()
        for rid in orjson.loads(payload):
            self._drop((id(worker), rid), now)

    def _drop(self, key: tuple[int, int], now: float) -> None:
        request, timer = self._held.pop(key, (None, None))
        if timer is not None:
            timer.cancel()
        if request is not None:
            self.slots.release(request, now)

    def worker_gone(self, worker: Any) -> None:
        """Release every slot the worker held and withdraw its waiting requests."""
        now = self.clock.now()
        for key in [k for k in self._held if k[0] == id(worker)]:
            self._drop(key, now)
        self._outbox.pop(id(worker), None)

    def report(self) -> dict[str, Any]:
        return {
            "limits": self.slots.report(self.clock.now()),
            "rate_limits": {n: s.to_dict() for n, s in sorted(self._rate_stats.items())},
        }
