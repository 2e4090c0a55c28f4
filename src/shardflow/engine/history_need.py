"""Step histories in batch: which definitions need one, and where their contexts find it.

A batch worker counts step executions (``engine/stepstats.py``) instead of logging them, so
``context.step_history`` would be empty there. Logging costs every step of every instance
(docs/PERFORMANCE.md), so workers log only for a definition that reads the history
(:func:`reads_step_history`): one of its steps' own code (or an edge condition) names
``step_history``, ``get_last_execution`` or ``has_step_executed``, or a step declares
``reads_step_history = True`` (for a read this cannot see: through a helper elsewhere).

Such a definition's instances then run exactly as the in-process engine runs them (the step
log kept, compiled schedules and interpreter alike); :class:`LiveHistories` lets their
contexts find that log by instance id, as an engine's instance window does, and the log is
counted into the worker's statistics when the instance ends.
"""

from __future__ import annotations

import weakref
from types import CodeType
from typing import Any

from shardflow.context.history import INDEXES, DetachedSource, HistorySource
from shardflow.engine.rows import StepEntry
from shardflow.model.definition import WorkflowDefinition
from shardflow.model.plan import iter_steps

_READS = frozenset({"step_history", "get_last_execution", "has_step_executed"})
"""Attribute names through which code reads an instance's step history."""


def reads_step_history(definition: WorkflowDefinition) -> bool:
    """Whether an instance of ``definition`` may read its step history (see the module doc)."""
    for node in definition.steps.values():
        for step in iter_steps(node):
            if step.reads_step_history or _class_reads(type(step)):
                return True
    return any(_code_reads(getattr(edge.condition, "__code__", None))
               for edge in definition.edges)


_seen: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def _class_reads(cls: type) -> bool:
    """Some function of ``cls`` or its bases (shardflow's own classes aside) reads it."""
    found = _seen.get(cls)
    if found is None:
        found = _seen[cls] = any(
            _code_reads(_code_of(value))
            for klass in cls.__mro__ if not klass.__module__.startswith(("shardflow.", "builtins"))
            for value in vars(klass).values())
    return found


def _code_of(value: Any) -> CodeType | None:
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    elif isinstance(value, property):
        value = value.fget
    code = getattr(value, "__code__", None)
    return code if isinstance(code, CodeType) else None


def _code_reads(code: CodeType | None) -> bool:
    """``code``, or a function, lambda or comprehension inside it, names a history read."""
    if code is None:
        return False
    return not _READS.isdisjoint(code.co_names) or any(
        _code_reads(const) for const in code.co_consts if isinstance(const, CodeType))


class LiveHistories:
    """The step logs of the instances a batch runner is running, by instance id: a
    :class:`~shardflow.context.history.SourceIndex`, registered while this object lives."""

    __slots__ = ("__weakref__", "_running")

    def __init__(self) -> None:
        self._running: dict[str, HistorySource] = {}
        INDEXES.add(self)

    def get(self, instance_id: str) -> HistorySource | None:
        return self._running.get(instance_id)

    def open(self, instance_id: str, workflow_name: str, steps: list[StepEntry],
             started_at: float) -> None:
        self._running[instance_id] = DetachedSource(workflow_name, steps, started_at)

    def close(self, instance_id: str) -> None:
        self._running.pop(instance_id, None)
