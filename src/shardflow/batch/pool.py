"""WorkerPool: worker processes, the batches sent to them, and what happens when one dies.

Flow control is by credit: a worker holds at most ``max_in_flight`` jobs; each result that
comes back frees one slot, and slots are refilled in batches, synchronously, from the feed.

Crash safety: a job leaves a worker's in-flight table only when its result frame has been
read in full. When a worker's stream ends (it exited, was killed, ran out of memory), every
frame it sent has been read, so what is still in flight is exactly what was lost.

* If the worker's watchdog named the instance that blocked its loop, that instance is
  retried (when its step has retries left) or failed with ``HardTimeout``; the others are
  re-run without counting it against them.
* Otherwise every lost job counts one crash and becomes a *suspect*: suspects re-run one at
  a time, alone on a worker, so the next crash is blamed on exactly one instance and a
  poison instance cannot take its neighbours down with it. A job that has crashed
  ``max_crashes`` workers is failed with ``WorkerLost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from shardflow.batch import protocol as p
from shardflow.batch.arbiter import Arbiter
from shardflow.batch.jobs import Feed, Job
from shardflow.batch.spec import WorkerSpec
from shardflow.errors import ShardflowError

ResultHandler = Callable[[Job, int, float, bytes], None]
"""(job, status code, duration ms, output line) -> None"""

_FAILED = p.STATUS_INDEX["failed"]


class WorkerStartError(ShardflowError):
    """A worker process could not start the workflow (import error, crash at start-up)."""


@dataclass(eq=False)
class _Worker:
    slot: int
    process: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    watchdog_file: str
    ready: asyncio.Future[dict[str, Any]]
    inflight: dict[int, Job] = field(default_factory=dict)
    last_beat: float = 0.0
    exclusive: bool = False
    stopping: bool = False
    dead: bool = False
    """Its stream has ended: nothing more may be sent to it (its in-flight jobs are about to
    be recovered, and a job added after that would be lost)."""
    reader_task: asyncio.Task[None] | None = None


class WorkerPool:
    """Runs jobs from a :class:`Feed` on ``workers`` processes; results go to ``on_result``."""

    def __init__(
        self,
        spec: WorkerSpec,
        workers: int,
        feed: Feed,
        on_result: ResultHandler,
        *,
        batch_size: int | None = None,
        max_crashes: int = 3,
        hard_timeout: float | None = None,
        on_results: Callable[[list[Job], list[list[Any]], list[bytes]], None] | None = None,
        on_parked: Callable[[list[tuple[Job, bytes]]], None] | None = None,
        after_results: Callable[[], None] | None = None,
    ) -> None:
        self.spec = replace(spec, hard_timeout=hard_timeout)
        self.size = max(1, workers)
        self.feed = feed
        self.on_result = on_result
        self.batch = batch_size or max(1, min(256, spec.max_in_flight // 4))
        self.max_crashes = max_crashes
        self.hard_timeout = hard_timeout
        self.on_parked = on_parked
        self.on_results = on_results
        self.after_results = after_results
        self.arbiter = (Arbiter(spec.limits, spec.rate_limits, self._send_grants)
                        if spec.limits or spec.rate_limits else None)
        self.step_stats: dict[tuple[int, int], dict[str, list[float]]] = {}
        self.cpu_seconds: dict[tuple[int, int], float] = {}
        self.restarts = 0
        self.hard_timeouts = 0
        self._workers: list[_Worker | None] = [None] * self.size
        self._suspects: deque[Job] = deque()
        self._incarnation = 0
        self._closing = False
        self._idle = asyncio.Event()
        self._fatal: BaseException | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._exits: set[asyncio.Task[None]] = set()
        self._tmp = tempfile.TemporaryDirectory(prefix="shardflow-")
        feed.listeners.append(self.dispatch)

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every worker and wait until each has loaded the workflow."""
        await asyncio.gather(*(self._spawn(slot) for slot in range(self.size)))
        if self.hard_timeout is not None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())
        self.dispatch()

    async def _spawn(self, slot: int) -> None:
        """Start a fresh interpreter running the worker (no fork of this process and no
        re-import of the caller's ``__main__``), connected by a socket pair."""
        self._incarnation += 1
        incarnation = self._incarnation
        watchdog_file = str(Path(self._tmp.name) / f"watchdog-{slot}-{incarnation}.json")
        spec = {**replace(self.spec, watchdog_file=watchdog_file).to_dict(), "sys_path": sys.path}
        parent, child = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "shardflow.batch.worker", str(child.fileno()),
                stdin=asyncio.subprocess.DEVNULL, stdout=_stderr_fd(),
                pass_fds=(child.fileno(),),
                env={**os.environ, "SHARDFLOW_WORKER_SPEC": orjson.dumps(spec).decode()},
            )
        finally:
            child.close()
        reader, writer = await asyncio.open_connection(sock=parent, limit=1 << 26)
        loop = asyncio.get_running_loop()
        worker = _Worker(slot, process, reader, writer, watchdog_file, loop.create_future(),
                         last_beat=time.monotonic())
        self._workers[slot] = worker
        worker.reader_task = loop.create_task(self._read(worker, incarnation))
        info = await worker.ready
        if "error" in info:
            raise WorkerStartError(f"worker could not load {self.spec.target!r}: {info['error']}")

    async def wait_idle(self) -> None:
        """Return when the feed is exhausted and every job's result is in."""
        while True:
            if self._fatal is not None:
                raise self._fatal
            if self._is_idle():
                return
            self._idle.clear()
            await self._idle.wait()

    def _is_idle(self) -> bool:
        return (self.feed.exhausted and not self._suspects
                and not any(w and w.inflight for w in self._workers))

    @property
    def in_flight(self) -> int:
        return sum(len(w.inflight) for w in self._workers if w)

    async def close(self, *, kill: bool = False) -> None:
        """Stop the workers: gracefully (finish in-flight work) or, with ``kill``, at once."""
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        for worker in self._workers:
            if worker is None:
                continue
            worker.stopping = True
            if kill:
                _kill(worker.process)
            else:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    worker.writer.write(p.frame(p.STOP, b""))
        tasks = [w.reader_task for w in self._workers if w and w.reader_task]
        if tasks:
            await asyncio.wait(tasks)
        while self._exits:
            await asyncio.wait(set(self._exits))
        for worker in self._workers:
            if worker is not None:
                await _reap(worker.process)
        self._tmp.cleanup()

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w is not None]

    # -- sending ------------------------------------------------------------------------------
    def dispatch(self) -> None:
        """Fill every worker's free slots: suspects alone, then batches from the feed."""
        if self._closing or self._fatal is not None:
            return
        workers = [w for w in self._workers
                   if w is not None and w.ready.done() and not w.stopping and not w.dead]
        for worker in workers:
            if worker.exclusive and not worker.inflight:
                worker.exclusive = False
        if self._suspects:
            for worker in workers:
                if self._suspects and not worker.inflight:
                    worker.exclusive = True
                    self._send(worker, [self._suspects.popleft()])
        else:
            self._fill(workers)
        if self._is_idle():
            self._idle.set()

    def _fill(self, workers: list[_Worker]) -> None:
        feed = self.feed
        limit = self.spec.max_in_flight
        for worker in workers:
            if worker.exclusive:
                continue
            while feed.has_ready:
                want = min(limit - len(worker.inflight), self.batch)
                # Wait for a full batch while results are still coming back to free slots.
                if want <= 0 or (want < self.batch and worker.inflight and feed.source_open
                                 and not feed.has_queued):
                    break
                jobs = feed.take(want)
                if not jobs:
                    break
                self._send(worker, jobs)

    def _send(self, worker: _Worker, jobs: list[Job]) -> None:
        inflight = worker.inflight
        header = []
        for job in jobs:
            inflight[job.seq] = job
            header.append([job.seq, job.id, job.attempt, job.kind, len(job.line)])
        worker.writer.write(p.batch_frame(p.RUN, header, [j.line for j in jobs]))

    def _send_grants(self, worker: Any, rids: list[int]) -> None:
        if not worker.dead and not worker.writer.is_closing():
            worker.writer.write(p.json_frame(p.GRANT, rids))

    # -- receiving ----------------------------------------------------------------------------
    async def _read(self, worker: _Worker, incarnation: int) -> None:
        arbiter = self.arbiter
        try:
            while True:
                kind, payload = await p.read_frame(worker.reader)
                if kind == p.RESULTS:
                    self._on_results(worker, payload)
                elif kind == p.PARKED:
                    self._on_parked(worker, payload)
                elif kind == p.ACQUIRE and arbiter is not None:
                    arbiter.on_acquire(worker, payload)
                elif kind == p.RELEASE and arbiter is not None:
                    arbiter.on_release(worker, payload)
                elif kind == p.HEARTBEAT:
                    worker.last_beat = time.monotonic()
                elif kind == p.STATS:
                    report = orjson.loads(payload)
                    self.step_stats[(worker.slot, incarnation)] = report["steps"]
                    self.cpu_seconds[(worker.slot, incarnation)] = report["cpu"]
                elif kind in (p.READY, p.FATAL) and not worker.ready.done():
                    worker.ready.set_result(orjson.loads(payload))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            worker.dead = True
            worker.writer.close()
            if arbiter is not None:
                arbiter.worker_gone(worker)
            task = asyncio.get_running_loop().create_task(self._on_exit(worker))
            self._exits.add(task)
            task.add_done_callback(self._exits.discard)

    def _on_results(self, worker: _Worker, payload: bytes) -> None:
        header, lines = p.split_batch(payload)
        inflight = worker.inflight
        pop = inflight.pop
        jobs = [pop(row[0], None) for row in header]
        if self.on_results is not None and None not in jobs:
            self.on_results(jobs, header, lines)  # type: ignore[arg-type]
        else:
            on_result = self.on_result
            for job, row, line in zip(jobs, header, lines, strict=True):
                if job is not None:
                    on_result(job, row[1], row[2], line)
        if self.after_results is not None:
            self.after_results()
        self.dispatch()

    def _on_parked(self, worker: _Worker, payload: bytes) -> None:
        """Snapshots of instances that are about to be reported ``waiting``: stored before
        their result is, so a journalled ``waiting`` always has its snapshot."""
        header, blobs = p.split_batch(payload)
        parked = [(worker.inflight[seq], blob) for (seq, _), blob in zip(header, blobs, strict=True)
                  if seq in worker.inflight]
        if parked and self.on_parked is not None:
            self.on_parked(parked)

    async def _on_exit(self, worker: _Worker) -> None:
        code = await _reap(worker.process)
        if not worker.ready.done():
            worker.ready.set_result({"error": f"worker exited with code {code} during start-up"})
            return
        if self._closing:
            return
        self._recover(worker)
        if self._workers[worker.slot] is not worker:
            return
        self.restarts += 1
        try:
            await self._spawn(worker.slot)
        except Exception as exc:
            self._fatal = exc
            self._idle.set()
            return
        self.dispatch()

    def _recover(self, worker: _Worker) -> None:
        """Decide the fate of every job the dead worker had in flight."""
        lost = list(worker.inflight.values())
        worker.inflight.clear()
        culprit = _read_culprit(worker.watchdog_file)
        for job in lost:
            job.attempt += 1
            if culprit is not None and job.seq == culprit["seq"]:
                self.hard_timeouts += 1
                job.hard_timeouts += 1
                if job.hard_timeouts > culprit.get("retries", 0):
                    message = (f"step {culprit.get('step')!r} blocked the event loop for more "
                               f"than {self.hard_timeout:g} s (hard timeout); its worker "
                               "was replaced")
                    self.on_result(job, _FAILED, 0.0,
                                   lost_record(job, "HardTimeout", message, culprit.get("step")))
                else:
                    self.feed.requeue(job)
            elif culprit is not None:
                self.feed.requeue(job)  # an innocent neighbour: no crash counted
            else:
                job.crashes += 1
                if job.crashes >= self.max_crashes:
                    message = (f"instance {job.id!r} was running when its worker process died, "
                               f"{job.crashes} times; giving up")
                    self.on_result(job, _FAILED, 0.0, lost_record(job, "WorkerLost", message))
                else:
                    self._suspects.append(job)

    async def _watch(self) -> None:
        """Backup for the workers' own watchdog (which cannot run while C code holds the
        GIL): kill a worker whose heartbeats stop for longer than the hard timeout + 2 s."""
        assert self.hard_timeout is not None
        limit = self.hard_timeout + 2.0
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for worker in self._workers:
                if (worker is not None and not worker.stopping and worker.ready.done()
                        and now - worker.last_beat > limit):
                    _kill(worker.process)
                    worker.last_beat = now


def lost_record(job: Job, kind: str, message: str, step: str | None = None) -> bytes:
    """The output line of a job that could not be run to an end by any worker."""
    try:
        context = orjson.loads(job.line)
    except orjson.JSONDecodeError:
        context = None
    return orjson.dumps({
        "id": job.id, "status": "failed", "context": context,
        "error": {"step": step, "type": kind, "message": message, "traceback": ""},
        "attempts": job.attempt - 1, "started_at": time.time(), "duration_ms": 0.0,
    })


def _read_culprit(path: str) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data


def _stderr_fd() -> int:
    """Workers' stdout goes to our stderr: a ``print`` in a step must not corrupt JSONL
    results written to stdout."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return 2


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()


async def _reap(process: asyncio.subprocess.Process) -> int | None:
    """Wait for a worker to exit; kill it if it lingers (its stream has already ended)."""
    try:
        return await asyncio.wait_for(process.wait(), 5.0)
    except TimeoutError:
        _kill(process)
        return await process.wait()
