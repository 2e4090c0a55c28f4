"""Workflows whose steps read ``context.step_history`` in batch (imported by workers by path)."""

from __future__ import annotations

from typing import Any

from shardflow import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    ParallelGroup,
    WorkflowContext,
    WorkflowDefinition,
)

_failed_once: set[Any] = set()
"""Ids whose ``flaky`` attempt failed in this process (one failure each, then success)."""


class First(BaseMachineStep):
    name = "first"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("first", True)
        return "one"


class Flaky(BaseMachineStep):
    """Fails its first attempt for each id, then succeeds: one retry."""

    name = "flaky"
    retries = 1

    async def execute(self, context: WorkflowContext) -> Any:
        key = context.get("id")
        if key not in _failed_once:
            _failed_once.add(key)
            raise ValueError("first attempt")


class Never(BaseMachineStep):
    name = "never"

    async def execute(self, context: WorkflowContext) -> Any:
        raise AssertionError("never taken")


class Report(BaseMachineStep):
    """Writes what ran before it, as litestar-workflows code reads it."""

    name = "report"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("seen", [[e.step_name, e.status, e.result] for e in context.step_history])
        context.set("first_ran", context.has_step_executed("first"))


def _names(context: WorkflowContext) -> list[str]:
    return [e.step_name for e in context.step_history]


class ReportThroughHelper(BaseMachineStep):
    """Reads the history through a function of its module: declared, not detected."""

    name = "report"
    reads_step_history = True

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("seen", _names(context))


class Quiet(BaseMachineStep):
    """Reads nothing: a definition with it keeps no history in batch."""

    name = "report"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("done", True)


def _chain(name: str, last: BaseMachineStep) -> WorkflowDefinition:
    return WorkflowDefinition(
        name=name, steps={"first": First(), "flaky": Flaky(), "report": last},
        edges=[Edge("first", "flaky"), Edge("flaky", "report")], initial_step="first",
        terminal_steps={"report"})


compiled = _chain("compiled", Report())
"""A static chain: batch workers run it as a compiled schedule."""
declared = _chain("declared", ReportThroughHelper())
quiet = _chain("quiet", Quiet())
interpreted = WorkflowDefinition(
    name="interpreted", steps={"first": First(), "never": Never(), "report": Report()},
    edges=[Edge("first", "report", condition=lambda ctx: True),
           Edge("first", "never", condition=lambda ctx: False), Edge("never", "report")],
    initial_step="first", terminal_steps={"report"})
"""Conditions: interpreted; ``never`` is skipped, and ``report`` still runs."""


class Approve(BaseHumanStep):
    name = "approve"
    title = "Approve"


class ReportUser(Report):
    """``Report``, and who completed the approval (``context.user_id``)."""

    async def execute(self, context: WorkflowContext) -> Any:
        await super().execute(context)
        context.set("user", context.user_id)


approval = WorkflowDefinition(
    name="approval", steps={"first": First(), "approve": Approve(), "report": ReportUser()},
    edges=[Edge("first", "approve"), Edge("approve", "report")], initial_step="first",
    terminal_steps={"report"})
"""Waits at a human step; after it, reads the history (the approval in it) and the user."""


class Second(BaseMachineStep):
    """Returns a value through the attempt loop (it may retry), not the plain attempt."""

    name = "second"
    retries = 1

    async def execute(self, context: WorkflowContext) -> Any:
        return {"two": 2}


grouped = WorkflowDefinition(
    name="grouped", steps={"both": ParallelGroup(First(), Second(), name="both"),
                           "report": Report()},
    edges=[Edge("both", "report")], initial_step="both", terminal_steps={"report"})
"""Members of a group return values: the history records them under ``both/<member>``."""
