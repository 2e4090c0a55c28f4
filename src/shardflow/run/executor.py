"""BatchExecutor: the batch executor as a job processor inside an asyncio service.

    async with BatchExecutor("myapp.flows:workflow", workers=4) as ex:
        futures = [ex.submit(job) for job in jobs]        # returned at once, like Ray/Dask
        results = await asyncio.gather(*futures)          # all run concurrently
        async for result in ex.map(records):              # bounded streaming
            ...

Each submission runs in a worker process; results come back as :class:`BatchResult`. With
``run_dir=...`` the executor is durable like ``shardflow run`` (see :mod:`shardflow.run.embedded`).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from shardflow.batch.backend import Pool
from shardflow.batch.config import RunConfig
from shardflow.batch.coordinator import default_hard_timeout
from shardflow.batch.jobs import Feed, Job, new_job
from shardflow.batch.run_core import RunCore
from shardflow.batch.spec import WorkerSpec
from shardflow.context import check_input
from shardflow.engine.observe import Emitter, listening
from shardflow.engine.results import parse_line
from shardflow.engine.rows import ResultRow
from shardflow.errors import ShardflowError
from shardflow.model.definition import WorkflowDefinition
from shardflow.model.loader import load_workflow, reference_of
from shardflow.model.plan import check_limits
from shardflow.run.embedded import EmbeddedRun
from shardflow.run.event_relay import EventRelay
from shardflow.run.journal_ledger import instance_key, resume_job
from shardflow.run.timer_watch import next_move


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One instance's result: the same fields as a line of ``shardflow run`` output."""

    id: Any
    status: str
    context: dict[str, Any] | None
    error: dict[str, Any] | None
    attempts: int
    started_at: float
    duration_ms: float
    waiting_until: float | None = None
    """A waiting instance's next timer: when it is due (wall time), for an executor with a
    ``run_dir``; None when it waits only for people or webhooks, or does not wait."""

    @property
    def ok(self) -> bool:
        return self.status in ("completed", "waiting")

    @classmethod
    def from_line(cls, line: bytes) -> BatchResult:
        """The result a worker's output line records (see :func:`parse_line`)."""
        d = parse_line(line)
        return cls(d["id"], d["status"], d["context"], d["error"], d["attempts"],
                   d["started_at"], d["duration_ms"])


