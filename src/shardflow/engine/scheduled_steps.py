"""StepScheduling: ``LocalExecutionEngine.schedule_step``, run one step of an instance later
and the workflow on from it (a base class of the engine, as ``engine/task_api.py`` is).

The rules (docs/SEMANTICS.md, "schedule_step"):

* ``await engine.schedule_step(instance_id, step_name, delay=None)`` checks at once that the
  instance and its step exist and that the step may be scheduled, and returns a handle (an
  ``asyncio.Task``); ``delay`` (a ``timedelta`` or seconds) runs on the engine's clock.
* When it is due, the step runs on the instance's context, then the nodes after it, as a new
  run of the same instance: a join after it waits only for the edges that can still arrive.
  Nodes before it do not run again. The run is announced and saved as a start is.
* One run of an instance at a time: if the instance is running when the step is due, the
  step waits until that run stops (completed, failed, waiting), then the rules apply again.
* A finished instance (completed or failed) runs again from the step: a retry from a
  failure, or a rerun. A cancelled one stays cancelled (``WorkflowAlreadyCompletedError``);
  a waiting one waits for its tasks (``InstanceWaitingError``). Checked when scheduled and
  again when due; a handle whose check fails when due raises it, and the engine logs it.
* ``handle.cancel()`` before the step is due unschedules it; ``await handle`` gives the
  instance once the run stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from shardflow._clock import Clock
from shardflow._types import WorkflowStatus
from shardflow.context import WorkflowContext
from shardflow.engine.driver import InstanceDriver
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.records import WorkflowInstance
from shardflow.engine.window import InstanceWindow
from shardflow.errors import (
    InstanceWaitingError,
    StepNotFoundError,
    WorkflowAlreadyCompletedError,
)
from shardflow.limits.gate import Gate
from shardflow.model.registry import WorkflowRegistry
from shardflow.model.tasks import HumanTask

_log = logging.getLogger("shardflow.engine")
_RUNNING = WorkflowStatus.RUNNING
_WAITING = WorkflowStatus.WAITING
_CANCELLED = WorkflowStatus.CANCELLED


class StepScheduling:
    """``schedule_step`` of a ``LocalExecutionEngine``: see the module docstring."""

    registry: WorkflowRegistry
    clock: Clock
    _quiet: bool
    _gate: Gate | None
    _on_task: Callable[[HumanTask], None]
    _window: InstanceWindow
    _driver: InstanceDriver
    _scheduled: set[asyncio.Task[WorkflowInstance]]

    if TYPE_CHECKING:  # the engine's own, used here
        def get_instance(self, instance_id: str) -> WorkflowInstance: ...

        async def _announced_drive(
            self, instance: WorkflowInstance, interpreter: Interpreter,
            begin: Callable[[WorkflowContext], Coroutine[Any, Any, None]],
            context: WorkflowContext, data: Any) -> None: ...

    async def schedule_step(self, instance_id: str, step_name: str,
                            delay: timedelta | float | None = None
                            ) -> asyncio.Task[WorkflowInstance]:
        """Run ``step_name`` of ``instance_id`` after ``delay``, and the workflow on from it;
        returns the handle (cancel it to unschedule; await it for the instance once that run
        stopped). Raises :class:`InstanceNotFoundError`, :class:`StepNotFoundError`,
        :class:`WorkflowAlreadyCompletedError` (cancelled), :class:`InstanceWaitingError`,
        or ``ValueError`` for a negative delay."""
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay or 0)
        if seconds < 0:
            raise ValueError(f"schedule_step: delay must not be negative, got {seconds:g} s")
        instance = await self.get_instance(instance_id)
        self._check_schedulable(instance, step_name)
        handle = asyncio.ensure_future(self._run_scheduled(instance, step_name, seconds))
        self._scheduled.add(handle)  # held until done: the loop keeps only weak references
        handle.add_done_callback(self._scheduled_done)
        return handle

    def _check_schedulable(self, instance: WorkflowInstance, step_name: str) -> None:
        nodes = self.registry.get_definition(instance.workflow_name,
                                             instance.workflow_version).plan.nodes
        if step_name not in nodes:
            raise StepNotFoundError(step_name, instance.workflow_name, list(nodes))
        if instance.status == _CANCELLED:  # == : ported code may set a plain string
            raise WorkflowAlreadyCompletedError(instance.id, instance.status)
        if instance.status == _WAITING:
            raise InstanceWaitingError(instance.id, step_name, instance.current_step)

    async def _run_scheduled(self, instance: WorkflowInstance, step_name: str, seconds: float
                             ) -> WorkflowInstance:
        if seconds > 0:
            await self.clock.sleep(seconds)
        instance_id = instance.id
        while instance.status == _RUNNING and self._window.active.get(instance_id) is instance:
            await self._driver.stopped(instance_id)  # one run of an instance at a time
        self._check_schedulable(instance, step_name)
        # From here to the drive nothing awaits: no other run can begin in between.
        plan = self.registry.get_definition(instance.workflow_name,
                                            instance.workflow_version).plan
        interpreter = Interpreter(plan, instance_id, self.clock, self._gate, self._on_task)
        interpreter.history = interpreter.step_log = instance.steps  # one history per instance
        context = WorkflowContext.initial(instance.context.data, instance_id)
        instance.context = context
        instance.status, instance.error, instance.current_step = _RUNNING, None, None
        instance.ended_at = None
        self._window.revive(instance, interpreter)
        if self._quiet:
            await self._driver.drive(instance, interpreter,
                                     interpreter.run_from(step_name, context))
        else:
            await self._announced_drive(instance, interpreter,
                                        partial(interpreter.run_from, step_name), context,
                                        context.data)
        return instance

    def _scheduled_done(self, handle: asyncio.Task[WorkflowInstance]) -> None:
        self._scheduled.discard(handle)
        if not handle.cancelled() and handle.exception() is not None:
            _log.error("a scheduled step failed to start", exc_info=handle.exception())
