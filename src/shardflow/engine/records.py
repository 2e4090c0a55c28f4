"""Records the engine produces: errors, step history, human tasks and instances."""

from __future__ import annotations

import time
import traceback as _traceback
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from shardflow._types import WorkflowStatus
from shardflow.engine.rows import StepEntry

if TYPE_CHECKING:
    from shardflow.context import InstanceInfo, WorkflowContext


class ErrorInfo(str):
    """Why an instance failed: the node (``step``), the exception type and message, and the
    traceback.

    It is the message as a ``str`` too, so code written for litestar-workflows, where an
    instance's ``error`` is a string, keeps working (``"timed out" in instance.error``),
    as :class:`~shardflow.errors.ValidationProblem` is a sentence with fields."""

    step: str
    type: str
    message: str
    traceback: str

    def __new__(cls, step: str, type: str, message: str, traceback: str = "") -> ErrorInfo:
        info = super().__new__(cls, message)
        info.step = step
        info.type = type
        info.message = message
        info.traceback = traceback
        return info

    @classmethod
    def from_exception(cls, step: str, exc: BaseException) -> ErrorInfo:
        text = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(step, type(exc).__name__, _message(exc), text)

    def to_dict(self) -> dict[str, str]:
        return {"step": self.step, "type": self.type, "message": self.message,
                "traceback": self.traceback}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ErrorInfo):
            return self.to_dict() == other.to_dict()
        return str.__eq__(self, other)

    def __hash__(self) -> int:
        return str.__hash__(self)

    def __repr__(self) -> str:
        return (f"ErrorInfo(step={self.step!r}, type={self.type!r}, "
                f"message={self.message!r})")

    def __reduce__(self) -> tuple[Any, tuple[str, str, str, str]]:
        return (ErrorInfo, (self.step, self.type, self.message, self.traceback))


def step_error(path: str, exc: BaseException) -> ErrorInfo:
    """What a step log entry (and so a :class:`StepRecord` and a ``StepExecution``) holds of
    the error that failed step ``path``: its message, as litestar-workflows records it, with
    the type beside it (``.type``). No traceback: only an instance's error carries one."""
    return ErrorInfo(path, type(exc).__name__, _message(exc))


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
    error: ErrorInfo | None = None
    """Why the attempt failed: its message, a ``str``, with ``.type`` (:func:`step_error`)."""

    @property
    def duration_ms(self) -> float:
        return (self.ended_at - self.started_at) * 1000.0


_record = tuple.__new__
_new_object = object.__new__
_RUNNING = WorkflowStatus.RUNNING


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
    current_step: str | None = None
    """The node the instance waits at (a waiting instance), or failed at; None otherwise."""
    results: dict[str, Any] | None = field(default=None, repr=False)
    """The return values of its steps by node id (made when a step first returns one)."""
    info: InstanceInfo | None = field(default=None, repr=False)
    """Its litestar-workflows fields, once a context read them (``context.step_history``:
    :class:`~shardflow.context.history.HistorySource`)."""

    @staticmethod
    def running(id: str, workflow_name: str, workflow_version: str, context: WorkflowContext,
                steps: list[StepEntry], started_at: float) -> WorkflowInstance:
        """``WorkflowInstance(id, workflow_name, workflow_version, context, RUNNING, None,
        steps, started_at)`` without the class call: engines make one per start.
        ``tests/engine/test_records.py`` checks the two agree field by field."""
        instance: WorkflowInstance = _new_object(WorkflowInstance)
        instance.id = id
        instance.workflow_name = workflow_name
        instance.workflow_version = workflow_version
        instance.context = context
        instance.status = _RUNNING
        instance.error = None
        instance.steps = steps
        instance.started_at = started_at
        instance.ended_at = None
        instance.current_step = None
        instance.results = None
        instance.info = None
        return instance

    def __await__(self) -> Generator[Any, None, WorkflowInstance]:
        """``await engine.get_instance(id)`` (litestar-workflows') gives the instance, as
        the call without ``await`` does."""
        return self
        yield  # a generator: awaiting it returns at once

    @property
    def history(self) -> list[StepRecord]:
        """Every step execution so far, in the order they ended."""
        return as_records(self.steps)

    @property
    def is_finished(self) -> bool:
        return self.status in _FINISHED

    @property
    def completed_at(self) -> datetime | None:
        """When it ended, as an aware UTC ``datetime`` (litestar-workflows' field); None
        while it runs or waits. ``ended_at`` is the same moment in epoch seconds."""
        ended = self.ended_at
        return None if ended is None else datetime.fromtimestamp(ended, UTC)


class WorkflowInstanceData(WorkflowInstance):
    """An instance as litestar-workflows' persistence makes one: the same record, built from
    litestar-workflows' fields, so what a ``load_instance`` returns is what the engine's
    ``get_instance`` gives (``engine/local.py``).

    ``started_at`` and ``completed_at`` may be ``datetime`` (litestar-workflows') or epoch
    seconds; they are kept as shardflow keeps them, ``started_at`` / ``ended_at`` in epoch
    seconds (``completed_at`` reads the end back as a ``datetime``). A string ``error`` becomes
    an :class:`ErrorInfo` naming ``current_step``."""

    __slots__ = ()

    def __init__(self, id: Any, workflow_name: str, workflow_version: str,
                 status: WorkflowStatus | str, context: WorkflowContext,
                 current_step: str | None = None, error: str | None = None,
                 started_at: datetime | float | None = None,
                 completed_at: datetime | float | None = None) -> None:
        info = error if error is None or isinstance(error, ErrorInfo) else ErrorInfo(
            current_step or "", "", str(error))
        WorkflowInstance.__init__(
            self, id, workflow_name, workflow_version, context, WorkflowStatus(status), info,
            [], _epoch(started_at) or time.time(), _epoch(completed_at), current_step)


def _epoch(moment: datetime | float | None) -> float | None:
    return moment.timestamp() if isinstance(moment, datetime) else moment


_FINISHED = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED})
