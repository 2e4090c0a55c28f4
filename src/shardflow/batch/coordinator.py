"""The coordinator: stream input to the worker pool, write results, keep the score.

It never runs steps and never decodes a context: input lines go to workers as raw bytes and
results come back as finished JSONL lines with a small header (seq, status, duration).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from shardflow.batch import protocol as p
from shardflow.batch.config import RunConfig
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.ledger import RunLedger
from shardflow.batch.loader import load_workflow
from shardflow.batch.pool import WorkerPool
from shardflow.batch.sinks import Reorder, Sink
from shardflow.batch.sources import InvalidRecord, Item
from shardflow.batch.spec import WorkerSpec
from shardflow.batch.stats import RunStats
from shardflow.model.definition import WorkflowDefinition
from shardflow.model.plan import iter_steps

ProgressCallback = Callable[[RunStats, int], None]
_WAITING = p.STATUS_INDEX["waiting"]


@dataclass(slots=True)
class RunOutcome:
    stats: RunStats
    restarts: int
    worker_cpu_seconds: float
    hard_timeouts: int = 0
    limits: dict[str, Any] | None = None
    interrupted: bool = False
    resumed_finished: int = 0
    """Waiting instances of an earlier session that this one brought to an end."""

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
    """One batch run (or the rest of one): ``await Coordinator(...).run(items)``.

    With a ``ledger`` every result is journalled (and input positions it already holds are
    skipped); with ``grace_seconds`` SIGINT/SIGTERM stop the run gracefully: no more input is
    read, instances in flight get that long to finish, and a second signal stops at once.
    """

    def __init__(self, target: str, config: RunConfig, sink: Sink, *, source_name: str = "input",
                 progress: ProgressCallback | None = None, ledger: RunLedger | None = None,
                 resume: list[Job] | None = None, grace_seconds: float | None = None) -> None:
        self.target = target
        self.config = config
        self.sink = sink
        self.source_name = source_name
        self.progress = progress
        self.ledger = ledger
        self.stats = RunStats()
        self.interrupted = False
        self._resume = resume or []
        self._resumed_ids = {job.seq: str(job.id) for job in self._resume}
        self._done = ledger.done if ledger is not None else None
        self._reorder = Reorder(self._done) if config.ordered else None
        self._read_seq = 0
        self._window = max(4 * config.workers * config.max_in_flight, 1024)
        self._grace = grace_seconds
        self._stop_now = asyncio.Event()
        self._feed: Feed | None = None
        self._resumed_finished = 0

    async def run(self, items: Iterator[Item]) -> RunOutcome:
        feed = self._feed = Feed(itertools.chain(self._jobs(items), self._resume))
        if self._reorder is not None:
            reorder = self._reorder
            feed.room = lambda: self._window - (self._read_seq - reorder.next_seq)
        spec = WorkerSpec(
            target=self.target, max_in_flight=self.config.max_in_flight,
            limits=self.config.limits, rate_limits=self.config.rate_limits,
        )
        hard_timeout = self.config.hard_timeout or default_hard_timeout(load_workflow(self.target))
        ledger = self.ledger
        pool = WorkerPool(spec, self.config.workers, feed, self._on_result,
                          on_results=self._on_results,
                          batch_size=self.config.batch_size, hard_timeout=hard_timeout,
                          on_parked=ledger.parked if ledger is not None else None,
                          after_results=self._flush)
        loop = asyncio.get_running_loop()
        ticker = loop.create_task(self._tick(pool))
        if self._grace is not None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_signal, pool)
        try:
            await pool.start()
            self.stats.ready_at = time.monotonic()
            await _first(pool.wait_idle(), self._stop_now.wait())
        finally:
            if self._grace is not None:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
            ticker.cancel()
            await pool.close(kill=self._stop_now.is_set())
            self.stats.finish(pool.step_stats)
            self._flush()
        if self.progress is not None:
            self.progress(self.stats, 0)
        return RunOutcome(self.stats, pool.restarts, sum(pool.cpu_seconds.values()),
                          pool.hard_timeouts, pool.arbiter.report() if pool.arbiter else None,
                          interrupted=self.interrupted, resumed_finished=self._resumed_finished)

    def _on_signal(self, pool: WorkerPool) -> None:
        if self.interrupted:
            self._stop_now.set()
            return
        self.interrupted = True
        assert self._feed is not None and self._grace is not None
        self._feed.stop()
        pool.dispatch()
        sys.stderr.write(f"\nshardflow: interrupted; letting {pool.in_flight} instances in flight "
                         f"finish (up to {self._grace:g} s, interrupt again to stop now)\n")
        asyncio.get_running_loop().call_later(self._grace, self._stop_now.set)

    def _jobs(self, items: Iterator[Item]) -> Iterator[Job]:
        done = self._done
        for item in items:
            self._read_seq = item.seq + 1
            if done is not None and item.seq in done:
                continue
            if isinstance(item, InvalidRecord):
                self._emit(item.seq, p.STATUS_INDEX["invalid_input"], 0.0,
                           invalid_line(item, self.source_name), None)
                continue
            yield item

    def _on_results(self, jobs: list[Job], header: list[list[Any]], lines: list[bytes]) -> None:
        """The hot path: one batch of results from a worker, handled as a batch."""
        if self._resumed_ids or self._reorder is not None:
            for job, row, line in zip(jobs, header, lines, strict=True):
                self._on_result(job, row[1], row[2], line)
            return
        self.stats.add_batch(header)
        if self.ledger is not None:
            self.ledger.record_batch(jobs, header, lines)
        self.sink.write_many(lines)

    def _on_result(self, job: Job, status: int, duration_ms: float, line: bytes) -> None:
        self._emit(job.seq, status, duration_ms, line, self._resumed_ids.get(job.seq))

    def _emit(self, seq: int, status: int, duration_ms: float, line: bytes,
              resumed_id: str | None) -> None:
        self.stats.add(status, duration_ms)
        if self.ledger is not None:
            self.ledger.record(seq, status, line, resumed_id)
        if resumed_id is not None and status != _WAITING:
            self._resumed_finished += 1
        if self._reorder is None or resumed_id is not None:
            self.sink.write(line)
        else:
            for ready in self._reorder.push(seq, line):
                self.sink.write(ready)

    def _flush(self) -> None:
        """Journal first, then output: a result is in the output only once journalled."""
        if self.ledger is not None:
            self.ledger.flush()
        self.sink.flush()

    async def _tick(self, pool: WorkerPool) -> None:
        if self.progress is None:
            return
        while True:
            await asyncio.sleep(0.25)
            self.progress(self.stats, pool.in_flight)


async def _first(*aws: Coroutine[Any, Any, Any]) -> None:
    """Wait for the first of ``aws`` to finish; cancel the others; re-raise its error."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    for task in done:
        task.result()


def summary_dict(outcome: RunOutcome, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    data = outcome.stats.to_dict()
    data["worker_restarts"] = outcome.restarts
    data["hard_timeouts"] = outcome.hard_timeouts
    if outcome.limits:
        data.update(outcome.limits)
    if extra:
        data.update(extra)
    return data
