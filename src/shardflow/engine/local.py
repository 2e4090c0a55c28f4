"""LocalExecutionEngine: run workflow instances in this process, on this event loop.

The engine is a facade over four parts, each with one job:

* :class:`~shardflow.engine.window.InstanceWindow`: the instances it knows (running and
  waiting ones always, finished ones in a bounded window: ``keep_finished``, default 1,000,
  oldest dropped first, so a long-running service does not grow per instance);
* :class:`~shardflow.engine.driver.InstanceDriver`: runs an instance in the caller's task
  through :func:`~shardflow.engine.instance.run_instance` (the one error boundary of an
  instance) and cancels it on request;
* :class:`~shardflow.engine.task_index.TaskIndex`: the human tasks in memory, listed and
  completed through :class:`~shardflow.engine.task_api.HumanTaskApi` (the engine's base);
* :class:`~shardflow.engine.store_adapter.StoreAdapter` (with a ``store``): every waiting
  instance saved with its tasks, so a restarted service lists the same pending tasks and
  completing one continues the instance where it stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from shardflow._clock import Clock, LoopClock
from shardflow._types import WorkflowStatus, new_id
from shardflow.context import (
    StepExecution,
    WorkflowContext,
    results_kept,
    started_moment,
)
from shardflow.engine.attempt import StepFailure, run_step
from shardflow.engine.driver import InstanceDriver
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.observe import (
    Emitter,
    announce_outcome,
    announce_start,
    listening,
)
from shardflow.engine.passive import TIMER_USER, due_timers
from shardflow.engine.records import ErrorInfo, WorkflowInstance, step_error
from shardflow.engine.scheduled_steps import StepScheduling
from shardflow.engine.store_adapter import StoreAdapter
from shardflow.engine.task_api import HumanTaskApi
from shardflow.engine.task_index import TaskIndex
from shardflow.engine.timers import TimerAlarms
from shardflow.engine.window import InstanceWindow
from shardflow.errors import (
    InstanceNotFoundError,
)
from shardflow.limits.gate import Gate
from shardflow.limits.local import LocalGate
from shardflow.model.plan import Plan, check_limits
from shardflow.model.registry import WorkflowRegistry
from shardflow.model.steps import BaseMachineStep
from shardflow.model.tasks import TIMER
from shardflow.store.tasks import SQLiteTaskStore, TaskStore

_WAITING = WorkflowStatus.WAITING


class LocalExecutionEngine(HumanTaskApi, StepScheduling):
    """Starts instances of registered workflows and drives them to an end or a human task.

    ``limits`` ({name: size}) and ``rate_limits`` ({name: "100/s"}) size the named limits steps
    declare; ``clock`` replaces real time (tests use :class:`shardflow.FakeClock`).
    """

    def __init__(
        self,
        registry: WorkflowRegistry,
        persistence: Any = None,
        event_bus: Emitter | None = None,
        *,
        limits: Mapping[str, int] | None = None,
        rate_limits: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        keep_finished: int = 1000,
        store: TaskStore | None = None,
    ) -> None:
        """``persistence`` is litestar-workflows' (``save_instance`` / ``load_instance``), or
        a shardflow :class:`TaskStore` (the same as ``store``); ``event_bus`` receives the
        engine's events (``engine/observe.py``)."""
        if isinstance(persistence, SQLiteTaskStore):
            store, persistence = store or persistence, None
        self.persistence = persistence
        self.event_bus = event_bus
        self._quiet = persistence is None and event_bus is None
        """Neither events nor persistence to serve: instances run as they always did."""
        self._cancel_reasons: dict[str, str] = {}
        self._class_names: dict[Any, str] = {}
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
        self._scheduled: set[asyncio.Task[WorkflowInstance]] = set()
        """Handles of ``schedule_step`` not yet done (``engine/scheduled_steps.py``)."""
        self._checked: dict[int, Plan] = {}
        """Plans whose limits ``check_limits`` accepted (by id, holding the plan so the id
        stays its own): the limits never change, so each plan is checked once, not per start."""

    # -- starting and driving -----------------------------------------------------------------
    async def start_workflow(
        self, workflow: Any, initial_data: Mapping[str, Any] | None = None,
        version: str | None = None, workflow_name: str | None = None,
        user_id: str | None = None, tenant_id: str | None = None,
    ) -> WorkflowInstance:
        """Start an instance of ``workflow`` (a registered name, or a class with
        ``get_definition()``; ``workflow_name`` overrides either) and return it once it is
        completed, failed, cancelled or waiting. ``user_id`` and ``tenant_id`` are the
        context's (litestar-workflows' fields)."""
        # Positional defaults: keyword-only ones cost a lookup each per call (PERFORMANCE.md)
        if workflow_name is not None or type(workflow) is not str:
            workflow = workflow_name or self._name_of(workflow)
        definition = self.registry.get_definition(workflow, version)
        plan = definition.plan
        if self._checked.get(id(plan)) is not plan:
            check_limits(plan, self._limits, self._rate_limits)
            self._checked[id(plan)] = plan
        instance_id = new_id()
        context = WorkflowContext.initial(initial_data, instance_id)
        interpreter = Interpreter(plan, instance_id, self.clock, self._gate, self._on_task)
        # Positional: the cheapest call (docs/PERFORMANCE.md). The instance shares its
        # interpreter's step log, so its history grows as the interpreter logs.
        instance = WorkflowInstance.running(instance_id, definition.name, definition.version,
                                            context, interpreter.history, time.time())
        self._window.add(instance, interpreter)  # its contexts read their fields from it
        if user_id is not None or tenant_id is not None:
            info = context.info
            info.user_id, info.tenant_id = user_id, tenant_id
        if self._quiet:  # no event bus, no litestar-workflows persistence
            await self._driver.drive(instance, interpreter, interpreter.run(context))
            return instance
        # a bound method, not a lambda: a closure would make these locals cells, a cost
        # every start pays (docs/PERFORMANCE.md)
        await self._announced_drive(instance, interpreter, interpreter.run, context,
                                    initial_data)
        return instance

    async def _announced_drive(self, instance: WorkflowInstance, interpreter: Interpreter,
                               begin: Callable[[WorkflowContext], Coroutine[Any, Any, None]],
                               context: WorkflowContext, data: Mapping[str, Any] | None
                               ) -> None:
        """Run ``begin(context)`` (a start of ``instance`` with ``data``, or a scheduled
        step), announced to the event bus if anyone listens."""
        bus = listening(self.event_bus)
        interpreter.events = bus  # before begin: an observed run is interpreted
        if bus is not None:
            await announce_start(bus, instance, data)
        await self._observed_drive(instance, interpreter, begin(context), bus)

    async def _observed_drive(self, instance: WorkflowInstance, interpreter: Interpreter,
                              work: Coroutine[Any, Any, None], bus: Emitter | None) -> None:
        """Drive ``work`` with the events and the litestar-workflows persistence around it."""
        known = {t.id for t in self._tasks.pending(instance.id)} if bus is not None else set()
        if self.persistence is not None:
            await self.persistence.save_instance(instance)
        await self._driver.drive(instance, interpreter, work)
        if bus is not None:
            opened = [t for t in self._tasks.pending(instance.id) if t.id not in known]
            await announce_outcome(bus, instance, opened,
                                   self._cancel_reasons.pop(instance.id, None))
        if self.persistence is not None:
            await self.persistence.save_instance(instance)

    def _name_of(self, workflow: Any) -> str:
        """The registered name of a workflow class (read from its definition once)."""
        name = self._class_names.get(workflow)
        if name is None:
            name = self._class_names[workflow] = workflow.get_definition().name
        return name

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
    async def execute_step(self, step: BaseMachineStep, context: WorkflowContext,
                           previous_result: Any = None) -> Any:
        """Run one step with its hooks and policies; its writes land in ``context``. Returns
        its return value (None if its ``can_execute`` said no) and appends its
        :class:`StepExecution` to ``context.step_history``; ``previous_result`` is put in the
        context as ``_previous_result`` (litestar-workflows'). Raises the step's own exception
        (or :class:`StepTimeoutError`) once its retries are used up."""
        key = step.step_name
        if previous_result is not None:
            context.set("_previous_result", previous_result)
        history = results_kept(context)
        started = time.time()
        try:
            out = await run_step(step, context, key, key, self.clock, self._gate, None)
        except StepFailure as failure:
            history.append(StepExecution(
                key, "failed", started_moment(started), started_moment(time.time()),
                error=step_error(key, failure.error)))
            raise failure.error from None
        result = None
        if out is None:
            status = "skipped"
        else:
            status = "succeeded"
            if out is not context:
                for path, value in out.writes().items():
                    context.set(path, value)
            result = history.results.get(key)
        history.append(StepExecution(
            key, status, started_moment(started), started_moment(time.time()), result))
        return result

    # -- instances ---------------------------------------------------------------------------
    def get_instance(self, instance_id: str) -> WorkflowInstance:
        """The instance ``instance_id``; ``await engine.get_instance(id)`` works too, and then
        also loads it from litestar-workflows' ``persistence``."""
        instance = self._window.get(instance_id) or self._restore(instance_id)
        if instance is None:
            if self.persistence is not None:
                return self._load(instance_id)  # type: ignore[return-value]
            raise InstanceNotFoundError(instance_id)
        return instance

    async def _load(self, instance_id: str) -> WorkflowInstance:
        instance = await self.persistence.load_instance(instance_id)
        if instance is None:
            raise InstanceNotFoundError(instance_id)
        return instance  # type: ignore[no-any-return]

    def _restore(self, instance_id: str) -> WorkflowInstance | None:
        restored = self._store.restore(instance_id) if self._store is not None else None
        if restored is None:
            return None
        self._window.add(*restored)
        return restored[0]

    def list_instances(self, status: WorkflowStatus | None = None) -> list[WorkflowInstance]:
        return self._window.listed(status)

    def get_running_instances(self) -> list[WorkflowInstance]:
        """Instances running or waiting for people (litestar-workflows' name)."""
        return [i for i in self._window.listed(None) if not i.is_finished]

    def get_all_instances(self) -> list[WorkflowInstance]:
        return self._window.listed(None)

    async def cancel_workflow(self, instance_id: str, reason: str | None = None
                              ) -> WorkflowInstance:
        """Cancel a running or waiting instance; its running steps see ``CancelledError``.
        ``reason`` goes to the ``workflow.canceled`` event and, as in litestar-workflows, to
        ``instance.error`` (``"Canceled: <reason>"``)."""
        instance = self.get_instance(instance_id)
        if instance.is_finished:
            return instance
        instance.error = ErrorInfo(instance.current_step or "", "CancelledError",
                                   "Canceled" if reason is None else f"Canceled: {reason}")
        bus = listening(self.event_bus)
        if reason is not None:
            self._cancel_reasons[instance_id] = reason
        if not await self._driver.cancel(instance_id):  # waiting: nothing runs
            self._finish(instance, WorkflowStatus.CANCELLED)
            if bus is not None:
                await announce_outcome(bus, instance, [],
                                       self._cancel_reasons.pop(instance_id, None))
            if self.persistence is not None:
                await self.persistence.save_instance(instance)
        self._cancel_reasons.pop(instance_id, None)
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
        for task in self.pending_tasks(kind=TIMER):
            instance = self.get_instance(task.instance_id)  # restored from the store if need be
            plan = self.registry.get_definition(instance.workflow_name,
                                                instance.workflow_version).plan
            if due_timers(plan, [task], now):
                fired.append(await self.complete_human_task(task.id, {}, TIMER_USER))
            elif instance.status is _WAITING:
                self._arm_timers(self._window.interpreters[instance.id])
        return fired
