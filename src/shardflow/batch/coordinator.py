"""The coordinator: stream input to the worker pool, write results, keep the score.

It never runs steps and never decodes a context: input lines go to workers as raw bytes and
results come back as finished JSONL lines with a small header (seq, status, duration). It is
the :class:`~shardflow.batch.run_core.ResultSink` of a :class:`RunCore`, like
``BatchExecutor`` and ``shardflow consume``.

Durability order (the run core's, the same for every sink): a frame's results are appended
to the journal, the journal is flushed, and only then are they written to the output, so the
output never holds a result the journal lacks. When a write fails the run ends cleanly instead
of being mistaken for a dead worker:

* the output (EPIPE from ``| head``, ENOSPC, EFBIG, EIO): no more input is read and nothing
  more is written to the output; instances in flight finish into the journal;
  :attr:`RunOutcome.output_error` says which file and why;
* the journal or the task store: dispatch stops at once and the workers are stopped; what
  was journalled stays (:attr:`RunOutcome.journal_error`).

Nothing is re-run because of either; ``resume`` continues the run.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import sqlite3
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from shardflow.batch.backend import Pool
from shardflow.batch.config import RunConfig
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.ledger import RunLedger
from shardflow.batch.outcome import RunIOError, RunOutcome, summary_dict
from shardflow.batch.run_core import EventsCallback, ResultObserver, RunCore
from shardflow.batch.sinks import Reorder, Sink
from shardflow.batch.sources import InvalidRecord, Item
from shardflow.batch.spec import WorkerSpec
from shardflow.batch.stats import RunStats
from shardflow.engine.results import Status, invalid_line
from shardflow.engine.rows import ResultRow
from shardflow.model.definition import WorkflowDefinition
from shardflow.model.loader import load_workflow
from shardflow.model.plan import iter_steps
from shardflow.store.journal import FileJournal

__all__ = ["Coordinator", "RunIOError", "RunOutcome", "default_hard_timeout", "summary_dict"]

ProgressCallback = Callable[[RunStats, int], None]
_WAITING = int(Status.WAITING)
_INVALID = int(Status.INVALID_INPUT)
_STORE_ERRORS = (OSError, sqlite3.Error)


def default_hard_timeout(definition: WorkflowDefinition) -> float:
    """The largest step timeout plus a margin, or 60 s when no step has a timeout."""
    timeouts = [step.timeout_seconds for node in definition.steps.values()
                for step in iter_steps(node) if step.timeout_seconds is not None]
    return max(timeouts) + 10.0 if timeouts else 60.0


_log = logging.getLogger("shardflow")
"""The CLI shows these messages as ``shardflow: ...`` lines (``-q`` hides them)."""


class Coordinator:
    """One batch run (or the rest of one): ``await Coordinator(...).run(items)``.

    With a ``ledger`` every result is journalled (and input positions it already holds are
    skipped); with ``grace_seconds`` SIGINT/SIGTERM stop the run gracefully: no more input is
    read, instances in flight get that long to finish, and a second signal stops at once.
    ``scratch_dir`` (the run directory) holds the workers' watchdog reports.
    """

    def __init__(self, target: str, config: RunConfig, sink: Sink, *, source_name: str = "input",
                 progress: ProgressCallback | None = None, ledger: RunLedger | None = None,
                 resume: list[Job] | None = None, grace_seconds: float | None = None,
                 scratch_dir: Path | None = None, output_name: str | None = None,
                 observer: ResultObserver | None = None,
                 on_events: EventsCallback | None = None,
                 watch: Callable[[Coordinator], Coroutine[Any, Any, None]] | None = None) -> None:
        """``watch`` runs beside the pool (the run's timer watch, ``run/timer_watch.py``): the
        feed stays open for it until it calls :meth:`release_feed`."""
        self.target = target
        self._watch = watch
        self.on_events = on_events
        self.config = config
        self.sink = sink
        self.source_name = source_name
        self.progress = progress
        self.ledger = ledger
        self.observer = observer
        self.scratch_dir = scratch_dir
        self.output_name = output_name or "<output>"
        self.stats = RunStats()
        self.interrupted = False
        self.output_error: RunIOError | None = None
        self.journal_error: RunIOError | None = None
        self._resume = resume or []
        self._resumed_ids = {job.seq for job in self._resume}
        self._done = ledger.done if ledger is not None else None
        self._reorder = Reorder(self._done) if config.ordered else None
        self._one_by_one = bool(self._resumed_ids) or self._reorder is not None
        self._pending: list[bytes] = []
        """Output lines of results journalled but not yet flushed to the journal."""
        self._read_seq = 0
        self._window = max(4 * config.workers * config.max_in_flight, 1024)
        self._grace = grace_seconds
        self._stop_now = asyncio.Event()
        self._feed: Feed | None = None
        self._resumed_finished = 0
        self._rewaited: set[int] = set()
        """Seqs the watch continues whose ``waiting`` record this session counted."""
        self._core: RunCore | None = None

    async def run(self, items: Iterator[Item]) -> RunOutcome:
        feed = self._feed = Feed(itertools.chain(self._jobs(items), self._resume),
                                 room=self._room if self._reorder is not None else None)
        if self._watch is not None:
            feed.hold()
        spec = WorkerSpec(
            target=self.target, max_in_flight=self.config.max_in_flight,
            limits=self.config.limits, rate_limits=self.config.rate_limits,
        )
        hard_timeout = self.config.hard_timeout or default_hard_timeout(load_workflow(self.target))
        core = self._core = RunCore(self.config, spec, feed, self, hard_timeout=hard_timeout,
                                    ledger=self.ledger, observer=self.observer,
                                    scratch_dir=self.scratch_dir, on_events=self.on_events)
        pool = core.pool
        loop = asyncio.get_running_loop()
        ticker = loop.create_task(self._tick(pool))
        if self._grace is not None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_signal, pool)
        watching: asyncio.Task[None] | None = None
        try:
            await pool.start()
            self.stats.ready_at = time.monotonic()
            if self._watch is not None:
                watching = loop.create_task(self._watch(self))
                watching.add_done_callback(self._watch_ended)
            await _first(pool.wait_idle(), self._stop_now.wait())
        except _STORE_ERRORS:
            if self.journal_error is None:
                raise
            # the pool stopped dispatching the moment the ledger failed (``stopped``)
        finally:
            if self._grace is not None:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
            ticker.cancel()
            if watching is not None:
                watching.cancel()
            await core.close(kill=self._stop_now.is_set())
            self.stats.finish(pool.step_stats, pool.failures.values(), pool.given_up)
            if self.journal_error is None:  # what the last frames left: journal, then output
                try:
                    core.on_settled()
                except _STORE_ERRORS as exc:
                    self.stopped(exc)
        if self.progress is not None:
            self.progress(self.stats, 0)
        return RunOutcome(self.stats, pool.restarts, sum(pool.cpu_seconds.values()),
                          pool.hard_timeouts, pool.arbiter.report() if pool.arbiter else None,
                          interrupted=self.interrupted, resumed_finished=self._resumed_finished,
                          output_error=self.output_error, journal_error=self.journal_error,
                          start_failures=pool.start_failures,
                          config=replace(self.config, hard_timeout=hard_timeout))

    def _room(self) -> int:
        """How many more input lines may be read: the ordered mode's bounded window."""
        assert self._reorder is not None
        return self._window - (self._read_seq - self._reorder.next_seq)

    def _on_signal(self, pool: Pool) -> None:
        if self.interrupted:
            self._stop_now.set()
            return
        self.interrupted = True
        assert self._feed is not None and self._grace is not None
        self._feed.stop()
        pool.dispatch()
        _log.warning("interrupted; letting %d instances in flight finish (up to %g s, interrupt "
                     "again to stop now)", pool.in_flight, self._grace)
        asyncio.get_running_loop().call_later(self._grace, self._stop_now.set)

    def _jobs(self, items: Iterator[Item]) -> Iterator[Job]:
        """Jobs of the input not yet done; a record that cannot be an instance becomes a
        pre-answered job (its ``invalid_input`` line), answered by the pool in its turn."""
        done = self._done
        source = self.source_name
        if not done and self._reorder is None:
            # A fresh unordered run: nothing to skip and no window to track, so valid records
            # pass through untouched (~50 bytecodes an instance less; they are most of them).
            for item in items:
                if type(item) is Job:
                    yield item
                else:
                    assert isinstance(item, InvalidRecord)
                    yield Job(item.seq, item.id, b"", answer=(
                        _INVALID, invalid_line(item.id, item.error, source, item.line)))
            return
        for item in items:
            self._read_seq = item.seq + 1
            if done is not None and item.seq in done:
                continue
            if isinstance(item, InvalidRecord):
                yield Job(item.seq, item.id, b"", answer=(
                    _INVALID, invalid_line(item.id, item.error, source, item.line)))
                continue
            yield item

    # -- the run core's sink -----------------------------------------------------------------
    def accept(self, jobs: list[Job], rows: list[ResultRow], lines: list[bytes]) -> None:
        """The hot path: one batch of results, journalled (by the core) as a batch."""
        if self._one_by_one:
            for job, row, line in zip(jobs, rows, lines, strict=True):
                self._one(job, row[1], row[2], line)
            return
        self.stats.add_batch(rows, lines)
        if self.output_error is None:
            self._pending += lines

    def _one(self, job: Job, status: int, duration_ms: float, line: bytes) -> None:
        resumed = job.seq in self._resumed_ids
        self.stats.add(status, duration_ms, line)
        if resumed:  # its new record supersedes its earlier ``waiting`` one
            if job.seq in self._rewaited:  # counted in this session: count it once
                self._rewaited.discard(job.seq)
                counts = self.stats.counts
                counts["waiting"] -= 1
                if not counts["waiting"]:
                    del counts["waiting"]
            else:
                self._resumed_finished += 1
        if self.output_error is not None:
            return
        if self._reorder is None or resumed:
            self._pending.append(line)
        else:
            self._pending += self._reorder.push(job.seq, line)

    def release(self) -> None:
        """The journal is flushed: write what it now holds to the output."""
        if self.output_error is not None:
            return
        pending, self._pending = self._pending, []
        try:
            if pending:
                self.sink.write_many(pending)
            self.sink.flush()
        except OSError as exc:
            self._output_failed(exc)

    def stopped(self, error: BaseException) -> None:
        """A journal or task-store write failed (the pool has stopped dispatching and kills
        its workers; what was journalled stays); any other error is raised in :meth:`run`."""
        where = self._core.failed_in if self._core is not None else None
        if self.journal_error is None and where is not None and isinstance(error, Exception):
            self.journal_error = RunIOError(
                "the task store" if where == "parked" else self._journal_name(), error)
            self._pending = []

    def _output_failed(self, exc: OSError) -> None:
        self.output_error = RunIOError(self.output_name, exc)
        self._pending = []
        if self._feed is not None:
            self._feed.stop()

    def _journal_name(self) -> str:
        journal = self.ledger.journal if self.ledger is not None else None
        return str(journal.path) if isinstance(journal, FileJournal) else "the journal"

    # -- the run's timer watch ---------------------------------------------------------------
    def working(self) -> bool:
        """Whether input is still to be read or instances are in flight."""
        assert self._feed is not None and self._core is not None
        feed = self._feed
        return feed.source_open or feed.has_queued or self._core.pool.in_flight > 0

    @property
    def stopping(self) -> bool:
        """Interrupted, or a write failed: the run continues nothing more."""
        return (self.interrupted or self._stop_now.is_set() or self.output_error is not None
                or self.journal_error is not None)

    def continue_waiting(self, jobs: list[Job], here: set[int]) -> None:
        """Continue these waiting instances (their timers fired) in this run, as a resume
        would: their new records supersede their ``waiting`` ones (those of the seqs in
        ``here`` were counted by this session)."""
        assert self._core is not None
        self._resumed_ids.update(job.seq for job in jobs)
        self._rewaited |= here
        self._one_by_one = True
        for job in jobs:
            self._core.pool.submit(job)

    def release_feed(self) -> None:
        """The watch continues nothing more: the run ends once the rest is done."""
        assert self._feed is not None and self._core is not None
        self._feed.release()
        self._core.pool.dispatch()

    def _watch_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # the run goes on; what it did not continue, resume does
            _log.error("continuing parked timers in this run failed (%s: %s); "
                       "'shardflow resume' continues them", type(error).__name__, error)
            self.release_feed()

    async def _tick(self, pool: Pool) -> None:
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
