"""Records the engine produces: errors, step history, human tasks and instances."""

from __future__ import annotations

import traceback as _traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

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
        return cls(step=step, type=type(exc).__name__, message=_message(exc), traceback=text)

    def to_dict(self) -> dict[str, str]:
        return {"step": self.step, "type": self.type, "message": self.message,
                "traceback": self.traceback}



def _message(exc: BaseException) -> str:
    """``str(exc)``, which runs user code: an exception whose ``__str__`` fails still gets a
    record (the error boundary must not fail on the error it reports)."""
    try:
        return str(exc)
    except Exception as inner:
        return f"<str() of the exception failed: {type(inner).__name__}>"


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
