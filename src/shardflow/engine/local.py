"""LocalExecutionEngine: run workflow instances in this process, on this event loop.

The engine is a facade over four parts, each with one job:

* :class:`~shardflow.engine.window.InstanceWindow`: the instances it knows (running and
  waiting ones always, finished ones in a bounded window: ``keep_finished``, default 1,000,
  oldest dropped first, so a long-running service does not grow per instance);
* :class:`~shardflow.engine.driver.InstanceDriver`: runs an instance in the caller's task
  through :func:`~shardflow.engine.instance.run_instance` (the one error boundary of an
  instance) and cancels it on request;
* :class:`~shardflow.engine.task_index.TaskIndex`: the human tasks in memory;
* :class:`~shardflow.engine.store_adapter.StoreAdapter` (with a ``store``): every waiting
  instance saved with its tasks, so a restarted service lists the same pending tasks and
  completing one continues the instance where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from shardflow._clock import Clock, LoopClock
from shardflow._types import WorkflowStatus, new_id
from shardflow.context import WorkflowContext
from shardflow.engine.attempt import StepFailure, run_step
from shardflow.engine.driver import InstanceDriver
from shardflow.engine.forms import form_violations
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.passive import TIMER_USER, due_timers
from shardflow.engine.records import WorkflowInstance
from shardflow.engine.store_adapter import StoreAdapter
from shardflow.engine.task_index import TaskIndex
from shardflow.engine.timers import TimerAlarms
from shardflow.engine.window import InstanceWindow
from shardflow.errors import (
    InstanceNotFoundError,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    TaskValidationError,
)
from shardflow.limits.gate import Gate
from shardflow.limits.local import LocalGate
from shardflow.model.plan import Plan, check_limits
from shardflow.model.registry import WorkflowRegistry
from shardflow.model.steps import BaseMachineStep
from shardflow.model.tasks import HumanTask
from shardflow.store.tasks import TaskStore

_RUNNING = WorkflowStatus.RUNNING
_WAITING = WorkflowStatus.WAITING


class LocalExecutionEngine:
    """Starts instances of registered workflows and drives them to an end or a human task.

    ``limits`` ({name: size}) and ``rate_limits`` ({name: "100/s"}) size the named limits steps
    declare; ``clock`` replaces real time (tests use :class:`shardflow.FakeClock`).
    """

    def __init__(
        self,
        registry: WorkflowRegistry,
        *,
        limits: Mapping[str, int] | None = None,
        rate_limits: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        keep_finished: int = 1000,
        store: TaskStore | None = None,
    ) -> None:
        self.registry = registry
        self.clock: Clock = clock or LoopClock()
        self._gate: Gate | None = (
            LocalGate(limits or {}, rate_limits or {}, self.clock)
            if limits or rate_limits else None
        )
        self._limits = dict(limits or {})
        self._rate_limits = dict(rate_limits or {})
        self._window = InstanceWindow(keep_finished)
        self._tasks = TaskIndex()
        self._on_task = self._tasks.add
        """Bound once: every interpreter is handed it (binding costs an object a start)."""
        self._store = (StoreAdapter(store, registry, self.clock, self._gate, self._tasks,
                                    self._on_task) if store is not None else None)
        self._alarms = TimerAlarms(self.clock, self._ring)
        """Fires parked timers when due (``engine/timers.py``); the driver arms them."""
        self._driver = InstanceDriver(self._finish, self._park if store is not None else None,
                                      self._arm_timers)
        self._checked: dict[int, Plan] = {}
        """Plans whose limits ``check_limits`` accepted (by id, holding the plan so the id
        stays its own): the limits never change, so each plan is checked once, not per start."""

    # -- starting and driving -----------------------------------------------------------------
    async def start_workflow(
        self, name: str, initial_data: Mapping[str, Any] | None = None,
        version: str | None = None,
    ) -> WorkflowInstance:
        """Start an instance and return it once it is completed, failed, cancelled or waiting."""
        definition = self.registry.get_definition(name, version)
        plan = definition.plan
        if self._checked.get(id(plan)) is not plan:
            check_limits(plan, self._limits, self._rate_limits)
            self._checked[id(plan)] = plan
        instance_id = new_id()
        context = WorkflowContext.initial(initial_data, instance_id)
        interpreter = Interpreter(plan, instance_id, self.clock, self._gate, self._on_task)
        # Positional: the cheapest call (docs/PERFORMANCE.md). The instance shares its
        # interpreter's step log, so its history grows as the interpreter logs.
        instance = WorkflowInstance(instance_id, definition.name, definition.version, context,
                                    _RUNNING, None, interpreter.history, time.time())
        self._window.add(instance, interpreter)
        await self._driver.drive(instance, interpreter, interpreter.run(context))
        return instance

    def _park(self, interpreter: Interpreter) -> None:
        """Save the instance ``interpreter`` parked (run_instance calls it: a failure to save
        fails the instance)."""
        assert self._store is not None
        self._store.save(self._window.active[interpreter.instance_id], interpreter)

    def _finish(self, instance: WorkflowInstance, status: WorkflowStatus) -> None:
        """Record that ``instance`` ended with ``status``: out of the live instances, its open
        tasks dropped, its stored state marked finished."""
        instance.status = status
        instance.ended_at = time.time()
        instance.context.detach()  # kept in the window: only the context itself
        interpreter, evicted = self._window.retire(instance)
        if interpreter is not None and interpreter.parked:
            self._tasks.drop_open(t for p in interpreter.parked.values() for t in p.tasks)
        self._tasks.forget(evicted)
        if self._store is not None:
            self._store.finished(instance.id)

    # -- one step ----------------------------------------------------------------------------
    async def execute_step(self, step: BaseMachineStep, context: WorkflowContext) -> Any:
        """Run one step under the engine's timeout, retry and limit policies.

        Its writes land in ``context``; returns what the step returned. Raises the step's own
        exception (or :class:`StepTimeoutError`) once its retries are used up.
        """
        key = step.step_name
        try:
            out = await run_step(step, context, key, key, self.clock, self._gate, None)
        except StepFailure as failure:
            raise failure.error from None
        if out is not context:
            for path, value in out.writes().items():
                context.set(path, value)
        return out.get(key) if key in out.writes() else None

    # -- instances ---------------------------------------------------------------------------
    def get_instance(self, instance_id: str) -> WorkflowInstance:
        instance = self._window.get(instance_id) or self._restore(instance_id)
        if instance is None:
            raise InstanceNotFoundError(instance_id)
        return instance

    def _restore(self, instance_id: str) -> WorkflowInstance | None:
        restored = self._store.restore(instance_id) if self._store is not None else None
        if restored is None:
            return None
        self._window.add(*restored)
        return restored[0]

    def list_instances(self, status: WorkflowStatus | None = None) -> list[WorkflowInstance]:
        return self._window.listed(status)

    async def cancel_workflow(self, instance_id: str) -> WorkflowInstance:
        """Cancel a running or waiting instance; its running steps see ``CancelledError``."""
        instance = self.get_instance(instance_id)
        if instance.is_finished:
            return instance
        if not await self._driver.cancel(instance_id):  # waiting: nothing runs
            self._finish(instance, WorkflowStatus.CANCELLED)
        return instance

    # -- human tasks --------------------------------------------------------------------------
    def pending_tasks(self, instance_id: str | None = None) -> list[HumanTask]:
        """Open human tasks, oldest first, optionally of one instance."""
        if self._store is not None:
            return self._store.pending(instance_id)
        return self._tasks.pending(instance_id)

    def get_task(self, task_id: str) -> HumanTask:
        task = self._tasks.get(task_id)
        if task is None and self._store is not None:
            task = self._store.store.get_task(task_id)
        if task is None:
            raise TaskNotFoundError(task_id)
        return task

    async def complete_human_task(
        self, task_id: str, data: Mapping[str, Any], user_id: str | None = None
    ) -> WorkflowInstance:
        """Validate ``data`` against the task's form schema, record it, and resume the
        instance once all tasks of its node are done. Invalid data leaves the task open."""
        task = self.get_task(task_id)
        if task.completed:
            raise TaskAlreadyCompletedError(task_id)
        violations = form_violations(task.form_schema, data)
        if violations:
            raise TaskValidationError(task_id, violations)
        if self._store is not None:
            self._store.complete(task, dict(data), user_id)
        else:
            task.completed_at = time.time()
        task.completed_by = user_id
        task.data = dict(data)
        instance = self.get_instance(task.instance_id)  # may restore it, and its open tasks
        self._tasks.tasks[task_id] = task
        interpreter = self._window.interpreters[task.instance_id]
        ready = interpreter.complete_task(task_id, task.data)
        if ready is not None:
            instance.status = _RUNNING
            await self._driver.drive(instance, interpreter, interpreter.resume(ready))
        return instance

    # -- timers and webhooks ------------------------------------------------------------------
    def _arm_timers(self, interpreter: Interpreter) -> None:
        self._alarms.arm(interpreter, self._tasks)

    async def _ring(self, task_id: str) -> None:
        """Fire the timer whose task is ``task_id``, unless its instance no longer waits
        (cancelled meanwhile)."""
        instance = self.get_instance(self.get_task(task_id).instance_id)
        if instance.status is _WAITING:
            await self.complete_human_task(task_id, {}, TIMER_USER)

    async def fire_due_timers(self, at: float | None = None) -> list[WorkflowInstance]:
        """Complete the parked timers due at wall time ``at`` (default: now), continuing their
        instances, and set alarms for the others: what an engine restarted from its task store
        calls once (a running engine fires the timers it parked by itself)."""
        now = time.time() if at is None else at
        fired = []
        for task in self.pending_tasks():
            instance = self.get_instance(task.instance_id)  # restored from the store if need be
            plan = self.registry.get_definition(instance.workflow_name,
                                                instance.workflow_version).plan
            if due_timers(plan, [task], now):
                fired.append(await self.complete_human_task(task.id, {}, TIMER_USER))
            elif instance.status is _WAITING:
                self._arm_timers(self._window.interpreters[instance.id])
        return fired

    async def complete_webhook(self, instance_id: str, node: str,
                               data: Mapping[str, Any]) -> WorkflowInstance:
        """Deliver the external callback the webhook ``node`` of ``instance_id`` waits for:
        its data goes under the step's ``callback_key`` and the instance goes on. Raises
        :class:`TaskNotFoundError` if that node waits for nothing."""
        for task in self.pending_tasks(instance_id):
            if task.node == node:
                return await self.complete_human_task(task.id, data)
        raise TaskNotFoundError(f"{instance_id}/{node}")
