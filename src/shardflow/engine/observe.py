"""Events of a running instance: what the engine tells an event bus.

The bus is anything with litestar-workflows' protocol, ``async emit(event_type, **fields)``
(:class:`shardflow.EventBus`, or an application's own). Nothing here runs unless an instance
has a bus that listens (:func:`listening`): an engine without subscribers runs its
instances exactly as before, compiled schedules included. An instance that is observed is
interpreted (the walk that visits each step, so each step can say it started and ended), with
the same step attempt (``engine/attempt.run_step``).

Event names are litestar-workflows' (``workflow.canceled``; shardflow's bus also knows it as
``workflow.cancelled``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from shardflow._types import WorkflowStatus
from shardflow.context import WorkflowContext, recorded_result
from shardflow.engine.attempt import StepFailure, run_step
from shardflow.engine.records import ErrorInfo, WorkflowInstance
from shardflow.events import EventBus, make_event
from shardflow.model.steps import BaseMachineStep
from shardflow.model.tasks import HumanTask

if TYPE_CHECKING:
    from shardflow.engine.state import InstanceState


class Emitter(Protocol):
    """What an event bus must offer: litestar-workflows' ``emit``."""

    async def emit(self, event_type: str, **event_fields: Any) -> None: ...


def listening(bus: Emitter | None) -> Emitter | None:
    """``bus`` if events should be sent to it (a shardflow bus with subscribers, or any other
    bus), else None: an instance started then pays nothing for events."""
    if bus is None or (isinstance(bus, EventBus) and not bus.has_subscribers):
        return None
    return bus


async def observed_step(state: InstanceState, step: BaseMachineStep, node: str,
                        ctx: WorkflowContext) -> WorkflowContext | None:
    """``run_step`` for node ``node``, telling ``state.events`` that the step started, and
    then that it completed, failed, or was skipped (its ``can_execute`` said no)."""
    bus = state.events
    assert bus is not None
    instance_id = state.instance_id
    await bus.emit("step.started", instance_id=instance_id, step_name=node,
                   step_type=step.step_type.value)
    started = time.time()
    try:
        out = await run_step(step, ctx, node, node, state.clock, state.gate, state.step_log,
                             state.stats)
    except StepFailure as failure:
        await bus.emit("step.failed", instance_id=instance_id, step_name=node,
                       error=str(failure.error), error_type=type(failure.error).__name__,
                       retry_count=step.retries)
        raise
    if out is None:
        await bus.emit("step.skipped", instance_id=instance_id, step_name=node,
                       reason="can_execute returned False")
        return None
    await bus.emit("step.completed", instance_id=instance_id, step_name=node,
                   status="succeeded", result=recorded_result(out, node),
                   duration_seconds=time.time() - started)
    return out


async def announce_start(bus: Emitter, instance: WorkflowInstance,
                         initial_data: Mapping[str, Any] | None) -> None:
    await announce_started(bus, instance.id, instance.workflow_name, instance.workflow_version,
                           initial_data)


async def announce_outcome(bus: Emitter, instance: WorkflowInstance,
                           opened: list[HumanTask], reason: str | None) -> None:
    """Tell ``bus`` how a run of ``instance`` (a start or a continuation) ended: the human
    tasks it ``opened`` and that it waits, or that it completed, failed or was cancelled
    (``reason``, given to ``cancel_workflow``)."""
    duration = (instance.ended_at or instance.started_at) - instance.started_at
    await announce_ending(bus, instance.id, instance.status, instance.error, opened,
                          instance.current_step, last_step(instance.steps), duration, reason)


async def announce_ending(bus: Emitter, instance_id: Any, status: WorkflowStatus,
                          error: ErrorInfo | None, opened: list[HumanTask],
                          current_step: str | None, final_step: str | None, duration: float,
                          reason: str | None = None) -> None:
    """The events of an instance's run that ended with ``status``: what both the engine
    (:func:`announce_outcome`) and batch workers (``engine/runner.py``) tell a bus."""
    if status is WorkflowStatus.WAITING:
        for task in opened:
            await bus.emit("human_task.created", instance_id=instance_id, step_name=task.node,
                           task_id=task.id, assignee=task.assignee, title=task.title,
                           description=task.description,
                           due_at=_moment(task.due_at) if task.due_at is not None else None)
        await bus.emit("workflow.waiting", instance_id=instance_id,
                       step_name=current_step or "")
    elif status is WorkflowStatus.COMPLETED:
        await bus.emit("workflow.completed", instance_id=instance_id, status=status.value,
                       final_step=final_step, duration_seconds=duration)
    elif status is WorkflowStatus.FAILED:
        await bus.emit("workflow.failed", instance_id=instance_id,
                       error=str(error) if error is not None else "",
                       failed_step=error.step if error is not None else None,
                       error_type=error.type if error is not None else None,
                       stack_trace=error.traceback if error is not None else None)
    elif status is WorkflowStatus.CANCELLED:
        await bus.emit("workflow.canceled", instance_id=instance_id, reason=reason or "",
                       current_step=current_step)


class Recorder:
    """A bus for a batch worker: keeps each event as one JSON line, in the order emitted, for
    the coordinator to publish (``batch/protocol.py``'s EVENTS frame)."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    async def emit(self, event_type: str, **event_fields: Any) -> None:
        self.lines.append(orjson.dumps(make_event(event_type, **event_fields).to_dict(),
                                       default=repr))

    def encoded(self) -> bytes:
        """The events as JSONL (empty if none)."""
        return b"\n".join(self.lines)


async def announce_started(bus: Emitter, instance_id: Any, name: str, version: str,
                           initial_data: Mapping[str, Any] | None) -> None:
    await bus.emit("workflow.started", instance_id=instance_id, workflow_name=name,
                   workflow_version=version,
                   initial_data=dict(initial_data) if initial_data is not None else None)


async def announce_task_completed(bus: Emitter, instance_id: Any, node: str, task_id: str,
                                  completed_by: str | None, form: Any) -> None:
    """A human task of ``node`` was completed by ``completed_by`` with ``form`` (in process,
    and by a batch resume)."""
    await bus.emit("human_task.completed", instance_id=instance_id, step_name=node,
                   task_id=task_id, completed_by=completed_by, form_data=form)


def last_step(steps: Sequence[Sequence[Any]]) -> str | None:
    """The node of the last step that completed in the step log ``steps``."""
    for entry in reversed(steps):
        if entry[1] == "completed":
            return str(entry[0])
    return None


def _moment(when: float) -> datetime:
    return datetime.fromtimestamp(when, UTC)
