"""Records the engine produces: errors, step history, human tasks and instances."""

from __future__ import annotations

import traceback as _traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, cast

from shardflow._types import WorkflowStatus
from shardflow.engine.rows import StepEntry

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


_record = tuple.__new__


def as_records(log: list[StepEntry]) -> list[StepRecord]:
    """``log`` with every entry made a :class:`StepRecord`, in place, and returned: the list
    stays the one the interpreter appends to, so a waiting instance's history still grows
    as it continues."""
    for index, entry in enumerate(log):
        if type(entry) is not StepRecord:
            log[index] = _record(StepRecord, entry)
    return cast("list[StepRecord]", log)


@dataclass(eq=False, slots=True)
class WorkflowInstance:
    """One run of a workflow: its status, context, error and step history.

    ``steps`` is the step log as the engine keeps it (:data:`StepEntry` tuples); read
    ``history`` for its :class:`StepRecord` records."""

    id: str
    workflow_name: str
    workflow_version: str
    context: WorkflowContext
    status: WorkflowStatus = WorkflowStatus.PENDING
    error: ErrorInfo | None = None
    steps: list[StepEntry] = field(default_factory=list, repr=False)
    started_at: float = 0.0
    ended_at: float | None = None

    @property
    def history(self) -> list[StepRecord]:
        """Every step execution so far, in the order they ended."""
        return as_records(self.steps)

    @property
    def is_finished(self) -> bool:
        return self.status in _FINISHED


_FINISHED = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED})
