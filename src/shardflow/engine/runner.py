"""InstanceRunner: the lean entry point for hosts that run many instances (batch workers).

Unlike :class:`LocalExecutionEngine` it keeps nothing between instances and creates no task of
its own: the caller's task runs the instance, and the outcome is a plain record ready to be
encoded as one JSONL line. A waiting instance's outcome carries its snapshot (JSON-ready
data), never the live interpreter, so a host needs to know nothing of the engine's insides.

Its error boundary is :func:`~shardflow.engine.instance.run_instance`'s: whatever goes wrong
(a step, a join, the input, a bug), the outcome says ``failed`` and names where; a
cancellation of the task running the instance, ``KeyboardInterrupt`` and ``SystemExit``
propagate.
"""

from __future__ import annotations

import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from shardflow._clock import Clock, LoopClock
from shardflow._types import WorkflowStatus
from shardflow.context import WorkflowContext
from shardflow.engine.history_need import LiveHistories
from shardflow.engine.instance import failure, resume_nodes, run_instance, settle
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.observe import (
    Emitter,
    announce_ending,
    announce_started,
    announce_task_completed,
    last_step,
)
from shardflow.engine.records import ErrorInfo, StepRecord, as_records
from shardflow.engine.rows import StepEntry
from shardflow.engine.stepstats import StepStats
from shardflow.limits.gate import Gate
from shardflow.model.definition import WorkflowDefinition
from shardflow.model.tasks import HumanTask


@dataclass(slots=True)
class InstanceOutcome:
    """How one instance ended: ``completed``, ``failed`` or ``waiting`` (for people)."""

    instance_id: str
    status: WorkflowStatus
    context: dict[str, Any]
    error: ErrorInfo | None
    started_at: float
    duration_ms: float
    steps: list[StepEntry]
    """The step log; ``history`` reads it as records."""
    tasks: list[HumanTask]
    snapshot: dict[str, Any] | None = None
    """Set for ``waiting`` outcomes: the parked state (``Interpreter.to_snapshot``), for a
    task store to persist and :meth:`InstanceRunner.resume` to continue."""

    @property
    def history(self) -> list[StepRecord]:
        """The instance's step executions, as records (made when first read)."""
        return as_records(self.steps)


