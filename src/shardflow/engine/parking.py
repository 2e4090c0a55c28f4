"""Parked nodes: a node of an instance waiting for people, and the tasks it opened.

A human step (or a top-level ``ParallelGroup`` with human branches) *parks* its node: the
path stops there, the rest of the graph goes on, and the instance ends ``waiting``. The
:class:`Parked` record is all that node needs to go on once its tasks are completed; a
snapshot (``engine/snapshot.py``) stores it as JSON.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from shardflow._types import new_id
from shardflow.context import WorkflowContext
from shardflow.model.steps import BaseHumanStep
from shardflow.model.tasks import HUMAN, HumanTask
from shardflow.model.waits import TimerStep, WebhookStep

Waiting = BaseHumanStep | TimerStep | WebhookStep
"""A step that opens a task when it parks: people, an external callback, or time."""


@dataclass(slots=True)
class Parked:
    """A node waiting for people: its input context, every branch's context so far, the
    errors of tolerated failed branches, and the open task of each human branch."""

    node: str
    base: WorkflowContext
    branches: list[WorkflowContext | None]
    errors: dict[str, BaseException] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    """task id -> branch index (-1 for a human step that is the node itself)"""
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    """task id -> submitted form data"""
    user: str | None = None
    """who completed its last completed human task: the context's ``user_id`` once it goes on"""

    @property
    def ready(self) -> bool:
        return len(self.data) == len(self.tasks)


def new_task(instance_id: str, node: str, key: str, step: Waiting,
             context: WorkflowContext, due_in: float | None = None) -> HumanTask:
    """The task that completes the waiting ``step`` (``key`` inside the node ``node``),
    showing the approver the step's ``display`` fields of ``context``; ``due_in`` (seconds)
    overrides the step's ``due_in_seconds`` (a timer's task is due when it fires)."""
    now = time.time()
    due = step.due_in_seconds if due_in is None else due_in
    return HumanTask(
        id=new_id(), instance_id=instance_id, node=node, step=key,
        title=step.title or key, form_schema=step.form_schema, assignee=step.assignee,
        due_at=now + due if due is not None else None, created_at=now,
        description=step.description or None, display=step.shown(context) if step.display else None,
        kind=HUMAN if isinstance(step, BaseHumanStep) else step.step_type.value,
    )
