"""Records the engine produces: errors, step history, human tasks and instances."""

from __future__ import annotations

import traceback as _traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from shardflow._types import WorkflowStatus

if TYPE_CHECKING:
    from shardflow.context import WorkflowContext


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why an instance failed: the node, the exception type and message, and the traceback."""

    step: str
    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, step: str, exc: BaseException) -> ErrorInfo:
        text = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(step=step, type=type(exc).__name__, message=str(exc), traceback=text)

    def to_dict(self) -> dict[str, str]:
        return {"step": self.step, "type": self.type, "message": self.message,
                "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorInfo:
        return cls(str(data.get("step", "")), str(data.get("type", "")),
                   str(data.get("message", "")), str(data.get("traceback", "")))


class StepRecord(NamedTuple):
    """One execution of one step (``attempts`` counts tries; ``skipped`` records have 0)."""

    node: str
    status: str
    attempts: int
    started_at: float
    ended_at: float
    error: str | None = None

    @property
    def duration_ms(self) -> float:
        return (self.ended_at - self.started_at) * 1000.0


@dataclass(slots=True)
class HumanTask:
    """Work for a person: complete it with form data that matches ``form_schema``."""

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

    @property
    def completed(self) -> bool:
        return self.completed_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "instance_id": self.instance_id, "node": self.node,
            "step": self.step, "title": self.title, "form_schema": self.form_schema,
            "assignee": self.assignee, "due_at": self.due_at, "created_at": self.created_at,
            "completed_at": self.completed_at, "completed_by": self.completed_by,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HumanTask:
        fields: dict[str, Any] = {k: d.get(k) for k in cls.__slots__}
        return cls(**fields)


@dataclass(eq=False)
class WorkflowInstance:
    """One run of a workflow: its status, context, error and step history."""

    id: str
    workflow_name: str
    workflow_version: str
    context: WorkflowContext
    status: WorkflowStatus = WorkflowStatus.PENDING
    error: ErrorInfo | None = None
    history: list[StepRecord] = field(default_factory=list)
    started_at: float = 0.0
    ended_at: float | None = None

    @property
    def is_finished(self) -> bool:
        return self.status in _FINISHED


_FINISHED = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED})
