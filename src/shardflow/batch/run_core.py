"""RunCore: what every way of running a batch shares -- ``shardflow run``'s coordinator,
:class:`~shardflow.run.executor.BatchExecutor` and ``shardflow consume`` -- given where the
results go (a :class:`ResultSink`: an output file, futures, a Redis stream).

It is the pool's one :class:`~shardflow.batch.listener.ResultListener`, and it fixes the
order in which a result becomes visible, the same for every sink:

1. ``on_batch``: the results are journalled (buffered in the ledger, when there is one),
   counted by the observer (metrics), and *accepted* by the sink, which holds them;
2. ``on_settled`` (the end of a frame's worth of results): the ledger is flushed, and only
   then does the sink *release* what it holds (writes the output, resolves the futures,
   acknowledges the messages).

So nothing leaves a run before it is durable in its journal. The pool is made by a factory
(:func:`~shardflow.batch.backend.make_pool` by default), so the core is unit-tested on an
:class:`~shardflow.batch.inprocess.InProcessPool`, without processes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from shardflow.batch.backend import Pool, make_pool
from shardflow.batch.config import RunConfig
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.ledger import RunLedger
from shardflow.batch.listener import ResultListener
from shardflow.batch.spec import WorkerSpec
from shardflow.engine.rows import ResultRow


class ResultSink(Protocol):
    """Where a run's results go."""

    def accept(self, jobs: list[Job], rows: list[ResultRow], lines: list[bytes]) -> None:
        """Results journalled but not yet durable: hold them (rows as in ``on_batch``)."""
        ...

    def release(self) -> None:
        """Everything accepted so far is durable: let it out."""
        ...

    def stopped(self, error: BaseException) -> None:
        """The pool stopped (``error``): no more results will come for jobs in flight."""
        ...


class ResultObserver(Protocol):
    """Sees every result as it arrives and the pool once it exists (the metrics)."""

    def attach(self, pool: Any) -> None: ...

    def count_results(self, rows: list[ResultRow]) -> None: ...


EventsCallback = Callable[[list[tuple[Job, bytes]]], None]
"""Receives jobs' lifecycle events (each job's as JSONL, in order) before their results."""

PoolFactory = Callable[..., Pool]
"""Called as :func:`~shardflow.batch.backend.make_pool` is."""


class RunCore:
    """A pool, the order results become visible in, and the sink they go to."""

    def __init__(self, config: RunConfig, spec: WorkerSpec, feed: Feed, sink: ResultSink, *,
                 hard_timeout: float, ledger: RunLedger | None = None,
                 observer: ResultObserver | None = None, scratch_dir: Path | None = None,
                 pool_factory: PoolFactory = make_pool,
                 on_events: EventsCallback | None = None) -> None:
        """With ``on_events``, workers record lifecycle events and it receives them (the
        spec is told so here: without it, workers record nothing)."""
        self.sink = sink
        self.on_events_of = on_events
        if on_events is not None:
            spec = replace(spec, events=True)
        self.ledger = ledger
        self.observer = observer
        self.failed_in: str | None = None
        """Which ledger write failed, if one did: ``"journal"``, ``"parked"`` (the task
        store) or ``"flush"``; the error itself stops the pool and reaches ``sink.stopped``."""
        listener: ResultListener = self
        self.pool: Pool = pool_factory(config, spec, feed, listener, hard_timeout=hard_timeout,
                                       scratch_dir=scratch_dir)
        if observer is not None:
            observer.attach(self.pool)

    async def start(self) -> None:
        """Start the pool; if it cannot start, stop what did and raise."""
        try:
            await self.pool.start()
        except BaseException:
            await self.close(kill=True)
            raise

    async def close(self, *, kill: bool = False) -> None:
        try:
            await self.pool.close(kill=kill)
        finally:
            if self.observer is not None:
                self.observer.attach(None)

    # -- the pool's listener ----------------------------------------------------------------
    def on_batch(self, jobs: list[Job], rows: list[ResultRow], lines: list[bytes]) -> None:
        if self.ledger is not None:
            self.failed_in = "journal"
            self.ledger.record_batch(jobs, rows, lines)
            self.failed_in = None
        if self.observer is not None:
            self.observer.count_results(rows)
        self.sink.accept(jobs, rows, lines)

    def on_parked(self, parked: list[tuple[Job, bytes]]) -> None:
        """Waiting instances are stored (before their ``waiting`` result is journalled)."""
        if self.ledger is not None:
            self.failed_in = "parked"
            self.ledger.parked(parked)
            self.failed_in = None

    def on_events(self, events: list[tuple[Job, bytes]]) -> None:
        if self.on_events_of is not None:
            self.on_events_of(events)

    def on_settled(self) -> None:
        if self.ledger is not None:
            self.failed_in = "flush"
            self.ledger.flush()
            self.failed_in = None
        self.sink.release()

    def on_stopped(self, error: BaseException) -> None:
        self.sink.stopped(error)
