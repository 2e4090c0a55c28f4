"""StoreAdapter: what a ``LocalExecutionEngine`` keeps in its ``TaskStore``, and brings back.

With a store (``SQLiteTaskStore(path)``) every waiting instance is saved as a snapshot with
its open tasks, so a restarted service lists the same pending tasks, and completing one
brings the instance back into memory and continues it where it stopped. The store also
decides who completes a task, across processes: once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shardflow._clock import Clock
from shardflow._types import WorkflowStatus
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.passive import wait_kinds
from shardflow.engine.records import WorkflowInstance
from shardflow.engine.task_index import TaskIndex
from shardflow.limits.gate import Gate
from shardflow.model.registry import WorkflowRegistry
from shardflow.model.tasks import HumanTask
from shardflow.store.tasks import TaskStore, WaitingInstance


class StoreAdapter:
    """Saves waiting instances to ``store`` and restores them, with their tasks."""

    __slots__ = ("_clock", "_gate", "_on_task", "_registry", "_tasks", "store")

    def __init__(self, store: TaskStore, registry: WorkflowRegistry, clock: Clock,
                 gate: Gate | None, tasks: TaskIndex,
                 on_task: Callable[[HumanTask], None]) -> None:
        self.store = store
        self._registry = registry
        self._clock = clock
        self._gate = gate
        self._tasks = tasks
        self._on_task = on_task

    def save(self, instance: WorkflowInstance, interpreter: Interpreter) -> None:
        """Save waiting ``instance`` (its snapshot) with its open tasks."""
        open_tasks = self._tasks.open_tasks(
            t for p in interpreter.parked.values() for t in p.tasks)
        self.store.save_waiting([WaitingInstance(
            instance.id, instance.workflow_name, instance.workflow_version, 0,
            interpreter.to_snapshot(), open_tasks)])

    def restore(self, instance_id: str) -> tuple[WorkflowInstance, Interpreter] | None:
        """A waiting instance saved by an earlier process, back in memory with its tasks
        (those completed since recorded in its interpreter); None if the store has none."""
        waiting = self.store.get_waiting(instance_id)
        if waiting is None:
            return None
        definition = self._registry.get_definition(waiting.workflow, waiting.version)
        interpreter = Interpreter.from_snapshot(definition.plan, waiting.state, self._clock,
                                                self._gate, self._on_task)
        for task in waiting.tasks:
            self._tasks.add(task)
            if task.data is not None and interpreter.waits_on(task.id):
                interpreter.complete_task(task.id, task.data, task.completed_by)
        instance = WorkflowInstance(
            id=instance_id, workflow_name=waiting.workflow, workflow_version=waiting.version,
            context=interpreter.final_context(None), status=WorkflowStatus.WAITING,
            steps=interpreter.history, started_at=time.time(),
        )
        return instance, interpreter

    def finished(self, instance_id: str) -> None:
        """The instance ended: nothing of it is left to continue."""
        self.store.mark_finished([instance_id])

    def pending(self, instance_id: str | None, kinds: tuple[str, ...] | None
                ) -> list[HumanTask]:
        """Open tasks in the store (every process's), oldest first, optionally of one
        instance, of ``kinds`` (None: every kind)."""
        self._classify_old_rows()
        return [t for t in self.store.list_tasks(kinds=kinds)
                if instance_id is None or t.instance_id == instance_id]

    def _classify_old_rows(self) -> None:
        """Give tasks written before tasks had kinds their kind, from the workflow that wrote
        them, as ``shardflow resume`` does (``SQLiteTaskStore.classify``). Rows of a workflow
        this engine does not know stay as the old code showed them: human tasks."""
        for workflow, version in self.store.unclassified():
            if self._registry.has_workflow(workflow, version):
                plan = self._registry.get_definition(workflow, version).plan
                self.store.classify(workflow, wait_kinds(plan), version)

    def complete(self, task: HumanTask, data: dict[str, Any], user_id: str | None) -> None:
        """Complete ``task`` in the store, which refuses a task completed already."""
        stored = self.store.complete_task(task.id, data, user_id)
        task.completed_at = stored.completed_at