class InstanceRunner:
    """Runs instances of one definition, one call per instance, on the running loop."""

    __slots__ = ("clock", "counted", "definition", "gate", "live", "plan", "stats")

    def __init__(self, definition: WorkflowDefinition, *, gate: Gate | None = None,
                 clock: Clock | None = None, stats: StepStats | None = None,
                 history: bool = False) -> None:
        """With ``stats``, every step execution of every instance is counted there, and
        outcomes' ``history`` lists only skipped nodes. With ``history`` too (a definition
        that reads its step history, ``engine/history_need.py``), each instance keeps its step
        log as in process, its contexts read it, and it is counted into ``stats`` at the end."""
        self.definition = definition
        self.plan = definition.plan
        self.gate = gate
        self.clock: Clock = clock or LoopClock()
        self.stats = stats
        self.live = LiveHistories() if history and stats is not None else None
        self.counted = None if self.live is not None else stats
        """What the interpreters count into: ``stats``, or None when they keep a log."""

    def run(self, instance_id: str, data: dict[str, Any], job: int | None = None,
            events: Emitter | None = None) -> Coroutine[Any, Any, InstanceOutcome]:
        """Run one instance to its end (or to its human tasks). ``job`` is the host's name for
        this run (``InstanceState.job``); ``events``, if given, is told its life
        (``engine/observe.py``)."""
        tasks: list[HumanTask] = []
        interpreter = Interpreter(self.plan, instance_id, self.clock, self.gate, tasks.append,
                                  self.counted)
        interpreter.job = job
        if events is not None:
            return self._observed(interpreter, tasks, data, None, events, {})
        return self._drive(interpreter, tasks, data, None)

    async def resume(self, instance_id: str, state: dict[str, Any],
                     data: dict[str, dict[str, Any]], job: int | None = None,
                     events: Emitter | None = None,
                     users: dict[str, str] | None = None) -> InstanceOutcome:
        """Continue a waiting instance from its snapshot, given the completed tasks' data
        (task id -> form data) and who completed them (task id -> user); every parked node
        whose tasks are all done goes on."""
        tasks: list[HumanTask] = []
        started = time.time()
        try:
            interpreter = Interpreter.from_snapshot(self.plan, state, self.clock, self.gate,
                                                    tasks.append, self.counted)
            interpreter.job = job
            completed: dict[str, str] = {}
            # task id -> its node, for the events
            for task_id, form in data.items():
                if interpreter.waits_on(task_id):
                    completed[task_id] = _node_of(interpreter, task_id)
                    interpreter.complete_task(task_id, form, users.get(task_id) if users else None)
        except Exception as exc:  # a damaged snapshot fails this instance alone
            return _failed(instance_id, "<snapshot>", exc, {}, started)
        if events is not None:
            return await self._observed(interpreter, tasks, None, interpreter.ready_nodes(),
                                        events, {t: (completed[t], data[t],
                                                     users.get(t) if users else None)
                                                 for t in completed})
        return await self._drive(interpreter, tasks, None, interpreter.ready_nodes())

    async def _observed(self, interpreter: Interpreter, tasks: list[HumanTask],
                        data: dict[str, Any] | None, resume: list[str] | None, events: Emitter,
                        completed: dict[str, tuple[str, dict[str, Any], str | None]]
                        ) -> InstanceOutcome:
        """``_drive``, telling ``events`` that the instance started (or which of its human
        tasks were completed), each step's events, and how the run ended."""
        instance_id = interpreter.instance_id
        if resume is None:
            await announce_started(events, instance_id, self.definition.name,
                                   self.definition.version, data)
        for task_id, (node, form, user) in completed.items():
            await announce_task_completed(events, instance_id, node, task_id, user, form)
        interpreter.events = events
        outcome = await self._drive(interpreter, tasks, data, resume)
        await announce_ending(events, instance_id, outcome.status, outcome.error, tasks,
                              _waiting_at(interpreter), last_step(outcome.steps),
                              outcome.duration_ms / 1000.0)
        return outcome

    async def _drive(self, interpreter: Interpreter, tasks: list[HumanTask],
                     data: dict[str, Any] | None, resume: list[str] | None) -> InstanceOutcome:
        started = time.time()
        live = self.live
        if live is not None:
            live.open(interpreter.instance_id, self.definition.name, interpreter.history, started)
        try:
            if resume is not None:
                ending = await run_instance(interpreter, resume_nodes(interpreter, resume), None)
            else:
                assert data is not None
                try:
                    context = WorkflowContext.initial(data, interpreter.instance_id)
                except Exception as exc:  # an input value that is not JSON
                    ending = failure(exc, None, "<input>")
                else:  # run_instance's two parts inline: a coroutine level less a start
                    try:
                        await interpreter.run(context)
                    except BaseException as exc:
                        ending = failure(exc, context, "<engine>")
                    else:
                        ending = settle(interpreter, context, None)
        finally:
            if live is not None:
                live.close(interpreter.instance_id)
                assert self.stats is not None
                self.stats.count_log(interpreter.history)
        status, final, error = ending
        return InstanceOutcome(
            instance_id=interpreter.instance_id, status=status,
            context=final.data if final is not None else (data or {}),
            error=error, started_at=started,
            duration_ms=(time.time() - started) * 1000.0, steps=interpreter.history,
            tasks=tasks,
            snapshot=interpreter.to_snapshot() if status is WorkflowStatus.WAITING else None,
        )


def _node_of(interpreter: Interpreter, task_id: str) -> str:
    for node, parked in interpreter.parked.items():
        if task_id in parked.tasks:
            return node
    return ""


def _waiting_at(interpreter: Interpreter) -> str | None:
    """The first node the instance is parked at, if any."""
    return next(iter(interpreter.parked), None)


def _failed(instance_id: str, where: str, exc: BaseException, context: dict[str, Any],
            started: float) -> InstanceOutcome:
    return InstanceOutcome(
        instance_id=instance_id, status=WorkflowStatus.FAILED, context=context,
        error=ErrorInfo.from_exception(where, exc), started_at=started,
        duration_ms=(time.time() - started) * 1000.0, steps=[], tasks=[],
    )
