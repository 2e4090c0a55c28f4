"""Limit permits a shard actor leases from the arbiter actor and reuses.

With one grant per step, every limited step on Ray waited for two Ray calls (a release to
the arbiter actor, a grant back), so a slot of a 20 ms step turned over every ~43 ms, not
~22 ms (issue 24: 0.72 of the process backend's utilisation on ``limit50``). Here a shard
holds the permits the arbiter granted it (each a real slot of every limit named) and hands
a permit that a step gives back straight to its next waiting step: a grant needs a round
trip only when the shard has no permit to reuse.

* A shard asks for at most ``batch`` permits at a time, and only for waiting steps;
* a permit no step of the shard waits for at the end of a loop turn goes back at once, and
  so do requests for steps no longer waiting;
* the arbiter *recalls* permits from a shard holding more than its fair share while another
  shard waits (:class:`~shardflow.backends.ray.arbiter_actor.ArbiterActor`): the shard
  withdraws its open requests and returns that many permits as its steps finish.

Steps with a rate limit take the per-start path of :class:`~shardflow.batch.remote_gate.RemoteGate`,
which this gate extends (a start time is booked for each; requests of both kinds go out in
one frame per loop turn). Permit ids are negative, RemoteGate's are not: one arbiter tells
them apart. A lost shard's permits are released by the arbiter when Ray reports the
actor dead, as before.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from shardflow.batch.remote_gate import RemoteGate

LEASE_BATCH = 64
"""Permits a shard asks for at a time (more come as they are granted and steps still wait)."""

Key = tuple[str, ...]


class _Lease:
    """A shard's permits of one set of limits (a step names its limits all at once)."""

    __slots__ = ("asked", "free", "in_use", "owed", "waiters")

    def __init__(self) -> None:
        self.free: list[int] = []
        self.waiters: deque[asyncio.Future[int]] = deque()
        self.asked: set[int] = set()
        """Permits requested from the arbiter and not granted yet."""
        self.in_use = 0
        self.owed = 0
        """Permits recalled by the arbiter: given back as steps finish, not reused."""


class LeasedGate(RemoteGate):
    """Implements :class:`shardflow.limits.gate.Gate` for a shard actor."""

    def __init__(self, write: Callable[[bytes], None], batch: int = LEASE_BATCH) -> None:
        super().__init__(write)
        self._batch = batch
        self._permit_ids = itertools.count(-1, -1)
        self._leases: dict[Key, _Lease] = {}
        self._key_of: dict[int, Key] = {}

    async def enter(self, limits: tuple[str, ...], rate_limit: str | None) -> Any:
        if rate_limit is not None or not limits:
            return await super().enter(limits, rate_limit)
        lease = self._leases.get(limits)
        if lease is None:
            lease = self._leases[limits] = _Lease()
        if lease.free:
            lease.in_use += 1
            return (limits, lease.free.pop())
        granted: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        lease.waiters.append(granted)
        self._ask(limits, lease)
        try:
            permit = await granted
        except BaseException:
            if granted.done() and not granted.cancelled():  # granted as it was cancelled
                self._give_back(limits, lease, granted.result())
            else:
                lease.waiters.remove(granted)
            raise
        return (limits, permit)

    def leave(self, token: Any) -> None:
        if not isinstance(token, tuple):  # a rate-limited start's
            super().leave(token)
            return
        limits, permit = token
        self._give_back(limits, self._leases[limits], permit)

    def on_grant(self, rids: list[int]) -> None:
        super().on_grant([rid for rid in rids if rid >= 0])
        for rid in rids:
            if rid < 0:
                limits = self._key_of.pop(rid, None)
                if limits is None:  # withdrawn meanwhile: not ours any more
                    continue
                lease = self._leases[limits]
                lease.asked.discard(rid)
                lease.in_use += 1
                self._give_back(limits, lease, rid)
        self._schedule()  # steps still waiting: ask for more at the end of the turn

    def on_recall(self, limits: Key, count: int) -> None:
        """The arbiter wants ``count`` permits back: withdraw open requests, return idle
        permits now and the rest as steps finish."""
        lease = self._leases.get(limits)
        if lease is None:
            return
        self._withdraw(lease, len(lease.asked))
        while count and lease.free:
            self._release.append(lease.free.pop())
            count -= 1
        lease.owed = min(lease.owed + count, lease.in_use)
        self._schedule()

    def _give_back(self, limits: Key, lease: _Lease, permit: int) -> None:
        """A permit a step no longer uses: owed to the arbiter, or the next waiter's, or
        idle (returned at the end of the loop turn unless a step takes it first)."""
        lease.in_use -= 1
        if lease.owed:
            lease.owed -= 1
            self._release.append(permit)
            self._schedule()
            if not lease.owed:
                self._ask(limits, lease)
            return
        while lease.waiters:
            waiter = lease.waiters.popleft()
            if not waiter.done():
                lease.in_use += 1
                waiter.set_result(permit)
                return
        lease.free.append(permit)
        self._schedule()

    def _ask(self, limits: Key, lease: _Lease) -> None:
        if lease.owed:
            return
        for _ in range(min(len(lease.waiters), self._batch) - len(lease.asked)):
            rid = next(self._permit_ids)
            lease.asked.add(rid)
            self._key_of[rid] = limits
            self._acquire.append([rid, limits, None])
        self._schedule()

    def _withdraw(self, lease: _Lease, count: int) -> None:
        """Take back ``count`` open requests (a permit granted meanwhile is released by the
        arbiter as it reads the withdrawal, and ignored here when it arrives)."""
        for rid in sorted(lease.asked)[:count]:  # the newest (ids count down)
            lease.asked.discard(rid)
            self._key_of.pop(rid, None)
            self._release.append(rid)

    def _flush(self) -> None:
        for limits, lease in self._leases.items():
            if lease.free and not lease.waiters:  # unused: back to the arbiter
                self._release.extend(lease.free)
                lease.free.clear()
            if len(lease.asked) > len(lease.waiters):  # asked for steps no longer waiting
                self._withdraw(lease, len(lease.asked) - len(lease.waiters))
            elif lease.waiters and len(lease.asked) < min(len(lease.waiters), self._batch):
                self._ask(limits, lease)
        super()._flush()
