"""Even dispatch: how a handful of new jobs is shared among workers (a pure function).

Instances never move once sent, so the split decided here is the split of the work. Filling
one worker first (up to ``max_in_flight``) left a run of 300 CPU-bound instances on one core
of two; instead the least-loaded workers are topped up first, level by level (water-filling),
so any batch larger than the number of workers uses every worker. When every worker can take
its whole share (a large run in steady state) the split is the caps themselves, so large
runs keep full batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from shardflow.batch.jobs import Feed, Job


def share(loads: list[int], caps: list[int], count: int) -> list[int]:
    """How many of ``count`` new jobs each worker gets: ``loads[i]`` jobs in flight now, at
    most ``caps[i]`` more. The result sums to ``min(count, sum(caps))`` and raises the lowest
    loads first; ties go to the earlier worker."""
    total = sum(caps)
    if count >= total:
        return list(caps)
    if count <= 0:
        return [0] * len(caps)

    def given(level: int) -> list[int]:
        return [min(max(level - load, 0), cap) for load, cap in zip(loads, caps, strict=True)]

    low, high = min(loads), max(load + cap for load, cap in zip(loads, caps, strict=True))
    while low < high:  # the highest level whose fill does not exceed ``count``
        mid = (low + high + 1) // 2
        if sum(given(mid)) <= count:
            low = mid
        else:
            high = mid - 1
    shares = given(low)
    left = count - sum(shares)
    for i, (load, cap) in enumerate(zip(loads, caps, strict=True)):
        if not left:
            break
        if load <= low and shares[i] < cap:  # one more raises this worker to ``low + 1``
            shares[i] += 1
            left -= 1
    return shares


class Loaded(Protocol):
    """A worker as dispatch sees it: its jobs in flight, and whether it runs a suspect alone."""

    inflight: dict[int, Job]
    exclusive: bool


L = TypeVar("L", bound=Loaded)


def fill(feed: Feed, workers: Sequence[L], limit: int, batch: int,
         send: Callable[[L, list[Job]], None], *,
         batch_of: Callable[[L], int] | None = None,
         busy: Callable[[L], bool] | None = None,
         stopped: Callable[[], bool] | None = None) -> None:
    """Take jobs from ``feed`` and ``send`` them to ``workers`` (at most ``limit`` in flight
    each, ``batch`` per send), least loaded first, until the feed or the room runs out.

    While the source is still open, a worker with fewer than ``batch`` free slots waits for
    more results to come back instead of being sent crumbs: full batches keep the
    coordinator's cost per instance low. A backend may size each worker's batch itself
    (``batch_of``: Ray sizes by the bytes of results) and hold a worker back (``busy``: all
    its calls in flight). ``stopped`` ends the filling at once when a send stopped the pool
    (its listener failed while answering pre-answered jobs)."""
    while feed.has_ready and not (stopped is not None and stopped()):
        crumbs_wait = feed.source_open and not feed.has_queued
        targets: list[L] = []
        loads: list[int] = []
        caps: list[int] = []
        for worker in workers:
            size = batch if batch_of is None else batch_of(worker)
            load = len(worker.inflight)
            want = min(limit - load, size)
            if (worker.exclusive or want <= 0 or (want < size and load and crumbs_wait)
                    or (busy is not None and busy(worker))):
                continue
            targets.append(worker)
            loads.append(load)
            caps.append(want)
        if not targets:
            return
        jobs = feed.take(sum(caps))
        if not jobs:
            return
        start = 0
        for worker, count in zip(targets, share(loads, caps, len(jobs)), strict=True):
            if count:
                send(worker, jobs[start:start + count])
                start += count
