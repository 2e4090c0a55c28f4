"""HumanTask: work for a person, as the engine creates it and the task store keeps it.

A task's ``kind`` says who completes it: a person (``human``), time (``timer``: the task of a
parked ``TimerStep``, due when it fires) or an external system (``webhook``: the callback of a
``WebhookStep``). Inboxes and ``shardflow tasks list`` show human tasks unless asked for others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shardflow.errors import ShardflowError

HUMAN = "human"
TIMER = "timer"
WEBHOOK = "webhook"
TASK_KINDS = (HUMAN, TIMER, WEBHOOK)
"""Every ``HumanTask.kind``: who completes the task (people, time, an external system)."""
ALL_KINDS = "all"
"""What a kind filter says to list tasks of every kind."""


class UnknownTaskKindError(ShardflowError, ValueError):
    """A kind filter names no kind of task (``.kind``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(f"kind {kind!r} is not one of {', '.join(TASK_KINDS)} or {ALL_KINDS}")


def wanted_kinds(kind: str | Iterable[str]) -> tuple[str, ...] | None:
    """The kinds a filter asks for: one kind, several, or :data:`ALL_KINDS` (None: every
    kind). The one rule behind ``shardflow tasks list --kind``, the inbox's ``?kind=`` and
    ``LocalExecutionEngine.pending_tasks(kind=...)``; an unknown word is
    :class:`UnknownTaskKindError`."""
    words = (kind,) if isinstance(kind, str) else tuple(kind)
    if ALL_KINDS in words:
        return None
    for word in words:
        if word not in TASK_KINDS:
            raise UnknownTaskKindError(word)
    return words


@dataclass(slots=True)
class HumanTask:
    """Work for a person: complete it with form data that matches ``form_schema``.

    ``description`` and ``display`` are what the approver sees beside the form: the step's
    description and its ``display`` fields with their values when the task opened
    (:meth:`~shardflow.model.steps.BaseHumanStep.shown`)."""

    id: str
    instance_id: str
    node: str
    step: str
    title: str
    form_schema: dict[str, Any] | None
    assignee: str | None
    due_at: float | None
    created_at: float
    completed_at: float | None = None
    completed_by: str | None = None
    data: dict[str, Any] | None = None
    description: str | None = None
    display: list[dict[str, Any]] | None = None
    kind: str = HUMAN

    @property
    def completed(self) -> bool:
        return self.completed_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "instance_id": self.instance_id, "node": self.node,
            "step": self.step, "title": self.title, "form_schema": self.form_schema,
            "assignee": self.assignee, "due_at": self.due_at, "created_at": self.created_at,
            "completed_at": self.completed_at, "completed_by": self.completed_by,
            "data": self.data, "description": self.description, "display": self.display,
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HumanTask:
        fields: dict[str, Any] = {k: d.get(k) for k in cls.__slots__}
        fields["kind"] = fields["kind"] or HUMAN  # written before tasks had kinds
        return cls(**fields)
