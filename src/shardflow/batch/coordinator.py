"""The coordinator: stream input to the worker pool, write results, keep the score.

It never runs steps and never decodes a context: input lines go to workers as raw bytes and
results come back as finished JSONL lines with a small header (seq, status, duration).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from shardflow.batch import protocol as p
from shardflow.batch.config import RunConfig
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.loader import load_workflow
from shardflow.batch.pool import WorkerPool
from shardflow.batch.sinks import Reorder, Sink
from shardflow.batch.sources import InvalidRecord, Item
from shardflow.batch.spec import WorkerSpec
from shardflow.batch.stats import RunStats
from shardflow.model.definition import WorkflowDefinition
from shardflow.model.plan import iter_steps

ProgressCallback = Callable[[RunStats, int], None]


@dataclass(slots=True)
class RunOutcome:
    stats: RunStats
    restarts: int
    worker_cpu_seconds: float
    hard_timeouts: int = 0
    limits: dict[str, Any] | None = None

    def render(self) -> str:
        """The end-of-run summary for stderr."""
        lines = [self.stats.render()]
        if self.restarts:
            lines.append(f"  worker restarts: {self.restarts} ({self.hard_timeouts} hard timeouts)")
        for name, lim in (self.limits or {}).get("limits", {}).items():
            lines.append(f"  limit {name}: size {lim['size']}, peak {lim['peak']}, "
                         f"mean wait {lim['mean_wait_ms']:.2f} ms, "
                         f"{lim['seconds_at_capacity']:.2f} s at capacity")
        for name, rate in (self.limits or {}).get("rate_limits", {}).items():
            lines.append(f"  rate limit {name}: {rate['rate']}, achieved "
                         f"{rate['achieved_per_second']:.1f}/s over {rate['starts']} starts")
        return "\n".join(lines)


def default_hard_timeout(definition: WorkflowDefinition) -> float:
    """The largest step timeout plus a margin, or 60 s when no step has a timeout."""
    timeouts = [step.timeout_seconds for node in definition.steps.values()
                for step in iter_steps(node) if step.timeout_seconds is not None]
    return max(timeouts) + 10.0 if timeouts else 60.0


def invalid_line(record: InvalidRecord, source: str) -> bytes:
    return orjson.dumps({
        "id": record.id, "status": "invalid_input", "context": None,
        "error": {"step": None, "type": "InvalidInput", "message": record.error,
                  "source": source, "line": record.line, "traceback": ""},
        "attempts": 0, "started_at": time.time(), "duration_ms": 0.0,
    })


class Coordinator:
    """One batch run: ``await Coordinator(...).run(items)``."""

    def __init__(self, target: str, config: RunConfig, sink: Sink, *, source_name: str = "input",
                 progress: ProgressCallback | None = None) -> None:
        self.target = target
        self.config = config
        self.sink = sink
        self.source_name = source_name
        self.progress = progress
        self.stats = RunStats()
        self._reorder = Reorder() if config.ordered else None
        self._read_seq = 0
        self._window = max(4 * config.workers * config.max_in_flight, 1024)

    async def run(self, items: Iterator[Item]) -> RunOutcome:
        feed = Feed(self._jobs(items))
        if self._reorder is not None:
            reorder = self._reorder
            feed.paused = lambda: self._read_seq - reorder.next_seq >= self._window
        spec = WorkerSpec(
            target=self.target, max_in_flight=self.config.max_in_flight,
            limits=self.config.limits, rate_limits=self.config.rate_limits,
        )
        hard_timeout = self.config.hard_timeout or default_hard_timeout(load_workflow(self.target))
        pool = WorkerPool(spec, self.config.workers, feed, self._on_result,
                          batch_size=self.config.batch_size, hard_timeout=hard_timeout)
        ticker = asyncio.get_running_loop().create_task(self._tick(pool))
        try:
            await pool.start()
            self.stats.ready_at = time.monotonic()
            await pool.wait_idle()
        finally:
            ticker.cancel()
            await pool.close()
            self.stats.finish(pool.step_stats)
            self.sink.flush()
        if self.progress is not None:
            self.progress(self.stats, 0)
        return RunOutcome(self.stats, pool.restarts, sum(pool.cpu_seconds.values()),
                          pool.hard_timeouts, pool.arbiter.report() if pool.arbiter else None)

    def _jobs(self, items: Iterator[Item]) -> Iterator[Job]:
        for item in items:
            self._read_seq = item.seq + 1
            if isinstance(item, InvalidRecord):
                self._emit(item.seq, p.STATUS_INDEX["invalid_input"], 0.0,
                           invalid_line(item, self.source_name))
                continue
            yield item

    def _on_result(self, job: Job, status: int, duration_ms: float, line: bytes) -> None:
        self._emit(job.seq, status, duration_ms, line)

    def _emit(self, seq: int, status: int, duration_ms: float, line: bytes) -> None:
        self.stats.add(status, duration_ms)
        if self._reorder is None:
            self.sink.write(line)
        else:
            for ready in self._reorder.push(seq, line):
                self.sink.write(ready)

    async def _tick(self, pool: WorkerPool) -> None:
        if self.progress is None:
            return
        while True:
            await asyncio.sleep(0.25)
            self.progress(self.stats, pool.in_flight)


def summary_dict(outcome: RunOutcome, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    data = outcome.stats.to_dict()
    data["worker_restarts"] = outcome.restarts
    data["hard_timeouts"] = outcome.hard_timeouts
    if outcome.limits:
        data.update(outcome.limits)
    if extra:
        data.update(extra)
    return data
