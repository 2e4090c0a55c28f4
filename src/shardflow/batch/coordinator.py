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
from shardflow.batch.pool import WorkerPool
from shardflow.batch.sinks import Reorder, Sink
from shardflow.batch.sources import InvalidRecord, Item
from shardflow.batch.spec import WorkerSpec
from shardflow.batch.stats import RunStats

ProgressCallback = Callable[[RunStats, int], None]


@dataclass(slots=True)
class RunOutcome:
    stats: RunStats
    restarts: int
    worker_cpu_seconds: float


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
        pool = WorkerPool(spec, self.config.workers, feed, self._on_result,
                          batch_size=self.config.batch_size, hard_timeout=self.config.hard_timeout)
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
        return RunOutcome(self.stats, pool.restarts, sum(pool.cpu_seconds.values()))

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
    if extra:
        data.update(extra)
    return data
