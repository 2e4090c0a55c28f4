"""ShardRunner: raw input lines in, finished result lines out, on whatever loop hosts it.

This is the seam between the engine and a batch backend. A host (the local worker process
today, an async actor of a cluster backend next) hands it jobs exactly as they travel:
a :data:`~shardflow.engine.rows.JobRow` (sequence number, instance id, attempt,
:class:`~shardflow.engine.rows.JobKind`) and the raw line (an input object, or a snapshot plus
form data to resume). It answers every job with one result line (``engine/results.py``) and
a :data:`~shardflow.engine.rows.ResultRow`, and, for an instance now waiting for people,
its snapshot (a :data:`~shardflow.engine.rows.ParkedRow`) first. The host only frames bytes.

Two ways to drive it:

* push (a streaming host): :meth:`ShardRunner.submit` each batch (header rows and lines) as
  it arrives; ``on_output`` receives a :class:`ShardOutput` once per loop iteration, or as
  soon as ``flush_at`` results are ready, whichever comes first (per-instance messages cap
  IPC at ~85k/s; batches of 64+ reach 330k+/s);
* request/response: ``await runner.run_batch(jobs)`` returns the whole batch's output.

It also counts step executions (:meth:`ShardRunner.step_stats`) and, with ``watched=True``,
tells a watchdog thread which job's step blocks the loop (:meth:`ShardRunner.blocking_job`).

Every instance runs through :func:`~shardflow.engine.instance.run_instance`, the one error
boundary of an instance; around it, this runner answers what happens before or after the run
(an undecodable line, a snapshot or result that cannot be encoded -- ``engine/answers.py``,
its own bug): that instance is answered ``failed`` with the step and error type, and every
other instance goes on. Only a cancellation of the host's tasks (host shutdown) goes unanswered.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import orjson

from shardflow._clock import Clock
from shardflow._tasks import current_task_of
from shardflow.context import WorkflowContext
from shardflow.engine.answers import answer_new, encode, failure_answer
from shardflow.engine.attempt import is_cancellation
from shardflow.engine.blame import blocked_step
from shardflow.engine.history_need import reads_step_history
from shardflow.engine.instance import failure, settle
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.observe import Recorder
from shardflow.engine.records import ErrorInfo
from shardflow.engine.results import Status
from shardflow.engine.rows import Answer, InputId, JobKind, JobRow, ParkedRow, ResultRow
from shardflow.engine.runner import InstanceRunner
from shardflow.engine.schedule import schedule_for
from shardflow.engine.stepstats import StepStats
from shardflow.limits.gate import Gate
from shardflow.model.definition import WorkflowDefinition
from shardflow.model.tasks import HumanTask

FLUSH_AT = 256
JOB_TASK_NAME = "shardflow job"


class ShardJob(NamedTuple):
    """One instance to run, as the coordinator sends it."""

    seq: int
    instance_id: InputId
    """The id as the input spelled it (a string or a number); results carry it back."""
    attempt: int
    kind: int
    """a :class:`JobKind` code"""
    line: bytes


@dataclass(slots=True)
class ShardOutput:
    """Answers ready to send. A host delivers ``snapshots`` before ``lines``: the snapshot of
    a ``waiting`` instance must be stored before its result is journalled."""

    rows: list[ResultRow] = field(default_factory=list)
    """one per result line"""
    lines: list[bytes] = field(default_factory=list)
    parked_rows: list[ParkedRow] = field(default_factory=list)
    """one per snapshot"""
    snapshots: list[bytes] = field(default_factory=list)
    """``{"state": ..., "tasks": [...]}`` of each instance now waiting"""
    event_rows: list[ParkedRow] = field(default_factory=list)
    """``(seq, length)`` per job that has events (a runner made with ``events=True``)"""
    events: list[bytes] = field(default_factory=list)
    """each such job's events, one JSON object a line, in the order they happened"""


_CODES = {status: int(status) for status in Status}
"""Status -> its wire code, as the plain int the header carries."""
_RESUME = int(JobKind.RESUME)
_now = time.time
_NO_TASKS: list[HumanTask] = []
"""The human tasks of an instance of a compiled plan (which has no human step): none, never
appended to, so no list per instance."""


