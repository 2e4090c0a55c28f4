"""TaskIndex: the human tasks a ``LocalExecutionEngine`` holds in memory, by id and instance.

It holds open tasks, and the completed tasks of instances still kept (so completing one
twice says so); an instance's tasks are forgotten with the instance.
"""

from __future__ import annotations

from collections.abc import Iterable

from shardflow.model.tasks import HumanTask


class TaskIndex:
    """Human tasks by id, and the ids of each instance's tasks."""

    __slots__ = ("_by_instance", "tasks")

    def __init__(self) -> None:
        self.tasks: dict[str, HumanTask] = {}
        self._by_instance: dict[str, list[str]] = {}

    def add(self, task: HumanTask) -> None:
        """Index ``task`` (opened by an instance, or brought back with a restored one)."""
        self.tasks[task.id] = task
        self._by_instance.setdefault(task.instance_id, []).append(task.id)

    def get(self, task_id: str) -> HumanTask | None:
        return self.tasks.get(task_id)

    def open_tasks(self, task_ids: Iterable[str]) -> list[HumanTask]:
        """The tasks of ``task_ids`` that are indexed and not completed."""
        tasks = self.tasks
        return [tasks[t] for t in task_ids if t in tasks and not tasks[t].completed]

    def pending(self, instance_id: str | None) -> list[HumanTask]:
        """Open tasks, oldest first, optionally of one instance."""
        return [t for t in self.tasks.values()
                if not t.completed and (instance_id is None or t.instance_id == instance_id)]

    def drop_open(self, task_ids: Iterable[str]) -> None:
        """Drop the open tasks among ``task_ids``: their instance ended, so they can no
        longer be completed."""
        for task_id in task_ids:
            task = self.tasks.get(task_id)
            if task is not None and not task.completed:
                del self.tasks[task_id]

    def forget(self, instance_ids: Iterable[str]) -> None:
        """Forget every task of these instances (they left the engine's window)."""
        if not self._by_instance:
            return
        for instance_id in instance_ids:
            for task_id in self._by_instance.pop(instance_id, ()):
                self.tasks.pop(task_id, None)
