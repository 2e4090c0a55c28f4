"""HumanTaskApi: the human-task half of ``LocalExecutionEngine``'s API (listing, completing,
webhook callbacks), a base class of the engine so that ``engine/local.py`` keeps starting,
driving and cancelling instances.

Completing a task validates its form data, records it (in the task store first, if the engine
has one: the store decides who completes a task, once), and resumes the instance once every
task of its node is done.
"""

from __future__ import annotations

import time
from collections.abc import Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from shardflow._types import WorkflowStatus
from shardflow.engine.driver import InstanceDriver
from shardflow.engine.forms import form_violations
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.observe import Emitter, announce_task_completed, listening
from shardflow.engine.records import WorkflowInstance
from shardflow.engine.store_adapter import StoreAdapter
from shardflow.engine.task_index import TaskIndex
from shardflow.engine.window import InstanceWindow
from shardflow.errors import (
    InstanceNotWaitingError,
    NotWaitingAtStepError,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    TaskValidationError,
)
from shardflow.model.tasks import ALL_KINDS, HUMAN, HumanTask, wanted_kinds

_RUNNING = WorkflowStatus.RUNNING
_WAITING = WorkflowStatus.WAITING


class HumanTaskApi:
    """Human tasks of a ``LocalExecutionEngine``: see the module docstring."""

    event_bus: Emitter | None
    _quiet: bool
    _store: StoreAdapter | None
    _tasks: TaskIndex
    _window: InstanceWindow
    _driver: InstanceDriver

    if TYPE_CHECKING:  # the engine's own, used here
        def get_instance(self, instance_id: str) -> WorkflowInstance: ...

        async def _observed_drive(self, instance: WorkflowInstance, interpreter: Interpreter,
                                  work: Coroutine[Any, Any, None], bus: Emitter | None
                                  ) -> None: ...

    # -- human tasks --------------------------------------------------------------------------
    def pending_tasks(self, instance_id: str | None = None, *,
                      kind: str | Iterable[str] = HUMAN) -> list[HumanTask]:
        """Open tasks, oldest first, optionally of one instance: those people act on unless
        ``kind`` asks for others (``"timer"``, ``"webhook"``, several, or ``"all"``), as
        ``shardflow tasks list`` and the inbox list them. An unknown kind is
        :class:`~shardflow.model.tasks.UnknownTaskKindError` (a ``ValueError``)."""
        kinds = wanted_kinds(kind)
        if self._store is not None:
            return self._store.pending(instance_id, kinds)
        found = self._tasks.pending(instance_id)
        return found if kinds is None else [t for t in found if t.kind in kinds]

    def get_task(self, task_id: str) -> HumanTask:
        task = self._tasks.get(task_id)
        if task is None and self._store is not None:
            task = self._store.store.get_task(task_id)
        if task is None:
            raise TaskNotFoundError(task_id)
        return task

    async def complete_human_task(self, task_id: str, *args: Any, **kwargs: Any
                                  ) -> WorkflowInstance:
        """Validate the form data against the task's form schema, record it, and resume the
        instance once all tasks of its node are done. Invalid data leaves the task open.

        Two forms: ``complete_human_task(task_id, data, user_id=None)`` (shardflow's), and
        litestar-workflows' ``complete_human_task(instance_id, step_name, user_id, data)``
        (the instance's open task at node ``step_name``)."""
        if len(args) + len(kwargs) >= 3 or "step_name" in kwargs:
            instance_id, step_name, user_id, data = _litestar_completion(task_id, *args,
                                                                          **kwargs)
            task_id = await self._open_task_at(instance_id, step_name)
        else:
            data, user_id = _shardflow_completion(*args, **kwargs)
        return await self._complete(task_id, data, user_id)

    async def _open_task_at(self, instance_id: str, node: str) -> str:
        """The id of the open task at ``node`` of ``instance_id``. Raises
        :class:`InstanceNotWaitingError` if the instance is not waiting (as its record says:
        the record ``get_instance`` returns is the engine's own), and
        :class:`NotWaitingAtStepError` if it waits elsewhere."""
        instance = await self.get_instance(instance_id)  # may restore it, and its open tasks
        if instance.status != _WAITING:  # != : ported code may set a plain string
            raise InstanceNotWaitingError(instance_id, node, instance.status)
        waiting_at: list[str] = []
        for task in self.pending_tasks(instance_id, kind=ALL_KINDS):
            if task.node == node:
                return task.id
            if task.node not in waiting_at:
                waiting_at.append(task.node)
        raise NotWaitingAtStepError(instance_id, node, waiting_at)

    async def _complete(self, task_id: str, data: Mapping[str, Any], user_id: str | None
                        ) -> WorkflowInstance:
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
        bus = listening(self.event_bus)
        if bus is not None:
            await announce_task_completed(bus, task.instance_id, task.node, task.id,
                                          task.completed_by, task.data)
        ready = interpreter.complete_task(task_id, task.data, user_id)
        if ready is not None:
            instance.status = _RUNNING
            instance.current_step = None
            if self._quiet:
                await self._driver.drive(instance, interpreter, interpreter.resume(ready))
            else:
                interpreter.events = bus
                await self._observed_drive(instance, interpreter, interpreter.resume(ready),
                                           bus)
        return instance


    async def complete_webhook(self, instance_id: str, node: str,
                               data: Mapping[str, Any]) -> WorkflowInstance:
        """Deliver the external callback the webhook ``node`` of ``instance_id`` waits for:
        its data goes under the step's ``callback_key`` and the instance goes on. Raises
        :class:`TaskNotFoundError` (:class:`NotWaitingAtStepError`,
        :class:`InstanceNotWaitingError`) if that node waits for nothing."""
        return await self._complete(await self._open_task_at(instance_id, node), data, None)


def _shardflow_completion(data: Mapping[str, Any], user_id: str | None = None
                          ) -> tuple[Mapping[str, Any], str | None]:
    return data, user_id


def _litestar_completion(instance_id: str, step_name: str, user_id: str | None,
                         data: Mapping[str, Any]) -> tuple[str, str, str | None,
                                                           Mapping[str, Any]]:
    return instance_id, step_name, user_id, data
