"""LocalExecutionEngine: run workflow instances in this process, on this event loop.

Memory: finished instances are kept in a bounded window (``keep_finished``, default 1,000,
oldest dropped first) so a long-running service does not grow per instance; running and
waiting instances are always kept, since their tasks must stay completable.

Tasks: an instance runs in the task that awaits ``start_workflow`` (or ``complete_human_task``),
not in a task of its own (that task cost ~25 % of the throughput); only the second and later
branches of a fork get tasks. So a step sees the caller's context variables, and
``cancel_workflow`` cancels the caller's task once and withdraws that request when the instance
has unwound: the caller gets the instance back ``cancelled`` and carries on.

Durability: with a ``store`` (``SQLiteTaskStore(path)``) every waiting instance is saved as a
snapshot with its tasks, so a restarted service lists the same pending tasks and completing
one continues the instance where it stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from shardflow._clock import Clock, LoopClock
from shardflow._tasks import current_task_of
from shardflow._types import WorkflowStatus, new_id
from shardflow.context import WorkflowContext
from shardflow.engine.attempt import StepFailure, run_step
from shardflow.engine.forms import form_violations
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.records import ErrorInfo, WorkflowInstance
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
from shardflow.store.tasks import TaskStore, WaitingInstance


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
        self._keep_finished = keep_finished
        self._active: dict[str, WorkflowInstance] = {}
        self._finished: dict[str, WorkflowInstance] = {}
        self._finish_order: deque[str] = deque()
        """Ids of ``_finished``, oldest first: a dict and a deque keep the window in a
        quarter of an ``OrderedDict``'s time (insert plus evict: 0.16 against 0.60 us)."""
        self._interpreters: dict[str, Interpreter] = {}
        self._drivers: dict[str, asyncio.Task[Any]] = {}
        """instance id -> the task running it (the caller of start_workflow or
        complete_human_task): what cancel_workflow cancels."""
        self._stopped: dict[str, asyncio.Future[None]] = {}
        """instance id -> a future cancel_workflow waits on, set once the instance unwound."""
        self._tasks: dict[str, HumanTask] = {}
        """Open tasks, and the completed tasks of instances still kept (so completing one twice
        says so): forgotten with their instance."""
        self._task_ids: dict[str, list[str]] = {}
        """instance id -> ids of its tasks in ``_tasks``"""
        self._cancel_requested: set[str] = set()
        self._store = store
        self._on_task = self._add_task
        """Bound once: every interpreter is handed it, and binding costs an object a start."""
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
        # Positional (keywords and a default list cost 3.1k a start). Every instance shares
        # its interpreter's step list, so its history grows as the interpreter logs.
        instance = WorkflowInstance(instance_id, definition.name, definition.version, context,
                                    WorkflowStatus.RUNNING, None, interpreter.history,
                                    time.time())
        self._active[instance_id] = instance
        self._interpreters[instance_id] = interpreter
        await self._drive(instance, interpreter.run(context))
        return instance

    async def _drive(self, instance: WorkflowInstance, work: Any) -> None:
        """Run ``work`` (the instance's interpreter) to its end, in the caller's task.

        Why no task of its own: a driver task per instance cost ~25 % of the throughput (the
        task, its context copy and weak reference stay alive as long as the instance and make
        every garbage collection longer; see docs/PERFORMANCE.md). ``cancel_workflow`` instead
        cancels the task running the instance, once, and this method withdraws exactly that
        request (``Task.uncancel``, as ``asyncio.timeout`` does): the caller gets the instance
        back ``cancelled``, while a cancellation of the caller itself still propagates.
        """
        task = current_task_of(asyncio.get_running_loop())
        if task is None:  # driven outside any task: give it one, so it can be cancelled
            await asyncio.get_running_loop().create_task(self._drive(instance, work))
            return
        self._drivers[instance.id] = task
        interpreter = self._interpreters[instance.id]
        try:
            await work
            instance.context = interpreter.final_context(instance.context)  # may fail to merge
        except StepFailure as failure:
            instance.error = ErrorInfo.from_exception(failure.node, failure.error)
            instance.context = failure.context or instance.context
            self._finish(instance, WorkflowStatus.FAILED)
            return
        except asyncio.CancelledError:
            self._finish(instance, WorkflowStatus.CANCELLED)
            if self._withdraw_cancel(instance.id, task):
                return
            raise
        finally:
            self._drivers.pop(instance.id, None)
            if self._cancel_requested:
                self._withdraw_cancel(instance.id, task)
            stopped = self._stopped.pop(instance.id, None)
            if stopped is not None and not stopped.done():
                stopped.set_result(None)
        if interpreter.parked:
            instance.status = WorkflowStatus.WAITING
            if self._store is not None:
                self._save(instance, interpreter)
        else:
            self._finish(instance, WorkflowStatus.COMPLETED)

    def _withdraw_cancel(self, instance_id: str, task: asyncio.Task[Any]) -> bool:
        """Take back the cancellation ``cancel_workflow`` asked of ``task`` for this instance,
        if it did; True if ``task`` then has no cancellation pending (the caller's own)."""
        if instance_id not in self._cancel_requested:
            return False
        self._cancel_requested.discard(instance_id)
        return task.uncancel() == 0

    def _save(self, instance: WorkflowInstance, interpreter: Interpreter) -> None:
        assert self._store is not None
        open_tasks = [self._tasks[t] for p in interpreter.parked.values() for t in p.tasks
                      if t in self._tasks and not self._tasks[t].completed]
        self._store.save_waiting([WaitingInstance(
            instance.id, instance.workflow_name, instance.workflow_version, 0,
            interpreter.to_snapshot(), open_tasks)])

    def _restore(self, instance_id: str) -> WorkflowInstance | None:
        """Bring a waiting instance saved by an earlier process back into memory."""
        waiting = self._store.get_waiting(instance_id) if self._store is not None else None
        if waiting is None:
            return None
        definition = self.registry.get_definition(waiting.workflow, waiting.version)
        interpreter = Interpreter.from_snapshot(definition.plan, waiting.state, self.clock,
                                                self._gate, self._on_task)
        for task in waiting.tasks:
            self._add_task(task)
            if task.data is not None and interpreter.waits_on(task.id):
                interpreter.complete_task(task.id, task.data)
        instance = WorkflowInstance(
            id=instance_id, workflow_name=waiting.workflow, workflow_version=waiting.version,
            context=interpreter.final_context(None), status=WorkflowStatus.WAITING,
            steps=interpreter.history, started_at=time.time(),
        )
        self._active[instance_id] = instance
        self._interpreters[instance_id] = interpreter
        return instance

    def _finish(self, instance: WorkflowInstance, status: WorkflowStatus) -> None:
        instance.status = status
        instance.ended_at = time.time()
        instance.context.detach()  # kept in the window: only the context itself
        self._active.pop(instance.id, None)
        interpreter = self._interpreters.pop(instance.id, None)
        if interpreter is not None:
            for parked in interpreter.parked.values() if interpreter.parked else ():
                for task_id in parked.tasks:  # open tasks can no longer be completed
                    task = self._tasks.get(task_id)
                    if task is not None and not task.completed:
                        del self._tasks[task_id]
        if self._store is not None:
            self._store.mark_finished([instance.id])
        if self._keep_finished > 0:
            finished = self._finished
            finished[instance.id] = instance
            self._finish_order.append(instance.id)
            while len(finished) > self._keep_finished:
                evicted = self._finish_order.popleft()
                if finished.pop(evicted, None) is not None and self._task_ids:
                    self._forget_tasks(evicted)
        else:
            self._forget_tasks(instance.id)

    def _forget_tasks(self, instance_id: str) -> None:
        for task_id in self._task_ids.pop(instance_id, ()):
            self._tasks.pop(task_id, None)

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
        instance = (self._active.get(instance_id) or self._finished.get(instance_id)
                    or self._restore(instance_id))
        if instance is None:
            raise InstanceNotFoundError(instance_id)
        return instance

    def list_instances(self, status: WorkflowStatus | None = None) -> list[WorkflowInstance]:
        every = [*self._active.values(), *self._finished.values()]
        return [i for i in every if status is None or i.status == status]

    async def cancel_workflow(self, instance_id: str) -> WorkflowInstance:
        """Cancel a running or waiting instance; its running steps see ``CancelledError``."""
        instance = self.get_instance(instance_id)
        if instance.is_finished:
            return instance
        driver = self._drivers.get(instance_id)
        if driver is not None:
            if instance_id not in self._cancel_requested:  # one request per instance
                self._cancel_requested.add(instance_id)
                driver.cancel()
            stopped = self._stopped.get(instance_id)
            if stopped is None:
                stopped = self._stopped[instance_id] = asyncio.get_running_loop().create_future()
            await asyncio.wait([stopped])  # until the instance has unwound (finally blocks ran)
        else:
            self._finish(instance, WorkflowStatus.CANCELLED)
        return instance

    # -- human tasks --------------------------------------------------------------------------
    def _add_task(self, task: HumanTask) -> None:
        self._tasks[task.id] = task
        self._task_ids.setdefault(task.instance_id, []).append(task.id)

    def pending_tasks(self, instance_id: str | None = None) -> list[HumanTask]:
        """Open human tasks, oldest first, optionally of one instance."""
        if self._store is not None:
            return [t for t in self._store.list_tasks()
                    if instance_id is None or t.instance_id == instance_id]
        return [t for t in self._tasks.values()
                if not t.completed and (instance_id is None or t.instance_id == instance_id)]

    def get_task(self, task_id: str) -> HumanTask:
        task = self._tasks.get(task_id)
        if task is None and self._store is not None:
            task = self._store.get_task(task_id)
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
            # The store decides who completes a task, across processes: once.
            stored = self._store.complete_task(task_id, dict(data), user_id)
            task.completed_at = stored.completed_at
        else:
            task.completed_at = time.time()
        task.completed_by = user_id
        task.data = dict(data)
        instance = self.get_instance(task.instance_id)  # may restore it, and its open tasks
        self._tasks[task_id] = task
        interpreter = self._interpreters[task.instance_id]
        ready = interpreter.complete_task(task_id, task.data)
        if ready is not None:
            instance.status = WorkflowStatus.RUNNING
            await self._drive(instance, interpreter.resume(ready))
        return instance
