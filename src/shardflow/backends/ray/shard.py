"""One shard actor as the Ray pool sees it: its handle, its jobs in flight, its calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shardflow.batch.config import RaySettings
from shardflow.batch.dispatch import share
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.recovery import Culprit


@dataclass(eq=False)
class RayShard:
    slot: int
    key: str
    """``slot-incarnation``: how the arbiter actor knows this shard."""
    actor: Any
    inflight: dict[int, Job] = field(default_factory=dict)
    calls: int = 0
    """Calls sent and not answered (at most ``calls_in_flight``)."""
    exclusive: bool = False
    """It runs one suspect alone."""
    running: bool = False
    dead: bool = False
    """Lost (its calls failed, or the driver killed it): nothing more is sent to it."""
    pid: int | None = None
    culprit: Culprit | None = None
    """What its watchdog reported before the driver killed it."""
    result_bytes: float = 0.0
    """Average bytes per result seen so far (sizes the next batches)."""

    def batch_limit(self, batch_size: int, batch_bytes: int) -> int:
        """Jobs per call: ``batch_size``, fewer when results run large (results over
        ~100 KB per call go through Ray's object store at 6-8x the CPU)."""
        if self.result_bytes <= 0:
            return batch_size
        return max(1, min(batch_size, int(batch_bytes // self.result_bytes)))

    def saw_results(self, total_bytes: int, count: int) -> None:
        if count:
            average = total_bytes / count
            self.result_bytes = average if self.result_bytes <= 0 else (
                0.8 * self.result_bytes + 0.2 * average)


def fill(feed: Feed, shards: Sequence[RayShard], limit: int, batch_size: int,
         settings: RaySettings, send: Callable[[RayShard, list[Job]], None]) -> None:
    """Even dispatch as :func:`shardflow.batch.dispatch.fill` (least loaded first, no
    crumbs while the source is open), a shard's room also bounded by its calls in flight and
    its batches by the bytes of its results."""
    while feed.has_ready:
        crumbs_wait = feed.source_open and not feed.has_queued
        targets: list[RayShard] = []
        loads: list[int] = []
        caps: list[int] = []
        for shard in shards:
            batch = shard.batch_limit(batch_size, settings.batch_bytes)
            load = len(shard.inflight)
            want = min(limit - load, batch)
            if (shard.exclusive or shard.calls >= settings.calls_in_flight or want <= 0
                    or (want < batch and load and crumbs_wait)):
                continue
            targets.append(shard)
            loads.append(load)
            caps.append(want)
        if not targets:
            return
        jobs = feed.take(sum(caps))
        if not jobs:
            return
        start = 0
        for shard, count in zip(targets, share(loads, caps, len(jobs)), strict=True):
            if count:
                send(shard, jobs[start:start + count])
                start += count
