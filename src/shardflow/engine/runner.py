"""InstanceRunner: the lean entry point for hosts that run many instances (batch workers).

Unlike :class:`LocalExecutionEngine` it keeps nothing between instances and creates no task of
its own: the caller's task runs the instance, and the outcome is a plain record ready to be
encoded as one JSONL line. A waiting instance's outcome carries its snapshot (JSON-ready
data), never the live interpreter, so a host needs to know nothing of the engine's insides.

It is the error boundary of an instance: whatever goes wrong (a step, a join, the input,
a bug), the outcome says ``failed`` and names where; only a cancellation of the task running
the instance propagates.
"""

from __future__ import annotations

import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from shardflow._clock import Clock, LoopClock
from shardflow._types import WorkflowStatus
from shardflow.context import WorkflowContext
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.records import ErrorInfo, StepEntry, StepRecord, as_records
from shardflow.engine.attempt import StepFailure, is_cancellation
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

    __slots__ = ("clock", "definition", "gate", "plan", "stats")

    def __init__(self, definition: WorkflowDefinition, *, gate: Gate | None = None,
                 clock: Clock | None = None, stats: StepStats | None = None) -> None:
        """With ``stats``, every step execution of every instance is counted there, and
        outcomes' ``history`` lists only skipped nodes."""
        self.definition = definition
        self.plan = definition.plan
        self.gate = gate
        self.clock: Clock = clock or LoopClock()
        self.stats = stats

    def run(self, instance_id: str, data: dict[str, Any],
            job: int | None = None) -> Coroutine[Any, Any, InstanceOutcome]:
        """Run one instance to its end (or to its human tasks). Cancellation propagates.
        ``job`` is the host's name for this run (``Interpreter.job``).

        Await it as a coroutine function: it returns the ``_drive`` coroutine itself, so an
        instance pays for one coroutine level less (every resumption passes each level)."""
        tasks: list[HumanTask] = []
        interpreter = Interpreter(self.plan, instance_id, self.clock, self.gate, tasks.append,
                                  self.stats)
        interpreter.job = job
        return self._drive(interpreter, tasks, data, None)

    async def resume(self, instance_id: str, state: dict[str, Any],
                     data: dict[str, dict[str, Any]], job: int | None = None) -> InstanceOutcome:
        """Continue a waiting instance from its snapshot, given the completed tasks' data
        (task id -> form data); every parked node whose tasks are all done goes on."""
        tasks: list[HumanTask] = []
        started = time.time()
        try:
            interpreter = Interpreter.from_snapshot(self.plan, state, self.clock, self.gate,
                                                    tasks.append, self.stats)
            interpreter.job = job
            for task_id, form in data.items():
                if interpreter.waits_on(task_id):
                    interpreter.complete_task(task_id, form)
        except Exception as exc:  # a damaged snapshot fails this instance alone
            return _failed(instance_id, "<snapshot>", exc, {}, started)
        return await self._drive(interpreter, tasks, None, interpreter.ready_nodes())

    async def _drive(self, interpreter: Interpreter, tasks: list[HumanTask],
                     data: dict[str, Any] | None, resume: list[str] | None) -> InstanceOutcome:
        started = time.time()
        error: ErrorInfo | None = None
        context: WorkflowContext | None = None
        try:
            if resume is None:
                assert data is not None
                context = WorkflowContext.initial(data, interpreter.instance_id)
                await interpreter.run(context)
            else:
                for node in resume:
                    await interpreter.resume(node)
            final = interpreter.final_context(context).data  # may fail to merge
        except BaseException as exc:
            error, final = instance_failure(exc, context, data, resume is not None)
            status = WorkflowStatus.FAILED
        else:
            status = WorkflowStatus.WAITING if interpreter.parked else WorkflowStatus.COMPLETED
        return InstanceOutcome(
            instance_id=interpreter.instance_id, status=status, context=final, error=error,
            started_at=started, duration_ms=(time.time() - started) * 1000.0,
            steps=interpreter.history, tasks=tasks,
            snapshot=interpreter.to_snapshot() if status is WorkflowStatus.WAITING else None,
        )


def instance_failure(exc: BaseException, context: WorkflowContext | None,
                     data: dict[str, Any] | None, resumed: bool
                     ) -> tuple[ErrorInfo, dict[str, Any]]:
    """What an instance that raised ``exc`` reports: the error naming where, and the context
    it ends with. Called in the ``except`` clause around a run (``InstanceRunner`` and the
    shard runner's fused path share it); a cancellation of the task is re-raised.

    A :class:`StepFailure` names its step and keeps the context the step had; anything else
    is a non-JSON input value (``<input>``, before the context exists) or a bug
    (``<engine>``), and the instance ends with its input."""
    if isinstance(exc, StepFailure):
        final = exc.context.data if exc.context is not None else (data or {})
        return ErrorInfo.from_exception(exc.node, exc.error), final
    if is_cancellation(exc):
        raise exc
    where = "<input>" if not resumed and context is None else "<engine>"
    return ErrorInfo.from_exception(where, exc), data or {}


def _failed(instance_id: str, where: str, exc: BaseException, context: dict[str, Any],
            started: float) -> InstanceOutcome:
    return InstanceOutcome(
        instance_id=instance_id, status=WorkflowStatus.FAILED, context=context,
        error=ErrorInfo.from_exception(where, exc), started_at=started,
        duration_ms=(time.time() - started) * 1000.0, steps=[], tasks=[],
    )
