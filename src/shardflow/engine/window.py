"""InstanceWindow: the instances a ``LocalExecutionEngine`` knows, and how long it keeps them.

Running and waiting instances are always kept (with their interpreters), since their tasks
must stay completable. Finished ones are kept in a bounded window (``keep``, oldest dropped
first), so a long-running service does not grow per instance.
"""

from __future__ import annotations

from collections import deque

from shardflow._types import WorkflowStatus
from shardflow.context.history import INDEXES
from shardflow.engine.interpreter import Interpreter
from shardflow.engine.records import WorkflowInstance


class InstanceWindow:
    """Live instances with their interpreters, and the window of finished ones."""

    __slots__ = ("__weakref__", "_keep", "_order", "active", "finished", "interpreters")

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self.active: dict[str, WorkflowInstance] = {}
        self.interpreters: dict[str, Interpreter] = {}
        """instance id -> the interpreter of each live (running or waiting) instance"""
        self.finished: dict[str, WorkflowInstance] = {}
        self._order: deque[str] = deque()
        """Ids of ``finished``, oldest first: a dict and a deque keep the window cheaper than
        an ``OrderedDict`` (docs/PERFORMANCE.md)."""
        INDEXES.add(self)  # the contexts of its instances read their fields from it

    def add(self, instance: WorkflowInstance, interpreter: Interpreter) -> None:
        """Keep a live ``instance``, run by ``interpreter``."""
        self.active[instance.id] = instance
        self.interpreters[instance.id] = interpreter

    def revive(self, instance: WorkflowInstance, interpreter: Interpreter) -> None:
        """Make a kept (finished, or loaded) ``instance`` live again, run by ``interpreter``
        (``schedule_step`` runs it on)."""
        if self.finished.pop(instance.id, None) is not None:
            self._order.remove(instance.id)
        self.add(instance, interpreter)

    def get(self, instance_id: str) -> WorkflowInstance | None:
        return self.active.get(instance_id) or self.finished.get(instance_id)

    def retire(self, instance: WorkflowInstance) -> tuple[Interpreter | None, list[str]]:
        """Move a finished ``instance`` into the window: its interpreter (None if it had none
        here), and the ids of the instances that fell out of the window."""
        instance_id = instance.id
        self.active.pop(instance_id, None)
        interpreter = self.interpreters.pop(instance_id, None)
        if self._keep <= 0:
            return interpreter, [instance_id]
        finished = self.finished
        finished[instance_id] = instance
        self._order.append(instance_id)
        evicted: list[str] = []
        while len(finished) > self._keep:
            old = self._order.popleft()
            if finished.pop(old, None) is not None:
                evicted.append(old)
        return interpreter, evicted

    def listed(self, status: WorkflowStatus | None) -> list[WorkflowInstance]:
        """Live and kept instances, optionally of one status."""
        every = [*self.active.values(), *self.finished.values()]
        return [i for i in every if status is None or i.status == status]