class BatchExecutor:
    """Worker processes that run instances of one workflow for an asyncio program.

    ``workflow`` is a :class:`WorkflowDefinition` defined at module level, or its reference
    (``"package.module:attribute"``). Leaving the ``async with`` block waits for submitted work
    and stops the workers; leaving it with an exception (or cancellation) stops them at once.
    With ``run_dir``, the directory is locked while the executor runs, every result is
    journalled before its future resolves, waiting instances are kept in its ``tasks.db``, and
    an id whose final result the directory already holds is answered from it, not run again.
    It is the :class:`~shardflow.batch.run_core.ResultSink` of its run core: each result
    resolves the future of its submission once it is journalled.
    """

    def __init__(
        self,
        workflow: WorkflowDefinition | str,
        *,
        workers: int | None = None,
        max_in_flight: int | None = None,
        config: RunConfig | None = None,
        limits: Mapping[str, int] | None = None,
        rate_limits: Mapping[str, str] | None = None,
        run_dir: str | Path | None = None,
        backend: str | None = None,
        address: str | None = None,
        event_bus: Emitter | None = None,
    ) -> None:
        """``backend="ray"`` runs the shards as Ray actors (``address``: the cluster's, else
        ``RAY_ADDRESS``, else a local Ray started for this executor). ``event_bus`` receives
        every instance's lifecycle events (``workflow.started``, ``step.completed`` ...), each
        instance's in order and before its result's future resolves; a bus that has no
        subscribers when the block is entered costs nothing."""
        self.event_bus = event_bus
        self._relay: EventRelay | None = None
        if isinstance(workflow, str):
            self.target = workflow
            definition = load_workflow(workflow)
        else:
            self.target = reference_of(workflow)
            definition = workflow
        self.definition = definition
        base = config or RunConfig()
        self.config = base.merged(workers=workers, max_in_flight=max_in_flight,
                                  limits=dict(limits) if limits else None,
                                  rate_limits=dict(rate_limits) if rate_limits else None,
                                  backend=backend)
        if address is not None:
            self.config = replace(self.config, ray=replace(self.config.ray, address=address))
        self._seq = itertools.count()
        self._futures: dict[int, asyncio.Future[BatchResult]] = {}
        self._feed = Feed()
        self._pool: Pool | None = None
        self._core: RunCore | None = None
        self._accepted: list[tuple[Job, bytes]] = []
        self._closed = False
        self._run_dir = Path(run_dir) if run_dir is not None else None
        self._run: EmbeddedRun | None = None
        self._keyed: dict[int, str] = {}
        """seq -> id key of submissions with an ``id`` in flight (with a run directory)."""
        self._by_id: dict[str, asyncio.Future[BatchResult]] = {}
        """id key -> the future of its submission in flight (a duplicate shares it)."""

    async def __aenter__(self) -> BatchExecutor:
        self.definition.check()
        check_limits(self.definition.plan, self.config.limits, self.config.rate_limits)
        spec = WorkerSpec(target=self.target, max_in_flight=self.config.max_in_flight,
                          limits=self.config.limits, rate_limits=self.config.rate_limits)
        hard_timeout = self.config.hard_timeout or default_hard_timeout(self.definition)
        if self._run_dir is not None:
            self._run = EmbeddedRun.open(self._run_dir, self.target, self.definition, self.config)
            self._seq = itertools.count(self._run.next_seq)
        bus = listening(self.event_bus)
        self._relay = EventRelay(bus) if bus is not None else None
        self._core = RunCore(self.config, spec, self._feed, self, hard_timeout=hard_timeout,
                             ledger=self._run.ledger if self._run else None,
                             scratch_dir=self._run.run_dir.path if self._run else None,
                             on_events=self._relay)
        self._pool = self._core.pool
        try:
            await self._core.start()
        except BaseException:
            self._close_run()
            raise
        return self

    def _close_run(self) -> None:
        if self._run is not None:
            run, self._run = self._run, None
            run.close()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        pool, core = self._pool, self._core
        if pool is None or core is None:
            return
        self._closed = True
        self._feed.close()
        try:
            if exc_type is None:
                await pool.wait_idle()
                if self._relay is not None:
                    await self._relay.drain()
        finally:
            await core.close(kill=exc_type is not None)
            self._close_run()
            for future in self._futures.values():
                if not future.done():
                    future.cancel()
            self._futures.clear()

    def worker_pids(self) -> list[int]:
        """Process ids of the running workers."""
        return self._pool.worker_pids() if self._pool is not None else []

    # -- the run core's sink -----------------------------------------------------------------
    def accept(self, jobs: list[Job], rows: list[ResultRow], lines: list[bytes]) -> None:
        self._accepted += zip(jobs, lines, strict=True)

    def release(self) -> None:
        """Resolve the futures of the results now journalled (with a run directory,
        waiting instances are in its ``tasks.db`` before their ``waiting`` result)."""
        accepted, self._accepted = self._accepted, []
        if self._relay is not None:  # their events are published first
            self._relay.then(partial(self._resolve, accepted))
        else:
            self._resolve(accepted)

    def _resolve(self, accepted: list[tuple[Job, bytes]]) -> None:
        futures = self._futures
        keyed = self._keyed
        for job, line in accepted:
            future = futures.pop(job.seq, None)
            if keyed and job.seq in keyed:
                assert self._run is not None
                self._run.remember(job.id, line)
                self._by_id.pop(keyed.pop(job.seq), None)
            if self._run is not None and job.seq in self._run.continuing:
                self._run.continued(job.seq, line)
            if future is not None and not future.done():
                future.set_result(self._result(line))

    def _result(self, line: bytes) -> BatchResult:
        """The result ``line`` records; a waiting one says when its timer is due."""
        result = BatchResult.from_line(line)
        if self._run is not None and result.status == "waiting":
            result = replace(result, waiting_until=self._run.waiting_until(result.id))
        return result

    def stopped(self, error: BaseException) -> None:
        """The pool cannot go on: every submission still waiting fails with ``error``."""
        futures, self._futures = self._futures, {}
        for future in futures.values():
            if not future.done():
                future.set_exception(error)

    def submit(self, data: Mapping[str, Any]) -> asyncio.Future[BatchResult]:
        """Queue one instance and return the future of its result at once (as
        ``concurrent.futures``, Dask and Ray do): ``await`` it for the :class:`BatchResult`.
        Submissions made in one loop iteration travel to the workers as one batch. The input
        must obey the data contract (``ContextValueError`` naming the key, as in process).
        With a run directory, an ``id`` the directory holds a result for is answered from the
        journal without running again, and a duplicate of one in flight shares its future
        (ids are how a restarted service's retried submissions are recognised; an input
        without ``id`` always runs)."""
        if self._closed:
            raise ShardflowError("BatchExecutor is closed: submit inside its 'async with' block")
        if self._pool is None:
            raise ShardflowError("BatchExecutor is not running; use 'async with BatchExecutor(...)'")
        if self._pool.error is not None:
            raise self._pool.error
        if not isinstance(data, Mapping):
            raise TypeError(f"an instance's input must be a mapping, got {type(data).__name__}")
        check_input(data)
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        key = instance_key(data["id"]) if self._run is not None and "id" in data else None
        if key is not None:
            assert self._run is not None
            recorded = self._run.recorded(data["id"])
            if recorded is not None:
                future.set_result(self._result(recorded))
                return future
            running = self._by_id.get(key)
            if running is not None:
                return running
        seq = next(self._seq)
        if key is not None:
            self._keyed[seq] = key
            self._by_id[key] = future
        line = orjson.dumps(data)
        self._futures[seq] = future
        self._pool.submit(new_job(seq, data.get("id", seq), line))
        return future

    async def continue_waiting(self, *, wait_timers: float = 0.0) -> list[BatchResult]:
        """Continue the waiting instances of this executor's run directory that can go on,
        as ``shardflow resume`` does, and return their new results (an instance that parks
        again is ``waiting`` again). It fires the parked timers that
        are due (each once, whichever process fires it), and continues every instance whose
        tasks are all completed: timers fired, and people's and webhooks' tasks completed
        (``shardflow tasks complete``/``callback``, the inbox). With ``wait_timers``
        (seconds), it then waits for a timer due within that long and goes on, as ``shardflow
        run --wait-timers`` does; later timers stay parked (``BatchResult.waiting_until``
        says when to call again). Needs ``run_dir``: without one, nothing of a waiting
        instance is kept."""
        pool, run = self._pool, self._run
        if pool is None or self._closed:
            raise ShardflowError("BatchExecutor is not running; use 'async with BatchExecutor(...)'")
        if run is None:
            raise ShardflowError("continue_waiting() needs a run directory: "
                                 "BatchExecutor(..., run_dir=PATH) keeps waiting instances")
        loop = asyncio.get_running_loop()
        results: list[BatchResult] = []
        while True:
            # on the loop: the run's task store is the ledger's, used on this thread
            ready, busy = run.ready_to_continue(self.definition.plan, time.time(),
                                                self._futures)
            if busy:  # their waiting record is on its way: continue them once it is in
                await asyncio.wait([self._futures[seq] for seq in busy])
            futures = []
            for waiting in ready:
                future: asyncio.Future[BatchResult] = loop.create_future()
                self._futures[waiting.seq] = future
                futures.append(future)
                pool.submit(resume_job(waiting))
            results += await asyncio.gather(*futures)
            if busy:
                continue
            move = next_move(time.time(), run.next_due(), working=False, bound=wait_timers)
            if move is None:
                return results
            await asyncio.sleep(move)

    async def map(self, inputs: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
                  *, ordered: bool = True, window: int | None = None) -> AsyncIterator[BatchResult]:
        """Results of every input, in input order (or completion order with
        ``ordered=False``), keeping at most ``window`` instances submitted at a time."""
        limit = window or 2 * self.config.workers * self.config.max_in_flight
        pending: deque[asyncio.Future[BatchResult]] = deque()
        finished: asyncio.Queue[asyncio.Future[BatchResult]] = asyncio.Queue()

        async def next_result() -> BatchResult:
            if ordered:
                return await pending.popleft()
            future = await finished.get()
            pending.remove(future)
            return future.result()

        async for data in _aiter(inputs):
            future = self.submit(data)
            if not ordered:
                future.add_done_callback(finished.put_nowait)
            pending.append(future)
            if len(pending) >= limit:
                yield await next_result()
        while pending:
            yield await next_result()


async def _aiter(items: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def run_batch(workflow: WorkflowDefinition | str, inputs: Iterable[Mapping[str, Any]],
              **options: Any) -> list[BatchResult]:
    """Synchronous convenience: run every input and return the results in input order.
    It runs its own event loop, so it cannot be called from a running one (a Jupyter cell,
    an asyncio service): use ``async with BatchExecutor(...)`` there."""
    from shardflow._loop import run

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise ShardflowError("run_batch() cannot run inside a running event loop; there, use "
                             "'async with BatchExecutor(workflow) as ex: await ex.submit(...)' "
                             "or 'async for result in ex.map(inputs)'")

    async def collect() -> list[BatchResult]:
        async with BatchExecutor(workflow, **options) as executor:
            return [result async for result in executor.map(inputs)]

    return run(collect())
