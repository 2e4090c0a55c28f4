"""Steps that wait for something outside the instance: time (``TimerStep``) or an external
system's callback (``WebhookStep``), litestar-workflows' shapes.

Both are run by the engine, not by their ``execute`` (which keeps litestar-workflows' meaning
for code that calls it directly):

* a timer waits ``duration`` (a ``timedelta``, or a function of the context returning one).
  Up to ``park_after_seconds`` (default :data:`PARK_AFTER_SECONDS`) it sleeps on the engine's
  clock, holding its place in the run like any running step; a longer one *parks* the
  instance as a human step does (it ends ``waiting``, durably: its snapshot and a task whose
  ``due_at`` is the time it fires), and the engine, the batch run or ``shardflow resume``
  continues it once that time has come (docs/SEMANTICS.md);
* a webhook parks the instance with an open task at once; the callback completes that task
  (engine, CLI ``shardflow tasks complete``, or the inbox API), and its data is stored in the
  context under ``callback_key``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from shardflow._types import StepType
from shardflow.model.steps import BaseHumanStep, BaseStep

if TYPE_CHECKING:
    from shardflow.context import WorkflowContext

PARK_AFTER_SECONDS = 60.0
"""Timers longer than this park the instance instead of sleeping: a sleeping instance holds a
slot of the run's in-flight window and its memory, and is lost with its process; a parked
one holds nothing and survives a crash. A minute is well past the step timeouts a batch uses
and short enough that nothing waits long in memory."""


class TimerStep(BaseStep):
    """Wait ``duration`` (a ``timedelta``, or a function of the context returning one)."""

    step_type = StepType.TIMER
    park_after_seconds: ClassVar[float] = PARK_AFTER_SECONDS
    # What its parked task shows, as a human step's task does (``engine/parking.new_task``).
    title: str = ""
    form_schema: dict[str, Any] | None = None
    assignee: str | None = None
    display: dict[str, str] | None = None
    due_in_seconds: float | None = None

    def __init__(self, name: str,
                 duration: timedelta | Callable[[WorkflowContext], timedelta],
                 description: str = "") -> None:
        super().__init__(name, description)
        self._duration = duration

    @property
    def duration(self) -> timedelta | Callable[[WorkflowContext], timedelta]:
        """The duration as given: a ``timedelta``, or the function computing it."""
        return self._duration

    def get_duration(self, context: WorkflowContext) -> timedelta:
        """The time to wait, for ``context``."""
        if isinstance(self._duration, timedelta):
            return self._duration
        return self._duration(context)

    def seconds(self, context: WorkflowContext) -> float:
        """The time to wait, in seconds (never negative); raises ``TypeError`` naming the
        step when ``duration`` gives something else than a ``timedelta``."""
        duration = self.get_duration(context)
        if not isinstance(duration, timedelta):
            raise TypeError(f"timer {self.step_name!r}: duration must be a timedelta, "
                            f"got {type(duration).__name__}")
        return max(duration.total_seconds(), 0.0)

    async def execute(self, context: WorkflowContext) -> None:
        """Sleep for the duration (outside an engine, as litestar-workflows does)."""
        await asyncio.sleep(self.seconds(context))

    def shown(self, context: WorkflowContext) -> list[dict[str, Any]]:
        return []


class WebhookStep(BaseStep):
    """Wait for an external callback; its data is stored under ``callback_key``."""

    step_type = StepType.WEBHOOK
    # What its parked task shows, as a human step's task does (``engine/parking.new_task``).
    title: str = ""
    form_schema: dict[str, Any] | None = None
    assignee: str | None = None
    display: dict[str, str] | None = None
    due_in_seconds: ClassVar[float | None] = None

    def __init__(self, name: str, callback_key: str = "webhook_data",
                 description: str = "") -> None:
        super().__init__(name, description)
        self.callback_key = callback_key

    async def execute(self, context: WorkflowContext) -> Any:
        """The callback's data, once the engine stored it (litestar-workflows' API)."""
        return context.get(self.callback_key)

    def shown(self, context: WorkflowContext) -> list[dict[str, Any]]:
        return []


Wait = TimerStep | WebhookStep


def may_park(step: BaseStep) -> bool:
    """True if reaching ``step`` may park its instance: a human step, a webhook, or a timer
    whose duration is computed or longer than its ``park_after_seconds``."""
    if isinstance(step, BaseHumanStep | WebhookStep):
        return True
    if not isinstance(step, TimerStep):
        return False
    duration = step.duration
    return not isinstance(duration, timedelta) or duration.total_seconds() > step.park_after_seconds
