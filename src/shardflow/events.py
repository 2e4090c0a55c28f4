"""Events of a workflow's life, and the in-process bus that delivers them to subscribers.

The event types and their fields are litestar-workflows', so subscribers written for it keep
working: workflow started, waiting, completed, failed and cancelled; step started, completed,
failed and skipped; human task created and completed. Each has a dotted ``event_type``
(``"step.completed"``) and turns into a JSON-ready dict (:meth:`WorkflowEvent.to_dict`).

:class:`EventBus` calls its subscribers in the order they subscribed, awaiting the async ones.
A subscriber that raises is logged and the others still run: watching a workflow must not
change how it runs. Its ``emit(event_type, **fields)`` is the protocol litestar-workflows'
engine speaks to any event bus, so a bus written for litestar-workflows can be given where
shardflow takes one.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

__all__ = ["EVENT_TYPES", "EventBus", "Handler", "HumanTaskCompleted", "HumanTaskCreated",
           "HumanTaskReassigned", "StepCompleted", "StepFailed", "StepSkipped", "StepStarted",
           "WorkflowCanceled", "WorkflowCancelled", "WorkflowCompleted", "WorkflowEvent",
           "WorkflowFailed", "WorkflowStarted", "WorkflowWaiting", "event_type_name", "make_event"]

log = logging.getLogger("shardflow.events")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(kw_only=True, slots=True)
class WorkflowEvent:
    """What every event carries: the instance it concerns, and when it happened (UTC)."""

    event_type: ClassVar[str] = ""
    instance_id: Any
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        """``{"event": event_type, field: value, ...}`` with the timestamp in ISO 8601 and
        ids as strings; other values as they are (a step result may need a JSON default)."""
        out: dict[str, Any] = {"event": self.event_type}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = (value.isoformat() if isinstance(value, datetime)
                           else str(value) if isinstance(value, UUID) else value)
        return out


@dataclass(kw_only=True, slots=True)
class WorkflowStarted(WorkflowEvent):
    event_type = "workflow.started"
    workflow_name: str
    workflow_version: str
    initial_data: dict[str, Any] | None = None
    user_id: str | None = None
    tenant_id: str | None = None


@dataclass(kw_only=True, slots=True)
class WorkflowWaiting(WorkflowEvent):
    """The instance parked at ``step_name`` (a human task) until something completes it."""

    event_type = "workflow.waiting"
    step_name: str


@dataclass(kw_only=True, slots=True)
class WorkflowCompleted(WorkflowEvent):
    event_type = "workflow.completed"
    status: str
    final_step: str | None = None
    duration_seconds: float | None = None


@dataclass(kw_only=True, slots=True)
class WorkflowFailed(WorkflowEvent):
    event_type = "workflow.failed"
    error: str
    failed_step: str | None = None
    error_type: str | None = None
    stack_trace: str | None = None


@dataclass(kw_only=True, slots=True)
class WorkflowCancelled(WorkflowEvent):
    event_type = "workflow.canceled"
    reason: str
    canceled_by: str | None = None
    current_step: str | None = None


WorkflowCanceled = WorkflowCancelled
"""litestar-workflows' spelling."""


@dataclass(kw_only=True, slots=True)
class StepStarted(WorkflowEvent):
    event_type = "step.started"
    step_name: str
    step_type: str
    input_data: dict[str, Any] | None = None


@dataclass(kw_only=True, slots=True)
class StepCompleted(WorkflowEvent):
    event_type = "step.completed"
    step_name: str
    status: str
    result: Any = None
    output_data: dict[str, Any] | None = None
    duration_seconds: float | None = None


@dataclass(kw_only=True, slots=True)
class StepFailed(WorkflowEvent):
    event_type = "step.failed"
    step_name: str
    error: str
    error_type: str | None = None
    retry_count: int = 0


@dataclass(kw_only=True, slots=True)
class StepSkipped(WorkflowEvent):
    event_type = "step.skipped"
    step_name: str
    reason: str | None = None


@dataclass(kw_only=True, slots=True)
class HumanTaskCreated(WorkflowEvent):
    event_type = "human_task.created"
    step_name: str
    task_id: Any
    assignee: str | None = None
    title: str | None = None
    description: str | None = None
    due_at: datetime | None = None


@dataclass(kw_only=True, slots=True)
class HumanTaskCompleted(WorkflowEvent):
    event_type = "human_task.completed"
    step_name: str
    task_id: Any
    completed_by: str | None = None
    form_data: dict[str, Any] | None = None


@dataclass(kw_only=True, slots=True)
class HumanTaskReassigned(WorkflowEvent):
    """A task moved from one assignee to another. shardflow has no reassignment of its own
    yet, so only an application that reassigns tasks publishes it."""

    event_type = "human_task.reassigned"
    step_name: str
    task_id: Any
    from_assignee: str | None = None
    to_assignee: str | None = None
    reason: str | None = None


EVENT_TYPES: dict[str, type[WorkflowEvent]] = {cls.event_type: cls for cls in (
    WorkflowStarted, WorkflowWaiting, WorkflowCompleted, WorkflowFailed, WorkflowCancelled,
    StepStarted, StepCompleted, StepFailed, StepSkipped, HumanTaskCreated, HumanTaskCompleted,
    HumanTaskReassigned)}
"""Every event type by its ``event_type``."""
_ALIASES = {"workflow.cancelled": "workflow.canceled"}

Handler = Callable[[WorkflowEvent], "Awaitable[None] | None"]


def event_type_name(kind: str | type[WorkflowEvent]) -> str:
    """The ``event_type`` that ``kind`` (a name, an alias or an event class) means."""
    name = kind if isinstance(kind, str) else kind.event_type
    name = _ALIASES.get(name, name)
    if name not in EVENT_TYPES:
        raise ValueError(f"unknown event type {name!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    return name


class EventBus:
    """Delivers events to subscribers, in process."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[Handler, frozenset[str] | None]] = []

    def subscribe(self, handler: Handler,
                  *event_types: str | type[WorkflowEvent]) -> Callable[[], None]:
        """Call ``handler(event)`` for every event of ``event_types`` (names or classes; none
        given: every event). Returns a function that unsubscribes it."""
        wanted = (frozenset(event_type_name(k) for k in event_types)
                  if event_types and WorkflowEvent not in event_types else None)
        entry = (handler, wanted)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    @property
    def has_subscribers(self) -> bool:
        """True if some handler subscribed: engines send no events to a bus without any."""
        return bool(self._subscribers)

    async def publish(self, event: WorkflowEvent) -> None:
        """Deliver ``event`` to every subscriber of its type, in subscription order."""
        for handler, wanted in list(self._subscribers):
            if wanted is not None and event.event_type not in wanted:
                continue
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("event subscriber %r failed on %s of instance %s",
                              handler, event.event_type, event.instance_id)

    async def emit(self, event_type: str, **event_fields: Any) -> None:
        """Publish the event ``event_type`` made of ``event_fields`` (litestar-workflows'
        event-bus protocol); an unknown type or field is a ``ValueError``/``TypeError``."""
        await self.publish(make_event(event_type, **event_fields))


def make_event(event_type: str, **event_fields: Any) -> WorkflowEvent:
    """The event of type ``event_type`` (a name or alias) with ``event_fields``."""
    cls = EVENT_TYPES[event_type_name(event_type)]
    try:
        return cls(**event_fields)
    except TypeError as exc:
        raise TypeError(f"event {cls.event_type!r}: {exc}") from None
