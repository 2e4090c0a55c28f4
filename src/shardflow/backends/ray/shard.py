"""One shard actor as the Ray pool sees it: its handle, its jobs in flight, its calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shardflow.batch.crash_policy import Culprit
from shardflow.batch.jobs import Job


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
    innocent: bool = False
    """It was lost with its node (or its connection): its jobs in flight run again as they
    were (no crash is counted against them; they are no suspects)."""
    alone_from: int = 1
    """Its jobs in flight that have now crashed this many actors run alone (suspects):
    2 when its process died on a live node (:func:`~shardflow.backends.ray.losses.alone_from`)."""
    judging: bool = False
    """Unreachable: no work is sent to it until Ray says whether it died, and why."""
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