class ShardRunner:
    """Runs the jobs of one workflow on the running loop; see the module docstring."""

    def __init__(self, definition: WorkflowDefinition, *, gate: Gate | None = None,
                 clock: Clock | None = None, on_output: Callable[[ShardOutput], None] | None = None,
                 flush_at: int = FLUSH_AT, watched: bool = False, events: bool = False) -> None:
        """``watched=True`` (made on the loop it will run on) notes that loop and its
        thread, so :meth:`blocking_job` can answer a watchdog. ``events=True`` records every
        instance's events (``ShardOutput.events``); without it, instances pay nothing."""
        self._steps = StepStats()
        self._failures: dict[str, Counter[str]] = {}
        """step -> error type -> failed instances; see :meth:`failures`"""
        history = reads_step_history(definition)
        self._runner = InstanceRunner(definition, gate=gate, clock=clock, stats=self._steps,
                                      history=history)
        self._events = events
        self._general = events or history
        """Instances go through the instance runner (``_general``): to record their events,
        or to keep their step history (``engine/history_need.py``)."""
        self._entry = schedule_for(definition.plan, (True, gate is not None))
        """The compiled schedule new instances run, if their plan has one (what
        ``Interpreter.run`` would pick, picked once)."""
        self._on_output = on_output
        self._flush_at = flush_at
        self._out = ShardOutput()
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None] | None] = set()
        """Jobs submitted and not answered: each takes itself out when it has answered."""
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop jobs are pushed on (set by :meth:`submit`, which push answers need)."""
        self._watched = (asyncio.get_running_loop(), threading.get_ident()) if watched else None

    # -- push ------------------------------------------------------------------------------
    def submit(self, header: list[JobRow], lines: list[bytes]) -> None:
        """Start one task per job; answers go to ``on_output``. ``header`` holds the jobs'
        rows (as a RUN frame carries them), ``lines`` their raw lines."""
        if self._on_output is None:
            raise RuntimeError("submit needs an on_output callback; use run_batch otherwise")
        loop = self._loop = asyncio.get_running_loop()
        create_task = _task_maker(loop)
        add = self._tasks.add
        answer = self._answer
        for (seq, instance_id, attempt, kind, _), line in zip(header, lines, strict=True):
            # No done callback: each job takes its task out of ``_tasks`` when it has
            # answered (docs/DECISIONS.md).
            add(create_task(answer(seq, instance_id, attempt, kind, line, None)))

    @property
    def in_flight(self) -> int:
        """Jobs submitted and not answered yet."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Return once every submitted job has ended, the last answers flushed."""
        while self._tasks:
            await asyncio.wait({task for task in self._tasks if task is not None})
        self.flush()

    def cancel(self) -> None:
        """Cancel every job in flight (the host is going away: nobody is left to answer)."""
        discard = self._tasks.discard
        for task in self._tasks:
            assert task is not None
            task.add_done_callback(discard)  # one cancelled before it ran never answers
            task.cancel()

    def flush(self) -> None:
        """Hand the answers ready so far to ``on_output``."""
        self._flush_scheduled = False
        self._steps.fold()  # keeps the lists of durations short
        out = self._out
        if out.rows and self._on_output is not None:
            self._out = ShardOutput()
            self._on_output(out)

    # -- request / response ----------------------------------------------------------------
    async def run_batch(self, jobs: Iterable[ShardJob]) -> ShardOutput:
        """Run ``jobs`` concurrently and return all their answers at once."""
        out = ShardOutput()
        create_task = _task_maker(asyncio.get_running_loop())
        tasks = [create_task(self._answer(*job, out)) for job in jobs]
        if not tasks:
            return out
        try:
            await asyncio.wait(tasks)
        except BaseException:  # cancelled ourselves: the instances go too, and end first
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            raise
        self._steps.fold()  # as flush does: the lists of durations stay one batch long
        return out

    def _count_failure(self, error: ErrorInfo) -> None:
        step = error.step or "<instance>"
        counter = self._failures.get(step)
        if counter is None:
            counter = self._failures[step] = Counter()
        counter[error.type] += 1

    # -- the watchdog's question -----------------------------------------------------------
    def blocking_job(self, loop: asyncio.AbstractEventLoop) -> dict[str, Any] | None:
        """``{"seq", "step", "retries"}`` of the job whose step is running on ``loop`` right
        now, if any. Safe to call from another thread while the loop is blocked (needs
        ``watched=True``): it reads the loop thread's frames (``engine/blame.py``)."""
        if self._watched is None or self._watched[0] is not loop:
            return None
        found = blocked_step(self._watched[1], self._runner.plan)
        if found is None or found[2].job is None:
            return None
        path, step, interpreter = found
        return {"seq": interpreter.job, "step": path, "retries": int(step.retries)}

    # -- one job ---------------------------------------------------------------------------
    async def _answer(self, seq: int, instance_id: InputId | None, attempt: int, kind: int,
                      line: bytes, out: ShardOutput | None) -> None:
        # Decode, run, encode, and answer whatever fails, in one coroutine (docs/DECISIONS.md:
        # each coroutine level is paid once per instance).
        try:
            try:
                payload = orjson.loads(line)
                if kind == _RESUME:
                    state, data = payload["state"], payload["data"]
                elif type(payload) is not dict:
                    raise TypeError("an instance's input must be a JSON object, "
                                    f"not {type(payload).__name__}")
            except Exception as exc:
                answer = failure_answer(instance_id, attempt, "<input>", exc, None)
            else:
                key = str(instance_id)
                if self._general:
                    answer = await self._general_run(seq, instance_id, attempt, kind, key,
                                                     payload, out)
                elif kind == _RESUME:
                    outcome = await self._runner.resume(key, state, data, job=seq,
                                                        users=payload.get("users"))
                    answer = encode(instance_id, attempt, outcome)
                else:
                    # A new instance runs in this coroutine, ended by run_instance's own
                    # failure and settle (docs/DECISIONS.md: a coroutine level less).
                    runner = self._runner
                    entry = self._entry
                    # A compiled plan has no human step: no task list to collect into.
                    tasks: list[HumanTask] = [] if entry is None else _NO_TASKS
                    interpreter = Interpreter(runner.plan, key, runner.clock, runner.gate,
                                              None if entry else tasks.append, runner.stats)
                    interpreter.job = seq
                    started = _now()
                    context = None
                    try:
                        context = WorkflowContext.decoded(payload, key)
                        await (interpreter.run(context) if entry is None
                               else entry(interpreter, context))
                    except BaseException as exc:
                        ending = failure(exc, context,
                                         "<input>" if context is None else "<engine>")
                    else:
                        ending = settle(interpreter, context, None)
                    answer = answer_new(instance_id, attempt, interpreter, tasks, ending,
                                        payload, started)
        except BaseException as exc:  # the runner's own bug: still one answer per job
            if is_cancellation(exc):
                if out is None:
                    self._done()
                raise
            answer = failure_answer(instance_id, attempt, "<runner>", exc, None)
        status, duration, result, snapshot, error = answer
        if error is not None and status is Status.FAILED:
            self._count_failure(error)
        push = out is None
        if out is None:
            out = self._out
        if snapshot is not None:
            out.parked_rows.append((seq, len(snapshot)))
            out.snapshots.append(snapshot)
        out.rows.append((seq, _CODES[status], duration, len(result)))
        out.lines.append(result)
        if not push:
            return
        self._done()
        if len(out.rows) >= self._flush_at:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    async def _general_run(self, seq: int, instance_id: InputId | None, attempt: int,
                           kind: int, key: str, payload: Any, out: ShardOutput | None) -> Answer:
        """``_answer``'s run of a job through the instance runner: the instance keeps its
        step history if its definition reads it, and with ``events=True`` its events are
        recorded and added to the output its answer goes to, just before it."""
        recorder = Recorder() if self._events else None
        try:
            if kind == _RESUME:
                outcome = await self._runner.resume(key, payload["state"], payload["data"],
                                                    job=seq, events=recorder,
                                                    users=payload.get("users"))
            else:
                outcome = await self._runner.run(key, payload, job=seq, events=recorder)
        finally:
            blob = recorder.encoded() if recorder is not None else None
            if blob:
                target = self._out if out is None else out
                target.event_rows.append((seq, len(blob)))
                target.events.append(blob)
        return encode(instance_id, attempt, outcome)

    def _done(self) -> None:
        """Take the current job's task out of those in flight (a pushed job's last act)."""
        loop = self._loop
        assert loop is not None  # set by submit, the only way to push a job
        self._tasks.discard(current_task_of(loop))

    def step_stats(self) -> dict[str, list[float]]:
        """Per step path: ``[executions, total ms, max ms, ms waiting for limits, retries]``
        (what a STATS frame reports)."""
        return {node: [count, total * 1000.0, most * 1000.0, wait * 1000.0, retries]
                for node, (count, total, most, wait, retries) in self._steps.rows().items()}

    def failures(self) -> dict[str, dict[str, int]]:
        """Failed instances by the step that failed them and the error type (a STATS frame
        carries it, so the coordinator never decodes a result to count them)."""
        return {step: dict(types) for step, types in self._failures.items()}


def _task_maker(loop: asyncio.AbstractEventLoop
                ) -> Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]:
    """``loop.create_task``, or, on a loop without a task factory, the ``Task`` it would
    make, built directly with a name: a task left to name itself formats ``Task-N`` (and
    uvloop's ``create_task`` adds a call) on every job."""
    if loop.get_task_factory() is not None:
        return loop.create_task
    return partial(asyncio.Task, loop=loop, name=JOB_TASK_NAME)
