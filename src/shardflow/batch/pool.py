"""WorkerPool: worker processes, the batches sent to them, and what happens when one dies.

Flow control is by credit: a worker holds at most ``max_in_flight`` jobs; each result that
comes back frees one slot, and slots are refilled in batches, synchronously, from the feed,
least-loaded worker first (:mod:`shardflow.batch.dispatch`).

Crash safety: a job leaves a worker's in-flight table only when its result frame has been
read in full. When a worker's stream ends (it exited, was killed, ran out of memory), every
frame it sent has been read, so what is still in flight is exactly what was lost; what
becomes of it is decided by :func:`shardflow.batch.crash_policy.decide`.

Start-up: only evidence that the workflow cannot start stops the pool with
:class:`WorkerStartError`: a workflow that fails to load (``FATAL``), a worker not ready within
``startup_timeout``, ``start_attempts`` workers in a row per slot that exit non-zero before
they are ready without a signal, or a worker that cannot be spawned at all. A worker killed by
a signal while it starts (an OOM killer, an operator, a load storm) is replaced after a
backoff, for as long as ``startup_timeout`` since the first such death in a row.

Everything the pool learns goes to one :class:`~shardflow.batch.listener.ResultListener`.
An exception the listener raises stops the pool (``wait_idle`` re-raises it); it is never
mistaken for a worker's death, so nothing is re-run because of it.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import orjson

from shardflow._clock import Clock, LoopClock
from shardflow.batch import protocol as p
from shardflow.batch.arbiter import Arbiter
from shardflow.batch.crash_policy import Culprit
from shardflow.batch.dispatch import fill
from shardflow.batch.heartbeat import HeartbeatWatch
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.listener import ResultListener
from shardflow.batch.pool_base import PoolBase
from shardflow.batch.spec import WorkerSpec
from shardflow.batch.workerproc import Start, StartReport, WorkerProcess, launch
from shardflow.engine.rows import JobRow, ResultRow
from shardflow.errors import WorkerStartError

__all__ = ["WorkerPool", "WorkerStartError"]

KILLED_BACKOFF = 0.05
KILLED_BACKOFF_MAX = 0.5
"""Seconds before replacing a worker a signal killed while it started: doubling from the
first, at most the second (a storm of kills is not met with a storm of spawns)."""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"



class WorkerPool(PoolBase[WorkerProcess]):
    """Runs jobs from a :class:`Feed` on ``workers`` processes; results go to ``listener``."""

    def __init__(
        self,
        spec: WorkerSpec,
        workers: int,
        feed: Feed,
        listener: ResultListener,
        *,
        batch_size: int | None = None,
        max_crashes: int = 3,
        hard_timeout: float | None = None,
        startup_timeout: float = 60.0,
        start_attempts: int = 5,
        scratch_dir: Path | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(feed, listener, max(1, workers), max_crashes=max_crashes,
                         hard_timeout=hard_timeout)
        self.spec = replace(spec, hard_timeout=hard_timeout)
        self.size = max(1, workers)
        self.batch = batch_size or max(1, min(256, spec.max_in_flight // 4))
        self.startup_timeout = startup_timeout
        self.start_attempts = max(1, start_attempts)
        self.clock = clock or LoopClock()
        self.arbiter = (Arbiter(spec.limits, spec.rate_limits, WorkerProcess.grant, self.clock)
                        if spec.limits or spec.rate_limits else None)
        self.step_stats: dict[tuple[int, int], dict[str, list[float]]] = {}
        self.failures: dict[tuple[int, int], dict[str, dict[str, int]]] = {}
        """Failed instances by step and error type, per worker incarnation (its STATS)."""
        self.cpu_seconds: dict[tuple[int, int], float] = {}
        self.restarts = 0
        self.start_failures = 0
        """Workers that died before they were ready (each one replaced)."""
        self._incarnation = 0
        self._beats: HeartbeatWatch[WorkerProcess] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._exits: set[asyncio.Task[None]] = set()
        # Watchdog reports go to the caller's directory (the run directory), if any: a killed
        # coordinator then leaves nothing behind in $TMPDIR.
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if scratch_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="shardflow-")
            scratch_dir = Path(self._tmp.name)
        self._scratch = scratch_dir
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every worker and wait until each has loaded the workflow."""
        self._scratch.mkdir(parents=True, exist_ok=True)
        if self.hard_timeout is not None:
            self._beats = HeartbeatWatch(self.clock, self.hard_timeout + 2.0, WorkerProcess.kill)
            self._watch_task = asyncio.get_running_loop().create_task(self._beats.run())
        await self._start_all()
        self._started = True
        self.dispatch()

    async def _start(self, slot: int) -> None:
        """Bring up a ready worker in ``slot``, replacing ones that die while they start."""
        failures = kills = 0
        killed_since: float | None = None
        while not self._closing:
            worker = await self._spawn(slot)
            if self._closing:
                worker.kill()
                return
            try:
                report = await asyncio.shield(worker.started)
            except asyncio.CancelledError:
                worker.kill()
                raise
            if report.outcome is Start.READY:
                if self._started:  # a replacement: put it to work at once
                    self.dispatch()
                return
            worker.kill()
            if report.outcome is Start.KILLED:
                killed_since = killed_since if killed_since is not None else self.clock.now()
                if self.clock.now() - killed_since >= self.startup_timeout:
                    raise WorkerStartError(self.spec.target, (
                        f"workers kept being killed during start-up for "
                        f"{self.startup_timeout:g} s (the last {report.detail})"))
                kills += 1
                self.start_failures += 1
                await self.clock.sleep(min(KILLED_BACKOFF_MAX, KILLED_BACKOFF * 2 ** (kills - 1)))
                continue
            if report.outcome is not Start.EXITED:  # FATAL or TIMED_OUT: no use trying again
                raise WorkerStartError(self.spec.target, report.detail)
            failures += 1
            self.start_failures += 1
            if failures >= self.start_attempts:
                raise WorkerStartError(self.spec.target, f"{failures} workers in a row died "
                                       f"during start-up (the last {report.detail})")

    async def _spawn(self, slot: int) -> WorkerProcess:
        self._incarnation += 1
        incarnation = self._incarnation
        watchdog_file = str(self._scratch / f"watchdog-{slot}-{incarnation}.json")
        spec = replace(self.spec, watchdog_file=watchdog_file).to_dict()
        try:
            if not os.access(sys.executable, os.X_OK):  # a shell runs it: say so here, once
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), sys.executable)
            worker = await launch(slot, spec, watchdog_file)
        except OSError as exc:  # the interpreter cannot be run (EACCES, ENOENT, EAGAIN...)
            raise WorkerStartError(self.spec.target, f"cannot start a worker process "
                                   f"({exc.filename or sys.executable}: {exc.strerror})") from None
        self._members[slot] = worker
        timed_out = StartReport(Start.TIMED_OUT, (
            f"a worker was not ready {self.startup_timeout:g} s after it started (does "
            "importing the workflow hang in a worker process? see --startup-timeout)"))
        timer = self.clock.call_later(self.startup_timeout,
                                      lambda: worker.settle_start(timed_out))
        worker.started.add_done_callback(lambda _: timer.cancel())
        loop = asyncio.get_running_loop()
        worker.reader_task = loop.create_task(self._read(worker, incarnation))
        return worker

    async def close(self, *, kill: bool = False) -> None:
        """Stop the workers: gracefully (finish in-flight work) or, with ``kill``, at once.
        A pool stopped by an error, and workers still starting, are always killed."""
        self._closing = True
        kill = kill or self._fatal is not None
        if self._watch_task is not None:
            self._watch_task.cancel()
        for worker in self._members:
            if worker is not None:
                worker.stop(kill=kill or not worker.running)
        tasks = [w.reader_task for w in self._members if w and w.reader_task]
        if tasks:
            await asyncio.wait(tasks)
        while self._exits:
            await asyncio.wait(set(self._exits))
        for worker in self._members:
            if worker is not None:
                await worker.reap()
                worker.discard_watchdog_report()
        if self._tmp is not None:
            self._tmp.cleanup()

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._members if w is not None]

    # -- sending ------------------------------------------------------------------------------
    def _usable(self, member: WorkerProcess) -> bool:
        return member.running and not member.stopping and not member.dead

    def _fill(self, members: Sequence[WorkerProcess]) -> None:
        fill(self.feed, members, self.spec.max_in_flight, self.batch, self._send,
             stopped=self._stopped)

    def _send(self, worker: WorkerProcess, jobs: list[Job]) -> None:
        inflight = worker.inflight
        header: list[JobRow] = []
        lines = []
        answered: list[tuple[Job, tuple[int, bytes]]] = []
        for job in jobs:
            if job.answer is not None:
                answered.append((job, job.answer))
                continue
            inflight[job.seq] = job
            header.append((job.seq, job.id, job.attempt, job.kind, len(job.line)))
            lines.append(job.line)
        if header:
            worker.writer.write(p.batch_frame(p.RUN, header, lines))
        if answered:
            rows: list[ResultRow] = [(job.seq, status, 0.0, len(line))
                                     for job, (status, line) in answered]
            self._deliver([job for job, _ in answered], rows, [line for _, (_, line) in answered])
            self._settle()

    # -- receiving ----------------------------------------------------------------------------
    async def _read(self, worker: WorkerProcess, incarnation: int) -> None:
        arbiter = self.arbiter
        reader = worker.reader
        try:
            while True:
                try:
                    kind, payload = await p.read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the worker's end of the stream: it is gone
                if kind == p.RESULTS:
                    self._on_results(worker, payload)
                elif kind == p.PARKED:
                    self._on_parked(worker, payload)
                elif kind == p.EVENTS:
                    self._on_events(worker, payload)
                elif kind == p.ACQUIRE and arbiter is not None:
                    arbiter.on_acquire(worker, payload)
                elif kind == p.RELEASE and arbiter is not None:
                    arbiter.on_release(worker, payload)
                elif kind == p.HEARTBEAT:
                    if self._beats is not None and worker.running and not worker.stopping:
                        self._beats.beat(worker)
                elif kind == p.STATS:
                    report = orjson.loads(payload)
                    self.step_stats[(worker.slot, incarnation)] = report["steps"]
                    self.failures[(worker.slot, incarnation)] = report.get("failures", {})
                    self.cpu_seconds[(worker.slot, incarnation)] = report["cpu"]
                elif kind == p.READY:
                    self._on_ready(worker)
                elif kind == p.FATAL:
                    info = orjson.loads(payload)
                    worker.settle_start(StartReport(Start.FATAL, str(info.get("error"))))
        finally:
            worker.dead = True
            worker.writer.close()
            if self._beats is not None:
                self._beats.forget(worker)
            if arbiter is not None:
                arbiter.worker_gone(worker)
            task = asyncio.get_running_loop().create_task(self._on_exit(worker))
            self._exits.add(task)
            task.add_done_callback(self._exits.discard)

    def _on_ready(self, worker: WorkerProcess) -> None:
        if worker.started.done():  # too late: it timed out, and is being killed
            return
        worker.running = True
        if self._beats is not None:
            self._beats.beat(worker)
        worker.settle_start(StartReport(Start.READY))

    def _on_results(self, worker: WorkerProcess, payload: bytes) -> None:
        header, lines = p.split_batch(payload)
        self._results(worker, header, lines)

    def _on_parked(self, worker: WorkerProcess, payload: bytes) -> None:
        header, blobs = p.split_batch(payload)
        inflight = worker.inflight
        parked = [(inflight[seq], blob) for (seq, _), blob in zip(header, blobs, strict=True)
                  if seq in inflight]
        if parked:
            self._tell(self.listener.on_parked, parked)

    def _on_events(self, worker: WorkerProcess, payload: bytes) -> None:
        header, blobs = p.split_batch(payload)
        self._events(worker.inflight, [row[0] for row in header], blobs)

    async def _on_exit(self, worker: WorkerProcess) -> None:
        code = await worker.reap()
        if not worker.running:
            if code is not None and code < 0:
                worker.settle_start(StartReport(Start.KILLED, f"killed by {_signal_name(-code)}"))
            else:
                worker.settle_start(StartReport(Start.EXITED, f"exited with code {code}"))
            return
        if self._closing or self._fatal is not None:
            return
        self._recover(worker, Culprit.from_report(worker.watchdog_report()))
        worker.discard_watchdog_report()
        self.dispatch()
        if self._members[worker.slot] is not worker:
            return
        self.restarts += 1
        try:
            await self._start(worker.slot)
        except Exception as exc:
            self._fail(exc)
